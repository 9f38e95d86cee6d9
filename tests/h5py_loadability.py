"""What h5py — the loader Keras uses — can read of an HDF5 file, judged in a child process.

`probe(path)` opens the file with h5py in a separate interpreter (libhdf5 crashes or loops on some
malformed files) and tries every dataset and attribute the way a loader does: translate its
datatype to a NumPy dtype (`.dtype`), then read it. A failure at the first step is a datatype
failure: h5py has no NumPy type for it, whatever the bytes are.

Run as a script to print, for every corpus file, what h5py could read next to the verdicts of one
or two ckptwatch binaries at `structure`:

    /usr/bin/python3 tests/h5py_loadability.py [--corpus DIR] BIN [OLD_BIN]
"""

import argparse
import csv
import json
import os
import subprocess
import sys

# Runs in the child: one JSON line per finding, so a crash still leaves what came before.
CHILD = r"""
import io, json, sys, zipfile
import h5py

def say(**kw):
    print(json.dumps(kw), flush=True)

path = sys.argv[1]
try:
    if path.endswith(".keras"):
        with zipfile.ZipFile(path) as z:
            f = h5py.File(io.BytesIO(z.read("model.weights.h5")), "r")
    else:
        f = h5py.File(path, "r")
except Exception as e:
    say(event="open_error", error=str(e))
    sys.exit(0)
say(event="opened")

def check(kind, name, get_dtype, read):
    for stage, step in (("dtype", get_dtype), ("read", read)):
        try:
            step()
        except Exception as e:
            say(event="error", kind=kind, object=name, stage=stage, error=str(e))
            return

def attributes(obj):
    try:
        names = list(obj.attrs)
    except Exception as e:
        say(event="error", kind="attribute", object=obj.name, stage="list", error=str(e))
        return
    for n in names:
        where = obj.name + " attribute " + n
        try:
            attr = obj.attrs.get_id(n)
        except Exception as e:
            say(event="error", kind="attribute", object=where, stage="open", error=str(e))
            continue
        check("attribute", where, lambda: attr.dtype, lambda: obj.attrs[n])

def visit(name, obj):
    attributes(obj)
    if isinstance(obj, h5py.Dataset):
        say(event="dataset", object=obj.name)
        check("dataset", obj.name, lambda: obj.dtype, lambda: obj[()])

try:
    attributes(f)
    f.visititems(visit)
except Exception as e:
    say(event="traversal_error", error=str(e))
say(event="done")
"""


def probe(path, timeout=30, python=sys.executable):
    """What h5py could read of `path`: a dict with `outcome` (opened, open_error, crash, timeout),
    `datasets` (how many it reached), `errors` (each: kind, object, stage, error) and `detail`."""
    try:
        proc = subprocess.run(
            [python, "-c", CHILD, path], capture_output=True, text=True, timeout=timeout
        )
    except subprocess.TimeoutExpired:
        return {"outcome": "timeout", "datasets": 0, "errors": [], "detail": f"{timeout}s"}
    events = []
    for line in proc.stdout.splitlines():
        try:
            events.append(json.loads(line))
        except ValueError:
            pass
    result = {"outcome": "opened", "datasets": 0, "errors": [], "detail": ""}
    for e in events:
        if e["event"] == "open_error":
            result.update(outcome="open_error", detail=e["error"])
        elif e["event"] == "dataset":
            result["datasets"] += 1
        elif e["event"] == "error":
            result["errors"].append(e)
        elif e["event"] == "traversal_error":
            result["detail"] = "traversal error: " + e["error"]
    if proc.returncode < 0:
        result.update(outcome="crash", detail=f"signal {-proc.returncode}")
    elif not any(e["event"] in ("done", "open_error") for e in events):
        result.update(outcome="crash", detail=f"exit {proc.returncode}: {proc.stderr[-300:]}")
    return result


def datatype_errors(result):
    """The errors where h5py has no NumPy type for a dataset's or attribute's datatype."""
    return [e for e in result["errors"] if e["stage"] == "dtype"]


def summary(result):
    """One short cell: readable, or what went wrong."""
    if result["outcome"] != "opened":
        return f"{result['outcome']} ({result['detail'][:60]})"
    dtype = datatype_errors(result)
    if dtype:
        e = dtype[0]
        return f"no: datatype of {e['kind']} {e['object']}: {e['error'][:60]}"
    if result["errors"]:
        e = result["errors"][0]
        return f"no: {e['stage']} {e['kind']} {e['object']}: {e['error'][:60]}"
    if result["detail"]:
        return f"no: {result['detail'][:70]}"
    return f"yes ({result['datasets']} datasets)"


def verdict(binary, path, level="structure"):
    proc = subprocess.run(
        [binary, "verify", "--json", "--level", level, "--timeout", "20", path],
        capture_output=True, text=True, timeout=90,
    )
    r = json.loads(proc.stdout.splitlines()[0])
    return r["verdict"], r["reason"]


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", default=os.path.join(here, "..", "..", "shared", "corpus"))
    parser.add_argument("binary")
    parser.add_argument("old_binary", nargs="?")
    args = parser.parse_args()
    with open(os.path.join(args.corpus, "MANIFEST.tsv"), newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    header = ["file", "expected", "h5py readable?"]
    if args.old_binary:
        header.append("old verdict")
    header.append("new verdict" if args.old_binary else "verdict")
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for row in rows:
        path = os.path.join(args.corpus, row["file"])
        cells = [row["file"], row["expected_verdict"], summary(probe(path))]
        if args.old_binary:
            cells.append(verdict(args.old_binary, path)[0])
        new, reason = verdict(args.binary, path)
        cells.append(new if new == "ok" or not args.old_binary else f"{new}: {reason[:90]}")
        print("| " + " | ".join(c.replace("|", "/") for c in cells) + " |", flush=True)


if __name__ == "__main__":
    main()
