#!/usr/bin/env python3
"""transformers + PEFT (PyTorch CPU) side of bench/train, and the bench's model/data writer.

  python3 bench/train/baseline.py write-model DIR          # random SmolLM2-135M-shaped Llama
  python3 bench/train/baseline.py write-data FILE [--sequences 64] [--length 128]
  python3 bench/train/baseline.py train DIR FILE --threads 1 [--batch 4] [--dropout 0] ...

`train` does what native/core/examples/train_bench.rs does, on the same model directory and
data file: one epoch of LoRA (r, alpha, dropout on q/k/v/o/gate/up/down), AdamW (β 0.9/0.999,
ε 1e-8, no weight decay), lr 1e-4 with a linear decay and no warm-up, global-norm clip 1.0,
batches of `--batch` sequences (all the same length, so no padding), prompt tokens masked
with -100. It is a plain PyTorch loop (no HF Trainer, so no logging/dataloader overhead on
this side) and times forward (incl. LM head + loss), backward and clip+AdamW for every step.
Peak RSS is VmHWM from /proc/self/status, as on the native side. Prints one JSON line; exits
with status 3 and a message when torch/transformers/peft are missing.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time

# SmolLM2-135M's shape (hidden 576, 30 layers, 9 heads / 3 KV heads, intermediate 1536,
# vocab 49152, tied embeddings), random weights.
CONFIG = dict(
    hidden_size=576,
    intermediate_size=1536,
    num_hidden_layers=30,
    num_attention_heads=9,
    num_key_value_heads=3,
    vocab_size=49152,
    max_position_embeddings=8192,
    rms_norm_eps=1e-5,
    rope_theta=100000.0,
    tie_word_embeddings=True,
    hidden_act="silu",
    bos_token_id=1,
    eos_token_id=2,
    pad_token_id=0,
)
TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def status_kib(key: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


def need_torch(with_peft: bool):
    try:
        import torch  # noqa: F401
        import transformers  # noqa: F401

        if with_peft:
            import peft  # noqa: F401
    except ImportError as error:
        print(
            f"baseline skipped: {error.name} is not installed (pip install torch transformers peft)",
            file=sys.stderr,
        )
        sys.exit(3)


def write_model(out_dir: str, tokenizer_json: str | None) -> int:
    need_torch(with_peft=False)
    import shutil

    import torch
    import transformers

    torch.manual_seed(1234)
    config = transformers.LlamaConfig(**CONFIG)
    model = transformers.LlamaForCausalLM(config).to(torch.float32)
    model.save_pretrained(out_dir, safe_serialization=True)
    if tokenizer_json:
        # The native loader wants a tokenizer.json; the bench feeds token ids, so any will do.
        shutil.copyfile(tokenizer_json, f"{out_dir}/tokenizer.json")
    params = sum(p.numel() for p in model.parameters())
    print(json.dumps({"params": params, "dir": out_dir}))
    return 0


def write_data(path: str, sequences: int, length: int, vocab: int) -> int:
    rng = random.Random(20261128)
    data = {
        "prompt_len": length // 2,
        "sequences": [[rng.randrange(3, vocab) for _ in range(length)] for _ in range(sequences)],
    }
    with open(path, "w") as f:
        json.dump(data, f)
    return 0


def train(args: argparse.Namespace) -> int:
    need_torch(with_peft=True)
    import torch
    import transformers
    from peft import LoraConfig, get_peft_model

    torch.set_num_threads(args.threads)
    torch.manual_seed(42)
    with open(args.data) as f:
        data = json.load(f)
    p = data["prompt_len"]
    seqs = data["sequences"]
    tokens = sum(len(s) for s in seqs)

    t = time.perf_counter()
    if args.model_dir.endswith(".gguf"):
        # transformers dequantises a GGUF to f32 itself, as the native side does.
        folder, name = os.path.split(os.path.abspath(args.model_dir))
        model = transformers.AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32)
    else:
        model = transformers.AutoModelForCausalLM.from_pretrained(args.model_dir, dtype=torch.float32)
    load_s = time.perf_counter() - t
    rss_after_load = status_kib("VmRSS")
    model.config.use_cache = False
    if args.checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        model.enable_input_require_grads()
    lora = LoraConfig(
        r=args.rank,
        lora_alpha=args.alpha,
        lora_dropout=args.dropout,
        target_modules=TARGETS,
        bias="none",
        task_type="CAUSAL_LM",
    )
    model = get_peft_model(model, lora)
    if args.init_adapter:
        load_init_adapter(model, args.init_adapter)
    model.train()
    params = [q for q in model.parameters() if q.requires_grad]
    opt = torch.optim.AdamW(params, lr=args.lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0)
    if "order" in data and all(len(b) <= args.batch for b in data["order"]):
        batches = data["order"]  # the native trainer's epoch-0 batches (run.sh writes them)
    else:
        order = list(range(len(seqs)))
        random.Random(42).shuffle(order)
        batches = [order[i : i + args.batch] for i in range(0, len(order), args.batch)]
    total = len(batches)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda step: max(0.0, (total - step) / total))

    fwd = bwd = optim = 0.0
    step_s, losses = [], []
    start = time.perf_counter()
    for idx in batches:
        t0 = time.perf_counter()
        ids = torch.tensor([seqs[i] for i in idx], dtype=torch.long)
        labels = ids.clone()
        labels[:, :p] = -100
        if args.precision == "bf16":
            # Mixed precision as PyTorch users run it on a CPU: linear layers and matmuls take
            # bf16 inputs (weights cast per op, f32 masters), norms/softmax/loss stay f32.
            with torch.autocast("cpu", dtype=torch.bfloat16):
                out = model(input_ids=ids, labels=labels, use_cache=False)
        else:
            out = model(input_ids=ids, labels=labels, use_cache=False)
        t1 = time.perf_counter()
        out.loss.backward()
        t2 = time.perf_counter()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        sched.step()
        opt.zero_grad(set_to_none=True)
        t3 = time.perf_counter()
        fwd += t1 - t0
        bwd += t2 - t1
        optim += t3 - t2
        step_s.append(t3 - t0)
        losses.append(float(out.loss.detach()))
        del out
    seconds = time.perf_counter() - start
    peak = status_kib("VmHWM")
    print(
        f"torch: {len(batches)} steps, {tokens} tokens in {seconds:.2f}s = {tokens / seconds:.1f} tok/s, "
        f"peak RSS {peak / 1024:.0f} MiB (after load {rss_after_load / 1024:.0f} MiB), "
        f"loss {losses[0]:.4f} -> {losses[-1]:.4f}",
        file=sys.stderr,
    )
    print(
        json.dumps(
            {
                "side": "torch",
                "precision": args.precision,
                "threads": torch.get_num_threads(),
                "versions": {
                    "torch": torch.__version__,
                    "transformers": transformers.__version__,
                    "peft": __import__("peft").__version__,
                },
                "attn_implementation": getattr(model.config, "_attn_implementation", None),
                "examples": len(seqs),
                "batch": args.batch,
                "steps": len(batches),
                "tokens": tokens,
                "seconds": seconds,
                "tokens_per_s": tokens / seconds,
                "step_s": step_s,
                "loss_first": losses[0],
                "loss_last": losses[-1],
                "load_s": load_s,
                "rss_after_load_mib": rss_after_load / 1024,
                "peak_rss_mib": peak / 1024,
                "checkpointing": args.checkpointing,
                "init_adapter": bool(args.init_adapter),
                "profile": {"forward_incl_lm_head_loss_s": fwd, "backward_s": bwd, "clip_adamw_s": optim},
            }
        )
    )
    return 0


def load_init_adapter(model, adapter_dir: str) -> None:
    """Start from the native side's initial adapter (`train_bench --save-init`): PEFT draws its
    own random A otherwise, and two different A's give losses that differ after step 1. Every
    LoRA weight of `model` must be replaced, each with its exact shape."""
    from peft import set_peft_model_state_dict
    from safetensors.torch import load_file

    weights = load_file(os.path.join(adapter_dir, "adapter_model.safetensors"))
    expected = {k for k, _ in model.named_parameters() if "lora_" in k}
    result = set_peft_model_state_dict(model, weights)
    loaded = {k for k, v in model.named_parameters() if "lora_" in k}
    unexpected = list(getattr(result, "unexpected_keys", []) or [])
    if len(weights) != len(expected) or unexpected or loaded != expected:
        raise SystemExit(
            f"--init-adapter {adapter_dir}: {len(weights)} tensors for {len(expected)} LoRA weights"
            f" (unexpected keys: {unexpected[:3]})"
        )
    # set_peft_model_state_dict matches names; check the values really landed.
    for key, value in weights.items():
        name = key.replace(".lora_A.weight", ".lora_A.default.weight").replace(".lora_B.weight", ".lora_B.default.weight")
        param = model.get_parameter(name)
        if param.shape != value.shape or not bool((param.detach() == value.to(param.dtype)).all()):
            raise SystemExit(f"--init-adapter {adapter_dir}: {key} did not load")


def sgemm(threads: int) -> int:
    """Best-of-5 GFLOP/s of a 2048³ f32 `a @ b` in torch at `threads` threads (the machine's
    matmul peak as PyTorch reaches it, measured in the same run as the training)."""
    need_torch(with_peft=False)
    import torch

    torch.set_num_threads(threads)
    n = 2048
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b  # warm-up
    best = float("inf")
    for _ in range(5):
        t = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t)
    print(json.dumps({"side": "sgemm-torch", "threads": torch.get_num_threads(), "gflops": 2 * n**3 / best / 1e9}))
    return 0


def main() -> int:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="cmd", required=True)
    m = sub.add_parser("write-model")
    m.add_argument("dir")
    m.add_argument("--tokenizer-json")
    d = sub.add_parser("write-data")
    d.add_argument("file")
    d.add_argument("--sequences", type=int, default=64)
    d.add_argument("--length", type=int, default=128)
    d.add_argument("--vocab", type=int, default=CONFIG["vocab_size"])
    t = sub.add_parser("train")
    t.add_argument("model_dir")
    t.add_argument("data")
    t.add_argument("--threads", type=int, required=True)
    t.add_argument("--batch", type=int, default=4)
    t.add_argument("--rank", type=int, default=8)
    t.add_argument("--alpha", type=float, default=32.0)
    t.add_argument("--dropout", type=float, default=0.0)
    t.add_argument("--lr", type=float, default=1e-4)
    t.add_argument("--checkpointing", action="store_true")
    t.add_argument("--init-adapter", help="a PEFT adapter directory to start from (train_bench --save-init)")
    t.add_argument("--precision", choices=["f32", "bf16"], default="f32")
    g = sub.add_parser("sgemm")
    g.add_argument("--threads", type=int, required=True)
    args = parser.parse_args()
    if args.cmd == "sgemm":
        return sgemm(args.threads)
    if args.cmd == "write-model":
        return write_model(args.dir, args.tokenizer_json)
    if args.cmd == "write-data":
        return write_data(args.file, args.sequences, args.length, args.vocab)
    return train(args)


if __name__ == "__main__":
    sys.exit(main())
