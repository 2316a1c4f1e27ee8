#!/usr/bin/env python3
"""unet_torch.py - the PyTorch twin of examples/unet: the same U-Net as a torch.nn.Module whose
attribute names are the C modules' child names, so the file `unet --save` writes loads with
load_state_dict(strict=True) (examples/tg_safetensors.py reads it; Debian's python3-torch is
enough). With --check, runs the network in evaluation mode on the inputs `unet --check` wrote
and compares with the outputs the C library computed for them.

    unet --steps 200 --save m.safetensors --check c.safetensors
    /usr/bin/python3 bench/unet_torch.py --weights m.safetensors --check c.safetensors [--width 32]

Exit status 0 when every output agrees within --tol (default 1e-4), 1 otherwise.

With --bench N it times N training steps instead (`unet --bench N`'s twin, for
bench/compare.sh with MODEL=unet): real Fashion-MNIST images padded to 32x32 with their
background, noise of deviation 2 sigma in [-1, 1], Adam 2e-3 on the mean squared error, batch
drawing included, the median after 3 warm-up steps; --channels-last 1 and --autocast bf16 are
PyTorch's faster configurations on some CPUs.

    /usr/bin/python3 bench/unet_torch.py --bench 20 [--batch 32] [--width 32] [--threads 2]
"""
import argparse
import os
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "examples"))
from tg_safetensors import load_file  # noqa: E402


class Block(nn.Module):
    """conv1 -> bn1 -> ReLU -> conv2 -> bn2 -> ReLU (the C block's act1/act2 hold no tensors)"""

    def __init__(self, cin, cout):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)

    def forward(self, x):
        return F.relu(self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x))))))


class Residual(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.conv1 = nn.Conv2d(c, c, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c)
        self.conv2 = nn.Conv2d(c, c, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c)

    def forward(self, x):
        return F.relu(x + self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x))))))


class UNet(nn.Module):
    def __init__(self, w):
        super().__init__()
        self.enc1, self.enc2, self.mid = Block(1, w), Block(w, 2 * w), Block(2 * w, 4 * w)
        self.res = Residual(4 * w)
        self.up2, self.dec2 = nn.Conv2d(4 * w, 2 * w, 1), Block(4 * w, 2 * w)
        self.up1, self.dec1 = nn.Conv2d(2 * w, w, 1), Block(2 * w, w)
        self.head = nn.Conv2d(w, 1, 1)

    def forward(self, x):
        e1 = self.enc1(x)
        e2 = self.enc2(F.max_pool2d(e1, 2))
        m = self.res(self.mid(F.max_pool2d(e2, 2)))
        d2 = self.dec2(torch.cat([self.up2(F.interpolate(m, scale_factor=2, mode="nearest")), e2], 1))
        d1 = self.dec1(torch.cat([self.up1(F.interpolate(d2, scale_factor=2, mode="nearest")), e1], 1))
        return x - self.head(d1)


def bench(a):
    from fashion_torch import DIR, idx
    from torch_steps import WARM, summary, time_steps
    torch.set_num_threads(a.threads)
    torch.manual_seed(1)
    imgs = torch.tensor(idx(f"{DIR}/train-images-idx3-ubyte.gz", 3)).unsqueeze(1)
    n = len(imgs)
    imgs = F.pad(imgs.float() / 127.5 - 1.0, (2, 2, 2, 2), value=-1.0)  # [n,1,32,32] in [-1,1]
    net = UNet(a.width)
    opt = torch.optim.Adam(net.parameters(), lr=2e-3, betas=(0.9, 0.999), eps=1e-8)
    fmt = torch.channels_last if a.channels_last else torch.contiguous_format
    net = net.to(memory_format=fmt)
    net.train()

    def step(k):
        clean = imgs[torch.randint(0, n, (a.batch,))]
        noisy = (clean + 2 * a.sigma * torch.randn_like(clean)).contiguous(memory_format=fmt)
        opt.zero_grad(set_to_none=True)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=a.autocast == "bf16"):
            loss = F.mse_loss(net(noisy).float(), clean)
        loss.backward()
        opt.step()
        loss.item()

    ms = time_steps(step, a.bench)
    print(f"unet bench: {a.bench} steps of batch {a.batch}, width {a.width}, after {WARM} warm-up: {summary(ms)} "
          f"(torch {torch.__version__})")
    return 0


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--weights")
    p.add_argument("--check")
    p.add_argument("--width", type=int, default=32)
    p.add_argument("--tol", type=float, default=1e-4)
    p.add_argument("--bench", type=int, default=0)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--sigma", type=float, default=0.2)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--channels-last", type=int, default=0)
    p.add_argument("--autocast", choices=["none", "bf16"], default="none")
    a = p.parse_args()
    if a.bench:
        return bench(a)
    if not a.weights or not a.check:
        p.error("--weights and --check are required (or --bench N)")
    net = UNet(a.width)
    net.load_state_dict(load_file(a.weights), strict=True)
    net.eval()
    c = load_file(a.check)
    with torch.no_grad():
        out = net(c["input"])
    diff = (out - c["output"]).abs().max().item()
    print(f"unet_torch: torch {torch.__version__}, {sum(t.numel() for t in net.state_dict().values())} state values "
          f"loaded strictly; max |PyTorch - libtensorgan| over {out.numel()} outputs: {diff:.3g} (tolerance {a.tol:g})")
    return 0 if diff <= a.tol else 1


if __name__ == "__main__":
    sys.exit(main())
