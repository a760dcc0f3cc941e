//! A Hugging Face tokenizer rebuilt from GGUF tokenizer metadata.
//!
//! Supported: `tokenizer.ggml.model = "gpt2"` (byte-level BPE) with the GPT-2 pre-tokenizer
//! (`tokenizer.ggml.pre` absent, `default` or `gpt2`). Other pre-tokenizers (Llama 3, Qwen2,
//! …) split text with different regexes, and SentencePiece vocabularies (`llama`, used by
//! Gemma) need a different model; both are refused rather than approximated.
//!
//! Token types (llama.cpp): 1 normal, 2 unknown, 3 control, 4 user-defined, 5 unused,
//! 6 byte. Control and user-defined tokens become added tokens (control ones special), as
//! in the `added_tokens` of a tokenizer.json.

use std::collections::HashMap;

use tokenizers::models::bpe::{Vocab, BPE};
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::processors::template::TemplateProcessing;
use tokenizers::{AddedToken, Tokenizer};

use crate::error::{Error, LoadErrorKind, Result};
use crate::gguf::metadata::GgufTokenizer;

const CONTROL: i32 = 3;
const USER_DEFINED: i32 = 4;

impl GgufTokenizer {
    /// Builds the equivalent `tokenizers::Tokenizer`. `path` names the GGUF file in errors.
    pub fn to_hf(&self, path: &std::path::Path) -> Result<Tokenizer> {
        let bad = |m: String| Error::load(LoadErrorKind::InvalidTokenizer, path, m);
        if self.model != "gpt2" {
            return Err(bad(format!(
                "GGUF tokenizer model `{}` cannot be converted yet (supported: gpt2)",
                self.model
            )));
        }
        match self.pre.as_deref() {
            None | Some("default") | Some("gpt2") => {}
            Some(other) => {
                return Err(bad(format!(
                    "GGUF pre-tokenizer `{other}` cannot be converted yet (supported: default, gpt2)"
                )))
            }
        }
        let mut vocab = HashMap::with_capacity(self.tokens.len());
        for (id, token) in self.tokens.iter().enumerate() {
            if vocab.insert(token.clone(), id as u32).is_some() {
                return Err(bad(format!("token `{token}` appears twice in tokenizer.ggml.tokens")));
            }
        }
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
        tok.with_pre_tokenizer(Some(ByteLevel::new(false, true, true)));
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
}
