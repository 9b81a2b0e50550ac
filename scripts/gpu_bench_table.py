"""Turns the JSON lines of the benchmarks (LOSSLENS_BENCH_JSON) into the Markdown table of
scripts/gpu-bench: training images/s of losslens and PyTorch with their ratios and first-step
times, then the analyses and probes against their baselines. Standard library only.

Usage: python3 gpu_bench_table.py RESULTS.jsonl [COLD.jsonl]
"""

import json
import sys


def load(path):
    try:
        with open(path) as f:
            return [json.loads(line) for line in f if line.strip()]
    except FileNotFoundError:
        return []


def main():
    rows = load(sys.argv[1])
    cold = load(sys.argv[2]) if len(sys.argv) > 2 else []
    train = [r for r in rows if "images_per_second" in r]
    device = next((r.get("device") for r in rows if r.get("device")), "?")
    out = [f"GPU benchmark on {device}", ""]
    if cold:
        c = cold[0]
        out.append(
            f"First training step with an empty kernel cache ({c['model']}, batch {c['batch']}, "
            f"f32): {c['first_step_seconds']:.1f} s"
        )
        out.append("")
    out += [
        "| network | batch | losslens f32 img/s | losslens mixed img/s | PyTorch fp32 img/s | PyTorch bf16-cl img/s "
        "| f32 / fp32 | mixed / fp32 | mixed / bf16 | first step f32 / mixed (s, warm cache) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    keys = sorted({(r["model"], r["image_size"], r["batch"]) for r in train}, key=lambda k: (k[0], k[1], k[2]))
    for model, size, batch in keys:
        by = {r["implementation"]: r for r in train if (r["model"], r["image_size"], r["batch"]) == (model, size, batch)}

        def rate(name):
            r = by.get(name)
            return r["images_per_second"] if r else None

        def fmt(v, spec=".0f"):
            return format(v, spec) if v is not None else "n/a"

        def ratio(a, b):
            return f"{a / b:.2f}" if a is not None and b else "n/a"

        f32, mixed = rate("losslens-f32"), rate("losslens-mixed")
        fp32, bf16 = rate("pytorch-fp32"), rate("pytorch-bf16cl")
        first = "/".join(
            fmt(by[n].get("first_step_seconds"), ".1f") if n in by else "n/a" for n in ("losslens-f32", "losslens-mixed")
        )
        out.append(
            f"| {model} {size} px | {batch} | {fmt(f32)} | {fmt(mixed)} | {fmt(fp32)} | {fmt(bf16)} "
            f"| {ratio(f32, fp32)} | {ratio(mixed, fp32)} | {ratio(mixed, bf16)} | {first} |"
        )
    if not any(r["implementation"].startswith("pytorch") for r in train):
        out += ["", "PyTorch baseline: not measured (python3 could not import torch)."]
    others = [r for r in rows if "benchmark" in r]
    if others:
        out += ["", "| benchmark | losslens s | baseline | baseline s | speed-up |", "|---|---:|---|---:|---:|"]
        for r in others:
            base = r.get("baseline_seconds")
            speed = r.get("speedup")
            out.append(
                f"| {r['benchmark']} | {r['losslens_seconds']:.3f} | {r['baseline']} | "
                f"{base if base is None else format(base, '.3f')} | "
                f"{'n/a' if speed is None or speed != speed else format(speed, '.2f') + '×'} |"
            )
    print("\n".join(out))


if __name__ == "__main__":
    main()
