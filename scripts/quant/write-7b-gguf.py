#!/usr/bin/env python3
"""Writes a random Llama with DeepSeek-LLM-7B's shape as a Q4_K GGUF, streaming one tensor at
a time (peak memory: one tensor), for bench/quant's 7B proof. Not used by CI.

Shape: hidden 4096, 30 layers, 32 heads (MHA), intermediate 11008, vocab 102400, rope θ 10000,
untied output. Matrix blocks are random bytes with small finite f16 scales, so every weight is
finite and of order 0.01; norms are 1. The tokenizer is a placeholder (`<tN>` pieces): the bench
feeds token ids directly.

    python3 scripts/quant/write-7b-gguf.py /tmp/deepseek-7b-shape-q4_k.gguf [--layers N]
"""

import argparse

import numpy as np
from gguf import GGMLQuantizationType, GGUFWriter

HID, INTER, HEADS, VOCAB = 4096, 11008, 32, 102400


def q4_k(rows: int, cols: int, rng: np.random.Generator) -> np.ndarray:
    blocks = rows * cols // 256
    data = rng.integers(0, 256, size=(blocks, 144), dtype=np.uint8)
    # d and dmin: ~1e-4 and ~1e-3 so d*sc*q - dmin*m stays around ±0.02.
    data[:, 0:2] = np.frombuffer(np.float16(2e-4).tobytes(), dtype=np.uint8)
    data[:, 2:4] = np.frombuffer(np.float16(3e-4).tobytes(), dtype=np.uint8)
    # ggml stores a [rows, cols] matrix as rows of cols/256 blocks.
    return data.reshape(rows, cols // 256 * 144)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("out")
    p.add_argument("--layers", type=int, default=30)
    a = p.parse_args()
    rng = np.random.default_rng(0)
    w = GGUFWriter(a.out, "llama")
    w.add_block_count(a.layers)
    w.add_context_length(4096)
    w.add_embedding_length(HID)
    w.add_feed_forward_length(INTER)
    w.add_head_count(HEADS)
    w.add_head_count_kv(HEADS)
    w.add_rope_freq_base(10000.0)
    w.add_layer_norm_rms_eps(1e-6)
    w.add_tokenizer_model("llama")
    w.add_token_list([f"<t{i}>".encode() for i in range(VOCAB)])
    w.add_token_scores([0.0] * VOCAB)
    w.add_token_types([1] * VOCAB)
    w.add_bos_token_id(0)
    w.add_eos_token_id(1)

    q = GGMLQuantizationType.Q4_K
    mats = [("token_embd.weight", VOCAB, HID), ("output.weight", VOCAB, HID)]
    norms = ["output_norm.weight"]
    for i in range(a.layers):
        b = f"blk.{i}"
        mats += [
            (f"{b}.attn_q.weight", HID, HID),
            (f"{b}.attn_k.weight", HID, HID),
            (f"{b}.attn_v.weight", HID, HID),
            (f"{b}.attn_output.weight", HID, HID),
            (f"{b}.ffn_gate.weight", INTER, HID),
            (f"{b}.ffn_up.weight", INTER, HID),
            (f"{b}.ffn_down.weight", HID, INTER),
        ]
        norms += [f"{b}.attn_norm.weight", f"{b}.ffn_norm.weight"]
    for name, rows, cols in mats:
        w.add_tensor_info(name, (rows, cols // 256 * 144), np.dtype(np.uint8), rows * cols // 256 * 144, raw_dtype=q)
    for name in norms:
        w.add_tensor_info(name, (HID,), np.dtype(np.float32), HID * 4)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_ti_data_to_file()
    for name, rows, cols in mats:
        w.write_tensor_data(q4_k(rows, cols, rng))
    for _ in norms:
        w.write_tensor_data(np.ones(HID, dtype=np.float32))
    w.close()
    n = sum(r * c for _, r, c in mats)
    print(f"wrote {a.out}: {n / 1e9:.2f}B matrix weights as Q4_K ({n * 144 / 256 / 2**30:.2f} GiB)")


if __name__ == "__main__":
    main()
