//! A defensive GGUF reader: header, metadata, tensor infos, tensor bytes.
//!
//! Layout (little-endian, version 2 and 3): magic `GGUF`, `u32` version, `u64` tensor count,
//! `u64` metadata count; the metadata key/value pairs; the tensor infos (name, `u32` n_dims,
//! `u64` dims in ggml order, `u32` ggml type, `u64` offset relative to the data section); then
//! padding to `general.alignment` (default 32) and the data section.
//!
//! Every count, length and offset is checked against the bytes that remain in the file
//! before anything is allocated, so a lying header yields a typed error
//! ([`LoadErrorKind::MalformedGguf`], [`LoadErrorKind::Truncated`] or
//! [`LoadErrorKind::UnsupportedDtype`]) instead of a panic or a huge allocation.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use crate::error::{Error, LoadErrorKind, Result};
use crate::gguf::dequant;

/// `"GGUF"` read as a little-endian u32.
pub const MAGIC: u32 = 0x4655_4747;
pub const DEFAULT_ALIGNMENT: u64 = 32;
/// ggml tensors have at most four dimensions.
pub const MAX_DIMS: u32 = 4;
/// Arrays of arrays deeper than this are rejected (real files nest at most once); without
/// a bound, a small file of nested array headers could overflow the stack.
pub const MAX_ARRAY_DEPTH: usize = 4;
/// Keys and tensor names longer than this are rejected (llama.cpp's limit on names is 64).
pub const MAX_NAME_BYTES: u64 = 1 << 16;

/// The metadata value types of the GGUF spec.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueType {
    U8,
    I8,
    U16,
    I16,
    U32,
    I32,
    F32,
    Bool,
    String,
    Array,
    U64,
    I64,
    F64,
}

impl ValueType {
    pub fn from_u32(id: u32) -> Option<Self> {
        Some(match id {
            0 => Self::U8,
            1 => Self::I8,
            2 => Self::U16,
            3 => Self::I16,
            4 => Self::U32,
            5 => Self::I32,
            6 => Self::F32,
            7 => Self::Bool,
            8 => Self::String,
            9 => Self::Array,
            10 => Self::U64,
            11 => Self::I64,
            12 => Self::F64,
            _ => return None,
        })
    }

    pub fn id(self) -> u32 {
        match self {
            Self::U8 => 0,
            Self::I8 => 1,
            Self::U16 => 2,
            Self::I16 => 3,
            Self::U32 => 4,
            Self::I32 => 5,
            Self::F32 => 6,
            Self::Bool => 7,
            Self::String => 8,
            Self::Array => 9,
            Self::U64 => 10,
            Self::I64 => 11,
            Self::F64 => 12,
        }
    }

    /// The fewest bytes one value of this type takes in a file (a string's length prefix,
    /// an array's type + count header). Bounds array counts before allocating.
    fn min_encoded_size(self) -> u64 {
        match self {
            Self::U8 | Self::I8 | Self::Bool => 1,
            Self::U16 | Self::I16 => 2,
            Self::U32 | Self::I32 | Self::F32 => 4,
            Self::U64 | Self::I64 | Self::F64 | Self::String => 8,
            Self::Array => 12,
        }
    }
}

/// A metadata value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    U8(u8),
    I8(i8),
    U16(u16),
    I16(i16),
    U32(u32),
    I32(i32),
    F32(f32),
    Bool(bool),
    String(String),
    Array(Array),
    U64(u64),
    I64(i64),
    F64(f64),
}

/// A homogeneous metadata array, stored unboxed so memory stays proportional to file size.
#[derive(Debug, Clone, PartialEq)]
pub enum Array {
    U8(Vec<u8>),
    I8(Vec<i8>),
    U16(Vec<u16>),
    I16(Vec<i16>),
    U32(Vec<u32>),
    I32(Vec<i32>),
    F32(Vec<f32>),
    Bool(Vec<bool>),
    String(Vec<String>),
    Array(Vec<Array>),
    U64(Vec<u64>),
    I64(Vec<i64>),
    F64(Vec<f64>),
}

impl Value {
    pub fn value_type(&self) -> ValueType {
        match self {
            Self::U8(_) => ValueType::U8,
            Self::I8(_) => ValueType::I8,
            Self::U16(_) => ValueType::U16,
            Self::I16(_) => ValueType::I16,
            Self::U32(_) => ValueType::U32,
            Self::I32(_) => ValueType::I32,
            Self::F32(_) => ValueType::F32,
            Self::Bool(_) => ValueType::Bool,
            Self::String(_) => ValueType::String,
            Self::Array(_) => ValueType::Array,
            Self::U64(_) => ValueType::U64,
            Self::I64(_) => ValueType::I64,
            Self::F64(_) => ValueType::F64,
        }
    }

    /// Any integer type whose value is non-negative and fits a u64.
    pub fn as_u64(&self) -> Option<u64> {
        match *self {
            Self::U8(v) => Some(v.into()),
            Self::U16(v) => Some(v.into()),
            Self::U32(v) => Some(v.into()),
            Self::U64(v) => Some(v),
            Self::I8(v) => u64::try_from(v).ok(),
            Self::I16(v) => u64::try_from(v).ok(),
            Self::I32(v) => u64::try_from(v).ok(),
            Self::I64(v) => u64::try_from(v).ok(),
            _ => None,
        }
    }

    /// Any integer type whose value fits an i64.
    pub fn as_i64(&self) -> Option<i64> {
        match *self {
            Self::I8(v) => Some(v.into()),
            Self::I16(v) => Some(v.into()),
            Self::I32(v) => Some(v.into()),
            Self::I64(v) => Some(v),
            Self::U8(v) => Some(v.into()),
            Self::U16(v) => Some(v.into()),
            Self::U32(v) => Some(v.into()),
            Self::U64(v) => i64::try_from(v).ok(),
            _ => None,
        }
    }

    /// F32 or F64 (widened), or any integer.
    pub fn as_f64(&self) -> Option<f64> {
        match *self {
            Self::F32(v) => Some(v.into()),
            Self::F64(v) => Some(v),
            _ => self.as_i64().map(|v| v as f64),
        }
    }

    pub fn as_bool(&self) -> Option<bool> {
        match *self {
            Self::Bool(v) => Some(v),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Self::String(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_array(&self) -> Option<&Array> {
        match self {
            Self::Array(a) => Some(a),
            _ => None,
        }
    }
}

impl Array {
    pub fn elem_type(&self) -> ValueType {
        match self {
            Self::U8(_) => ValueType::U8,
            Self::I8(_) => ValueType::I8,
            Self::U16(_) => ValueType::U16,
            Self::I16(_) => ValueType::I16,
            Self::U32(_) => ValueType::U32,
            Self::I32(_) => ValueType::I32,
            Self::F32(_) => ValueType::F32,
            Self::Bool(_) => ValueType::Bool,
            Self::String(_) => ValueType::String,
            Self::Array(_) => ValueType::Array,
            Self::U64(_) => ValueType::U64,
            Self::I64(_) => ValueType::I64,
            Self::F64(_) => ValueType::F64,
        }
    }

    pub fn len(&self) -> usize {
        match self {
            Self::U8(v) => v.len(),
            Self::I8(v) => v.len(),
            Self::U16(v) => v.len(),
            Self::I16(v) => v.len(),
            Self::U32(v) => v.len(),
            Self::I32(v) => v.len(),
            Self::F32(v) => v.len(),
            Self::Bool(v) => v.len(),
            Self::String(v) => v.len(),
            Self::Array(v) => v.len(),
            Self::U64(v) => v.len(),
            Self::I64(v) => v.len(),
            Self::F64(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// ggml tensor types whose block layout this reader knows (so it can size and bounds-check
/// them). Which of them can be dequantised is [`GgmlType::can_dequantize`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[allow(non_camel_case_types)]
pub enum GgmlType {
    F32,
    F16,
    Q4_0,
    Q4_1,
    Q5_0,
    Q5_1,
    Q8_0,
    Q8_1,
    Q2_K,
    Q3_K,
    Q4_K,
    Q5_K,
    Q6_K,
    Q8_K,
    I8,
    I16,
    I32,
    I64,
    F64,
    BF16,
}

impl GgmlType {
    pub fn from_u32(id: u32) -> Option<Self> {
        Some(match id {
            0 => Self::F32,
            1 => Self::F16,
            2 => Self::Q4_0,
            3 => Self::Q4_1,
            6 => Self::Q5_0,
            7 => Self::Q5_1,
            8 => Self::Q8_0,
            9 => Self::Q8_1,
            10 => Self::Q2_K,
            11 => Self::Q3_K,
            12 => Self::Q4_K,
            13 => Self::Q5_K,
            14 => Self::Q6_K,
            15 => Self::Q8_K,
            24 => Self::I8,
            25 => Self::I16,
            26 => Self::I32,
            27 => Self::I64,
            28 => Self::F64,
            30 => Self::BF16,
            _ => return None,
        })
    }

    pub fn id(self) -> u32 {
        match self {
            Self::F32 => 0,
            Self::F16 => 1,
            Self::Q4_0 => 2,
            Self::Q4_1 => 3,
            Self::Q5_0 => 6,
            Self::Q5_1 => 7,
            Self::Q8_0 => 8,
            Self::Q8_1 => 9,
            Self::Q2_K => 10,
            Self::Q3_K => 11,
            Self::Q4_K => 12,
            Self::Q5_K => 13,
            Self::Q6_K => 14,
            Self::Q8_K => 15,
            Self::I8 => 24,
            Self::I16 => 25,
            Self::I32 => 26,
            Self::I64 => 27,
            Self::F64 => 28,
            Self::BF16 => 30,
        }
    }

    /// (elements per block, bytes per block), as in ggml's type traits.
    pub fn block_layout(self) -> (u64, u64) {
        match self {
            Self::F32 | Self::I32 => (1, 4),
            Self::F16 | Self::BF16 | Self::I16 => (1, 2),
            Self::I8 => (1, 1),
            Self::I64 | Self::F64 => (1, 8),
            Self::Q4_0 => (32, 18),
            Self::Q4_1 => (32, 20),
            Self::Q5_0 => (32, 22),
            Self::Q5_1 => (32, 24),
            Self::Q8_0 => (32, 34),
            Self::Q8_1 => (32, 36),
            Self::Q2_K => (256, 84),
            Self::Q3_K => (256, 110),
            Self::Q4_K => (256, 144),
            Self::Q5_K => (256, 176),
            Self::Q6_K => (256, 210),
            Self::Q8_K => (256, 292),
        }
    }

    pub fn can_dequantize(self) -> bool {
        dequant::supported(self)
    }
}

impl std::fmt::Display for GgmlType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(self, f)
    }
}

/// One validated tensor info.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TensorInfo {
    pub name: String,
    /// Dimensions in ggml order: `dims[0]` varies fastest (a PyTorch `[out, in]` matrix is
    /// `[in, out]` here).
    pub dims: Vec<u64>,
    pub ggml_type: GgmlType,
    /// Offset of the tensor's bytes from the start of the data section.
    pub offset: u64,
    /// Bytes the tensor occupies.
    pub n_bytes: u64,
}

impl TensorInfo {
    pub fn n_elements(&self) -> u64 {
        // Checked at parse time not to overflow.
        self.dims.iter().product()
    }

    /// The shape in PyTorch / row-major order (`dims` reversed).
    pub fn shape(&self) -> Vec<usize> {
        self.dims.iter().rev().map(|&d| d as usize).collect()
    }
}

/// A parsed GGUF header: metadata and tensor infos, with the data section located.
#[derive(Debug, Clone)]
pub struct Gguf {
    pub path: PathBuf,
    pub version: u32,
    /// Metadata in file order.
    pub metadata: Vec<(String, Value)>,
    pub tensors: Vec<TensorInfo>,
    pub alignment: u64,
    /// Absolute file offset of the data section.
    pub data_offset: u64,
    pub file_len: u64,
    meta_index: HashMap<String, usize>,
    tensor_index: HashMap<String, usize>,
}

/// Reads primitive values while tracking the position and refusing to read past `len`.
struct Src<'p, R> {
    r: R,
    pos: u64,
    len: u64,
    path: &'p Path,
}

impl<R: Read> Src<'_, R> {
    fn malformed(&self, message: impl Into<String>) -> Error {
        Error::load(LoadErrorKind::MalformedGguf, self.path, message.into())
    }

    fn remaining(&self) -> u64 {
        self.len - self.pos
    }

    fn need(&self, n: u64, what: &str) -> Result<()> {
        if n > self.remaining() {
            return Err(Error::load(
                LoadErrorKind::Truncated,
                self.path,
                format!("{what} needs {n} bytes at offset {} but the file has {} bytes", self.pos, self.len),
            ));
        }
        Ok(())
    }

    fn fill(&mut self, buf: &mut [u8], what: &str) -> Result<()> {
        self.need(buf.len() as u64, what)?;
        self.r.read_exact(buf).map_err(|e| {
            if e.kind() == std::io::ErrorKind::UnexpectedEof {
                Error::load(LoadErrorKind::Truncated, self.path, format!("file ended inside {what}"))
            } else {
                Error::io(self.path, &e)
            }
        })?;
        self.pos += buf.len() as u64;
        Ok(())
    }

    fn array<const N: usize>(&mut self, what: &str) -> Result<[u8; N]> {
        let mut b = [0u8; N];
        self.fill(&mut b, what)?;
        Ok(b)
    }

    fn u8(&mut self, what: &str) -> Result<u8> {
        Ok(self.array::<1>(what)?[0])
    }
    fn u16(&mut self, what: &str) -> Result<u16> {
        Ok(u16::from_le_bytes(self.array(what)?))
    }
    fn u32(&mut self, what: &str) -> Result<u32> {
        Ok(u32::from_le_bytes(self.array(what)?))
    }
    fn u64(&mut self, what: &str) -> Result<u64> {
        Ok(u64::from_le_bytes(self.array(what)?))
    }

    /// `n` bytes, allocated only after checking that the file holds them.
    fn bytes(&mut self, n: u64, what: &str) -> Result<Vec<u8>> {
        self.need(n, what)?;
        let mut buf = vec![0u8; n as usize];
        self.fill(&mut buf, what)?;
        Ok(buf)
    }

    fn string(&mut self, what: &str, max: u64) -> Result<String> {
        let n = self.u64(what)?;
        if n > max {
            return Err(self.malformed(format!("{what} is {n} bytes long (limit {max})")));
        }
        let bytes = self.bytes(n, what)?;
        String::from_utf8(bytes).map_err(|_| self.malformed(format!("{what} is not valid UTF-8")))
    }

    fn bool(&mut self, what: &str) -> Result<bool> {
        match self.u8(what)? {
            0 => Ok(false),
            1 => Ok(true),
            b => Err(self.malformed(format!("{what}: bool byte must be 0 or 1, got {b}"))),
        }
    }

    fn value_type(&mut self, what: &str) -> Result<ValueType> {
        let id = self.u32(what)?;
        ValueType::from_u32(id).ok_or_else(|| self.malformed(format!("{what}: unknown value type {id}")))
    }

    fn value(&mut self, ty: ValueType, what: &str, depth: usize) -> Result<Value> {
        Ok(match ty {
            ValueType::U8 => Value::U8(self.u8(what)?),
            ValueType::I8 => Value::I8(self.u8(what)? as i8),
            ValueType::U16 => Value::U16(self.u16(what)?),
            ValueType::I16 => Value::I16(self.u16(what)? as i16),
            ValueType::U32 => Value::U32(self.u32(what)?),
            ValueType::I32 => Value::I32(self.u32(what)? as i32),
            ValueType::F32 => Value::F32(f32::from_bits(self.u32(what)?)),
            ValueType::Bool => Value::Bool(self.bool(what)?),
            ValueType::String => Value::String(self.string(what, u64::MAX)?),
            ValueType::Array => Value::Array(self.array_value(what, depth + 1)?),
            ValueType::U64 => Value::U64(self.u64(what)?),
            ValueType::I64 => Value::I64(self.u64(what)? as i64),
            ValueType::F64 => Value::F64(f64::from_bits(self.u64(what)?)),
        })
    }

    fn array_value(&mut self, what: &str, depth: usize) -> Result<Array> {
        if depth > MAX_ARRAY_DEPTH {
            return Err(self.malformed(format!("{what}: arrays nested deeper than {MAX_ARRAY_DEPTH}")));
        }
        let elem = self.value_type(what)?;
        let count = self.u64(what)?;
        let min = elem.min_encoded_size();
        if count > self.remaining() / min {
            return Err(self.malformed(format!(
                "{what}: array of {count} {elem:?} values cannot fit in the {} bytes left",
                self.remaining()
            )));
        }
        let n = count as usize;
        macro_rules! collect {
            ($variant:ident, $read:expr) => {{
                let mut v = Vec::with_capacity(n);
                for _ in 0..n {
                    v.push($read);
                }
                Array::$variant(v)
            }};
        }
        Ok(match elem {
            ValueType::U8 => Array::U8(self.bytes(count, what)?),
            ValueType::I8 => Array::I8(self.bytes(count, what)?.into_iter().map(|b| b as i8).collect()),
            ValueType::U16 => collect!(U16, self.u16(what)?),
            ValueType::I16 => collect!(I16, self.u16(what)? as i16),
            ValueType::U32 => collect!(U32, self.u32(what)?),
            ValueType::I32 => collect!(I32, self.u32(what)? as i32),
            ValueType::F32 => collect!(F32, f32::from_bits(self.u32(what)?)),
            ValueType::Bool => collect!(Bool, self.bool(what)?),
            ValueType::String => collect!(String, self.string(what, u64::MAX)?),
            ValueType::Array => collect!(Array, self.array_value(what, depth + 1)?),
            ValueType::U64 => collect!(U64, self.u64(what)?),
            ValueType::I64 => collect!(I64, self.u64(what)? as i64),
            ValueType::F64 => collect!(F64, f64::from_bits(self.u64(what)?)),
        })
    }

    fn skip_to(&mut self, target: u64) -> Result<()> {
        // Only used for the padding before the data section, which is < alignment bytes.
        while self.pos < target {
            let chunk = (target - self.pos).min(4096);
            self.bytes(chunk, "padding before the tensor data")?;
        }
        Ok(())
    }
}

fn align_up(x: u64, alignment: u64) -> Option<u64> {
    x.checked_add(alignment - 1).map(|v| v / alignment * alignment)
}

impl Gguf {
    /// Opens `path` and reads its header (metadata and tensor infos). Tensor bytes are read
    /// later, one tensor at a time.
    pub fn open(path: &Path) -> Result<Self> {
        let file = File::open(path).map_err(|e| Error::io(path, &e))?;
        let len = file.metadata().map_err(|e| Error::io(path, &e))?.len();
        Self::read(BufReader::new(file), len, path)
    }

    /// Parses a GGUF file held in memory.
    pub fn parse(bytes: &[u8], path: &Path) -> Result<Self> {
        Self::read(bytes, bytes.len() as u64, path)
    }

    /// Reads the header from `r`, positioned at the start of a file of `file_len` bytes.
    pub fn read<R: Read>(r: R, file_len: u64, path: &Path) -> Result<Self> {
        let mut src = Src { r, pos: 0, len: file_len, path };
        let magic = src.u32("the magic number")?;
        if magic != MAGIC {
            return Err(src.malformed(format!(
                "not a GGUF file: magic is {:02x?}, expected \"GGUF\"",
                magic.to_le_bytes()
            )));
        }
        let version = src.u32("the version")?;
        if version != 2 && version != 3 {
            return Err(src.malformed(format!("GGUF version {version} is not supported (expected 2 or 3)")));
        }
        let tensor_count = src.u64("the tensor count")?;
        let kv_count = src.u64("the metadata count")?;
        // Smallest encodings: a KV is key length (8) + type (4) + at least 1 value byte;
        // a tensor info is name length (8) + n_dims (4) + type (4) + offset (8).
        if kv_count > src.remaining() / 13 {
            return Err(src.malformed(format!(
                "metadata count {kv_count} cannot fit in the {} bytes of the file",
                file_len
            )));
        }
        if tensor_count > src.remaining() / 24 {
            return Err(src.malformed(format!(
                "tensor count {tensor_count} cannot fit in the {} bytes of the file",
                file_len
            )));
        }

        let mut metadata = Vec::with_capacity(kv_count as usize);
        let mut meta_index = HashMap::with_capacity(kv_count as usize);
        for i in 0..kv_count {
            let key = src.string(&format!("metadata key #{i}"), MAX_NAME_BYTES)?;
            let what = format!("metadata `{key}`");
            let ty = src.value_type(&what)?;
            let value = src.value(ty, &what, 0)?;
            if meta_index.insert(key.clone(), metadata.len()).is_some() {
                return Err(src.malformed(format!("metadata key `{key}` appears twice")));
            }
            metadata.push((key, value));
        }

        let alignment = match meta_index.get("general.alignment").map(|&i| &metadata[i].1) {
            None => DEFAULT_ALIGNMENT,
            Some(Value::U32(a)) if *a != 0 && a.is_power_of_two() => u64::from(*a),
            Some(other) => {
                return Err(src.malformed(format!(
                    "general.alignment must be a non-zero power of two u32, got {other:?}"
                )))
            }
        };

        // Tensor infos come after metadata; counts were bounded above by the file size.
        let mut raw = Vec::with_capacity(tensor_count as usize);
        for i in 0..tensor_count {
            let name = src.string(&format!("tensor name #{i}"), MAX_NAME_BYTES)?;
            let what = format!("tensor `{name}`");
            let n_dims = src.u32(&what)?;
            if n_dims > MAX_DIMS {
                return Err(src.malformed(format!("{what} has {n_dims} dimensions (at most {MAX_DIMS})")));
            }
            let mut dims = Vec::with_capacity(n_dims as usize);
            for _ in 0..n_dims {
                dims.push(src.u64(&what)?);
            }
            let type_id = src.u32(&what)?;
            let offset = src.u64(&what)?;
            raw.push((name, dims, type_id, offset));
        }
        let data_offset =
            align_up(src.pos, alignment).ok_or_else(|| src.malformed("data section offset overflows"))?;
        let data_len = file_len.saturating_sub(data_offset);

        let mut tensors = Vec::with_capacity(raw.len());
        let mut tensor_index = HashMap::with_capacity(raw.len());
        for (name, dims, type_id, offset) in raw {
            let ggml_type = GgmlType::from_u32(type_id).ok_or_else(|| {
                Error::load(
                    LoadErrorKind::UnsupportedDtype,
                    path,
                    format!("tensor `{name}` has ggml type {type_id}, which this reader does not know"),
                )
            })?;
            let n_elements = dims
                .iter()
                .try_fold(1u64, |acc, &d| acc.checked_mul(d))
                .filter(|&n| n <= i64::MAX as u64)
                .ok_or_else(|| src.malformed(format!("tensor `{name}`: dims {dims:?} overflow")))?;
            let (block, block_bytes) = ggml_type.block_layout();
            let row = dims.first().copied().unwrap_or(1);
            if row % block != 0 {
                return Err(src.malformed(format!(
                    "tensor `{name}`: row length {row} is not a multiple of the {ggml_type} block size {block}"
                )));
            }
            let n_bytes = (n_elements / block)
                .checked_mul(block_bytes)
                .ok_or_else(|| src.malformed(format!("tensor `{name}`: byte size overflows")))?;
            if offset % alignment != 0 {
                return Err(src.malformed(format!(
                    "tensor `{name}`: offset {offset} is not a multiple of the alignment {alignment}"
                )));
            }
            let end = offset
                .checked_add(n_bytes)
                .ok_or_else(|| src.malformed(format!("tensor `{name}`: offset {offset} overflows")))?;
            if end > data_len {
                return Err(Error::load(
                    LoadErrorKind::Truncated,
                    path,
                    format!(
                        "tensor `{name}` spans bytes {offset}..{end} of the data section, which has {data_len} bytes"
                    ),
                ));
            }
            if tensor_index.insert(name.clone(), tensors.len()).is_some() {
                return Err(src.malformed(format!("tensor `{name}` appears twice")));
            }
            tensors.push(TensorInfo { name, dims, ggml_type, offset, n_bytes });
        }

        // Tensors may be stored in any order but must not overlap.
        let mut spans: Vec<(u64, u64, &str)> =
            tensors.iter().map(|t| (t.offset, t.offset + t.n_bytes, t.name.as_str())).collect();
        spans.sort_unstable();
        for w in spans.windows(2) {
            if w[1].0 < w[0].1 {
                return Err(src.malformed(format!("tensors `{}` and `{}` overlap", w[0].2, w[1].2)));
            }
        }

        if !tensors.is_empty() {
            // Confirms the padding is really there (the checks above used file_len).
            src.skip_to(data_offset)?;
        }
        Ok(Self {
            path: path.to_path_buf(),
            version,
            metadata,
            tensors,
            alignment,
            data_offset,
            file_len,
            meta_index,
            tensor_index,
        })
    }

    pub fn get(&self, key: &str) -> Option<&Value> {
        self.meta_index.get(key).map(|&i| &self.metadata[i].1)
    }

    pub fn tensor(&self, name: &str) -> Option<&TensorInfo> {
        self.tensor_index.get(name).map(|&i| &self.tensors[i])
    }

    fn info(&self, name: &str) -> Result<&TensorInfo> {
        self.tensor(name).ok_or_else(|| {
            Error::load(
                LoadErrorKind::MissingTensor,
                &self.path,
                format!("no tensor `{name}` in the GGUF file"),
            )
        })
    }

    /// The raw bytes of tensor `name`, read from `r` (the same file the header came from).
    pub fn read_tensor_bytes<R: Read + Seek>(&self, r: &mut R, name: &str) -> Result<Vec<u8>> {
        let info = self.info(name)?;
        let start = self.data_offset + info.offset;
        r.seek(SeekFrom::Start(start)).map_err(|e| Error::io(&self.path, &e))?;
        // n_bytes was checked against the file length at parse time.
        let mut buf = vec![0u8; info.n_bytes as usize];
        r.read_exact(&mut buf).map_err(|e| {
            if e.kind() == std::io::ErrorKind::UnexpectedEof {
                Error::load(
                    LoadErrorKind::Truncated,
                    &self.path,
                    format!("file ended inside tensor `{name}`"),
                )
            } else {
                Error::io(&self.path, &e)
            }
        })?;
        Ok(buf)
    }

    /// The bytes of tensor `name` within `file`, the whole file the header was parsed from.
    pub fn tensor_bytes<'a>(&self, file: &'a [u8], name: &str) -> Result<&'a [u8]> {
        let info = self.info(name)?;
        let start = self.data_offset + info.offset;
        let end = start + info.n_bytes;
        file.get(start as usize..end as usize).ok_or_else(|| {
            Error::load(LoadErrorKind::Truncated, &self.path, format!("file ended inside tensor `{name}`"))
        })
    }

    /// Dequantises raw tensor bytes to f32 (row-major, shape [`TensorInfo::shape`]).
    pub fn dequantize(&self, name: &str, bytes: &[u8]) -> Result<Vec<f32>> {
        let info = self.info(name)?;
        dequant::dequantize(info.ggml_type, bytes, info.n_elements() as usize).map_err(|e| {
            let kind = match e {
                dequant::DequantError::Unsupported(_) => LoadErrorKind::UnsupportedDtype,
                dequant::DequantError::Length { .. } => LoadErrorKind::MalformedGguf,
            };
            Error::load(kind, &self.path, format!("tensor `{name}`: {e}"))
        })
    }

    /// Reads tensor `name` from the file at [`Gguf::path`] and dequantises it to f32.
    /// Returns the PyTorch-order shape and the data.
    pub fn load_f32(&self, name: &str) -> Result<(Vec<usize>, Vec<f32>)> {
        let info = self.info(name)?;
        let mut file = File::open(&self.path).map_err(|e| Error::io(&self.path, &e))?;
        let bytes = self.read_tensor_bytes(&mut file, name)?;
        Ok((info.shape(), self.dequantize(name, &bytes)?))
    }

    /// Like [`Gguf::load_f32`], from the file's bytes held in memory.
    pub fn load_f32_from(&self, file: &[u8], name: &str) -> Result<(Vec<usize>, Vec<f32>)> {
        let info = self.info(name)?;
        let bytes = self.tensor_bytes(file, name)?;
        Ok((info.shape(), self.dequantize(name, bytes)?))
    }
}
