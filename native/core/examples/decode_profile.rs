//! Where a decode step's time goes on a GGUF model kept as stored: the whole step
//! (`Decoder::step`), `Model::generate` per token (steps plus sampling and detokenising), the LM head's integer product alone, and the rest.
//!
//! ```sh
//! RAYON_NUM_THREADS=1 cargo run --release -p tunekit-core --example decode_profile -- MODEL.gguf [steps=64]
//! ```

use std::path::Path;
use std::time::Instant;

use tunekit_core::decoder::{BaseWeight, KvCache};
use tunekit_core::model::Model;
use tunekit_core::quant::dot;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let path = args.first().expect("usage: decode_profile MODEL.gguf [steps]");
    let steps: usize = args.get(1).map_or(64, |s| s.parse().unwrap());
    let model = Model::load_gguf_as(Path::new(path), tunekit_core::quant::BaseFormat::Stored).unwrap();
    let d = &model.decoder;
    let mut cache = KvCache::new(&d.cfg);
    let prompt: Vec<u32> = (0..16).map(|i| 1000 + 37 * i).collect();
    d.step(&prompt, &mut cache).unwrap();
    let mut ids = vec![2u32];
    let t = Instant::now();
    for _ in 0..steps {
        let logits = d.step(&ids, &mut cache).unwrap().to_vec1::<f32>().unwrap();
        ids = vec![tunekit_core::generate::argmax(&logits)];
    }
    let step_ms = t.elapsed().as_secs_f64() * 1e3 / steps as f64;

    let opts = tunekit_core::generate::GenerateOptions {
        max_new_tokens: steps + 1,
        eos_token_ids: Some(vec![]),
        ..Default::default()
    };
    let t = Instant::now();
    model.generate(&prompt, &opts, &|| false, &mut |_| {}).unwrap();
    let generate_ms = t.elapsed().as_secs_f64() * 1e3 / (steps + 1) as f64;

    let BaseWeight::Stored(head) = &d.lm_head else { panic!("the LM head is not stored") };
    let x: Vec<f32> = (0..d.cfg.hidden_size).map(|i| (i as f32 * 0.37).sin()).collect();
    let t = Instant::now();
    for _ in 0..steps {
        std::hint::black_box(dot::matmul_t(&head.matrix, &x, 1).unwrap());
    }
    let head_ms = t.elapsed().as_secs_f64() * 1e3 / steps as f64;
    // The head with each kernel this CPU has (the portable one on fewer repeats).
    for k in dot::Kernel::available(head.matrix.ggml_type()) {
        let reps = if k.isa == "scalar" { 3 } else { steps };
        let t = Instant::now();
        for _ in 0..reps {
            std::hint::black_box(dot::matmul_t_with(&k, &head.matrix, &x, 1));
        }
        println!(
            "LM head with the {} kernel: {:.2} ms",
            k.isa,
            t.elapsed().as_secs_f64() * 1e3 / reps as f64
        );
    }
    // The layers' projections alone, each on a row of its input width.
    let t = Instant::now();
    for _ in 0..steps {
        for layer in &d.layers {
            for which in 0..7 {
                let BaseWeight::Stored(w) = &layer.projection(which).base else { panic!("not stored") };
                let x: Vec<f32> = (0..w.matrix.dims().1).map(|i| (i as f32 * 0.37).sin()).collect();
                std::hint::black_box(dot::matmul_t(&w.matrix, &x, 1).unwrap());
            }
        }
    }
    let proj_ms = t.elapsed().as_secs_f64() * 1e3 / steps as f64;
    // Accuracy of the integer products on the real matrices: relative RMS error against the
    // exact dequantising product, for a row of unit normal-ish values.
    for (which, name) in ["q", "k", "v", "o", "gate", "up", "down"].iter().enumerate() {
        let BaseWeight::Stored(w) = &d.layers[0].projection(which).base else { panic!("not stored") };
        let cols = w.matrix.dims().1;
        let x: Vec<f32> = (0..cols).map(|i| ((i * 7919 % 1000) as f32 / 500.0 - 1.0) * 1.7).collect();
        let fast = dot::matmul_t(&w.matrix, &x, 1).unwrap();
        let exact = tunekit_core::quant::matmul::matmul_t(&w.matrix, &x, 1);
        let num: f64 = fast.iter().zip(&exact).map(|(a, b)| ((a - b) as f64).powi(2)).sum();
        let den: f64 = exact.iter().map(|b| (*b as f64).powi(2)).sum();
        println!(
            "layer 0 {name} ({:?}): relative RMS error {:.2e}",
            w.matrix.ggml_type(),
            (num / den).sqrt()
        );
    }
    println!("projections of all layers: {proj_ms:.2} ms per token");
    println!(
        "{} threads: Model::generate {generate_ms:.2} ms/token (with the prompt); step {step_ms:.2} ms ({:.1} tok/s); LM head ({:?} {:?}) {head_ms:.2} ms; rest {:.2} ms",
        rayon::current_num_threads(),
        1e3 / step_ms,
        head.matrix.ggml_type(),
        head.matrix.dims(),
        step_ms - head_ms
    );
}
