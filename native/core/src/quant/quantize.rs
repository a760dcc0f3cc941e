//! f32 → Q8_0 / Q4_K, for keeping a safetensors base compact (`baseWeights: "q8_0" | "q4_k"`,
//! the analogue of bitsandbytes' `load_in_8bit` / `load_in_4bit`).
//!
//! Q8_0 follows ggml's `quantize_row_q8_0_ref` (scale = max|x| / 127, round to nearest).
//! Q4_K uses the block layout of ggml's `quantize_row_q4_K_ref` but a direct min/max fit per
//! 32-value sub-block instead of ggml's iterative search: each value is off by at most half a
//! quantisation step plus the 6-bit rounding of its sub-block's scale and minimum (the test
//! bounds it), slightly worse than llama.cpp's but with no search cost at load time.

use half::f16;

use crate::gguf::reader::GgmlType;

use super::QuantMatrix;

/// Quantises `[rows, cols]` f32 values to `t` (Q8_0 or Q4_K; also BF16/F16, which round).
pub fn quantize(
    t: GgmlType,
    values: &[f32],
    rows: usize,
    cols: usize,
) -> Result<QuantMatrix, super::QuantError> {
    let (block, _) = t.block_layout();
    let block = block as usize;
    if !cols.is_multiple_of(block) {
        return Err(super::QuantError::RowLength { ggml_type: t, cols, block });
    }
    assert_eq!(values.len(), rows * cols);
    let data: Vec<u8> = match t {
        GgmlType::Q8_0 => values.chunks_exact(32).flat_map(q8_0_block).collect(),
        GgmlType::Q4_K => values.chunks_exact(256).flat_map(q4_k_block).collect(),
        GgmlType::BF16 => {
            values.iter().flat_map(|v| half::bf16::from_f32(*v).to_bits().to_le_bytes()).collect()
        }
        GgmlType::F16 => values.iter().flat_map(|v| f16::from_f32(*v).to_bits().to_le_bytes()).collect(),
        other => return Err(super::QuantError::Unsupported(other)),
    };
    QuantMatrix::new(t, rows, cols, data)
}

fn q8_0_block(x: &[f32]) -> [u8; 34] {
    let amax = x.iter().fold(0f32, |a, v| a.max(v.abs()));
    let d = amax / 127.0;
    let id = if d != 0.0 { 1.0 / d } else { 0.0 };
    let mut b = [0u8; 34];
    b[..2].copy_from_slice(&f16::from_f32(d).to_bits().to_le_bytes());
    for (o, v) in b[2..].iter_mut().zip(x) {
        *o = (v * id).round() as i8 as u8;
    }
    b
}

fn q4_k_block(x: &[f32]) -> [u8; 144] {
    // Per sub-block: x ≈ scale·q − min with q in 0..=15, min ≥ 0 (the format's offset is
    // subtracted), so the fit spans [min(lo, 0), hi].
    let mut scales = [0f32; 8];
    let mut mins = [0f32; 8];
    for (j, sub) in x.chunks_exact(32).enumerate() {
        let lo = sub.iter().fold(0f32, |a, v| a.min(*v));
        let hi = sub.iter().fold(f32::NEG_INFINITY, |a, v| a.max(*v));
        scales[j] = (hi - lo) / 15.0;
        mins[j] = -lo;
    }
    let max_scale = scales.iter().fold(0f32, |a, v| a.max(*v));
    let max_min = mins.iter().fold(0f32, |a, v| a.max(*v));
    let d = f16::from_f32(max_scale / 63.0);
    let dmin = f16::from_f32(max_min / 63.0);
    let (df, dminf) = (d.to_f32(), dmin.to_f32());
    let mut ls = [0u8; 8];
    let mut lm = [0u8; 8];
    for j in 0..8 {
        ls[j] = if df > 0.0 { (scales[j] / df).round().clamp(0.0, 63.0) as u8 } else { 0 };
        // Round the minimum up so the sub-block's lowest value stays reachable.
        lm[j] = if dminf > 0.0 { (mins[j] / dminf).ceil().clamp(0.0, 63.0) as u8 } else { 0 };
        if ls[j] == 0 && scales[j] > 0.0 {
            ls[j] = 1;
        }
    }
    let mut b = [0u8; 144];
    b[0..2].copy_from_slice(&d.to_bits().to_le_bytes());
    b[2..4].copy_from_slice(&dmin.to_bits().to_le_bytes());
    let sc = &mut b[4..16];
    for j in 0..8 {
        if j < 4 {
            sc[j] = ls[j];
            sc[j + 4] = lm[j];
        } else {
            sc[j + 4] = (ls[j] & 0xF) | ((lm[j] & 0xF) << 4);
            sc[j - 4] |= (ls[j] >> 4) << 6;
            sc[j] |= (lm[j] >> 4) << 6;
        }
    }
    let mut q = [0u8; 256];
    for (j, sub) in x.chunks_exact(32).enumerate() {
        let (s, m) = (df * ls[j] as f32, dminf * lm[j] as f32);
        for (l, v) in sub.iter().enumerate() {
            q[32 * j + l] = if s > 0.0 { ((v + m) / s).round().clamp(0.0, 15.0) as u8 } else { 0 };
        }
    }
    for c in 0..4 {
        for l in 0..32 {
            b[16 + 32 * c + l] = q[64 * c + l] | (q[64 * c + 32 + l] << 4);
        }
    }
    b
}

#[cfg(test)]
mod tests {
    use super::super::testutil::Rng;
    use super::*;

    fn values(n: usize, seed: u64) -> Vec<f32> {
        let mut rng = Rng(seed);
        // Weight-like: mostly small, a few larger, mixed signs, with one all-zero stretch.
        (0..n)
            .map(|i| {
                if (64..96).contains(&i) {
                    0.0
                } else {
                    0.05 * rng.uniform() * (1.0 + 3.0 * rng.uniform().powi(8))
                }
            })
            .collect()
    }

    #[test]
    fn quant_q8_0_round_trip_error_is_at_most_half_a_step() {
        let x = values(4 * 256, 5);
        let q = quantize(GgmlType::Q8_0, &x, 4, 256).unwrap();
        let y = q.dequantize();
        for (bx, by) in x.chunks_exact(32).zip(y.chunks_exact(32)) {
            let step = bx.iter().fold(0f32, |a, v| a.max(v.abs())) / 127.0;
            for (a, b) in bx.iter().zip(by) {
                // Half a step, plus the f16 rounding of the scale (2⁻¹¹ relative) times |q| ≤ 127.
                assert!((a - b).abs() <= 0.5 * step + step * 127.0 / 2048.0 + 1e-9, "{a} vs {b}");
            }
        }
        assert_eq!(q.stored_bytes(), 4 * 8 * 34);
    }

    #[test]
    fn quant_q4_k_round_trip_error_is_bounded() {
        let x = values(3 * 512, 11);
        let q = quantize(GgmlType::Q4_K, &x, 3, 512).unwrap();
        let y = q.dequantize();
        let (mut se, mut sx) = (0f64, 0f64);
        for (bx, by) in x.chunks_exact(32).zip(y.chunks_exact(32)) {
            let lo = bx.iter().fold(0f32, |a, v| a.min(*v));
            let hi = bx.iter().fold(f32::NEG_INFINITY, |a, v| a.max(*v));
            let step = (hi - lo) / 15.0;
            for (a, b) in bx.iter().zip(by) {
                // Half a step from rounding q, up to another step from the 6-bit scale and
                // minimum of a sub-block whose range is small next to the block's largest.
                assert!((a - b).abs() <= 1.5 * step + 2e-3 * 0.2, "{a} vs {b} (step {step})");
                se += ((a - b) as f64).powi(2);
                sx += (*a as f64).powi(2);
            }
        }
        let rel = (se / sx).sqrt();
        assert!(rel < 0.12, "relative RMS error {rel:.3}");
        eprintln!("Q4_K round-trip relative RMS error {rel:.4}");
        assert_eq!(q.stored_bytes(), 3 * 2 * 144);
        // All-zero input stays zero.
        assert!(quantize(GgmlType::Q4_K, &[0.0; 256], 1, 256)
            .unwrap()
            .dequantize()
            .iter()
            .all(|v| *v == 0.0));
    }

    #[test]
    fn quant_quantize_rejects_partial_blocks_and_other_types() {
        assert!(quantize(GgmlType::Q4_K, &[0.0; 128], 1, 128).is_err());
        assert!(quantize(GgmlType::Q6_K, &[0.0; 256], 1, 256).is_err());
    }
}
