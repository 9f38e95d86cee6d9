"""Real PyTorch and safetensors writers for the tests: Debian's torch 1.13 (`torch.save`, zip and
legacy) and a safetensors writer that follows the published format
(https://huggingface.co/docs/safetensors: 8-byte little-endian header length, a JSON header of
`name -> {dtype, shape, data_offsets}` plus an optional `__metadata__` string map, padded with
spaces, then the tensors' bytes back to back). Also the structural boundaries of each format, for
cutting files short where a save can stop.

Command line (for kill -9 and ENOSPC sweeps, where the writer is its own process):
    format_writers.py torch PATH BYTES [legacy]   torch.save of a state dict of about BYTES
    format_writers.py safetensors PATH BYTES      a safetensors file of about BYTES
"""

import io
import json
import os
import pickletools
import struct
import sys
import zipfile

import numpy as np

DTYPES = {  # safetensors name -> numpy dtype (BF16 and F8 are written as raw bits)
    "F64": np.float64, "F32": np.float32, "F16": np.float16, "I64": np.int64, "I32": np.int32,
    "I16": np.int16, "I8": np.int8, "U8": np.uint8, "BOOL": np.bool_,
}


def safetensors_bytes(tensors, metadata=None, pad=True):
    """The bytes of a safetensors file of `tensors`: name -> (dtype name, shape, raw bytes)."""
    header, offset, blobs = {}, 0, []
    if metadata is not None:
        header["__metadata__"] = metadata
    for name, (dtype, shape, raw) in tensors.items():
        header[name] = {"dtype": dtype, "shape": list(shape), "data_offsets": [offset, offset + len(raw)]}
        offset += len(raw)
        blobs.append(raw)
    text = json.dumps(header, separators=(",", ":")).encode()
    if pad:
        text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + b"".join(blobs)


def array_tensor(a, dtype=None):
    """(dtype name, shape, raw bytes) of numpy array `a`."""
    name = dtype or next(k for k, v in DTYPES.items() if np.dtype(v) == a.dtype)
    return (name, a.shape, np.ascontiguousarray(a).tobytes())


def bf16_tensor(a):
    """A float32 array as BF16: the top half of each float's bits."""
    bits = (np.ascontiguousarray(a, dtype=np.float32).view(np.uint32) >> 16).astype(np.uint16)
    return ("BF16", a.shape, bits.tobytes())


def write_safetensors(path, tensors, metadata=None, pad=True):
    with open(path, "wb") as f:
        f.write(safetensors_bytes(tensors, metadata, pad))


def sized_safetensors(path, total, chunk=1 << 20):
    """A safetensors file of about `total` bytes written in 1 MiB pieces, flushed as it goes, so
    that a writer killed or out of space leaves every possible prefix."""
    count = max(1, total // chunk)
    header, offset = {"__metadata__": {"format": "pt"}}, 0
    for i in range(count):
        header[f"layers.{i}.weight"] = {"dtype": "F32", "shape": [chunk // 4],
                                        "data_offsets": [offset, offset + chunk]}
        offset += chunk
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    rng = np.random.default_rng(7)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text)
        for _ in range(count):
            f.write(rng.standard_normal(chunk // 4, dtype=np.float32).tobytes())
            f.flush()


def torch_state_dict(total, seed=7):
    import torch
    torch.manual_seed(seed)
    n = max(1, total // (1 << 20))
    return {f"layers.{i}.weight": torch.randn(256, 1024) for i in range(n)}


def save_torch(path, obj, legacy=False):
    import torch
    torch.save(obj, path, _use_new_zipfile_serialization=not legacy)


def safetensors_boundaries(data):
    """Offsets where a safetensors save can stop: in the length, in and at the end of the header,
    at and inside each tensor."""
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    cuts = {1, 4, 7, 8, 9, 8 + n // 2, 8 + n - 1, 8 + n}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        b, e = info["data_offsets"]
        cuts.update({8 + n + b, 8 + n + b + 1, 8 + n + (b + e) // 2, 8 + n + e - 1})
    return sorted(c for c in cuts if 0 < c < len(data))


def zip_boundaries(path):
    """Offsets where a zip save can stop: every local header and its data, the central directory
    and each of its entries, the end records."""
    size = os.path.getsize(path)
    cuts = {1, 2, 3, 4, size - 1, size - 21, size - 22, size - 23}
    with zipfile.ZipFile(path) as z:
        infos = z.infolist()
        with open(path, "rb") as f:
            data = f.read()
        for info in infos:
            o = info.header_offset
            name_len, extra_len = struct.unpack("<HH", data[o + 26:o + 30])
            start = o + 30 + name_len + extra_len
            cuts.update({o, o + 1, o + 29, o + 30, start, start + info.compress_size // 2,
                         start + info.compress_size})
    cd = data.rfind(b"PK\x01\x02", 0, size)
    first_cd = data.find(b"PK\x01\x02")
    at = first_cd
    while 0 <= at <= cd:
        cuts.update({at, at + 1, at + 46})
        at = data.find(b"PK\x01\x02", at + 1)
    for sig in (b"PK\x06\x06", b"PK\x06\x07", b"PK\x05\x06"):
        at = data.rfind(sig)
        if at >= 0:
            cuts.update({at, at + 1})
    return sorted(c for c in cuts if 0 < c < size)


def legacy_boundaries(path, element_size=4):
    """Offsets where a legacy torch.save can stop: every pickle's start, middle and end, and each
    storage's element count and data (all storages `element_size` bytes per element, as those of
    torch_state_dict())."""
    with open(path, "rb") as f:
        data = f.read()
    cuts, at, ops = {1, len(data) - 1}, 0, []
    for _ in range(5):  # magic number, protocol version, system info, main, storage keys
        stream = io.BytesIO(data[at:])
        ops = list(pickletools.genops(stream))
        end = at + stream.tell()
        cuts.update({at, at + 1, (at + end) // 2, end - 1, end})
        at = end
    keys = [arg for op, arg, _ in ops if op.name in ("BINUNICODE", "SHORT_BINUNICODE", "UNICODE")]
    for _ in keys:
        (numel,) = struct.unpack("<q", data[at:at + 8])
        nbytes = numel * element_size
        cuts.update({at, at + 4, at + 8, at + 8 + nbytes // 2})
        at += 8 + nbytes
    assert at == len(data), f"{path}: storages end at {at}, the file at {len(data)}"
    return sorted(c for c in cuts if 0 < c < len(data))


def main(argv):
    if len(argv) >= 4 and argv[1] == "torch":
        save_torch(argv[2], torch_state_dict(int(argv[3])), legacy=len(argv) > 4 and argv[4] == "legacy")
    elif len(argv) == 4 and argv[1] == "safetensors":
        sized_safetensors(argv[2], int(argv[3]))
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
