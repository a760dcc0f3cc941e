#!/usr/bin/env python3
"""Checks the quick start's premise on a (demo) model with Hugging Face PEFT, independently of
tunekit: held-out exact match on examples/data/increment-heldout.jsonl before and after LoRA
tuning on examples/data/increment.jsonl with the plain template
`User: {input}\\n\\nAssistant: ` -> `{output}</s>` (prompt masked, r 8, alpha 32, dropout 0.1,
the seven projections, batch 8, AdamW).

Usage:  python3 scripts/demo-model/lora_check.py [MODEL_DIR] [LEARNING_RATE] [EPOCHS]
        (defaults: models/demo-counting 1e-4 3; needs torch, transformers, peft)
Env:    LIMIT=n trains on the first n examples, NEVAL=n scores the first n held-out ones.
"""

import json
import os
import sys
import time

import torch
import transformers
from peft import LoraConfig, get_peft_model

torch.set_num_threads(1)
torch.manual_seed(0)
model_dir = sys.argv[1] if len(sys.argv) > 1 else "models/demo-counting"
lr = float(sys.argv[2]) if len(sys.argv) > 2 else 1e-4
epochs = int(sys.argv[3]) if len(sys.argv) > 3 else 3
EOS, PAD = 2, 3

tok = transformers.PreTrainedTokenizerFast.from_pretrained(model_dir)
model = transformers.AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
rows = [json.loads(line) for line in open("examples/data/increment.jsonl")]
rows = rows[: int(os.environ.get("LIMIT", len(rows)))]
held = [json.loads(line) for line in open("examples/data/increment-heldout.jsonl")]
held = held[: int(os.environ.get("NEVAL", len(held)))]


def prompt(x: str) -> str:
    return f"User: {x}\n\nAssistant: "


def evaluate(m) -> tuple[float, list]:
    m.eval()
    hits, shown = 0, []
    for r in held:
        ids = tok(prompt(r["text_input"]), add_special_tokens=False).input_ids
        with torch.no_grad():
            out = m.generate(
                torch.tensor([ids]), max_new_tokens=24, do_sample=False, eos_token_id=EOS, pad_token_id=PAD
            )[0, len(ids) :]
        text = tok.decode(out, skip_special_tokens=True).strip()
        hits += text == r["output"]
        if len(shown) < 4:
            shown.append((r["text_input"], text))
    return hits / len(held), shown


print("before", evaluate(model), flush=True)
config = LoraConfig(
    task_type="CAUSAL_LM",
    r=8,
    lora_alpha=32,
    lora_dropout=0.1,
    target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
)
peft_model = get_peft_model(model, config)
opt = torch.optim.AdamW([p for p in peft_model.parameters() if p.requires_grad], lr=lr)
examples = []
for r in rows:
    p = tok(prompt(r["text_input"]), add_special_tokens=False).input_ids
    a = tok(r["output"], add_special_tokens=False).input_ids + [EOS]
    examples.append((p + a, [-100] * len(p) + a))
began, gen = time.time(), torch.Generator().manual_seed(0)
for epoch in range(epochs):
    peft_model.train()
    order = torch.randperm(len(examples), generator=gen).tolist()
    total = 0.0
    for i in range(0, len(examples), 8):
        batch = [examples[j] for j in order[i : i + 8]]
        width = max(len(x) for x, _ in batch)
        ids = torch.tensor([x + [PAD] * (width - len(x)) for x, _ in batch])
        labels = torch.tensor([y + [-100] * (width - len(y)) for _, y in batch])
        mask = torch.tensor([[1] * len(x) + [0] * (width - len(x)) for x, _ in batch])
        loss = peft_model(input_ids=ids, attention_mask=mask, labels=labels).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
        total += loss.item()
    print(f"epoch {epoch + 1} loss {total / -(-len(examples) // 8):.4f} {time.time() - began:.0f}s", flush=True)
print("after", evaluate(peft_model), flush=True)
