//! Differentiable ops that do not leave gradients for constants behind.
//!
//! candle's backward pass computes a gradient for *both* operands of every binary op and keeps
//! the ones of untracked leaves (masks, rope tables, norm weights, a detached max) in the
//! `GradStore` until it is dropped: one activation-sized tensor per use. Measured on a
//! 41M-parameter Llama (LoRA r 8, 4×256 tokens, frozen-linear projections): 74 such tensors,
//! 221 MiB, alive at the peak of every step; with these ops, 10 tensors, 13 MiB. These ops
//! take the constant out of the graph:
//!
//! - [`add_const`] / [`mul_const`]: `x + c`, `x ⊙ c` with `c` broadcast over `x`'s leading
//!   dims (the mask on scores, the cos/sin tables on q/k, a norm weight on hidden states);
//!   backward returns only `∂/∂x`.
//! - [`stable_softmax`]: a fused, stable softmax *with* a backward pass
//!   (`p ⊙ (g − Σ g⊙p)`), unlike candle-nn's fused one (no backward) or the composed one
//!   (which keeps a gradient for the detached max).
//!
//! A "constant" that is in fact trainable (a `Var` or computed from one) takes candle's
//! ordinary broadcast op, so no gradient is ever cut. CPU kernels for f32/f64; other devices
//! and dtypes fall back to candle's broadcast ops (correct, but they keep the gradient).

use candle_core::backend::BackendStorage;
use candle_core::{CpuStorage, CustomOp1, DType, Layout, Result, Shape, Storage, Tensor, D};

use super::frozen_linear::needs_grad;
use super::kernels;
use crate::config::Activation;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Add,
    Mul,
}

struct ConstBinary {
    /// Contiguous, untracked, its dims a suffix of the input's.
    c: Tensor,
    kind: Kind,
}

/// `x + c`, `c` broadcast over the leading dims of `x` (e.g. a `[s, t]` mask on
/// `[b, h, s, t]` scores). No gradient is computed for `c`.
pub fn add_const(x: &Tensor, c: &Tensor) -> Result<Tensor> {
    const_binary(x, c, Kind::Add)
}

/// `x ⊙ c`, `c` broadcast over the leading dims of `x`. No gradient is computed for `c`.
pub fn mul_const(x: &Tensor, c: &Tensor) -> Result<Tensor> {
    const_binary(x, c, Kind::Mul)
}

fn const_binary(x: &Tensor, c: &Tensor, kind: Kind) -> Result<Tensor> {
    // Drop leading 1s of c ([1, 1, s, t] → [s, t]) and check it matches x's trailing dims.
    let lead = c.dims().iter().take_while(|&&d| d == 1).count().min(c.rank().saturating_sub(1));
    let c_dims = &c.dims()[lead..];
    let fits = c_dims.len() <= x.rank() && x.dims().ends_with(c_dims);
    let fast = fits
        && x.device().is_cpu()
        && matches!(x.dtype(), DType::F32 | DType::F64)
        && c.dtype() == x.dtype()
        && !needs_grad(c);
    if !fast {
        // A trainable `c` (a `Var` or derived from one) keeps its gradient here.
        return match kind {
            Kind::Add => x.broadcast_add(c),
            Kind::Mul => x.broadcast_mul(c),
        };
    }
    let c = c.detach().reshape(c_dims)?.contiguous()?;
    x.contiguous()?.apply_op1(ConstBinary { c, kind })
}

fn cpu_slice<'a, T: candle_core::WithDType>(s: &'a CpuStorage, l: &Layout) -> Result<&'a [T]> {
    let all = s.as_slice::<T>()?;
    Ok(&all[l.start_offset()..l.start_offset() + l.shape().elem_count()])
}

impl CustomOp1 for ConstBinary {
    fn name(&self) -> &'static str {
        match self.kind {
            Kind::Add => "add-const",
            Kind::Mul => "mul-const",
        }
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        if !l.is_contiguous() {
            candle_core::bail!("{}: input must be contiguous", self.name())
        }
        let (cs, cl) = self.c.storage_and_layout();
        let Storage::Cpu(cs) = &*cs else {
            candle_core::bail!("{}: constant is not on the CPU", self.name())
        };
        fn run<T: candle_core::WithDType + std::ops::Add<Output = T> + std::ops::Mul<Output = T>>(
            x: &[T],
            c: &[T],
            kind: Kind,
        ) -> Vec<T> {
            let m = c.len();
            match kind {
                Kind::Add => x.chunks(m).flat_map(|row| row.iter().zip(c).map(|(&a, &b)| a + b)).collect(),
                Kind::Mul => x.chunks(m).flat_map(|row| row.iter().zip(c).map(|(&a, &b)| a * b)).collect(),
            }
        }
        let out = match s.dtype() {
            DType::F32 => CpuStorage::F32(run(cpu_slice::<f32>(s, l)?, cpu_slice::<f32>(cs, cl)?, self.kind)),
            DType::F64 => CpuStorage::F64(run(cpu_slice::<f64>(s, l)?, cpu_slice::<f64>(cs, cl)?, self.kind)),
            dt => candle_core::bail!("{}: unsupported dtype {dt:?}", self.name()),
        };
        Ok((out, l.shape().clone()))
    }

    fn bwd(&self, _x: &Tensor, _y: &Tensor, g: &Tensor) -> Result<Option<Tensor>> {
        Ok(Some(match self.kind {
            Kind::Add => g.clone(),
            Kind::Mul => g.broadcast_mul(&self.c)?,
        }))
    }
}

struct Softmax;

/// Softmax over the last dimension with a backward pass. Rows that are entirely `-inf` give
/// NaN, like the reference implementation.
pub fn stable_softmax(x: &Tensor) -> Result<Tensor> {
    if !x.device().is_cpu() || !matches!(x.dtype(), DType::F32 | DType::F64) {
        let max = x.max_keepdim(D::Minus1)?.detach();
        let e = x.broadcast_sub(&max)?.exp()?;
        return e.broadcast_div(&e.sum_keepdim(D::Minus1)?);
    }
    x.contiguous()?.apply_op1(Softmax)
}

impl CustomOp1 for Softmax {
    fn name(&self) -> &'static str {
        "softmax-last-dim"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        if !l.is_contiguous() {
            candle_core::bail!("softmax: input must be contiguous")
        }
        let n = *l.dims().last().unwrap_or(&1);
        macro_rules! run {
            ($t:ty, $x:expr) => {{
                let x: &[$t] = $x;
                let mut out: Vec<$t> = Vec::with_capacity(x.len());
                for row in x.chunks(n) {
                    let max = row.iter().fold(<$t>::NEG_INFINITY, |m, &v| m.max(v));
                    let start = out.len();
                    let mut sum: $t = 0.0;
                    for &v in row {
                        let e = (v - max).exp();
                        sum += e;
                        out.push(e);
                    }
                    for v in &mut out[start..] {
                        *v /= sum;
                    }
                }
                out
            }};
        }
        let out = match s.dtype() {
            DType::F32 => CpuStorage::F32(run!(f32, cpu_slice::<f32>(s, l)?)),
            DType::F64 => CpuStorage::F64(run!(f64, cpu_slice::<f64>(s, l)?)),
            dt => candle_core::bail!("softmax: unsupported dtype {dt:?}"),
        };
        Ok((out, l.shape().clone()))
    }

    fn bwd(&self, _x: &Tensor, p: &Tensor, g: &Tensor) -> Result<Option<Tensor>> {
        let dot = (g * p)?.sum_keepdim(D::Minus1)?;
        Ok(Some(g.broadcast_sub(&dot)?.mul(p)?))
    }
}

/// The forward value of a fused node, computed before the node is built and handed to candle
/// once (see [`fused1`]). Held as storage, so a value a kernel wrote into a `Vec` is moved into
/// the graph rather than copied (a full pass over every fused node's output).
pub(crate) struct Pending(std::sync::Mutex<Option<(CpuStorage, Shape)>>);

impl Pending {
    /// A value computed into `v`, of shape `shape`.
    pub(crate) fn f32(v: Vec<f32>, shape: &Shape) -> Self {
        Self(std::sync::Mutex::new(Some((CpuStorage::F32(v), shape.clone()))))
    }

    /// A value held by a tensor (copied out of it: contiguous f32/f64 on the CPU).
    pub(crate) fn tensor(value: &Tensor) -> Result<Self> {
        let (storage, layout) = value.storage_and_layout();
        let n = layout.shape().elem_count();
        let o = layout.start_offset();
        let out = match &*storage {
            Storage::Cpu(CpuStorage::F32(v)) if layout.is_contiguous() => {
                CpuStorage::F32(v[o..o + n].to_vec())
            }
            Storage::Cpu(CpuStorage::F64(v)) if layout.is_contiguous() => {
                CpuStorage::F64(v[o..o + n].to_vec())
            }
            _ => candle_core::bail!("fused node: unexpected forward value"),
        };
        Ok(Self(std::sync::Mutex::new(Some((out, layout.shape().clone())))))
    }

    /// No value (a node built only for its backward formulas).
    pub(crate) fn none() -> Self {
        Self(std::sync::Mutex::new(None))
    }

    /// The value, once; a second call fails.
    pub(crate) fn take(&self, name: &str) -> Result<(CpuStorage, Shape)> {
        let value = self.0.lock().map_err(|_| candle_core::Error::Msg(format!("{name}: poisoned")))?.take();
        let Some(value) = value else { candle_core::bail!("{name}: forward value already taken") };
        Ok(value)
    }
}

/// Whether `x` can go through a fused node: it is tracked (otherwise there is no graph to
/// save and the composed ops run as they are), on the CPU, f32/f64, and every constant is an
/// untracked tensor.
fn fusable(x: &Tensor, consts: &[&Tensor]) -> bool {
    x.track_op()
        && x.device().is_cpu()
        && matches!(x.dtype(), DType::F32 | DType::F64)
        && consts.iter().all(|c| !c.track_op() && c.dtype() == x.dtype())
}

type Backward1 = dyn Fn(&Tensor, &Tensor) -> Result<Tensor> + Send + Sync;

/// One graph node over `x` for a chain of elementwise/reduction ops with constant operands:
/// the value is computed by `composed` outside the graph (so it is bit-identical to the
/// composed ops) and `bwd(x, g)` gives `∂/∂x`. The graph keeps only `x` and the output instead
/// of every intermediate.
struct Fused1 {
    name: &'static str,
    value: Pending,
    bwd: Box<Backward1>,
}

impl CustomOp1 for Fused1 {
    fn name(&self) -> &'static str {
        self.name
    }

    fn cpu_fwd(&self, _: &CpuStorage, _: &Layout) -> Result<(CpuStorage, Shape)> {
        self.value.take(self.name)
    }

    fn bwd(&self, x: &Tensor, _y: &Tensor, g: &Tensor) -> Result<Option<Tensor>> {
        Ok(Some((self.bwd)(&x.detach(), g)?))
    }
}

fn fused1(
    name: &'static str,
    x: &Tensor,
    consts: &[&Tensor],
    composed: impl Fn(&Tensor) -> Result<Tensor>,
    bwd: impl Fn(&Tensor, &Tensor) -> Result<Tensor> + Send + Sync + 'static,
) -> Result<Tensor> {
    if !fusable(x, consts) {
        return composed(x);
    }
    let value = Pending::tensor(&composed(&x.detach())?.contiguous()?)?;
    x.apply_op1(Fused1 { name, value, bwd: Box::new(bwd) })
}

/// [`fused1`] with the forward value already computed (by a [`kernels`] function).
fn fused1_value(
    name: &'static str,
    x: &Tensor,
    value: Vec<f32>,
    bwd: impl Fn(&Tensor, &Tensor) -> Result<Tensor> + Send + Sync + 'static,
) -> Result<Tensor> {
    let value = Pending::f32(value, x.shape());
    x.apply_op1(Fused1 { name, value, bwd: Box::new(bwd) })
}

/// Whether the fast f32 kernels apply: the node would be fused, and everything is f32.
fn f32_fast(x: &Tensor, consts: &[&Tensor]) -> bool {
    fusable(x, consts) && x.dtype() == DType::F32
}

fn inv_rms(x: &Tensor, eps: f64) -> Result<Tensor> {
    x.sqr()?.mean_keepdim(D::Minus1)?.affine(1.0, eps)?.sqrt()?.recip()
}

/// RMSNorm `x / sqrt(mean(x²) + eps) · w` with a constant weight, as one node:
/// `∂x = r·(w⊙g) − x·r³·mean(w⊙g⊙x)`.
pub fn rms_norm(x: &Tensor, w: &Tensor, eps: f64) -> Result<Tensor> {
    if f32_fast(x, &[w]) {
        let wv = std::sync::Arc::new(kernels::f32_data(w)?);
        let e = eps as f32;
        let y = kernels::with_f32(x, |xv| kernels::rms_norm_fwd(xv, &wv, e))?;
        return fused1_value("rms-norm", x, y, move |x, g| {
            let gv = kernels::f32_data(g)?;
            let dx = kernels::with_f32(x, |xv| kernels::rms_norm_bwd(xv, &wv, &gv, e))?;
            Tensor::from_vec(dx, x.shape(), x.device())
        });
    }
    let composed = |x: &Tensor| mul_const(&x.broadcast_mul(&inv_rms(x, eps)?)?, w);
    let wc = w.detach();
    fused1("rms-norm", x, &[w], composed, move |x, g| {
        let gw = mul_const(g, &wc)?;
        let r = inv_rms(x, eps)?;
        let coef = (&gw * x)?.mean_keepdim(D::Minus1)?.mul(&r.sqr()?.mul(&r)?)?;
        gw.broadcast_mul(&r)? - x.broadcast_mul(&coef)?
    })
}

/// Rotary embedding `x·cos + rotate_half(x)·sin` (Hugging Face "rotate half" layout,
/// `rotate_half([x1, x2]) = [−x2, x1]`) with constant tables, as one node:
/// `∂x = g·cos + [u2, −u1]` where `[u1, u2] = g·sin`.
pub fn rope(x: &Tensor, cos: &Tensor, sin: &Tensor) -> Result<Tensor> {
    let d = x.dim(D::Minus1)?;
    if f32_fast(x, &[cos, sin]) && cos.dims().last() == Some(&d) && x.dim(D::Minus2)? * d == cos.elem_count()
    {
        let (c, s) =
            (std::sync::Arc::new(kernels::f32_data(cos)?), std::sync::Arc::new(kernels::f32_data(sin)?));
        let y = kernels::with_f32(x, |xv| kernels::rope(xv, &c, &s, d, 1.0))?;
        return fused1_value("rope", x, y, move |_x, g| {
            let dx = kernels::with_f32(g, |gv| kernels::rope(gv, &c, &s, d, -1.0))?;
            Tensor::from_vec(dx, g.shape(), g.device())
        });
    }
    let composed = |x: &Tensor| {
        let x = &x.contiguous()?;
        let d = x.dim(D::Minus1)?;
        let x1 = x.narrow(D::Minus1, 0, d / 2)?;
        let x2 = x.narrow(D::Minus1, d / 2, d / 2)?;
        let rotated = Tensor::cat(&[&x2.neg()?, &x1], D::Minus1)?;
        mul_const(x, cos)? + mul_const(&rotated, sin)?
    };
    let (c, s) = (cos.detach(), sin.detach());
    fused1("rope", x, &[cos, sin], composed, move |_x, g| {
        let d = g.dim(D::Minus1)?;
        let u = mul_const(g, &s)?;
        let back = Tensor::cat(
            &[&u.narrow(D::Minus1, d / 2, d / 2)?, &u.narrow(D::Minus1, 0, d / 2)?.neg()?],
            D::Minus1,
        )?;
        mul_const(g, &c)? + back
    })
}

/// `softmax(x·scale + mask)` over the last dim (the attention probabilities from raw
/// scores), as one node: `∂x = scale · p⊙(g − Σ g⊙p)`.
pub fn scaled_masked_softmax(x: &Tensor, scale: f64, mask: Option<&Tensor>) -> Result<Tensor> {
    let composed = |x: &Tensor| {
        let scaled = (x * scale)?;
        let scaled = match mask {
            Some(m) => add_const(&scaled, m)?,
            None => scaled,
        };
        stable_softmax(&scaled)
    };
    if !fusable(x, mask.as_slice()) {
        return composed(x);
    }
    let t = x.dim(D::Minus1)?;
    let mask_fits = mask.is_none_or(|m| {
        m.dims().last() == Some(&t) && x.rank() >= 2 && m.elem_count() == x.dim(D::Minus2).unwrap_or(0) * t
    });
    let p = if x.dtype() == DType::F32 && mask_fits {
        let mv = mask.map(kernels::f32_data).transpose()?;
        let p = kernels::with_f32(x, |xv| {
            kernels::scaled_masked_softmax_fwd(xv, t, scale as f32, mv.as_deref())
        })?;
        Pending::f32(p, x.shape())
    } else {
        Pending::tensor(&composed(&x.detach())?.contiguous()?)?
    };
    x.apply_op1(ScaledSoftmax { value: p, scale })
}

struct ScaledSoftmax {
    value: Pending,
    scale: f64,
}

impl CustomOp1 for ScaledSoftmax {
    fn name(&self) -> &'static str {
        "scaled-masked-softmax"
    }

    fn cpu_fwd(&self, _: &CpuStorage, _: &Layout) -> Result<(CpuStorage, Shape)> {
        self.value.take(self.name())
    }

    fn bwd(&self, _x: &Tensor, p: &Tensor, g: &Tensor) -> Result<Option<Tensor>> {
        let p = p.detach();
        if p.dtype() == DType::F32 && p.device().is_cpu() {
            let t = p.dim(D::Minus1)?;
            let gv = kernels::f32_data(g)?;
            let dx = kernels::with_f32(&p, |pv| kernels::scaled_softmax_bwd(pv, &gv, t, self.scale as f32))?;
            return Ok(Some(Tensor::from_vec(dx, p.shape(), p.device())?));
        }
        let dot = (g * &p)?.sum_keepdim(D::Minus1)?;
        Ok(Some((g.broadcast_sub(&dot)?.mul(&p)? * self.scale)?))
    }
}

/// The gated MLP activation `act(gate) ⊙ up` as one node over `(gate, up)`: the activation's
/// output is not kept (it is recomputed in backward). Gradients are candle's own formulas:
/// `∂gate = (g⊙up)⊙act'(gate)`, `∂up = g⊙act(gate)`.
pub fn glu(gate: &Tensor, up: &Tensor, act: Activation) -> Result<Tensor> {
    let activate = move |x: &Tensor| match act {
        Activation::Silu => x.silu(),
        Activation::GeluTanh => x.gelu(),
    };
    let fused = (gate.track_op() || up.track_op())
        && gate.device().is_cpu()
        && matches!(gate.dtype(), DType::F32 | DType::F64)
        && up.dtype() == gate.dtype()
        && gate.shape() == up.shape();
    if !fused {
        return activate(gate)? * up;
    }
    let value = if gate.dtype() == DType::F32 {
        let uv = kernels::f32_data(up)?;
        let y = kernels::with_f32(gate, |gv| kernels::glu_fwd(act, gv, &uv))?;
        Pending::f32(y, gate.shape())
    } else {
        Pending::tensor(&(activate(&gate.detach())? * up.detach())?.contiguous()?)?
    };
    gate.apply_op2(up, Glu { value, act })
}

/// The value of [`glu`] (`act(gate) ⊙ up`) outside the graph, by the same kernels.
pub(crate) fn glu_value(gate: &Tensor, up: &Tensor, act: Activation) -> Result<Tensor> {
    let (gate, up) = (gate.detach(), up.detach());
    if gate.dtype() == DType::F32 && gate.device().is_cpu() && gate.shape() == up.shape() {
        let uv = kernels::f32_data(&up)?;
        let y = kernels::with_f32(&gate, |gv| kernels::glu_fwd(act, gv, &uv))?;
        return Tensor::from_vec(y, gate.shape(), gate.device());
    }
    let a = match act {
        Activation::Silu => gate.silu()?,
        Activation::GeluTanh => gate.gelu()?,
    };
    (a * up)?.contiguous()
}

/// `(∂gate, ∂up)` of `act(gate) ⊙ up` for the output gradient `g` (what [`glu`]'s node returns).
pub(crate) fn glu_grads(gate: &Tensor, up: &Tensor, g: &Tensor, act: Activation) -> Result<(Tensor, Tensor)> {
    let (d_gate, d_up) = Glu { value: Pending::none(), act }.grads(gate, up, g)?;
    Ok((d_gate, d_up))
}

struct Glu {
    value: Pending,
    act: Activation,
}

impl candle_core::CustomOp2 for Glu {
    fn name(&self) -> &'static str {
        "glu"
    }

    fn cpu_fwd(&self, _: &CpuStorage, _: &Layout, _: &CpuStorage, _: &Layout) -> Result<(CpuStorage, Shape)> {
        self.value.take(self.name())
    }

    fn bwd(
        &self,
        gate: &Tensor,
        up: &Tensor,
        _y: &Tensor,
        g: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let (d_gate, d_up) = self.grads(gate, up, g)?;
        Ok((Some(d_gate), Some(d_up)))
    }
}

impl Glu {
    fn grads(&self, gate: &Tensor, up: &Tensor, g: &Tensor) -> Result<(Tensor, Tensor)> {
        let (x, up) = (gate.detach(), up.detach());
        if x.dtype() == DType::F32 && x.device().is_cpu() && x.shape() == up.shape() && g.shape() == x.shape()
        {
            let (uv, gv) = (kernels::f32_data(&up)?, kernels::f32_data(g)?);
            let (dg, du) = kernels::with_f32(&x, |xv| kernels::glu_bwd(self.act, xv, &uv, &gv))?;
            return Ok((
                Tensor::from_vec(dg, x.shape(), x.device())?,
                Tensor::from_vec(du, x.shape(), x.device())?,
            ));
        }
        let (a, da) = match self.act {
            Activation::Silu => {
                let node = x.silu()?;
                let sigmoid = (x.neg()?.exp()? + 1.)?.recip()?;
                let grad = (&sigmoid * (1. - &node)? + &node)?;
                (node, grad)
            }
            Activation::GeluTanh => {
                let cube = x.powf(3.)?;
                let tanh = (0.0356774 * &cube + (0.797885 * &x)?)?.tanh()?;
                let grad = (((0.5 * &tanh)?
                    + (0.0535161 * cube + (0.398942 * &x)?)? * (1. - tanh.powf(2.)?))?
                    + 0.5)?;
                (x.gelu()?, grad)
            }
        };
        let g_gate = (g.mul(&up)? * da)?;
        let g_up = g.mul(&a)?;
        Ok((g_gate, g_up))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::testutil::{assert_close, fd_grad};
    use candle_core::{Device, Var};

    #[test]
    fn train_const_ops_match_broadcast_and_keep_no_constant_gradient() -> Result<()> {
        let dev = Device::Cpu;
        let x = Var::randn(0f64, 1., (2, 3, 4, 5), &dev)?;
        let c = Tensor::randn(0f64, 1., (1, 4, 5), &dev)?;
        let w = Tensor::randn(0f64, 1., (2, 3, 4, 5), &dev)?;
        for (name, op, reference) in [
            (
                "add",
                add_const as fn(&Tensor, &Tensor) -> Result<Tensor>,
                Tensor::broadcast_add as fn(&Tensor, &Tensor) -> Result<Tensor>,
            ),
            ("mul", mul_const, Tensor::broadcast_mul),
        ] {
            let y = op(&x, &c)?;
            assert_close(&y, &reference(&x, &c)?, 1e-15)?;
            let f = |t: &Tensor| mul_const(&op(t, &c)?.tanh()?, &w)?.sum_all();
            let store = f(&x)?.backward()?;
            let g = store.get(&x).unwrap().clone();
            let want = reference(&x, &c)?.tanh()?.mul(&w)?.sum_all()?.backward()?.get(&x).unwrap().clone();
            assert_close(&g, &want, 1e-12)?;
            let err = assert_close(&g, &fd_grad(&f, &x, 1e-6)?, 1e-7)?;
            eprintln!("{name}-const finite-difference max rel err {err:.2e}");
            assert_eq!(store.get_ids().count(), 1, "only x has a gradient: nothing kept for the constant");
            // The plain broadcast op keeps one for the constant (the waste these ops avoid).
            let kept = reference(&x, &c)?.tanh()?.mul(&w)?.sum_all()?.backward()?;
            assert!(kept.get_ids().count() > 1);
        }
        Ok(())
    }

    #[test]
    fn train_const_ops_keep_gradients_of_trainable_constants() -> Result<()> {
        let dev = Device::Cpu;
        let x = Var::randn(0f32, 1., (3, 4), &dev)?;
        let c = Var::randn(0f32, 1., 4, &dev)?;
        for op in [add_const, mul_const] {
            let g = op(&x, c.as_tensor())?.sqr()?.sum_all()?.backward()?;
            assert!(g.get(&c).is_some() && g.get(&x).is_some());
        }
        Ok(())
    }

    #[test]
    fn train_softmax_matches_reference_and_finite_differences() -> Result<()> {
        let dev = Device::Cpu;
        let x = Var::randn(0f64, 2., (3, 2, 6), &dev)?;
        let mask = Tensor::from_vec(
            (0..12).map(|i| if i % 6 > i / 6 + 3 { f64::NEG_INFINITY } else { 0.0 }).collect::<Vec<_>>(),
            (2, 6),
            &dev,
        )?;
        let w = Tensor::randn(0f64, 1., (3, 2, 6), &dev)?;
        let p = stable_softmax(&add_const(&x, &mask)?)?;
        let e = x.broadcast_add(&mask)?.exp()?;
        assert_close(&p, &e.broadcast_div(&e.sum_keepdim(D::Minus1)?)?, 1e-14)?;
        let f = |t: &Tensor| mul_const(&stable_softmax(&add_const(t, &mask)?)?, &w)?.sum_all();
        let store = f(&x)?.backward()?;
        let err = assert_close(store.get(&x).unwrap(), &fd_grad(&f, &x, 1e-6)?, 1e-7)?;
        eprintln!("softmax finite-difference max rel err {err:.2e}");
        assert_eq!(store.get_ids().count(), 1);
        // f32 path too.
        let x32 = Tensor::randn(0f32, 1., (4, 7), &dev)?;
        let sums = stable_softmax(&x32)?.sum_keepdim(1)?;
        assert_close(&sums, &Tensor::ones((4, 1), DType::F32, &dev)?, 1e-6)?;
        Ok(())
    }

    #[test]
    fn train_fused_nodes_match_composed_ops_and_finite_differences() -> Result<()> {
        let dev = Device::Cpu;
        let x = Var::randn(0f64, 1., (2, 3, 4, 6), &dev)?;
        let w = Tensor::randn(0f64, 1., (2, 3, 4, 6), &dev)?;
        let norm_w = Tensor::randn(1f64, 0.2, 6, &dev)?;
        let (cos, sin) = (Tensor::randn(0f64, 1., (4, 6), &dev)?, Tensor::randn(0f64, 1., (4, 6), &dev)?);
        let mask = Tensor::from_vec(
            (0..24).map(|i| if i % 6 > i / 6 + 2 { f64::NEG_INFINITY } else { 0.0 }).collect::<Vec<_>>(),
            (4, 6),
            &dev,
        )?;
        type Op = Box<dyn Fn(&Tensor) -> Result<Tensor>>;
        let reference: Vec<(&str, Op, Op)> = vec![
            (
                "rms-norm",
                Box::new({
                    let nw = norm_w.clone();
                    move |t: &Tensor| rms_norm(t, &nw, 1e-6)
                }),
                Box::new({
                    let nw = norm_w.clone();
                    move |t: &Tensor| t.broadcast_mul(&inv_rms(t, 1e-6)?)?.broadcast_mul(&nw)
                }),
            ),
            (
                "rope",
                Box::new({
                    let (c, s) = (cos.clone(), sin.clone());
                    move |t: &Tensor| rope(t, &c, &s)
                }),
                Box::new({
                    let (c, s) = (cos.clone(), sin.clone());
                    move |t: &Tensor| {
                        let rotated = Tensor::cat(&[&t.narrow(3, 3, 3)?.neg()?, &t.narrow(3, 0, 3)?], 3)?;
                        t.broadcast_mul(&c)? + rotated.broadcast_mul(&s)?
                    }
                }),
            ),
            (
                "scaled-masked-softmax",
                Box::new({
                    let m = mask.clone();
                    move |t: &Tensor| scaled_masked_softmax(t, 0.7, Some(&m))
                }),
                Box::new({
                    let m = mask.clone();
                    move |t: &Tensor| {
                        let e = (t * 0.7)?.broadcast_add(&m)?;
                        let e = e.broadcast_sub(&e.max_keepdim(D::Minus1)?.detach())?.exp()?;
                        e.broadcast_div(&e.sum_keepdim(D::Minus1)?)
                    }
                }),
            ),
        ];
        for (name, fused, composed) in &reference {
            let y = fused(&x)?;
            assert_close(&y, &composed(&x)?, 1e-12)?;
            let f = |t: &Tensor| mul_const(&fused(t)?.tanh()?, &w)?.sum_all();
            let store = f(&x)?.backward()?;
            let g = store.get(&x).unwrap().clone();
            let want = (composed(&x)?.tanh()? * &w)?.sum_all()?.backward()?.get(&x).unwrap().clone();
            assert_close(&g, &want, 1e-10)?;
            let err = assert_close(&g, &fd_grad(&f, &x, 1e-6)?, 1e-6)?;
            eprintln!("{name} finite-difference max rel err {err:.2e}");
            assert_eq!(store.get_ids().count(), 1, "{name}: only x has a gradient");
        }
        // Untracked inputs (inference) take the composed ops unchanged.
        let plain = x.as_tensor().detach();
        assert_close(&rms_norm(&plain, &norm_w, 1e-6)?, &reference[0].2(&plain)?, 0.0)?;
        Ok(())
    }

    #[test]
    fn train_f32_kernels_match_composed_ops() -> Result<()> {
        // The f32 training nodes run `kernels` (parallel, fused); their values must match the
        // composed ops (what inference runs) and their gradients the f64 nodes' (checked
        // against finite differences above).
        let dev = Device::Cpu;
        let (b, h, s, d) = (2, 3, 5, 8);
        let x64 = Tensor::randn(0f64, 1., (b, h, s, d), &dev)?;
        let probe = Tensor::randn(0f64, 1., (b, h, s, d), &dev)?;
        let norm_w = Tensor::randn(1f64, 0.2, d, &dev)?;
        let (cos, sin) = (Tensor::randn(0f64, 1., (s, d), &dev)?, Tensor::randn(0f64, 1., (s, d), &dev)?);
        let mask = Tensor::from_vec(
            (0..s * d).map(|i| if i % d > i / d + 2 { f64::NEG_INFINITY } else { 0.0 }).collect::<Vec<_>>(),
            (s, d),
            &dev,
        )?;
        let up64 = Tensor::randn(0f64, 1., (b, h, s, d), &dev)?;
        let f32_of = |t: &Tensor| t.to_dtype(DType::F32);
        type Op = Box<dyn Fn(&Tensor, &[Tensor]) -> Result<Tensor>>;
        let cases: Vec<(&str, Op, Vec<Tensor>)> = vec![
            ("rms-norm", Box::new(|t, c| rms_norm(t, &c[0], 1e-6)), vec![norm_w.clone()]),
            ("rope", Box::new(|t, c| rope(t, &c[0], &c[1])), vec![cos.clone(), sin.clone()]),
            // A transposed view, as the decoder hands q and k to rope.
            (
                "rope-view",
                Box::new(|t, c| rope(&t.transpose(1, 2)?, &c[0], &c[1])),
                vec![cos.narrow(0, 0, h)?.contiguous()?, sin.narrow(0, 0, h)?.contiguous()?],
            ),
            ("softmax", Box::new(|t, c| scaled_masked_softmax(t, 0.7, Some(&c[0]))), vec![mask.clone()]),
            ("softmax-nomask", Box::new(|t, _| scaled_masked_softmax(t, 0.7, None)), vec![]),
            ("glu", Box::new(|t, c| glu(t, &c[0], Activation::Silu)), vec![up64.clone()]),
            ("glu-gelu-tanh", Box::new(|t, c| glu(t, &c[0], Activation::GeluTanh)), vec![up64.clone()]),
        ];
        for (name, op, consts64) in &cases {
            let consts32 = consts64.iter().map(f32_of).collect::<Result<Vec<_>>>()?;
            let x32 = Var::from_tensor(&f32_of(&x64)?)?;
            let fast = op(x32.as_tensor(), &consts32)?;
            let plain = op(&x32.as_tensor().detach(), &consts32)?;
            let err = assert_close(&fast, &plain, 1e-5)?;
            let p32 = f32_of(&probe)?.reshape(fast.shape())?;
            let g32 = (fast * &p32)?.sum_all()?.backward()?.get(&x32).unwrap().clone();
            let x = Var::from_tensor(&x64)?;
            let y64 = op(x.as_tensor(), consts64)?;
            let g64 = (&y64 * probe.reshape(y64.shape())?)?.sum_all()?.backward()?.get(&x).unwrap().clone();
            let gerr = assert_close(&g32.to_dtype(DType::F64)?, &g64, 1e-5)?;
            eprintln!("{name}: f32 kernel value err {err:.1e}, gradient err {gerr:.1e}");
        }
        Ok(())
    }

    #[test]
    fn train_glu_matches_composed_ops_and_finite_differences() -> Result<()> {
        let dev = Device::Cpu;
        let gate = Var::randn(0f64, 1.5, (3, 5), &dev)?;
        let up = Var::randn(0f64, 1., (3, 5), &dev)?;
        let w = Tensor::randn(0f64, 1., (3, 5), &dev)?;
        for act in [Activation::Silu, Activation::GeluTanh] {
            let composed = |g: &Tensor, u: &Tensor| match act {
                Activation::Silu => g.silu()? * u,
                Activation::GeluTanh => g.gelu()? * u,
            };
            assert_close(&glu(&gate, &up, act)?, &composed(&gate, &up)?, 0.0)?;
            let store = mul_const(&glu(&gate, &up, act)?, &w)?.sum_all()?.backward()?;
            let want = mul_const(&composed(&gate, &up)?, &w)?.sum_all()?.backward()?;
            for v in [&gate, &up] {
                assert_close(store.get(v).unwrap(), want.get(v).unwrap(), 0.0)?;
            }
            let f = |t: &Tensor| mul_const(&glu(t, &up, act)?, &w)?.sum_all();
            let err = assert_close(store.get(&gate).unwrap(), &fd_grad(&f, &gate, 1e-6)?, 1e-5)?;
            eprintln!("glu {act:?} finite-difference max rel err {err:.2e}");
        }
        Ok(())
    }
}
