//! HF model directory → GGUF base export, checked through our own reader: the file converts
//! back to exactly the Hugging Face tensors and config it came from.

/// Named `gguf` so `cargo test gguf` selects these tests.
mod gguf {
    use std::collections::HashMap;
    use std::path::{Path, PathBuf};

    use candle_core::{DType, Device};
    use tunekit_core::gguf::convert::hf_tensors;
    use tunekit_core::gguf::export::{export_model, BaseArch, BaseDtype, ModelExportOptions};
    use tunekit_core::gguf::{decoder_config, Gguf, GgufTokenizer};
    use tunekit_core::DecoderConfig;

    fn demo() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models/demo-counting")
    }

    fn out(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("tunekit-gguf-export-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir.join(name)
    }

    #[test]
    fn demo_model_exports_to_a_gguf_base_that_converts_back_exactly() {
        let path = out("demo.gguf");
        let summary = export_model(&demo(), &path, &ModelExportOptions::default()).unwrap();
        let g = Gguf::open(&path).unwrap();
        assert_eq!(summary.bytes, std::fs::metadata(&path).unwrap().len());
        assert_eq!(summary.tensors, g.tensors.len());
        assert_eq!(g.get("general.type").and_then(|v| v.as_str()), Some("model"));
        assert!(g.tensor("output.weight").is_none(), "tied embeddings: no output.weight");

        let hf = DecoderConfig::from_file(&demo().join("config.json")).unwrap();
        let back = decoder_config(&g).unwrap();
        assert_eq!(
            (back.family, back.hidden_size, back.num_hidden_layers, back.head_dim, back.vocab_size),
            (hf.family, hf.hidden_size, hf.num_hidden_layers, hf.head_dim, hf.vocab_size)
        );
        assert_eq!((back.num_attention_heads, back.num_key_value_heads), (4, 2));
        assert_eq!(back.intermediate_size, hf.intermediate_size);
        assert!((back.rms_norm_eps - hf.rms_norm_eps).abs() < 1e-9);
        assert_eq!(back.rope_theta, hf.rope_theta);
        assert_eq!(BaseArch::from_model_path(&path).unwrap(), BaseArch::from_model_path(&demo()).unwrap());

        // Tensors: un-permuting q/k and renaming gives the safetensors values bit for bit.
        let original: HashMap<String, candle_core::Tensor> =
            candle_core::safetensors::load(demo().join("model.safetensors"), &Device::Cpu).unwrap();
        let converted = hf_tensors(&g).unwrap();
        assert_eq!(converted.len(), original.len());
        for (name, shape, values) in converted {
            let t = &original[&name];
            assert_eq!(t.dims(), shape.as_slice(), "{name}");
            let want = t.to_dtype(DType::F32).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap();
            assert_eq!(values, want, "{name}");
        }

        let tok = GgufTokenizer::from_gguf(&g).unwrap();
        assert_eq!(tok.model, "gpt2");
        assert_eq!(tok.pre.as_deref(), Some("smollm"), "Digits(individual) + ByteLevel is SmolLM's split");
        assert_eq!(tok.tokens.len(), 512, "padded to vocab_size");
        assert_eq!(&tok.tokens[..4], ["<unk>", "<s>", "</s>", "<pad>"]);
        assert_eq!(tok.tokens[511], "[PAD511]");
        let types = tok.token_types.unwrap();
        assert_eq!((types[1], types[19], types[511]), (3, 1, 5), "control, normal, unused");
        assert_eq!(tok.merges.unwrap()[0], "n d");
        assert_eq!((tok.bos_token_id, tok.eos_token_id, tok.padding_token_id), (Some(1), Some(2), Some(3)));
        assert_eq!(tok.add_bos_token, Some(true));

        // And tunekit loads its own export: same tokens, same logits as the directory.
        let dir_model = tunekit_core::Model::load(demo()).unwrap();
        let gguf_model = tunekit_core::Model::load(&path).unwrap();
        for text in ["User: 41\n\nAssistant: 42", "nine hundred ninety nine", " 1,999 and  -7"] {
            let ids = dir_model.tokenizer.encode(text, true).unwrap();
            assert_eq!(gguf_model.tokenizer.encode(text, true).unwrap(), ids, "{text:?}");
            let a: Vec<f32> =
                dir_model.decoder.logits(&ids).unwrap().flatten_all().unwrap().to_vec1().unwrap();
            let b: Vec<f32> =
                gguf_model.decoder.logits(&ids).unwrap().flatten_all().unwrap().to_vec1().unwrap();
            let err = a.iter().zip(&b).map(|(x, y)| (x - y).abs()).fold(0f32, f32::max);
            assert!(err < 1e-4, "{text:?}: logits differ by {err}");
        }

        // F16 halves the matrices and keeps norms F32.
        let half = out("demo-f16.gguf");
        let opts = ModelExportOptions { dtype: BaseDtype::F16, ..Default::default() };
        let small = export_model(&demo(), &half, &opts).unwrap();
        assert!(small.bytes < summary.bytes * 6 / 10, "{} vs {}", small.bytes, summary.bytes);
        let h = Gguf::open(&half).unwrap();
        assert_eq!(h.tensor("blk.0.attn_q.weight").unwrap().ggml_type.to_string(), "F16");
        assert_eq!(h.tensor("blk.0.attn_norm.weight").unwrap().ggml_type.to_string(), "F32");
        std::fs::remove_file(&path).unwrap();
        std::fs::remove_file(&half).unwrap();
    }

    /// Llama 3 rope scaling travels as `rope_freqs.weight` and comes back as the same
    /// frequencies: the exported file computes the directory's logits.
    #[test]
    fn llama3_scaled_model_exports_with_rope_freqs() {
        let dir =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../test/fixtures/models/llama3-long-context");
        let path = out("llama3.gguf");
        let opts = ModelExportOptions { tokenizer_pre: Some("gpt-2".into()), ..Default::default() };
        export_model(&dir, &path, &opts).unwrap();
        let g = Gguf::open(&path).unwrap();
        assert!(g.tensor("rope_freqs.weight").is_some());
        let cfg = decoder_config(&g).unwrap();
        assert!(matches!(cfg.rope_scaling, tunekit_core::config::RopeScaling::FreqFactors(_)));
        let a = tunekit_core::Model::load(&dir).unwrap();
        let b = tunekit_core::Model::load(&path).unwrap();
        let ids: Vec<u32> = (0..200).map(|i| (i * 7 + 3) % 250).collect();
        let la: Vec<f32> = a.decoder.logits(&ids).unwrap().flatten_all().unwrap().to_vec1().unwrap();
        let lb: Vec<f32> = b.decoder.logits(&ids).unwrap().flatten_all().unwrap().to_vec1().unwrap();
        let err = la.iter().zip(&lb).map(|(x, y)| (x - y).abs()).fold(0f32, f32::max);
        assert!(err < 1e-4, "logits differ by {err}");
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn model_export_refuses_unknown_pre_tokenizers_and_missing_inputs() {
        // A copy of the demo model whose pre-tokenizer llama.cpp has no name for.
        let dir = out("odd-model");
        std::fs::create_dir_all(&dir).unwrap();
        for f in ["config.json", "model.safetensors", "tokenizer_config.json"] {
            std::fs::copy(demo().join(f), dir.join(f)).unwrap();
        }
        let mut tok: serde_json::Value =
            serde_json::from_slice(&std::fs::read(demo().join("tokenizer.json")).unwrap()).unwrap();
        tok["pre_tokenizer"] = serde_json::json!({"type": "Whitespace"});
        std::fs::write(dir.join("tokenizer.json"), serde_json::to_vec(&tok).unwrap()).unwrap();
        let target = out("odd.gguf");
        let err = export_model(&dir, &target, &ModelExportOptions::default()).unwrap_err();
        assert_eq!(err.code(), "export_failed");
        assert!(err.to_string().contains("Whitespace") && err.to_string().contains("tokenizerPre"), "{err}");
        assert!(!target.exists(), "nothing written on error");
        // Naming the llama.cpp pre-tokenizer explicitly is the way out.
        let opts = ModelExportOptions { tokenizer_pre: Some("gpt-2".into()), ..Default::default() };
        export_model(&dir, &target, &opts).unwrap();
        assert_eq!(
            Gguf::open(&target).unwrap().get("tokenizer.ggml.pre").and_then(|v| v.as_str()),
            Some("gpt-2")
        );

        let err = export_model(&out("nowhere"), &target, &ModelExportOptions::default()).unwrap_err();
        assert_eq!(err.code(), "model_load");
        std::fs::remove_dir_all(&dir).unwrap();
        std::fs::remove_file(&target).unwrap();
    }

    #[test]
    fn model_export_covers_qwen_and_refuses_what_llama_cpp_would_run_differently() {
        let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../test/fixtures/models");
        // Qwen 2 (q/k/v biases) and Qwen 3 (q/k norms, head_dim ≠ hidden/heads) convert back
        // exactly, unpermuted.
        for name in ["qwen2-bias", "qwen3-qknorm", "llama-tied-gqa"] {
            let path = out(&format!("{name}.gguf"));
            export_model(&fixtures.join(name), &path, &ModelExportOptions::default()).unwrap();
            let g = Gguf::open(&path).unwrap();
            let hf = DecoderConfig::from_file(&fixtures.join(name).join("config.json")).unwrap();
            let back = decoder_config(&g).unwrap();
            assert_eq!(
                (back.family, back.head_dim, back.qkv_bias),
                (hf.family, hf.head_dim, hf.qkv_bias),
                "{name}"
            );
            let original: HashMap<String, candle_core::Tensor> =
                candle_core::safetensors::load(fixtures.join(name).join("model.safetensors"), &Device::Cpu)
                    .unwrap();
            for (hf_name, _, values) in hf_tensors(&g).unwrap() {
                let want = original[&hf_name].to_dtype(DType::F32).unwrap().flatten_all().unwrap();
                assert_eq!(values, want.to_vec1::<f32>().unwrap(), "{name} {hf_name}");
            }
            std::fs::remove_file(&path).unwrap();
        }
        for (name, why) in [("mistral-window", "sliding-window"), ("gemma3-sliding-gqa", "not supported yet")]
        {
            let target = out(&format!("{name}.gguf"));
            let err =
                export_model(&fixtures.join(name), &target, &ModelExportOptions::default()).unwrap_err();
            assert_eq!(err.code(), "export_failed", "{name}");
            assert!(err.to_string().contains(why), "{name}: {err}");
            assert!(!target.exists());
        }
    }
}
