//! LoRA training (and optionally decoding) on a base held as `--base-weights` (stored, f32,
//! q8_0, q4_k): peak RSS, seconds per optimiser step, tokens/s. One configuration per process
//! so each peak RSS is its own; `bench/quant/run.sh` runs the configurations side by side.
//!
//! ```sh
//! cargo run --release -p tunekit-core --example quant_bench -- MODEL [--base-weights stored]
//!   [--seq 384] [--batch 1] [--accum 2] [--steps 2] [--checkpointing] [--decode 32]
//! ```
//! MODEL is a `.gguf` file or a safetensors model directory. Examples are random token ids
//! (prompt half masked), so no tokenizer is needed; the seed recipe's LoRA (r 8, alpha 32,
//! dropout 0.1, all seven projections, lr 1e-4) is used.

use std::path::Path;
use std::time::Instant;

use candle_core::Device;
use tunekit_core::decoder::{Decoder, KvCache};
use tunekit_core::quant::BaseFormat;
use tunekit_core::train::batching::Example;
use tunekit_core::train::lora::LoraConfig;
use tunekit_core::train::memory::{self, TrainShape};
use tunekit_core::train::session::LoraModel;
use tunekit_core::train::trainer::{self, peak_rss_bytes, TrainConfig};

fn load(path: &Path, format: BaseFormat) -> Decoder {
    let dev = Device::Cpu;
    if path.extension().is_some_and(|e| e == "gguf") {
        let g = tunekit_core::gguf::Gguf::open(path).unwrap();
        let cfg = tunekit_core::gguf::decoder_config(&g).unwrap();
        let w = match format {
            BaseFormat::Stored => tunekit_core::weights::Weights::from_gguf_stored(&g, &dev).unwrap(),
            _ => tunekit_core::weights::Weights::from_gguf(&g, &dev).unwrap(),
        };
        Decoder::load(cfg, &w, &dev).unwrap()
    } else {
        let cfg = tunekit_core::config::DecoderConfig::from_file(&path.join("config.json")).unwrap();
        let w = tunekit_core::weights::Weights::open_as(path, &dev, format).unwrap();
        Decoder::load(cfg, &w, &dev).unwrap()
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let flag = |name: &str| args.iter().position(|a| a == name).map(|i| args[i + 1].clone());
    let num = |name: &str, default: usize| flag(name).map_or(default, |v| v.parse().unwrap());
    let model = Path::new(&args[0]);
    let format = BaseFormat::parse(&flag("--base-weights").unwrap_or("stored".into())).expect("base weights");
    let (seq, batch, accum, steps) =
        (num("--seq", 384), num("--batch", 1), num("--accum", 2), num("--steps", 2));
    let checkpointing = args.iter().any(|a| a == "--checkpointing");
    let decode = num("--decode", 0);

    let t0 = Instant::now();
    let decoder = load(model, format);
    let load_s = t0.elapsed().as_secs_f64();
    let rss_loaded = peak_rss_bytes().unwrap_or(0);
    let vocab = decoder.cfg.vocab_size as u64;
    let matrix_bytes = decoder.matrix_bytes();

    let lora = LoraConfig::default();
    let shape = TrainShape {
        batch_size: batch,
        seq_len: seq,
        lora_rank: lora.r,
        target_modules: lora.target_modules.clone(),
        lm_head_chunk: 256,
        gradient_checkpointing: checkpointing,
        base_weight_bytes: decoder.has_stored_weights().then_some(matrix_bytes),
    };
    let estimate = memory::estimate(&decoder.cfg, &shape);

    let mut decode_tok_s = None;
    if decode > 0 {
        let mut cache = KvCache::new(&decoder.cfg);
        let mut ids: Vec<u32> = (0..16).map(|i| (i * 7 + 3) % vocab as u32).collect();
        decoder.step(&ids, &mut cache).unwrap();
        let t = Instant::now();
        for _ in 0..decode {
            let logits = decoder.step(&ids, &mut cache).unwrap().to_vec1::<f32>().unwrap();
            ids = vec![tunekit_core::generate::argmax(&logits)];
        }
        decode_tok_s = Some(decode as f64 / t.elapsed().as_secs_f64());
    }

    let mut rng = tunekit_core::train::rng::Rng::new(1);
    let n_examples = batch * accum * steps;
    let examples: Vec<Example> = (0..n_examples)
        .map(|_| {
            let ids: Vec<u32> = (0..seq).map(|_| rng.below(vocab as usize) as u32).collect();
            Example::prompt_response(&ids[..seq / 2], &ids[seq / 2..])
        })
        .collect();
    let model = LoraModel::new(decoder, lora, 42).unwrap();
    let cfg = TrainConfig {
        epochs: 1,
        max_steps: Some(steps as u64),
        batch_size: batch,
        grad_accum: accum,
        gradient_checkpointing: checkpointing,
        ..TrainConfig::default()
    };
    let mut step_s = Vec::new();
    let mut losses = Vec::new();
    let mut last = Instant::now();
    trainer::train(
        &model,
        &model.adapters,
        &examples,
        &[],
        &cfg,
        &mut |r| {
            step_s.push(last.elapsed().as_secs_f64());
            losses.push(r.loss);
            last = Instant::now();
            eprintln!(
                "step {}/{}: loss {:.4}, {:.1} tok/s, {:.1} s",
                r.step,
                r.total_steps,
                r.loss,
                r.tokens_per_sec,
                step_s.last().unwrap()
            );
        },
        &|| false,
    )
    .unwrap();
    let tokens_per_step = (batch * accum * seq) as f64;
    // The first step includes one-off costs (allocator growth); report the rest when there are any.
    let timed = if step_s.len() > 1 { &step_s[1..] } else { &step_s[..] };
    let mean = timed.iter().sum::<f64>() / timed.len() as f64;
    let gib = |b: u64| b as f64 / (1u64 << 30) as f64;
    println!(
        "{}",
        serde_json::json!({
            "model": model_name(model_path(&args[0])),
            "base_weights": format.as_str(),
            "seq": seq, "batch": batch, "accum": accum, "steps": steps, "checkpointing": checkpointing,
            "threads": rayon_threads(),
            "load_s": load_s,
            "matrix_gib": gib(matrix_bytes),
            "rss_after_load_gib": gib(rss_loaded),
            "peak_rss_gib": gib(peak_rss_bytes().unwrap_or(0)),
            "estimate_gib": gib(estimate.total),
            "s_per_step": mean,
            "tok_per_s": tokens_per_step / mean,
            "losses": losses,
            "decode_tok_per_s": decode_tok_s,
        })
    );
}

fn model_path(s: &str) -> &Path {
    Path::new(s)
}

fn model_name(p: &Path) -> String {
    p.file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default()
}

fn rayon_threads() -> usize {
    std::env::var("RAYON_NUM_THREADS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1))
}
