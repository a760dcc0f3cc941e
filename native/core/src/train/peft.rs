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

use super::lora::LoraConfig;
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

/// Writes a PEFT adapter directory (files are fsynced; see `checkpoint` for atomic dirs).
pub fn save(dir: &Path, adapter: &PeftAdapter) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(io_err(dir))?;
    let (config, weights) = to_bytes(adapter)?;
    super::checkpoint::write_file_synced(&dir.join(CONFIG_NAME), &config)?;
    super::checkpoint::write_file_synced(&dir.join(WEIGHTS_NAME), &weights)?;
    Ok(())
}

/// Reads a PEFT LoRA adapter directory.
pub fn load(dir: &Path, device: &Device) -> Result<PeftAdapter> {
    let cfg_path = dir.join(CONFIG_NAME);
    let text = std::fs::read_to_string(&cfg_path).map_err(io_err(&cfg_path))?;
    let v: Value =
        serde_json::from_str(&text).map_err(|source| TrainError::Json { path: cfg_path.clone(), source })?;
    let bad = |message: String| TrainError::BadFile { path: cfg_path.clone(), message };

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
                return Err(bad(format!("{key} = {val} is not supported (only {default})")));
            }
        }
    }
    for key in ["rank_pattern", "alpha_pattern"] {
        if v.get(key).and_then(Value::as_object).is_some_and(|m| !m.is_empty()) {
            return Err(bad(format!("{key} (per-module rank/alpha) is not supported yet")));
        }
    }
    // Any of these set (not null / false / empty) means a LoRA variant or extra trained
    // modules. Init-only options (eva, corda, loftq, ...) do not matter once weights exist.
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
        let set = match v.get(key) {
            None | Some(Value::Null) | Some(Value::Bool(false)) => false,
            Some(Value::Array(a)) => !a.is_empty(),
            Some(Value::Object(o)) => !o.is_empty(),
            Some(_) => true,
        };
        if set {
            return Err(bad(format!("{key} = {} is not supported", v[key])));
        }
    }
    let r = v.get("r").and_then(Value::as_u64).ok_or_else(|| bad("missing integer \"r\"".into()))? as usize;
    let alpha = v.get("lora_alpha").and_then(Value::as_f64).unwrap_or(8.0);
    let target_modules = match v.get("target_modules") {
        Some(Value::Array(a)) => a.iter().filter_map(|s| s.as_str().map(String::from)).collect(),
        Some(Value::String(s)) => vec![s.clone()],
        _ => Vec::new(),
    };
    let config = LoraConfig {
        r,
        alpha,
        dropout: v.get("lora_dropout").and_then(Value::as_f64).unwrap_or(0.0),
        use_rslora: v.get("use_rslora").and_then(Value::as_bool).unwrap_or(false),
        target_modules,
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
        let (ra, _) = a.dims2()?;
        let (_, rb) = b.dims2()?;
        if ra != r || rb != r {
            return Err(TrainError::BadFile {
                path: w_path.clone(),
                message: format!("{module}: A {:?} / B {:?} do not have rank r = {r}", a.dims(), b.dims()),
            });
        }
        modules.insert(module, AdapterWeights { a, b });
    }
    Ok(PeftAdapter {
        config,
        base_model_name_or_path: v.get("base_model_name_or_path").and_then(Value::as_str).map(String::from),
        modules,
    })
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
        let adapter =
            PeftAdapter { config: cfg.clone(), base_model_name_or_path: Some("tiny".into()), modules };
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
