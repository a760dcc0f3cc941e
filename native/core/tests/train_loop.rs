//! The training loop on a toy model (embedding → LoRA linear → tanh → LM head): gradient
//! accumulation semantics, cancel + resume reproducing the uninterrupted trajectory, learning.

use std::cell::Cell;
use std::path::PathBuf;
use std::sync::Arc;

use candle_core::Module;
use candle_core::{Device, Tensor};
use tunekit_core::decoder::Linear;
use tunekit_core::train::batching::{Batch, Example};
use tunekit_core::train::lora::{LoraAdapter, LoraConfig, LoraShared};
use tunekit_core::train::rng::Rng;
use tunekit_core::train::trainer::{self, Adapters, TrainConfig, TrainableModel};

const VOCAB: usize = 12;
const DIM: usize = 16;

struct Toy {
    embed: Tensor,
    proj: Linear,
    lm_head: Tensor,
    device: Device,
}

impl TrainableModel for Toy {
    fn hidden_states(&self, ids: &Tensor) -> candle_core::Result<Tensor> {
        let (b, s) = ids.dims2()?;
        let e = self.embed.index_select(&ids.flatten_all()?, 0)?.reshape((b, s, DIM))?;
        self.proj.forward(&e)?.tanh()
    }
    fn lm_head_weight(&self) -> &Tensor {
        &self.lm_head
    }
    fn device(&self) -> &Device {
        &self.device
    }
}

/// Base weights are fixed; the LoRA init depends on `init_seed`.
fn toy(init_seed: u64, dropout: f64) -> (Toy, Adapters) {
    let dev = Device::Cpu;
    let mut base = Rng::new(1);
    let mut t = |shape: (usize, usize)| {
        Tensor::from_vec(base.uniform_vec(shape.0 * shape.1, -1.0, 1.0), shape, &dev).unwrap()
    };
    let (embed, weight, lm_head) = (t((VOCAB, DIM)), t((DIM, DIM)), t((VOCAB, DIM)));
    let config =
        LoraConfig { r: 8, alpha: 16.0, dropout, use_rslora: false, target_modules: vec!["proj".into()] };
    let shared = LoraShared::new(init_seed);
    let mut adapter =
        LoraAdapter::init(DIM, DIM, &config, &mut Rng::new(init_seed), 0, shared.clone(), &dev).unwrap();
    // PEFT's B = 0 would be fine for training; a non-zero B makes the first steps' A gradients non-zero too.
    adapter.b = candle_core::Var::from_tensor(&(adapter.b.as_tensor() + 0.01).unwrap()).unwrap();
    let adapter = Arc::new(adapter);
    let proj = Linear { adapter: Some(adapter.clone()), ..Linear::new(weight, None) };
    let adapters = Adapters { config, shared, modules: vec![("proj".into(), adapter)] };
    (Toy { embed, proj, lm_head, device: dev }, adapters)
}

/// "Increment" examples: prompt `[1, x]`, response `[x + 1, 2]`.
fn data(n: usize) -> Vec<Example> {
    (0..n).map(|i| Example::prompt_response(&[1, 3 + (i % 7) as u32], &[4 + (i % 7) as u32, 2])).collect()
}

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("tunekit-train-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

#[test]
fn train_grad_accumulation_equals_one_big_batch() {
    let (model, adapters) = toy(3, 0.0);
    let vars = adapters.vars();
    let cfg = TrainConfig { lm_head_chunk: 3, ..TrainConfig::default() };
    // Different numbers of scored tokens per example, so equal micro-batch weighting would differ.
    let a = Example::prompt_response(&[1], &[5, 6, 7, 2]);
    let b = Example::prompt_response(&[1, 3, 4, 5], &[6]);
    let never = || false;
    let one = vec![Batch::collate(&[&a, &b], 0)];
    let two = vec![Batch::collate(&[&a], 0), Batch::collate(&[&b], 0)];
    let (g1, l1) =
        trainer::window_gradients(&model, &adapters, &vars, &one, &cfg, 0, &never).unwrap().unwrap();
    let (g2, l2) =
        trainer::window_gradients(&model, &adapters, &vars, &two, &cfg, 0, &never).unwrap().unwrap();
    assert!((l1 - l2).abs() < 1e-6 * l1, "loss {l1} vs {l2}");
    for (x, y) in g1.iter().zip(&g2) {
        let d = (x - y).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
        let s = x.abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
        assert!(s > 0.0 && d <= 1e-6 * s, "grad diff {d} (scale {s})");
    }
}

#[test]
fn train_cancel_and_resume_reproduce_the_trajectory() {
    let examples = data(10);
    let cfg = |dir: PathBuf| TrainConfig {
        epochs: 3,
        batch_size: 2,
        grad_accum: 2,
        learning_rate: 5e-2,
        seed: 11,
        save_steps: Some(2),
        output_dir: Some(dir),
        ..TrainConfig::default()
    };
    let never = || false;

    // Uninterrupted run (dropout on, so the dropout stream must resume correctly too).
    let dir_a = tmp("full");
    let (model, adapters) = toy(5, 0.1);
    let mut full = Vec::new();
    let out = trainer::train(
        &model,
        &adapters,
        &examples,
        &[],
        &cfg(dir_a.clone()),
        &mut |r| full.push(r.loss),
        &never,
    )
    .unwrap();
    assert!(!out.cancelled);
    assert_eq!(full.len(), 9); // 5 batches/epoch → 3 windows/epoch × 3 epochs
    let final_a = adapters
        .vars()
        .iter()
        .map(|v| v.as_tensor().flatten_all().unwrap().to_vec1::<f32>().unwrap())
        .collect::<Vec<_>>();

    // Cancelled after step 5 (periodic checkpoints every 2 steps): the cancel itself saves
    // checkpoint-5, so no finished step is lost; then resumed.
    let dir_b = tmp("resumed");
    let (model, adapters) = toy(5, 0.1);
    let done = Cell::new(0u64);
    let cancel = || done.get() >= 5;
    let out = trainer::train(
        &model,
        &adapters,
        &examples,
        &[],
        &cfg(dir_b.clone()),
        &mut |r| done.set(r.step),
        &cancel,
    )
    .unwrap();
    assert!(out.cancelled);
    assert_eq!(out.state.global_step, 5);
    assert_eq!(out.last_checkpoint, Some(dir_b.join("checkpoint-5")));
    assert!(dir_b.join("checkpoint-4").is_dir(), "the periodic checkpoint is kept too");

    // A fresh process would build the model with some other init; the checkpoint overrides it.
    let (model, adapters) = toy(99, 0.1);
    let mut resumed = Vec::new();
    let out = trainer::train(
        &model,
        &adapters,
        &examples,
        &[],
        &TrainConfig { resume: true, ..cfg(dir_b.clone()) },
        &mut |r| resumed.push((r.step, r.loss)),
        &never,
    )
    .unwrap();
    assert!(!out.cancelled);
    assert_eq!(resumed.first().unwrap().0, 6, "resumes after checkpoint-5");
    for (step, loss) in &resumed {
        let want = full[*step as usize - 1];
        assert!((loss - want).abs() <= 1e-6 * want.abs(), "step {step}: {loss} vs uninterrupted {want}");
    }
    let final_b = adapters
        .vars()
        .iter()
        .map(|v| v.as_tensor().flatten_all().unwrap().to_vec1::<f32>().unwrap())
        .collect::<Vec<_>>();
    assert_eq!(final_a, final_b, "same final adapter");

    // Resuming with settings that change the batches is refused, not silently different.
    let (model, adapters) = toy(5, 0.1);
    let other = TrainConfig { resume: true, batch_size: 3, ..cfg(dir_b.clone()) };
    let err = trainer::train(&model, &adapters, &examples, &[], &other, &mut |_| {}, &never).unwrap_err();
    assert!(err.to_string().contains("cannot resume"), "{err}");
    let _ = std::fs::remove_dir_all(dir_a);
    let _ = std::fs::remove_dir_all(dir_b);
}

const CRASH_DIR_ENV: &str = "TUNEKIT_TRAIN_CRASH_DIR";

fn resume_cfg(dir: PathBuf) -> TrainConfig {
    TrainConfig {
        epochs: 3,
        batch_size: 2,
        grad_accum: 2,
        learning_rate: 5e-2,
        seed: 11,
        save_steps: Some(2),
        output_dir: Some(dir),
        ..TrainConfig::default()
    }
}

/// Child half of the crash test: trains and dies in the middle of writing checkpoint-4
/// (after its adapter config, before the adapter weights). Only its parent runs it.
#[test]
#[ignore = "child half of train_abrupt_exit_during_checkpoint_resumes_from_last_complete, which runs it"]
fn train_crash_during_checkpoint_child() {
    let dir = std::env::var(CRASH_DIR_ENV).expect("run by its parent test, which sets the directory");
    tunekit_core::train::checkpoint::AFTER_FILE_WRITTEN
        .set(|p| {
            let in_ckpt4 = p
                .parent()
                .and_then(|d| d.file_name())
                .is_some_and(|n| n.to_string_lossy().contains("checkpoint-4"));
            if in_ckpt4 && p.ends_with("adapter_config.json") {
                std::process::abort();
            }
        })
        .unwrap();
    let (model, adapters) = toy(5, 0.1);
    trainer::train(&model, &adapters, &data(10), &[], &resume_cfg(PathBuf::from(dir)), &mut |_| {}, &|| {
        false
    })
    .unwrap();
    unreachable!("the hook aborts during checkpoint-4");
}

/// A process killed while writing checkpoint-4 resumes from checkpoint-2 and reproduces the
/// uninterrupted trajectory; the partial checkpoint-4 is never used.
#[test]
fn train_abrupt_exit_during_checkpoint_resumes_from_last_complete() {
    let never = || false;
    let (model, adapters) = toy(5, 0.1);
    let dir_a = tmp("crash-ref");
    let mut full = Vec::new();
    trainer::train(
        &model,
        &adapters,
        &data(10),
        &[],
        &resume_cfg(dir_a.clone()),
        &mut |r| full.push(r.loss),
        &never,
    )
    .unwrap();
    let final_a: Vec<Vec<f32>> =
        adapters.vars().iter().map(|v| v.as_tensor().flatten_all().unwrap().to_vec1().unwrap()).collect();

    let dir = tmp("crash");
    let status = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "train_crash_during_checkpoint_child",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CRASH_DIR_ENV, &dir)
        .status()
        .unwrap();
    assert!(!status.success(), "the child must die during the checkpoint write");
    assert!(dir.join("checkpoint-2").exists() && !dir.join("checkpoint-4").exists());

    let (model, adapters) = toy(99, 0.1);
    let mut resumed = Vec::new();
    let out = trainer::train(
        &model,
        &adapters,
        &data(10),
        &[],
        &TrainConfig { resume: true, ..resume_cfg(dir.clone()) },
        &mut |r| resumed.push((r.step, r.loss)),
        &never,
    )
    .unwrap();
    assert_eq!(resumed.first().unwrap().0, 3, "resumes after checkpoint-2");
    for (step, loss) in &resumed {
        let want = full[*step as usize - 1];
        assert!((loss - want).abs() <= 1e-6 * want.abs(), "step {step}: {loss} vs uninterrupted {want}");
    }
    let final_b: Vec<Vec<f32>> =
        adapters.vars().iter().map(|v| v.as_tensor().flatten_all().unwrap().to_vec1().unwrap()).collect();
    assert_eq!(final_a, final_b);
    assert_eq!(out.last_checkpoint, Some(dir.join("checkpoint-9")));
    let leftovers = std::fs::read_dir(&dir)
        .unwrap()
        .filter(|e| e.as_ref().unwrap().file_name().to_string_lossy().starts_with('.'))
        .count();
    assert_eq!(leftovers, 0, "the crashed write's temp dir was cleaned up on resume");
    let _ = std::fs::remove_dir_all(dir_a);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn train_toy_model_learns_increment() {
    let examples = data(14);
    let (model, adapters) = toy(7, 0.0);
    let cfg = TrainConfig { epochs: 30, batch_size: 7, learning_rate: 3e-2, ..TrainConfig::default() };
    let before = trainer::evaluate(&model, &adapters, &examples, &cfg).unwrap();
    let mut reports = Vec::new();
    trainer::train(&model, &adapters, &examples, &examples, &cfg, &mut |r| reports.push(r.clone()), &|| {
        false
    })
    .unwrap();
    let after = trainer::evaluate(&model, &adapters, &examples, &cfg).unwrap();
    let last = reports.last().unwrap();
    assert_eq!(last.eval_loss.map(|l| (l - after).abs() < 1e-9), Some(true), "eval at the end");
    assert!(after < 0.5 * before, "loss {before} -> {after}");
    assert!(last.learning_rate > 0.0 && last.grad_norm.is_finite() && last.tokens_per_sec > 0.0);
}

/// A residual stack `h ← h + tanh(lora_i(h))` that exposes its layers.
struct Stack {
    embed: Tensor,
    layers: Vec<Linear>,
    lm_head: Tensor,
    device: Device,
}

impl trainer::LayeredModel for Stack {
    fn num_layers(&self) -> usize {
        self.layers.len()
    }
    fn embed(&self, ids: &Tensor) -> candle_core::Result<Tensor> {
        let (b, s) = ids.dims2()?;
        self.embed.index_select(&ids.flatten_all()?, 0)?.reshape((b, s, DIM))
    }
    fn layer(&self, i: usize, h: &Tensor) -> candle_core::Result<Tensor> {
        h + self.layers[i].forward(h)?.tanh()?
    }
    fn final_norm(&self, h: &Tensor) -> candle_core::Result<Tensor> {
        h.tanh()
    }
}

impl TrainableModel for Stack {
    fn hidden_states(&self, ids: &Tensor) -> candle_core::Result<Tensor> {
        use trainer::LayeredModel;
        let mut h = self.embed(ids)?;
        for i in 0..self.num_layers() {
            h = self.layer(i, &h)?;
        }
        self.final_norm(&h)
    }
    fn lm_head_weight(&self) -> &Tensor {
        &self.lm_head
    }
    fn device(&self) -> &Device {
        &self.device
    }
    fn layered(&self) -> Option<&dyn trainer::LayeredModel> {
        Some(self)
    }
}

#[test]
fn train_gradient_checkpointing_gives_the_same_gradients() {
    let dev = Device::Cpu;
    let mut rng = Rng::new(2);
    let config =
        LoraConfig { r: 4, alpha: 8.0, dropout: 0.2, use_rslora: false, target_modules: vec!["proj".into()] };
    let shared = LoraShared::new(5);
    let mut modules = Vec::new();
    let mut layers = Vec::new();
    for i in 0..3 {
        let w = Tensor::from_vec(rng.uniform_vec(DIM * DIM, -0.5, 0.5), (DIM, DIM), &dev).unwrap();
        let b = Tensor::from_vec(rng.uniform_vec(DIM * 4, -0.1, 0.1), (DIM, 4), &dev).unwrap();
        let init = LoraAdapter::init(DIM, DIM, &config, &mut rng, i, shared.clone(), &dev).unwrap();
        let a =
            Arc::new(LoraAdapter::from_weights(init.a.as_tensor(), &b, &config, i, shared.clone()).unwrap());
        modules.push((format!("layers.{i}.proj"), a.clone()));
        layers.push(Linear { adapter: Some(a), ..Linear::new(w, None) });
    }
    let embed = Tensor::from_vec(rng.uniform_vec(VOCAB * DIM, -1.0, 1.0), (VOCAB, DIM), &dev).unwrap();
    let lm_head = Tensor::from_vec(rng.uniform_vec(VOCAB * DIM, -1.0, 1.0), (VOCAB, DIM), &dev).unwrap();
    let model = Stack { embed, layers, lm_head, device: dev };
    let adapters = Adapters { config, shared: shared.clone(), modules };
    shared.set_training(true); // dropout on: the recompute must redraw the same masks

    let vars = adapters.vars();
    let ex = data(6);
    let batches = vec![
        Batch::collate(&ex[..3].iter().collect::<Vec<_>>(), 0),
        Batch::collate(&ex[3..].iter().collect::<Vec<_>>(), 0),
    ];
    let plain = TrainConfig::default();
    let ckpt = TrainConfig { gradient_checkpointing: true, ..TrainConfig::default() };
    let (g1, l1) =
        trainer::window_gradients(&model, &adapters, &vars, &batches, &plain, 4, &|| false).unwrap().unwrap();
    let (g2, l2) =
        trainer::window_gradients(&model, &adapters, &vars, &batches, &ckpt, 4, &|| false).unwrap().unwrap();
    assert!((l1 - l2).abs() <= 1e-6 * l1);
    for (x, y) in g1.iter().zip(&g2) {
        let d = (x - y).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
        let s = x.abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
        assert!(s > 0.0 && d <= 1e-5 * s, "checkpointed grad differs by {d} (scale {s})");
    }
    // The toy without per-layer access refuses instead of silently not checkpointing.
    let (toy_model, toy_adapters) = toy(1, 0.0);
    let err = trainer::window_gradients(
        &toy_model,
        &toy_adapters,
        &toy_adapters.vars(),
        &batches,
        &ckpt,
        0,
        &|| false,
    );
    assert!(err.is_err());
}

/// A resume continues the run it finds only when it would compute the same thing: the same
/// tokenized training set (not merely as many examples) and the same settings. Anything else
/// is refused, naming what differs.
#[test]
fn train_resume_refuses_other_data_or_settings() {
    let examples = data(10);
    let cfg = |dir: PathBuf| TrainConfig {
        epochs: 2,
        batch_size: 2,
        learning_rate: 5e-2,
        seed: 3,
        save_steps: Some(2),
        output_dir: Some(dir),
        ..TrainConfig::default()
    };
    let dir = tmp("fingerprint");
    let (model, adapters) = toy(5, 0.0);
    let done = Cell::new(0u64);
    let out = trainer::train(
        &model,
        &adapters,
        &examples,
        &[],
        &cfg(dir.clone()),
        &mut |r| done.set(r.step),
        &|| done.get() >= 3,
    )
    .unwrap();
    assert!(out.cancelled && dir.join("checkpoint-3").is_dir());

    let resume = |train: &[tunekit_core::train::batching::Example], cfg: TrainConfig, alpha: f64| {
        let (model, mut adapters) = toy(5, 0.0);
        adapters.config.alpha = alpha;
        trainer::train(
            &model,
            &adapters,
            train,
            &[],
            &TrainConfig { resume: true, ..cfg },
            &mut |_| {},
            &|| false,
        )
    };
    // Same size, other content: one response token differs.
    let mut other = data(10);
    other[7] = Example::prompt_response(&[1, 9], &[7, 2]);
    let err = resume(&other, cfg(dir.clone()), 16.0).unwrap_err().to_string();
    assert!(err.contains("cannot resume") && err.contains("training data differs"), "{err}");
    let err = resume(&examples, TrainConfig { learning_rate: 1e-2, ..cfg(dir.clone()) }, 16.0).unwrap_err();
    assert!(err.to_string().contains("learning_rate"), "{err}");
    let err = resume(&examples, cfg(dir.clone()), 32.0).unwrap_err();
    assert!(err.to_string().contains("lora_alpha"), "{err}");
    // The checkpoint is untouched by the refusals: the same run resumes and finishes.
    let out = resume(&examples, cfg(dir.clone()), 16.0).unwrap();
    assert!(!out.cancelled);
    assert_eq!(out.state.global_step, 10);
    let _ = std::fs::remove_dir_all(dir);
}
