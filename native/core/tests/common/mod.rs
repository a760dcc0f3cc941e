//! Helpers shared by the training integration tests.
#![allow(dead_code)]

use std::path::Path;

use candle_core::{DType, Device, Tensor};
use serde_json::Value;
use tunekit_core::train::batching::Example;
use tunekit_core::train::peft;
use tunekit_core::train::session::LoraModel;
use tunekit_core::Model;

/// The model directory `model_dir` with the PEFT adapter in `adapter_dir` attached: the
/// production decoder, exactly as the binding applies an adapter.
pub fn lora_model(model_dir: &Path, adapter_dir: &Path) -> LoraModel {
    let model = Model::load(model_dir).unwrap();
    let adapter = peft::load(adapter_dir, &Device::Cpu).unwrap();
    LoraModel::from_peft(model.decoder, &adapter).unwrap()
}

/// Largest absolute difference, relative to `b`'s largest entry.
pub fn rel_err(a: &Tensor, b: &Tensor) -> f64 {
    assert_eq!(a.dims(), b.dims());
    let a = a.to_dtype(DType::F64).unwrap().flatten_all().unwrap().to_vec1::<f64>().unwrap();
    let b = b.to_dtype(DType::F64).unwrap().flatten_all().unwrap().to_vec1::<f64>().unwrap();
    let scale = b.iter().fold(0f64, |m, v| m.max(v.abs())).max(1e-30);
    a.iter().zip(&b).fold(0f64, |m, (x, y)| m.max((x - y).abs())) / scale
}

/// The fixture batch as unpadded examples (the trainer pads them again).
pub fn examples(fixture: &Path) -> (Vec<Example>, u32) {
    let v: Value =
        serde_json::from_str(&std::fs::read_to_string(fixture.join("batch.json")).unwrap()).unwrap();
    let rows = |k: &str| -> Vec<Vec<i64>> {
        v[k].as_array()
            .unwrap()
            .iter()
            .map(|r| r.as_array().unwrap().iter().map(|x| x.as_i64().unwrap()).collect())
            .collect()
    };
    let (ids, labels, mask) = (rows("input_ids"), rows("labels"), rows("attention_mask"));
    let ex = (0..ids.len())
        .map(|i| {
            let n = mask[i].iter().sum::<i64>() as usize;
            Example {
                input_ids: ids[i][..n].iter().map(|&x| x as u32).collect(),
                labels: labels[i][..n].to_vec(),
            }
        })
        .collect();
    (ex, v["pad_id"].as_u64().unwrap() as u32)
}
