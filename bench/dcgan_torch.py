#!/usr/bin/env python3
"""dcgan_torch.py - the PyTorch reference for bench/bench_dcgan.c: the same 64x64 DCGAN (PyTorch's
example model), the same step (D on real, D on detached fake + D step, G through frozen D + G
step), the same batch, synthetic data; prints median ms/step and the phase split.

    OPENBLAS_CORETYPE=SkylakeX /usr/bin/python3 bench/dcgan_torch.py --batch 64 --threads 2
    python3 bench/dcgan_torch.py --device cuda --batch 256
"""
import argparse
import statistics
import time

import torch
import torch.nn as nn

p = argparse.ArgumentParser()
p.add_argument("--device", default="cpu")
p.add_argument("--batch", type=int, default=64)
p.add_argument("--steps", type=int, default=10)
p.add_argument("--warmup", type=int, default=2)
p.add_argument("--threads", type=int, default=0)
p.add_argument("--mkldnn", type=int, default=-1, help="1/0 force torch.backends.mkldnn on/off")
a = p.parse_args()
if a.threads:
    torch.set_num_threads(a.threads)
if a.mkldnn >= 0:
    torch.backends.mkldnn.enabled = bool(a.mkldnn)
torch.backends.cuda.matmul.allow_tf32 = False
torch.backends.cudnn.allow_tf32 = False
dev = torch.device(a.device)
nz, f, B = 100, 64, a.batch

G = nn.Sequential(
    nn.ConvTranspose2d(nz, 8 * f, 4, 1, 0, bias=False), nn.BatchNorm2d(8 * f), nn.ReLU(True),
    nn.ConvTranspose2d(8 * f, 4 * f, 4, 2, 1, bias=False), nn.BatchNorm2d(4 * f), nn.ReLU(True),
    nn.ConvTranspose2d(4 * f, 2 * f, 4, 2, 1, bias=False), nn.BatchNorm2d(2 * f), nn.ReLU(True),
    nn.ConvTranspose2d(2 * f, f, 4, 2, 1, bias=False), nn.BatchNorm2d(f), nn.ReLU(True),
    nn.ConvTranspose2d(f, 3, 4, 2, 1, bias=False), nn.Tanh()).to(dev)
D = nn.Sequential(
    nn.Conv2d(3, f, 4, 2, 1, bias=False), nn.LeakyReLU(0.2, True),
    nn.Conv2d(f, 2 * f, 4, 2, 1, bias=False), nn.BatchNorm2d(2 * f), nn.LeakyReLU(0.2, True),
    nn.Conv2d(2 * f, 4 * f, 4, 2, 1, bias=False), nn.BatchNorm2d(4 * f), nn.LeakyReLU(0.2, True),
    nn.Conv2d(4 * f, 8 * f, 4, 2, 1, bias=False), nn.BatchNorm2d(8 * f), nn.LeakyReLU(0.2, True),
    nn.Conv2d(8 * f, 1, 4, 1, 0, bias=False)).to(dev)
for m in list(G.modules()) + list(D.modules()):
    if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
        nn.init.normal_(m.weight, 0.0, 0.02)
    elif isinstance(m, nn.BatchNorm2d):
        nn.init.normal_(m.weight, 1.0, 0.02)
        nn.init.zeros_(m.bias)
oG = torch.optim.Adam(G.parameters(), lr=2e-4, betas=(0.5, 0.999), eps=1e-8)
oD = torch.optim.Adam(D.parameters(), lr=2e-4, betas=(0.5, 0.999), eps=1e-8)
loss = nn.BCEWithLogitsLoss()
real = torch.rand(B, 3, 64, 64, device=dev) * 2 - 1
ones = torch.ones(B, 1, 1, 1, device=dev)
zeros = torch.zeros(B, 1, 1, 1, device=dev)


def sync():
    if dev.type == "cuda":
        torch.cuda.synchronize()


times = []
for s in range(a.warmup + a.steps):
    t0 = time.perf_counter()
    oD.zero_grad(set_to_none=True)
    lr = loss(D(real), ones)
    lr.backward()
    sync()
    t1 = time.perf_counter()
    fake = G(torch.randn(B, nz, 1, 1, device=dev))
    lf = loss(D(fake.detach()), zeros)
    lf.backward()
    oD.step()
    sync()
    t2 = time.perf_counter()
    for q in D.parameters():
        q.requires_grad_(False)
    oG.zero_grad(set_to_none=True)
    lg = loss(D(fake), ones)
    lg.backward()
    oG.step()
    for q in D.parameters():
        q.requires_grad_(True)
    _ = (lr.item(), lf.item(), lg.item())
    t3 = time.perf_counter()
    if s >= a.warmup:
        times.append((t3 - t0, t1 - t0, t2 - t1, t3 - t2))
med = [statistics.median(t[k] for t in times) * 1e3 for k in range(4)]
print(f"dcgan_torch: torch {torch.__version__}, device {a.device}, batch {B}, threads "
      f"{torch.get_num_threads()}, mkldnn {torch.backends.mkldnn.enabled}, {a.steps} steps")
print(f"  median step {med[0]:.1f} ms  (D-real {med[1]:.1f}, D-fake {med[2]:.1f}, G {med[3]:.1f})")
print(f"  {B / med[0] * 1e3:.1f} images/s")
