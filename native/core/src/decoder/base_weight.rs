//! The frozen matrix of a projection: the one place that knows how a base weight is stored.
//!
//! Everything else (the decoder's [`Linear`](super::linear::Linear), the LoRA node, merging)
//! goes through this narrow interface: the product with an input, the product of an output
//! gradient with the matrix (the input gradient; a frozen weight never gets its own), its
//! shape, and an f32 copy for merging. A new storage form (quantised, bf16) is one more
//! variant here and nothing else changes.

use candle_core::{DType, Result, Tensor};

use crate::train::frozen_linear::frozen_linear;

/// A frozen `[out, in]` matrix (PyTorch layout) applied as `y = x·Wᵀ`.
#[derive(Debug, Clone)]
pub enum BaseWeight {
    /// A dense tensor in the checkpoint's dtype. It may also be a `Var` (or derived from
    /// one): the gradient tests differentiate through it, and then the weight gets its
    /// gradient like any candle matmul operand.
    F32(Tensor),
}

impl BaseWeight {
    /// `x·Wᵀ` for `x: [.., in]`. On a tracked `x` the graph node computes only `∂x` in
    /// backward ([`frozen_linear`]).
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        match self {
            Self::F32(w) => frozen_linear(x, w),
        }
    }

    /// `g·W` for `g: [rows, out]`: the input gradient of [`forward`](Self::forward).
    pub fn backward_input(&self, g: &Tensor) -> Result<Tensor> {
        match self {
            Self::F32(w) => g.matmul(&w.detach()),
        }
    }

    /// `(out, in)`.
    pub fn dims(&self) -> (usize, usize) {
        match self {
            Self::F32(w) => w.dims2().expect("a base weight is 2-D (checked at load)"),
        }
    }

    /// The element type the product runs in (and returns).
    pub fn dtype(&self) -> DType {
        match self {
            Self::F32(w) => w.dtype(),
        }
    }

    /// Whether autograd can reach the weight itself (only in gradient tests).
    pub fn needs_grad(&self) -> bool {
        match self {
            Self::F32(w) => crate::train::frozen_linear::needs_grad(w),
        }
    }

    /// The matrix as a dense tensor in its own dtype (merging `W + s·B·A`, export).
    pub fn to_dense(&self) -> Result<Tensor> {
        match self {
            Self::F32(w) => Ok(w.clone()),
        }
    }

    /// The dense tensor, for tests that turn a base weight into a `Var`.
    pub fn dense_mut(&mut self) -> Option<&mut Tensor> {
        match self {
            Self::F32(w) => Some(w),
        }
    }
}
