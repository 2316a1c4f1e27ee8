#!/usr/bin/python3
"""fashion_torch.py — examples/fashion's network and training in PyTorch, for comparison.

    OPENBLAS_CORETYPE=SkylakeX /usr/bin/python3 bench/fashion_torch.py [--epochs 8] [--threads 2]
        [--bench N] [--channels-last 1] [--autocast bf16]

Same data (Debian's dataset-fashion-mnist), same standardisation, network, initialisation family
(PyTorch defaults, as libtensorgan's layers), Adam 1e-3 with the rate divided by 10 for the last
epoch, batch 128 with whole batches only, evaluation in eval mode. Prints the per-epoch test
accuracy and the training time, in the format of examples/fashion. With --bench N, times N
training steps on real batches after 3 warm-up steps instead (`fashion --bench N`'s twin, for
bench/classifier.sh): the median step, batch indexing included; --channels-last 1 and
--autocast bf16 are the configurations PyTorch is fastest in on some CPUs.
"""
import argparse
import gzip
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from torch_steps import WARM, summary, time_steps

DIR = "/usr/share/datasets/fashion-mnist"


def idx(path, dims):
    with gzip.open(path, "rb") as f:
        raw = f.read()
    n = int.from_bytes(raw[4:8], "big")
    off = 4 + 4 * dims
    data = np.frombuffer(raw[off:], dtype=np.uint8)
    return data.reshape((n, 28, 28) if dims == 3 else (n,))


def network():
    return nn.Sequential(
        nn.Conv2d(1, 32, 3, 1, 1, bias=False), nn.BatchNorm2d(32), nn.ReLU(),
        nn.Conv2d(32, 32, 3, 1, 1, bias=False), nn.BatchNorm2d(32), nn.ReLU(),
        nn.MaxPool2d(2, 2),
        nn.Conv2d(32, 64, 3, 1, 1, bias=False), nn.BatchNorm2d(64), nn.ReLU(),
        nn.MaxPool2d(2, 2),
        nn.Flatten(), nn.Dropout(0.25),
        nn.Linear(64 * 7 * 7, 256), nn.ReLU(), nn.Dropout(0.5),
        nn.Linear(256, 10))


def bench(net, opt, xtr, ytr, args):
    net.train()
    perm = torch.randperm(len(xtr), generator=torch.Generator().manual_seed(args.seed))
    nb = len(xtr) // args.batch

    def step(k):
        i = (k % nb) * args.batch
        idx_b = perm[i:i + args.batch]
        xb, yb = xtr[idx_b], ytr[idx_b]
        opt.zero_grad(set_to_none=True)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=args.autocast == "bf16"):
            loss = F.cross_entropy(net(xb), yb)
        loss.backward()
        opt.step()
        loss.item()

    ms = time_steps(step, args.bench)
    print(f"fashion bench: {args.bench} steps of batch {args.batch} after {WARM} warm-up: {summary(ms)}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--bench", type=int, default=0)
    ap.add_argument("--channels-last", type=int, default=0)
    ap.add_argument("--autocast", choices=["none", "bf16"], default="none")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    t0 = time.time()
    xtr, ytr = idx(f"{DIR}/train-images-idx3-ubyte.gz", 3), idx(f"{DIR}/train-labels-idx1-ubyte.gz", 1)
    xte, yte = idx(f"{DIR}/t10k-images-idx3-ubyte.gz", 3), idx(f"{DIR}/t10k-labels-idx1-ubyte.gz", 1)
    xtr = torch.tensor(xtr, dtype=torch.float32).unsqueeze(1) / 255.0
    xte = torch.tensor(xte, dtype=torch.float32).unsqueeze(1) / 255.0
    mean, sd = xtr.mean().item(), xtr.std(unbiased=False).item()
    xtr, xte = (xtr - mean) / sd, (xte - mean) / sd
    ytr, yte = torch.tensor(ytr, dtype=torch.long), torch.tensor(yte, dtype=torch.long)
    net = network()
    opt = torch.optim.Adam(net.parameters(), lr=1e-3, betas=(0.9, 0.999), eps=1e-8)
    print(f"fashion_torch: torch {torch.__version__}, {args.threads} threads, mkldnn {torch.backends.mkldnn.is_available()}")
    if args.channels_last:
        net = net.to(memory_format=torch.channels_last)
        xtr = xtr.contiguous(memory_format=torch.channels_last)
    if args.bench:
        bench(net, opt, xtr, ytr, args)
        return
    train_time, acc = 0.0, 0.0
    g = torch.Generator().manual_seed(args.seed)
    for ep in range(args.epochs):
        if ep == args.epochs - 1 and args.epochs > 1:
            for pg in opt.param_groups:
                pg["lr"] = 1e-4
        net.train()
        perm = torch.randperm(len(xtr), generator=g)
        te, loss_sum, steps = time.time(), 0.0, 0
        for i in range(0, len(xtr) - args.batch + 1, args.batch):
            idx_b = perm[i:i + args.batch]
            opt.zero_grad(set_to_none=True)
            loss = F.cross_entropy(net(xtr[idx_b]), ytr[idx_b])
            loss.backward()
            opt.step()
            loss_sum += loss.item()
            steps += 1
        train_time += time.time() - te
        net.eval()
        with torch.no_grad():
            right = sum((net(xte[i:i + 500]).argmax(1) == yte[i:i + 500]).sum().item() for i in range(0, len(xte), 500))
        acc = 100.0 * right / len(xte)
        print(f"epoch {ep + 1}/{args.epochs}  loss {loss_sum / steps:.4f}  test accuracy {acc:.2f}%  ({time.time() - te:.1f} s training)", flush=True)
    print(f"fashion_torch: test accuracy {acc:.2f}% after {args.epochs} epochs; {train_time:.1f} s of training, {time.time() - t0:.1f} s in all")


if __name__ == "__main__":
    main()
