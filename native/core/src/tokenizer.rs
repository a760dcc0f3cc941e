//! `tokenizer.json` (the Hugging Face fast-tokenizer format) through the `tokenizers` crate.

use std::path::Path;

use crate::error::{Error, LoadErrorKind, Result};

pub struct TextTokenizer {
    inner: tokenizers::Tokenizer,
}

impl TextTokenizer {
    /// Loads `dir/tokenizer.json`.
    pub fn load(dir: &Path) -> Result<Self> {
        let path = dir.join("tokenizer.json");
        if !path.is_file() {
            return Err(Error::load(
                LoadErrorKind::MissingTokenizer,
                &path,
                "tokenizer.json is missing; download it with the model (checkpoints that only ship a SentencePiece tokenizer.model must be converted to tokenizer.json first)",
            ));
        }
        let inner = tokenizers::Tokenizer::from_file(&path).map_err(|e| {
            Error::load(
                LoadErrorKind::InvalidTokenizer,
                &path,
                format!("tokenizer.json cannot be parsed: {e}"),
            )
        })?;
        Ok(Self { inner })
    }

    /// Wraps a tokenizer built elsewhere (e.g. from GGUF metadata).
    pub fn from_tokenizer(inner: tokenizers::Tokenizer) -> Self {
        Self { inner }
    }

    /// Token ids for `text`; `add_special_tokens` applies the tokenizer's post-processor
    /// (e.g. the BOS token Llama expects at the start of a prompt).
    pub fn encode(&self, text: &str, add_special_tokens: bool) -> Result<Vec<u32>> {
        let encoding =
            self.inner.encode(text, add_special_tokens).map_err(|e| Error::Tokenizer(e.to_string()))?;
        Ok(encoding.get_ids().to_vec())
    }

    pub fn decode(&self, ids: &[u32], skip_special_tokens: bool) -> Result<String> {
        self.inner.decode(ids, skip_special_tokens).map_err(|e| Error::Tokenizer(e.to_string()))
    }

    pub fn token_to_id(&self, token: &str) -> Option<u32> {
        self.inner.token_to_id(token)
    }

    /// Vocabulary size including added tokens.
    pub fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }
}
