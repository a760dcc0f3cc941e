//! Turning tokenized examples into padded micro-batches, in a seeded per-epoch order.
//!
//! - Padding: right-padded to the longest example of the batch, `pad_id` for inputs and
//!   `-100` for labels (DataCollatorForSeq2Seq, `padding=True`). With right padding and a
//!   causal mask, real tokens never attend to padding, so no attention mask is needed.
//! - Order: epoch `e` uses a permutation drawn from `Rng::derive(seed, "shuffle", e)`, so the
//!   order of any epoch can be recomputed on resume from `(seed, epoch)` alone.
//! - Group by length (optional, like HF's `LengthGroupedSampler`): the permutation is cut into
//!   mega-batches of `50 × batch_size` examples, each sorted by length (longest first), then
//!   cut into batches — less padding, still random.

use candle_core::{Device, Result, Tensor};

use super::loss::IGNORE_INDEX;
use super::rng::Rng;

#[derive(Debug, Clone, PartialEq)]
pub struct Example {
    pub input_ids: Vec<u32>,
    /// Same length as `input_ids`; `-100` where the token is not learned (the prompt).
    pub labels: Vec<i64>,
}

impl Example {
    /// Prompt tokens masked, response tokens learned (the seed recipe).
    pub fn prompt_response(prompt: &[u32], response: &[u32]) -> Self {
        let input_ids = [prompt, response].concat();
        let labels = prompt.iter().map(|_| IGNORE_INDEX).chain(response.iter().map(|&t| t as i64)).collect();
        Self { input_ids, labels }
    }

    /// Scored tokens once labels are shifted (label 0 is never a target).
    pub fn scored_tokens(&self) -> usize {
        self.labels.iter().skip(1).filter(|&&l| l != IGNORE_INDEX).count()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct BatchPlan {
    pub batch_size: usize,
    pub group_by_length: bool,
    pub seed: u64,
}

/// The example indices of every batch of `epoch`.
pub fn epoch_batches(lengths: &[usize], plan: &BatchPlan, epoch: u64) -> Vec<Vec<usize>> {
    let bs = plan.batch_size.max(1);
    let mut order: Vec<usize> = (0..lengths.len()).collect();
    Rng::derive(plan.seed, "shuffle", epoch).shuffle(&mut order);
    if plan.group_by_length {
        for mega in order.chunks_mut(bs * 50) {
            // Stable sort: ties keep their shuffled order.
            mega.sort_by_key(|&i| std::cmp::Reverse(lengths[i]));
        }
    }
    order.chunks(bs).map(|c| c.to_vec()).collect()
}

/// A padded micro-batch.
#[derive(Debug, Clone, PartialEq)]
pub struct Batch {
    /// `[b][t]`, right-padded with `pad_id`.
    pub input_ids: Vec<Vec<u32>>,
    /// `[b][t]`, right-padded with `-100`.
    pub labels: Vec<Vec<i64>>,
    /// Unpadded lengths.
    pub lengths: Vec<usize>,
}

impl Batch {
    pub fn collate(examples: &[&Example], pad_id: u32) -> Self {
        let t = examples.iter().map(|e| e.input_ids.len()).max().unwrap_or(0);
        let pad = |v: &[u32]| {
            let mut v = v.to_vec();
            v.resize(t, pad_id);
            v
        };
        let pad_l = |v: &[i64]| {
            let mut v = v.to_vec();
            v.resize(t, IGNORE_INDEX);
            v
        };
        Self {
            input_ids: examples.iter().map(|e| pad(&e.input_ids)).collect(),
            labels: examples.iter().map(|e| pad_l(&e.labels)).collect(),
            lengths: examples.iter().map(|e| e.input_ids.len()).collect(),
        }
    }

    pub fn ids_tensor(&self, device: &Device) -> Result<Tensor> {
        let (b, t) = (self.input_ids.len(), self.input_ids.first().map_or(0, |r| r.len()));
        Tensor::from_vec(self.input_ids.concat(), (b, t), device)
    }

    pub fn scored_tokens(&self) -> usize {
        self.labels.iter().map(|r| r.iter().skip(1).filter(|&&l| l != IGNORE_INDEX).count()).sum()
    }

    /// Real (unpadded) tokens, for tokens/s.
    pub fn tokens(&self) -> usize {
        self.lengths.iter().sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn train_collate_pads_right_and_masks_labels() {
        let a = Example::prompt_response(&[5, 6], &[7, 2]);
        let b = Example::prompt_response(&[5], &[2]);
        assert_eq!(a.labels, vec![-100, -100, 7, 2]);
        let batch = Batch::collate(&[&a, &b], 0);
        assert_eq!(batch.input_ids, vec![vec![5, 6, 7, 2], vec![5, 2, 0, 0]]);
        assert_eq!(batch.labels, vec![vec![-100, -100, 7, 2], vec![-100, 2, -100, -100]]);
        assert_eq!(batch.scored_tokens(), 3);
        assert_eq!(batch.tokens(), 6);
        assert_eq!(batch.ids_tensor(&Device::Cpu).unwrap().dims(), &[2, 4]);
    }

    #[test]
    fn train_epoch_order_is_seeded_and_complete() {
        let lengths: Vec<usize> = (0..23).map(|i| (i * 7) % 11 + 1).collect();
        let plan = BatchPlan { batch_size: 4, group_by_length: false, seed: 3 };
        let e0 = epoch_batches(&lengths, &plan, 0);
        assert_eq!(e0, epoch_batches(&lengths, &plan, 0), "same seed and epoch, same order");
        assert_ne!(e0, epoch_batches(&lengths, &plan, 1), "each epoch reshuffles");
        assert_eq!(e0.len(), 6);
        let mut all: Vec<usize> = e0.concat();
        all.sort();
        assert_eq!(all, (0..23).collect::<Vec<_>>());

        let grouped = epoch_batches(&lengths, &BatchPlan { group_by_length: true, ..plan }, 0);
        let lens: Vec<usize> = grouped.concat().iter().map(|&i| lengths[i]).collect();
        assert!(lens.windows(2).all(|w| w[0] >= w[1]), "one mega-batch, sorted longest first");
        let pad = |bs: &Vec<Vec<usize>>| -> usize {
            bs.iter()
                .map(|b| {
                    b.iter().map(|&i| lengths[i]).max().unwrap() * b.len()
                        - b.iter().map(|&i| lengths[i]).sum::<usize>()
                })
                .sum()
        };
        assert!(pad(&grouped) < pad(&e0), "grouping reduces padding");
    }
}
