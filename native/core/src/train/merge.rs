//! Merged-weights export: a plain Hugging Face model directory whose targeted projections
//! hold `W + scaling·B·A` (PEFT's `merge_and_unload`), loadable without any adapter support.
//!
//! Shards, file names, dtypes and every non-weight file (config, tokenizer, index) are kept;
//! each weight is merged in f32 and cast back to its stored dtype. The output directory is
//! written atomically.

use std::collections::BTreeSet;
use std::path::Path;

use candle_core::{DType, Device};

use super::checkpoint::{write_dir_atomic, write_file_synced};
use super::peft::{serialize_tensors, PeftAdapter};
use super::{io_err, Result, TrainError};

pub fn export_merged(model_dir: &Path, adapter: &PeftAdapter, out_dir: &Path) -> Result<()> {
    if !model_dir.is_dir() {
        return Err(TrainError::Config(format!(
            "merged export needs a safetensors model directory; {} is not one (for a GGUF base, \
             export the adapter as GGUF and let llama.cpp apply it)",
            model_dir.display()
        )));
    }
    let scaling = adapter.config.scaling();
    let mut merged = BTreeSet::new();
    write_dir_atomic(out_dir, |tmp| {
        let mut entries: Vec<_> = std::fs::read_dir(model_dir)
            .map_err(io_err(model_dir))?
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .filter(|p| p.is_file())
            .collect();
        entries.sort();
        for path in entries {
            let name = path.file_name().unwrap();
            if path.extension().is_some_and(|e| e == "safetensors") {
                let tensors = candle_core::safetensors::load(&path, &Device::Cpu)
                    .map_err(|e| TrainError::BadFile { path: path.clone(), message: e.to_string() })?;
                let mut out = Vec::with_capacity(tensors.len());
                for (key, w) in tensors {
                    let module = key.strip_suffix(".weight").unwrap_or("");
                    let w = match adapter.modules.get(module) {
                        Some(ad) => {
                            let delta = (ad.b.matmul(&ad.a)? * scaling)?;
                            if delta.dims() != w.dims() {
                                return Err(TrainError::Config(format!(
                                    "{module}: adapter delta {:?} does not match the weight {:?}",
                                    delta.dims(),
                                    w.dims()
                                )));
                            }
                            merged.insert(module.to_string());
                            (w.to_dtype(DType::F32)? + delta)?.to_dtype(w.dtype())?
                        }
                        None => w,
                    };
                    out.push((key, w));
                }
                write_file_synced(&tmp.join(name), &serialize_tensors(out)?)?;
            } else {
                let bytes = std::fs::read(&path).map_err(io_err(&path))?;
                write_file_synced(&tmp.join(name), &bytes)?;
            }
        }
        let missing: Vec<&String> = adapter.modules.keys().filter(|m| !merged.contains(*m)).collect();
        if !missing.is_empty() {
            return Err(TrainError::Config(format!(
                "the base model has no weights for adapted modules {missing:?}"
            )));
        }
        Ok(())
    })
}
