//! Early stopping on the validation loss, and the adapter weights of the best evaluation.
//!
//! - [`EarlyStopping`]: stop once `patience` evaluations in a row have not improved the best
//!   validation loss by more than `threshold` (HF `EarlyStoppingCallback` semantics).
//! - [`BestWeights`]: a copy of the adapter weights at the lowest validation loss so far, put
//!   back at the end of the run (HF `load_best_model_at_end`, kept in memory: LoRA weights are
//!   small, and no checkpoint has to line up with the evaluations).

use candle_core::{Tensor, Var};

use super::Result;

/// Counts evaluations without improvement.
#[derive(Debug, Clone)]
pub struct EarlyStopping {
    patience: u64,
    threshold: f64,
    best: f64,
    bad: u64,
}

impl EarlyStopping {
    pub fn new(patience: u64, threshold: f64) -> Self {
        Self { patience, threshold, best: f64::INFINITY, bad: 0 }
    }

    /// Records one validation loss; true when training should stop now.
    pub fn observe(&mut self, loss: f64) -> bool {
        if loss < self.best - self.threshold {
            self.best = loss;
            self.bad = 0;
        } else {
            self.bad += 1;
        }
        self.bad >= self.patience
    }
}

/// The adapter weights of the evaluation with the lowest validation loss.
#[derive(Debug, Default)]
pub struct BestWeights {
    best: Option<(u64, f64, Vec<Tensor>)>,
}

impl BestWeights {
    /// Copies `vars` when `loss` (at `step`) is the lowest seen.
    pub fn observe(&mut self, step: u64, loss: f64, vars: &[Var]) -> Result<()> {
        if self.best.as_ref().is_some_and(|(_, best, _)| loss >= *best) {
            return Ok(());
        }
        let copies = vars.iter().map(|v| v.as_tensor().copy()).collect::<candle_core::Result<_>>()?;
        self.best = Some((step, loss, copies));
        Ok(())
    }

    /// The step and loss of the best evaluation.
    pub fn best(&self) -> Option<(u64, f64)> {
        self.best.as_ref().map(|(step, loss, _)| (*step, *loss))
    }

    /// Puts the best weights back into `vars` (nothing when there was no evaluation).
    pub fn restore(&self, vars: &[Var]) -> Result<()> {
        if let Some((_, _, copies)) = &self.best {
            for (var, copy) in vars.iter().zip(copies) {
                var.set(copy)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn stops_after_patience_evaluations_without_improvement() {
        let mut stop = EarlyStopping::new(2, 0.0);
        assert!(!stop.observe(1.0));
        assert!(!stop.observe(0.9));
        assert!(!stop.observe(0.95)); // 1 bad
        assert!(!stop.observe(0.8)); // improvement resets the count
        assert!(!stop.observe(0.8)); // equal is not better
        assert!(stop.observe(0.85));
    }

    #[test]
    fn an_improvement_must_beat_the_threshold() {
        let mut stop = EarlyStopping::new(1, 0.1);
        assert!(!stop.observe(1.0));
        assert!(stop.observe(0.95));
    }

    #[test]
    fn keeps_and_restores_the_weights_of_the_lowest_loss() -> Result<()> {
        let var = Var::new(&[1f32, 2.0], &Device::Cpu)?;
        let mut best = BestWeights::default();
        best.observe(1, 0.5, std::slice::from_ref(&var))?;
        var.set(&Tensor::new(&[3f32, 4.0], &Device::Cpu)?)?;
        best.observe(2, 0.7, std::slice::from_ref(&var))?; // worse: not kept
        var.set(&Tensor::new(&[5f32, 6.0], &Device::Cpu)?)?;
        assert_eq!(best.best(), Some((1, 0.5)));
        best.restore(std::slice::from_ref(&var))?;
        assert_eq!(var.as_tensor().to_vec1::<f32>()?, vec![1.0, 2.0]);
        Ok(())
    }
}
