//! Portable integer dot products of one stored row with a [`QuantizedRow`]: the reference
//! the SIMD kernels must equal bit for bit.
//!
//! The arithmetic is fixed so that any instruction set can reproduce it exactly: each block's
//! sum of quant products is an exact integer; the float work is `(d_w · d_x) · sum` per block,
//! added (no fused multiply-add) to one of eight lanes for 32-value blocks (block `b` to lane
//! `b % 8`, the lanes of one AVX register) or to a single total for 256-value super-blocks,
//! and the lanes are summed as `((a0+a4)+(a2+a6)) + ((a1+a5)+(a3+a7))`.

use half::f16;

use super::act::QuantizedRow;
use crate::gguf::dequant::scale_min_k4;

#[inline(always)]
pub(super) fn f16_at(b: &[u8], i: usize) -> f32 {
    f16::from_bits(u16::from_le_bytes([b[i], b[i + 1]])).to_f32()
}

/// The eight lanes summed in the order of the AVX reduction.
#[inline(always)]
pub(super) fn reduce8(a: &[f32; 8]) -> f32 {
    ((a[0] + a[4]) + (a[2] + a[6])) + ((a[1] + a[5]) + (a[3] + a[7]))
}

/// Sums `(d_w · d_x) · isum(block)` over 32-value blocks of `bytes` bytes whose f16 scale
/// comes first, in the lane order described above.
#[inline(always)]
fn blocks32(row: &[u8], a: &QuantizedRow, bytes: usize, isum: impl Fn(&[u8], &[i8], i32) -> i32) -> f32 {
    let nb = row.len() / bytes;
    let mut acc = [0f32; 8];
    for g in 0..nb.div_ceil(8) {
        for (i, lane) in acc.iter_mut().enumerate() {
            let b = 8 * g + i;
            let (s, dw, dx) = if b < nb {
                let blk = &row[b * bytes..(b + 1) * bytes];
                (isum(blk, &a.qs[32 * b..32 * b + 32], a.sums[b]), f16_at(blk, 0), a.d[b])
            } else {
                (0, 0.0, 0.0)
            };
            *lane += (dw * dx) * s as f32;
        }
    }
    reduce8(&acc)
}

pub fn q8_0(row: &[u8], a: &QuantizedRow) -> f32 {
    blocks32(row, a, 34, |b, x, _| (0..32).map(|j| (b[2 + j] as i8) as i32 * x[j] as i32).sum())
}

pub fn q4_0(row: &[u8], a: &QuantizedRow) -> f32 {
    blocks32(row, a, 18, |b, x, xsum| {
        let qs = &b[2..18];
        let dot: i32 = (0..16)
            .map(|j| (qs[j] & 0xF) as i32 * x[j] as i32 + (qs[j] >> 4) as i32 * x[j + 16] as i32)
            .sum();
        dot - 8 * xsum
    })
}

/// The 5-bit quants (0..32) of a Q5_0 block.
#[inline(always)]
pub(super) fn q5_0_quants(b: &[u8]) -> [u8; 32] {
    let qh = u32::from_le_bytes([b[2], b[3], b[4], b[5]]);
    let qs = &b[6..22];
    let mut q = [0u8; 32];
    for j in 0..16 {
        q[j] = (qs[j] & 0xF) | ((((qh >> j) & 1) as u8) << 4);
        q[j + 16] = (qs[j] >> 4) | ((((qh >> (j + 16)) & 1) as u8) << 4);
    }
    q
}

pub fn q5_0(row: &[u8], a: &QuantizedRow) -> f32 {
    blocks32(row, a, 22, |b, x, xsum| {
        let q = q5_0_quants(b);
        (0..32).map(|j| q[j] as i32 * x[j] as i32).sum::<i32>() - 16 * xsum
    })
}

/// Q4_K (`with_high = false`, 144-byte blocks) and Q5_K (176 bytes, fifth bits in `qh`).
#[inline(always)]
fn k4_5(row: &[u8], a: &QuantizedRow, with_high: bool) -> f32 {
    let bytes = if with_high { 176 } else { 144 };
    let mut total = 0f32;
    for (sb, blk) in row.chunks_exact(bytes).enumerate() {
        let (d, dmin, scales) = (f16_at(blk, 0), f16_at(blk, 2), &blk[4..16]);
        let (qh, qs) = if with_high { (&blk[16..48], &blk[48..176]) } else { (&blk[0..0], &blk[16..144]) };
        let x = &a.qs[256 * sb..256 * sb + 256];
        let bsums = &a.sums[16 * sb..16 * sb + 16];
        let (mut isum, mut msum) = (0i32, 0i32);
        for j in 0..8 {
            let (sc, m) = scale_min_k4(j, scales);
            let (chunk, shift) = (j / 2, 4 * (j % 2));
            let mut dot = 0i32;
            for l in 0..32 {
                let mut q = (qs[32 * chunk + l] >> shift) & 0xF;
                if with_high && qh[l] & (1 << j) != 0 {
                    q += 16;
                }
                dot += q as i32 * x[32 * j + l] as i32;
            }
            isum += sc as i32 * dot;
            msum += m as i32 * (bsums[2 * j] + bsums[2 * j + 1]);
        }
        let dx = a.d[sb];
        total += (d * dx) * isum as f32;
        total -= (dmin * dx) * msum as f32;
    }
    total
}

pub fn q4_k(row: &[u8], a: &QuantizedRow) -> f32 {
    k4_5(row, a, false)
}

pub fn q5_k(row: &[u8], a: &QuantizedRow) -> f32 {
    k4_5(row, a, true)
}

pub fn q6_k(row: &[u8], a: &QuantizedRow) -> f32 {
    let mut total = 0f32;
    for (sb, blk) in row.chunks_exact(210).enumerate() {
        let (ql, qh, sc, d) = (&blk[0..128], &blk[128..192], &blk[192..208], f16_at(blk, 208));
        let x = &a.qs[256 * sb..256 * sb + 256];
        let bsums = &a.sums[16 * sb..16 * sb + 16];
        let mut isum = 0i32;
        let mut offset = 0i32;
        for g in 0..16 {
            // Sixteen values: half h, run k of 32, first or second 16.
            let (h, k, i) = (g / 8, (g % 8) / 2, g % 2);
            let mut dot = 0i32;
            for l in 16 * i..16 * i + 16 {
                let lo = ql[64 * h + 32 * (k % 2) + l] >> (4 * (k / 2)) & 0xF;
                let hi = (qh[32 * h + l] >> (2 * k)) & 3;
                dot += (lo | hi << 4) as i32 * x[128 * h + 32 * k + l] as i32;
            }
            isum += (sc[g] as i8) as i32 * dot;
            offset += (sc[g] as i8) as i32 * bsums[g];
        }
        total += (d * a.d[sb]) * (isum - 32 * offset) as f32;
    }
    total
}
