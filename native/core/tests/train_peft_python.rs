//! Dev-only interop check: Python PEFT loads an adapter we export and computes the same
//! logits (≤ 1e-4). Built to run when `TUNEKIT_PYTHON` names a Python with torch,
//! transformers and peft (`scripts/test-native.sh` sets it when `python3` has them);
//! otherwise the test is compiled as ignored and the runner counts it so (CI has no Python).

mod common;

use std::path::PathBuf;
use std::process::Command;

use candle_core::{DType, Device, Tensor};
use tunekit_core::train::peft;
use tunekit_core::train::trainer::TrainableModel;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The Python named at build time (`TUNEKIT_PYTHON`).
fn python() -> &'static str {
    option_env!("TUNEKIT_PYTHON_PATH").expect("built with TUNEKIT_PYTHON set")
}

#[test]
#[cfg_attr(
    not(tunekit_python_peft),
    ignore = "needs Python with torch, transformers and peft: set TUNEKIT_PYTHON (scripts/test-native.sh does when python3 has them)"
)]
fn train_python_peft_loads_our_adapter() {
    let model_dir = repo().join("test/fixtures/models/qwen2-bias");
    let fixture = repo().join("test/fixtures/train/lora/qwen2-bias");
    let model = common::lora_model(&model_dir, &fixture.join("trained"));
    // Make the adapter our own: perturb every weight, so PEFT cannot be reading its own file.
    for v in model.adapters.vars() {
        v.set(&(v.as_tensor() * 1.5).unwrap()).unwrap();
    }
    let dir = std::env::temp_dir().join(format!("tunekit-peft-python-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    peft::save(&dir.join("adapter"), &model.adapters.to_peft(Some(model_dir.to_str().unwrap()))).unwrap();

    let ids: Vec<u32> = vec![1, 17, 42, 99, 250, 3, 8, 300, 5];
    let input = Tensor::from_slice(&ids, (1, ids.len()), &Device::Cpu).unwrap();
    let hidden = model.hidden_states(&input).unwrap().squeeze(0).unwrap();
    let logits = hidden.matmul(&model.lm_head_weight().t().unwrap()).unwrap();
    let expected = dir.join("expected.safetensors");
    candle_core::safetensors::save(
        &std::collections::HashMap::from([
            ("input_ids".to_string(), input.to_dtype(DType::I64).unwrap()),
            ("logits".to_string(), logits),
        ]),
        &expected,
    )
    .unwrap();

    let out = Command::new(python())
        .arg(repo().join("scripts/fixtures/check_peft_export.py"))
        .args([&model_dir, &dir.join("adapter"), &expected])
        .output()
        .unwrap();
    let log = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    println!("{}", log.lines().filter(|l| l.contains("max |diff|")).collect::<Vec<_>>().join("\n"));
    assert!(out.status.success(), "PEFT could not reproduce our logits:\n{log}");
    std::fs::remove_dir_all(&dir).unwrap();
}
