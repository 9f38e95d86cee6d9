"""Loading a file as a user's script would, in a child process: the loaders' fork server of
formats_test.py (torch.load, h5py), so that each load starts from a pristine process that has
already imported torch and h5py."""

import json
import os
import select
import signal
import subprocess

PYTHON = "/usr/bin/python3"

# The loaders' fork server: imports torch and h5py once, then forks a child per load that gets
# 4 GiB of address space, runs the loader on sys.argv[1] with its stderr in a file, and exits 1
# with the traceback there when it raises. Each child starts from the same pristine process, as
# a fresh `python3 -c` would, without importing torch again: 1-3 s per load on CI's machine, ~20
# loads (CI, issue 23). The server answers each request line with the child's exit status.
LOADER_SERVER = r"""
import json, os, resource, sys, traceback
import h5py, torch  # noqa: F401
for line in sys.stdin:
    req = json.loads(line)
    pid = os.fork()
    if pid == 0:
        try:
            resource.setrlimit(resource.RLIMIT_AS, (4 << 30, 4 << 30))
            fd = os.open(req["stderr"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            os.dup2(fd, 2)
            sys.argv = ["-c", req["path"]]
            exec(compile(req["code"], "<string>", "exec"), {"__name__": "__main__"})
            code = 0
        except BaseException:
            traceback.print_exc()
            code = 1
        sys.stderr.flush()
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    print(json.dumps(os.waitstatus_to_exitcode(status)), flush=True)
"""


class Loaders:
    """The fork server above, started on first use and stopped after the module."""

    TIMEOUT = 300  # seconds one load may take, as subprocess.run(timeout=300) allowed before

    def __init__(self):
        self.proc = None

    def run(self, code, path, stderr_path):
        if self.proc is None or self.proc.poll() is not None:
            self.proc = subprocess.Popen([PYTHON, "-c", LOADER_SERVER], stdin=subprocess.PIPE,
                                         stdout=subprocess.PIPE, text=True, bufsize=1,
                                         start_new_session=True)
        self.proc.stdin.write(json.dumps({"code": code, "path": path, "stderr": stderr_path}) + "\n")
        self.proc.stdin.flush()
        ready, _, _ = select.select([self.proc.stdout], [], [], self.TIMEOUT)
        line = self.proc.stdout.readline() if ready else ""
        if not line:
            self.close()
            raise subprocess.TimeoutExpired(code, self.TIMEOUT) if not ready else \
                RuntimeError("the loader fork server died")
        return json.loads(line)

    def close(self):
        if self.proc is not None:
            if self.proc.poll() is None:
                os.killpg(self.proc.pid, signal.SIGKILL)  # the server and a child it waits for
            self.proc.wait()
            self.proc.stdin.close()
            self.proc.stdout.close()
            self.proc = None


LOADERS = Loaders()


def loads_in_child(code, path):
    """(True, "") when `code` (a Python loader of sys.argv[1]) succeeds on `path`, else (False, its
    last error line). The child gets 4 GiB of address space, so a memory bomb fails with
    MemoryError on any host instead of exhausting it."""
    stderr_path = path + ".loader-stderr"
    returncode = LOADERS.run(code, os.path.abspath(path), os.path.abspath(stderr_path))
    try:  # absent when the child died before it opened it
        with open(stderr_path, errors="replace") as f:
            stderr = f.read()
        os.unlink(stderr_path)
    except FileNotFoundError:
        stderr = ""
    lines = [line for line in stderr.splitlines() if line.strip() and "Warning" not in line]
    return returncode == 0, (lines[-1] if lines and returncode else "")


TORCH_LOAD = "import sys, torch; torch.load(sys.argv[1])"
H5PY_OPEN = "import sys, h5py; f = h5py.File(sys.argv[1], 'r'); [f[k] for k in f]; f.close()"
