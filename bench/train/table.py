#!/usr/bin/env python3
"""Prints bench/train's table from the JSON lines run.sh collected (one per side and run)."""

from __future__ import annotations

import json
import sys


def steady(r: dict) -> float:
    """tokens/s of the median step after the first (warm-up: allocator, thread pools)."""
    xs = sorted(r["step_s"][1:]) or r["step_s"]
    return r["tokens"] / r["steps"] / xs[len(xs) // 2]


def prec(r: dict) -> str:
    return r.get("precision", "f32")


def tprec(p: str) -> str:
    """The torch precision a native one is compared with: the stored base (GGUF blocks, which
    transformers dequantises to f32 on load) and the source's default against torch f32."""
    return "f32" if p in ("stored", "default") else p


def mean(xs: list[float]) -> float | None:
    return sum(xs) / len(xs) if xs else None


def main() -> int:
    rows = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
    native = [r for r in rows if r["side"] == "native"]
    profiles = [r for r in rows if r["side"] == "native-profile"]
    torch_rows = [r for r in rows if r["side"] == "torch"]
    torch = {(r["threads"], prec(r), r["rep"]): r for r in torch_rows}
    if native:
        n = native[0]
        print(
            f"\none LoRA epoch: {n['examples']} sequences x {n['max_len']} tokens, batch {n['batch']}, "
            f"{n['steps']} steps, r 8 / alpha 32, 7 projections, AdamW lr 1e-4, clip 1.0\n"
            "precision stored: native keeps the base as the file stores it (GGUF blocks, dequantised tile by tile "
            "in each product), against torch f32 (transformers dequantises the GGUF to f32 on load). "
            "f32: both sides in f32. bf16: native baseWeights \"bf16\" (frozen matrices in bf16, "
            "bf16 GEMM inputs, f32 accumulation, LoRA/norms/activations f32); torch under "
            "torch.autocast(\"cpu\", bfloat16) (linear layers and matmuls in bf16, f32 master weights)\n"
        )
    print(
        "| threads | precision | run | native base held as | native tok/s | torch tok/s | throughput ratio | native peak RSS | torch peak RSS "
        "| RSS ratio | loss step 1 native / torch | last step native / torch | load |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for n in native:
        t = torch.get((n["threads"], tprec(prec(n)), n["rep"]))
        tput = f"{n['tokens_per_s']:.1f}"
        peak = f"{n['peak_rss_mib']:.0f} MiB"
        head = f"| {n['threads']} | {prec(n)} | {n['rep']} | {n.get('base_held', prec(n))} | {tput}"
        if t:
            print(
                f"{head} | {t['tokens_per_s']:.1f}{'' if tprec(prec(n)) == prec(n) else ' (' + tprec(prec(n)) + ')'} | "
                f"**{n['tokens_per_s'] / t['tokens_per_s']:.2f}x** | {peak} | {t['peak_rss_mib']:.0f} MiB | "
                f"**{n['peak_rss_mib'] / t['peak_rss_mib']:.2f}x** | {n['loss_first']:.4f} / {t['loss_first']:.4f} "
                f"| {n['loss_last']:.4f} / {t['loss_last']:.4f} | {n['load']:.1f} / {t['load']:.1f} |"
            )
        else:
            print(f"{head} | - | - | {peak} | - | - | {n['loss_first']:.4f} | {n['loss_last']:.4f} | {n['load']:.1f} |")

    # Achieved GFLOP/s: the epoch's FLOPs (counted once, by the native side, for the work both
    # sides must do: train_bench.rs `lora_step_flops`) over each side's wall time, against the
    # machine's f32 matmul peak measured in the same run at the same thread count.
    peaks: dict[int, dict[str, float]] = {}
    bf16_rates: dict[int, dict] = {}
    for r in rows:
        if r["side"].startswith("sgemm-"):
            peaks.setdefault(r["threads"], {})[r["side"][len("sgemm-"):]] = r["gflops"]
        if r["side"] == "sgemm-native" and "bf16_gflops" in r:
            bf16_rates[r["threads"]] = r
    if native and "epoch_gflop" in native[0]:
        gflop = native[0]["epoch_gflop"]
        print(f"\nachieved GFLOP/s ({gflop:.0f} GFLOP per epoch: forward + backward-to-input of the frozen base, LoRA, attention, LM head)")
        print("| threads | precision | run | native GFLOP/s | torch GFLOP/s | f32 sgemm peak 2048³ (candle / torch) | native % of f32 peak | torch % of f32 peak |")
        print("|---|---|---|---|---|---|---|---|")
        for n in native:
            t = torch.get((n["threads"], tprec(prec(n)), n["rep"]))
            p = peaks.get(n["threads"], {})
            peak = max(p.values()) if p else None
            ng = gflop / n["seconds"]
            tg = gflop / t["seconds"] if t else None
            peak_s = " / ".join(f"{p[k]:.0f}" if k in p else "-" for k in ("native", "torch"))
            pct = lambda g: f"{100 * g / peak:.0f}%" if (g is not None and peak) else "-"
            tg_s = f"{tg:.1f}" if tg is not None else "-"
            print(f"| {n['threads']} | {prec(n)} | {n['rep']} | {ng:.1f} | {tg_s} | {peak_s} | {pct(ng)} | {pct(tg)} |")
        for c, r in sorted(bf16_rates.items()):
            print(
                f"  {c}t GEMM rates (native, same run): 512x576x1536 f32 (candle) {r['f32_gflops_512x576x1536']:.0f} · "
                f"bf16 ({r['bf16_kernel']}) {r['bf16_gflops_512x576x1536']:.0f} GFLOP/s; 2048³ bf16 {r['bf16_gflops']:.0f}"
            )
            if "bf16_gflops_64x640x262144" in r:
                print(
                    f"  {c}t a 64-row chunk of a 262144 x 640 LM head, f32 (candle) / bf16 GFLOP/s: logits "
                    f"{r['f32_gflops_64x640x262144']:.0f} / {r['bf16_gflops_64x640x262144']:.0f} · input gradient "
                    f"{r['f32_gflops_64x262144x640']:.0f} / {r['bf16_gflops_64x262144x640']:.0f}"
                )

    def mean_tps(side: list[dict], threads: int, p: str) -> float | None:
        return mean([r["tokens_per_s"] for r in side if r["threads"] == threads and prec(r) == p])

    counts = sorted({n["threads"] for n in native})
    precisions = sorted({prec(n) for n in native}, key=lambda p: p != "f32")
    print("\nmean tokens/s over runs, and thread scaling:")
    for p in precisions:
        for name, side in (("native", native), ("torch", torch_rows)):
            vals = [(c, mean_tps(side, c, p)) for c in counts]
            if all(v is not None for _, v in vals):
                line = f"  {p} {name}: " + " · ".join(f"{c}t {v:.1f}" for c, v in vals)
                if len(counts) > 1:
                    line += f" ({vals[-1][1] / vals[0][1]:.2f}x from {counts[0]} to {counts[-1]} threads)"
                print(line)
        ratios = []
        for c in counts:
            n_, t_ = mean_tps(native, c, p), mean_tps(torch_rows, c, tprec(p))
            if n_ and t_:
                ratios.append(f"{c}t {n_ / t_:.2f}x")
        if ratios:
            print(f"  {p} native / torch {tprec(p)}: " + " · ".join(ratios))
        if tprec(p) != "f32":
            ratios = []
            for c in counts:
                n_, t_ = mean_tps(native, c, p), mean_tps(torch_rows, c, "f32")
                if n_ and t_:
                    ratios.append(f"{c}t {n_ / t_:.2f}x")
            if ratios:
                print(f"  {p} native / torch f32: " + " · ".join(ratios))
    # What the FLOP count allows: a side cannot beat (GEMM peak) / (GFLOP per token), so a goal
    # above that ceiling needs fewer FLOPs or a faster number format, not a better schedule.
    if native and "epoch_gflop" in native[0]:
        per_token = native[0]["epoch_gflop"] / (native[0]["tokens_per_s"] * native[0]["seconds"])
        print(f"\nFLOP ceiling ({per_token:.3f} GFLOP per token): tokens/s if every FLOP ran at the GEMM peak of this run")
        for c in counts:
            p_ = peaks.get(c, {})
            t_f32 = mean_tps(torch_rows, c, "f32")
            parts = []
            if p_:
                parts.append(f"f32 {max(p_.values()) / per_token:.0f}")
            if c in bf16_rates:
                parts.append(f"bf16 {bf16_rates[c]['bf16_gflops'] / per_token:.0f}")
            if t_f32:
                parts.append(f"(2x torch f32 = {2 * t_f32:.0f})")
            if parts:
                print(f"  {c}t: " + " · ".join(parts))
    if "bf16" in precisions and "f32" in precisions:
        print("\nloss, bf16 vs f32 (mean over runs; step 1 → last step):")
        for name, side in (("native", native), ("torch", torch_rows)):
            for c in counts:
                got = {}
                for p in ("f32", "bf16"):
                    rs = [r for r in side if r["threads"] == c and prec(r) == p]
                    if rs:
                        got[p] = (mean([r["loss_first"] for r in rs]), mean([r["loss_last"] for r in rs]))
                if len(got) == 2:
                    (f1, fl), (b1, bl) = got["f32"], got["bf16"]
                    print(f"  {name} {c}t: f32 {f1:.4f} → {fl:.4f} · bf16 {b1:.4f} → {bl:.4f} (differences {b1 - f1:+.4f} / {bl - fl:+.4f})")
    loads = [r["load"] for r in rows if "load" in r]
    if loads:
        print(f"\nload average (1 min) at the start of each run: {min(loads):.1f} to {max(loads):.1f}")

    print("\nsteady state (median step after the first), tokens/s:")
    for n in native:
        t = torch.get((n["threads"], tprec(prec(n)), n["rep"]))
        extra = f" · torch {steady(t):.1f} · ratio {steady(n) / steady(t):.2f}x" if t else ""
        print(f"  {n['threads']}t {prec(n)} run {n['rep']}: native {steady(n):.1f}{extra}")
    print("\nafter model load (RSS): " + ", ".join(
        f"{r['side']} {r['threads']}t {prec(r)} {r['rss_after_load_mib']:.0f} MiB" for r in rows if r["side"] in ("native", "torch")))
    print("\nwhere the time goes")
    for r in profiles + torch_rows:
        p = r["profile"]
        if r["side"] == "native-profile":
            total = sum(v for k, v in p.items() if k.endswith("_s"))
            parts = [(k[:-2], v) for k, v in p.items() if k.endswith("_s")]
            head = f"native {r['threads']}t {prec(r)} ({p['steps']} steps in a fresh process, first untimed; {p['tokens'] / total:.1f} tok/s)"
        else:
            total = sum(p.values())
            parts = [(k[:-2], v) for k, v in p.items()]
            head = f"torch  {r['threads']}t {prec(r)} run {r['rep']} (the measured epoch)"
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
