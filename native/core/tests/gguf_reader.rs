//! GGUF reader: metadata round trips (every value type), alignment, tensor infos, and
//! malformed files (bad magic/version, lying counts and offsets, truncation at every byte,
//! random mutations) → typed errors, never panics.

mod gguf_common;

/// Named `gguf` so `cargo test gguf` selects these tests.
mod gguf {

    use std::path::{Path, PathBuf};

    use crate::gguf_common::{Rng, Writer};
    use tunekit_core::gguf::{decoder_config, Array, GgmlType, Gguf, GgufTokenizer, Hparams, Value};
    use tunekit_core::{Error, LoadErrorKind};

    fn p() -> &'static Path {
        Path::new("test.gguf")
    }

    fn fixture(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../test/fixtures/gguf").join(name)
    }

    fn kind(r: Result<Gguf, Error>) -> LoadErrorKind {
        match r {
            Ok(_) => panic!("expected an error"),
            Err(e) => {
                assert_eq!(e.code(), "model_load", "{e}");
                e.load_kind().unwrap()
            }
        }
    }

    fn all_values() -> Vec<(&'static str, Value)> {
        vec![
            ("v.u8", Value::U8(250)),
            ("v.i8", Value::I8(-7)),
            ("v.u16", Value::U16(65535)),
            ("v.i16", Value::I16(-32768)),
            ("v.u32", Value::U32(u32::MAX)),
            ("v.i32", Value::I32(i32::MIN)),
            ("v.f32", Value::F32(-1.5e-3)),
            ("v.bool", Value::Bool(true)),
            ("v.bool_f", Value::Bool(false)),
            ("v.string", Value::String("ünïcödé ✓".into())),
            ("v.empty", Value::String(String::new())),
            ("v.u64", Value::U64(u64::MAX)),
            ("v.i64", Value::I64(i64::MIN)),
            ("v.f64", Value::F64(std::f64::consts::PI)),
            ("a.u8", Value::Array(Array::U8(vec![0, 1, 255]))),
            ("a.i8", Value::Array(Array::I8(vec![-128, 127]))),
            ("a.u16", Value::Array(Array::U16(vec![1, 65535]))),
            ("a.i16", Value::Array(Array::I16(vec![-2, 3]))),
            ("a.u32", Value::Array(Array::U32(vec![7]))),
            ("a.i32", Value::Array(Array::I32(vec![-1, 0, 1]))),
            ("a.f32", Value::Array(Array::F32(vec![0.25, -0.0, f32::INFINITY]))),
            ("a.bool", Value::Array(Array::Bool(vec![true, false]))),
            ("a.string", Value::Array(Array::String(vec!["x".into(), String::new(), "yz".into()]))),
            ("a.u64", Value::Array(Array::U64(vec![u64::MAX, 0]))),
            ("a.i64", Value::Array(Array::I64(vec![i64::MAX]))),
            ("a.f64", Value::Array(Array::F64(vec![1e300, -2.0]))),
            ("a.empty", Value::Array(Array::U32(vec![]))),
            (
                "a.nested",
                Value::Array(Array::Array(vec![
                    Array::String(vec!["in".into()]),
                    Array::F32(vec![1.0, 2.0]),
                ])),
            ),
        ]
    }

    fn small_file() -> Writer {
        let mut w = Writer::default();
        for (k, v) in all_values() {
            w = w.kv(k, v);
        }
        w.kv("general.architecture", Value::String("llama".into()))
            .f32_tensor("a", &[4, 2], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0])
            .f32_tensor("b", &[3], &[-1.0, 0.5, 9.0])
    }

    #[test]
    fn metadata_round_trips_every_value_type() {
        let bytes = small_file().bytes();
        let g = Gguf::parse(&bytes, p()).unwrap();
        assert_eq!(g.version, 3);
        for (k, v) in all_values() {
            assert_eq!(g.get(k), Some(&v), "{k}");
        }
        // File order is kept.
        assert_eq!(g.metadata[0].0, "v.u8");
        assert_eq!(g.alignment, 32);
        assert_eq!(g.data_offset % 32, 0);
        assert_eq!(g.tensors.len(), 2);
        let a = g.tensor("a").unwrap();
        assert_eq!(a.dims, vec![4, 2]);
        assert_eq!(a.shape(), vec![2, 4]);
        assert_eq!(a.ggml_type, GgmlType::F32);
        assert_eq!(g.tensor("b").unwrap().offset, 32);
        let (shape, data) = g.load_f32_from(&bytes, "a").unwrap();
        assert_eq!(shape, vec![2, 4]);
        assert_eq!(data, vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0]);
        assert_eq!(g.load_f32_from(&bytes, "b").unwrap().1, vec![-1.0, 0.5, 9.0]);
        assert_eq!(
            g.load_f32_from(&bytes, "missing").unwrap_err().load_kind(),
            Some(LoadErrorKind::MissingTensor)
        );
    }

    #[test]
    fn version_2_and_custom_alignment() {
        let mut w = small_file().kv("general.alignment", Value::U32(64));
        w.alignment = 64;
        w.version = 2;
        let bytes = w.bytes();
        let g = Gguf::parse(&bytes, p()).unwrap();
        assert_eq!((g.version, g.alignment), (2, 64));
        assert_eq!(g.data_offset % 64, 0);
        assert_eq!(g.tensor("b").unwrap().offset, 64);
        assert_eq!(g.load_f32_from(&bytes, "b").unwrap().1, vec![-1.0, 0.5, 9.0]);
    }

    #[test]
    fn reads_from_a_file_on_disk() {
        let dir = std::env::temp_dir().join(format!("tunekit-gguf-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("small.gguf");
        std::fs::write(&path, small_file().bytes()).unwrap();
        let g = Gguf::open(&path).unwrap();
        assert_eq!(g.load_f32("b").unwrap().1, vec![-1.0, 0.5, 9.0]);
        let missing = Gguf::open(&dir.join("nope.gguf")).unwrap_err();
        assert_eq!(missing.load_kind(), Some(LoadErrorKind::NotFound));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn python_gguf_metadata_fixture() {
        let g = Gguf::open(&fixture("metadata.gguf")).unwrap();
        assert_eq!(g.alignment, 64);
        let s = |k: &str| g.get(k).unwrap_or_else(|| panic!("{k}")).clone();
        assert_eq!(s("test.u8"), Value::U8(200));
        assert_eq!(s("test.i8"), Value::I8(-100));
        assert_eq!(s("test.u16"), Value::U16(60000));
        assert_eq!(s("test.i16"), Value::I16(-30000));
        assert_eq!(s("test.u32"), Value::U32(4_000_000_000));
        assert_eq!(s("test.i32"), Value::I32(-2_000_000_000));
        assert_eq!(s("test.f32"), Value::F32(0.1));
        assert_eq!(s("test.bool"), Value::Bool(true));
        assert_eq!(s("test.string"), Value::String("héllo GGUF ✓".into()));
        assert_eq!(s("test.u64"), Value::U64(18_000_000_000_000_000_000));
        assert_eq!(s("test.i64"), Value::I64(-9_000_000_000_000_000_000));
        assert_eq!(s("test.f64"), Value::F64(0.1));
        assert_eq!(s("test.arr_u8"), Value::Array(Array::U8(vec![1, 2, 255])));
        assert_eq!(s("test.arr_i16"), Value::Array(Array::I16(vec![-1, 2, -3])));
        assert_eq!(s("test.arr_f64"), Value::Array(Array::F64(vec![0.5, -1.25])));
        assert_eq!(s("test.arr_bool"), Value::Array(Array::Bool(vec![true, false, true])));
        assert_eq!(
            s("test.arr_str"),
            Value::Array(Array::String(vec!["a".into(), "".into(), "ünïcode".into()]))
        );
        assert_eq!(
            s("test.arr_nested"),
            Value::Array(Array::Array(vec![Array::I32(vec![1, 2]), Array::I32(vec![3])]))
        );

        let h = Hparams::from_gguf(&g).unwrap();
        assert_eq!(h.architecture, "llama");
        assert_eq!((h.block_count, h.embedding_length, h.feed_forward_length), (2, 64, 128));
        assert_eq!((h.head_count, h.head_count_kv, h.context_length), (4, 2, Some(2048)));
        assert_eq!(h.rope_freq_base, Some(100000.0));
        assert_eq!(h.rms_eps, Some(1e-5f32 as f64));

        let c = decoder_config(&g).unwrap();
        assert_eq!(c.hidden_size, 64);
        assert_eq!(c.num_hidden_layers, 2);
        assert_eq!((c.num_attention_heads, c.num_key_value_heads, c.head_dim), (4, 2, 16));
        assert_eq!(c.intermediate_size, 128);
        assert_eq!(c.vocab_size, 5);
        assert_eq!(c.max_position_embeddings, 2048);
        assert_eq!(c.rope_theta, 100000.0);
        assert!(c.tie_word_embeddings, "no output.weight means tied");
        assert!(!c.qkv_bias && !c.o_bias && !c.mlp_bias && !c.qk_norm);
        assert_eq!(c.bos_token_id, Some(0));
        assert_eq!(c.eos_token_ids, vec![1]);

        let t = GgufTokenizer::from_gguf(&g).unwrap();
        assert_eq!(t.model, "gpt2");
        assert_eq!(t.pre.as_deref(), Some("smollm"));
        assert_eq!(t.tokens, vec!["<s>", "</s>", "a", "b", "ab"]);
        assert_eq!(t.scores, Some(vec![0.0, 0.0, -1.0, -2.0, -3.0]));
        assert_eq!(t.token_types, Some(vec![3, 3, 1, 1, 1]));
        assert_eq!(t.merges, Some(vec!["a b".to_string()]));
        assert_eq!((t.bos_token_id, t.eos_token_id, t.padding_token_id), (Some(0), Some(1), Some(1)));
        assert_eq!(t.chat_template.as_deref(), Some("{% for m in messages %}{{ m['content'] }}{% endfor %}"));

        let (shape, emb) = g.load_f32("token_embd.weight").unwrap();
        assert_eq!(shape, vec![5, 64]);
        assert!(emb.iter().enumerate().all(|(i, &v)| v == i as f32 / 64.0));
    }

    // ---- malformed files ----

    fn header(magic: &[u8; 4], version: u32, tensors: u64, kvs: u64) -> Vec<u8> {
        let mut b = magic.to_vec();
        b.extend_from_slice(&version.to_le_bytes());
        b.extend_from_slice(&tensors.to_le_bytes());
        b.extend_from_slice(&kvs.to_le_bytes());
        b
    }

    #[test]
    fn bad_magic_and_version() {
        let mut bytes = small_file().bytes();
        bytes[0] = b'X';
        assert_eq!(kind(Gguf::parse(&bytes, p())), LoadErrorKind::MalformedGguf);
        assert_eq!(kind(Gguf::parse(b"GGML\x03\0\0\0", p())), LoadErrorKind::MalformedGguf);
        for v in [0u32, 1, 4, u32::MAX] {
            let mut w = small_file();
            w.version = v;
            assert_eq!(kind(Gguf::parse(&w.bytes(), p())), LoadErrorKind::MalformedGguf, "version {v}");
        }
        assert_eq!(kind(Gguf::parse(b"", p())), LoadErrorKind::Truncated);
        assert_eq!(kind(Gguf::parse(b"GG", p())), LoadErrorKind::Truncated);
    }

    #[test]
    fn absurd_counts_and_lengths() {
        // Counts far beyond what the file could hold are rejected before allocating.
        for (t, k) in [(u64::MAX, 0), (0, u64::MAX), (1 << 40, 1), (1, 1 << 40)] {
            let mut b = header(b"GGUF", 3, t, k);
            b.extend_from_slice(&[0u8; 64]);
            assert_eq!(kind(Gguf::parse(&b, p())), LoadErrorKind::MalformedGguf, "{t} {k}");
        }
        // A key whose length exceeds the file.
        let mut b = header(b"GGUF", 3, 0, 1);
        b.extend_from_slice(&(1u64 << 62).to_le_bytes());
        b.extend_from_slice(&[0u8; 16]);
        assert!(matches!(
            kind(Gguf::parse(&b, p())),
            LoadErrorKind::MalformedGguf | LoadErrorKind::Truncated
        ));
        // A string value whose length exceeds the file.
        let mut b = header(b"GGUF", 3, 0, 1);
        b.extend_from_slice(&1u64.to_le_bytes());
        b.push(b'k');
        b.extend_from_slice(&8u32.to_le_bytes());
        b.extend_from_slice(&u64::MAX.to_le_bytes());
        assert_eq!(kind(Gguf::parse(&b, p())), LoadErrorKind::Truncated);
        // An array count that cannot fit (u64 elements, 2^61 of them).
        for elem in [0u32, 8, 9, 10] {
            let mut b = header(b"GGUF", 3, 0, 1);
            b.extend_from_slice(&1u64.to_le_bytes());
            b.push(b'k');
            b.extend_from_slice(&9u32.to_le_bytes());
            b.extend_from_slice(&elem.to_le_bytes());
            b.extend_from_slice(&(1u64 << 61).to_le_bytes());
            b.extend_from_slice(&[0u8; 32]);
            assert_eq!(kind(Gguf::parse(&b, p())), LoadErrorKind::MalformedGguf, "elem {elem}");
        }
        // Arrays nested without end.
        let mut b = header(b"GGUF", 3, 0, 1);
        b.extend_from_slice(&1u64.to_le_bytes());
        b.push(b'k');
        b.extend_from_slice(&9u32.to_le_bytes());
        for _ in 0..10_000 {
            b.extend_from_slice(&9u32.to_le_bytes());
            b.extend_from_slice(&1u64.to_le_bytes());
        }
        assert_eq!(kind(Gguf::parse(&b, p())), LoadErrorKind::MalformedGguf);
    }

    #[test]
    fn bad_values_and_duplicates() {
        let cases: Vec<(&str, Vec<u8>)> = {
            let mut v = Vec::new();
            // unknown value type 13
            let mut b = header(b"GGUF", 3, 0, 1);
            b.extend_from_slice(&1u64.to_le_bytes());
            b.push(b'k');
            b.extend_from_slice(&13u32.to_le_bytes());
            b.extend_from_slice(&[0u8; 8]);
            v.push(("unknown value type", b));
            // bool byte 2
            let mut b = header(b"GGUF", 3, 0, 1);
            b.extend_from_slice(&1u64.to_le_bytes());
            b.push(b'k');
            b.extend_from_slice(&7u32.to_le_bytes());
            b.push(2);
            v.push(("bool 2", b));
            // invalid UTF-8 key
            let mut b = header(b"GGUF", 3, 0, 1);
            b.extend_from_slice(&2u64.to_le_bytes());
            b.extend_from_slice(&[0xC3, 0x28]);
            b.extend_from_slice(&0u32.to_le_bytes());
            b.push(0);
            v.push(("bad utf-8", b));
            v
        };
        for (what, b) in cases {
            assert_eq!(kind(Gguf::parse(&b, p())), LoadErrorKind::MalformedGguf, "{what}");
        }
        let w = Writer::default().kv("k", Value::U8(1)).kv("k", Value::U8(2));
        assert_eq!(kind(Gguf::parse(&w.bytes(), p())), LoadErrorKind::MalformedGguf);
        let w = Writer::default().f32_tensor("t", &[1], &[1.0]).f32_tensor("t", &[1], &[2.0]);
        assert_eq!(kind(Gguf::parse(&w.bytes(), p())), LoadErrorKind::MalformedGguf);
        for a in [Value::U32(0), Value::U32(48), Value::U64(32), Value::String("32".into())] {
            let w = small_file().kv("general.alignment", a.clone());
            assert_eq!(kind(Gguf::parse(&w.bytes(), p())), LoadErrorKind::MalformedGguf, "{a:?}");
        }
    }

    #[test]
    fn lying_tensor_infos() {
        let base = || Writer::default().f32_tensor("a", &[8], &[0.0; 8]).f32_tensor("b", &[8], &[0.0; 8]);

        // Offset not a multiple of the alignment.
        let mut w = base();
        w.tensors[1].offset = Some(33);
        assert_eq!(kind(Gguf::parse(&w.bytes(), p())), LoadErrorKind::MalformedGguf);
        // Overlapping tensors.
        let mut w = base();
        w.tensors[1].offset = Some(0);
        assert_eq!(kind(Gguf::parse(&w.bytes(), p())), LoadErrorKind::MalformedGguf);
        // Offset past the end of the data.
        let mut w = base();
        w.tensors[1].offset = Some(1 << 20);
        assert_eq!(kind(Gguf::parse(&w.bytes(), p())), LoadErrorKind::Truncated);
        // Offset so large that offset + size overflows.
        let mut w = base();
        w.tensors[1].offset = Some(u64::MAX - 31);
        assert!(matches!(
            kind(Gguf::parse(&w.bytes(), p())),
            LoadErrorKind::MalformedGguf | LoadErrorKind::Truncated
        ));
        // Dims claiming more data than the file holds.
        let mut w = base();
        w.tensors[1].dims = vec![1 << 30];
        assert_eq!(kind(Gguf::parse(&w.bytes(), p())), LoadErrorKind::Truncated);
        // Dims whose product overflows.
        let mut w = base();
        w.tensors[1].dims = vec![1 << 32, 1 << 32, 1 << 32];
        assert_eq!(kind(Gguf::parse(&w.bytes(), p())), LoadErrorKind::MalformedGguf);
        // Too many dims.
        let mut w = base();
        w.tensors[1].dims = vec![1, 1, 1, 1, 8];
        assert_eq!(kind(Gguf::parse(&w.bytes(), p())), LoadErrorKind::MalformedGguf);
        // Unknown ggml type.
        for t in [4u32, 5, 16, 29, 31, 999, u32::MAX] {
            let mut w = base();
            w.tensors[1].type_id = t;
            assert_eq!(kind(Gguf::parse(&w.bytes(), p())), LoadErrorKind::UnsupportedDtype, "type {t}");
        }
        // Row length not a multiple of the block size.
        let w = Writer::default().tensor("q", &[16], GgmlType::Q8_0, vec![0; 34]);
        assert_eq!(kind(Gguf::parse(&w.bytes(), p())), LoadErrorKind::MalformedGguf);
        // Tensor data cut off at the end of the file.
        let mut bytes = base().bytes();
        bytes.truncate(bytes.len() - 1);
        assert_eq!(kind(Gguf::parse(&bytes, p())), LoadErrorKind::Truncated);
    }

    #[test]
    fn a_known_but_undequantisable_type_errors_at_load() {
        let w = Writer::default().tensor("q2", &[256], GgmlType::Q8_K, vec![0; 292]);
        let bytes = w.bytes();
        let g = Gguf::parse(&bytes, p()).unwrap();
        let e = g.load_f32_from(&bytes, "q2").unwrap_err();
        assert_eq!(e.load_kind(), Some(LoadErrorKind::UnsupportedDtype), "{e}");
    }

    #[test]
    fn truncation_at_every_byte_is_a_typed_error() {
        let mut w = small_file();
        w = w.tensor("q", &[32], GgmlType::Q8_0, vec![1; 34]);
        let bytes = w.bytes();
        Gguf::parse(&bytes, p()).unwrap();
        for n in 0..bytes.len() {
            let k = kind(Gguf::parse(&bytes[..n], p()));
            assert!(matches!(k, LoadErrorKind::Truncated | LoadErrorKind::MalformedGguf), "cut at {n}: {k}");
        }
    }

    /// Parses `bytes`; if that succeeds, exercises every accessor. Must never panic.
    fn exercise(bytes: &[u8]) -> bool {
        let Ok(g) = Gguf::parse(bytes, p()) else { return false };
        for t in &g.tensors {
            let _ = g.load_f32_from(bytes, &t.name);
        }
        let _ = Hparams::from_gguf(&g);
        let _ = decoder_config(&g);
        let _ = GgufTokenizer::from_gguf(&g);
        true
    }

    #[test]
    fn fuzz_random_mutations_never_panic() {
        let valid = small_file()
            .kv("tokenizer.ggml.model", Value::String("llama".into()))
            .kv("tokenizer.ggml.tokens", Value::Array(Array::String(vec!["a".into(), "b".into()])))
            .kv("llama.block_count", Value::U32(1))
            .kv("llama.embedding_length", Value::U32(8))
            .kv("llama.feed_forward_length", Value::U32(16))
            .kv("llama.attention.head_count", Value::U32(2))
            .tensor("q8", &[32], GgmlType::Q8_0, vec![3; 34])
            .tensor("q4k", &[256], GgmlType::Q4_K, vec![0x11; 144])
            .tensor("q6k", &[256], GgmlType::Q6_K, vec![0x22; 210])
            .bytes();
        assert!(exercise(&valid));
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        let mut parsed = 0;
        for _ in 0..600 {
            let mut b = valid.clone();
            for _ in 0..1 + rng.below(4) {
                let i = rng.below(b.len() as u64) as usize;
                match rng.below(6) {
                    0 => b[i] ^= 1 << rng.below(8),
                    1 => b[i] = [0x00, 0xFF, 0x7F, 0x80, 0x01][rng.below(5) as usize],
                    2 => b[i] = rng.below(256) as u8,
                    3 => b.truncate(i),
                    4 => b.insert(i, rng.below(256) as u8),
                    _ => {
                        // Overwrite 8 bytes with a huge or small u64 (lengths, counts, offsets).
                        let v = [u64::MAX, 1 << 62, 1 << 32, 0, 1][rng.below(5) as usize];
                        let end = (i + 8).min(b.len());
                        b[i..end].copy_from_slice(&v.to_le_bytes()[..end - i]);
                    }
                }
                if b.is_empty() {
                    break;
                }
            }
            if exercise(&b) {
                parsed += 1;
            }
        }
        // Some mutations land in tensor data or values and still parse; most break something.
        assert!(parsed > 0 && parsed < 600, "parsed {parsed}");
    }
}
