//! LoRA adapters with Hugging Face PEFT's semantics (LOCAL-LORA-FACTS §1.4–1.5):
//!
//! `y = x·Wᵀ + b + scaling · (dropout(x)·Aᵀ)·Bᵀ`, `A: [r, in]`, `B: [out, r]`,
//! `scaling = alpha / r` (rsLoRA: `alpha / √r`), dropout only on the input of `A`,
//! `A ~ kaiming_uniform(a = √5) = U(−1/√in, 1/√in)`, `B = 0` (a no-op at step 0).
//!
//! An adapter ([`LoraAdapter`]) only computes the low-rank *delta*; the frozen base runs
//! through [`BaseWeight`] so it never gets a weight gradient. The decoder's
//! [`Linear`](crate::decoder::Linear) pairs the two.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use candle_core::{DType, Device, Result, Tensor, Var};

use super::frozen_linear::needs_grad;
use super::kernels;
use super::rng::Rng;
use crate::decoder::BaseWeight;

/// The seed recipe's projections (and the default).
pub const DEFAULT_TARGET_MODULES: [&str; 7] =
    ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"];

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct LoraConfig {
    pub r: usize,
    pub alpha: f64,
    pub dropout: f64,
    pub use_rslora: bool,
    /// Module names as PEFT matches them: a module is targeted when its full path equals an
    /// entry or ends with `"." + entry`.
    pub target_modules: Vec<String>,
}

impl Default for LoraConfig {
    /// The seed recipe (DeepSeek LoRA tutorial): r 8, alpha 32, dropout 0.1, all projections.
    fn default() -> Self {
        Self {
            r: 8,
            alpha: 32.0,
            dropout: 0.1,
            use_rslora: false,
            target_modules: DEFAULT_TARGET_MODULES.iter().map(|s| s.to_string()).collect(),
        }
    }
}

impl LoraConfig {
    pub fn scaling(&self) -> f64 {
        if self.use_rslora {
            self.alpha / (self.r as f64).sqrt()
        } else {
            self.alpha / self.r as f64
        }
    }

    /// PEFT's list rule: exact match or suffix `"." + name`.
    pub fn targets(&self, module_path: &str) -> bool {
        self.target_modules.iter().any(|t| module_path == t || module_path.ends_with(&format!(".{t}")))
    }

    pub fn validate(&self) -> super::Result<()> {
        let bad = |m: String| Err(super::TrainError::Config(m));
        if self.r == 0 {
            return bad("LoRA rank r must be at least 1".into());
        }
        if !(self.alpha.is_finite() && self.alpha > 0.0) {
            return bad(format!("lora alpha must be a positive number, got {}", self.alpha));
        }
        if !(0.0..1.0).contains(&self.dropout) {
            return bad(format!("lora dropout must be in [0, 1), got {}", self.dropout));
        }
        if self.target_modules.is_empty() {
            return bad("at least one target module is required".into());
        }
        Ok(())
    }
}

/// State shared by every adapter of one model: train/eval mode, gradient mode and the
/// dropout stream.
///
/// - `training`: dropout on (off for evaluation and generation).
/// - `grad`: A and B are tracked by autograd. Off by default, so inference with attached
///   adapters (e.g. a KV cache during generation) builds no graph; the trainer turns it on
///   around the forward/backward of each micro-batch.
///
/// Dropout masks are a pure function of `(seed, micro_step, adapter id)`, so recomputing a
/// layer (gradient checkpointing) redraws the same mask, and resuming a run only needs the
/// micro-step counter.
#[derive(Debug)]
pub struct LoraShared {
    training: AtomicBool,
    grad: AtomicBool,
    seed: AtomicU64,
    micro_step: AtomicU64,
}

impl LoraShared {
    pub fn new(seed: u64) -> Arc<Self> {
        Arc::new(Self {
            training: AtomicBool::new(false),
            grad: AtomicBool::new(false),
            seed: AtomicU64::new(seed),
            micro_step: AtomicU64::new(0),
        })
    }
    pub fn set_training(&self, on: bool) {
        self.training.store(on, Ordering::Relaxed)
    }
    pub fn training(&self) -> bool {
        self.training.load(Ordering::Relaxed)
    }
    /// Sets gradient mode and returns the previous one.
    pub fn set_grad_enabled(&self, on: bool) -> bool {
        self.grad.swap(on, Ordering::Relaxed)
    }
    pub fn grad_enabled(&self) -> bool {
        self.grad.load(Ordering::Relaxed)
    }
    /// The trainer sets this from its configured seed.
    pub fn set_seed(&self, seed: u64) {
        self.seed.store(seed, Ordering::Relaxed)
    }
    /// The trainer sets this before each micro-batch's forward pass.
    pub fn set_micro_step(&self, step: u64) {
        self.micro_step.store(step, Ordering::Relaxed)
    }
}

/// The trainable low-rank part of one projection.
#[derive(Debug)]
pub struct LoraAdapter {
    /// `[r, in]`
    pub a: Var,
    /// `[out, r]`
    pub b: Var,
    pub scaling: f64,
    pub dropout: f64,
    /// Distinguishes the dropout streams of different adapters.
    pub id: u64,
    pub shared: Arc<LoraShared>,
}

impl LoraAdapter {
    /// PEFT's default initialisation: A kaiming-uniform(a=√5), B zero. `rng` advances.
    pub fn init(
        in_features: usize,
        out_features: usize,
        cfg: &LoraConfig,
        rng: &mut Rng,
        id: u64,
        shared: Arc<LoraShared>,
        device: &Device,
    ) -> Result<Self> {
        let bound = 1.0 / (in_features as f64).sqrt();
        let a = rng.uniform_vec(cfg.r * in_features, -bound, bound);
        let a = Tensor::from_vec(a, (cfg.r, in_features), device)?;
        let b = Tensor::zeros((out_features, cfg.r), DType::F32, device)?;
        Self::from_weights(&a, &b, cfg, id, shared)
    }

    /// An adapter with given weights (loaded from PEFT, or a fixture).
    pub fn from_weights(
        a: &Tensor,
        b: &Tensor,
        cfg: &LoraConfig,
        id: u64,
        shared: Arc<LoraShared>,
    ) -> Result<Self> {
        let (r, _) = a.dims2()?;
        let (_, rb) = b.dims2()?;
        if r != rb || r != cfg.r {
            candle_core::bail!("LoRA A {:?} / B {:?} do not match rank {}", a.shape(), b.shape(), cfg.r)
        }
        Ok(Self {
            a: Var::from_tensor(&a.to_dtype(DType::F32)?)?,
            b: Var::from_tensor(&b.to_dtype(DType::F32)?)?,
            scaling: cfg.scaling(),
            dropout: cfg.dropout,
            id,
            shared,
        })
    }

    /// `scaling · (dropout(x)·Aᵀ)·Bᵀ` for `x: [.., in]`, computed in f32 and returned in
    /// `x`'s dtype.
    pub fn delta(&self, x: &Tensor) -> Result<Tensor> {
        self.delta_with(x, self.shared.grad_enabled())
    }

    /// [`Self::delta`], tracking A and B only when `track`.
    fn delta_with(&self, x: &Tensor, track: bool) -> Result<Tensor> {
        let y = (self.low_rank_product(x, track)? * self.scaling)?;
        let mut out_dims = x.dims().to_vec();
        *out_dims.last_mut().unwrap() = self.b.dim(0)?;
        y.reshape(out_dims)?.to_dtype(x.dtype())
    }

    /// `(dropout(x)·Aᵀ)·Bᵀ` in f32, `[rows, out]`: the delta before its scaling.
    fn low_rank_product(&self, x: &Tensor, track: bool) -> Result<Tensor> {
        let dims = x.dims();
        let in_f = dims[dims.len() - 1];
        let rows = x.elem_count() / in_f.max(1);
        let mut x2 = x.reshape((rows, in_f))?.to_dtype(DType::F32)?;
        if self.dropout > 0.0 && self.shared.training() {
            x2 = (x2 * self.dropout_mask(rows * in_f, x.device())?.reshape((rows, in_f))?)?;
        }
        let (a, b) = if track {
            (self.a.as_tensor().clone(), self.b.as_tensor().clone())
        } else {
            (self.a.as_detached_tensor(), self.b.as_detached_tensor())
        };
        x2.matmul(&a.t()?)?.matmul(&b.t()?)
    }

    /// `residual + (y + delta(x))` (or without the residual) for a frozen product `y` of
    /// `x`'s rows, outside the graph: [`kernels::lora_sum`], in parallel, bit-identical to
    /// the composed ops. `y` and `residual` are f32 of the output's shape.
    fn output_value(&self, x: &Tensor, y: &Tensor, residual: Option<&Tensor>) -> Result<super::ops::Pending> {
        let d = self.low_rank_product(x, false)?;
        let s = self.scaling as f32;
        let dv = kernels::f32_data(&d)?;
        let value = match residual {
            Some(r) => {
                let rv = kernels::f32_data(r)?;
                kernels::with_f32(y, |yv| kernels::lora_sum(yv, &dv, s, Some(&rv)))?
            }
            None => kernels::with_f32(y, |yv| kernels::lora_sum(yv, &dv, s, None))?,
        };
        Ok(super::ops::Pending::f32(value, y.shape()))
    }

    /// Inverted dropout mask: 0 with probability p, else 1/(1−p).
    fn dropout_mask(&self, n: usize, device: &Device) -> Result<Tensor> {
        Tensor::from_vec(self.dropout_stream().mask(n), n, device)
    }

    /// The dropout mask's random stream for the current micro-step.
    fn dropout_stream(&self) -> DropoutStream {
        DropoutStream {
            seed: self.shared.seed.load(Ordering::Relaxed),
            stream: self.shared.micro_step.load(Ordering::Relaxed).wrapping_mul(1 << 20) ^ self.id,
            dropout: self.dropout,
        }
    }

    /// `x·Wᵀ + bias + delta(x)` (PEFT's `LoraLayer.forward` with a frozen `W`).
    ///
    /// While training on the CPU in f32 this is one graph node ([`FusedLoraLinear`]) that keeps
    /// only its output: the frozen product, the delta, the scaled delta, the dropout mask and
    /// the masked input are not kept for backward (the mask is regenerated from its seed, the
    /// rank-r product recomputed). Otherwise (and with the same forward arithmetic) the
    /// composition of [`BaseWeight::forward`] and [`Self::delta`].
    pub fn linear(&self, x: &Tensor, base: &BaseWeight, bias: Option<&Tensor>) -> Result<Tensor> {
        let fused = self.shared.grad_enabled()
            && x.device().is_cpu()
            && x.dtype() == DType::F32
            && base.dtype() == DType::F32
            && !base.needs_grad()
            && bias.is_none_or(|b| !needs_grad(b) && b.dtype() == DType::F32);
        if !fused {
            let mut y = base.forward(x)?;
            if let Some(b) = bias {
                y = y.broadcast_add(b)?;
            }
            return y + self.delta(x)?;
        }
        let x = x.contiguous()?;
        // The frozen product is computed outside the graph and handed to the node, which adds
        // the bias and the delta into it: the node's backward takes `∂x` of the base from
        // `BaseWeight::backward_input`.
        let product = base.forward(&x.detach())?.contiguous()?;
        let op = FusedLoraLinear {
            base: base.clone(),
            product: std::sync::Mutex::new(Some(product)),
            bias: bias.map(|b| b.detach()),
            scaling: self.scaling,
            dropout: (self.dropout > 0.0 && self.shared.training()).then(|| self.dropout_stream()),
        };
        x.apply_op3(&self.a.as_tensor().contiguous()?, &self.b.as_tensor().contiguous()?, op)
    }

    /// Whether [`Self::glu_linear`] applies: training (gradients on) on the CPU in f32 with a
    /// frozen f32-output base, as for [`Self::linear`]'s fused node.
    pub fn fuses_glu(&self, gate: &Tensor, up: &Tensor, base: &BaseWeight, bias: Option<&Tensor>) -> bool {
        self.shared.grad_enabled()
            && gate.device().is_cpu()
            && gate.dtype() == DType::F32
            && up.dtype() == DType::F32
            && gate.shape() == up.shape()
            && base.dtype() == DType::F32
            && !base.needs_grad()
            && bias.is_none_or(|b| !needs_grad(b) && b.dtype() == DType::F32)
    }

    /// `x·Wᵀ + bias + delta(x)` with `x = act(gate) ⊙ up` (the MLP's down projection), as one
    /// graph node ([`FusedGluLoraLinear`]) over `gate` and `up` that does not keep `x`: the
    /// same value as the gated-activation node followed by [`Self::linear`], with the MLP-wide
    /// `x` recomputed in backward. Only when [`Self::fuses_glu`].
    pub fn glu_linear(
        &self,
        gate: &Tensor,
        up: &Tensor,
        act: crate::config::Activation,
        base: &BaseWeight,
        bias: Option<&Tensor>,
    ) -> Result<Tensor> {
        if !self.fuses_glu(gate, up, base, bias) {
            candle_core::bail!("glu-lora-linear: not a fusable input (see `fuses_glu`)")
        }
        let (gate, up) = (gate.contiguous()?, up.contiguous()?);
        // The value the unfused path computes: the glu node's value, then `Self::linear`'s
        // composed arithmetic, all outside the graph.
        let value = {
            let x = super::ops::glu_value(&gate, &up, act)?;
            let mut y = base.forward(&x)?;
            if let Some(b) = bias {
                y = y.broadcast_add(&b.detach())?;
            }
            self.output_value(&x, &y, None)?
        };
        let ab = join_ab(self.a.as_tensor(), self.b.as_tensor())?;
        let op = FusedGluLoraLinear {
            base: base.clone(),
            value,
            act,
            rank: self.a.dim(0)?,
            scaling: self.scaling,
            dropout: (self.dropout > 0.0 && self.shared.training()).then(|| self.dropout_stream()),
        };
        gate.apply_op3(&up, &ab, op)
    }

    /// Whether [`Self::residual_linear`] applies (as [`Self::fuses_glu`], for one input).
    pub fn fuses_residual(
        &self,
        x: &Tensor,
        residual: &Tensor,
        base: &BaseWeight,
        bias: Option<&Tensor>,
    ) -> bool {
        self.fuses_glu(x, x, base, bias) && residual.dtype() == DType::F32 && residual.device().is_cpu()
    }

    /// `residual + (x·Wᵀ + bias + delta(x))` as one graph node over `(x, residual, [A | B])`
    /// ([`FusedResidualLoraLinear`]): a block's output projection with its residual add, so the
    /// projection's output is not kept by an add node for backward. Same value as
    /// `residual + self.linear(x)`. Only when [`Self::fuses_residual`].
    pub fn residual_linear(
        &self,
        x: &Tensor,
        residual: &Tensor,
        base: &BaseWeight,
        bias: Option<&Tensor>,
    ) -> Result<Tensor> {
        if !self.fuses_residual(x, residual, base, bias) {
            candle_core::bail!("residual-lora-linear: not a fusable input (see `fuses_residual`)")
        }
        let x = x.contiguous()?;
        let value = {
            let xd = x.detach();
            let mut y = base.forward(&xd)?;
            if let Some(b) = bias {
                y = y.broadcast_add(&b.detach())?;
            }
            self.output_value(&xd, &y, Some(&residual.detach()))?
        };
        let ab = join_ab(self.a.as_tensor(), self.b.as_tensor())?;
        let op = FusedResidualLoraLinear {
            base: base.clone(),
            value,
            rank: self.a.dim(0)?,
            scaling: self.scaling,
            dropout: (self.dropout > 0.0 && self.shared.training()).then(|| self.dropout_stream()),
        };
        x.apply_op3(residual, &ab, op)
    }

    /// `scaling · B·A`, `[out, in]` (PEFT's `get_delta_weight`).
    pub fn delta_weight(&self) -> Result<Tensor> {
        self.b.as_tensor().matmul(self.a.as_tensor())? * self.scaling
    }

    pub fn vars(&self) -> [&Var; 2] {
        [&self.a, &self.b]
    }
}

/// The random stream of one dropout mask (a pure function of seed, micro-step and adapter).
#[derive(Debug, Clone, Copy)]
struct DropoutStream {
    seed: u64,
    stream: u64,
    dropout: f64,
}

impl DropoutStream {
    fn mask(&self, n: usize) -> Vec<f32> {
        let mut rng = Rng::derive(self.seed, "lora-dropout", self.stream);
        let keep = 1.0 - self.dropout;
        let scale = (1.0 / keep) as f32;
        (0..n).map(|_| if rng.next_f64() < keep { scale } else { 0.0 }).collect()
    }
}

/// `y = x·Wᵀ + b + s·((x⊙m)·Aᵀ)·Bᵀ` as a single graph node over `(x, A, B)`.
///
/// The forward runs the same kernels in the same order as the composed ops (`frozen_linear`,
/// bias add, [`LoraAdapter::delta`], add), so its value is bit-identical, but adds the delta
/// into the product in place. Backward recomputes the rank-r activation `(x⊙m)·Aᵀ` and the
/// mask `m`: `gB = s·gᵀ·low`, `glow = s·g·B`, `gA = glowᵀ·(x⊙m)`, `gx = g·W + (glow·A)⊙m`.
struct FusedLoraLinear {
    /// `[out, in]`, frozen.
    base: BaseWeight,
    /// `x·Wᵀ`, computed by the caller; taken once by the forward.
    product: std::sync::Mutex<Option<Tensor>>,
    bias: Option<Tensor>,
    scaling: f64,
    dropout: Option<DropoutStream>,
}

fn cpu_f32<'a>(s: &'a candle_core::CpuStorage, l: &candle_core::Layout, what: &str) -> Result<&'a [f32]> {
    match s {
        candle_core::CpuStorage::F32(v) if l.is_contiguous() => {
            Ok(&v[l.start_offset()..l.start_offset() + l.shape().elem_count()])
        }
        _ => candle_core::bail!("lora-linear: {what} must be contiguous f32"),
    }
}

impl candle_core::CustomOp3 for FusedLoraLinear {
    fn name(&self) -> &'static str {
        "lora-linear"
    }

    fn cpu_fwd(
        &self,
        xs: &candle_core::CpuStorage,
        xl: &candle_core::Layout,
        a_s: &candle_core::CpuStorage,
        al: &candle_core::Layout,
        b_s: &candle_core::CpuStorage,
        bl: &candle_core::Layout,
    ) -> Result<(candle_core::CpuStorage, candle_core::Shape)> {
        use candle_core::backend::BackendStorage;
        use candle_core::{CpuStorage, Layout, Storage};
        let (out_f, in_f) = self.base.dims();
        let (r, _) = al.shape().dims2()?;
        let dims = xl.dims();
        if dims.last() != Some(&in_f) || !xl.is_contiguous() {
            candle_core::bail!("lora-linear: input {:?} does not match weight [{out_f}, {in_f}]", xl.shape())
        }
        let rows = xl.shape().elem_count() / in_f.max(1);
        let x2 = Layout::contiguous_with_offset((rows, in_f), xl.start_offset());
        let product =
            self.product.lock().map_err(|_| candle_core::Error::Msg("lora-linear: poisoned".into()))?.take();
        let Some(product) = product else { candle_core::bail!("lora-linear: forward value already taken") };
        // (x⊙m)·Aᵀ·Bᵀ, as `LoraAdapter::delta` computes it.
        let masked;
        let (xin, xinl) = match &self.dropout {
            Some(d) => {
                let x = cpu_f32(xs, &x2, "input")?;
                let m = d.mask(rows * in_f);
                masked = CpuStorage::F32(x.iter().zip(&m).map(|(&a, &b)| a * b).collect());
                (&masked, Layout::contiguous((rows, in_f)))
            }
            None => (xs, x2),
        };
        let low = xin.matmul(a_s, (1, rows, r, in_f), &xinl, &al.transpose(0, 1)?)?;
        let delta =
            low.matmul(b_s, (1, rows, out_f, r), &Layout::contiguous((rows, r)), &bl.transpose(0, 1)?)?;
        let delta = cpu_f32(&delta, &Layout::contiguous((rows, out_f)), "delta")?;
        let (ps, pl) = product.storage_and_layout();
        let Storage::Cpu(ps) = &*ps else { candle_core::bail!("lora-linear: product is not on the CPU") };
        let pv = cpu_f32(ps, pl, "product")?;
        let s = self.scaling as f32;
        // Same arithmetic, in the same order, as `(x·Wᵀ + bias) + (delta·s)`.
        let yv: Vec<f32> = match &self.bias {
            Some(bias) => {
                let (bs, bl) = bias.storage_and_layout();
                let Storage::Cpu(bs) = &*bs else {
                    candle_core::bail!("lora-linear: bias is not on the CPU")
                };
                let bv = cpu_f32(bs, bl, "bias")?;
                let mut y = Vec::with_capacity(rows * out_f);
                for (prow, drow) in pv.chunks(out_f).zip(delta.chunks(out_f)) {
                    y.extend(prow.iter().zip(bv).zip(drow).map(|((&v, &b), &d)| (v + b) + (d * s + 0.0)));
                }
                y
            }
            None => kernels::lora_sum(pv, delta, s, None),
        };
        let y = CpuStorage::F32(yv);
        let mut out_dims = dims.to_vec();
        *out_dims.last_mut().expect("non-scalar input") = out_f;
        Ok((y, candle_core::Shape::from(out_dims)))
    }

    fn bwd(
        &self,
        x: &Tensor,
        a: &Tensor,
        b: &Tensor,
        _y: &Tensor,
        g: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let (gx, ga, gb) = lora_backward(&self.base, self.scaling, self.dropout, &x.detach(), a, b, g)?;
        Ok((Some(gx), Some(ga), Some(gb)))
    }
}

/// The gradients `(∂x, ∂A, ∂B)` of `y = x·Wᵀ + b + s·((x⊙m)·Aᵀ)·Bᵀ` from `∂y = g`, recomputing
/// the rank-r activation and the dropout mask: `gB = s·gᵀ·low`, `glow = s·g·B`,
/// `gA = glowᵀ·(x⊙m)`, `gx = g·W + (glow·A)⊙m`.
fn lora_backward(
    base: &BaseWeight,
    scaling: f64,
    dropout: Option<DropoutStream>,
    x: &Tensor,
    a: &Tensor,
    b: &Tensor,
    g: &Tensor,
) -> Result<(Tensor, Tensor, Tensor)> {
    let (a, b) = (a.detach(), b.detach());
    let (out_f, in_f) = base.dims();
    let rows = x.elem_count() / in_f.max(1);
    let g2 = g.reshape((rows, out_f))?;
    let mask = match &dropout {
        Some(d) => Some(Tensor::from_vec(d.mask(rows * in_f), (rows, in_f), x.device())?),
        None => None,
    };
    let x2 = x.reshape((rows, in_f))?;
    let x2 = match &mask {
        Some(m) => (x2 * m)?,
        None => x2,
    };
    let low = x2.matmul(&a.t()?)?;
    // The scaling goes on the rank-r products, not on the (rows × out) gradient.
    let gb = (low.t()?.matmul(&g2)? * scaling)?.t()?;
    let glow = (g2.matmul(&b)? * scaling)?;
    let ga = x2.t()?.matmul(&glow)?.t()?;
    drop(x2);
    let gx = match &mask {
        None => add_low_rank(&base.backward_input(&g2)?, &glow, &a)?,
        Some(m) => parallel_add(&base.backward_input(&g2)?, &(glow.matmul(&a)? * m)?)?,
    };
    let gx = gx.reshape(x.shape())?;
    Ok((gx, ga, gb))
}

/// `a + b` for f32 CPU tensors of one shape through [`kernels::add`] (in parallel); candle's
/// add otherwise.
fn parallel_add(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    let fast = a.shape() == b.shape()
        && a.dtype() == DType::F32
        && b.dtype() == DType::F32
        && a.device().is_cpu()
        && b.device().is_cpu();
    if !fast {
        return a + b;
    }
    let bv = kernels::f32_data(b)?;
    let sum = kernels::with_f32(a, |av| kernels::add(av, &bv))?;
    Tensor::from_vec(sum, a.shape(), a.device())
}

/// `y + u·v` (`y` `[rows, n]`, `u` `[rows, r]`, `v` `[r, n]`) through [`kernels::add_low_rank`]
/// for f32 on the CPU; candle's matmul and add otherwise.
fn add_low_rank(y: &Tensor, u: &Tensor, v: &Tensor) -> Result<Tensor> {
    let all_f32 = [y, u, v].iter().all(|t| t.dtype() == DType::F32 && t.device().is_cpu());
    if !all_f32 || y.rank() != 2 || u.rank() != 2 || v.rank() != 2 || y.dim(1)? != v.dim(1)? {
        return y + u.matmul(v)?;
    }
    let (uv, vv) = (kernels::f32_data(u)?, kernels::f32_data(v)?);
    let r = v.dim(0)?;
    let out = kernels::with_f32(y, |yv| kernels::add_low_rank(yv, &uv, &vv, r))?;
    Tensor::from_vec(out, y.shape(), y.device())
}

/// `y = down(act(gate) ⊙ up)` with a LoRA-adapted `down` as one node over
/// `(gate, up, [A | B])`: the gated activation `act(gate) ⊙ up` (the projection's input, as
/// wide as the MLP) is not kept for backward but recomputed from `gate` and `up`, which the
/// graph keeps anyway. `A` and `B` travel flattened and concatenated, since a node has at
/// most three inputs; candle's `cat` backward splits their gradients again.
struct FusedGluLoraLinear {
    base: BaseWeight,
    /// The forward value, computed by the caller; taken once by the forward.
    value: super::ops::Pending,
    act: crate::config::Activation,
    rank: usize,
    scaling: f64,
    dropout: Option<DropoutStream>,
}

impl candle_core::CustomOp3 for FusedGluLoraLinear {
    fn name(&self) -> &'static str {
        "glu-lora-linear"
    }

    fn cpu_fwd(
        &self,
        _: &candle_core::CpuStorage,
        _: &candle_core::Layout,
        _: &candle_core::CpuStorage,
        _: &candle_core::Layout,
        _: &candle_core::CpuStorage,
        _: &candle_core::Layout,
    ) -> Result<(candle_core::CpuStorage, candle_core::Shape)> {
        self.value.take(self.name())
    }

    fn bwd(
        &self,
        gate: &Tensor,
        up: &Tensor,
        ab: &Tensor,
        _y: &Tensor,
        g: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let (gate, up) = (gate.detach(), up.detach());
        let (a, b) = split_ab(ab, self.rank, self.base.dims())?;
        let x = super::ops::glu_value(&gate, &up, self.act)?;
        let (gx, ga, gb) = lora_backward(&self.base, self.scaling, self.dropout, &x, &a, &b, g)?;
        drop(x);
        let (dgate, dup) = super::ops::glu_grads(&gate, &up, &gx, self.act)?;
        let dab = join_ab(&ga, &gb)?;
        Ok((Some(dgate), Some(dup), Some(dab)))
    }
}

/// `residual + x·Wᵀ + b + s·((x⊙m)·Aᵀ)·Bᵀ` as one node over `(x, residual, [A | B])`; the
/// residual's gradient is the output's.
struct FusedResidualLoraLinear {
    base: BaseWeight,
    value: super::ops::Pending,
    rank: usize,
    scaling: f64,
    dropout: Option<DropoutStream>,
}

/// `[A | B]` (flattened, concatenated) back into `A: [r, in]` and `B: [out, r]`.
fn split_ab(ab: &Tensor, rank: usize, (out_f, in_f): (usize, usize)) -> Result<(Tensor, Tensor)> {
    let ab = ab.detach();
    Ok((
        ab.narrow(0, 0, rank * in_f)?.reshape((rank, in_f))?,
        ab.narrow(0, rank * in_f, out_f * rank)?.reshape((out_f, rank))?,
    ))
}

/// `A` and `B` (or their gradients) flattened and concatenated: the inverse of [`split_ab`].
fn join_ab(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    Tensor::cat(&[a.flatten_all()?, b.flatten_all()?], 0)
}

impl candle_core::CustomOp3 for FusedResidualLoraLinear {
    fn name(&self) -> &'static str {
        "residual-lora-linear"
    }

    fn cpu_fwd(
        &self,
        _: &candle_core::CpuStorage,
        _: &candle_core::Layout,
        _: &candle_core::CpuStorage,
        _: &candle_core::Layout,
        _: &candle_core::CpuStorage,
        _: &candle_core::Layout,
    ) -> Result<(candle_core::CpuStorage, candle_core::Shape)> {
        self.value.take(self.name())
    }

    fn bwd(
        &self,
        x: &Tensor,
        _residual: &Tensor,
        ab: &Tensor,
        _y: &Tensor,
        g: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let (a, b) = split_ab(ab, self.rank, self.base.dims())?;
        let (gx, ga, gb) = lora_backward(&self.base, self.scaling, self.dropout, &x.detach(), &a, &b, g)?;
        let dab = join_ab(&ga, &gb)?;
        Ok((Some(gx), Some(g.clone()), Some(dab)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decoder::Linear;
    use crate::train::frozen_linear::frozen_linear;
    use crate::train::testutil::{assert_close, fd_grad};
    use candle_core::Module;

    fn cfg(r: usize, alpha: f64, dropout: f64, rs: bool) -> LoraConfig {
        LoraConfig { r, alpha, dropout, use_rslora: rs, ..LoraConfig::default() }
    }

    #[test]
    fn train_lora_scaling_and_targets_follow_peft() {
        assert_eq!(cfg(8, 32.0, 0.0, false).scaling(), 4.0);
        assert_eq!(cfg(16, 32.0, 0.0, true).scaling(), 8.0);
        let c = LoraConfig::default();
        assert!(c.targets("model.layers.3.self_attn.q_proj"));
        assert!(c.targets("down_proj"));
        assert!(!c.targets("model.layers.3.self_attn.qq_proj"));
        assert!(!c.targets("lm_head"));
        assert!(cfg(0, 8.0, 0.0, false).validate().is_err());
        assert!(cfg(8, 8.0, 1.0, false).validate().is_err());
        assert!(c.validate().is_ok());
    }

    #[test]
    fn train_lora_init_is_peft_kaiming_uniform_and_zero_b() -> Result<()> {
        let dev = Device::Cpu;
        let shared = LoraShared::new(0);
        let c = cfg(4, 8.0, 0.0, false);
        let ad = LoraAdapter::init(256, 32, &c, &mut Rng::new(1), 0, shared.clone(), &dev)?;
        let a = ad.a.as_tensor().flatten_all()?.to_vec1::<f32>()?;
        let bound = 1.0 / 16.0;
        assert!(a.iter().all(|v| v.abs() <= bound));
        // U(-b, b) has variance b²/3.
        let var = a.iter().map(|v| v * v).sum::<f32>() / a.len() as f32;
        assert!((var / (bound * bound / 3.0) - 1.0).abs() < 0.1, "variance {var}");
        assert_eq!(ad.b.as_tensor().abs()?.sum_all()?.to_scalar::<f32>()?, 0.0);
        // Same seed, same init.
        let again = LoraAdapter::init(256, 32, &c, &mut Rng::new(1), 0, shared, &dev)?;
        assert_close(again.a.as_tensor(), ad.a.as_tensor(), 0.0)?;
        Ok(())
    }

    /// Forward equals the merged weight's linear map; gradients of A, B and x pass a
    /// finite-difference check.
    #[test]
    fn train_lora_linear_forward_and_gradients() -> Result<()> {
        let dev = Device::Cpu;
        let shared = LoraShared::new(0);
        let c = cfg(3, 6.0, 0.0, false);
        let w = Tensor::randn(0f32, 1., (5, 4), &dev)?;
        let bias = Tensor::randn(0f32, 1., 5, &dev)?;
        let a = Tensor::randn(0f32, 1., (3, 4), &dev)?;
        let b = Tensor::randn(0f32, 1., (5, 3), &dev)?;
        shared.set_grad_enabled(true);
        let lin = Linear {
            adapter: Some(Arc::new(LoraAdapter::from_weights(&a, &b, &c, 0, shared.clone())?)),
            ..Linear::new(w.clone(), Some(bias.clone()))
        };
        let x = Var::randn(0f32, 1., (2, 3, 4), &dev)?;
        let y = lin.forward(&x)?;
        let merged = lin.merged()?.base.to_dense()?;
        let want = x.broadcast_matmul(&merged.t()?)?.broadcast_add(&bias)?;
        assert_close(&y, &want, 1e-5)?;
        let expected_merge = (&w + (b.matmul(&a)? * 2.0)?)?;
        assert_close(&merged, &expected_merge, 1e-6)?;

        // Gradient check in f64 on the delta path: the loss is a fixed non-linear function.
        let ad = lin.adapter.as_ref().unwrap();
        let c64 = Tensor::randn(0f64, 1., (2, 3, 5), &dev)?;
        let x64 = x.as_tensor().to_dtype(DType::F64)?;
        let loss_of = |a: &Tensor, b: &Tensor, x: &Tensor| -> Result<Tensor> {
            let y = x.broadcast_matmul(&a.t()?)?.broadcast_matmul(&b.t()?)?.affine(ad.scaling, 0.)?;
            (frozen_linear(x, &w.to_dtype(DType::F64)?)? + y)?.tanh()?.mul(&c64)?.sum_all()
        };
        // Analytic gradients through the real layer (f32), numeric through the same math (f64).
        let loss = (lin.forward(&x)?.to_dtype(DType::F64)?.broadcast_sub(&bias.to_dtype(DType::F64)?)?)
            .tanh()?
            .mul(&c64)?
            .sum_all()?;
        let g = loss.backward()?;
        let a64 = a.to_dtype(DType::F64)?;
        let b64 = b.to_dtype(DType::F64)?;
        let na = fd_grad(&|t: &Tensor| loss_of(t, &b64, &x64), &a64, 1e-6)?;
        let nb = fd_grad(&|t: &Tensor| loss_of(&a64, t, &x64), &b64, 1e-6)?;
        let nx = fd_grad(&|t: &Tensor| loss_of(&a64, &b64, t), &x64, 1e-6)?;
        let ea = assert_close(&g.get(&ad.a).unwrap().to_dtype(DType::F64)?, &na, 1e-4)?;
        let eb = assert_close(&g.get(&ad.b).unwrap().to_dtype(DType::F64)?, &nb, 1e-4)?;
        let ex = assert_close(&g.get(&x).unwrap().to_dtype(DType::F64)?, &nx, 1e-4)?;
        eprintln!("LoRA finite-difference max rel err: A {ea:.2e}, B {eb:.2e}, x {ex:.2e}");

        // Gradient mode off (inference): same values, no graph through A and B.
        shared.set_grad_enabled(false);
        let y_off = lin.forward(&x)?;
        assert_close(&y_off, &y, 0.0)?;
        let g = y_off.sum_all()?.backward()?;
        assert!(g.get(&ad.a).is_none() && g.get(&ad.b).is_none());
        assert!(g.get(&x).is_some(), "the input gradient still flows through the frozen path");
        Ok(())
    }

    #[test]
    fn train_lora_dropout_only_in_training_and_reproducible() -> Result<()> {
        let dev = Device::Cpu;
        let shared = LoraShared::new(9);
        let c = cfg(2, 2.0, 0.5, false);
        let a = Tensor::ones((2, 64), DType::F32, &dev)?;
        let b = Tensor::ones((3, 2), DType::F32, &dev)?;
        let ad = LoraAdapter::from_weights(&a, &b, &c, 7, shared.clone())?;
        let x = Tensor::ones((4, 64), DType::F32, &dev)?;
        let eval = ad.delta(&x)?;
        // No dropout in eval: every output is scaling · r · 64 = 1 · 2 · 64.
        assert_close(&eval, &Tensor::full(128f32, (4, 3), &dev)?, 0.0)?;
        shared.set_training(true);
        shared.set_micro_step(3);
        let t1 = ad.delta(&x)?;
        let t2 = ad.delta(&x)?;
        assert_close(&t1, &t2, 0.0)?; // same micro-step → same mask (recompute-safe)
        let mean = t1.mean_all()?.to_scalar::<f32>()?;
        assert!((mean / 128.0 - 1.0).abs() < 0.15, "inverted dropout keeps the mean: {mean}");
        assert!(t1.sub(&eval)?.abs()?.sum_all()?.to_scalar::<f32>()? > 0.0);
        shared.set_micro_step(4);
        assert!(ad.delta(&x)?.sub(&t1)?.abs()?.sum_all()?.to_scalar::<f32>()? > 0.0);
        Ok(())
    }

    #[test]
    fn train_lora_fused_linear_matches_composed_ops() -> Result<()> {
        let dev = Device::Cpu;
        let mut rng = Rng::new(5);
        let (rows, in_f, out_f) = (6, 16, 12);
        for (dropout, with_bias) in [(0.0, false), (0.3, true)] {
            let shared = LoraShared::new(4);
            let c = cfg(3, 6.0, dropout, false);
            let a = Tensor::from_vec(rng.uniform_vec(3 * in_f, -0.5, 0.5), (3, in_f), &dev)?;
            let b = Tensor::from_vec(rng.uniform_vec(out_f * 3, -0.5, 0.5), (out_f, 3), &dev)?;
            let ad = LoraAdapter::from_weights(&a, &b, &c, 2, shared.clone())?;
            let w = Tensor::from_vec(rng.uniform_vec(out_f * in_f, -0.5, 0.5), (out_f, in_f), &dev)?;
            let bias = Tensor::from_vec(rng.uniform_vec(out_f, -0.5, 0.5), out_f, &dev)?;
            let bias = with_bias.then_some(&bias);
            let x = Var::from_tensor(&Tensor::from_vec(
                rng.uniform_vec(2 * rows * in_f, -1.0, 1.0),
                (2, rows, in_f),
                &dev,
            )?)?;
            let probe =
                Tensor::from_vec(rng.uniform_vec(2 * rows * out_f, -1.0, 1.0), (2, rows, out_f), &dev)?;
            shared.set_training(true);
            shared.set_grad_enabled(true);
            shared.set_micro_step(7);
            let fused = ad.linear(&x, &BaseWeight::F32(w.clone()), bias)?;
            let mut composed = frozen_linear(&x, &w)?;
            if let Some(b) = bias {
                composed = composed.broadcast_add(b)?;
            }
            let composed = (composed + ad.delta(&x)?)?;
            assert_close(&fused, &composed, 0.0)?; // bit-identical forward
            let gf = (fused * &probe)?.sum_all()?.backward()?;
            let gc = (composed * &probe)?.sum_all()?.backward()?;
            for v in [x.as_tensor(), ad.a.as_tensor(), ad.b.as_tensor()] {
                assert_close(gf.get(v).unwrap(), gc.get(v).unwrap(), 1e-6)?;
            }
        }
        Ok(())
    }

    #[test]
    fn train_lora_glu_linear_matches_glu_node_then_linear() -> Result<()> {
        // The down projection's fused node over (gate, up): same value as the gated-activation
        // node followed by the LoRA linear, same gradients for gate, up, A and B, without
        // keeping the activation.
        use crate::config::Activation;
        use crate::train::ops::glu;
        let dev = Device::Cpu;
        let mut rng = Rng::new(11);
        let (rows, in_f, out_f) = (5, 16, 12);
        for (act, dropout, with_bias) in [
            (Activation::Silu, 0.0, false),
            (Activation::Silu, 0.3, true),
            (Activation::GeluTanh, 0.2, false),
        ] {
            let shared = LoraShared::new(4);
            let c = cfg(3, 6.0, dropout, false);
            let a = Tensor::from_vec(rng.uniform_vec(3 * in_f, -0.5, 0.5), (3, in_f), &dev)?;
            let b = Tensor::from_vec(rng.uniform_vec(out_f * 3, -0.5, 0.5), (out_f, 3), &dev)?;
            let ad = LoraAdapter::from_weights(&a, &b, &c, 2, shared.clone())?;
            let w = BaseWeight::F32(Tensor::from_vec(
                rng.uniform_vec(out_f * in_f, -0.5, 0.5),
                (out_f, in_f),
                &dev,
            )?);
            let bias = Tensor::from_vec(rng.uniform_vec(out_f, -0.5, 0.5), out_f, &dev)?;
            let bias = with_bias.then_some(&bias);
            let input = |rng: &mut Rng| -> Result<Var> {
                Var::from_tensor(&Tensor::from_vec(
                    rng.uniform_vec(2 * rows * in_f, -2.0, 2.0),
                    (2, rows, in_f),
                    &dev,
                )?)
            };
            let (gate, up) = (input(&mut rng)?, input(&mut rng)?);
            let probe =
                Tensor::from_vec(rng.uniform_vec(2 * rows * out_f, -1.0, 1.0), (2, rows, out_f), &dev)?;
            shared.set_training(true);
            shared.set_grad_enabled(true);
            shared.set_micro_step(3);
            assert!(ad.fuses_glu(&gate, &up, &w, bias));
            let fused = ad.glu_linear(&gate, &up, act, &w, bias)?;
            let composed = ad.linear(&glu(&gate, &up, act)?, &w, bias)?;
            assert_close(&fused, &composed, 0.0)?; // bit-identical forward
            let gf = (fused * &probe)?.sum_all()?.backward()?;
            let gc = (composed * &probe)?.sum_all()?.backward()?;
            for v in [gate.as_tensor(), up.as_tensor(), ad.a.as_tensor(), ad.b.as_tensor()] {
                assert_close(gf.get(v).unwrap(), gc.get(v).unwrap(), 1e-6)?;
            }
            // Not while gradients are off (inference keeps the plain path).
            shared.set_grad_enabled(false);
            assert!(!ad.fuses_glu(&gate, &up, &w, bias));
            assert!(ad.glu_linear(&gate, &up, act, &w, bias).is_err());
        }
        Ok(())
    }

    #[test]
    fn train_lora_residual_linear_matches_linear_plus_residual() -> Result<()> {
        let dev = Device::Cpu;
        let mut rng = Rng::new(12);
        let (rows, in_f, out_f) = (5, 16, 12);
        for (dropout, with_bias) in [(0.0, false), (0.3, true)] {
            let shared = LoraShared::new(4);
            let c = cfg(3, 6.0, dropout, false);
            let a = Tensor::from_vec(rng.uniform_vec(3 * in_f, -0.5, 0.5), (3, in_f), &dev)?;
            let b = Tensor::from_vec(rng.uniform_vec(out_f * 3, -0.5, 0.5), (out_f, 3), &dev)?;
            let ad = LoraAdapter::from_weights(&a, &b, &c, 2, shared.clone())?;
            let w = BaseWeight::F32(Tensor::from_vec(
                rng.uniform_vec(out_f * in_f, -0.5, 0.5),
                (out_f, in_f),
                &dev,
            )?);
            let bias = Tensor::from_vec(rng.uniform_vec(out_f, -0.5, 0.5), out_f, &dev)?;
            let bias = with_bias.then_some(&bias);
            let x = Var::from_tensor(&Tensor::from_vec(
                rng.uniform_vec(2 * rows * in_f, -2.0, 2.0),
                (2, rows, in_f),
                &dev,
            )?)?;
            let res = Var::from_tensor(&Tensor::from_vec(
                rng.uniform_vec(2 * rows * out_f, -2.0, 2.0),
                (2, rows, out_f),
                &dev,
            )?)?;
            let probe =
                Tensor::from_vec(rng.uniform_vec(2 * rows * out_f, -1.0, 1.0), (2, rows, out_f), &dev)?;
            shared.set_training(true);
            shared.set_grad_enabled(true);
            shared.set_micro_step(5);
            let fused = ad.residual_linear(&x, &res, &w, bias)?;
            let composed = (res.as_tensor() + ad.linear(&x, &w, bias)?)?;
            assert_close(&fused, &composed, 0.0)?; // bit-identical forward
            let gf = (fused.tanh()? * &probe)?.sum_all()?.backward()?;
            let gc = (composed.tanh()? * &probe)?.sum_all()?.backward()?;
            for v in [x.as_tensor(), res.as_tensor(), ad.a.as_tensor(), ad.b.as_tensor()] {
                assert_close(gf.get(v).unwrap(), gc.get(v).unwrap(), 1e-6)?;
            }
            shared.set_grad_enabled(false);
            assert!(ad.residual_linear(&x, &res, &w, bias).is_err());
        }
        Ok(())
    }
}
