//! Node-API binding for `tunekit-core`. This crate only converts types and errors:
//! - every core error becomes a JS `Error` whose `code` is the core's stable code
//!   (`model_load`, `invalid_option`, `aborted`, `internal`) and whose `kind` is the finer
//!   load-failure kind when there is one;
//! - panics are caught (`catch_unwind`) and reported as `internal` errors, never unwound
//!   into Node;
//! - loading and the logits pass run on the libuv pool (`AsyncTask`); generation runs on
//!   its own thread and streams events through a thread-safe function, so the JS thread
//!   never waits on the model.
//!
//! The TypeScript wrapper in `src/local/` is the public API; nothing here is meant to be
//! called directly by users.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use napi::bindgen_prelude::*;
use napi::threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode};
use napi::JsError;
use napi_derive::napi;
use tunekit_core::{Error as CoreError, GenerateOptions, Model};

mod export;
mod train;

// `bindgen_prelude::*` brings napi's own `Result<T, S>` into scope; core results use std's.
type StdResult<T, E> = std::result::Result<T, E>;

/// A core error (or a caught panic) in plain data, movable across threads.
#[derive(Debug, Clone)]
pub struct ErrorInfo {
    code: &'static str,
    message: String,
    kind: Option<&'static str>,
}

impl From<CoreError> for ErrorInfo {
    fn from(e: CoreError) -> Self {
        Self { code: e.code(), message: e.to_string(), kind: e.load_kind().map(|k| k.as_str()) }
    }
}

fn panic_message(payload: Box<dyn std::any::Any + Send>) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into())
}

/// Runs core work, turning both its errors and any panic into an `ErrorInfo`.
fn guarded<T>(work: impl FnOnce() -> StdResult<T, CoreError>) -> StdResult<T, ErrorInfo> {
    match catch_unwind(AssertUnwindSafe(work)) {
        Ok(result) => result.map_err(ErrorInfo::from),
        Err(payload) => Err(ErrorInfo {
            code: "internal",
            message: format!(
                "tunekit native core panicked: {}; this is a bug, please report it",
                panic_message(payload)
            ),
            kind: None,
        }),
    }
}

/// Builds a JS Error carrying `code` (and `kind`), wrapped so napi throws/rejects with that
/// very object instead of one with a generic status code.
fn to_js_error(env: &Env, info: &ErrorInfo) -> napi::Error {
    let err = napi::Error::new(info.code.to_string(), info.message.clone());
    let value = JsError::from(err).into_unknown(*env);
    if let Some(kind) = info.kind {
        if let Ok(mut obj) = value.coerce_to_object() {
            let _ = obj.set_named_property("kind", kind);
        }
    }
    napi::Error::from(value)
}

fn throw<T>(env: &Env, result: StdResult<T, ErrorInfo>) -> napi::Result<T> {
    result.map_err(|info| to_js_error(env, &info))
}

/// Static facts about a loaded model, for `model.config` on the JS side.
#[napi(object)]
pub struct NativeModelConfig {
    pub model_type: String,
    pub hidden_size: u32,
    pub intermediate_size: u32,
    pub num_hidden_layers: u32,
    pub num_attention_heads: u32,
    pub num_key_value_heads: u32,
    pub head_dim: u32,
    pub vocab_size: u32,
    pub max_position_embeddings: u32,
    pub tie_word_embeddings: bool,
    pub rope_theta: f64,
    pub bos_token_id: Option<u32>,
    pub eos_token_ids: Vec<u32>,
    /// A GGUF base's `tokenizer.chat_template`; None for model directories.
    pub chat_template: Option<String>,
}

#[napi(object)]
pub struct NativeGenerateOptions {
    pub max_new_tokens: Option<u32>,
    pub temperature: Option<f64>,
    pub top_k: Option<u32>,
    pub top_p: Option<f64>,
    /// A non-negative integer below 2^53 (validated on the JS side).
    pub seed: Option<f64>,
    pub stop: Option<Vec<String>>,
    pub eos_token_ids: Option<Vec<u32>>,
}

#[napi(object)]
pub struct NativeGenerationResult {
    pub token_ids: Vec<u32>,
    pub text: String,
    #[napi(ts_type = "'eos' | 'stop' | 'length'")]
    pub finish_reason: String,
    pub prompt_tokens: u32,
}

#[napi(object)]
pub struct NativeErrorInfo {
    pub code: String,
    pub message: String,
    pub kind: Option<String>,
}

/// One event of a streamed generation, delivered in order: `token`* then exactly one of
/// `done` or `error`.
#[napi(object)]
pub struct NativeGenerationEvent {
    #[napi(ts_type = "'token' | 'done' | 'error'")]
    pub kind: String,
    pub token_id: Option<u32>,
    pub text: Option<String>,
    pub result: Option<NativeGenerationResult>,
    pub error: Option<NativeErrorInfo>,
}

/// A cancellation flag shared with a running generation; checked before every token.
#[napi]
pub struct CancelToken {
    flag: Arc<AtomicBool>,
}

#[napi]
impl CancelToken {
    #[napi(constructor)]
    pub fn new() -> Self {
        Self { flag: Arc::new(AtomicBool::new(false)) }
    }

    #[napi]
    pub fn cancel(&self) {
        self.flag.store(true, Ordering::SeqCst);
    }

    #[napi(getter)]
    pub fn cancelled(&self) -> bool {
        self.flag.load(Ordering::SeqCst)
    }
}

impl Default for CancelToken {
    fn default() -> Self {
        Self::new()
    }
}

#[napi]
pub struct NativeModel {
    /// None after `dispose()`. Work already started holds its own `Arc`, so the weights are
    /// freed when the last running task ends.
    inner: std::sync::Mutex<Option<Arc<Model>>>,
}

impl NativeModel {
    pub(crate) fn new(model: Model) -> Self {
        Self { inner: std::sync::Mutex::new(Some(Arc::new(model))) }
    }

    pub(crate) fn model(&self) -> napi::Result<Arc<Model>> {
        let guard = self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        guard
            .clone()
            .ok_or_else(|| napi::Error::new(Status::GenericFailure, "model_disposed: the model was disposed"))
    }
}

pub struct LoadTask {
    path: String,
    base_weights: Option<String>,
}

/// Parses `baseWeights` (`None` keeps the source's default).
pub(crate) fn base_format(
    value: Option<&str>,
) -> tunekit_core::Result<Option<tunekit_core::quant::BaseFormat>> {
    value
        .map(|v| {
            tunekit_core::quant::BaseFormat::parse(v).ok_or_else(|| tunekit_core::Error::InvalidOption {
                option: "baseWeights".into(),
                message: format!("must be \"stored\", \"f32\", \"q8_0\", \"q4_k\" or \"bf16\", got {v:?}"),
            })
        })
        .transpose()
}

impl Task for LoadTask {
    type Output = StdResult<Model, ErrorInfo>;
    type JsValue = NativeModel;

    fn compute(&mut self) -> napi::Result<Self::Output> {
        let path = self.path.clone();
        let base_weights = self.base_weights.clone();
        Ok(guarded(move || Model::load_as(path, base_format(base_weights.as_deref())?)))
    }

    fn resolve(&mut self, env: Env, output: Self::Output) -> napi::Result<NativeModel> {
        throw(&env, output).map(NativeModel::new)
    }
}

/// Loads a Hugging Face model directory or GGUF file off the JS thread. `base_weights`:
/// how to hold the weight matrices (`"stored"`, `"f32"`, `"q8_0"`, `"q4_k"`, `"bf16"`; default: stored
/// for GGUF, f32 for safetensors).
#[napi(ts_return_type = "Promise<NativeModel>")]
pub fn load_model(
    path: String,
    #[napi(ts_arg_type = "'stored' | 'f32' | 'q8_0' | 'q4_k' | 'bf16'")] base_weights: Option<String>,
) -> AsyncTask<LoadTask> {
    AsyncTask::new(LoadTask { path, base_weights })
}

pub struct LogitsTask {
    model: Arc<Model>,
    ids: Vec<u32>,
}

impl Task for LogitsTask {
    type Output = StdResult<Vec<f32>, ErrorInfo>;
    type JsValue = Float32Array;

    fn compute(&mut self) -> napi::Result<Self::Output> {
        let (model, ids) = (self.model.clone(), std::mem::take(&mut self.ids));
        Ok(guarded(move || Ok(model.decoder.logits(&ids)?.flatten_all()?.to_vec1::<f32>()?)))
    }

    fn resolve(&mut self, env: Env, output: Self::Output) -> napi::Result<Float32Array> {
        throw(&env, output).map(Float32Array::new)
    }
}

fn core_options(o: &NativeGenerateOptions) -> GenerateOptions {
    let d = GenerateOptions::default();
    GenerateOptions {
        max_new_tokens: o.max_new_tokens.map_or(d.max_new_tokens, |n| n as usize),
        temperature: o.temperature.unwrap_or(d.temperature),
        top_k: o.top_k.map_or(d.top_k, |k| k as usize),
        top_p: o.top_p.unwrap_or(d.top_p),
        seed: o.seed.map_or(d.seed, |s| s as u64),
        stop_strings: o.stop.clone().unwrap_or_default(),
        eos_token_ids: o.eos_token_ids.clone(),
    }
}

/// Bounded queue + blocking calls = backpressure: the generation thread runs at most a few
/// tokens ahead of the JS thread, so a cancel issued while handling token n stops the loop
/// within a few tokens instead of after the whole generation already finished.
const EVENT_QUEUE: usize = 4;
type EventSink =
    ThreadsafeFunction<NativeGenerationEvent, (), NativeGenerationEvent, Status, false, false, EVENT_QUEUE>;

fn event(kind: &str) -> NativeGenerationEvent {
    NativeGenerationEvent { kind: kind.into(), token_id: None, text: None, result: None, error: None }
}

#[napi]
impl NativeModel {
    #[napi(getter)]
    pub fn config(&self) -> napi::Result<NativeModelConfig> {
        let model = self.model()?;
        let c = model.config();
        Ok(NativeModelConfig {
            model_type: c.family.model_type().into(),
            hidden_size: c.hidden_size as u32,
            intermediate_size: c.intermediate_size as u32,
            num_hidden_layers: c.num_hidden_layers as u32,
            num_attention_heads: c.num_attention_heads as u32,
            num_key_value_heads: c.num_key_value_heads as u32,
            head_dim: c.head_dim as u32,
            vocab_size: c.vocab_size as u32,
            max_position_embeddings: c.max_position_embeddings as u32,
            tie_word_embeddings: c.tie_word_embeddings,
            rope_theta: c.rope_theta,
            bos_token_id: model.bos_token_id,
            eos_token_ids: model.eos_token_ids.clone(),
            chat_template: model.chat_template.clone(),
        })
    }

    /// Drops this handle's reference to the weights (idempotent).
    #[napi]
    pub fn dispose(&self) {
        self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).take();
    }

    #[napi(catch_unwind)]
    pub fn tokenize(
        &self,
        env: Env,
        text: String,
        add_special_tokens: Option<bool>,
    ) -> napi::Result<Vec<u32>> {
        let model = self.model()?;
        throw(&env, guarded(|| model.tokenizer.encode(&text, add_special_tokens.unwrap_or(true))))
    }

    #[napi(catch_unwind)]
    pub fn detokenize(
        &self,
        env: Env,
        ids: Vec<u32>,
        skip_special_tokens: Option<bool>,
    ) -> napi::Result<String> {
        let model = self.model()?;
        throw(&env, guarded(|| model.tokenizer.decode(&ids, skip_special_tokens.unwrap_or(true))))
    }

    /// Logits `[ids.length × vocab]`, row-major, computed off the JS thread.
    #[napi(ts_return_type = "Promise<Float32Array>")]
    pub fn logits(&self, ids: Vec<u32>) -> napi::Result<AsyncTask<LogitsTask>> {
        Ok(AsyncTask::new(LogitsTask { model: self.model()?, ids }))
    }

    /// Starts generating on a dedicated thread and returns at once. Events arrive in order
    /// through `on_event`; the last one is `done` or `error` (with code `aborted` after
    /// `cancel.cancel()`).
    #[napi(catch_unwind)]
    pub fn generate(
        &self,
        env: Env,
        prompt_ids: Vec<u32>,
        options: NativeGenerateOptions,
        cancel: &CancelToken,
        #[napi(ts_arg_type = "(event: NativeGenerationEvent) => void")] on_event: EventSink,
    ) -> napi::Result<()> {
        let model = self.model()?;
        let opts = core_options(&options);
        let flag = cancel.flag.clone();
        let spawned = std::thread::Builder::new().name("tunekit-generate".into()).spawn(move || {
            let sink = &on_event;
            let outcome = guarded(|| {
                model.generate(&prompt_ids, &opts, &|| flag.load(Ordering::Relaxed), &mut |t| {
                    let mut e = event("token");
                    e.token_id = t.token_id;
                    e.text = Some(t.text);
                    sink.call(e, ThreadsafeFunctionCallMode::Blocking);
                })
            });
            let last = match outcome {
                Ok(g) => {
                    let mut e = event("done");
                    e.result = Some(NativeGenerationResult {
                        token_ids: g.token_ids,
                        text: g.text,
                        finish_reason: g.finish_reason.as_str().into(),
                        prompt_tokens: g.prompt_tokens as u32,
                    });
                    e
                }
                Err(info) => {
                    let mut e = event("error");
                    e.error = Some(NativeErrorInfo {
                        code: info.code.into(),
                        message: info.message,
                        kind: info.kind.map(Into::into),
                    });
                    e
                }
            };
            sink.call(last, ThreadsafeFunctionCallMode::Blocking);
        });
        if let Err(e) = spawned {
            let info = ErrorInfo {
                code: "internal",
                message: format!("could not start a generation thread: {e}"),
                kind: None,
            };
            return Err(to_js_error(&env, &info));
        }
        Ok(())
    }
}
