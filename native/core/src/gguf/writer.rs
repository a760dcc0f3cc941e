//! A GGUF v3 writer: metadata of every value type (arrays included), tensor infos in ggml
//! dimension order, and F32 / F16 tensor data, padded to `general.alignment` (default 32).
//!
//! The layout mirrors [`crate::gguf::reader`] (LOCAL-LORA-FACTS §3.1). Every tensor's bytes
//! start on an aligned offset and are padded to the alignment, like gguf-py writes them.
//! Files are written atomically: to a temporary file beside the target, flushed and synced,
//! then renamed over it, so a failure never leaves a half-written `.gguf` behind.

use std::collections::HashSet;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::{Error, Result};
use crate::gguf::reader::{Array, GgmlType, Value, DEFAULT_ALIGNMENT, MAGIC, MAX_DIMS};

/// The GGUF version this writer produces.
pub const VERSION: u32 = 3;
/// llama.cpp keeps tensor names in a fixed `char[64]` (GGML_MAX_NAME), NUL included.
pub const MAX_TENSOR_NAME_BYTES: usize = 63;

/// A tensor waiting to be written: ggml-order dims and its encoded bytes.
#[derive(Debug, Clone)]
struct PendingTensor {
    name: String,
    dims: Vec<u64>,
    ggml_type: GgmlType,
    data: Vec<u8>,
}

/// Builds a GGUF file in memory, then writes it atomically.
///
/// ```
/// use tunekit_core::gguf::writer::GgufWriter;
/// use tunekit_core::gguf::Value;
/// let mut w = GgufWriter::new();
/// w.add("general.architecture", Value::String("llama".into())).unwrap();
/// // A PyTorch-order [out = 2, in = 3] matrix; stored with ggml dims [3, 2].
/// w.add_tensor_f32("blk.0.attn_q.weight", &[2, 3], &[0.0; 6]).unwrap();
/// let bytes = w.to_bytes().unwrap();
/// assert_eq!(&bytes[..4], b"GGUF");
/// ```
#[derive(Debug, Clone, Default)]
pub struct GgufWriter {
    metadata: Vec<(String, Value)>,
    keys: HashSet<String>,
    tensors: Vec<PendingTensor>,
    names: HashSet<String>,
}

impl GgufWriter {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds one metadata key/value. Keys must be unique and non-empty; `general.alignment`
    /// must be a non-zero power-of-two `U32` (what llama.cpp and our reader accept).
    pub fn add(&mut self, key: impl Into<String>, value: Value) -> Result<()> {
        let key = key.into();
        if key.is_empty() {
            return Err(Error::export(None, "a GGUF metadata key must not be empty"));
        }
        if key == "general.alignment" && !matches!(value, Value::U32(a) if a != 0 && a.is_power_of_two()) {
            return Err(Error::export(
                None,
                format!("general.alignment must be a non-zero power-of-two u32, got {value:?}"),
            ));
        }
        if let Value::Array(a) = &value {
            check_array(&key, a, 0)?;
        }
        if !self.keys.insert(key.clone()) {
            return Err(Error::export(None, format!("GGUF metadata key `{key}` added twice")));
        }
        self.metadata.push((key, value));
        Ok(())
    }

    /// The value added under `key`, if any.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.metadata.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// Adds an F32 tensor. `shape` is PyTorch / row-major order (`[out, in]` for a matrix);
    /// it is stored reversed (ggml order), over the same bytes.
    pub fn add_tensor_f32(&mut self, name: &str, shape: &[usize], data: &[f32]) -> Result<()> {
        self.check_tensor(name, shape, data.len())?;
        let bytes = data.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.push_tensor(name, shape, GgmlType::F32, bytes);
        Ok(())
    }

    /// Adds an F16 tensor (rounded from f32, round-to-nearest-even). Same `shape` rules as
    /// [`Self::add_tensor_f32`].
    pub fn add_tensor_f16(&mut self, name: &str, shape: &[usize], data: &[f32]) -> Result<()> {
        self.check_tensor(name, shape, data.len())?;
        let bytes = data.iter().flat_map(|&v| half::f16::from_f32(v).to_le_bytes()).collect();
        self.push_tensor(name, shape, GgmlType::F16, bytes);
        Ok(())
    }

    /// Adds a `[rows, cols]` matrix quantised to `ggml_type` (Q8_0, Q4_K; see
    /// [`crate::quant::quantize`]); `cols` must be a whole number of its blocks.
    pub fn add_tensor_quantized(
        &mut self,
        name: &str,
        shape: &[usize],
        data: &[f32],
        ggml_type: GgmlType,
    ) -> Result<()> {
        self.check_tensor(name, shape, data.len())?;
        let cols = *shape.last().unwrap_or(&1);
        let m = crate::quant::quantize::quantize(ggml_type, data, data.len() / cols.max(1), cols)
            .map_err(|e| Error::export(None, format!("tensor `{name}`: {e}")))?;
        self.push_tensor(name, shape, ggml_type, m.into_bytes());
        Ok(())
    }

    pub fn tensor_count(&self) -> usize {
        self.tensors.len()
    }

    fn check_tensor(&self, name: &str, shape: &[usize], len: usize) -> Result<()> {
        let bad = |m: String| Err(Error::export(None, format!("tensor `{name}`: {m}")));
        if name.is_empty() || name.len() > MAX_TENSOR_NAME_BYTES {
            return bad(format!("a name must have 1 to {MAX_TENSOR_NAME_BYTES} bytes (llama.cpp's limit)"));
        }
        if self.names.contains(name) {
            return bad("added twice".into());
        }
        if shape.is_empty() || shape.len() > MAX_DIMS as usize {
            return bad(format!("{} dimensions (ggml takes 1 to {MAX_DIMS})", shape.len()));
        }
        if shape.iter().product::<usize>() != len {
            return bad(format!(
                "shape {shape:?} needs {} values, got {len}",
                shape.iter().product::<usize>()
            ));
        }
        Ok(())
    }

    fn push_tensor(&mut self, name: &str, shape: &[usize], ggml_type: GgmlType, data: Vec<u8>) {
        self.names.insert(name.to_string());
        let dims = shape.iter().rev().map(|&d| d as u64).collect();
        self.tensors.push(PendingTensor { name: name.to_string(), dims, ggml_type, data });
    }

    fn alignment(&self) -> u64 {
        match self.get("general.alignment") {
            Some(Value::U32(a)) => u64::from(*a),
            _ => DEFAULT_ALIGNMENT,
        }
    }

    /// Serialises the whole file in memory.
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        self.write_to(&mut out).map_err(|e| Error::export(None, e.to_string()))?;
        Ok(out)
    }

    /// Streams the file to `w`.
    pub fn write_to<W: Write>(&self, w: &mut W) -> std::io::Result<()> {
        let alignment = self.alignment();
        let mut header = Vec::new();
        header.extend(MAGIC.to_le_bytes());
        header.extend(VERSION.to_le_bytes());
        header.extend((self.tensors.len() as u64).to_le_bytes());
        header.extend((self.metadata.len() as u64).to_le_bytes());
        for (key, value) in &self.metadata {
            put_string(&mut header, key);
            header.extend(value.value_type().id().to_le_bytes());
            put_value(&mut header, value);
        }
        let mut offset = 0u64;
        for t in &self.tensors {
            put_string(&mut header, &t.name);
            header.extend((t.dims.len() as u32).to_le_bytes());
            for d in &t.dims {
                header.extend(d.to_le_bytes());
            }
            header.extend(t.ggml_type.id().to_le_bytes());
            header.extend(offset.to_le_bytes());
            offset += padded(t.data.len() as u64, alignment);
        }
        w.write_all(&header)?;
        let zeros = vec![0u8; alignment as usize];
        let pad = padded(header.len() as u64, alignment) - header.len() as u64;
        w.write_all(&zeros[..pad as usize])?;
        for t in &self.tensors {
            w.write_all(&t.data)?;
            let pad = padded(t.data.len() as u64, alignment) - t.data.len() as u64;
            w.write_all(&zeros[..pad as usize])?;
        }
        Ok(())
    }

    /// Writes the file to `path` atomically (temp file in the same directory, fsync,
    /// rename). On any error the temp file is removed and `path` is left as it was.
    pub fn write(&self, path: &Path) -> Result<()> {
        write_atomic(path, |w| self.write_to(w))
    }
}

fn padded(n: u64, alignment: u64) -> u64 {
    n.div_ceil(alignment) * alignment
}

fn check_array(key: &str, a: &Array, depth: usize) -> Result<()> {
    // Our reader (and any sane one) bounds nesting; do not write what we would refuse.
    if depth + 1 > crate::gguf::reader::MAX_ARRAY_DEPTH {
        return Err(Error::export(None, format!("metadata `{key}`: arrays nested too deeply")));
    }
    if let Array::Array(items) = a {
        for item in items {
            check_array(key, item, depth + 1)?;
        }
    }
    Ok(())
}

fn put_string(out: &mut Vec<u8>, s: &str) {
    out.extend((s.len() as u64).to_le_bytes());
    out.extend(s.as_bytes());
}

fn put_value(out: &mut Vec<u8>, v: &Value) {
    match v {
        Value::U8(x) => out.push(*x),
        Value::I8(x) => out.extend(x.to_le_bytes()),
        Value::U16(x) => out.extend(x.to_le_bytes()),
        Value::I16(x) => out.extend(x.to_le_bytes()),
        Value::U32(x) => out.extend(x.to_le_bytes()),
        Value::I32(x) => out.extend(x.to_le_bytes()),
        Value::F32(x) => out.extend(x.to_le_bytes()),
        Value::Bool(x) => out.push(u8::from(*x)),
        Value::String(s) => put_string(out, s),
        Value::Array(a) => put_array(out, a),
        Value::U64(x) => out.extend(x.to_le_bytes()),
        Value::I64(x) => out.extend(x.to_le_bytes()),
        Value::F64(x) => out.extend(x.to_le_bytes()),
    }
}

fn put_array(out: &mut Vec<u8>, a: &Array) {
    out.extend(a.elem_type().id().to_le_bytes());
    out.extend((a.len() as u64).to_le_bytes());
    fn each<T>(out: &mut Vec<u8>, items: &[T], f: impl Fn(&T) -> Vec<u8>) {
        for item in items {
            out.extend(f(item));
        }
    }
    match a {
        Array::U8(v) => out.extend(v),
        Array::I8(v) => each(out, v, |x| x.to_le_bytes().to_vec()),
        Array::U16(v) => each(out, v, |x| x.to_le_bytes().to_vec()),
        Array::I16(v) => each(out, v, |x| x.to_le_bytes().to_vec()),
        Array::U32(v) => each(out, v, |x| x.to_le_bytes().to_vec()),
        Array::I32(v) => each(out, v, |x| x.to_le_bytes().to_vec()),
        Array::F32(v) => each(out, v, |x| x.to_le_bytes().to_vec()),
        Array::Bool(v) => each(out, v, |x| vec![u8::from(*x)]),
        Array::String(v) => v.iter().for_each(|s| put_string(out, s)),
        Array::Array(v) => v.iter().for_each(|inner| put_array(out, inner)),
        Array::U64(v) => each(out, v, |x| x.to_le_bytes().to_vec()),
        Array::I64(v) => each(out, v, |x| x.to_le_bytes().to_vec()),
        Array::F64(v) => each(out, v, |x| x.to_le_bytes().to_vec()),
    }
}

/// Writes `path` through `fill` atomically: a uniquely named temp file beside it, flushed and
/// fsynced, then renamed over `path`. Any failure removes the temp file.
pub fn write_atomic(
    path: &Path,
    fill: impl FnOnce(&mut BufWriter<File>) -> std::io::Result<()>,
) -> Result<()> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let fail = |what: &str, e: std::io::Error| Error::export(Some(path), format!("{what}: {e}"));
    let file_name = path
        .file_name()
        .ok_or_else(|| Error::export(Some(path), "the output path names no file"))?
        .to_string_lossy()
        .into_owned();
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    if !dir.is_dir() {
        return Err(Error::export(Some(path), format!("the directory {} does not exist", dir.display())));
    }
    if path.is_dir() {
        return Err(Error::export(Some(path), "the output path is a directory"));
    }
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let tmp = dir.join(format!(".{file_name}.tmp-{}-{n}", std::process::id()));
    let result = (|| {
        let file = File::create(&tmp).map_err(|e| fail("cannot create a temporary file", e))?;
        let mut w = BufWriter::with_capacity(1 << 20, file);
        fill(&mut w).map_err(|e| fail("write failed", e))?;
        let file = w.into_inner().map_err(|e| fail("write failed", e.into_error()))?;
        file.sync_all().map_err(|e| fail("fsync failed", e))?;
        std::fs::rename(&tmp, path).map_err(|e| fail("cannot move the finished file into place", e))
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gguf::reader::Gguf;

    fn sample() -> GgufWriter {
        let mut w = GgufWriter::new();
        let all = [
            ("t.u8", Value::U8(7)),
            ("t.i8", Value::I8(-7)),
            ("t.u16", Value::U16(65_000)),
            ("t.i16", Value::I16(-32_000)),
            ("t.u32", Value::U32(4_000_000_000)),
            ("t.i32", Value::I32(-2_000_000_000)),
            ("t.f32", Value::F32(0.25)),
            ("t.bool", Value::Bool(true)),
            ("t.string", Value::String("héllo".into())),
            ("t.u64", Value::U64(u64::MAX)),
            ("t.i64", Value::I64(i64::MIN)),
            ("t.f64", Value::F64(-1.5e300)),
            ("t.arr.str", Value::Array(Array::String(vec!["a".into(), "".into(), "Ġb".into()]))),
            ("t.arr.i32", Value::Array(Array::I32(vec![1, -2, 3]))),
            ("t.arr.f32", Value::Array(Array::F32(vec![0.5, -0.5]))),
            ("t.arr.bool", Value::Array(Array::Bool(vec![true, false]))),
            ("t.arr.empty", Value::Array(Array::U8(vec![]))),
            (
                "t.arr.nested",
                Value::Array(Array::Array(vec![Array::U16(vec![1, 2]), Array::String(vec!["x".into()])])),
            ),
        ];
        for (k, v) in all {
            w.add(k, v).unwrap();
        }
        w
    }

    #[test]
    fn gguf_writer_roundtrips_every_value_type_through_the_reader() {
        let w = sample();
        let bytes = w.to_bytes().unwrap();
        let g = Gguf::parse(&bytes, Path::new("mem.gguf")).unwrap();
        assert_eq!(g.version, 3);
        assert_eq!(g.metadata, w.metadata, "metadata comes back identical and in order");
        assert!(g.tensors.is_empty());
    }

    #[test]
    fn gguf_writer_tensors_are_ggml_ordered_aligned_and_exact() {
        for alignment in [None, Some(64u32)] {
            let mut w = sample();
            if let Some(a) = alignment {
                w.add("general.alignment", Value::U32(a)).unwrap();
            }
            let m: Vec<f32> = (0..6).map(|i| i as f32 - 2.5).collect();
            w.add_tensor_f32("blk.0.attn_q.weight", &[2, 3], &m).unwrap();
            // 5 values (20 bytes) force padding before the next tensor.
            w.add_tensor_f32("odd", &[5], &[1.0, 2.0, 3.0, 4.0, 5.0]).unwrap();
            w.add_tensor_f16("half", &[2, 2], &[1.0, -2.0, 0.5, 65504.0]).unwrap();
            let bytes = w.to_bytes().unwrap();
            let g = Gguf::parse(&bytes, Path::new("mem.gguf")).unwrap();
            let a = u64::from(alignment.unwrap_or(32));
            assert_eq!(g.alignment, a);
            assert_eq!(g.data_offset % a, 0);
            assert_eq!(bytes.len() as u64 % a, 0, "the last tensor is padded too");
            let q = g.tensor("blk.0.attn_q.weight").unwrap();
            assert_eq!(q.dims, vec![3, 2], "PyTorch [out, in] is stored as ggml [in, out]");
            assert_eq!(q.shape(), vec![2, 3]);
            assert_eq!(g.load_f32_from(&bytes, "blk.0.attn_q.weight").unwrap().1, m);
            for t in &g.tensors {
                assert_eq!(t.offset % a, 0, "{} is aligned", t.name);
            }
            assert_eq!(g.load_f32_from(&bytes, "odd").unwrap().1, vec![1.0, 2.0, 3.0, 4.0, 5.0]);
            let h = g.tensor("half").unwrap();
            assert_eq!(h.ggml_type, GgmlType::F16);
            assert_eq!(g.load_f32_from(&bytes, "half").unwrap().1, vec![1.0, -2.0, 0.5, 65504.0]);
        }
    }

    #[test]
    fn gguf_writer_rejects_bad_input_with_typed_errors() {
        let mut w = GgufWriter::new();
        w.add("k", Value::U8(1)).unwrap();
        let msg = |e: Error| {
            assert_eq!(e.code(), "export_failed");
            e.to_string()
        };
        assert!(msg(w.add("k", Value::U8(2)).unwrap_err()).contains("`k` added twice"));
        assert!(msg(w.add("", Value::U8(2)).unwrap_err()).contains("empty"));
        assert!(msg(w.add("general.alignment", Value::U32(24)).unwrap_err()).contains("power-of-two"));
        assert!(msg(w.add("general.alignment", Value::U64(32)).unwrap_err()).contains("power-of-two"));
        let deep =
            Array::Array(vec![Array::Array(vec![Array::Array(vec![Array::Array(vec![Array::U8(vec![])])])])]);
        assert!(msg(w.add("deep", Value::Array(deep)).unwrap_err()).contains("nested"));
        assert!(msg(w.add_tensor_f32("t", &[2, 2], &[0.0; 3]).unwrap_err()).contains("needs 4 values"));
        assert!(msg(w.add_tensor_f32("t", &[1, 1, 1, 1, 1], &[0.0]).unwrap_err()).contains("5 dimensions"));
        assert!(msg(w.add_tensor_f32(&"x".repeat(64), &[1], &[0.0]).unwrap_err()).contains("63 bytes"));
        w.add_tensor_f32("t", &[1], &[0.0]).unwrap();
        assert!(msg(w.add_tensor_f32("t", &[1], &[0.0]).unwrap_err()).contains("added twice"));
    }

    #[test]
    fn gguf_writer_writes_atomically() {
        let dir = std::env::temp_dir().join(format!("tunekit-gguf-writer-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("out.gguf");
        std::fs::write(&path, b"previous").unwrap();

        // A failure half-way leaves the old file untouched and no temp file behind.
        let err = write_atomic(&path, |w| {
            w.write_all(b"GGUF partial")?;
            Err(std::io::Error::other("disk full"))
        })
        .unwrap_err();
        assert_eq!(err.code(), "export_failed");
        assert!(err.to_string().contains("disk full"), "{err}");
        assert_eq!(std::fs::read(&path).unwrap(), b"previous");
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1, "no temp file left");

        sample().write(&path).unwrap();
        let g = Gguf::open(&path).unwrap();
        assert_eq!(g.get("t.string").and_then(Value::as_str), Some("héllo"));

        let missing = dir.join("no/such/dir/out.gguf");
        assert!(sample().write(&missing).unwrap_err().to_string().contains("does not exist"));
        assert!(sample().write(&dir).unwrap_err().to_string().contains("is a directory"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
