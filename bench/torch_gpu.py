#!/usr/bin/env python3
"""The GPU workloads of bench/gpu_bench.cpp in PyTorch: the same models, data, optimizer and measurement.

Models (bench/workloads.h states them; parameter counts must match, --params-only prints them):
  mlp      Linear(784, 256)-ReLU-Linear(256, 128)-ReLU-Linear(128, 10)
  convnet  Conv2d(1, 32, 3)-ReLU-MaxPool(2)-Conv2d(32, 64, 3)-ReLU-MaxPool(2)-Flatten-Dropout(0.5)-Linear(1600, 10)
  resnet   Conv2d(3, 16, 3, pad 1, no bias)-BN-ReLU, 3 stages x 2 basic blocks (16, 32, 64 filters, stride 2
           at the start of stages 2 and 3, 1x1 conv + BN projection shortcut where the shape changes),
           global average pooling, Linear(64, 10). BatchNorm2d(eps=1e-3, momentum=0.01) = Keras's
           (epsilon 1e-3, momentum 0.99).
Keras default initialisers (xavier_uniform_ weights, zero biases; BN gamma 1, beta 0), float32,
TF32 off (matmul and cuDNN, as rkeras's default), cudnn.benchmark on. Data: synthetic, resident on
the device (U[0,1) inputs, labels in [0, 10), data-batches distinct batches' worth); each step
gathers a batch of a fresh permutation on the device (as fit() with shuffling does), then
zero_grad, forward, cross-entropy, backward, Adam(lr 1e-3, eps 1e-7) step. No per-step loss.item():
PyTorch at its best (rkeras reads the loss every step, as Keras logs it).

Measured as ../shared/bench/train_torch.py does: train samples/s over chunks of 10 batches after 5
warm-up batches, median (s[n // 2]) / min / max over the chunks, torch.cuda.synchronize() before
each clock read. PyTorch at its best: --layout auto measures the conv models channels-first and
channels-last and the table keeps the faster; --adam auto uses the fused CUDA Adam where this torch
has it (else foreach, torch's default on CUDA).

Exits 0 with a message when torch or a CUDA device is not available (--device auto, the default).
Usage: python3 bench/torch_gpu.py [--device auto|cuda|cpu] [--models mlp,convnet,resnet]
         [--batches 'mlp=128,256,1024;convnet=128,256,1024;resnet=256'] [--chunks 10] [--warmup 5]
         [--chunk 10] [--data-batches 8] [--layout auto|channels_first|channels_last]
         [--adam auto|foreach|fused|single] [--threads N] [--csv FILE] [--json FILE] [--params-only]
"""
import argparse
import inspect
import json
import sys
import time

DEFAULT_BATCHES = {"mlp": [128, 256, 1024], "convnet": [128, 256, 1024], "resnet": [256]}
INPUT_SHAPE = {"mlp": (784,), "convnet": (1, 28, 28), "resnet": (3, 32, 32)}


def parse_batches(spec):
    out = dict(DEFAULT_BATCHES)
    for part in filter(None, spec.split(";")):
        name, _, bs = part.partition("=")
        if name not in out or not bs:
            raise SystemExit(f"torch_gpu: --batches wants model=b1,b2;model=b3, got '{part}'")
        out[name] = [int(b) for b in bs.split(",") if b]
    return out


def build_model(name, nn):
    if name == "mlp":
        m = nn.Sequential(nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 128), nn.ReLU(), nn.Linear(128, 10))
    elif name == "convnet":
        m = nn.Sequential(nn.Conv2d(1, 32, 3), nn.ReLU(), nn.MaxPool2d(2),
                          nn.Conv2d(32, 64, 3), nn.ReLU(), nn.MaxPool2d(2),
                          nn.Flatten(), nn.Dropout(0.5), nn.Linear(1600, 10))
    else:
        def bn(c):
            return nn.BatchNorm2d(c, eps=1e-3, momentum=0.01)

        class Block(nn.Module):
            def __init__(self, cin, cout, stride):
                super().__init__()
                self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
                self.bn1 = bn(cout)
                self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
                self.bn2 = bn(cout)
                self.short = None
                if stride != 1 or cin != cout:
                    self.short = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), bn(cout))

            def forward(self, x):
                y = self.bn2(self.conv2(nn.functional.relu(self.bn1(self.conv1(x)))))
                return nn.functional.relu(y + (x if self.short is None else self.short(x)))

        layers = [nn.Conv2d(3, 16, 3, 1, 1, bias=False), bn(16), nn.ReLU()]
        cin = 16
        for f in (16, 32, 64):
            for blk in range(2):
                layers.append(Block(cin, f, 2 if (blk == 0 and f != 16) else 1))
                cin = f
        layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, 10)]
        m = nn.Sequential(*layers)
    for mod in m.modules():
        if isinstance(mod, (nn.Linear, nn.Conv2d)):
            nn.init.xavier_uniform_(mod.weight)
            if mod.bias is not None:
                nn.init.zeros_(mod.bias)
    return m


def count_params(model):
    """(total, trainable) as Keras counts them: parameters plus BN moving mean/variance."""
    trainable = sum(p.numel() for p in model.parameters())
    stats = sum(b.numel() for n, b in model.named_buffers() if n.endswith(("running_mean", "running_var")))
    return trainable + stats, trainable


def make_adam(torch, params, kind, cuda):
    sig = inspect.signature(torch.optim.Adam).parameters
    if kind == "auto":
        kind = "fused" if cuda and "fused" in sig else ("foreach" if "foreach" in sig else "single")
    extra = {"fused": {"fused": True}, "foreach": {"foreach": True}, "single": {"foreach": False}}[kind]
    if any(k not in sig for k in extra):
        raise SystemExit(f"torch_gpu: this torch's Adam has no '{kind}' implementation")
    return torch.optim.Adam(params, lr=1e-3, eps=1e-7, **extra), kind


def run(torch, name, batch, layout, args, device):
    nn = torch.nn
    torch.manual_seed(1)
    model = build_model(name, nn).to(device)
    params, trainable = count_params(model)
    fmt = torch.channels_last if layout == "channels_last" else torch.contiguous_format
    if layout == "channels_last":
        model = model.to(memory_format=torch.channels_last)
    opt, adam = make_adam(torch, model.parameters(), args.adam, device.type == "cuda")
    lossf = nn.CrossEntropyLoss()
    n = batch * args.data_batches
    g = torch.Generator(device="cpu").manual_seed(2)
    x = torch.rand((n,) + INPUT_SHAPE[name], generator=g).to(device)
    if x.dim() == 4:
        x = x.contiguous(memory_format=fmt)
    y = torch.randint(0, 10, (n,), generator=g).to(device)
    total = args.warmup + args.chunks * args.chunk
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    model.train()
    stamps, step, losses = [], 0, []
    while step < total:
        perm = torch.randperm(n, device=device)
        for s in range(0, n - batch + 1, batch):
            if step >= total:
                break
            idx = perm[s:s + batch]
            xb, yb = x[idx], y[idx]
            opt.zero_grad(set_to_none=True)
            loss = lossf(model(xb), yb)
            loss.backward()
            opt.step()
            losses.append(loss.detach())
            step += 1
            if step >= args.warmup and (step - args.warmup) % args.chunk == 0:
                sync()
                stamps.append(time.perf_counter())
    sps = sorted(args.chunk * batch / (b - a) for a, b in zip(stamps, stamps[1:]))
    return {"framework": f"pytorch-{torch.__version__}", "device": device.type,
            "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
            "model": name, "batch": batch, "params": params, "trainable_params": trainable,
            "chunks": len(sps), "train_sps_median": sps[len(sps) // 2], "train_sps_min": sps[0],
            "train_sps_max": sps[-1], "loss_mean": float(torch.stack(losses).mean()),
            "layout": layout if name != "mlp" else "-", "adam": adam}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--device", default="auto", choices=["auto", "cuda", "cpu"])
    ap.add_argument("--models", default="mlp,convnet,resnet")
    ap.add_argument("--batches", default="")
    ap.add_argument("--chunks", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--chunk", type=int, default=10)
    ap.add_argument("--data-batches", type=int, default=8)
    ap.add_argument("--layout", default="auto", choices=["auto", "channels_first", "channels_last"])
    ap.add_argument("--adam", default="auto", choices=["auto", "foreach", "fused", "single"])
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--csv", default="")
    ap.add_argument("--json", default="")
    ap.add_argument("--params-only", action="store_true", help="print the models' parameter counts and exit")
    args = ap.parse_args()
    models = [m for m in args.models.split(",") if m]
    for m in models:
        if m not in DEFAULT_BATCHES:
            raise SystemExit(f"torch_gpu: unknown model '{m}' (mlp, convnet, resnet)")
    if min(args.chunks, args.warmup, args.chunk, args.data_batches) < 1:
        raise SystemExit("torch_gpu: --chunks, --warmup, --chunk and --data-batches must be positive")
    batches = parse_batches(args.batches)

    try:
        import torch
    except Exception as e:  # noqa: BLE001 - any import failure means no PyTorch side
        print(f"torch_gpu: PyTorch is not importable ({e}): PyTorch GPU workloads skipped")
        return 0
    if args.params_only:
        for m in models:
            p, t = count_params(build_model(m, torch.nn))
            print(f"{m} params {p} trainable {t}")
        return 0
    cuda = torch.cuda.is_available()
    if args.device == "auto" and not cuda:
        print(f"torch_gpu: PyTorch {torch.__version__} sees no CUDA device "
              f"(built with CUDA: {torch.version.cuda or 'no'}): PyTorch GPU workloads skipped")
        return 0
    if args.device == "cuda" and not cuda:
        print(f"torch_gpu: --device cuda but PyTorch {torch.__version__} sees no CUDA device", file=sys.stderr)
        return 1
    device = torch.device("cpu" if args.device == "cpu" else "cuda:0")
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
        torch.backends.cudnn.benchmark = True
        print(f"torch_gpu: PyTorch {torch.__version__}, CUDA {torch.version.cuda}, cuDNN "
              f"{torch.backends.cudnn.version()}, {torch.cuda.get_device_name(device)}, TF32 off")
    else:
        if args.threads > 0:
            torch.set_num_threads(args.threads)
        print(f"torch_gpu: PyTorch {torch.__version__} on the CPU, {torch.get_num_threads()} threads")
    print(f"train samples/s over chunks of {args.chunk} batches after {args.warmup} warm-up batches "
          "(Adam, synthetic data on the device)")
    print(f"{'model':8s} {'batch':>6s} {'params':>9s} {'median':>12s} {'min':>12s} {'max':>12s} {'ms/step':>8s} "
          f"{'loss':>8s}  layout / adam")
    results = []
    for m in models:
        layouts = ["channels_first"] if m == "mlp" else (
            ["channels_first", "channels_last"] if args.layout == "auto" else [args.layout])
        for b in batches[m]:
            best = None
            for lay in layouts:
                r = run(torch, m, b, lay, args, device)
                r["best"] = False
                results.append(r)
                print(f"{m:8s} {b:6d} {r['params']:9d} {r['train_sps_median']:12.0f} {r['train_sps_min']:12.0f} "
                      f"{r['train_sps_max']:12.0f} {1e3 * b / r['train_sps_median']:8.3f} {r['loss_mean']:8.4f}  "
                      f"{r['layout']} / {r['adam']}", flush=True)
                if best is None or r["train_sps_median"] > best["train_sps_median"]:
                    best = r
            best["best"] = True
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)
    if args.csv:
        cols = ["framework", "device", "device_name", "model", "batch", "params", "trainable_params", "chunks",
                "train_sps_median", "train_sps_min", "train_sps_max", "loss_mean", "layout", "adam", "best"]
        with open(args.csv, "w") as f:
            f.write(",".join(cols) + "\n")
            for r in results:
                f.write(",".join(f'"{r[c]}"' if c == "device_name" else str(r[c]) for c in cols) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
