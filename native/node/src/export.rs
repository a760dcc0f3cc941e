//! GGUF exports for Node (llama.cpp / node-llama-cpp / Ollama): converts types and errors only
//! (the work is `tunekit_core::gguf::export`).
//!
//! - `exportGgufAdapter(adapterDir, baseModel, outFile)`: a PEFT adapter directory as a
//!   llama.cpp LoRA GGUF; `baseModel` (HF directory or GGUF file) gives the architecture.
//! - `exportGgufModel(modelDir, outFile, options)`: a Hugging Face model directory as a GGUF
//!   base for llama.cpp.
//!
//! Both run off the JS thread and write atomically. Failures carry the core's codes:
//! `model_load` for unreadable inputs, `export_failed` for what cannot be represented or
//! written.

use std::path::Path;

use napi::bindgen_prelude::*;
use napi_derive::napi;
use tunekit_core::gguf::export::{self, BaseDtype, ExportSummary, ModelExportOptions};
use tunekit_core::Error as CoreError;

use crate::{guarded, throw, ErrorInfo, StdResult};

/// What an export wrote.
#[napi(object)]
pub struct NativeExportResult {
    pub path: String,
    pub tensors: u32,
    pub bytes: f64,
}

/// Options of `exportGgufModel`.
#[napi(object)]
pub struct NativeModelExportOptions {
    /// `"f32"` (default), `"f16"`, `"q8_0"` or `"q4_k"` for the matrices; norms stay f32.
    pub dtype: Option<String>,
    /// llama.cpp's pre-tokenizer name, when it cannot be recognised from tokenizer.json.
    pub tokenizer_pre: Option<String>,
}

fn result(path: &str, s: ExportSummary) -> NativeExportResult {
    NativeExportResult { path: path.to_string(), tensors: s.tensors as u32, bytes: s.bytes as f64 }
}

pub struct AdapterExportTask {
    adapter_dir: String,
    base_model: String,
    out_file: String,
}

impl Task for AdapterExportTask {
    type Output = StdResult<NativeExportResult, ErrorInfo>;
    type JsValue = NativeExportResult;

    fn compute(&mut self) -> napi::Result<Self::Output> {
        let (adapter_dir, base_model, out) =
            (self.adapter_dir.clone(), self.base_model.clone(), self.out_file.clone());
        Ok(guarded(move || {
            let summary =
                export::export_lora_dir(Path::new(&adapter_dir), Path::new(&base_model), Path::new(&out))?;
            Ok(result(&out, summary))
        }))
    }

    fn resolve(&mut self, env: Env, output: Self::Output) -> napi::Result<NativeExportResult> {
        throw(&env, output)
    }
}

/// Writes the PEFT adapter in `adapter_dir` as a llama.cpp LoRA GGUF at `out_file`.
#[napi(ts_return_type = "Promise<NativeExportResult>")]
pub fn export_gguf_adapter(
    adapter_dir: String,
    base_model: String,
    out_file: String,
) -> AsyncTask<AdapterExportTask> {
    AsyncTask::new(AdapterExportTask { adapter_dir, base_model, out_file })
}

pub struct ModelExportTask {
    model_dir: String,
    out_file: String,
    options: StdResult<ModelExportOptions, String>,
}

impl Task for ModelExportTask {
    type Output = StdResult<NativeExportResult, ErrorInfo>;
    type JsValue = NativeExportResult;

    fn compute(&mut self) -> napi::Result<Self::Output> {
        let (dir, out) = (self.model_dir.clone(), self.out_file.clone());
        let options = self.options.clone();
        Ok(guarded(move || {
            let options =
                options.map_err(|message| CoreError::InvalidOption { option: "dtype".into(), message })?;
            let summary = export::export_model(Path::new(&dir), Path::new(&out), &options)?;
            Ok(result(&out, summary))
        }))
    }

    fn resolve(&mut self, env: Env, output: Self::Output) -> napi::Result<NativeExportResult> {
        throw(&env, output)
    }
}

/// Writes the Hugging Face model in `model_dir` as a GGUF base at `out_file`.
#[napi(ts_return_type = "Promise<NativeExportResult>")]
pub fn export_gguf_model(
    model_dir: String,
    out_file: String,
    options: Option<NativeModelExportOptions>,
) -> AsyncTask<ModelExportTask> {
    let o = options.unwrap_or(NativeModelExportOptions { dtype: None, tokenizer_pre: None });
    let dtype = match o.dtype.as_deref() {
        None | Some("f32") => Ok(BaseDtype::F32),
        Some("f16") => Ok(BaseDtype::F16),
        Some("q8_0") => Ok(BaseDtype::Q8_0),
        Some("q4_k") => Ok(BaseDtype::Q4K),
        Some(other) => Err(format!("must be \"f32\", \"f16\", \"q8_0\" or \"q4_k\", got {other:?}")),
    };
    let options = dtype.map(|dtype| ModelExportOptions { dtype, tokenizer_pre: o.tokenizer_pre });
    AsyncTask::new(ModelExportTask { model_dir, out_file, options })
}
