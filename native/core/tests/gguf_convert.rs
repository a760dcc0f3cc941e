//! GGUF → Hugging Face conversions: the llama q/k row permutation and its inverse, Gemma 3's
//! +1 norms, tensor names, and metadata → config for each architecture.

mod gguf_common;

/// Named `gguf` so `cargo test gguf` selects these tests.
mod gguf {

    use std::path::Path;

    use crate::gguf_common::{Rng, Writer};
    use tunekit_core::gguf::convert::{gguf_name, hf_name, permute_qk, to_hf, unpermute_qk};
    use tunekit_core::gguf::{decoder_config, Array, Gguf, GgufTokenizer, Hparams, Value};
    use tunekit_core::{Family, LoadErrorKind};

    #[test]
    fn permutation_matches_llama_cpp_on_small_matrices() {
        // One row per index so the permutation is visible: rows = 2 heads x head_dim 4.
        let rows: Vec<f32> = (0..8).map(|r| r as f32).collect();
        assert_eq!(permute_qk(&rows, 8, 1, 2).unwrap(), vec![0., 2., 1., 3., 4., 6., 5., 7.]);
        // head_dim 6, 2 columns: reshape(1, 2, 3, 2).swapaxes(1, 2) takes rows 0,3,1,4,2,5.
        let m: Vec<f32> = (0..12).map(|v| v as f32).collect();
        let want: Vec<f32> =
            [0, 3, 1, 4, 2, 5].iter().flat_map(|&r| [2.0 * r as f32, 2.0 * r as f32 + 1.0]).collect();
        assert_eq!(permute_qk(&m, 6, 2, 1).unwrap(), want);
        assert_eq!(unpermute_qk(&want, 6, 2, 1).unwrap(), m);
    }

    #[test]
    fn permute_then_unpermute_is_identity() {
        let mut rng = Rng(7);
        for (heads, hd, cols) in [(1, 2, 1), (4, 8, 3), (3, 16, 5), (8, 64, 2)] {
            let rows = heads * hd;
            let w: Vec<f32> = (0..rows * cols).map(|_| rng.unit()).collect();
            let p = permute_qk(&w, rows, cols, heads).unwrap();
            if hd > 2 {
                assert_ne!(p, w, "a permutation with head_dim {hd} > 2 moves rows");
            } else {
                assert_eq!(p, w, "head_dim 2 is the identity");
            }
            assert_eq!(unpermute_qk(&p, rows, cols, heads).unwrap(), w);
            assert_eq!(
                permute_qk(&unpermute_qk(&w, rows, cols, heads).unwrap(), rows, cols, heads).unwrap(),
                w
            );
        }
        assert!(permute_qk(&[0.0; 6], 6, 1, 4).is_err(), "rows not divisible by heads");
        assert!(permute_qk(&[0.0; 6], 6, 1, 2).is_err(), "odd head_dim");
        assert!(permute_qk(&[0.0; 6], 4, 1, 2).is_err(), "wrong length");
        assert!(unpermute_qk(&[0.0; 4], 4, 1, 0).is_err(), "zero heads");
    }

    #[test]
    fn tensor_names_map_both_ways() {
        let llama = [
            ("token_embd.weight", "model.embed_tokens.weight"),
            ("output_norm.weight", "model.norm.weight"),
            ("output.weight", "lm_head.weight"),
            ("blk.0.attn_norm.weight", "model.layers.0.input_layernorm.weight"),
            ("blk.3.attn_q.weight", "model.layers.3.self_attn.q_proj.weight"),
            ("blk.3.attn_q.bias", "model.layers.3.self_attn.q_proj.bias"),
            ("blk.12.attn_k.weight", "model.layers.12.self_attn.k_proj.weight"),
            ("blk.1.attn_v.weight", "model.layers.1.self_attn.v_proj.weight"),
            ("blk.1.attn_output.weight", "model.layers.1.self_attn.o_proj.weight"),
            ("blk.1.attn_q_norm.weight", "model.layers.1.self_attn.q_norm.weight"),
            ("blk.1.attn_k_norm.weight", "model.layers.1.self_attn.k_norm.weight"),
            ("blk.1.ffn_norm.weight", "model.layers.1.post_attention_layernorm.weight"),
            ("blk.1.ffn_gate.weight", "model.layers.1.mlp.gate_proj.weight"),
            ("blk.1.ffn_up.weight", "model.layers.1.mlp.up_proj.weight"),
            ("blk.7.ffn_down.weight", "model.layers.7.mlp.down_proj.weight"),
        ];
        for (g, h) in llama {
            assert_eq!(hf_name("llama", g).as_deref(), Some(h), "{g}");
            assert_eq!(gguf_name("llama", h).as_deref(), Some(g), "{h}");
        }
        let gemma = [
            ("blk.2.ffn_norm.weight", "model.layers.2.pre_feedforward_layernorm.weight"),
            ("blk.2.post_attention_norm.weight", "model.layers.2.post_attention_layernorm.weight"),
            ("blk.2.post_ffw_norm.weight", "model.layers.2.post_feedforward_layernorm.weight"),
            ("blk.2.attn_norm.weight", "model.layers.2.input_layernorm.weight"),
        ];
        for (g, h) in gemma {
            assert_eq!(hf_name("gemma3", g).as_deref(), Some(h), "{g}");
            assert_eq!(gguf_name("gemma3", h).as_deref(), Some(g), "{h}");
        }
        for bad in [
            "blk.x.attn_q.weight",
            "blk..attn_q.weight",
            "blk.01.attn_q.weight",
            "blk.0.attn_q.scale",
            "rope_freqs.weight",
            "blk.0.post_ffw_norm.weight",
        ] {
            assert_eq!(hf_name("llama", bad), None, "{bad}");
        }
    }

    #[test]
    fn to_hf_undoes_gguf_conventions() {
        // llama: q uses n_head, k uses n_head_kv.
        let q: Vec<f32> = (0..16).map(|v| v as f32).collect(); // 4 heads x hd 4, 1 col
        let stored_q = permute_qk(&q, 16, 1, 4).unwrap();
        let (name, back) = to_hf("llama", "blk.0.attn_q.weight", &[16, 1], stored_q.clone(), 4, 2).unwrap();
        assert_eq!((name.as_str(), back.clone()), ("model.layers.0.self_attn.q_proj.weight", q.clone()));
        let k: Vec<f32> = (0..8).map(|v| v as f32).collect(); // 2 kv heads x hd 4
        let stored_k = permute_qk(&k, 8, 1, 2).unwrap();
        assert_eq!(to_hf("llama", "blk.0.attn_k.weight", &[8, 1], stored_k.clone(), 4, 2).unwrap().1, k);
        assert_eq!(to_hf("llama", "blk.0.attn_k.bias", &[8], stored_k.clone(), 4, 2).unwrap().1, k);
        // qwen2/qwen3/gemma3: no permutation.
        for arch in ["qwen2", "qwen3", "gemma3"] {
            assert_eq!(
                to_hf(arch, "blk.0.attn_q.weight", &[16, 1], stored_q.clone(), 4, 2).unwrap().1,
                stored_q
            );
        }
        // gemma3 norms carry +1; llama norms do not.
        let norm = vec![1.0f32, 1.5, 0.25];
        for n in [
            "blk.0.attn_norm.weight",
            "blk.0.post_ffw_norm.weight",
            "blk.0.attn_q_norm.weight",
            "output_norm.weight",
        ] {
            assert_eq!(to_hf("gemma3", n, &[3], norm.clone(), 4, 1).unwrap().1, vec![0.0, 0.5, -0.75], "{n}");
            if n != "blk.0.post_ffw_norm.weight" {
                assert_eq!(to_hf("llama", n, &[3], norm.clone(), 4, 1).unwrap().1, norm, "{n}");
            }
        }
        assert_eq!(to_hf("gemma3", "blk.0.ffn_up.weight", &[3], norm.clone(), 4, 1).unwrap().1, norm);
        assert!(to_hf("llama", "blk.0.mystery.weight", &[3], norm.clone(), 4, 1).is_err());
        assert!(to_hf("llama", "blk.0.attn_q.weight", &[6, 1], vec![0.0; 6], 4, 4).is_err());
    }

    fn arch_file(arch: &str) -> Writer {
        let k = |s: &str| format!("{arch}.{s}");
        Writer::default()
            .kv("general.architecture", Value::String(arch.into()))
            .kv(&k("block_count"), Value::U32(3))
            .kv(&k("embedding_length"), Value::U32(32))
            .kv(&k("feed_forward_length"), Value::U32(64))
            .kv(&k("attention.head_count"), Value::U32(4))
            .kv(&k("attention.head_count_kv"), Value::U32(1))
            .kv(&k("attention.key_length"), Value::U32(16))
            .kv(&k("attention.value_length"), Value::U32(16))
            .kv(&k("attention.layer_norm_rms_epsilon"), Value::F32(1e-6))
            .kv(&k("context_length"), Value::U32(512))
            .kv(&k("attention.sliding_window"), Value::U32(128))
            .kv("tokenizer.ggml.model", Value::String("llama".into()))
            .kv(
                "tokenizer.ggml.tokens",
                Value::Array(Array::String((0..10).map(|i| format!("t{i}")).collect())),
            )
            .kv("tokenizer.ggml.eos_token_id", Value::U32(1))
            .f32_tensor("token_embd.weight", &[32, 10], &[0.0; 320])
    }

    #[test]
    fn metadata_to_config_per_architecture() {
        // On disk: rope_freqs.weight is read from the file by `decoder_config`.
        let path = std::env::temp_dir().join(format!("tunekit-gguf-config-{}.gguf", std::process::id()));
        let parse = |w: Writer| {
            std::fs::write(&path, w.bytes()).unwrap();
            Gguf::open(&path).unwrap()
        };

        let g = parse(arch_file("qwen3"));
        let c = decoder_config(&g).unwrap();
        assert_eq!(c.family, Family::Qwen3);
        assert_eq!((c.hidden_size, c.head_dim, c.num_key_value_heads, c.vocab_size), (32, 16, 1, 10));
        assert!(c.qk_norm && !c.qkv_bias);
        assert_eq!(c.rope_theta, 1_000_000.0, "qwen default");
        assert_eq!(c.sliding_window, vec![None; 3]);
        assert_eq!(c.eos_token_ids, vec![1]);

        let c = decoder_config(&parse(arch_file("qwen2"))).unwrap();
        assert_eq!(c.family, Family::Qwen2);
        assert!(c.qkv_bias && !c.o_bias && !c.qk_norm);

        let w = arch_file("llama")
            .kv("llama.rope.scaling.type", Value::String("linear".into()))
            .kv("llama.rope.scaling.factor", Value::F32(4.0))
            .f32_tensor("output.weight", &[32, 10], &[0.0; 320])
            .f32_tensor("blk.0.attn_q.bias", &[64], &[0.0; 64]);
        let c = decoder_config(&parse(w)).unwrap();
        assert_eq!(c.family, Family::Llama);
        assert!(!c.tie_word_embeddings && c.qkv_bias);
        assert_eq!(c.rope_scaling, tunekit_core::config::RopeScaling::Linear { factor: 4.0 });

        // gemma3: hyperparameters read; the decoder has no Gemma family yet.
        let g = parse(arch_file("gemma3"));
        let h = Hparams::from_gguf(&g).unwrap();
        assert_eq!((h.key_length, h.sliding_window, h.head_count_kv), (Some(16), Some(128), 1));
        // Gemma 3 with llama.cpp's defaults: every 6th layer global, sliding rope base 1e4,
        // scores scaled by key_length^-0.5, GeGLU, (1 + w) norms, sandwich norms, tied.
        let c = decoder_config(&g).unwrap();
        assert_eq!(c.family, tunekit_core::Family::Gemma3);
        let local = c.local_rope.as_ref().unwrap();
        assert_eq!(local.theta, 10_000.0);
        for (i, w) in c.sliding_window.iter().enumerate() {
            assert_eq!(*w, if (i + 1) % 6 == 0 { None } else { Some(128) }, "layer {i}");
            assert_eq!(local.layers[i], (i + 1) % 6 != 0);
        }
        assert_eq!(c.attn_scale, 0.25);
        assert!(c.norm_weight_offset && c.sandwich_norms && c.qk_norm && c.tie_word_embeddings);
        assert_eq!(c.embed_scale, Some((c.hidden_size as f64).sqrt()));

        // Missing and ill-typed keys are InvalidConfig; rope_freqs (Llama 3) must hold one
        // positive factor per rotary frequency.
        let e = decoder_config(&parse(
            Writer::default().kv("general.architecture", Value::String("llama".into())),
        ))
        .unwrap_err();
        assert_eq!(e.load_kind(), Some(LoadErrorKind::InvalidConfig));
        let e =
            decoder_config(&parse(arch_file("llama").kv("llama.rope.freq_base", Value::String("x".into()))))
                .unwrap_err();
        assert_eq!(e.load_kind(), Some(LoadErrorKind::InvalidConfig));
        let c = decoder_config(&parse(arch_file("llama").f32_tensor(
            "rope_freqs.weight",
            &[8],
            &[1.0, 1.0, 1.0, 2.0, 4.0, 8.0, 8.0, 8.0],
        )))
        .unwrap();
        assert_eq!(
            c.rope_scaling,
            tunekit_core::config::RopeScaling::FreqFactors(vec![1.0, 1.0, 1.0, 2.0, 4.0, 8.0, 8.0, 8.0])
        );
        for bad in [&[1.0f32; 4][..], &[1.0, 0.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0][..]] {
            let e = decoder_config(&parse(arch_file("llama").f32_tensor(
                "rope_freqs.weight",
                &[bad.len() as u64],
                bad,
            )))
            .unwrap_err();
            assert_eq!(e.load_kind(), Some(LoadErrorKind::InvalidConfig), "{bad:?}");
        }
        let mut w = arch_file("llama");
        for (key, v) in &mut w.kv {
            if key == "llama.attention.head_count_kv" {
                *v = Value::U32(3);
            }
        }
        let e = decoder_config(&parse(w)).unwrap_err();
        assert_eq!(e.load_kind(), Some(LoadErrorKind::InvalidConfig));
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn tokenizer_metadata_is_validated() {
        let parse = |w: Writer| Gguf::parse(&w.bytes(), Path::new("t.gguf")).unwrap();
        let t = GgufTokenizer::from_gguf(&parse(arch_file("llama"))).unwrap();
        assert_eq!(t.tokens.len(), 10);
        assert_eq!(t.eos_token_id, Some(1));
        for bad in [
            arch_file("llama").kv("tokenizer.ggml.scores", Value::Array(Array::F32(vec![0.0; 9]))),
            arch_file("llama").kv("tokenizer.ggml.token_type", Value::Array(Array::U32(vec![1; 10]))),
            arch_file("llama").kv("tokenizer.ggml.bos_token_id", Value::U32(10)),
            arch_file("llama").kv("tokenizer.ggml.merges", Value::String("a b".into())),
            Writer::default().kv("tokenizer.ggml.model", Value::String("llama".into())),
        ] {
            let e = GgufTokenizer::from_gguf(&parse(bad)).unwrap_err();
            assert_eq!(e.code(), "model_load");
            assert!(
                matches!(e.load_kind(), Some(LoadErrorKind::InvalidTokenizer | LoadErrorKind::InvalidConfig)),
                "{e}"
            );
        }
    }

    #[test]
    fn hf_tensors_reads_and_converts_a_whole_file() {
        // A llama file with q stored permuted and an F16 k: hf_tensors returns HF order.
        let q: Vec<f32> = (0..64 * 32).map(|v| (v % 97) as f32 / 8.0).collect(); // [64 out, 32 in]
        let k: Vec<f32> = (0..16 * 32).map(|v| (v % 31) as f32 / 4.0).collect(); // [16 out, 32 in]
        let stored_q = permute_qk(&q, 64, 32, 4).unwrap();
        let stored_k = permute_qk(&k, 16, 32, 1).unwrap();
        let k_f16: Vec<u8> =
            stored_k.iter().flat_map(|&x| half::f16::from_f32(x).to_bits().to_le_bytes()).collect();
        let w = arch_file("llama").f32_tensor("blk.0.attn_q.weight", &[32, 64], &stored_q).tensor(
            "blk.0.attn_k.weight",
            &[32, 16],
            tunekit_core::gguf::GgmlType::F16,
            k_f16,
        );
        let dir = std::env::temp_dir().join(format!("tunekit-gguf-conv-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("llama.gguf");
        std::fs::write(&path, w.bytes()).unwrap();
        let g = Gguf::open(&path).unwrap();
        let all = tunekit_core::gguf::convert::hf_tensors(&g).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        let names: Vec<&str> = all.iter().map(|(n, _, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "model.embed_tokens.weight",
                "model.layers.0.self_attn.q_proj.weight",
                "model.layers.0.self_attn.k_proj.weight"
            ]
        );
        assert_eq!(all[1].1, vec![64, 32]);
        assert_eq!(all[1].2, q);
        assert_eq!(all[2].1, vec![16, 32]);
        assert_eq!(all[2].2, k, "values are exact in f16");
    }
}
