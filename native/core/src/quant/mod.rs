//! Frozen base matrices kept in their stored form: GGUF block quantisations (Q4_0, Q4_K,
//! Q5_0, Q5_K, Q6_K, Q8_0 and the other types `gguf::dequant` reads) and bf16/f16.
//!
//! A [`QuantMatrix`] is `[rows, cols]` in PyTorch layout (`rows` = output features), each row
//! a run of whole blocks, exactly as GGUF stores a 2-D tensor. The matmuls in [`matmul`]
//! dequantise a tile of rows at a time into a small per-thread f32 buffer (never the whole
//! matrix) with the same scalar code as `gguf::dequant`, so every value they multiply is
//! bit-equal to the f32 the dequantised base would hold; only the summation order differs.
//! [`op`] wraps them as candle ops with a backward pass that returns the input gradient only.

pub mod dot;
pub mod format;
pub mod matmul;
pub mod op;
pub mod quantize;

#[cfg(test)]
mod parity;

pub use crate::decoder::base_weight::BaseWeight;
pub use format::BaseFormat;

use crate::gguf::dequant::{self, DequantError};
use crate::gguf::reader::GgmlType;

/// A frozen weight matrix in stored (compact) form.
#[derive(Debug, Clone)]
pub struct QuantMatrix {
    ggml_type: GgmlType,
    rows: usize,
    cols: usize,
    /// `rows * row_bytes` bytes, row-major.
    data: Vec<u8>,
    row_bytes: usize,
}

/// Why bytes cannot form a [`QuantMatrix`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QuantError {
    Unsupported(GgmlType),
    /// A row is not a whole number of blocks.
    RowLength {
        ggml_type: GgmlType,
        cols: usize,
        block: usize,
    },
    Length {
        expected: usize,
        got: usize,
    },
}

impl std::fmt::Display for QuantError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Unsupported(t) => write!(f, "{}", DequantError::Unsupported(*t)),
            Self::RowLength { ggml_type, cols, block } => {
                write!(f, "a row of {cols} values is not a whole number of {ggml_type} blocks of {block}")
            }
            Self::Length { expected, got } => write!(f, "the matrix needs {expected} bytes, got {got}"),
        }
    }
}

impl std::error::Error for QuantError {}

impl QuantMatrix {
    /// Wraps stored bytes: `rows` rows of `cols` values of `ggml_type`.
    pub fn new(ggml_type: GgmlType, rows: usize, cols: usize, data: Vec<u8>) -> Result<Self, QuantError> {
        if !dequant::supported(ggml_type) {
            return Err(QuantError::Unsupported(ggml_type));
        }
        let (block, block_bytes) = ggml_type.block_layout();
        let (block, block_bytes) = (block as usize, block_bytes as usize);
        if !cols.is_multiple_of(block) {
            return Err(QuantError::RowLength { ggml_type, cols, block });
        }
        let row_bytes = cols / block * block_bytes;
        if rows * row_bytes != data.len() {
            return Err(QuantError::Length { expected: rows * row_bytes, got: data.len() });
        }
        Ok(Self { ggml_type, rows, cols, data, row_bytes })
    }

    pub fn ggml_type(&self) -> GgmlType {
        self.ggml_type
    }

    /// `(rows, cols)`: `(out_features, in_features)` for a linear layer.
    pub fn dims(&self) -> (usize, usize) {
        (self.rows, self.cols)
    }

    /// The stored bytes, row-major (what a GGUF tensor of this type holds).
    pub fn into_bytes(self) -> Vec<u8> {
        self.data
    }

    /// Bytes held in memory.
    pub fn stored_bytes(&self) -> usize {
        self.data.len()
    }

    /// Values per block (1 for f32/f16/bf16).
    pub fn block(&self) -> usize {
        self.ggml_type.block_layout().0 as usize
    }

    fn block_bytes(&self) -> usize {
        self.ggml_type.block_layout().1 as usize
    }

    /// The stored bytes of row `r`.
    pub fn row_data(&self, r: usize) -> &[u8] {
        &self.data[r * self.row_bytes..(r + 1) * self.row_bytes]
    }

    /// Dequantises rows `r0..r0 + out.len() / cols` into `out`.
    pub fn dequantize_rows(&self, r0: usize, out: &mut [f32]) {
        let n = out.len() / self.cols;
        let bytes = &self.data[r0 * self.row_bytes..(r0 + n) * self.row_bytes];
        dequant::dequantize_into(self.ggml_type, bytes, out).expect("sizes checked at construction");
    }

    /// Dequantises columns `c0..c0 + width` of rows `r0..r0 + out.len() / width` into `out`
    /// (`[n, width]` row-major). `c0` and `width` must be multiples of the block size.
    pub fn dequantize_tile(&self, r0: usize, c0: usize, width: usize, out: &mut [f32]) {
        let (block, bb) = (self.block(), self.block_bytes());
        debug_assert!(c0.is_multiple_of(block) && width.is_multiple_of(block));
        let (b0, b1) = (c0 / block * bb, (c0 + width) / block * bb);
        for (i, y) in out.chunks_exact_mut(width).enumerate() {
            let row = self.row_data(r0 + i);
            dequant::dequantize_into(self.ggml_type, &row[b0..b1], y).expect("tile inside the matrix");
        }
    }

    /// The whole matrix as f32 (tests and export only: this is what the compact form avoids).
    pub fn dequantize(&self) -> Vec<f32> {
        let mut out = vec![0f32; self.rows * self.cols];
        self.dequantize_rows(0, &mut out);
        out
    }

    /// Rows `ids` as f32 `[ids.len(), cols]` (an embedding lookup).
    pub fn gather_rows(&self, ids: &[u32]) -> Vec<f32> {
        let mut out = vec![0f32; ids.len() * self.cols];
        for (&id, y) in ids.iter().zip(out.chunks_exact_mut(self.cols)) {
            self.dequantize_rows(id as usize, y);
        }
        out
    }

    /// Reorders rows: row `i` of the result is row `perm[i]` of `self` (llama q/k un-permute
    /// works on whole rows, so it applies to stored bytes unchanged).
    pub fn permute_rows(&self, perm: &[usize]) -> Self {
        let mut data = Vec::with_capacity(self.data.len());
        for &src in perm {
            data.extend_from_slice(self.row_data(src));
        }
        Self { data, ..self.clone() }
    }
}

#[cfg(test)]
pub(crate) mod testutil {
    use super::*;
    use half::f16;

    /// xorshift64*, deterministic across platforms.
    pub struct Rng(pub u64);
    impl Rng {
        pub fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
        }
        /// Uniform in [-1, 1).
        pub fn uniform(&mut self) -> f32 {
            (self.next() >> 40) as f32 / (1u64 << 23) as f32 - 1.0
        }
    }

    /// Random blocks of `t` whose scale fields are small finite f16 values, so every
    /// dequantised value is finite and of order 1.
    pub fn random_matrix(t: GgmlType, rows: usize, cols: usize, seed: u64) -> QuantMatrix {
        let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
        let (block, bb) = t.block_layout();
        let (block, bb) = (block as usize, bb as usize);
        let n_blocks = rows * cols / block;
        let mut data: Vec<u8> = (0..n_blocks * bb).map(|_| rng.next() as u8).collect();
        let put = |b: &mut [u8], at: usize, v: f32| {
            b[at..at + 2].copy_from_slice(&f16::from_f32(v).to_bits().to_le_bytes());
        };
        for b in data.chunks_exact_mut(bb) {
            let s = 0.02 + 0.02 * rng.uniform().abs();
            match t {
                GgmlType::F16 | GgmlType::BF16 | GgmlType::F32 => {}
                // Scales chosen so values are of order 0.1 and centred on zero (the offset types
                // subtract about the mean quant), like trained weights.
                GgmlType::Q4_0 => put(b, 0, s / 2.0),
                GgmlType::Q5_0 => put(b, 0, s / 4.0),
                GgmlType::Q8_0 => put(b, 0, s / 30.0),
                GgmlType::Q4_1 | GgmlType::Q5_1 => {
                    put(b, 0, s / 4.0);
                    put(b, 2, -s * 2.0)
                }
                GgmlType::Q4_K => {
                    put(b, 0, s / 300.0);
                    put(b, 2, s * 7.5 / 300.0)
                }
                GgmlType::Q5_K => {
                    put(b, 0, s / 600.0);
                    put(b, 2, s * 15.5 / 600.0)
                }
                GgmlType::Q2_K => {
                    put(b, 80, s / 10.0);
                    put(b, 82, s * 1.5 / 10.0)
                }
                GgmlType::Q3_K => put(b, 108, s / 100.0),
                GgmlType::Q6_K => put(b, 208, s / 3000.0),
                _ => unreachable!(),
            }
        }
        match t {
            GgmlType::F16 => {
                for c in data.chunks_exact_mut(2) {
                    c.copy_from_slice(&f16::from_f32(0.1 * rng.uniform()).to_bits().to_le_bytes());
                }
            }
            GgmlType::BF16 => {
                for c in data.chunks_exact_mut(2) {
                    c.copy_from_slice(&half::bf16::from_f32(0.1 * rng.uniform()).to_bits().to_le_bytes());
                }
            }
            GgmlType::F32 => {
                for c in data.chunks_exact_mut(4) {
                    c.copy_from_slice(&(0.1 * rng.uniform()).to_le_bytes());
                }
            }
            _ => {}
        }
        QuantMatrix::new(t, rows, cols, data).unwrap()
    }

    pub const TYPES: [GgmlType; 8] = [
        GgmlType::Q4_0,
        GgmlType::Q4_K,
        GgmlType::Q5_0,
        GgmlType::Q5_K,
        GgmlType::Q6_K,
        GgmlType::Q8_0,
        GgmlType::BF16,
        GgmlType::F16,
    ];
}

#[cfg(test)]
mod tests {
    use super::testutil::*;
    use super::*;

    #[test]
    fn quant_tiles_and_rows_are_bit_exact_with_the_reference_dequantiser() {
        for t in TYPES {
            let m = random_matrix(t, 6, 512, 7);
            let reference = dequant::dequantize(t, &m.data, 6 * 512).unwrap();
            assert_eq!(m.dequantize(), reference, "{t}");
            let block = m.block().max(32);
            let mut tile = vec![0f32; 3 * block];
            m.dequantize_tile(2, 256, block, &mut tile);
            for i in 0..3 {
                for j in 0..block {
                    assert_eq!(tile[i * block + j].to_bits(), reference[(2 + i) * 512 + 256 + j].to_bits());
                }
            }
            let rows = m.gather_rows(&[5, 0]);
            assert_eq!(&rows[..512], &reference[5 * 512..]);
            assert_eq!(&rows[512..], &reference[..512]);
            assert!(reference.iter().all(|v| v.is_finite() && v.abs() < 1.0), "{t}");
        }
    }

    #[test]
    fn quant_rejects_bad_shapes() {
        assert_eq!(
            QuantMatrix::new(GgmlType::Q4_K, 1, 128, vec![0; 72]).unwrap_err(),
            QuantError::RowLength { ggml_type: GgmlType::Q4_K, cols: 128, block: 256 }
        );
        assert_eq!(
            QuantMatrix::new(GgmlType::Q8_0, 2, 32, vec![0; 34]).unwrap_err(),
            QuantError::Length { expected: 68, got: 34 }
        );
        assert!(matches!(QuantMatrix::new(GgmlType::I8, 1, 1, vec![0]), Err(QuantError::Unsupported(_))));
    }

    #[test]
    fn quant_permute_rows_moves_whole_rows() {
        let m = random_matrix(GgmlType::Q8_0, 4, 64, 3);
        let p = m.permute_rows(&[2, 0, 3, 1]);
        let (a, b) = (m.dequantize(), p.dequantize());
        assert_eq!(&b[..64], &a[128..192]);
        assert_eq!(&b[64..128], &a[..64]);
    }
}
