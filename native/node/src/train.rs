//! LoRA training and adapters for Node: converts types and errors only (the work is
//! `tunekit_core::train::session`).
//!
//! - `train(modelPath, sequences, validation, options, cancel, onEvent)` starts training on
//!   its own thread and returns at once. Events arrive in order: `started`, then per optimiser
//!   step a `step` (with `evalLoss` when evaluated), a `checkpoint` once a checkpoint directory
//!   is complete, and exactly one final `done` or `error`. Cancel (`cancel.cancel()`) is checked
//!   before every micro-batch; a cancelled run ends with `done` + `cancelled: true` and keeps its
//!   last checkpoint. `options.resume` continues from the latest checkpoint in `outputDir`.
//!   `trainModel(model, …)` is the same on a model loaded with `loadModel` (weights shared).
//! - `loadModelWithAdapter(modelPath, adapterDir)` loads a base model with a PEFT adapter merged
//!   in, as an ordinary `NativeModel` for tokenize/logits/generate.

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use napi::bindgen_prelude::*;
use napi::threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode};
use napi_derive::napi;
use tunekit_core::train::batching::Example;
use tunekit_core::train::lora::{LoraConfig, DEFAULT_TARGET_MODULES};
use tunekit_core::train::optim::AdamWConfig;
use tunekit_core::train::schedule::{ScheduleKind, Warmup};
use tunekit_core::train::session::{self, LoraModel, SessionConfig};
use tunekit_core::train::trainer::TrainConfig;
use tunekit_core::train::{peft, TrainError};
use tunekit_core::{Error as CoreError, Model};

use crate::{guarded, throw, to_js_error, CancelToken, ErrorInfo, NativeErrorInfo, NativeModel, StdResult};

/// One tokenized example: `labels` is `-100` where the token is not learned.
#[napi(object)]
pub struct NativeTrainSequence {
    pub input_ids: Vec<u32>,
    pub labels: Vec<i32>,
}

/// Training settings; every field has the core's default (`TrainConfig`, `LoraConfig`).
#[napi(object)]
pub struct NativeTrainOptions {
    pub output_dir: String,
    pub epochs: Option<u32>,
    pub max_steps: Option<u32>,
    pub batch_size: Option<u32>,
    pub gradient_accumulation_steps: Option<u32>,
    pub learning_rate: Option<f64>,
    #[napi(ts_type = "'linear' | 'cosine' | 'constant'")]
    pub schedule: Option<String>,
    pub warmup_steps: Option<u32>,
    pub warmup_ratio: Option<f64>,
    pub max_grad_norm: Option<f64>,
    pub weight_decay: Option<f64>,
    /// A non-negative integer below 2^53 (validated on the JS side).
    pub seed: Option<f64>,
    pub group_by_length: Option<bool>,
    pub save_steps: Option<u32>,
    pub eval_steps: Option<u32>,
    /// Written as `base_model_name_or_path` in `adapter_config.json`.
    pub base_model: Option<String>,
    pub gradient_checkpointing: Option<bool>,
    pub resume: Option<bool>,
    pub pad_token_id: Option<u32>,
    pub lora_rank: Option<u32>,
    pub lora_alpha: Option<f64>,
    pub lora_dropout: Option<f64>,
    pub target_modules: Option<Vec<String>>,
    pub use_rs_lora: Option<bool>,
    /// Refuse to start when the memory estimate exceeds available memory. Default true.
    pub check_memory: Option<bool>,
    /// Stop after this many evaluations without improvement of the validation loss.
    pub early_stopping_patience: Option<u32>,
    /// Smallest decrease of the validation loss that counts as an improvement. Default 0.
    pub early_stopping_threshold: Option<f64>,
    /// End with the adapter of the evaluation with the lowest validation loss. Default false.
    pub load_best_at_end: Option<bool>,
    /// How to hold the base's weight matrices when training from a path (see `loadModel`).
    #[napi(ts_type = "'stored' | 'f32' | 'q8_0' | 'q4_k' | 'bf16'")]
    pub base_weights: Option<String>,
}

/// One training event (see the module docs for the order).
#[napi(object)]
pub struct NativeTrainEvent {
    #[napi(ts_type = "'started' | 'step' | 'checkpoint' | 'done' | 'error'")]
    pub kind: String,
    pub step: Option<u32>,
    pub total_steps: Option<u32>,
    /// Fractional epochs completed.
    pub epoch: Option<f64>,
    pub loss: Option<f64>,
    pub eval_loss: Option<f64>,
    pub learning_rate: Option<f64>,
    pub grad_norm: Option<f64>,
    pub tokens_per_second: Option<f64>,
    pub elapsed_ms: Option<f64>,
    pub peak_rss_bytes: Option<f64>,
    /// `checkpoint`: the directory; `done`: the final adapter directory (absent when cancelled);
    /// `started`: the checkpoint a resumed run continues from.
    pub path: Option<String>,
    pub last_checkpoint: Option<String>,
    pub cancelled: Option<bool>,
    /// `started`: the step a resumed run continues from (0 for a fresh run).
    pub resumed_from_step: Option<u32>,
    /// `done`: early stopping ended the run before its last step.
    pub stopped_early: Option<bool>,
    /// `done`: step and validation loss of the best evaluation.
    pub best_step: Option<u32>,
    pub best_eval_loss: Option<f64>,
    /// `done`: the adapter holds the weights of `bestStep` (`loadBestAtEnd`).
    pub restored_best: Option<bool>,
    pub error: Option<NativeErrorInfo>,
}

fn event(kind: &str) -> NativeTrainEvent {
    NativeTrainEvent {
        kind: kind.into(),
        step: None,
        total_steps: None,
        epoch: None,
        loss: None,
        eval_loss: None,
        learning_rate: None,
        grad_norm: None,
        tokens_per_second: None,
        elapsed_ms: None,
        peak_rss_bytes: None,
        path: None,
        last_checkpoint: None,
        cancelled: None,
        resumed_from_step: None,
        stopped_early: None,
        best_step: None,
        best_eval_loss: None,
        restored_best: None,
        error: None,
    }
}

/// Bounded queue + blocking calls = backpressure: the training thread runs at most this many
/// events ahead of the JS thread, so a cancel issued while JS handles step n stops training a
/// few steps later at most, even for a model that trains faster than JS consumes events.
const EVENT_QUEUE: usize = 8;
type TrainSink =
    ThreadsafeFunction<NativeTrainEvent, (), NativeTrainEvent, Status, false, false, EVENT_QUEUE>;

/// Training errors keep the core's stable codes: bad settings are `invalid_option`, bad or
/// unsupported adapter files `model_load` (kind `unsupported_adapter` for adapters tunekit
/// cannot apply exactly as PEFT does), everything else that fails while training is
/// `local_training`.
fn train_error(e: TrainError) -> CoreErrorOrTrain {
    CoreErrorOrTrain::Train(e)
}

enum CoreErrorOrTrain {
    Core(CoreError),
    Train(TrainError),
}

impl From<CoreError> for CoreErrorOrTrain {
    fn from(e: CoreError) -> Self {
        Self::Core(e)
    }
}

impl From<TrainError> for CoreErrorOrTrain {
    fn from(e: TrainError) -> Self {
        Self::Train(e)
    }
}

fn info_of(e: CoreErrorOrTrain) -> ErrorInfo {
    match e {
        CoreErrorOrTrain::Core(e) => ErrorInfo::from(e),
        CoreErrorOrTrain::Train(e) => {
            let code = match &e {
                TrainError::Config(_) | TrainError::Memory(_) => "invalid_option",
                TrainError::BadFile { .. } | TrainError::Json { .. } | TrainError::UnsupportedAdapter(_) => {
                    "model_load"
                }
                _ => "local_training",
            };
            let message = match &e {
                TrainError::Config(m) => format!("invalid option training: {m}"),
                TrainError::Memory(m) => format!("invalid option training: {m}"),
                other => other.to_string(),
            };
            let kind = matches!(e, TrainError::UnsupportedAdapter(_)).then_some("unsupported_adapter");
            ErrorInfo { code, message, kind }
        }
    }
}

/// Like `guarded`, for work that can fail with either a core or a training error.
fn guarded_train<T>(work: impl FnOnce() -> StdResult<T, CoreErrorOrTrain>) -> StdResult<T, ErrorInfo> {
    let mut failure: Option<ErrorInfo> = None;
    let out = guarded(|| match work() {
        Ok(v) => Ok(Some(v)),
        Err(e) => {
            failure = Some(info_of(e));
            Ok(None)
        }
    });
    match (out, failure) {
        (Ok(Some(v)), _) => Ok(v),
        (Err(info), _) | (Ok(None), Some(info)) => Err(info),
        (Ok(None), None) => unreachable!("a failure is recorded"),
    }
}

fn configs(o: &NativeTrainOptions) -> StdResult<SessionConfig, CoreErrorOrTrain> {
    let d = TrainConfig::default();
    let l = LoraConfig::default();
    let schedule = match &o.schedule {
        Some(s) => s.parse::<ScheduleKind>().map_err(train_error)?,
        None => d.schedule,
    };
    let warmup = match (o.warmup_steps, o.warmup_ratio) {
        (Some(n), _) => Warmup::Steps(n as u64),
        (None, Some(r)) => Warmup::Ratio(r),
        (None, None) => d.warmup,
    };
    let train = TrainConfig {
        epochs: o.epochs.map_or(d.epochs, u64::from),
        max_steps: o.max_steps.map(u64::from),
        batch_size: o.batch_size.map_or(d.batch_size, |n| n as usize),
        grad_accum: o.gradient_accumulation_steps.map_or(d.grad_accum, |n| n as usize),
        learning_rate: o.learning_rate.unwrap_or(d.learning_rate),
        schedule,
        warmup,
        max_grad_norm: o.max_grad_norm.unwrap_or(d.max_grad_norm),
        adamw: AdamWConfig { weight_decay: o.weight_decay.unwrap_or(d.adamw.weight_decay), ..d.adamw },
        seed: o.seed.map_or(d.seed, |s| s as u64),
        group_by_length: o.group_by_length.unwrap_or(d.group_by_length),
        pad_id: o.pad_token_id.unwrap_or(d.pad_id),
        lm_head_chunk: d.lm_head_chunk,
        output_dir: Some(PathBuf::from(&o.output_dir)),
        save_steps: o.save_steps.map(u64::from),
        eval_steps: o.eval_steps.map(u64::from),
        base_model: o.base_model.clone(),
        gradient_checkpointing: o.gradient_checkpointing.unwrap_or(false),
        resume: o.resume.unwrap_or(false),
        early_stopping_patience: o.early_stopping_patience.map(u64::from),
        early_stopping_threshold: o.early_stopping_threshold.unwrap_or(d.early_stopping_threshold),
        load_best_at_end: o.load_best_at_end.unwrap_or(d.load_best_at_end),
    };
    let lora = LoraConfig {
        r: o.lora_rank.map_or(l.r, |r| r as usize),
        alpha: o.lora_alpha.unwrap_or(l.alpha),
        dropout: o.lora_dropout.unwrap_or(l.dropout),
        use_rslora: o.use_rs_lora.unwrap_or(l.use_rslora),
        target_modules: o
            .target_modules
            .clone()
            .unwrap_or_else(|| DEFAULT_TARGET_MODULES.iter().map(|s| s.to_string()).collect()),
    };
    if train.batch_size == 0 || train.grad_accum == 0 || train.epochs == 0 {
        return Err(TrainError::Config(
            "epochs, batchSize and gradientAccumulationSteps must be at least 1".into(),
        )
        .into());
    }
    if !(train.learning_rate.is_finite() && train.learning_rate > 0.0) {
        return Err(
            TrainError::Config(format!("learningRate must be > 0, got {}", train.learning_rate)).into()
        );
    }
    Ok(SessionConfig { lora, train, check_memory: o.check_memory.unwrap_or(true) })
}

fn examples(seqs: Vec<NativeTrainSequence>) -> Vec<Example> {
    seqs.into_iter()
        .map(|s| Example { input_ids: s.input_ids, labels: s.labels.into_iter().map(i64::from).collect() })
        .collect()
}

fn error_event(info: ErrorInfo) -> NativeTrainEvent {
    let mut e = event("error");
    e.error = Some(NativeErrorInfo {
        code: info.code.into(),
        message: info.message,
        kind: info.kind.map(Into::into),
    });
    e
}

/// Where the base model comes from: a directory to load, or a model already loaded for JS
/// (its weights are shared, not copied).
enum Source {
    Path(String),
    Loaded(Arc<Model>),
}

/// Starts LoRA training of the model in `model_path` on its own thread and returns at once.
#[napi(catch_unwind)]
pub fn train(
    env: Env,
    model_path: String,
    sequences: Vec<NativeTrainSequence>,
    validation: Option<Vec<NativeTrainSequence>>,
    options: NativeTrainOptions,
    cancel: &CancelToken,
    #[napi(ts_arg_type = "(event: NativeTrainEvent) => void")] on_event: TrainSink,
) -> napi::Result<()> {
    start(env, Source::Path(model_path), sequences, validation, options, cancel, on_event)
}

/// Like `train`, on a model already loaded with `loadModel` (no second load, shared weights).
#[napi(catch_unwind)]
pub fn train_model(
    env: Env,
    model: &NativeModel,
    sequences: Vec<NativeTrainSequence>,
    validation: Option<Vec<NativeTrainSequence>>,
    options: NativeTrainOptions,
    cancel: &CancelToken,
    #[napi(ts_arg_type = "(event: NativeTrainEvent) => void")] on_event: TrainSink,
) -> napi::Result<()> {
    start(env, Source::Loaded(model.model()?), sequences, validation, options, cancel, on_event)
}

fn start(
    env: Env,
    source: Source,
    sequences: Vec<NativeTrainSequence>,
    validation: Option<Vec<NativeTrainSequence>>,
    options: NativeTrainOptions,
    cancel: &CancelToken,
    on_event: TrainSink,
) -> napi::Result<()> {
    let flag = cancel.flag.clone();
    let train_set = examples(sequences);
    let valid_set = examples(validation.unwrap_or_default());
    let spawned = std::thread::Builder::new().name("tunekit-train".into()).spawn(move || {
        let sink = &on_event;
        let emit = |e: NativeTrainEvent| {
            sink.call(e, ThreadsafeFunctionCallMode::Blocking);
        };
        let outcome = guarded_train(|| {
            let cfg = configs(&options)?;
            let decoder = match source {
                Source::Path(path) => {
                    Model::load_as(&path, crate::base_format(options.base_weights.as_deref())?)?.decoder
                }
                Source::Loaded(model) => model.decoder.clone(), // reference-counted tensors
            };
            let resumed = if cfg.train.resume {
                tunekit_core::train::checkpoint::remove_stale_temp(cfg.train.output_dir.as_deref().unwrap())?;
                tunekit_core::train::checkpoint::latest(
                    cfg.train.output_dir.as_deref().unwrap(),
                    decoder.device(),
                )?
                .map(|c| (c.state.global_step, c.dir))
            } else {
                None
            };
            let mut started = event("started");
            started.total_steps =
                Some(tunekit_core::train::trainer::total_steps(train_set.len(), &cfg.train) as u32);
            started.resumed_from_step = Some(resumed.as_ref().map_or(0, |(step, _)| *step as u32));
            // The checkpoint the run continues from, so the run record can describe it.
            started.path = resumed.map(|(_, dir)| dir.to_string_lossy().into_owned());
            emit(started);
            let result = session::run(
                decoder,
                &train_set,
                &valid_set,
                &cfg,
                &mut |r| {
                    let mut e = event("step");
                    e.step = Some(r.step as u32);
                    e.total_steps = Some(r.total_steps as u32);
                    e.epoch = Some(r.epoch);
                    e.loss = Some(r.loss);
                    e.eval_loss = r.eval_loss;
                    e.learning_rate = Some(r.learning_rate);
                    e.grad_norm = Some(r.grad_norm);
                    e.tokens_per_second = Some(r.tokens_per_sec);
                    e.elapsed_ms = Some(r.elapsed_s * 1000.0);
                    e.peak_rss_bytes = r.peak_rss_bytes.map(|b| b as f64);
                    emit(e);
                },
                &mut |dir| {
                    let mut e = event("checkpoint");
                    e.path = Some(dir.to_string_lossy().into_owned());
                    emit(e);
                },
                &|| flag.load(Ordering::Relaxed),
            )?;
            Ok(result)
        });
        let last = match outcome {
            Ok(r) => {
                let mut e = event("done");
                e.step = Some(r.outcome.state.global_step as u32);
                e.total_steps = Some(r.outcome.state.max_steps as u32);
                e.epoch = Some(r.outcome.state.epoch);
                e.cancelled = Some(r.outcome.cancelled);
                e.path = r.adapter_dir.map(|p| p.to_string_lossy().into_owned());
                e.last_checkpoint = r.outcome.last_checkpoint.map(|p| p.to_string_lossy().into_owned());
                e.stopped_early = Some(r.outcome.stopped_early);
                e.best_step = r.outcome.best.map(|(step, _)| step as u32);
                e.best_eval_loss = r.outcome.best.map(|(_, loss)| loss);
                e.restored_best = Some(r.outcome.restored_best);
                e
            }
            Err(info) => error_event(info),
        };
        emit(last);
    });
    if let Err(e) = spawned {
        let info = ErrorInfo {
            code: "internal",
            message: format!("could not start a training thread: {e}"),
            kind: None,
        };
        return Err(to_js_error(&env, &info));
    }
    Ok(())
}

pub struct AdapterLoadTask {
    model_path: String,
    adapter_dir: String,
}

impl Task for AdapterLoadTask {
    type Output = StdResult<Model, ErrorInfo>;
    type JsValue = NativeModel;

    fn compute(&mut self) -> napi::Result<Self::Output> {
        let (model_path, adapter_dir) = (self.model_path.clone(), self.adapter_dir.clone());
        Ok(guarded_train(move || {
            let model = Model::load(&model_path)?;
            let adapter = peft::load(std::path::Path::new(&adapter_dir), model.decoder.device())?;
            let merged = LoraModel::from_peft(model.decoder.clone(), &adapter)?.merged()?;
            Ok(Model { decoder: merged, ..model })
        }))
    }

    fn resolve(&mut self, env: Env, output: Self::Output) -> napi::Result<NativeModel> {
        throw(&env, output).map(NativeModel::new)
    }
}

/// Loads `model_path` with the PEFT adapter in `adapter_dir` merged into its weights, off the
/// JS thread. The result is an ordinary model (tokenize, logits, generate).
#[napi(ts_return_type = "Promise<NativeModel>")]
pub fn load_model_with_adapter(model_path: String, adapter_dir: String) -> AsyncTask<AdapterLoadTask> {
    AsyncTask::new(AdapterLoadTask { model_path, adapter_dir })
}
