//! `y = x·Wᵀ` for a frozen weight, whose backward pass returns only the input gradient.
//!
//! candle's matmul backward always computes (and keeps) `xᵀ·g` for the right-hand side even
//! when it is a plain, frozen tensor: one extra GEMM per linear layer and a weight-sized
//! gradient kept alive until the `GradStore` is dropped (NATIVE-STACK-FACTS §1.4, risk R2).
//! This op runs the same GEMM forward and, in backward, only `g·W`.

use candle_core::backend::BackendStorage;
use candle_core::{CpuStorage, CustomOp1, Layout, Result, Shape, Storage, Tensor};

/// Whether autograd can reach `t`: it is a `Var` or computed from one. Tensors for which this
/// is false are constants to backprop, and computing a gradient for them is pure waste.
pub fn needs_grad(t: &Tensor) -> bool {
    !t.sorted_nodes().is_empty()
}

/// Applies a linear layer (`weight` is `[out, in]`, PyTorch layout) to `x: [.., in]`.
///
/// A frozen weight (one that does not [`needs_grad`]) gets no gradient computed; a weight
/// that is a `Var` or derived from one (e.g. `W + s·B·A`) takes candle's ordinary matmul, so
/// gradients are never silently cut.
pub fn frozen_linear(x: &Tensor, weight: &Tensor) -> Result<Tensor> {
    if needs_grad(weight) {
        return x.broadcast_matmul(&weight.t()?);
    }
    if !x.device().is_cpu() {
        // No GPU kernel yet: an ordinary matmul. Correct, but the weight gradient is
        // computed and discarded.
        return x.broadcast_matmul(&weight.t()?);
    }
    let x = x.contiguous()?;
    x.apply_op1(FrozenMatmul { w: weight.detach().contiguous()? })
}

struct FrozenMatmul {
    /// `[out, in]`, contiguous, not tracked.
    w: Tensor,
}

impl CustomOp1 for FrozenMatmul {
    fn name(&self) -> &'static str {
        "frozen-linear"
    }

    fn cpu_fwd(&self, x: &CpuStorage, xl: &Layout) -> Result<(CpuStorage, Shape)> {
        let (out_f, in_f) = self.w.dims2()?;
        let dims = xl.dims();
        if dims.last() != Some(&in_f) || !xl.is_contiguous() {
            candle_core::bail!(
                "frozen-linear: input {:?} does not match weight [{out_f}, {in_f}]",
                xl.shape()
            )
        }
        let m = xl.shape().elem_count() / in_f;
        let x2 = Layout::contiguous_with_offset((m, in_f), xl.start_offset());
        let wt = self.w.t()?; // a strided view: gemm reads Wᵀ without a copy
        let (ws, wl) = wt.storage_and_layout();
        let Storage::Cpu(ws) = &*ws else { candle_core::bail!("frozen-linear: weight is not on the CPU") };
        let y = x.matmul(ws, (1, m, out_f, in_f), &x2, wl)?;
        let mut out_dims = dims.to_vec();
        *out_dims.last_mut().unwrap() = out_f;
        Ok((y, Shape::from(out_dims)))
    }

    fn bwd(&self, x: &Tensor, _y: &Tensor, g: &Tensor) -> Result<Option<Tensor>> {
        let (out_f, _) = self.w.dims2()?;
        let m = g.elem_count() / out_f;
        let gx = g.reshape((m, out_f))?.matmul(&self.w)?;
        Ok(Some(gx.reshape(x.shape())?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::testutil::{assert_close, fd_grad};
    use candle_core::{DType, Device, Var};

    #[test]
    fn train_frozen_linear_matches_matmul_and_skips_weight_grad() -> Result<()> {
        let dev = Device::Cpu;
        let x = Var::randn(0f32, 1., (2, 3, 5), &dev)?;
        let w = Tensor::randn(0f32, 1., (4, 5), &dev)?;
        let target = Tensor::randn(0f32, 1., (2, 3, 4), &dev)?;

        let y_ref = x.broadcast_matmul(&w.t()?)?;
        let y = frozen_linear(&x, &w)?;
        assert_close(&y, &y_ref, 1e-6)?;

        // `target` is a constant too: multiply through the frozen op's sibling so the only
        // gradient left in the store is x's.
        let g_ref = crate::train::ops::mul_const(&y_ref, &target)?.sum_all()?.backward()?;
        let g = crate::train::ops::mul_const(&y, &target)?.sum_all()?.backward()?;
        assert_close(g.get(&x).unwrap(), g_ref.get(&x).unwrap(), 1e-6)?;
        assert!(g_ref.get_ids().count() > 1, "plain matmul keeps a gradient for the frozen weight");
        assert_eq!(g.get_ids().count(), 1, "frozen-linear computes no weight gradient");

        // A trainable (or derived-from-trainable) weight still gets its gradient.
        let wv = Var::from_tensor(&w)?;
        let derived = (wv.as_tensor() * 2.0)?;
        for weight in [wv.as_tensor(), &derived] {
            assert!(needs_grad(weight));
            let g =
                crate::train::ops::mul_const(&frozen_linear(&x, weight)?, &target)?.sum_all()?.backward()?;
            assert!(g.get(&wv).is_some(), "a trainable weight is never cut off");
        }
        assert!(!needs_grad(&w));
        Ok(())
    }

    #[test]
    fn train_frozen_linear_finite_difference() -> Result<()> {
        let dev = Device::Cpu;
        let x = Var::randn(0f64, 1., (3, 4), &dev)?;
        let w = Tensor::randn(0f64, 1., (6, 4), &dev)?;
        let c = Tensor::randn(0f64, 1., (3, 6), &dev)?;
        // A non-linear scalar of the output so the check sees more than a constant gradient.
        let f = |x: &Tensor| frozen_linear(x, &w)?.tanh()?.mul(&c)?.sum_all();
        let analytic = f(x.as_tensor())?.backward()?.get(&x).unwrap().clone();
        let numeric = fd_grad(&f, x.as_tensor(), 1e-6)?;
        let err = assert_close(&analytic, &numeric, 1e-7)?;
        eprintln!("frozen-linear finite-difference max rel err {err:.2e}");
        assert_eq!(analytic.dtype(), DType::F64);
        Ok(())
    }
}
