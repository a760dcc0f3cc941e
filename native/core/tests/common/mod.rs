//! Helpers shared by the training integration tests.
#![allow(dead_code)]

use std::path::Path;

use candle_core::Device;
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
