#!/usr/bin/env python3
"""Pretrains tunekit's embedded demo model, `models/demo-counting/`, from nothing.

The demo model exists so the README's quick start runs offline on a fresh clone. It is a tiny
Llama-architecture causal LM (about 1.7M parameters) that has only ever read synthetic counting
text, written by this script:

  - counting runs in digits ("41 42 43 44"), negative numbers ("-3 -2 -1 0 1"), thousands
    separators ("1,998 1,999 2,000") and English number words without "and" or hyphens
    ("twenty two twenty three", "two hundred one", up to the millions; the same words as
    `toWords` in scripts/make-increment-data.ts), separated by spaces, ", " or newlines;
  - a few "increment" sentences ("after 41 comes 42.", "the number after nine is ten.").

It never sees the quick start's task format (`User: 41\\n\\nAssistant: 42</s>`), so the base
model knows how to count but not how to answer that prompt; LoRA tuning on
examples/data/increment.jsonl teaches it, and the held-out answers improve.

Usage:
  python3 scripts/demo-model/pretrain.py --device cuda --threads 2   # the committed model (~4 min on one GPU)
  python3 scripts/demo-model/pretrain.py                             # the same recipe on CPU (slow, see README)
  python3 scripts/demo-model/pretrain.py --steps 2500 --batch 16 --threads 4   # a weaker CPU model, ~5 min

Reproducibility: everything is drawn from `--seed` (Python's `random.Random` for the corpus,
`torch.manual_seed` for the weights and batch order), the tokenizer trainer is deterministic,
and torch runs with `--threads` intra-op threads (default 1) and deterministic algorithms.
On CPU the same seed, thread count and torch/transformers/tokenizers versions give the same
bytes; another thread count, CPU, device or version changes float rounding, hence the bytes of
the weights (not what the model has learned). CUDA runs are not bit-for-bit reproducible.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import shutil
import time
from pathlib import Path

SEED = 20260601
VOCAB = 512
SEQ_LEN = 128
SPECIALS = ["<unk>", "<s>", "</s>", "<pad>"]  # ids 0, 1, 2, 3

# Model shape: Llama, GQA (4 query heads sharing 2 KV heads), tied embeddings.
MODEL = {
    "hidden_size": 192,
    "intermediate_size": 512,
    "num_hidden_layers": 4,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "max_position_embeddings": 256,
    "rms_norm_eps": 1e-5,
    "rope_theta": 10000.0,
    "tie_word_embeddings": True,
    "hidden_act": "silu",
}

# --- number words: a port of toWords in scripts/make-increment-data.ts -------------------------

ONES = (
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
    "fifteen sixteen seventeen eighteen nineteen"
).split()
TENS = ["", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]


def to_words(n: int) -> str:
    """English words without "and" or hyphens, as in the seed: 201 -> "two hundred one"."""
    if n < 0:
        return f"minus {to_words(-n)}"
    if n < 20:
        return ONES[n]
    if n < 100:
        return " ".join(w for w in (TENS[n // 10], ONES[n % 10] if n % 10 else "") if w)
    if n < 1000:
        rest = to_words(n % 100) if n % 100 else ""
        return " ".join(w for w in (f"{ONES[n // 100]} hundred", rest) if w)
    for size, name in ((1_000_000_000, "billion"), (1_000_000, "million"), (1_000, "thousand")):
        if n >= size:
            rest = to_words(n % size) if n % size else ""
            return " ".join(w for w in (f"{to_words(n // size)} {name}", rest) if w)
    raise AssertionError(n)


def with_commas(n: int) -> str:
    return f"{n:,}"


# --- corpus --------------------------------------------------------------------------------------


def corpus(seed: int, docs: int) -> list[str]:
    """Synthetic documents, one counting run or increment sentence each."""
    rng = random.Random(seed)

    def carry(lo: int, hi: int) -> int:
        # A start just below a run of 9s, so the run crosses a carry (1,997 1,998 1,999 2,000).
        n = rng.randint(lo, hi)
        nines = rng.randint(1, max(1, len(str(n)) - 1))
        n = n // 10**nines * 10**nines + 10**nines - 1
        return max(lo, n - rng.randint(0, 3))

    def start(style: str) -> int:
        r = rng.random()
        if style == "digits":
            if r < 0.3:
                return carry(10, 999_999)
            return rng.randint(0, 999) if r < 0.65 else rng.randint(1_000, 999_999)
        if style == "negative":
            if r < 0.15:
                return -rng.randint(1, 6)  # crosses zero
            return -(carry(10, 9_999) + 1) if r < 0.4 else -rng.randint(2, 9_999)
        if style == "commas":
            return carry(1_000, 99_999_999) if r < 0.35 else rng.randint(1_000, 99_999_999)
        # words
        if r < 0.3:
            return carry(10, 9_999_999)
        return rng.randint(0, 999) if r < 0.6 else rng.randint(1_000, 9_999_999)

    render = {
        "digits": str,
        "negative": str,
        "commas": with_commas,
        "words": to_words,
    }
    seps = {
        "digits": [" "] * 6 + [", "] * 2 + ["\n"],
        "negative": [" "] * 6 + [", "] * 2 + ["\n"],
        "commas": [" "] * 6 + ["; "] + ["\n"],
        "words": [" "] * 5 + [", "] * 4 + ["\n"],
    }
    styles = ["digits"] * 3 + ["negative"] * 2 + ["commas"] * 2 + ["words"] * 4
    out = []
    for _ in range(docs):
        style = rng.choice(styles)
        n = start(style)
        fmt = render[style]
        if rng.random() < 0.1:
            a, b = fmt(n), fmt(n + 1)
            out.append(
                rng.choice([f"after {a} comes {b}.", f"the number after {a} is {b}."])
            )
            continue
        length = rng.randint(3, 6) if style == "words" and abs(n) >= 1000 else rng.randint(4, 12)
        out.append(rng.choice(seps[style]).join(fmt(n + i) for i in range(length)))
    return out


# --- tokenizer -----------------------------------------------------------------------------------


def build_tokenizer(docs: list[str]):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

    tok = Tokenizer(models.BPE(unk_token=None))
    # Every digit is its own token (so counting is digit arithmetic); the rest is byte-level
    # BPE, so any text (the prompt template's "User: ", "\n\nAssistant: ") can be encoded.
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Digits(individual_digits=True),
            pre_tokenizers.ByteLevel(add_prefix_space=False),
        ]
    )
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB,
        special_tokens=SPECIALS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    # The template strings join the tokenizer's corpus (not the model's) so they encode in a
    # few tokens instead of single bytes.
    template = ["User: 1\n\nAssistant: 2", "User:", "Assistant:"] * 200
    tok.train_from_iterator(docs + template, trainer=trainer)
    # Llama-style: BOS prepended when special tokens are added.
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A", pair="<s> $A <s> $B", special_tokens=[("<s>", 1)]
    )
    for i, s in enumerate(SPECIALS):
        assert tok.token_to_id(s) == i, s
    return tok


# --- training ------------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default="models/demo-counting")
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--steps", type=int, default=6000)
    parser.add_argument("--batch", type=int, default=32, help="sequences of 128 tokens per step")
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--docs", type=int, default=40_000)
    parser.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    args = parser.parse_args()

    import os

    if args.device.startswith("cuda"):
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")

    import torch
    import transformers

    torch.set_num_threads(args.threads)
    torch.use_deterministic_algorithms(True, warn_only=args.device != "cpu")
    torch.manual_seed(args.seed)
    began = time.time()

    docs = corpus(args.seed, args.docs)
    tok = build_tokenizer(docs)
    stream: list[int] = []
    for enc in tok.encode_batch(docs, add_special_tokens=False):
        stream += [1, *enc.ids, 2]  # <s> doc </s>
    chunks = torch.tensor(stream[: len(stream) // SEQ_LEN * SEQ_LEN]).view(-1, SEQ_LEN)
    print(f"corpus: {len(docs)} documents, {len(stream)} tokens, {len(chunks)} sequences of {SEQ_LEN}")

    config = transformers.LlamaConfig(
        vocab_size=VOCAB,
        bos_token_id=1,
        eos_token_id=2,
        pad_token_id=3,
        attention_bias=False,
        mlp_bias=False,
        **MODEL,
    )
    model = transformers.LlamaForCausalLM(config).to(args.device)
    n_params = sum(p.numel() for p in model.parameters())
    print(f"model: {n_params:,} parameters")

    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, betas=(0.9, 0.95), weight_decay=0.1)
    warmup = max(1, args.steps // 20)

    def lr_at(step: int) -> float:
        if step < warmup:
            return args.lr * (step + 1) / warmup
        progress = (step - warmup) / max(1, args.steps - warmup)
        return args.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))

    order = torch.randperm(len(chunks))
    model.train()
    log_every = 50
    running = 0.0
    for step in range(args.steps):
        idx = order[(torch.arange(args.batch) + step * args.batch) % len(chunks)]
        batch = chunks[idx].to(args.device)
        for group in opt.param_groups:
            group["lr"] = lr_at(step)
        loss = model(input_ids=batch, labels=batch).loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        running += loss.item()
        if (step + 1) % log_every == 0 or step + 1 == args.steps:
            n = (step % log_every) + 1
            print(
                f"step {step + 1:5d}/{args.steps}  loss {running / n:.4f}  lr {lr_at(step):.2e}  "
                f"{time.time() - began:6.0f}s",
                flush=True,
            )
            final_loss = running / n
            running = 0.0
    train_seconds = time.time() - began

    # --- save ---------------------------------------------------------------------------------
    out = Path(args.out)
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    model = model.to("cpu").eval()
    model.save_pretrained(out, safe_serialization=True)
    for extra in out.glob("generation_config.json"):
        extra.unlink()
    tok.save(str(out / "tokenizer.json"))
    write_json(
        out / "tokenizer_config.json",
        {
            "add_bos_token": True,
            "add_eos_token": False,
            "bos_token": "<s>",
            "eos_token": "</s>",
            "pad_token": "<pad>",
            "unk_token": "<unk>",
            "model_max_length": MODEL["max_position_embeddings"],
            "tokenizer_class": "PreTrainedTokenizerFast",
        },
    )
    write_json(
        out / "generation_config.json",
        {"bos_token_id": 1, "eos_token_id": [2], "pad_token_id": 3, "do_sample": False},
    )

    # --- report: what the saved model continues, read back from disk ----------------------------
    ref = transformers.AutoModelForCausalLM.from_pretrained(out, dtype=torch.float32)
    ref.eval()
    samples = {}
    for prompt in SAMPLE_PROMPTS:
        ids = tok.encode(prompt).ids
        with torch.no_grad():
            gen = ref.generate(
                torch.tensor([ids]), max_new_tokens=16, do_sample=False, eos_token_id=2, pad_token_id=3
            )[0, len(ids) :].tolist()
        samples[prompt] = tok.decode(gen)
        print(f"greedy {prompt!r} -> {samples[prompt]!r}")
    accuracy = counting_accuracy(ref, tok, args.seed + 1)
    print(f"counting accuracy (greedy next number after three): {accuracy}")
    write_json(
        out / "pretraining.json",
        {
            "script": "scripts/demo-model/pretrain.py",
            "seed": args.seed,
            "steps": args.steps,
            "batch_sequences": args.batch,
            "sequence_length": SEQ_LEN,
            "learning_rate": args.lr,
            "threads": args.threads,
            "corpus_documents": len(docs),
            "corpus_tokens": len(stream),
            "tokens_seen": args.steps * args.batch * SEQ_LEN,
            "parameters": n_params,
            "final_loss": round(final_loss, 4),  # mean of the last logged window
            "seconds": round(train_seconds),
            "greedy_samples": samples,
            "counting_accuracy": accuracy,
            "device": args.device,
            "versions": {
                "torch": torch.__version__,
                "transformers": transformers.__version__,
                "tokenizers": __import__("tokenizers").__version__,
            },
        },
    )
    print(f"wrote {out} in {time.time() - began:.0f}s")
    return 0


def counting_accuracy(model, tok, seed: int, per_style: int = 50) -> dict[str, float]:
    """Share of fresh counting prompts ("a a+1 a+2") greedily continued with " a+3 a+4"
    (or " a+3" and the end of the document)."""
    import torch

    rng = random.Random(seed)
    styles = {
        "digits": (str, lambda: rng.randint(0, 999_999)),
        "negative": (str, lambda: -rng.randint(4, 9_999)),
        "commas": (with_commas, lambda: rng.randint(1_000, 99_999_999)),
        "words": (to_words, lambda: rng.randint(0, 9_999_999)),
    }
    result = {}
    for style, (fmt, draw) in styles.items():
        hits = 0
        for _ in range(per_style):
            n = draw()
            prompt = " ".join(fmt(n + i) for i in range(3))
            want = f" {fmt(n + 3)} {fmt(n + 4)}"
            ids = tok.encode(prompt).ids
            with torch.no_grad():
                gen = model.generate(
                    torch.tensor([ids]),
                    max_new_tokens=len(tok.encode(want, add_special_tokens=False).ids),
                    do_sample=False,
                    eos_token_id=2,
                    pad_token_id=3,
                )[0, len(ids) :].tolist()
            text = tok.decode(gen, skip_special_tokens=False)
            hits += text == want or text == f" {fmt(n + 3)}</s>"
        result[style] = hits / per_style
    return result


SAMPLE_PROMPTS = [
    "41 42 43",
    "twenty two twenty three",
    "1,998 1,999",
    "-3 -2 -1",
    "after 99 comes",
    "User: 41\n\nAssistant: ",
]


def write_json(path: Path, value) -> None:
    path.write_text(json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    raise SystemExit(main())
