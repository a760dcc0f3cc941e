//! A peak-memory estimate taken before training starts, so a run that cannot fit is refused
//! with a clear message instead of being killed half-way.
//!
//! The numbers are deliberately simple (f32 everywhere, what candle's graph keeps alive for
//! the backward pass counted per layer) and err on the high side by a 15% margin. They are a
//! guard, not a profiler; `bench/train` reports measured peaks.

use crate::config::DecoderConfig;

use super::{Result, TrainError};

/// The sizes that drive memory use.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainShape {
    pub batch_size: usize,
    /// Longest sequence (after truncation to `maxLength`).
    pub seq_len: usize,
    pub lora_rank: usize,
    /// Adapted projections per layer (`q_proj`, ...).
    pub target_modules: Vec<String>,
    pub lm_head_chunk: usize,
    pub gradient_checkpointing: bool,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MemoryEstimate {
    pub weights: u64,
    /// Adapters, their gradients and AdamW's two moments.
    pub lora_state: u64,
    pub activations: u64,
    pub lm_head: u64,
    /// Everything above plus a 15% margin.
    pub total: u64,
}

const F32: u64 = 4;

pub fn estimate(cfg: &DecoderConfig, shape: &TrainShape) -> MemoryEstimate {
    let (hid, inter, layers) =
        (cfg.hidden_size as u64, cfg.intermediate_size as u64, cfg.num_hidden_layers as u64);
    let (heads, kv, d, vocab) = (
        cfg.num_attention_heads as u64,
        cfg.num_key_value_heads as u64,
        cfg.head_dim as u64,
        cfg.vocab_size as u64,
    );
    let (b, s, r) = (shape.batch_size as u64, shape.seq_len as u64, shape.lora_rank as u64);

    let per_layer_params = hid * (heads + 2 * kv) * d + heads * d * hid + 3 * hid * inter + 2 * hid;
    let embed = vocab * hid * if cfg.tie_word_embeddings { 1 } else { 2 };
    let weights = (layers * per_layer_params + embed + hid) * F32;

    // A [r, in] + B [out, r] for each adapted projection: r·(in + out).
    let io = |name: &str| match name {
        "q_proj" => hid + heads * d,
        "k_proj" | "v_proj" => hid + kv * d,
        "o_proj" => heads * d + hid,
        "gate_proj" | "up_proj" | "down_proj" => hid + inter,
        _ => 2 * hid,
    };
    let lora_params = layers * r * shape.target_modules.iter().map(|t| io(t)).sum::<u64>();
    let lora_state = lora_params * 4 * F32; // weights, gradient, exp_avg, exp_avg_sq

    // What one layer keeps for backward (LoRA projections, norms, rope, softmax and the gated
    // activation are single graph nodes that keep only their output): norm outputs and
    // residuals, q/k/v with their q/k-norm and rope outputs, the attention output before and
    // after the head transpose, the raw scores and the probabilities (two s×s tensors per
    // head), the MLP's gate/up/product. Measured (bench/train, 2026-11): Gemma 3 270M at 4×256
    // tokens keeps ~75 MiB per layer (this formula: 78), SmolLM2-135M's shape at 4×128 ~27 (32).
    let tokens = b * s;
    let per_layer =
        tokens * (8 * hid + 3 * (heads + 2 * kv) * d + 2 * heads * d + 3 * inter) + 2 * b * heads * s * s;
    let activations = if shape.gradient_checkpointing {
        // Layer inputs, plus one layer recomputed with its backward transients.
        layers * tokens * hid + 2 * per_layer
    } else {
        layers * per_layer + per_layer
    } * F32;
    // Two `chunk × vocab` tensors of one chunk (the loss drops each one as the next exists;
    // three with a logit soft-cap), plus the gathered hidden rows and their grads.
    let vocab_tensors = if cfg.final_logit_softcapping.is_some() { 3 } else { 2 };
    let chunk = super::loss::chunk_rows_for(shape.lm_head_chunk, vocab as usize);
    let lm_head = (vocab_tensors * chunk.min(shape.batch_size * shape.seq_len).max(1) as u64 * vocab
        + 2 * tokens * hid)
        * F32;

    let sum = weights + lora_state + activations + lm_head;
    MemoryEstimate { weights, lora_state, activations, lm_head, total: sum + sum * 15 / 100 }
}

/// Memory the OS says is available (Linux `MemAvailable`), if known.
pub fn available_bytes() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = s.lines().find(|l| l.starts_with("MemAvailable:"))?;
    Some(line.split_whitespace().nth(1)?.parse::<u64>().ok()? * 1024)
}

/// Refuses when the estimate exceeds `available`, saying what would help.
pub fn check_fits(est: &MemoryEstimate, shape: &TrainShape, available: u64) -> Result<()> {
    if est.total <= available {
        return Ok(());
    }
    let gib = |x: u64| x as f64 / (1u64 << 30) as f64;
    let mut hints = vec![
        "a smaller batchSize (with gradientAccumulationSteps to keep the effective batch)",
        "a shorter maxLength",
    ];
    if !shape.gradient_checkpointing {
        hints.insert(0, "gradientCheckpointing: true");
    }
    Err(TrainError::Config(format!(
        "training needs about {:.2} GiB (weights {:.2}, activations {:.2}, LM head {:.2}, LoRA + optimiser {:.2}) \
         but only {:.2} GiB is available; try {}",
        gib(est.total),
        gib(est.weights),
        gib(est.activations),
        gib(est.lm_head),
        gib(est.lora_state),
        gib(available),
        hints.join(", or ")
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> DecoderConfig {
        let json = r#"{"model_type":"llama","architectures":["LlamaForCausalLM"],"hidden_size":576,
            "intermediate_size":1536,"num_hidden_layers":30,"num_attention_heads":9,"num_key_value_heads":3,
            "vocab_size":49152,"max_position_embeddings":8192,"rms_norm_eps":1e-5,"rope_theta":100000,
            "tie_word_embeddings":true}"#;
        let dir = std::env::temp_dir().join(format!("tunekit-mem-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("config.json"), json).unwrap();
        let c = DecoderConfig::from_file(&dir.join("config.json")).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        c
    }

    #[test]
    fn train_memory_estimate_scales_and_guards() {
        let c = cfg(); // SmolLM2-135M's shape
        let shape = TrainShape {
            batch_size: 4,
            seq_len: 512,
            lora_rank: 8,
            target_modules: crate::train::lora::LoraConfig::default().target_modules,
            lm_head_chunk: 256,
            gradient_checkpointing: false,
        };
        let e = estimate(&c, &shape);
        // ~135M parameters in f32.
        assert!((500 << 20..600 << 20).contains(&e.weights), "weights {}", e.weights);
        let longer = estimate(&c, &TrainShape { seq_len: 1024, ..shape.clone() });
        assert!(longer.activations > 2 * e.activations - e.activations / 4);
        let ckpt = estimate(&c, &TrainShape { gradient_checkpointing: true, ..shape.clone() });
        assert!(ckpt.activations * 4 < e.activations, "checkpointing keeps far less");
        // The LM head term does not grow with the sequence beyond the chunk (only the hidden rows do).
        assert!(longer.lm_head < 2 * e.lm_head);
        // r·(in + out) summed over the 7 projections of 30 layers: 8 · 30 · 10176.
        assert_eq!(e.lora_state, 8 * 30 * 10176 * 4 * 4);
        assert!(check_fits(&e, &shape, e.total).is_ok());
        let err = check_fits(&e, &shape, e.total / 2).unwrap_err().to_string();
        assert!(err.contains("gradientCheckpointing") && err.contains("GiB"), "{err}");
    }
}
