//! Matmuls against a [`QuantMatrix`] that dequantise tile by tile.
//!
//! - [`matmul_t`]: `y = x · Wᵀ` (a linear layer's forward). Many rows of `x` (training, a
//!   prompt): rayon over tiles of `W`'s rows; each task dequantises its tile into a reused
//!   per-thread buffer and runs one gemm `x · tileᵀ` into its columns of `y`. Few rows
//!   (decoding): each output is a dot product of `x` with one dequantised row, rayon over
//!   rows, so all cores stream the compact matrix once per token.
//! - [`matmul`]: `gx = g · W` (the input gradient). rayon over slabs of `W`'s columns (whole
//!   blocks); each task walks the rows in tiles and accumulates `g[:, tile] · W[tile, slab]`
//!   into its columns of `gx`.
//!
//! Tiles are a few hundred KiB so the dequantised values are still in cache when gemm reads
//! them; memory beyond the inputs and outputs is one tile per thread.

use rayon::prelude::*;

use super::QuantMatrix;
use crate::gguf::reader::GgmlType;

/// Row counts up to this use the dot-product path.
const SMALL_M: usize = 4;

/// A raw pointer that rayon tasks may share because each writes disjoint elements.
#[derive(Clone, Copy)]
struct SharedMut(*mut f32);
unsafe impl Send for SharedMut {}
unsafe impl Sync for SharedMut {}

/// `Σ a[i]·b[i]` with sixteen independent accumulators over fixed-size chunks, so it
/// vectorises without fast-math (AVX2 when [`rows_dot`] runs its AVX2 build).
#[inline(always)]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0f32; 16];
    let (ac, bc) = (a.chunks_exact(16), b.chunks_exact(16));
    let tail: f32 = ac.remainder().iter().zip(bc.remainder()).map(|(x, y)| x * y).sum();
    for (x, y) in ac.zip(bc) {
        let x: &[f32; 16] = x.try_into().unwrap();
        let y: &[f32; 16] = y.try_into().unwrap();
        for k in 0..16 {
            acc[k] += x[k] * y[k];
        }
    }
    acc.iter().sum::<f32>() + tail
}

/// `Σ row[i]·x[i]` for one Q8_0 row (34-byte blocks: f16 scale, 32 × i8).
#[inline(always)]
fn dot_q8_0(row: &[u8], x: &[f32]) -> f32 {
    let mut total = 0f32;
    for (b, xs) in row.chunks_exact(34).zip(x.chunks_exact(32)) {
        let d = half::f16::from_bits(u16::from_le_bytes([b[0], b[1]])).to_f32();
        let q: &[u8; 32] = b[2..].try_into().unwrap();
        let xs: &[f32; 32] = xs.try_into().unwrap();
        let mut acc = [0f32; 16];
        for k in 0..16 {
            acc[k] += (q[k] as i8) as f32 * xs[k];
            acc[k] += (q[k + 16] as i8) as f32 * xs[k + 16];
        }
        total += d * acc.iter().sum::<f32>();
    }
    total
}

/// `out[i·m + j] = W[r0 + i] · x[j]` for the rows of one decode chunk.
#[inline(always)]
fn rows_dot_body(w: &QuantMatrix, r0: usize, out: &mut [f32], x: &[f32], m: usize, buf: &mut [f32]) {
    let cols = w.dims().1;
    for (i, o) in out.chunks_exact_mut(m).enumerate() {
        let r = r0 + i;
        if w.ggml_type() == GgmlType::Q8_0 {
            // Straight off the blocks: no buffer round trip.
            for (j, v) in o.iter_mut().enumerate() {
                *v = dot_q8_0(w.row_data(r), &x[j * cols..(j + 1) * cols]);
            }
            continue;
        }
        w.dequantize_rows(r, buf);
        for (j, v) in o.iter_mut().enumerate() {
            *v = dot(buf, &x[j * cols..(j + 1) * cols]);
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,f16c")]
unsafe fn rows_dot_avx2(w: &QuantMatrix, r0: usize, out: &mut [f32], x: &[f32], m: usize, buf: &mut [f32]) {
    rows_dot_body(w, r0, out, x, m, buf)
}

/// [`rows_dot_body`], built for AVX2 when the CPU has it (the portable build is SSE2 only).
fn rows_dot(w: &QuantMatrix, r0: usize, out: &mut [f32], x: &[f32], m: usize, buf: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("f16c") {
        // SAFETY: the features were just detected.
        return unsafe { rows_dot_avx2(w, r0, out, x, m, buf) };
    }
    rows_dot_body(w, r0, out, x, m, buf)
}

/// Products smaller than this many multiply-adds run on the calling thread: below it, rayon's
/// dispatch costs more than it saves (tiny test models, LoRA-sized layers).
const PARALLEL_MACS: usize = 1 << 21;

/// Runs `f(buffer, tile)` for every tile, on rayon's pool when `parallel`, each thread with
/// its own buffer of `buf_len` floats.
fn for_tiles(tiles: usize, parallel: bool, buf_len: usize, f: impl Fn(&mut Vec<f32>, usize) + Sync) {
    if parallel {
        (0..tiles).into_par_iter().for_each_init(|| vec![0f32; buf_len], |buf, t| f(buf, t));
    } else {
        let mut buf = vec![0f32; buf_len];
        (0..tiles).for_each(|t| f(&mut buf, t));
    }
}

/// Rows of `W` per forward tile: about 256 KiB of f32, between 16 and 256 rows.
fn tile_rows(cols: usize) -> usize {
    ((65536 / cols.max(1)).clamp(16, 256) / 8) * 8
}

/// `y[m, rows] = x[m, cols] · Wᵀ`.
pub fn matmul_t(w: &QuantMatrix, x: &[f32], m: usize) -> Vec<f32> {
    let (rows, cols) = w.dims();
    assert_eq!(x.len(), m * cols, "x must be [m, {cols}]");
    let mut y = vec![0f32; m * rows];
    if m == 0 || rows == 0 {
        return y;
    }
    if m <= SMALL_M {
        // yᵀ [rows, m], one row of W at a time; transposed back below when m > 1.
        let chunk = 64;
        let mut yt = vec![0f32; rows * m];
        if m * rows * cols >= PARALLEL_MACS {
            yt.par_chunks_mut(chunk * m)
                .enumerate()
                .for_each_init(|| vec![0f32; cols], |buf, (c, out)| rows_dot(w, c * chunk, out, x, m, buf));
        } else {
            let mut buf = vec![0f32; cols];
            for (c, out) in yt.chunks_mut(chunk * m).enumerate() {
                rows_dot(w, c * chunk, out, x, m, &mut buf);
            }
        }
        for r in 0..rows {
            for j in 0..m {
                y[j * rows + r] = yt[r * m + j];
            }
        }
        return y;
    }
    let t = tile_rows(cols);
    let out = SharedMut(y.as_mut_ptr());
    for_tiles(rows.div_ceil(t), m * rows * cols >= PARALLEL_MACS, t * cols, |buf, tile| {
        let r0 = tile * t;
        let n = t.min(rows - r0);
        w.dequantize_rows(r0, &mut buf[..n * cols]);
        let out = out;
        // SAFETY: this task writes only columns r0..r0+n of y, which is [m, rows].
        unsafe {
            gemm::gemm(
                m,
                n,
                cols,
                out.0.add(r0),
                1,
                rows as isize,
                false,
                x.as_ptr(),
                1,
                cols as isize,
                buf.as_ptr(),
                cols as isize,
                1,
                0.0,
                1.0,
                false,
                false,
                false,
                gemm::Parallelism::None,
            )
        }
    });
    y
}

/// `gx[m, cols] = g[m, rows] · W`.
pub fn matmul(w: &QuantMatrix, g: &[f32], m: usize) -> Vec<f32> {
    let (rows, cols) = w.dims();
    assert_eq!(g.len(), m * rows, "g must be [m, {rows}]");
    let mut gx = vec![0f32; m * cols];
    if m == 0 || rows == 0 || cols == 0 {
        return gx;
    }
    let block = w.block();
    // Slabs of whole blocks, at least 64 columns wide, enough of them to keep every thread busy.
    let threads = rayon::current_num_threads();
    let blocks = cols / block;
    let per_slab = (blocks / (4 * threads)).max(64usize.div_ceil(block)).min(512usize.div_ceil(block)).max(1);
    let width = per_slab * block;
    let t = 128;
    let out = SharedMut(gx.as_mut_ptr());
    for_tiles(cols.div_ceil(width), m * rows * cols >= PARALLEL_MACS, t * width, |buf, slab| {
        let c0 = slab * width;
        let wd = width.min(cols - c0);
        let out = out;
        for (k, r0) in (0..rows).step_by(t).enumerate() {
            let n = t.min(rows - r0);
            w.dequantize_tile(r0, c0, wd, &mut buf[..n * wd]);
            // SAFETY: this task writes only columns c0..c0+wd of gx, which is [m, cols].
            unsafe {
                gemm::gemm(
                    m,
                    wd,
                    n,
                    out.0.add(c0),
                    1,
                    cols as isize,
                    k > 0,
                    g.as_ptr().add(r0),
                    1,
                    rows as isize,
                    buf.as_ptr(),
                    1,
                    wd as isize,
                    1.0,
                    1.0,
                    false,
                    false,
                    false,
                    gemm::Parallelism::None,
                )
            }
        }
    });
    gx
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use super::*;

    /// f64 reference products on the dequantised matrix.
    fn reference(w: &[f32], rows: usize, cols: usize, x: &[f32], m: usize, transpose: bool) -> Vec<f64> {
        if transpose {
            let mut y = vec![0f64; m * rows];
            for i in 0..m {
                for r in 0..rows {
                    y[i * rows + r] =
                        (0..cols).map(|k| x[i * cols + k] as f64 * w[r * cols + k] as f64).sum();
                }
            }
            y
        } else {
            let mut y = vec![0f64; m * cols];
            for i in 0..m {
                for c in 0..cols {
                    y[i * cols + c] =
                        (0..rows).map(|r| x[i * rows + r] as f64 * w[r * cols + c] as f64).sum();
                }
            }
            y
        }
    }

    /// Largest |got - want| relative to the largest |want|.
    fn rel_err(got: &[f32], want: &[f64]) -> f64 {
        let scale = want.iter().fold(0f64, |a, v| a.max(v.abs())).max(1e-30);
        got.iter().zip(want).fold(0f64, |a, (g, w)| a.max((*g as f64 - w).abs())) / scale
    }

    #[test]
    fn quant_matmuls_match_the_dequantised_product_for_every_type() {
        // Tolerance: f32 accumulation over ≤ 768 terms against an f64 reference, 1e-5 of the
        // largest output (measured ≤ 2e-6).
        for (i, t) in TYPES.into_iter().enumerate() {
            let (rows, cols) = (200, 768);
            let w = random_matrix(t, rows, cols, i as u64 + 1);
            let wf = w.dequantize();
            let mut rng = Rng(99 + i as u64);
            for m in [1, 3, 37] {
                let x: Vec<f32> = (0..m * cols).map(|_| rng.uniform()).collect();
                let y = matmul_t(&w, &x, m);
                let e = rel_err(&y, &reference(&wf, rows, cols, &x, m, true));
                assert!(e < 1e-5, "{t} forward m={m}: rel err {e:.2e}");
                let g: Vec<f32> = (0..m * rows).map(|_| rng.uniform()).collect();
                let gx = matmul(&w, &g, m);
                let e = rel_err(&gx, &reference(&wf, rows, cols, &g, m, false));
                assert!(e < 1e-5, "{t} input-gradient m={m}: rel err {e:.2e}");
            }
        }
    }

    #[test]
    fn quant_dot_handles_tails() {
        let a: Vec<f32> = (0..13).map(|i| i as f32).collect();
        assert_eq!(dot(&a, &a), (0..13).map(|i| (i * i) as f32).sum::<f32>());
    }
}
