//! The f32 CPU kernels of the fused causal attention ([`super::attention`]).
//!
//! Layouts are the projections' own: `q` `[b, s, heads·d]`, `k`/`v` `[b, t, kv_heads·d]`,
//! the output `[b, s, heads·d]` (what `o_proj` reads), so nothing is transposed or copied
//! to feed the op. Rope is applied inside (to small per-head buffers), the scores are built
//! one block of query rows at a time over only the keys that block can see, and the forward
//! keeps one log-sum-exp per query row. The backward recomputes each block's probabilities
//! from it (flash-attention style). Products go through `gemm` (single-threaded inside a
//! task); tasks are rayon's: (batch, query head) forward, (batch, kv head) backward, since a
//! kv head's gradient sums over its group of query heads.

use gemm::{gemm, Parallelism};

use crate::kernels::exp;
use rayon::prelude::*;

/// Query rows per block: the score block is `QUERY_BLOCK × (visible keys)`.
const QUERY_BLOCK: usize = 64;

/// The shape and masking of one attention call.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Dims {
    pub batch: usize,
    /// Query rows per sequence.
    pub s: usize,
    /// Key rows per sequence (`offset + s`).
    pub t: usize,
    /// Position of the first query (keys are at `0..t`).
    pub offset: usize,
    pub heads: usize,
    pub kv_heads: usize,
    pub head_dim: usize,
    /// Keys further back than this are masked (`offset + i − j < window`).
    pub window: Option<usize>,
    pub scale: f32,
}

impl Dims {
    /// Keys visible to query row `i`: `lo..hi`.
    fn keys(&self, i: usize) -> (usize, usize) {
        let hi = (self.offset + i + 1).min(self.t);
        let lo = self.window.map_or(0, |w| (self.offset + i + 1).saturating_sub(w));
        (lo, hi)
    }
}

/// A row-major view of a strided f32 matrix (`rs` elements between rows, unit column stride).
#[derive(Clone, Copy)]
struct View {
    ptr: *const f32,
    rs: isize,
}

// SAFETY: views point into slices that outlive the parallel loops and are only read.
unsafe impl Send for View {}
unsafe impl Sync for View {}

impl View {
    fn of(data: &[f32], start: usize, rs: usize) -> Self {
        Self { ptr: data[start..].as_ptr(), rs: rs as isize }
    }
    fn row(&self, r: usize) -> *const f32 {
        // SAFETY: callers index rows inside the matrix the view was made for.
        unsafe { self.ptr.offset(r as isize * self.rs) }
    }
}

/// `dst[m×n] (= or +=) a·b` with `a` `m×k` and `b` given by element strides.
#[allow(clippy::too_many_arguments)]
fn matmul(
    dst: &mut [f32],
    accumulate: bool,
    (m, n, k): (usize, usize, usize),
    a: *const f32,
    (a_rs, a_cs): (isize, isize),
    b: *const f32,
    (b_rs, b_cs): (isize, isize),
    beta: f32,
) {
    debug_assert!(dst.len() >= m * n);
    if m == 0 || n == 0 {
        return;
    }
    // SAFETY: `dst` holds m×n; `a` and `b` address m×k and k×n elements with the given strides
    // (every caller builds them from in-bounds views).
    unsafe {
        gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            1,
            n as isize,
            accumulate,
            a,
            a_cs,
            a_rs,
            b,
            b_cs,
            b_rs,
            if accumulate { 1.0 } else { 0.0 },
            beta,
            false,
            false,
            false,
            Parallelism::None,
        )
    }
}

/// Rotary embedding ("rotate half") of `rows` rows of `src` (row stride `rs`) into `dst`
/// `[rows, d]`; row `r` is at position `first + r`. `inverse` applies the transpose (backward).
fn rope_rows(
    dst: &mut [f32],
    src: View,
    rows: usize,
    first: usize,
    (cos, sin): (&[f32], &[f32]),
    d: usize,
    inverse: bool,
) {
    let half = d / 2;
    for r in 0..rows {
        // SAFETY: `src` addresses `rows` rows of at least `d` elements.
        let x = unsafe { std::slice::from_raw_parts(src.row(r), d) };
        let p = (first + r) * d;
        let (c, s) = (&cos[p..p + d], &sin[p..p + d]);
        // Halves as separate slices and the direction outside the loop, so it vectorises.
        let (y1, y2) = dst[r * d..(r + 1) * d].split_at_mut(half);
        let ((x1, x2), (c1, c2), (s1, s2)) = (x.split_at(half), c.split_at(half), s.split_at(half));
        if inverse {
            for j in 0..half {
                y1[j] = x1[j] * c1[j] + x2[j] * s2[j];
                y2[j] = x2[j] * c2[j] - x1[j] * s1[j];
            }
        } else {
            for j in 0..half {
                y1[j] = x1[j] * c1[j] - x2[j] * s1[j];
                y2[j] = x2[j] * c2[j] + x1[j] * s2[j];
            }
        }
    }
}

/// Scores of query rows `i0..i0 + nb` over keys `klo..klo + nk` (`scale · q·k`, masked
/// entries −∞), `[nb, nk]`.
fn scores(dims: &Dims, qr: &[f32], kr: &[f32], i0: usize, nb: usize, klo: usize, nk: usize, out: &mut [f32]) {
    let d = dims.head_dim;
    matmul(
        out,
        false,
        (nb, nk, d),
        qr[i0 * d..].as_ptr(),
        (d as isize, 1),
        kr[klo * d..].as_ptr(),
        (1, d as isize),
        dims.scale,
    );
    for r in 0..nb {
        let (lo, hi) = dims.keys(i0 + r);
        let row = &mut out[r * nk..(r + 1) * nk];
        for (c, v) in row.iter_mut().enumerate() {
            let j = klo + c;
            if j < lo || j >= hi {
                *v = f32::NEG_INFINITY;
            }
        }
    }
}

/// A score row split into its masked entries (`−∞`, before `lo` and from `hi` on, both
/// ends as one pair of slices) and the visible ones `lo..hi`, which alone go through `exp`.
fn split_visible(row: &mut [f32], lo: usize, hi: usize) -> ((&mut [f32], &mut [f32]), &mut [f32]) {
    let (head, rest) = row.split_at_mut(lo);
    let (seen, tail) = rest.split_at_mut(hi - lo);
    ((head, tail), seen)
}

/// Masked probabilities are exact zeros (`exp(−∞)`).
fn zero((head, tail): (&mut [f32], &mut [f32])) {
    head.fill(0.0);
    tail.fill(0.0);
}

/// The key range a block of query rows sees: from the first row's lowest key to the last
/// row's highest.
fn block_keys(dims: &Dims, i0: usize, nb: usize) -> (usize, usize) {
    (dims.keys(i0).0, dims.keys(i0 + nb - 1).1)
}

/// Forward: returns the output `[b, s, heads·d]` and the log-sum-exp of each query row,
/// `[b, heads, s]`.
pub fn forward(
    dims: &Dims,
    q: &[f32],
    k: &[f32],
    v: &[f32],
    cos: &[f32],
    sin: &[f32],
) -> (Vec<f32>, Vec<f32>) {
    let Dims { batch, s, t, offset, heads, kv_heads, head_dim: d, .. } = *dims;
    let groups = heads / kv_heads;
    let (qd, kd) = (heads * d, kv_heads * d);
    let per_head: Vec<(Vec<f32>, Vec<f32>)> = (0..batch * heads)
        .into_par_iter()
        .map(|task| {
            let (bi, h) = (task / heads, task % heads);
            let g = h / groups;
            let mut qr = vec![0f32; s * d];
            let mut kr = vec![0f32; t * d];
            rope_rows(&mut qr, View::of(q, bi * s * qd + h * d, qd), s, offset, (cos, sin), d, false);
            rope_rows(&mut kr, View::of(k, bi * t * kd + g * d, kd), t, 0, (cos, sin), d, false);
            let vv = View::of(v, bi * t * kd + g * d, kd);
            let mut out = vec![0f32; s * d];
            let mut lse = vec![0f32; s];
            let mut p = Vec::new();
            for i0 in (0..s).step_by(QUERY_BLOCK) {
                let nb = QUERY_BLOCK.min(s - i0);
                let (klo, khi) = block_keys(dims, i0, nb);
                let nk = khi - klo;
                p.resize(nb * nk, 0.0);
                scores(dims, &qr, &kr, i0, nb, klo, nk, &mut p);
                for r in 0..nb {
                    let row = &mut p[r * nk..(r + 1) * nk];
                    let (lo, hi) = dims.keys(i0 + r);
                    let (masked, seen) = split_visible(row, lo - klo, hi - klo);
                    let max = seen.iter().fold(f32::NEG_INFINITY, |m, &x| m.max(x));
                    let sum = exp::exp_shift_sum(seen, max);
                    let inv = 1.0 / sum;
                    for x in seen.iter_mut() {
                        *x *= inv;
                    }
                    zero(masked);
                    lse[i0 + r] = max + sum.ln();
                }
                matmul(
                    &mut out[i0 * d..],
                    false,
                    (nb, d, nk),
                    p.as_ptr(),
                    (nk as isize, 1),
                    vv.row(klo),
                    (kd as isize, 1),
                    1.0,
                );
            }
            (out, lse)
        })
        .collect();
    let mut out = vec![0f32; batch * s * qd];
    let mut lse = Vec::with_capacity(batch * heads * s);
    for (task, (o, l)) in per_head.into_iter().enumerate() {
        let (bi, h) = (task / heads, task % heads);
        for i in 0..s {
            let at = (bi * s + i) * qd + h * d;
            out[at..at + d].copy_from_slice(&o[i * d..(i + 1) * d]);
        }
        lse.extend_from_slice(&l);
    }
    (out, lse)
}

/// The inputs of [`backward`]: the forward's inputs, its output `o` and log-sum-exps, and the
/// output's gradient `g`.
pub struct Saved<'a> {
    pub q: &'a [f32],
    pub k: &'a [f32],
    pub v: &'a [f32],
    pub o: &'a [f32],
    pub lse: &'a [f32],
    pub cos: &'a [f32],
    pub sin: &'a [f32],
}

/// Backward: `(∂q, ∂k, ∂v)` in the inputs' layouts.
pub fn backward(dims: &Dims, x: &Saved, g: &[f32]) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let Dims { batch, s, t, offset, heads, kv_heads, head_dim: d, scale, .. } = *dims;
    let groups = heads / kv_heads;
    let (qd, kd) = (heads * d, kv_heads * d);
    let tables = (x.cos, x.sin);
    type Grads = (Vec<f32>, Vec<f32>, Vec<f32>);
    let per_kv: Vec<Grads> = (0..batch * kv_heads)
        .into_par_iter()
        .map(|task| {
            let (bi, kvh) = (task / kv_heads, task % kv_heads);
            let mut kr = vec![0f32; t * d];
            rope_rows(&mut kr, View::of(x.k, bi * t * kd + kvh * d, kd), t, 0, tables, d, false);
            let vv = View::of(x.v, bi * t * kd + kvh * d, kd);
            let mut dkr = vec![0f32; t * d];
            let mut dv = vec![0f32; t * d];
            let mut dq = vec![0f32; groups * s * d];
            let mut qr = vec![0f32; s * d];
            let mut dqr = vec![0f32; s * d];
            let mut delta = vec![0f32; s];
            let (mut p, mut dp) = (Vec::new(), Vec::new());
            for h in kvh * groups..(kvh + 1) * groups {
                let at = bi * s * qd + h * d;
                rope_rows(&mut qr, View::of(x.q, at, qd), s, offset, tables, d, false);
                let (ov, gv) = (View::of(x.o, at, qd), View::of(g, at, qd));
                let lse = &x.lse[(bi * heads + h) * s..(bi * heads + h + 1) * s];
                for (i, dl) in delta.iter_mut().enumerate() {
                    // SAFETY: rows of `d` elements inside `o` and `g`.
                    let (orow, grow) = unsafe {
                        (std::slice::from_raw_parts(ov.row(i), d), std::slice::from_raw_parts(gv.row(i), d))
                    };
                    *dl = orow.iter().zip(grow).map(|(a, b)| a * b).sum();
                }
                for i0 in (0..s).step_by(QUERY_BLOCK) {
                    let nb = QUERY_BLOCK.min(s - i0);
                    let (klo, khi) = block_keys(dims, i0, nb);
                    let nk = khi - klo;
                    p.resize(nb * nk, 0.0);
                    dp.resize(nb * nk, 0.0);
                    scores(dims, &qr, &kr, i0, nb, klo, nk, &mut p);
                    for r in 0..nb {
                        let (lo, hi) = dims.keys(i0 + r);
                        let (masked, seen) = split_visible(&mut p[r * nk..(r + 1) * nk], lo - klo, hi - klo);
                        exp::exp_shift(seen, lse[i0 + r]);
                        zero(masked);
                    }
                    // ∂v[keys] += Pᵀ·∂o[rows]
                    matmul(
                        &mut dv[klo * d..],
                        true,
                        (nk, d, nb),
                        p.as_ptr(),
                        (1, nk as isize),
                        gv.row(i0),
                        (qd as isize, 1),
                        1.0,
                    );
                    // ∂P = ∂o[rows]·v[keys]ᵀ
                    matmul(
                        &mut dp,
                        false,
                        (nb, nk, d),
                        gv.row(i0),
                        (qd as isize, 1),
                        vv.row(klo),
                        (1, kd as isize),
                        1.0,
                    );
                    // ∂S = P ⊙ (∂P − Δ), with the score scale folded in.
                    for r in 0..nb {
                        let dl = delta[i0 + r];
                        let (pr, dpr) = (&p[r * nk..(r + 1) * nk], &mut dp[r * nk..(r + 1) * nk]);
                        for (o, &pv) in dpr.iter_mut().zip(pr) {
                            *o = pv * (*o - dl) * scale;
                        }
                    }
                    // ∂q_rot[rows] = ∂S·k_rot[keys];  ∂k_rot[keys] += ∂Sᵀ·q_rot[rows]
                    matmul(
                        &mut dqr[i0 * d..],
                        false,
                        (nb, d, nk),
                        dp.as_ptr(),
                        (nk as isize, 1),
                        kr[klo * d..].as_ptr(),
                        (d as isize, 1),
                        1.0,
                    );
                    matmul(
                        &mut dkr[klo * d..],
                        true,
                        (nk, d, nb),
                        dp.as_ptr(),
                        (1, nk as isize),
                        qr[i0 * d..].as_ptr(),
                        (d as isize, 1),
                        1.0,
                    );
                }
                let jj = h - kvh * groups;
                rope_rows(
                    &mut dq[jj * s * d..(jj + 1) * s * d],
                    View::of(&dqr, 0, d),
                    s,
                    offset,
                    tables,
                    d,
                    true,
                );
            }
            let mut dk = vec![0f32; t * d];
            rope_rows(&mut dk, View::of(&dkr, 0, d), t, 0, tables, d, true);
            (dq, dk, dv)
        })
        .collect();
    let mut dq = vec![0f32; batch * s * qd];
    let mut dk = vec![0f32; batch * t * kd];
    let mut dv = vec![0f32; batch * t * kd];
    for (task, (q_, k_, v_)) in per_kv.into_iter().enumerate() {
        let (bi, kvh) = (task / kv_heads, task % kv_heads);
        for jj in 0..groups {
            let h = kvh * groups + jj;
            for i in 0..s {
                let at = (bi * s + i) * qd + h * d;
                dq[at..at + d].copy_from_slice(&q_[(jj * s + i) * d..(jj * s + i + 1) * d]);
            }
        }
        for j in 0..t {
            let at = (bi * t + j) * kd + kvh * d;
            dk[at..at + d].copy_from_slice(&k_[j * d..(j + 1) * d]);
            dv[at..at + d].copy_from_slice(&v_[j * d..(j + 1) * d]);
        }
    }
    (dq, dk, dv)
}
