"""Sorts the sanitizer reports of bench/asan-tests.sh: ours, libhdf5's, or another library's.

A report is ours when it is a UBSan finding, a leak through one of our frames, or a crash whose
stack has a frame of ours (a file under daemon/) before libhdf5's entry: libhdf5's entry is the
libhdf5 call the crash happened in — the outermost frame of the run of libhdf5 frames that starts
at the crash (runtime frames such as memcpy skipped). So our code crashing, even with libhdf5
below it as a caller of our callback, is ours; a crash inside the libhdf5 call our code made (from
a visit callback too: every read happens there) is libhdf5's, which the isolated verifier child
exists to contain on malformed files. A stack cannot tell a libhdf5 bug from a bad argument we
passed it; the unit tests of our callers cover that.

usage: asan_triage.py LOG_DIR OURS_DIR      exits 1 when any report is ours or another library's
"""

import pathlib
import re
import sys

FRAME = re.compile(r"^\s*#(\d+) 0x[0-9a-f]+ in (\S+) ?(.*)$")
RUNTIME = re.compile(r"^(__asan|__ubsan|__sanitizer|__interceptor|__lsan|__libc_|__GI_|__mem|__str"
                     r"|_start$|abort$|raise$|malloc$|calloc$|realloc$|free$)")


def first_stack(text):
    """(function, location) of each frame of the report's first stack, innermost first."""
    frames = []
    for line in text.splitlines():
        m = FRAME.match(line)
        if not m:
            continue
        if int(m.group(1)) == 0 and frames:
            break  # the next stack ("freed by", "previously allocated by")
        frames.append((m.group(2), m.group(3)))
    return frames


def all_frames(text):
    return [(m.group(2), m.group(3)) for m in map(FRAME.match, text.splitlines()) if m]


def is_runtime(frame):
    function, where = frame
    return bool(RUNTIME.match(function)) or "/sysdeps/" in where or "libsanitizer" in where


def is_hdf5(frame):
    function, where = frame
    return function.startswith("H5") or "libhdf5" in where


def classify(text, ours_dir):
    """("ours" | "hdf5" | "other", one line naming the report and the frame that decided)."""
    summary = next((l.strip() for l in text.splitlines() if "SUMMARY" in l or "runtime error" in l),
                   text.strip().splitlines()[0].strip() if text.strip() else "(empty)")
    ours = lambda frame: ours_dir in frame[1]  # noqa: E731
    if "runtime error" in text:
        return "ours", summary
    if "detected memory leaks" in text:
        mine = [f"{f} {w}" for f, w in all_frames(text) if ours_dir in w]
        first = next((f"{f} {w}" for f, w in all_frames(text) if not is_runtime((f, w))), "?")
        return ("ours" if mine else "other"), f"{summary} [{(mine or [first])[0]}]"
    stack = [f for f in first_stack(text) if not is_runtime(f)]
    if not stack:
        return "other", f"{summary} [no frames]"
    hdf5_at = [i for i, f in enumerate(stack) if is_hdf5(f)]
    if not hdf5_at:
        kind = "ours" if any(ours(f) for f in stack[:1]) else "other"
        return kind, f"{summary} [{' '.join(stack[0])}]"
    # The libhdf5 call the crash is in: the run of libhdf5 frames that starts at the first one.
    entry = hdf5_at[0]
    while entry + 1 < len(stack) and is_hdf5(stack[entry + 1]):
        entry += 1
    above = [f for f in stack[:entry] if ours(f)]
    if above:
        return "ours", f"{summary} [{' '.join(above[0])}, above libhdf5's entry {stack[entry][0]}]"
    if entry > 0 or is_hdf5(stack[0]):
        return "hdf5", summary
    return "other", f"{summary} [{' '.join(stack[0])}]"


def main(argv):
    if len(argv) != 3:
        sys.exit(__doc__)
    logs, ours_dir = pathlib.Path(argv[1]), argv[2]
    found = {"ours": [], "hdf5": [], "other": []}
    for log in sorted(logs.iterdir()):
        kind, line = classify(log.read_text(errors="replace"), ours_dir)
        found[kind].append(f"{log.name}: {line}")
    print(f"asan-tests: {len(found['hdf5'])} crashes inside libhdf5 (verifier children on "
          "malformed files: expected)")
    for line in found["hdf5"]:
        print("    " + line)
    for title, kind in (("in our code", "ours"), ("in other libraries or the runtime", "other")):
        if found[kind]:
            print(f"asan-tests: {len(found[kind])} sanitizer reports {title}:")
            print("\n".join("    " + line for line in found[kind]))
    return 1 if found["ours"] or found["other"] else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
