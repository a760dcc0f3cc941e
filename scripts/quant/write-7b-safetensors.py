#!/usr/bin/env python3
"""Writes a random Llama with DeepSeek-LLM-7B's shape as a bf16 safetensors model directory
(config.json + model.safetensors, ~13.8 GB), streaming one tensor at a time (peak memory: one
tensor), for bench/quant's 7B proof with a 16-bit base. Not used by CI. The sibling of
write-7b-gguf.py (same shape, same untied head); no tokenizer: the bench feeds token ids.

Weights are random bf16 values of magnitude 2^-9 to 2^-6 (about 0.002 to 0.03) with random
signs, built directly from random bits (no float conversion, so writing is disk-bound); norms
are 1.

    python3 scripts/quant/write-7b-safetensors.py ~/.cache/tunekit/bench/shapes/deepseek-7b-bf16 [--layers N]
"""

import argparse
import json
import os

import numpy as np

HID, INTER, HEADS, VOCAB = 4096, 11008, 32, 102400


def tensors(layers: int) -> list[tuple[str, tuple[int, ...]]]:
    out = [("model.embed_tokens.weight", (VOCAB, HID))]
    for i in range(layers):
        p = f"model.layers.{i}"
        out += [
            (f"{p}.input_layernorm.weight", (HID,)),
            (f"{p}.self_attn.q_proj.weight", (HID, HID)),
            (f"{p}.self_attn.k_proj.weight", (HID, HID)),
            (f"{p}.self_attn.v_proj.weight", (HID, HID)),
            (f"{p}.self_attn.o_proj.weight", (HID, HID)),
            (f"{p}.post_attention_layernorm.weight", (HID,)),
            (f"{p}.mlp.gate_proj.weight", (INTER, HID)),
            (f"{p}.mlp.up_proj.weight", (INTER, HID)),
            (f"{p}.mlp.down_proj.weight", (HID, INTER)),
        ]
    return out + [("model.norm.weight", (HID,)), ("lm_head.weight", (VOCAB, HID))]


def random_bf16(n: int, rng: np.random.Generator) -> np.ndarray:
    bits = rng.integers(0, 1 << 16, size=n, dtype=np.uint16)
    # Keep the sign bit and 7 mantissa bits; exponent 118..121 (2^-9 .. 2^-6).
    exponent = (118 + (bits >> 7) % 4).astype(np.uint16)
    return (bits & np.uint16(0x807F)) | (exponent << np.uint16(7))


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("out_dir")
    p.add_argument("--layers", type=int, default=30)
    a = p.parse_args()
    os.makedirs(a.out_dir, exist_ok=True)
    config = {
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "hidden_size": HID,
        "intermediate_size": INTER,
        "num_hidden_layers": a.layers,
        "num_attention_heads": HEADS,
        "num_key_value_heads": HEADS,
        "vocab_size": VOCAB,
        "max_position_embeddings": 4096,
        "rms_norm_eps": 1e-6,
        "rope_theta": 10000.0,
        "hidden_act": "silu",
        "tie_word_embeddings": False,
        "torch_dtype": "bfloat16",
        "bos_token_id": 100000,
        "eos_token_id": 100001,
    }
    with open(os.path.join(a.out_dir, "config.json"), "w") as f:
        json.dump(config, f, indent=2)

    specs = tensors(a.layers)
    header, offset = {}, 0
    for name, shape in specs:
        size = int(np.prod(shape)) * 2
        header[name] = {"dtype": "BF16", "shape": list(shape), "data_offsets": [offset, offset + size]}
        offset += size
    head = json.dumps(header, separators=(",", ":")).encode()
    head += b" " * (-len(head) % 8)  # the data starts 8-byte aligned
    rng = np.random.default_rng(0)
    path = os.path.join(a.out_dir, "model.safetensors")
    with open(path + ".tmp", "wb") as f:
        f.write(len(head).to_bytes(8, "little"))
        f.write(head)
        for name, shape in specs:
            n = int(np.prod(shape))
            if len(shape) == 1:
                f.write(np.full(n, 0x3F80, dtype=np.uint16).tobytes())  # 1.0
            else:
                for start in range(0, n, 1 << 26):  # 128 MiB at a time
                    f.write(random_bf16(min(1 << 26, n - start), rng).tobytes())
    os.replace(path + ".tmp", path)
    mats = sum(int(np.prod(s)) for _, s in specs if len(s) == 2)
    print(f"wrote {path}: {mats / 1e9:.2f}B matrix weights as bf16 ({offset / 2**30:.2f} GiB)")


if __name__ == "__main__":
    main()
