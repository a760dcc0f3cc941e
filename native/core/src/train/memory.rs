//! A peak-memory estimate taken before training starts, so a run that cannot fit is refused
//! with a clear message instead of being killed half-way.
//!
//! The numbers are deliberately simple (f32 activations, the frozen base at its in-memory size
//! — f32, or compact when kept stored/quantised — what candle's graph keeps alive for the
//! backward pass counted per layer) and err on the high side by a 15% margin. They are a
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
    /// Bytes the frozen base occupies when it is kept compact (stored GGUF blocks, bf16, or
    /// quantised on load); `None` means dequantised to f32.
    pub base_weight_bytes: Option<u64>,
}

/// Compact base formats the refusal can suggest, with their bytes per weight: Q8_0 blocks are
/// 34 bytes per 32 values, Q4_K 144 per 256 (rows that are not whole Q4_K blocks fall back to
/// Q8_0, so this is a lower bound for Q4_K).
const COMPACT_OPTIONS: [(&str, u64, u64); 2] = [("q8_0", 34, 32), ("q4_k", 144, 256)];

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MemoryEstimate {
    /// Parameters of the frozen base.
    pub params: u64,
    /// Bytes of the frozen base in memory.
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
    let params = layers * per_layer_params + embed + hid;
    let weights = shape.base_weight_bytes.unwrap_or(params * F32);

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

    // What one layer keeps for backward. Projections, norms, the fused causal attention
    // (`decoder::attention`) and the gated activation are single graph nodes that keep their
    // inputs, not their intermediates: the layer input and its norm, q/k/v, the attention
    // output, the mid-layer residual and its norm, the MLP's gate/up and the down projection's
    // output (the attention's scores and probabilities are recomputed in backward, so nothing
    // grows with s²). An adapted `down_proj` recomputes the gated activation and an adapted
    // `o_proj` takes its residual add into its node; without those adapters both are kept.
    // q/k norms (Qwen 3, Gemma 3) keep the raw q/k too; Gemma 3's output norms keep each
    // block's output and its norm. Measured (bench/train, 2026-12-03): SmolLM2-135M's shape
    // at 4×128 tokens adds 468 MiB over 30 layers in the forward pass (15.6 per layer; this
    // formula: 14.6 per layer plus the embedding).
    let tokens = b * s;
    let targeted = |name: &str| shape.target_modules.iter().any(|t| t == name);
    let mut per_token = 5 * hid + (heads + 2 * kv) * d + heads * d + 2 * inter + heads;
    if !targeted("down_proj") {
        per_token += inter;
    }
    if !targeted("o_proj") {
        per_token += hid;
    }
    if cfg.qk_norm {
        per_token += (heads + kv) * d;
    }
    if cfg.sandwich_norms {
        per_token += 3 * hid;
    }
    let per_layer = tokens * per_token;
    let activations = if shape.gradient_checkpointing {
        // Layer inputs, plus one layer recomputed with its backward transients.
        layers * tokens * hid + 2 * per_layer
    } else {
        layers * per_layer + per_layer
    } * F32;
    // The chunk's `rows × vocab` buffers (two of `chunk_rows_for`'s rows; the f32 head's one
    // buffer of twice the rows is the same size), plus the gathered hidden rows and their grads.
    let vocab_tensors = 2;
    let chunk = super::loss::chunk_rows_for(shape.lm_head_chunk, vocab as usize);
    let lm_head = (vocab_tensors * chunk.min(shape.batch_size * shape.seq_len).max(1) as u64 * vocab
        + 2 * tokens * hid)
        * F32;

    let sum = weights + lora_state + activations + lm_head;
    MemoryEstimate { params, weights, lora_state, activations, lm_head, total: sum + sum * 15 / 100 }
}

/// Memory the OS says is available (Linux `MemAvailable`), if known.
pub fn available_bytes() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = s.lines().find(|l| l.starts_with("MemAvailable:"))?;
    Some(line.split_whitespace().nth(1)?.parse::<u64>().ok()? * 1024)
}

/// A run that does not fit: what it needs, what there is, and the compact-base option
/// (`baseWeights`) that would fit, if any.
#[derive(Debug, Clone, PartialEq)]
pub struct MemoryShortfall {
    pub needed: u64,
    pub available: u64,
    /// `("q4_k", bytes the run would then need)` when switching the base to that format fits.
    pub fits_with: Option<(&'static str, u64)>,
    pub message: String,
}

impl std::fmt::Display for MemoryShortfall {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// Refuses when the estimate exceeds `available`, saying what would help: first a compact base
/// format that would fit (when the base is not already that compact), then the other knobs.
pub fn check_fits(est: &MemoryEstimate, shape: &TrainShape, available: u64) -> Result<()> {
    if est.total <= available {
        return Ok(());
    }
    let gib = |x: u64| x as f64 / (1u64 << 30) as f64;
    let with_base = |bytes: u64| {
        let sum = est.total * 100 / 115 - est.weights + bytes;
        sum + sum * 15 / 100
    };
    let fits_with = COMPACT_OPTIONS.iter().find_map(|&(name, num, den)| {
        let bytes = est.params * num / den;
        let total = with_base(bytes);
        (bytes < est.weights && total <= available).then_some((name, total))
    });
    let mut hints: Vec<String> = Vec::new();
    if let Some((name, total)) = fits_with {
        hints.push(format!(
            "baseWeights: \"{name}\" (keeps the frozen base compact; about {:.2} GiB)",
            gib(total)
        ));
    }
    if !shape.gradient_checkpointing {
        hints.push("gradientCheckpointing: true".into());
    }
    hints.push("a smaller batchSize (with gradientAccumulationSteps to keep the effective batch)".into());
    hints.push("a shorter maxLength".into());
    let message = format!(
        "training needs about {:.2} GiB (weights {:.2}, activations {:.2}, LM head {:.2}, LoRA + optimiser {:.2}) \
         but only {:.2} GiB is available; try {}",
        gib(est.total),
        gib(est.weights),
        gib(est.activations),
        gib(est.lm_head),
        gib(est.lora_state),
        gib(available),
        hints.join(", or ")
    );
    Err(TrainError::Memory(MemoryShortfall { needed: est.total, available, fits_with, message }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> DecoderConfig {
        let json = r#"{"model_type":"llama","architectures":["LlamaForCausalLM"],"hidden_size":576,
            "intermediate_size":1536,"num_hidden_layers":30,"num_attention_heads":9,"num_key_value_heads":3,
            "vocab_size":49152,"max_position_embeddings":8192,"rms_norm_eps":1e-5,"rope_theta":100000,
            "tie_word_embeddings":true}"#;
        // One directory per test thread: the tests run in parallel and each removes its own.
        let dir = std::env::temp_dir().join(
            format!("tunekit-mem-{}-{:?}", std::process::id(), std::thread::current().id())
                .replace(['(', ')'], ""),
        );
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
            base_weight_bytes: None,
        };
        let e = estimate(&c, &shape);
        // ~135M parameters in f32.
        assert!((500 << 20..600 << 20).contains(&e.weights), "weights {}", e.weights);
        let longer = estimate(&c, &TrainShape { seq_len: 1024, ..shape.clone() });
        assert!(longer.activations > 2 * e.activations - e.activations / 4);
        // Nothing quadratic in the sequence is kept (the attention recomputes its scores).
        assert_eq!(longer.activations, 2 * e.activations);
        // Without adapters on o_proj/down_proj their output and the gated activation are kept.
        let qv = estimate(
            &c,
            &TrainShape { target_modules: vec!["q_proj".into(), "v_proj".into()], ..shape.clone() },
        );
        assert_eq!(qv.activations - e.activations, 31 * 4 * 512 * (576 + 1536) * 4);
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

    #[test]
    fn train_memory_counts_a_compact_base_and_names_the_option_that_fits() {
        let c = cfg();
        let shape = TrainShape {
            batch_size: 1,
            seq_len: 128,
            lora_rank: 8,
            target_modules: crate::train::lora::LoraConfig::default().target_modules,
            lm_head_chunk: 256,
            gradient_checkpointing: true,
            base_weight_bytes: None,
        };
        let f32_base = estimate(&c, &shape);
        // A Q4_K-sized base (144 bytes per 256 weights) is ~7x smaller than f32.
        let q4 = estimate(
            &c,
            &TrainShape { base_weight_bytes: Some(f32_base.params * 144 / 256), ..shape.clone() },
        );
        assert_eq!(f32_base.weights, f32_base.params * 4);
        assert!(q4.weights * 7 < f32_base.weights && q4.total < f32_base.total);
        assert_eq!(q4.activations, f32_base.activations);

        // A budget between the Q8_0 and f32 totals: the refusal names q8_0 and what it needs.
        let q8_total =
            estimate(&c, &TrainShape { base_weight_bytes: Some(f32_base.params * 34 / 32), ..shape.clone() })
                .total;
        let budget = (q8_total + f32_base.total) / 2;
        let TrainError::Memory(m) = check_fits(&f32_base, &shape, budget).unwrap_err() else {
            panic!("not a memory refusal")
        };
        assert_eq!((m.needed, m.available), (f32_base.total, budget));
        let (name, total) = m.fits_with.unwrap();
        assert_eq!(name, "q8_0");
        assert!(total <= budget && total.abs_diff(q8_total) <= 8, "{total} vs {q8_total}");
        assert!(m.message.contains("baseWeights: \"q8_0\""), "{}", m.message);

        // Between Q4_K and Q8_0: q4_k. Below Q4_K: no format fits, the other hints remain.
        let q4_total = q4.total;
        let TrainError::Memory(m) = check_fits(&f32_base, &shape, (q4_total + q8_total) / 2).unwrap_err()
        else {
            panic!()
        };
        assert_eq!(m.fits_with.map(|f| f.0), Some("q4_k"));
        let TrainError::Memory(m) = check_fits(&f32_base, &shape, q4_total / 2).unwrap_err() else {
            panic!()
        };
        assert_eq!(m.fits_with, None);
        assert!(!m.message.contains("baseWeights") && m.message.contains("batchSize"), "{}", m.message);
        // A base that is already Q4_K is not told to become Q8_0.
        let TrainError::Memory(m) = check_fits(&q4, &shape, q4_total - 1).unwrap_err() else { panic!() };
        assert_eq!(m.fits_with, None);
    }
}
