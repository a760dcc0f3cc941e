//! CPU compute kernels that are not tied to one model piece.

pub mod ce_row;
pub mod exp;
pub mod gemm_bf16;
