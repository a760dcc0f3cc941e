//! One LoRA epoch on a model directory, timed, for `bench/train` (issue #5's must-show).
//!
//!   RAYON_NUM_THREADS=1 train_bench <model_dir> <data.json> [--batch 4] [--dropout 0]
//!       [--rank 8] [--alpha 32] [--lr 1e-4] [--profile-steps 4] [--checkpointing]
//!
//! `data.json`: `{"prompt_len": P, "sequences": [[ids..], ..]}`; the first `P` tokens of each
//! sequence are the (masked) prompt, the rest the learned response — the same data that
//! `bench/train/baseline.py` reads.
//!
//! Phase 1 (the measured epoch): `session::LoraModel` + `trainer::train`, exactly the code the
//! binding runs (AdamW, clip 1.0, linear schedule, seeded shuffling; no checkpoints written).
//! Peak RSS is `VmHWM` read right after it.
//! Phase 2 (`--profile-steps N`, after the peak was read): N more optimiser steps driven by
//! hand from the same public pieces the trainer uses (`hidden_states`, `lm_head_loss`,
//! `backward`, gradient accumulation, `clip_grad_norm`, `AdamW::step`), each phase timed.
//!
//! Prints one JSON object on the last line of stdout.

use std::time::Instant;

use candle_core::Tensor;
use tunekit_core::train::batching::{Batch, Example};
use tunekit_core::train::lora::LoraConfig;
use tunekit_core::train::loss::{lm_head_loss, shifted_targets};
use tunekit_core::train::optim::{clip_grad_norm, AdamW};
use tunekit_core::train::session::LoraModel;
use tunekit_core::train::trainer::{self, peak_rss_bytes, StepReport, TrainConfig, TrainableModel};
use tunekit_core::Model;

fn arg<T: std::str::FromStr>(args: &[String], name: &str, default: T) -> T {
    match args.iter().position(|a| a == name) {
        Some(i) => args[i + 1].parse().unwrap_or_else(|_| panic!("bad value for {name}")),
        None => default,
    }
}

fn rss_now() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with("VmRSS:"))?;
    Some(line.split_whitespace().nth(1)?.parse::<u64>().ok()? * 1024)
}

fn mib(b: Option<u64>) -> f64 {
    b.unwrap_or(0) as f64 / 1048576.0
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let model_dir = &args[1];
    let data_path = &args[2];
    let batch_size: usize = arg(&args, "--batch", 4);
    let dropout: f64 = arg(&args, "--dropout", 0.0);
    let rank: usize = arg(&args, "--rank", 8);
    let alpha: f64 = arg(&args, "--alpha", 32.0);
    let lr: f64 = arg(&args, "--lr", 1e-4);
    let profile_steps: usize = arg(&args, "--profile-steps", 4);
    let checkpointing = args.iter().any(|a| a == "--checkpointing");

    let data: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(data_path).unwrap()).unwrap();
    let prompt_len = data["prompt_len"].as_u64().unwrap() as usize;
    let examples: Vec<Example> = data["sequences"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            let ids: Vec<u32> = s.as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as u32).collect();
            Example::prompt_response(&ids[..prompt_len], &ids[prompt_len..])
        })
        .collect();
    let tokens: usize = examples.iter().map(|e| e.input_ids.len()).sum();
    let max_len = examples.iter().map(|e| e.input_ids.len()).max().unwrap_or(0);

    let t_load = Instant::now();
    let decoder = Model::load(model_dir).unwrap().decoder;
    let load_s = t_load.elapsed().as_secs_f64();
    let rss_after_load = rss_now();

    let lora = LoraConfig { r: rank, alpha, dropout, ..LoraConfig::default() };
    let model = LoraModel::new(decoder, lora, 42).unwrap();
    let tc = TrainConfig {
        epochs: 1,
        batch_size,
        learning_rate: lr,
        max_grad_norm: 1.0,
        gradient_checkpointing: checkpointing,
        ..TrainConfig::default()
    };

    // Phase 1: one epoch through the real trainer.
    let mut step_s = Vec::new();
    let mut losses = Vec::new();
    let mut last = Instant::now();
    let t0 = Instant::now();
    let outcome = trainer::train(
        &model,
        &model.adapters,
        &examples,
        &[],
        &tc,
        &mut |r: &StepReport| {
            step_s.push(last.elapsed().as_secs_f64());
            losses.push(r.loss);
            last = Instant::now();
        },
        &|| false,
    )
    .unwrap();
    let seconds = t0.elapsed().as_secs_f64();
    let peak = peak_rss_bytes();
    assert!(!outcome.cancelled);
    eprintln!(
        "native: {} steps, {tokens} tokens in {seconds:.2}s = {:.1} tok/s, peak RSS {:.0} MiB (after load {:.0} MiB), loss {:.4} -> {:.4}",
        step_s.len(),
        tokens as f64 / seconds,
        mib(peak),
        mib(rss_after_load),
        losses.first().unwrap_or(&f64::NAN),
        losses.last().unwrap_or(&f64::NAN)
    );

    // Phase 2: per-phase profile of a few more steps, same pieces as trainer::window_gradients.
    let shared = &model.adapters.shared;
    let vars = model.adapters.vars();
    let mut opt = AdamW::new(vars.clone(), tc.adamw).unwrap();
    shared.set_training(true);
    shared.set_grad_enabled(true);
    let (mut fwd, mut head, mut bwd, mut acc, mut optim) = (0f64, 0f64, 0f64, 0f64, 0f64);
    let mut prof_tokens = 0usize;
    let steps = profile_steps.min(examples.len().div_ceil(batch_size));
    for (i, chunk) in examples.chunks(batch_size).take(steps).enumerate() {
        shared.set_micro_step(1_000_000 + i as u64);
        let batch = Batch::collate(&chunk.iter().collect::<Vec<_>>(), 0);
        prof_tokens += batch.tokens();
        let denom = batch.scored_tokens().max(1) as f64;
        let t = Instant::now();
        let ids = batch.ids_tensor(model.device()).unwrap();
        let (pos, tgt) = shifted_targets(&batch.labels);
        let hidden = model.hidden_states(&ids).unwrap();
        fwd += t.elapsed().as_secs_f64();
        let t = Instant::now();
        let out = lm_head_loss(&hidden, &pos, &tgt, model.lm_head_weight(), denom, tc.lm_head_chunk, true).unwrap();
        head += t.elapsed().as_secs_f64();
        let t = Instant::now();
        let store = out.loss.backward().unwrap();
        bwd += t.elapsed().as_secs_f64();
        let t = Instant::now();
        let mut grads: Vec<Tensor> = vars.iter().map(|v| v.as_tensor().zeros_like().unwrap()).collect();
        for (g, v) in grads.iter_mut().zip(&vars) {
            if let Some(gv) = store.get(v) {
                *g = (&*g + gv).unwrap();
            }
        }
        drop(store);
        acc += t.elapsed().as_secs_f64();
        let t = Instant::now();
        clip_grad_norm(&mut grads, 1.0).unwrap();
        opt.step(&grads, lr).unwrap();
        optim += t.elapsed().as_secs_f64();
    }
    shared.set_training(false);
    let total = fwd + head + bwd + acc + optim;
    if steps > 0 {
        eprintln!(
            "native profile ({steps} steps, {:.1} tok/s): forward {:.0}% · LM head+loss {:.0}% · backward {:.0}% · grad accumulate {:.0}% · clip+AdamW {:.0}%",
            prof_tokens as f64 / total,
            100.0 * fwd / total,
            100.0 * head / total,
            100.0 * bwd / total,
            100.0 * acc / total,
            100.0 * optim / total
        );
    }

    let json = serde_json::json!({
        "side": "native",
        "threads": candle_core::utils::get_num_threads(),
        "examples": examples.len(),
        "max_len": max_len,
        "batch": batch_size,
        "steps": step_s.len(),
        "tokens": tokens,
        "seconds": seconds,
        "tokens_per_s": tokens as f64 / seconds,
        "step_s": step_s,
        "loss_first": losses.first(),
        "loss_last": losses.last(),
        "load_s": load_s,
        "rss_after_load_mib": mib(rss_after_load),
        "peak_rss_mib": mib(peak),
        "checkpointing": checkpointing,
        "profile": {
            "steps": steps,
            "tokens": prof_tokens,
            "forward_s": fwd,
            "lm_head_loss_s": head,
            "backward_s": bwd,
            "grad_accumulate_s": acc,
            "clip_adamw_s": optim,
        },
    });
    println!("{json}");
}
