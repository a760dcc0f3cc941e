//! A projection of the decoder: frozen base matrix, optional bias, optional adapter.
//!
//! This is the adapter seam: every projection of every layer is a [`Linear`], and training,
//! evaluation and generation all call the same [`Linear::forward`]. With an adapter it computes
//! PEFT's `x·Wᵀ + b + scaling · (dropout(x)·Aᵀ)·Bᵀ`; without one, `x·Wᵀ + b`.

use std::sync::Arc;

use candle_core::{Module, Tensor};

use super::base_weight::BaseWeight;
use crate::error::Result;
use crate::train::lora::LoraAdapter;
use crate::weights::Weights;

/// `y = x·Wᵀ + b (+ LoRA delta)` with `W` stored `[out, in]` as in PyTorch checkpoints.
#[derive(Debug, Clone)]
pub struct Linear {
    pub base: BaseWeight,
    pub bias: Option<Tensor>,
    /// The trainable low-rank delta, shared with the trainer's parameter list.
    pub adapter: Option<Arc<LoraAdapter>>,
}

impl Linear {
    /// A plain projection (no adapter) over a dense weight.
    pub fn new(weight: Tensor, bias: Option<Tensor>) -> Self {
        Self { base: BaseWeight::F32(weight), bias, adapter: None }
    }

    pub(super) fn load(
        w: &Weights,
        prefix: &str,
        out: usize,
        inp: usize,
        bias: bool,
        why: &str,
    ) -> Result<Self> {
        let base = w.get_base(&format!("{prefix}.weight"), &[out, inp], why)?;
        let bias = if bias { Some(w.get(&format!("{prefix}.bias"), &[out], why)?) } else { None };
        Ok(Self { base, bias, adapter: None })
    }

    /// `(out, in)`.
    pub fn dims(&self) -> (usize, usize) {
        self.base.dims()
    }

    /// The same projection with its adapter folded into the base (`W + s·B·A`) and removed:
    /// identical outputs without dropout, at the plain projection's cost.
    pub fn merged(&self) -> candle_core::Result<Self> {
        let Some(a) = &self.adapter else { return Ok(self.clone()) };
        let dense = self.base.to_dense()?;
        let delta = a.delta_weight()?.detach().to_dtype(dense.dtype())?;
        Ok(Self { base: BaseWeight::F32((dense + delta)?), bias: self.bias.clone(), adapter: None })
    }
}

impl Linear {
    /// [`Module::forward`] during generation: without an adapter the base uses its decode
    /// product ([`BaseWeight::forward_decode`]); with one, the exact path.
    pub fn forward_decode(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        if self.adapter.is_some() {
            return self.forward(x);
        }
        let y = self.base.forward_decode(x)?;
        match &self.bias {
            Some(b) => y.broadcast_add(b),
            None => Ok(y),
        }
    }

    /// [`Self::forward_decode`] when `decode`, else [`Module::forward`].
    pub fn apply(&self, x: &Tensor, decode: bool) -> candle_core::Result<Tensor> {
        if decode {
            self.forward_decode(x)
        } else {
            self.forward(x)
        }
    }
}

impl Linear {
    /// `self(act(gate) ⊙ up)`: the MLP's down projection over the gated activation. While
    /// training an adapted projection, one node that recomputes the (MLP-wide) activation in
    /// backward instead of keeping it ([`LoraAdapter::glu_linear`]).
    pub fn apply_glu(
        &self,
        gate: &Tensor,
        up: &Tensor,
        act: crate::config::Activation,
        decode: bool,
    ) -> candle_core::Result<Tensor> {
        if let Some(a) = &self.adapter {
            if !decode && a.fuses_glu(gate, up, &self.base, self.bias.as_ref()) {
                return a.glu_linear(gate, up, act, &self.base, self.bias.as_ref());
            }
        }
        self.apply(&crate::train::ops::glu(gate, up, act)?, decode)
    }

    /// `residual + self(x)`: a block's output projection and residual add. While training an
    /// adapted projection, one node, so the projection's output is not kept for backward
    /// ([`LoraAdapter::residual_linear`]).
    pub fn apply_residual(&self, x: &Tensor, residual: &Tensor, decode: bool) -> candle_core::Result<Tensor> {
        if let Some(a) = &self.adapter {
            if !decode && a.fuses_residual(x, residual, &self.base, self.bias.as_ref()) {
                return a.residual_linear(x, residual, &self.base, self.bias.as_ref());
            }
        }
        residual + self.apply(x, decode)?
    }
}

impl Module for Linear {
    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        if let Some(a) = &self.adapter {
            return a.linear(x, &self.base, self.bias.as_ref());
        }
        let y = self.base.forward(x)?;
        match &self.bias {
            Some(b) => y.broadcast_add(b),
            None => Ok(y),
        }
    }
}
