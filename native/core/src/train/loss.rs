//! Token cross-entropy for causal-LM training.
//!
//! **The rule** (the modern Hugging Face one, `ForCausalLMLoss` with `num_items_in_batch`):
//! position `t` predicts label `t + 1`; positions whose next label is `-100` (prompt and
//! padding) are not scored; the loss of one optimiser step is the **sum** of the token
//! cross-entropies over every micro-batch of the accumulation window divided by the number
//! of scored tokens in the whole window. Accumulating gradients therefore gives exactly the
//! gradient of one big batch, and a micro-batch with few response tokens is not over-weighted.
//!
//! **Memory**: [`lm_head_loss`] evaluates the LM head only at scored positions and in chunks
//! of rows, so the `[tokens, vocab]` logits never exist. For each chunk it computes the logits,
//! then rewrites them in place into a stable log-sum-exp, the loss and the logit gradient
//! `softmax − onehot`, and one GEMM gives the hidden-state gradient `(softmax − onehot)·W / n`.
//! Peak memory is the chunk's buffers, 128 MiB together at most (an f32 head: one logits
//! buffer, which the GEMM writes and the loss rewrites in place; a bf16 head: that and a
//! half-size rounded copy; other heads: two), not `tokens × vocab`. The gradient is attached
//! to the hidden states with a surrogate term `Σ h ⊙ stop_grad(g)` whose value is subtracted
//! again, so the result is an ordinary candle tensor: `loss.backward()` works and yields
//! exactly `g`.

use candle_core::{DType, Result, Tensor, D};

use crate::decoder::bf16_weight::Bf16Weight;
use crate::kernels::gemm_bf16::round_row;
use crate::quant::BaseWeight;

/// Labels that are not scored (PyTorch's `ignore_index`).
pub const IGNORE_INDEX: i64 = -100;

/// Log-softmax from differentiable primitives (the max is a constant shift, so it is detached).
pub fn log_softmax(xs: &Tensor, dim: D) -> Result<Tensor> {
    let max = xs.max_keepdim(dim)?.detach();
    let shifted = xs.broadcast_sub(&max)?;
    let lse = shifted.exp()?.sum_keepdim(dim)?.log()?;
    shifted.broadcast_sub(&lse)
}

/// Reference cross-entropy on full logits `[n, vocab]`: `Σ −log p(target) / denom`.
/// Differentiable; meant for tests and small vocabularies (it materialises all logits).
pub fn cross_entropy(logits: &Tensor, targets: &Tensor, denom: f64) -> Result<Tensor> {
    let logp = log_softmax(logits, D::Minus1)?;
    let picked = logp.gather(&targets.unsqueeze(1)?, 1)?;
    picked.sum_all()?.affine(-1.0 / denom, 0.0)
}

/// Scored positions of a padded batch `labels[b][t]` (all rows the same length `T`):
/// flat row indices `b·T + t` into `[B·T, hidden]` and the target ids `labels[b][t + 1]`.
pub fn shifted_targets(labels: &[Vec<i64>]) -> (Vec<u32>, Vec<u32>) {
    let mut positions = Vec::new();
    let mut targets = Vec::new();
    for (b, row) in labels.iter().enumerate() {
        for t in 0..row.len().saturating_sub(1) {
            let label = row[t + 1];
            if label != IGNORE_INDEX {
                positions.push((b * row.len() + t) as u32);
                targets.push(label as u32);
            }
        }
    }
    (positions, targets)
}

/// The loss of one micro-batch.
pub struct LossOutput {
    /// Scalar `Σ token CE / denom`; differentiable with respect to the hidden states when
    /// computed with `with_grad`.
    pub loss: Tensor,
    /// `Σ token CE` of this micro-batch (for logging and evaluation).
    pub sum: f64,
    /// Number of scored tokens in this micro-batch.
    pub count: usize,
}

/// The output projection `[vocab, d]` as the loss needs it: logits `h·Wᵀ` and the input
/// gradient `g·W`, neither of them tracked. An f32 tensor runs the same matmuls
/// as always; a [`BaseWeight`] kept in stored form runs them on its blocks.
pub trait HeadWeight {
    fn vocab(&self) -> Result<usize>;
    fn logits(&self, h: &Tensor, dtype: DType) -> Result<Tensor>;
    fn input_grad(&self, g: &Tensor, dtype: DType) -> Result<Tensor>;
    /// f32 logits of `h: [rows, d]` as a row-major vector, which the loss rewrites in place.
    /// By default a copy of [`Self::logits`]; a bf16 head's GEMM writes straight into it.
    fn logits_f32(&self, h: &Tensor) -> Result<Vec<f32>> {
        self.logits(h, DType::F32)?.flatten_all()?.to_vec1::<f32>()
    }
    /// The head as a bf16 matrix, when it is one: the loss then runs its fused path
    /// ([`bf16_head_loss`]).
    fn as_bf16(&self) -> Option<&Bf16Weight> {
        None
    }
    /// The head as a contiguous dense f32 matrix on the CPU, when it is one: the loss then runs
    /// its one-buffer path ([`f32_head_loss`]) on the tensor's own storage.
    fn as_dense_f32(&self) -> Option<&Tensor> {
        None
    }
}

impl HeadWeight for Tensor {
    fn vocab(&self) -> Result<usize> {
        self.dim(0)
    }
    fn logits(&self, h: &Tensor, dtype: DType) -> Result<Tensor> {
        h.matmul(&self.detach().to_dtype(dtype)?.t()?)
    }
    fn input_grad(&self, g: &Tensor, dtype: DType) -> Result<Tensor> {
        g.matmul(&self.detach().to_dtype(dtype)?)
    }
    fn as_dense_f32(&self) -> Option<&Tensor> {
        // A strided view would be copied whole on every call; it takes the general path.
        let usable = self.dtype() == DType::F32 && self.device().is_cpu() && self.rank() == 2;
        (usable && self.is_contiguous()).then_some(self)
    }
}

impl HeadWeight for BaseWeight {
    fn vocab(&self) -> Result<usize> {
        Ok(self.dims().0)
    }
    fn logits(&self, h: &Tensor, dtype: DType) -> Result<Tensor> {
        match self {
            Self::F32(w) => w.logits(h, dtype),
            stored => stored.forward(&h.detach())?.to_dtype(dtype),
        }
    }
    fn input_grad(&self, g: &Tensor, dtype: DType) -> Result<Tensor> {
        match self {
            Self::F32(w) => HeadWeight::input_grad(w, g, dtype),
            stored => stored.backward_input(g)?.to_dtype(dtype),
        }
    }
    fn logits_f32(&self, h: &Tensor) -> Result<Vec<f32>> {
        match self {
            Self::Bf16(w) => {
                let h = h.detach().to_dtype(DType::F32)?.contiguous()?;
                let rows = h.dim(0)?;
                Ok(w.forward_product(&h.flatten_all()?.to_vec1::<f32>()?, rows))
            }
            _ => self.logits(h, DType::F32)?.flatten_all()?.to_vec1::<f32>(),
        }
    }
    fn as_bf16(&self) -> Option<&Bf16Weight> {
        match self {
            Self::Bf16(w) => Some(w),
            _ => None,
        }
    }
    fn as_dense_f32(&self) -> Option<&Tensor> {
        match self {
            Self::F32(w) => w.as_dense_f32(),
            _ => None,
        }
    }
}

/// Cross-entropy of `lm_head(hidden)` at `positions` against `targets`, divided by `denom`.
///
/// - `hidden`: `[.., d]` final hidden states (after the last norm), any leading shape; rows are
///   addressed by the flat `positions`.
/// - `lm_head`: `[vocab, d]` frozen output projection (tied embeddings or `lm_head.weight`).
/// - `denom`: the number of scored tokens of the whole accumulation window (see module docs).
/// - `chunk_rows`: rows per LM-head chunk (capped by [`chunk_rows_for`]); peak extra memory is
///   about `2 · chunk_rows · vocab` floats.
/// - `with_grad`: `false` for evaluation (skips the gradient GEMM).
pub fn lm_head_loss(
    hidden: &Tensor,
    positions: &[u32],
    targets: &[u32],
    lm_head: &(impl HeadWeight + ?Sized),
    denom: f64,
    chunk_rows: usize,
    with_grad: bool,
) -> Result<LossOutput> {
    lm_head_loss_capped(hidden, positions, targets, lm_head, None, denom, chunk_rows, with_grad)
}

/// The most f32 values the buffers of one LM-head chunk may hold together: 32M = 128 MiB.
const CHUNK_BUDGET: usize = 1 << 25;

/// The rows per LM-head chunk of a path that holds two `rows × vocab` buffers at once (the
/// general and the bf16 paths): `requested`, fewer for very large vocabularies so the chunk
/// stays within [`CHUNK_BUDGET`] (Gemma's 262,144 entries: 64 rows), at least 16.
pub fn chunk_rows_for(requested: usize, vocab: usize) -> usize {
    requested.min((CHUNK_BUDGET / 2 / vocab.max(1)).max(16)).max(1)
}

/// The rows per chunk of the one-buffer f32 path ([`f32_head_loss`]): the same budget in one
/// buffer, so twice the rows of [`chunk_rows_for`] at the same peak (Gemma: 128). The head's
/// two GEMMs run faster on more rows (2 threads, 262,144 × 640: 64 rows 117/127 GFLOP/s,
/// 128 rows 133/163; logits/input gradient).
pub fn one_buffer_chunk_rows(requested: usize, vocab: usize) -> usize {
    requested.min((CHUNK_BUDGET / vocab.max(1)).max(16)).max(1)
}

/// [`lm_head_loss`] on soft-capped logits `z = cap · tanh(l / cap)` when `softcap` is set
/// (Gemma's `final_logit_softcapping`); `dz/dl = 1 − (z / cap)²` enters the gradient.
///
/// Each chunk's logits land in one buffer ([`HeadWeight::logits_f32`]; a bf16 head's GEMM
/// writes it directly, others copy it out of their tensor once) and are then rewritten in
/// place, row by row in parallel on the vectorised kernel ([`crate::kernels::ce_row`]) — soft
/// cap fused with the max, log-sum-exp, the loss, then the logit gradient
/// `(softmax − onehot) ⊙ dz/dl` — and one GEMM gives the hidden-state gradient.
#[allow(clippy::too_many_arguments)]
pub fn lm_head_loss_capped(
    hidden: &Tensor,
    positions: &[u32],
    targets: &[u32],
    lm_head: &(impl HeadWeight + ?Sized),
    softcap: Option<f64>,
    denom: f64,
    chunk_rows: usize,
    with_grad: bool,
) -> Result<LossOutput> {
    assert_eq!(positions.len(), targets.len(), "one target per position");
    let dev = hidden.device();
    let d = hidden.dim(D::Minus1)?;
    let n = positions.len();
    if n == 0 {
        let loss = Tensor::zeros((), hidden.dtype(), dev)?;
        return Ok(LossOutput { loss, sum: 0.0, count: 0 });
    }
    let compute = if hidden.dtype() == DType::F64 { DType::F64 } else { DType::F32 };
    let pos = Tensor::from_slice(positions, n, dev)?;
    let h = hidden.reshape(((), d))?.index_select(&pos, 0)?; // [n, d], tracked
    let hd = h.detach().to_dtype(compute)?;
    let vocab = lm_head.vocab()?;
    if let Some(&bad) = targets.iter().find(|&&t| t as usize >= vocab) {
        candle_core::bail!("label {bad} is outside the vocabulary ({vocab} entries)");
    }

    let dense = if compute == DType::F32 { lm_head.as_dense_f32() } else { None };
    let fast = compute == DType::F32 && (dense.is_some() || lm_head.as_bf16().is_some());
    if fast {
        let x = hd.flatten_all()?.to_vec1::<f32>()?;
        let rows = ScoredRows { x: &x, targets, cap: softcap.map(|c| c as f32), chunk_rows, with_grad };
        let (sum, gx) = match (dense, lm_head.as_bf16()) {
            (Some(w), _) => {
                let rows = ScoredRows { chunk_rows: one_buffer_chunk_rows(chunk_rows, vocab), ..rows };
                crate::train::kernels::with_f32(w, |wv| f32_head_loss(wv, (vocab, d), &rows))?
            }
            (None, Some(w)) => {
                bf16_head_loss(w, &ScoredRows { chunk_rows: chunk_rows_for(chunk_rows, vocab), ..rows })
            }
            (None, None) => unreachable!("checked above"),
        };
        let value = Tensor::new(sum / denom, dev)?.to_dtype(hidden.dtype())?;
        let loss = match gx {
            Some(gx) => {
                let g = (Tensor::from_vec(gx, (n, d), dev)? / denom)?.to_dtype(h.dtype())?;
                let surrogate = (h * g)?.sum_all()?;
                (&surrogate - surrogate.detach())?.add(&value)?
            }
            None => value,
        };
        return Ok(LossOutput { loss, sum, count: n });
    }
    let chunk_rows = chunk_rows_for(chunk_rows, vocab);
    let mut sum = 0f64;
    let mut grads = Vec::new();
    for start in (0..n).step_by(chunk_rows) {
        let len = chunk_rows.min(n - start);
        let tgt = &targets[start..start + len];
        let rows = hd.narrow(0, start, len)?;
        // The chunk's logits [len, vocab], rewritten in place into the logit gradient.
        let g = match compute {
            DType::F64 => {
                let logits = lm_head.logits(&rows, compute)?.flatten_all()?.to_vec1::<f64>()?;
                chunk_loss(logits, vocab, tgt, softcap, with_grad, &mut sum, dev)?
            }
            _ => chunk_loss(lm_head.logits_f32(&rows)?, vocab, tgt, softcap, with_grad, &mut sum, dev)?,
        };
        if let Some(g) = g {
            grads.push((lm_head.input_grad(&g, compute)? / denom)?);
        }
    }
    let value = Tensor::new(sum / denom, dev)?.to_dtype(hidden.dtype())?;
    let loss = if with_grad {
        let g = Tensor::cat(&grads, 0)?.to_dtype(h.dtype())?;
        let surrogate = (h * g)?.sum_all()?;
        (&surrogate - surrogate.detach())?.add(&value)?
    } else {
        value
    };
    Ok(LossOutput { loss, sum, count: n })
}

/// The scored rows of a micro-batch as the one-buffer paths take them.
#[derive(Clone, Copy)]
struct ScoredRows<'a> {
    /// `[n, d]`, row-major.
    x: &'a [f32],
    /// One per row.
    targets: &'a [u32],
    /// The logits' soft cap.
    cap: Option<f32>,
    chunk_rows: usize,
    with_grad: bool,
}

impl ScoredRows<'_> {
    /// `(first row, rows)` of each chunk.
    fn chunks(&self) -> impl Iterator<Item = (usize, usize)> {
        let (n, step) = (self.targets.len(), self.chunk_rows);
        (0..n).step_by(step).map(move |start| (start, step.min(n - start)))
    }
}

/// The loss on a bf16 head (`baseWeights: "bf16"`), chunk by chunk like the general path but
/// with one logits buffer and one rounded-gradient buffer for all chunks, and each row's
/// gradient rounded to bf16 while the row is still in cache (the input-gradient GEMM rounds
/// its input to bf16 anyway, so the values are the same as rounding the whole chunk after).
/// For Gemma's 262,144-entry vocabulary a chunk's logits are 64 MiB: a fresh buffer per chunk
/// was mapped and page-faulted each time (above glibc's largest mmap threshold), and the
/// separate rounding pass read it from memory once more.
///
/// Returns the sum of the rows' cross-entropies and, with `with_grad`, `(softmax − onehot)·W`
/// as `[n, d]` (not yet divided by `denom`).
fn bf16_head_loss(w: &Bf16Weight, rows: &ScoredRows) -> (f64, Option<Vec<f32>>) {
    use rayon::prelude::*;
    let (vocab, d) = w.dims();
    let ScoredRows { x, targets, cap, chunk_rows, with_grad } = *rows;
    let n = targets.len();
    let most = chunk_rows.min(n);
    let stride = w.grad_row_stride();
    let mut logits = vec![0f32; most * vocab];
    let mut g16 = if with_grad { vec![0u16; most * stride] } else { Vec::new() };
    let mut gx = if with_grad { vec![0f32; n * d] } else { Vec::new() };
    let mut sum = 0f64;
    for (start, len) in rows.chunks() {
        let tgt = &targets[start..start + len];
        let logits = &mut logits[..len * vocab];
        w.forward_into(&x[start * d..(start + len) * d], len, logits);
        let rows: Vec<f64> = if with_grad {
            let g16 = &mut g16[..len * stride];
            let rows = logits
                .par_chunks_mut(vocab)
                .zip(g16.par_chunks_mut(stride))
                .zip(tgt.par_iter())
                .map(|((row, out), &t)| {
                    let loss = crate::kernels::ce_row::ce_row(row, t as usize, cap, true);
                    round_row(row, out);
                    loss
                })
                .collect();
            w.input_grad_rounded_into(g16, len, &mut gx[start * d..(start + len) * d]);
            rows
        } else {
            logits
                .par_chunks_mut(vocab)
                .zip(tgt.par_iter())
                .map(|(row, &t)| crate::kernels::ce_row::ce_row(row, t as usize, cap, false))
                .collect()
        };
        sum += rows.iter().sum::<f64>();
    }
    (sum, with_grad.then_some(gx))
}

/// The loss on a dense f32 head `w` (`[vocab, d]`, row-major), chunk by chunk with one logits
/// buffer for all chunks: each chunk's logits `x·Wᵀ` are written into it by the GEMM, rewritten
/// in place row by row into the logit gradient ([`crate::kernels::ce_row`]), and the input
/// gradient `G·W` is written straight into its rows of the result. The general path made a
/// logits tensor, copied it into a vector (two chunk-sized buffers at once) and made a tensor
/// per chunk for the gradient and its product; this one holds one, so its chunks can be twice
/// as tall ([`one_buffer_chunk_rows`]) at the same peak.
///
/// Returns what [`bf16_head_loss`] returns.
fn f32_head_loss(w: &[f32], (vocab, d): (usize, usize), rows: &ScoredRows) -> (f64, Option<Vec<f32>>) {
    use rayon::prelude::*;
    let ScoredRows { x, targets, cap, chunk_rows, with_grad } = *rows;
    let n = targets.len();
    assert_eq!(w.len(), vocab * d, "head is [vocab, d]");
    assert_eq!(x.len(), n * d, "one row of x per target");
    let mut logits = vec![0f32; chunk_rows.min(n) * vocab];
    let mut gx = if with_grad { vec![0f32; n * d] } else { Vec::new() };
    let mut sum = 0f64;
    for (start, len) in rows.chunks() {
        let tgt = &targets[start..start + len];
        let logits = &mut logits[..len * vocab];
        // logits[len, vocab] = x[len, d] · Wᵀ (W row-major: element (j, v) of Wᵀ at v·d + j).
        sgemm(logits, (len, vocab, d), &x[start * d..(start + len) * d], (d, 1), w, (1, d));
        let rows: Vec<f64> = logits
            .par_chunks_mut(vocab)
            .zip(tgt.par_iter())
            .map(|(row, &t)| crate::kernels::ce_row::ce_row(row, t as usize, cap, with_grad))
            .collect();
        sum += rows.iter().sum::<f64>();
        if with_grad {
            // gx[len, d] = G[len, vocab] · W[vocab, d].
            sgemm(&mut gx[start * d..(start + len) * d], (len, d, vocab), logits, (vocab, 1), w, (d, 1));
        }
    }
    (sum, with_grad.then_some(gx))
}

/// `dst[m×n] = a·b` (row-major `dst`) for `a` `m×k` and `b` `k×n` given by their `(row, column)`
/// element strides, on the threads of the current rayon pool (as candle's matmul).
fn sgemm(
    dst: &mut [f32],
    (m, n, k): (usize, usize, usize),
    a: &[f32],
    (a_rs, a_cs): (usize, usize),
    b: &[f32],
    (b_rs, b_cs): (usize, usize),
) {
    assert!(dst.len() >= m * n, "sgemm: destination too small");
    assert!(m == 0 || k == 0 || (m - 1) * a_rs + (k - 1) * a_cs < a.len(), "sgemm: a out of bounds");
    assert!(n == 0 || k == 0 || (k - 1) * b_rs + (n - 1) * b_cs < b.len(), "sgemm: b out of bounds");
    if m == 0 || n == 0 {
        return;
    }
    let threads = rayon::current_num_threads();
    let parallelism = if threads > 1 { gemm::Parallelism::Rayon(threads) } else { gemm::Parallelism::None };
    // SAFETY: the asserts above keep every element gemm addresses inside `dst`, `a` and `b`.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            1,
            n as isize,
            false,
            a.as_ptr(),
            a_cs as isize,
            a_rs as isize,
            b.as_ptr(),
            b_cs as isize,
            b_rs as isize,
            0.0,
            1.0,
            false,
            false,
            false,
            parallelism,
        )
    }
}

/// Floats the in-place chunk arithmetic runs in (f32 in training, f64 in the gradient tests).
trait Real: candle_core::WithDType + Copy + Send + Sync {
    fn exp(self) -> Self;
    fn tanh(self) -> Self;
    /// One row's cross-entropy, rewritten in place (see [`ce_row`]).
    fn ce_row(row: &mut [Self], target: usize, cap: Option<Self>, grad: bool) -> f64 {
        ce_row(row, target, cap, grad)
    }
}

impl Real for f32 {
    fn exp(self) -> Self {
        f32::exp(self)
    }
    fn tanh(self) -> Self {
        f32::tanh(self)
    }
    /// Training's path: the vectorised kernel (polynomial `exp`/`tanh`, 16-lane sums).
    fn ce_row(row: &mut [f32], target: usize, cap: Option<f32>, grad: bool) -> f64 {
        crate::kernels::ce_row::ce_row(row, target, cap, grad)
    }
}

impl Real for f64 {
    fn exp(self) -> Self {
        f64::exp(self)
    }
    fn tanh(self) -> Self {
        f64::tanh(self)
    }
}

/// One chunk: adds its rows' cross-entropies to `sum` and, with `with_grad`, returns the logit
/// gradient `[len, vocab]` (before the division by `denom`), built in the logits' own buffer.
fn chunk_loss<T: Real>(
    mut buf: Vec<T>,
    vocab: usize,
    targets: &[u32],
    softcap: Option<f64>,
    with_grad: bool,
    sum: &mut f64,
    dev: &candle_core::Device,
) -> Result<Option<Tensor>> {
    use rayon::prelude::*;
    let len = targets.len();
    assert_eq!(buf.len(), len * vocab, "one row of logits per target");
    let cap = softcap.map(T::from_f64);
    let rows: Vec<f64> = buf
        .par_chunks_mut(vocab)
        .zip(targets.par_iter())
        .map(|(row, &target)| T::ce_row(row, target as usize, cap, with_grad))
        .collect();
    *sum += rows.iter().sum::<f64>();
    if !with_grad {
        return Ok(None);
    }
    Ok(Some(Tensor::from_vec(buf, (len, vocab), dev)?))
}

/// Cross-entropy of one row of raw logits against `target`; with `grad`, the row becomes
/// `(softmax(z) − onehot(target)) ⊙ dz/dl` where `z` are the (optionally capped) logits.
fn ce_row<T: Real>(row: &mut [T], target: usize, cap: Option<T>, grad: bool) -> f64 {
    if let Some(cap) = cap {
        for x in row.iter_mut() {
            *x = (*x / cap).tanh() * cap;
        }
    }
    let max = row.iter().copied().fold(T::from_f64(f64::NEG_INFINITY), |m, x| if x > m { x } else { m });
    let sumexp: f64 = row.iter().map(|&x| (x - max).exp().to_f64()).sum();
    let lse = sumexp.ln();
    let loss = lse - (row[target] - max).to_f64();
    if grad {
        let zt = row[target];
        let shift = max + T::from_f64(lse);
        let one = T::from_f64(1.0);
        // dz/dl = 1 − tanh² = 1 − (z / cap)², from the capped value itself.
        let dcap = |z: T| cap.map_or(one, |cap| one - (z / cap) * (z / cap));
        for x in row.iter_mut() {
            *x = (*x - shift).exp() * dcap(*x);
        }
        row[target] = row[target] - dcap(zt);
    }
    loss
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::frozen_linear::frozen_linear;
    use crate::train::testutil::{assert_close, fd_grad};
    use candle_core::{Device, Var};

    #[test]
    fn train_log_softmax_matches_definition_and_finite_differences() -> Result<()> {
        let dev = Device::Cpu;
        let x = Var::randn(0f64, 3., (3, 7), &dev)?;
        let ls = log_softmax(&x, D::Minus1)?;
        let direct = x.exp()?.broadcast_div(&x.exp()?.sum_keepdim(1)?)?.log()?;
        assert_close(&ls, &direct, 1e-12)?;
        let c = Tensor::randn(0f64, 1., (3, 7), &dev)?;
        let f = |x: &Tensor| log_softmax(x, D::Minus1)?.mul(&c)?.sum_all();
        let analytic = f(&x)?.backward()?.get(&x).unwrap().clone();
        let err = assert_close(&analytic, &fd_grad(&f, &x, 1e-6)?, 1e-7)?;
        eprintln!("log-softmax finite-difference max rel err {err:.2e}");
        Ok(())
    }

    #[test]
    fn train_shifted_targets_skip_prompt_and_padding() {
        let labels = vec![vec![-100, -100, 5, 6, 2], vec![-100, 7, 2, -100, -100]];
        let (pos, tgt) = shifted_targets(&labels);
        assert_eq!(pos, vec![1, 2, 3, 5, 6]);
        assert_eq!(tgt, vec![5, 6, 2, 7, 2]);
    }

    #[test]
    fn train_lm_head_chunks_shrink_for_huge_vocabularies() {
        assert_eq!(chunk_rows_for(256, 49_152), 256); // SmolLM2
        assert_eq!(chunk_rows_for(256, 151_936), 110); // Qwen 2.5
        assert_eq!(chunk_rows_for(256, 262_144), 64); // Gemma 3
        assert_eq!(chunk_rows_for(256, 1 << 24), 16);
        assert_eq!(chunk_rows_for(8, 262_144), 8);
        // The one-buffer f32 path: the same budget in one buffer.
        assert_eq!(one_buffer_chunk_rows(256, 49_152), 256);
        assert_eq!(one_buffer_chunk_rows(256, 262_144), 128);
        assert_eq!(one_buffer_chunk_rows(256, 1 << 26), 16);
    }

    /// The chunked LM-head loss equals the reference CE on full logits (value and gradient,
    /// for every chunk size) and passes a finite-difference check.
    #[test]
    fn train_lm_head_loss_matches_reference_and_finite_differences() -> Result<()> {
        let dev = Device::Cpu;
        let (b, t, d, vocab) = (2, 5, 4, 11);
        let hidden = Var::randn(0f64, 1., (b, t, d), &dev)?;
        let w = Tensor::randn(0f64, 1., (vocab, d), &dev)?;
        let labels = vec![vec![-100, 3, 4, 10, 0], vec![-100, -100, 9, 1, -100]];
        let (pos, tgt) = shifted_targets(&labels);
        let denom = 9.0; // pretend the accumulation window has 9 scored tokens

        let reference = |h: &Tensor| -> Result<Tensor> {
            let logits = frozen_linear(&h.reshape((b * t, d))?, &w)?;
            let rows = logits.index_select(&Tensor::from_slice(&pos, pos.len(), &dev)?, 0)?;
            cross_entropy(&rows, &Tensor::from_slice(&tgt, tgt.len(), &dev)?, denom)
        };
        let want = reference(&hidden)?;
        let want_g = want.backward()?.get(&hidden).unwrap().clone();

        for chunk in [1, 2, 3, 64] {
            let out = lm_head_loss(&hidden, &pos, &tgt, &w, denom, chunk, true)?;
            assert_eq!(out.count, 6);
            assert_close(&out.loss, &want, 1e-12)?;
            assert!((out.sum / denom - want.to_scalar::<f64>()?).abs() < 1e-12);
            let g = out.loss.backward()?.get(&hidden).unwrap().clone();
            assert_close(&g, &want_g, 1e-12)?;
        }
        let f = |h: &Tensor| Ok(lm_head_loss(h, &pos, &tgt, &w, denom, 2, false)?.loss);
        let analytic = lm_head_loss(&hidden, &pos, &tgt, &w, denom, 2, true)?
            .loss
            .backward()?
            .get(&hidden)
            .unwrap()
            .clone();
        let err = assert_close(&analytic, &fd_grad(&f, &hidden, 1e-6)?, 1e-7)?;
        eprintln!("chunked LM-head loss finite-difference max rel err {err:.2e}");
        Ok(())
    }

    /// With Gemma's final logit soft-capping: value and gradient equal autograd through
    /// `cap · tanh(l / cap)` and the plain cross-entropy.
    #[test]
    fn train_lm_head_loss_with_softcap_matches_autograd() -> Result<()> {
        let dev = Device::Cpu;
        let (b, t, d, vocab, cap) = (2, 5, 4, 11, 1.5);
        let hidden = Var::randn(0f64, 1., (b, t, d), &dev)?;
        let w = Tensor::randn(0f64, 1., (vocab, d), &dev)?;
        let labels = vec![vec![-100, 3, 4, 10, 0], vec![-100, -100, 9, 1, -100]];
        let (pos, tgt) = shifted_targets(&labels);
        let reference = |h: &Tensor| -> Result<Tensor> {
            let logits = frozen_linear(&h.reshape((b * t, d))?, &w)?;
            let logits = ((logits / cap)?.tanh()? * cap)?;
            let rows = logits.index_select(&Tensor::from_slice(&pos, pos.len(), &dev)?, 0)?;
            cross_entropy(&rows, &Tensor::from_slice(&tgt, tgt.len(), &dev)?, 7.0)
        };
        let want = reference(&hidden)?;
        let want_g = want.backward()?.get(&hidden).unwrap().clone();
        for chunk in [1, 4, 64] {
            let out = lm_head_loss_capped(&hidden, &pos, &tgt, &w, Some(cap), 7.0, chunk, true)?;
            assert_close(&out.loss, &want, 1e-12)?;
            let g = out.loss.backward()?.get(&hidden).unwrap().clone();
            assert_close(&g, &want_g, 1e-12)?;
        }
        Ok(())
    }

    /// In f32 (how training runs), with a soft cap: the in-place chunk arithmetic agrees with
    /// autograd through the full `[T, vocab]` logits, and a label outside the vocabulary is an
    /// error rather than a silent wrong gradient.
    #[test]
    fn train_lm_head_loss_f32_matches_full_logits() -> Result<()> {
        let dev = Device::Cpu;
        let (b, t, d, vocab, cap) = (2, 6, 8, 37, 3.0);
        let hidden = Var::randn(0f32, 1., (b, t, d), &dev)?;
        let w = Tensor::randn(0f32, 1., (vocab, d), &dev)?;
        let labels = vec![vec![-100, 3, 4, 36, 0, 2], vec![-100, -100, 9, 1, 5, -100]];
        let (pos, tgt) = shifted_targets(&labels);
        let logits = frozen_linear(&hidden.reshape((b * t, d))?, &w)?;
        let logits = ((logits / cap)?.tanh()? * cap)?;
        let rows = logits.index_select(&Tensor::from_slice(&pos, pos.len(), &dev)?, 0)?;
        let want = cross_entropy(&rows, &Tensor::from_slice(&tgt, tgt.len(), &dev)?, 8.0)?;
        let want_g = want.backward()?.get(&hidden).unwrap().clone();
        for chunk in [1, 3, 256] {
            let out = lm_head_loss_capped(&hidden, &pos, &tgt, &w, Some(cap), 8.0, chunk, true)?;
            assert_close(&out.loss, &want, 1e-5)?;
            let g = out.loss.backward()?.get(&hidden).unwrap().clone();
            assert_close(&g, &want_g, 1e-4)?;
        }
        let err = lm_head_loss(&hidden, &[0], &[vocab as u32], &w, 1.0, 4, true).err().unwrap();
        assert!(err.to_string().contains("outside the vocabulary"), "{err}");
        Ok(())
    }

    /// A bf16 head (`baseWeights: "bf16"`): the logits come straight from the bf16 GEMM and the
    /// loss and input gradient equal the f32 computation on the bf16-rounded matrix with
    /// bf16-rounded product inputs (the hidden rows forward, the logit gradient backward).
    #[test]
    fn train_lm_head_loss_on_a_bf16_head_is_the_rounded_f32_loss() -> Result<()> {
        let dev = Device::Cpu;
        let (b, t, d, vocab, cap) = (2, 6, 16, 300, 5.0);
        let hidden = Var::randn(0f32, 1., (b, t, d), &dev)?;
        let w = Tensor::randn(0f32, 1., (vocab, d), &dev)?;
        let head = BaseWeight::bf16(&w)?;
        let wr = head.to_dense()?;
        let round = |x: &Tensor| x.to_dtype(DType::BF16)?.to_dtype(DType::F32);
        let labels = vec![vec![-100, 3, 4, 299, 0, 2], vec![-100, -100, 9, 1, 5, -100]];
        let (pos, tgt) = shifted_targets(&labels);
        let h = round(
            &hidden.reshape((b * t, d))?.index_select(&Tensor::from_slice(&pos, pos.len(), &dev)?, 0)?,
        )?;
        let logits = h.matmul(&wr.t()?)?;
        let z = ((logits / cap)?.tanh()? * cap)?;
        let want = cross_entropy(&z.to_dtype(DType::F64)?, &Tensor::from_slice(&tgt, tgt.len(), &dev)?, 8.0)?;
        for chunk in [1, 4, 64] {
            let out = lm_head_loss_capped(&hidden, &pos, &tgt, &head, Some(cap), 8.0, chunk, true)?;
            let got = out.loss.to_dtype(DType::F64)?.to_scalar::<f64>()?;
            assert!((got - want.to_scalar::<f64>()?).abs() < 1e-5, "loss {got} vs {want}");
            // The gradient: (softmax − onehot) ⊙ dz/dl / 8, rounded to bf16, times the rounded W.
            let g = out.loss.backward()?.get(&hidden).unwrap().reshape((b * t, d))?;
            let p = candle_nn::ops::softmax_last_dim(&z)?;
            let onehot = Tensor::zeros((pos.len(), vocab), DType::F32, &dev)?.scatter_add(
                &Tensor::from_slice(&tgt, (pos.len(), 1), &dev)?,
                &Tensor::ones((pos.len(), 1), DType::F32, &dev)?,
                1,
            )?;
            let dz = (1.0 - (&z / cap)?.sqr()?)?;
            let gl = round(&(((p - onehot)? * dz)? / 8.0)?)?;
            let want_g = gl.matmul(&wr)?;
            let got_g = g.index_select(&Tensor::from_slice(&pos, pos.len(), &dev)?, 0)?;
            let err = (got_g - &want_g)?.abs()?.max_all()?.to_scalar::<f32>()?;
            let scale = want_g.abs()?.max_all()?.to_scalar::<f32>()?;
            assert!(err <= 1e-3 * scale, "input gradient off by {err} (scale {scale})");
        }
        Ok(())
    }

    /// The bf16 head's own path (reused buffers, rows rounded in cache) and the dense f32 head's
    /// (one logits buffer, GEMMs straight into it and into the result) give bit for bit what
    /// the general path gives on the same head: fresh logits per chunk, then the input-gradient
    /// product on the whole chunk. Chunk sizes that divide the rows and leave a tail.
    #[test]
    fn train_lm_head_loss_one_buffer_paths_equal_the_general_path() -> Result<()> {
        /// The same head without [`HeadWeight::as_bf16`] / [`HeadWeight::as_dense_f32`], so the
        /// loss takes the general path.
        struct General(BaseWeight);
        impl HeadWeight for General {
            fn vocab(&self) -> Result<usize> {
                self.0.vocab()
            }
            fn logits(&self, h: &Tensor, dtype: DType) -> Result<Tensor> {
                self.0.logits(h, dtype)
            }
            fn input_grad(&self, g: &Tensor, dtype: DType) -> Result<Tensor> {
                self.0.input_grad(g, dtype)
            }
            fn logits_f32(&self, h: &Tensor) -> Result<Vec<f32>> {
                self.0.logits_f32(h)
            }
        }
        let dev = Device::Cpu;
        let (b, t, d, vocab) = (3, 7, 24, 1000);
        let hidden = Var::randn(0f32, 1., (b, t, d), &dev)?;
        let dense = Tensor::randn(0f32, 1., (vocab, d), &dev)?;
        let bf16 = BaseWeight::bf16(&dense)?;
        assert!(bf16.as_bf16().is_some());
        let f32 = BaseWeight::F32(dense);
        assert!(f32.as_dense_f32().is_some());
        let labels: Vec<Vec<i64>> = (0..b)
            .map(|r| (0..t).map(|i| if i < r { -100 } else { ((r * 37 + i * 101) % vocab) as i64 }).collect())
            .collect();
        let (pos, tgt) = shifted_targets(&labels);
        let cases = [(1, None), (4, Some(5.0)), (5, Some(5.0)), (64, None)];
        for ((chunk, cap), head) in cases.into_iter().flat_map(|c| [(c, &bf16), (c, &f32)]) {
            let general = General(head.clone());
            for with_grad in [true, false] {
                let fast = lm_head_loss_capped(&hidden, &pos, &tgt, head, cap, 9.0, chunk, with_grad)?;
                let slow = lm_head_loss_capped(&hidden, &pos, &tgt, &general, cap, 9.0, chunk, with_grad)?;
                assert_eq!(
                    fast.sum.to_bits(),
                    slow.sum.to_bits(),
                    "chunk {chunk}: {} vs {}",
                    fast.sum,
                    slow.sum
                );
                assert_eq!(fast.loss.to_scalar::<f32>()?, slow.loss.to_scalar::<f32>()?);
                if with_grad {
                    let gf = fast.loss.backward()?.get(&hidden).unwrap().flatten_all()?.to_vec1::<f32>()?;
                    let gs = slow.loss.backward()?.get(&hidden).unwrap().flatten_all()?.to_vec1::<f32>()?;
                    assert!(gf.iter().any(|&x| x != 0.0));
                    assert_eq!(
                        gf,
                        gs,
                        "{:?} head, chunk {chunk}: input gradients differ",
                        head.stored_type()
                    );
                }
            }
        }
        Ok(())
    }

    #[test]
    fn train_lm_head_loss_f32_and_empty_batch() -> Result<()> {
        let dev = Device::Cpu;
        let hidden = Var::randn(0f32, 1., (1, 4, 8), &dev)?;
        let w = Tensor::randn(0f32, 1., (50, 8), &dev)?;
        let out = lm_head_loss(&hidden, &[], &[], &w, 1.0, 4, true)?;
        assert_eq!(out.count, 0);
        assert_eq!(out.loss.to_scalar::<f32>()?, 0.0);
        // Nothing scored: backward works and yields no gradient (the trainer treats it as 0).
        assert!(out.loss.backward()?.get(&hidden).is_none());
        Ok(())
    }
}
