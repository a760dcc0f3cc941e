//! There is one forward pass: `src/decoder/`. Generation, evaluation, training and the parity
//! tests all run it, with adapters attached to its projections. A second copy (a training
//! forward, a test-only decoder) drifts from the first without anyone noticing, so this test
//! fails when code outside `src/decoder/` defines the pieces of a decoder forward again.

use std::path::{Path, PathBuf};

/// Definitions (or uses) that only the decoder may contain, with what each one is.
const DECODER_ONLY: [(&str, &str); 7] = [
    ("fn forward_hidden", "a decoder forward pass"),
    ("fn layer_forward", "a decoder layer"),
    ("fn causal_mask", "a causal mask"),
    ("scaled_masked_softmax(", "the attention softmax"),
    ("Rotary::apply(", "rotary embedding"),
    ("ops::rope(", "rotary embedding"),
    ("ops::glu(", "the gated MLP"),
];

/// Files allowed to contain those: the decoder and the op definitions it uses.
fn allowed(rel: &str) -> bool {
    rel.starts_with("src/decoder/") || rel == "src/train/ops.rs" || rel == "tests/one_decoder.rs"
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn one_decoder_forward_in_the_crate() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    for dir in ["src", "tests", "examples", "benches"] {
        if root.join(dir).is_dir() {
            rust_files(&root.join(dir), &mut files);
        }
    }
    assert!(files.len() > 20, "the crate's sources were found ({} files)", files.len());
    let mut found = Vec::new();
    let mut decoder_has = [false; DECODER_ONLY.len()];
    for path in &files {
        let rel = path.strip_prefix(&root).unwrap().to_string_lossy().replace('\\', "/");
        let src = std::fs::read_to_string(path).unwrap();
        for (i, &(needle, what)) in DECODER_ONLY.iter().enumerate() {
            if src.contains(needle) {
                if allowed(&rel) {
                    decoder_has[i] |= rel.starts_with("src/decoder/");
                } else {
                    found.push(format!("{rel}: {what} (`{needle}`)"));
                }
            }
        }
    }
    assert!(
        found.is_empty(),
        "a second forward implementation outside src/decoder/; use the decoder (attach adapters \
         to its projections) instead:\n{}",
        found.join("\n")
    );
    // The patterns still describe the decoder (so the test cannot pass by having gone stale).
    for ((needle, _), has) in DECODER_ONLY.iter().zip(decoder_has) {
        assert!(has, "src/decoder/ no longer contains `{needle}`: update this test");
    }
}
