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
}
