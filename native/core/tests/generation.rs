//! Generation behaviour on a fixture model: streamed deltas add up to the final text for
//! every way generation can end, stop strings never leak into the stream, and the cancel
//! flag is honoured between tokens.

use std::cell::Cell;
use std::path::PathBuf;

use tunekit_core::{Error, FinishReason, GenerateOptions, Model};

fn model() -> Model {
    Model::load(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../test/fixtures/models/qwen3-qknorm"))
        .unwrap()
}

fn run(m: &Model, prompt: &[u32], opts: &GenerateOptions) -> (tunekit_core::Generation, String) {
    let mut streamed = String::new();
    let out = m.generate(prompt, opts, &|| false, &mut |e| streamed.push_str(&e.text)).unwrap();
    (out, streamed)
}

#[test]
fn streamed_text_adds_up_for_every_finish_reason() {
    let m = model();
    let prompt = m.tokenizer.encode("The fox and the dog", true).unwrap();
    let base = GenerateOptions { max_new_tokens: 40, eos_token_ids: Some(vec![]), ..Default::default() };
    let (full, streamed) = run(&m, &prompt, &base);
    assert_eq!(full.finish_reason, FinishReason::Length);
    assert_eq!(full.token_ids.len(), 40);
    assert_eq!(streamed, full.text);
    assert_eq!(full.text, m.tokenizer.decode(&full.token_ids, true).unwrap());

    // Every 2- and 3-character window of the text as a stop string.
    let chars: Vec<(usize, char)> = full.text.char_indices().collect();
    let mut checked = 0;
    for width in [2, 3] {
        for w in chars.windows(width).step_by(3) {
            let start = w[0].0;
            let end = w[width - 1].0 + w[width - 1].1.len_utf8();
            let stop = full.text[start..end].to_string();
            let opts = GenerateOptions { stop_strings: vec![stop.clone()], ..base.clone() };
            let (out, streamed) = run(&m, &prompt, &opts);
            let first = full.text.find(&stop).unwrap();
            assert_eq!(out.finish_reason, FinishReason::Stop, "stop {stop:?}");
            assert_eq!(out.text, full.text[..first], "stop {stop:?}");
            assert_eq!(streamed, out.text, "stop {stop:?}: streamed text differs");
            checked += 1;
        }
    }
    assert!(checked > 10);

    // EOS: stop at the 5th generated token's id.
    let eos = full.token_ids[4];
    let opts = GenerateOptions { eos_token_ids: Some(vec![eos]), ..base.clone() };
    let (out, streamed) = run(&m, &prompt, &opts);
    let at = full.token_ids.iter().position(|&t| t == eos).unwrap();
    assert_eq!(out.finish_reason, FinishReason::Eos);
    assert_eq!(out.token_ids, full.token_ids[..at]);
    assert_eq!(streamed, out.text);
}

#[test]
fn cancel_flag_is_checked_before_every_token() {
    let m = model();
    let prompt = m.tokenizer.encode("The fox", true).unwrap();
    let opts = GenerateOptions { max_new_tokens: 50, eos_token_ids: Some(vec![]), ..Default::default() };
    let produced = Cell::new(0);
    let result = m.generate(&prompt, &opts, &|| produced.get() >= 7, &mut |e| {
        if e.token_id.is_some() {
            produced.set(produced.get() + 1);
        }
    });
    assert!(matches!(result, Err(Error::Aborted)));
    assert_eq!(produced.get(), 7);
}

#[test]
fn rejects_prompts_that_cannot_run() {
    let m = model();
    let opts = GenerateOptions::default();
    let empty = m.generate(&[], &opts, &|| false, &mut |_| {}).unwrap_err();
    assert_eq!(empty.code(), "invalid_option");
    let too_long = vec![5u32; m.config().max_position_embeddings];
    assert_eq!(m.generate(&too_long, &opts, &|| false, &mut |_| {}).unwrap_err().code(), "invalid_option");
    let out_of_vocab = m.generate(&[1, 100_000], &opts, &|| false, &mut |_| {}).unwrap_err();
    assert_eq!(out_of_vocab.code(), "invalid_option");
}

#[test]
fn generation_stops_at_the_context_limit() {
    let m = model();
    let max = m.config().max_position_embeddings;
    let prompt = vec![5u32; max - 3];
    let opts = GenerateOptions { max_new_tokens: 100, eos_token_ids: Some(vec![]), ..Default::default() };
    let out = m.generate(&prompt, &opts, &|| false, &mut |_| {}).unwrap();
    assert_eq!(out.finish_reason, FinishReason::Length);
    // Forward passes stop once every position is used; the last sampled token is returned
    // without being fed back, so max - 3 prompt positions leave room for 4 new tokens.
    assert_eq!(out.token_ids.len(), 4);
}
