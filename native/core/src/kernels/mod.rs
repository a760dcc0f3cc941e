//! CPU compute kernels that are not tied to one model piece.

pub mod ce_row;
pub mod exp;
pub mod gemm_bf16;

/// Deterministic pseudo-random values in `[-scale, scale)` for the kernels' tests (an LCG, so
/// every run and every CPU sees the same inputs).
#[cfg(test)]
pub(crate) fn test_values(seed: u64, len: usize, scale: f32) -> Vec<f32> {
    let mut s = seed;
    (0..len)
        .map(|_| {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0) * scale
        })
        .collect()
}
