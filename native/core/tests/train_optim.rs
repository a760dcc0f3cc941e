//! AdamW, clipping and learning-rate schedules against PyTorch / transformers on fixed
//! tensors (test/fixtures/train, written by scripts/fixtures/make_train_fixtures.py).

use std::path::PathBuf;

use candle_core::{Device, Tensor, Var};
use serde_json::Value;
use tunekit_core::train::optim::{clip_grad_norm, AdamW, AdamWConfig};
use tunekit_core::train::schedule::{Schedule, ScheduleKind, Warmup};

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../test/fixtures/train")
}

fn json(name: &str) -> Value {
    serde_json::from_str(&std::fs::read_to_string(fixtures().join(name)).unwrap()).unwrap()
}

fn rel_err(a: &Tensor, b: &Tensor) -> f64 {
    let a = a.flatten_all().unwrap().to_vec1::<f32>().unwrap();
    let b = b.flatten_all().unwrap().to_vec1::<f32>().unwrap();
    let scale = b.iter().fold(0f32, |m, v| m.max(v.abs())) as f64;
    a.iter().zip(&b).fold(0f64, |m, (x, y)| m.max((x - y).abs() as f64)) / scale
}

#[test]
fn train_adamw_clip_and_linear_schedule_match_torch() {
    let meta = json("optim.json");
    let cfg = &meta["config"];
    let t = candle_core::safetensors::load(fixtures().join("optim.safetensors"), &Device::Cpu).unwrap();
    let params: Vec<Var> = (0..2).map(|i| Var::from_tensor(&t[&format!("init.{i}")]).unwrap()).collect();
    let f = |k: &str| cfg[k].as_f64().unwrap();
    let mut opt = AdamW::new(
        params.clone(),
        AdamWConfig { beta1: 0.9, beta2: 0.999, eps: f("eps"), weight_decay: f("weight_decay") },
    )
    .unwrap();
    let total = cfg["total_steps"].as_u64().unwrap();
    let schedule = Schedule::new(
        ScheduleKind::Linear,
        f("lr"),
        Warmup::Steps(cfg["warmup_steps"].as_u64().unwrap()),
        total,
    );
    let mut worst = 0f64;
    for step in 0..total {
        let mut grads: Vec<Tensor> = (0..2).map(|i| t[&format!("grad.{step}.{i}")].clone()).collect();
        let norm = clip_grad_norm(&mut grads, f("max_grad_norm")).unwrap();
        let want_norm = meta["grad_norms"][step as usize].as_f64().unwrap();
        assert!((norm / want_norm - 1.0).abs() < 1e-6, "step {step}: grad norm {norm} vs torch {want_norm}");
        let lr = schedule.lr(step);
        let want_lr = meta["lrs"][step as usize].as_f64().unwrap();
        assert!((lr - want_lr).abs() <= 1e-12 * want_lr.abs().max(1.0), "step {step}: lr {lr} vs {want_lr}");
        opt.step(&grads, lr).unwrap();
        for (i, p) in params.iter().enumerate() {
            let e = rel_err(p.as_tensor(), &t[&format!("param.{step}.{i}")]);
            worst = worst.max(e);
            assert!(e < 1e-6, "step {step} param {i}: rel err {e:e}");
        }
    }
    println!("AdamW+clip vs torch over {total} steps: max rel param err {worst:.2e}");
}

#[test]
fn train_schedules_match_transformers() {
    for case in json("schedules.json").as_array().unwrap() {
        let kind: ScheduleKind = case["kind"].as_str().unwrap().parse().unwrap();
        let total = case["total_steps"].as_u64().unwrap();
        let warmup = match &case["warmup"] {
            Value::Number(n) if n.is_u64() => Warmup::Steps(n.as_u64().unwrap()),
            v => Warmup::Ratio(v.as_f64().unwrap()),
        };
        let s = Schedule::new(kind, case["base_lr"].as_f64().unwrap(), warmup, total);
        assert_eq!(s.warmup_steps, case["warmup_steps"].as_u64().unwrap(), "{case}");
        for (step, want) in case["lrs"].as_array().unwrap().iter().enumerate() {
            let want = want.as_f64().unwrap();
            let got = s.lr(step as u64);
            assert!(
                (got - want).abs() < 1e-12,
                "{} total {total} warmup {:?}: step {step}: {got} vs {want}",
                case["kind"],
                warmup
            );
        }
    }
}
