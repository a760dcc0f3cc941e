//! CPU compute kernels that are not tied to one model piece.

pub mod gemm_bf16;
