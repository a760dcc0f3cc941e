//! Numerical parity with transformers on the committed fixtures
//! (test/fixtures/models, written by scripts/fixtures/make_fixtures.py).

use std::path::PathBuf;

use candle_core::Device;
use tunekit_core::safetensors::SafetensorsFile;
use tunekit_core::{GenerateOptions, Model};

const TOLERANCE: f32 = 1e-4;

fn fixtures_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../test/fixtures/models")
}

struct Expected {
    prompt: String,
    input_ids: Vec<u32>,
    greedy_ids: Vec<u32>,
    /// Long-prompt fixtures store only the logits of positions `logits_from..`.
    logits_from: usize,
}

fn expected(dir: &std::path::Path) -> Expected {
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("expected.json")).unwrap()).unwrap();
    let ids = |k: &str| v[k].as_array().unwrap().iter().map(|x| x.as_u64().unwrap() as u32).collect();
    Expected {
        prompt: v["prompt"].as_str().unwrap().to_string(),
        input_ids: ids("input_ids"),
        greedy_ids: ids("greedy_ids"),
        logits_from: v["logits_from"].as_u64().unwrap_or(0) as usize,
    }
}

fn check(name: &str) {
    let dir = fixtures_dir().join(name);
    let model = Model::load(&dir).unwrap_or_else(|e| panic!("{name}: {e}"));
    let exp = expected(&dir);

    // Long prompts are random ids, which need not re-tokenize to themselves.
    if exp.logits_from == 0 {
        assert_eq!(model.tokenizer.encode(&exp.prompt, true).unwrap(), exp.input_ids, "{name}: tokenization");
    }

    let reference = SafetensorsFile::open(dir.join("expected.safetensors"))
        .unwrap()
        .load_f32("logits", &Device::Cpu)
        .unwrap();
    let logits = model.decoder.logits(&exp.input_ids).unwrap();
    let rows = exp.input_ids.len() - exp.logits_from;
    let logits = logits.narrow(0, exp.logits_from, rows).unwrap();
    assert_eq!(logits.dims(), reference.dims(), "{name}: logits shape");
    let max_diff =
        (logits - &reference).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
    let scale = reference.abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
    println!("{name}: max |logit - ref| = {max_diff:.3e} (max |ref| = {scale:.2})");
    assert!(max_diff <= TOLERANCE, "{name}: max |logit - ref| = {max_diff:e} > {TOLERANCE:e}");

    // Greedy decoding with the KV cache against transformers' full recomputation.
    let opts = GenerateOptions {
        max_new_tokens: exp.greedy_ids.len(),
        eos_token_ids: Some(vec![]),
        ..Default::default()
    };
    let out = model.generate(&exp.input_ids, &opts, &|| false, &mut |_| {}).unwrap();
    assert_eq!(out.token_ids, exp.greedy_ids, "{name}: greedy continuation");
}

#[test]
fn llama_tied_gqa() {
    check("llama-tied-gqa");
}

#[test]
fn llama3_rope_scaling_sharded_bf16() {
    check("llama3-scaled-sharded-bf16");
}

#[test]
fn llama_mha_biases_f16() {
    check("llama-smol-mha-f16");
}

#[test]
fn mistral_sliding_window() {
    check("mistral-window");
}

#[test]
fn qwen2_qkv_bias() {
    check("qwen2-bias");
}

#[test]
fn qwen3_qk_norm() {
    check("qwen3-qknorm");
}

#[test]
fn qwen2_untied_single_kv_head_f16() {
    check("qwen2-untied-mqa-f16");
}

#[test]
fn qwen3_tied_mha_small_head_dim_bf16() {
    check("qwen3-tied-mha-bf16");
}

#[test]
fn qwen2_per_layer_sliding_windows() {
    check("qwen2-layer-windows");
}

#[test]
fn llama3_long_context_rope_and_mask() {
    check("llama3-long-context");
}

#[test]
fn gemma3_sliding_pattern_gqa() {
    check("gemma3-sliding-gqa");
}

#[test]
fn gemma3_legacy_keys_mqa_softcap_bf16() {
    check("gemma3-legacy-mqa-softcap-bf16");
}

#[test]
fn every_fixture_has_a_parity_test() {
    // A fixture added to the generator without a test above would silently go unchecked.
    let src = include_str!("parity.rs");
    for entry in std::fs::read_dir(fixtures_dir()).unwrap() {
        let entry = entry.unwrap();
        if entry.path().is_dir() {
            let name = entry.file_name().into_string().unwrap();
            assert!(src.contains(&format!("check(\"{name}\")")), "fixture {name} has no parity test");
        }
    }
}
