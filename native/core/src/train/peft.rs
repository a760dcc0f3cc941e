//! Hugging Face PEFT adapter directories: `adapter_config.json` + `adapter_model.safetensors`
//! (LOCAL-LORA-FACTS §1.1–1.3, §9).
//!
//! Saved keys are `base_model.model.<module path>.lora_A.weight` (`[r, in]`) and
//! `....lora_B.weight` (`[out, r]`), f32, with safetensors metadata `{"format": "pt"}`.
//! Loading also accepts the in-memory form with `.default` before `.weight`, honours
//! `use_rslora`, and rejects variants we do not implement instead of silently mis-loading them.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use candle_core::{DType, Device, Tensor};
use serde_json::{json, Value};

use super::lora::{LoraConfig, DEFAULT_TARGET_MODULES};
use super::targeting::{full_match, Names, Targeting, Targets};
use super::{io_err, Result, TrainError};

pub const CONFIG_NAME: &str = "adapter_config.json";
pub const WEIGHTS_NAME: &str = "adapter_model.safetensors";
const PREFIX: &str = "base_model.model.";

/// One adapter's weights, keyed by the module path in the base model
/// (e.g. `model.layers.0.self_attn.q_proj`).
#[derive(Debug, Clone)]
pub struct AdapterWeights {
    /// `[r, in]`
    pub a: Tensor,
    /// `[out, r]`
    pub b: Tensor,
}

#[derive(Debug, Clone)]
pub struct PeftAdapter {
    pub config: LoraConfig,
    pub base_model_name_or_path: Option<String>,
    pub modules: BTreeMap<String, AdapterWeights>,
    /// The config's module selection when it uses more than a plain `target_modules` list
    /// (regex, `all-linear`, `exclude_modules`, `layers_to_transform`); None: the list rule.
    pub targeting: Option<Targeting>,
}

impl PeftAdapter {
    /// Whether PEFT puts an adapter on the module at `path` under this adapter's config.
    pub fn targets(&self, path: &str) -> bool {
        match &self.targeting {
            Some(t) => t.matches(path),
            None => self.config.targets(path),
        }
    }

    /// Checks that the weights are exactly those of the modules PEFT targets on this model:
    /// `targeted` lists each `(module path, A shape, B shape)` the model built for the config.
    /// PEFT would ignore extra weights and leave targeted modules without weights at their
    /// initial value; neither is what the adapter's author tuned, so both are refused.
    pub fn check_modules(&self, targeted: &[(String, Vec<usize>, Vec<usize>)]) -> Result<()> {
        let bad = |message: String| Err(TrainError::UnsupportedAdapter(message));
        if targeted.is_empty() {
            return bad(
                "adapter_config.json targets no module of this model (PEFT refuses such a config too)".into(),
            );
        }
        for path in self.modules.keys() {
            if targeted.iter().any(|(p, _, _)| p == path) {
                continue;
            }
            if path == "lm_head" || path.ends_with("embed_tokens") {
                return bad(format!(
                    "the adapter has LoRA weights for {path}; adapters on lm_head or embed_tokens are not \
                     supported (only the attention and MLP projections)"
                ));
            }
            if self.targets(path) {
                return bad(format!(
                    "the adapter has weights for {path}, which is not a projection of this model \
                     (is it the adapter of another base model?)"
                ));
            }
            return bad(format!(
                "adapter_model.safetensors has weights for {path}, which adapter_config.json does not target \
                 (PEFT would ignore them)"
            ));
        }
        for (path, a_dims, b_dims) in targeted {
            let Some(w) = self.modules.get(path) else {
                return bad(format!(
                    "adapter_config.json targets {path}, but adapter_model.safetensors has no weights for it"
                ));
            };
            if w.a.dims() != a_dims.as_slice() || w.b.dims() != b_dims.as_slice() {
                return bad(format!(
                    "{path}: the adapter's A {:?} / B {:?} do not fit this model's projection (A {a_dims:?}, B \
                     {b_dims:?}); is it the adapter of another base model?",
                    w.a.dims(),
                    w.b.dims()
                ));
            }
        }
        Ok(())
    }
}

/// The `adapter_config.json` PEFT writes for a plain LoRA on a causal LM (sorted keys).
pub fn config_json(cfg: &LoraConfig, base_model: Option<&str>) -> Value {
    let alpha = if cfg.alpha.fract() == 0.0 { json!(cfg.alpha as i64) } else { json!(cfg.alpha) };
    let mut targets = cfg.target_modules.clone();
    targets.sort();
    json!({
        "alpha_pattern": {},
        "auto_mapping": null,
        "base_model_name_or_path": base_model,
        "bias": "none",
        "fan_in_fan_out": false,
        "inference_mode": true,
        "init_lora_weights": true,
        "layers_pattern": null,
        "layers_to_transform": null,
        "lora_alpha": alpha,
        "lora_bias": false,
        "lora_dropout": cfg.dropout,
        "modules_to_save": null,
        "peft_type": "LORA",
        "r": cfg.r,
        "rank_pattern": {},
        "revision": null,
        "target_modules": targets,
        "task_type": "CAUSAL_LM",
        "use_dora": false,
        "use_rslora": cfg.use_rslora,
    })
}

/// Serialises the adapter directory's two files in memory: `(config JSON, safetensors)`.
pub fn to_bytes(adapter: &PeftAdapter) -> Result<(Vec<u8>, Vec<u8>)> {
    let config =
        serde_json::to_vec_pretty(&config_json(&adapter.config, adapter.base_model_name_or_path.as_deref()))
            .expect("a JSON value always serialises");
    let mut tensors: Vec<(String, Tensor)> = Vec::new();
    for (path, w) in &adapter.modules {
        let f32_cpu = |t: &Tensor| t.to_dtype(DType::F32)?.to_device(&Device::Cpu)?.contiguous();
        tensors.push((format!("{PREFIX}{path}.lora_A.weight"), f32_cpu(&w.a)?));
        tensors.push((format!("{PREFIX}{path}.lora_B.weight"), f32_cpu(&w.b)?));
    }
    Ok((config, serialize_tensors(tensors)?))
}

/// safetensors bytes with PEFT's header metadata `{"format": "pt"}`.
pub(crate) fn serialize_tensors(mut tensors: Vec<(String, Tensor)>) -> Result<Vec<u8>> {
    tensors.sort_by(|a, b| a.0.cmp(&b.0));
    let metadata = HashMap::from([("format".to_string(), "pt".to_string())]);
    ::safetensors::serialize(tensors.iter().map(|(k, t)| (k.as_str(), t)), Some(metadata))
        .map_err(|e| TrainError::Candle(candle_core::Error::Msg(format!("safetensors: {e}"))))
}

/// Writes a PEFT adapter directory. Each file is written atomically, the weights first and
/// `adapter_config.json` last, so a crash never leaves a config whose weights are missing or
/// partial (`adapter_config.json` present means the adapter is complete).
pub fn save(dir: &Path, adapter: &PeftAdapter) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(io_err(dir))?;
    let (config, weights) = to_bytes(adapter)?;
    super::checkpoint::write_file_atomic(&dir.join(WEIGHTS_NAME), &weights)?;
    super::checkpoint::write_file_atomic(&dir.join(CONFIG_NAME), &config)?;
    Ok(())
}

/// Reads a PEFT LoRA adapter directory.
pub fn load(dir: &Path, device: &Device) -> Result<PeftAdapter> {
    let cfg_path = dir.join(CONFIG_NAME);
    let text = std::fs::read_to_string(&cfg_path).map_err(io_err(&cfg_path))?;
    let v: Value =
        serde_json::from_str(&text).map_err(|source| TrainError::Json { path: cfg_path.clone(), source })?;
    let bad = |message: String| TrainError::BadFile { path: cfg_path.clone(), message };
    let unsupported =
        |message: String| TrainError::UnsupportedAdapter(format!("{}: {message}", cfg_path.display()));

    match v.get("peft_type").and_then(Value::as_str) {
        Some("LORA") => {}
        other => return Err(bad(format!("peft_type is {other:?}; only \"LORA\" adapters are supported"))),
    }
    // Variants that change the math: refuse rather than load something that computes wrong.
    for (key, default) in [
        ("use_dora", json!(false)),
        ("fan_in_fan_out", json!(false)),
        ("lora_bias", json!(false)),
        ("bias", json!("none")),
    ] {
        if let Some(val) = v.get(key) {
            if !val.is_null() && *val != default {
                return Err(unsupported(format!("{key} = {val} is not supported (only {default})")));
            }
        }
    }
    for key in ["rank_pattern", "alpha_pattern"] {
        if v.get(key).and_then(Value::as_object).is_some_and(|m| !m.is_empty()) {
            return Err(unsupported(format!("{key} (per-module rank/alpha) is not supported yet")));
        }
    }
    // Any of these set (not null / false / empty) means a LoRA variant or extra trained modules.
    for key in [
        "modules_to_save",
        "layer_replication",
        "target_parameters",
        "trainable_token_indices",
        "use_qalora",
        "use_bdlora",
        "alora_invocation_tokens",
        "arrow_config",
        "kasa_config",
        "velora_config",
        "monteclora_config",
    ] {
        if is_set(v.get(key)) {
            return Err(unsupported(format!("{key} = {} is not supported", v[key])));
        }
    }
    check_init(v.get("init_lora_weights")).map_err(unsupported)?;
    let r = v.get("r").and_then(Value::as_u64).ok_or_else(|| bad("missing integer \"r\"".into()))? as usize;
    let alpha = v.get("lora_alpha").and_then(Value::as_f64).unwrap_or(8.0);
    let targeting = targeting_of(&v).map_err(unsupported)?;
    let mut config = LoraConfig {
        r,
        alpha,
        dropout: v.get("lora_dropout").and_then(Value::as_f64).unwrap_or(0.0),
        use_rslora: v.get("use_rslora").and_then(Value::as_bool).unwrap_or(false),
        target_modules: match &targeting {
            (Targets::Names(Names::List(list)), None) => list.clone(),
            _ => Vec::new(), // filled in from the weights below
        },
    };
    let targeting = match targeting {
        (Targets::Names(Names::List(_)), None) => None, // the plain list rule
        (targets, Some((exclude, layers, patterns))) => {
            Some(Targeting::new(targets, exclude, layers, &patterns).map_err(unsupported)?)
        }
        (targets, None) => Some(Targeting::new(targets, None, None, &[]).map_err(unsupported)?),
    };

    let w_path = dir.join(WEIGHTS_NAME);
    if !w_path.exists() && dir.join("adapter_model.bin").exists() {
        return Err(TrainError::BadFile {
            path: dir.join("adapter_model.bin"),
            message: "pickle adapters are not supported; re-save with safe_serialization=True".into(),
        });
    }
    let tensors = candle_core::safetensors::load(&w_path, device)
        .map_err(|e| TrainError::BadFile { path: w_path.clone(), message: e.to_string() })?;
    let mut halves: BTreeMap<String, (Option<Tensor>, Option<Tensor>)> = BTreeMap::new();
    for (key, t) in tensors {
        let bad_key =
            |m: &str| TrainError::BadFile { path: w_path.clone(), message: format!("tensor {key}: {m}") };
        let rest =
            key.strip_prefix(PREFIX).ok_or_else(|| bad_key("expected the prefix base_model.model."))?;
        if let Some(part) = ["lm_head", "embed_tokens"].into_iter().find(|p| rest.split('.').any(|s| s == *p))
        {
            // LoRA on the head or embeddings, or their full weights saved beside the adapter
            // (PEFT's save_embedding_layers).
            return Err(TrainError::UnsupportedAdapter(format!(
                "{}: tensor {key}: the adapter changes {part}; adapters on lm_head or embed_tokens are not \
                 supported (only the attention and MLP projections)",
                w_path.display()
            )));
        }
        let rest = rest
            .strip_suffix(".weight")
            .ok_or_else(|| bad_key("not a LoRA weight (embedding adapters are not supported)"))?;
        let rest = rest.strip_suffix(".default").unwrap_or(rest);
        let (module, is_a) = if let Some(m) = rest.strip_suffix(".lora_A") {
            (m, true)
        } else if let Some(m) = rest.strip_suffix(".lora_B") {
            (m, false)
        } else {
            return Err(bad_key("expected lora_A or lora_B"));
        };
        let t = t.to_dtype(DType::F32).map_err(TrainError::Candle)?;
        let entry = halves.entry(module.to_string()).or_default();
        if is_a {
            entry.0 = Some(t)
        } else {
            entry.1 = Some(t)
        }
    }
    let mut modules = BTreeMap::new();
    for (module, pair) in halves {
        let missing = |which: &str| TrainError::BadFile {
            path: w_path.clone(),
            message: format!("{module} has no {which}"),
        };
        let a = pair.0.ok_or_else(|| missing("lora_A"))?;
        let b = pair.1.ok_or_else(|| missing("lora_B"))?;
        let (Ok((ra, _)), Ok((_, rb))) = (a.dims2(), b.dims2()) else {
            return Err(TrainError::BadFile {
                path: w_path.clone(),
                message: format!("{module}: A {:?} / B {:?} must be matrices", a.dims(), b.dims()),
            });
        };
        if ra != r || rb != r {
            return Err(TrainError::BadFile {
                path: w_path.clone(),
                message: format!("{module}: A {:?} / B {:?} do not have rank r = {r}", a.dims(), b.dims()),
            });
        }
        modules.insert(module, AdapterWeights { a, b });
    }
    if config.target_modules.is_empty() {
        // A regex or all-linear config: name the projections the weights cover (informational;
        // `targeting` decides what is targeted).
        let mut names: Vec<String> =
            modules.keys().filter_map(|m| m.rsplit('.').next().map(String::from)).collect();
        names.sort();
        names.dedup();
        if names.is_empty() {
            names = DEFAULT_TARGET_MODULES.iter().map(|s| s.to_string()).collect();
        }
        config.target_modules = names;
    }
    Ok(PeftAdapter {
        config,
        base_model_name_or_path: v.get("base_model_name_or_path").and_then(Value::as_str).map(String::from),
        modules,
        targeting,
    })
}

/// True when a config value is set: not absent, null, false or empty.
fn is_set(value: Option<&Value>) -> bool {
    match value {
        None | Some(Value::Null) | Some(Value::Bool(false)) => false,
        Some(Value::Array(a)) => !a.is_empty(),
        Some(Value::Object(o)) => !o.is_empty(),
        Some(Value::String(s)) => !s.is_empty(),
        Some(_) => true,
    }
}

/// Refuses initialisations after which the saved weights do not describe the model on the
/// original base. PiSSA, CorDA, OLoRA and LoRA-GA subtract the initial adapter from the base
/// weights, LoftQ replaces them with a quantised approximation; PEFT redoes that change when it
/// loads such an adapter. The other inits (True, False, gaussian, eva, orthogonal, mica) leave the
/// base alone, and once the weights are loaded the adapter is a plain LoRA.
fn check_init(init: Option<&Value>) -> std::result::Result<(), String> {
    let name = match init {
        None | Some(Value::Null) | Some(Value::Bool(_)) => return Ok(()),
        Some(Value::String(s)) => s.as_str(),
        Some(other) => return Err(format!("init_lora_weights = {other} is not a known initialisation")),
    };
    let lower = name.to_lowercase();
    if matches!(lower.as_str(), "gaussian" | "eva" | "orthogonal" | "mica") {
        return Ok(());
    }
    let changes_base =
        name.starts_with("pissa") || name.starts_with("corda") || lower == "olora" || name == "lora_ga";
    if changes_base {
        return Err(format!(
            "init_lora_weights = \"{name}\": this initialisation subtracts the initial adapter from the base \
             weights, so the saved weights only compute the tuned model on that changed base. Convert it to a plain \
             LoRA with PEFT, which needs the adapter as saved right after initialisation: \
             model.save_pretrained(out_dir, path_initial_model_for_weight_conversion=\"<initial adapter dir>\"), \
             then use out_dir"
        ));
    }
    if name == "loftq" {
        return Err(
            "init_lora_weights = \"loftq\": LoftQ replaced the base weights with their quantised approximation, and \
             the adapter corrects that base, not the original one. Merge it into the base with PEFT \
             (model.merge_and_unload().save_pretrained(dir)) and load the merged model instead"
                .into(),
        );
    }
    Err(format!("init_lora_weights = \"{name}\" is not an initialisation PEFT knows"))
}

type Selection = (Option<Names>, Option<Vec<u64>>, Vec<String>);

/// `target_modules`, and when any is set, `exclude_modules`, `layers_to_transform` and
/// `layers_pattern` (PEFT's own refusals included).
fn targeting_of(v: &Value) -> std::result::Result<(Targets, Option<Selection>), String> {
    let strings = |key: &str, value: &Value| -> std::result::Result<Vec<String>, String> {
        value
            .as_array()
            .map(|a| a.iter().map(|s| s.as_str().map(String::from)).collect::<Option<Vec<_>>>())
            .flatten()
            .ok_or_else(|| format!("{key} must be a string or a list of strings, got {value}"))
    };
    let targets = match v.get("target_modules") {
        Some(Value::String(s)) if s.to_lowercase() == "all-linear" => Targets::AllLinear,
        Some(Value::String(s)) => Targets::Names(Names::Regex(full_match(s, "target_modules")?)),
        Some(list @ Value::Array(_)) if !strings("target_modules", list)?.is_empty() => {
            Targets::Names(Names::List(strings("target_modules", list)?))
        }
        _ => return Err("adapter_config.json has no target_modules".into()),
    };
    let exclude = match v.get("exclude_modules") {
        Some(Value::String(s)) if !s.is_empty() => Some(Names::Regex(full_match(s, "exclude_modules")?)),
        Some(list @ Value::Array(a)) if !a.is_empty() => Some(Names::List(strings("exclude_modules", list)?)),
        None | Some(Value::Null) | Some(Value::String(_)) | Some(Value::Array(_)) => None,
        Some(other) => {
            return Err(format!("exclude_modules must be a string or a list of strings, got {other}"))
        }
    };
    let layers = match v.get("layers_to_transform") {
        None | Some(Value::Null) => None,
        Some(Value::Array(a)) if a.is_empty() => None,
        Some(Value::Array(a)) => {
            Some(a.iter().map(Value::as_u64).collect::<Option<Vec<u64>>>().ok_or_else(|| {
                format!("layers_to_transform must hold layer indexes, got {}", v["layers_to_transform"])
            })?)
        }
        Some(n) => Some(vec![n.as_u64().ok_or_else(|| {
            format!("layers_to_transform must be a layer index or a list of them, got {n}")
        })?]),
    };
    let patterns = match v.get("layers_pattern") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::String(s)) if s.is_empty() => Vec::new(),
        Some(Value::String(s)) => vec![s.clone()],
        Some(list) => strings("layers_pattern", list)?,
    };
    // PEFT's LoraConfig refuses these combinations; so does tunekit.
    let regex_targets = matches!(targets, Targets::Names(Names::Regex(_)) | Targets::AllLinear)
        && matches!(v.get("target_modules"), Some(Value::String(_)));
    if regex_targets && !matches!(v.get("layers_to_transform"), None | Some(Value::Null)) {
        return Err(
            "layers_to_transform cannot be used when target_modules is a string (PEFT refuses it too)".into(),
        );
    }
    if regex_targets && !matches!(v.get("layers_pattern"), None | Some(Value::Null)) {
        return Err(
            "layers_pattern cannot be used when target_modules is a string (PEFT refuses it too)".into()
        );
    }
    if !patterns.is_empty() && matches!(v.get("layers_to_transform"), None | Some(Value::Null)) {
        return Err("layers_pattern needs layers_to_transform (PEFT refuses it too)".into());
    }
    let plain = exclude.is_none() && layers.is_none();
    Ok((targets, (!plain).then_some((exclude, layers, patterns))))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::testutil::assert_close;

    fn tmp(name: &str) -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("tunekit-peft-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    #[test]
    fn train_peft_roundtrip_keys_and_config() -> Result<()> {
        let dev = Device::Cpu;
        let cfg = LoraConfig { r: 2, alpha: 16.0, dropout: 0.05, use_rslora: true, ..LoraConfig::default() };
        let mut modules = BTreeMap::new();
        for p in ["model.layers.0.self_attn.q_proj", "model.layers.1.mlp.down_proj"] {
            modules.insert(
                p.to_string(),
                AdapterWeights {
                    a: Tensor::randn(0f32, 1., (2, 6), &dev)?,
                    b: Tensor::randn(0f32, 1., (4, 2), &dev)?,
                },
            );
        }
        let adapter = PeftAdapter {
            config: cfg.clone(),
            base_model_name_or_path: Some("tiny".into()),
            modules,
            targeting: None,
        };
        let dir = tmp("roundtrip");
        save(&dir, &adapter)?;

        let raw = std::fs::read(dir.join(WEIGHTS_NAME)).unwrap();
        let st = ::safetensors::SafeTensors::deserialize(&raw).unwrap();
        let mut names: Vec<String> = st.names().into_iter().map(String::from).collect();
        names.sort();
        assert_eq!(names[0], "base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight");
        assert_eq!(names[3], "base_model.model.model.layers.1.mlp.down_proj.lora_B.weight");
        let (_, meta) = ::safetensors::SafeTensors::read_metadata(&raw).unwrap();
        assert_eq!(meta.metadata().as_ref().unwrap().get("format").map(String::as_str), Some("pt"));
        let json: Value = serde_json::from_slice(&std::fs::read(dir.join(CONFIG_NAME)).unwrap()).unwrap();
        assert_eq!(json["lora_alpha"], json!(16));
        assert_eq!(json["peft_type"], json!("LORA"));
        assert_eq!(json["task_type"], json!("CAUSAL_LM"));

        let back = load(&dir, &dev)?;
        assert_eq!(back.config.r, 2);
        assert!(back.config.use_rslora);
        assert_eq!(back.config.scaling(), cfg.scaling());
        assert_eq!(back.base_model_name_or_path.as_deref(), Some("tiny"));
        for (k, w) in &adapter.modules {
            assert_close(&back.modules[k].a, &w.a, 0.0)?;
            assert_close(&back.modules[k].b, &w.b, 0.0)?;
        }
        std::fs::remove_dir_all(&dir).unwrap();
        Ok(())
    }

    #[test]
    fn train_peft_rejects_unsupported_variants() -> Result<()> {
        let dev = Device::Cpu;
        let adapter = PeftAdapter {
            config: LoraConfig { r: 1, ..LoraConfig::default() },
            base_model_name_or_path: None,
            modules: BTreeMap::new(),
            targeting: None,
        };
        let dir = tmp("variants");
        save(&dir, &adapter)?;
        let path = dir.join(CONFIG_NAME);
        let orig: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        for (key, val) in
            [("use_dora", json!(true)), ("peft_type", json!("IA3")), ("rank_pattern", json!({"q_proj": 4}))]
        {
            let mut v = orig.clone();
            v[key] = val;
            std::fs::write(&path, serde_json::to_vec(&v).unwrap()).unwrap();
            let err = load(&dir, &dev).unwrap_err().to_string();
            assert!(err.contains(key), "{err}");
        }
        std::fs::remove_dir_all(&dir).unwrap();
        Ok(())
    }
}
