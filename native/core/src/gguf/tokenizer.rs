//! A Hugging Face tokenizer rebuilt from GGUF tokenizer metadata.
//!
//! Supported:
//! - `tokenizer.ggml.model = "gpt2"` (byte-level BPE) with the GPT-2 pre-tokenizer
//!   (`tokenizer.ggml.pre` absent, `default` or `gpt2`). Other pre-tokenizers (Llama 3,
//!   Qwen2, …) split text with different regexes and are refused rather than approximated.
//! - `tokenizer.ggml.model = "llama"`: a SentencePiece BPE vocabulary (Gemma, Llama 2,
//!   Mistral v0.1). GGUF keeps the SentencePiece pieces, scores and types but no merges, so
//!   the merges are rebuilt the way transformers' `GemmaConverter` / `generate_merges` does
//!   (every split of a piece into two pieces, ranked by the piece's score), which is how the
//!   `tokenizer.json` shipped with those models was made from `tokenizer.model`.
//!
//! Token types (llama.cpp): 1 normal, 2 unknown, 3 control, 4 user-defined, 5 unused,
//! 6 byte. Control and user-defined tokens become added tokens (control ones special), as
//! in the `added_tokens` of a tokenizer.json.

use std::collections::HashMap;

use tokenizers::decoders::byte_fallback::ByteFallback;
use tokenizers::decoders::fuse::Fuse;
use tokenizers::decoders::sequence::Sequence as DecoderSequence;
use tokenizers::decoders::strip::Strip;
use tokenizers::models::bpe::{Merges, Vocab, BPE};
use tokenizers::normalizers::{Prepend, Replace, Sequence as NormalizerSequence};
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::digits::Digits;
use tokenizers::pre_tokenizers::sequence::Sequence as PreTokenizerSequence;
use tokenizers::pre_tokenizers::split::{Split, SplitPattern};
use tokenizers::processors::template::TemplateProcessing;
use tokenizers::{
    AddedToken, DecoderWrapper, NormalizerWrapper, PreTokenizerWrapper, SplitDelimiterBehavior, Tokenizer,
};

use crate::error::{Error, LoadErrorKind, Result};
use crate::gguf::metadata::GgufTokenizer;

const CONTROL: i32 = 3;
const USER_DEFINED: i32 = 4;

/// SentencePiece's word-boundary marker, which stands for a space inside pieces.
const SPACE: &str = "\u{2581}";

impl GgufTokenizer {
    /// Builds the equivalent `tokenizers::Tokenizer`. `path` names the GGUF file in errors.
    pub fn to_hf(&self, path: &std::path::Path) -> Result<Tokenizer> {
        let bad = |m: String| Error::load(LoadErrorKind::InvalidTokenizer, path, m);
        let mut tok = match self.model.as_str() {
            "gpt2" => self.byte_level_bpe(path)?,
            "llama" => self.sentencepiece_bpe(path)?,
            other => {
                return Err(bad(format!(
                    "GGUF tokenizer model `{other}` cannot be converted yet (supported: gpt2, llama)"
                )))
            }
        };
        if self.add_bos_token == Some(true) {
            let bos =
                self.bos_token_id.ok_or_else(|| bad("add_bos_token is set but no bos_token_id".into()))?;
            let text = self.tokens[bos as usize].clone();
            let post = TemplateProcessing::builder()
                .try_single(format!("{text} $A"))
                .and_then(|b| b.try_pair(format!("{text} $A {text} $B")))
                .map_err(|e| bad(format!("cannot build the BOS template: {e}")))?
                .special_tokens(vec![(text.clone(), bos)])
                .build()
                .map_err(|e| bad(format!("cannot build the BOS template: {e}")))?;
            tok.with_post_processor(Some(post));
        }
        Ok(tok)
    }

    fn vocab(&self, path: &std::path::Path) -> Result<HashMap<String, u32>> {
        let mut vocab = HashMap::with_capacity(self.tokens.len());
        for (id, token) in self.tokens.iter().enumerate() {
            if vocab.insert(token.clone(), id as u32).is_some() {
                return Err(Error::load(
                    LoadErrorKind::InvalidTokenizer,
                    path,
                    format!("token `{token}` appears twice in tokenizer.ggml.tokens"),
                ));
            }
        }
        Ok(vocab)
    }

    fn byte_level_bpe(&self, path: &std::path::Path) -> Result<Tokenizer> {
        let bad = |m: String| Error::load(LoadErrorKind::InvalidTokenizer, path, m);
        // llama.cpp's names: `gpt-2` (and older `gpt2`/`default`) is the GPT-2 regex;
        // `smollm` splits every digit first (HF: Digits(individual) then ByteLevel).
        let digits = match self.pre.as_deref() {
            None | Some("default") | Some("gpt2") | Some("gpt-2") => false,
            Some("smollm") => true,
            Some(other) => {
                return Err(bad(format!(
                    "GGUF pre-tokenizer `{other}` cannot be converted yet (supported: default, gpt-2, smollm)"
                )))
            }
        };
        let vocab = self.vocab(path)?;
        let mut merges = Vec::new();
        for m in self.merges.as_deref().unwrap_or_default() {
            let (a, b) = m.split_once(' ').ok_or_else(|| bad(format!("merge `{m}` is not two tokens")))?;
            merges.push((a.to_string(), b.to_string()));
        }
        let bpe = BPE::builder()
            .vocab_and_merges(vocab.into_iter().collect::<Vocab>(), merges)
            .build()
            .map_err(|e| bad(format!("cannot build the BPE model: {e}")))?;
        let mut tok = Tokenizer::new(bpe);
        if digits {
            tok.with_pre_tokenizer(Some(PreTokenizerWrapper::Sequence(PreTokenizerSequence::new(vec![
                PreTokenizerWrapper::Digits(Digits::new(true)),
                PreTokenizerWrapper::ByteLevel(ByteLevel::new(false, true, true)),
            ]))));
        } else {
            tok.with_pre_tokenizer(Some(ByteLevel::new(false, true, true)));
        }
        tok.with_decoder(Some(ByteLevel::new(true, true, true)));
        if let Some(types) = &self.token_types {
            let of_type = |want: i32| -> Vec<AddedToken> {
                types
                    .iter()
                    .zip(&self.tokens)
                    .filter(|(t, _)| **t == want)
                    .map(|(_, s)| AddedToken::from(s.clone(), want == CONTROL))
                    .collect()
            };
            tok.add_special_tokens(&of_type(CONTROL));
            tok.add_tokens(&of_type(USER_DEFINED));
        }
        Ok(tok)
    }

    /// SentencePiece BPE as transformers converts it: pieces become the BPE vocabulary with
    /// byte fallback, merges are every split of a piece into two pieces ranked by the
    /// piece's score, spaces become `▁`, control and user-defined pieces become added tokens
    /// matched on the raw text.
    fn sentencepiece_bpe(&self, path: &std::path::Path) -> Result<Tokenizer> {
        let bad = |m: String| Error::load(LoadErrorKind::InvalidTokenizer, path, m);
        let scores = self.scores.as_ref().ok_or_else(|| {
            bad("a SentencePiece vocabulary needs `tokenizer.ggml.scores` to rank its merges".into())
        })?;
        let vocab = self.vocab(path)?;
        let merges = sentencepiece_merges(&self.tokens, scores, &vocab);
        let unk = self
            .unknown_token_id
            .map(|id| self.tokens[id as usize].clone())
            .unwrap_or_else(|| "<unk>".to_string());
        let has_byte_pieces = (0..=255u8).all(|b| vocab.contains_key(&format!("<0x{b:02X}>")));
        let bpe = BPE::builder()
            .vocab_and_merges(vocab.into_iter().collect::<Vocab>(), merges)
            .unk_token(unk)
            .fuse_unk(true)
            .byte_fallback(has_byte_pieces)
            .build()
            .map_err(|e| bad(format!("cannot build the BPE model: {e}")))?;
        let mut tok = Tokenizer::new(bpe);
        let replace = |from: &str, to: &str| {
            Replace::new(from, to).map_err(|e| bad(format!("cannot build the space replacement: {e}")))
        };
        // llama.cpp adds the dummy prefix unless the file says otherwise; Gemma's says false.
        let prefix = self.add_space_prefix.unwrap_or(true);
        if prefix {
            tok.with_normalizer(Some(NormalizerWrapper::Sequence(NormalizerSequence::new(vec![
                NormalizerWrapper::Prepend(Prepend::new(SPACE.to_string())),
                NormalizerWrapper::Replace(replace(" ", SPACE)?),
            ]))));
        } else {
            tok.with_normalizer(Some(replace(" ", SPACE)?));
            // A no-op after the normalizer (no spaces remain), kept to mirror Gemma's
            // tokenizer.json exactly.
            let split = Split::new(
                SplitPattern::String(" ".into()),
                SplitDelimiterBehavior::MergedWithPrevious,
                false,
            )
            .map_err(|e| bad(format!("cannot build the pre-tokenizer: {e}")))?;
            tok.with_pre_tokenizer(Some(split));
        }
        let mut decoders = vec![
            DecoderWrapper::Replace(replace(SPACE, " ")?),
            DecoderWrapper::ByteFallback(ByteFallback::new()),
            DecoderWrapper::Fuse(Fuse::new()),
        ];
        if prefix {
            decoders.push(DecoderWrapper::Strip(Strip::new(' ', 1, 0)));
        }
        tok.with_decoder(Some(DecoderSequence::new(decoders)));
        if let Some(types) = &self.token_types {
            // Gemma marks its turn delimiters user-defined; transformers makes them special.
            const TURN_TOKENS: [&str; 2] = ["<start_of_turn>", "<end_of_turn>"];
            let added: Vec<AddedToken> = types
                .iter()
                .zip(&self.tokens)
                .filter(|(t, _)| **t == CONTROL || **t == USER_DEFINED)
                .map(|(t, s)| {
                    AddedToken::from(s.clone(), *t == CONTROL || TURN_TOKENS.contains(&s.as_str()))
                        .normalized(false)
                })
                .collect();
            tok.add_tokens(&added);
        }
        Ok(tok)
    }
}

/// transformers' `generate_merges` with scores: for every piece (in id order), each split
/// into two pieces of the vocabulary, ordered within the piece by the halves' ids; then all
/// of them stably sorted by (score, left length, right length) descending, lengths in
/// characters.
fn sentencepiece_merges(tokens: &[String], scores: &[f32], vocab: &HashMap<String, u32>) -> Merges {
    struct Candidate {
        score: f32,
        left_chars: usize,
        right_chars: usize,
        ids: (u32, u32),
        split: usize,
        piece: usize,
    }
    let mut all = Vec::new();
    for (piece, text) in tokens.iter().enumerate() {
        let mut local = Vec::new();
        let boundaries: Vec<usize> = text.char_indices().map(|(i, _)| i).skip(1).collect();
        for (k, &at) in boundaries.iter().enumerate() {
            let (l, r) = text.split_at(at);
            if let (Some(&a), Some(&b)) = (vocab.get(l), vocab.get(r)) {
                let left_chars = k + 1;
                let right_chars = boundaries.len() - k;
                local.push(Candidate {
                    score: scores[piece],
                    left_chars,
                    right_chars,
                    ids: (a, b),
                    split: at,
                    piece,
                });
            }
        }
        local.sort_by_key(|c| c.ids);
        all.extend(local);
    }
    // `sort_by` is stable, like Python's `sorted(..., reverse=True)` on equal keys.
    all.sort_by(|a, b| {
        b.score
            .total_cmp(&a.score)
            .then(b.left_chars.cmp(&a.left_chars))
            .then(b.right_chars.cmp(&a.right_chars))
    });
    all.into_iter()
        .map(|c| {
            let (l, r) = tokens[c.piece].split_at(c.split);
            (l.to_string(), r.to_string())
        })
        .collect()
}
