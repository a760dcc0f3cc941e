//! The config-driven pre-norm decoder shared by every supported architecture.
//!
//! Built only from candle primitives that have a backward pass (matmul, add/mul/div,
//! exp, sqrt, silu, narrow/cat, index_select): candle's fused `softmax_last_dim`,
//! `rms_norm` and `rope` silently cut the gradient (NATIVE-STACK-FACTS §1.3), and the LoRA
//! trainer runs this same forward pass. `tests::no_fused_ops_in_forward` guards that.
//! RMSNorm, rope and the attention softmax go through `train::ops`. Without a graph
//! (inference) these run the same primitives. While training they are single nodes with
//! hand-written backward passes.
//!
//! This is the only forward pass: generation, evaluation and LoRA training all run it, with
//! adapters attached to the projections ([`Linear`], the adapter seam) when training.
//! `tests/one_decoder.rs` fails if a second one appears.
//!
//! Per layer: `h += o(attn(norm_in(h)))`, `h += down(act(gate(x)) * up(x))` with
//! `x = norm_post(h)`; final norm; logits = lm_head(h) (the embedding when tied).
//! Gemma 3 ("sandwich" norms) also normalises each block's output before its residual add:
//! `h += norm_attn_out(o(attn(norm_in(h))))`, `h += norm_mlp_out(mlp(norm_pre_mlp(h)))`,
//! uses a second rope on its sliding-window layers, and soft-caps the logits when configured.

pub mod attention;
mod attention_kernel;
pub mod base_weight;
pub mod bf16_weight;
mod linear;

pub use base_weight::BaseWeight;
pub use linear::Linear;

use candle_core::{DType, Device, Module, Tensor, D};

use crate::config::{Activation, DecoderConfig, LocalRope, RopeScaling};
use crate::error::{Error, Result};
use crate::quant::BaseFormat;
use crate::weights::Weights;

/// The projections of one layer as `(block, name)`, in PEFT module-name order; an index into
/// this list is what [`Layer::projection`] takes.
pub const PROJECTIONS: [(&str, &str); 7] = [
    ("self_attn", "q_proj"),
    ("self_attn", "k_proj"),
    ("self_attn", "v_proj"),
    ("self_attn", "o_proj"),
    ("mlp", "gate_proj"),
    ("mlp", "up_proj"),
    ("mlp", "down_proj"),
];

/// `model.layers.{layer}.{block}.{name}`: the module path PEFT and checkpoints use.
pub fn module_path(layer: usize, which: usize) -> String {
    let (block, proj) = PROJECTIONS[which];
    format!("model.layers.{layer}.{block}.{proj}")
}

/// RMSNorm computed with differentiable primitives: `x / sqrt(mean(x²) + eps) · w`.
#[derive(Debug, Clone)]
pub struct RmsNorm {
    /// Already `1 + w` for architectures that store the offset form (Gemma).
    pub weight: Tensor,
    pub eps: f64,
}

impl RmsNorm {
    fn load(w: &Weights, name: &str, size: usize, cfg: &DecoderConfig, why: &str) -> Result<Self> {
        let mut weight = w.get(name, &[size], why)?;
        if cfg.norm_weight_offset {
            weight = weight.affine(1.0, 1.0)?;
        }
        Ok(Self { weight, eps: cfg.rms_norm_eps })
    }
}

impl Module for RmsNorm {
    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        // `x·inv_rms·w` from primitives; while training, one node with a hand-written backward.
        crate::train::ops::rms_norm(x, &self.weight, self.eps)
    }
}

/// Softmax over the last dim from primitives. The max is detached: subtracting it is only
/// for numerical range and softmax is invariant to it, so no gradient should flow there.
pub fn softmax_last_dim(x: &Tensor) -> candle_core::Result<Tensor> {
    let max = x.max_keepdim(D::Minus1)?.detach();
    let e = x.broadcast_sub(&max)?.exp()?;
    e.broadcast_div(&e.sum_keepdim(D::Minus1)?)
}

/// Rotary position embedding in the Hugging Face "rotate half" layout (dimension i pairs
/// with i + d/2).
#[derive(Debug, Clone, PartialEq)]
pub struct Rotary {
    /// The rotary frequencies, one per pair of dimensions, after scaling.
    pub inv_freq: Vec<f32>,
}

impl Rotary {
    /// The global rope (`rope_theta`, `rope_scaling`) of `cfg`.
    pub fn new(cfg: &DecoderConfig) -> Self {
        Self::with(cfg.head_dim, cfg.rope_theta, &cfg.rope_scaling)
    }

    /// The rope of layer `layer`: the global one, or [`LocalRope`]'s for the layers it lists.
    pub fn for_layer(cfg: &DecoderConfig, layer: usize) -> Self {
        match &cfg.local_rope {
            Some(LocalRope { theta, scaling, layers }) if layers.get(layer) == Some(&true) => {
                Self::with(cfg.head_dim, *theta, scaling)
            }
            _ => Self::new(cfg),
        }
    }

    pub fn with(dim: usize, theta: f64, scaling: &RopeScaling) -> Self {
        // Same arithmetic as transformers (f32 pow of the base), so angles at long positions
        // round the way the reference does.
        let base = theta as f32;
        let mut inv_freq: Vec<f32> =
            (0..dim / 2).map(|i| 1.0f32 / base.powf((2 * i) as f32 / dim as f32)).collect();
        match *scaling {
            RopeScaling::None => {}
            RopeScaling::Linear { factor } => {
                for f in &mut inv_freq {
                    *f = (*f as f64 / factor) as f32;
                }
            }
            RopeScaling::FreqFactors(ref factors) => {
                for (f, factor) in inv_freq.iter_mut().zip(factors) {
                    *f /= factor;
                }
            }
            RopeScaling::Llama3 {
                factor,
                low_freq_factor,
                high_freq_factor,
                original_max_position_embeddings,
            } => {
                let low_wavelen = original_max_position_embeddings / low_freq_factor;
                let high_wavelen = original_max_position_embeddings / high_freq_factor;
                for f in &mut inv_freq {
                    let freq = *f as f64;
                    let wavelen = 2.0 * std::f64::consts::PI / freq;
                    let scaled = if wavelen < high_wavelen {
                        freq
                    } else if wavelen > low_wavelen {
                        freq / factor
                    } else {
                        let smooth = (original_max_position_embeddings / wavelen - low_freq_factor)
                            / (high_freq_factor - low_freq_factor);
                        (1.0 - smooth) * freq / factor + smooth * freq
                    };
                    *f = scaled as f32;
                }
            }
        }
        Self { inv_freq }
    }

    /// `cos` and `sin` tables `[len, head_dim]` for positions `offset..offset + len`.
    pub fn tables(&self, offset: usize, len: usize, device: &Device) -> Result<(Tensor, Tensor)> {
        let half = self.inv_freq.len();
        let mut cos = Vec::with_capacity(len * half * 2);
        let mut sin = Vec::with_capacity(len * half * 2);
        for p in offset..offset + len {
            let angles: Vec<f32> = self.inv_freq.iter().map(|f| p as f32 * f).collect();
            // The frequencies repeat over both halves.
            for _ in 0..2 {
                cos.extend(angles.iter().map(|a| a.cos()));
                sin.extend(angles.iter().map(|a| a.sin()));
            }
        }
        Ok((Tensor::from_vec(cos, (len, half * 2), device)?, Tensor::from_vec(sin, (len, half * 2), device)?))
    }

    /// Applies the rotation to `x` `[b, heads, seq, head_dim]`.
    pub fn apply(x: &Tensor, cos: &Tensor, sin: &Tensor) -> candle_core::Result<Tensor> {
        crate::train::ops::rope(x, cos, sin)
    }
}

/// Keys and values seen so far by one layer, `[b, kv_heads, t, head_dim]`, after rope.
///
/// Stored in buffers with spare capacity that grow by doubling, written in place with
/// `slice_set`: appending with `cat` would copy the whole cache on every token, which turns
/// long generations quadratic. Generation-only state: nothing here is differentiated.
#[derive(Debug, Clone, Default)]
pub struct LayerCache {
    k: Option<Tensor>,
    v: Option<Tensor>,
    len: usize,
}

impl LayerCache {
    /// Appends `k`, `v` (contiguous, `[b, kv_heads, s, d]`) and returns views of everything
    /// cached so far.
    fn append(&mut self, k: &Tensor, v: &Tensor) -> candle_core::Result<(Tensor, Tensor)> {
        let added = k.dim(2)?;
        let needed = self.len + added;
        let capacity = self.k.as_ref().map_or(0, |t| t.dim(2).unwrap_or(0));
        if needed > capacity {
            let (b, kvh, _, d) = k.dims4()?;
            let grown = needed.max(2 * capacity).max(64);
            let fresh = |old: &Option<Tensor>| -> candle_core::Result<Tensor> {
                let buf = Tensor::zeros((b, kvh, grown, d), k.dtype(), k.device())?;
                if let Some(old) = old {
                    buf.slice_set(&old.narrow(2, 0, self.len)?.contiguous()?, 2, 0)?;
                }
                Ok(buf)
            };
            self.k = Some(fresh(&self.k)?);
            self.v = Some(fresh(&self.v)?);
        }
        let (kb, vb) = (self.k.as_ref().expect("allocated above"), self.v.as_ref().expect("allocated above"));
        kb.slice_set(k, 2, self.len)?;
        vb.slice_set(v, 2, self.len)?;
        self.len = needed;
        Ok((kb.narrow(2, 0, needed)?, vb.narrow(2, 0, needed)?))
    }
}

/// The KV cache of a whole model for one sequence batch.
#[derive(Debug, Clone)]
pub struct KvCache {
    layers: Vec<LayerCache>,
    len: usize,
}

impl KvCache {
    pub fn new(cfg: &DecoderConfig) -> Self {
        Self { layers: vec![LayerCache::default(); cfg.num_hidden_layers], len: 0 }
    }

    /// Number of positions already cached (the offset of the next token).
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

#[derive(Debug, Clone)]
pub struct Attention {
    pub q_proj: Linear,
    pub k_proj: Linear,
    pub v_proj: Linear,
    pub o_proj: Linear,
    pub q_norm: Option<RmsNorm>,
    pub k_norm: Option<RmsNorm>,
    heads: usize,
    kv_heads: usize,
    head_dim: usize,
    scale: f64,
}

impl Attention {
    fn forward(
        &self,
        x: &Tensor,
        cos: &Tensor,
        sin: &Tensor,
        (mask, window): (Option<&Tensor>, Option<usize>),
        cache: Option<&mut LayerCache>,
        residual: Option<&Tensor>,
    ) -> Result<Tensor> {
        let (b, s, _) = x.dims3()?;
        let (h, kvh, d) = (self.heads, self.kv_heads, self.head_dim);
        if cache.is_none() && attention::applies(x) {
            return self.forward_fused(x, cos, sin, window, residual);
        }
        // With a KV cache this is generation: stored weights may use their decode product.
        let decode = cache.is_some();
        let mut q = self.q_proj.apply(x, decode)?.reshape((b, s, h, d))?;
        let mut k = self.k_proj.apply(x, decode)?.reshape((b, s, kvh, d))?;
        let v = self.v_proj.apply(x, decode)?.reshape((b, s, kvh, d))?.transpose(1, 2)?;
        if let (Some(qn), Some(kn)) = (&self.q_norm, &self.k_norm) {
            q = qn.forward(&q)?;
            k = kn.forward(&k)?;
        }
        // The transposed views go to rope as they are: its graph node keeps the view, not a copy.
        let q = Rotary::apply(&q.transpose(1, 2)?, cos, sin)?;
        let k = Rotary::apply(&k.transpose(1, 2)?, cos, sin)?;
        let (k, v) = match cache {
            Some(c) => c.append(&k, &v.contiguous()?)?,
            None => (k, v.contiguous()?),
        };
        let t = k.dim(2)?;
        let groups = h / kvh;
        // Grouped-query attention without materialising repeated keys: query heads are
        // ordered by kv group (head j uses kv head j / groups), so folding them into the
        // row dimension lets each kv head serve its whole group in one matmul.
        let q = q.reshape((b, kvh, groups * s, d))?;
        let scores = q.matmul(&k.t()?)?.reshape((b, kvh, groups, s, t))?;
        let probs = crate::train::ops::scaled_masked_softmax(&scores, self.scale, mask)?.reshape((
            b,
            kvh,
            groups * s,
            t,
        ))?;
        let out = probs.matmul(&v)?.reshape((b, h, s, d))?.transpose(1, 2)?.reshape((b, s, h * d))?;
        Ok(self.output(&out, residual, decode)?)
    }

    /// `o_proj(out)`, plus `residual` when given (one node while training an adapted `o_proj`).
    fn output(&self, out: &Tensor, residual: Option<&Tensor>, decode: bool) -> candle_core::Result<Tensor> {
        match residual {
            Some(r) => self.o_proj.apply_residual(out, r, decode),
            None => self.o_proj.apply(out, decode),
        }
    }

    /// Without a cache (training, evaluation, prefill-free logits): the fused causal attention
    /// over the projections' outputs, which keeps no scores, probabilities or transposed
    /// copies for backward.
    fn forward_fused(
        &self,
        x: &Tensor,
        cos: &Tensor,
        sin: &Tensor,
        window: Option<usize>,
        residual: Option<&Tensor>,
    ) -> Result<Tensor> {
        let (b, s, _) = x.dims3()?;
        let (h, kvh, d) = (self.heads, self.kv_heads, self.head_dim);
        let mut q = self.q_proj.apply(x, false)?;
        let mut k = self.k_proj.apply(x, false)?;
        let v = self.v_proj.apply(x, false)?;
        if let (Some(qn), Some(kn)) = (&self.q_norm, &self.k_norm) {
            q = qn.forward(&q.reshape((b, s, h, d))?)?.reshape((b, s, h * d))?;
            k = kn.forward(&k.reshape((b, s, kvh, d))?)?.reshape((b, s, kvh * d))?;
        }
        let spec = attention::AttentionSpec {
            heads: h,
            kv_heads: kvh,
            head_dim: d,
            scale: self.scale,
            window,
            offset: 0,
        };
        let out = attention::causal_attention(&q, &k, &v, cos, sin, spec)?;
        Ok(self.output(&out, residual, false)?)
    }
}

#[derive(Debug, Clone)]
pub struct Mlp {
    pub gate_proj: Linear,
    pub up_proj: Linear,
    pub down_proj: Linear,
    activation: Activation,
}

impl Mlp {
    /// `down(act(gate(x)) ⊙ up(x))`, with the projections' decode products when `decode`.
    pub fn apply(&self, x: &Tensor, decode: bool) -> candle_core::Result<Tensor> {
        // `down(act(gate) ⊙ up)`; while training, one node that recomputes the activation in backward.
        let gate = self.gate_proj.apply(x, decode)?;
        let up = self.up_proj.apply(x, decode)?;
        self.down_proj.apply_glu(&gate, &up, self.activation, decode)
    }
}

impl Module for Mlp {
    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        self.apply(x, false)
    }
}

#[derive(Debug, Clone)]
pub struct Layer {
    pub input_layernorm: RmsNorm,
    pub self_attn: Attention,
    /// The norm in front of the MLP (Llama's `post_attention_layernorm`; Gemma 3's
    /// `pre_feedforward_layernorm`).
    pub post_attention_layernorm: RmsNorm,
    pub mlp: Mlp,
    /// Gemma 3's norm of the attention output before the residual add (its checkpoints call
    /// it `post_attention_layernorm`).
    pub attn_output_norm: Option<RmsNorm>,
    /// Gemma 3's `post_feedforward_layernorm`, on the MLP output before the residual add.
    pub mlp_output_norm: Option<RmsNorm>,
    pub sliding_window: Option<usize>,
    /// Index into [`Decoder::rotaries`].
    pub rope: usize,
}

impl Layer {
    /// Projection `which` (an index into [`PROJECTIONS`]).
    pub fn projection(&self, which: usize) -> &Linear {
        match which {
            0 => &self.self_attn.q_proj,
            1 => &self.self_attn.k_proj,
            2 => &self.self_attn.v_proj,
            3 => &self.self_attn.o_proj,
            4 => &self.mlp.gate_proj,
            5 => &self.mlp.up_proj,
            6 => &self.mlp.down_proj,
            _ => panic!("projection index {which} out of range"),
        }
    }

    pub fn projection_mut(&mut self, which: usize) -> &mut Linear {
        match which {
            0 => &mut self.self_attn.q_proj,
            1 => &mut self.self_attn.k_proj,
            2 => &mut self.self_attn.v_proj,
            3 => &mut self.self_attn.o_proj,
            4 => &mut self.mlp.gate_proj,
            5 => &mut self.mlp.up_proj,
            6 => &mut self.mlp.down_proj,
            _ => panic!("projection index {which} out of range"),
        }
    }

    /// The layer over `hidden` `[b, s, hidden]`: `h += attn(norm(h))`, `h += mlp(norm(h))`
    /// (with Gemma 3's output norms). `cos`/`sin` and `mask` are for the layer's positions.
    pub fn forward(
        &self,
        hidden: &Tensor,
        (cos, sin): (&Tensor, &Tensor),
        mask: Option<&Tensor>,
        cache: Option<&mut LayerCache>,
    ) -> Result<Tensor> {
        let decode = cache.is_some();
        let normed = self.input_layernorm.forward(hidden)?;
        let hidden = match &self.attn_output_norm {
            // `h + o(attn)` as one step (one node while training an adapted `o_proj`).
            None => {
                self.self_attn.forward(&normed, cos, sin, (mask, self.sliding_window), cache, Some(hidden))?
            }
            Some(_) => {
                let attn =
                    self.self_attn.forward(&normed, cos, sin, (mask, self.sliding_window), cache, None)?;
                self.add_attention(hidden, &attn)?
            }
        };
        let mlp = self.mlp.apply(&self.post_attention_layernorm.forward(&hidden)?, decode)?;
        Ok(self.add_mlp(&hidden, &mlp)?)
    }

    /// `h + norm?(attn_out)`: the attention block's residual add.
    pub fn add_attention(&self, hidden: &Tensor, attn: &Tensor) -> candle_core::Result<Tensor> {
        match &self.attn_output_norm {
            Some(n) => hidden + n.forward(attn)?,
            None => hidden + attn,
        }
    }

    /// `h + norm?(mlp_out)`: the MLP block's residual add.
    pub fn add_mlp(&self, hidden: &Tensor, mlp: &Tensor) -> candle_core::Result<Tensor> {
        match &self.mlp_output_norm {
            Some(n) => hidden + n.forward(mlp)?,
            None => hidden + mlp,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Decoder {
    pub cfg: DecoderConfig,
    pub embed_tokens: BaseWeight,
    pub layers: Vec<Layer>,
    pub norm: RmsNorm,
    /// `[vocab, hidden]`; the same tensor as `embed_tokens` when tied.
    pub lm_head: BaseWeight,
    /// The distinct ropes of the layers (one, or Gemma 3's global and local).
    pub rotaries: Vec<Rotary>,
    device: Device,
}

/// `cap · tanh(x / cap)` (Gemma's final logit soft-capping), or `x` unchanged without a cap.
pub fn softcap(x: &Tensor, cap: Option<f64>) -> candle_core::Result<Tensor> {
    match cap {
        Some(c) => (x / c)?.tanh()? * c,
        None => Ok(x.clone()),
    }
}

/// Additive mask `[s, t]` (0 or -inf) for queries at `offset..offset+s` over keys `0..t`;
/// `None` when every key is visible.
pub fn causal_mask(
    s: usize,
    offset: usize,
    window: Option<usize>,
    device: &Device,
) -> Result<Option<Tensor>> {
    let t = offset + s;
    let visible = |i: usize, j: usize| j <= offset + i && window.is_none_or(|w| offset + i - j < w);
    if (0..s).all(|i| (0..t).all(|j| visible(i, j))) {
        return Ok(None);
    }
    let values: Vec<f32> = (0..s)
        .flat_map(|i| (0..t).map(move |j| if visible(i, j) { 0.0 } else { f32::NEG_INFINITY }))
        .collect();
    Ok(Some(Tensor::from_vec(values, (s, t), device)?))
}

impl Decoder {
    /// Builds the decoder from `weights`, checking every tensor's shape against `cfg`.
    pub fn load(cfg: DecoderConfig, w: &Weights, device: &Device) -> Result<Self> {
        let (hid, inter, v) = (cfg.hidden_size, cfg.intermediate_size, cfg.vocab_size);
        let (h, kvh, d) = (cfg.num_attention_heads, cfg.num_key_value_heads, cfg.head_dim);
        let attn_why =
            format!("hidden_size={hid}, num_attention_heads={h}, num_key_value_heads={kvh}, head_dim={d}");
        let mlp_why = format!("hidden_size={hid}, intermediate_size={inter}");
        let embed_tokens = w.get_base(
            "model.embed_tokens.weight",
            &[v, hid],
            &format!("vocab_size={v}, hidden_size={hid}"),
        )?;
        let mut layers = Vec::with_capacity(cfg.num_hidden_layers);
        let mut rotaries: Vec<Rotary> = Vec::new();
        for i in 0..cfg.num_hidden_layers {
            let p = format!("model.layers.{i}");
            let qk_norm = |name: &str| -> Result<Option<RmsNorm>> {
                if cfg.qk_norm {
                    Ok(Some(RmsNorm::load(w, &format!("{p}.self_attn.{name}.weight"), d, &cfg, &attn_why)?))
                } else {
                    Ok(None)
                }
            };
            let self_attn = Attention {
                q_proj: Linear::load(
                    w,
                    &format!("{p}.self_attn.q_proj"),
                    h * d,
                    hid,
                    cfg.qkv_bias,
                    &attn_why,
                )?,
                k_proj: Linear::load(
                    w,
                    &format!("{p}.self_attn.k_proj"),
                    kvh * d,
                    hid,
                    cfg.qkv_bias,
                    &attn_why,
                )?,
                v_proj: Linear::load(
                    w,
                    &format!("{p}.self_attn.v_proj"),
                    kvh * d,
                    hid,
                    cfg.qkv_bias,
                    &attn_why,
                )?,
                o_proj: Linear::load(w, &format!("{p}.self_attn.o_proj"), hid, h * d, cfg.o_bias, &attn_why)?,
                q_norm: qk_norm("q_norm")?,
                k_norm: qk_norm("k_norm")?,
                heads: h,
                kv_heads: kvh,
                head_dim: d,
                scale: cfg.attn_scale,
            };
            let mlp = Mlp {
                gate_proj: Linear::load(
                    w,
                    &format!("{p}.mlp.gate_proj"),
                    inter,
                    hid,
                    cfg.mlp_bias,
                    &mlp_why,
                )?,
                up_proj: Linear::load(w, &format!("{p}.mlp.up_proj"), inter, hid, cfg.mlp_bias, &mlp_why)?,
                down_proj: Linear::load(
                    w,
                    &format!("{p}.mlp.down_proj"),
                    hid,
                    inter,
                    cfg.mlp_bias,
                    &mlp_why,
                )?,
                activation: cfg.activation,
            };
            let hid_why = format!("hidden_size={hid}");
            let norm = |name: &str| RmsNorm::load(w, &format!("{p}.{name}.weight"), hid, &cfg, &hid_why);
            let (pre_mlp, attn_output_norm, mlp_output_norm) = if cfg.sandwich_norms {
                (
                    norm("pre_feedforward_layernorm")?,
                    Some(norm("post_attention_layernorm")?),
                    Some(norm("post_feedforward_layernorm")?),
                )
            } else {
                (norm("post_attention_layernorm")?, None, None)
            };
            let rotary = Rotary::for_layer(&cfg, i);
            let rope = match rotaries.iter().position(|r| *r == rotary) {
                Some(k) => k,
                None => {
                    rotaries.push(rotary);
                    rotaries.len() - 1
                }
            };
            layers.push(Layer {
                input_layernorm: norm("input_layernorm")?,
                self_attn,
                post_attention_layernorm: pre_mlp,
                mlp,
                attn_output_norm,
                mlp_output_norm,
                sliding_window: cfg.sliding_window[i],
                rope,
            });
        }
        if rotaries.is_empty() {
            rotaries.push(Rotary::new(&cfg));
        }
        let norm = RmsNorm::load(w, "model.norm.weight", hid, &cfg, &format!("hidden_size={hid}"))?;
        let lm_head = if cfg.tie_word_embeddings {
            match (&embed_tokens, w.format()) {
                // The embedding lookup stays exact (f32, or a GGUF's blocks); the head's two
                // products run on a bf16 copy.
                (BaseWeight::F32(e), BaseFormat::Bf16) => BaseWeight::bf16(e)?,
                (e @ BaseWeight::Stored(_), BaseFormat::Bf16) => BaseWeight::bf16(&e.to_dense()?)?,
                _ => embed_tokens.clone(),
            }
        } else {
            w.get_base(
                "lm_head.weight",
                &[v, hid],
                &format!("vocab_size={v}, hidden_size={hid}, tie_word_embeddings=false"),
            )?
        };
        Ok(Self { rotaries, cfg, embed_tokens, layers, norm, lm_head, device: device.clone() })
    }

    pub fn device(&self) -> &Device {
        &self.device
    }

    /// Every projection with its HF name (`model.layers.{i}.self_attn.q_proj.weight`, ...).
    fn projections_mut(&mut self) -> Vec<(String, &mut Linear)> {
        let mut out = Vec::with_capacity(self.layers.len() * 7);
        for (i, l) in self.layers.iter_mut().enumerate() {
            let a = &mut l.self_attn;
            let m = &mut l.mlp;
            for (name, lin) in [
                ("self_attn.q_proj", &mut a.q_proj),
                ("self_attn.k_proj", &mut a.k_proj),
                ("self_attn.v_proj", &mut a.v_proj),
                ("self_attn.o_proj", &mut a.o_proj),
                ("mlp.gate_proj", &mut m.gate_proj),
                ("mlp.up_proj", &mut m.up_proj),
                ("mlp.down_proj", &mut m.down_proj),
            ] {
                out.push((format!("model.layers.{i}.{name}.weight"), lin));
            }
        }
        out
    }

    /// Bytes of the frozen matrices (projections, embedding, LM head) as held in memory; a
    /// tied LM head is counted once.
    pub fn matrix_bytes(&self) -> u64 {
        let mut total = self.embed_tokens.bytes();
        if !self.cfg.tie_word_embeddings {
            total += self.lm_head.bytes();
        }
        for l in &self.layers {
            let (a, m) = (&l.self_attn, &l.mlp);
            for lin in [&a.q_proj, &a.k_proj, &a.v_proj, &a.o_proj, &m.gate_proj, &m.up_proj, &m.down_proj] {
                total += lin.base.bytes();
            }
        }
        total
    }

    /// Replaces every frozen matrix (by HF name) with `f(name, matrix)`; a tied LM head stays
    /// the embedding.
    pub fn map_matrices(&mut self, mut f: impl FnMut(&str, &BaseWeight) -> BaseWeight) {
        self.embed_tokens = f("model.embed_tokens.weight", &self.embed_tokens);
        self.lm_head = if self.cfg.tie_word_embeddings {
            self.embed_tokens.clone()
        } else {
            f("lm_head.weight", &self.lm_head)
        };
        for (name, lin) in self.projections_mut() {
            lin.base = f(&name, &lin.base);
        }
    }

    /// Whether any frozen matrix is kept in stored (compact) form.
    pub fn has_stored_weights(&self) -> bool {
        self.embed_tokens.stored_type().is_some()
            || self.lm_head.stored_type().is_some()
            || self.layers.iter().any(|l| l.self_attn.q_proj.base.stored_type().is_some())
    }

    /// The (scaled) token embeddings `[b, s, hidden]` of `ids` `[b, s]` (u32); ids outside the
    /// vocabulary are refused.
    pub fn embed(&self, ids: &Tensor) -> Result<Tensor> {
        let (b, s) = ids.dims2()?;
        let vocab = self.cfg.vocab_size as u32;
        if let Some(bad) = ids.flatten_all()?.to_vec1::<u32>()?.into_iter().find(|&id| id >= vocab) {
            return Err(Error::option(
                "ids",
                format!("token id {bad} is out of range for a vocabulary of {vocab}"),
            ));
        }
        let hidden = self.embed_tokens.rows(ids)?;
        debug_assert_eq!(hidden.dims(), &[b, s, self.cfg.hidden_size]);
        Ok(match self.cfg.embed_scale {
            Some(scale) => (hidden * scale)?,
            None => hidden,
        })
    }

    /// Rotary tables of layer `i` for positions `offset..offset + s`.
    pub fn layer_tables(&self, i: usize, offset: usize, s: usize) -> Result<(Tensor, Tensor)> {
        self.rotaries[self.layers[i].rope].tables(offset, s, &self.device)
    }

    /// Layer `i` alone over a whole sequence from position 0 (what gradient checkpointing
    /// recomputes).
    pub fn layer_forward(&self, i: usize, hidden: &Tensor) -> Result<Tensor> {
        let (_, s, _) = hidden.dims3()?;
        let (cos, sin) = self.layer_tables(i, 0, s)?;
        let mask = causal_mask(s, 0, self.layers[i].sliding_window, &self.device)?;
        self.layers[i].forward(hidden, (&cos, &sin), mask.as_ref(), None)
    }

    /// The final norm over the last layer's output.
    pub fn final_norm(&self, hidden: &Tensor) -> Result<Tensor> {
        Ok(self.norm.forward(hidden)?)
    }

    /// Final hidden states `[b, s, hidden]` for `ids` `[b, s]` (u32) at positions
    /// `cache.len()..` (or `0..` without a cache). Appends to `cache` when given.
    pub fn forward_hidden(&self, ids: &Tensor, mut cache: Option<&mut KvCache>) -> Result<Tensor> {
        let (_, s) = ids.dims2()?;
        let offset = cache.as_ref().map_or(0, |c| c.len);
        let mut hidden = self.embed(ids)?;
        let tables = self
            .rotaries
            .iter()
            .map(|r| r.tables(offset, s, &self.device))
            .collect::<Result<Vec<(Tensor, Tensor)>>>()?;
        let mut masks: Vec<(Option<usize>, Option<Tensor>)> = Vec::new();
        for (i, layer) in self.layers.iter().enumerate() {
            let mask = match masks.iter().find(|(w, _)| *w == layer.sliding_window) {
                Some((_, m)) => m.clone(),
                None => {
                    let m = causal_mask(s, offset, layer.sliding_window, &self.device)?;
                    masks.push((layer.sliding_window, m.clone()));
                    m
                }
            };
            let layer_cache = cache.as_deref_mut().map(|c| &mut c.layers[i]);
            let (cos, sin) = &tables[layer.rope];
            hidden = layer.forward(&hidden, (cos, sin), mask.as_ref(), layer_cache)?;
        }
        if let Some(c) = cache {
            c.len += s;
        }
        self.final_norm(&hidden)
    }

    /// Logits `[.., vocab]` from final hidden states `[.., hidden]`.
    pub fn lm_head(&self, hidden: &Tensor) -> Result<Tensor> {
        self.head(hidden, false)
    }

    /// [`Self::lm_head`], with the stored head's decode product when `decode`.
    fn head(&self, hidden: &Tensor, decode: bool) -> Result<Tensor> {
        let logits = match decode {
            true => self.lm_head.forward_decode(hidden)?,
            false => self.lm_head.forward(hidden)?,
        };
        Ok(softcap(&logits, self.cfg.final_logit_softcapping)?)
    }

    /// Logits `[s, vocab]` for one sequence, no cache.
    pub fn logits(&self, ids: &[u32]) -> Result<Tensor> {
        if ids.is_empty() {
            return Err(Error::option("ids", "at least one token id is required"));
        }
        let input = Tensor::from_slice(ids, (1, ids.len()), &self.device)?;
        let hidden = self.forward_hidden(&input, None)?;
        Ok(self.lm_head(&hidden)?.squeeze(0)?.to_dtype(DType::F32)?)
    }

    /// Logits `[vocab]` of the last position after feeding `ids` through `cache`.
    pub fn step(&self, ids: &[u32], cache: &mut KvCache) -> Result<Tensor> {
        let input = Tensor::from_slice(ids, (1, ids.len()), &self.device)?;
        let hidden = self.forward_hidden(&input, Some(cache))?;
        // Only the last position's logits are needed for the next token; skipping the rest
        // saves a vocab-sized matmul per prompt token.
        let last = hidden.narrow(1, ids.len() - 1, 1)?;
        Ok(self.head(&last, true)?.flatten_all()?)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn no_fused_ops_in_forward() {
        // candle_nn's fused ops (softmax_last_dim, rms_norm, rotary_emb::rope, RmsNorm) have no
        // backward pass, and the trainer reuses this file; tunekit's own fused nodes in
        // `train::ops` do have one.
        for (name, src) in [
            ("mod.rs", include_str!("mod.rs")),
            ("linear.rs", include_str!("linear.rs")),
            ("base_weight.rs", include_str!("base_weight.rs")),
        ] {
            let code = src.split("#[cfg(test)]").next().unwrap();
            for banned in ["candle_nn::", "RmsNorm::new("] {
                assert!(!code.contains(banned), "decoder/{name} must not use {banned}");
            }
        }
    }
}
