//! Micro-benchmark of the stored-weight kernels against candle's f32 matmul on the same
//! matrix: `cargo run --release -p tunekit-core --example quant_micro -- [rows] [cols] [m]`.
use std::time::Instant;

use candle_core::{Device, Tensor};
use tunekit_core::gguf::GgmlType;
use tunekit_core::quant::{matmul, quantize::quantize};

fn main() {
    let args: Vec<usize> = std::env::args().skip(1).map(|a| a.parse().unwrap()).collect();
    let (rows, cols, m) = (
        args.first().copied().unwrap_or(262144),
        args.get(1).copied().unwrap_or(640),
        args.get(2).copied().unwrap_or(1),
    );
    let values: Vec<f32> =
        (0..rows * cols).map(|i| ((i * 2654435761usize) % 1000) as f32 / 1000.0 - 0.5).collect();
    let x: Vec<f32> = (0..m * cols).map(|i| (i % 7) as f32 / 7.0).collect();
    let w = Tensor::from_vec(values.clone(), (rows, cols), &Device::Cpu).unwrap();
    let xt = Tensor::from_vec(x.clone(), (m, cols), &Device::Cpu).unwrap();
    let reps = 5;
    let t = Instant::now();
    for _ in 0..reps {
        let _ = xt.matmul(&w.t().unwrap()).unwrap();
    }
    let f32_s = t.elapsed().as_secs_f64() / reps as f64;
    println!("f32 candle: {:.2} ms", f32_s * 1e3);
    for ty in [GgmlType::Q8_0, GgmlType::BF16] {
        let q = quantize(ty, &values, rows, cols).unwrap();
        let t = Instant::now();
        for _ in 0..reps {
            let _ = matmul::matmul_t(&q, &x, m);
        }
        let s = t.elapsed().as_secs_f64() / reps as f64;
        println!("{ty} stored: {:.2} ms ({:.2}x f32)", s * 1e3, f32_s / s);
    }
}
