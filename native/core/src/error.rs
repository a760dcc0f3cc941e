//! One error type for the core, with stable codes the binding hands to JavaScript.
//!
//! The codes are part of the public contract (`src/core/errors.ts` mirrors them):
//! `model_load`, `invalid_option`, `aborted`, `local_training`, `export_failed`, `internal`.
//! A load failure also carries a finer [`LoadErrorKind`] so tests (and users reading the
//! message) can tell a truncated file from a lying header.

use std::fmt;
use std::path::{Path, PathBuf};

/// What exactly went wrong while loading a model directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoadErrorKind {
    /// A required file or directory does not exist.
    NotFound,
    /// The operating system refused a read.
    Io,
    /// A JSON file (config, index, tokenizer config) is not valid JSON or has the wrong shape.
    InvalidJson,
    /// `config.json` parsed but holds values the model cannot be built from.
    InvalidConfig,
    /// `model_type` / `architectures` names an architecture this build does not implement.
    UnsupportedArchitecture,
    /// A safetensors file ends before the bytes its header promises.
    Truncated,
    /// A safetensors header is malformed: bad length, bad JSON, offsets that overlap, point
    /// outside the data or disagree with the shape and dtype.
    InvalidHeader,
    /// A tensor is stored in a dtype we cannot compute with (or one that does not exist).
    UnsupportedDtype,
    /// A tensor's shape disagrees with what `config.json` implies.
    ShapeMismatch,
    /// A tensor the architecture needs is in none of the weight files.
    MissingTensor,
    /// `tokenizer.json` is absent.
    MissingTokenizer,
    /// `tokenizer.json` exists but cannot be parsed.
    InvalidTokenizer,
    /// A GGUF file's structure is invalid: bad magic or version, lying counts, lengths or
    /// offsets, overlapping or misaligned tensors, values of the wrong type.
    MalformedGguf,
}

impl LoadErrorKind {
    /// A stable snake_case name, shown in messages and usable by tests.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NotFound => "not_found",
            Self::Io => "io",
            Self::InvalidJson => "invalid_json",
            Self::InvalidConfig => "invalid_config",
            Self::UnsupportedArchitecture => "unsupported_architecture",
            Self::Truncated => "truncated",
            Self::InvalidHeader => "invalid_header",
            Self::UnsupportedDtype => "unsupported_dtype",
            Self::ShapeMismatch => "shape_mismatch",
            Self::MissingTensor => "missing_tensor",
            Self::MissingTokenizer => "missing_tokenizer",
            Self::InvalidTokenizer => "invalid_tokenizer",
            Self::MalformedGguf => "malformed_gguf",
        }
    }
}

impl fmt::Display for LoadErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A model directory, weight file, config or tokenizer could not be loaded.
    #[error("cannot load {path}: {message} [{kind}]", path = .path.display())]
    ModelLoad { kind: LoadErrorKind, path: PathBuf, message: String },

    /// A caller-supplied option is out of range or inconsistent. `option` names it the way
    /// the JS API spells it (`temperature`, `topP`, …).
    #[error("invalid option {option}: {message}")]
    InvalidOption { option: String, message: String },

    /// The caller cancelled the work (AbortSignal or `cancel()`).
    #[error("the operation was aborted")]
    Aborted,

    /// Tokenizing or detokenizing failed on input the tokenizer rejected.
    #[error("tokenizer error: {0}")]
    Tokenizer(String),

    /// A GGUF (or other) export could not be produced: the input cannot be represented in the
    /// target format (an adapter on `lm_head`, an architecture llama.cpp does not know, …) or
    /// the output could not be written. `path` is the output (or input) concerned, if any.
    #[error("export failed{}: {message}", .path.as_ref().map(|p| format!(" ({})", p.display())).unwrap_or_default())]
    Export { path: Option<PathBuf>, message: String },

    /// A tensor operation failed. Indicates a bug in this crate rather than bad input, since
    /// inputs are validated before they reach candle.
    #[error("internal tensor error: {0}")]
    Tensor(#[from] candle_core::Error),
}

impl Error {
    /// The stable code the binding puts on the JS error.
    pub fn code(&self) -> &'static str {
        match self {
            Self::ModelLoad { .. } => "model_load",
            Self::InvalidOption { .. } | Self::Tokenizer(_) => "invalid_option",
            Self::Aborted => "aborted",
            Self::Export { .. } => "export_failed",
            Self::Tensor(_) => "internal",
        }
    }

    /// The finer load-failure kind, if this is a load error.
    pub fn load_kind(&self) -> Option<LoadErrorKind> {
        match self {
            Self::ModelLoad { kind, .. } => Some(*kind),
            _ => None,
        }
    }

    pub(crate) fn load(kind: LoadErrorKind, path: impl AsRef<Path>, message: impl Into<String>) -> Self {
        Self::ModelLoad { kind, path: path.as_ref().to_path_buf(), message: message.into() }
    }

    pub(crate) fn option(option: impl Into<String>, message: impl Into<String>) -> Self {
        Self::InvalidOption { option: option.into(), message: message.into() }
    }

    pub(crate) fn export(path: Option<&Path>, message: impl Into<String>) -> Self {
        Self::Export { path: path.map(Path::to_path_buf), message: message.into() }
    }

    /// Maps an I/O failure on `path` to `NotFound` or `Io`.
    pub(crate) fn io(path: impl AsRef<Path>, err: &std::io::Error) -> Self {
        let kind = if err.kind() == std::io::ErrorKind::NotFound {
            LoadErrorKind::NotFound
        } else {
            LoadErrorKind::Io
        };
        Self::load(kind, path, err.to_string())
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
