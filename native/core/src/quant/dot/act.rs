//! The activation row quantised once per product, the way llama.cpp does before its integer
//! dot products: 32-value blocks (ggml's `block_q8_0`, f16-rounded scale) for Q4_0, Q5_0 and
//! Q8_0 weights; 256-value super-blocks (`block_q8_K`, f32 scale, sums of every 16 quants)
//! for the K-quants.

use half::f16;

/// One activation row in 8-bit blocks.
#[derive(Debug, Clone, Default)]
pub struct QuantizedRow {
    /// The quants, one per input value.
    pub qs: Vec<i8>,
    /// The scale of each block (32 or 256 values): value ≈ `d · q`.
    pub d: Vec<f32>,
    /// `Σ q` per block of 32 (Q8_0 layout) or per 16 values (Q8_K layout): the offset term of
    /// weights stored as unsigned quants minus a constant (Q4_0, Q5_0, Q6_K) or with mins.
    pub sums: Vec<i32>,
}

/// ggml's `quantize_row_q8_0` reference: `d = max|x| / 127` rounded to f16, `q = round(x / d)`.
pub fn q8_0(x: &[f32]) -> QuantizedRow {
    assert!(x.len().is_multiple_of(32), "a Q8_0 row is whole blocks of 32");
    let mut out = QuantizedRow {
        qs: Vec::with_capacity(x.len()),
        d: Vec::with_capacity(x.len() / 32),
        sums: Vec::with_capacity(x.len() / 32),
    };
    for block in x.chunks_exact(32) {
        let amax = block.iter().fold(0f32, |a, v| a.max(v.abs()));
        let d = amax / 127.0;
        let id = if d != 0.0 { 1.0 / d } else { 0.0 };
        let mut sum = 0i32;
        for v in block {
            let q = (v * id).round() as i8;
            sum += q as i32;
            out.qs.push(q);
        }
        out.d.push(f16::from_f32(d).to_f32());
        out.sums.push(sum);
    }
    out
}

/// ggml's `quantize_row_q8_K` reference: the scale comes from the value of largest magnitude
/// (`iscale = -127 / max`), quants round to nearest even and are capped at 127.
pub fn q8_k(x: &[f32]) -> QuantizedRow {
    assert!(x.len().is_multiple_of(256), "a Q8_K row is whole blocks of 256");
    let mut out = QuantizedRow {
        qs: Vec::with_capacity(x.len()),
        d: Vec::with_capacity(x.len() / 256),
        sums: Vec::with_capacity(x.len() / 16),
    };
    for block in x.chunks_exact(256) {
        let (mut amax, mut max) = (0f32, 0f32);
        for &v in block {
            if v.abs() > amax {
                amax = v.abs();
                max = v;
            }
        }
        if amax == 0.0 {
            out.d.push(0.0);
            out.qs.extend(std::iter::repeat_n(0i8, 256));
            out.sums.extend(std::iter::repeat_n(0i32, 16));
            continue;
        }
        let iscale = -127.0 / max;
        for sixteen in block.chunks_exact(16) {
            let mut sum = 0i32;
            for &v in sixteen {
                let q = ((iscale * v).round_ties_even() as i32).min(127) as i8;
                sum += q as i32;
                out.qs.push(q);
            }
            out.sums.push(sum);
        }
        out.d.push(1.0 / iscale);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dot_activation_blocks_reconstruct_the_row_within_half_a_step() {
        let x: Vec<f32> = (0..512).map(|i| ((i * 37 % 101) as f32 - 50.0) / 7.0).collect();
        for (q, block) in [(q8_0(&x), 32), (q8_k(&x), 256)] {
            for (i, v) in x.iter().enumerate() {
                let d = q.d[i / block];
                assert!((d * q.qs[i] as f32 - v).abs() <= 0.5 * d.abs() * 1.01, "{block}: value {i}");
            }
            let per = if block == 32 { 32 } else { 16 };
            for (k, s) in q.sums.iter().enumerate() {
                assert_eq!(*s, q.qs[k * per..(k + 1) * per].iter().map(|&v| v as i32).sum::<i32>());
            }
        }
        let zero = q8_k(&[0f32; 256]);
        assert_eq!((zero.d[0], zero.sums.iter().sum::<i32>()), (0.0, 0));
    }
}
