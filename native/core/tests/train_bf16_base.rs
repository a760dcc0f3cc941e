//! `baseWeights: "bf16"`: the frozen matrices in bf16, products with bf16 inputs and f32
//! accumulation, LoRA weights and everything else f32. A LoRA step must stay close to the f32
//! step (and so to PEFT's f32 fixtures): the differences come only from rounding the products'
//! inputs to 8 significant bits.
//!
//! Tolerances (the test prints what it measures; on 2026-12-03 the worst over the three
//! fixtures was 1.9e-4, 1.6e-2 and 1.8e-3): the loss at the fixed init within 1e-3 relative of
//! the f32 loss, every LoRA gradient within 5e-2 of the f32 gradient (relative to its largest
//! entry), and the 20-step AdamW trajectory within 1e-2 of PEFT's f32 losses.

mod common;

use common::{examples, rel_err};
use std::path::{Path, PathBuf};

use candle_core::Device;
use serde_json::Value;
use tunekit_core::quant::{BaseFormat, BaseWeight};
use tunekit_core::train::batching::Batch;
use tunekit_core::train::peft;
use tunekit_core::train::schedule::{ScheduleKind, Warmup};
use tunekit_core::train::session::LoraModel;
use tunekit_core::train::trainer::{self, TrainConfig};
use tunekit_core::Model;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../test/fixtures")
}

fn model(dir: &Path, adapter: &Path, format: BaseFormat) -> LoraModel {
    let model = Model::load_as(dir, Some(format)).unwrap();
    LoraModel::from_peft(model.decoder, &peft::load(adapter, &Device::Cpu).unwrap()).unwrap()
}

fn check(name: &str) {
    let fixture = root().join("train/lora").join(name);
    let expected: Value =
        serde_json::from_str(&std::fs::read_to_string(fixture.join("expected.json")).unwrap()).unwrap();
    let dir = root().join("models").join(expected["model"].as_str().unwrap());
    let (data, pad_id) = examples(&fixture);
    let f32_model = model(&dir, &fixture.join("init"), BaseFormat::F32);
    let bf16_model = model(&dir, &fixture.join("init"), BaseFormat::Bf16);

    // The option took effect: every projection and the LM head are bf16; the embedding lookup
    // stays f32.
    let d = &bf16_model.decoder;
    assert!(matches!(d.lm_head, BaseWeight::Bf16(_)), "{name}: LM head in bf16");
    assert!(matches!(d.embed_tokens, BaseWeight::F32(_)), "{name}: embedding lookup in f32");
    for l in &d.layers {
        for lin in [&l.self_attn.q_proj, &l.self_attn.o_proj, &l.mlp.down_proj] {
            assert!(matches!(lin.base, BaseWeight::Bf16(_)), "{name}: projections in bf16");
        }
    }

    // One step's loss and LoRA gradients at PEFT's init, f32 vs bf16 base.
    let cfg = TrainConfig { pad_id, batch_size: data.len(), ..TrainConfig::default() };
    let batch = Batch::collate(&data.iter().collect::<Vec<_>>(), pad_id);
    let step = |m: &LoraModel| {
        let vars = m.adapters.vars();
        trainer::window_gradients(m, &m.adapters, &vars, &[batch.clone()], &cfg, 0, &|| false)
            .unwrap()
            .unwrap()
    };
    let (g32, l32) = step(&f32_model);
    let (g16, l16) = step(&bf16_model);
    let loss_err = (l16 - l32).abs() / l32;
    let grad_err = g16.iter().zip(&g32).map(|(a, b)| rel_err(a, b)).fold(0f64, f64::max);
    eprintln!("{name}: bf16 base vs f32: loss {l16:.6} vs {l32:.6} (rel {loss_err:.2e}), LoRA gradients max rel {grad_err:.2e}");
    assert!(loss_err > 0.0, "{name}: the bf16 step rounds (identical losses mean the option did nothing)");
    assert!(loss_err <= 1e-3, "{name}: loss {l16} vs f32 {l32}");
    assert!(grad_err <= 5e-2, "{name}: LoRA gradients differ from f32 by {grad_err:e}");

    // Twenty AdamW steps with the real loop, against PEFT's f32 trajectory.
    let train = &expected["train"];
    let cfg = TrainConfig {
        epochs: expected["steps"].as_u64().unwrap(),
        batch_size: data.len(),
        learning_rate: train["lr"].as_f64().unwrap(),
        schedule: ScheduleKind::Linear,
        warmup: Warmup::Steps(train["warmup_steps"].as_u64().unwrap()),
        max_grad_norm: train["max_grad_norm"].as_f64().unwrap(),
        adamw: tunekit_core::train::optim::AdamWConfig {
            weight_decay: train["weight_decay"].as_f64().unwrap(),
            ..Default::default()
        },
        pad_id,
        ..TrainConfig::default()
    };
    let mut losses = Vec::new();
    trainer::train(
        &bf16_model,
        &bf16_model.adapters,
        &data,
        &[],
        &cfg,
        &mut |r| losses.push(r.loss),
        &|| false,
    )
    .unwrap();
    let want: Vec<f64> = expected["losses"].as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect();
    assert_eq!(losses.len(), want.len());
    let traj = losses.iter().zip(&want).map(|(a, b)| (a - b).abs() / b).fold(0f64, f64::max);
    eprintln!("{name}: bf16 base, {} AdamW steps vs PEFT f32: max rel loss diff {traj:.2e}", losses.len());
    assert!(traj <= 1e-2, "{name}: trajectory {losses:?} vs PEFT f32 {want:?}");
    assert!(losses.last() < losses.first(), "{name}: it still learns");
}

#[test]
fn bf16_base_llama_tied() {
    check("llama-tied-gqa");
}

#[test]
fn bf16_base_qwen2_bias() {
    check("qwen2-bias");
}

#[test]
fn bf16_base_gemma3_sliding() {
    check("gemma3-sliding-gqa");
}
