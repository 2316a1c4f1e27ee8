#!/usr/bin/env python3
"""mangagan_torch.py - the PyTorch reference for `mangagan bench`: the same two recipes (models,
init, optimizers, labels, step), the same batch, synthetic data; prints median ms/step and the
phase split (D-real, D-fake, G) like `mangagan bench`.

    OPENBLAS_CORETYPE=SkylakeX /usr/bin/python3 bench/mangagan_torch.py --recipe seed --batch 64 --threads 2
    python3 bench/mangagan_torch.py --recipe dcgan --device cuda --batch 256
    python3 bench/mangagan_torch.py --recipe dcgan --autocast bf16    (mixed precision: forward
        passes and losses under torch.autocast(dtype=torch.bfloat16), parameters and optimizer in
        float32, as PyTorch recommends)
"""
import argparse
import statistics
import time

import torch
import torch.nn as nn

p = argparse.ArgumentParser()
p.add_argument("--recipe", default="seed", choices=["seed", "dcgan"])
p.add_argument("--device", default="cpu")
p.add_argument("--batch", type=int, default=64)
p.add_argument("--width", type=int, default=64)
p.add_argument("--steps", type=int, default=10)
p.add_argument("--warmup", type=int, default=2)
p.add_argument("--threads", type=int, default=0)
p.add_argument("--mkldnn", type=int, default=-1, help="1/0 force torch.backends.mkldnn on/off")
p.add_argument("--convt-onednn", type=int, default=0,
               help="1: ConvTranspose2d computed as oneDNN's convolution data gradient "
                    "(torch.ops.aten.convolution_backward), faster than PyTorch's own on the CPU")
p.add_argument("--channels-last", type=int, default=0, help="1: models and data in channels_last")
p.add_argument("--autocast", default="none", choices=["none", "bf16"],
               help="bf16: forward passes and losses under torch.autocast(dtype=torch.bfloat16)")
p.add_argument("--tf32", type=int, default=0, help="1: TF32 matmuls and convolutions on the GPU")
p.add_argument("--cudnn-benchmark", type=int, default=0, help="1: cudnn.benchmark (cuDNN picks its fastest algorithms)")
p.add_argument("--compile", type=int, default=0,
               help="1: torch.compile(mode='reduce-overhead') of G and D (CUDA graphs on the GPU)")
a = p.parse_args()
if a.threads:
    torch.set_num_threads(a.threads)
if a.mkldnn >= 0:
    torch.backends.mkldnn.enabled = bool(a.mkldnn)
torch.backends.cuda.matmul.allow_tf32 = bool(a.tf32)
torch.backends.cudnn.allow_tf32 = bool(a.tf32)
torch.backends.cudnn.benchmark = bool(a.cudnn_benchmark)
dev = torch.device(a.device)
nz, w, B = 100, a.width, a.batch
seed = a.recipe == "seed"


class ConvTViaConvBackward(torch.autograd.Function):
    """conv_transpose2d(x, w) as the data gradient of conv2d(., w): every conv through oneDNN."""

    @staticmethod
    def forward(ctx, x, w, b, stride, pad):
        # under autocast (which does not reach into a custom Function) compute in bf16 as
        # autocast's own conv_transpose2d would: inputs, weight and bias cast, like dtypes
        if a.autocast == "bf16":
            x, w = x.to(torch.bfloat16), w.to(torch.bfloat16)
            b = b.to(torch.bfloat16) if b is not None else None
        k = w.shape[2]
        ho = (x.shape[2] - 1) * stride - 2 * pad + k
        wo = (x.shape[3] - 1) * stride - 2 * pad + k
        shape_src = torch.empty((x.shape[0], w.shape[1], ho, wo), dtype=x.dtype, device=x.device)
        y = torch.ops.aten.convolution_backward(x, shape_src, w, None, [stride] * 2, [pad] * 2,
                                                [1, 1], False, [0, 0], 1, [True, False, False])[0]
        if b is not None:
            y = y + b.view(1, -1, 1, 1)
        ctx.save_for_backward(x, w)
        ctx.conf = (stride, pad, b is not None)
        return y

    @staticmethod
    def backward(ctx, dy):
        x, w = ctx.saved_tensors
        stride, pad, has_b = ctx.conf
        dx = dw = db = None
        if ctx.needs_input_grad[0]:
            dx = torch.nn.functional.conv2d(dy, w, None, stride, pad)
        if ctx.needs_input_grad[1]:
            dw = torch.ops.aten.convolution_backward(x, dy, w, None, [stride] * 2, [pad] * 2, [1, 1],
                                                     False, [0, 0], 1, [False, True, False])[1]
        if has_b and ctx.needs_input_grad[2]:
            db = dy.sum((0, 2, 3))
        return dx, dw, db, None, None


class ConvT(nn.ConvTranspose2d):
    def forward(self, x):
        return ConvTViaConvBackward.apply(x, self.weight, self.bias, self.stride[0], self.padding[0])


if a.convt_onednn:
    nn.ConvTranspose2d = ConvT


def bn(c):
    return nn.BatchNorm2d(c, momentum=0.5, eps=1e-3) if seed else nn.BatchNorm2d(c)


act_g = (lambda: nn.LeakyReLU(0.2)) if seed else (lambda: nn.ReLU())
g_layers = [nn.ConvTranspose2d(nz, 8 * w, 4, 1, 0, bias=seed), bn(8 * w), act_g()]
for cin, cout in ((8 * w, 4 * w), (4 * w, 2 * w), (2 * w, w)):
    g_layers += [nn.ConvTranspose2d(cin, cout, 4, 2, 1, bias=seed), bn(cout), act_g()]
if seed:
    g_layers += [nn.Conv2d(w, w, 3, 1, 1), bn(w), act_g()]
g_layers += [nn.ConvTranspose2d(w, 3, 4, 2, 1, bias=seed), nn.Tanh()]
G = nn.Sequential(*g_layers).to(dev)
d_layers = [nn.Conv2d(3, w, 4, 2, 1, bias=seed), nn.LeakyReLU(0.2)]
for cin, cout in ((w, 2 * w), (2 * w, 4 * w), (4 * w, 8 * w)):
    d_layers += [nn.Conv2d(cin, cout, 4, 2, 1, bias=seed), bn(cout), nn.LeakyReLU(0.2)]
d_layers += [nn.Flatten(), nn.Linear(8 * w * 16, 1)] if seed else [nn.Conv2d(8 * w, 1, 4, 1, 0, bias=False)]
D = nn.Sequential(*d_layers).to(dev)
fmt = torch.channels_last if a.channels_last else torch.contiguous_format
G, D = G.to(memory_format=fmt), D.to(memory_format=fmt)
for m in list(G.modules()) + list(D.modules()):
    if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
        if seed:
            nn.init.xavier_uniform_(m.weight)
            nn.init.zeros_(m.bias)
        else:
            nn.init.normal_(m.weight, 0.0, 0.02)
    elif isinstance(m, nn.BatchNorm2d) and not seed:
        nn.init.normal_(m.weight, 1.0, 0.02)
        nn.init.zeros_(m.bias)
eps = 1e-7 if seed else 1e-8
oG = torch.optim.Adam(G.parameters(), lr=1.5e-4 if seed else 2e-4, betas=(0.5, 0.999), eps=eps)
oD = torch.optim.Adam(D.parameters(), lr=2e-4, betas=(0.5, 0.999), eps=eps)
loss = nn.BCEWithLogitsLoss()
real = (torch.rand(B, 3, 64, 64, device=dev) * 2 - 1).contiguous(memory_format=fmt)
tshape = (B, 1) if seed else (B, 1, 1, 1)


def ac():
    """the forward passes' precision: torch.autocast in bf16, or nothing"""
    return torch.autocast(dev.type, dtype=torch.bfloat16, enabled=a.autocast == "bf16")


def sync():
    if dev.type == "cuda":
        torch.cuda.synchronize()


def set_frozen(m, frozen):
    for q in m.parameters():
        q.requires_grad_(not frozen)


if a.compile:
    G = torch.compile(G, mode="reduce-overhead")
    D = torch.compile(D, mode="reduce-overhead")

times = []
for s in range(a.warmup + a.steps):
    t0 = time.perf_counter()
    if seed:
        t_real = torch.rand(tshape, device=dev) * 0.2 + 0.8
        t_fake = torch.rand(tshape, device=dev) * 0.2
        G.eval()
        with torch.no_grad(), ac():
            fake = G(torch.randn(B, nz, 1, 1, device=dev))
        G.train()
        oD.zero_grad(set_to_none=True)
        with ac():
            lr = loss(D(real), t_real)
        lr.backward()
        oD.step()
        sync()
        t1 = time.perf_counter()
        oD.zero_grad(set_to_none=True)
        with ac():
            lf = loss(D(fake), t_fake)
        lf.backward()
        oD.step()
        sync()
        t2 = time.perf_counter()
        set_frozen(D, True)
        oG.zero_grad(set_to_none=True)
        with ac():
            lg = loss(D(G(torch.randn(B, nz, 1, 1, device=dev))), t_real)
        lg.backward()
        oG.step()
        set_frozen(D, False)
    else:
        ones = torch.ones(tshape, device=dev)
        oD.zero_grad(set_to_none=True)
        with ac():
            lr = loss(D(real), ones)
        lr.backward()
        sync()
        t1 = time.perf_counter()
        with ac():
            fake = G(torch.randn(B, nz, 1, 1, device=dev))
            lf = loss(D(fake.detach()), torch.zeros(tshape, device=dev))
        lf.backward()
        oD.step()
        sync()
        t2 = time.perf_counter()
        set_frozen(D, True)
        oG.zero_grad(set_to_none=True)
        with ac():
            lg = loss(D(fake), ones)
        lg.backward()
        oG.step()
        set_frozen(D, False)
    _ = (lr.item(), lf.item(), lg.item())
    t3 = time.perf_counter()
    if s >= a.warmup:
        times.append((t3 - t0, t1 - t0, t2 - t1, t3 - t2))
med = [statistics.median(t[k] for t in times) * 1e3 for k in range(4)]
print(f"mangagan_torch: torch {torch.__version__}, recipe {a.recipe}, width {w}, device {a.device}, "
      f"batch {B}, threads {torch.get_num_threads()}, mkldnn {torch.backends.mkldnn.enabled}, "
      f"convt-onednn {a.convt_onednn}, channels-last {a.channels_last}, autocast {a.autocast}, tf32 {a.tf32}, "
      f"cudnn-benchmark {a.cudnn_benchmark}, compile {a.compile}, {a.steps} steps")
print(f"  median {med[0]:.1f} ms/step, {B / med[0] * 1e3:.1f} images/s")
print(f"  phases: D-real {med[1]:.1f} ms, D-fake {med[2]:.1f} ms, G {med[3]:.1f} ms")
import resource  # noqa: E402  (peak RSS of this process, KiB on Linux)
print(f"  peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")
