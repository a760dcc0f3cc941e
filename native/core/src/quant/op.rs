//! candle ops over a [`QuantMatrix`]: `y = x·Wᵀ` whose backward pass returns only the input
//! gradient `g·W` (the base is frozen; LoRA's A/B are ordinary candle tensors beside it).

use std::sync::Arc;

use candle_core::{CpuStorage, CustomOp1, Layout, Result, Shape, Tensor};

use super::matmul;
use super::QuantMatrix;

/// Applies a frozen stored weight `[out, in]` to `x: [.., in]` (f32, CPU).
pub fn stored_linear(x: &Tensor, w: &Arc<QuantMatrix>) -> Result<Tensor> {
    x.contiguous()?.apply_op1(Forward { w: w.clone(), decode: false })
}

/// [`stored_linear`] for generation: a few rows (a decode step) go through the integer dot
/// products of [`super::dot`] (8-bit activations, as llama.cpp); more rows, and types without
/// an integer kernel, take the exact product.
pub fn stored_linear_decode(x: &Tensor, w: &Arc<QuantMatrix>) -> Result<Tensor> {
    x.contiguous()?.apply_op1(Forward { w: w.clone(), decode: true })
}

/// Row counts up to this use the integer dot products when decoding.
const DECODE_ROWS: usize = 4;

/// Rows `ids` (u32, any shape) of a stored matrix as f32 `[ids.., cols]`: an embedding lookup
/// that dequantises only the rows asked for.
pub fn stored_embedding(ids: &Tensor, w: &QuantMatrix) -> Result<Tensor> {
    let flat = ids.flatten_all()?.to_vec1::<u32>()?;
    let (rows, cols) = w.dims();
    if let Some(bad) = flat.iter().find(|&&i| i as usize >= rows) {
        candle_core::bail!("token id {bad} is out of range for {rows} embedding rows")
    }
    let mut dims = ids.dims().to_vec();
    dims.push(cols);
    Tensor::from_vec(w.gather_rows(&flat), dims, ids.device())
}

fn input<'a>(s: &'a CpuStorage, l: &Layout, last: usize, what: &str) -> Result<(&'a [f32], usize)> {
    let CpuStorage::F32(data) = s else { candle_core::bail!("{what}: stored weights take f32 inputs") };
    if !l.is_contiguous() || l.dims().last() != Some(&last) {
        candle_core::bail!("{what}: input {:?} does not end in {last} (or is not contiguous)", l.shape())
    }
    let n = l.shape().elem_count();
    Ok((&data[l.start_offset()..l.start_offset() + n], n / last))
}

struct Forward {
    w: Arc<QuantMatrix>,
    decode: bool,
}

impl CustomOp1 for Forward {
    fn name(&self) -> &'static str {
        "stored-linear"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let (out_f, in_f) = self.w.dims();
        let (x, m) = input(s, l, in_f, "stored-linear")?;
        let mut dims = l.dims().to_vec();
        *dims.last_mut().unwrap() = out_f;
        let fast = if self.decode && m <= DECODE_ROWS { super::dot::matmul_t(&self.w, x, m) } else { None };
        let y = fast.unwrap_or_else(|| matmul::matmul_t(&self.w, x, m));
        Ok((CpuStorage::F32(y), Shape::from(dims)))
    }

    fn bwd(&self, _x: &Tensor, _y: &Tensor, g: &Tensor) -> Result<Option<Tensor>> {
        Ok(Some(g.contiguous()?.apply_op1(InputGrad(self.w.clone()))?))
    }
}

/// `g·W`; its own backward is the forward product, so second derivatives stay correct.
struct InputGrad(Arc<QuantMatrix>);

impl CustomOp1 for InputGrad {
    fn name(&self) -> &'static str {
        "stored-linear-input-grad"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let (out_f, in_f) = self.0.dims();
        let (g, m) = input(s, l, out_f, "stored-linear backward")?;
        let mut dims = l.dims().to_vec();
        *dims.last_mut().unwrap() = in_f;
        Ok((CpuStorage::F32(matmul::matmul(&self.0, g, m)), Shape::from(dims)))
    }

    fn bwd(&self, _g: &Tensor, _y: &Tensor, gg: &Tensor) -> Result<Option<Tensor>> {
        Ok(Some(stored_linear(gg, &self.0)?))
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::random_matrix;
    use super::*;
    use crate::gguf::reader::GgmlType;
    use candle_core::{Device, Var};

    #[test]
    fn quant_stored_linear_matches_f32_and_backprops_the_input_only() -> Result<()> {
        let dev = Device::Cpu;
        let w = Arc::new(random_matrix(GgmlType::Q4_K, 24, 256, 4));
        let wf = Tensor::from_vec(w.dequantize(), (24, 256), &dev)?;
        let x = Var::randn(0f32, 1., (2, 5, 256), &dev)?;
        let c = Tensor::randn(0f32, 1., (2, 5, 24), &dev)?;
        let y = stored_linear(&x, &w)?;
        let y_ref = x.broadcast_matmul(&wf.t()?)?;
        let diff = (&y - &y_ref)?.abs()?.max_all()?.to_scalar::<f32>()?;
        assert!(diff < 1e-4, "forward diff {diff}");
        let g = crate::train::ops::mul_const(&y, &c)?.sum_all()?.backward()?;
        let g_ref = crate::train::ops::mul_const(&y_ref, &c)?.sum_all()?.backward()?;
        let d = (g.get(&x).unwrap() - g_ref.get(&x).unwrap())?.abs()?.max_all()?.to_scalar::<f32>()?;
        assert!(d < 1e-4, "input-gradient diff {d}");
        assert_eq!(g.get_ids().count(), 1, "only x gets a gradient");

        let ids = Tensor::new(&[[3u32, 0], [23, 7]], &dev)?;
        let e = stored_embedding(&ids, &w)?;
        assert_eq!(e.dims(), &[2, 2, 256]);
        let e_ref = wf.index_select(&ids.flatten_all()?, 0)?.reshape((2, 2, 256))?;
        assert_eq!((e - e_ref)?.abs()?.max_all()?.to_scalar::<f32>()?, 0.0);
        assert!(stored_embedding(&Tensor::new(&[24u32], &dev)?, &w).is_err());
        Ok(())
    }
}
