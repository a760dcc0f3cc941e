//! The glue between a loaded [`Model`](crate::Model) and the trainer: LoRA adapters attached
//! to the decoder's projections, so a model directory can be trained end to end ([`run`]) and
//! an adapter directory can be applied for generation ([`LoraModel::merged`]).
//!
//! [`LoraModel`] is the decoder itself with an adapter on every targeted
//! [`Linear`](crate::decoder::Linear): training, evaluation and generation run the one forward
//! pass of [`crate::decoder`]. Each adapted projection computes PEFT's
//! `x·Wᵀ + b + scaling · (dropout(x)·Aᵀ)·Bᵀ`; the frozen weight gets no gradient, dropout
//! applies to the adapter input only, and A/B are the trainer's variables. With B = 0 it
//! computes exactly the base model.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use candle_core::{Device, Tensor};

use super::batching::Example;
use super::lora::{LoraAdapter, LoraConfig, LoraShared};
use super::loss::HeadWeight;
use super::memory::{self, TrainShape};
use super::peft::{self, PeftAdapter};
use super::rng::Rng;
use super::trainer::{self, Adapters, LayeredModel, StepReport, TrainConfig, TrainOutcome, TrainableModel};
use super::{Result, TrainError};
use crate::decoder::{module_path, Decoder, PROJECTIONS};

/// A decoder whose targeted projections carry LoRA adapters.
pub struct LoraModel {
    /// The decoder, with the adapters attached to its projections.
    pub decoder: Decoder,
    /// The same adapters in the optimiser's order, with their module paths.
    pub adapters: Adapters,
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
    /// Adapters already on `base` are replaced.
    fn on_modules(
        mut decoder: Decoder,
        config: LoraConfig,
        seed: u64,
        targeted: &dyn Fn(&str) -> bool,
    ) -> Result<Self> {
        config.validate()?;
        let shared = LoraShared::new(seed);
        let mut rng = Rng::derive(seed, "lora-init", 0);
        let mut modules = Vec::new();
        let device = decoder.device().clone();
        for (layer, l) in decoder.layers.iter_mut().enumerate() {
            for which in 0..PROJECTIONS.len() {
                let lin = l.projection_mut(which);
                lin.adapter = None;
                let path = module_path(layer, which);
                if !targeted(&path) {
                    continue;
                }
                let (out_f, in_f) = lin.dims();
                let id = modules.len() as u64;
                let a =
                    Arc::new(LoraAdapter::init(in_f, out_f, &config, &mut rng, id, shared.clone(), &device)?);
                lin.adapter = Some(a.clone());
                modules.push((path, a));
            }
        }
        Ok(Self { decoder, adapters: Adapters { config, shared, modules } })
    }

    /// `adapters` (built elsewhere, e.g. with a test's own initialisation) attached to the
    /// projections their module paths name; a path that names no projection is refused.
    pub fn attach(mut decoder: Decoder, adapters: Adapters) -> Result<Self> {
        for (path, a) in &adapters.modules {
            let slot = (0..decoder.layers.len())
                .flat_map(|l| (0..PROJECTIONS.len()).map(move |w| (l, w)))
                .find(|&(l, w)| module_path(l, w) == *path);
            let Some((layer, which)) = slot else {
                return Err(TrainError::Config(format!("{path} is not a projection of this model")));
            };
            let lin = decoder.layers[layer].projection_mut(which);
            let (out_f, in_f) = lin.dims();
            if a.a.dims() != [a.a.dim(0)?, in_f] || a.b.dims() != [out_f, a.b.dim(1)?] {
                return Err(TrainError::Config(format!(
                    "{path}: adapter shapes A {:?} B {:?} do not fit a [{out_f}, {in_f}] projection",
                    a.a.dims(),
                    a.b.dims()
                )));
            }
            lin.adapter = Some(a.clone());
        }
        Ok(Self { decoder, adapters })
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

    /// The decoder with every adapter merged into its weights (`W + scaling·B·A`) and removed:
    /// identical outputs without dropout, and generation at the base model's speed.
    pub fn merged(&self) -> Result<Decoder> {
        let mut d = self.decoder.clone(); // tensors are reference-counted: a cheap copy
        for l in &mut d.layers {
            for which in 0..PROJECTIONS.len() {
                let lin = l.projection_mut(which);
                *lin = lin.merged()?;
            }
        }
        Ok(d)
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

fn candle_err(e: crate::error::Error) -> candle_core::Error {
    match e {
        crate::error::Error::Tensor(e) => e,
        other => candle_core::Error::Msg(other.to_string()),
    }
}

impl LayeredModel for LoraModel {
    fn num_layers(&self) -> usize {
        self.decoder.layers.len()
    }

    fn embed(&self, ids: &Tensor) -> candle_core::Result<Tensor> {
        self.decoder.embed(ids).map_err(candle_err)
    }

    fn layer(&self, i: usize, hidden: &Tensor) -> candle_core::Result<Tensor> {
        self.decoder.layer_forward(i, hidden).map_err(candle_err)
    }

    fn final_norm(&self, hidden: &Tensor) -> candle_core::Result<Tensor> {
        self.decoder.final_norm(hidden).map_err(candle_err)
    }
}

impl TrainableModel for LoraModel {
    fn hidden_states(&self, ids: &Tensor) -> candle_core::Result<Tensor> {
        self.decoder.forward_hidden(ids, None).map_err(candle_err)
    }

    fn lm_head_weight(&self) -> &Tensor {
        self.decoder.lm_head.dense_ref().expect("the LM head dequantises")
    }

    fn lm_head(&self) -> &dyn HeadWeight {
        &self.decoder.lm_head
    }

    fn final_logit_softcap(&self) -> Option<f64> {
        self.decoder.cfg.final_logit_softcapping
    }

    fn device(&self) -> &Device {
        self.decoder.device()
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
