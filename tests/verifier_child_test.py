"""End-to-end security tests of the verifier child and zygote: each confined to its one file
(descriptors, /proc, ptrace, memory, output), as a second unprivileged user sees them.

Split from security_test.py (same users and confined daemon: security_harness.py). Needs root.
`cd tests && /usr/bin/python3 run_e2e.py verifier_child_test`.
"""

import os
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from security_harness import *  # noqa: E402,F401,F403  (the users, helpers and SecurityTestCase)


def setUpModule():
    use_users(globals())  # noqa: F405



@unittest.skipUnless(ROOT, "needs root")
class VerifierChildTest(SecurityTestCase):
    """The verifier child parses hostile files with libhdf5: it must hold nothing worth
    stealing — no capability, no way to gain one, a syscall filter, no stray descriptors, none
    of the parent's environment."""

    def run_child_blocked(self, checkpoint, inspect):
        """Starts `ckptwatch __verify-child` as the daemon's user with CAP_DAC_READ_SEARCH, the
        checkpoint on fd 3 and a full stdout pipe; calls inspect(pid) while it is blocked in
        its final write, then drains it and returns its JSON line."""
        fd = os.open(checkpoint, os.O_RDONLY | os.O_CLOEXEC)
        if fd <= 3:  # dup2(3, 3) would leave it close-on-exec
            fd, low = os.dup(fd), fd
            os.close(low)
        r, w = fill_pipe()
        stderr = os.path.join(self.base, "child.stderr")
        size = os.path.getsize(checkpoint)
        with open(stderr, "wb") as err:
            child = subprocess.Popen(
                [*as_daemon_user(), BIN, "__verify-child", "--level", "full",
                 "--full-max-bytes", str(8 << 30), "--memory-budget", str(1 << 30),
                 "--timeout", "60", "--memory-bytes", str(2 << 30), "--", checkpoint],
                stdin=subprocess.DEVNULL, stdout=w, stderr=err, close_fds=False,
                preexec_fn=lambda: os.dup2(fd, 3), env=dict(os.environ,
                                                           CKPTWATCH_SENTINEL="secret"))
        os.close(w)
        os.close(fd)
        self.addCleanup(lambda: child.poll() is None and (child.kill(), child.wait()))
        end = time.monotonic() + DEADLINE
        while True:
            if blocked_writing_stdout(child.pid):
                break
            if child.poll() is not None:
                os.close(r)
                with open(stderr) as f:
                    self.fail(f"child exited {child.returncode} before its final write "
                              f"({size} bytes): {f.read()}")
            self.assertLess(time.monotonic(), end, "child never blocked in its final write")
            time.sleep(0.005)
        try:
            inspect(child.pid)
        finally:
            out = b""
            while True:
                chunk = os.read(r, 1 << 16)
                if not chunk:
                    break
                out += chunk
            os.close(r)
            child.wait(timeout=DEADLINE)
        return json.loads(out.replace(b"\0", b"").decode().splitlines()[-1])

    def test_verifier_child_runs_without_capabilities_under_seccomp(self):
        """Attacks the child's privileges: a libhdf5 exploit in it must not inherit the parent's
        CAP_DAC_READ_SEARCH, gain privileges (NoNewPrivs), make arbitrary syscalls (Seccomp 2)
        or reach descriptors other than 0-3."""
        ckpt = os.path.join(self.watch, "model.h5")
        adversary(writers.write_full_model, ckpt)
        seen = {}

        def inspect(pid):
            seen["status"] = proc_status(pid)
            seen["fds"] = sorted(int(n) for n in os.listdir(f"/proc/{pid}/fd"))

        result = self.run_child_blocked(ckpt, inspect)
        status = seen["status"]
        actual = {key: status.get(key, "absent").strip()
                  for key in ("CapEff", "CapPrm", "CapAmb", "NoNewPrivs", "Seccomp")}
        actual["fds"] = seen["fds"]
        actual["verdict"] = result["verdict"]
        # A sanitizer build (bench/asan-tests.sh, which sets ASAN_OPTIONS) installs no syscall
        # filter in the child: the sanitizer runtime opens its log and starts a symbolizer when it
        # reports (docs/security.md). Every release-build run checks the filter.
        seccomp = "0" if "ASAN_OPTIONS" in os.environ else "2"
        self.assertEqual(actual, {"CapEff": "0" * 16, "CapPrm": "0" * 16, "CapAmb": "0" * 16,
                                  "NoNewPrivs": "1", "Seccomp": seccomp, "fds": [0, 1, 2, 3],
                                  "verdict": "ok"})

    def spawned_child_environments(self, argv, env):
        """Every execve of a verifier (`__verify-warm`, `__verify-child`) under argv (traced with
        strace -f), as env lists."""
        trace = os.path.join(self.base, "strace.out")
        subprocess.run(["strace", "-f", "-qq", "-v", "-s", "4096", "-e", "trace=execve,execveat",
                        "-o", trace, *argv], env=env, capture_output=True, timeout=60)
        with open(trace) as f:
            return [line for line in f if ("__verify-child" in line or "__verify-warm" in line)
                    and "execve" in line]

    def test_cli_verifier_child_gets_none_of_the_parents_environment(self):
        """Attacks the child's environment: a secret in the environment of `ckptwatch verify`
        (a cloud key, a token) must not be handed to the process that parses hostile files."""
        ckpt = os.path.join(self.watch, "model.h5")
        adversary(writers.write_full_model, ckpt)
        env = dict(os.environ, CKPTWATCH_SENTINEL="secret")
        execs = self.spawned_child_environments(
            [*as_daemon_user(), BIN, "verify", "--level", "full", ckpt], env)
        self.assertTrue(execs, "no __verify-warm (or __verify-child) execve traced")
        for line in execs:
            self.assertNotIn("CKPTWATCH_SENTINEL", line)

    def test_daemon_verifier_child_gets_none_of_the_parents_environment(self):
        """Attacks the child's environment as the daemon builds it: the daemon's children are
        caught alive while they read a large file."""
        big = os.path.join(self.watch, "big.h5")
        adversary(writers.write_sized_model, big + ".tmp", 96 << 20)
        self.start_daemons(yaml_watch("adv", self.watch, level="full", settle="100ms"),
                           formats=("json",), env={"CKPTWATCH_SENTINEL": "secret"})
        d = self.daemons[0]
        self.barrier()
        os.rename(big + ".tmp", big)
        environ = wait_for_child_environ(d.proc.pid)
        self.assertNotIn(b"CKPTWATCH_SENTINEL", environ)
        d.wait_verdict(big)

    def test_daemon_verifier_child_is_confined_before_it_reads_a_byte(self):
        """Attacks the pre-forked verifier: a warm verifier the daemon's zygote forks for an
        owner must hold what a spawned `__verify-child` holds — no capability, NoNewPrivs, the
        syscall filter, descriptors 0-3 — and its channel (4), from before its first read
        (sampled with /proc/PID/io: every sample that has read bytes must show all of it); after
        the verdict it holds no descriptor of the file (only /dev/null and its channel). The
        zygote itself holds no capability and no descriptor but its socket, its signalfd and its
        sealed warm-up file."""
        big = os.path.join(self.watch, "big.h5")
        adversary(writers.write_sized_model, big + ".tmp", 96 << 20)
        [d] = self.start_daemons(yaml_watch("adv", self.watch, level="full", settle="100ms"),
                                 formats=("json",))
        self.barrier()
        zygotes = [p for p in verifier_zygotes(d.proc.pid)]
        self.assertEqual(len(zygotes), 1, "one zygote per daemon")
        zygote = proc_status(zygotes[0])
        self.assertEqual({k: zygote[k].strip() for k in ("CapEff", "CapPrm", "CapAmb", "NoNewPrivs")},
                         {"CapEff": "0" * 16, "CapPrm": "0" * 16, "CapAmb": "0" * 16,
                          "NoNewPrivs": "1"})
        fd_dir = f"/proc/{zygotes[0]}/fd"
        held = held_fds(zygotes[0])
        # stdio, its socket, its SIGCHLDs, and its own warm-up file (warm_up.h).
        self.assertEqual(sorted(held), [0, 1, 2, 3, 4, 16], held)
        self.assertTrue(held[3].startswith("socket:"), held)
        self.assertEqual(held[4], "anon_inode:[signalfd]", held)
        self.assertTrue(held[16].startswith("/memfd:ckptwatch-warm-up"), held)
        with open(os.path.join(fd_dir, "16"), "r+b", buffering=0) as warm_up:  # sealed: read-only
            self.assertEqual(warm_up.read(8), b"\x89HDF\r\n\x1a\n")
            with self.assertRaises(PermissionError):
                warm_up.write(b"forged")
        os.rename(big + ".tmp", big)
        samples = []
        end = time.monotonic() + DEADLINE
        # Until a verifier is caught with a file (descriptor 3): the warm verifier that gave the
        # barrier its verdict is sampled too, idle, and must show the same confinement.
        while not any(3 in fds for _, fds in samples) and time.monotonic() < end:
            for child in verifier_children(d.proc.pid):
                while True:
                    try:
                        with open(f"/proc/{child}/io") as f:
                            read = int(dict(l.split(": ") for l in f.read().splitlines())["rchar"])
                        status = proc_status(child)
                        fds = {int(n): fd_target(child, n)
                               for n in os.listdir(f"/proc/{child}/fd")}
                        fds = {n: t for n, t in fds.items() if t}
                    except (OSError, KeyError, ValueError):
                        break  # gone
                    if status.get("State", "").startswith(("Z", "X")):
                        break
                    if any(t.startswith("/memfd:ckptwatch-warm-up") for t in fds.values()):
                        # A new verifier verifying our own file before it confines itself
                        # (warm_up.h); a user's file can reach it only after (its channel). Just
                        # forked, it still holds the zygote's descriptors (its socket at 3),
                        # which confinement closes: none of them is a watched file.
                        self.assertFalse([t for t in fds.values()
                                          if t.startswith(os.path.realpath(self.watch) + "/")], fds)
                        break
                    if read > 0:
                        samples.append(({k: status.get(k, "absent").strip() for k in
                                         ("CapEff", "CapPrm", "CapAmb", "NoNewPrivs", "Seccomp")}, fds))
                    if 3 not in fds:
                        break  # between files (a warm verifier lives on): look again
            time.sleep(0.0005)
        self.assertTrue(samples, "no verifier child was caught reading")
        seccomp = "0" if "ASAN_OPTIONS" in os.environ else "2"
        # 0 /dev/null, 1-2 the job's pipes, 3 the file, 4 the channel to the daemon (a warm
        # verifier takes the next file of the same owner from it: docs/security.md).
        expected = ({"CapEff": "0" * 16, "CapPrm": "0" * 16, "CapAmb": "0" * 16, "NoNewPrivs": "1",
                     "Seccomp": seccomp}, [0, 1, 2, 3, 4])
        for status, fds in samples:
            self.assertEqual(status, expected[0])
            if "ASAN_OPTIONS" in os.environ:
                # LeakSanitizer's check at exit opens /proc/<pid>/task and /proc/<pid>/maps in
                # the child (CI caught one there: fds 4 and 5); that is the sanitizer runtime,
                # not a descriptor the verifier was handed.
                fds = {n: t for n, t in fds.items() if not t.startswith("/proc/")}
            # A child caught while exiting has closed some already; never holds another.
            self.assertLessEqual(set(fds), set(expected[1]), fds)
        self.assertIn(expected[1], [sorted(fds) for _, fds in samples])
        self.assertTrue(all(fds.get(4, "socket:").startswith("socket:") for _, fds in samples))
        self.assertEqual(d.wait_verdict(big)["verdict"], "ok")
        # The verdict is out: the warm verifier still lives, and holds nothing of the file:
        # /dev/null, its stdout and stderr (pipes to the daemon, kept for its next jobs:
        # WarmOutput::kKeep) and its channel.
        warm = int(d.wait_event(lambda e: e.get("event") == "verifier_used" and
                                e.get("path") == big)["verifier_pid"])
        held = held_fds(warm)
        self.assertEqual(sorted(held), [0, 1, 2, 4], held)
        self.assertEqual(held[0], "/dev/null", held)
        daemon_holds = set(held_fds(d.proc.pid).values())
        for n in (1, 2):
            self.assertTrue(held[n].startswith("pipe:"), held)
            self.assertIn(held[n], daemon_holds, f"fd {n} is a pipe to the daemon")
        self.assertNotEqual(held[1], held[2], held)
        self.assertTrue(held[4].startswith("socket:"), held)
        # The spares waiting beside it have seen no file: what they hold besides /dev/null and
        # their channel is the zygote's own stdout and stderr, which their first job replaces.
        zygote_fds = {n: fd_target(zygotes[0], n) for n in (1, 2)}
        end = time.monotonic() + DEADLINE
        while True:
            spares = {pid: held_fds(pid) for pid in verifier_children(d.proc.pid) if pid != warm}
            if all(16 not in fds for fds in spares.values()) or time.monotonic() > end:
                break  # (a spare forked for the one taken may still be warming up)
            time.sleep(0.01)
        self.assertTrue(spares, "no spare waits beside the file's verifier")
        for fds in spares.values():
            self.assertEqual(sorted(fds), [0, 1, 2, 4], spares)
            self.assertEqual((fds[0], fds[1], fds[2]), ("/dev/null", zygote_fds[1], zygote_fds[2]))
            self.assertTrue(fds[4].startswith("socket:"), spares)

    def test_zygote_and_children_are_closed_to_their_own_uid(self):
        """Attacks the verifier processes through /proc as the daemon's own uid (what an
        exploited child, or anything else running as that user, is): a child holds a checkpoint
        at descriptor 3 the uid itself perhaps may not read, the zygote the memory every child
        starts from. Both are undumpable, so /proc/<child>/fd/3 and /proc/<zygote>/mem are
        refused; the zygote runs under its own syscall filter (Seccomp: 2)."""
        big = os.path.join(self.watch, "big.h5")
        adversary(writers.write_sized_model, big + ".tmp", 96 << 20)
        [d] = self.start_daemons(yaml_watch("adv", self.watch, level="full", settle="100ms"),
                                 formats=("json",))
        self.barrier()
        [zygote] = verifier_zygotes(d.proc.pid)
        seccomp = "0" if "ASAN_OPTIONS" in os.environ else "2"
        self.assertEqual(proc_status(zygote)["Seccomp"].strip(), seccomp)
        self.assertEqual(as_user(DAEMON, try_proc, "open", f"/proc/{zygote}/mem"), "denied")
        self.assertEqual(as_user(DAEMON, try_proc, "open", f"/proc/{zygote}/environ"), "denied")
        # One process of the daemon's uid watches for a child and tries it at once (a fork per
        # try would miss children that live a fraction of a second).
        tried = {}
        probe = threading.Thread(target=lambda: tried.update(
            result=as_user(DAEMON, probe_verifier_children, d.proc.pid, DEADLINE)))
        probe.start()
        os.rename(big + ".tmp", big)
        probe.join()
        self.assertTrue(tried["result"], "no verifier child was caught alive")
        for child, fd3, listing in tried["result"]:
            self.assertEqual((fd3, listing), ("denied", "denied"), f"child {child}")
        self.assertEqual(d.wait_verdict(big)["verdict"], "ok")




if __name__ == "__main__":
    unittest.main()
