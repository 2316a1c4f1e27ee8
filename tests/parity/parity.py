#!/usr/bin/env python3
"""parity.py - replays in PyTorch the three GAN steps that tests/parity/parity.c ran with
libtensorgan, from the same initial weights and the same inputs, and compares every loss, every
final weight and every BatchNorm buffer. Prints one line per check and a closing
"parity: N passed, N failed"; exits non-zero on a failure.

    OPENBLAS_CORETYPE=SkylakeX /usr/bin/python3 tests/parity/parity.py FILE.safetensors
"""
import json
import struct
import sys

import numpy as np
import torch
import torch.nn as nn

torch.backends.mkldnn.enabled = False  # plain FP32 math for a reference


def load(path):
    with open(path, "rb") as f:
        buf = f.read()
    (hl,) = struct.unpack("<Q", buf[:8])
    hdr = json.loads(buf[8:8 + hl])
    meta = hdr.pop("__metadata__", {})
    data = buf[8 + hl:]
    out = {}
    for name, info in hdr.items():
        a, b = info["data_offsets"]
        arr = np.frombuffer(data[a:b], dtype=np.float32).reshape(info["shape"])
        out[name] = torch.from_numpy(arr.copy())
    return out, meta


def sub(tensors, prefix):
    return {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}


t, meta = load(sys.argv[1])
G = nn.Sequential(nn.ConvTranspose2d(8, 16, 4, 1, 0, bias=False), nn.BatchNorm2d(16, momentum=0.5, eps=1e-3),
                  nn.LeakyReLU(0.2), nn.ConvTranspose2d(16, 3, 4, 2, 1), nn.Tanh())
D = nn.Sequential(nn.Conv2d(3, 8, 4, 2, 1), nn.LeakyReLU(0.2), nn.Conv2d(8, 16, 3, 1, 1, bias=False),
                  nn.BatchNorm2d(16, momentum=0.1, eps=1e-5), nn.LeakyReLU(0.2), nn.Flatten(),
                  nn.Linear(16 * 4 * 4, 1))
G.load_state_dict(sub(t, "G0."), strict=False)
D.load_state_dict(sub(t, "D0."), strict=False)
oG = torch.optim.Adam(G.parameters(), lr=1.5e-4 * 50, betas=(0.5, 0.999), eps=1e-7)
oD = torch.optim.Adam(D.parameters(), lr=2e-4 * 50, betas=(0.5, 0.999), eps=1e-7)
bce = nn.BCEWithLogitsLoss()
passed = failed = 0


def check(what, got, want, atol, rtol):
    global passed, failed
    got, want = np.asarray(got, dtype=np.float64), np.asarray(want, dtype=np.float64)
    err = np.abs(got - want) - (atol + rtol * np.abs(want))
    worst = float(err.max()) if err.size else 0.0
    ok = worst <= 0
    passed += ok
    failed += not ok
    print(f"  {'ok  ' if ok else 'FAIL'} {what}: max |diff| {float(np.abs(got - want).max()):.3g}")


step = 0
while f"step{step}.zf" in t:
    zf, zg, real, tr, tf = (t[f"step{step}.{k}"] for k in ("zf", "zg", "real", "tr", "tf"))
    G.eval()
    with torch.no_grad():
        fake = G(zf)
    G.train()
    losses = []
    for x, y in ((real, tr), (fake, tf)):
        oD.zero_grad(set_to_none=True)
        loss = bce(D(x), y)
        loss.backward()
        oD.step()
        losses.append(loss.item())
    # frozen D: no parameter gradients and no running-statistics update, batch statistics used
    for q in D.parameters():
        q.requires_grad_(False)
    bn = D[3]
    bn.momentum = 0.0
    oG.zero_grad(set_to_none=True)
    loss = bce(D(G(zg)), tr)
    loss.backward()
    oG.step()
    losses.append(loss.item())
    bn.momentum = 0.1
    for q in D.parameters():
        q.requires_grad_(True)
    ours = [float(meta[f"step{step}.loss{j}"]) for j in range(3)]
    check(f"step {step} losses (D real, D fake, G)", ours, losses, 1e-5, 1e-4)
    step += 1

# weights of a convolution that feeds a BatchNorm: BN's backward removes each channel's mean
# from their gradient, leaving sums of cancelling terms whose rounding depends on the summation
# order (ours: our own GEMM; PyTorch: oneDNN). Adam then divides each gradient by its own
# magnitude, so those elements can move by a few percent of one step more: 1e-3 (13% of one
# step at lr 7.5e-3) instead of 2e-4.
BEFORE_BN = {"G 0.weight", "D 2.weight"}
for name, model, prefix in (("G", G, "G1."), ("D", D, "D1.")):
    sd = model.state_dict()
    for k, v in sub(t, prefix).items():
        # Adam divides each gradient by its own magnitude (eps 1e-7), so rounding in near-zero
        # gradients moves parameters by a few percent of one step (lr 7.5e-3-1e-2): 2e-4 absolute
        atol = 1e-3 if f"{name} {k}" in BEFORE_BN else 2e-4
        check(f"{name} {k} after {step} steps", v.numpy(), sd[k].numpy(), atol, 1e-4)
print(f"parity: {passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
