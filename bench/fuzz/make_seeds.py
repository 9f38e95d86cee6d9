#!/usr/bin/python3
"""Writes the seed corpora of ckptwatch's fuzz targets (bench/fuzz.sh runs it).

usage: make_seeds.py OUT_DIR [CORPUS_DIR]

OUT_DIR/<target>/ gets one file per seed, for the targets superblock, keras_zip, config, units,
logfmt, keras_classes, text_escape, safetensors, torch and state. Seeds come from the shared corpora
(read in place, never copied into the repository; safetensors and torch files from
../shared/corpus-formats or CKPTWATCH_FORMATS_CORPUS), from files the real h5py and torch write
(tests/writers.py, tests/format_writers.py), from config/*.yaml and from a few strings. Needs
Debian's /usr/bin/python3 (h5py, numpy; torch for the torch seeds). Takes a few seconds.
"""

import hashlib
import io
import json
import os
import pathlib
import sys
import tempfile
import zipfile

HERE = pathlib.Path(__file__).resolve().parent
REPO = HERE.parent.parent
sys.path.insert(0, str(REPO / "tests"))

import h5py  # noqa: E402
import numpy as np  # noqa: E402

import format_writers  # noqa: E402
import writers  # noqa: E402

SIGNATURE = b"\x89HDF\r\n\x1a\n"
# What the superblock target reads of a file: the signature search looks at offset 0 and at
# powers of two from 512, and the superblock is at most 244 bytes.
SUPERBLOCK_SEED_BYTES = 4096


class Seeds:
    def __init__(self, out_dir):
        self.out_dir = pathlib.Path(out_dir)
        self.counts = {}

    def add(self, target, data):
        if isinstance(data, str):
            data = data.encode()
        directory = self.out_dir / target
        directory.mkdir(parents=True, exist_ok=True)
        # Named by content, as libFuzzer names corpus files: re-runs do not duplicate.
        (directory / hashlib.sha1(data).hexdigest()).write_bytes(data)
        self.counts[target] = self.counts.get(target, 0) + 1


def superblock_seed(data):
    """The head of an HDF5 file: enough for the signature, wherever it is, and its superblock."""
    for offset in [0] + [512 << i for i in range(20)]:
        if offset >= len(data):
            break
        if data[offset : offset + 8] == SIGNATURE:
            return data[: max(SUPERBLOCK_SEED_BYTES, offset + 512)]
    return data[:SUPERBLOCK_SEED_BYTES]


def keras_configs_of_h5(path):
    """model_config and training_config attributes of a Keras .h5, as JSON text."""
    texts = []
    try:
        with h5py.File(path, "r") as f:
            for name in ("model_config", "training_config"):
                value = f.attrs.get(name)
                if value is None:
                    continue
                texts.append(value.decode() if isinstance(value, bytes) else str(value))
    except Exception:  # Not every file is a Keras file.
        pass
    return texts


def generated_hdf5(tmp):
    """Small files from the real writers, covering the superblock layouts h5py can produce."""
    files = []

    def path(name):
        p = os.path.join(tmp, name)
        files.append(p)
        return p

    small = writers.dense_stack(units=(4, 8, 2))
    writers.write_full_model(path("full_v0.h5"), small)
    writers.write_weights_only(path("weights.h5"), small)
    writers.write_latest(path("latest_v3.h5"), small)
    writers.write_full_model(path("v2.h5"), small, libver=("v108", "v108"))
    for size in (512, 1024, 4096):
        writers.write_userblock(path(f"userblock{size}.h5"), size)
    # Offsets and lengths other than 8 bytes.
    for offsets, lengths in ((4, 4), (2, 4), (4, 8), (8, 4)):
        p = path(f"sizes{offsets}_{lengths}.h5")
        try:
            fcpl = h5py.h5p.create(h5py.h5p.FILE_CREATE)
            fcpl.set_sizes(offsets, lengths)
            with h5py.File(h5py.h5f.create(p.encode(), h5py.h5f.ACC_TRUNC, fcpl=fcpl)) as f:
                f["w"] = np.arange(8, dtype=np.float32)
        except Exception:  # Not every libhdf5 accepts every size.
            files.remove(p)
    # A writer that never closed its file: v3 with the write-access flag still set.
    abandoned = path("abandoned.h5")
    f = h5py.File(abandoned, "w", libver="latest")
    f["w"] = np.ones(4)
    f.flush()
    with open(abandoned, "rb") as src:
        data = src.read()
    f.close()
    with open(abandoned, "wb") as dst:
        dst.write(data)
    return files


def keras_zips(tmp, corpus):
    """.keras archives: as Keras writes them, deflated, with extra entries, zip64, cut short."""
    layers = writers.dense_stack(units=(4, 8, 2))
    custom = writers.dense_stack(units=(4, 8, 2), custom_class="MyCustomLayer")
    archives = []
    for name, model in (("plain.keras", layers), ("custom.keras", custom)):
        p = os.path.join(tmp, name)
        writers.write_keras3_zip(p, model)
        archives.append(pathlib.Path(p).read_bytes())
    plain = archives[0]
    with zipfile.ZipFile(io.BytesIO(plain)) as zf:
        entries = [(info.filename, zf.read(info)) for info in zf.infolist()]

    def rezip(items, **kwargs):
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", **kwargs) as zf:
            for name, data in items:
                zf.writestr(name, data)
        return buffer.getvalue()

    archives.append(rezip(entries, compression=zipfile.ZIP_DEFLATED))
    archives.append(rezip(entries + [("assets/vocab.txt", b"a\nb\n"), ("variables/x", b"")]))
    archives.append(rezip([e for e in entries if e[0] != "model.weights.h5"]))
    archives.append(rezip([e for e in entries if e[0] != "config.json"]))
    archives.append(rezip([(n, b"{not json" if n == "config.json" else d) for n, d in entries]))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for name, data in entries:
            with zf.open(name, "w", force_zip64=True) as out:
                out.write(data)
    archives.append(buffer.getvalue())
    archives.append(plain[: len(plain) // 2])  # No central directory: a save cut short.
    damaged = bytearray(plain)
    damaged[len(damaged) // 3] ^= 0xFF  # A CRC mismatch in the weights.
    archives.append(bytes(damaged))
    archives.extend(p.read_bytes() for p in sorted(corpus.glob("**/*.keras")))
    return archives


def format_seeds(seeds, tmp):
    """safetensors and torch files: the corpus's, and small ones written here, whole and cut."""
    corpus = pathlib.Path(os.environ.get("CKPTWATCH_FORMATS_CORPUS") or REPO.parent / "shared" / "corpus-formats")
    files = sorted(p for p in corpus.glob("**/*") if p.is_file() and p.name not in ("MANIFEST.tsv", "README.md"))
    rng = np.random.default_rng(3)
    st = format_writers.safetensors_bytes({
        "w": format_writers.array_tensor(rng.standard_normal((4, 4), dtype=np.float32)),
        "b": format_writers.bf16_tensor(np.array([1.0, np.nan])),
        "e": ("F8_E5M2", (2,), bytes([0x7c, 0])), "i": format_writers.array_tensor(np.arange(3))},
        {"format": "pt"})
    generated = {"safetensors": [st, st[: len(st) // 2]], "torch": []}
    try:
        import torch

        for legacy in (False, True):
            p = os.path.join(tmp, f"seed_{legacy}.pt")
            torch.save({"state_dict": {"w": torch.randn(3, 3), "h": torch.ones(2, dtype=torch.float16)},
                        "callbacks": {"kth_value": torch.tensor(float("inf"))}, "epoch": 1}, p,
                       _use_new_zipfile_serialization=not legacy)
            data = pathlib.Path(p).read_bytes()
            generated["torch"] += [data, data[: len(data) // 2]]
    except ImportError:
        print("make_seeds: no torch (python3-torch); torch seeds from the corpus only", file=sys.stderr)
    for p in files:
        data = p.read_bytes()
        target = "safetensors" if p.suffix == ".safetensors" else "torch"
        seeds.add(target, data[:65536])
    for target, items in generated.items():
        for data in items:
            seeds.add(target, data)


UNITS = [
    "0", "90", "300ms", "10s", "5m", "1h30m", "1d", "1d2h3m4s5ms", "9223372036854775807ms",
    "18446744073709551615", "18446744073709551616", "8GiB", "10GB", "1kB", "1KB", "512MiB",
    "16EiB", "15EiB", "10G", "10gb", "1Ki", "5%", "2.5%", "0.001%", "100%", "100.000%", "0%",
    "-1s", "1.5s", "1 s", "", "%", ".5%",
]

LOGFMT = [
    "", "plain", "with space", 'quote"d', "back\\slash", "key=value", "new\nline", "tab\there",
    "cr\rlf\n", "\x00\x01\x1b[31m\x7f", "caf\u00e9 \u2028", "\xff\xfe invalid utf-8",
    "/ckpt/epoch_042.h5", "msg=\"forged\" level=error",
]

CONFIGS = [
    "watches:\n  - path: /data/ckpt\n",
    "watches:\n  - path: ckpt\n    name: run1\n    recursive: true\n    patterns: ['*.h5']\n"
    "    backend: poll\n    poll_interval: 5s\n    settle: 200ms\n    level: full\n"
    "    expect_every: 1h\n    min_free: 5%\n    writer: root\n"
    "    readers: [root, group:root, 0]\n",
    "log:\n  file: /var/log/ckptwatch.log\n  format: json\n  level: debug\n  summary_every: 1h\n"
    "metrics:\n  listen: '[::1]:9000'\n  basic_auth:\n    username: prom\n"
    "    password_file: /etc/ckptwatch/pw\n"
    "verify:\n  level: header\n  full_max_bytes: 1GiB\n  max_parallel: 4\n  timeout: 30s\n"
    "  memory_limit: 512MiB\n  queue_limit: 100\nwatches:\n  - path: /a\n  - path: /b\n",
    "watches: []\n",
    "watches:\n  - {path: /x, min_free: 10GiB}\n  - {path: /x/y, recursive: true}\n",
    "---\nwatches:\n  - path: /a\n---\nwatches:\n  - path: /b\n",
]

# The state file as the daemon writes it (daemon/core/state_file.cc), and near misses.
STATES = [
    '{"version":1,"watches":{}}\n',
    '{"version":1,"watches":{"run":{"files":[["/c/a.h5",4096,1700000000123456789,42,"truncated",'
    '"disk_full",1700000000.5],["/c/sub/b.h5",10,5,43,"ok","",0]],"last_good":["/c/sub/b.h5",10,'
    '0,0,"ok","",1800000000.0],"path":"/c"},"other":{"files":[],"path":"/d"}}}\n',
    '{"version":1,"watches":{"run":{"files":[["/c/a.h5",1,-2,3,"corrupt","corrupt",1e308]],'
    '"path":"/c"}}}\n',
    '{"version":1,"watches":{"run":{"files":[["/c/a.h5","1",2,3,"ok","",0]],"path":"/c"}}}\n',
    '{"version":2,"watches":{}}\n',
]


def main(argv):
    if len(argv) not in (2, 3):
        print(__doc__, file=sys.stderr)
        return 2
    seeds = Seeds(argv[1])
    corpus = pathlib.Path(argv[2] if len(argv) == 3 else REPO.parent / "shared" / "corpus")
    corpus_files = sorted(p for p in corpus.glob("**/*") if p.is_file()) if corpus.is_dir() else []
    if not corpus_files:
        print(f"make_seeds: no corpus at {corpus}; generated seeds only", file=sys.stderr)

    with tempfile.TemporaryDirectory() as tmp:
        for p in generated_hdf5(tmp) + [str(p) for p in corpus_files if p.suffix != ".keras"]:
            data = pathlib.Path(p).read_bytes()
            if not data or p.endswith((".tsv", ".md")):
                continue
            head = superblock_seed(data)
            seeds.add("superblock", head)
            if len(head) > 64:
                seeds.add("superblock", head[: len(head) // 2])  # Cut inside the file.
            # Malformed corpus files crash libhdf5: open only the valid ones (and our own).
            if "/malformed/" not in p:
                for text in keras_configs_of_h5(p):
                    seeds.add("keras_classes", text)
        for archive in keras_zips(tmp, corpus):
            seeds.add("keras_zip", archive)
            try:
                with zipfile.ZipFile(io.BytesIO(archive)) as zf:
                    seeds.add("keras_classes", zf.read("config.json"))
            except (zipfile.BadZipFile, KeyError):
                pass
    seeds.add("keras_classes", json.dumps(writers.keras2_model_config(writers.dense_stack())))
    with tempfile.TemporaryDirectory() as tmp:
        format_seeds(seeds, tmp)

    for p in sorted((REPO / "config").glob("*.yaml")):
        seeds.add("config", p.read_bytes())
    for text in CONFIGS:
        seeds.add("config", text)
    for text in STATES:
        seeds.add("state", text)
    for text in UNITS:
        seeds.add("units", text)
    for text in LOGFMT:
        seeds.add("logfmt", text.encode("utf-8", "surrogateescape"))
    seeds.add("logfmt", b"\xff\xfe\xc3(")
    # text_escape: the first byte picks where the input splits in two strings.
    for text in (b"\x06ckpt_\xff\xfe.h5", b"\x05ckpt_\\xffckpt_\xff", b"\x04evil\xe2\x80\xaegpj.h5",
                 b"\x03a\xc2\x85\xe2\x80\xa8\xe2\x81\xa6b", b"\x02\xed\xa0\x80\xc0\xaf\xf4\x90\x80\x80",
                 b"\x07\x1b[31m\r\n\x7fdone"):
        seeds.add("text_escape", text)

    print("make_seeds: " + ", ".join(f"{t} {n}" for t, n in sorted(seeds.counts.items())))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
