//! Decode-time products `y = x·Wᵀ` of a stored matrix with a few activation rows, done the
//! way llama.cpp does them: the activation row is quantised once per product to 8-bit blocks
//! ([`act`]: Q8_0-style for Q4_0/Q5_0/Q8_0 weights, Q8_K-style for Q4_K/Q5_K/Q6_K) and every
//! output is an integer dot product of the stored quants with those, scaled per block. Nothing
//! is dequantised, so a token reads each matrix once in its compact form.
//!
//! Generation only: 8-bit activations change the products by about 0.5 % of a block's range
//! (what llama.cpp accepts), so training and evaluation keep the exact path in
//! [`super::matmul`]. The kernel is picked once per product from what the CPU has (detected
//! at run time): AVX-512 VNNI `vpdpbusd` for 32-value blocks, AVX2 `maddubs`, else portable
//! code ([`scalar`]); all give bit-identical results.
//! Rows are split over rayon's pool in chunks large enough to amortise a task, and a product
//! too small to gain from threads runs on the calling thread.

pub mod act;
#[cfg(target_arch = "x86_64")]
mod avx2;
mod scalar;

use rayon::prelude::*;

pub use act::QuantizedRow;

use super::QuantMatrix;
use crate::gguf::reader::GgmlType;

/// Products with fewer multiply-adds than this run on the calling thread.
const SERIAL_MACS: usize = 1 << 17;
/// The least work (multiply-adds) one rayon task gets.
const TASK_MACS: usize = 1 << 15;

/// A row-dot kernel for one weight type and instruction set.
#[derive(Clone, Copy)]
pub struct Kernel {
    /// Whether activations use 256-value super-blocks (the K-quants).
    k_blocks: bool,
    /// Safe to call: an SIMD kernel is only chosen after its features were detected.
    dot: unsafe fn(&[u8], &QuantizedRow) -> f32,
    /// `"avx512vnni"`, `"avx2"` or `"scalar"`.
    pub isa: &'static str,
}

impl Kernel {
    /// The portable kernel for `t`, or `None` when `t` has no integer kernel.
    pub fn scalar(t: GgmlType) -> Option<Self> {
        let (k_blocks, dot): (bool, fn(&[u8], &QuantizedRow) -> f32) = match t {
            GgmlType::Q8_0 => (false, scalar::q8_0),
            GgmlType::Q4_0 => (false, scalar::q4_0),
            GgmlType::Q5_0 => (false, scalar::q5_0),
            GgmlType::Q4_K => (true, scalar::q4_k),
            GgmlType::Q5_K => (true, scalar::q5_k),
            GgmlType::Q6_K => (true, scalar::q6_k),
            _ => return None,
        };
        Some(Self { k_blocks, dot, isa: "scalar" })
    }

    /// The fastest kernel this CPU runs for `t`.
    pub fn best(t: GgmlType) -> Option<Self> {
        Self::available(t).pop()
    }

    /// Every kernel this CPU runs for `t`, portable first, fastest last (the tests compare
    /// them all).
    pub fn available(t: GgmlType) -> Vec<Self> {
        let Some(portable) = Self::scalar(t) else { return Vec::new() };
        #[allow(unused_mut)]
        let mut out = vec![portable];
        #[cfg(target_arch = "x86_64")]
        if is_x86_feature_detected!("avx2")
            && is_x86_feature_detected!("fma")
            && is_x86_feature_detected!("f16c")
        {
            let dot: unsafe fn(&[u8], &QuantizedRow) -> f32 = match t {
                GgmlType::Q8_0 => avx2::q8_0,
                GgmlType::Q4_0 => avx2::q4_0,
                GgmlType::Q5_0 => avx2::q5_0,
                GgmlType::Q4_K => avx2::q4_k,
                GgmlType::Q5_K => avx2::q5_k,
                GgmlType::Q6_K => avx2::q6_k,
                _ => unreachable!("scalar() accepted it"),
            };
            out.push(Self { dot, isa: "avx2", ..portable });
            // VNNI pays off where each 32 products are one sum (the K-quants scale 16-bit
            // pair sums with `madd`, which VNNI would not replace).
            let vnni = is_x86_feature_detected!("avx512f")
                && is_x86_feature_detected!("avx512vl")
                && is_x86_feature_detected!("avx512vnni");
            let dot: Option<unsafe fn(&[u8], &QuantizedRow) -> f32> = match t {
                GgmlType::Q8_0 => Some(avx2::vnni_32::q8_0),
                GgmlType::Q4_0 => Some(avx2::vnni_32::q4_0),
                GgmlType::Q5_0 => Some(avx2::vnni_32::q5_0),
                _ => None,
            };
            if let (true, Some(dot)) = (vnni, dot) {
                out.push(Self { dot, isa: "avx512vnni", ..portable });
            }
        }
        out
    }

    /// The activation row in the block layout this kernel reads.
    pub fn quantize(&self, x: &[f32]) -> QuantizedRow {
        if self.k_blocks {
            act::q8_k(x)
        } else {
            act::q8_0(x)
        }
    }

    /// `row · x` for one stored row (whole blocks) and a row quantised by [`Self::quantize`].
    pub fn dot(&self, row: &[u8], x: &QuantizedRow) -> f32 {
        // SAFETY: `best` picks an SIMD kernel only on a CPU with its features.
        unsafe { (self.dot)(row, x) }
    }
}

/// Whether [`matmul_t`] has an integer kernel for `t`.
pub fn supports(t: GgmlType) -> bool {
    Kernel::scalar(t).is_some()
}

/// `y[m, rows] = x[m, cols] · Wᵀ` with 8-bit activations, or `None` when `W`'s type has no
/// integer kernel (the caller then uses the dequantising product).
pub fn matmul_t(w: &QuantMatrix, x: &[f32], m: usize) -> Option<Vec<f32>> {
    Some(matmul_t_with(&Kernel::best(w.ggml_type())?, w, x, m))
}

/// [`matmul_t`] with a given kernel (the tests compare kernels through it).
pub fn matmul_t_with(k: &Kernel, w: &QuantMatrix, x: &[f32], m: usize) -> Vec<f32> {
    let (rows, cols) = w.dims();
    assert_eq!(x.len(), m * cols, "x must be [m, {cols}]");
    let acts: Vec<QuantizedRow> = x.chunks_exact(cols.max(1)).map(|r| k.quantize(r)).collect();
    // Output-major [rows, m] so a task owns a contiguous run; transposed back when m > 1.
    let mut yt = vec![0f32; rows * m];
    let body = |r0: usize, out: &mut [f32]| {
        for (i, o) in out.chunks_exact_mut(m).enumerate() {
            let row = w.row_data(r0 + i);
            for (v, a) in o.iter_mut().zip(&acts) {
                *v = k.dot(row, a);
            }
        }
    };
    let macs = rows * cols * m;
    let threads = rayon::current_num_threads();
    if threads == 1 || macs < SERIAL_MACS || m == 0 {
        body(0, &mut yt);
    } else {
        // About four tasks per thread for balance, none smaller than TASK_MACS.
        let chunk = (rows / (4 * threads)).max(TASK_MACS / (cols * m).max(1)).max(1);
        yt.par_chunks_mut(chunk * m).enumerate().for_each(|(c, out)| body(c * chunk, out));
    }
    if m <= 1 {
        return yt;
    }
    let mut y = vec![0f32; m * rows];
    for r in 0..rows {
        for j in 0..m {
            y[j * rows + r] = yt[r * m + j];
        }
    }
    y
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use super::*;

    const INTEGER_TYPES: [GgmlType; 6] =
        [GgmlType::Q4_0, GgmlType::Q5_0, GgmlType::Q8_0, GgmlType::Q4_K, GgmlType::Q5_K, GgmlType::Q6_K];

    /// f64 `W·x` on the dequantised matrix, and the largest |output| (the error scale).
    fn reference(w: &QuantMatrix, x: &[f32]) -> (Vec<f64>, f64) {
        let (rows, cols) = w.dims();
        let wf = w.dequantize();
        let y: Vec<f64> =
            (0..rows).map(|r| (0..cols).map(|c| wf[r * cols + c] as f64 * x[c] as f64).sum()).collect();
        let scale = y.iter().fold(0f64, |a, v| a.max(v.abs()));
        (y, scale)
    }

    #[test]
    fn dot_kernels_match_the_dequantised_product_within_the_activation_rounding() {
        // Tolerance: 8-bit activations round each value by up to half a step (1/254 of its
        // block's largest |x|); over a row of random signs that is ~0.2 % of the largest
        // output. 1 % is allowed; a wrong bit layout is off by tens of percent.
        for (i, t) in INTEGER_TYPES.into_iter().enumerate() {
            // 20 blocks of 32 (Gemma 3's hidden 640: two full groups of eight and a tail)
            // or 4 super-blocks of 256.
            let cols = if matches!(t, GgmlType::Q4_K | GgmlType::Q5_K | GgmlType::Q6_K) { 1024 } else { 640 };
            let w = random_matrix(t, 300, cols, 11 + i as u64);
            let mut rng = Rng(5 + i as u64);
            let x: Vec<f32> = (0..2 * cols).map(|_| rng.uniform()).collect();
            let k = Kernel::scalar(t).unwrap();
            let y = matmul_t_with(&k, &w, &x, 2);
            for j in 0..2 {
                let (want, scale) = reference(&w, &x[j * cols..(j + 1) * cols]);
                let err = (0..300).fold(0f64, |a, r| a.max((y[j * 300 + r] as f64 - want[r]).abs()));
                assert!(err <= 0.01 * scale, "{t}: error {err:.3e} vs largest output {scale:.3e}");
            }
        }
    }

    #[test]
    #[cfg_attr(not(target_arch = "x86_64"), ignore = "the SIMD kernels are x86-64 only")]
    fn dot_simd_kernels_equal_the_scalar_kernels_bit_for_bit() {
        for (i, t) in INTEGER_TYPES.into_iter().enumerate() {
            // Every SIMD kernel this CPU runs (all of them on an AVX-512 VNNI machine).
            let kernels = Kernel::available(t);
            // Every block count from 1 to 17 (partial and full groups of eight blocks).
            let block = if matches!(t, GgmlType::Q4_K | GgmlType::Q5_K | GgmlType::Q6_K) { 256 } else { 32 };
            for nb in [1, 2, 7, 8, 9, 16, 17] {
                let cols = nb * block;
                let w = random_matrix(t, 40, cols, 100 + i as u64);
                let mut rng = Rng(7 + nb as u64);
                let x: Vec<f32> = (0..cols).map(|_| rng.uniform() * 3.0).collect();
                let want = matmul_t_with(&kernels[0], &w, &x, 1);
                for k in &kernels[1..] {
                    let got = matmul_t_with(k, &w, &x, 1);
                    for r in 0..40 {
                        assert_eq!(
                            got[r].to_bits(),
                            want[r].to_bits(),
                            "{t} {} with {nb} blocks, row {r}: {} vs {}",
                            k.isa,
                            got[r],
                            want[r]
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn dot_products_split_over_threads_equal_the_serial_product() {
        let w = random_matrix(GgmlType::Q8_0, 4096, 256, 3);
        let x: Vec<f32> = (0..3 * 256).map(|i| (i as f32 * 0.37).sin()).collect();
        let k = Kernel::best(GgmlType::Q8_0).unwrap();
        let parallel = matmul_t_with(&k, &w, &x, 3);
        let pool = rayon::ThreadPoolBuilder::new().num_threads(1).build().unwrap();
        let serial = pool.install(|| matmul_t_with(&k, &w, &x, 3));
        assert_eq!(parallel, serial);
        assert!(
            !supports(GgmlType::BF16)
                && matmul_t(&random_matrix(GgmlType::F16, 2, 32, 1), &[0.0; 32], 1).is_none()
        );
    }
}
