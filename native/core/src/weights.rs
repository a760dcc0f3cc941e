//! The weights of a model directory: one `model.safetensors`, or shards listed in
//! `model.safetensors.index.json`. Tensors are fetched by name with the shape the config
//! implies, so a checkpoint that disagrees with its config.json fails with a message naming
//! the tensor, instead of a broadcasting error deep inside the forward pass.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use candle_core::{Device, Tensor};

use crate::error::{Error, LoadErrorKind, Result};
use crate::quant::{BaseFormat, BaseWeight, QuantMatrix};
use crate::safetensors::{Dtype, SafetensorsFile};

pub struct Weights {
    dir: PathBuf,
    files: Vec<SafetensorsFile>,
    /// Tensor name → index into `files`.
    index: HashMap<String, usize>,
    /// Tensors already in memory (a dequantised GGUF base), by HF name.
    memory: HashMap<String, Tensor>,
    /// Matrices kept in stored form (a GGUF base), by HF name; shared, not copied, with the
    /// decoder built from them.
    stored: HashMap<String, Arc<QuantMatrix>>,
    /// How [`Self::get_base`] holds matrices read from safetensors.
    format: BaseFormat,
    device: Device,
}

/// Whether an HF tensor is a weight matrix the decoder multiplies by (kept compact), as
/// opposed to a norm weight or bias (always f32).
fn is_matrix(name: &str) -> bool {
    name.ends_with("_proj.weight") || name == "model.embed_tokens.weight" || name == "lm_head.weight"
}

impl Weights {
    /// Opens (and validates the headers of) every weight file of `dir`; matrices load as f32.
    pub fn open(dir: &Path, device: &Device) -> Result<Self> {
        Self::open_as(dir, device, BaseFormat::F32)
    }

    /// Like [`Self::open`], holding weight matrices as `format` says: `Stored` keeps bf16/f16
    /// matrices 16-bit, `Q8_0`/`Q4K` quantise each one as it is read (one f32 matrix at a time
    /// is ever in memory).
    pub fn open_as(dir: &Path, device: &Device, format: BaseFormat) -> Result<Self> {
        let mut w = Self::open_files(dir, device)?;
        w.format = format;
        Ok(w)
    }

    fn open_files(dir: &Path, device: &Device) -> Result<Self> {
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
                stored: HashMap::new(),
                format: BaseFormat::F32,
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
        Ok(Self {
            dir: dir.to_path_buf(),
            files,
            index,
            memory: HashMap::new(),
            stored: HashMap::new(),
            format: BaseFormat::F32,
            device: device.clone(),
        })
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
            stored: HashMap::new(),
            format: BaseFormat::F32,
            device: device.clone(),
        })
    }

    /// Reads a GGUF base keeping its quantised weight matrices as stored (llama q/k rows
    /// reordered to HF layout, which moves whole rows); norms, biases and f32 matrices are
    /// read as f32 like [`Self::from_gguf`].
    pub fn from_gguf_stored(g: &crate::gguf::Gguf, device: &Device) -> Result<Self> {
        use crate::gguf::convert;
        let h = crate::gguf::Hparams::from_gguf(g)?;
        let mut file = std::fs::File::open(&g.path).map_err(|e| Error::io(&g.path, &e))?;
        let mut memory = HashMap::new();
        let mut stored = HashMap::new();
        for t in &g.tensors {
            if t.name == "rope_freqs.weight" {
                continue;
            }
            let shape = t.shape();
            let bad = |m: String| Error::load(LoadErrorKind::InvalidConfig, &g.path, m);
            let hf = convert::hf_name(&h.architecture, &t.name)
                .ok_or_else(|| bad(format!("unknown GGUF tensor `{}` for `{}`", t.name, h.architecture)))?;
            let bytes = g.read_tensor_bytes(&mut file, &t.name)?;
            if shape.len() == 2 && is_matrix(&hf) && t.ggml_type != crate::gguf::reader::GgmlType::F32 {
                let (rows, cols) = (shape[0], shape[1]);
                let m = QuantMatrix::new(t.ggml_type, rows, cols, bytes)
                    .map_err(|e| bad(format!("tensor `{}`: {e}", t.name)))?;
                let module = t.name.rsplit('.').nth(1).unwrap_or("");
                let m = if convert::permutes_qk(&h.architecture) && (module == "attn_q" || module == "attn_k")
                {
                    let heads = if module == "attn_q" { h.head_count } else { h.head_count_kv };
                    // The inverse permutation as a row map: HF row `dst` is GGUF row `perm[dst]`.
                    let ids: Vec<f32> = (0..rows).map(|r| r as f32).collect();
                    let perm = convert::unpermute_qk(&ids, rows, 1, heads).map_err(bad)?;
                    m.permute_rows(&perm.iter().map(|&r| r as usize).collect::<Vec<_>>())
                } else {
                    m
                };
                stored.insert(hf, Arc::new(m));
            } else {
                let data = g.dequantize(&t.name, &bytes)?;
                let (name, data) =
                    convert::to_hf(&h.architecture, &t.name, &shape, data, h.head_count, h.head_count_kv)
                        .map_err(bad)?;
                memory.insert(name, Tensor::from_vec(data, shape, device)?);
            }
        }
        Ok(Self {
            dir: g.path.clone(),
            files: Vec::new(),
            index: HashMap::new(),
            memory,
            stored,
            format: BaseFormat::Stored,
            device: device.clone(),
        })
    }

    /// Loads weight matrix `name` (`[out, in]`) in the form this source keeps matrices in.
    pub fn get_base(&self, name: &str, shape: &[usize], why: &str) -> Result<BaseWeight> {
        if let Some(m) = self.stored.get(name) {
            let (r, c) = m.dims();
            if [r, c] != shape {
                return Err(Error::load(
                    LoadErrorKind::ShapeMismatch,
                    &self.dir,
                    format!("tensor `{name}` has shape [{r}, {c}] but the config ({why}) implies {shape:?}"),
                ));
            }
            if self.format == BaseFormat::Bf16 && name != "model.embed_tokens.weight" {
                // A GGUF base held in bf16: dequantised, rounded and packed; only the embedding
                // stays in its blocks, whose looked-up rows are the exact f32 values.
                return Ok(BaseWeight::bf16(&Tensor::from_vec(m.dequantize(), (r, c), &self.device)?)?);
            }
            return Ok(BaseWeight::stored_shared(m.clone(), &self.device));
        }
        let keep_raw = self.format == BaseFormat::Stored;
        if keep_raw && shape.len() == 2 {
            if let Some(&slot) = self.index.get(name) {
                let file = &self.files[slot];
                let info = file.info(name).expect("index only lists tensors present in their file");
                let t = match info.dtype {
                    Dtype::BF16 => Some(crate::gguf::reader::GgmlType::BF16),
                    Dtype::F16 => Some(crate::gguf::reader::GgmlType::F16),
                    _ => None,
                };
                if let (Some(t), true) = (t, info.shape == shape) {
                    let (_, bytes) = file.load_raw(name)?;
                    let m =
                        QuantMatrix::new(t, shape[0], shape[1], bytes).expect("16-bit rows have no blocks");
                    return Ok(BaseWeight::stored(m, &self.device));
                }
            }
        }
        let dense = self.get(name, shape, why)?;
        match (shape, self.format.quantize_to(shape.get(1).copied().unwrap_or(0))) {
            ([rows, cols], Some(t)) => {
                let values = dense.flatten_all()?.to_vec1::<f32>()?;
                drop(dense);
                let m = crate::quant::quantize::quantize(t, &values, *rows, *cols).map_err(|e| {
                    Error::load(LoadErrorKind::InvalidConfig, &self.dir, format!("tensor `{name}`: {e}"))
                })?;
                Ok(BaseWeight::stored(m, &self.device))
            }
            ([_, _], None) if self.format == BaseFormat::Bf16 && name != "model.embed_tokens.weight" => {
                Ok(BaseWeight::bf16(&dense)?)
            }
            _ => Ok(BaseWeight::F32(dense)),
        }
    }

    /// How [`Self::get_base`] holds matrices.
    pub fn format(&self) -> BaseFormat {
        self.format
    }

    /// The same source with matrices held as `format` says (a dequantised GGUF base held in
    /// bf16).
    pub fn with_format(mut self, format: BaseFormat) -> Self {
        self.format = format;
        self
    }

    pub fn contains(&self, name: &str) -> bool {
        self.index.contains_key(name) || self.memory.contains_key(name) || self.stored.contains_key(name)
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
