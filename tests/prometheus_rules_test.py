"""Checks of the Prometheus rules, the Grafana dashboard and their docs against what ckptwatch
exports.

- `promtool check rules` and `promtool test rules` on config/prometheus/ckptwatch-rules.yml and
  tests/prometheus/ckptwatch-rules.test.yml, and proof that those unit tests fail when an alert
  never fires or loses its `for`.
- Every query of the rules and of config/grafana/ckptwatch.json names only metrics, labels and
  label values listed in METRICS below, and parses as PromQL.
- METRICS agrees with daemon/report/metrics.cc and with what the real daemon serves on /metrics;
  docs/metrics.md and docs/alerts.md cover every metric and every alert.

Needs promtool (Debian package `prometheus`) and PyYAML (`python3-yaml`); the daemon check needs
CKPTWATCH_BIN (default ../build/ckptwatch) and h5py. Run with Debian's /usr/bin/python3:
`cd tests && /usr/bin/python3 -m unittest -v prometheus_rules_test`.
"""

import copy
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)

import evidence  # noqa: E402

try:
    import yaml
except ImportError:  # reported by setUpModule, with the package to install
    yaml = None

RULES = os.path.join(ROOT, "config", "prometheus", "ckptwatch-rules.yml")
RULE_TESTS = os.path.join(HERE, "prometheus", "ckptwatch-rules.test.yml")
DASHBOARD = os.path.join(ROOT, "config", "grafana", "ckptwatch.json")
METRICS_DOC = os.path.join(ROOT, "docs", "metrics.md")
ALERTS_DOC = os.path.join(ROOT, "docs", "alerts.md")
METRICS_CC = os.path.join(ROOT, "daemon", "report", "metrics.cc")
# The set layouts the metrics label with: one list, beside the layouts' modules.
CHECKPOINT_SET_H = os.path.join(ROOT, "daemon", "verify", "sets", "checkpoint_set.h")
WATCH_PROBLEM_CC = os.path.join(ROOT, "daemon", "decide", "watch_problem.cc")
VERDICT_CC = os.path.join(ROOT, "daemon", "verify", "verdict.cc")

# What ckptwatch exports: name -> (type, labels). Prometheus adds job and instance.
METRICS = {
    "ckptwatch_checkpoints_verified_total": ("counter", {"watch", "verdict"}),
    "ckptwatch_save_failures_total": ("counter", {"watch", "run", "cause"}),
    "ckptwatch_watch_problem": ("gauge", {"watch", "problem"}),
    "ckptwatch_last_good_checkpoint_timestamp_seconds": ("gauge", {"watch", "run"}),
    "ckptwatch_last_good_checkpoint_bytes": ("gauge", {"watch", "run"}),
    "ckptwatch_last_checkpoint_ok": ("gauge", {"watch", "run"}),
    "ckptwatch_last_save_attempt_timestamp_seconds": ("gauge", {"watch", "run"}),
    "ckptwatch_failing_files": ("gauge", {"watch", "run", "cause"}),
    "ckptwatch_checkpoint_load_incompatible": ("gauge", {"watch"}),
    "ckptwatch_checkpoint_sets_total": ("counter", {"watch", "layout", "verdict"}),
    "ckptwatch_last_complete_checkpoint_timestamp_seconds": ("gauge", {"watch", "run"}),
    "ckptwatch_resume_pointers_broken": ("gauge", {"watch"}),
    "ckptwatch_filesystem_avail_bytes": ("gauge", {"watch"}),
    "ckptwatch_filesystem_size_bytes": ("gauge", {"watch"}),
    "ckptwatch_verify_duration_seconds": ("histogram", {"watch", "level"}),
    "ckptwatch_verified_bytes_total": ("counter", {"watch"}),
    "ckptwatch_verify_queue_length": ("gauge", set()),
    "ckptwatch_rescans_total": ("counter", {"watch", "reason"}),
    "ckptwatch_watch_info": ("gauge", {"watch", "path", "backend"}),
    "ckptwatch_build_info": ("gauge", {"version", "hdf5_version"}),
    "ckptwatch_config_last_reload_successful": ("gauge", set()),
    "ckptwatch_config_last_reload_success_timestamp_seconds": ("gauge", set()),
}
TARGET_LABELS = {"job", "instance"}
# Every label any metric has: what a doc section's "labels `…`" may name.
LABEL_NAMES = set().union(*(labels for _, labels in METRICS.values()))
# Labels a series has only in some cases: `run` only under a watch with run_depth (an empty
# label is no label in Prometheus).
OPTIONAL_LABELS = {"run"}
# The values of the enumerated labels.
VERDICTS = {"ok", "not_found", "permission_denied", "empty", "not_checkpoint", "truncated",
            "in_progress", "corrupt", "nonfinite", "timeout", "verifier_crashed", "not_regular",
            "external_data"}
CAUSES = {"disk_full", "permission_denied", "truncated", "corrupt", "empty", "in_progress",
          "nonfinite", "timeout", "verifier_crashed", "not_checkpoint", "not_found", "not_regular",
          "external_data", "writer_died", "load_incompatible", "stuck",
          "missing_member", "no_commit_point", "inconsistent_set"}
# Checkpoint sets (docs/checkpoint-sets.md): their layouts and verdicts.
SET_LAYOUTS = {"tf_bundle", "tf_saved_model", "tf_v1_checkpoint", "dcp", "hf_sharded", "hf_trainer",
               "deepspeed", "megatron", "keras_sharded", "orbax"}
SET_VERDICTS = {"ok", "incomplete", "inconsistent"}
PROBLEMS = {"missing_directory", "not_writable", "low_space", "stale", "unreadable", "degraded_watching"}
LEVELS = {"header", "structure", "full"}
ENUMS = {"verdict": VERDICTS | SET_VERDICTS, "layout": SET_LAYOUTS, "cause": CAUSES, "problem": PROBLEMS, "level": LEVELS,
         "backend": {"inotify", "poll", "none"},
         "reason": {"overflow", "queue_full", "watch_failed", "recovered"}}
# Series names a query may use: every metric, a histogram's _bucket/_sum/_count (not its bare
# name), and Prometheus's own `up` for the scrape.
SERIES = {"up": TARGET_LABELS}
for _name, (_type, _labels) in METRICS.items():
    if _type == "histogram":
        SERIES[_name + "_bucket"] = _labels | {"le"} | TARGET_LABELS
        SERIES[_name + "_sum"] = _labels | TARGET_LABELS
        SERIES[_name + "_count"] = _labels | TARGET_LABELS
    else:
        SERIES[_name] = _labels | TARGET_LABELS

SEVERITIES = {"page", "ticket"}


def setUpModule():
    if yaml is None:
        raise RuntimeError("PyYAML is missing: apt-get install python3-yaml (.ci/install-deps)")
    if promtool() is None:
        raise RuntimeError("promtool not found on PATH or in /usr/bin: apt-get install prometheus "
                           "(.ci/install-deps); these tests do not skip without it")


def promtool():
    found = shutil.which("promtool")
    if found:
        return found
    return "/usr/bin/promtool" if os.access("/usr/bin/promtool", os.X_OK) else None


def run_promtool(*args):
    return subprocess.run([promtool(), *args], capture_output=True, text=True, timeout=120)


def read(path):
    with open(path, encoding="utf-8") as f:
        return f.read()


def load_yaml(path):
    with open(path, encoding="utf-8") as f:
        return yaml.safe_load(f)


def alert_rules(rules_doc):
    return [r for g in rules_doc["groups"] for r in g["rules"] if "alert" in r]


# --- PromQL inspection ----------------------------------------------------------------------

STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
SELECTOR = re.compile(r"\b([a-zA-Z_:][a-zA-Z0-9_:]*)\s*\{([^}]*)\}")
MATCHER = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"\s*,?')
GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)")
GRAFANA_VARIABLE = re.compile(r"\$(?:\{(\w+)[^}]*\}|(\w+))")


def grafana_to_promql(expr):
    """A dashboard query with Grafana's variables replaced by values PromQL accepts."""
    def value(m):
        name = m.group(1) or m.group(2)
        return "5m" if name.startswith("__") else ".*"
    return GRAFANA_VARIABLE.sub(value, expr)


def promtool_parse(exprs):
    """promtool check rules on one recording rule per expression: promtool has no parser
    command, and this makes it parse each as PromQL. Returns the CompletedProcess."""
    rules = [{"record": f"query:{i}", "expr": e} for i, e in enumerate(exprs)]
    with tempfile.TemporaryDirectory(prefix="ckptwatch-promql-") as d:
        path = os.path.join(d, "queries.yml")
        with open(path, "w") as f:
            yaml.safe_dump({"groups": [{"name": "queries", "rules": rules}]}, f)
        return run_promtool("check", "rules", path)


def query_problems(expr):
    """What is wrong with the names in `expr`: unknown ckptwatch_* series, labels a series does
    not have, enum values that do not exist, grouping labels no referenced series has.
    Returns (problems, the series it references, the labels those series have)."""
    problems = []
    bare = STRING.sub('""', expr)  # a label value is not a name
    referenced = ["up"] if re.search(r"\bup\b(?!\s*\()", bare) else []
    for token in NAME.findall(bare):
        if not token.startswith("ckptwatch_"):
            continue
        if token in SERIES:
            referenced.append(token)
        elif token in METRICS:
            problems.append(f"{token} is a histogram: query its _bucket, _sum or _count")
        else:
            problems.append(f"unknown series {token}")
    for name, body in SELECTOR.findall(expr):
        if name not in SERIES:
            continue
        pos = 0
        while pos < len(body):
            m = MATCHER.match(body, pos)
            if not m:
                problems.append(f"cannot parse the matchers of {name}{{{body}}}")
                break
            pos = m.end()
            label, op, value = m.groups()
            if label == "__name__":
                continue
            if label not in SERIES[name]:
                problems.append(f"{name} has no label {label}")
            elif label in ENUMS and "$" not in value:
                # A regex is checked when it is a plain alternation of values.
                values = value.split("|") if op in ("=~", "!~") else [value]
                for v in values:
                    if re.fullmatch(r"[a-z0-9_]+", v) and v not in ENUMS[label]:
                        problems.append(f"{name}: {label} is never {v!r}")
    known_labels = set().union(*(SERIES[n] for n in referenced)) if referenced else set()
    for group in GROUPING.findall(bare):
        for label in (s.strip() for s in group.split(",")):
            if label and label not in known_labels:
                problems.append(f"grouping by {label}, which none of {sorted(set(referenced))} has")
    return problems, set(referenced), known_labels


class QueryCheckerTest(unittest.TestCase):
    """The checker the rule, dashboard and docs tests rely on finds what it should."""

    def test_accepts_known_series_labels_and_values(self):
        problems, referenced, labels = query_problems(
            'sum by (le, level) (rate(ckptwatch_verify_duration_seconds_bucket{level="full"}[5m]))'
            ' and on () up{job="ckptwatch"}')
        self.assertEqual(problems, [])
        self.assertEqual(referenced, {"ckptwatch_verify_duration_seconds_bucket", "up"})
        self.assertIn("le", labels)
        self.assertEqual(query_problems('ckptwatch_save_failures_total{cause=~"not_checkpoint|disk_full"}')[0], [])

    def test_flags_unknown_names_labels_and_values(self):
        for expr, problem in [
                ("ckptwatch_save_failure_total", "unknown series ckptwatch_save_failure_total"),
                ("rate(ckptwatch_verify_duration_seconds[5m])", "is a histogram"),
                ('ckptwatch_verify_duration_seconds_count{run="a"}', "has no label run"),
                ('ckptwatch_watch_problem{problem="low_disk"}', "problem is never 'low_disk'"),
                ('ckptwatch_save_failures_total{cause=~"disk_full|enospc"}', "never 'enospc'"),
                ("sum by (wach) (ckptwatch_last_checkpoint_ok)", "grouping by wach"),
                ('ckptwatch_build_info{job="ckptwatch_fake"} > 0', None)]:
            with self.subTest(expr=expr):
                problems = query_problems(expr)[0]
                if problem is None:
                    self.assertEqual(problems, [], "a label value is not a series name")
                else:
                    self.assertTrue(any(problem in p for p in problems), problems)


class RuleFileTest(unittest.TestCase):
    def setUp(self):
        self.rules = load_yaml(RULES)
        self.alerts = alert_rules(self.rules)

    def test_promtool_check_rules_accepts_the_rule_file(self):
        result = run_promtool("check", "rules", RULES)
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
        self.assertIn(f"SUCCESS: {len(self.alerts)} rules found", result.stdout)

    def test_promtool_unit_tests_pass(self):
        result = run_promtool("test", "rules", RULE_TESTS)
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
        self.assertIn("SUCCESS", result.stdout)

    def test_alerts_are_in_group_ckptwatch_with_unique_names(self):
        self.assertEqual([g["name"] for g in self.rules["groups"]], ["ckptwatch"])
        names = [a["alert"] for a in self.alerts]
        self.assertEqual(len(names), len(set(names)), names)
        for required in ("CheckpointSaveFailed", "CheckpointStale", "CheckpointDirMissing",
                         "CheckpointDirNotWritable", "CheckpointDiskLow", "CheckpointUnreadable",
                         "CkptwatchDown"):
            self.assertIn(required, names)

    def test_every_alert_has_a_severity_and_says_where_and_what_to_do(self):
        for alert in self.alerts:
            with self.subTest(alert=alert["alert"]):
                self.assertIn(alert.get("labels", {}).get("severity"), SEVERITIES)
                annotations = alert.get("annotations", {})
                self.assertTrue(annotations.get("summary"), "no summary")
                self.assertTrue(annotations.get("description"), "no description")
                text = annotations["summary"] + annotations["description"]
                if "absent(" not in alert["expr"]:
                    self.assertIn("$labels.instance", text)
                if "watch" in query_problems(alert["expr"])[2]:
                    self.assertIn("$labels.watch", text)

    def test_a_broken_checkpoint_alerts_at_once_with_its_cause(self):
        alert = next(a for a in self.alerts if a["alert"] == "CheckpointSaveFailed")
        self.assertIn(alert.get("for", "0m"), ("0m", "0s", 0))
        self.assertIn("ckptwatch_save_failures_total", alert["expr"])
        self.assertIn("$labels.cause", alert["annotations"]["summary"])
        for cause in CAUSES:
            self.assertIn(f'"{cause}"', alert["annotations"]["description"],
                          f"no advice for cause {cause}")

    def test_rule_queries_name_only_exported_metrics_and_labels(self):
        for alert in self.alerts:
            with self.subTest(alert=alert["alert"]):
                problems, referenced, _ = query_problems(alert["expr"])
                self.assertEqual(problems, [])
                self.assertTrue(referenced, "the expression names no ckptwatch series")
                for key, text in alert.get("annotations", {}).items():
                    # Queries in templates: printf "QUERY" ... | query
                    for q in re.findall(r'printf\s+"((?:[^"\\]|\\.)*)"', text):
                        q = q.replace('\\"', '"').replace("%q", '"x"')
                        self.assertEqual(query_problems(q)[0], [], f"{key}: {q}")

    def test_every_alert_is_tested_firing_and_not_firing(self):
        tests = load_yaml(RULE_TESTS)
        fires, quiet = set(), set()
        for group in tests["tests"]:
            for case in group.get("alert_rule_test", []):
                (fires if case.get("exp_alerts") else quiet).add(case["alertname"])
        for alert in self.alerts:
            with self.subTest(alert=alert["alert"]):
                self.assertIn(alert["alert"], fires, "no test where it fires")
                self.assertIn(alert["alert"], quiet, "no test where it stays quiet")

    def run_tests_on(self, rules_doc):
        """promtool test rules with RULE_TESTS pointed at a modified copy of the rules."""
        with tempfile.TemporaryDirectory(prefix="ckptwatch-rules-") as d:
            rules_path = os.path.join(d, "rules.yml")
            with open(rules_path, "w") as f:
                yaml.safe_dump(rules_doc, f, sort_keys=False)
            tests = load_yaml(RULE_TESTS)
            tests["rule_files"] = [rules_path]
            tests_path = os.path.join(d, "tests.yml")
            with open(tests_path, "w") as f:
                yaml.safe_dump(tests, f, sort_keys=False)
            return run_promtool("test", "rules", tests_path)

    def test_the_unit_tests_pass_on_an_unmodified_copy(self):
        # Guards the mutation tests below: their copies must differ only by the mutation.
        result = self.run_tests_on(self.rules)
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)

    def test_the_unit_tests_fail_when_an_alert_never_fires(self):
        for i, alert in enumerate(self.alerts):
            with self.subTest(alert=alert["alert"]):
                mutant = copy.deepcopy(self.rules)
                alert_rules(mutant)[i]["expr"] = "vector(1) == 0"
                result = self.run_tests_on(mutant)
                self.assertNotEqual(result.returncode, 0, "the tests pass without this alert")
                self.assertIn(f"alertname: {alert['alert']}", result.stdout + result.stderr)

    def test_the_unit_tests_fail_when_an_alert_loses_its_for(self):
        for i, alert in enumerate(self.alerts):
            if str(alert.get("for", "0m")) in ("0m", "0s", "0"):
                continue
            with self.subTest(alert=alert["alert"]):
                mutant = copy.deepcopy(self.rules)
                alert_rules(mutant)[i]["for"] = "0m"
                result = self.run_tests_on(mutant)
                self.assertNotEqual(result.returncode, 0,
                                    f"the tests pass without its for: {alert['for']}")


class DashboardTest(unittest.TestCase):
    def setUp(self):
        self.dashboard = json.loads(read(DASHBOARD))
        self.panels = list(self.all_panels(self.dashboard["panels"]))

    @staticmethod
    def all_panels(panels):
        for p in panels:
            yield p
            yield from DashboardTest.all_panels(p.get("panels", []))

    def queries(self):
        for p in self.panels:
            for t in p.get("targets", []):
                yield p, t

    def test_dashboard_has_a_datasource_and_watch_variables(self):
        self.assertGreaterEqual(self.dashboard["schemaVersion"], 36)
        self.assertTrue(self.dashboard["uid"])
        variables = {v["name"]: v for v in self.dashboard["templating"]["list"]}
        self.assertEqual(variables["datasource"]["type"], "datasource")
        self.assertEqual(variables["datasource"]["query"], "prometheus")
        self.assertIn("label_values(ckptwatch_watch_info", variables["watch"]["query"])
        self.assertTrue(variables["watch"]["query"].rstrip().endswith("watch)"))
        for p, t in self.queries():
            with self.subTest(panel=p["title"], ref=t["refId"]):
                self.assertEqual(t["datasource"]["uid"], "${datasource}")

    def test_panel_ids_are_unique_and_panels_do_not_overlap(self):
        ids = [p["id"] for p in self.panels]
        self.assertEqual(len(ids), len(set(ids)))
        cells = {}
        for p in self.panels:
            g = p["gridPos"]
            self.assertLessEqual(g["x"] + g["w"], 24, p["title"])
            for x in range(g["x"], g["x"] + g["w"]):
                for y in range(g["y"], g["y"] + g["h"]):
                    self.assertNotIn((x, y), cells, f"{p['title']} overlaps {cells.get((x, y))}")
                    cells[(x, y)] = p["title"]

    def test_dashboard_shows_what_the_issue_asks_for(self):
        exprs = " ".join(t["expr"] for _, t in self.queries())
        for needle in ("time() - ckptwatch_last_good_checkpoint_timestamp_seconds",
                       "increase(ckptwatch_save_failures_total",
                       "ckptwatch_filesystem_avail_bytes",
                       "1.5 * ckptwatch_last_good_checkpoint_bytes",
                       "histogram_quantile(0.5,", "histogram_quantile(0.99,",
                       "ckptwatch_verify_queue_length", "ckptwatch_checkpoints_verified_total",
                       "ckptwatch_watch_problem", "ckptwatch_build_info",
                       "ckptwatch_failing_files", "ckptwatch_checkpoint_load_incompatible",
                       "time() - ckptwatch_last_save_attempt_timestamp_seconds",
                       "sum by (le, watch) (rate(ckptwatch_verify_duration_seconds_bucket"):
            self.assertIn(needle, exprs)

    def test_panel_queries_name_only_exported_metrics_and_labels(self):
        for p, t in self.queries():
            with self.subTest(panel=p["title"], ref=t["refId"]):
                problems, referenced, labels = query_problems(t["expr"])
                self.assertEqual(problems, [])
                self.assertTrue(referenced)
                for label in re.findall(r"\{\{\s*(\w+)\s*\}\}", t.get("legendFormat", "")):
                    self.assertIn(label, labels, f"legend {t['legendFormat']!r}")
        for v in self.dashboard["templating"]["list"]:
            if v["type"] != "query":
                continue
            with self.subTest(variable=v["name"]):
                m = re.fullmatch(r"label_values\((.*),\s*(\w+)\)", v["query"].strip())
                self.assertIsNotNone(m, v["query"])
                problems, referenced, labels = query_problems(m.group(1))
                self.assertEqual(problems, [])
                self.assertIn(m.group(2), labels)

    def test_panel_queries_parse_as_promql(self):
        result = promtool_parse([grafana_to_promql(t["expr"]) for _, t in self.queries()])
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)


class DocsTest(unittest.TestCase):
    def test_metrics_table_matches_daemon_metrics_cc(self):
        declared = set(re.findall(r'\.Name\("([^"]+)"\)', read(METRICS_CC)))
        self.assertEqual(declared, set(METRICS),
                         "daemon/report/metrics.cc and METRICS here differ: update METRICS, "
                         "docs/metrics.md and the dashboard with the metric")

    def test_enum_labels_match_the_daemon(self):
        def strings_in(text, start):
            block = text[text.index(start):]
            return set(re.findall(r'"([a-z_0-9]+)"', block[:block.index("};")]))
        self.assertEqual(strings_in(read(METRICS_CC), "kCauses[]"), CAUSES)
        self.assertEqual(strings_in(read(CHECKPOINT_SET_H), "kSetLayouts[]"), SET_LAYOUTS)
        self.assertEqual(strings_in(read(METRICS_CC), "kSetVerdicts[]"), SET_VERDICTS)
        problem_names = read(WATCH_PROBLEM_CC)
        problem_names = problem_names[problem_names.index("WatchProblemName"):]
        problem_names = problem_names[:problem_names.index("\n}\n")]
        self.assertEqual(set(re.findall(r'return "([a-z_]+)";', problem_names)) - {"unknown"}, PROBLEMS)
        reasons = read(WATCH_PROBLEM_CC)
        reasons = reasons[reasons.index("ScanReasonName"):]
        self.assertLessEqual(ENUMS["reason"], set(re.findall(r'return "([a-z_]+)";', reasons)))
        verdict_cc = read(VERDICT_CC)
        self.assertEqual(set(re.findall(r'\{Verdict::k\w+, "([a-z_0-9]+)"\}', verdict_cc)), VERDICTS)
        self.assertEqual(set(re.findall(r'\{Level::k\w+, "([a-z_]+)"\}', verdict_cc)), LEVELS)

    def test_metrics_doc_covers_every_metric(self):
        doc = read(METRICS_DOC)
        for name, (kind, labels) in METRICS.items():
            with self.subTest(metric=name):
                self.assertRegex(doc, rf"(?m)^### `{name}`", "no section")
                section = doc.split(f"### `{name}`", 1)[1].split("\n### ", 1)[0]
                self.assertIn(kind, section)
                for label in labels:
                    self.assertIn(f"`{label}`", section)
        self.assertIn("19842", doc)
        # And the other way: no section for a metric the daemon does not declare, and each
        # section's first line (type; labels) names no label the metric does not have.
        for name, first in re.findall(r"(?m)^### `(ckptwatch_\w+)`\n\n(.*)$", doc):
            with self.subTest(section=name):
                self.assertIn(name, METRICS, "documented but not declared in daemon/report/metrics.cc")
                kind, labels = METRICS[name]
                self.assertTrue(first.startswith(kind), first)
                named = set(re.findall(r"`(\w+)`", first.split(";", 1)[1])) if ";" in first else set()
                self.assertLessEqual(named & LABEL_NAMES, labels, first)

    def test_scrape_config_in_the_metrics_doc_is_valid(self):
        blocks = re.findall(r"```yaml\n(.*?)```", read(METRICS_DOC), re.S)
        configs = [b for b in blocks if "scrape_configs:" in b]
        self.assertTrue(configs, "no scrape config in docs/metrics.md")
        with tempfile.TemporaryDirectory(prefix="ckptwatch-doc-") as d:
            for i, block in enumerate(configs):
                path = os.path.join(d, f"prometheus{i}.yml")
                with open(path, "w") as f:
                    f.write(block)
                result = run_promtool("check", "config", path)
                self.assertEqual(result.returncode, 0, block + result.stdout + result.stderr)

    def test_promql_examples_in_the_docs_are_valid(self):
        for doc in (METRICS_DOC, ALERTS_DOC):
            blocks = re.findall(r"```promql\n(.*?)```", read(doc), re.S)
            self.assertTrue(blocks, doc)
            queries = ["\n".join(line for line in b.splitlines() if not line.startswith("#"))
                       for b in blocks]
            for q in queries:
                with self.subTest(doc=os.path.basename(doc), query=q):
                    self.assertEqual(query_problems(q)[0], [])
            result = promtool_parse(queries)
            self.assertEqual(result.returncode, 0, doc + result.stdout + result.stderr)

    def test_alerts_doc_covers_every_alert(self):
        doc = read(ALERTS_DOC)
        for alert in alert_rules(load_yaml(RULES)):
            with self.subTest(alert=alert["alert"]):
                self.assertRegex(doc, rf"(?m)^### {alert['alert']}$", "no section")
                section = doc.split(f"### {alert['alert']}\n", 1)[1].split("\n### ", 1)[0]
                self.assertIn(alert["labels"]["severity"], section)
                # The documented expression is the rule's, whitespace aside.
                squash = lambda s: re.sub(r"\s+", "", s)  # noqa: E731
                self.assertIn(squash(alert["expr"]), squash(section))


class ExpositionTest(unittest.TestCase):
    """The real daemon's /metrics against METRICS, and promtool's lint of it."""

    def setUp(self):
        bin_path = os.environ.get("CKPTWATCH_BIN")
        if bin_path is None:
            bin_path = os.path.join(ROOT, "build", "ckptwatch")
            if not os.access(bin_path, os.X_OK):
                evidence.skip(f"no daemon at {bin_path}: build it or set CKPTWATCH_BIN")
        elif not os.access(bin_path, os.X_OK):
            self.fail(f"CKPTWATCH_BIN={bin_path} is not an executable")

    @staticmethod
    def close_pipes(d):
        if d.proc:
            d.proc.stdout.close()
            d.proc.stderr.close()

    def test_daemon_serves_the_documented_metrics_and_labels(self):
        import daemon_harness  # h5py and the binary only for this test
        import writers

        workdir = tempfile.TemporaryDirectory(prefix="ckptwatch-metrics-")
        self.addCleanup(workdir.cleanup)
        ckpt = os.path.join(workdir.name, "ckpt")
        os.makedirs(ckpt)
        d = daemon_harness.Daemon(
            workdir.name, daemon_harness.yaml_watch("run42", ckpt, settle="100ms"))
        self.addCleanup(self.close_pipes, d)
        self.addCleanup(d.stop)
        d.start()
        good = os.path.join(ckpt, "epoch_001.h5")
        writers.write_full_model(good, writers.dense_stack())
        self.assertEqual(d.wait_verdict(good)["verdict"], "ok")
        # Cut short before it lands, as a killed copy leaves it (a truncate(2) after the close
        # would look like the next save under way, which the daemon waits out).
        broken = os.path.join(ckpt, "epoch_002.h5")
        staging = os.path.join(workdir.name, "epoch_002.h5")
        writers.write_full_model(staging, writers.dense_stack(seed=1))
        os.truncate(staging, os.path.getsize(staging) // 2)
        os.rename(staging, broken)
        d.wait_verdict(broken)
        text = d.scrape()

        lint = subprocess.run([promtool(), "check", "metrics"], input=text,
                              capture_output=True, text=True, timeout=60)
        self.assertEqual((lint.returncode, lint.stdout + lint.stderr), (0, ""))

        types = dict(re.findall(r"(?m)^# TYPE (ckptwatch_\w+) (\w+)$", text))
        seen = {}
        for line in text.splitlines():
            m = re.match(r"(ckptwatch_\w+)(?:\{(.*)\})? ", line)
            if m:
                labels = set(re.findall(r'(\w+)="', m.group(2) or ""))
                seen.setdefault(m.group(1), set()).update(labels)
        for family, kind in types.items():
            with self.subTest(metric=family):
                self.assertIn(family, METRICS, "served but not documented")
                self.assertEqual(kind, METRICS[family][0])
        for series, labels in seen.items():
            with self.subTest(series=series):
                self.assertIn(series, SERIES)
                self.assertEqual(labels | TARGET_LABELS | (SERIES[series] & OPTIONAL_LABELS),
                                 SERIES[series])
        # After a good and a broken checkpoint every per-watch series the alerts use is there.
        for name in ("ckptwatch_save_failures_total", "ckptwatch_watch_problem",
                     "ckptwatch_last_good_checkpoint_bytes", "ckptwatch_filesystem_avail_bytes",
                     "ckptwatch_last_checkpoint_ok", "ckptwatch_verify_duration_seconds_bucket",
                     "ckptwatch_config_last_reload_successful", "ckptwatch_watch_info",
                     "ckptwatch_failing_files", "ckptwatch_last_save_attempt_timestamp_seconds"):
            self.assertIn(name, seen)
        # Per watch: the duration histogram, and the newest attempt (the broken save) after the good one.
        counts = re.findall(r'(?m)^ckptwatch_verify_duration_seconds_count\{level="\w+",watch="run42"\} (\d+)$', text)
        self.assertEqual(sum(int(c) for c in counts), 2, text)
        attempt = d.metric("ckptwatch_last_save_attempt_timestamp_seconds", watch="run42")
        good = d.metric("ckptwatch_last_good_checkpoint_timestamp_seconds", watch="run42")
        self.assertGreaterEqual(attempt, good)
        self.assertLess(abs(attempt - time.time()), 120)
        self.assertRegex(text, r'ckptwatch_save_failures_total\{cause="truncated",watch="run42"\} 1\b')
        self.assertRegex(text, r'ckptwatch_failing_files\{cause="truncated",watch="run42"\} 1\b')


if __name__ == "__main__":
    unittest.main()
