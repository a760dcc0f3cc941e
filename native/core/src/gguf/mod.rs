//! GGUF bases: a defensive reader for llama.cpp's GGUF files, dequantisation of the tensor
//! types a typical quantised base uses, metadata → [`crate::DecoderConfig`] and tokenizer
//! data, and the conversions that turn GGUF tensors back into Hugging Face ones.
//!
//! Why not `candle_core::quantized::gguf_file`: it trusts the header's counts and offsets
//! (a lying file can panic it or make it allocate without bound). Here every count, length
//! and offset is checked against the file size first, and failures are typed
//! [`crate::Error::ModelLoad`] errors (kinds `malformed_gguf`, `truncated`,
//! `unsupported_dtype`, …).

pub mod convert;
pub mod dequant;
pub mod export;
pub mod metadata;
pub mod reader;
pub mod tokenizer;
pub mod writer;

pub use metadata::{decoder_config, GgufTokenizer, Hparams};
pub use reader::{Array, GgmlType, Gguf, TensorInfo, Value, ValueType};
