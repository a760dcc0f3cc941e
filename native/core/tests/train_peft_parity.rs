//! End-to-end LoRA training parity with Hugging Face PEFT, for every architecture fixture
//! (test/fixtures/train/lora/<model>, written by scripts/fixtures/make_train_fixtures.py):
//! loss and LoRA gradients at a fixed init (≤ 1e-4 relative), the loss trajectory of 20 AdamW
//! steps (≤ 1e-3 relative), a directional finite-difference check through the whole model,
//! the trained adapter, and the logits of PEFT's trained adapter loaded here.
//!
//! Everything runs on the production path: the decoder with the adapters attached to its
//! projections (`LoraModel`), the same forward pass generation uses.

mod common;

use common::{examples, rel_err};

use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use serde_json::Value;
use tunekit_core::train::batching::Example;
use tunekit_core::train::optim::AdamWConfig;
use tunekit_core::train::peft;
use tunekit_core::train::schedule::{ScheduleKind, Warmup};
use tunekit_core::train::session::LoraModel;
use tunekit_core::train::trainer::{self, TrainConfig, TrainableModel};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../test/fixtures")
}

/// FNV-1a 64 over config.json and the model*.safetensors files in name order (the same
/// function as make_train_fixtures.py's `model_fingerprint`).
fn model_fingerprint(dir: &Path) -> String {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let n = p.file_name().unwrap().to_string_lossy();
            n.starts_with("model") && n.ends_with(".safetensors")
        })
        .collect();
    files.sort();
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for p in std::iter::once(dir.join("config.json")).chain(files) {
        for b in std::fs::read(p).unwrap() {
            h = (h ^ b as u64).wrapping_mul(0x0100_0000_01b3);
        }
    }
    format!("{h:016x}")
}

fn check(name: &str) {
    check_at(name, &root().join("train/lora").join(name));
}

fn check_at(name: &str, fixture: &Path) {
    let fixture = fixture.to_path_buf();
    let expected: Value =
        serde_json::from_str(&std::fs::read_to_string(fixture.join("expected.json")).unwrap()).unwrap();
    let model_name = expected["model"].as_str().unwrap();
    assert_eq!(
        expected["model_fingerprint"].as_str().unwrap(),
        model_fingerprint(&root().join("models").join(model_name)),
        "{name}: the base model fixture changed since the LoRA fixtures were made; \
         run scripts/fixtures/make_train_fixtures.py"
    );
    let model = common::lora_model(&root().join("models").join(model_name), &fixture.join("init"));
    let (data, pad_id) = examples(&fixture);
    let device = Device::Cpu;

    // 1. Loss and LoRA gradients at the fixed init.
    let cfg = TrainConfig { pad_id, batch_size: data.len(), lm_head_chunk: 7, ..TrainConfig::default() };
    let vars = model.adapters.vars();
    let batch = trainer_batch(&data, pad_id);
    let (grads, loss) =
        trainer::window_gradients(&model, &model.adapters, &vars, &[batch], &cfg, 0, &|| false)
            .unwrap()
            .unwrap();
    let want_loss = expected["loss"].as_f64().unwrap();
    let loss_err = (loss - want_loss).abs() / want_loss;
    assert!(loss_err <= 1e-4, "{name}: loss {loss} vs PEFT {want_loss}");
    let reference = candle_core::safetensors::load(fixture.join("grads.safetensors"), &device).unwrap();
    let mut grad_err = 0f64;
    for (i, (path, _)) in model.adapters.modules.iter().enumerate() {
        for (j, half) in ["lora_A", "lora_B"].iter().enumerate() {
            let key = format!("base_model.model.{path}.{half}.weight");
            // A cut gradient path shows up as an all-zero gradient (B is random, so none is 0).
            assert!(
                grads[2 * i + j].abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap() > 0.0,
                "{name}: {key} got no gradient"
            );
            let e = rel_err(&grads[2 * i + j], &reference[&key]);
            assert!(e <= 1e-4, "{name}: gradient of {key}: rel err {e:e}");
            grad_err = grad_err.max(e);
        }
    }
    assert_eq!(reference.len(), 2 * model.adapters.modules.len(), "{name}: every PEFT module is adapted");

    // 2. Directional finite difference through the whole model (f32: a relative check).
    let fd_err = directional_fd(&model, &data, &grads, &cfg);
    assert!(fd_err <= 1e-4, "{name}: finite-difference rel err {fd_err:e}");

    // 3. Twenty AdamW steps (clip 1.0, linear schedule with warmup) with the real loop.
    let train = &expected["train"];
    let steps = expected["steps"].as_u64().unwrap();
    let cfg = TrainConfig {
        epochs: steps,
        batch_size: data.len(),
        learning_rate: train["lr"].as_f64().unwrap(),
        schedule: ScheduleKind::Linear,
        warmup: Warmup::Steps(train["warmup_steps"].as_u64().unwrap()),
        max_grad_norm: train["max_grad_norm"].as_f64().unwrap(),
        adamw: AdamWConfig {
            weight_decay: train["weight_decay"].as_f64().unwrap(),
            ..AdamWConfig::default()
        },
        pad_id,
        ..TrainConfig::default()
    };
    let mut losses = Vec::new();
    trainer::train(&model, &model.adapters, &data, &[], &cfg, &mut |r| losses.push(r.loss), &|| false)
        .unwrap();
    let want: Vec<f64> = expected["losses"].as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect();
    let mut traj_err = 0f64;
    for (k, (got, want)) in losses.iter().zip(&want).enumerate() {
        let e = (got - want).abs() / want;
        assert!(e <= 1e-3, "{name}: step {k}: loss {got} vs PEFT {want}");
        traj_err = traj_err.max(e);
    }
    let final_loss = trainer::evaluate(&model, &model.adapters, &data, &cfg).unwrap();
    let want_final = expected["final_loss"].as_f64().unwrap();
    let final_err = (final_loss - want_final).abs() / want_final;
    assert!(final_err <= 1e-3, "{name}: loss after {steps} steps {final_loss} vs PEFT {want_final}");

    // 4. The adapter we trained equals PEFT's, and survives export/import.
    let ours = model.adapters.to_peft(None);
    let theirs = peft::load(&fixture.join("trained"), &device).unwrap();
    let mut weight_err = 0f64;
    for (path, w) in &theirs.modules {
        weight_err =
            weight_err.max(rel_err(&ours.modules[path].a, &w.a)).max(rel_err(&ours.modules[path].b, &w.b));
    }
    assert!(weight_err <= 1e-3, "{name}: trained adapter rel err {weight_err:e}");
    let dir = std::env::temp_dir().join(format!("tunekit-peft-export-{name}-{}", std::process::id()));
    peft::save(&dir, &ours).unwrap();
    let back = peft::load(&dir, &device).unwrap();
    for (path, w) in &ours.modules {
        assert_eq!(rel_err(&back.modules[path].a, &w.a), 0.0);
        assert_eq!(rel_err(&back.modules[path].b, &w.b), 0.0);
    }
    std::fs::remove_dir_all(&dir).unwrap();

    // 5. PEFT's trained adapter loaded here reproduces PEFT's logits.
    let trained = common::lora_model(&root().join("models").join(model_name), &fixture.join("trained"));
    let ids = &data[0].input_ids;
    let hidden = trained.hidden_states(&Tensor::from_slice(ids, (1, ids.len()), &device).unwrap()).unwrap();
    let logits = hidden.squeeze(0).unwrap().matmul(&trained.lm_head_weight().t().unwrap()).unwrap();
    let logits = tunekit_core::decoder::softcap(&logits, trained.final_logit_softcap()).unwrap();
    let want_logits =
        candle_core::safetensors::load(fixture.join("trained_logits.safetensors"), &device).unwrap();
    let max_diff = (logits - &want_logits["logits"])
        .unwrap()
        .abs()
        .unwrap()
        .max_all()
        .unwrap()
        .to_scalar::<f32>()
        .unwrap();
    assert!(max_diff <= 1e-4, "{name}: logits with PEFT's adapter differ by {max_diff:e}");

    // 6. The training session's own LoRA forward (session.rs: unmerged adapters beside frozen
    //    weights) agrees with PEFT as well: loss and gradients at the init, and the logits of
    //    PEFT's trained adapter.
    let base = tunekit_core::Model::load(root().join("models").join(model_name)).unwrap().decoder;
    let init = peft::load(&fixture.join("init"), &device).unwrap();
    let session = LoraModel::from_peft(base.clone(), &init).unwrap();
    let cfg = TrainConfig { pad_id, batch_size: data.len(), lm_head_chunk: 7, ..TrainConfig::default() };
    let vars = session.adapters.vars();
    let batch = trainer_batch(&data, pad_id);
    let (grads, loss) =
        trainer::window_gradients(&session, &session.adapters, &vars, &[batch], &cfg, 0, &|| false)
            .unwrap()
            .unwrap();
    let session_loss_err = (loss - want_loss).abs() / want_loss;
    assert!(session_loss_err <= 1e-4, "{name}: session loss {loss} vs PEFT {want_loss}");
    let mut session_grad_err = 0f64;
    for (i, (path, _)) in session.adapters.modules.iter().enumerate() {
        for (j, half) in ["lora_A", "lora_B"].iter().enumerate() {
            let key = format!("base_model.model.{path}.{half}.weight");
            let e = rel_err(&grads[2 * i + j], &reference[&key]);
            assert!(e <= 1e-4, "{name}: session gradient of {key}: rel err {e:e}");
            session_grad_err = session_grad_err.max(e);
        }
    }
    let trained =
        LoraModel::from_peft(base, &peft::load(&fixture.join("trained"), &device).unwrap()).unwrap();
    let hidden = trained.hidden_states(&Tensor::from_slice(ids, (1, ids.len()), &device).unwrap()).unwrap();
    let logits = hidden.squeeze(0).unwrap().matmul(&trained.lm_head_weight().t().unwrap()).unwrap();
    let logits = tunekit_core::decoder::softcap(&logits, trained.final_logit_softcap()).unwrap();
    let session_diff = (logits - &want_logits["logits"])
        .unwrap()
        .abs()
        .unwrap()
        .max_all()
        .unwrap()
        .to_scalar::<f32>()
        .unwrap();
    assert!(session_diff <= 1e-4, "{name}: session logits with PEFT's adapter differ by {session_diff:e}");

    println!(
        "{name}: loss rel err {loss_err:.1e}, max grad rel err {grad_err:.1e}, FD rel err {fd_err:.1e}, \
         20-step loss rel err {traj_err:.1e} (final {final_err:.1e}), trained weights {weight_err:.1e}, \
         PEFT-adapter logits max |diff| {max_diff:.1e}; session LoRA forward: loss {session_loss_err:.1e}, \
         grads {session_grad_err:.1e}, logits {session_diff:.1e}"
    );
}

fn trainer_batch(data: &[Example], pad_id: u32) -> tunekit_core::train::batching::Batch {
    tunekit_core::train::batching::Batch::collate(&data.iter().collect::<Vec<_>>(), pad_id)
}

/// Compares the slope `(L(θ + εd) − L(θ − εd)) / 2ε` (Richardson-extrapolated) with `⟨∇L, d⟩` along `d = g ⊙ s` (g the analytic
/// gradient, s = 1, then random weights in [0, 2]). Along such directions the derivative is
/// large, so f32 rounding in the loss stays far below it; a gradient path that is cut or
/// wrong makes the numeric slope disagree with `⟨g, d⟩`.
fn directional_fd(model: &LoraModel, data: &[Example], grads: &[Tensor], cfg: &TrainConfig) -> f64 {
    let vars = model.adapters.vars();
    let saved: Vec<Tensor> = vars.iter().map(|v| v.as_tensor().copy().unwrap()).collect();
    let sq = |ts: &[Tensor]| -> f64 {
        ts.iter()
            .map(|t| {
                t.sqr().unwrap().sum_all().unwrap().to_dtype(DType::F64).unwrap().to_scalar::<f64>().unwrap()
            })
            .sum()
    };
    let theta_norm = sq(&saved).sqrt();
    let loss_at = |shift: &[Tensor], eps: f64| -> f64 {
        for ((v, s), d) in vars.iter().zip(&saved).zip(shift) {
            v.set(&(s + (d * eps).unwrap()).unwrap()).unwrap();
        }
        let l = trainer::evaluate(model, &model.adapters, data, cfg).unwrap();
        for (v, s) in vars.iter().zip(&saved) {
            v.set(s).unwrap();
        }
        l
    };
    let mut worst = 0f64;
    for seed in 0..3u64 {
        let mut rng = tunekit_core::train::rng::Rng::new(seed);
        let dirs: Vec<Tensor> = grads
            .iter()
            .map(|g| {
                let s = if seed == 0 {
                    vec![1f32; g.elem_count()]
                } else {
                    rng.uniform_vec(g.elem_count(), 0.0, 2.0)
                };
                (g * Tensor::from_vec(s, g.shape(), g.device()).unwrap()).unwrap()
            })
            .collect();
        let analytic: f64 = grads
            .iter()
            .zip(&dirs)
            .map(|(g, d)| {
                (g * d).unwrap().sum_all().unwrap().to_dtype(DType::F64).unwrap().to_scalar::<f64>().unwrap()
            })
            .sum();
        // Steps of 0.3% and 0.15% of the parameters' norm, combined by Richardson
        // extrapolation (cancels the O(ε²) error of central differences).
        let eps = 3e-3 * theta_norm / sq(&dirs).sqrt();
        let central = |e: f64| (loss_at(&dirs, e) - loss_at(&dirs, -e)) / (2.0 * e);
        let numeric = (4.0 * central(eps / 2.0) - central(eps)) / 3.0;
        worst = worst.max((numeric - analytic).abs() / analytic.abs());
    }
    worst
}

#[test]
fn train_peft_parity_llama_tied_gqa() {
    check("llama-tied-gqa");
}

#[test]
fn train_peft_parity_llama_smol_mha_f16() {
    check("llama-smol-mha-f16");
}

#[test]
fn train_peft_parity_llama3_scaled_sharded_bf16() {
    check("llama3-scaled-sharded-bf16");
}

#[test]
fn train_peft_parity_mistral_window() {
    check("mistral-window");
}

#[test]
fn train_peft_parity_qwen2_bias() {
    check("qwen2-bias");
}

#[test]
fn train_peft_parity_qwen3_qknorm() {
    check("qwen3-qknorm");
}

#[test]
fn train_peft_parity_qwen2_untied_mqa_f16() {
    check("qwen2-untied-mqa-f16");
}

#[test]
fn train_peft_parity_qwen3_tied_mha_bf16() {
    check("qwen3-tied-mha-bf16");
}

#[test]
fn train_peft_parity_qwen2_layer_windows() {
    check("qwen2-layer-windows");
}

#[test]
fn train_peft_parity_gemma3_sliding_gqa() {
    check("gemma3-sliding-gqa");
}

/// Final logit soft-capping enters the loss gradient.
#[test]
fn train_peft_parity_gemma3_legacy_mqa_softcap_bf16() {
    check("gemma3-legacy-mqa-softcap-bf16");
}

/// rsLoRA (scaling alpha/√r) at r 8.
#[test]
fn train_peft_parity_rslora() {
    let fixture = root().join("train/lora-variants/qwen3-qknorm-rslora");
    let cfg = peft::load(&fixture.join("init"), &Device::Cpu).unwrap().config;
    assert!(cfg.use_rslora && cfg.r == 8 && (cfg.scaling() - 16.0 / 8f64.sqrt()).abs() < 1e-12);
    check_at("qwen3-qknorm-rslora", &fixture);
}

/// Every model fixture has LoRA reference data; any without a named test above is checked here.
#[test]
fn train_peft_parity_covers_every_fixture() {
    const NAMED: [&str; 11] = [
        "gemma3-legacy-mqa-softcap-bf16",
        "gemma3-sliding-gqa",
        "llama-smol-mha-f16",
        "llama-tied-gqa",
        "llama3-scaled-sharded-bf16",
        "mistral-window",
        "qwen2-bias",
        "qwen2-layer-windows",
        "qwen2-untied-mqa-f16",
        "qwen3-qknorm",
        "qwen3-tied-mha-bf16",
    ];
    let list = |dir: PathBuf, marker: &str| -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap())
            .filter(|e| e.path().join(marker).exists())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    };
    let models = list(root().join("models"), "config.json");
    assert_eq!(
        models,
        list(root().join("train/lora"), "expected.json"),
        "LoRA fixtures out of date: run scripts/fixtures/make_train_fixtures.py"
    );
    for name in models.iter().filter(|m| !NAMED.contains(&m.as_str())) {
        check(name);
    }
}
