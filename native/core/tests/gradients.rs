//! The forward pass must be differentiable end to end, because the LoRA trainer reuses it:
//! candle's fused rms_norm / rope / softmax_last_dim would silently return no gradient.
//! For parameters on every kind of path (norms before attention, q/k norm, biases,
//! projections under rope and the sliding-window mask, the final norm), the autograd
//! gradient of a fixed random projection of the logits must match central finite
//! differences.

use std::path::PathBuf;

use candle_core::{Tensor, Var};
use tunekit_core::decoder::Decoder;
use tunekit_core::Model;

fn load(name: &str) -> Model {
    Model::load(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../test/fixtures/models").join(name))
        .unwrap()
}

fn param<'a>(d: &'a mut Decoder, name: &str) -> &'a mut Tensor {
    let (l0, rest) = d.layers.split_at_mut(1);
    let (l0, l1) = (&mut l0[0], &mut rest[0]);
    match name {
        "layers.0.input_layernorm" => &mut l0.input_layernorm.weight,
        "layers.0.q_norm" => &mut l0.self_attn.q_norm.as_mut().unwrap().weight,
        "layers.0.k_norm" => &mut l0.self_attn.k_norm.as_mut().unwrap().weight,
        "layers.0.q_proj" => l0.self_attn.q_proj.base.dense_mut().unwrap(),
        "layers.0.k_proj" => l0.self_attn.k_proj.base.dense_mut().unwrap(),
        "layers.0.q_proj.bias" => l0.self_attn.q_proj.bias.as_mut().unwrap(),
        "layers.0.gate_proj" => l0.mlp.gate_proj.base.dense_mut().unwrap(),
        "layers.1.post_attention_layernorm" => &mut l1.post_attention_layernorm.weight,
        "norm" => &mut d.norm.weight,
        other => panic!("unknown parameter {other}"),
    }
}

/// Deterministic probe in [-1, 1) so the scalar loss depends on every logit.
fn probe(rows: usize, cols: usize) -> Tensor {
    let mut state = 12345u64;
    let values: Vec<f32> = (0..rows * cols)
        .map(|_| {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ((state >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect();
    Tensor::from_vec(values, (rows, cols), &candle_core::Device::Cpu).unwrap()
}

fn check(fixture: &str, names: &[&str]) {
    let mut model = load(fixture);
    let ids: Vec<u32> = model.tokenizer.encode("The lazy dog sleeps in the sun", true).unwrap();
    let p = probe(ids.len(), model.config().vocab_size);
    let loss = |d: &Decoder| -> f64 {
        (d.logits(&ids).unwrap() * &p).unwrap().sum_all().unwrap().to_scalar::<f32>().unwrap() as f64
    };
    for name in names {
        let decoder = &mut model.decoder;
        let original = param(decoder, name).clone();
        let var = Var::from_tensor(&original).unwrap();
        *param(decoder, name) = var.as_tensor().clone();
        let value = (decoder.logits(&ids).unwrap() * &p).unwrap().sum_all().unwrap();
        let grads = value.backward().unwrap();
        let grad = grads
            .get(var.as_tensor())
            .unwrap_or_else(|| panic!("{fixture}/{name}: no gradient reached the parameter"))
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        let flat = original.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        // Central differences on a few coordinates, including the largest-gradient one.
        let largest = grad.iter().enumerate().max_by(|a, b| a.1.abs().total_cmp(&b.1.abs())).unwrap().0;
        let coords = [0, flat.len() / 3, flat.len() - 1, largest];
        let delta = 1e-2f32;
        for &i in &coords {
            let mut shifted = |sign: f32| {
                let mut values = flat.clone();
                values[i] += sign * delta;
                *param(decoder, name) =
                    Tensor::from_vec(values, original.shape(), original.device()).unwrap();
                loss(decoder)
            };
            let fd = (shifted(1.0) - shifted(-1.0)) / (2.0 * delta as f64);
            let an = grad[i] as f64;
            let tol = 0.03 * an.abs().max(fd.abs()) + 0.05;
            assert!(
                (fd - an).abs() <= tol,
                "{fixture}/{name}[{i}]: autograd {an:.5} vs finite difference {fd:.5}"
            );
        }
        assert!(grad[largest].abs() > 1e-3, "{fixture}/{name}: gradient is (nearly) zero everywhere");
        *param(decoder, name) = original;
    }
}

#[test]
fn qwen3_gradients_reach_norms_qk_norms_and_projections() {
    check(
        "qwen3-qknorm",
        &[
            "layers.0.input_layernorm",
            "layers.0.q_norm",
            "layers.0.k_norm",
            "layers.0.k_proj",
            "layers.1.post_attention_layernorm",
            "norm",
        ],
    );
}

#[test]
fn qwen2_gradients_reach_qkv_bias() {
    check("qwen2-untied-mqa-f16", &["layers.0.q_proj.bias", "layers.0.gate_proj"]);
}

#[test]
fn mistral_gradients_pass_the_sliding_window_and_rope() {
    check("mistral-window", &["layers.0.q_proj", "layers.0.input_layernorm"]);
}
