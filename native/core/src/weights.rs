//! The weights of a model directory: one `model.safetensors`, or shards listed in
//! `model.safetensors.index.json`. Tensors are fetched by name with the shape the config
//! implies, so a checkpoint that disagrees with its config.json fails with a message naming
//! the tensor, instead of a broadcasting error deep inside the forward pass.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};

use crate::error::{Error, LoadErrorKind, Result};
use crate::safetensors::SafetensorsFile;

pub struct Weights {
    dir: PathBuf,
    files: Vec<SafetensorsFile>,
    /// Tensor name → index into `files`.
    index: HashMap<String, usize>,
    /// Tensors already in memory (a dequantised GGUF base), by HF name.
    memory: HashMap<String, Tensor>,
    device: Device,
}

impl Weights {
    /// Opens (and validates the headers of) every weight file of `dir`.
    pub fn open(dir: &Path, device: &Device) -> Result<Self> {
        let index_path = dir.join("model.safetensors.index.json");
        let single = dir.join("model.safetensors");
        if index_path.is_file() {
            Self::open_sharded(dir, &index_path, device)
        } else if single.is_file() {
            let file = SafetensorsFile::open(&single)?;
            let index = file.tensors().keys().map(|k| (k.clone(), 0)).collect();
            Ok(Self {
                dir: dir.to_path_buf(),
                files: vec![file],
                index,
                memory: HashMap::new(),
                device: device.clone(),
            })
        } else {
            Err(Error::load(
                LoadErrorKind::NotFound,
                dir,
                "no model.safetensors or model.safetensors.index.json in this directory (only safetensors weights are supported; PyTorch .bin files are not)",
            ))
        }
    }

    fn open_sharded(dir: &Path, index_path: &Path, device: &Device) -> Result<Self> {
        let bad = |m: String| Error::load(LoadErrorKind::InvalidJson, index_path, m);
        let text = std::fs::read_to_string(index_path).map_err(|e| Error::io(index_path, &e))?;
        let value: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| bad(format!("not valid JSON: {e}")))?;
        let map = value
            .get("weight_map")
            .and_then(|m| m.as_object())
            .ok_or_else(|| bad("missing the `weight_map` object".into()))?;
        let mut shard_names = BTreeSet::new();
        for (tensor, file) in map {
            let file =
                file.as_str().ok_or_else(|| bad(format!("weight_map[`{tensor}`] is not a file name")))?;
            // Shard names must stay inside the model directory.
            if file.contains('/') || file.contains('\\') || file == ".." || file.is_empty() {
                return Err(bad(format!("weight_map[`{tensor}`] = `{file}` is not a plain file name")));
            }
            shard_names.insert(file.to_string());
        }
        let mut files = Vec::with_capacity(shard_names.len());
        let mut by_name = HashMap::new();
        for name in &shard_names {
            by_name.insert(name.clone(), files.len());
            files.push(SafetensorsFile::open(dir.join(name))?);
        }
        let mut index = HashMap::with_capacity(map.len());
        for (tensor, file) in map {
            let slot = by_name[file.as_str().unwrap_or_default()];
            if files[slot].info(tensor).is_none() {
                return Err(Error::load(
                    LoadErrorKind::MissingTensor,
                    files[slot].path(),
                    format!("the index maps `{tensor}` to this shard but the shard has no such tensor"),
                ));
            }
            index.insert(tensor.clone(), slot);
        }
        Ok(Self { dir: dir.to_path_buf(), files, index, memory: HashMap::new(), device: device.clone() })
    }

    /// Reads every tensor of a GGUF base, dequantised to f32 and converted to HF names and
    /// layout (see [`crate::gguf::convert::hf_tensors`]).
    pub fn from_gguf(g: &crate::gguf::Gguf, device: &Device) -> Result<Self> {
        let mut memory = HashMap::with_capacity(g.tensors.len());
        for (name, shape, data) in crate::gguf::convert::hf_tensors(g)? {
            memory.insert(name, Tensor::from_vec(data, shape, device)?);
        }
        Ok(Self {
            dir: g.path.clone(),
            files: Vec::new(),
            index: HashMap::new(),
            memory,
            device: device.clone(),
        })
    }

    pub fn contains(&self, name: &str) -> bool {
        self.index.contains_key(name) || self.memory.contains_key(name)
    }

    /// Loads `name` as f32, checking its shape against `shape` first. `why` says which config
    /// values imply that shape, for the error message.
    pub fn get(&self, name: &str, shape: &[usize], why: &str) -> Result<Tensor> {
        if let Some(t) = self.memory.get(name) {
            if t.dims() != shape {
                return Err(Error::load(
                    LoadErrorKind::ShapeMismatch,
                    &self.dir,
                    format!(
                        "tensor `{name}` has shape {:?} but the config ({why}) implies {shape:?}",
                        t.dims()
                    ),
                ));
            }
            return Ok(t.clone());
        }
        let slot = *self.index.get(name).ok_or_else(|| {
            Error::load(
                LoadErrorKind::MissingTensor,
                &self.dir,
                format!("tensor `{name}` is missing from the weights; is config.json for a different model?"),
            )
        })?;
        let file = &self.files[slot];
        let info = file.info(name).expect("index only lists tensors present in their file");
        if info.shape != shape {
            return Err(Error::load(
                LoadErrorKind::ShapeMismatch,
                file.path(),
                format!(
                    "tensor `{name}` has shape {:?} but config.json ({why}) implies {shape:?}",
                    info.shape
                ),
            ));
        }
        file.load_f32(name, &self.device)
    }

    pub fn get_opt(&self, name: &str, shape: &[usize], why: &str) -> Result<Option<Tensor>> {
        if self.contains(name) {
            self.get(name, shape, why).map(Some)
        } else {
            Ok(None)
        }
    }
}
