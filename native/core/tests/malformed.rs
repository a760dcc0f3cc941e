//! Broken model directories must fail with a typed error, never a panic or a crash.
//! Each case copies a good fixture into a temp dir and breaks one thing.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::{json, Value};
use tunekit_core::safetensors::SafetensorsFile;
use tunekit_core::{LoadErrorKind, Model};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../test/fixtures/models").join(name)
}

/// A fresh copy of a fixture in a temp dir, removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn of(name: &str) -> Self {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "tunekit-malformed-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        fs::create_dir_all(&dir).unwrap();
        for entry in fs::read_dir(fixture(name)).unwrap() {
            let entry = entry.unwrap();
            fs::copy(entry.path(), dir.join(entry.file_name())).unwrap();
        }
        Self(dir)
    }
    fn path(&self, file: &str) -> PathBuf {
        self.0.join(file)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// Splits a safetensors file into (header JSON, data region).
fn split(path: &Path) -> (Value, Vec<u8>) {
    let bytes = fs::read(path).unwrap();
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    (serde_json::from_slice(&bytes[8..8 + n]).unwrap(), bytes[8 + n..].to_vec())
}

fn join(path: &Path, header: &Value, data: &[u8]) {
    let h = serde_json::to_vec(header).unwrap();
    let mut out = (h.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(&h);
    out.extend_from_slice(data);
    fs::write(path, out).unwrap();
}

fn load_kind(dir: &Path) -> LoadErrorKind {
    match Model::load(dir) {
        Ok(_) => panic!("{} loaded although it is broken", dir.display()),
        Err(e) => {
            assert_eq!(e.code(), "model_load", "{e}");
            e.load_kind().unwrap()
        }
    }
}

fn edit_header(s: &Scratch, f: impl FnOnce(&mut Value)) {
    let path = s.path("model.safetensors");
    let (mut header, data) = split(&path);
    f(&mut header);
    join(&path, &header, &data);
}

const TENSOR: &str = "model.layers.0.mlp.up_proj.weight";

#[test]
fn truncated_weights() {
    let s = Scratch::of("llama-tied-gqa");
    let bytes = fs::read(s.path("model.safetensors")).unwrap();
    fs::write(s.path("model.safetensors"), &bytes[..bytes.len() - 100]).unwrap();
    assert_eq!(load_kind(&s.0), LoadErrorKind::Truncated);
    // Cut inside the header, and shorter than the length prefix.
    fs::write(s.path("model.safetensors"), &bytes[..50]).unwrap();
    assert_eq!(load_kind(&s.0), LoadErrorKind::Truncated);
    fs::write(s.path("model.safetensors"), &bytes[..5]).unwrap();
    assert_eq!(load_kind(&s.0), LoadErrorKind::Truncated);
}

#[test]
fn offsets_that_lie() {
    let s = Scratch::of("llama-tied-gqa");
    // Span disagrees with shape × dtype.
    edit_header(&s, |h| {
        h[TENSOR]["data_offsets"][1] = json!(h[TENSOR]["data_offsets"][1].as_u64().unwrap() - 4)
    });
    assert_eq!(load_kind(&s.0), LoadErrorKind::InvalidHeader);

    // Overlaps another tensor.
    let s = Scratch::of("llama-tied-gqa");
    edit_header(&s, |h| {
        let [b, e] = [0, 1].map(|i| h[TENSOR]["data_offsets"][i].as_u64().unwrap());
        h[TENSOR]["data_offsets"] = json!([b - 8, e - 8]);
    });
    assert_eq!(load_kind(&s.0), LoadErrorKind::InvalidHeader);

    // Points past the end of the file.
    let s = Scratch::of("llama-tied-gqa");
    edit_header(&s, |h| {
        let [b, e] = [0, 1].map(|i| h[TENSOR]["data_offsets"][i].as_u64().unwrap());
        h[TENSOR]["data_offsets"] = json!([b + 1_000_000_000, e + 1_000_000_000]);
    });
    assert_eq!(load_kind(&s.0), LoadErrorKind::Truncated);

    // A length prefix larger than any real header.
    let s = Scratch::of("llama-tied-gqa");
    let mut bytes = fs::read(s.path("model.safetensors")).unwrap();
    bytes[..8].copy_from_slice(&u64::MAX.to_le_bytes());
    fs::write(s.path("model.safetensors"), bytes).unwrap();
    assert_eq!(load_kind(&s.0), LoadErrorKind::InvalidHeader);
}

#[test]
fn unknown_and_unsupported_dtypes() {
    let s = Scratch::of("llama-tied-gqa");
    edit_header(&s, |h| h[TENSOR]["dtype"] = json!("Q4_K"));
    let err = Model::load(&s.0).err().unwrap();
    assert_eq!(err.load_kind(), Some(LoadErrorKind::UnsupportedDtype));
    assert!(err.to_string().contains("Q4_K"), "{err}");

    // A real safetensors dtype we cannot compute with (same byte size as F32).
    let s = Scratch::of("llama-tied-gqa");
    edit_header(&s, |h| h[TENSOR]["dtype"] = json!("I32"));
    assert_eq!(load_kind(&s.0), LoadErrorKind::UnsupportedDtype);
}

#[test]
fn shape_mismatch_against_config() {
    let s = Scratch::of("llama-tied-gqa");
    let mut cfg: Value = serde_json::from_str(&fs::read_to_string(s.path("config.json")).unwrap()).unwrap();
    cfg["intermediate_size"] = json!(128);
    fs::write(s.path("config.json"), cfg.to_string()).unwrap();
    let err = Model::load(&s.0).err().unwrap();
    assert_eq!(err.load_kind(), Some(LoadErrorKind::ShapeMismatch), "{err}");
    let msg = err.to_string();
    assert!(msg.contains("gate_proj") && msg.contains("intermediate_size=128"), "{msg}");

    // A header shape that disagrees with the config (bytes kept consistent by swapping dims).
    let s = Scratch::of("llama-tied-gqa");
    edit_header(&s, |h| {
        let shape = h[TENSOR]["shape"].as_array().unwrap().clone();
        h[TENSOR]["shape"] = json!([shape[1], shape[0]]);
    });
    assert_eq!(load_kind(&s.0), LoadErrorKind::ShapeMismatch);
}

#[test]
fn missing_pieces() {
    let s = Scratch::of("llama-tied-gqa");
    fs::remove_file(s.path("tokenizer.json")).unwrap();
    assert_eq!(load_kind(&s.0), LoadErrorKind::MissingTokenizer);

    let s = Scratch::of("llama-tied-gqa");
    fs::write(s.path("tokenizer.json"), "{\"model\": 3}").unwrap();
    assert_eq!(load_kind(&s.0), LoadErrorKind::InvalidTokenizer);

    let s = Scratch::of("llama-tied-gqa");
    edit_header(&s, |h| {
        h.as_object_mut().unwrap().remove(TENSOR);
    });
    let err = Model::load(&s.0).err().unwrap();
    assert_eq!(err.load_kind(), Some(LoadErrorKind::MissingTensor));
    assert!(err.to_string().contains(TENSOR));

    let s = Scratch::of("llama-tied-gqa");
    fs::remove_file(s.path("model.safetensors")).unwrap();
    assert_eq!(load_kind(&s.0), LoadErrorKind::NotFound);

    let s = Scratch::of("llama-tied-gqa");
    fs::remove_file(s.path("config.json")).unwrap();
    assert_eq!(load_kind(&s.0), LoadErrorKind::NotFound);

    assert_eq!(load_kind(Path::new("/definitely/not/a/model")), LoadErrorKind::NotFound);
}

#[test]
fn broken_config_and_index() {
    let s = Scratch::of("llama-tied-gqa");
    fs::write(s.path("config.json"), "{ not json").unwrap();
    assert_eq!(load_kind(&s.0), LoadErrorKind::InvalidJson);

    let s = Scratch::of("llama-tied-gqa");
    let mut cfg: Value = serde_json::from_str(&fs::read_to_string(s.path("config.json")).unwrap()).unwrap();
    cfg["model_type"] = json!("mamba");
    fs::write(s.path("config.json"), cfg.to_string()).unwrap();
    let err = Model::load(&s.0).err().unwrap();
    assert_eq!(err.load_kind(), Some(LoadErrorKind::UnsupportedArchitecture));
    assert!(err.to_string().contains("mamba") && err.to_string().contains("llama"));

    let s = Scratch::of("llama3-scaled-sharded-bf16");
    fs::remove_file(s.path("model-00002-of-00002.safetensors")).unwrap();
    assert_eq!(load_kind(&s.0), LoadErrorKind::NotFound);

    let s = Scratch::of("llama3-scaled-sharded-bf16");
    let mut index: Value =
        serde_json::from_str(&fs::read_to_string(s.path("model.safetensors.index.json")).unwrap()).unwrap();
    index["weight_map"]["model.norm.weight"] = json!("../../etc/passwd");
    fs::write(s.path("model.safetensors.index.json"), index.to_string()).unwrap();
    assert_eq!(load_kind(&s.0), LoadErrorKind::InvalidJson);
}

/// Values that parse but describe no working model (a 0-layer stack, a non-positive or NaN
/// epsilon or rope base, a context of 0 tokens, …) are refused at load, naming the key,
/// instead of loading and generating garbage.
#[test]
fn implausible_config_values_are_refused_naming_the_field() {
    let cases: &[(&str, &str)] = &[
        ("num_hidden_layers", "0"),
        ("rms_norm_eps", "-1"),
        ("rms_norm_eps", "0"),
        ("rms_norm_eps", "NaN"),
        ("rope_theta", "0"),
        ("rope_theta", "-10000"),
        ("rope_theta", "NaN"),
        ("rope_theta", "Infinity"),
        ("max_position_embeddings", "0"),
        ("rope_parameters", r#"{"rope_type": "default", "rope_theta": 0}"#),
        ("rope_parameters", r#"{"rope_type": "linear", "rope_theta": 10000, "factor": NaN}"#),
        ("rope_scaling", r#"{"rope_type": "linear", "factor": 0}"#),
        ("rope_scaling", r#"{"rope_type": "linear", "factor": -2}"#),
        (
            "rope_scaling",
            r#"{"rope_type": "llama3", "factor": 8, "low_freq_factor": 4, "high_freq_factor": 1, "original_max_position_embeddings": 8192}"#,
        ),
        (
            "rope_scaling",
            r#"{"rope_type": "llama3", "factor": 8, "low_freq_factor": 1, "high_freq_factor": 4, "original_max_position_embeddings": 0}"#,
        ),
    ];
    for (key, raw) in cases {
        let s = Scratch::of("llama-tied-gqa");
        let mut cfg: Value =
            serde_json::from_str(&fs::read_to_string(s.path("config.json")).unwrap()).unwrap();
        if key.starts_with("rope_") {
            // The legacy keys count only when transformers 5's `rope_parameters` is absent.
            cfg.as_object_mut().unwrap().remove("rope_parameters");
        }
        cfg[*key] = json!("__VALUE__");
        // Written as Python's json.dumps writes NaN and Infinity (bare tokens, not valid JSON).
        let text = cfg.to_string().replace("\"__VALUE__\"", raw);
        fs::write(s.path("config.json"), &text).unwrap();
        let err = match Model::load(&s.0) {
            Ok(_) => panic!("{key} = {raw} loaded"),
            Err(e) => e,
        };
        assert_eq!(err.load_kind(), Some(LoadErrorKind::InvalidConfig), "{key} = {raw}: {err}");
        let named = if *key == "rope_parameters" { ["rope_theta", "factor"] } else { [*key, *key] };
        assert!(
            named.iter().any(|k| err.to_string().contains(k)),
            "{key} = {raw}: the message must name the key: {err}"
        );
    }
}

/// SplitMix64, so the fuzz corpus is the same on every run.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// Mutates a valid safetensors file in one of several ways, structured and blind.
fn mutate(rng: &mut Rng, header: &Value, data: &[u8]) -> Vec<u8> {
    let names: Vec<String> =
        header.as_object().unwrap().keys().filter(|k| *k != "__metadata__").cloned().collect();
    let name = &names[rng.below(names.len())];
    let mut h = header.clone();
    let weird = [
        json!(-1),
        json!(u64::MAX),
        json!(1u64 << 40),
        json!(0),
        json!(1.5),
        json!("12"),
        json!(null),
        json!([]),
        json!({}),
        json!([1, 2, 3]),
    ];
    let pick = |rng: &mut Rng| weird[rng.below(weird.len())].clone();
    let raw = |h: &Value| {
        let bytes = serde_json::to_vec(h).unwrap();
        let mut out = (bytes.len() as u64).to_le_bytes().to_vec();
        out.extend_from_slice(&bytes);
        out
    };
    let mut out = match rng.below(10) {
        0 => {
            h[name]["dtype"] = json!(["F32", "BF16", "I8", "F64", "Q8_0", "", "f32", "BOOL"][rng.below(8)]);
            raw(&h)
        }
        1 => {
            let i = rng.below(2);
            h[name]["data_offsets"][i] = pick(rng);
            raw(&h)
        }
        2 => {
            let dims = h[name]["shape"].as_array().map_or(0, |a| a.len());
            if dims > 0 {
                h[name]["shape"][rng.below(dims)] = pick(rng);
            } else {
                h[name]["shape"] = pick(rng);
            }
            raw(&h)
        }
        3 => {
            let field = ["dtype", "shape", "data_offsets"][rng.below(3)];
            h[name].as_object_mut().unwrap().remove(field);
            raw(&h)
        }
        4 => {
            h[name] = pick(rng);
            raw(&h)
        }
        5 => {
            // Shift a tensor so it overlaps or leaves the data region.
            let shift = (rng.below(64) as i64 - 32) * 4;
            for i in 0..2 {
                let v = h[name]["data_offsets"][i].as_i64().unwrap_or(0) + shift;
                h[name]["data_offsets"][i] = json!(v);
            }
            raw(&h)
        }
        6 => {
            // Corrupt the length prefix.
            let mut bytes = raw(&h);
            let v = [0u64, 1, 7, bytes.len() as u64, u64::MAX, 1 << 33, rng.next()][rng.below(7)];
            bytes[..8].copy_from_slice(&v.to_le_bytes());
            bytes
        }
        7 => {
            // Blind byte flips inside the header JSON.
            let mut bytes = raw(&h);
            for _ in 0..=rng.below(8) {
                let i = 8 + rng.below(bytes.len() - 8);
                bytes[i] = rng.next() as u8;
            }
            bytes
        }
        8 => {
            // Cut the header JSON short but keep the (now lying) prefix.
            let mut bytes = raw(&h);
            let keep = 8 + rng.below(bytes.len() - 8);
            bytes.truncate(keep);
            return bytes;
        }
        _ => {
            h["__metadata__"] = pick(rng);
            raw(&h)
        }
    };
    out.extend_from_slice(data);
    if rng.below(4) == 0 {
        let keep = rng.below(out.len());
        out.truncate(keep);
    }
    out
}

#[test]
fn fuzz_safetensors_headers() {
    const CASES: usize = 600;
    let src = fixture("qwen2-bias").join("model.safetensors");
    let (header, data) = split(&src);
    let s = Scratch::of("qwen2-bias");
    let target = s.path("model.safetensors");
    let mut rng = Rng(0x5EED);
    let (mut rejected, mut accepted) = (0, 0);
    for case in 0..CASES {
        let bytes = mutate(&mut rng, &header, &data);
        fs::write(&target, &bytes).unwrap();
        // Both the raw reader (reading every tensor) and a full model load must return,
        // never panic; catch_unwind turns a panic into a test failure naming the case.
        let outcome = std::panic::catch_unwind(|| {
            let file = SafetensorsFile::open(&target);
            if let Ok(file) = &file {
                for name in file.tensors().keys() {
                    let _ = file.load_f32(name, &candle_core::Device::Cpu);
                }
            }
            (file.is_ok(), Model::load(&s.0).map(|_| ()))
        });
        match outcome {
            Err(_) => {
                fs::write(std::env::temp_dir().join("tunekit-fuzz-crash.safetensors"), &bytes).unwrap();
                panic!("case {case} panicked; input saved to tunekit-fuzz-crash.safetensors");
            }
            Ok((_, Ok(()))) => accepted += 1,
            Ok((_, Err(e))) => {
                assert_eq!(e.code(), "model_load", "case {case}: {e}");
                rejected += 1;
            }
        }
    }
    // Some mutations are harmless (e.g. a valid dtype rename of the same size would still
    // be caught by config checks); most must be rejected.
    println!("fuzz: {rejected} rejected, {accepted} accepted of {CASES}");
    assert!(rejected > CASES * 3 / 4, "only {rejected} of {CASES} mutations were rejected");
}

#[test]
fn fuzz_config_json() {
    const CASES: usize = 300;
    let s = Scratch::of("llama3-scaled-sharded-bf16");
    let original = fs::read_to_string(s.path("config.json")).unwrap();
    let config: Value = serde_json::from_str(&original).unwrap();
    let keys: Vec<String> = config.as_object().unwrap().keys().cloned().collect();
    let weird = [
        json!(-1),
        json!(0),
        json!(u64::MAX),
        json!(1u64 << 40),
        json!(3.5),
        json!(-1e308),
        json!("64"),
        json!(null),
        json!(true),
        json!([]),
        json!([1, 2]),
        json!({"rope_type": "llama3", "factor": 0.0}),
        json!({"type": "linear"}),
        json!({"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 4.0, "high_freq_factor": 4.0, "original_max_position_embeddings": 0}),
    ];
    let mut rng = Rng(0xC0FFEE);
    let (mut ok, mut rejected) = (0, 0);
    for case in 0..CASES {
        let text = if rng.below(5) == 0 {
            // Blind byte damage to the JSON text.
            const SPICE: &[u8] = b"{}[]\",:0-9e ";
            let mut bytes = original.clone().into_bytes();
            for _ in 0..=rng.below(4) {
                let i = rng.below(bytes.len());
                bytes[i] = SPICE[rng.below(SPICE.len())];
            }
            String::from_utf8_lossy(&bytes).into_owned()
        } else {
            let mut c = config.clone();
            for _ in 0..=rng.below(2) {
                let key = &keys[rng.below(keys.len())];
                if rng.below(6) == 0 {
                    c.as_object_mut().unwrap().remove(key);
                } else {
                    c[key.as_str()] = weird[rng.below(weird.len())].clone();
                }
            }
            c.to_string()
        };
        fs::write(s.path("config.json"), &text).unwrap();
        match std::panic::catch_unwind(|| Model::load(&s.0).map(|_| ())) {
            Err(_) => panic!("case {case} panicked on config.json:\n{text}"),
            Ok(Ok(())) => ok += 1,
            Ok(Err(e)) => {
                assert_eq!(e.code(), "model_load", "case {case}: {e}");
                rejected += 1;
            }
        }
    }
    println!("config fuzz: {rejected} rejected, {ok} loaded of {CASES}");
    assert!(rejected > CASES / 2);
}
