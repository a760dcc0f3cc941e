//! Fused causal attention: rope, scaled scores, the causal (and sliding-window) mask, softmax
//! and the value product as one graph node over the projections' outputs.
//!
//! Composed from candle ops, one layer's attention keeps for backward the rope outputs, the
//! transposed copies, the `[b, heads, s, t]` scores and probabilities and the output's
//! transpose copy (about 60 % of a SmolLM2-shaped layer's saved activations at 128 tokens,
//! growing with `s²`). This node keeps only its inputs `q`, `k`, `v` (which the graph holds
//! anyway as projection outputs), its output (held by `o_proj`) and one log-sum-exp per query
//! row; backward recomputes the probabilities block by block ([`super::attention_kernel`]).
//! Grouped-query attention reads each kv head for its whole group without repeating it.
//!
//! f32 on the CPU only; [`applies`] says when. The decoder uses it for every cache-less
//! forward (training, evaluation, gradient-checkpointing recompute, logits); generation with a
//! KV cache keeps the composed ops.

use std::sync::{Arc, Mutex};

use candle_core::{CpuStorage, CustomOp3, DType, Layout, Result, Shape, Tensor};

use super::attention_kernel::{self as kernel, Dims};

/// What one attention call computes besides its inputs: head counts, the score scale, and the
/// mask (`offset` of the first query; keys are at positions `0..offset + s`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AttentionSpec {
    pub heads: usize,
    pub kv_heads: usize,
    pub head_dim: usize,
    pub scale: f64,
    pub window: Option<usize>,
    pub offset: usize,
}

/// Whether [`causal_attention`] runs for `q` (f32 on the CPU).
pub fn applies(q: &Tensor) -> bool {
    q.device().is_cpu() && q.dtype() == DType::F32
}

/// `softmax(scale · rope(q)·rope(k)ᵀ + causal mask) · v` per head.
///
/// `q` is `[b, s, heads·d]`, `k` and `v` `[b, offset + s, kv_heads·d]` (the projections'
/// layout, before rope); `cos`/`sin` are the rope tables `[offset + s, d]` of the key positions
/// (query row `i` is at position `offset + i`). Returns `[b, s, heads·d]`, ready for `o_proj`.
///
/// ```
/// use candle_core::{Device, Tensor};
/// use tunekit_core::config::RopeScaling;
/// use tunekit_core::decoder::attention::{causal_attention, AttentionSpec};
/// use tunekit_core::decoder::Rotary;
///
/// let (b, s, heads, kv_heads, d) = (1, 4, 2, 1, 8);
/// let q = Tensor::randn(0f32, 1., (b, s, heads * d), &Device::Cpu)?;
/// let k = Tensor::randn(0f32, 1., (b, s, kv_heads * d), &Device::Cpu)?;
/// let v = Tensor::randn(0f32, 1., (b, s, kv_heads * d), &Device::Cpu)?;
/// let (cos, sin) = Rotary::with(d, 10_000.0, &RopeScaling::None).tables(0, s, &Device::Cpu).unwrap();
/// let spec = AttentionSpec { heads, kv_heads, head_dim: d, scale: 0.35, window: None, offset: 0 };
/// let out = causal_attention(&q, &k, &v, &cos, &sin, spec)?;
/// assert_eq!(out.dims(), &[b, s, heads * d]);
/// # Ok::<(), candle_core::Error>(())
/// ```
pub fn causal_attention(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    cos: &Tensor,
    sin: &Tensor,
    spec: AttentionSpec,
) -> Result<Tensor> {
    let (b, s, qd) = q.dims3()?;
    let (bk, t, kd) = k.dims3()?;
    let d = spec.head_dim;
    let shape_ok = qd == spec.heads * d
        && kd == spec.kv_heads * d
        && bk == b
        && v.dims() == k.dims()
        && t == spec.offset + s
        && spec.kv_heads > 0
        && spec.heads % spec.kv_heads == 0
        && d % 2 == 0
        && cos.dims() == [t, d]
        && sin.dims() == [t, d];
    if !shape_ok {
        candle_core::bail!(
            "causal-attention: q {:?}, k {:?}, v {:?}, tables {:?} do not fit {spec:?}",
            q.shape(),
            k.shape(),
            v.shape(),
            cos.shape()
        )
    }
    if !applies(q) || k.dtype() != DType::F32 || v.dtype() != DType::F32 {
        candle_core::bail!("causal-attention: f32 CPU tensors only")
    }
    let dims = Dims {
        batch: b,
        s,
        t,
        offset: spec.offset,
        heads: spec.heads,
        kv_heads: spec.kv_heads,
        head_dim: d,
        window: spec.window,
        scale: spec.scale as f32,
    };
    let op = CausalAttention {
        dims,
        cos: Arc::new(crate::train::kernels::f32_data(cos)?),
        sin: Arc::new(crate::train::kernels::f32_data(sin)?),
        lse: Mutex::new(None),
    };
    q.contiguous()?.apply_op3(&k.contiguous()?, &v.contiguous()?, op)
}

struct CausalAttention {
    dims: Dims,
    cos: Arc<Vec<f32>>,
    sin: Arc<Vec<f32>>,
    /// `[b, heads, s]`, written by the forward for the backward.
    lse: Mutex<Option<Vec<f32>>>,
}

fn slice<'a>(s: &'a CpuStorage, l: &Layout, what: &str) -> Result<&'a [f32]> {
    match s {
        CpuStorage::F32(v) if l.is_contiguous() => {
            Ok(&v[l.start_offset()..l.start_offset() + l.shape().elem_count()])
        }
        _ => candle_core::bail!("causal-attention: {what} must be contiguous f32"),
    }
}

impl CustomOp3 for CausalAttention {
    fn name(&self) -> &'static str {
        "causal-attention"
    }

    fn cpu_fwd(
        &self,
        qs: &CpuStorage,
        ql: &Layout,
        ks: &CpuStorage,
        kl: &Layout,
        vs: &CpuStorage,
        vl: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (q, k, v) = (slice(qs, ql, "q")?, slice(ks, kl, "k")?, slice(vs, vl, "v")?);
        let (out, lse) = kernel::forward(&self.dims, q, k, v, &self.cos, &self.sin);
        *self.lse.lock().map_err(|_| candle_core::Error::Msg("causal-attention: poisoned".into()))? =
            Some(lse);
        Ok((CpuStorage::F32(out), ql.shape().clone()))
    }

    fn bwd(
        &self,
        q: &Tensor,
        k: &Tensor,
        v: &Tensor,
        out: &Tensor,
        g: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let lse =
            self.lse.lock().map_err(|_| candle_core::Error::Msg("causal-attention: poisoned".into()))?;
        let Some(lse) = lse.as_ref() else { candle_core::bail!("causal-attention: backward before forward") };
        // Read every operand in place (`g` is made contiguous first; the others already are).
        let g = g.contiguous()?;
        let operands = [q, k, v, out, &g].map(|t| t.storage_and_layout());
        let mut views = Vec::with_capacity(operands.len());
        for ((storage, layout), what) in operands.iter().zip(["q", "k", "v", "output", "gradient"]) {
            let candle_core::Storage::Cpu(cpu) = &**storage else {
                candle_core::bail!("causal-attention: {what} is not on the CPU")
            };
            views.push(slice(cpu, layout, what)?);
        }
        let saved = kernel::Saved {
            q: views[0],
            k: views[1],
            v: views[2],
            o: views[3],
            lse,
            cos: &self.cos,
            sin: &self.sin,
        };
        let (dq, dk, dv) = kernel::backward(&self.dims, &saved, views[4]);
        drop(views);
        drop(operands);
        Ok((
            Some(Tensor::from_vec(dq, q.shape(), q.device())?),
            Some(Tensor::from_vec(dk, k.shape(), k.device())?),
            Some(Tensor::from_vec(dv, v.shape(), v.device())?),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decoder::{causal_mask, Rotary};
    use crate::train::testutil::{assert_close, fd_grad};
    use candle_core::{Device, Var, D};

    /// The composed candle ops (f64): rope, repeated kv heads, scores, additive mask, softmax,
    /// value product, transpose back.
    fn composed(
        q: &Tensor,
        k: &Tensor,
        v: &Tensor,
        cos: &Tensor,
        sin: &Tensor,
        spec: AttentionSpec,
    ) -> Result<Tensor> {
        let (b, s, _) = q.dims3()?;
        let t = k.dim(1)?;
        let (h, kvh, d) = (spec.heads, spec.kv_heads, spec.head_dim);
        let rope = |x: &Tensor, cos: &Tensor, sin: &Tensor| -> Result<Tensor> {
            let x1 = x.narrow(D::Minus1, 0, d / 2)?;
            let x2 = x.narrow(D::Minus1, d / 2, d / 2)?;
            let rotated = Tensor::cat(&[&x2.neg()?, &x1], D::Minus1)?;
            x.broadcast_mul(cos)? + rotated.broadcast_mul(sin)?
        };
        let qh = q.reshape((b, s, h, d))?.transpose(1, 2)?.contiguous()?;
        let qh = rope(&qh, &cos.narrow(0, spec.offset, s)?, &sin.narrow(0, spec.offset, s)?)?;
        let kh = rope(&k.reshape((b, t, kvh, d))?.transpose(1, 2)?.contiguous()?, cos, sin)?;
        let vh = v.reshape((b, t, kvh, d))?.transpose(1, 2)?.contiguous()?;
        let groups = h / kvh;
        let idx =
            Tensor::from_vec((0..h as u32).map(|j| j / groups as u32).collect::<Vec<_>>(), h, q.device())?;
        let (kh, vh) = (kh.index_select(&idx, 1)?, vh.index_select(&idx, 1)?);
        let mut scores = (qh.matmul(&kh.t()?)? * spec.scale)?;
        if let Some(m) = causal_mask(s, spec.offset, spec.window, q.device()).unwrap() {
            scores = scores.broadcast_add(&m.to_dtype(q.dtype())?)?;
        }
        let e = scores.broadcast_sub(&scores.max_keepdim(D::Minus1)?.detach())?.exp()?;
        let p = e.broadcast_div(&e.sum_keepdim(D::Minus1)?)?;
        p.matmul(&vh)?.transpose(1, 2)?.reshape((b, s, h * d))
    }

    struct Case {
        b: usize,
        s: usize,
        offset: usize,
        heads: usize,
        kv_heads: usize,
        d: usize,
        window: Option<usize>,
    }

    fn inputs(c: &Case) -> Result<(Vec<Tensor>, Tensor, Tensor, AttentionSpec)> {
        let dev = Device::Cpu;
        let t = c.offset + c.s;
        let q = Tensor::randn(0f64, 1., (c.b, c.s, c.heads * c.d), &dev)?;
        let k = Tensor::randn(0f64, 1., (c.b, t, c.kv_heads * c.d), &dev)?;
        let v = Tensor::randn(0f64, 1., (c.b, t, c.kv_heads * c.d), &dev)?;
        let (cos, sin) =
            Rotary::with(c.d, 10_000.0, &crate::config::RopeScaling::None).tables(0, t, &dev).unwrap();
        let spec = AttentionSpec {
            heads: c.heads,
            kv_heads: c.kv_heads,
            head_dim: c.d,
            scale: 1.0 / (c.d as f64).sqrt(),
            window: c.window,
            offset: c.offset,
        };
        Ok((vec![q, k, v], cos, sin, spec))
    }

    #[test]
    fn fused_attention_matches_composed_ops_values_and_gradients() -> Result<()> {
        let cases = [
            // GQA groups 1, 3, 4; windows; offsets (s ≠ t); more than one query block.
            Case { b: 2, s: 7, offset: 0, heads: 2, kv_heads: 2, d: 8, window: None },
            Case { b: 2, s: 9, offset: 0, heads: 9, kv_heads: 3, d: 16, window: None },
            Case { b: 1, s: 6, offset: 5, heads: 4, kv_heads: 1, d: 8, window: None },
            Case { b: 2, s: 10, offset: 0, heads: 6, kv_heads: 2, d: 8, window: Some(4) },
            Case { b: 1, s: 5, offset: 7, heads: 3, kv_heads: 1, d: 4, window: Some(3) },
            Case { b: 1, s: 150, offset: 0, heads: 4, kv_heads: 1, d: 8, window: Some(70) },
            Case { b: 1, s: 130, offset: 3, heads: 2, kv_heads: 1, d: 8, window: None },
        ];
        for c in &cases {
            let (x64, cos, sin, spec) = inputs(c)?;
            let probe = Tensor::randn(0f64, 1., x64[0].shape(), &Device::Cpu)?;
            let vars64 = x64.iter().map(Var::from_tensor).collect::<Result<Vec<_>>>()?;
            let want = composed(
                &vars64[0],
                &vars64[1],
                &vars64[2],
                &cos.to_dtype(DType::F64)?,
                &sin.to_dtype(DType::F64)?,
                spec,
            )?;
            let want_grads = (&want * &probe)?.sum_all()?.backward()?;

            let vars32 =
                x64.iter().map(|x| Var::from_tensor(&x.to_dtype(DType::F32)?)).collect::<Result<Vec<_>>>()?;
            let got = causal_attention(&vars32[0], &vars32[1], &vars32[2], &cos, &sin, spec)?;
            let err = assert_close(&got, &want, 2e-5)?;
            let grads = (&got * probe.to_dtype(DType::F32)?)?.sum_all()?.backward()?;
            let mut gerr = [0.0; 3];
            for i in 0..3 {
                gerr[i] =
                    assert_close(grads.get(&vars32[i]).unwrap(), want_grads.get(&vars64[i]).unwrap(), 5e-5)?;
            }
            eprintln!(
                "b {} s {} offset {} heads {}/{} window {:?}: value err {err:.1e}, dq/dk/dv err {:.1e}/{:.1e}/{:.1e}",
                c.b, c.s, c.offset, c.heads, c.kv_heads, c.window, gerr[0], gerr[1], gerr[2]
            );
            // Untracked inputs (inference) give the same values, with no graph.
            let plain = causal_attention(
                &vars32[0].as_detached_tensor(),
                &vars32[1].as_detached_tensor(),
                &vars32[2].as_detached_tensor(),
                &cos,
                &sin,
                spec,
            )?;
            assert_close(&plain, &got, 0.0)?;
        }
        Ok(())
    }

    #[test]
    fn fused_attention_gradients_match_finite_differences() -> Result<()> {
        let c = Case { b: 1, s: 5, offset: 2, heads: 3, kv_heads: 1, d: 4, window: Some(4) };
        let (x64, cos, sin, spec) = inputs(&c)?;
        let xs = x64.iter().map(|x| x.to_dtype(DType::F32)).collect::<Result<Vec<_>>>()?;
        let probe = Tensor::randn(0f32, 1., xs[0].shape(), &Device::Cpu)?;
        for i in 0..3 {
            let var = Var::from_tensor(&xs[i])?;
            let f = |x: &Tensor| {
                let mut args = xs.clone();
                args[i] = x.clone();
                (causal_attention(&args[0], &args[1], &args[2], &cos, &sin, spec)?.tanh()? * &probe)?
                    .sum_all()
            };
            let analytic = f(var.as_tensor())?.backward()?.get(&var).unwrap().clone();
            let err = assert_close(&analytic, &fd_grad(&f, var.as_tensor(), 1e-2)?, 2e-2)?;
            eprintln!("input {i}: finite-difference max rel err {err:.1e}");
        }
        Ok(())
    }

    #[test]
    fn fused_attention_refuses_shapes_that_do_not_fit() -> Result<()> {
        let c = Case { b: 1, s: 4, offset: 0, heads: 4, kv_heads: 2, d: 8, window: None };
        let (x64, cos, sin, spec) = inputs(&c)?;
        let xs = x64.iter().map(|x| x.to_dtype(DType::F32)).collect::<Result<Vec<_>>>()?;
        let err = causal_attention(&xs[0], &xs[1], &xs[2], &cos, &sin, AttentionSpec { kv_heads: 3, ..spec })
            .unwrap_err()
            .to_string();
        assert!(err.contains("do not fit"), "{err}");
        let err = causal_attention(
            &x64[0],
            &x64[1],
            &x64[2],
            &cos.to_dtype(DType::F64)?,
            &sin.to_dtype(DType::F64)?,
            spec,
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("f32"), "{err}");
        Ok(())
    }
}
