//! The frozen matrices of a decoder (projections, embedding, LM head): plain f32 tensors or
//! [`QuantMatrix`]es kept in stored form, behind one interface.

use std::sync::{Arc, OnceLock};

use candle_core::{Device, Result, Tensor};

use super::op::{stored_embedding, stored_linear};
use super::QuantMatrix;
use crate::gguf::reader::GgmlType;

/// How to hold a base model's weight matrices in memory (`baseWeights` in the TypeScript API).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BaseFormat {
    /// As the file stores them: GGUF blocks stay quantised, bf16/f16 safetensors stay 16-bit,
    /// f32 stays f32.
    #[default]
    Stored,
    /// Everything dequantised to f32 (exact parity with transformers on f32 checkpoints).
    F32,
    /// Quantise each matrix of a safetensors base to Q8_0 while loading.
    Q8_0,
    /// Quantise each matrix of a safetensors base to Q4_K while loading (Q8_0 for rows that are
    /// not a multiple of 256 values, bf16 for rows not a multiple of 32).
    Q4K,
}

impl BaseFormat {
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "stored" => Self::Stored,
            "f32" => Self::F32,
            "q8_0" => Self::Q8_0,
            "q4_k" => Self::Q4K,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Stored => "stored",
            Self::F32 => "f32",
            Self::Q8_0 => "q8_0",
            Self::Q4K => "q4_k",
        }
    }

    /// The ggml type a `[rows, cols]` f32 matrix is quantised to on load, if any.
    pub fn quantize_to(self, cols: usize) -> Option<GgmlType> {
        let target = match self {
            Self::Stored | Self::F32 => return None,
            Self::Q8_0 => GgmlType::Q8_0,
            Self::Q4K => GgmlType::Q4_K,
        };
        [target, GgmlType::Q8_0, GgmlType::BF16].into_iter().find(|t| cols.is_multiple_of(t.block_layout().0 as usize))
    }
}

/// A frozen `[out, in]` matrix.
#[derive(Debug, Clone)]
pub enum BaseWeight {
    F32(Tensor),
    Stored(StoredWeight),
}

/// A stored matrix, with the f32 copy some callers (tests, merging) ask for made once on demand.
#[derive(Debug, Clone)]
pub struct StoredWeight {
    pub matrix: Arc<QuantMatrix>,
    device: Device,
    dense: Arc<OnceLock<Tensor>>,
}

impl BaseWeight {
    pub fn stored(matrix: QuantMatrix, device: &Device) -> Self {
        Self::Stored(StoredWeight { matrix: Arc::new(matrix), device: device.clone(), dense: Arc::default() })
    }

    /// `(out, in)`.
    pub fn dims2(&self) -> Result<(usize, usize)> {
        match self {
            Self::F32(t) => t.dims2(),
            Self::Stored(s) => Ok(s.matrix.dims()),
        }
    }

    /// `x·Wᵀ` for `x: [.., in]`, with the weight treated as a constant by autograd (only the
    /// input gradient flows back). F32 weights take exactly the products they took before
    /// stored weights existed.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        match self {
            Self::F32(w) => {
                let dims = x.dims();
                let inp = dims[dims.len() - 1];
                let rows = x.elem_count() / inp.max(1);
                let y = x.reshape((rows, inp))?.matmul(&w.t()?)?;
                let mut out_dims = dims.to_vec();
                *out_dims.last_mut().expect("non-scalar input") = w.dim(0)?;
                y.reshape(out_dims)
            }
            Self::Stored(s) => stored_linear(&x.to_dtype(candle_core::DType::F32)?, &s.matrix),
        }
    }

    /// `g·W` for `g: [n, out]` (not tracked).
    pub fn input_grad(&self, g: &Tensor) -> Result<Tensor> {
        match self {
            Self::F32(w) => g.matmul(&w.detach().to_dtype(g.dtype())?),
            Self::Stored(s) => {
                let g32 = g.detach().to_dtype(candle_core::DType::F32)?.contiguous()?;
                let (n, out) = g32.dims2()?;
                let gx = super::matmul::matmul(&s.matrix, &g32.flatten_all()?.to_vec1::<f32>()?, n);
                let _ = out;
                Tensor::from_vec(gx, (n, s.matrix.dims().1), g.device())?.to_dtype(g.dtype())
            }
        }
    }

    /// Rows `ids` (u32, any shape) as `[ids.., in]` (an embedding lookup).
    pub fn rows(&self, ids: &Tensor) -> Result<Tensor> {
        match self {
            Self::F32(w) => {
                let mut dims = ids.dims().to_vec();
                dims.push(w.dim(1)?);
                w.index_select(&ids.flatten_all()?, 0)?.reshape(dims)
            }
            Self::Stored(s) => stored_embedding(ids, &s.matrix),
        }
    }

    /// The matrix as an f32 tensor: the tensor itself, or a fresh dequantised copy (merging
    /// adapters, tests; training and generation never need it).
    pub fn dense(&self) -> Result<Tensor> {
        match self {
            Self::F32(t) => Ok(t.clone()),
            Self::Stored(s) => {
                let (r, c) = s.matrix.dims();
                Tensor::from_vec(s.matrix.dequantize(), (r, c), &s.device)
            }
        }
    }

    /// [`Self::dense`] by reference: a stored matrix's copy is made once and kept for the
    /// life of this weight (APIs that hand out `&Tensor`, such as
    /// `TrainableModel::lm_head_weight`).
    pub fn dense_ref(&self) -> Result<&Tensor> {
        match self {
            Self::F32(t) => Ok(t),
            Self::Stored(s) => {
                if s.dense.get().is_none() {
                    let (r, c) = s.matrix.dims();
                    let t = Tensor::from_vec(s.matrix.dequantize(), (r, c), &s.device)?;
                    let _ = s.dense.set(t);
                }
                Ok(s.dense.get().expect("set above"))
            }
        }
    }

    /// Bytes this matrix occupies in memory.
    pub fn bytes(&self) -> u64 {
        match self {
            Self::F32(t) => (t.elem_count() * t.dtype().size_in_bytes()) as u64,
            Self::Stored(s) => s.matrix.stored_bytes() as u64,
        }
    }

    /// The ggml type of a stored matrix (None for an f32 tensor).
    pub fn stored_type(&self) -> Option<GgmlType> {
        match self {
            Self::F32(_) => None,
            Self::Stored(s) => Some(s.matrix.ggml_type()),
        }
    }
}
