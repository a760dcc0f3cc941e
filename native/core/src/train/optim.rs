//! AdamW and global-norm gradient clipping, written to follow `torch.optim.AdamW`
//! (single-tensor path) and `torch.nn.utils.clip_grad_norm_` operation by operation.
//!
//! candle-nn's `AdamW` is not used: it defaults to weight decay 0.01, orders the bias
//! corrections differently, and cannot save or restore its moments.

use std::collections::HashMap;

use candle_core::{DType, Result, Tensor, Var};

#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct AdamWConfig {
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    pub weight_decay: f64,
}

impl Default for AdamWConfig {
    /// Hugging Face Trainer's defaults: β 0.9/0.999, ε 1e-8, no weight decay.
    fn default() -> Self {
        Self { beta1: 0.9, beta2: 0.999, eps: 1e-8, weight_decay: 0.0 }
    }
}

pub struct AdamW {
    pub cfg: AdamWConfig,
    vars: Vec<Var>,
    exp_avg: Vec<Tensor>,
    exp_avg_sq: Vec<Tensor>,
    /// Optimiser steps taken (torch's `state["step"]`).
    pub step: u64,
}

impl AdamW {
    pub fn new(vars: Vec<Var>, cfg: AdamWConfig) -> Result<Self> {
        let zeros = |v: &Var| v.as_tensor().zeros_like();
        let exp_avg = vars.iter().map(zeros).collect::<Result<_>>()?;
        let exp_avg_sq = vars.iter().map(zeros).collect::<Result<_>>()?;
        Ok(Self { cfg, vars, exp_avg, exp_avg_sq, step: 0 })
    }

    pub fn vars(&self) -> &[Var] {
        &self.vars
    }

    /// One update with learning rate `lr`; `grads[i]` belongs to `vars()[i]`.
    pub fn step(&mut self, grads: &[Tensor], lr: f64) -> Result<()> {
        assert_eq!(grads.len(), self.vars.len(), "one gradient per parameter");
        self.step += 1;
        let AdamWConfig { beta1, beta2, eps, weight_decay } = self.cfg;
        let bias_correction1 = 1.0 - beta1.powi(self.step as i32);
        let bias_correction2 = 1.0 - beta2.powi(self.step as i32);
        let step_size = lr / bias_correction1;
        let bias_correction2_sqrt = bias_correction2.sqrt();
        for (i, var) in self.vars.iter().enumerate() {
            let g = grads[i].to_dtype(var.dtype())?;
            let mut p = var.as_tensor().detach();
            if weight_decay != 0.0 {
                p = (p * (1.0 - lr * weight_decay))?;
            }
            // exp_avg.lerp_(grad, 1 - beta1); exp_avg_sq.mul_(beta2).addcmul_(grad, grad, 1 - beta2)
            let m = (&self.exp_avg[i] + ((&g - &self.exp_avg[i])? * (1.0 - beta1))?)?;
            let v = ((&self.exp_avg_sq[i] * beta2)? + (g.sqr()? * (1.0 - beta2))?)?;
            // denom = (exp_avg_sq.sqrt() / bias_correction2_sqrt).add_(eps)
            let denom = ((v.sqrt()? / bias_correction2_sqrt)? + eps)?;
            // param.addcdiv_(exp_avg, denom, value=-step_size)
            let p = (p - (m.div(&denom)? * step_size)?)?;
            var.set(&p)?;
            self.exp_avg[i] = m;
            self.exp_avg_sq[i] = v;
        }
        Ok(())
    }

    /// Moments as named tensors (`exp_avg.{i}`, `exp_avg_sq.{i}`), for checkpoints.
    pub fn state_tensors(&self) -> HashMap<String, Tensor> {
        let mut out = HashMap::new();
        for i in 0..self.vars.len() {
            out.insert(format!("exp_avg.{i}"), self.exp_avg[i].clone());
            out.insert(format!("exp_avg_sq.{i}"), self.exp_avg_sq[i].clone());
        }
        out
    }

    pub fn load_state_tensors(&mut self, step: u64, tensors: &HashMap<String, Tensor>) -> Result<()> {
        for i in 0..self.vars.len() {
            for (name, slot) in [("exp_avg", &mut self.exp_avg[i]), ("exp_avg_sq", &mut self.exp_avg_sq[i])] {
                let key = format!("{name}.{i}");
                let t = tensors
                    .get(&key)
                    .ok_or_else(|| candle_core::Error::Msg(format!("optimizer state lacks {key}")))?;
                if t.dims() != self.vars[i].dims() {
                    candle_core::bail!(
                        "optimizer state {key} has shape {:?}, expected {:?}",
                        t.dims(),
                        self.vars[i].dims()
                    )
                }
                *slot = t.to_dtype(self.vars[i].dtype())?.to_device(self.vars[i].device())?;
            }
        }
        self.step = step;
        Ok(())
    }
}

/// Scales `grads` in place so their global L2 norm is at most `max_norm`, like
/// `torch.nn.utils.clip_grad_norm_`: `coef = min(1, max_norm / (norm + 1e-6))`, applied to
/// every gradient. Returns the norm *before* clipping (what HF logs as `grad_norm`).
pub fn clip_grad_norm(grads: &mut [Tensor], max_norm: f64) -> Result<f64> {
    let mut sq = 0f64;
    for g in grads.iter() {
        let n = g.to_dtype(DType::F32)?.sqr()?.sum_all()?.sqrt()?.to_scalar::<f32>()? as f64;
        sq += n * n;
    }
    let total = sq.sqrt();
    if max_norm > 0.0 {
        let coef = (max_norm / (total + 1e-6)).min(1.0);
        for g in grads.iter_mut() {
            *g = (&*g * coef)?;
        }
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn train_adamw_first_step_is_sign_times_lr() -> Result<()> {
        // With bias correction, step 1 moves each weight by lr · g/(|g| + ε') ≈ lr · sign(g).
        let dev = Device::Cpu;
        let p = Var::from_slice(&[1f32, -2., 3.], 3, &dev)?;
        let mut opt = AdamW::new(vec![p.clone()], AdamWConfig::default())?;
        opt.step(&[Tensor::from_slice(&[0.5f32, -0.1, 0.0], 3, &dev)?], 0.01)?;
        let got = p.as_tensor().to_vec1::<f32>()?;
        assert!((got[0] - 0.99).abs() < 1e-6 && (got[1] + 1.99).abs() < 1e-6 && got[2] == 3.0, "{got:?}");
        Ok(())
    }

    #[test]
    fn train_clip_grad_norm_scales_only_above_max() -> Result<()> {
        let dev = Device::Cpu;
        let mut g = vec![Tensor::from_slice(&[3f32, 0.], 2, &dev)?, Tensor::from_slice(&[4f32], 1, &dev)?];
        let n = clip_grad_norm(&mut g, 1.0)?;
        assert!((n - 5.0).abs() < 1e-6);
        let after: f32 =
            g.iter().map(|t| t.sqr().unwrap().sum_all().unwrap().to_scalar::<f32>().unwrap()).sum();
        assert!((after.sqrt() - 1.0).abs() < 1e-5);
        let mut small = vec![Tensor::from_slice(&[0.3f32], 1, &dev)?];
        clip_grad_norm(&mut small, 1.0)?;
        assert!((small[0].to_vec1::<f32>()?[0] - 0.3).abs() < 1e-6);
        Ok(())
    }
}
