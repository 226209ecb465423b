#!/usr/bin/env python3
"""Side-by-side table of bench/gpu_bench.cpp (rkeras) and bench/torch_gpu.py (PyTorch) results.

Reads OUT/rkeras_gpu.json and OUT/torch_gpu.json (either may be missing: its column shows '-'),
prints the table with the ratio rkeras / PyTorch (PyTorch's faster layout) and the goals of the CUDA
issue at batch 256 (convnet and ResNet-style >= 0.9x, small MLP >= 1.5x), and writes
OUT/gpu_table.md: the same as a markdown table headed by the date and the GPU, ready to paste into
README.md. Standard library only (runs where torch is missing).
Usage: python3 bench/gpu_table.py OUT [GPU description, e.g. nvidia-smi's name and driver]
"""
import datetime
import json
import os
import sys

GOALS = {("mlp", 256): 1.5, ("convnet", 256): 0.9, ("resnet", 256): 0.9}
LABEL = {"mlp": "MLP 784-256-128-10", "convnet": "Keras mnist_convnet", "resnet": "ResNet-style CNN 32x32x3"}


def load(path):
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return json.load(f)


def main():
    if len(sys.argv) < 2:
        raise SystemExit("usage: gpu_table.py OUT [GPU description]")
    out = sys.argv[1]
    gpu = sys.argv[2] if len(sys.argv) > 2 else ""
    rk = [r for r in load(os.path.join(out, "rkeras_gpu.json")) if r.get("device") == "cuda"]
    th = [r for r in load(os.path.join(out, "torch_gpu.json")) if r.get("device") == "cuda" and r.get("best", True)]
    if not rk and not th:
        print("gpu_table: no GPU results in " + out + " (no GPU: GPU workloads skipped)")
        return 0
    keys = []
    for r in rk + th:
        k = (r["model"], r["batch"])
        if k not in keys:
            keys.append(k)
    order = {"mlp": 0, "convnet": 1, "resnet": 2}
    keys.sort(key=lambda k: (order.get(k[0], 9), k[1]))
    rkd = {(r["model"], r["batch"]): r for r in rk}
    thd = {(r["model"], r["batch"]): r for r in th}
    if not gpu:
        gpu = (rk or th)[0].get("device_name", "?")
    info = rk[0].get("info", "") if rk else ""
    tver = th[0]["framework"] if th else "PyTorch not run"
    date = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d")

    rows = []
    for k in keys:
        a, b = rkd.get(k), thd.get(k)
        ratio = a["train_sps_median"] / b["train_sps_median"] if a and b else None
        goal = GOALS.get(k)
        verdict = "" if goal is None or ratio is None else (f">= {goal}x: " + ("met" if ratio >= goal else "NOT MET"))
        params_ok = "" if not (a and b) or a["params"] == b["params"] else " (parameter counts differ!)"
        rows.append((k, a, b, ratio, verdict + params_ok))

    def sps(r):
        return "-" if r is None else f"{r['train_sps_median']:,.0f}"

    def rng(r):
        return "" if r is None else f" [{r['train_sps_min']:,.0f}-{r['train_sps_max']:,.0f}]"

    print(f"GPU training samples/s, {gpu}; rkeras ({info}) vs {tver}; float32, TF32 off, Adam; "
          "median [min-max] over chunks of 10 batches")
    print(f"{'model':26s} {'batch':>6s} {'rkeras':>28s} {'PyTorch':>28s} {'ratio':>7s}  goal")
    for (m, bsz), a, b, ratio, verdict in rows:
        lay = f" (PyTorch {b['layout']}, {b['adam']} Adam)" if b and b.get("layout", "-") != "-" else ""
        print(f"{LABEL.get(m, m):26s} {bsz:6d} {sps(a) + rng(a):>28s} {sps(b) + rng(b):>28s} "
              f"{(f'{ratio:.2f}x' if ratio else '-'):>7s}  {verdict}{lay}")

    md = [f"GPU training throughput ({date}, {gpu}; rkeras engine: {info or '-'}; {tver}). Train samples/s, "
          "median over chunks of 10 batches after 5 warm-up batches, synthetic data on the GPU, float32 "
          "(TF32 off in both), Adam lr 1e-3; PyTorch eager at its best (faster of channels-first and "
          "channels-last, fused Adam where available, cudnn.benchmark). Measured by `bench/gpu.sh`.",
          "",
          "| model | batch | rkeras samples/s | PyTorch samples/s | rkeras / PyTorch | goal |",
          "| --- | ---: | ---: | ---: | ---: | --- |"]
    for (m, bsz), a, b, ratio, verdict in rows:
        md.append(f"| {LABEL.get(m, m)} | {bsz} | {sps(a)} | {sps(b)} | {(f'{ratio:.2f}x' if ratio else '-')} | "
                  f"{verdict} |")
    with open(os.path.join(out, "gpu_table.md"), "w") as f:
        f.write("\n".join(md) + "\n")
    print()
    print("\n".join(md))
    return 0


if __name__ == "__main__":
    sys.exit(main())
