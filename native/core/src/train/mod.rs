//! LoRA training: the pieces the trainer is built from.
//!
//! Everything here is written so that gradients are *correct* (no candle op without a
//! backward pass sits on a path to a LoRA parameter) and *lean* (the frozen base never
//! gets a weight gradient, the LM head never materialises `[tokens × vocab]` at once).
//!
//! - [`alloc`]: allocator settings that keep a step's freed buffers for the next step.
//! - [`frozen_linear`]: `y = x·Wᵀ` whose backward yields only the input gradient.
//! - [`ops`]: add/mul by a constant and softmax with backward passes that keep no gradient for
//!   constants (masks, rope tables, norm weights).
//! - [`lora`]: PEFT-compatible LoRA linear layers (init, scaling, dropout, rsLoRA).
//! - [`loss`]: differentiable log-softmax / cross-entropy and the chunked LM-head loss.
//! - [`optim`]: AdamW and global-norm clipping, numerically the same as `torch.optim.AdamW`.
//! - [`schedule`]: learning-rate schedules of `transformers.get_*_schedule_with_warmup`.
//! - [`batching`]: padding, grouping by length, seeded per-epoch shuffling.
//! - [`checkpoint`]: atomic checkpoints (temp dir, fsync, rename) and resume.
//! - [`peft`]: export/import of PEFT adapter directories.
//! - [`targeting`]: PEFT's rules for which modules a config puts adapters on.
//! - [`merge`]: merged-weights export (`W + s·B·A`) as a plain model directory.
//! - [`memory`]: the peak-memory estimate that refuses runs which cannot fit.
//! - [`rng`]: the one seeded random generator whose state is checkpointed.
//! - [`trainer`]: the loop tying them together (`train`, `evaluate`, the `TrainableModel` seam).

pub mod alloc;
pub mod batching;
pub mod checkpoint;
pub mod early_stop;
pub mod frozen_linear;
pub mod kernels;
pub mod lora;
pub mod loss;
pub mod memory;
pub mod merge;
pub mod ops;
pub mod optim;
pub mod peft;
pub mod rng;
pub mod schedule;
pub mod session;
pub mod targeting;
pub mod trainer;

/// Errors of the training module. The binding maps each variant to a stable JS error code.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
    #[error("{path}: {source}")]
    Io {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: invalid JSON: {source}")]
    Json {
        path: std::path::PathBuf,
        #[source]
        source: serde_json::Error,
    },
    /// A file we read is not what it claims to be (bad adapter, bad checkpoint).
    #[error("{path}: {message}")]
    BadFile { path: std::path::PathBuf, message: String },
    /// A setting that cannot work (rank 0, unknown schedule, ...).
    #[error("invalid training configuration: {0}")]
    Config(String),
    /// A PEFT adapter that loads but that tunekit cannot apply exactly as PEFT does (a LoRA
    /// variant, an initialisation that changed the base weights, weights that do not fit the
    /// config or the model). The message says why and, where there is one, the fix.
    #[error("unsupported adapter: {0}")]
    UnsupportedAdapter(String),
    /// The memory estimate exceeds what is available; says by how much and what would fit.
    #[error("{0}")]
    Memory(memory::MemoryShortfall),
}

pub type Result<T> = std::result::Result<T, TrainError>;

pub(crate) fn io_err(path: impl Into<std::path::PathBuf>) -> impl FnOnce(std::io::Error) -> TrainError {
    let path = path.into();
    move |source| TrainError::Io { path, source }
}

#[cfg(test)]
pub(crate) mod testutil {
    use candle_core::{DType, Result, Tensor};

    /// Max |a − b| divided by max |b| (a scale-aware relative error). Fails above `tol`.
    pub fn assert_close(a: &Tensor, b: &Tensor, tol: f64) -> Result<f64> {
        assert_eq!(a.dims(), b.dims(), "shapes differ");
        let a = a.to_dtype(DType::F64)?.flatten_all()?.to_vec1::<f64>()?;
        let b = b.to_dtype(DType::F64)?.flatten_all()?.to_vec1::<f64>()?;
        let scale = b.iter().fold(0f64, |m, v| m.max(v.abs())).max(1e-30);
        let diff = a.iter().zip(&b).fold(0f64, |m, (x, y)| m.max((x - y).abs()));
        let err = diff / scale;
        assert!(err <= tol, "relative error {err:.3e} > {tol:.1e}");
        Ok(err)
    }

    /// Central finite differences of a scalar function, element by element (f64 inputs).
    pub fn fd_grad(f: &dyn Fn(&Tensor) -> Result<Tensor>, x: &Tensor, eps: f64) -> Result<Tensor> {
        let base = x.detach().to_dtype(DType::F64)?.flatten_all()?.to_vec1::<f64>()?;
        let mut out = Vec::with_capacity(base.len());
        for i in 0..base.len() {
            let eval = |d: f64| -> Result<f64> {
                let mut v = base.clone();
                v[i] += d;
                let t = Tensor::from_vec(v, x.shape(), x.device())?.to_dtype(x.dtype())?;
                f(&t)?.to_dtype(DType::F64)?.to_scalar::<f64>()
            };
            out.push((eval(eps)? - eval(-eps)?) / (2.0 * eps));
        }
        Tensor::from_vec(out, x.shape(), x.device())?.to_dtype(x.dtype())
    }
}
