"""Markdown tables for docs/reliability.md and docs/performance.md, from one run's output.

  docs_tables.py reliability FIGURES.jsonl SOAK.md OUT_DIR
      one fragment per table of docs/reliability.md, from the JSON lines tests/figures.py
      recorded and the table bench/soak.py printed
  docs_tables.py targets RUN.md OUT
      "targets at a glance": every row of bench/run.sh's document that names a target
  docs_tables.py splice DOC NAME FRAGMENT STAMP
      replaces what lies between <!-- BEGIN generated:NAME --> and <!-- END generated:NAME -->
      in DOC with STAMP (one line: what measured it, at which commit) and FRAGMENT

Used by bench/regen-docs.sh; nothing in a generated block is typed by hand.
"""

import json
import pathlib
import sys


def verdict_list(counts):
    return ", ".join(f"{n} × `{v}`" for v, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


def reliability(figures_path, soak_path, out_dir):
    out = pathlib.Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rows = [json.loads(l) for l in pathlib.Path(figures_path).read_text().splitlines() if l.strip()]
    by = {}
    for r in rows:
        by.setdefault(r["table"], []).append(r)
    need = {"killed_writers", "disk_full", "bit_flips", "corpus_into_watch", "racing_trainer",
            "every_save", "flood"}
    missing = need - set(by)
    if missing:
        sys.exit(f"docs_tables: no figures for {sorted(missing)} in {figures_path}: did a test fail?")

    (k,) = by["killed_writers"]
    (out / "killed_writers.md").write_text(
        "| files | verdicts |\n| --- | --- |\n"
        f"| {k['files']} | {verdict_list(k['verdicts'])} |\n")

    disk = by["disk_full"]
    verdicts, causes = {}, {}
    for r in disk:
        verdicts[r["verdict"]] = verdicts.get(r["verdict"], 0) + 1
        causes[str(r["cause"])] = causes.get(str(r["cause"]), 0) + 1
    (out / "disk_full.md").write_text(
        "| tmpfs | verdict | cause |\n| --- | --- | --- |\n"
        f"| {disk[0]['size']} … {disk[-1]['size']} ({len(disk)} sizes) | "
        + ", ".join(f"`{v}` ({n} of {len(disk)})" for v, n in sorted(verdicts.items())) + " | "
        + ", ".join(f"`{c}` ({n} of {len(disk)})" for c, n in sorted(causes.items())) + " |\n")

    names = {"v3": '`libver="latest"` (superblock v3, checksummed object headers and B-trees)',
             "v0": "Keras 2 layout, superblock v0 (no metadata checksums in the format)"}
    text = ("| file | positions | detected | harmless | undetected content changes | hung (timeout) |\n"
            "| --- | ---: | ---: | ---: | ---: | ---: |\n")
    for r in sorted(by["bit_flips"], key=lambda r: r["file"], reverse=True):
        missed = f"**{r['missed']}**" if r["file"] == "v3" else str(r["missed"])
        text += (f"| {names[r['file']]} | {r['positions']} | {r['detected']} | {r['harmless']} | "
                 f"{missed} | {r['hung']} |\n")
    (out / "bit_flips.md").write_text(text)

    (c,) = by["corpus_into_watch"]
    anys = ", ".join(f"`{n}`: `{v}`" for n, v in sorted(c["any_rows"].items()))
    (out / "corpus_into_watch.md").write_text(
        "| files | verdicts | the manifest's `any` rows | daemon |\n| --- | --- | --- | --- |\n"
        f"| {c['files']} | {verdict_list(c['verdicts'])} | {anys} | kept running; exactly one "
        "verdict per file |\n")

    (t,) = by["racing_trainer"]
    (out / "racing_trainer.md").write_text(
        "| seconds | saves | failed saves | verdicts superseded or deferred | verdicts reported | "
        "broken verdicts |\n| ---: | ---: | ---: | ---: | ---: | ---: |\n"
        f"| {t['seconds']:g} | {t['saves']} | {t['failed']} | {t['superseded']} | {t['reported']} | "
        f"{t['broken']} |\n")

    cases = {"test_a_save_that_hits_a_full_disk_is_disk_full_within_5s_on_the_default_settle":
             "h5py save on a 4 MiB tmpfs, `OSError: [Errno 28]`",
             "test_a_writer_killed_mid_save_is_reported_within_5s_with_its_cause":
             "h5py writer of a 64 MiB save, `kill -9` at 16 MiB"}
    text = ("| save | cause | in the log after the writer's end | in `ckptwatch_save_failures_total` |\n"
            "| --- | --- | ---: | ---: |\n")
    for r in sorted(by["every_save"], key=lambda r: r["case"]):
        text += f"| {cases.get(r['case'], r['case'])} | `{r['cause']}` | {r['logged']:.2f} s | {r['counted']:.2f} s |\n"
    (f,) = by["flood"]
    text += (f"\n| files at once | `verify.queue_limit` | files with a verdict | most verdicts for one file "
             f"| seconds |\n| ---: | ---: | ---: | ---: | ---: |\n"
             f"| {f['files']} | {f['queue_limit']} | {f['verified']} | {f['most_per_file']} | {f['seconds']:g} |\n")
    (out / "every_save.md").write_text(text)

    table = [l for l in pathlib.Path(soak_path).read_text().splitlines() if l.startswith("|")]
    if not table:
        sys.exit(f"docs_tables: no table in {soak_path}")
    (out / "soak.md").write_text("\n".join(table) + "\n")


def denial(figures_path, out_path):
    """docs/reliability.md's table of attacks on another user's alarm (tests/alarm_denial_test.py)."""
    rows = [json.loads(l) for l in pathlib.Path(figures_path).read_text().splitlines() if l.strip()]
    alarms = [r for r in rows if r["table"] == "alarm_denial"]
    bombs = [r for r in rows if r["table"] == "bomb_verdict"]
    if not alarms:
        sys.exit(f"docs_tables: no alarm_denial figures in {figures_path}: did the test fail?")
    text = ("| during | victim's failed save reported after its close | bound |\n"
            "| --- | ---: | ---: |\n")
    for r in sorted(alarms, key=lambda r: r["alarm_s"]):
        text += f"| {r['attack']} | {r['alarm_s']:.2f} s | {r['within_s']:g} s |\n"
    if bombs:
        text += ("\n| gzip bomb (64 MB, 64 GiB decoded) | verdict | level | verifier time |\n"
                 "| --- | --- | --- | ---: |\n")
        for i, b in enumerate(bombs, 1):
            text += f"| bomb {i} | `{b['verdict']}` | `{b['level']}` | {b['elapsed_ms']:.0f} ms |\n"
    pathlib.Path(out_path).write_text(text)


def split_row(line):
    return [c.strip() for c in line.strip().strip("|").split("|")]


def targets(run_path, out_path):
    """Rows whose `target` column is set, under the section (### heading) they came from."""
    section, header, rows = "", None, []
    for line in pathlib.Path(run_path).read_text().splitlines():
        if line.startswith("### "):
            section, header = line[4:].split(":")[0].strip(), None
            continue
        if not line.startswith("|"):
            header = None
            continue
        cells = split_row(line)
        if header is None:
            header = cells
            continue
        if set("".join(cells)) <= set("-: "):
            continue
        if "target" not in header or "status" not in header:
            continue
        row = dict(zip(header, cells))
        if not row.get("target") or not row.get("status"):
            continue  # a floor or a reference row, not a target
        # The measured value: the ckptwatch column, or the verify table's wall time; the
        # columns before it say what was measured.
        value_column = next((c for c in ("ckptwatch", "wall time (ms, median)") if c in header), None)
        if value_column is None:
            continue
        at = header.index(value_column)
        label = " / ".join(c for c in cells[:at] if c)
        rows.append(f"| {section} | {label} | {row[value_column]} | {row['target']} | {row['status']} |")
    if not rows:
        sys.exit(f"docs_tables: no row with a target in {run_path}")
    pathlib.Path(out_path).write_text(
        "| section | what | this run | target | status |\n| --- | --- | --- | --- | --- |\n"
        + "\n".join(rows) + "\n")


def splice(doc_path, name, fragment_path, stamp):
    doc = pathlib.Path(doc_path)
    text = doc.read_text()
    begin, end = f"<!-- BEGIN generated:{name} -->", f"<!-- END generated:{name} -->"
    if text.count(begin) != 1 or text.count(end) != 1:
        sys.exit(f"docs_tables: {doc_path} needs exactly one {begin} … {end}")
    head, rest = text.split(begin)
    _, tail = rest.split(end)
    body = pathlib.Path(fragment_path).read_text().rstrip("\n")
    doc.write_text(f"{head}{begin}\n{stamp}\n\n{body}\n{end}{tail}")


def main(argv):
    if len(argv) >= 2 and argv[1] == "reliability" and len(argv) == 5:
        reliability(*argv[2:])
    elif len(argv) >= 2 and argv[1] == "denial" and len(argv) == 4:
        denial(*argv[2:])
    elif len(argv) >= 2 and argv[1] == "targets" and len(argv) == 4:
        targets(*argv[2:])
    elif len(argv) >= 2 and argv[1] == "splice" and len(argv) == 6:
        splice(*argv[2:])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv)
