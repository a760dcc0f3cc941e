#!/usr/bin/env python3
"""Prints bench/train's table from the JSON lines run.sh collected (one per side and run)."""

from __future__ import annotations

import json
import sys


def steady(r: dict) -> float:
    """tokens/s of the median step after the first (warm-up: allocator, thread pools)."""
    xs = sorted(r["step_s"][1:]) or r["step_s"]
    return r["tokens"] / r["steps"] / xs[len(xs) // 2]


def main() -> int:
    rows = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
    native = [r for r in rows if r["side"] == "native"]
    profiles = [r for r in rows if r["side"] == "native-profile"]
    torch = {(r["threads"], r["rep"]): r for r in rows if r["side"] == "torch"}
    if native:
        n = native[0]
        print(
            f"\none LoRA epoch: {n['examples']} sequences x {n['max_len']} tokens, batch {n['batch']}, "
            f"{n['steps']} steps, r 8 / alpha 32, 7 projections, AdamW lr 1e-4, clip 1.0\n"
        )
    print(
        "| threads | run | native tok/s | torch tok/s | throughput ratio | native peak RSS | torch peak RSS "
        "| RSS ratio | loss step 1 native / torch | load |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for n in native:
        t = torch.get((n["threads"], n["rep"]))
        tput = f"{n['tokens_per_s']:.1f}"
        peak = f"{n['peak_rss_mib']:.0f} MiB"
        if t:
            print(
                f"| {n['threads']} | {n['rep']} | {tput} | {t['tokens_per_s']:.1f} | "
                f"**{n['tokens_per_s'] / t['tokens_per_s']:.2f}x** | {peak} | {t['peak_rss_mib']:.0f} MiB | "
                f"**{n['peak_rss_mib'] / t['peak_rss_mib']:.2f}x** | {n['loss_first']:.4f} / {t['loss_first']:.4f} "
                f"| {n['load']:.1f} / {t['load']:.1f} |"
            )
        else:
            print(f"| {n['threads']} | {n['rep']} | {tput} | - | - | {peak} | - | - | {n['loss_first']:.4f} | {n['load']:.1f} |")

    print("\nsteady state (median step after the first), tokens/s:")
    for n in native:
        t = torch.get((n["threads"], n["rep"]))
        extra = f" · torch {steady(t):.1f} · ratio {steady(n) / steady(t):.2f}x" if t else ""
        print(f"  {n['threads']}t run {n['rep']}: native {steady(n):.1f}{extra}")
    print("\nafter model load (RSS): " + ", ".join(
        f"{r['side']} {r['threads']}t {r['rss_after_load_mib']:.0f} MiB" for r in rows if r["side"] != "native-profile"))
    print("\nwhere the time goes")
    for r in profiles + [r for r in rows if r["side"] == "torch"]:
        p = r["profile"]
        if r["side"] == "native-profile":
            total = sum(v for k, v in p.items() if k.endswith("_s"))
            parts = [(k[:-2], v) for k, v in p.items() if k.endswith("_s")]
            head = f"native {r['threads']}t ({p['steps']} steps in a fresh process, first untimed; {p['tokens'] / total:.1f} tok/s)"
        else:
            total = sum(p.values())
            parts = [(k[:-2], v) for k, v in p.items()]
            head = f"torch  {r['threads']}t run {r['rep']} (the measured epoch)"
        print(f"  {head}: " + " · ".join(f"{k} {100 * v / total:.0f}% ({v:.2f}s)" for k, v in parts))
        if r["side"] == "native-profile":
            m, g = r["phase_peak_above_step_start_mib"], r["gradstore_non_lora"]
            print(
                f"    memory: peak RSS above the step's start (max over steps): forward +{m['forward']:.0f} MiB, LM head+loss "
                f"+{m['lm_head_loss']:.0f} MiB, backward +{m['backward']:.0f} MiB; GradStore keeps "
                f"{g['tensors']} non-LoRA gradients ({g['mib']:.0f} MiB) until backward returns"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
