"""docs/logging.md's event table, and a check of real log lines against it.

The daemon harness runs check_lines() on every log a daemon wrote in the end-to-end tests, so
an event or key the daemon logs that the table does not document fails the test that made it
(daemon/report/events_test.cc checks the table against the code's event list).
"""

import os
import re

DOC = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "docs", "logging.md")
LEVELS = ("debug", "info", "warn", "error")
ALWAYS = {"ts", "level", "event", "msg"}


def _without_parentheses(text):
    while True:
        stripped = re.sub(r"\([^()]*\)", "", text)
        if stripped == text:
            return text
        text = stripped


def event_table(path=DOC):
    """{event: (levels, keys)} from the "## Events" table."""
    with open(path, encoding="utf-8") as f:
        doc = f.read()
    section = doc.split("\n## Events\n", 1)[1].split("\n## ", 1)[0]
    table = {}
    for line in section.splitlines():
        if not line.startswith("| `"):
            continue
        cells = [c.strip() for c in line.strip("|").split(" | ")]
        event = re.findall(r"`([^`]+)`", cells[0])[0]
        levels = {l for l in LEVELS if l in _without_parentheses(cells[1])}
        keys = set(re.findall(r"`([^`]+)`", _without_parentheses(cells[2])))
        table[event] = (levels, keys)
    return table


def check_lines(events, table=None):
    """What in `events` (parsed log lines: dicts) the table does not document, one per line."""
    table = table or event_table()
    problems = []
    for e in events:
        name = e.get("event")
        if name not in table:
            problems.append(f"event={name} is not in docs/logging.md's event table: {e}")
            continue
        levels, keys = table[name]
        if e.get("level") not in levels:
            problems.append(f"event={name} at level={e.get('level')}, documented {sorted(levels)}")
        extra = set(e) - ALWAYS - keys
        if extra:
            problems.append(f"event={name} has keys {sorted(extra)} its row does not list")
    return sorted(set(problems))
