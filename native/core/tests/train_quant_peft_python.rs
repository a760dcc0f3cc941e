//! Dev-only interop check (issue 15): an adapter trained on a quantised GGUF base kept in its
//! stored blocks (`baseWeights: "stored"`) loads in Python PEFT on the same base dequantised by
//! transformers, and greedy decoding gives the same tokens. Built to run when `TUNEKIT_PYTHON`
//! names a Python with torch, transformers, peft and gguf (`scripts/test-native.sh` sets it);
//! otherwise compiled as ignored and counted so (CI has no Python). The llama.cpp side of the
//! same question runs in CI: test/local/gguf-interop-quantized.test.ts.

use std::path::{Path, PathBuf};
use std::process::Command;

use tunekit_core::generate::GenerateOptions;
use tunekit_core::gguf::export::{export_model, BaseDtype, ModelExportOptions};
use tunekit_core::quant::BaseFormat;
use tunekit_core::train::batching::Example;
use tunekit_core::train::lora::LoraConfig;
use tunekit_core::train::peft;
use tunekit_core::train::session::LoraModel;
use tunekit_core::train::trainer::{self, TrainConfig};
use tunekit_core::Model;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The Python named at build time (`TUNEKIT_PYTHON`).
fn python() -> &'static str {
    option_env!("TUNEKIT_PYTHON_PATH").expect("built with TUNEKIT_PYTHON set")
}

/// Increment examples from the repository's data, as `input\n` → `output\n`.
fn examples(model: &Model, n: usize) -> Vec<Example> {
    let text = std::fs::read_to_string(repo().join("examples/data/increment.jsonl")).unwrap();
    text.lines()
        .take(n)
        .map(|line| {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            let (input, output) = (v["text_input"].as_str().unwrap(), v["output"].as_str().unwrap());
            let prompt = model.tokenizer.encode(&format!("{input}\n"), true).unwrap();
            let response = model.tokenizer.encode(&format!("{output}\n"), false).unwrap();
            Example::prompt_response(&prompt, &response)
        })
        .collect()
}

fn check(dtype: BaseDtype, name: &str, dir: &Path) {
    let gguf = dir.join(format!("demo-counting-{name}.gguf"));
    let options = ModelExportOptions { dtype, tokenizer_pre: None };
    export_model(&repo().join("models/demo-counting"), &gguf, &options).unwrap();
    let model = Model::load_as(&gguf, Some(BaseFormat::Stored)).unwrap();
    assert!(model.decoder.has_stored_weights(), "{name}: the base is kept in its stored blocks");

    let lora = LoraModel::new(model.decoder.clone(), LoraConfig::default(), 42).unwrap();
    let cfg = TrainConfig { epochs: 2, batch_size: 8, learning_rate: 1e-3, ..TrainConfig::default() };
    trainer::train(&lora, &lora.adapters, &examples(&model, 64), &[], &cfg, &mut |_| {}, &|| false).unwrap();
    let adapter = dir.join(format!("adapter-{name}"));
    peft::save(&adapter, &lora.adapters.to_peft(Some(gguf.to_str().unwrap()))).unwrap();

    // tunekit's greedy answers, with the adapter merged as generation applies it.
    let tuned = Model { decoder: lora.merged().unwrap(), ..model };
    let opts =
        GenerateOptions { max_new_tokens: 6, eos_token_ids: Some(vec![]), ..GenerateOptions::default() };
    let prompts: Vec<Vec<u32>> = ["41\n", "1,999\n", "twenty two\n", "98\n"]
        .iter()
        .map(|p| tuned.tokenizer.encode(p, true).unwrap())
        .collect();
    let outputs: Vec<Vec<u32>> =
        prompts.iter().map(|p| tuned.generate(p, &opts, &|| false, &mut |_| {}).unwrap().token_ids).collect();
    let expected = dir.join(format!("expected-{name}.json"));
    std::fs::write(&expected, serde_json::json!({ "prompts": prompts, "outputs": outputs }).to_string())
        .unwrap();

    let out = Command::new(python())
        .arg(repo().join("scripts/fixtures/check_peft_quantized.py"))
        .args([&gguf, &adapter, &expected])
        .output()
        .unwrap();
    let log = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    println!("{name}:\n{}", log.lines().filter(|l| l.contains("prompt")).collect::<Vec<_>>().join("\n"));
    assert!(out.status.success(), "{name}: PEFT on the dequantised base answered differently:\n{log}");
}

#[test]
#[cfg_attr(
    not(tunekit_python_peft),
    ignore = "needs Python with torch, transformers, peft and gguf: set TUNEKIT_PYTHON (scripts/test-native.sh does when python3 has them)"
)]
fn train_python_peft_runs_an_adapter_trained_on_a_stored_quantized_base() {
    let dir = std::env::temp_dir().join(format!("tunekit-quant-peft-python-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    check(BaseDtype::Q8_0, "q8_0", &dir);
    check(BaseDtype::Q4K, "q4_k", &dir);
    std::fs::remove_dir_all(&dir).unwrap();
}
