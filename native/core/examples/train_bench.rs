//! One LoRA epoch on a model directory, timed, for `bench/train` (issue #5's must-show).
//!
//!   RAYON_NUM_THREADS=1 train_bench <model_dir> <data.json> [--batch 4] [--dropout 0]
//!       [--rank 8] [--alpha 32] [--lr 1e-4] [--profile-steps 4] [--checkpointing]
//!       [--base stored|f32|bf16|q8_0|q4_k]
//!   train_bench <model_dir> <data.json> [--rank 8] [--alpha 32] --save-init <dir>
//!
//! `--save-init <dir>`: instead of training, write the freshly initialised adapter (the one the
//! epoch starts from: seed 42, A kaiming-uniform, B zero) as a PEFT adapter directory, so the
//! baseline can start from the same A (`baseline.py train --init-adapter <dir>`). Without it
//! the two sides draw different random A's and their losses after step 1 differ by more than
//! the 4 decimals the comparison needs (on Gemma 3 270M: 15.0252 vs 15.0062 at step 4).
//!
//! `data.json`: `{"prompt_len": P, "sequences": [[ids..], ..]}`; the first `P` tokens of each
//! sequence are the (masked) prompt, the rest the learned response — the same data that
//! `bench/train/baseline.py` reads.
//!
//! Phase 1 (the measured epoch): `session::LoraModel` + `trainer::train`, exactly the code the
//! binding runs (AdamW, clip 1.0, linear schedule, seeded shuffling; no checkpoints written).
//! Peak RSS is `VmHWM` read right after it.
//! Phase 2 (`--profile-steps N`, after the peak was read): N more optimiser steps driven by
//! hand from the same public pieces the trainer uses (`hidden_states`, `lm_head_loss_capped`,
//! `backward`, gradient accumulation, `clip_grad_norm`, `AdamW::step`), each phase timed.
//!
//! `--sgemm`: instead, the f32 matmul peak of this machine at `RAYON_NUM_THREADS` threads
//! (candle's matmul, 2048³, best of 5), for the table's "% of peak", and the bf16 GEMM's
//! rate (`kernels::gemm_bf16`) beside candle's f32 one on a training-shaped product.
//!
//! Prints one JSON object on the last line of stdout. The epoch's FLOP count
//! (`epoch_gflop`, [`lora_step_flops`]) lets the table turn both sides' times into GFLOP/s.

use std::time::Instant;

use candle_core::Tensor;
use tunekit_core::quant::BaseFormat;
use tunekit_core::train::batching::{epoch_batches, Batch, BatchPlan, Example};
use tunekit_core::train::lora::LoraConfig;
use tunekit_core::train::loss::{lm_head_loss_capped, shifted_targets};
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

/// Resets this process's VmHWM to its current RSS (Linux: `5` into `/proc/self/clear_refs`).
fn reset_peak() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

fn mib(b: Option<u64>) -> f64 {
    b.unwrap_or(0) as f64 / 1048576.0
}

/// FLOPs of one LoRA training step on a batch of `b` sequences of `s` tokens with `scored`
/// scored positions: the work both sides must do, counted the same way for both.
///
/// Per projection `[out, in]` over `T = b·s` tokens: base forward `2·T·in·out` and its
/// backward to the input `2·T·in·out` (a frozen weight needs no weight gradient); LoRA forward
/// `2·T·r·(in+out)` and backward (∂A, ∂B, ∂x) twice that. Attention per layer: `QKᵀ` and `PV`
/// forward (`2·b·h·s²·d` each, the full square as both sides compute it) and four products of
/// the same size backward. LM head: forward and backward-to-input over the scored positions.
/// Elementwise work (norms, rope, softmax, activations) is not counted.
fn lora_step_flops(model: &LoraModel, b: usize, s: usize, scored: usize, rank: usize) -> f64 {
    let d = &model.decoder;
    let t = (b * s) as f64;
    let r = rank as f64;
    let mut flops = 0f64;
    for layer in &d.layers {
        for which in 0..tunekit_core::decoder::PROJECTIONS.len() {
            let lin = layer.projection(which);
            let (out_f, in_f) = lin.dims();
            let (o, i) = (out_f as f64, in_f as f64);
            flops += 4.0 * t * i * o;
            if lin.adapter.is_some() {
                flops += 6.0 * t * r * (i + o);
            }
        }
        let (h, hd) = (d.cfg.num_attention_heads as f64, d.cfg.head_dim as f64);
        flops += 6.0 * 2.0 * b as f64 * h * (s * s) as f64 * hd;
    }
    let (v, hid) = d.lm_head.dims();
    flops + 4.0 * scored as f64 * v as f64 * hid as f64
}

/// How the frozen matrices are held, e.g. `f32`, `bf16 (embedding f32)` or
/// `stored: Q5_0 ×81, Q4_K ×27, … (embedding Q6_K)`: what a row of the table measured.
fn describe_base(d: &tunekit_core::decoder::Decoder) -> String {
    let name =
        |w: &tunekit_core::quant::BaseWeight| w.stored_type().map_or("f32".to_string(), |t| format!("{t:?}"));
    let mut counts: Vec<(String, usize)> = Vec::new();
    for layer in &d.layers {
        for which in 0..tunekit_core::decoder::PROJECTIONS.len() {
            let t = name(&layer.projection(which).base);
            match counts.iter_mut().find(|(n, _)| *n == t) {
                Some((_, c)) => *c += 1,
                None => counts.push((t, 1)),
            }
        }
    }
    let layers = match counts.as_slice() {
        [(t, _)] => t.clone(),
        _ => counts.iter().map(|(t, c)| format!("{t} ×{c}")).collect::<Vec<_>>().join(", "),
    };
    let kind = if d.has_stored_weights() && !layers.starts_with("BF16") { "stored: " } else { "" };
    format!("{kind}{layers} (embedding {}, LM head {})", name(&d.embed_tokens), name(&d.lm_head))
}

/// Best-of-5 GFLOP/s of a 2048³ f32 matmul through candle (gemm), at the current thread count.
fn sgemm_gflops() -> f64 {
    let n = 2048;
    let dev = candle_core::Device::Cpu;
    let a = Tensor::randn(0f32, 1.0, (n, n), &dev).unwrap();
    let b = Tensor::randn(0f32, 1.0, (n, n), &dev).unwrap();
    let _ = a.matmul(&b).unwrap(); // warm-up: thread pool, page faults
    let best = (0..5)
        .map(|_| {
            let t = Instant::now();
            let c = a.matmul(&b).unwrap();
            let dt = t.elapsed().as_secs_f64();
            drop(c);
            dt
        })
        .fold(f64::INFINITY, f64::min);
    2.0 * (n * n * n) as f64 / best / 1e9
}

/// GFLOP/s of `[m, k] · [k, n]` (best of 5): candle's f32 matmul and the bf16 kernel
/// (`kernels::gemm_bf16`, operand pre-packed as the `bf16` base holds it).
fn product_gflops(m: usize, k: usize, n: usize) -> (f64, f64) {
    use tunekit_core::kernels::gemm_bf16::{matmul, PackedB};
    let dev = candle_core::Device::Cpu;
    let a = Tensor::randn(0f32, 1.0, (m, k), &dev).unwrap();
    let b = Tensor::randn(0f32, 1.0, (k, n), &dev).unwrap();
    let best = |f: &dyn Fn()| {
        f();
        (0..5)
            .map(|_| {
                let t = Instant::now();
                f();
                t.elapsed().as_secs_f64()
            })
            .fold(f64::INFINITY, f64::min)
    };
    let f32_s = best(&|| drop(a.matmul(&b).unwrap()));
    let av = a.flatten_all().unwrap().to_vec1::<f32>().unwrap();
    let packed = PackedB::plain(&b.flatten_all().unwrap().to_vec1::<f32>().unwrap(), k, n);
    let bf16_s = best(&|| drop(matmul(&av, m, &packed)));
    let flop = 2.0 * (m * k * n) as f64 / 1e9;
    (flop / f32_s, flop / bf16_s)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.iter().any(|a| a == "--sgemm") {
        // A 2048³ product, and one of the training's own shapes (512 tokens × 576 → 1536).
        let (_, bf16_square) = product_gflops(2048, 2048, 2048);
        let (f32_train, bf16_train) = product_gflops(512, 576, 1536);
        // A 64-row chunk of Gemma 3's LM head (262,144 × 640): logits, then the input gradient.
        let (f32_head, bf16_head) = product_gflops(64, 640, 262_144);
        let (f32_head_grad, bf16_head_grad) = product_gflops(64, 262_144, 640);
        let json = serde_json::json!({
            "side": "sgemm-native",
            "threads": candle_core::utils::get_num_threads(),
            "gflops": sgemm_gflops(),
            "bf16_gflops": bf16_square,
            "f32_gflops_512x576x1536": f32_train,
            "bf16_gflops_512x576x1536": bf16_train,
            "f32_gflops_64x640x262144": f32_head,
            "bf16_gflops_64x640x262144": bf16_head,
            "f32_gflops_64x262144x640": f32_head_grad,
            "bf16_gflops_64x262144x640": bf16_head_grad,
            "bf16_kernel": format!("{:?}", tunekit_core::kernels::gemm_bf16::Isa::detect()),
        });
        println!("{json}");
        return;
    }
    let model_dir = &args[1];
    let data_path = &args[2];
    let batch_size: usize = arg(&args, "--batch", 4);
    let dropout: f64 = arg(&args, "--dropout", 0.0);
    let rank: usize = arg(&args, "--rank", 8);
    let alpha: f64 = arg(&args, "--alpha", 32.0);
    let lr: f64 = arg(&args, "--lr", 1e-4);
    let profile_steps: usize = arg(&args, "--profile-steps", 4);
    let checkpointing = args.iter().any(|a| a == "--checkpointing");
    // Profile only (a fresh process, so the per-phase RSS figures start from the loaded model
    // rather than from whatever the allocator kept after an epoch).
    let no_epoch = args.iter().any(|a| a == "--no-epoch");

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
    if args.iter().any(|a| a == "--print-order") {
        // The trainer's batch order for epoch 0 (seed 42), so the baseline can use the same one.
        let lengths: Vec<usize> = examples.iter().map(|e| e.input_ids.len()).collect();
        let plan = BatchPlan { batch_size, group_by_length: false, seed: TrainConfig::default().seed };
        println!("{}", serde_json::json!(epoch_batches(&lengths, &plan, 0)));
        return;
    }
    let tokens: usize = examples.iter().map(|e| e.input_ids.len()).sum();
    let max_len = examples.iter().map(|e| e.input_ids.len()).max().unwrap_or(0);

    let t_load = Instant::now();
    // `--base` is `baseWeights`: `stored` (the blocks as the file stores them), `f32`
    // (everything dequantised to f32), `bf16` (the frozen matrices in bf16 for the bf16 GEMM),
    // `q8_0` / `q4_k`; without it, the source's default (f32 for a directory, stored for a GGUF).
    let base = args.iter().position(|a| a == "--base").map(|i| args[i + 1].clone());
    let format = base.as_deref().map(|b| BaseFormat::parse(b).unwrap_or_else(|| panic!("bad --base {b}")));
    let decoder = Model::load_as(model_dir, format).unwrap().decoder;
    let base_held = describe_base(&decoder);
    let load_s = t_load.elapsed().as_secs_f64();
    let rss_after_load = rss_now();

    let lora = LoraConfig { r: rank, alpha, dropout, ..LoraConfig::default() };
    let model = LoraModel::new(decoder, lora, 42).unwrap();
    if let Some(i) = args.iter().position(|a| a == "--save-init") {
        let dir = std::path::Path::new(args.get(i + 1).expect("--save-init needs a directory"));
        tunekit_core::train::peft::save(dir, &model.adapters.to_peft(None)).unwrap();
        println!("{}", dir.display());
        return;
    }
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
    let outcome = if no_epoch {
        None
    } else {
        Some(
            trainer::train(
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
            .unwrap(),
        )
    };
    let seconds = t0.elapsed().as_secs_f64();
    let peak = peak_rss_bytes();
    assert!(outcome.is_none_or(|o| !o.cancelled));
    if !no_epoch {
        eprintln!(
        "native (base held as {base_held}): {} steps, {tokens} tokens in {seconds:.2}s = {:.1} tok/s, peak RSS {:.0} MiB (after load {:.0} MiB), loss {:.4} -> {:.4}",
        step_s.len(),
        tokens as f64 / seconds,
        mib(peak),
        mib(rss_after_load),
        losses.first().unwrap_or(&f64::NAN),
        losses.last().unwrap_or(&f64::NAN)
    );
    }

    // Phase 2: per-phase profile of a few more steps, same pieces as trainer::window_gradients
    // (with the allocator settings `trainer::train` uses).
    let _retain = tunekit_core::train::alloc::RetainFreedMemory::new();
    let shared = &model.adapters.shared;
    let vars = model.adapters.vars();
    let mut opt = AdamW::new(vars.clone(), tc.adamw).unwrap();
    shared.set_training(true);
    shared.set_grad_enabled(true);
    let (mut fwd, mut head, mut bwd, mut acc, mut optim) = (0f64, 0f64, 0f64, 0f64, 0f64);
    // Per-phase peak RSS above the RSS at the start of the step (max over the profiled steps),
    // and the bytes candle's GradStore holds after backward besides the LoRA gradients.
    let can_reset = reset_peak();
    let (mut pk_fwd, mut pk_head, mut pk_bwd) = (0f64, 0f64, 0f64);
    let mut store_bytes = 0usize;
    let mut store_tensors = 0usize;
    let var_ids: std::collections::HashSet<_> = vars.iter().map(|v| v.id()).collect();
    let mut prof_tokens = 0usize;
    let steps = profile_steps.min(examples.len().div_ceil(batch_size));
    for (i, chunk) in examples.chunks(batch_size).take(steps).enumerate() {
        shared.set_micro_step(1_000_000 + i as u64);
        // The first profiled step warms up the allocator and thread pool: its memory counts,
        // its time does not (when there are more steps).
        let w = if i == 0 && steps > 1 { 0.0 } else { 1.0 };
        let batch = Batch::collate(&chunk.iter().collect::<Vec<_>>(), 0);
        if i > 0 || steps == 1 {
            prof_tokens += batch.tokens();
        }
        let denom = batch.scored_tokens().max(1) as f64;
        let base = rss_now();
        reset_peak();
        let t = Instant::now();
        let ids = batch.ids_tensor(model.device()).unwrap();
        let (pos, tgt) = shifted_targets(&batch.labels);
        let hidden = model.hidden_states(&ids).unwrap();
        fwd += w * t.elapsed().as_secs_f64();
        let up = |b: Option<u64>| mib(peak_rss_bytes()) - mib(b);
        pk_fwd = pk_fwd.max(up(base));
        reset_peak();
        let t = Instant::now();
        // The head as the trainer holds and calls it (stored, bf16 or f32; with the soft cap).
        let cap = model.final_logit_softcap();
        let out =
            lm_head_loss_capped(&hidden, &pos, &tgt, model.lm_head(), cap, denom, tc.lm_head_chunk, true)
                .unwrap();
        head += w * t.elapsed().as_secs_f64();
        pk_head = pk_head.max(up(base));
        reset_peak();
        let t = Instant::now();
        let store = out.loss.backward().unwrap();
        bwd += w * t.elapsed().as_secs_f64();
        pk_bwd = pk_bwd.max(up(base));
        let (mut nb, mut nt) = (0usize, 0usize);
        for id in store.get_ids() {
            if !var_ids.contains(id) {
                let g = store.get_id(*id).unwrap();
                nb += g.elem_count() * g.dtype().size_in_bytes();
                nt += 1;
            }
        }
        store_bytes = store_bytes.max(nb);
        store_tensors = store_tensors.max(nt);
        let t = Instant::now();
        let mut grads: Vec<Tensor> = vars.iter().map(|v| v.as_tensor().zeros_like().unwrap()).collect();
        for (g, v) in grads.iter_mut().zip(&vars) {
            if let Some(gv) = store.get(v) {
                *g = (&*g + gv).unwrap();
            }
        }
        drop(store);
        acc += w * t.elapsed().as_secs_f64();
        let t = Instant::now();
        clip_grad_norm(&mut grads, 1.0).unwrap();
        opt.step(&grads, lr).unwrap();
        optim += w * t.elapsed().as_secs_f64();
    }
    shared.set_training(false);
    let total = fwd + head + bwd + acc + optim;
    if steps > 0 {
        eprintln!(
            "native profile ({} timed steps after 1 warm-up, {:.1} tok/s): forward {:.0}% · LM head+loss {:.0}% · backward {:.0}% · grad accumulate {:.0}% · clip+AdamW {:.0}%",
            steps.saturating_sub(1).max(1),
            prof_tokens as f64 / total,
            100.0 * fwd / total,
            100.0 * head / total,
            100.0 * bwd / total,
            100.0 * acc / total,
            100.0 * optim / total
        );
        eprintln!(
            "native memory per phase (peak above the step's starting RSS {}): forward +{pk_fwd:.0} MiB · LM head+loss +{pk_head:.0} MiB · backward +{pk_bwd:.0} MiB; GradStore after backward holds {store_tensors} non-LoRA gradients = {:.0} MiB",
            if can_reset { "" } else { "(clear_refs unavailable: cumulative)" },
            store_bytes as f64 / 1048576.0
        );
    }

    // The epoch's FLOPs, batch by batch as the trainer forms them (padded to each batch's longest).
    let lengths: Vec<usize> = examples.iter().map(|e| e.input_ids.len()).collect();
    let plan = BatchPlan { batch_size, group_by_length: tc.group_by_length, seed: tc.seed };
    let epoch_flops: f64 = epoch_batches(&lengths, &plan, 0)
        .iter()
        .map(|idx| {
            let batch = Batch::collate(&idx.iter().map(|&i| &examples[i]).collect::<Vec<_>>(), 0);
            let s = batch.labels.first().map_or(0, Vec::len);
            lora_step_flops(&model, batch.labels.len(), s, shifted_targets(&batch.labels).0.len(), rank)
        })
        .sum();

    let json = serde_json::json!({
        "side": "native",
        // What was asked for (`--base`, or "default") and how the matrices were actually held.
        "precision": format.map_or("default", BaseFormat::as_str),
        "base_held": base_held,
        "epoch_gflop": epoch_flops / 1e9,
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
        "phase_peak_above_step_start_mib": {
            "forward": pk_fwd,
            "lm_head_loss": pk_head,
            "backward": pk_bwd,
            "valid": can_reset,
        },
        "gradstore_non_lora": { "tensors": store_tensors, "mib": store_bytes as f64 / 1048576.0 },
    });
    println!("{json}");
}
