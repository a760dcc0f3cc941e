#!/usr/bin/env python3
"""transformers/PyTorch CPU baseline for bench/generate/generate.bench.ts.

Times the same work the native side does, on the same model directory, prompt ids and
thread count: prefill = one forward pass over the prompt with the KV cache on (the logits of
the last position only, as generation needs), decode = greedy steps feeding one token with
the cache. Prints one JSON line; exits with status 3 and a message if torch/transformers are
missing, so the caller can skip the baseline cleanly.

  python3 bench/generate/baseline.py MODEL_DIR --prompt-ids 1,2,3 --new-tokens 64 \
      --threads 2 --repeats 3
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("model_dir")
    parser.add_argument("--prompt-ids", required=True)
    parser.add_argument("--new-tokens", type=int, required=True)
    parser.add_argument("--threads", type=int, required=True)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    try:
        import torch
        import transformers
    except ImportError as error:
        print(f"baseline skipped: {error.name} is not installed (pip install torch transformers)", file=sys.stderr)
        return 3

    torch.set_num_threads(args.threads)
    model = transformers.AutoModelForCausalLM.from_pretrained(args.model_dir, dtype=torch.float32)
    model.eval()
    ids = torch.tensor([[int(x) for x in args.prompt_ids.split(",")]])

    def run() -> tuple[float, float, list[int]]:
        with torch.inference_mode():
            start = time.perf_counter()
            out = model(ids, use_cache=True, logits_to_keep=1)
            token = int(out.logits[0, -1].argmax())
            prefill = time.perf_counter() - start
            past = out.past_key_values
            tokens = [token]
            start = time.perf_counter()
            for _ in range(args.new_tokens - 1):
                out = model(torch.tensor([[token]]), past_key_values=past, use_cache=True)
                past = out.past_key_values
                token = int(out.logits[0, -1].argmax())
                tokens.append(token)
            decode = time.perf_counter() - start
        return prefill, decode, tokens

    run()  # warm-up: first-call allocations and kernel selection
    runs = [run() for _ in range(args.repeats)]
    prefill = statistics.median(r[0] for r in runs)
    decode = statistics.median(r[1] for r in runs)
    print(
        json.dumps(
            {
                "torch": torch.__version__,
                "transformers": transformers.__version__,
                "threads": torch.get_num_threads(),
                "prefill_s": prefill,
                "decode_s": decode,
                "tokens": runs[0][2],
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
