//! Which modules a PEFT LoRA config puts an adapter on, by PEFT's own rules
//! (`peft.tuners.tuners_utils.check_target_module_exists`, PEFT 0.21):
//!
//! 1. `exclude_modules`: a string is a regex that must match the whole module path
//!    (`re.fullmatch`); a list excludes exact paths and paths ending in `"." + entry`.
//! 2. `target_modules`: a string is a full-match regex (and `"all-linear"` means every linear
//!    layer but the output head); a list matches exact paths, or paths ending in
//!    `"." + entry`.
//! 3. Only for a list entry matched by suffix (not an exact path, not a regex):
//!    `layers_to_transform` (an index or a list; an empty list means all) keeps the modules
//!    whose layer index is in it. The index is the first number after a `layers_pattern`
//!    segment (`(?:^|.*?\.){pattern}\.(\d+)\.`), or without a pattern the first number that
//!    follows a dotted segment (`.*?\.[^.]*\.(\d+)\.`).
//!
//! Python's `re` and Rust's `regex` agree on the syntax PEFT configs use (classes,
//! alternation, lazy and greedy repetition, groups, anchors); a pattern using what Rust
//! lacks (look-around, back-references) is refused rather than guessed.

use regex::Regex;

/// A list of names or a regex, as `target_modules` / `exclude_modules` may be.
#[derive(Debug, Clone)]
pub enum Names {
    List(Vec<String>),
    /// Compiled as a full match of the module path.
    Regex(Regex),
}

impl Names {
    /// A list entry matches an exact path or a path ending in `"." + entry`.
    fn list_match(list: &[String], key: &str) -> bool {
        list.iter().any(|t| {
            key == t
                || (key.len() > t.len()
                    && key.ends_with(t.as_str())
                    && key.as_bytes()[key.len() - t.len() - 1] == b'.')
        })
    }
}

#[derive(Debug, Clone)]
pub enum Targets {
    Names(Names),
    /// `"all-linear"`: every `nn.Linear` except the output embedding (`lm_head`), which for
    /// the supported decoders is every attention and MLP projection.
    AllLinear,
}

/// A config's module selection, ready to match module paths such as
/// `model.layers.3.self_attn.q_proj`.
#[derive(Debug, Clone)]
pub struct Targeting {
    pub targets: Targets,
    pub exclude: Option<Names>,
    /// `layers_to_transform`, when it restricts anything (None: every layer).
    pub layers: Option<Vec<u64>>,
    /// How the layer index is found in a path (from `layers_pattern`, or PEFT's default).
    layer_index: Vec<Regex>,
}

/// Compiles `pattern` to match the whole of a module path, as `re.fullmatch` does.
pub fn full_match(pattern: &str, key: &str) -> Result<Regex, String> {
    Regex::new(&format!("^(?:{pattern})$")).map_err(|e| {
        format!(
            "{key} = {pattern:?} is not a regex tunekit can evaluate the way Python's re does \
             (look-around and back-references are not supported): {e}"
        )
    })
}

impl Targeting {
    /// The plain list rule tunekit's own adapters use.
    pub fn list(names: &[String]) -> Self {
        Self {
            targets: Targets::Names(Names::List(names.to_vec())),
            exclude: None,
            layers: None,
            layer_index: Vec::new(),
        }
    }

    /// Builds the rule; `layers_pattern` entries are regex fragments, as in PEFT.
    pub fn new(
        targets: Targets,
        exclude: Option<Names>,
        layers: Option<Vec<u64>>,
        layers_pattern: &[String],
    ) -> Result<Self, String> {
        let layer_index = if layers_pattern.is_empty() {
            vec![Regex::new(r"^.*?\.[^.]*\.(?P<idx>\d+)\.").expect("a valid regex")]
        } else {
            layers_pattern
                .iter()
                .map(|p| {
                    Regex::new(&format!(r"^(?:^|.*?\.){p}\.(?P<idx>\d+)\."))
                        .map_err(|e| format!("layers_pattern {p:?} is not a regex tunekit can evaluate: {e}"))
                })
                .collect::<Result<_, _>>()?
        };
        Ok(Self { targets, exclude, layers, layer_index })
    }

    /// Whether PEFT puts an adapter on the module at `key`.
    pub fn matches(&self, key: &str) -> bool {
        match &self.exclude {
            Some(Names::Regex(r)) if r.is_match(key) => return false,
            Some(Names::List(list)) if Names::list_match(list, key) => return false,
            _ => {}
        }
        let list = match &self.targets {
            Targets::AllLinear => return true,
            Targets::Names(Names::Regex(r)) => return r.is_match(key),
            Targets::Names(Names::List(list)) => list,
        };
        if list.iter().any(|t| t == key) {
            return true; // an exact path is never filtered by layer
        }
        if !Names::list_match(list, key) {
            return false;
        }
        let Some(layers) = &self.layers else { return true };
        let index = self
            .layer_index
            .iter()
            .find_map(|r| r.captures(key))
            .and_then(|c| c.name("idx")?.as_str().parse::<u64>().ok());
        index.is_some_and(|i| layers.contains(&i))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn train_targeting_follows_peft_rules() {
        let t = Targeting::new(
            Targets::Names(Names::List(list(&["q_proj", "model.layers.0.mlp.up_proj"]))),
            None,
            Some(vec![2]),
            &[],
        )
        .unwrap();
        assert!(t.matches("model.layers.2.self_attn.q_proj"));
        assert!(!t.matches("model.layers.1.self_attn.q_proj"));
        assert!(t.matches("model.layers.0.mlp.up_proj"), "exact paths ignore layers_to_transform");
        assert!(!t.matches("model.layers.2.self_attn.xq_proj"), "a suffix must follow a dot");

        let pattern = Targeting::new(
            Targets::Names(Names::List(list(&["v_proj"]))),
            None,
            Some(vec![1]),
            &list(&["layers"]),
        )
        .unwrap();
        assert!(pattern.matches("model.layers.1.self_attn.v_proj"));
        let other = Targeting::new(
            Targets::Names(Names::List(list(&["v_proj"]))),
            None,
            Some(vec![1]),
            &list(&["blocks"]),
        )
        .unwrap();
        assert!(!other.matches("model.layers.1.self_attn.v_proj"), "no layer index found: not targeted");

        let regex = Targeting::new(
            Targets::Names(Names::Regex(full_match(r".*\.1\.self_attn\.q_proj", "target_modules").unwrap())),
            Some(Names::List(list(&["model.layers.1.self_attn.q_proj"]))),
            None,
            &[],
        )
        .unwrap();
        assert!(!regex.matches("model.layers.1.self_attn.q_proj"), "exclusion wins");
        assert!(full_match(r"(?<=a)b", "target_modules").unwrap_err().contains("look-around"));
    }
}
