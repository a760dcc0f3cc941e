//! Exports to llama.cpp's GGUF: LoRA adapters ([`export_lora`]) and, so that an adapter has a
//! base to go with, Hugging Face model directories ([`export_model`]).
//!
//! Adapter files follow LOCAL-LORA-FACTS §3.2–3.5: `general.type = adapter`, the base's
//! `general.architecture`, `adapter.type = lora`, `adapter.lora.alpha`, and one
//! `<base tensor>.lora_a` (`ne = [in, r]`, PEFT's `lora_A` bytes) / `.lora_b` (`ne = [r, out]`,
//! PEFT's `lora_B` bytes) pair per adapted projection, all F32. llama.cpp applies
//! `W·x + alpha/r · B·(A·x)` with `r` read from the tensor shape, which is PEFT's math when
//! `alpha` is PEFT's `lora_alpha`; for rsLoRA (`alpha/√r`) we store `alpha·√r`.
//!
//! For the `llama` architecture llama.cpp's converter permutes the rows of q/k projections
//! (rotate-half → interleaved rope pairs, [`convert::permute_qk`]); an adapter's B is the
//! row factor of `B·A`, so only `lora_b` of `attn_q` / `attn_k` is permuted.

use std::collections::BTreeMap;
use std::path::Path;

use candle_core::{DType, Device, Tensor};
use serde_json::Value as Json;

use crate::config::{DecoderConfig, Family, RopeScaling};
use crate::decoder::Rotary;
use crate::error::{Error, LoadErrorKind, Result};
use crate::gguf::convert;
use crate::gguf::reader::{Array, Gguf, Value};
use crate::gguf::writer::GgufWriter;
use crate::quant::BaseFormat;
use crate::train::peft::PeftAdapter;

/// GGUF architectures an adapter can be exported for (the ones tunekit trains).
pub const ADAPTER_ARCHS: [&str; 4] = ["llama", "qwen2", "qwen3", "gemma3"];

/// Projection modules llama.cpp runs through `build_lora_mm` (so an adapter on them applies).
const LORA_MODULES: [&str; 7] =
    ["attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down"];

/// The GGUF architecture name llama.cpp uses for a model family (Mistral is converted as
/// `llama`, Gemma 3 text models as `gemma3`).
pub fn gguf_arch(family: Family) -> &'static str {
    match family {
        Family::Llama | Family::Mistral => "llama",
        Family::Qwen2 => "qwen2",
        Family::Qwen3 => "qwen3",
        Family::Gemma3 => "gemma3",
    }
}

/// What an adapter export needs to know about the base model.
#[derive(Debug, Clone, PartialEq)]
pub struct BaseArch {
    /// GGUF `general.architecture` (`llama`, `qwen2`, …).
    pub arch: String,
    pub n_head: usize,
    pub n_head_kv: usize,
    /// Tied embeddings: the base GGUF has no `output.weight`, so `lm_head` cannot be adapted.
    pub tied_embeddings: bool,
}

impl BaseArch {
    pub fn from_config(cfg: &DecoderConfig) -> Self {
        Self {
            arch: gguf_arch(cfg.family).to_string(),
            n_head: cfg.num_attention_heads,
            n_head_kv: cfg.num_key_value_heads,
            tied_embeddings: cfg.tie_word_embeddings,
        }
    }

    /// Reads a base model's architecture without loading weights: a Hugging Face directory
    /// (its `config.json`) or a GGUF file (its header).
    pub fn from_model_path(path: &Path) -> Result<Self> {
        if path.is_file() {
            let g = Gguf::open(path)?;
            let h = crate::gguf::Hparams::from_gguf(&g)?;
            return Ok(Self {
                arch: h.architecture,
                n_head: h.head_count,
                n_head_kv: h.head_count_kv,
                tied_embeddings: g.tensor("output.weight").is_none(),
            });
        }
        let config = path.join("config.json");
        if !config.is_file() {
            return Err(Error::load(
                LoadErrorKind::NotFound,
                path,
                "not a model directory with config.json, nor a GGUF file",
            ));
        }
        Ok(Self::from_config(&DecoderConfig::from_file(&config)?))
    }
}

/// What an export wrote.
#[derive(Debug, Clone, PartialEq)]
pub struct ExportSummary {
    pub tensors: usize,
    pub bytes: u64,
}

fn f32_values(t: &Tensor) -> Result<Vec<f32>> {
    Ok(t.to_dtype(DType::F32)?.to_device(&Device::Cpu)?.flatten_all()?.to_vec1::<f32>()?)
}

/// Builds the GGUF adapter for `adapter` on a base described by `base` (not yet written).
///
/// Refused with [`Error::Export`]: an architecture llama.cpp adapters are not exported for,
/// a target without a LoRA-able GGUF tensor (embeddings; `lm_head` of a tied model; norms),
/// an empty adapter, shapes that disagree with the rank or the head counts.
pub fn lora_gguf(adapter: &PeftAdapter, base: &BaseArch) -> Result<GgufWriter> {
    let bad = |m: String| Error::export(None, m);
    let arch = base.arch.as_str();
    if !ADAPTER_ARCHS.contains(&arch) {
        return Err(bad(format!(
            "cannot export an adapter for architecture `{arch}` (supported: {})",
            ADAPTER_ARCHS.join(", ")
        )));
    }
    if adapter.modules.is_empty() {
        return Err(bad("the adapter has no LoRA weights".into()));
    }
    let r = adapter.config.r;
    let alpha = if adapter.config.use_rslora {
        // llama.cpp scales by alpha/r; rsLoRA means alpha/√r.
        adapter.config.alpha * (r as f64).sqrt()
    } else {
        adapter.config.alpha
    };
    let mut w = GgufWriter::new();
    w.add("general.type", Value::String("adapter".into()))?;
    w.add("general.architecture", Value::String(arch.into()))?;
    if let Some(name) = &adapter.base_model_name_or_path {
        w.add("general.base_model.count", Value::U32(1))?;
        w.add("general.base_model.0.name", Value::String(name.clone()))?;
    }
    w.add("general.file_type", Value::U32(0))?; // all F32
    w.add("adapter.type", Value::String("lora".into()))?;
    w.add("adapter.lora.alpha", Value::F32(alpha as f32))?;

    for (module, ab) in &adapter.modules {
        let hf = format!("{module}.weight");
        let name = convert::gguf_name(arch, &hf).filter(|n| {
            let m = n.strip_suffix(".weight").and_then(|s| s.rsplit('.').next()).unwrap_or("");
            LORA_MODULES.contains(&m) || (n == "output.weight" && !base.tied_embeddings)
        });
        let Some(name) = name else {
            let why = if module.ends_with("embed_tokens") {
                "llama.cpp adapters on token embeddings use a different layout; train without targeting embed_tokens"
            } else if module == "lm_head" {
                "the base ties its embeddings, so its GGUF has no output.weight to adapt"
            } else {
                "it has no LoRA-able tensor in llama.cpp's GGUF naming"
            };
            return Err(bad(format!("cannot export the adapter on `{module}`: {why}")));
        };
        let (ra, in_dim) = ab.a.dims2()?;
        let (out_dim, rb) = ab.b.dims2()?;
        if ra != r || rb != r {
            return Err(bad(format!(
                "`{module}`: A {:?} / B {:?} do not have rank r = {r}",
                ab.a.dims(),
                ab.b.dims()
            )));
        }
        let a = f32_values(&ab.a)?;
        let mut b = f32_values(&ab.b)?;
        let proj = name.strip_suffix(".weight").and_then(|s| s.rsplit('.').next()).unwrap_or("");
        if convert::permutes_qk(arch) && (proj == "attn_q" || proj == "attn_k") {
            let heads = if proj == "attn_q" { base.n_head } else { base.n_head_kv };
            b = convert::permute_qk(&b, out_dim, r, heads)
                .map_err(|m| bad(format!("`{module}` lora_B: {m}")))?;
        }
        // PEFT [r, in] / [out, r] row-major bytes are exactly ggml ne = [in, r] / [r, out].
        w.add_tensor_f32(&format!("{name}.lora_a"), &[r, in_dim], &a)?;
        w.add_tensor_f32(&format!("{name}.lora_b"), &[out_dim, r], &b)?;
    }
    Ok(w)
}

/// Writes `adapter` as a llama.cpp LoRA GGUF at `out` (atomically; see [`lora_gguf`]).
pub fn export_lora(adapter: &PeftAdapter, base: &BaseArch, out: &Path) -> Result<ExportSummary> {
    let w = lora_gguf(adapter, base).map_err(|e| with_path(e, out))?;
    w.write(out)?;
    Ok(ExportSummary { tensors: w.tensor_count(), bytes: file_len(out) })
}

/// [`export_lora`] for a PEFT adapter directory and a base model path (HF directory or
/// GGUF file). An unreadable adapter is a `model_load` error naming the file.
pub fn export_lora_dir(adapter_dir: &Path, base_model: &Path, out: &Path) -> Result<ExportSummary> {
    use crate::train::TrainError;
    let base = BaseArch::from_model_path(base_model)?;
    let adapter = crate::train::peft::load(adapter_dir, &Device::Cpu).map_err(|e| match e {
        TrainError::BadFile { path, message } => Error::load(LoadErrorKind::InvalidConfig, path, message),
        TrainError::Json { path, source } => {
            Error::load(LoadErrorKind::InvalidJson, path, source.to_string())
        }
        TrainError::Io { path, source } => Error::io(path, &source),
        TrainError::Config(m) => Error::load(LoadErrorKind::InvalidConfig, adapter_dir, m),
        // An adapter tunekit cannot apply as PEFT does cannot be exported faithfully either.
        TrainError::UnsupportedAdapter(m) => Error::export(Some(adapter_dir), m),
        TrainError::Candle(e) => Error::Tensor(e),
        TrainError::Memory(m) => Error::load(LoadErrorKind::InvalidConfig, adapter_dir, m.message),
    })?;
    export_lora(&adapter, &base, out)
}

fn file_len(path: &Path) -> u64 {
    std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}

fn with_path(e: Error, path: &Path) -> Error {
    match e {
        Error::Export { path: None, message } => Error::Export { path: Some(path.to_path_buf()), message },
        other => other,
    }
}

/// Tensor data type of the matrices in an exported base (1-D tensors are always F32).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BaseDtype {
    #[default]
    F32,
    F16,
    /// ggml's Q8_0 (8.5 bits per weight); llama.cpp's `--outtype q8_0`.
    Q8_0,
    /// Q4_K (4.5 bits per weight) where a row is whole 256-value blocks, Q8_0 otherwise.
    Q4K,
}

/// Options of [`export_model`].
#[derive(Debug, Clone, Default)]
pub struct ModelExportOptions {
    pub dtype: BaseDtype,
    /// llama.cpp's pre-tokenizer name (`tokenizer.ggml.pre`). When None it is recognised from
    /// `tokenizer.json`; an unrecognised pre-tokenizer is an error naming this option.
    pub tokenizer_pre: Option<String>,
}

const LLAMA3_REGEX: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
const QWEN2_REGEX: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

/// Recognises the byte-level BPE pre-tokenizers whose llama.cpp counterpart splits text
/// exactly the same way: GPT-2's regex (`gpt-2`), single digits then GPT-2's regex
/// (`smollm`), Llama 3's and Qwen 2's split regexes (`llama-bpe`, `qwen2`).
pub fn detect_tokenizer_pre(pre_tokenizer: &Json) -> Option<&'static str> {
    let ty = |v: &Json| v.get("type").and_then(Json::as_str).map(str::to_string);
    let byte_level = |v: &Json, regex: bool| {
        ty(v).as_deref() == Some("ByteLevel")
            && v.get("use_regex").and_then(Json::as_bool).unwrap_or(true) == regex
    };
    let split = |v: &Json, pattern: &str| {
        ty(v).as_deref() == Some("Split")
            && v.pointer("/pattern/Regex").and_then(Json::as_str) == Some(pattern)
    };
    let items: Vec<&Json> = match ty(pre_tokenizer).as_deref() {
        Some("Sequence") => pre_tokenizer.get("pretokenizers")?.as_array()?.iter().collect(),
        _ => vec![pre_tokenizer],
    };
    match items.as_slice() {
        [b] if byte_level(b, true) => Some("gpt-2"),
        [d, b]
            if ty(d).as_deref() == Some("Digits")
                && d.get("individual_digits").and_then(Json::as_bool) == Some(true)
                && byte_level(b, true) =>
        {
            Some("smollm")
        }
        [s, b] if split(s, LLAMA3_REGEX) && byte_level(b, false) => Some("llama-bpe"),
        [s, b] if split(s, QWEN2_REGEX) && byte_level(b, false) => Some("qwen2"),
        _ => None,
    }
}

fn read_json(path: &Path) -> Result<Option<Json>> {
    match std::fs::read_to_string(path) {
        Ok(text) => serde_json::from_str(&text)
            .map(Some)
            .map_err(|e| Error::load(LoadErrorKind::InvalidJson, path, e.to_string())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io(path, &e)),
    }
}

/// `tokenizer.ggml.*` metadata for a byte-level BPE `tokenizer.json` (llama.cpp's `gpt2`
/// tokenizer model), padded to `vocab_size` entries like llama.cpp's converter does.
fn add_bpe_tokenizer(w: &mut GgufWriter, dir: &Path, vocab_size: usize, pre: Option<&str>) -> Result<()> {
    let path = dir.join("tokenizer.json");
    let tok = read_json(&path)?
        .ok_or_else(|| Error::load(LoadErrorKind::MissingTokenizer, &path, "tokenizer.json is missing"))?;
    let refuse = |m: String| Error::export(Some(&path), m);
    let model = tok.get("model").ok_or_else(|| refuse("no `model` section".into()))?;
    if model.get("type").and_then(Json::as_str) != Some("BPE")
        || model.get("byte_fallback").and_then(Json::as_bool) == Some(true)
        || tok.pointer("/decoder/type").and_then(Json::as_str) != Some("ByteLevel")
    {
        return Err(refuse(
            "only byte-level BPE tokenizers (llama.cpp's `gpt2` model) can be exported so far; \
             SentencePiece-style tokenizers are not supported"
                .into(),
        ));
    }
    let pre = match pre {
        Some(p) => p.to_string(),
        None => tok
            .get("pre_tokenizer")
            .and_then(detect_tokenizer_pre)
            .ok_or_else(|| {
                refuse(format!(
                    "its pre-tokenizer {} has no known llama.cpp equivalent; pass tokenizerPre \
                     (--tokenizer-pre) with the llama.cpp name that splits text the same way",
                    tok.get("pre_tokenizer").map(Json::to_string).unwrap_or_else(|| "null".into())
                ))
            })?
            .to_string(),
    };
    let mut tokens: Vec<Option<String>> = vec![None; vocab_size];
    let mut types = vec![1i32; vocab_size]; // NORMAL
    let vocab = model.get("vocab").and_then(Json::as_object).ok_or_else(|| refuse("no BPE vocab".into()))?;
    let mut place = |id: u64, text: &str, ty: i32| -> Result<()> {
        let slot = tokens.get_mut(id as usize).ok_or_else(|| {
            refuse(format!("token `{text}` has id {id}, beyond the model's vocab_size {vocab_size}"))
        })?;
        *slot = Some(text.to_string());
        types[id as usize] = ty;
        Ok(())
    };
    for (text, id) in vocab {
        let id = id.as_u64().ok_or_else(|| refuse(format!("token `{text}` has a non-integer id")))?;
        place(id, text, 1)?;
    }
    for added in tok.get("added_tokens").and_then(Json::as_array).into_iter().flatten() {
        let (Some(id), Some(text)) =
            (added.get("id").and_then(Json::as_u64), added.get("content").and_then(Json::as_str))
        else {
            return Err(refuse(format!("malformed added token {added}")));
        };
        let special = added.get("special").and_then(Json::as_bool).unwrap_or(false);
        place(id, text, if special { 3 } else { 4 })?; // CONTROL / USER_DEFINED
    }
    let tokens: Vec<String> = tokens
        .into_iter()
        .enumerate()
        .map(|(i, t)| {
            t.unwrap_or_else(|| {
                types[i] = 5; // UNUSED: embedding rows beyond the tokenizer's vocabulary
                format!("[PAD{i}]")
            })
        })
        .collect();
    let merges: Vec<String> = match model.get("merges").and_then(Json::as_array) {
        Some(list) => list
            .iter()
            .map(|m| match m {
                Json::String(s) => Ok(s.clone()),
                Json::Array(pair) if pair.len() == 2 && pair.iter().all(Json::is_string) => {
                    Ok(format!("{} {}", pair[0].as_str().unwrap(), pair[1].as_str().unwrap()))
                }
                other => Err(refuse(format!("malformed merge {other}"))),
            })
            .collect::<Result<_>>()?,
        None => Vec::new(),
    };
    w.add("tokenizer.ggml.model", Value::String("gpt2".into()))?;
    w.add("tokenizer.ggml.pre", Value::String(pre))?;
    w.add("tokenizer.ggml.tokens", Value::Array(Array::String(tokens.clone())))?;
    w.add("tokenizer.ggml.token_type", Value::Array(Array::I32(types)))?;
    w.add("tokenizer.ggml.merges", Value::Array(Array::String(merges)))?;

    // Special ids and BOS/EOS behaviour come from tokenizer_config.json, like HF loads them.
    let tc = read_json(&dir.join("tokenizer_config.json"))?.unwrap_or(Json::Null);
    let id_of = |key: &str| {
        let text = match tc.get(key) {
            Some(Json::String(s)) => Some(s.as_str()),
            Some(Json::Object(o)) => o.get("content").and_then(Json::as_str),
            _ => None,
        }?;
        tokens.iter().position(|t| t == text).map(|i| i as u32)
    };
    for (key, gguf_key) in [
        ("bos_token", "tokenizer.ggml.bos_token_id"),
        ("eos_token", "tokenizer.ggml.eos_token_id"),
        ("unk_token", "tokenizer.ggml.unknown_token_id"),
        ("pad_token", "tokenizer.ggml.padding_token_id"),
    ] {
        if let Some(id) = id_of(key) {
            w.add(gguf_key, Value::U32(id))?;
        }
    }
    for (key, gguf_key) in
        [("add_bos_token", "tokenizer.ggml.add_bos_token"), ("add_eos_token", "tokenizer.ggml.add_eos_token")]
    {
        if let Some(b) = tc.get(key).and_then(Json::as_bool) {
            w.add(gguf_key, Value::Bool(b))?;
        }
    }
    if let Some(t) = tc.get("chat_template").and_then(Json::as_str) {
        w.add("tokenizer.chat_template", Value::String(t.into()))?;
    }
    Ok(())
}

/// Converts a Hugging Face model directory to a GGUF base llama.cpp loads: tensors renamed
/// ([`convert::gguf_name`]), llama q/k rows (and biases) permuted, `lm_head` dropped when
/// embeddings are tied, hyperparameters under `{arch}.*`, and the byte-level BPE tokenizer.
/// Written atomically.
///
/// Supported so far: the `llama` (Llama, Mistral), `qwen2` and `qwen3` GGUF architectures
/// without Llama-3 rope scaling or sliding windows, with a byte-level BPE tokenizer.
/// Everything else is refused with [`Error::Export`] rather than written wrong.
pub fn export_model(dir: &Path, out: &Path, options: &ModelExportOptions) -> Result<ExportSummary> {
    let config_path = dir.join("config.json");
    if !config_path.is_file() {
        return Err(Error::load(LoadErrorKind::NotFound, &config_path, "config.json is missing"));
    }
    let cfg = DecoderConfig::from_file(&config_path)?;
    let w = model_gguf(dir, &cfg, options).map_err(|e| with_path(e, out))?;
    w.write(out)?;
    Ok(ExportSummary { tensors: w.tensor_count(), bytes: file_len(out) })
}

fn model_gguf(dir: &Path, cfg: &DecoderConfig, options: &ModelExportOptions) -> Result<GgufWriter> {
    let refuse = |m: String| Error::export(None, m);
    let arch = gguf_arch(cfg.family);
    // What llama.cpp's loader for each architecture accepts (llama-model.cpp): Qwen 2 requires
    // q/k/v biases, Qwen 3 takes none, Llama takes optional attention biases.
    let biases_ok = match arch {
        "llama" => !cfg.mlp_bias,
        "qwen2" => cfg.qkv_bias && !cfg.o_bias && !cfg.mlp_bias,
        "qwen3" => !cfg.qkv_bias && !cfg.o_bias && !cfg.mlp_bias,
        _ => {
            return Err(refuse(format!(
            "exporting `{}` models to GGUF is not supported yet (supported: Llama, Mistral, Qwen 2, Qwen 3)",
            cfg.family.model_type()
        )))
        }
    };
    if !biases_ok {
        return Err(refuse(format!(
            "this `{}` model's biases (q/k/v {}, o {}, mlp {}) do not fit llama.cpp's `{arch}` architecture",
            cfg.family.model_type(),
            cfg.qkv_bias,
            cfg.o_bias,
            cfg.mlp_bias
        )));
    }
    // llama.cpp runs these architectures with full attention on every layer.
    if let Some(w) = cfg.sliding_window.iter().flatten().find(|&&w| w < cfg.max_position_embeddings) {
        return Err(refuse(format!(
            "the model uses sliding-window attention (window {w}), which llama.cpp's `{arch}` architecture ignores"
        )));
    }
    let mut w = GgufWriter::new();
    w.add("general.architecture", Value::String(arch.into()))?;
    w.add("general.type", Value::String("model".into()))?;
    if let Some(name) =
        dir.canonicalize().ok().and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
    {
        w.add("general.name", Value::String(name))?;
    }
    // llama.cpp's `llama_ftype`: ALL_F32, MOSTLY_F16, MOSTLY_Q8_0, MOSTLY_Q4_K_S.
    let file_type = match options.dtype {
        BaseDtype::F32 => 0u32,
        BaseDtype::F16 => 1,
        BaseDtype::Q8_0 => 7,
        BaseDtype::Q4K => 14,
    };
    w.add("general.file_type", Value::U32(file_type))?;
    let k = |s: &str| format!("{arch}.{s}");
    let u32v = |n: usize| Value::U32(n as u32);
    w.add(k("context_length"), u32v(cfg.max_position_embeddings))?;
    w.add(k("embedding_length"), u32v(cfg.hidden_size))?;
    w.add(k("block_count"), u32v(cfg.num_hidden_layers))?;
    w.add(k("feed_forward_length"), u32v(cfg.intermediate_size))?;
    w.add(k("attention.head_count"), u32v(cfg.num_attention_heads))?;
    w.add(k("attention.head_count_kv"), u32v(cfg.num_key_value_heads))?;
    w.add(k("attention.layer_norm_rms_epsilon"), Value::F32(cfg.rms_norm_eps as f32))?;
    w.add(k("rope.freq_base"), Value::F32(cfg.rope_theta as f32))?;
    w.add(k("rope.dimension_count"), u32v(cfg.head_dim))?;
    if cfg.head_dim * cfg.num_attention_heads != cfg.hidden_size {
        // llama.cpp assumes hidden / heads unless told.
        w.add(k("attention.key_length"), u32v(cfg.head_dim))?;
        w.add(k("attention.value_length"), u32v(cfg.head_dim))?;
    }
    w.add(k("vocab_size"), u32v(cfg.vocab_size))?;
    match cfg.rope_scaling {
        RopeScaling::None => {}
        RopeScaling::Linear { factor } => {
            w.add(k("rope.scaling.type"), Value::String("linear".into()))?;
            w.add(k("rope.scaling.factor"), Value::F32(factor as f32))?;
        }
        RopeScaling::Llama3 { .. } | RopeScaling::FreqFactors(_) => {
            // As convert_hf_to_gguf.py does: one divisor per rotary frequency.
            let plain = Rotary::with(cfg.head_dim, cfg.rope_theta, &RopeScaling::None);
            let scaled = Rotary::with(cfg.head_dim, cfg.rope_theta, &cfg.rope_scaling);
            let factors: Vec<f32> = plain.inv_freq.iter().zip(&scaled.inv_freq).map(|(a, b)| a / b).collect();
            w.add_tensor_f32("rope_freqs.weight", &[factors.len()], &factors)?;
        }
    }
    add_bpe_tokenizer(&mut w, dir, cfg.vocab_size, options.tokenizer_pre.as_deref())?;

    let files = weight_files(dir)?;
    let mut tensors = BTreeMap::new();
    for file in &files {
        let loaded = candle_core::safetensors::load(file, &Device::Cpu)
            .map_err(|e| Error::load(LoadErrorKind::InvalidHeader, file, e.to_string()))?;
        tensors.extend(loaded);
    }
    // Embeddings first, then layers in numeric order, then the final norm/head (the order
    // llama.cpp's converter writes; loaders do not depend on it).
    let mut named = Vec::new();
    for (hf, t) in tensors {
        if hf.ends_with("rotary_emb.inv_freq") || (hf == "lm_head.weight" && cfg.tie_word_embeddings) {
            continue; // recomputed by llama.cpp / shared with token_embd
        }
        let name = convert::gguf_name(arch, &hf)
            .ok_or_else(|| refuse(format!("tensor `{hf}` has no GGUF name for `{arch}`")))?;
        named.push((sort_key(&name), name, t));
    }
    named.sort_by(|a, b| a.0.cmp(&b.0));
    for (_, name, t) in named {
        let shape = t.dims().to_vec();
        let mut data = f32_values(&t)?;
        let module = name.rsplit('.').nth(1).unwrap_or("");
        if convert::permutes_qk(arch) && (module == "attn_q" || module == "attn_k") {
            let heads = if module == "attn_q" { cfg.num_attention_heads } else { cfg.num_key_value_heads };
            let cols = shape[1..].iter().product::<usize>();
            data = convert::permute_qk(&data, shape[0], cols, heads)
                .map_err(|m| refuse(format!("`{name}`: {m}")))?;
        }
        let quantized = match options.dtype {
            BaseDtype::Q8_0 => Some(BaseFormat::Q8_0),
            BaseDtype::Q4K => Some(BaseFormat::Q4K),
            _ => None,
        };
        let cols = *shape.last().unwrap_or(&1);
        match quantized.and_then(|f| f.quantize_to(cols)) {
            // Matrices only; the same per-row fallback as `baseWeights` (Q4_K → Q8_0 → BF16).
            Some(t) if shape.len() >= 2 => w.add_tensor_quantized(&name, &shape, &data, t)?,
            _ if shape.len() >= 2 && options.dtype == BaseDtype::F16 => {
                w.add_tensor_f16(&name, &shape, &data)?
            }
            _ => w.add_tensor_f32(&name, &shape, &data)?,
        }
    }
    Ok(w)
}

/// The model's weight files, the way Hugging Face finds them: the shards named by
/// `model.safetensors.index.json`, else `model.safetensors` (other `.safetensors` files in the
/// directory, such as test expectations, are not weights).
fn weight_files(dir: &Path) -> Result<Vec<std::path::PathBuf>> {
    let index = dir.join("model.safetensors.index.json");
    if let Some(v) = read_json(&index)? {
        let bad = |m: String| Error::load(LoadErrorKind::InvalidJson, &index, m);
        let map =
            v.get("weight_map").and_then(Json::as_object).ok_or_else(|| bad("no `weight_map`".into()))?;
        let mut names = std::collections::BTreeSet::new();
        for (tensor, file) in map {
            match file.as_str() {
                Some(f) if !f.is_empty() && !f.contains(['/', '\\']) && f != ".." => {
                    names.insert(f.to_string())
                }
                _ => return Err(bad(format!("weight_map[`{tensor}`] = {file} is not a plain file name"))),
            };
        }
        return Ok(names.into_iter().map(|n| dir.join(n)).collect());
    }
    let single = dir.join("model.safetensors");
    if single.is_file() {
        return Ok(vec![single]);
    }
    Err(Error::load(
        LoadErrorKind::NotFound,
        dir,
        "no model.safetensors or model.safetensors.index.json (only safetensors weights can be exported)",
    ))
}

fn sort_key(name: &str) -> (u8, usize, String) {
    match name.strip_prefix("blk.").and_then(|r| r.split_once('.')) {
        Some((n, rest)) => (1, n.parse().unwrap_or(usize::MAX), rest.to_string()),
        None if name.starts_with("token_embd") => (0, 0, name.to_string()),
        None => (2, 0, name.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::lora::LoraConfig;
    use crate::train::peft::AdapterWeights;

    fn tensor(rows: usize, cols: usize, seed: f32) -> Tensor {
        let v: Vec<f32> = (0..rows * cols).map(|i| ((i as f32 + seed) * 0.37).sin()).collect();
        Tensor::from_vec(v, (rows, cols), &Device::Cpu).unwrap()
    }

    /// A rank-2 adapter on a llama-like model: hidden 8, 2 heads (head_dim 4), 1 kv head.
    fn adapter(modules: &[&str], rslora: bool) -> PeftAdapter {
        let mut map = BTreeMap::new();
        for (i, m) in modules.iter().enumerate() {
            let out = if m.ends_with("k_proj") { 4 } else { 8 };
            map.insert(
                m.to_string(),
                AdapterWeights { a: tensor(2, 8, i as f32), b: tensor(out, 2, 10.0 + i as f32) },
            );
        }
        let config =
            LoraConfig { r: 2, alpha: 16.0, use_rslora: rslora, dropout: 0.0, target_modules: vec![] };
        PeftAdapter { config, base_model_name_or_path: Some("tiny".into()), modules: map, targeting: None }
    }

    fn base(arch: &str) -> BaseArch {
        BaseArch { arch: arch.into(), n_head: 2, n_head_kv: 1, tied_embeddings: true }
    }

    const QKV: [&str; 4] = [
        "model.layers.0.self_attn.q_proj",
        "model.layers.0.self_attn.k_proj",
        "model.layers.1.self_attn.v_proj",
        "model.layers.1.mlp.down_proj",
    ];

    fn parse(w: &GgufWriter) -> (Vec<u8>, Gguf) {
        let bytes = w.to_bytes().unwrap();
        let g = Gguf::parse(&bytes, Path::new("adapter.gguf")).unwrap();
        (bytes, g)
    }

    fn matmul(b: &[f32], a: &[f32], out: usize, r: usize, inp: usize) -> Vec<f32> {
        let mut d = vec![0f32; out * inp];
        for o in 0..out {
            for i in 0..inp {
                d[o * inp + i] = (0..r).map(|k| b[o * r + k] * a[k * inp + i]).sum();
            }
        }
        d
    }

    #[test]
    fn gguf_lora_metadata_names_and_shapes_follow_llama_cpp() {
        let (_, g) = parse(&lora_gguf(&adapter(&QKV, false), &base("llama")).unwrap());
        let s = |k: &str| g.get(k).and_then(Value::as_str).map(str::to_string);
        assert_eq!(s("general.type").as_deref(), Some("adapter"));
        assert_eq!(s("general.architecture").as_deref(), Some("llama"));
        assert_eq!(s("adapter.type").as_deref(), Some("lora"));
        assert_eq!(g.get("adapter.lora.alpha"), Some(&Value::F32(16.0)));
        let names: Vec<&str> = g.tensors.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "blk.0.attn_k.weight.lora_a",
                "blk.0.attn_k.weight.lora_b",
                "blk.0.attn_q.weight.lora_a",
                "blk.0.attn_q.weight.lora_b",
                "blk.1.ffn_down.weight.lora_a",
                "blk.1.ffn_down.weight.lora_b",
                "blk.1.attn_v.weight.lora_a",
                "blk.1.attn_v.weight.lora_b",
            ]
        );
        // a.ne = [in, r], b.ne = [r, out]: what llama_adapter_lora_init checks.
        assert_eq!(g.tensor("blk.0.attn_k.weight.lora_a").unwrap().dims, vec![8, 2]);
        assert_eq!(g.tensor("blk.0.attn_k.weight.lora_b").unwrap().dims, vec![2, 4]);
        assert_eq!(g.tensor("blk.0.attn_q.weight.lora_b").unwrap().dims, vec![2, 8]);
        assert!(g.tensors.iter().all(|t| t.ggml_type == crate::gguf::GgmlType::F32));
    }

    #[test]
    fn gguf_lora_rslora_alpha_keeps_the_scale() {
        let (_, g) = parse(&lora_gguf(&adapter(&QKV, true), &base("qwen3")).unwrap());
        let Some(Value::F32(alpha)) = g.get("adapter.lora.alpha") else { panic!("no alpha") };
        // llama.cpp's alpha / r must equal rsLoRA's 16 / √2.
        assert!((alpha / 2.0 - 16.0 / 2f32.sqrt()).abs() < 1e-6, "{alpha}");
    }

    #[test]
    fn gguf_lora_permutes_only_llama_q_k_lora_b() {
        let ad = adapter(&QKV, false);
        for arch in ["llama", "qwen2", "qwen3", "gemma3"] {
            let (bytes, g) = parse(&lora_gguf(&ad, &base(arch)).unwrap());
            for (module, gguf, out, heads) in [
                ("model.layers.0.self_attn.q_proj", "blk.0.attn_q.weight", 8, 2),
                ("model.layers.0.self_attn.k_proj", "blk.0.attn_k.weight", 4, 1),
                ("model.layers.1.self_attn.v_proj", "blk.1.attn_v.weight", 8, 0),
                ("model.layers.1.mlp.down_proj", "blk.1.ffn_down.weight", 8, 0),
            ] {
                let pair = &ad.modules[module];
                let (a0, b0) = (f32_values(&pair.a).unwrap(), f32_values(&pair.b).unwrap());
                let a = g.load_f32_from(&bytes, &format!("{gguf}.lora_a")).unwrap().1;
                let b = g.load_f32_from(&bytes, &format!("{gguf}.lora_b")).unwrap().1;
                assert_eq!(a, a0, "{arch} {gguf}: lora_a is PEFT's lora_A unchanged");
                let hf_delta = matmul(&b0, &a0, out, 2, 8);
                let delta = matmul(&b, &a, out, 2, 8);
                if arch == "llama" && heads > 0 {
                    // B@A of the exported pair is the HF delta with llama.cpp's q/k row order.
                    assert_eq!(delta, convert::permute_qk(&hf_delta, out, 8, heads).unwrap(), "{gguf}");
                    assert_ne!(b, b0, "{gguf} lora_b is permuted");
                } else {
                    assert_eq!(b, b0, "{arch} {gguf}: lora_b unchanged");
                    assert_eq!(delta, hf_delta);
                }
            }
        }
    }

    #[test]
    fn gguf_lora_refuses_what_llama_cpp_cannot_load() {
        let err = |ad: &PeftAdapter, b: &BaseArch| {
            let e = lora_gguf(ad, b).unwrap_err();
            assert_eq!(e.code(), "export_failed");
            e.to_string()
        };
        let e = err(&adapter(&["model.embed_tokens"], false), &base("llama"));
        assert!(e.contains("model.embed_tokens") && e.contains("embeddings"), "{e}");
        let e = err(&adapter(&["lm_head"], false), &base("llama"));
        assert!(e.contains("lm_head") && e.contains("ties"), "{e}");
        let e = err(&adapter(&["model.layers.0.input_layernorm"], false), &base("llama"));
        assert!(e.contains("input_layernorm"), "{e}");
        let e = err(&adapter(&QKV, false), &base("gpt2"));
        assert!(e.contains("`gpt2`") && e.contains("llama, qwen2"), "{e}");
        let e = err(&adapter(&[], false), &base("llama"));
        assert!(e.contains("no LoRA weights"), "{e}");
        // 3 heads cannot split q_proj's 8 rows.
        let e = err(&adapter(&QKV, false), &BaseArch { n_head: 3, ..base("llama") });
        assert!(e.contains("q_proj") && e.contains("heads"), "{e}");
        // An untied base has output.weight, which llama.cpp adapts like any projection.
        let untied = BaseArch { tied_embeddings: false, ..base("llama") };
        let (_, g) = parse(&lora_gguf(&adapter(&["lm_head"], false), &untied).unwrap());
        assert!(g.tensor("output.weight.lora_b").is_some());
    }

    #[test]
    fn gguf_pre_tokenizer_detection_is_exact() {
        let j = |s: &str| serde_json::from_str::<Json>(s).unwrap();
        let digits = r#"{"type":"Sequence","pretokenizers":[{"type":"Digits","individual_digits":true},{"type":"ByteLevel","add_prefix_space":false,"use_regex":true}]}"#;
        assert_eq!(detect_tokenizer_pre(&j(digits)), Some("smollm"));
        assert_eq!(detect_tokenizer_pre(&j(r#"{"type":"ByteLevel","use_regex":true}"#)), Some("gpt-2"));
        let llama3 = serde_json::json!({"type": "Sequence", "pretokenizers": [
            {"type": "Split", "pattern": {"Regex": LLAMA3_REGEX}, "behavior": "Isolated", "invert": false},
            {"type": "ByteLevel", "add_prefix_space": false, "use_regex": false}]});
        assert_eq!(detect_tokenizer_pre(&llama3), Some("llama-bpe"));
        let grouped = digits.replace("true},", "false},");
        assert_eq!(detect_tokenizer_pre(&j(&grouped)), None, "grouped digits are another split");
        assert_eq!(detect_tokenizer_pre(&j(r#"{"type":"Metaspace"}"#)), None);
    }
}
