//! Fused f32 CPU kernels for the training graph's elementwise nodes, parallel over rows.
//!
//! candle's elementwise ops run on one thread and each allocates and makes a full pass; the
//! composed forms of RMSNorm, rope, the attention softmax and the SiLU gate take 4–10 passes
//! each. These kernels do each node (forward, and its backward) in one or two passes per row,
//! split across rayon's pool (`RAYON_NUM_THREADS`, the same threads candle's GEMMs use). They
//! compute the same formulas as the composed ops in [`super::ops`], in f32, row by row; the
//! results agree to rounding (`ops` tests compare both).

use candle_core::{CpuStorage, Result, Storage, Tensor};
use rayon::prelude::*;

use crate::config::Activation;
use crate::kernels::exp;

/// Rows per rayon task: enough work per task that scheduling costs nothing measurable.
const MIN_ROWS: usize = 16;

/// The contiguous f32 data of `t` on the CPU (copied only when `t` is a strided view).
pub fn f32_data(t: &Tensor) -> Result<Vec<f32>> {
    let t = t.contiguous()?;
    let (s, l) = t.storage_and_layout();
    match &*s {
        Storage::Cpu(CpuStorage::F32(v)) => {
            Ok(v[l.start_offset()..l.start_offset() + l.shape().elem_count()].to_vec())
        }
        _ => candle_core::bail!("kernels: expected f32 on the CPU"),
    }
}

/// Runs `f` on the contiguous f32 slice of `t`, without a copy when `t` is contiguous.
pub fn with_f32<R>(t: &Tensor, f: impl FnOnce(&[f32]) -> R) -> Result<R> {
    let t = t.contiguous()?;
    let (s, l) = t.storage_and_layout();
    match &*s {
        Storage::Cpu(CpuStorage::F32(v)) => {
            Ok(f(&v[l.start_offset()..l.start_offset() + l.shape().elem_count()]))
        }
        _ => candle_core::bail!("kernels: expected f32 on the CPU"),
    }
}

/// RMSNorm forward: `y = x · r · w`, `r = 1/√(mean(x²) + eps)` per row of `w.len()`.
pub fn rms_norm_fwd(x: &[f32], w: &[f32], eps: f32) -> Vec<f32> {
    let n = w.len();
    let mut y = vec![0f32; x.len()];
    y.par_chunks_mut(n).with_min_len(MIN_ROWS).zip(x.par_chunks(n)).for_each(|(yr, xr)| {
        let r = inv_rms(xr, eps);
        for ((o, &v), &wv) in yr.iter_mut().zip(xr).zip(w) {
            *o = v * r * wv;
        }
    });
    y
}

fn inv_rms(xr: &[f32], eps: f32) -> f32 {
    let ss: f32 = xr.iter().map(|v| v * v).sum();
    1.0 / (ss / xr.len() as f32 + eps).sqrt()
}

/// RMSNorm backward: `∂x = r·(w⊙g) − x·r³·mean(w⊙g⊙x)`.
pub fn rms_norm_bwd(x: &[f32], w: &[f32], g: &[f32], eps: f32) -> Vec<f32> {
    let n = w.len();
    let mut dx = vec![0f32; x.len()];
    dx.par_chunks_mut(n).with_min_len(MIN_ROWS).zip(x.par_chunks(n).zip(g.par_chunks(n))).for_each(
        |(dr, (xr, gr))| {
            let r = inv_rms(xr, eps);
            let dot: f32 = xr.iter().zip(gr).zip(w).map(|((&xv, &gv), &wv)| gv * wv * xv).sum();
            let coef = dot / n as f32 * r * r * r;
            for (((o, &xv), &gv), &wv) in dr.iter_mut().zip(xr).zip(gr).zip(w) {
                *o = gv * wv * r - xv * coef;
            }
        },
    );
    dx
}

/// Rotary embedding ("rotate half") over rows of `d = cos.len() / positions`: row `i` is at
/// position `i % positions` (`x` is `[.., positions, d]`). `sign` 1 rotates forward; -1 applies
/// the transpose (the backward pass).
pub fn rope(x: &[f32], cos: &[f32], sin: &[f32], d: usize, sign: f32) -> Vec<f32> {
    let positions = cos.len() / d;
    let half = d / 2;
    let mut y = vec![0f32; x.len()];
    y.par_chunks_mut(d).with_min_len(MIN_ROWS).zip(x.par_chunks(d)).enumerate().for_each(|(i, (yr, xr))| {
        let p = (i % positions) * d;
        let (c, s) = (&cos[p..p + d], &sin[p..p + d]);
        for j in 0..half {
            // Forward: y1 = x1·c − x2·s, y2 = x2·c + x1·s. Backward (sign −1) with the sin of
            // the partner index: ∂x1 = g1·c1 + g2·s2, ∂x2 = g2·c2 − g1·s1.
            if sign > 0.0 {
                yr[j] = xr[j] * c[j] - xr[j + half] * s[j];
                yr[j + half] = xr[j + half] * c[j + half] + xr[j] * s[j + half];
            } else {
                yr[j] = xr[j] * c[j] + xr[j + half] * s[j + half];
                yr[j + half] = xr[j + half] * c[j + half] - xr[j] * s[j];
            }
        }
    });
    y
}

/// `softmax(x·scale + mask)` over rows of `t`; `mask` is `[s, t]`, row `i` uses mask row
/// `i % s`.
pub fn scaled_masked_softmax_fwd(x: &[f32], t: usize, scale: f32, mask: Option<&[f32]>) -> Vec<f32> {
    let mut p = vec![0f32; x.len()];
    let mask_rows = mask.map_or(1, |m| m.len() / t);
    p.par_chunks_mut(t).with_min_len(MIN_ROWS).zip(x.par_chunks(t)).enumerate().for_each(|(i, (pr, xr))| {
        match mask {
            Some(m) => {
                let mr = &m[(i % mask_rows) * t..(i % mask_rows + 1) * t];
                for ((o, &v), &mv) in pr.iter_mut().zip(xr).zip(mr) {
                    *o = v * scale + mv;
                }
            }
            None => {
                for (o, &v) in pr.iter_mut().zip(xr) {
                    *o = v * scale;
                }
            }
        }
        let max = pr.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v));
        let mut sum = 0f32;
        for v in pr.iter_mut() {
            *v = (*v - max).exp();
            sum += *v;
        }
        for v in pr.iter_mut() {
            *v /= sum;
        }
    });
    p
}

/// Backward of [`scaled_masked_softmax_fwd`] from its output `p`: `scale · p⊙(g − Σ g⊙p)`.
pub fn scaled_softmax_bwd(p: &[f32], g: &[f32], t: usize, scale: f32) -> Vec<f32> {
    let mut dx = vec![0f32; p.len()];
    dx.par_chunks_mut(t).with_min_len(MIN_ROWS).zip(p.par_chunks(t).zip(g.par_chunks(t))).for_each(
        |(dr, (pr, gr))| {
            let dot: f32 = pr.iter().zip(gr).map(|(a, b)| a * b).sum();
            for ((o, &pv), &gv) in dr.iter_mut().zip(pr).zip(gr) {
                *o = (gv - dot) * pv * scale;
            }
        },
    );
    dx
}

/// Row length used to split the flat elementwise kernels into rayon tasks.
const CHUNK: usize = 4096;

/// `act(gate) ⊙ up` (the vectorised [`crate::kernels::exp::silu_glu`] /
/// [`crate::kernels::exp::gelu_tanh_glu`] over chunks).
pub fn glu_fwd(act: Activation, gate: &[f32], up: &[f32]) -> Vec<f32> {
    let mut y = vec![0f32; gate.len()];
    y.par_chunks_mut(CHUNK).zip(gate.par_chunks(CHUNK).zip(up.par_chunks(CHUNK))).for_each(
        |(yr, (gr, ur))| match act {
            Activation::Silu => exp::silu_glu(gr, ur, yr),
            Activation::GeluTanh => exp::gelu_tanh_glu(gr, ur, yr),
        },
    );
    y
}

/// Backward of [`glu_fwd`]: `∂gate = (g⊙up)⊙act'(gate)`, `∂up = g⊙act(gate)`.
pub fn glu_bwd(act: Activation, gate: &[f32], up: &[f32], g: &[f32]) -> (Vec<f32>, Vec<f32>) {
    let mut dg = vec![0f32; gate.len()];
    let mut du = vec![0f32; gate.len()];
    dg.par_chunks_mut(CHUNK)
        .zip(du.par_chunks_mut(CHUNK))
        .zip(gate.par_chunks(CHUNK).zip(up.par_chunks(CHUNK).zip(g.par_chunks(CHUNK))))
        .for_each(|((dgr, dur), (gr, (ur, gg)))| match act {
            Activation::Silu => exp::silu_glu_grad(gr, ur, gg, dgr, dur),
            Activation::GeluTanh => exp::gelu_tanh_glu_grad(gr, ur, gg, dgr, dur),
        });
    (dg, du)
}

/// `a + b` elementwise, in parallel (candle's binary add runs on one thread).
pub fn add(a: &[f32], b: &[f32]) -> Vec<f32> {
    assert_eq!(a.len(), b.len(), "add: lengths differ");
    a.par_iter().with_min_len(CHUNK).zip(b).map(|(&x, &y)| x + y).collect()
}

/// A LoRA projection's output from the frozen product `y` and the unscaled low-rank product
/// `d`: `y + (d·s + 0)`, then `r + …` when a residual `r` is given, in parallel. The same
/// arithmetic in the same order as candle's `r + (y + d * s)` (its scalar multiply is
/// `d·s + 0`), so the value is bit-identical to the composed ops.
pub fn lora_sum(y: &[f32], d: &[f32], s: f32, r: Option<&[f32]>) -> Vec<f32> {
    assert_eq!(y.len(), d.len(), "lora_sum: lengths differ");
    match r {
        Some(r) => {
            assert_eq!(r.len(), y.len(), "lora_sum: residual length differs");
            y.par_iter()
                .with_min_len(CHUNK)
                .zip(d)
                .zip(r)
                .map(|((&y, &d), &r)| r + (y + (d * s + 0.0)))
                .collect()
        }
        None => y.par_iter().with_min_len(CHUNK).zip(d).map(|(&y, &d)| y + (d * s + 0.0)).collect(),
    }
}

/// `y + u·v` for `y` `[rows, n]`, `u` `[rows, r]`, `v` `[r, n]`: a rank-r update added row by
/// row (r axpys per row, in parallel), instead of a GEMM with inner dimension r into a zeroed
/// buffer followed by a single-threaded add.
pub fn add_low_rank(y: &[f32], u: &[f32], v: &[f32], r: usize) -> Vec<f32> {
    let n = if r == 0 { 0 } else { v.len() / r };
    assert!(
        n > 0 && v.len() == r * n && y.len() % n == 0 && u.len() == y.len() / n * r,
        "add_low_rank: shapes"
    );
    let mut out: Vec<f32> = y.par_iter().with_min_len(CHUNK).copied().collect();
    out.par_chunks_mut(n).with_min_len(MIN_ROWS).zip(u.par_chunks(r)).for_each(|(o, ur)| {
        for (k, &c) in ur.iter().enumerate() {
            for (x, &b) in o.iter_mut().zip(&v[k * n..(k + 1) * n]) {
                *x += c * b;
            }
        }
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    /// Deterministic values in (−1, 1).
    fn randn(shape: (usize, usize), seed: u64) -> Result<Tensor> {
        let mut s = seed;
        let v: Vec<f32> = (0..shape.0 * shape.1)
            .map(|_| {
                s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
            })
            .collect();
        Tensor::from_vec(v, shape, &Device::Cpu)
    }

    fn data(t: &Tensor) -> Vec<f32> {
        f32_data(t).unwrap()
    }

    /// The parallel sums equal candle's composed ops bit for bit (rows long enough to split
    /// across tasks, and a ragged tail).
    #[test]
    fn add_and_lora_sum_are_bit_identical_to_candle() -> Result<()> {
        let (rows, n) = (37, 1000);
        let (y, d, r) = (randn((rows, n), 1)?, randn((rows, n), 2)?, randn((rows, n), 3)?);
        let s = 2.7f64;
        assert_eq!(add(&data(&y), &data(&d)), data(&(&y + &d)?));
        let want = (&r + (&y + (&d * s)?)?)?;
        assert_eq!(lora_sum(&data(&y), &data(&d), s as f32, Some(&data(&r))), data(&want));
        let want = (&y + (&d * s)?)?;
        assert_eq!(lora_sum(&data(&y), &data(&d), s as f32, None), data(&want));
        Ok(())
    }

    #[test]
    fn add_low_rank_matches_the_matmul() -> Result<()> {
        for (rows, n, r) in [(1, 5, 1), (300, 576, 8), (64, 1536, 16)] {
            let (y, u, v) = (randn((rows, n), 4)?, randn((rows, r), 5)?, randn((r, n), 6)?);
            let got = add_low_rank(&data(&y), &data(&u), &data(&v), r);
            let want = data(&(&y + u.matmul(&v)?)?);
            for (g, w) in got.iter().zip(&want) {
                assert!((g - w).abs() <= 1e-5 * (1.0 + w.abs()), "{rows}×{n} r {r}: {g} vs {w}");
            }
        }
        Ok(())
    }
}
