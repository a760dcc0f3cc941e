//! A frozen matrix held in bf16 for the bf16 GEMM (`baseWeights: "bf16"`).
//!
//! The f32 matrix is rounded to bf16 once at load and packed for `x·Wᵀ` (forward). Training
//! also needs `g·W` (the input gradient), whose kernel wants the other operand layout: that
//! second packing is made from the first on the first input gradient and kept, so generation
//! and evaluation hold one bf16 copy (half the f32 bytes) and training two (the f32 bytes).
//! Neither is repacked per call.
//! Inputs are rounded to bf16 per product and the sums accumulate in f32, so only the
//! products' inputs lose precision; LoRA's A/B, norms and the residual stream stay f32.

use std::sync::{Arc, OnceLock};

use candle_core::{CpuStorage, CustomOp1, DType, Device, Layout, Result, Shape, Tensor};

use crate::kernels::gemm_bf16::{self, PackedB};

/// `W: [out, in]` in bf16, packed for both products.
#[derive(Debug)]
pub struct Bf16Weight {
    /// `Wᵀ` (`k = in`, `n = out`).
    forward: PackedB,
    /// `W` (`k = out`, `n = in`), packed from `forward` on first use.
    input_grad: OnceLock<PackedB>,
    device: Device,
    /// The rounded matrix as f32, made once on demand ([`Self::dense`]; tests).
    dense: OnceLock<Tensor>,
}

impl Bf16Weight {
    /// Rounds and packs a dense `[out, in]` matrix (any float dtype).
    pub fn new(w: &Tensor) -> Result<Self> {
        let (out, inp) = w.dims2()?;
        let values = w.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()?;
        Ok(Self {
            forward: PackedB::transposed(&values, out, inp),
            input_grad: OnceLock::new(),
            device: w.device().clone(),
            dense: OnceLock::new(),
        })
    }

    /// `(out, in)`.
    pub fn dims(&self) -> (usize, usize) {
        let (inp, out) = self.forward.dims();
        (out, inp)
    }

    /// `x·Wᵀ` for row-major `x: [rows, in]`, as a row-major `[rows, out]` vector.
    pub fn forward_product(&self, x: &[f32], rows: usize) -> Vec<f32> {
        gemm_bf16::matmul(x, rows, &self.forward)
    }

    /// [`Self::forward_product`] into `out` (`rows × out`, overwritten): the LM-head loss
    /// reuses one logits buffer for all its chunks.
    pub fn forward_into(&self, x: &[f32], rows: usize, out: &mut [f32]) {
        gemm_bf16::matmul_into(x, rows, &self.forward, out)
    }

    /// Values per row of an output gradient rounded for [`Self::input_grad_rounded_into`].
    pub fn grad_row_stride(&self) -> usize {
        // `k` of `g·W` is `out`: rows of `out` values rounded up to whole pairs.
        2 * self.dims().0.div_ceil(2)
    }

    /// `g·W` for `g: [rows, out]` already rounded to bf16 row by row
    /// ([`gemm_bf16::round_row`], [`Self::grad_row_stride`] values a row), into
    /// `out: [rows, in]`.
    pub fn input_grad_rounded_into(&self, g16: &[u16], rows: usize, out: &mut [f32]) {
        gemm_bf16::matmul_rounded_into(g16, rows, self.input_grad(), out)
    }

    /// The operand of `g·W`, packed from the forward operand the first time it is needed
    /// (the values are already bf16, so they are copied exactly).
    fn input_grad(&self) -> &PackedB {
        self.input_grad.get_or_init(|| {
            let (out, inp) = self.dims();
            PackedB::from_fn(out, inp, |r, c| self.forward.get(c, r))
        })
    }

    /// Whether the input-gradient packing exists yet (it does after the first backward).
    pub fn has_input_grad_packing(&self) -> bool {
        self.input_grad.get().is_some()
    }

    /// Bytes held in training: both packings (generation and evaluation hold the first only,
    /// half of this).
    pub fn bytes(&self) -> usize {
        let (out, inp) = self.dims();
        self.forward.bytes() + PackedB::bytes_for(out, inp)
    }

    /// Row `r` of `W` (the bf16 values, as f32).
    fn row(&self, r: usize) -> impl Iterator<Item = f32> + '_ {
        (0..self.dims().1).map(move |c| self.forward.get(c, r))
    }

    /// The rounded matrix as a fresh f32 `[out, in]` tensor (merging, export).
    pub fn to_dense(&self) -> Result<Tensor> {
        let (out, inp) = self.dims();
        let values: Vec<f32> = (0..out).flat_map(|r| self.row(r)).collect();
        Tensor::from_vec(values, (out, inp), &self.device)
    }

    /// [`Self::to_dense`] made once and kept (for APIs that hand out `&Tensor`).
    pub fn dense(&self) -> Result<&Tensor> {
        if self.dense.get().is_none() {
            let _ = self.dense.set(self.to_dense()?);
        }
        Ok(self.dense.get().expect("set above"))
    }

    /// Rows `ids` (u32, any shape) as f32 `[ids.., in]`.
    pub fn rows(&self, ids: &Tensor) -> Result<Tensor> {
        let flat = ids.flatten_all()?.to_vec1::<u32>()?;
        let (out, inp) = self.dims();
        if let Some(bad) = flat.iter().find(|&&i| i as usize >= out) {
            candle_core::bail!("token id {bad} is out of range for {out} embedding rows")
        }
        let values: Vec<f32> = flat.iter().flat_map(|&r| self.row(r as usize)).collect();
        let mut dims = ids.dims().to_vec();
        dims.push(inp);
        Tensor::from_vec(values, dims, ids.device())
    }
}

/// `x·Wᵀ` for `x: [.., in]`; in backward only `∂x = g·W`.
pub fn bf16_linear(x: &Tensor, w: &Arc<Bf16Weight>) -> Result<Tensor> {
    let x = x.to_dtype(DType::F32)?.contiguous()?;
    x.apply_op1(Forward(w.clone()))
}

/// `g·W` for `g: [.., out]`, on the same kernel.
pub fn bf16_input_grad(g: &Tensor, w: &Arc<Bf16Weight>) -> Result<Tensor> {
    let g = g.detach().to_dtype(DType::F32)?.contiguous()?;
    g.apply_op1(InputGrad(w.clone()))
}

fn product(s: &CpuStorage, l: &Layout, b: &PackedB, what: &str) -> Result<(CpuStorage, Shape)> {
    let CpuStorage::F32(data) = s else { candle_core::bail!("{what}: bf16 weights take f32 inputs") };
    let (k, n) = b.dims();
    if !l.is_contiguous() || l.dims().last() != Some(&k) {
        candle_core::bail!("{what}: input {:?} does not end in {k} (or is not contiguous)", l.shape())
    }
    let len = l.shape().elem_count();
    let a = &data[l.start_offset()..l.start_offset() + len];
    let mut dims = l.dims().to_vec();
    *dims.last_mut().unwrap() = n;
    Ok((CpuStorage::F32(gemm_bf16::matmul(a, len / k, b)), Shape::from(dims)))
}

struct Forward(Arc<Bf16Weight>);

impl CustomOp1 for Forward {
    fn name(&self) -> &'static str {
        "bf16-linear"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        product(s, l, &self.0.forward, "bf16-linear")
    }

    fn bwd(&self, _x: &Tensor, _y: &Tensor, g: &Tensor) -> Result<Option<Tensor>> {
        Ok(Some(g.contiguous()?.apply_op1(InputGrad(self.0.clone()))?))
    }
}

/// `g·W`; its own backward is the forward product, so second derivatives stay correct.
struct InputGrad(Arc<Bf16Weight>);

impl CustomOp1 for InputGrad {
    fn name(&self) -> &'static str {
        "bf16-linear-input-grad"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        product(s, l, self.0.input_grad(), "bf16-linear backward")
    }

    fn bwd(&self, _g: &Tensor, _y: &Tensor, gg: &Tensor) -> Result<Option<Tensor>> {
        Ok(Some(gg.contiguous()?.apply_op1(Forward(self.0.clone()))?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Var;

    #[test]
    fn bf16_linear_is_the_product_with_the_rounded_matrix_and_backprops_the_input_only() -> Result<()> {
        let dev = Device::Cpu;
        let w = Tensor::randn(0f32, 1., (40, 70), &dev)?;
        let bw = Arc::new(Bf16Weight::new(&w)?);
        assert_eq!(bw.dims(), (40, 70));
        // The rounded matrix is exactly candle's (round-to-nearest-even) bf16 conversion,
        // within bf16's half-ulp (2⁻⁸ relative) of the f32 one.
        let wr = bw.dense()?.clone();
        let candle_bf16 = w.to_dtype(DType::BF16)?.to_dtype(DType::F32)?;
        assert_eq!((&wr - &candle_bf16)?.abs()?.max_all()?.to_scalar::<f32>()?, 0.0);
        let rel = ((&wr - &w)?.abs()? / w.abs()?)?.max_all()?.to_scalar::<f32>()?;
        assert!(rel > 0.0 && rel <= 1.0 / 256.0, "rounding error {rel}");

        let x = Var::randn(0f32, 1., (3, 5, 70), &dev)?;
        let c = Tensor::randn(0f32, 1., (3, 5, 40), &dev)?;
        // Reference: f32 products over bf16-rounded inputs.
        let round = |t: &Tensor| t.to_dtype(DType::BF16)?.to_dtype(DType::F32);
        let y_ref = round(x.as_tensor())?.broadcast_matmul(&wr.t()?)?;
        let y = bf16_linear(&x, &bw)?;
        let d = (&y - &y_ref)?.abs()?.max_all()?.to_scalar::<f32>()?;
        assert!(d < 1e-4, "forward diff {d}");

        assert!(!bw.has_input_grad_packing(), "the forward alone packs once");
        let g = crate::train::ops::mul_const(&y, &c)?.sum_all()?.backward()?;
        assert!(bw.has_input_grad_packing());
        assert_eq!(g.get_ids().count(), 1, "only x gets a gradient");
        let gx_ref = round(&c)?.broadcast_matmul(&wr)?;
        let d = (g.get(&x).unwrap() - gx_ref)?.abs()?.max_all()?.to_scalar::<f32>()?;
        assert!(d < 1e-4, "input-gradient diff {d}");

        let ids = Tensor::new(&[[3u32, 0], [39, 7]], &dev)?;
        let e = bw.rows(&ids)?;
        let e_ref = wr.index_select(&ids.flatten_all()?, 0)?.reshape((2, 2, 70))?;
        assert_eq!((e - e_ref)?.abs()?.max_all()?.to_scalar::<f32>()?, 0.0);
        assert!(bw.rows(&Tensor::new(&[40u32], &dev)?).is_err());
        Ok(())
    }
}
