#!/usr/bin/env python3
"""tg_safetensors.py - reads a safetensors file (libtensorgan's checkpoints, generators, packed
datasets) into PyTorch tensors with nothing but Python and torch: Debian's python3-torch is
enough, the `safetensors` pip package is not needed. Also handles files written by other tools
(every dtype safetensors defines that torch has, and .xz-compressed files).

    from tg_safetensors import load_file
    state = load_file("generator.safetensors")          # {name: torch.Tensor}
    model.load_state_dict(state, strict=False)           # strict=False: no num_batches_tracked
    state, meta = load_file("checkpoint.safetensors", metadata=True)

    python3 tg_safetensors.py FILE     # lists the tensors (name, dtype, shape) and the metadata

The format (https://huggingface.co/docs/safetensors): 8 bytes little-endian header length, a
JSON header {name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {str: str}},
then the data. Every range is checked against the data section and the shape.
"""
import json
import lzma
import struct
import sys

import torch

_DTYPES = {
    "F64": (torch.float64, 8), "F32": (torch.float32, 4), "F16": (torch.float16, 2),
    "BF16": (torch.bfloat16, 2), "I64": (torch.int64, 8), "I32": (torch.int32, 4),
    "I16": (torch.int16, 2), "I8": (torch.int8, 1), "U8": (torch.uint8, 1), "BOOL": (torch.bool, 1),
}


def load_file(path, metadata=False):
    """The tensors of a safetensors file as {name: tensor} (CPU, contiguous, copied out of the
    file); with metadata=True, also its __metadata__ dict."""
    with open(path, "rb") as f:
        buf = f.read()
    if buf[:6] == b"\xfd7zXZ\x00":  # an .xz file (mangagan's packed faces)
        buf = lzma.decompress(buf)
    if len(buf) < 8:
        raise ValueError(f"{path}: not a safetensors file ({len(buf)} bytes)")
    (hl,) = struct.unpack("<Q", buf[:8])
    if hl > len(buf) - 8:
        raise ValueError(f"{path}: header length {hl} is past the end of the file")
    header = json.loads(buf[8:8 + hl].decode("utf-8"))
    meta = header.pop("__metadata__", {}) or {}
    data = memoryview(buf)[8 + hl:]
    out = {}
    for name, info in header.items():
        if info["dtype"] not in _DTYPES:
            raise ValueError(f"{path}: tensor {name!r} has dtype {info['dtype']}, which torch lacks")
        dtype, size = _DTYPES[info["dtype"]]
        begin, end = info["data_offsets"]
        shape = [int(d) for d in info["shape"]]
        count = 1
        for d in shape:
            count *= d
        if not 0 <= begin <= end <= len(data) or end - begin != count * size:
            raise ValueError(f"{path}: tensor {name!r}: bytes [{begin}, {end}) do not fit its shape "
                             f"{shape} or the {len(data)}-byte data section")
        raw = bytearray(data[begin:end])  # a copy: the tensor owns its memory
        t = torch.frombuffer(raw, dtype=dtype) if count else torch.empty(0, dtype=dtype)
        out[name] = t.reshape(shape)
    return (out, meta) if metadata else out


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: tg_safetensors.py FILE.safetensors")
    tensors, meta = load_file(sys.argv[1], metadata=True)
    for name, t in tensors.items():
        print(f"{name}\t{str(t.dtype).replace('torch.', '')}\t{list(t.shape)}")
    for k, v in meta.items():
        print(f"# {k} = {v if len(v) <= 80 else v[:77] + '...'}")
