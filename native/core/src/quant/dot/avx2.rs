//! AVX2 versions of [`super::scalar`]'s kernels, llama.cpp style: `maddubs` multiplies
//! unsigned weight quants (or `|w|` with the sign moved onto the activation) by signed
//! activation quants into exact 16-bit pair sums, `madd` widens them to 32 bits. Integer sums
//! are exact and the float steps are the scalar kernels', in the same order, so the results are
//! bit-equal to them (the tests check it).

use std::arch::x86_64::*;

use super::act::QuantizedRow;
use super::scalar::f16_at;
use crate::gguf::dequant::scale_min_k4;

#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn hsum_i32(v: __m256i) -> i32 {
    let s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    let s = _mm_add_epi32(s, _mm_unpackhi_epi64(s, s));
    let s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0b01));
    _mm_cvtsi128_si32(s)
}

/// The 32-value-block kernels (Q8_0, Q4_0, Q5_0), built once per instruction set: `$vnni`
/// replaces `maddubs` + `madd` by AVX-512 VNNI's `vpdpbusd` (same exact integer sums).
macro_rules! blocks32_kernels {
    ($name:ident, $features:literal, $vnni:literal) => {
        pub mod $name {
            use std::arch::x86_64::*;

            use super::super::act::QuantizedRow;
            use super::super::scalar::f16_at;

            /// Eight 32-bit sums of four `u8 · i8` products each.
            #[inline]
            #[target_feature(enable = $features)]
            unsafe fn mul_sum_us8(ax: __m256i, sy: __m256i) -> __m256i {
                if $vnni {
                    // One instruction for maddubs + madd, with no 16-bit intermediate at all.
                    _mm256_dpbusd_epi32(_mm256_setzero_si256(), ax, sy)
                } else {
                    _mm256_madd_epi16(_mm256_maddubs_epi16(ax, sy), _mm256_set1_epi16(1))
                }
            }

            #[inline]
            #[target_feature(enable = $features)]
            unsafe fn hsum_i32(v: __m256i) -> i32 {
                let s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
                let s = _mm_add_epi32(s, _mm_unpackhi_epi64(s, s));
                let s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0b01));
                _mm_cvtsi128_si32(s)
            }

            /// [`super::scalar::reduce8`]'s order: lanes i and i+4, then i and i+2, then 0 and 1.
            #[inline]
            #[target_feature(enable = $features)]
            unsafe fn reduce8(v: __m256) -> f32 {
                let s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
                let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
                _mm_cvtss_f32(_mm_add_ss(s, _mm_movehdup_ps(s)))
            }

            /// Lane `i` = the sum of `v[i]`'s lanes (exact: integers).
            #[inline]
            #[target_feature(enable = $features)]
            unsafe fn hsum8(v: &[__m256i; 8]) -> __m256i {
                let a = _mm256_hadd_epi32(_mm256_hadd_epi32(v[0], v[1]), _mm256_hadd_epi32(v[2], v[3]));
                let b = _mm256_hadd_epi32(_mm256_hadd_epi32(v[4], v[5]), _mm256_hadd_epi32(v[6], v[7]));
                let lo = _mm_add_epi32(_mm256_castsi256_si128(a), _mm256_extracti128_si256(a, 1));
                let hi = _mm_add_epi32(_mm256_castsi256_si128(b), _mm256_extracti128_si256(b, 1));
                _mm256_set_m128i(hi, lo)
            }

            /// The scalar `blocks32` loop: `dot(block, x)` gives eight partial sums of a block's quant
            /// products (before the `off · Σx` correction).
            #[inline]
            #[target_feature(enable = $features)]
            unsafe fn blocks32(
                row: &[u8],
                a: &QuantizedRow,
                bytes: usize,
                off: i32,
                dot: impl Fn(*const u8, __m256i) -> __m256i,
            ) -> f32 {
                let nb = row.len() / bytes;
                let (p, xq) = (row.as_ptr(), a.qs.as_ptr());
                let mut acc = _mm256_setzero_ps();
                let full = nb / 8;
                for g in 0..full {
                    let mut v = [_mm256_setzero_si256(); 8];
                    let mut dw = [0u16; 8];
                    for (i, vi) in v.iter_mut().enumerate() {
                        let b = 8 * g + i;
                        let x = _mm256_loadu_si256(xq.add(32 * b) as *const __m256i);
                        *vi = dot(p.add(b * bytes), x);
                        dw[i] = (p.add(b * bytes) as *const u16).read_unaligned();
                    }
                    let mut s = hsum8(&v);
                    if off != 0 {
                        let xs = _mm256_loadu_si256(a.sums.as_ptr().add(8 * g) as *const __m256i);
                        s = _mm256_sub_epi32(s, _mm256_mullo_epi32(xs, _mm256_set1_epi32(off)));
                    }
                    let dw = _mm256_cvtph_ps(_mm_loadu_si128(dw.as_ptr() as *const __m128i));
                    let d = _mm256_mul_ps(dw, _mm256_loadu_ps(a.d.as_ptr().add(8 * g)));
                    acc = _mm256_add_ps(acc, _mm256_mul_ps(d, _mm256_cvtepi32_ps(s)));
                }
                if nb > 8 * full {
                    // The last, partial group: missing lanes add (0 · 0) · 0, as in the scalar kernel.
                    let (mut s, mut dw, mut dx) = ([0i32; 8], [0f32; 8], [0f32; 8]);
                    for i in 0..nb - 8 * full {
                        let b = 8 * full + i;
                        let x = _mm256_loadu_si256(xq.add(32 * b) as *const __m256i);
                        s[i] = hsum_i32(dot(p.add(b * bytes), x)) - off * a.sums[b];
                        dw[i] = f16_at(row, b * bytes);
                        dx[i] = a.d[b];
                    }
                    let d = _mm256_mul_ps(_mm256_loadu_ps(dw.as_ptr()), _mm256_loadu_ps(dx.as_ptr()));
                    let s = _mm256_cvtepi32_ps(_mm256_loadu_si256(s.as_ptr() as *const __m256i));
                    acc = _mm256_add_ps(acc, _mm256_mul_ps(d, s));
                }
                reduce8(acc)
            }

            /// Sixteen bytes of nibbles as 32 bytes: low nibbles first, then high.
            #[inline]
            #[target_feature(enable = $features)]
            unsafe fn nibbles(p: *const u8) -> __m256i {
                let b = _mm_loadu_si128(p as *const __m128i);
                let m = _mm_set1_epi8(0xF);
                _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(b, 4), m), _mm_and_si128(b, m))
            }

            #[target_feature(enable = $features)]
            pub unsafe fn q8_0(row: &[u8], a: &QuantizedRow) -> f32 {
                blocks32(row, a, 34, 0, |p, x| {
                    let w = _mm256_loadu_si256(p.add(2) as *const __m256i);
                    // |w| ≤ 128 and |x| ≤ 127: the pair sums fit in i16 without saturating.
                    mul_sum_us8(_mm256_abs_epi8(w), _mm256_sign_epi8(x, w))
                })
            }

            #[target_feature(enable = $features)]
            pub unsafe fn q4_0(row: &[u8], a: &QuantizedRow) -> f32 {
                blocks32(row, a, 18, 8, |p, x| mul_sum_us8(nibbles(p.add(2)), x))
            }

            #[target_feature(enable = $features)]
            pub unsafe fn q5_0(row: &[u8], a: &QuantizedRow) -> f32 {
                blocks32(row, a, 22, 16, |p, x| {
                    let qh = (p.add(2) as *const u32).read_unaligned();
                    // Byte j of `bits` is 0xFF when bit j of qh is set (llama.cpp's bytes_from_bits_32).
                    let spread = _mm256_shuffle_epi8(
                        _mm256_set1_epi32(qh as i32),
                        _mm256_setr_epi64x(
                            0,
                            0x0101_0101_0101_0101,
                            0x0202_0202_0202_0202,
                            0x0303_0303_0303_0303,
                        ),
                    );
                    let bits = _mm256_cmpeq_epi8(
                        _mm256_or_si256(spread, _mm256_set1_epi64x(0x7fbf_dfef_f7fb_fdfe)),
                        _mm256_set1_epi64x(-1),
                    );
                    let q =
                        _mm256_or_si256(nibbles(p.add(6)), _mm256_and_si256(bits, _mm256_set1_epi8(0x10)));
                    mul_sum_us8(q, x)
                })
            }
        }
    };
}

blocks32_kernels!(avx2_32, "avx2,fma,f16c", false);
blocks32_kernels!(vnni_32, "avx2,fma,f16c,avx512f,avx512vl,avx512vnni", true);
pub use avx2_32::{q4_0, q5_0, q8_0};

#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn k4_5(row: &[u8], a: &QuantizedRow, with_high: bool) -> f32 {
    let bytes = if with_high { 176 } else { 144 };
    let m4 = _mm256_set1_epi8(0xF);
    let mut total = 0f32;
    for (sb, blk) in row.chunks_exact(bytes).enumerate() {
        let (d, dmin, scales) = (f16_at(blk, 0), f16_at(blk, 2), &blk[4..16]);
        let qs = blk.as_ptr().add(if with_high { 48 } else { 16 });
        let x = a.qs.as_ptr().add(256 * sb);
        let bsums = &a.sums[16 * sb..16 * sb + 16];
        let mut qh = if with_high {
            _mm256_loadu_si256(blk.as_ptr().add(16) as *const __m256i)
        } else {
            _mm256_setzero_si256()
        };
        let mut acc = _mm256_setzero_si256();
        let mut msum = 0i32;
        for c in 0..4 {
            let (sc1, m1) = scale_min_k4(2 * c, scales);
            let (sc2, m2) = scale_min_k4(2 * c + 1, scales);
            msum += m1 as i32 * (bsums[4 * c] + bsums[4 * c + 1])
                + m2 as i32 * (bsums[4 * c + 2] + bsums[4 * c + 3]);
            let q = _mm256_loadu_si256(qs.add(32 * c) as *const __m256i);
            let mut lo = _mm256_and_si256(q, m4);
            let mut hi = _mm256_and_si256(_mm256_srli_epi16(q, 4), m4);
            if with_high {
                let one = _mm256_set1_epi8(1);
                lo = _mm256_or_si256(lo, _mm256_slli_epi16(_mm256_and_si256(qh, one), 4));
                hi = _mm256_or_si256(
                    hi,
                    _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 1), one), 4),
                );
                qh = _mm256_srli_epi16(qh, 2);
            }
            let x1 = _mm256_loadu_si256(x.add(64 * c) as *const __m256i);
            let x2 = _mm256_loadu_si256(x.add(64 * c + 32) as *const __m256i);
            let p1 = _mm256_madd_epi16(_mm256_maddubs_epi16(lo, x1), _mm256_set1_epi16(sc1 as i16));
            let p2 = _mm256_madd_epi16(_mm256_maddubs_epi16(hi, x2), _mm256_set1_epi16(sc2 as i16));
            acc = _mm256_add_epi32(acc, _mm256_add_epi32(p1, p2));
        }
        let dx = a.d[sb];
        total += (d * dx) * hsum_i32(acc) as f32;
        total -= (dmin * dx) * msum as f32;
    }
    total
}

#[target_feature(enable = "avx2,fma,f16c")]
pub unsafe fn q4_k(row: &[u8], a: &QuantizedRow) -> f32 {
    k4_5(row, a, false)
}

#[target_feature(enable = "avx2,fma,f16c")]
pub unsafe fn q5_k(row: &[u8], a: &QuantizedRow) -> f32 {
    k4_5(row, a, true)
}

#[target_feature(enable = "avx2,fma,f16c")]
pub unsafe fn q6_k(row: &[u8], a: &QuantizedRow) -> f32 {
    let m4 = _mm256_set1_epi8(0xF);
    let mut total = 0f32;
    for (sb, blk) in row.chunks_exact(210).enumerate() {
        let p = blk.as_ptr();
        let d = f16_at(blk, 208);
        let x = a.qs.as_ptr().add(256 * sb);
        let bsums = &a.sums[16 * sb..16 * sb + 16];
        let mut acc = _mm256_setzero_si256();
        let mut offset = 0i32;
        for h in 0..2 {
            let qa = _mm256_loadu_si256(p.add(64 * h) as *const __m256i);
            let qb = _mm256_loadu_si256(p.add(64 * h + 32) as *const __m256i);
            let qh = _mm256_loadu_si256(p.add(128 + 32 * h) as *const __m256i);
            let q = [
                _mm256_or_si256(
                    _mm256_and_si256(qa, m4),
                    _mm256_slli_epi16(_mm256_and_si256(qh, _mm256_set1_epi8(0x03)), 4),
                ),
                _mm256_or_si256(
                    _mm256_and_si256(qb, m4),
                    _mm256_slli_epi16(_mm256_and_si256(qh, _mm256_set1_epi8(0x0C)), 2),
                ),
                _mm256_or_si256(
                    _mm256_and_si256(_mm256_srli_epi16(qa, 4), m4),
                    _mm256_and_si256(qh, _mm256_set1_epi8(0x30)),
                ),
                _mm256_or_si256(
                    _mm256_and_si256(_mm256_srli_epi16(qb, 4), m4),
                    _mm256_srli_epi16(_mm256_and_si256(qh, _mm256_set1_epi8(0xC0u8 as i8)), 2),
                ),
            ];
            for (k, qk) in q.iter().enumerate() {
                let g = 8 * h + 2 * k;
                let (s1, s2) = ((blk[192 + g] as i8) as i16, (blk[193 + g] as i8) as i16);
                offset += s1 as i32 * bsums[g] + s2 as i32 * bsums[g + 1];
                let xk = _mm256_loadu_si256(x.add(128 * h + 32 * k) as *const __m256i);
                let scale = _mm256_set_m128i(_mm_set1_epi16(s2), _mm_set1_epi16(s1));
                acc = _mm256_add_epi32(acc, _mm256_madd_epi16(_mm256_maddubs_epi16(*qk, xk), scale));
            }
        }
        total += (d * a.d[sb]) * (hsum_i32(acc) - 32 * offset) as f32;
    }
    total
}
