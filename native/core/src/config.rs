//! `config.json` → one architecture-neutral [`DecoderConfig`].
//!
//! Every supported family is the same pre-norm decoder with switches (biases, q/k norm,
//! norm offset, activation, embedding scale, per-layer sliding window, rope variant), so
//! adding an architecture (Gemma 3 next) means filling in these fields from its keys rather
//! than writing a new model.

use std::path::Path;

use serde_json::{Map, Value};

use crate::error::{Error, LoadErrorKind, Result};

/// `model_type` values this build implements, with the `architectures` class name that
/// goes with each. Listed in errors so users see what would work.
pub const SUPPORTED: &[(&str, &str)] = &[
    ("llama", "LlamaForCausalLM"),
    ("mistral", "MistralForCausalLM"),
    ("qwen2", "Qwen2ForCausalLM"),
    ("qwen3", "Qwen3ForCausalLM"),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    Llama,
    Mistral,
    Qwen2,
    Qwen3,
}

impl Family {
    pub fn model_type(self) -> &'static str {
        match self {
            Self::Llama => "llama",
            Self::Mistral => "mistral",
            Self::Qwen2 => "qwen2",
            Self::Qwen3 => "qwen3",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activation {
    Silu,
    /// `gelu_pytorch_tanh` (Gemma).
    GeluTanh,
}

#[derive(Debug, Clone, PartialEq)]
pub enum RopeScaling {
    None,
    /// Positions divided by `factor` (`rope_type: "linear"`).
    Linear {
        factor: f64,
    },
    /// Llama 3.x frequency-band scaling.
    Llama3 {
        factor: f64,
        low_freq_factor: f64,
        high_freq_factor: f64,
        original_max_position_embeddings: f64,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct DecoderConfig {
    pub family: Family,
    pub hidden_size: usize,
    pub intermediate_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub num_key_value_heads: usize,
    pub head_dim: usize,
    pub vocab_size: usize,
    pub max_position_embeddings: usize,
    pub rms_norm_eps: f64,
    pub rope_theta: f64,
    pub rope_scaling: RopeScaling,
    pub tie_word_embeddings: bool,
    /// Bias on q/k/v projections (Qwen2; Llama's `attention_bias`).
    pub qkv_bias: bool,
    /// Bias on o_proj (Llama's `attention_bias` sets both; Qwen2 has none here).
    pub o_bias: bool,
    pub mlp_bias: bool,
    /// RMSNorm over head_dim on q and k before rope (Qwen3, Gemma 3).
    pub qk_norm: bool,
    /// Norm weights applied as `(1 + w)` (Gemma) instead of `w`.
    pub norm_weight_offset: bool,
    pub activation: Activation,
    /// Embeddings multiplied by this (Gemma: sqrt(hidden)); None for the others.
    pub embed_scale: Option<f64>,
    /// Attention score scale; `head_dim^-0.5` unless the architecture says otherwise.
    pub attn_scale: f64,
    /// Per layer: how many most-recent keys a query may see, or None for full causal.
    pub sliding_window: Vec<Option<usize>>,
    pub bos_token_id: Option<u32>,
    /// From config.json; generation_config.json may add more (see `model::Model`).
    pub eos_token_ids: Vec<u32>,
}

struct Keys<'a> {
    map: &'a Map<String, Value>,
    path: &'a Path,
}

impl<'a> Keys<'a> {
    fn err(&self, message: String) -> Error {
        Error::load(LoadErrorKind::InvalidConfig, self.path, message)
    }

    fn present(&self, key: &str) -> Option<&'a Value> {
        self.map.get(key).filter(|v| !v.is_null())
    }

    fn usize(&self, key: &str) -> Result<usize> {
        self.opt_usize(key)?.ok_or_else(|| self.err(format!("`{key}` is required")))
    }

    fn opt_usize(&self, key: &str) -> Result<Option<usize>> {
        match self.present(key) {
            None => Ok(None),
            Some(v) => v
                .as_u64()
                .and_then(|n| usize::try_from(n).ok())
                .map(Some)
                .ok_or_else(|| self.err(format!("`{key}` must be a non-negative integer, got {v}"))),
        }
    }

    fn f64_or(&self, key: &str, default: f64) -> Result<f64> {
        match self.present(key) {
            None => Ok(default),
            Some(v) => v.as_f64().ok_or_else(|| self.err(format!("`{key}` must be a number, got {v}"))),
        }
    }

    fn bool_or(&self, key: &str, default: bool) -> Result<bool> {
        match self.present(key) {
            None => Ok(default),
            Some(v) => v.as_bool().ok_or_else(|| self.err(format!("`{key}` must be true or false, got {v}"))),
        }
    }

    fn str(&self, key: &str) -> Option<&'a str> {
        self.present(key).and_then(|v| v.as_str())
    }

    /// `eos_token_id` may be an integer or a list of integers.
    fn id_list(&self, key: &str) -> Result<Vec<u32>> {
        id_list(self.present(key))
            .ok_or_else(|| self.err(format!("`{key}` must be a token id or a list of ids")))
    }
}

/// Parses a token id or a list of ids; None if the shape is wrong; empty for absent.
pub(crate) fn id_list(value: Option<&Value>) -> Option<Vec<u32>> {
    let one = |v: &Value| v.as_u64().and_then(|n| u32::try_from(n).ok());
    match value {
        None | Some(Value::Null) => Some(Vec::new()),
        Some(Value::Array(items)) => items.iter().map(one).collect(),
        Some(v) => one(v).map(|id| vec![id]),
    }
}

fn unsupported(path: &Path, what: &str) -> Error {
    let list = SUPPORTED.iter().map(|(t, a)| format!("{t} ({a})")).collect::<Vec<_>>().join(", ");
    Error::load(
        LoadErrorKind::UnsupportedArchitecture,
        path,
        format!("unsupported architecture {what}; supported: {list}"),
    )
}

fn family_of(keys: &Keys<'_>) -> Result<Family> {
    let from_type = |t: &str| match t {
        "llama" => Some(Family::Llama),
        "mistral" => Some(Family::Mistral),
        "qwen2" => Some(Family::Qwen2),
        "qwen3" => Some(Family::Qwen3),
        _ => None,
    };
    if let Some(t) = keys.str("model_type") {
        return from_type(t).ok_or_else(|| unsupported(keys.path, &format!("model_type `{t}`")));
    }
    // Some older exports omit model_type; fall back to the class name.
    let arch = keys
        .present("architectures")
        .and_then(|v| v.as_array())
        .and_then(|a| a.first())
        .and_then(|v| v.as_str())
        .ok_or_else(|| keys.err("neither `model_type` nor `architectures` is set".into()))?;
    SUPPORTED
        .iter()
        .find(|(_, a)| *a == arch)
        .and_then(|(t, _)| from_type(t))
        .ok_or_else(|| unsupported(keys.path, &format!("`{arch}`")))
}

/// Reads the rope base and scaling from either transformers 5's `rope_parameters` or the
/// older top-level `rope_theta` + `rope_scaling` (what most Hub checkpoints still carry).
fn rope_of(keys: &Keys<'_>, default_theta: f64) -> Result<(f64, RopeScaling)> {
    let (theta, params) = match keys.present("rope_parameters") {
        Some(Value::Object(p)) => {
            let theta = match p.get("rope_theta") {
                Some(v) => v
                    .as_f64()
                    .ok_or_else(|| keys.err("`rope_parameters.rope_theta` must be a number".into()))?,
                None => keys.f64_or("rope_theta", default_theta)?,
            };
            (theta, Some(p))
        }
        Some(other) => return Err(keys.err(format!("`rope_parameters` must be an object, got {other}"))),
        None => {
            let theta = keys.f64_or("rope_theta", default_theta)?;
            match keys.present("rope_scaling") {
                Some(Value::Object(p)) => (theta, Some(p)),
                Some(other) => {
                    return Err(keys.err(format!("`rope_scaling` must be an object or null, got {other}")))
                }
                None => (theta, None),
            }
        }
    };
    let Some(p) = params else { return Ok((theta, RopeScaling::None)) };
    let kind = p.get("rope_type").or_else(|| p.get("type")).and_then(|v| v.as_str()).unwrap_or("default");
    let num = |k: &str| -> Result<f64> {
        p.get(k)
            .and_then(|v| v.as_f64())
            .ok_or_else(|| keys.err(format!("rope scaling `{kind}` needs a numeric `{k}`")))
    };
    let scaling = match kind {
        "default" => RopeScaling::None,
        "linear" => RopeScaling::Linear { factor: num("factor")? },
        "llama3" => RopeScaling::Llama3 {
            factor: num("factor")?,
            low_freq_factor: num("low_freq_factor")?,
            high_freq_factor: num("high_freq_factor")?,
            original_max_position_embeddings: num("original_max_position_embeddings")?,
        },
        other => {
            return Err(Error::load(
                LoadErrorKind::UnsupportedArchitecture,
                keys.path,
                format!("rope scaling type `{other}` is not supported; supported: default, linear, llama3"),
            ))
        }
    };
    Ok((theta, scaling))
}

impl DecoderConfig {
    /// Parses `config.json` at `path`.
    pub fn from_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, &e))?;
        let value: Value = serde_json::from_str(&text).map_err(|e| {
            Error::load(LoadErrorKind::InvalidJson, path, format!("config.json is not valid JSON: {e}"))
        })?;
        Self::from_json(&value, path)
    }

    pub fn from_json(value: &Value, path: &Path) -> Result<Self> {
        let map = value.as_object().ok_or_else(|| {
            Error::load(LoadErrorKind::InvalidJson, path, "config.json is not a JSON object")
        })?;
        let keys = Keys { map, path };
        let family = family_of(&keys)?;

        let hidden_size = keys.usize("hidden_size")?;
        let num_attention_heads = keys.usize("num_attention_heads")?;
        let num_key_value_heads = keys.opt_usize("num_key_value_heads")?.unwrap_or(num_attention_heads);
        if hidden_size == 0 || num_attention_heads == 0 || num_key_value_heads == 0 {
            return Err(keys.err("hidden_size and head counts must be positive".into()));
        }
        if num_attention_heads % num_key_value_heads != 0 {
            return Err(keys.err(format!(
                "num_attention_heads ({num_attention_heads}) must be a multiple of num_key_value_heads ({num_key_value_heads})"
            )));
        }
        let head_dim = match keys.opt_usize("head_dim")? {
            Some(d) => d,
            None if hidden_size % num_attention_heads == 0 => hidden_size / num_attention_heads,
            None => {
                return Err(keys.err(format!(
                    "hidden_size ({hidden_size}) is not divisible by num_attention_heads ({num_attention_heads}) and no head_dim is given"
                )))
            }
        };
        if head_dim == 0 || head_dim % 2 != 0 {
            return Err(keys.err(format!(
                "head_dim must be a positive even number for rotary embeddings, got {head_dim}"
            )));
        }
        let num_hidden_layers = keys.usize("num_hidden_layers")?;
        // Bounds far above any real checkpoint. Without them a corrupted config.json could
        // make the loader allocate per-layer state for 10^12 layers or overflow `heads * dim`
        // before the tensor shape checks get a chance to reject it.
        for (key, value, limit) in [
            ("hidden_size", hidden_size, 1 << 20),
            ("num_attention_heads", num_attention_heads, 1 << 14),
            ("num_key_value_heads", num_key_value_heads, 1 << 14),
            ("head_dim", head_dim, 1 << 16),
            ("num_hidden_layers", num_hidden_layers, 1 << 12),
        ] {
            if value > limit {
                return Err(keys.err(format!("`{key}` = {value} is implausibly large (limit {limit})")));
            }
        }
        let default_theta = match family {
            Family::Qwen2 | Family::Qwen3 => 1_000_000.0,
            _ => 10_000.0,
        };
        let (rope_theta, rope_scaling) = rope_of(&keys, default_theta)?;

        let hidden_act = keys.str("hidden_act").unwrap_or("silu");
        let activation = match hidden_act {
            "silu" | "swish" => Activation::Silu,
            "gelu_pytorch_tanh" => Activation::GeluTanh,
            other => return Err(keys.err(format!("hidden_act `{other}` is not supported (expected silu)"))),
        };

        let attention_bias = keys.bool_or("attention_bias", false)?;
        let (qkv_bias, o_bias) = match family {
            // Qwen2 hard-codes bias on q/k/v and none on o_proj, whatever the config says.
            Family::Qwen2 => (true, false),
            // Qwen3's attention_bias covers q/k/v/o like Llama's.
            _ => (attention_bias, attention_bias),
        };

        let sliding_window = sliding_windows(&keys, family, num_hidden_layers)?;
        let eos_token_ids = keys.id_list("eos_token_id")?;
        let bos_token_id = keys.id_list("bos_token_id")?.first().copied();

        let intermediate_size = keys.usize("intermediate_size")?;
        let vocab_size = keys.usize("vocab_size")?;
        if intermediate_size == 0 || intermediate_size > 1 << 22 || vocab_size == 0 || vocab_size > 1 << 24 {
            return Err(keys.err(format!(
                "intermediate_size ({intermediate_size}) and vocab_size ({vocab_size}) must be positive and plausible"
            )));
        }
        Ok(Self {
            family,
            hidden_size,
            intermediate_size,
            num_hidden_layers,
            num_attention_heads,
            num_key_value_heads,
            head_dim,
            vocab_size,
            max_position_embeddings: keys.opt_usize("max_position_embeddings")?.unwrap_or(4096),
            rms_norm_eps: keys.f64_or("rms_norm_eps", 1e-6)?,
            rope_theta,
            rope_scaling,
            tie_word_embeddings: keys.bool_or("tie_word_embeddings", false)?,
            qkv_bias,
            o_bias,
            mlp_bias: keys.bool_or("mlp_bias", false)?,
            qk_norm: family == Family::Qwen3,
            norm_weight_offset: false,
            activation,
            embed_scale: None,
            attn_scale: 1.0 / (head_dim as f64).sqrt(),
            sliding_window,
            bos_token_id,
            eos_token_ids,
        })
    }

    pub fn kv_groups(&self) -> usize {
        self.num_attention_heads / self.num_key_value_heads
    }
}

/// Per-layer attention windows, following transformers:
/// - mistral: `sliding_window` (null = full) on every layer;
/// - qwen2/qwen3: only with `use_sliding_window`, from `layer_types` when given, else layers
///   at index >= `max_window_layers`;
/// - llama: never.
fn sliding_windows(keys: &Keys<'_>, family: Family, layers: usize) -> Result<Vec<Option<usize>>> {
    let window = keys.opt_usize("sliding_window")?;
    let windows = match family {
        Family::Llama => vec![None; layers],
        Family::Mistral => vec![window; layers],
        Family::Qwen2 | Family::Qwen3 => {
            if !keys.bool_or("use_sliding_window", false)? || window.is_none() {
                vec![None; layers]
            } else if let Some(types) = keys.present("layer_types").and_then(|v| v.as_array()) {
                if types.len() != layers {
                    return Err(
                        keys.err(format!("`layer_types` has {} entries for {layers} layers", types.len()))
                    );
                }
                types
                    .iter()
                    .map(|t| if t.as_str() == Some("sliding_attention") { window } else { None })
                    .collect()
            } else {
                let first = keys.opt_usize("max_window_layers")?.unwrap_or(layers);
                (0..layers).map(|i| if i >= first { window } else { None }).collect()
            }
        }
    };
    if windows.contains(&Some(0)) {
        return Err(keys.err("`sliding_window` must be positive".into()));
    }
    Ok(windows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(v: Value) -> Result<DecoderConfig> {
        DecoderConfig::from_json(&v, Path::new("config.json"))
    }

    fn base() -> Value {
        json!({"model_type": "llama", "hidden_size": 64, "intermediate_size": 96, "num_hidden_layers": 2,
               "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 320})
    }

    #[test]
    fn unsupported_model_type_names_it_and_lists_supported() {
        let mut v = base();
        v["model_type"] = json!("gpt_neox");
        let err = parse(v).unwrap_err();
        assert_eq!(err.load_kind(), Some(LoadErrorKind::UnsupportedArchitecture));
        let msg = err.to_string();
        assert!(msg.contains("gpt_neox") && msg.contains("qwen3 (Qwen3ForCausalLM)"), "{msg}");
    }

    #[test]
    fn architectures_is_the_fallback() {
        let mut v = base();
        v.as_object_mut().unwrap().remove("model_type");
        v["architectures"] = json!(["Qwen2ForCausalLM"]);
        assert_eq!(parse(v.clone()).unwrap().family, Family::Qwen2);
        v["architectures"] = json!(["FalconForCausalLM"]);
        assert!(parse(v).unwrap_err().to_string().contains("FalconForCausalLM"));
    }

    #[test]
    fn reads_legacy_and_v5_rope_keys_alike() {
        let mut legacy = base();
        legacy["rope_theta"] = json!(500000.0);
        legacy["rope_scaling"] = json!({"type": "llama3", "factor": 32.0, "low_freq_factor": 1.0,
            "high_freq_factor": 4.0, "original_max_position_embeddings": 8192});
        let mut v5 = base();
        v5["rope_parameters"] = json!({"rope_type": "llama3", "rope_theta": 500000.0, "factor": 32.0,
            "low_freq_factor": 1.0, "high_freq_factor": 4.0, "original_max_position_embeddings": 8192});
        let (a, b) = (parse(legacy).unwrap(), parse(v5).unwrap());
        assert_eq!(a.rope_theta, 500000.0);
        assert_eq!(a.rope_scaling, b.rope_scaling);
        assert!(matches!(a.rope_scaling, RopeScaling::Llama3 { factor, .. } if factor == 32.0));
    }

    #[test]
    fn rejects_unsupported_rope_and_bad_heads() {
        let mut v = base();
        v["rope_scaling"] = json!({"rope_type": "yarn", "factor": 4.0});
        assert!(parse(v).unwrap_err().to_string().contains("yarn"));
        let mut v = base();
        v["num_key_value_heads"] = json!(3);
        assert_eq!(parse(v).unwrap_err().load_kind(), Some(LoadErrorKind::InvalidConfig));
        let mut v = base();
        v["hidden_size"] = json!("64");
        assert!(parse(v).unwrap_err().to_string().contains("hidden_size"));
    }

    #[test]
    fn qwen2_windows_follow_max_window_layers() {
        let mut v = base();
        v["model_type"] = json!("qwen2");
        v["use_sliding_window"] = json!(true);
        v["sliding_window"] = json!(16);
        v["max_window_layers"] = json!(1);
        let c = parse(v).unwrap();
        assert_eq!(c.sliding_window, vec![None, Some(16)]);
        assert!(c.qkv_bias && !c.o_bias);
    }
}
