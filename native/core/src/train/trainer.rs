//! The training loop: short on purpose (compare mlx-lm's `tuner/trainer.py`).
//!
//! One optimiser step = one accumulation window of `grad_accum` micro-batches:
//! forward → chunked LM-head loss (divided by the window's scored-token count) → backward,
//! gradients summed over the window → global-norm clip → AdamW with the scheduled rate.
//! Cancel is checked before every micro-batch; a cancelled window is discarded, so the state
//! is always the one after the last completed step, and that state is saved as a checkpoint
//! (atomically, like every other) before the trainer returns.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use candle_core::{Device, Tensor, Var};

use super::batching::{epoch_batches, Batch, BatchPlan, Example};
use super::checkpoint::{self, DataFingerprint, DataPosition, LogEntry, RunFingerprint, TrainerState};
use super::early_stop::{BestWeights, EarlyStopping};
use super::lora::{LoraAdapter, LoraConfig, LoraShared};
use super::loss::{lm_head_loss_capped, shifted_targets, HeadWeight};
use super::optim::{clip_grad_norm, AdamW, AdamWConfig};
use super::peft::{AdapterWeights, PeftAdapter};
use super::schedule::{Schedule, ScheduleKind, Warmup};
use super::{Result, TrainError};

/// What the trainer needs from a model whose projections carry LoRA adapters.
pub trait TrainableModel {
    /// Final hidden states `[b, s, hidden]` (after the last norm) for token ids `[b, s]`,
    /// differentiable with respect to every adapter's `A` and `B`.
    fn hidden_states(&self, ids: &Tensor) -> candle_core::Result<Tensor>;
    /// The output projection `[vocab, hidden]` (the embedding when tied) as an f32 tensor.
    fn lm_head_weight(&self) -> &Tensor;
    /// The output projection as the loss uses it (a stored, compact one is multiplied in its
    /// stored form); by default [`Self::lm_head_weight`].
    fn lm_head(&self) -> &dyn HeadWeight {
        self.lm_head_weight()
    }
    /// `cap` of `logits = cap · tanh(logits / cap)` (Gemma's `final_logit_softcapping`).
    fn final_logit_softcap(&self) -> Option<f64> {
        None
    }
    fn device(&self) -> &Device;
    /// Per-layer access, needed for gradient checkpointing; `None` when not available.
    fn layered(&self) -> Option<&dyn LayeredModel> {
        None
    }
}

/// A model seen as `final_norm(layer_{L-1}(… layer_0(embed(ids))))`, so the trainer can keep
/// only each layer's input during the forward pass and recompute one layer at a time during
/// the backward pass (gradient checkpointing, NATIVE-STACK-FACTS R5): activation memory is
/// `L` hidden states plus one layer's internals instead of every layer's internals.
pub trait LayeredModel {
    fn num_layers(&self) -> usize;
    /// `[b, s, hidden]`, not trainable.
    fn embed(&self, ids: &Tensor) -> candle_core::Result<Tensor>;
    /// Layer `i` for a full sequence starting at position 0.
    fn layer(&self, i: usize, hidden: &Tensor) -> candle_core::Result<Tensor>;
    fn final_norm(&self, hidden: &Tensor) -> candle_core::Result<Tensor>;
}

/// The adapters of one model, in a fixed order (the optimiser's parameter order).
pub struct Adapters {
    pub config: LoraConfig,
    pub shared: Arc<LoraShared>,
    /// `(module path, adapter)`, e.g. `("model.layers.0.self_attn.q_proj", ..)`.
    pub modules: Vec<(String, Arc<LoraAdapter>)>,
}

impl Adapters {
    pub fn vars(&self) -> Vec<Var> {
        self.modules.iter().flat_map(|(_, a)| a.vars().map(|v| v.clone())).collect()
    }

    pub fn to_peft(&self, base_model: Option<&str>) -> PeftAdapter {
        let modules = self
            .modules
            .iter()
            .map(|(p, a)| {
                (p.clone(), AdapterWeights { a: a.a.as_tensor().clone(), b: a.b.as_tensor().clone() })
            })
            .collect::<BTreeMap<_, _>>();
        PeftAdapter {
            config: self.config.clone(),
            base_model_name_or_path: base_model.map(String::from),
            modules,
            targeting: None,
        }
    }

    /// Overwrites the weights with those of `adapter` (every module must be present).
    pub fn load_weights(&self, adapter: &PeftAdapter) -> Result<()> {
        for (path, a) in &self.modules {
            let w = adapter
                .modules
                .get(path)
                .ok_or_else(|| TrainError::Config(format!("the adapter has no weights for {path}")))?;
            if w.a.dims() != a.a.dims() || w.b.dims() != a.b.dims() {
                return Err(TrainError::Config(format!(
                    "{path}: adapter shapes A {:?} B {:?}, model expects A {:?} B {:?}",
                    w.a.dims(),
                    w.b.dims(),
                    a.a.dims(),
                    a.b.dims()
                )));
            }
            a.a.set(&w.a.to_device(a.a.device())?)?;
            a.b.set(&w.b.to_device(a.b.device())?)?;
        }
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct TrainConfig {
    pub epochs: u64,
    /// Overrides `epochs` when set.
    pub max_steps: Option<u64>,
    pub batch_size: usize,
    pub grad_accum: usize,
    pub learning_rate: f64,
    pub schedule: ScheduleKind,
    pub warmup: Warmup,
    /// Global-norm clip; 0 disables.
    pub max_grad_norm: f64,
    pub adamw: AdamWConfig,
    pub seed: u64,
    pub group_by_length: bool,
    pub pad_id: u32,
    /// Rows per LM-head chunk in the loss.
    pub lm_head_chunk: usize,
    pub output_dir: Option<PathBuf>,
    pub save_steps: Option<u64>,
    pub eval_steps: Option<u64>,
    pub base_model: Option<String>,
    /// Recompute each layer in the backward pass instead of keeping its activations.
    pub gradient_checkpointing: bool,
    /// Continue from the latest complete checkpoint in `output_dir`, if there is one.
    pub resume: bool,
    /// Stop once this many evaluations in a row have not improved the validation loss by more
    /// than `early_stopping_threshold` (needs a validation set).
    pub early_stopping_patience: Option<u64>,
    pub early_stopping_threshold: f64,
    /// End with the adapter weights of the evaluation with the lowest validation loss.
    pub load_best_at_end: bool,
}

impl Default for TrainConfig {
    /// HF Trainer defaults where they exist (AdamW 0.9/0.999/1e-8, wd 0, clip 1.0, linear, no
    /// warmup), the seed recipe's epochs (3) and learning rate (1e-4).
    fn default() -> Self {
        Self {
            epochs: 3,
            max_steps: None,
            batch_size: 4,
            grad_accum: 1,
            learning_rate: 1e-4,
            schedule: ScheduleKind::Linear,
            warmup: Warmup::Steps(0),
            max_grad_norm: 1.0,
            adamw: AdamWConfig::default(),
            seed: 42,
            group_by_length: false,
            pad_id: 0,
            lm_head_chunk: 256,
            output_dir: None,
            save_steps: None,
            eval_steps: None,
            base_model: None,
            gradient_checkpointing: false,
            resume: false,
            early_stopping_patience: None,
            early_stopping_threshold: 0.0,
            load_best_at_end: false,
        }
    }
}

/// Reported after every optimiser step.
#[derive(Debug, Clone, PartialEq)]
pub struct StepReport {
    pub step: u64,
    pub total_steps: u64,
    pub epoch: f64,
    pub loss: f64,
    pub learning_rate: f64,
    pub grad_norm: f64,
    pub tokens_per_sec: f64,
    pub elapsed_s: f64,
    pub peak_rss_bytes: Option<u64>,
    pub eval_loss: Option<f64>,
}

#[derive(Debug)]
pub struct TrainOutcome {
    pub state: TrainerState,
    pub cancelled: bool,
    pub last_checkpoint: Option<PathBuf>,
    /// Early stopping ended the run before its last step.
    pub stopped_early: bool,
    /// Step and validation loss of the best evaluation (tracked from this segment's start).
    pub best: Option<(u64, f64)>,
    /// The adapters hold the weights of `best` (`load_best_at_end`), not the last step's.
    pub restored_best: bool,
}

/// Peak resident set size of this process (Linux `VmHWM`), if known.
pub fn peak_rss_bytes() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with("VmHWM:"))?;
    Some(line.split_whitespace().nth(1)?.parse::<u64>().ok()? * 1024)
}

fn steps_per_epoch(n_examples: usize, cfg: &TrainConfig) -> u64 {
    let batches = n_examples.div_ceil(cfg.batch_size.max(1)) as u64;
    batches.div_ceil(cfg.grad_accum.max(1) as u64).max(1)
}

pub fn total_steps(n_examples: usize, cfg: &TrainConfig) -> u64 {
    cfg.max_steps.unwrap_or(cfg.epochs * steps_per_epoch(n_examples, cfg))
}

/// `Σ CE / scored tokens` of `examples` with dropout off.
pub fn evaluate(
    model: &dyn TrainableModel,
    adapters: &Adapters,
    examples: &[Example],
    cfg: &TrainConfig,
) -> Result<f64> {
    let was = adapters.shared.training();
    adapters.shared.set_training(false);
    let grad_was = adapters.shared.set_grad_enabled(false);
    let result = (|| -> Result<f64> {
        let (mut sum, mut count) = (0f64, 0usize);
        for chunk in examples.chunks(cfg.batch_size.max(1)) {
            let batch = Batch::collate(&chunk.iter().collect::<Vec<_>>(), cfg.pad_id);
            let (pos, tgt) = shifted_targets(&batch.labels);
            let hidden = model.hidden_states(&batch.ids_tensor(model.device())?)?;
            let out = lm_head_loss_capped(
                &hidden,
                &pos,
                &tgt,
                model.lm_head(),
                model.final_logit_softcap(),
                1.0,
                cfg.lm_head_chunk,
                false,
            )?;
            sum += out.sum;
            count += out.count;
        }
        Ok(sum / count.max(1) as f64)
    })();
    adapters.shared.set_training(was);
    adapters.shared.set_grad_enabled(grad_was);
    result
}

/// Gradients (in `adapters.vars()` order) and loss of one accumulation window.
/// Returns `None` when `cancel` fired before a micro-batch.
pub fn window_gradients(
    model: &dyn TrainableModel,
    adapters: &Adapters,
    vars: &[Var],
    batches: &[Batch],
    cfg: &TrainConfig,
    first_micro_step: u64,
    cancel: &dyn Fn() -> bool,
) -> Result<Option<(Vec<Tensor>, f64)>> {
    let was = adapters.shared.set_grad_enabled(true);
    let out = window_gradients_inner(model, adapters, vars, batches, cfg, first_micro_step, cancel);
    adapters.shared.set_grad_enabled(was);
    out
}

fn window_gradients_inner(
    model: &dyn TrainableModel,
    adapters: &Adapters,
    vars: &[Var],
    batches: &[Batch],
    cfg: &TrainConfig,
    first_micro_step: u64,
    cancel: &dyn Fn() -> bool,
) -> Result<Option<(Vec<Tensor>, f64)>> {
    let denom = batches.iter().map(Batch::scored_tokens).sum::<usize>().max(1) as f64;
    let mut grads: Vec<Tensor> =
        vars.iter().map(|v| v.as_tensor().zeros_like()).collect::<candle_core::Result<_>>()?;
    let mut loss = 0f64;
    for (i, batch) in batches.iter().enumerate() {
        if cancel() {
            return Ok(None);
        }
        adapters.shared.set_micro_step(first_micro_step + i as u64);
        let ids = batch.ids_tensor(model.device())?;
        let (pos, tgt) = shifted_targets(&batch.labels);
        let cap = model.final_logit_softcap();
        let head = |hidden: &Tensor| {
            lm_head_loss_capped(hidden, &pos, &tgt, model.lm_head(), cap, denom, cfg.lm_head_chunk, true)
        };
        let sum = match (cfg.gradient_checkpointing, model.layered()) {
            (false, _) => {
                let out = head(&model.hidden_states(&ids)?)?;
                add_grads(&mut grads, vars, &out.loss.backward()?)?;
                out.sum
            }
            (true, Some(layered)) => checkpointed_backward(layered, &ids, &head, &mut grads, vars)?,
            (true, None) => {
                return Err(TrainError::Config("this model does not support gradient checkpointing".into()))
            }
        };
        loss += sum / denom;
    }
    Ok(Some((grads, loss)))
}

fn add_grads(grads: &mut [Tensor], vars: &[Var], store: &candle_core::backprop::GradStore) -> Result<()> {
    for (g, v) in grads.iter_mut().zip(vars) {
        if let Some(gv) = store.get(v) {
            *g = (&*g + gv)?;
        }
    }
    Ok(())
}

/// Forward without a graph keeping only layer inputs, then backward one layer at a time:
/// recompute layer `i` from its saved input (as a fresh leaf) and backpropagate
/// `Σ layer_i(x) ⊙ stop_grad(∂L/∂out_i)`, which yields the LoRA gradients of that layer and
/// `∂L/∂x` for the layer below. Dropout masks depend only on the micro-step, so the recompute
/// sees the same masks. Returns the summed token loss.
fn checkpointed_backward(
    model: &dyn LayeredModel,
    ids: &Tensor,
    head: &dyn Fn(&Tensor) -> candle_core::Result<super::loss::LossOutput>,
    grads: &mut [Tensor],
    vars: &[Var],
) -> Result<f64> {
    let mut inputs = Vec::with_capacity(model.num_layers());
    let mut h = model.embed(ids)?.detach();
    for i in 0..model.num_layers() {
        let next = model.layer(i, &h)?.detach();
        inputs.push(h);
        h = next;
    }
    let top = Var::from_tensor(&h)?;
    let out = head(&model.final_norm(top.as_tensor())?)?;
    let store = out.loss.backward()?;
    add_grads(grads, vars, &store)?;
    let Some(mut upstream) = store.get(&top).cloned() else { return Ok(out.sum) }; // nothing scored
    for i in (0..model.num_layers()).rev() {
        let x = Var::from_tensor(&inputs[i])?;
        let y = model.layer(i, x.as_tensor())?;
        let store = (y * upstream.detach())?.sum_all()?.backward()?;
        add_grads(grads, vars, &store)?;
        if i > 0 {
            upstream = store.get(&x).cloned().unwrap_or(upstream.zeros_like()?);
        }
    }
    Ok(out.sum)
}

/// The step of a `checkpoint-<step>` directory.
fn checkpoint_step(dir: &std::path::Path) -> Option<u64> {
    dir.file_name()?.to_str()?.strip_prefix("checkpoint-")?.parse().ok()
}

/// Trains `adapters` on `train`; resumes from the latest checkpoint in `cfg.output_dir` when
/// `cfg.resume` is set and one exists. `valid` (may be empty) is evaluated every
/// `cfg.eval_steps` and at the end.
pub fn train(
    model: &dyn TrainableModel,
    adapters: &Adapters,
    train: &[Example],
    valid: &[Example],
    cfg: &TrainConfig,
    on_step: &mut dyn FnMut(&StepReport),
    cancel: &dyn Fn() -> bool,
) -> Result<TrainOutcome> {
    if train.is_empty() {
        return Err(TrainError::Config("the training set is empty".into()));
    }
    adapters.config.validate()?;
    if cfg.early_stopping_patience == Some(0) {
        return Err(TrainError::Config("earlyStoppingPatience must be at least 1".into()));
    }
    if (cfg.early_stopping_patience.is_some() || cfg.load_best_at_end)
        && (valid.is_empty() || cfg.eval_steps.is_none())
    {
        return Err(TrainError::Config(
            "early stopping and keeping the best checkpoint need a validation set and evalSteps".into(),
        ));
    }
    // Each step reuses the previous step's freed buffers instead of faulting in fresh pages.
    let _retain = super::alloc::RetainFreedMemory::new();
    let device = model.device().clone();
    let total = total_steps(train.len(), cfg);
    let per_epoch = steps_per_epoch(train.len(), cfg);
    let schedule = Schedule::new(cfg.schedule, cfg.learning_rate, cfg.warmup, total);
    let vars = adapters.vars();
    let mut opt = AdamW::new(vars.clone(), cfg.adamw)?;
    let fingerprint = DataFingerprint {
        examples: train.len(),
        batch_size: cfg.batch_size,
        grad_accum: cfg.grad_accum,
        group_by_length: cfg.group_by_length,
    };
    let run = RunFingerprint::of(train, cfg, &adapters.config);
    let mut state = TrainerState {
        data: Some(fingerprint),
        fingerprint: Some(run.clone()),
        ..TrainerState::new(cfg.seed, schedule)
    };
    let mut last_checkpoint = None;

    if let (true, Some(dir)) = (cfg.resume, &cfg.output_dir) {
        checkpoint::remove_stale_temp(dir)?;
        if let Some(c) = checkpoint::latest(dir, &device)? {
            // Resuming only reproduces the run if every step sees the same batches, rates and
            // data: the fingerprint says what differs; older checkpoints without one get the
            // coarser check of seed, schedule and data order.
            let why = match &c.state.fingerprint {
                Some(was) => was.mismatch(&run),
                None => (c.state.seed != cfg.seed
                    || c.state.schedule != schedule
                    || c.state.data.is_some_and(|d| d != fingerprint))
                .then(|| {
                    format!(
                        "it was written by a run with different settings (seed {}, {:?}, {:?}; now seed {}, {:?}, {:?})",
                        c.state.seed, c.state.schedule, c.state.data, cfg.seed, schedule, fingerprint
                    )
                }),
            };
            if let Some(why) = why {
                return Err(TrainError::Config(format!(
                    "cannot resume from {}: {why}; resume with the same data and settings, or start a new run \
                     in a new output directory",
                    c.dir.display()
                )));
            }
            adapters.load_weights(&c.adapter)?;
            opt.load_state_tensors(c.state.optimizer_step, &c.optimizer)?;
            state = c.state;
            last_checkpoint = Some(c.dir);
        }
    }

    let plan = BatchPlan { batch_size: cfg.batch_size, group_by_length: cfg.group_by_length, seed: cfg.seed };
    let lengths: Vec<usize> = train.iter().map(|e| e.input_ids.len()).collect();
    let start = Instant::now();
    let mut stopper =
        cfg.early_stopping_patience.map(|p| EarlyStopping::new(p, cfg.early_stopping_threshold));
    let mut best = BestWeights::default();
    let mut stopped_early = false;
    adapters.shared.set_seed(cfg.seed);
    adapters.shared.set_training(true);
    let result = (|| -> Result<bool> {
        while state.global_step < total {
            let t0 = Instant::now();
            let DataPosition { epoch, next_batch } = state.data_position;
            let order = epoch_batches(&lengths, &plan, epoch);
            let end = (next_batch as usize + cfg.grad_accum.max(1)).min(order.len());
            let batches: Vec<Batch> = order[next_batch as usize..end]
                .iter()
                .map(|idx| Batch::collate(&idx.iter().map(|&i| &train[i]).collect::<Vec<_>>(), cfg.pad_id))
                .collect();
            let Some((mut grads, loss)) =
                window_gradients(model, adapters, &vars, &batches, cfg, state.micro_step, cancel)?
            else {
                // The state is the one after the last completed step: keep it, so a cancel
                // (Ctrl-C) never loses the steps since the last periodic checkpoint.
                let saved_here =
                    last_checkpoint.as_ref().is_some_and(|d| checkpoint_step(d) == Some(state.global_step));
                if let (true, false, Some(dir)) = (state.global_step > 0, saved_here, &cfg.output_dir) {
                    let adapter = adapters.to_peft(cfg.base_model.as_deref());
                    last_checkpoint = Some(checkpoint::save(dir, &state, &adapter, &opt)?);
                }
                return Ok(true);
            };
            let grad_norm = clip_grad_norm(&mut grads, cfg.max_grad_norm)?;
            let lr = schedule.lr(state.global_step);
            opt.step(&grads, lr)?;

            state.global_step += 1;
            state.optimizer_step = opt.step;
            state.micro_step += batches.len() as u64;
            state.data_position = if end == order.len() {
                DataPosition { epoch: epoch + 1, next_batch: 0 }
            } else {
                DataPosition { epoch, next_batch: end as u64 }
            };
            state.epoch = state.global_step as f64 / per_epoch as f64;
            let eval_due = cfg.eval_steps.is_some_and(|n| state.global_step.is_multiple_of(n))
                || state.global_step == total;
            let eval_loss = if eval_due && !valid.is_empty() {
                Some(evaluate(model, adapters, valid, cfg)?)
            } else {
                None
            };
            let entry = LogEntry {
                step: state.global_step,
                epoch: state.epoch,
                loss,
                learning_rate: lr,
                grad_norm,
                eval_loss,
            };
            state.log_history.push(entry);
            let tokens: usize = batches.iter().map(Batch::tokens).sum();
            on_step(&StepReport {
                step: state.global_step,
                total_steps: total,
                epoch: state.epoch,
                loss,
                learning_rate: lr,
                grad_norm,
                tokens_per_sec: tokens as f64 / t0.elapsed().as_secs_f64().max(1e-9),
                elapsed_s: start.elapsed().as_secs_f64(),
                peak_rss_bytes: peak_rss_bytes(),
                eval_loss,
            });
            let save_due = cfg.save_steps.is_some_and(|n| state.global_step.is_multiple_of(n))
                || state.global_step == total;
            if let (true, Some(dir)) = (save_due, &cfg.output_dir) {
                let adapter = adapters.to_peft(cfg.base_model.as_deref());
                last_checkpoint = Some(checkpoint::save(dir, &state, &adapter, &opt)?);
            }
            if let Some(loss) = eval_loss {
                // Weights are copied only when they will be put back.
                best.observe(state.global_step, loss, if cfg.load_best_at_end { &vars } else { &[] })?;
                if stopper.as_mut().is_some_and(|s| s.observe(loss)) && state.global_step < total {
                    stopped_early = true;
                    break;
                }
            }
        }
        Ok(false)
    })();
    adapters.shared.set_training(false);
    let cancelled = result?;
    let restored_best =
        cfg.load_best_at_end && !cancelled && best.best().is_some_and(|(step, _)| step != state.global_step);
    if restored_best {
        best.restore(&vars)?;
    }
    Ok(TrainOutcome { state, cancelled, last_checkpoint, stopped_early, best: best.best(), restored_best })
}
