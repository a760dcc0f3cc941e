//! The LM-head loss of one training micro-batch, timed in isolation (issue #14, `bench/gemma`).
//!
//!   RAYON_NUM_THREADS=2 head_bench [--vocab 262144] [--dim 640] [--rows 508] [--chunk 64]
//!       [--repeats 3] [--softcap 30]
//!
//! A random `[vocab, dim]` head rounded to bf16 (Gemma 3 270M's shape by default) and `rows`
//! scored positions (a 4 × 256 micro-batch scores ~508). Each repeat times, in alternating
//! order:
//!
//! - `products`: the head's two GEMMs alone over the same rows, chunk by chunk (logits
//!   `x·Wᵀ`, then the input gradient `g·W`), into reused buffers: the kernel's rate;
//! - `loss`: `lm_head_loss_capped` with gradient and soft cap, as training calls it (the bf16
//!   head's own path);
//! - `loss-general`: the same call through the general path (a fresh logits buffer per chunk,
//!   the gradient rounded in a separate pass), for comparison.
//!
//! Prints a table (wall and CPU seconds, GFLOP/s counting the two products, page faults of each
//! call) and one JSON object on the last line. On a shared machine compare the CPU-second
//! rates: the wall time includes waiting for the cores.

use std::time::Instant;

use candle_core::{DType, Device, Result, Tensor, Var};
use tunekit_core::quant::BaseWeight;
use tunekit_core::train::loss::{lm_head_loss_capped, HeadWeight};

fn arg<T: std::str::FromStr>(args: &[String], name: &str, default: T) -> T {
    match args.iter().position(|a| a == name) {
        Some(i) => args[i + 1].parse().unwrap_or_else(|_| panic!("bad value for {name}")),
        None => default,
    }
}

/// This process's page faults (minor + major) and CPU seconds (user + system) so far.
fn usage() -> (u64, f64) {
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: getrusage fills the struct it is given.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) };
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 * 1e-6;
    ((u.ru_minflt + u.ru_majflt) as u64, secs(u.ru_utime) + secs(u.ru_stime))
}

/// The head without [`HeadWeight::as_bf16`]: the loss's general path.
struct General(BaseWeight);

impl HeadWeight for General {
    fn vocab(&self) -> Result<usize> {
        self.0.vocab()
    }
    fn logits(&self, h: &Tensor, dtype: DType) -> Result<Tensor> {
        self.0.logits(h, dtype)
    }
    fn input_grad(&self, g: &Tensor, dtype: DType) -> Result<Tensor> {
        self.0.input_grad(g, dtype)
    }
    fn logits_f32(&self, h: &Tensor) -> Result<Vec<f32>> {
        self.0.logits_f32(h)
    }
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let vocab: usize = arg(&args, "--vocab", 262_144);
    let dim: usize = arg(&args, "--dim", 640);
    let rows: usize = arg(&args, "--rows", 508);
    let chunk: usize = arg(&args, "--chunk", 64);
    let repeats: usize = arg(&args, "--repeats", 3);
    let softcap: f64 = arg(&args, "--softcap", 30.0);
    let dev = Device::Cpu;

    let head = BaseWeight::bf16(&(Tensor::randn(0f32, 1., (vocab, dim), &dev)? * 0.05)?)?;
    let w = head.as_bf16().expect("a bf16 head");
    let hidden = Var::randn(0f32, 1., (rows, dim), &dev)?;
    let positions: Vec<u32> = (0..rows as u32).collect();
    let targets: Vec<u32> = (0..rows).map(|i| ((i * 7919) % vocab) as u32).collect();
    let general = General(head.clone());
    let gflop = 2.0 * 2.0 * (rows * vocab * dim) as f64 / 1e9;
    let threads = rayon::current_num_threads();

    let x = hidden.as_tensor().flatten_all()?.to_vec1::<f32>()?;
    let mut logits = vec![0f32; chunk.min(rows) * vocab];
    let stride = w.grad_row_stride();
    let g16: Vec<u16> = (0..chunk.min(rows) * stride).map(|i| (0x3c00 + (i % 251)) as u16).collect();
    let mut gx = vec![0f32; rows * dim];
    let mut products = || {
        for start in (0..rows).step_by(chunk) {
            let len = chunk.min(rows - start);
            w.forward_into(&x[start * dim..(start + len) * dim], len, &mut logits[..len * vocab]);
            w.input_grad_rounded_into(&g16[..len * stride], len, &mut gx[start * dim..(start + len) * dim]);
        }
    };
    let loss = |h: &dyn HeadWeight| -> Result<f64> {
        let out =
            lm_head_loss_capped(&hidden, &positions, &targets, h, Some(softcap), rows as f64, chunk, true)?;
        let g = out.loss.backward()?;
        std::hint::black_box(g.get(&hidden));
        Ok(out.sum)
    };

    products(); // warm-up: first touch of the buffers
                // (name, wall seconds, CPU seconds, page faults) per repeat.
    type Row = (&'static str, Vec<f64>, Vec<f64>, Vec<u64>);
    let mut results: Vec<Row> =
        ["products", "loss", "loss-general"].map(|n| (n, vec![], vec![], vec![])).into();
    for rep in 0..repeats {
        for k in 0..3 {
            let which = (k + rep) % 3; // rotate the order
            let (f0, c0) = usage();
            let t = Instant::now();
            match which {
                0 => products(),
                1 => {
                    loss(&head)?;
                }
                _ => {
                    loss(&general)?;
                }
            }
            results[which].1.push(t.elapsed().as_secs_f64());
            let (f1, c1) = usage();
            results[which].2.push(c1 - c0);
            results[which].3.push(f1 - f0);
        }
    }
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "LM head {vocab} x {dim} (bf16), {rows} rows in chunks of {chunk}, {threads} threads, {repeats} repeats, load {}",
        load.split_whitespace().take(3).collect::<Vec<_>>().join(" ")
    );
    println!("| what | wall s (each repeat) | CPU s (each repeat) | best GFLOP/s wall | GFLOP per CPU-second | page faults per call |");
    println!("|---|---|---|---|---|---|");
    let mut json = serde_json::Map::new();
    let min = |v: &[f64]| v.iter().copied().fold(f64::INFINITY, f64::min);
    let list = |v: &[f64]| v.iter().map(|s| format!("{s:.3}")).collect::<Vec<_>>().join(", ");
    for (name, wall, cpu, pf) in &results {
        println!(
            "| {name} | {} | {} | {:.0} | {:.0} | {} |",
            list(wall),
            list(cpu),
            gflop / min(wall),
            gflop / min(cpu),
            pf.iter().max().unwrap_or(&0)
        );
        json.insert(
            name.to_string(),
            serde_json::json!({ "wall_s": wall, "cpu_s": cpu, "best_gflops": gflop / min(wall),
                "gflop_per_cpu_s": gflop / min(cpu), "page_faults": pf }),
        );
    }
    json.insert("threads".into(), threads.into());
    json.insert("rows".into(), rows.into());
    json.insert("chunk".into(), chunk.into());
    println!("{}", serde_json::Value::Object(json));
    Ok(())
}
