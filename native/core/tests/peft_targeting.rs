//! PEFT adapters that use PEFT's module-selection rules (layers_to_transform, layers_pattern,
//! exclude_modules, regex target_modules, "all-linear") or initialisations that change the
//! base weights, against what Python PEFT 0.21 computes with them
//! (`scripts/fixtures/make_peft_targeting_fixtures.py` wrote test/fixtures/train/peft-targeting).
//! Every case either reproduces PEFT's logits on exactly PEFT's modules, or is refused with a
//! message naming the reason.

use std::path::{Path, PathBuf};

use candle_core::Device;
use serde_json::Value;
use tunekit_core::train::peft;
use tunekit_core::train::session::LoraModel;
use tunekit_core::Model;

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../test/fixtures")
}

/// PEFT's logits for a case: the token ids they are for and `[n, vocab]` logits.
fn peft_logits(case: &Path) -> (Vec<u32>, candle_core::Tensor) {
    let expected = candle_core::safetensors::load(case.join("expected.safetensors"), &Device::Cpu).unwrap();
    let ids = expected["input_ids"].flatten_all().unwrap().to_vec1::<i64>().unwrap();
    (ids.iter().map(|&i| i as u32).collect(), expected["logits"].clone())
}

/// Max |a − b|.
fn max_diff(a: &candle_core::Tensor, b: &candle_core::Tensor) -> f32 {
    (a - b).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap()
}

/// Loads the case's adapter onto its model the way `loadModelWithAdapter` does.
fn apply(case: &Path, model: &str) -> Result<(LoraModel, Model), String> {
    let base = Model::load(fixtures().join("models").join(model)).map_err(|e| e.to_string())?;
    let adapter = peft::load(&case.join("adapter"), &Device::Cpu).map_err(|e| e.to_string())?;
    let lora = LoraModel::from_peft(base.decoder.clone(), &adapter).map_err(|e| e.to_string())?;
    Ok((lora, base))
}

#[test]
fn peft_targeting_cases_match_peft_or_are_refused_by_name() {
    let root = fixtures().join("train/peft-targeting");
    let mut cases: Vec<PathBuf> =
        std::fs::read_dir(&root).unwrap().map(|e| e.unwrap().path()).filter(|p| p.is_dir()).collect();
    cases.sort();
    let (mut matched, mut refused) = (0, 0);
    for case in &cases {
        let name = case.file_name().unwrap().to_string_lossy().to_string();
        let spec: Value =
            serde_json::from_str(&std::fs::read_to_string(case.join("case.json")).unwrap()).unwrap();
        let model = spec["model"].as_str().unwrap();
        match spec["expect"].as_str().unwrap() {
            "refuse" => {
                let err = match apply(case, model) {
                    Ok(_) => panic!("{name}: loaded, but PEFT computes it differently (must be refused)"),
                    Err(e) => e,
                };
                for word in spec["refuse"].as_array().unwrap() {
                    let word = word.as_str().unwrap();
                    assert!(err.contains(word), "{name}: the refusal must mention {word:?}: {err}");
                }
                refused += 1;
            }
            _ => {
                let (lora, _) = apply(case, model).unwrap_or_else(|e| panic!("{name}: {e}"));
                let mut got: Vec<&str> = lora.adapters.modules.iter().map(|(p, _)| p.as_str()).collect();
                got.sort();
                let want: Vec<&str> =
                    spec["targeted"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
                assert_eq!(got, want, "{name}: adapted modules differ from PEFT's");
                let (ids, want) = peft_logits(case);
                let diff = max_diff(&lora.merged().unwrap().logits(&ids).unwrap(), &want);
                let scale = want.abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
                eprintln!("{name}: {} modules, max |Δlogit| vs PEFT = {diff:.2e}", got.len());
                assert!(diff <= 1e-4 * scale.max(1.0), "{name}: logits differ from PEFT's by {diff}");
                matched += 1;
            }
        }
    }
    assert!(matched >= 10 && refused >= 6, "cases found: {matched} matched, {refused} refused");
}

/// What tunekit would compute without the refusal: PiSSA's unconverted adapter read as a plain
/// LoRA on the original base is far from what PEFT computes with it (PEFT redoes PiSSA's change
/// to the base when it loads the adapter), while the converted adapter is exact (checked above).
#[test]
fn peft_targeting_unconverted_pissa_would_be_wrong() {
    let root = fixtures().join("train/peft-targeting");
    let (ids, peft) = peft_logits(&root.join("pissa-unconverted"));
    let adapter_dir = root.join("pissa-unconverted/adapter");
    let mut cfg: Value =
        serde_json::from_str(&std::fs::read_to_string(adapter_dir.join("adapter_config.json")).unwrap())
            .unwrap();
    assert_eq!(cfg["init_lora_weights"], "pissa");
    // The same weights read as a plain LoRA (what the loader did before it refused PiSSA).
    let tmp = std::env::temp_dir().join(format!("tunekit-pissa-as-lora-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).unwrap();
    cfg["init_lora_weights"] = Value::Bool(true);
    std::fs::write(tmp.join("adapter_config.json"), cfg.to_string()).unwrap();
    std::fs::copy(adapter_dir.join("adapter_model.safetensors"), tmp.join("adapter_model.safetensors"))
        .unwrap();
    let base = Model::load(fixtures().join("models/llama-tied-gqa")).unwrap();
    let adapter = peft::load(&tmp, &Device::Cpu).unwrap();
    let naive = LoraModel::from_peft(base.decoder.clone(), &adapter).unwrap().merged().unwrap();
    let diff = max_diff(&naive.logits(&ids).unwrap(), &peft);
    eprintln!("unconverted PiSSA read as plain LoRA: max |Δlogit| vs PEFT = {diff:.3}");
    assert!(diff > 1e-2, "the unconverted adapter happens to compute the same ({diff})");
    std::fs::remove_dir_all(&tmp).unwrap();
}
