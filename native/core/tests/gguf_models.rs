//! GGUF bases end to end on the committed HF fixture models: each model is written as a GGUF
//! the way llama.cpp's converter lays it out (GGUF names, `{arch}.*` metadata, llama q/k
//! rows permuted), then read back: the config must equal the one from config.json and every
//! tensor must come back in HF layout, exactly (F32) or within Q8_0's step (quantised).
//!
//! `TUNEKIT_GGUF_REAL=/path/model.gguf` additionally parses a real llama.cpp file and
//! dequantises all of its tensors (not run in CI).

mod gguf_common;

/// Named `gguf` so `cargo test gguf` selects these tests.
mod gguf {
    use std::path::{Path, PathBuf};

    use crate::gguf_common::{quantize_q8_0, Writer};
    use candle_core::Device;
    use tunekit_core::gguf::convert::{gguf_name, hf_tensors, permute_qk, HfTensor};
    use tunekit_core::gguf::{decoder_config, GgmlType, Gguf, Value};
    use tunekit_core::safetensors::SafetensorsFile;
    use tunekit_core::DecoderConfig;

    fn model_dir(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../test/fixtures/models").join(name)
    }

    /// HF checkpoint → GGUF bytes, like convert_hf_to_gguf.py (F32, or Q8_0 for matrices).
    fn to_gguf(dir: &Path, quantise: bool) -> (DecoderConfig, Vec<HfTensor>, Vec<u8>) {
        let (cfg, originals, w) = gguf_writer(dir, quantise);
        (cfg, originals, w.bytes())
    }

    /// [`to_gguf`] before encoding, so a test can change metadata.
    fn gguf_writer(dir: &Path, quantise: bool) -> (DecoderConfig, Vec<HfTensor>, Writer) {
        let cfg = DecoderConfig::from_file(&dir.join("config.json")).unwrap();
        let gemma = cfg.family == tunekit_core::Family::Gemma3;
        let arch = if gemma { "gemma3" } else { cfg.family.model_type() };
        let k = |s: &str| format!("{arch}.{s}");
        let mut w = Writer::default()
            .kv("general.architecture", Value::String(arch.into()))
            .kv(&k("block_count"), Value::U32(cfg.num_hidden_layers as u32))
            .kv(&k("context_length"), Value::U32(cfg.max_position_embeddings as u32))
            .kv(&k("embedding_length"), Value::U32(cfg.hidden_size as u32))
            .kv(&k("feed_forward_length"), Value::U32(cfg.intermediate_size as u32))
            .kv(&k("attention.head_count"), Value::U32(cfg.num_attention_heads as u32))
            .kv(&k("attention.head_count_kv"), Value::U32(cfg.num_key_value_heads as u32))
            .kv(&k("attention.key_length"), Value::U32(cfg.head_dim as u32))
            .kv(&k("attention.value_length"), Value::U32(cfg.head_dim as u32))
            .kv(&k("rope.freq_base"), Value::F32(cfg.rope_theta as f32))
            .kv(&k("attention.layer_norm_rms_epsilon"), Value::F32(cfg.rms_norm_eps as f32))
            .kv("tokenizer.ggml.bos_token_id", Value::U32(cfg.bos_token_id.unwrap()))
            .kv("tokenizer.ggml.eos_token_id", Value::U32(cfg.eos_token_ids[0]));
        if gemma {
            // What convert_hf_to_gguf.py writes for Gemma 3, plus the optional keys a file
            // needs when it departs from llama.cpp's built-in Gemma 3 defaults.
            let local = cfg.local_rope.as_ref().unwrap();
            let pattern = local.layers.iter().position(|s| !s).unwrap() + 1;
            w = w
                .kv(&k("attention.sliding_window"), Value::U32(cfg.sliding_window[0].unwrap() as u32))
                .kv(&k("attention.sliding_window_pattern"), Value::U32(pattern as u32))
                .kv(&k("rope.freq_base_swa"), Value::F32(local.theta as f32))
                .kv(&k("attention.scale"), Value::F32(cfg.attn_scale as f32));
            if let Some(cap) = cfg.final_logit_softcapping {
                w = w.kv(&k("final_logit_softcapping"), Value::F32(cap as f32));
            }
            if let tunekit_core::config::RopeScaling::Linear { factor } = cfg.rope_scaling {
                w = w
                    .kv(&k("rope.scaling.type"), Value::String("linear".into()))
                    .kv(&k("rope.scaling.factor"), Value::F32(factor as f32));
            }
        }
        if let tunekit_core::config::RopeScaling::Llama3 { .. } = cfg.rope_scaling {
            // convert_hf_to_gguf.py stores Llama 3 scaling as one divisor per frequency.
            let plain = tunekit_core::decoder::Rotary::with(
                cfg.head_dim,
                cfg.rope_theta,
                &tunekit_core::config::RopeScaling::None,
            );
            let scaled = tunekit_core::decoder::Rotary::with(cfg.head_dim, cfg.rope_theta, &cfg.rope_scaling);
            let factors: Vec<f32> = plain.inv_freq.iter().zip(&scaled.inv_freq).map(|(a, b)| a / b).collect();
            w = w.f32_tensor("rope_freqs.weight", &[factors.len() as u64], &factors);
        }
        let st = SafetensorsFile::open(dir.join("model.safetensors")).unwrap();
        let mut names: Vec<&String> = st.tensors().keys().collect();
        names.sort();
        let mut originals = Vec::new();
        for name in names {
            let t = st.load_f32(name, &Device::Cpu).unwrap();
            let shape = t.dims().to_vec();
            let data: Vec<f32> = t.flatten_all().unwrap().to_vec1().unwrap();
            let g = gguf_name(arch, name).unwrap_or_else(|| panic!("no GGUF name for {name}"));
            let rows = shape[0];
            let cols: usize = shape[1..].iter().product();
            let stored = if arch == "llama" && (g.contains(".attn_q.") || g.contains(".attn_k.")) {
                let heads =
                    if g.contains(".attn_q.") { cfg.num_attention_heads } else { cfg.num_key_value_heads };
                permute_qk(&data, rows, cols, heads).unwrap()
            } else if gemma && g.contains("norm.") {
                data.iter().map(|w| w + 1.0).collect()
            } else {
                data.clone()
            };
            let dims: Vec<u64> = shape.iter().rev().map(|&d| d as u64).collect();
            w = if quantise && shape.len() == 2 && cols.is_multiple_of(32) {
                w.tensor(&g, &dims, GgmlType::Q8_0, quantize_q8_0(&stored))
            } else {
                w.f32_tensor(&g, &dims, &stored)
            };
            originals.push((name.clone(), shape, data));
        }
        (cfg, originals, w)
    }

    fn write_tmp(bytes: &[u8], tag: &str) -> PathBuf {
        let path = std::env::temp_dir().join(format!("tunekit-gguf-{tag}-{}.gguf", std::process::id()));
        std::fs::write(&path, bytes).unwrap();
        path
    }

    const MODELS: &[&str] = &[
        "llama-tied-gqa",
        "llama-smol-mha-f16",
        "qwen2-bias",
        "qwen2-untied-mqa-f16",
        "qwen3-qknorm",
        "qwen3-tied-mha-bf16",
        "gemma3-sliding-gqa",
        "gemma3-legacy-mqa-softcap-bf16",
        "llama3-long-context",
    ];

    /// Metadata no model can run with is refused at load, naming the GGUF key, instead of
    /// loading and generating garbage.
    #[test]
    fn implausible_gguf_metadata_is_refused_naming_the_key() {
        let cases = [
            ("llama.block_count", Value::U32(0)),
            ("llama.attention.layer_norm_rms_epsilon", Value::F32(f32::NAN)),
            ("llama.attention.layer_norm_rms_epsilon", Value::F32(-1.0)),
            ("llama.rope.freq_base", Value::F32(0.0)),
            ("llama.rope.freq_base", Value::F32(f32::INFINITY)),
            ("llama.context_length", Value::U32(0)),
        ];
        for (key, value) in cases {
            let dir = model_dir("llama-tied-gqa");
            let (_, _, w) = gguf_writer(&dir, false);
            let path = write_tmp(&tokenizer_meta(&dir, w.set(key, value.clone())).bytes(), "implausible");
            let err = match tunekit_core::Model::load(&path) {
                Ok(_) => panic!("{key} = {value:?} loaded"),
                Err(e) => e,
            };
            assert_eq!(err.load_kind(), Some(tunekit_core::LoadErrorKind::InvalidConfig), "{key}: {err}");
            assert!(err.to_string().contains(key), "{key}: the message must name the key: {err}");
            std::fs::remove_file(&path).unwrap();
        }
    }

    #[test]
    fn fixture_models_round_trip_through_gguf() {
        for model in MODELS {
            let (cfg, originals, bytes) = to_gguf(&model_dir(model), false);
            let path = write_tmp(&bytes, model);
            let g = Gguf::open(&path).unwrap();
            let mut got = decoder_config(&g).unwrap();
            // GGUF stores eps, rope bases and scales as f32.
            assert!((got.rms_norm_eps - cfg.rms_norm_eps).abs() < 1e-12, "{model}");
            got.rms_norm_eps = cfg.rms_norm_eps;
            assert!((got.attn_scale - cfg.attn_scale).abs() < 1e-7, "{model}");
            got.attn_scale = cfg.attn_scale;
            if let tunekit_core::config::RopeScaling::FreqFactors(f) = &got.rope_scaling {
                // Llama 3 scaling comes back as its per-frequency factors (the decoder test
                // below checks they give the same logits).
                assert!(
                    matches!(cfg.rope_scaling, tunekit_core::config::RopeScaling::Llama3 { .. }),
                    "{model}"
                );
                assert_eq!(f.len(), cfg.head_dim / 2, "{model}");
                got.rope_scaling = cfg.rope_scaling.clone();
            }
            if let (Some(a), Some(b)) = (&mut got.final_logit_softcapping, cfg.final_logit_softcapping) {
                assert!((*a - b).abs() < 1e-6, "{model}");
                *a = b;
            }
            assert_eq!(got, cfg, "{model}: config from GGUF metadata differs from config.json");
            let tensors = hf_tensors(&g).unwrap();
            std::fs::remove_file(&path).unwrap();
            let mut tensors: Vec<_> = tensors.into_iter().collect();
            tensors.sort_by(|a, b| a.0.cmp(&b.0));
            assert_eq!(tensors.len(), originals.len(), "{model}");
            for ((n, s, d), (on, os, od)) in tensors.iter().zip(&originals) {
                assert_eq!((n, s), (on, os), "{model}");
                if model.starts_with("gemma3") && n.ends_with("norm.weight") {
                    // (w + 1) - 1 in f32 loses the low bits of small w.
                    let err = d.iter().zip(od).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
                    assert!(err <= 1.2e-7, "{model}: {n} off by {err} after the GGUF round trip");
                } else {
                    assert!(d == od, "{model}: {n} differs after the GGUF round trip");
                }
            }
        }
    }

    /// `baseWeights: "bf16"` on a quantised GGUF: the embedding stays in its blocks (no second
    /// full f32 copy beside the bf16 head) and looks up exactly the f32 base's rows; the tied
    /// head and the projections are the f32 base's matrices rounded to bf16.
    #[test]
    fn bf16_base_from_a_quantised_gguf_keeps_the_embedding_stored_and_exact() {
        use tunekit_core::decoder::Decoder;
        use tunekit_core::quant::BaseFormat;
        use tunekit_core::weights::Weights;
        let (_, _, bytes) = to_gguf(&model_dir("llama-tied-gqa"), true);
        let path = write_tmp(&bytes, "q8-bf16");
        // As `Model::load_gguf_as` reads it (this file has no tokenizer, which `Model` needs).
        let g = Gguf::open(&path).unwrap();
        let (dev, cfg) = (Device::Cpu, decoder_config(&g).unwrap());
        let load = |w: Weights| Decoder::load(cfg.clone(), &w, &dev).unwrap();
        let f32m = load(Weights::from_gguf(&g, &dev).unwrap());
        let bf16 = load(Weights::from_gguf_stored(&g, &dev).unwrap().with_format(BaseFormat::Bf16));
        std::fs::remove_file(&path).unwrap();
        assert_eq!(bf16.embed_tokens.stored_type(), Some(GgmlType::Q8_0));
        assert_eq!(bf16.lm_head.stored_type(), Some(GgmlType::BF16));
        let (e16, e32) = (bf16.embed_tokens.bytes(), f32m.embed_tokens.bytes());
        assert!(e16 * 3 < e32, "embedding {e16} bytes vs {e32} in f32");
        let vocab = f32m.cfg.vocab_size as u32;
        let ids = candle_core::Tensor::new(&[[0u32, 5, vocab - 1], [7, 7, 1]], &dev).unwrap();
        let flat = |t: candle_core::Tensor| t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        assert_eq!(flat(bf16.embed(&ids).unwrap()), flat(f32m.embed(&ids).unwrap()));
        let round = |t: candle_core::Tensor| {
            flat(t.to_dtype(candle_core::DType::BF16).unwrap().to_dtype(candle_core::DType::F32).unwrap())
        };
        assert_eq!(flat(bf16.lm_head.to_dense().unwrap()), round(f32m.lm_head.to_dense().unwrap()));
        for (l32, l16) in f32m.layers.iter().zip(&bf16.layers) {
            for which in 0..tunekit_core::decoder::PROJECTIONS.len() {
                let (a, b) = (&l32.projection(which).base, &l16.projection(which).base);
                assert_eq!(b.stored_type(), Some(GgmlType::BF16));
                assert_eq!(flat(b.to_dense().unwrap()), round(a.to_dense().unwrap()));
            }
        }
    }

    #[test]
    fn quantised_fixture_model_dequantises_close_to_the_original() {
        let (_, originals, bytes) = to_gguf(&model_dir("llama-tied-gqa"), true);
        let path = write_tmp(&bytes, "q8");
        let g = Gguf::open(&path).unwrap();
        assert!(g.tensors.iter().any(|t| t.ggml_type == GgmlType::Q8_0));
        let mut tensors = hf_tensors(&g).unwrap();
        std::fs::remove_file(&path).unwrap();
        tensors.sort_by(|a, b| a.0.cmp(&b.0));
        for ((n, _, d), (_, _, od)) in tensors.iter().zip(&originals) {
            // Q8_0's step is amax/127 per 32 values; half a step plus f16 scale rounding.
            let amax = od.iter().fold(0f32, |m, v| m.max(v.abs()));
            let err = d.iter().zip(od).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
            assert!(err <= amax / 127.0 * 0.51 + 1e-6, "{n}: max error {err}, amax {amax}");
        }
    }

    /// Opt-in: `TUNEKIT_GGUF_REAL=/path/to/model.gguf cargo test -p tunekit-core real_gguf -- --nocapture`
    /// (the variable is read when the tests are built; without it the test is ignored).
    #[test]
    #[cfg_attr(not(tunekit_gguf_real), ignore = "set TUNEKIT_GGUF_REAL to a llama.cpp GGUF file to run it")]
    fn real_gguf_file_parses_and_dequantises() {
        let path = option_env!("TUNEKIT_GGUF_REAL_PATH").expect("built with TUNEKIT_GGUF_REAL set");
        let g = Gguf::open(Path::new(&path)).unwrap();
        let h = tunekit_core::gguf::Hparams::from_gguf(&g).unwrap();
        eprintln!("{h:?}");
        let mut counts = std::collections::BTreeMap::new();
        for t in &g.tensors {
            *counts.entry(t.ggml_type.to_string()).or_insert(0) += 1;
        }
        eprintln!("{} tensors: {counts:?}", g.tensors.len());
        if let Ok(tok) = tunekit_core::gguf::GgufTokenizer::from_gguf(&g) {
            eprintln!(
                "tokenizer {} with {} tokens, template: {}",
                tok.model,
                tok.tokens.len(),
                tok.chat_template.is_some()
            );
        }
        let mut file = std::fs::File::open(&path).unwrap();
        for t in &g.tensors {
            let bytes = g.read_tensor_bytes(&mut file, &t.name).unwrap();
            let data = g.dequantize(&t.name, &bytes).unwrap();
            assert!(data.iter().all(|v| v.is_finite()), "{} has non-finite values", t.name);
        }
        let dump = std::env::var("TUNEKIT_GGUF_DUMP").ok();
        if let Some(dir) = dump {
            // Writes a few dequantised tensors for comparison with gguf-py.
            for name in [
                "token_embd.weight",
                "blk.0.attn_q.weight",
                "blk.0.attn_output.weight",
                "blk.0.ffn_down.weight",
            ] {
                if let Some(t) = g.tensor(name) {
                    let bytes = g.read_tensor_bytes(&mut file, name).unwrap();
                    let data = g.dequantize(name, &bytes).unwrap();
                    let raw: Vec<u8> = data.iter().flat_map(|v| v.to_le_bytes()).collect();
                    std::fs::write(Path::new(&dir).join(format!("{name}.{}.f32", t.ggml_type)), raw).unwrap();
                }
            }
        }
    }

    #[test]
    fn decoder_loaded_from_gguf_matches_the_safetensors_model() {
        use tunekit_core::decoder::Decoder;
        use tunekit_core::weights::Weights;
        let ids = [1u32, 5, 17, 42, 99, 3, 250, 7];
        for model in MODELS {
            let dir = model_dir(model);
            let reference = tunekit_core::Model::load(&dir).unwrap();
            let want: Vec<f32> =
                reference.decoder.logits(&ids).unwrap().flatten_all().unwrap().to_vec1().unwrap();
            for quantise in [false, true] {
                let (_, _, bytes) = to_gguf(&dir, quantise);
                let path = write_tmp(&bytes, &format!("dec-{model}-{quantise}"));
                let g = Gguf::open(&path).unwrap();
                let weights = Weights::from_gguf(&g, &Device::Cpu).unwrap();
                let decoder = Decoder::load(decoder_config(&g).unwrap(), &weights, &Device::Cpu).unwrap();
                std::fs::remove_file(&path).unwrap();
                let got: Vec<f32> = decoder.logits(&ids).unwrap().flatten_all().unwrap().to_vec1().unwrap();
                assert_eq!(got.len(), want.len());
                let err = got.iter().zip(&want).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
                let scale = want.iter().fold(0f32, |m, v| m.max(v.abs()));
                // F32: identical weights, only rms eps differs (GGUF stores it as f32).
                let tol = if quantise { 0.05 * scale } else { 1e-4 };
                eprintln!("{model} quantised={quantise}: max logit error {err:.3e} (max |logit| {scale:.2})");
                assert!(err <= tol, "{model} quantised={quantise}: max logit error {err}");
            }
        }
    }

    /// tokenizer.json → GGUF tokenizer metadata the way llama.cpp's converter writes a
    /// byte-level BPE vocabulary.
    fn tokenizer_meta(dir: &Path, w: Writer) -> Writer {
        let t: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("tokenizer.json")).unwrap()).unwrap();
        let vocab = t["model"]["vocab"].as_object().unwrap();
        let mut tokens = vec![String::new(); vocab.len()];
        for (s, id) in vocab {
            tokens[id.as_u64().unwrap() as usize] = s.clone();
        }
        let mut types = vec![1i32; tokens.len()];
        for a in t["added_tokens"].as_array().unwrap() {
            let id = a["id"].as_u64().unwrap() as usize;
            types[id] = if a["special"].as_bool().unwrap() { 3 } else { 4 };
        }
        let merges: Vec<String> = t["model"]["merges"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| match m {
                serde_json::Value::String(s) => s.clone(),
                pair => format!("{} {}", pair[0].as_str().unwrap(), pair[1].as_str().unwrap()),
            })
            .collect();
        use tunekit_core::gguf::Array;
        w.kv("tokenizer.ggml.model", Value::String("gpt2".into()))
            .kv("tokenizer.ggml.tokens", Value::Array(Array::String(tokens)))
            .kv("tokenizer.ggml.token_type", Value::Array(Array::I32(types)))
            .kv("tokenizer.ggml.merges", Value::Array(Array::String(merges)))
            .kv("tokenizer.ggml.add_bos_token", Value::Bool(true))
    }

    #[test]
    fn tokenizer_from_gguf_matches_tokenizer_json() {
        let texts = [
            "Hello world",
            " leading space and  double  spaces",
            "numbers 12345 and punctuation!?",
            "ünïcödé ✓ and emoji 🙂",
            "<s>special</s> in text",
            "",
            "line\nbreaks\r\n\ttabs",
        ];
        for model in ["llama-tied-gqa", "qwen3-qknorm"] {
            let dir = model_dir(model);
            let (_, _, bytes) = to_gguf(&dir, false);
            let g0 = Gguf::parse(&bytes, Path::new("x.gguf")).unwrap();
            // Re-write with tokenizer metadata added (bos/eos ids are already present).
            let w = Writer { kv: g0.metadata.clone(), ..Writer::default() };
            let w = tokenizer_meta(&dir, w);
            let g = Gguf::parse(&w.bytes(), Path::new("tok.gguf")).unwrap();
            let ours = tunekit_core::gguf::GgufTokenizer::from_gguf(&g)
                .unwrap()
                .to_hf(Path::new("tok.gguf"))
                .unwrap();
            let hf = tokenizers::Tokenizer::from_file(dir.join("tokenizer.json")).unwrap();
            for text in texts {
                for special in [false, true] {
                    let a = ours.encode(text, special).unwrap();
                    let b = hf.encode(text, special).unwrap();
                    assert_eq!(a.get_ids(), b.get_ids(), "{model}: {text:?} (special {special})");
                    let ids = b.get_ids();
                    assert_eq!(
                        ours.decode(ids, false).unwrap(),
                        hf.decode(ids, false).unwrap(),
                        "{model}: {text:?}"
                    );
                    assert_eq!(
                        ours.decode(ids, true).unwrap(),
                        hf.decode(ids, true).unwrap(),
                        "{model}: {text:?}"
                    );
                }
            }
        }
        // Unsupported models and pre-tokenizers are refused, not approximated.
        let mut t = tunekit_core::gguf::GgufTokenizer::from_gguf(&{
            let w = tokenizer_meta(&model_dir("llama-tied-gqa"), Writer::default());
            Gguf::parse(&w.bytes(), Path::new("t.gguf")).unwrap()
        })
        .unwrap();
        t.pre = Some("llama-bpe".into());
        assert!(t.to_hf(Path::new("t.gguf")).is_err());
        t.pre = None;
        t.model = "llama".into();
        let e = t.to_hf(Path::new("t.gguf")).unwrap_err();
        assert_eq!(e.load_kind(), Some(tunekit_core::LoadErrorKind::InvalidTokenizer));
    }
}

/// A tiny random Gemma 3 written as llama.cpp writes Gemma 3 GGUFs (norms +1, Q8_0/Q5_0
/// matrices, SentencePiece vocabulary, no tunekit-only keys) loads through `Model::load` and
/// computes what transformers computes after loading the same file
/// (`scripts/fixtures/make_spm_fixtures.py`).
#[test]
fn tiny_gemma3_gguf_matches_transformers() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../test/fixtures/gguf");
    let want: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("tiny-gemma3-expected.json")).unwrap())
            .unwrap();
    let model = tunekit_core::Model::load(dir.join("tiny-gemma3.gguf")).unwrap();
    let cfg = model.config();
    assert_eq!(cfg.family, tunekit_core::Family::Gemma3);
    assert_eq!(cfg.sliding_window, [Some(8), Some(8), Some(8), Some(8), Some(8), None]);
    assert!(cfg.tie_word_embeddings && cfg.norm_weight_offset && cfg.sandwich_norms);
    let u32s = |v: &serde_json::Value| -> Vec<u32> {
        v.as_array().unwrap().iter().map(|x| x.as_u64().unwrap() as u32).collect()
    };
    let ids = u32s(&want["ids"]);
    let got: Vec<Vec<f32>> = model.decoder.logits(&ids).unwrap().to_vec2().unwrap();
    let mut err = 0f32;
    for (row, expected) in got.iter().zip(want["logits"].as_array().unwrap()) {
        for (a, b) in row.iter().zip(expected.as_array().unwrap()) {
            err = err.max((a - b.as_f64().unwrap() as f32).abs());
        }
    }
    eprintln!("tiny gemma3 GGUF: max |Δlogit| vs transformers = {err:.2e}");
    assert!(err < 1e-4, "logits differ from transformers by {err}");
    let opts = tunekit_core::GenerateOptions {
        max_new_tokens: 12,
        eos_token_ids: Some(vec![]),
        ..Default::default()
    };
    let out = model.generate(&u32s(&want["greedy_prompt"]), &opts, &|| false, &mut |_| {}).unwrap();
    assert_eq!(out.token_ids, u32s(&want["greedy"]));
}

/// Opt-in: the real Gemma 3 270M GGUF (`TUNEKIT_GEMMA_GGUF=/path/gemma-3-270m-q4_k_m.gguf` when
/// the tests are built; without it the test is ignored) loads through `Model::load`, and its logits and greedy continuations equal transformers'
/// (`scripts/fixtures/make_gemma_reference.py`, which loads the same file).
#[test]
#[cfg_attr(not(tunekit_gemma_gguf), ignore = "set TUNEKIT_GEMMA_GGUF to the Gemma 3 270M GGUF to run it")]
fn real_gemma3_gguf_matches_transformers() {
    let path = option_env!("TUNEKIT_GEMMA_GGUF_PATH").expect("built with TUNEKIT_GEMMA_GGUF set");
    let reference = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../test/fixtures/gguf/gemma3-270m-reference.json");
    let want: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(reference).unwrap()).unwrap();
    let start = std::time::Instant::now();
    // f32: the reference compares dequantised weights, and the stored path's kernels are
    // unoptimised in the dev test build (minutes per token on this 262k-vocab head).
    let model =
        tunekit_core::Model::load_as(std::path::Path::new(&path), Some(tunekit_core::quant::BaseFormat::F32))
            .unwrap();
    eprintln!("loaded {path} in {:.1?}", start.elapsed());
    assert_eq!(model.config().family, tunekit_core::Family::Gemma3);
    let u32s = |v: &serde_json::Value| -> Vec<u32> {
        v.as_array().unwrap().iter().map(|x| x.as_u64().unwrap() as u32).collect()
    };
    for row in want["rows"].as_array().unwrap() {
        let prompt = row["prompt"].as_str().unwrap();
        let ids = model.tokenizer.encode(prompt, true).unwrap();
        assert_eq!(ids, u32s(&row["ids"]), "prompt ids of {prompt:?}");
        let logits = model.decoder.logits(&ids).unwrap();
        let last: Vec<f32> = logits.get(ids.len() - 1).unwrap().to_vec1().unwrap();
        let mut err = 0f32;
        for (id, value) in u32s(&row["top_ids"]).iter().zip(row["top_logits"].as_array().unwrap()) {
            err = err.max((last[*id as usize] - value.as_f64().unwrap() as f32).abs());
        }
        let opts = tunekit_core::GenerateOptions {
            max_new_tokens: row["greedy"].as_array().unwrap().len(),
            eos_token_ids: Some(vec![]),
            ..Default::default()
        };
        let out = model.generate(&ids, &opts, &|| false, &mut |_| {}).unwrap();
        eprintln!("{prompt:?}: max |Δlogit| over the top 64 = {err:.2e}; greedy {:?}", out.text);
        assert!(err < 2e-3, "{prompt:?}: logits differ from transformers by {err}");
        assert_eq!(out.token_ids, u32s(&row["greedy"]), "greedy continuation of {prompt:?}");
    }
}
