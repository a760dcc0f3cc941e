//! GGUF metadata → architecture hyperparameters, [`DecoderConfig`], and tokenizer data.
//!
//! Keys follow gguf-py's `constants.py`: `general.architecture` names the arch, and
//! hyperparameters live under `{arch}.…` (`block_count`, `embedding_length`, …).

use crate::config::{Activation, DecoderConfig, Family, LocalRope, RopeScaling};
use crate::error::{Error, LoadErrorKind, Result};
use crate::gguf::reader::{Array, Gguf, Value};

/// Architecture hyperparameters read from `{arch}.*` keys, before any arch-specific defaults
/// are applied. Fields the file lacks are `None`.
#[derive(Debug, Clone, PartialEq)]
pub struct Hparams {
    pub architecture: String,
    pub block_count: usize,
    pub embedding_length: usize,
    pub feed_forward_length: usize,
    pub head_count: usize,
    pub head_count_kv: usize,
    pub context_length: Option<usize>,
    pub rms_eps: Option<f64>,
    pub rope_freq_base: Option<f64>,
    pub rope_dimension_count: Option<usize>,
    pub rope_scaling_type: Option<String>,
    pub rope_scaling_factor: Option<f64>,
    pub key_length: Option<usize>,
    pub value_length: Option<usize>,
    pub sliding_window: Option<usize>,
    pub vocab_size: Option<usize>,
    pub final_logit_softcapping: Option<f64>,
    /// `{arch}.attention.sliding_window_pattern`: every n-th layer is global (Gemma 3).
    pub sliding_window_pattern: Option<usize>,
    /// `{arch}.rope.freq_base_swa`: the rope base of sliding-window layers (Gemma 3).
    pub rope_freq_base_swa: Option<f64>,
    /// `{arch}.attention.scale`: the attention score scale, when not `key_length^-0.5`.
    pub attention_scale: Option<f64>,
}

fn err(g: &Gguf, kind: LoadErrorKind, message: String) -> Error {
    Error::load(kind, &g.path, message)
}

fn opt_usize(g: &Gguf, key: &str) -> Result<Option<usize>> {
    match g.get(key) {
        None => Ok(None),
        Some(v) => v.as_u64().and_then(|n| usize::try_from(n).ok()).map(Some).ok_or_else(|| {
            err(g, LoadErrorKind::InvalidConfig, format!("`{key}` must be a non-negative integer, got {v:?}"))
        }),
    }
}

fn req_usize(g: &Gguf, key: &str) -> Result<usize> {
    opt_usize(g, key)?
        .ok_or_else(|| err(g, LoadErrorKind::InvalidConfig, format!("GGUF metadata lacks `{key}`")))
}

fn opt_f64(g: &Gguf, key: &str) -> Result<Option<f64>> {
    match g.get(key) {
        None => Ok(None),
        Some(v) => v.as_f64().map(Some).ok_or_else(|| {
            err(g, LoadErrorKind::InvalidConfig, format!("`{key}` must be a number, got {v:?}"))
        }),
    }
}

fn opt_str<'a>(g: &'a Gguf, key: &str) -> Result<Option<&'a str>> {
    match g.get(key) {
        None => Ok(None),
        Some(v) => v.as_str().map(Some).ok_or_else(|| {
            err(g, LoadErrorKind::InvalidConfig, format!("`{key}` must be a string, got {v:?}"))
        }),
    }
}

fn opt_bool(g: &Gguf, key: &str) -> Result<Option<bool>> {
    match g.get(key) {
        None => Ok(None),
        Some(v) => v.as_bool().map(Some).ok_or_else(|| {
            err(g, LoadErrorKind::InvalidConfig, format!("`{key}` must be a bool, got {v:?}"))
        }),
    }
}

fn opt_u32(g: &Gguf, key: &str) -> Result<Option<u32>> {
    match opt_usize(g, key)? {
        None => Ok(None),
        Some(n) => u32::try_from(n)
            .map(Some)
            .map_err(|_| err(g, LoadErrorKind::InvalidConfig, format!("`{key}` = {n} is not a token id"))),
    }
}

impl Hparams {
    pub fn from_gguf(g: &Gguf) -> Result<Self> {
        let arch = opt_str(g, "general.architecture")?
            .ok_or_else(|| {
                err(g, LoadErrorKind::InvalidConfig, "GGUF metadata lacks `general.architecture`".into())
            })?
            .to_string();
        let k = |s: &str| format!("{arch}.{s}");
        let head_count = req_usize(g, &k("attention.head_count"))?;
        Ok(Self {
            block_count: req_usize(g, &k("block_count"))?,
            embedding_length: req_usize(g, &k("embedding_length"))?,
            feed_forward_length: req_usize(g, &k("feed_forward_length"))?,
            head_count,
            // llama.cpp defaults head_count_kv to head_count.
            head_count_kv: opt_usize(g, &k("attention.head_count_kv"))?.unwrap_or(head_count),
            context_length: opt_usize(g, &k("context_length"))?,
            rms_eps: opt_f64(g, &k("attention.layer_norm_rms_epsilon"))?,
            rope_freq_base: opt_f64(g, &k("rope.freq_base"))?,
            rope_dimension_count: opt_usize(g, &k("rope.dimension_count"))?,
            rope_scaling_type: opt_str(g, &k("rope.scaling.type"))?.map(str::to_string),
            rope_scaling_factor: opt_f64(g, &k("rope.scaling.factor"))?,
            key_length: opt_usize(g, &k("attention.key_length"))?,
            value_length: opt_usize(g, &k("attention.value_length"))?,
            sliding_window: opt_usize(g, &k("attention.sliding_window"))?,
            vocab_size: opt_usize(g, &k("vocab_size"))?,
            final_logit_softcapping: opt_f64(g, &k("final_logit_softcapping"))?,
            sliding_window_pattern: opt_usize(g, &k("attention.sliding_window_pattern"))?,
            rope_freq_base_swa: opt_f64(g, &k("rope.freq_base_swa"))?,
            attention_scale: opt_f64(g, &k("attention.scale"))?,
            architecture: arch,
        })
    }
}

/// Tokenizer data stored in GGUF metadata (`tokenizer.ggml.*`, `tokenizer.chat_template`).
#[derive(Debug, Clone, PartialEq)]
pub struct GgufTokenizer {
    /// `llama` (SentencePiece), `gpt2` (byte-level BPE), …
    pub model: String,
    /// The pre-tokenizer name for BPE vocabularies (`qwen2`, `smollm`, …), if given.
    pub pre: Option<String>,
    pub tokens: Vec<String>,
    pub scores: Option<Vec<f32>>,
    pub token_types: Option<Vec<i32>>,
    pub merges: Option<Vec<String>>,
    pub bos_token_id: Option<u32>,
    pub eos_token_id: Option<u32>,
    pub padding_token_id: Option<u32>,
    pub unknown_token_id: Option<u32>,
    pub add_bos_token: Option<bool>,
    pub add_eos_token: Option<bool>,
    /// SentencePiece's dummy prefix (a `▁` before the text); llama.cpp assumes true if absent.
    pub add_space_prefix: Option<bool>,
    pub chat_template: Option<String>,
}

impl GgufTokenizer {
    pub fn from_gguf(g: &Gguf) -> Result<Self> {
        let bad = |m: String| err(g, LoadErrorKind::InvalidTokenizer, m);
        let model = opt_str(g, "tokenizer.ggml.model")?
            .ok_or_else(|| bad("GGUF metadata lacks `tokenizer.ggml.model`".into()))?
            .to_string();
        let tokens = match g.get("tokenizer.ggml.tokens") {
            Some(Value::Array(Array::String(t))) => t.clone(),
            Some(v) => {
                return Err(bad(format!(
                    "`tokenizer.ggml.tokens` must be an array of strings, got {:?}",
                    v.value_type()
                )))
            }
            None => return Err(bad("GGUF metadata lacks `tokenizer.ggml.tokens`".into())),
        };
        let n = tokens.len();
        let scores = match g.get("tokenizer.ggml.scores") {
            None => None,
            Some(Value::Array(Array::F32(s))) if s.len() == n => Some(s.clone()),
            Some(_) => return Err(bad(format!("`tokenizer.ggml.scores` must be {n} f32 values"))),
        };
        let token_types = match g.get("tokenizer.ggml.token_type") {
            None => None,
            Some(Value::Array(Array::I32(s))) if s.len() == n => Some(s.clone()),
            Some(_) => return Err(bad(format!("`tokenizer.ggml.token_type` must be {n} i32 values"))),
        };
        let merges = match g.get("tokenizer.ggml.merges") {
            None => None,
            Some(Value::Array(Array::String(m))) => Some(m.clone()),
            Some(_) => return Err(bad("`tokenizer.ggml.merges` must be an array of strings".into())),
        };
        let id = |key: &str| -> Result<Option<u32>> {
            let id = opt_u32(g, key)?;
            match id {
                Some(i) if i as usize >= n => {
                    Err(bad(format!("`{key}` = {i} is outside the {n}-token vocabulary")))
                }
                _ => Ok(id),
            }
        };
        Ok(Self {
            pre: opt_str(g, "tokenizer.ggml.pre")?.map(str::to_string),
            bos_token_id: id("tokenizer.ggml.bos_token_id")?,
            eos_token_id: id("tokenizer.ggml.eos_token_id")?,
            padding_token_id: id("tokenizer.ggml.padding_token_id")?,
            unknown_token_id: id("tokenizer.ggml.unknown_token_id")?,
            add_bos_token: opt_bool(g, "tokenizer.ggml.add_bos_token")?,
            add_eos_token: opt_bool(g, "tokenizer.ggml.add_eos_token")?,
            add_space_prefix: opt_bool(g, "tokenizer.ggml.add_space_prefix")?,
            chat_template: opt_str(g, "tokenizer.chat_template")?.map(str::to_string),
            model,
            tokens,
            scores,
            token_types,
            merges,
        })
    }
}

/// `rope_freqs.weight`: `head_dim / 2` positive factors, or None when the file has none.
fn rope_freq_factors(g: &Gguf, head_dim: usize) -> Result<Option<Vec<f32>>> {
    let Some(info) = g.tensor("rope_freqs.weight") else { return Ok(None) };
    let invalid = |m: String| err(g, LoadErrorKind::InvalidConfig, m);
    if info.shape().iter().product::<usize>() != head_dim / 2 {
        return Err(invalid(format!(
            "rope_freqs.weight has shape {:?}; expected {} values (head_dim / 2)",
            info.shape(),
            head_dim / 2
        )));
    }
    let mut file = std::fs::File::open(&g.path).map_err(|e| Error::io(&g.path, &e))?;
    let bytes = g.read_tensor_bytes(&mut file, "rope_freqs.weight")?;
    let factors = g.dequantize("rope_freqs.weight", &bytes)?;
    if let Some(bad) = factors.iter().find(|f| !(f.is_finite() && **f > 0.0)) {
        return Err(invalid(format!("rope_freqs.weight holds {bad}; every factor must be positive")));
    }
    Ok(Some(factors))
}

/// Builds the decoder configuration for a GGUF base. Supports the `llama` (also Mistral),
/// `qwen2`, `qwen3` and `gemma3` architectures; others are `UnsupportedArchitecture`.
///
/// Gemma 3 follows llama.cpp where the file is silent: every 6th layer is global (the
/// others slide), sliding layers use rope base 10000 without scaling, and scores are scaled
/// by `key_length^-0.5` (by `(embedding_length / head_count)^-0.5` for the 62-layer 27B).
/// `attention.sliding_window_pattern`, `rope.freq_base_swa` and `attention.scale` override
/// those defaults when present.
pub fn decoder_config(g: &Gguf) -> Result<DecoderConfig> {
    let h = Hparams::from_gguf(g)?;
    let invalid = |m: String| err(g, LoadErrorKind::InvalidConfig, m);
    let family = match h.architecture.as_str() {
        "llama" => Family::Llama,
        "qwen2" => Family::Qwen2,
        "qwen3" => Family::Qwen3,
        "gemma3" => Family::Gemma3,
        other => {
            return Err(err(
                g,
                LoadErrorKind::UnsupportedArchitecture,
                format!(
                    "GGUF architecture `{other}` is not supported; supported: llama, qwen2, qwen3, gemma3"
                ),
            ))
        }
    };
    if h.embedding_length == 0
        || h.head_count == 0
        || h.head_count_kv == 0
        || h.head_count % h.head_count_kv != 0
    {
        return Err(invalid(format!(
            "head counts {} / {} and embedding length {} are inconsistent",
            h.head_count, h.head_count_kv, h.embedding_length
        )));
    }
    let head_dim = match h.key_length {
        Some(d) => d,
        None if h.embedding_length % h.head_count == 0 => h.embedding_length / h.head_count,
        None => {
            return Err(invalid(
                "embedding_length is not divisible by head_count and no key_length is given".into(),
            ))
        }
    };
    if head_dim == 0 || head_dim % 2 != 0 || h.value_length.is_some_and(|v| v != head_dim) {
        return Err(invalid(format!("head dim {head_dim} must be positive, even and equal to value_length")));
    }
    for (key, value, limit) in [
        ("embedding_length", h.embedding_length, 1 << 20),
        ("attention.head_count", h.head_count, 1 << 14),
        ("key_length", head_dim, 1 << 16),
        ("block_count", h.block_count, 1 << 12),
        ("feed_forward_length", h.feed_forward_length, 1 << 22),
    ] {
        if value > limit {
            return Err(invalid(format!("`{key}` = {value} is implausibly large (limit {limit})")));
        }
    }
    // Llama 3.x frequency scaling is stored as a `rope_freqs.weight` tensor (one divisor per
    // rotary frequency), not as metadata.
    let freq_factors = rope_freq_factors(g, head_dim)?;
    let rope_scaling = match (h.rope_scaling_type.as_deref(), freq_factors) {
        (None | Some("none" | "llama3"), Some(factors)) => RopeScaling::FreqFactors(factors),
        (_, Some(_)) => {
            return Err(invalid("rope_freqs.weight cannot be combined with another rope scaling type".into()))
        }
        (None | Some("none"), None) => RopeScaling::None,
        (Some("linear"), None) => match h.rope_scaling_factor {
            Some(f) if f > 0.0 => RopeScaling::Linear { factor: f },
            _ => return Err(invalid("linear rope scaling needs a positive rope.scaling.factor".into())),
        },
        (Some(other), None) => {
            return Err(err(
                g,
                LoadErrorKind::UnsupportedArchitecture,
                format!("GGUF rope scaling type `{other}` is not supported; supported: none, linear"),
            ))
        }
    };
    let vocab_size = match h.vocab_size {
        Some(v) => v,
        None => {
            match (g.get("tokenizer.ggml.tokens").and_then(Value::as_array), g.tensor("token_embd.weight")) {
                (_, Some(t)) if t.dims.len() == 2 => t.dims[1] as usize,
                (Some(a), _) => a.len(),
                _ => {
                    return Err(invalid(
                        "cannot tell the vocabulary size (no vocab_size, token_embd.weight or tokens)".into(),
                    ))
                }
            }
        }
    };
    if vocab_size == 0 || vocab_size > 1 << 24 || h.feed_forward_length == 0 {
        return Err(invalid(format!(
            "vocab size {vocab_size} / feed_forward_length {} out of range",
            h.feed_forward_length
        )));
    }
    let has = |name: &str| g.tensor(name).is_some();
    let (qkv_bias, o_bias) = match family {
        Family::Qwen2 => (true, false),
        _ => (has("blk.0.attn_q.bias"), has("blk.0.attn_output.bias")),
    };
    let gemma = family == Family::Gemma3;
    let default_theta = match family {
        Family::Qwen2 | Family::Qwen3 | Family::Gemma3 => 1_000_000.0,
        _ => 10_000.0,
    };
    let positive = |key: &str, v: Option<f64>| -> Result<Option<f64>> {
        match v {
            Some(x) if !(x > 0.0 && x.is_finite()) => {
                Err(invalid(format!("`{key}` must be positive, got {x}")))
            }
            _ => Ok(v),
        }
    };
    let (sliding_window, local_rope, attn_scale) = if gemma {
        let pattern = h.sliding_window_pattern.unwrap_or(6);
        if pattern == 0 || h.sliding_window == Some(0) {
            return Err(invalid("sliding_window and sliding_window_pattern must be positive".into()));
        }
        let sliding = crate::config::gemma3_sliding_layers(h.block_count, pattern);
        let windows = sliding.iter().map(|&s| if s { h.sliding_window } else { None }).collect();
        let theta = positive("rope.freq_base_swa", h.rope_freq_base_swa)?.unwrap_or(10_000.0);
        let local = LocalRope { theta, scaling: RopeScaling::None, layers: sliding };
        let scale = match positive("attention.scale", h.attention_scale)? {
            Some(s) => s,
            // llama.cpp recognises Gemma 3 27B by its 62 layers; its query_pre_attn_scalar is
            // hidden / heads rather than head_dim.
            None if h.block_count == 62 => 1.0 / ((h.embedding_length / h.head_count) as f64).sqrt(),
            None => 1.0 / (head_dim as f64).sqrt(),
        };
        (windows, Some(local), scale)
    } else {
        let scale = positive("attention.scale", h.attention_scale)?.unwrap_or(1.0 / (head_dim as f64).sqrt());
        // llama.cpp runs llama/qwen2/qwen3 GGUFs with full attention on every layer.
        (vec![None; h.block_count], None, scale)
    };
    let softcap = if gemma { positive("final_logit_softcapping", h.final_logit_softcapping)? } else { None };
    // Instruction-tuned GGUFs name their end-of-turn token separately (`<end_of_turn>`,
    // `<|im_end|>`); generation must stop on it as well as on EOS.
    let mut eos: Vec<u32> = Vec::new();
    for key in ["tokenizer.ggml.eos_token_id", "tokenizer.ggml.eot_token_id", "tokenizer.ggml.eom_token_id"] {
        if let Some(id) = opt_u32(g, key)? {
            if !eos.contains(&id) {
                eos.push(id);
            }
        }
    }
    let config = DecoderConfig {
        family,
        hidden_size: h.embedding_length,
        intermediate_size: h.feed_forward_length,
        num_hidden_layers: h.block_count,
        num_attention_heads: h.head_count,
        num_key_value_heads: h.head_count_kv,
        head_dim,
        vocab_size,
        max_position_embeddings: h.context_length.unwrap_or(4096),
        rms_norm_eps: h.rms_eps.unwrap_or(1e-6),
        rope_theta: h.rope_freq_base.unwrap_or(default_theta),
        rope_scaling,
        tie_word_embeddings: !has("output.weight"),
        qkv_bias,
        o_bias,
        mlp_bias: has("blk.0.ffn_up.bias"),
        qk_norm: matches!(family, Family::Qwen3 | Family::Gemma3),
        // Weights come back in HF form (convert.rs subtracts the +1 GGUF folds into Gemma's
        // norms), so the decoder applies (1 + w) as it does for safetensors.
        norm_weight_offset: gemma,
        activation: if gemma { Activation::GeluTanh } else { Activation::Silu },
        embed_scale: gemma.then(|| (h.embedding_length as f64).sqrt()),
        attn_scale,
        sliding_window,
        local_rope,
        sandwich_norms: gemma,
        final_logit_softcapping: softcap,
        bos_token_id: opt_u32(g, "tokenizer.ggml.bos_token_id")?,
        eos_token_ids: eos,
    };
    if let Some((key, why)) = config.implausible() {
        return Err(invalid(format!("`{}` {why}", gguf_key(&h.architecture, key))));
    }
    Ok(config)
}

/// The GGUF metadata key holding what config.json calls `hf_key`.
fn gguf_key(arch: &str, hf_key: &str) -> String {
    let suffix = match hf_key {
        "num_hidden_layers" => "block_count",
        "rms_norm_eps" => "attention.layer_norm_rms_epsilon",
        "rope_theta" => "rope.freq_base",
        "max_position_embeddings" => "context_length",
        "rope_scaling" => "rope.scaling.factor",
        "rope_local_base_freq" => "rope.freq_base_swa",
        "query_pre_attn_scalar" => "attention.scale",
        other => return other.to_string(),
    };
    format!("{arch}.{suffix}")
}
