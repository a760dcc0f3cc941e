//! A defensive reader for the safetensors format.
//!
//! Why not `candle_core::safetensors`: its loader memory-maps the file (`unsafe`; a file
//! truncated under us turns into SIGBUS, which no `catch_unwind` can stop) and trusts the
//! header enough to panic or over-allocate on hostile input. Model directories come from the
//! user's disk or the Hub, so every header field is validated here before a single tensor
//! byte is read, and tensors are read with plain `read` calls into owned buffers.
//!
//! Format: `u64` little-endian header length `N`, `N` bytes of JSON
//! `{name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {..}}`, then the data
//! region; offsets are relative to the start of the data region.

use std::collections::HashMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};

use crate::error::{Error, LoadErrorKind, Result};

/// Headers larger than this are rejected before allocating. The biggest real headers (tens
/// of thousands of tensors) are a few MB; 100 MB is the same cap the reference library uses.
pub const MAX_HEADER_BYTES: u64 = 100 * 1024 * 1024;

/// The element types the safetensors format defines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dtype {
    Bool,
    U8,
    I8,
    F8E5M2,
    F8E4M3,
    I16,
    U16,
    F16,
    BF16,
    I32,
    U32,
    F32,
    F64,
    I64,
    U64,
}

impl Dtype {
    fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "BOOL" => Self::Bool,
            "U8" => Self::U8,
            "I8" => Self::I8,
            "F8_E5M2" => Self::F8E5M2,
            "F8_E4M3" => Self::F8E4M3,
            "I16" => Self::I16,
            "U16" => Self::U16,
            "F16" => Self::F16,
            "BF16" => Self::BF16,
            "I32" => Self::I32,
            "U32" => Self::U32,
            "F32" => Self::F32,
            "F64" => Self::F64,
            "I64" => Self::I64,
            "U64" => Self::U64,
            _ => return None,
        })
    }

    pub fn size_in_bytes(self) -> u64 {
        match self {
            Self::Bool | Self::U8 | Self::I8 | Self::F8E5M2 | Self::F8E4M3 => 1,
            Self::I16 | Self::U16 | Self::F16 | Self::BF16 => 2,
            Self::I32 | Self::U32 | Self::F32 => 4,
            Self::F64 | Self::I64 | Self::U64 => 8,
        }
    }
}

/// One validated header entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TensorInfo {
    pub dtype: Dtype,
    pub shape: Vec<usize>,
    /// Byte range inside the data region.
    pub begin: u64,
    pub end: u64,
}

/// A safetensors file whose header has been fully validated against the file's length.
#[derive(Debug)]
pub struct SafetensorsFile {
    path: PathBuf,
    data_start: u64,
    tensors: HashMap<String, TensorInfo>,
}

fn invalid(path: &Path, message: impl Into<String>) -> Error {
    Error::load(LoadErrorKind::InvalidHeader, path, message)
}

/// Validates a header (the JSON bytes after the length prefix) against a data region of
/// `data_len` bytes. Pure, so the fuzz test can drive it without touching the disk.
pub fn parse_header(path: &Path, header: &[u8], data_len: u64) -> Result<HashMap<String, TensorInfo>> {
    let value: serde_json::Value = serde_json::from_slice(header)
        .map_err(|e| invalid(path, format!("safetensors header is not valid JSON: {e}")))?;
    let serde_json::Value::Object(entries) = value else {
        return Err(invalid(path, "safetensors header is not a JSON object"));
    };
    let mut tensors = HashMap::with_capacity(entries.len());
    let mut ranges: Vec<(u64, u64, &str)> = Vec::with_capacity(entries.len());
    let mut needed_len = 0u64;
    for (name, entry) in &entries {
        if name == "__metadata__" {
            // Free-form string map; only its type is checked.
            let ok = entry.as_object().is_some_and(|m| m.values().all(|v| v.is_string()));
            if !ok {
                return Err(invalid(path, "`__metadata__` must map strings to strings"));
            }
            continue;
        }
        let obj =
            entry.as_object().ok_or_else(|| invalid(path, format!("entry `{name}` is not an object")))?;
        let dtype_name = obj
            .get("dtype")
            .and_then(|v| v.as_str())
            .ok_or_else(|| invalid(path, format!("tensor `{name}` has no string `dtype`")))?;
        let dtype = Dtype::parse(dtype_name).ok_or_else(|| {
            Error::load(
                LoadErrorKind::UnsupportedDtype,
                path,
                format!("tensor `{name}` has unknown dtype `{dtype_name}`"),
            )
        })?;
        let shape = obj
            .get("shape")
            .and_then(|v| v.as_array())
            .ok_or_else(|| invalid(path, format!("tensor `{name}` has no `shape` array")))?
            .iter()
            .map(|d| d.as_u64().and_then(|d| usize::try_from(d).ok()))
            .collect::<Option<Vec<usize>>>()
            .ok_or_else(|| {
                invalid(path, format!("tensor `{name}` has a shape entry that is not a non-negative integer"))
            })?;
        let offsets = obj
            .get("data_offsets")
            .and_then(|v| v.as_array())
            .filter(|a| a.len() == 2)
            .and_then(|a| Some((a[0].as_u64()?, a[1].as_u64()?)))
            .ok_or_else(|| {
                invalid(path, format!("tensor `{name}` needs `data_offsets: [begin, end]` of integers"))
            })?;
        let (begin, end) = offsets;
        if begin > end {
            return Err(invalid(
                path,
                format!("tensor `{name}` has data_offsets [{begin}, {end}] with begin after end"),
            ));
        }
        let numel = shape
            .iter()
            .try_fold(1u64, |acc, &d| acc.checked_mul(d as u64))
            .ok_or_else(|| invalid(path, format!("tensor `{name}` shape {shape:?} overflows")))?;
        let bytes = numel
            .checked_mul(dtype.size_in_bytes())
            .ok_or_else(|| invalid(path, format!("tensor `{name}` shape {shape:?} overflows")))?;
        if end - begin != bytes {
            return Err(invalid(
                path,
                format!(
                    "tensor `{name}` ({dtype_name} {shape:?}) needs {bytes} bytes but data_offsets [{begin}, {end}] span {}",
                    end - begin
                ),
            ));
        }
        needed_len = needed_len.max(end);
        ranges.push((begin, end, name.as_str()));
        tensors.insert(name.clone(), TensorInfo { dtype, shape, begin, end });
    }
    // Overlapping tensors would alias each other's bytes; the format forbids it.
    ranges.sort_unstable();
    for pair in ranges.windows(2) {
        let ((_, prev_end, prev), (begin, _, next)) = (pair[0], pair[1]);
        if begin < prev_end {
            return Err(invalid(path, format!("tensors `{prev}` and `{next}` overlap in the data region")));
        }
    }
    if needed_len > data_len {
        return Err(Error::load(
            LoadErrorKind::Truncated,
            path,
            format!("the header needs a data region of {needed_len} bytes but the file holds only {data_len}; the file looks truncated (re-download it)"),
        ));
    }
    Ok(tensors)
}

impl SafetensorsFile {
    /// Opens and validates `path`. Reads only the header.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let mut file = File::open(path).map_err(|e| Error::io(path, &e))?;
        let file_len = file.metadata().map_err(|e| Error::io(path, &e))?.len();
        if file_len < 8 {
            return Err(Error::load(
                LoadErrorKind::Truncated,
                path,
                format!("file is {file_len} bytes, shorter than the 8-byte safetensors length prefix"),
            ));
        }
        let mut prefix = [0u8; 8];
        file.read_exact(&mut prefix).map_err(|e| Error::io(path, &e))?;
        let header_len = u64::from_le_bytes(prefix);
        if header_len > MAX_HEADER_BYTES {
            return Err(invalid(path, format!("header length {header_len} exceeds the {MAX_HEADER_BYTES}-byte limit; not a safetensors file?")));
        }
        if 8 + header_len > file_len {
            return Err(Error::load(
                LoadErrorKind::Truncated,
                path,
                format!(
                    "header claims {header_len} bytes but the file has only {} after the prefix",
                    file_len - 8
                ),
            ));
        }
        let mut header = vec![0u8; header_len as usize];
        file.read_exact(&mut header).map_err(|e| Error::io(path, &e))?;
        let data_start = 8 + header_len;
        let tensors = parse_header(path, &header, file_len - data_start)?;
        Ok(Self { path: path.to_path_buf(), data_start, tensors })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn tensors(&self) -> &HashMap<String, TensorInfo> {
        &self.tensors
    }

    pub fn info(&self, name: &str) -> Option<&TensorInfo> {
        self.tensors.get(name)
    }

    /// Reads a floating-point tensor and upcasts it to f32 (CPU matmul has no bf16 kernel,
    /// and bf16/f16 → f32 is exact).
    pub fn load_f32(&self, name: &str, device: &Device) -> Result<Tensor> {
        let info = self.tensors.get(name).ok_or_else(|| {
            Error::load(LoadErrorKind::MissingTensor, &self.path, format!("no tensor named `{name}`"))
        })?;
        let bytes = self.read_bytes(info)?;
        let values: Vec<f32> = match info.dtype {
            Dtype::F32 => bytes.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect(),
            Dtype::F16 => bytes
                .chunks_exact(2)
                .map(|c| half::f16::from_bits(u16::from_le_bytes([c[0], c[1]])).to_f32())
                .collect(),
            Dtype::BF16 => bytes
                .chunks_exact(2)
                .map(|c| half::bf16::from_bits(u16::from_le_bytes([c[0], c[1]])).to_f32())
                .collect(),
            Dtype::F64 => bytes
                .chunks_exact(8)
                .map(|c| f64::from_le_bytes(c.try_into().expect("chunks_exact(8)")) as f32)
                .collect(),
            other => {
                return Err(Error::load(
                    LoadErrorKind::UnsupportedDtype,
                    &self.path,
                    format!("tensor `{name}` is stored as {other:?}; only F32, F16, BF16 and F64 weights are supported (quantized safetensors are not)"),
                ))
            }
        };
        Ok(Tensor::from_vec(values, info.shape.as_slice(), device)?)
    }

    /// The stored bytes of `name` and their dtype, unconverted (a compact bf16/f16 base).
    pub fn load_raw(&self, name: &str) -> Result<(Dtype, Vec<u8>)> {
        let info = self.tensors.get(name).ok_or_else(|| {
            Error::load(LoadErrorKind::MissingTensor, &self.path, format!("no tensor named `{name}`"))
        })?;
        Ok((info.dtype, self.read_bytes(info)?))
    }

    fn read_bytes(&self, info: &TensorInfo) -> Result<Vec<u8>> {
        let mut file = File::open(&self.path).map_err(|e| Error::io(&self.path, &e))?;
        file.seek(SeekFrom::Start(self.data_start + info.begin)).map_err(|e| Error::io(&self.path, &e))?;
        let mut bytes = vec![0u8; (info.end - info.begin) as usize];
        // The length was checked at open; a short read now means the file shrank since.
        file.read_exact(&mut bytes).map_err(|e| {
            if e.kind() == std::io::ErrorKind::UnexpectedEof {
                Error::load(
                    LoadErrorKind::Truncated,
                    &self.path,
                    "file ended while reading tensor data (was it modified after opening?)",
                )
            } else {
                Error::io(&self.path, &e)
            }
        })?;
        Ok(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(json: &str) -> Vec<u8> {
        json.as_bytes().to_vec()
    }

    #[test]
    fn accepts_a_valid_header() {
        let h = header(
            r#"{"__metadata__":{"format":"pt"},"a":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]},"b":{"dtype":"BF16","shape":[3],"data_offsets":[16,22]}}"#,
        );
        let t = parse_header(Path::new("x"), &h, 22).unwrap();
        assert_eq!(t["b"], TensorInfo { dtype: Dtype::BF16, shape: vec![3], begin: 16, end: 22 });
    }

    #[test]
    fn rejects_lies_with_the_right_kind() {
        let cases = [
            (
                r#"{"a":{"dtype":"F32","shape":[2,2],"data_offsets":[0,12]}}"#,
                16,
                LoadErrorKind::InvalidHeader,
            ),
            (r#"{"a":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]}}"#, 8, LoadErrorKind::Truncated),
            (r#"{"a":{"dtype":"Q4","shape":[2],"data_offsets":[0,2]}}"#, 2, LoadErrorKind::UnsupportedDtype),
            (
                r#"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[2,6]}}"#,
                6,
                LoadErrorKind::InvalidHeader,
            ),
            (
                r#"{"a":{"dtype":"F32","shape":[4294967296,4294967296,16],"data_offsets":[0,0]}}"#,
                0,
                LoadErrorKind::InvalidHeader,
            ),
            (r#"{"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}}"#, 4, LoadErrorKind::InvalidHeader),
            (r#"{"a":{"dtype":"F32","shape":[1],"data_offsets":[8,4]}}"#, 8, LoadErrorKind::InvalidHeader),
            (r#"[1,2]"#, 0, LoadErrorKind::InvalidHeader),
            (r#"{"a":"#, 0, LoadErrorKind::InvalidHeader),
        ];
        for (json, data_len, kind) in cases {
            let err = parse_header(Path::new("x"), &header(json), data_len).unwrap_err();
            assert_eq!(err.load_kind(), Some(kind), "{json}: {err}");
        }
    }
}
