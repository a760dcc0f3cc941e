//! The glue between a loaded [`Model`](crate::Model) and the trainer: LoRA adapters injected
//! into the decoder's projections, so a model directory can be trained end to end
//! ([`run`]) and an adapter directory can be applied for generation ([`LoraModel::merged`]).
//!
//! [`LoraModel`] runs the decoder's forward pass with every targeted projection computed as
//! `frozen_linear(x, W) + b + scaling · (dropout(x)·Aᵀ)·Bᵀ` (PEFT's `LoraLayer.forward`): the
//! frozen weight gets no gradient, dropout applies to the adapter input only, and A/B are the
//! trainer's variables. The rest of the forward pass is the decoder's own building blocks
//! (RMSNorm, rotary embedding and the scaled, masked softmax as single graph nodes with
//! hand-written backward passes), in the same order as
//! `Decoder::forward_hidden`, so with B = 0 it computes exactly the base model.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use candle_core::{Device, Module, Tensor};

use super::batching::Example;
use super::frozen_linear::frozen_linear;
use super::lora::{LoraAdapter, LoraConfig, LoraShared};
use super::memory::{self, TrainShape};
use super::ops::{glu, scaled_masked_softmax};
use super::peft::{self, PeftAdapter};
use super::rng::Rng;
use super::trainer::{self, Adapters, LayeredModel, StepReport, TrainConfig, TrainOutcome, TrainableModel};
use super::{Result, TrainError};
use super::loss::HeadWeight;
use crate::decoder::{Decoder, Linear, Rotary};
use crate::quant::BaseWeight;

/// The projections of one layer, in PEFT module-name order.
const PROJECTIONS: [(&str, &str); 7] = [
    ("self_attn", "q_proj"),
    ("self_attn", "k_proj"),
    ("self_attn", "v_proj"),
    ("self_attn", "o_proj"),
    ("mlp", "gate_proj"),
    ("mlp", "up_proj"),
    ("mlp", "down_proj"),
];

fn projection(d: &Decoder, layer: usize, which: usize) -> &Linear {
    let l = &d.layers[layer];
    match which {
        0 => &l.self_attn.q_proj,
        1 => &l.self_attn.k_proj,
        2 => &l.self_attn.v_proj,
        3 => &l.self_attn.o_proj,
        4 => &l.mlp.gate_proj,
        5 => &l.mlp.up_proj,
        _ => &l.mlp.down_proj,
    }
}

fn projection_mut(d: &mut Decoder, layer: usize, which: usize) -> &mut Linear {
    let l = &mut d.layers[layer];
    match which {
        0 => &mut l.self_attn.q_proj,
        1 => &mut l.self_attn.k_proj,
        2 => &mut l.self_attn.v_proj,
        3 => &mut l.self_attn.o_proj,
        4 => &mut l.mlp.gate_proj,
        5 => &mut l.mlp.up_proj,
        _ => &mut l.mlp.down_proj,
    }
}

fn module_path(layer: usize, which: usize) -> String {
    let (block, proj) = PROJECTIONS[which];
    format!("model.layers.{layer}.{block}.{proj}")
}

/// A decoder whose targeted projections carry LoRA adapters.
pub struct LoraModel {
    pub base: Decoder,
    pub adapters: Adapters,
    /// `slots[layer][projection]` = index into `adapters.modules`.
    slots: Vec<[Option<usize>; 7]>,
}

impl LoraModel {
    /// Fresh adapters with PEFT's initialisation (A kaiming-uniform from `seed`, B zero) on every
    /// projection `config.target_modules` names.
    pub fn new(base: Decoder, config: LoraConfig, seed: u64) -> Result<Self> {
        let rule = config.clone();
        let model = Self::on_modules(base, config, seed, &|path| rule.targets(path))?;
        check_targets(&model.adapters.config, &model.adapters.modules)?;
        Ok(model)
    }

    /// Fresh adapters (as in [`new`](Self::new)) on exactly the projections `targeted` selects.
    fn on_modules(
        base: Decoder,
        config: LoraConfig,
        seed: u64,
        targeted: &dyn Fn(&str) -> bool,
    ) -> Result<Self> {
        config.validate()?;
        let shared = LoraShared::new(seed);
        let mut rng = Rng::derive(seed, "lora-init", 0);
        let mut modules = Vec::new();
        let mut slots = vec![[None; 7]; base.layers.len()];
        for (layer, slot) in slots.iter_mut().enumerate() {
            for (which, s) in slot.iter_mut().enumerate() {
                let path = module_path(layer, which);
                if !targeted(&path) {
                    continue;
                }
                let (out_f, in_f) = projection(&base, layer, which).weight.dims2()?;
                let id = modules.len() as u64;
                let a = LoraAdapter::init(in_f, out_f, &config, &mut rng, id, shared.clone(), base.device())?;
                *s = Some(modules.len());
                modules.push((path, Arc::new(a)));
            }
        }
        Ok(Self { base, adapters: Adapters { config, shared, modules }, slots })
    }

    /// The adapters of a PEFT directory (ours or Python's) on `base`, on exactly the modules
    /// PEFT puts them on (`PeftAdapter::targets`); weights that do not match are refused.
    pub fn from_peft(base: Decoder, adapter: &PeftAdapter) -> Result<Self> {
        let model = Self::on_modules(base, adapter.config.clone(), 0, &|path| adapter.targets(path))?;
        let shapes: Vec<(String, Vec<usize>, Vec<usize>)> = model
            .adapters
            .modules
            .iter()
            .map(|(p, a)| (p.clone(), a.a.dims().to_vec(), a.b.dims().to_vec()))
            .collect();
        adapter.check_modules(&shapes)?;
        model.adapters.load_weights(adapter)?;
        Ok(model)
    }

    /// The base decoder with every adapter merged into its weights (`W + scaling·B·A`):
    /// identical outputs without dropout, and generation at the base model's speed.
    pub fn merged(&self) -> Result<Decoder> {
        let mut d = self.base.clone(); // tensors are reference-counted: a cheap copy
        for (layer, slot) in self.slots.iter().enumerate() {
            for (which, s) in slot.iter().enumerate() {
                let Some(i) = s else { continue };
                let delta = self.adapters.modules[*i].1.delta_weight()?.detach();
                let lin = projection_mut(&mut d, layer, which);
                let dense = lin.weight.dense()?;
                lin.weight = BaseWeight::F32((&dense + delta.to_dtype(dense.dtype())?)?);
            }
        }
        Ok(d)
    }

    fn linear(&self, layer: usize, which: usize, x: &Tensor) -> candle_core::Result<Tensor> {
        let lin = projection(&self.base, layer, which);
        if let Some(i) = self.slots[layer][which] {
            return self.adapters.modules[i].1.linear(x, &lin.weight, lin.bias.as_ref());
        }
        let y = match &lin.weight {
            BaseWeight::F32(w) => frozen_linear(x, w)?,
            stored => stored.forward(x)?,
        };
        match &lin.bias {
            Some(b) => y.broadcast_add(b),
            None => Ok(y),
        }
    }

    fn attention(
        &self,
        layer: usize,
        x: &Tensor,
        cos: &Tensor,
        sin: &Tensor,
        mask: Option<&Tensor>,
    ) -> candle_core::Result<Tensor> {
        let cfg = &self.base.cfg;
        let attn = &self.base.layers[layer].self_attn;
        let (b, s, _) = x.dims3()?;
        let (h, kvh, d) = (cfg.num_attention_heads, cfg.num_key_value_heads, cfg.head_dim);
        let mut q = self.linear(layer, 0, x)?.reshape((b, s, h, d))?;
        let mut k = self.linear(layer, 1, x)?.reshape((b, s, kvh, d))?;
        let v = self.linear(layer, 2, x)?.reshape((b, s, kvh, d))?.transpose(1, 2)?.contiguous()?;
        if let (Some(qn), Some(kn)) = (&attn.q_norm, &attn.k_norm) {
            q = qn.forward(&q)?;
            k = kn.forward(&k)?;
        }
        // The transposed views go to rope as they are: its node keeps the view, not a copy.
        let q = Rotary::apply(&q.transpose(1, 2)?, cos, sin)?;
        let k = Rotary::apply(&k.transpose(1, 2)?, cos, sin)?;
        let groups = h / kvh;
        let q = q.reshape((b, kvh, groups * s, d))?;
        let scores = q.matmul(&k.t()?)?.reshape((b, kvh, groups, s, s))?;
        let probs = scaled_masked_softmax(&scores, cfg.attn_scale, mask)?.reshape((b, kvh, groups * s, s))?;
        let out = probs.matmul(&v)?.reshape((b, h, s, d))?.transpose(1, 2)?.reshape((b, s, h * d))?;
        self.linear(layer, 3, &out)
    }

    fn mlp(&self, layer: usize, x: &Tensor) -> candle_core::Result<Tensor> {
        let gate = self.linear(layer, 4, x)?;
        let up = self.linear(layer, 5, x)?;
        self.linear(layer, 6, &glu(&gate, &up, self.base.cfg.activation)?)
    }
}

fn check_targets(config: &LoraConfig, modules: &[(String, Arc<LoraAdapter>)]) -> Result<()> {
    let names: Vec<&str> = PROJECTIONS.iter().map(|(_, p)| *p).collect();
    for t in &config.target_modules {
        if !modules.iter().any(|(p, _)| p == t || p.ends_with(&format!(".{t}"))) {
            return Err(TrainError::Config(format!(
                "target module {t:?} matches no projection of this model; use any of {}",
                names.join(", ")
            )));
        }
    }
    Ok(())
}

/// Additive causal mask `[s, s]` (0 or -inf), with an optional sliding window.
fn causal_mask(s: usize, window: Option<usize>, device: &Device) -> candle_core::Result<Option<Tensor>> {
    let visible = |i: usize, j: usize| j <= i && window.is_none_or(|w| i - j < w);
    if (0..s).all(|i| (0..s).all(|j| visible(i, j))) {
        return Ok(None);
    }
    let values: Vec<f32> = (0..s)
        .flat_map(|i| (0..s).map(move |j| if visible(i, j) { 0.0 } else { f32::NEG_INFINITY }))
        .collect();
    Ok(Some(Tensor::from_vec(values, (s, s), device)?))
}

impl LoraModel {
    /// Rotary tables for positions `0..s`, one pair per distinct rope of the decoder
    /// (`Decoder::rotaries`, indexed by `Layer::rope`).
    fn tables(&self, s: usize) -> candle_core::Result<Vec<(Tensor, Tensor)>> {
        self.base
            .rotaries
            .iter()
            .map(|r| r.tables(0, s, self.base.device()).map_err(|e| candle_core::Error::Msg(e.to_string())))
            .collect()
    }

    /// One decoder layer over a full sequence from position 0.
    fn layer_forward(
        &self,
        i: usize,
        hidden: &Tensor,
        (cos, sin): (&Tensor, &Tensor),
        mask: Option<&Tensor>,
    ) -> candle_core::Result<Tensor> {
        let layer = &self.base.layers[i];
        let normed = layer.input_layernorm.forward(hidden)?;
        let hidden = layer.add_attention(hidden, &self.attention(i, &normed, cos, sin, mask)?)?;
        let normed = layer.post_attention_layernorm.forward(&hidden)?;
        layer.add_mlp(&hidden, &self.mlp(i, &normed)?)
    }

    fn window(&self, i: usize) -> Option<usize> {
        self.base.cfg.sliding_window.get(i).copied().flatten()
    }
}

impl LayeredModel for LoraModel {
    fn num_layers(&self) -> usize {
        self.base.layers.len()
    }

    fn embed(&self, ids: &Tensor) -> candle_core::Result<Tensor> {
        let cfg = &self.base.cfg;
        let (b, s) = ids.dims2()?;
        let vocab = cfg.vocab_size as u32;
        if let Some(bad) = ids.flatten_all()?.to_vec1::<u32>()?.into_iter().find(|&id| id >= vocab) {
            candle_core::bail!("token id {bad} is out of range for a vocabulary of {vocab}")
        }
        let hidden = self.base.embed_tokens.rows(ids)?;
        debug_assert_eq!(hidden.dims(), &[b, s, cfg.hidden_size]);
        match cfg.embed_scale {
            Some(scale) => hidden * scale,
            None => Ok(hidden),
        }
    }

    fn layer(&self, i: usize, hidden: &Tensor) -> candle_core::Result<Tensor> {
        let (_, s, _) = hidden.dims3()?;
        let rope = self.base.layers[i].rope;
        let (cos, sin) = self.base.rotaries[rope]
            .tables(0, s, self.base.device())
            .map_err(|e| candle_core::Error::Msg(e.to_string()))?;
        let mask = causal_mask(s, self.window(i), self.base.device())?;
        self.layer_forward(i, hidden, (&cos, &sin), mask.as_ref())
    }

    fn final_norm(&self, hidden: &Tensor) -> candle_core::Result<Tensor> {
        self.base.norm.forward(hidden)
    }
}

impl TrainableModel for LoraModel {
    fn hidden_states(&self, ids: &Tensor) -> candle_core::Result<Tensor> {
        let mut hidden = self.embed(ids)?;
        let (_, s) = ids.dims2()?;
        let tables = self.tables(s)?;
        let mut masks: Vec<(Option<usize>, Option<Tensor>)> = Vec::new();
        for i in 0..self.base.layers.len() {
            let window = self.window(i);
            let mask = match masks.iter().find(|(w, _)| *w == window) {
                Some((_, m)) => m.clone(),
                None => {
                    let m = causal_mask(s, window, self.base.device())?;
                    masks.push((window, m.clone()));
                    m
                }
            };
            let (cos, sin) = &tables[self.base.layers[i].rope];
            hidden = self.layer_forward(i, &hidden, (cos, sin), mask.as_ref())?;
        }
        self.base.norm.forward(&hidden)
    }

    fn lm_head_weight(&self) -> &Tensor {
        self.base.lm_head.dense_ref().expect("the LM head dequantises")
    }

    fn lm_head(&self) -> &dyn HeadWeight {
        &self.base.lm_head
    }

    fn final_logit_softcap(&self) -> Option<f64> {
        self.base.cfg.final_logit_softcapping
    }

    fn device(&self) -> &Device {
        self.base.device()
    }

    fn layered(&self) -> Option<&dyn LayeredModel> {
        Some(self)
    }
}

/// Everything [`run`] needs besides the model.
#[derive(Debug, Clone)]
pub struct SessionConfig {
    pub lora: LoraConfig,
    pub train: TrainConfig,
    /// Refuse to start when the memory estimate exceeds what the OS reports as available.
    pub check_memory: bool,
}

/// How a [`run`] ended.
#[derive(Debug)]
pub struct SessionOutcome {
    pub outcome: TrainOutcome,
    /// The final PEFT adapter (written into `output_dir` itself) unless the run was cancelled.
    pub adapter_dir: Option<PathBuf>,
}

/// Trains LoRA adapters on `base` (a loaded decoder) and, when the run completes, writes the
/// final PEFT adapter into `cfg.train.output_dir` beside the `checkpoint-<step>` directories.
/// Resumes from the latest checkpoint there when `cfg.train.resume` is set.
pub fn run(
    base: Decoder,
    train: &[Example],
    valid: &[Example],
    cfg: &SessionConfig,
    on_step: &mut dyn FnMut(&StepReport),
    on_checkpoint: &mut dyn FnMut(&Path),
    cancel: &dyn Fn() -> bool,
) -> Result<SessionOutcome> {
    if train.is_empty() {
        return Err(TrainError::Config("the training set is empty".into()));
    }
    let vocab = base.cfg.vocab_size;
    for (i, e) in train.iter().chain(valid).enumerate() {
        if e.input_ids.len() != e.labels.len() {
            return Err(TrainError::Config(format!("sequence {i}: inputIds and labels differ in length")));
        }
        if let Some(bad) = e.input_ids.iter().find(|&&id| id as usize >= vocab) {
            return Err(TrainError::Config(format!(
                "sequence {i}: token id {bad} is out of range for a vocabulary of {vocab}"
            )));
        }
    }
    if cfg.check_memory {
        let shape = TrainShape {
            batch_size: cfg.train.batch_size,
            seq_len: train.iter().chain(valid).map(|e| e.input_ids.len()).max().unwrap_or(1),
            lora_rank: cfg.lora.r,
            target_modules: cfg.lora.target_modules.clone(),
            lm_head_chunk: cfg.train.lm_head_chunk,
            gradient_checkpointing: cfg.train.gradient_checkpointing,
            base_weight_bytes: base.has_stored_weights().then(|| base.matrix_bytes()),
        };
        if let Some(available) = memory::available_bytes() {
            memory::check_fits(&memory::estimate(&base.cfg, &shape), &shape, available)?;
        }
    }
    let model = LoraModel::new(base, cfg.lora.clone(), cfg.train.seed)?;
    // The trainer writes a checkpoint right after reporting a step that is due one; it is
    // announced once it exists (at the next step, or when the run returns).
    let mut pending: Option<PathBuf> = None;
    fn announce(pending: &mut Option<PathBuf>, on_checkpoint: &mut dyn FnMut(&Path)) {
        if let Some(dir) = pending.take() {
            if dir.join(super::checkpoint::STATE_NAME).is_file() {
                on_checkpoint(&dir);
            }
        }
    }
    let outcome = {
        let mut on_report = |r: &StepReport| {
            announce(&mut pending, on_checkpoint);
            on_step(r);
            let due =
                cfg.train.save_steps.is_some_and(|n| r.step.is_multiple_of(n)) || r.step == r.total_steps;
            if let (true, Some(dir)) = (due, &cfg.train.output_dir) {
                pending = Some(super::checkpoint::checkpoint_dir(dir, r.step));
            }
        };
        trainer::train(&model, &model.adapters, train, valid, &cfg.train, &mut on_report, cancel)?
    };
    announce(&mut pending, on_checkpoint);
    let adapter_dir = match (&cfg.train.output_dir, outcome.cancelled) {
        (Some(dir), false) => {
            peft::save(dir, &model.adapters.to_peft(cfg.train.base_model.as_deref()))?;
            Some(dir.clone())
        }
        _ => None,
    };
    Ok(SessionOutcome { outcome, adapter_dir })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Model;

    /// The LoRA forward pass equals the base decoder's forward pass on merged weights
    /// (`W + s·B·A`), for every fixture architecture (GQA/MQA, biases, q/k norm, windows, dtypes).
    #[test]
    fn train_session_lora_forward_matches_merged_weights() {
        let root = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../test/fixtures/models");
        let mut checked = 0;
        for entry in std::fs::read_dir(&root).unwrap() {
            let dir = entry.unwrap().path();
            if !dir.join("config.json").is_file() {
                continue;
            }
            let model = Model::load(&dir).unwrap();
            let cfg = LoraConfig { r: 4, alpha: 8.0, dropout: 0.0, ..LoraConfig::default() };
            let lora = LoraModel::new(model.decoder.clone(), cfg, 3).unwrap();
            let mut rng = Rng::new(11);
            for (_, a) in &lora.adapters.modules {
                let (out, r) = a.b.dims2().unwrap();
                let b =
                    Tensor::from_vec(rng.uniform_vec(out * r, -0.1, 0.1), (out, r), &Device::Cpu).unwrap();
                a.b.set(&b).unwrap();
            }
            let ids = Tensor::from_slice(&[1u32, 40, 7, 99, 250, 13, 5, 17], (1, 8), &Device::Cpu).unwrap();
            let got = lora.hidden_states(&ids).unwrap();
            let want = lora.merged().unwrap().forward_hidden(&ids, None).unwrap();
            let base = model.decoder.forward_hidden(&ids, None).unwrap();
            let diff = |x: &Tensor, y: &Tensor| {
                (x - y)
                    .unwrap()
                    .abs()
                    .unwrap()
                    .flatten_all()
                    .unwrap()
                    .max(0)
                    .unwrap()
                    .to_scalar::<f32>()
                    .unwrap()
            };
            let scale =
                want.abs().unwrap().flatten_all().unwrap().max(0).unwrap().to_scalar::<f32>().unwrap();
            assert!(diff(&got, &want) <= 1e-4 * scale.max(1.0), "{}: {}", dir.display(), diff(&got, &want));
            assert!(diff(&base, &want) > 1e-3, "{}: the adapters must change the output", dir.display());

            // Gradient checkpointing (layer-by-layer recompute) gives the same gradients.
            let example = Example::prompt_response(&[1, 40, 7, 99], &[250, 13, 5, 17]);
            let batch = super::super::batching::Batch::collate(&[&example], 0);
            let vars = lora.adapters.vars();
            let grads = |checkpointing: bool| {
                let cfg = TrainConfig { gradient_checkpointing: checkpointing, ..TrainConfig::default() };
                trainer::window_gradients(
                    &lora,
                    &lora.adapters,
                    &vars,
                    std::slice::from_ref(&batch),
                    &cfg,
                    0,
                    &|| false,
                )
                .unwrap()
                .unwrap()
            };
            let (plain, loss_plain) = grads(false);
            let (ckpt, loss_ckpt) = grads(true);
            assert!((loss_plain - loss_ckpt).abs() <= 1e-5 * loss_plain.abs().max(1.0), "{}", dir.display());
            for (p, c) in plain.iter().zip(&ckpt) {
                let scale =
                    p.abs().unwrap().flatten_all().unwrap().max(0).unwrap().to_scalar::<f32>().unwrap();
                assert!(
                    diff(p, c) <= 1e-4 * scale.max(1e-6),
                    "{}: checkpointed gradient differs",
                    dir.display()
                );
            }
            checked += 1;
        }
        assert!(checked >= 5, "fixtures found: {checked}");
    }
}
