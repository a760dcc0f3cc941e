//! Learning-rate schedules, the same functions as transformers'
//! `get_{linear,cosine,constant}_schedule_with_warmup`.
//!
//! `lr(step)` is the rate used by the optimiser step that follows `step` completed steps
//! (the first update uses `lr(0)`, which is 0 whenever there is warmup — as in HF).

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ScheduleKind {
    /// Warmup, then linear decay to 0 at the last step (HF's default).
    Linear,
    /// Warmup, then half a cosine down to 0.
    Cosine,
    /// Warmup (if any), then constant (HF's `constant` / `constant_with_warmup`).
    Constant,
}

impl std::str::FromStr for ScheduleKind {
    type Err = super::TrainError;
    fn from_str(s: &str) -> super::Result<Self> {
        match s {
            "linear" => Ok(Self::Linear),
            "cosine" => Ok(Self::Cosine),
            "constant" | "constant_with_warmup" => Ok(Self::Constant),
            other => Err(super::TrainError::Config(format!(
                "unknown learning-rate schedule {other:?}; use \"linear\", \"cosine\" or \"constant\""
            ))),
        }
    }
}

/// Warmup given as a number of steps or as a fraction of the total.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Warmup {
    Steps(u64),
    /// `ceil(total_steps · ratio)`, as `TrainingArguments.get_warmup_steps`.
    Ratio(f64),
}

#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Schedule {
    pub kind: ScheduleKind,
    pub base_lr: f64,
    pub warmup_steps: u64,
    pub total_steps: u64,
}

impl Schedule {
    pub fn new(kind: ScheduleKind, base_lr: f64, warmup: Warmup, total_steps: u64) -> Self {
        let warmup_steps = match warmup {
            Warmup::Steps(n) => n,
            Warmup::Ratio(r) => (total_steps as f64 * r).ceil() as u64,
        };
        Self { kind, base_lr, warmup_steps, total_steps }
    }

    /// The multiplier of `base_lr` after `step` completed optimiser steps.
    pub fn factor(&self, step: u64) -> f64 {
        let (step, warmup, total) = (step as f64, self.warmup_steps as f64, self.total_steps as f64);
        if step < warmup {
            return step / warmup.max(1.0);
        }
        match self.kind {
            ScheduleKind::Constant => 1.0,
            ScheduleKind::Linear => ((total - step) / (total - warmup).max(1.0)).max(0.0),
            ScheduleKind::Cosine => {
                let progress = (step - warmup) / (total - warmup).max(1.0);
                (0.5 * (1.0 + (std::f64::consts::PI * 0.5 * 2.0 * progress).cos())).max(0.0)
            }
        }
    }

    pub fn lr(&self, step: u64) -> f64 {
        self.base_lr * self.factor(step)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn train_schedule_shapes() {
        let lin = Schedule::new(ScheduleKind::Linear, 1.0, Warmup::Steps(2), 10);
        let got: Vec<f64> = (0..=10).map(|s| lin.lr(s)).collect();
        assert_eq!(&got[..3], &[0.0, 0.5, 1.0]);
        assert!((got[6] - 0.5).abs() < 1e-12 && got[10] == 0.0);
        let cos = Schedule::new(ScheduleKind::Cosine, 2.0, Warmup::Ratio(0.1), 20);
        assert_eq!(cos.warmup_steps, 2);
        assert!((cos.lr(11) - 1.0).abs() < 1e-12);
        let c = Schedule::new(ScheduleKind::Constant, 3.0, Warmup::Steps(0), 5);
        assert_eq!(c.lr(0), 3.0);
        assert!("warmup".parse::<ScheduleKind>().is_err());
    }
}
