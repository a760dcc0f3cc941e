//! tunekit's native core: load Hugging Face decoder checkpoints, run them exactly (f32 on
//! CPU, checked against transformers), and generate text. No Node-API code lives here; the
//! `tunekit-node` crate is a thin binding over this API.

pub mod config;
pub mod decoder;
pub mod error;
pub mod generate;
pub mod gguf;
pub mod kernels;
pub mod model;
pub mod quant;
pub mod safetensors;
pub mod tokenizer;
pub mod weights;

pub use config::{DecoderConfig, Family, SUPPORTED};
pub use error::{Error, LoadErrorKind, Result};
pub use generate::{FinishReason, GenerateOptions, Generation, TokenEvent};
pub use model::Model;
pub mod train;
