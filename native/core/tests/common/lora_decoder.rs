//! A decoder with LoRA adapters applied as differentiable weights `W + s·B·A`.
//!
//! Stopgap until the decoder's `Linear` has a LoRA seam: mathematically identical to PEFT's
//! `x·Wᵀ + s·(x·Aᵀ)·Bᵀ` without dropout, with exact gradients for A and B, but it builds a
//! weight-sized tensor per adapted projection per forward (fine for the tiny fixtures).

use std::path::Path;
use std::sync::Arc;

use candle_core::{Device, Tensor};
use tunekit_core::decoder::{Decoder, Linear};
use tunekit_core::train::lora::{LoraAdapter, LoraShared};
use tunekit_core::train::peft;
use tunekit_core::train::trainer::{Adapters, TrainableModel};
use tunekit_core::quant::BaseWeight;
use tunekit_core::Model;

pub struct LoraDecoder {
    pub base: Decoder,
    pub adapters: Adapters,
}

fn linear_mut<'a>(d: &'a mut Decoder, path: &str) -> &'a mut Linear {
    let parts: Vec<&str> = path.split('.').collect();
    let ["model", "layers", i, block, proj] = parts[..] else { panic!("unexpected module path {path}") };
    let layer = &mut d.layers[i.parse::<usize>().unwrap()];
    match (block, proj) {
        ("self_attn", "q_proj") => &mut layer.self_attn.q_proj,
        ("self_attn", "k_proj") => &mut layer.self_attn.k_proj,
        ("self_attn", "v_proj") => &mut layer.self_attn.v_proj,
        ("self_attn", "o_proj") => &mut layer.self_attn.o_proj,
        ("mlp", "gate_proj") => &mut layer.mlp.gate_proj,
        ("mlp", "up_proj") => &mut layer.mlp.up_proj,
        ("mlp", "down_proj") => &mut layer.mlp.down_proj,
        _ => panic!("unexpected module path {path}"),
    }
}

/// Loads a model directory and the PEFT adapter in `adapter_dir`.
pub fn load(model_dir: &Path, adapter_dir: &Path) -> LoraDecoder {
    let model = Model::load(model_dir).unwrap();
    let adapter = peft::load(adapter_dir, &Device::Cpu).unwrap();
    let shared = LoraShared::new(0);
    let modules = adapter
        .modules
        .iter()
        .enumerate()
        .map(|(i, (path, w))| {
            let a = LoraAdapter::from_weights(&w.a, &w.b, &adapter.config, i as u64, shared.clone()).unwrap();
            (path.clone(), Arc::new(a))
        })
        .collect();
    LoraDecoder { base: model.decoder, adapters: Adapters { config: adapter.config, shared, modules } }
}

impl LoraDecoder {
    /// The base decoder with every adapter merged into its weights (for generation).
    pub fn merged(&self) -> Decoder {
        let mut d = self.base.clone();
        for (path, a) in &self.adapters.modules {
            let lin = linear_mut(&mut d, path);
            lin.weight = BaseWeight::F32((lin.weight.dense().unwrap() + a.delta_weight().unwrap().detach()).unwrap());
        }
        d
    }
}

impl TrainableModel for LoraDecoder {
    fn hidden_states(&self, ids: &Tensor) -> candle_core::Result<Tensor> {
        let mut d = self.base.clone(); // tensors are reference-counted: a cheap copy
        for (path, a) in &self.adapters.modules {
            let lin = linear_mut(&mut d, path);
            lin.weight = BaseWeight::F32((lin.weight.dense()? + a.delta_weight()?)?);
        }
        d.forward_hidden(ids, None).map_err(|e| candle_core::Error::Msg(e.to_string()))
    }
    fn lm_head_weight(&self) -> &Tensor {
        self.base.lm_head.dense_ref().unwrap()
    }
    fn final_logit_softcap(&self) -> Option<f64> {
        self.base.cfg.final_logit_softcapping
    }
    fn device(&self) -> &Device {
        self.base.device()
    }
}
