//! Test-only GGUF writer and quantisers. The writer emits the on-disk layout by hand (not
//! through the reader's types' code paths) so round trips check the reader against an
//! independent encoding.
#![allow(dead_code)]

use half::f16;
use tunekit_core::gguf::{Array, GgmlType, Value};

pub struct Tensor {
    pub name: String,
    /// ggml order (dims[0] fastest).
    pub dims: Vec<u64>,
    pub type_id: u32,
    pub data: Vec<u8>,
    /// Overrides the computed offset (to write lying files).
    pub offset: Option<u64>,
}

pub struct Writer {
    pub version: u32,
    pub alignment: u64,
    pub kv: Vec<(String, Value)>,
    pub tensors: Vec<Tensor>,
}

impl Default for Writer {
    fn default() -> Self {
        Self { version: 3, alignment: 32, kv: Vec::new(), tensors: Vec::new() }
    }
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u64).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

pub fn value_type_id(v: &Value) -> u32 {
    v.value_type().id()
}

fn put_value(out: &mut Vec<u8>, v: &Value) {
    match v {
        Value::U8(x) => out.push(*x),
        Value::I8(x) => out.push(*x as u8),
        Value::U16(x) => out.extend_from_slice(&x.to_le_bytes()),
        Value::I16(x) => out.extend_from_slice(&x.to_le_bytes()),
        Value::U32(x) => out.extend_from_slice(&x.to_le_bytes()),
        Value::I32(x) => out.extend_from_slice(&x.to_le_bytes()),
        Value::F32(x) => out.extend_from_slice(&x.to_le_bytes()),
        Value::Bool(x) => out.push(*x as u8),
        Value::String(s) => put_str(out, s),
        Value::Array(a) => put_array(out, a),
        Value::U64(x) => out.extend_from_slice(&x.to_le_bytes()),
        Value::I64(x) => out.extend_from_slice(&x.to_le_bytes()),
        Value::F64(x) => out.extend_from_slice(&x.to_le_bytes()),
    }
}

fn put_array(out: &mut Vec<u8>, a: &Array) {
    out.extend_from_slice(&a.elem_type().id().to_le_bytes());
    out.extend_from_slice(&(a.len() as u64).to_le_bytes());
    macro_rules! each {
        ($v:expr, $wrap:ident) => {
            for x in $v {
                put_value(out, &Value::$wrap(x.clone()));
            }
        };
    }
    match a {
        Array::U8(v) => each!(v, U8),
        Array::I8(v) => each!(v, I8),
        Array::U16(v) => each!(v, U16),
        Array::I16(v) => each!(v, I16),
        Array::U32(v) => each!(v, U32),
        Array::I32(v) => each!(v, I32),
        Array::F32(v) => each!(v, F32),
        Array::Bool(v) => each!(v, Bool),
        Array::String(v) => each!(v, String),
        Array::Array(v) => each!(v, Array),
        Array::U64(v) => each!(v, U64),
        Array::I64(v) => each!(v, I64),
        Array::F64(v) => each!(v, F64),
    }
}

impl Writer {
    pub fn kv(mut self, key: &str, v: Value) -> Self {
        self.kv.push((key.to_string(), v));
        self
    }

    /// Replaces the value of `key` (appends it when absent).
    pub fn set(mut self, key: &str, v: Value) -> Self {
        match self.kv.iter_mut().find(|(k, _)| k == key) {
            Some(entry) => entry.1 = v,
            None => self.kv.push((key.to_string(), v)),
        }
        self
    }

    pub fn tensor(mut self, name: &str, dims: &[u64], t: GgmlType, data: Vec<u8>) -> Self {
        self.tensors.push(Tensor {
            name: name.into(),
            dims: dims.to_vec(),
            type_id: t.id(),
            data,
            offset: None,
        });
        self
    }

    pub fn f32_tensor(self, name: &str, dims: &[u64], data: &[f32]) -> Self {
        let bytes = data.iter().flat_map(|x| x.to_le_bytes()).collect();
        self.tensor(name, dims, GgmlType::F32, bytes)
    }

    /// Encodes the file; tensors are packed in order at aligned offsets (or at `offset`
    /// where a test overrides it in the info record).
    pub fn bytes(&self) -> Vec<u8> {
        let a = self.alignment;
        let mut out = Vec::new();
        out.extend_from_slice(b"GGUF");
        out.extend_from_slice(&self.version.to_le_bytes());
        out.extend_from_slice(&(self.tensors.len() as u64).to_le_bytes());
        out.extend_from_slice(&(self.kv.len() as u64).to_le_bytes());
        for (k, v) in &self.kv {
            put_str(&mut out, k);
            out.extend_from_slice(&value_type_id(v).to_le_bytes());
            put_value(&mut out, v);
        }
        let mut offset = 0u64;
        let mut offsets = Vec::new();
        for t in &self.tensors {
            put_str(&mut out, &t.name);
            out.extend_from_slice(&(t.dims.len() as u32).to_le_bytes());
            for d in &t.dims {
                out.extend_from_slice(&d.to_le_bytes());
            }
            out.extend_from_slice(&t.type_id.to_le_bytes());
            let off = t.offset.unwrap_or(offset);
            out.extend_from_slice(&off.to_le_bytes());
            offsets.push(offset);
            offset = (offset + t.data.len() as u64).div_ceil(a) * a;
        }
        while !(out.len() as u64).is_multiple_of(a) {
            out.push(0);
        }
        let base = out.len();
        for (t, off) in self.tensors.iter().zip(offsets) {
            out.resize(base + off as usize, 0);
            out.extend_from_slice(&t.data);
        }
        out
    }
}

/// A small deterministic PRNG (xorshift64*), so tests need no extra crates.
pub struct Rng(pub u64);

impl Rng {
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
    /// Uniform in [-1, 1).
    pub fn unit(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 / (1u64 << 23) as f32 - 1.0
    }
    /// Roughly normal (sum of uniforms).
    pub fn normal(&mut self) -> f32 {
        (0..6).map(|_| self.unit()).sum::<f32>() / 1.4
    }
}

fn f16_bytes(x: f32) -> [u8; 2] {
    f16::from_f32(x).to_bits().to_le_bytes()
}

/// ggml's `quantize_row_q8_0_ref`: d = amax/127, q = roundf(x / d) (half away from zero).
pub fn quantize_q8_0(x: &[f32]) -> Vec<u8> {
    let mut out = Vec::new();
    for b in x.chunks_exact(32) {
        let amax = b.iter().fold(0f32, |m, v| m.max(v.abs()));
        let d = amax / 127.0;
        let id = if d != 0.0 { 1.0 / d } else { 0.0 };
        out.extend_from_slice(&f16_bytes(d));
        out.extend(b.iter().map(|v| (v * id).round() as i8 as u8));
    }
    out
}

/// ggml's `quantize_row_q5_0_ref`: d = max / -16 (max = the value of largest magnitude),
/// q = min(31, (int)(x / d + 16.5)); low nibbles in qs, fifth bits in qh.
pub fn quantize_q5_0(x: &[f32]) -> Vec<u8> {
    let mut out = Vec::new();
    for b in x.chunks_exact(32) {
        let (mut amax, mut max) = (0f32, 0f32);
        for &v in b {
            if amax < v.abs() {
                amax = v.abs();
                max = v;
            }
        }
        let d = max / -16.0;
        let id = if d != 0.0 { 1.0 / d } else { 0.0 };
        let mut qh = 0u32;
        let mut qs = [0u8; 16];
        for j in 0..16 {
            let x0 = b[j] * id;
            let x1 = b[16 + j] * id;
            let xi0 = ((x0 + 16.5) as i8).min(31) as u8;
            let xi1 = ((x1 + 16.5) as i8).min(31) as u8;
            qs[j] = (xi0 & 0x0F) | ((xi1 & 0x0F) << 4);
            qh |= (((xi0 & 0x10) >> 4) as u32) << j;
            qh |= (((xi1 & 0x10) >> 4) as u32) << (j + 16);
        }
        out.extend_from_slice(&f16_bytes(d));
        out.extend_from_slice(&qh.to_le_bytes());
        out.extend_from_slice(&qs);
    }
    out
}

/// A simple Q4_K quantiser with ggml's block layout (not its iterative scale search):
/// per 32-value sub-block a 6-bit scale and min, 4-bit values.
pub fn quantize_q4_k(x: &[f32]) -> Vec<u8> {
    let mut out = Vec::new();
    for b in x.chunks_exact(256) {
        let mut scale = [0f32; 8];
        let mut minv = [0f32; 8];
        for (j, s) in b.chunks_exact(32).enumerate() {
            let lo = s.iter().fold(0f32, |m, &v| m.min(v));
            let hi = s.iter().fold(f32::MIN, |m, &v| m.max(v));
            scale[j] = (hi - lo) / 15.0;
            minv[j] = -lo;
        }
        let max_scale = scale.iter().fold(0f32, |m, &v| m.max(v));
        let max_min = minv.iter().fold(0f32, |m, &v| m.max(v));
        let d = f16::from_f32(max_scale / 63.0).to_f32();
        let dmin = f16::from_f32(max_min / 63.0).to_f32();
        let mut ls = [0u8; 8];
        let mut lm = [0u8; 8];
        for j in 0..8 {
            ls[j] = if d > 0.0 { (scale[j] / d).round().clamp(0.0, 63.0) as u8 } else { 0 };
            lm[j] = if dmin > 0.0 { (minv[j] / dmin).round().clamp(0.0, 63.0) as u8 } else { 0 };
        }
        let mut scales = [0u8; 12];
        for j in 0..8 {
            if j < 4 {
                scales[j] = ls[j];
                scales[j + 4] = lm[j];
            } else {
                scales[j + 4] = (ls[j] & 0xF) | ((lm[j] & 0xF) << 4);
                scales[j - 4] |= (ls[j] >> 4) << 6;
                scales[j] |= (lm[j] >> 4) << 6;
            }
        }
        let mut l = [0u8; 256];
        for (i, &v) in b.iter().enumerate() {
            let j = i / 32;
            let dd = d * ls[j] as f32;
            let m = dmin * lm[j] as f32;
            l[i] = if dd > 0.0 { ((v + m) / dd).round().clamp(0.0, 15.0) as u8 } else { 0 };
        }
        out.extend_from_slice(&f16_bytes(d));
        out.extend_from_slice(&f16_bytes(dmin));
        out.extend_from_slice(&scales);
        for j in (0..256).step_by(64) {
            for k in 0..32 {
                out.push(l[j + k] | (l[j + k + 32] << 4));
            }
        }
    }
    out
}

/// A simple Q6_K quantiser with ggml's block layout: per 16-value sub-block an 8-bit scale,
/// 6-bit values offset by 32.
pub fn quantize_q6_k(x: &[f32]) -> Vec<u8> {
    let mut out = Vec::new();
    for b in x.chunks_exact(256) {
        let mut s = [0f32; 16];
        for (k, sub) in b.chunks_exact(16).enumerate() {
            s[k] = sub.iter().fold(0f32, |m, v| m.max(v.abs())) / 31.0;
        }
        let max_s = s.iter().fold(0f32, |m, &v| m.max(v));
        let d = f16::from_f32(max_s / 127.0).to_f32();
        let mut sc = [0i8; 16];
        for k in 0..16 {
            sc[k] = if d > 0.0 { (s[k] / d).round().clamp(-128.0, 127.0) as i8 } else { 0 };
        }
        let mut l = [0u8; 256];
        for (i, &v) in b.iter().enumerate() {
            let dd = d * sc[i / 16] as f32;
            let q = if dd != 0.0 { (v / dd).round().clamp(-32.0, 31.0) as i32 } else { 0 };
            l[i] = (q + 32) as u8;
        }
        let mut ql = [0u8; 128];
        let mut qh = [0u8; 64];
        for n in 0..2 {
            for k in 0..32 {
                let base = n * 128 + k;
                let (q1, q2, q3, q4) = (l[base], l[base + 32], l[base + 64], l[base + 96]);
                ql[n * 64 + k] = (q1 & 0xF) | ((q3 & 0xF) << 4);
                ql[n * 64 + k + 32] = (q2 & 0xF) | ((q4 & 0xF) << 4);
                qh[n * 32 + k] = (q1 >> 4) | ((q2 >> 4) << 2) | ((q3 >> 4) << 4) | ((q4 >> 4) << 6);
            }
        }
        out.extend_from_slice(&ql);
        out.extend_from_slice(&qh);
        out.extend(sc.iter().map(|&v| v as u8));
        out.extend_from_slice(&f16_bytes(d));
    }
    out
}
