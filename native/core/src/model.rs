//! A loaded model directory: decoder weights, tokenizer and generation defaults.

use std::path::{Path, PathBuf};

use candle_core::Device;

use crate::quant::BaseFormat;
use serde_json::Value;

use crate::config::{id_list, DecoderConfig};
use crate::decoder::Decoder;
use crate::error::{Error, LoadErrorKind, Result};
use crate::gguf::{decoder_config, Gguf, GgufTokenizer};
use crate::tokenizer::TextTokenizer;
use crate::weights::Weights;

pub struct Model {
    pub dir: PathBuf,
    pub decoder: Decoder,
    pub tokenizer: TextTokenizer,
    /// Union of config.json, generation_config.json and tokenizer_config.json's EOS tokens:
    /// instruction-tuned checkpoints often list their end-of-turn token in only one of them.
    pub eos_token_ids: Vec<u32>,
    pub bos_token_id: Option<u32>,
    /// The GGUF's `tokenizer.chat_template` (a model directory keeps its template in
    /// tokenizer_config.json, which the JS side reads itself).
    pub chat_template: Option<String>,
}

fn read_json(path: &Path) -> Result<Option<Value>> {
    if !path.is_file() {
        return Ok(None);
    }
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, &e))?;
    serde_json::from_str(&text)
        .map(Some)
        .map_err(|e| Error::load(LoadErrorKind::InvalidJson, path, format!("not valid JSON: {e}")))
}

/// `eos_token` in tokenizer_config.json is a string or `{"content": "..."}`.
fn token_text(value: Option<&Value>) -> Option<&str> {
    match value? {
        Value::String(s) => Some(s),
        Value::Object(o) => o.get("content")?.as_str(),
        _ => None,
    }
}

impl Model {
    /// Loads a Hugging Face model directory (weights upcast to f32), or a llama.cpp `.gguf`
    /// file (weight matrices kept quantised as stored), on the CPU.
    pub fn load(dir: impl AsRef<Path>) -> Result<Self> {
        Self::load_as(dir, None)
    }

    /// Like [`Self::load`], holding the weight matrices as `format` says (`None`: stored for a
    /// GGUF file, f32 for a model directory). Quantising on load (`Q8_0`, `Q4K`) applies to
    /// safetensors bases only: a GGUF base is already quantised.
    pub fn load_as(dir: impl AsRef<Path>, format: Option<BaseFormat>) -> Result<Self> {
        let dir = dir.as_ref();
        if dir.is_file() && dir.extension().is_some_and(|e| e.eq_ignore_ascii_case("gguf")) {
            return match format.unwrap_or(BaseFormat::Stored) {
                f @ (BaseFormat::Q8_0 | BaseFormat::Q4K) => Err(Error::option(
                    "baseWeights",
                    format!(
                        "\"{}\" quantises a safetensors base while loading; {} is a GGUF file whose weights are already quantised (use \"stored\" to keep them as they are, or \"f32\")",
                        f.as_str(),
                        dir.display()
                    ),
                )),
                f => Self::load_gguf_as(dir, f),
            };
        }
        if !dir.is_dir() {
            return Err(Error::load(
                LoadErrorKind::NotFound,
                dir,
                "not a directory (expected a Hugging Face model directory with config.json, or a .gguf file)",
            ));
        }
        let config_path = dir.join("config.json");
        if !config_path.is_file() {
            return Err(Error::load(
                LoadErrorKind::NotFound,
                &config_path,
                "config.json is missing from the model directory",
            ));
        }
        let cfg = DecoderConfig::from_file(&config_path)?;
        // The tokenizer is cheap to load and a common thing to forget; fail on it before
        // reading gigabytes of weights.
        let tokenizer = TextTokenizer::load(dir)?;

        let mut eos = cfg.eos_token_ids.clone();
        let gen_path = dir.join("generation_config.json");
        if let Some(gen) = read_json(&gen_path)? {
            let ids = id_list(gen.get("eos_token_id")).ok_or_else(|| {
                Error::load(
                    LoadErrorKind::InvalidJson,
                    &gen_path,
                    "`eos_token_id` must be a token id or a list of ids",
                )
            })?;
            eos.extend(ids);
        }
        if let Some(tc) = read_json(&dir.join("tokenizer_config.json"))? {
            if let Some(id) = token_text(tc.get("eos_token")).and_then(|t| tokenizer.token_to_id(t)) {
                eos.push(id);
            }
        }
        eos.sort_unstable();
        eos.dedup();
        let bos_token_id = cfg.bos_token_id;

        let device = Device::Cpu;
        let weights = Weights::open_as(dir, &device, format.unwrap_or(BaseFormat::F32))?;
        let decoder = Decoder::load(cfg, &weights, &device)?;
        Ok(Self {
            dir: dir.to_path_buf(),
            decoder,
            tokenizer,
            eos_token_ids: eos,
            bos_token_id,
            chat_template: None,
        })
    }

    /// A GGUF base: configuration and tokenizer from its metadata, weights dequantised and
    /// converted back to Hugging Face layout (see [`crate::gguf::convert`]).
    pub fn load_gguf(path: &Path) -> Result<Self> {
        Self::load_gguf_as(path, BaseFormat::F32)
    }

    /// [`Self::load_gguf`] with the matrices kept as stored (`BaseFormat::Stored`), dequantised
    /// and held in bf16 (`BaseFormat::Bf16`), or dequantised to f32 (any other format).
    pub fn load_gguf_as(path: &Path, format: BaseFormat) -> Result<Self> {
        let g = Gguf::open(path)?;
        let cfg = decoder_config(&g)?;
        // Like the directory case: a bad tokenizer fails before the weights are read.
        let gguf_tokenizer = GgufTokenizer::from_gguf(&g)?;
        let tokenizer = TextTokenizer::from_tokenizer(gguf_tokenizer.to_hf(path)?);
        let chat_template = gguf_tokenizer.chat_template;
        let eos_token_ids = cfg.eos_token_ids.clone();
        let bos_token_id = cfg.bos_token_id;
        let device = Device::Cpu;
        let weights = match format {
            BaseFormat::Stored => Weights::from_gguf_stored(&g, &device)?,
            // Read as stored, so the embedding can stay in its blocks (see `Weights::get_base`).
            BaseFormat::Bf16 => Weights::from_gguf_stored(&g, &device)?.with_format(BaseFormat::Bf16),
            _ => Weights::from_gguf(&g, &device)?,
        };
        let decoder = Decoder::load(cfg, &weights, &device)?;
        Ok(Self { dir: path.to_path_buf(), decoder, tokenizer, eos_token_ids, bos_token_id, chat_template })
    }

    pub fn config(&self) -> &DecoderConfig {
        &self.decoder.cfg
    }
}
