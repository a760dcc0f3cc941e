//! SentencePiece vocabularies read from GGUF metadata (`tokenizer.ggml.model = llama`, as in
//! Gemma's files) must tokenise exactly like the Hugging Face tokenizer transformers builds
//! from the same SentencePiece model. Expected ids come from
//! `scripts/fixtures/make_spm_fixtures.py`.
//!
//! `TUNEKIT_GEMMA_GGUF=/path/gemma-3-270m-q4_k_m.gguf` also checks the real Gemma 3
//! vocabulary (262,144 pieces) against `gemma3-270m-tokenizer-expected.json`.

use std::path::{Path, PathBuf};

use serde_json::Value;
use tunekit_core::gguf::{Gguf, GgufTokenizer};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../test/fixtures/gguf").join(name)
}

fn check(gguf: &Path, expected: &Path) -> usize {
    let g = Gguf::open(gguf).unwrap();
    let tok = GgufTokenizer::from_gguf(&g).unwrap().to_hf(gguf).unwrap();
    let want: Value = serde_json::from_str(&std::fs::read_to_string(expected).unwrap()).unwrap();
    let rows = want["rows"].as_array().unwrap();
    let ids = |v: &Value| -> Vec<u32> {
        v.as_array().unwrap().iter().map(|x| x.as_u64().unwrap() as u32).collect()
    };
    for row in rows {
        let text = row["text"].as_str().unwrap();
        let plain = tok.encode(text, false).unwrap();
        assert_eq!(plain.get_ids(), ids(&row["ids"]), "ids of {text:?}");
        let with_bos = tok.encode(text, true).unwrap();
        assert_eq!(with_bos.get_ids(), ids(&row["ids_with_bos"]), "ids (with BOS) of {text:?}");
        let expected_ids = ids(&row["ids"]);
        assert_eq!(
            tok.decode(&expected_ids, false).unwrap(),
            row["decoded"].as_str().unwrap(),
            "decode of {text:?}"
        );
        assert_eq!(
            tok.decode(&expected_ids, true).unwrap(),
            row["decoded_skip_special"].as_str().unwrap(),
            "decode (skipping special tokens) of {text:?}"
        );
    }
    rows.len()
}

#[test]
fn sentencepiece_gguf_tokenizer_matches_transformers() {
    let n = check(&fixture("spm-tokenizer.gguf"), &fixture("spm-tokenizer-expected.json"));
    assert!(n > 200);
}

#[test]
fn sentencepiece_gguf_without_scores_is_refused() {
    let g = Gguf::open(&fixture("spm-tokenizer.gguf")).unwrap();
    let mut t = GgufTokenizer::from_gguf(&g).unwrap();
    t.scores = None;
    let e = t.to_hf(Path::new("spm.gguf")).unwrap_err();
    assert_eq!(e.load_kind(), Some(tunekit_core::LoadErrorKind::InvalidTokenizer));
    assert!(e.to_string().contains("tokenizer.ggml.scores"), "{e}");
}

#[test]
#[cfg_attr(not(tunekit_gemma_gguf), ignore = "set TUNEKIT_GEMMA_GGUF to the Gemma 3 270M GGUF to run it")]
fn real_gemma3_tokenizer_matches_transformers() {
    let path = option_env!("TUNEKIT_GEMMA_GGUF_PATH").expect("built with TUNEKIT_GEMMA_GGUF set");
    let expected = fixture("gemma3-270m-tokenizer-expected.json");
    let start = std::time::Instant::now();
    let n = check(Path::new(&path), &expected);
    eprintln!(
        "gemma3 tokenizer: {n} texts match transformers ({:.1?} incl. building the tokenizer)",
        start.elapsed()
    );
}
