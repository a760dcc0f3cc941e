//! Merged-weights export: the merged model computes what base + adapter computes.

mod common;

use std::path::PathBuf;

use candle_core::{Device, Tensor};
use tunekit_core::train::merge::export_merged;
use tunekit_core::train::peft;
use tunekit_core::train::trainer::TrainableModel;
use tunekit_core::Model;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../test/fixtures")
}

/// Max |merged logits − adapter logits| for one fixture.
fn merged_vs_adapter(name: &str) -> f32 {
    let model_dir = root().join("models").join(name);
    let adapter_dir = root().join("train/lora").join(name).join("trained");
    let adapter = peft::load(&adapter_dir, &Device::Cpu).unwrap();
    let out = std::env::temp_dir().join(format!("tunekit-merged-{name}-{}", std::process::id()));
    export_merged(&model_dir, &adapter, &out).unwrap();

    // Same files, same shard layout, same dtypes.
    let names = |d: &PathBuf| {
        let mut v: Vec<String> =
            std::fs::read_dir(d).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into()).collect();
        v.sort();
        v
    };
    assert_eq!(names(&model_dir), names(&out), "{name}: file set");

    let ids: Vec<u32> = vec![1, 40, 7, 99, 250, 13, 5];
    let input = Tensor::from_slice(&ids, (1, ids.len()), &Device::Cpu).unwrap();
    let with_adapter = common::lora_model(&model_dir, &adapter_dir);
    let want = with_adapter
        .hidden_states(&input)
        .unwrap()
        .squeeze(0)
        .unwrap()
        .matmul(&with_adapter.lm_head_weight().t().unwrap())
        .unwrap();
    let merged = Model::load(&out).unwrap();
    let got = merged.decoder.logits(&ids).unwrap();
    std::fs::remove_dir_all(&out).unwrap();
    (got - want).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap()
}

#[test]
fn train_merged_export_f32_matches_adapter() {
    let d = merged_vs_adapter("qwen3-qknorm");
    println!("qwen3-qknorm merged vs adapter: max |logit diff| {d:.2e}");
    assert!(d <= 1e-4, "{d}");
}

#[test]
fn train_merged_export_keeps_bf16_shards() {
    // Merging into bf16 rounds the merged weights (as PEFT's merge_and_unload does in bf16),
    // so the logits agree only to bf16 precision.
    let d = merged_vs_adapter("llama3-scaled-sharded-bf16");
    println!("llama3-scaled-sharded-bf16 merged vs adapter: max |logit diff| {d:.2e}");
    assert!(d <= 5e-2, "{d}");
}

#[test]
fn train_merged_export_rejects_a_foreign_adapter() {
    let adapter = peft::load(&root().join("train/lora/qwen3-qknorm/trained"), &Device::Cpu).unwrap();
    let out = std::env::temp_dir().join(format!("tunekit-merged-foreign-{}", std::process::id()));
    // llama-smol has hidden size 48: the qwen3 adapter's deltas do not fit.
    let err = export_merged(&root().join("models/llama-smol-mha-f16"), &adapter, &out).unwrap_err();
    assert!(err.to_string().contains("does not match"), "{err}");
    assert!(!out.exists(), "nothing written on failure");
    let tmp_left = std::fs::read_dir(out.parent().unwrap()).unwrap().any(|e| {
        e.unwrap()
            .file_name()
            .to_string_lossy()
            .starts_with(&format!(".tmp-tunekit-merged-foreign-{}", std::process::id()))
    });
    assert!(!tmp_left, "the temporary directory is removed on failure");
}
