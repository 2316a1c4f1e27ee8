#!/usr/bin/python3
"""swd.py — an independent sliced Wasserstein distance, to check `mangagan eval`.

    /usr/bin/python3 bench/swd.py A B [--n 2048] [--seed 0]

A and B are packed image sets (`mangagan pack`: a safetensors file, optionally .xz, with one U8
tensor "images" [N,64,64,3]). Follows Karras et al. 2018 and their metrics/sliced_wasserstein.py
step for step, in numpy only (no scipy, no libtensorgan): Laplacian pyramid with the 5x5
binomial filter and mirror borders, 128 random 7x7 neighbourhoods per image and level, each
set's descriptors normalised per colour channel, 4 x 128 random unit directions, sorted
projections, mean absolute difference, x1e3. Its random draws are numpy's, independent of the C
implementation's, so the two agree statistically, not digit for digit.
"""
import argparse
import json
import lzma
import struct
import sys

import numpy as np

KERNEL = np.float32([1, 4, 6, 4, 1]) / 16.0


def load_images(path):
    raw = open(path, "rb").read()
    if path.endswith(".xz"):
        raw = lzma.decompress(raw)
    (hlen,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + hlen])
    info = header["images"]
    assert info["dtype"] == "U8", info
    a, b = info["data_offsets"]
    data = np.frombuffer(raw[8 + hlen + a:8 + hlen + b], dtype=np.uint8)
    return data.reshape(info["shape"])  # N, H, W, 3


def mirror_index(n, pad):
    """scipy.ndimage 'mirror' indices for a border of `pad`: d c b | a b c d | c b a"""
    idx = np.arange(-pad, n + pad)
    idx = np.abs(idx)
    idx = np.where(idx >= n, 2 * (n - 1) - idx, idx)
    return idx


def blur(x, gain=1.0):
    """5x5 binomial filter on [N, C, H, W], separable, mirror borders"""
    n = x.shape[-1]
    idx = mirror_index(n, 2)
    xp = x[..., idx]  # pad width
    out = sum(KERNEL[k] * xp[..., k:k + n] for k in range(5))
    xp = out[..., idx, :]  # pad height
    out = sum(KERNEL[k] * xp[..., k:k + n, :] for k in range(5))
    return out * gain


def pyr_down(x):
    return blur(x)[:, :, ::2, ::2]


def pyr_up(x):
    s = x.shape
    up = np.zeros((s[0], s[1], s[2] * 2, s[3] * 2), x.dtype)
    up[:, :, ::2, ::2] = x
    return blur(up, 4.0)


def laplacian_pyramid(x, levels):
    pyr = [np.float32(x)]
    for _ in range(1, levels):
        pyr.append(pyr_down(pyr[-1]))
        pyr[-2] = pyr[-2] - pyr_up(pyr[-1])
    return pyr


def descriptors(level, per_image, nhood, rng):
    n, c, h, w = level.shape
    half = nhood // 2
    count = per_image * n
    img = np.repeat(np.arange(n), per_image)
    cy = rng.integers(half, h - half, size=count)
    cx = rng.integers(half, w - half, size=count)
    off = np.arange(-half, half + 1)
    ys = (cy[:, None] + off[None, :])[:, None, :, None]
    xs = (cx[:, None] + off[None, :])[:, None, None, :]
    ch = np.arange(c)[None, :, None, None]
    return level[img[:, None, None, None], ch, ys, xs]  # count, C, nhood, nhood


def finalize(desc):
    desc = desc - desc.mean(axis=(0, 2, 3), keepdims=True)
    desc = desc / desc.std(axis=(0, 2, 3), keepdims=True)
    return desc.reshape(desc.shape[0], -1)


def sliced_wasserstein(a, b, repeats, dirs_per_repeat, rng):
    results = []
    for _ in range(repeats):
        dirs = rng.standard_normal((a.shape[1], dirs_per_repeat))
        dirs /= np.sqrt(np.sum(np.square(dirs), axis=0, keepdims=True))
        dirs = dirs.astype(np.float32)
        pa = np.sort(a @ dirs, axis=0)
        pb = np.sort(b @ dirs, axis=0)
        results.append(np.mean(np.abs(pa - pb)))
    return float(np.mean(results))


def swd(a_imgs, b_imgs, seed, min_size=16, per_image=128, nhood=7, repeats=4, dirs=128):
    rng = np.random.default_rng(seed)
    size = a_imgs.shape[1]
    levels = 1
    while (size >> levels) >= min_size:
        levels += 1
    desc_a, desc_b = [[] for _ in range(levels)], [[] for _ in range(levels)]
    for imgs, out in ((a_imgs, desc_a), (b_imgs, desc_b)):
        for start in range(0, len(imgs), 256):
            batch = np.transpose(imgs[start:start + 256], (0, 3, 1, 2))  # NCHW
            for lvl, p in enumerate(laplacian_pyramid(batch, levels)):
                out[lvl].append(descriptors(p, per_image, nhood, rng))
    dist = []
    for lvl in range(levels):
        da = finalize(np.concatenate(desc_a[lvl]))
        db = finalize(np.concatenate(desc_b[lvl]))
        dist.append(sliced_wasserstein(da, db, repeats, dirs, rng) * 1e3)
    return dist, float(np.mean(dist))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("a")
    ap.add_argument("b")
    ap.add_argument("--n", type=int, default=2048)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    a, b = load_images(args.a), load_images(args.b)
    if len(a) < args.n or len(b) < args.n:
        sys.exit(f"swd.py: need {args.n} images in each set, have {len(a)} and {len(b)}")
    dist, mean = swd(a[:args.n], b[:args.n], args.seed)
    print("swd.py: SWD x1e3, %d images each: %s, mean %.2f" %
          (args.n, ", ".join("%dpx %.2f" % (a.shape[1] >> i, d) for i, d in enumerate(dist)), mean))


if __name__ == "__main__":
    main()
