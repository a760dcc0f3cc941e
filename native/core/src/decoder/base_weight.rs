//! The frozen matrix of a projection: the one place that knows how a base weight is stored.
//!
//! Everything else (the decoder's [`Linear`](super::linear::Linear), the LoRA node, merging)
//! goes through this narrow interface: the product with an input, the product of an output
//! gradient with the matrix (the input gradient; a frozen weight never gets its own), its
//! shape, and an f32 copy for merging. Three storage forms: a dense tensor, a
//! [`QuantMatrix`] kept as the file stores it (GGUF blocks, bf16/f16; see [`crate::quant`]),
//! or a bf16 matrix packed for the bf16 GEMM ([`Bf16Weight`], `baseWeights: "bf16"`).

use std::sync::{Arc, OnceLock};

use candle_core::{DType, Device, Result, Tensor};

use super::bf16_weight::{bf16_input_grad, bf16_linear, Bf16Weight};
use crate::gguf::reader::GgmlType;
use crate::quant::op::{stored_embedding, stored_linear, stored_linear_decode};
use crate::quant::QuantMatrix;
use crate::train::frozen_linear::frozen_linear;

/// A frozen `[out, in]` matrix (PyTorch layout) applied as `y = x·Wᵀ`.
#[derive(Debug, Clone)]
pub enum BaseWeight {
    /// A dense tensor in the checkpoint's dtype. It may also be a `Var` (or derived from
    /// one): the gradient tests differentiate through it, and then the weight gets its
    /// gradient like any candle matmul operand.
    F32(Tensor),
    /// Kept in stored (compact) form; products dequantise tile by tile.
    Stored(StoredWeight),
    /// Rounded to bf16 and packed once; products take bf16 inputs and accumulate in f32.
    Bf16(Arc<Bf16Weight>),
}

/// A stored matrix, with the f32 copy that [`BaseWeight::dense_ref`] hands out made once on
/// demand (tests only; training and generation never make it).
#[derive(Debug, Clone)]
pub struct StoredWeight {
    pub matrix: Arc<QuantMatrix>,
    device: Device,
    dense: Arc<OnceLock<Tensor>>,
}

impl BaseWeight {
    pub fn stored(matrix: QuantMatrix, device: &Device) -> Self {
        Self::stored_shared(Arc::new(matrix), device)
    }

    /// A dense matrix rounded to bf16 and packed for the bf16 GEMM (`baseWeights: "bf16"`).
    pub fn bf16(w: &Tensor) -> Result<Self> {
        Ok(Self::Bf16(Arc::new(Bf16Weight::new(w)?)))
    }

    /// A stored matrix shared with its other owners (no copy).
    pub fn stored_shared(matrix: Arc<QuantMatrix>, device: &Device) -> Self {
        Self::Stored(StoredWeight { matrix, device: device.clone(), dense: Arc::default() })
    }

    /// `x·Wᵀ` for `x: [.., in]`. On a tracked `x` the graph node computes only `∂x` in
    /// backward ([`frozen_linear`], or the stored op's input gradient).
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        match self {
            Self::F32(w) => frozen_linear(x, w),
            Self::Stored(s) => stored_linear(&x.to_dtype(DType::F32)?, &s.matrix),
            Self::Bf16(w) => bf16_linear(x, w),
        }
    }

    /// [`forward`](Self::forward) for generation: a stored matrix multiplies a decode step's
    /// row with 8-bit activations and integer dot products (llama.cpp's arithmetic; see
    /// [`crate::quant::dot`]). Not for training: it has no exact gradient.
    pub fn forward_decode(&self, x: &Tensor) -> Result<Tensor> {
        match self {
            Self::F32(w) => frozen_linear(x, w),
            Self::Stored(s) => stored_linear_decode(&x.to_dtype(DType::F32)?, &s.matrix),
            Self::Bf16(w) => bf16_linear(x, w),
        }
    }

    /// `g·W` for `g: [rows, out]`: the input gradient of [`forward`](Self::forward).
    pub fn backward_input(&self, g: &Tensor) -> Result<Tensor> {
        match self {
            Self::F32(w) => g.matmul(&w.detach()),
            Self::Stored(s) => {
                let g32 = g.detach().to_dtype(DType::F32)?.contiguous()?;
                let (n, _) = g32.dims2()?;
                let gx = crate::quant::matmul::matmul(&s.matrix, &g32.flatten_all()?.to_vec1::<f32>()?, n);
                Tensor::from_vec(gx, (n, s.matrix.dims().1), g.device())?.to_dtype(g.dtype())
            }
            Self::Bf16(w) => bf16_input_grad(g, w)?.to_dtype(g.dtype()),
        }
    }

    /// `(out, in)`.
    pub fn dims(&self) -> (usize, usize) {
        match self {
            Self::F32(w) => w.dims2().expect("a base weight is 2-D (checked at load)"),
            Self::Stored(s) => s.matrix.dims(),
            Self::Bf16(w) => w.dims(),
        }
    }

    /// The element type the product runs in (and returns).
    pub fn dtype(&self) -> DType {
        match self {
            Self::F32(w) => w.dtype(),
            Self::Stored(_) | Self::Bf16(_) => DType::F32,
        }
    }

    /// Whether autograd can reach the weight itself (only in gradient tests).
    pub fn needs_grad(&self) -> bool {
        match self {
            Self::F32(w) => crate::train::frozen_linear::needs_grad(w),
            Self::Stored(_) | Self::Bf16(_) => false,
        }
    }

    /// The matrix as a dense tensor (merging `W + s·B·A`, export): the tensor itself, or a
    /// fresh f32 dequantisation of a stored matrix.
    pub fn to_dense(&self) -> Result<Tensor> {
        match self {
            Self::F32(w) => Ok(w.clone()),
            Self::Stored(s) => {
                let (r, c) = s.matrix.dims();
                Tensor::from_vec(s.matrix.dequantize(), (r, c), &s.device)
            }
            Self::Bf16(w) => w.to_dense(),
        }
    }

    /// [`Self::to_dense`] by reference: a stored matrix's copy is made once and kept for the
    /// life of this weight (for APIs that hand out `&Tensor`, such as
    /// `TrainableModel::lm_head_weight`).
    pub fn dense_ref(&self) -> Result<&Tensor> {
        match self {
            Self::F32(t) => Ok(t),
            Self::Stored(s) => {
                if s.dense.get().is_none() {
                    let _ = s.dense.set(self.to_dense()?);
                }
                Ok(s.dense.get().expect("set above"))
            }
            Self::Bf16(w) => w.dense(),
        }
    }

    /// The dense tensor, for tests that turn a base weight into a `Var`.
    pub fn dense_mut(&mut self) -> Option<&mut Tensor> {
        match self {
            Self::F32(w) => Some(w),
            Self::Stored(_) | Self::Bf16(_) => None,
        }
    }

    /// Rows `ids` (u32, any shape) as `[ids.., in]` (an embedding lookup; a stored matrix
    /// dequantises only those rows).
    pub fn rows(&self, ids: &Tensor) -> Result<Tensor> {
        match self {
            Self::F32(w) => {
                let mut dims = ids.dims().to_vec();
                dims.push(w.dim(1)?);
                w.index_select(&ids.flatten_all()?, 0)?.reshape(dims)
            }
            Self::Stored(s) => stored_embedding(ids, &s.matrix),
            Self::Bf16(w) => w.rows(ids),
        }
    }

    /// Bytes this matrix occupies in memory.
    pub fn bytes(&self) -> u64 {
        match self {
            Self::F32(t) => (t.elem_count() * t.dtype().size_in_bytes()) as u64,
            Self::Stored(s) => s.matrix.stored_bytes() as u64,
            Self::Bf16(w) => w.bytes() as u64,
        }
    }

    /// The ggml type of a stored matrix (None for a dense tensor).
    pub fn stored_type(&self) -> Option<GgmlType> {
        match self {
            Self::F32(_) => None,
            Self::Stored(s) => Some(s.matrix.ggml_type()),
            Self::Bf16(_) => Some(GgmlType::BF16),
        }
    }
}
