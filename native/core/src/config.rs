//! `config.json` → one architecture-neutral [`DecoderConfig`].
//!
//! Every supported family is the same pre-norm decoder with switches (biases, q/k norm,
//! norm offset, activation, embedding scale, per-layer sliding window, rope variant), so
//! adding an architecture means filling in these fields from its keys rather than writing a
//! new model.

use std::path::Path;

use serde_json::{Map, Value};

use crate::error::{Error, LoadErrorKind, Result};

/// `model_type` values this build implements, with the `architectures` class name that
/// goes with each. Listed in errors so users see what would work.
pub const SUPPORTED: &[(&str, &str)] = &[
    ("llama", "LlamaForCausalLM"),
    ("mistral", "MistralForCausalLM"),
    ("qwen2", "Qwen2ForCausalLM"),
    ("qwen3", "Qwen3ForCausalLM"),
    ("gemma3_text", "Gemma3ForCausalLM"),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    Llama,
    Mistral,
    Qwen2,
    Qwen3,
    Gemma3,
}

impl Family {
    pub fn model_type(self) -> &'static str {
        match self {
            Self::Llama => "llama",
            Self::Mistral => "mistral",
            Self::Qwen2 => "qwen2",
            Self::Qwen3 => "qwen3",
            Self::Gemma3 => "gemma3_text",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activation {
    Silu,
    /// `gelu_pytorch_tanh` (Gemma).
    GeluTanh,
}

#[derive(Debug, Clone, PartialEq)]
pub enum RopeScaling {
    None,
    /// Positions divided by `factor` (`rope_type: "linear"`).
    Linear {
        factor: f64,
    },
    /// Each rotary frequency divided by its own factor (llama.cpp's `rope_freqs.weight`,
    /// which is how GGUF files store Llama 3.x scaling: one factor per frequency).
    FreqFactors(Vec<f32>),
    /// Llama 3.x frequency-band scaling.
    Llama3 {
        factor: f64,
        low_freq_factor: f64,
        high_freq_factor: f64,
        original_max_position_embeddings: f64,
    },
}

/// The rotary embedding of sliding-window layers when it differs from the global one
/// (Gemma 3: `rope_local_base_freq`, or `rope_parameters.sliding_attention`).
#[derive(Debug, Clone, PartialEq)]
pub struct LocalRope {
    pub theta: f64,
    pub scaling: RopeScaling,
    /// Per layer: whether it uses this rope instead of `rope_theta` / `rope_scaling`.
    pub layers: Vec<bool>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct DecoderConfig {
    pub family: Family,
    pub hidden_size: usize,
    pub intermediate_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub num_key_value_heads: usize,
    pub head_dim: usize,
    pub vocab_size: usize,
    pub max_position_embeddings: usize,
    pub rms_norm_eps: f64,
    pub rope_theta: f64,
    pub rope_scaling: RopeScaling,
    pub tie_word_embeddings: bool,
    /// Bias on q/k/v projections (Qwen2; Llama's `attention_bias`).
    pub qkv_bias: bool,
    /// Bias on o_proj (Llama's `attention_bias` sets both; Qwen2 has none here).
    pub o_bias: bool,
    pub mlp_bias: bool,
    /// RMSNorm over head_dim on q and k before rope (Qwen3, Gemma 3).
    pub qk_norm: bool,
    /// Norm weights applied as `(1 + w)` (Gemma) instead of `w`.
    pub norm_weight_offset: bool,
    pub activation: Activation,
    /// Embeddings multiplied by this (Gemma: sqrt(hidden)); None for the others.
    pub embed_scale: Option<f64>,
    /// Attention score scale; `head_dim^-0.5` unless the architecture says otherwise.
    pub attn_scale: f64,
    /// Per layer: how many most-recent keys a query may see, or None for full causal.
    pub sliding_window: Vec<Option<usize>>,
    /// A second rope for some layers (Gemma 3's sliding layers); None: one rope for all.
    pub local_rope: Option<LocalRope>,
    /// Gemma 3's extra norms on the attention and MLP outputs, before each residual add
    /// (`post_attention_layernorm` / `post_feedforward_layernorm` in its checkpoints).
    pub sandwich_norms: bool,
    /// `logits = cap · tanh(logits / cap)` when set (Gemma's `final_logit_softcapping`).
    pub final_logit_softcapping: Option<f64>,
    pub bos_token_id: Option<u32>,
    /// From config.json; generation_config.json may add more (see `model::Model`).
    pub eos_token_ids: Vec<u32>,
}

struct Keys<'a> {
    map: &'a Map<String, Value>,
    path: &'a Path,
}

impl<'a> Keys<'a> {
    fn err(&self, message: String) -> Error {
        Error::load(LoadErrorKind::InvalidConfig, self.path, message)
    }

    fn present(&self, key: &str) -> Option<&'a Value> {
        self.map.get(key).filter(|v| !v.is_null())
    }

    fn usize(&self, key: &str) -> Result<usize> {
        self.opt_usize(key)?.ok_or_else(|| self.err(format!("`{key}` is required")))
    }

    fn opt_usize(&self, key: &str) -> Result<Option<usize>> {
        match self.present(key) {
            None => Ok(None),
            Some(v) => v
                .as_u64()
                .and_then(|n| usize::try_from(n).ok())
                .map(Some)
                .ok_or_else(|| self.err(format!("`{key}` must be a non-negative integer, got {v}"))),
        }
    }

    fn f64_or(&self, key: &str, default: f64) -> Result<f64> {
        match self.present(key) {
            None => Ok(default),
            Some(v) => v.as_f64().ok_or_else(|| self.err(format!("`{key}` must be a number, got {v}"))),
        }
    }

    fn bool_or(&self, key: &str, default: bool) -> Result<bool> {
        match self.present(key) {
            None => Ok(default),
            Some(v) => v.as_bool().ok_or_else(|| self.err(format!("`{key}` must be true or false, got {v}"))),
        }
    }

    fn str(&self, key: &str) -> Option<&'a str> {
        self.present(key).and_then(|v| v.as_str())
    }

    /// `eos_token_id` may be an integer or a list of integers.
    fn id_list(&self, key: &str) -> Result<Vec<u32>> {
        id_list(self.present(key))
            .ok_or_else(|| self.err(format!("`{key}` must be a token id or a list of ids")))
    }
}

/// Parses a token id or a list of ids; None if the shape is wrong; empty for absent.
pub(crate) fn id_list(value: Option<&Value>) -> Option<Vec<u32>> {
    let one = |v: &Value| v.as_u64().and_then(|n| u32::try_from(n).ok());
    match value {
        None | Some(Value::Null) => Some(Vec::new()),
        Some(Value::Array(items)) => items.iter().map(one).collect(),
        Some(v) => one(v).map(|id| vec![id]),
    }
}

fn unsupported(path: &Path, what: &str) -> Error {
    let list = SUPPORTED.iter().map(|(t, a)| format!("{t} ({a})")).collect::<Vec<_>>().join(", ");
    Error::load(
        LoadErrorKind::UnsupportedArchitecture,
        path,
        format!("unsupported architecture {what}; supported: {list}"),
    )
}

fn family_of(keys: &Keys<'_>) -> Result<Family> {
    let from_type = |t: &str| match t {
        "llama" => Some(Family::Llama),
        "mistral" => Some(Family::Mistral),
        "qwen2" => Some(Family::Qwen2),
        "qwen3" => Some(Family::Qwen3),
        "gemma3_text" => Some(Family::Gemma3),
        _ => None,
    };
    if keys.str("model_type") == Some("gemma3") {
        return Err(Error::load(
            LoadErrorKind::UnsupportedArchitecture,
            keys.path,
            "model_type `gemma3` is the multimodal Gemma3ForConditionalGeneration, whose weights live under \
             another prefix; only the text-only gemma3_text (Gemma3ForCausalLM) checkpoints are supported",
        ));
    }
    if let Some(t) = keys.str("model_type") {
        return from_type(t).ok_or_else(|| unsupported(keys.path, &format!("model_type `{t}`")));
    }
    // Some older exports omit model_type; fall back to the class name.
    let arch = keys
        .present("architectures")
        .and_then(|v| v.as_array())
        .and_then(|a| a.first())
        .and_then(|v| v.as_str())
        .ok_or_else(|| keys.err("neither `model_type` nor `architectures` is set".into()))?;
    SUPPORTED
        .iter()
        .find(|(_, a)| *a == arch)
        .and_then(|(t, _)| from_type(t))
        .ok_or_else(|| unsupported(keys.path, &format!("`{arch}`")))
}

/// Reads the rope base and scaling from either transformers 5's `rope_parameters` or the
/// older top-level `rope_theta` + `rope_scaling` (what most Hub checkpoints still carry).
fn rope_of(keys: &Keys<'_>, default_theta: f64) -> Result<(f64, RopeScaling)> {
    let (theta, params) = match keys.present("rope_parameters") {
        Some(Value::Object(p)) => {
            let theta = match p.get("rope_theta") {
                Some(v) => v
                    .as_f64()
                    .ok_or_else(|| keys.err("`rope_parameters.rope_theta` must be a number".into()))?,
                None => keys.f64_or("rope_theta", default_theta)?,
            };
            (theta, Some(p))
        }
        Some(other) => return Err(keys.err(format!("`rope_parameters` must be an object, got {other}"))),
        None => {
            let theta = keys.f64_or("rope_theta", default_theta)?;
            match keys.present("rope_scaling") {
                Some(Value::Object(p)) => (theta, Some(p)),
                Some(other) => {
                    return Err(keys.err(format!("`rope_scaling` must be an object or null, got {other}")))
                }
                None => (theta, None),
            }
        }
    };
    let Some(p) = params else { return Ok((theta, RopeScaling::None)) };
    Ok((theta, scaling_of(keys, p)?))
}

/// The scaling described by a `rope_parameters` / `rope_scaling` object.
fn scaling_of(keys: &Keys<'_>, p: &Map<String, Value>) -> Result<RopeScaling> {
    let kind = p.get("rope_type").or_else(|| p.get("type")).and_then(|v| v.as_str()).unwrap_or("default");
    let num = |k: &str| -> Result<f64> {
        p.get(k)
            .and_then(|v| v.as_f64())
            .ok_or_else(|| keys.err(format!("rope scaling `{kind}` needs a numeric `{k}`")))
    };
    let scaling = match kind {
        "default" => RopeScaling::None,
        "linear" => RopeScaling::Linear { factor: num("factor")? },
        "llama3" => RopeScaling::Llama3 {
            factor: num("factor")?,
            low_freq_factor: num("low_freq_factor")?,
            high_freq_factor: num("high_freq_factor")?,
            original_max_position_embeddings: num("original_max_position_embeddings")?,
        },
        other => {
            return Err(Error::load(
                LoadErrorKind::UnsupportedArchitecture,
                keys.path,
                format!("rope scaling type `{other}` is not supported; supported: default, linear, llama3"),
            ))
        }
    };
    Ok(scaling)
}

/// Gemma 3's two ropes, `(global, sliding)`: transformers 5 nests them in `rope_parameters`
/// under `full_attention` / `sliding_attention`; older checkpoints (the Hub's 270M among them)
/// carry `rope_theta` + `rope_scaling` for the global layers and `rope_local_base_freq` for the
/// sliding ones. Defaults 1e6 and 1e4 as in `Gemma3TextConfig`.
fn gemma3_ropes(keys: &Keys<'_>) -> Result<((f64, RopeScaling), (f64, RopeScaling))> {
    let legacy_global = keys.f64_or("rope_theta", 1_000_000.0)?;
    let legacy_local = keys.f64_or("rope_local_base_freq", 10_000.0)?;
    match keys.present("rope_parameters") {
        Some(Value::Object(p)) if p.contains_key("full_attention") || p.contains_key("sliding_attention") => {
            let one = |name: &str, default: f64| -> Result<(f64, RopeScaling)> {
                match p.get(name) {
                    None | Some(Value::Null) => Ok((default, RopeScaling::None)),
                    Some(Value::Object(q)) => {
                        let theta = match q.get("rope_theta") {
                            None => default,
                            Some(v) => v.as_f64().ok_or_else(|| {
                                keys.err(format!("`rope_parameters.{name}.rope_theta` must be a number"))
                            })?,
                        };
                        Ok((theta, scaling_of(keys, q)?))
                    }
                    Some(other) => {
                        Err(keys.err(format!("`rope_parameters.{name}` must be an object, got {other}")))
                    }
                }
            };
            Ok((one("full_attention", legacy_global)?, one("sliding_attention", legacy_local)?))
        }
        _ => Ok((rope_of(keys, 1_000_000.0)?, (legacy_local, RopeScaling::None))),
    }
}

/// Python's `json.dumps` writes non-finite floats as the bare tokens `NaN`, `Infinity` and
/// `-Infinity`, which JSON (and serde_json) rejects. Returns `text` with each such token
/// outside a string quoted, so the file parses and the key holding one is named by the
/// number check that rejects it; `None` when there is no such token.
fn quote_non_finite(text: &str) -> Option<String> {
    let mut out = String::with_capacity(text.len() + 16);
    let (mut in_string, mut escaped, mut changed) = (false, false, false);
    let mut rest = text;
    while let Some(c) = rest.chars().next() {
        if in_string {
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '"' => in_string = false,
                _ => {}
            }
        } else if c == '"' {
            in_string = true;
        } else if let Some(token) = ["-Infinity", "Infinity", "NaN"].into_iter().find(|t| rest.starts_with(t))
        {
            out.push('"');
            out.push_str(token);
            out.push('"');
            rest = &rest[token.len()..];
            changed = true;
            continue;
        }
        out.push(c);
        rest = &rest[c.len_utf8()..];
    }
    changed.then_some(out)
}

impl DecoderConfig {
    /// Parses `config.json` at `path`.
    pub fn from_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, &e))?;
        let value: Value = match serde_json::from_str(&text) {
            Ok(v) => v,
            Err(e) => quote_non_finite(&text)
                .and_then(|quoted| serde_json::from_str(&quoted).ok())
                .ok_or_else(|| {
                    Error::load(
                        LoadErrorKind::InvalidJson,
                        path,
                        format!("config.json is not valid JSON: {e}"),
                    )
                })?,
        };
        Self::from_json(&value, path)
    }

    /// The first value no model can run with, as `(config.json key, what is wrong)`: the
    /// loaders refuse such a config instead of loading it and generating garbage. Checks
    /// what the per-key parsing cannot: zero layers, non-positive or non-finite epsilon and
    /// rope parameters, a context of 0 tokens.
    pub fn implausible(&self) -> Option<(&'static str, String)> {
        let positive = |v: f64| v.is_finite() && v > 0.0;
        if self.num_hidden_layers == 0 {
            return Some(("num_hidden_layers", "is 0; a model needs at least one layer".into()));
        }
        if !positive(self.rms_norm_eps) {
            return Some(("rms_norm_eps", format!("must be a positive number, got {}", self.rms_norm_eps)));
        }
        if !positive(self.rope_theta) {
            return Some(("rope_theta", format!("must be a positive number, got {}", self.rope_theta)));
        }
        if self.max_position_embeddings == 0 {
            return Some((
                "max_position_embeddings",
                "is 0; the context must hold at least one token".into(),
            ));
        }
        if self.max_position_embeddings > 1 << 27 {
            return Some((
                "max_position_embeddings",
                format!("= {} is implausibly large (limit {})", self.max_position_embeddings, 1u64 << 27),
            ));
        }
        if let Some(why) = scaling_problem(&self.rope_scaling) {
            return Some(("rope_scaling", why));
        }
        if let Some(local) = &self.local_rope {
            if !positive(local.theta) {
                return Some((
                    "rope_local_base_freq",
                    format!("must be a positive number, got {}", local.theta),
                ));
            }
            if let Some(why) = scaling_problem(&local.scaling) {
                return Some(("rope_scaling", format!("(sliding layers) {why}")));
            }
        }
        if !positive(self.attn_scale) {
            return Some((
                "query_pre_attn_scalar",
                format!("gives an attention scale of {}", self.attn_scale),
            ));
        }
        None
    }

    pub fn from_json(value: &Value, path: &Path) -> Result<Self> {
        let map = value.as_object().ok_or_else(|| {
            Error::load(LoadErrorKind::InvalidJson, path, "config.json is not a JSON object")
        })?;
        let keys = Keys { map, path };
        let family = family_of(&keys)?;

        let hidden_size = keys.usize("hidden_size")?;
        let num_attention_heads = keys.usize("num_attention_heads")?;
        let num_key_value_heads = keys.opt_usize("num_key_value_heads")?.unwrap_or(num_attention_heads);
        if hidden_size == 0 || num_attention_heads == 0 || num_key_value_heads == 0 {
            return Err(keys.err("hidden_size and head counts must be positive".into()));
        }
        if num_attention_heads % num_key_value_heads != 0 {
            return Err(keys.err(format!(
                "num_attention_heads ({num_attention_heads}) must be a multiple of num_key_value_heads ({num_key_value_heads})"
            )));
        }
        let gemma = family == Family::Gemma3;
        let head_dim = match keys.opt_usize("head_dim")? {
            Some(d) => d,
            // Gemma3TextConfig's default, not hidden / heads.
            None if gemma => 256,
            None if hidden_size % num_attention_heads == 0 => hidden_size / num_attention_heads,
            None => {
                return Err(keys.err(format!(
                    "hidden_size ({hidden_size}) is not divisible by num_attention_heads ({num_attention_heads}) and no head_dim is given"
                )))
            }
        };
        if head_dim == 0 || head_dim % 2 != 0 {
            return Err(keys.err(format!(
                "head_dim must be a positive even number for rotary embeddings, got {head_dim}"
            )));
        }
        let num_hidden_layers = keys.usize("num_hidden_layers")?;
        // Bounds far above any real checkpoint. Without them a corrupted config.json could
        // make the loader allocate per-layer state for 10^12 layers or overflow `heads * dim`
        // before the tensor shape checks get a chance to reject it.
        for (key, value, limit) in [
            ("hidden_size", hidden_size, 1 << 20),
            ("num_attention_heads", num_attention_heads, 1 << 14),
            ("num_key_value_heads", num_key_value_heads, 1 << 14),
            ("head_dim", head_dim, 1 << 16),
            ("num_hidden_layers", num_hidden_layers, 1 << 12),
        ] {
            if value > limit {
                return Err(keys.err(format!("`{key}` = {value} is implausibly large (limit {limit})")));
            }
        }
        let default_theta = match family {
            Family::Qwen2 | Family::Qwen3 | Family::Gemma3 => 1_000_000.0,
            _ => 10_000.0,
        };
        let (rope_theta, rope_scaling, local) = if gemma {
            let (global, local) = gemma3_ropes(&keys)?;
            (global.0, global.1, Some(local))
        } else {
            let (theta, scaling) = rope_of(&keys, default_theta)?;
            (theta, scaling, None)
        };

        // Gemma names the key `hidden_activation` (its modeling code reads only that one).
        let (act_key, default_act) =
            if gemma { ("hidden_activation", "gelu_pytorch_tanh") } else { ("hidden_act", "silu") };
        let activation = match keys.str(act_key).unwrap_or(default_act) {
            "silu" | "swish" if !gemma => Activation::Silu,
            "gelu_pytorch_tanh" => Activation::GeluTanh,
            other => {
                let expected = if gemma { "gelu_pytorch_tanh" } else { "silu" };
                return Err(keys.err(format!("{act_key} `{other}` is not supported (expected {expected})")));
            }
        };
        if gemma && keys.bool_or("use_bidirectional_attention", false)? {
            return Err(Error::load(
                LoadErrorKind::UnsupportedArchitecture,
                keys.path,
                "use_bidirectional_attention (EmbeddingGemma) is not supported: only causal language models are",
            ));
        }

        let attention_bias = keys.bool_or("attention_bias", false)?;
        let (qkv_bias, o_bias) = match family {
            // Qwen2 hard-codes bias on q/k/v and none on o_proj, whatever the config says.
            Family::Qwen2 => (true, false),
            // Qwen3's attention_bias covers q/k/v/o like Llama's.
            _ => (attention_bias, attention_bias),
        };

        let (sliding_window, sliding_layers) = sliding_windows(&keys, family, num_hidden_layers)?;
        let local_rope = local.map(|(theta, scaling)| LocalRope { theta, scaling, layers: sliding_layers });
        // Gemma 3 scales scores by query_pre_attn_scalar^-0.5 instead of head_dim^-0.5.
        let attn_scale = if gemma {
            let scalar = keys.f64_or("query_pre_attn_scalar", 256.0)?;
            if !(scalar > 0.0 && scalar.is_finite()) {
                return Err(keys.err(format!("`query_pre_attn_scalar` must be positive, got {scalar}")));
            }
            1.0 / scalar.sqrt()
        } else {
            1.0 / (head_dim as f64).sqrt()
        };
        // transformers 5's Gemma 3 attention never applies `attn_logit_softcapping` (it is null
        // in every released Gemma 3 config), so it is ignored here as well.
        let final_logit_softcapping = match (gemma, keys.present("final_logit_softcapping")) {
            (true, Some(v)) => match v.as_f64() {
                Some(c) if c > 0.0 && c.is_finite() => Some(c),
                _ => {
                    return Err(
                        keys.err(format!("`final_logit_softcapping` must be a positive number, got {v}"))
                    )
                }
            },
            _ => None,
        };
        let eos_token_ids = keys.id_list("eos_token_id")?;
        let bos_token_id = keys.id_list("bos_token_id")?.first().copied();

        let intermediate_size = keys.usize("intermediate_size")?;
        let vocab_size = keys.usize("vocab_size")?;
        if intermediate_size == 0 || intermediate_size > 1 << 22 || vocab_size == 0 || vocab_size > 1 << 24 {
            return Err(keys.err(format!(
                "intermediate_size ({intermediate_size}) and vocab_size ({vocab_size}) must be positive and plausible"
            )));
        }
        let config = Self {
            family,
            hidden_size,
            intermediate_size,
            num_hidden_layers,
            num_attention_heads,
            num_key_value_heads,
            head_dim,
            vocab_size,
            max_position_embeddings: keys.opt_usize("max_position_embeddings")?.unwrap_or(4096),
            rms_norm_eps: keys.f64_or("rms_norm_eps", 1e-6)?,
            rope_theta,
            rope_scaling,
            tie_word_embeddings: keys.bool_or("tie_word_embeddings", gemma)?,
            qkv_bias,
            o_bias,
            mlp_bias: keys.bool_or("mlp_bias", false)?,
            qk_norm: matches!(family, Family::Qwen3 | Family::Gemma3),
            norm_weight_offset: gemma,
            activation,
            // sqrt(hidden), applied in the embedding's dtype (f32 here: weights load as f32).
            embed_scale: gemma.then(|| (hidden_size as f64).sqrt()),
            attn_scale,
            sliding_window,
            local_rope,
            sandwich_norms: gemma,
            final_logit_softcapping,
            bos_token_id,
            eos_token_ids,
        };
        if let Some((key, why)) = config.implausible() {
            return Err(keys.err(format!("`{key}` {why}")));
        }
        Ok(config)
    }

    pub fn kv_groups(&self) -> usize {
        self.num_attention_heads / self.num_key_value_heads
    }
}

/// What is wrong with a rope scaling's numbers, if anything (transformers divides by each of
/// them, and by `high_freq_factor - low_freq_factor`).
fn scaling_problem(scaling: &RopeScaling) -> Option<String> {
    let positive = |v: f64| v.is_finite() && v > 0.0;
    match scaling {
        RopeScaling::None => None,
        RopeScaling::Linear { factor } => {
            (!positive(*factor)).then(|| format!("factor must be a positive number, got {factor}"))
        }
        RopeScaling::FreqFactors(factors) => factors
            .iter()
            .find(|f| !(f.is_finite() && **f > 0.0))
            .map(|f| format!("frequency factors must be positive, got {f}")),
        RopeScaling::Llama3 {
            factor,
            low_freq_factor,
            high_freq_factor,
            original_max_position_embeddings,
        } => {
            for (name, v) in [
                ("factor", factor),
                ("low_freq_factor", low_freq_factor),
                ("high_freq_factor", high_freq_factor),
                ("original_max_position_embeddings", original_max_position_embeddings),
            ] {
                if !positive(*v) {
                    return Some(format!("{name} must be a positive number, got {v}"));
                }
            }
            (high_freq_factor <= low_freq_factor).then(|| {
                format!(
                    "high_freq_factor ({high_freq_factor}) must be greater than low_freq_factor ({low_freq_factor})"
                )
            })
        }
    }
}

/// Gemma 3's layer pattern: every `pattern`-th layer is global, the others slide. `pattern`
/// must be positive.
pub(crate) fn gemma3_sliding_layers(layers: usize, pattern: usize) -> Vec<bool> {
    (0..layers).map(|i| (i + 1) % pattern != 0).collect()
}

/// Per-layer attention windows, following transformers:
/// - mistral: `sliding_window` (null = full) on every layer;
/// - qwen2/qwen3: only with `use_sliding_window`, from `layer_types` when given, else layers
///   at index >= `max_window_layers`;
/// - llama: never;
/// - gemma3_text: `layer_types` when given, else every `sliding_window_pattern`-th layer (6 by
///   default) is global and the others slide.
///
/// Also returns which layers are of the sliding type (they use Gemma 3's local rope even if
/// `sliding_window` is null).
fn sliding_windows(
    keys: &Keys<'_>,
    family: Family,
    layers: usize,
) -> Result<(Vec<Option<usize>>, Vec<bool>)> {
    let window = keys.opt_usize("sliding_window")?;
    let layer_types = || -> Result<Option<Vec<bool>>> {
        let Some(types) = keys.present("layer_types") else { return Ok(None) };
        let types = types.as_array().ok_or_else(|| keys.err("`layer_types` must be a list".into()))?;
        if types.len() != layers {
            return Err(keys.err(format!("`layer_types` has {} entries for {layers} layers", types.len())));
        }
        types
            .iter()
            .map(|t| match t.as_str() {
                Some("sliding_attention") => Ok(true),
                Some("full_attention") => Ok(false),
                _ => Err(keys.err(format!(
                    "`layer_types` entries must be \"sliding_attention\" or \"full_attention\", got {t}"
                ))),
            })
            .collect::<Result<Vec<bool>>>()
            .map(Some)
    };
    if family == Family::Gemma3 {
        let sliding = match layer_types()? {
            Some(types) => types,
            None => {
                // `sliding_window_pattern` (older configs) or `_sliding_window_pattern`.
                let pattern = match keys.opt_usize("sliding_window_pattern")? {
                    Some(p) => p,
                    None => keys.opt_usize("_sliding_window_pattern")?.unwrap_or(6),
                };
                if pattern == 0 {
                    return Err(keys.err("`sliding_window_pattern` must be positive".into()));
                }
                gemma3_sliding_layers(layers, pattern)
            }
        };
        if window == Some(0) {
            return Err(keys.err("`sliding_window` must be positive".into()));
        }
        let windows = sliding.iter().map(|&s| if s { window } else { None }).collect();
        return Ok((windows, sliding));
    }
    let windows = match family {
        Family::Llama => vec![None; layers],
        Family::Mistral => vec![window; layers],
        Family::Qwen2 | Family::Qwen3 => {
            if !keys.bool_or("use_sliding_window", false)? || window.is_none() {
                vec![None; layers]
            } else if let Some(types) = keys.present("layer_types").and_then(|v| v.as_array()) {
                if types.len() != layers {
                    return Err(
                        keys.err(format!("`layer_types` has {} entries for {layers} layers", types.len()))
                    );
                }
                types
                    .iter()
                    .map(|t| if t.as_str() == Some("sliding_attention") { window } else { None })
                    .collect()
            } else {
                let first = keys.opt_usize("max_window_layers")?.unwrap_or(layers);
                (0..layers).map(|i| if i >= first { window } else { None }).collect()
            }
        }
        Family::Gemma3 => unreachable!("handled above"),
    };
    if windows.contains(&Some(0)) {
        return Err(keys.err("`sliding_window` must be positive".into()));
    }
    let sliding = windows.iter().map(Option::is_some).collect();
    Ok((windows, sliding))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(v: Value) -> Result<DecoderConfig> {
        DecoderConfig::from_json(&v, Path::new("config.json"))
    }

    fn base() -> Value {
        json!({"model_type": "llama", "hidden_size": 64, "intermediate_size": 96, "num_hidden_layers": 2,
               "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 320})
    }

    #[test]
    fn unsupported_model_type_names_it_and_lists_supported() {
        let mut v = base();
        v["model_type"] = json!("gpt_neox");
        let err = parse(v).unwrap_err();
        assert_eq!(err.load_kind(), Some(LoadErrorKind::UnsupportedArchitecture));
        let msg = err.to_string();
        assert!(msg.contains("gpt_neox") && msg.contains("qwen3 (Qwen3ForCausalLM)"), "{msg}");
    }

    #[test]
    fn architectures_is_the_fallback() {
        let mut v = base();
        v.as_object_mut().unwrap().remove("model_type");
        v["architectures"] = json!(["Qwen2ForCausalLM"]);
        assert_eq!(parse(v.clone()).unwrap().family, Family::Qwen2);
        v["architectures"] = json!(["FalconForCausalLM"]);
        assert!(parse(v).unwrap_err().to_string().contains("FalconForCausalLM"));
    }

    #[test]
    fn reads_legacy_and_v5_rope_keys_alike() {
        let mut legacy = base();
        legacy["rope_theta"] = json!(500000.0);
        legacy["rope_scaling"] = json!({"type": "llama3", "factor": 32.0, "low_freq_factor": 1.0,
            "high_freq_factor": 4.0, "original_max_position_embeddings": 8192});
        let mut v5 = base();
        v5["rope_parameters"] = json!({"rope_type": "llama3", "rope_theta": 500000.0, "factor": 32.0,
            "low_freq_factor": 1.0, "high_freq_factor": 4.0, "original_max_position_embeddings": 8192});
        let (a, b) = (parse(legacy).unwrap(), parse(v5).unwrap());
        assert_eq!(a.rope_theta, 500000.0);
        assert_eq!(a.rope_scaling, b.rope_scaling);
        assert!(matches!(a.rope_scaling, RopeScaling::Llama3 { factor, .. } if factor == 32.0));
    }

    #[test]
    fn rejects_unsupported_rope_and_bad_heads() {
        let mut v = base();
        v["rope_scaling"] = json!({"rope_type": "yarn", "factor": 4.0});
        assert!(parse(v).unwrap_err().to_string().contains("yarn"));
        let mut v = base();
        v["num_key_value_heads"] = json!(3);
        assert_eq!(parse(v).unwrap_err().load_kind(), Some(LoadErrorKind::InvalidConfig));
        let mut v = base();
        v["hidden_size"] = json!("64");
        assert!(parse(v).unwrap_err().to_string().contains("hidden_size"));
    }

    fn gemma3() -> Value {
        json!({"model_type": "gemma3_text", "hidden_size": 48, "intermediate_size": 96, "num_hidden_layers": 7,
               "num_attention_heads": 4, "num_key_value_heads": 1, "head_dim": 32, "vocab_size": 320,
               "sliding_window": 8, "query_pre_attn_scalar": 24})
    }

    #[test]
    fn gemma3_legacy_keys_and_default_pattern() {
        let mut v = gemma3();
        v["rope_theta"] = json!(100000.0);
        v["rope_local_base_freq"] = json!(500.0);
        v["rope_scaling"] = json!({"rope_type": "linear", "factor": 4.0});
        let c = parse(v.clone()).unwrap();
        assert_eq!(c.family, Family::Gemma3);
        let w = Some(8);
        assert_eq!(c.sliding_window, vec![w, w, w, w, w, None, w]);
        let local = c.local_rope.as_ref().unwrap();
        assert_eq!(local.layers, vec![true, true, true, true, true, false, true]);
        assert_eq!((local.theta, &local.scaling), (500.0, &RopeScaling::None));
        assert_eq!((c.rope_theta, &c.rope_scaling), (100000.0, &RopeScaling::Linear { factor: 4.0 }));
        assert!(c.qk_norm && c.norm_weight_offset && c.sandwich_norms && c.tie_word_embeddings);
        assert_eq!(c.activation, Activation::GeluTanh);
        assert_eq!(c.embed_scale, Some(48f64.sqrt()));
        assert_eq!(c.attn_scale, 1.0 / 24f64.sqrt());
        assert_eq!(c.final_logit_softcapping, None);

        v["sliding_window_pattern"] = json!(3);
        v["final_logit_softcapping"] = json!(30.0);
        let c = parse(v.clone()).unwrap();
        assert_eq!(c.sliding_window, vec![w, w, None, w, w, None, w]);
        assert_eq!(c.final_logit_softcapping, Some(30.0));
        v.as_object_mut().unwrap().remove("head_dim");
        assert_eq!(parse(v).unwrap().head_dim, 256);
    }

    #[test]
    fn gemma3_nested_rope_parameters_and_layer_types() {
        let mut v = gemma3();
        v["num_hidden_layers"] = json!(3);
        v["layer_types"] = json!(["full_attention", "sliding_attention", "full_attention"]);
        v["rope_parameters"] = json!({
            "full_attention": {"rope_type": "linear", "factor": 8.0, "rope_theta": 1000000.0},
            "sliding_attention": {"rope_type": "default", "rope_theta": 10000.0}});
        let c = parse(v.clone()).unwrap();
        assert_eq!(c.sliding_window, vec![None, Some(8), None]);
        assert_eq!((c.rope_theta, &c.rope_scaling), (1e6, &RopeScaling::Linear { factor: 8.0 }));
        assert_eq!(c.local_rope.as_ref().unwrap().theta, 1e4);

        let mut bad = v.clone();
        bad["layer_types"] = json!(["full_attention", "chunked_attention", "full_attention"]);
        assert!(parse(bad).unwrap_err().to_string().contains("layer_types"));
        let mut bad = v.clone();
        bad["hidden_activation"] = json!("silu");
        assert!(parse(bad).unwrap_err().to_string().contains("hidden_activation"));
        let mut bad = v.clone();
        bad["use_bidirectional_attention"] = json!(true);
        assert_eq!(parse(bad).unwrap_err().load_kind(), Some(LoadErrorKind::UnsupportedArchitecture));
        let mut multimodal = v;
        multimodal["model_type"] = json!("gemma3");
        assert!(parse(multimodal).unwrap_err().to_string().contains("gemma3_text"));
    }

    #[test]
    fn qwen2_windows_follow_max_window_layers() {
        let mut v = base();
        v["model_type"] = json!("qwen2");
        v["use_sliding_window"] = json!(true);
        v["sliding_window"] = json!(16);
        v["max_window_layers"] = json!(1);
        let c = parse(v).unwrap();
        assert_eq!(c.sliding_window, vec![None, Some(16)]);
        assert!(c.qkv_bias && !c.o_bias);
    }
}
