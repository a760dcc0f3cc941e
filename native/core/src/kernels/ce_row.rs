//! Cross-entropy of one row of f32 logits, in place and vectorised: the LM-head loss's
//! elementwise work, which for a 262,144-entry vocabulary is as large as its GEMMs.
//!
//! One row: (optionally) soft-cap the logits `z = cap · tanh(l / cap)` while finding the max,
//! sum `exp(z − max)`, and with a gradient rewrite the row into
//! `(softmax(z) − onehot(target)) ⊙ dz/dl`. `exp` and `tanh` are branch-free f32 polynomials
//! (Cephes' `expf`, about 2 ulp) that the compiler turns into SIMD; the sums run in 16 f32
//! lanes over blocks of 256 values and add up in f64, so the log-sum-exp over 262,144 terms
//! keeps ~1e-7 relative accuracy. AVX-512 CPUs take the same code compiled for 16-wide vectors
//! (runtime dispatch, like [`super::gemm_bf16`]).

/// Which code path a row runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Isa {
    /// The same code compiled with AVX-512F enabled.
    Avx512,
    /// The baseline target (SSE2 on x86-64).
    Portable,
}

impl Isa {
    pub fn detect() -> Self {
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx512f") {
                return Self::Avx512;
            }
        }
        Self::Portable
    }
}

/// Values per lane group (one AVX-512 register of f32).
const LANES: usize = 16;
/// Values summed in f32 before the partial sum moves to f64.
const BLOCK: usize = 256;

pub use super::exp::{exp, tanh};

/// Cross-entropy of `row` (raw logits) against `target`, soft-capped at `cap` when given; with
/// `grad`, `row` becomes `(softmax(z) − onehot(target)) ⊙ dz/dl`. Returns the token's loss.
pub fn ce_row(row: &mut [f32], target: usize, cap: Option<f32>, grad: bool) -> f64 {
    ce_row_on(Isa::detect(), row, target, cap, grad)
}

/// [`ce_row`] on a chosen path (tests run both); falls back to [`Isa::Portable`] when the CPU
/// lacks the one asked for.
pub fn ce_row_on(isa: Isa, row: &mut [f32], target: usize, cap: Option<f32>, grad: bool) -> f64 {
    assert!(target < row.len(), "target {target} outside a row of {}", row.len());
    #[cfg(target_arch = "x86_64")]
    if isa == Isa::Avx512 && Isa::detect() == Isa::Avx512 {
        // SAFETY: the CPU has AVX-512F (checked just above).
        return unsafe { ce_row_avx512(row, target, cap, grad) };
    }
    let _ = isa;
    ce_row_impl(row, target, cap, grad)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn ce_row_avx512(row: &mut [f32], target: usize, cap: Option<f32>, grad: bool) -> f64 {
    ce_row_impl(row, target, cap, grad)
}

#[inline(always)]
fn ce_row_impl(row: &mut [f32], target: usize, cap: Option<f32>, grad: bool) -> f64 {
    let max = match cap {
        Some(cap) => cap_and_max(row, cap),
        None => max_of(row),
    };
    let lse = sum_exp(row, max).ln();
    let zt = row[target];
    let loss = lse - (zt - max) as f64;
    if grad {
        // `(x − max) − lse` rather than `x − (max + lse)`: the rounding of a shift near `max`
        // would move every probability by up to ulp(max) relative.
        let lse = lse as f32;
        match cap {
            Some(cap) => {
                let inv = 1.0 / cap;
                for x in row.iter_mut() {
                    let t = *x * inv;
                    *x = exp((*x - max) - lse) * (1.0 - t * t);
                }
                let t = zt * inv;
                row[target] -= 1.0 - t * t;
            }
            None => {
                for x in row.iter_mut() {
                    *x = exp((*x - max) - lse);
                }
                row[target] -= 1.0;
            }
        }
    }
    loss
}

/// `x ← cap · tanh(x / cap)` over the row; returns the new maximum.
#[inline(always)]
fn cap_and_max(row: &mut [f32], cap: f32) -> f32 {
    let inv = 1.0 / cap;
    let mut lanes = [f32::NEG_INFINITY; LANES];
    let mut chunks = row.chunks_exact_mut(LANES);
    for c in &mut chunks {
        for (x, m) in c.iter_mut().zip(lanes.iter_mut()) {
            *x = cap * tanh(*x * inv);
            *m = if *x > *m { *x } else { *m };
        }
    }
    let mut max = lanes.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    for x in chunks.into_remainder() {
        *x = cap * tanh(*x * inv);
        max = max.max(*x);
    }
    max
}

#[inline(always)]
fn max_of(row: &[f32]) -> f32 {
    let mut lanes = [f32::NEG_INFINITY; LANES];
    let chunks = row.chunks_exact(LANES);
    let rest = chunks.remainder();
    for c in chunks {
        for (x, m) in c.iter().zip(lanes.iter_mut()) {
            *m = if *x > *m { *x } else { *m };
        }
    }
    lanes.iter().chain(rest).copied().fold(f32::NEG_INFINITY, f32::max)
}

/// `Σ exp(x − max)`: 16 f32 lanes per block of [`BLOCK`] values, blocks added in f64.
#[inline(always)]
fn sum_exp(row: &[f32], max: f32) -> f64 {
    let mut total = 0f64;
    for block in row.chunks(BLOCK) {
        let mut lanes = [0f32; LANES];
        let chunks = block.chunks_exact(LANES);
        let rest = chunks.remainder();
        for c in chunks {
            for (x, s) in c.iter().zip(lanes.iter_mut()) {
                *s += exp(*x - max);
            }
        }
        total += lanes.iter().map(|&s| s as f64).sum::<f64>();
        total += rest.iter().map(|&x| exp(x - max) as f64).sum::<f64>();
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::kernels::test_values;

    #[test]
    fn exp_and_tanh_match_f64_on_their_range() {
        let mut worst = (0f64, 0f64);
        for i in -87_000..=88_000 {
            let x = i as f32 * 1e-3 + 3.7e-4;
            let e = (x as f64).exp();
            worst.0 = worst.0.max(((exp(x) as f64 - e) / e).abs());
            let t = (x as f64 / 10.0).tanh();
            worst.1 = worst.1.max((tanh(x / 10.0) as f64 - t).abs());
        }
        assert!(worst.0 < 3e-7, "exp max relative error {:e}", worst.0);
        assert!(worst.1 < 3e-7, "tanh max absolute error {:e}", worst.1);
        assert_eq!(exp(0.0), 1.0);
        assert_eq!(tanh(0.0), 0.0);
        assert!((tanh(40.0) - 1.0).abs() < 1e-7 && (tanh(-40.0) + 1.0).abs() < 1e-7);
        assert!(exp(-200.0) < 1e-37 && exp(-200.0) >= 0.0);
    }

    /// Loss and gradient equal the f64 formula (with and without a soft cap, lengths with a
    /// tail, a huge row like Gemma's vocabulary) on both paths.
    #[test]
    fn ce_row_matches_f64_reference_on_both_paths() {
        for &(len, cap, scale) in
            &[(1usize, None, 1.0f32), (37, Some(3.0f32), 4.0), (1000, None, 8.0), (262_147, Some(30.0), 20.0)]
        {
            let logits = test_values(len as u64, len, scale);
            let target = len / 3;
            // f64 reference.
            let z: Vec<f64> = logits
                .iter()
                .map(|&l| cap.map_or(l as f64, |c| c as f64 * (l as f64 / c as f64).tanh()))
                .collect();
            let max = z.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let lse = z.iter().map(|&v| (v - max).exp()).sum::<f64>().ln() + max;
            let want_loss = lse - z[target];
            let want_grad: Vec<f64> = z
                .iter()
                .enumerate()
                .map(|(i, &v)| {
                    let d = cap.map_or(1.0, |c| 1.0 - (v / c as f64).powi(2));
                    ((v - lse).exp() - if i == target { 1.0 } else { 0.0 }) * d
                })
                .collect();
            for isa in [Isa::Portable, Isa::Avx512] {
                let mut row = logits.clone();
                let no_grad = ce_row_on(isa, &mut row.clone(), target, cap, false);
                let loss = ce_row_on(isa, &mut row, target, cap, true);
                assert_eq!(loss, no_grad);
                assert!((loss - want_loss).abs() < 2e-5, "{isa:?} len {len}: loss {loss} vs {want_loss}");
                for (g, w) in row.iter().zip(&want_grad) {
                    assert!(
                        (*g as f64 - w).abs() < 1e-6 * (1.0 + w.abs()),
                        "{isa:?} len {len}: grad {g} vs {w}"
                    );
                }
                let sum: f64 = row.iter().map(|&g| g as f64).sum();
                if cap.is_none() {
                    assert!(sum.abs() < 1e-4, "softmax − onehot sums to 0, got {sum}");
                }
            }
        }
    }

    #[test]
    fn ce_row_reports_which_path_the_cpu_runs() {
        eprintln!("cross-entropy row kernel on this CPU: {:?}", Isa::detect());
    }
}
