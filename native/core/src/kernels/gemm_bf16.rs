//! `C = A·B` with bf16 inputs and f32 accumulation, for products with a frozen matrix.
//!
//! `B` (`k × n`, the frozen side) is rounded to bf16 and packed once into [`PackedB`]: panels
//! of [`NR`] columns, each storing, for every pair of rows `(2i, 2i+1)`, the 32 column pairs
//! interleaved (`b[2i][j], b[2i+1][j]`). That is exactly the operand layout of AVX512-BF16's
//! `vdpbf16ps`, which multiplies 32 bf16 pairs and adds both products to 16 f32 lanes. `A`
//! (activations, f32) is rounded to bf16 per call; its rows already hold `k`-pairs side by
//! side, so a broadcast of one 32-bit word feeds a whole row of the tile.
//!
//! CPUs without `avx512_bf16` take a portable kernel over the same layout (same roundings,
//! f32 accumulation; only the order of additions differs). Columns are split over rayon's
//! threads by panel.

use rayon::prelude::*;

/// Columns per panel: two 16-lane f32 accumulators per row.
pub const NR: usize = 32;
/// Rows per register tile of the AVX-512 kernel (8 × 2 accumulators of 16 lanes).
const MR: usize = 8;

/// Which kernel a product runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Isa {
    /// `vdpbf16ps` (AVX512-BF16).
    Avx512Bf16,
    /// Any CPU.
    Portable,
}

impl Isa {
    /// The fastest kernel this CPU runs (checked once per call; the check is a cached load).
    pub fn detect() -> Self {
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx512bf16")
                && std::arch::is_x86_feature_detected!("avx512f")
            {
                return Self::Avx512Bf16;
            }
        }
        Self::Portable
    }
}

/// f32 → bf16 bits, rounding to nearest even (as `torch.Tensor.to(torch.bfloat16)`).
#[inline]
pub fn to_bf16(x: f32) -> u16 {
    let bits = x.to_bits();
    if x.is_nan() {
        return ((bits >> 16) as u16) | 0x0040; // keep it a (quiet) NaN
    }
    let round = 0x7fff + ((bits >> 16) & 1);
    (bits.wrapping_add(round) >> 16) as u16
}

#[inline]
pub fn from_bf16(b: u16) -> f32 {
    f32::from_bits((b as u32) << 16)
}

/// A `k × n` matrix in bf16, packed for the kernels (zero padded to whole panels and an even
/// `k`).
#[derive(Debug, Clone)]
pub struct PackedB {
    k: usize,
    n: usize,
    /// `ceil(k / 2)`.
    pairs: usize,
    data: Vec<u16>,
}

impl PackedB {
    /// The `k × n` matrix whose element `(row, col)` is `at(row, col)`, rounded and packed.
    pub fn from_fn(k: usize, n: usize, at: impl Fn(usize, usize) -> f32 + Sync) -> Self {
        Self::pack(k, n, at)
    }

    /// Packs the `k × n` matrix whose element `(row, col)` is `at(row, col)`.
    fn pack(k: usize, n: usize, at: impl Fn(usize, usize) -> f32 + Sync) -> Self {
        let pairs = k.div_ceil(2);
        let panels = n.div_ceil(NR);
        let panel_len = pairs * 2 * NR;
        let mut data = vec![0u16; panels * panel_len];
        data.par_chunks_mut(panel_len).enumerate().for_each(|(p, panel)| {
            for i in 0..pairs {
                for j in 0..NR.min(n - p * NR) {
                    let col = p * NR + j;
                    for h in 0..2 {
                        let row = 2 * i + h;
                        if row < k {
                            panel[i * 2 * NR + 2 * j + h] = to_bf16(at(row, col));
                        }
                    }
                }
            }
        });
        Self { k, n, pairs, data }
    }

    /// `B = Wᵀ` for a row-major `w: [rows, cols]` (`k = cols`, `n = rows`): the operand of
    /// `x·Wᵀ`.
    pub fn transposed(w: &[f32], rows: usize, cols: usize) -> Self {
        assert_eq!(w.len(), rows * cols);
        Self::pack(cols, rows, |r, c| w[c * cols + r])
    }

    /// `B = W` for a row-major `w: [rows, cols]` (`k = rows`, `n = cols`): the operand of `g·W`.
    pub fn plain(w: &[f32], rows: usize, cols: usize) -> Self {
        assert_eq!(w.len(), rows * cols);
        Self::pack(rows, cols, |r, c| w[r * cols + c])
    }

    /// `(k, n)`.
    pub fn dims(&self) -> (usize, usize) {
        (self.k, self.n)
    }

    /// Element `(row, col)` as f32 (the rounded value the kernel multiplies by).
    pub fn get(&self, row: usize, col: usize) -> f32 {
        let (p, j) = (col / NR, col % NR);
        let i = row / 2;
        from_bf16(self.data[p * self.pairs * 2 * NR + i * 2 * NR + 2 * j + row % 2])
    }

    /// Values per row of a rounded `A` ([`round_row`]): `k` rounded up to whole pairs.
    pub fn row_stride(&self) -> usize {
        2 * self.pairs
    }

    /// Bytes held.
    pub fn bytes(&self) -> usize {
        self.data.len() * 2
    }

    /// Bytes a packed `k × n` matrix holds (whole panels, an even `k`).
    pub fn bytes_for(k: usize, n: usize) -> usize {
        k.div_ceil(2) * 2 * NR * n.div_ceil(NR) * 2
    }
}

/// `a: [m, k]` (f32, row-major) rounded to bf16 rows of `2·pairs` values (zero padded).
fn round_rows(a: &[f32], m: usize, k: usize, pairs: usize) -> Vec<u16> {
    let stride = 2 * pairs;
    let mut out = vec![0u16; m * stride];
    out.par_chunks_mut(stride).zip(a.par_chunks(k)).with_min_len(16).for_each(|(o, row)| round_row(row, o));
    out
}

/// One row of `A` rounded to bf16 into `out` (as [`PackedB::row_stride`] values: `row`, then
/// zeros). Callers that produce `A` row by row round each row while it is still in cache and
/// multiply with [`matmul_rounded_into`].
pub fn round_row(row: &[f32], out: &mut [u16]) {
    assert!(out.len() >= row.len(), "the rounded row holds the whole row");
    for (d, &x) in out.iter_mut().zip(row) {
        *d = to_bf16(x);
    }
    out[row.len()..].fill(0);
}

/// `C[m, n] = A[m, k] · B` with `A` rounded to bf16, on the fastest kernel this CPU has.
pub fn matmul(a: &[f32], m: usize, b: &PackedB) -> Vec<f32> {
    matmul_on(Isa::detect(), a, m, b)
}

/// [`matmul`] into `c` (`m × n`, every value overwritten): a caller that multiplies
/// repeatedly (the LM head, chunk after chunk) keeps one buffer rather than mapping and
/// page-faulting a fresh one per product.
pub fn matmul_into(a: &[f32], m: usize, b: &PackedB, c: &mut [f32]) {
    matmul_into_on(Isa::detect(), a, m, b, c)
}

/// Pairs of `k` per block of the long-`k` path: a panel's block is `KB · 2 · NR` bf16
/// values (32 KiB, L1-sized), and the rows' block of `A` stays in L2 across all panels.
const KB: usize = 256;

/// From this many pairs of `k` on (and a small `C`), [`matmul_on`] splits `k` into blocks
/// rather than running each panel over the whole `k`: a whole panel would no longer fit in
/// L2 and would be streamed from memory once per row tile (the LM head's input gradient,
/// `k` = 262,144 vocabulary entries, 16 MiB per panel).
const LONG_K_PAIRS: usize = 4096;

/// [`matmul`] on a chosen kernel (tests run both). Falls back to [`Isa::Portable`] when the CPU
/// lacks the one asked for.
pub fn matmul_on(isa: Isa, a: &[f32], m: usize, b: &PackedB) -> Vec<f32> {
    let mut c = vec![0f32; m * b.n];
    matmul_into_on(isa, a, m, b, &mut c);
    c
}

/// [`matmul_into`] on a chosen kernel.
pub fn matmul_into_on(isa: Isa, a: &[f32], m: usize, b: &PackedB, c: &mut [f32]) {
    assert_eq!(a.len(), m * b.k, "A is [m, k]");
    if m == 0 || b.n == 0 {
        return;
    }
    let a16 = round_rows(a, m, b.k, b.pairs);
    matmul_rounded_into_on(isa, &a16, m, b, c)
}

/// `C = A·B` for `A` already rounded: `a16` holds `m` rows of [`PackedB::row_stride`] bf16
/// values ([`round_row`]); `c` (`m × n`) is overwritten.
pub fn matmul_rounded_into(a16: &[u16], m: usize, b: &PackedB, c: &mut [f32]) {
    matmul_rounded_into_on(Isa::detect(), a16, m, b, c)
}

/// [`matmul_rounded_into`] on a chosen kernel.
pub fn matmul_rounded_into_on(isa: Isa, a16: &[u16], m: usize, b: &PackedB, c: &mut [f32]) {
    assert_eq!(a16.len(), m * b.row_stride(), "A is [m, row_stride] rounded values");
    assert_eq!(c.len(), m * b.n, "C is [m, n]");
    let isa = if isa == Isa::Avx512Bf16 && Isa::detect() != Isa::Avx512Bf16 { Isa::Portable } else { isa };
    let n = b.n;
    if m == 0 || n == 0 {
        return;
    }
    if b.pairs >= LONG_K_PAIRS && m * n <= 1 << 20 {
        long_k(isa, a16, m, b, c)
    } else {
        let out = SharedOut(c.as_mut_ptr());
        let out = &out;
        (0..n.div_ceil(NR)).into_par_iter().for_each(|p| {
            // SAFETY: each panel writes only its own columns of `c`, which holds `m × n`.
            unsafe { panel_on(isa, a16, m, b, p, 0..b.pairs, out.0, false) }
        });
    }
}

/// The long-`k` product: `k` split into blocks of [`KB`] pairs; each rayon task takes a run of
/// blocks and, block by block, multiplies every panel into its own partial `C` (which stays in
/// cache, as `m · n` is small here); the partial sums are added at the end.
fn long_k(isa: Isa, a16: &[u16], m: usize, b: &PackedB, out: &mut [f32]) {
    let n = b.n;
    let blocks = b.pairs.div_ceil(KB);
    let tasks = rayon::current_num_threads().clamp(1, blocks);
    let partials: Vec<Vec<f32>> = (0..tasks)
        .into_par_iter()
        .map(|t| {
            let mut c = vec![0f32; m * n];
            let (first, last) = (blocks * t / tasks, blocks * (t + 1) / tasks);
            for blk in first..last {
                let pairs = blk * KB..((blk + 1) * KB).min(b.pairs);
                for p in 0..n.div_ceil(NR) {
                    // SAFETY: `c` is this task's own [m, n] buffer.
                    unsafe { panel_on(isa, a16, m, b, p, pairs.clone(), c.as_mut_ptr(), blk > first) }
                }
            }
            c
        })
        .collect();
    let mut iter = partials.into_iter();
    out.copy_from_slice(&iter.next().expect("at least one task"));
    for part in iter {
        for (x, y) in out.iter_mut().zip(&part) {
            *x += y;
        }
    }
}

/// Panel `p` of `B` over the pair range `pairs`, into `c` (`[m, n]`, row-major): written, or
/// added to what `c` holds with `accumulate`.
///
/// # Safety
/// `c` must hold `m × b.n` values, and no other thread may write panel `p`'s columns.
#[allow(clippy::too_many_arguments)]
unsafe fn panel_on(
    isa: Isa,
    a16: &[u16],
    m: usize,
    b: &PackedB,
    p: usize,
    pairs: std::ops::Range<usize>,
    c: *mut f32,
    accumulate: bool,
) {
    let panel_len = b.pairs * 2 * NR;
    let panel = &b.data[p * panel_len..(p + 1) * panel_len];
    let cols = NR.min(b.n - p * NR);
    let stride = 2 * b.pairs;
    let at = Panel { a: a16, m, stride, pairs, panel, c, ldc: b.n, col0: p * NR, cols, accumulate };
    match isa {
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512Bf16 => avx512::panel(&at),
        _ => portable_panel(&at),
    }
}

/// One panel's share of a product: rows `0..m` of `a` (bf16, `stride` values per row), the
/// pair range `pairs` of `k`, columns `col0 .. col0 + cols` of `c`.
struct Panel<'a> {
    a: &'a [u16],
    m: usize,
    stride: usize,
    pairs: std::ops::Range<usize>,
    panel: &'a [u16],
    c: *mut f32,
    ldc: usize,
    col0: usize,
    cols: usize,
    accumulate: bool,
}

/// The output pointer, shared by the panel tasks (each writes disjoint columns).
struct SharedOut(*mut f32);
unsafe impl Sync for SharedOut {}

/// One panel on any CPU: `c[r, col0 + j] (+)= Σ_k a[r, k]·b[k, col0 + j]`.
unsafe fn portable_panel(at: &Panel) {
    for r in 0..at.m {
        let row = &at.a[r * at.stride..(r + 1) * at.stride];
        let mut acc = [0f32; NR];
        if at.accumulate {
            for (j, v) in acc.iter_mut().enumerate().take(at.cols) {
                *v = *at.c.add(r * at.ldc + at.col0 + j);
            }
        }
        for i in at.pairs.clone() {
            let (a0, a1) = (from_bf16(row[2 * i]), from_bf16(row[2 * i + 1]));
            let bp = &at.panel[i * 2 * NR..(i + 1) * 2 * NR];
            for j in 0..NR {
                acc[j] += a0 * from_bf16(bp[2 * j]) + a1 * from_bf16(bp[2 * j + 1]);
            }
        }
        for (j, &v) in acc.iter().enumerate().take(at.cols) {
            *at.c.add(r * at.ldc + at.col0 + j) = v;
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use super::{Panel, MR, NR};
    use std::arch::x86_64::*;

    /// One panel: tiles of [`MR`] rows, a tail tile for the rest.
    #[target_feature(enable = "avx512f,avx512bf16")]
    pub(super) unsafe fn panel(at: &Panel) {
        let full = |h: usize| -> __mmask16 {
            let left = at.cols.saturating_sub(16 * h).min(16);
            ((1u32 << left) - 1) as __mmask16
        };
        let masks = [full(0), full(1)];
        let (p0, len) = (at.pairs.start, at.pairs.len());
        let b = at.panel.as_ptr().add(p0 * 2 * NR);
        let tile_at = |r: usize| (at.a.as_ptr().add(r * at.stride + 2 * p0), at.c.add(r * at.ldc + at.col0));
        let mut r = 0;
        while r + MR <= at.m {
            let (ap, cp) = tile_at(r);
            tile::<MR>(ap, at.stride, len, b, cp, at.ldc, masks, at.accumulate);
            r += MR;
        }
        let (ap, cp) = tile_at(r);
        let acc = at.accumulate;
        match at.m - r {
            0 => {}
            1 => tile::<1>(ap, at.stride, len, b, cp, at.ldc, masks, acc),
            2 => tile::<2>(ap, at.stride, len, b, cp, at.ldc, masks, acc),
            3 => tile::<3>(ap, at.stride, len, b, cp, at.ldc, masks, acc),
            4 => tile::<4>(ap, at.stride, len, b, cp, at.ldc, masks, acc),
            5 => tile::<5>(ap, at.stride, len, b, cp, at.ldc, masks, acc),
            6 => tile::<6>(ap, at.stride, len, b, cp, at.ldc, masks, acc),
            _ => tile::<7>(ap, at.stride, len, b, cp, at.ldc, masks, acc),
        }
    }

    /// `R × 32` outputs held in `2R` registers over `pairs` pairs of `k`, stored into `c` or
    /// (with `accumulate`) added to it.
    #[allow(clippy::too_many_arguments)]
    #[inline]
    #[target_feature(enable = "avx512f,avx512bf16")]
    unsafe fn tile<const R: usize>(
        a: *const u16,
        stride: usize,
        pairs: usize,
        b: *const u16,
        c: *mut f32,
        ldc: usize,
        masks: [__mmask16; 2],
        accumulate: bool,
    ) {
        let mut acc = [[_mm512_setzero_ps(); 2]; R];
        if accumulate {
            for (row, acc) in acc.iter_mut().enumerate() {
                let out = c.add(row * ldc);
                acc[0] = _mm512_maskz_loadu_ps(masks[0], out);
                acc[1] = _mm512_maskz_loadu_ps(masks[1], out.add(16));
            }
        }
        for i in 0..pairs {
            let b0: __m512bh = std::mem::transmute(_mm512_loadu_si512(b.add(i * 2 * NR) as *const _));
            let b1: __m512bh = std::mem::transmute(_mm512_loadu_si512(b.add(i * 2 * NR + NR) as *const _));
            for (row, acc) in acc.iter_mut().enumerate() {
                let pair = (a.add(row * stride + 2 * i) as *const i32).read_unaligned();
                let av: __m512bh = std::mem::transmute(_mm512_set1_epi32(pair));
                acc[0] = _mm512_dpbf16_ps(acc[0], av, b0);
                acc[1] = _mm512_dpbf16_ps(acc[1], av, b1);
            }
        }
        for (row, acc) in acc.iter().enumerate() {
            let out = c.add(row * ldc);
            _mm512_mask_storeu_ps(out, masks[0], acc[0]);
            _mm512_mask_storeu_ps(out.add(16), masks[1], acc[1]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::test_values;

    /// `A·B` in f64 over the bf16-rounded inputs: what both kernels compute up to f32
    /// accumulation order.
    fn reference(a: &[f32], m: usize, k: usize, b: &[f32], n: usize) -> Vec<f64> {
        let r = |x: f32| from_bf16(to_bf16(x)) as f64;
        let mut c = vec![0f64; m * n];
        for i in 0..m {
            for j in 0..n {
                c[i * n + j] = (0..k).map(|t| r(a[i * k + t]) * r(b[t * n + j])).sum();
            }
        }
        c
    }

    #[test]
    fn bf16_rounding_is_nearest_even() {
        assert_eq!(to_bf16(1.0), 0x3f80);
        // 1 + 2^-8 lies halfway between 1 and 1 + 2^-7: ties go to the even mantissa (1.0).
        assert_eq!(to_bf16(1.0 + 1.0 / 256.0), 0x3f80);
        assert_eq!(to_bf16(1.0 + 3.0 / 256.0), 0x3f82);
        assert_eq!(to_bf16(-2.5), 0xc020);
        assert!(from_bf16(to_bf16(f32::NAN)).is_nan());
        assert_eq!(from_bf16(to_bf16(f32::INFINITY)), f32::INFINITY);
    }

    #[test]
    fn bf16_gemm_matches_the_rounded_product_on_both_kernels() {
        // Shapes with tails in every direction: m not a multiple of 8, n not of 32, odd k.
        // The last two take the long-`k` path (k split into blocks, partial sums per task),
        // one with a partial last block.
        let long = 2 * LONG_K_PAIRS;
        for &(m, k, n) in &[
            (1, 1, 1),
            (13, 37, 45),
            (8, 64, 32),
            (21, 130, 70),
            (3, 576, 97),
            (9, long, 33),
            (2, long + 2 * KB + 7, 5),
        ] {
            let a = test_values(m as u64 * 7 + k as u64, m * k, 1.0);
            let b = test_values(n as u64 * 3 + 1, k * n, 1.0);
            let want = reference(&a, m, k, &b, n);
            let packed = PackedB::plain(&b, k, n);
            // The same matrix given as its transpose packs to the same operand.
            let bt: Vec<f32> = (0..n * k).map(|i| b[(i % k) * n + i / k]).collect();
            let packed_t = PackedB::transposed(&bt, n, k);
            assert_eq!(packed.data, packed_t.data);
            assert_eq!(packed.bytes(), PackedB::bytes_for(k, n));
            assert_eq!(packed.get(k - 1, n - 1), from_bf16(to_bf16(b[k * n - 1])));
            // A rounded row by row, as the LM-head loss hands it over.
            let mut a16 = vec![u16::MAX; m * packed.row_stride()];
            for (row, out) in a.chunks(k).zip(a16.chunks_mut(packed.row_stride())) {
                round_row(row, out);
            }
            for isa in [Isa::Portable, Isa::Avx512Bf16] {
                // Into buffers holding garbage: every value must be overwritten.
                let mut into = vec![f32::NAN; m * n];
                matmul_into_on(isa, &a, m, &packed, &mut into);
                let mut rounded = vec![f32::NAN; m * n];
                matmul_rounded_into_on(isa, &a16, m, &packed, &mut rounded);
                for got in [matmul_on(isa, &a, m, &packed), into, rounded] {
                    for (g, w) in got.iter().zip(&want) {
                        // f32 accumulation of k exact products: error ≲ k·2⁻²⁴·Σ|terms|.
                        let tol = 1e-6 * (k as f64).sqrt() * 4.0 + 1e-6;
                        assert!((*g as f64 - w).abs() <= tol, "{isa:?} {m}x{k}x{n}: {g} vs {w}");
                    }
                }
            }
        }
    }

    #[test]
    fn bf16_gemm_reports_which_kernel_the_cpu_runs() {
        // Visible in the test log: whether the AVX512-BF16 path above ran natively or fell back.
        eprintln!("bf16 GEMM kernel on this CPU: {:?}", Isa::detect());
    }
}
