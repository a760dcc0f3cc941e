//! GGUF dequantisation: bitwise equality with gguf-py (llama.cpp's Python package, whose
//! dequantisers mirror ggml's reference) on committed fixtures, hand-computed blocks, and
//! writer → reader round trips of every listed type with in-test quantisers.

mod gguf_common;

/// Named `gguf` so `cargo test gguf` selects these tests.
mod gguf {

    use std::path::{Path, PathBuf};

    use crate::gguf_common::{quantize_q4_k, quantize_q5_0, quantize_q6_k, quantize_q8_0, Rng, Writer};
    use half::{bf16, f16};
    use tunekit_core::gguf::dequant::{dequantize, DequantError};
    use tunekit_core::gguf::{GgmlType, Gguf};

    fn fixture(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../test/fixtures/gguf").join(name)
    }

    fn bits(v: &[f32]) -> Vec<u32> {
        v.iter().map(|x| x.to_bits()).collect()
    }

    #[test]
    fn matches_gguf_py_bitwise_on_fixtures() {
        let g = Gguf::open(&fixture("dequant.gguf")).unwrap();
        let manifest: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(fixture("dequant_expected.json")).unwrap())
                .unwrap();
        let expected_bytes = std::fs::read(fixture("dequant_expected.bin")).unwrap();
        let expected: Vec<f32> =
            expected_bytes.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
        let mut seen = std::collections::BTreeSet::new();
        let entries = manifest.as_array().unwrap();
        assert_eq!(entries.len(), g.tensors.len());
        for e in entries {
            let name = e["name"].as_str().unwrap();
            let ty = e["type"].as_str().unwrap();
            let offset = e["offset"].as_u64().unwrap() as usize;
            let count = e["count"].as_u64().unwrap() as usize;
            let shape: Vec<usize> =
                e["shape"].as_array().unwrap().iter().map(|d| d.as_u64().unwrap() as usize).collect();
            let info = g.tensor(name).unwrap();
            assert_eq!(format!("{}", info.ggml_type), ty, "{name}");
            let (got_shape, got) = g.load_f32(name).unwrap();
            assert_eq!(got_shape, shape, "{name}");
            assert_eq!(
                bits(&got),
                bits(&expected[offset..offset + count]),
                "{name} ({ty}) differs from gguf-py"
            );
            seen.insert(ty.to_string());
        }
        for ty in [
            "F32", "F16", "BF16", "Q8_0", "Q5_0", "Q4_K", "Q6_K", "Q4_0", "Q4_1", "Q5_1", "Q2_K", "Q3_K",
            "Q5_K",
        ] {
            assert!(seen.contains(ty), "fixture lacks {ty}");
        }
    }

    #[test]
    fn q8_0_quantiser_matches_the_reference_bytes() {
        // gguf-py's Q8_0 quantiser is bit-exact with ggml's quantize_row_q8_0_ref, and so must
        // ours be, on the same data.
        let bytes = std::fs::read(fixture("dequant.gguf")).unwrap();
        let g = Gguf::parse(&bytes, &fixture("dequant.gguf")).unwrap();
        let (_, data) = g.load_f32_from(&bytes, "f.F32").unwrap();
        assert_eq!(quantize_q8_0(&data), g.tensor_bytes(&bytes, "q.Q8_0").unwrap());
        assert_eq!(quantize_q5_0(&data), g.tensor_bytes(&bytes, "q.Q5_0").unwrap());
    }

    #[test]
    fn hand_computed_blocks() {
        // Q8_0: d = 0.5, q = -128..=-97.
        let mut b = f16::from_f32(0.5).to_bits().to_le_bytes().to_vec();
        b.extend((0..32).map(|i: i32| (i - 128) as i8 as u8));
        let y = dequantize(GgmlType::Q8_0, &b, 32).unwrap();
        assert_eq!(y[0], -64.0);
        assert_eq!(y[31], -48.5);

        // Q5_0: d = 1; value j has low nibble j%16 and fifth bit set for j >= 16 -> q = j - 16.
        let mut b = f16::from_f32(1.0).to_bits().to_le_bytes().to_vec();
        b.extend_from_slice(&0xFFFF_0000u32.to_le_bytes());
        b.extend((0..16u8).map(|j| j | (j << 4)));
        let y = dequantize(GgmlType::Q5_0, &b, 32).unwrap();
        let want: Vec<f32> = (0..32).map(|j| (j % 16 + if j >= 16 { 16 } else { 0 } - 16) as f32).collect();
        assert_eq!(y, want);

        // Q4_K: d = 1, dmin = 0.5; sub-block scales 1..=8 and mins 0..=7 (6-bit packing), all
        // nibbles 3 -> x = sc * 3 - 0.5 * m.
        let (sc, mn): (Vec<u8>, Vec<u8>) = ((1..=8).collect(), (0..8).collect());
        let mut scales = [0u8; 12];
        for j in 0..8 {
            if j < 4 {
                scales[j] = sc[j];
                scales[j + 4] = mn[j];
            } else {
                scales[j + 4] = (sc[j] & 0xF) | ((mn[j] & 0xF) << 4);
                scales[j - 4] |= (sc[j] >> 4) << 6;
                scales[j] |= (mn[j] >> 4) << 6;
            }
        }
        let mut b = f16::from_f32(1.0).to_bits().to_le_bytes().to_vec();
        b.extend_from_slice(&f16::from_f32(0.5).to_bits().to_le_bytes());
        b.extend_from_slice(&scales);
        b.extend_from_slice(&[0x33; 128]);
        let y = dequantize(GgmlType::Q4_K, &b, 256).unwrap();
        for (i, v) in y.iter().enumerate() {
            let j = i / 32;
            assert_eq!(*v, sc[j] as f32 * 3.0 - 0.5 * mn[j] as f32, "Q4_K value {i}");
        }

        // Q6_K: d = 0.25, scales k-8 for sub-block k, every 6-bit value 33 (-> q = 1):
        // low nibble 1 in every ql nibble, high bits 0b10 in every qh pair.
        let mut b = vec![0x11u8; 128];
        b.extend_from_slice(&[0b1010_1010; 64]);
        b.extend((0..16).map(|k| (k as i8 - 8) as u8));
        b.extend_from_slice(&f16::from_f32(0.25).to_bits().to_le_bytes());
        let y = dequantize(GgmlType::Q6_K, &b, 256).unwrap();
        for (i, v) in y.iter().enumerate() {
            assert_eq!(*v, 0.25 * ((i / 16) as f32 - 8.0), "Q6_K value {i}");
        }
    }

    #[test]
    fn length_mismatches_and_unsupported_types() {
        assert!(matches!(dequantize(GgmlType::Q8_0, &[0; 33], 32), Err(DequantError::Length { .. })));
        assert!(matches!(dequantize(GgmlType::Q8_0, &[0; 34], 31), Err(DequantError::Length { .. })));
        assert!(matches!(dequantize(GgmlType::F32, &[0; 7], 2), Err(DequantError::Length { .. })));
        assert!(matches!(
            dequantize(GgmlType::Q8_K, &[0; 292], 256),
            Err(DequantError::Unsupported(GgmlType::Q8_K))
        ));
        assert_eq!(dequantize(GgmlType::Q4_K, &[], 0).unwrap(), Vec::<f32>::new());
    }

    #[test]
    fn writer_round_trip_of_every_listed_type() {
        let mut rng = Rng(42);
        let data: Vec<f32> = (0..2 * 512).map(|_| rng.normal()).collect();
        let f32b: Vec<u8> = data.iter().flat_map(|x| x.to_le_bytes()).collect();
        let f16b: Vec<u8> = data.iter().flat_map(|&x| f16::from_f32(x).to_bits().to_le_bytes()).collect();
        let bf16b: Vec<u8> = data.iter().flat_map(|&x| bf16::from_f32(x).to_bits().to_le_bytes()).collect();
        let dims = [512u64, 2];
        let w = Writer::default()
            .tensor("F32", &dims, GgmlType::F32, f32b)
            .tensor("F16", &dims, GgmlType::F16, f16b)
            .tensor("BF16", &dims, GgmlType::BF16, bf16b)
            .tensor("Q8_0", &dims, GgmlType::Q8_0, quantize_q8_0(&data))
            .tensor("Q5_0", &dims, GgmlType::Q5_0, quantize_q5_0(&data))
            .tensor("Q4_K", &dims, GgmlType::Q4_K, quantize_q4_k(&data))
            .tensor("Q6_K", &dims, GgmlType::Q6_K, quantize_q6_k(&data));
        let bytes = w.bytes();
        let g = Gguf::parse(&bytes, Path::new("round.gguf")).unwrap();
        let get = |n: &str| {
            let (shape, y) = g.load_f32_from(&bytes, n).unwrap();
            assert_eq!(shape, vec![2, 512]);
            y
        };
        assert_eq!(bits(&get("F32")), bits(&data));
        let f16_want: Vec<f32> = data.iter().map(|&x| f16::from_f32(x).to_f32()).collect();
        assert_eq!(bits(&get("F16")), bits(&f16_want));
        let bf16_want: Vec<f32> = data.iter().map(|&x| bf16::from_f32(x).to_f32()).collect();
        assert_eq!(bits(&get("BF16")), bits(&bf16_want));
        // Quantised: close to the data, with errors bounded by each format's step size. A wrong
        // block layout scrambles values and blows far past these bounds.
        for (name, tol) in [("Q8_0", 0.02f32), ("Q5_0", 0.15), ("Q4_K", 0.3), ("Q6_K", 0.06)] {
            let y = get(name);
            let max_err = y.iter().zip(&data).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
            let amax = data.iter().fold(0f32, |m, v| m.max(v.abs()));
            assert!(max_err <= tol * amax, "{name}: max error {max_err} (amax {amax})");
            let rms =
                (y.iter().zip(&data).map(|(a, b)| (a - b) * (a - b)).sum::<f32>() / data.len() as f32).sqrt();
            assert!(rms < tol * amax / 2.0, "{name}: rms error {rms}");
        }
    }
}
