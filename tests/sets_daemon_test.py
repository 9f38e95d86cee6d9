"""End-to-end: the daemon judges checkpoint sets (docs/checkpoint-sets.md, "In the daemon").

Real writers at /usr/bin/python3: a Hugging Face Trainer checkpoint written into tmp-checkpoint-5
and renamed into place (safetensors by its spec, torch.save), a PyTorch Distributed Checkpoint by
torch 1.13's own FileSystemWriter whose coordinator never writes .metadata, and a DeepSpeed save
(torch.save per rank, then `latest`) whose ZeRO rank file is cut short. Waits are polls with a
deadline; every figure (seconds from the writer's end to the line) is printed and recorded.
Run: cd tests && /usr/bin/python3 run_e2e.py sets_daemon_test
"""

import os
import subprocess
import sys
import textwrap
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import format_writers  # noqa: E402
from daemon_harness import Daemon, tempdir, yaml_watch  # noqa: E402
from evidence import requires  # noqa: E402
from every_save_test import log_time  # noqa: E402
from figures import record  # noqa: E402

try:
    import torch  # noqa: F401
    HAVE_TORCH = True
except ImportError:
    HAVE_TORCH = False

PYTHON = "/usr/bin/python3"
CHECKPOINT_SETTLE = 3.0  # watches[].checkpoint_settle of these tests, seconds

# torch 1.13's own DCP writer. On Python 3.11 its import fails (TensorProperties, unhashable, is
# another dataclass's default); an identity hash works around it (../shared/corpus-sets). With
# `finish` replaced, every rank's .distcp is written and the coordinator's .metadata never is:
# the save of a job killed before its commit point.
DCP_WRITER = textwrap.dedent("""
    import dataclasses, sys
    real = dataclasses.dataclass
    def patched(*args, **kw):
        def wrap(cls):
            out = real(**kw)(cls)
            if cls.__name__ == "TensorProperties":
                out.__hash__ = lambda self: id(self)
            return out
        return wrap(args[0]) if args else wrap
    dataclasses.dataclass = patched
    import torch
    import torch.distributed._shard.checkpoint as dcp
    dataclasses.dataclass = real
    if sys.argv[2] == "killed":
        dcp.FileSystemWriter.finish = lambda self, metadata, results: None
    torch.manual_seed(9)
    state = {"w": torch.randn(256, 64), "b": torch.randn(64)}
    dcp.save_state_dict(state, dcp.FileSystemWriter(sys.argv[1]), no_dist=True)
""")


def checkpoint_events(d, path=None):
    return [e for e in d.events()
            if e.get("event") == "checkpoint" and (path is None or e.get("path") == path)]


@requires(HAVE_TORCH, "torch is not importable (use /usr/bin/python3)")
class DaemonSetsTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempdir(self)
        os.chmod(self.dir, 0o755)
        self.ckpt = os.path.join(self.dir, "ckpt")
        os.makedirs(self.ckpt)
        self.d = Daemon(self.dir, yaml_watch("run", self.ckpt, recursive=True, settle="300ms",
                                             checkpoint_settle=f"{CHECKPOINT_SETTLE:g}s"))
        self.addCleanup(self.d.stop)
        self.d.start()

    def wait_checkpoint(self, path, deadline=30, **fields):
        return self.d.wait_event(
            lambda e: e.get("event") == "checkpoint" and e.get("path") == path
            and all(e.get(k) == v for k, v in fields.items()),
            deadline, f"event=checkpoint for {path} {fields}")

    def wait_metric(self, name, value, deadline, **labels):
        end = time.monotonic() + deadline
        while time.monotonic() < end:
            if (self.d.metric(name, **labels) or 0) == value:
                return time.time()
            time.sleep(0.05)
        self.fail(f"{name}{labels} is not {value} within {deadline}s: {self.d.metric(name, **labels)}")

    def marker(self):
        """A file written after everything else, verified: what came before has been seen."""
        path = os.path.join(self.ckpt, "marker.safetensors")
        format_writers.write_safetensors(path, {"m": format_writers.array_tensor(
            __import__("numpy").ones(4, "<f4"))})
        self.d.wait_verdict(path)

    def test_a_hugging_face_staging_rename_is_one_complete_checkpoint_and_no_failed_save(self):
        import numpy as np
        staging = os.path.join(self.ckpt, "tmp-checkpoint-5")
        os.makedirs(staging)
        format_writers.write_safetensors(os.path.join(staging, "model.safetensors"),
                                         {"w": format_writers.array_tensor(np.ones((64, 64), "<f4"))})
        format_writers.save_torch(os.path.join(staging, "optimizer.pt"),
                                  format_writers.torch_state_dict(1 << 16))
        format_writers.save_torch(os.path.join(staging, "scheduler.pt"), {"last_epoch": 5})
        with open(os.path.join(staging, "trainer_state.json"), "w") as f:
            f.write('{"global_step": 5}')
        final = os.path.join(self.ckpt, "checkpoint-5")
        os.rename(staging, final)
        renamed = time.time()
        e = self.wait_checkpoint(final, verdict="ok")
        self.assertEqual((e["layout"], e["step"], e["level"]), ("hf_trainer", "5", "info"), e)
        took = log_time(e) - renamed
        print(f"\nhf staging rename: event=checkpoint verdict=ok {took:.2f}s after the rename",
              file=sys.stderr)
        record("sets_daemon", case="hf_staging_rename", judged=round(took, 2))
        self.marker()
        self.assertEqual(len(checkpoint_events(self.d)), 1, checkpoint_events(self.d))
        self.assertEqual([v for v in self.d.verdicts() if v["verdict"] != "ok"], [])
        self.assertNotIn("not_found", self.d.log_text())
        self.assertEqual([e for e in self.d.events() if e.get("level") == "error"], [])
        self.assertEqual(self.d.metric("ckptwatch_save_failures_total") or 0, 0)
        self.assertEqual(self.d.metric("ckptwatch_checkpoint_sets_total", watch="run",
                                       layout="hf_trainer", verdict="ok"), 1)
        self.assertGreater(self.d.metric("ckptwatch_last_complete_checkpoint_timestamp_seconds",
                                         watch="run") or 0, renamed - 1)

    def test_a_dcp_save_whose_metadata_never_comes_is_incomplete_within_checkpoint_settle(self):
        step = os.path.join(self.ckpt, "step_100")
        subprocess.run([PYTHON, "-c", DCP_WRITER, step, "killed"], check=True, timeout=120)
        self.assertNotIn(".metadata", os.listdir(step))
        self.assertTrue(any(n.endswith(".distcp") for n in os.listdir(step)), os.listdir(step))
        ended = max(os.stat(os.path.join(step, n)).st_mtime for n in os.listdir(step))
        e = self.wait_checkpoint(step, deadline=CHECKPOINT_SETTLE + 5, verdict="incomplete")
        took = log_time(e) - ended
        print(f"\nDCP without .metadata: incomplete {took:.2f}s after its last rank's last write "
              f"(checkpoint_settle {CHECKPOINT_SETTLE:g}s)", file=sys.stderr)
        record("sets_daemon", case="dcp_no_metadata", judged=round(took, 2))
        self.assertEqual((e["layout"], e["missing"], e["cause"], e["level"]),
                         ("dcp", ".metadata", "no_commit_point", "error"), e)
        self.assertLess(took, CHECKPOINT_SETTLE + 5)
        self.assertGreaterEqual(took, CHECKPOINT_SETTLE - 0.1, "judged before checkpoint_settle")
        self.wait_metric("ckptwatch_save_failures_total", 1, 5, watch="run", cause="no_commit_point")
        self.wait_metric("ckptwatch_checkpoint_sets_total", 1, 5, watch="run", layout="dcp",
                         verdict="incomplete")
        # The same writer allowed to finish: its .metadata is the commit point, judged at once.
        whole = os.path.join(self.ckpt, "step_200")
        subprocess.run([PYTHON, "-c", DCP_WRITER, whole, "whole"], check=True, timeout=120)
        e = self.wait_checkpoint(whole, deadline=CHECKPOINT_SETTLE, verdict="ok")
        took = log_time(e) - os.stat(os.path.join(whole, ".metadata")).st_mtime
        print(f"DCP with .metadata: ok {took:.2f}s after its commit point was written",
              file=sys.stderr)
        record("sets_daemon", case="dcp_committed", judged=round(took, 2))
        self.assertLess(took, CHECKPOINT_SETTLE, "judged at its commit point, not after a settle")

    def test_deepspeed_latest_naming_a_save_with_a_rank_cut_short_raises_the_pointer_alarm(self):
        def save(step, cut_rank=None):
            tag = os.path.join(self.ckpt, f"global_step{step}")
            os.mkdir(tag)
            torch.manual_seed(step)
            torch.save({"module": {"w": torch.randn(64, 64)}, "dp_world_size": 2,
                        "mp_world_size": 1, "global_steps": step},
                       os.path.join(tag, "mp_rank_00_model_states.pt"))
            for rank in range(2):
                path = os.path.join(tag, f"zero_pp_rank_{rank}_mp_rank_00_optim_states.pt")
                torch.save({"optimizer_state_dict": {"fp32": torch.randn(4096)}}, path)
                if rank == cut_rank:  # the rank's process died mid-write: its file ends early
                    with open(path, "r+b") as f:
                        f.truncate(os.path.getsize(path) // 2)
            with open(os.path.join(self.ckpt, "latest"), "w") as f:  # rank 0, after a barrier
                f.write(f"global_step{step}")
            return tag

        good = save(10)
        self.wait_checkpoint(good, verdict="ok")
        self.assertEqual(self.d.metric("ckptwatch_resume_pointers_broken", watch="run"), 0)
        broken = save(20, cut_rank=1)
        latest = os.path.join(self.ckpt, "latest")
        ended = os.stat(latest).st_mtime
        e = self.d.wait_event(
            lambda e: e.get("event") == "checkpoint" and e.get("pointer") == "deepspeed_latest"
            and e.get("verdict") != "ok", CHECKPOINT_SETTLE + 10, "the pointer alarm")
        took = log_time(e) - ended
        print(f"\nDeepSpeed latest naming a save with a rank cut short: pointer alarm {took:.2f}s "
              f"after latest was written", file=sys.stderr)
        record("sets_daemon", case="deepspeed_pointer", judged=round(took, 2))
        self.assertEqual((e["path"], e["names"], e["verdict"], e["last_complete"], e["level"]),
                         (latest, broken, "incomplete", good, "warn"), e)
        self.assertIn("zero_pp_rank_1_mp_rank_00_optim_states.pt", e["msg"])
        self.assertIn("resume will load a partial checkpoint or fail", e["msg"])
        self.wait_metric("ckptwatch_resume_pointers_broken", 1, 5, watch="run")
        # The operator points the resume back at the complete save: the alarm clears.
        with open(latest, "w") as f:
            f.write("global_step10")
        self.wait_metric("ckptwatch_resume_pointers_broken", 0, CHECKPOINT_SETTLE + 5, watch="run")


if __name__ == "__main__":
    unittest.main()
