"""A fork server for tests that start many Python processes needing torch: torch and h5py take
1-3 s to import on CI's machine (issue 23), once per process. The server imports them once; each
child it forks from that pristine, single-threaded process runs a snippet as a fresh
`python3 -c SNIPPET ARGS...` would, with its stderr in a file, and exits with the snippet's
status. A child is a process of its own: a test may kill it mid-write (SIGKILL by pid), or let it
fill a disk or run a loader under an address-space limit.

Requests and answers, one JSON line each:
    {"code": SNIPPET, "argv": [...], "stderr": FILE, "memory": BYTES or null}  ->  {"pid": PID}
    {"poll": PID}  ->  {"status": STATUS, or null while the child runs}
    {"wait": PID}  ->  {"status": STATUS} once it has ended
STATUS is os.waitstatus_to_exitcode()'s (-9: killed by SIGKILL). A child stays unreaped until it
is polled done or waited for, so its pid is not reused while a test may still kill it.
"""

import json
import os
import select
import signal
import subprocess

PYTHON = "/usr/bin/python3"
HERE = os.path.dirname(os.path.abspath(__file__))

SERVER = r"""
import json, os, resource, signal, sys, traceback
sys.path.insert(0, sys.argv[1])  # tests/: the snippets import its modules (format_writers)
import h5py, torch  # noqa: F401  (imported once, here; never used in this process)
for line in sys.stdin:
    req = json.loads(line)
    if "code" in req:
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                signal.signal(signal.SIGPIPE, signal.SIG_DFL)
                if req.get("memory"):
                    resource.setrlimit(resource.RLIMIT_AS, (req["memory"], req["memory"]))
                fd = os.open(req["stderr"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
                os.dup2(fd, 2)
                os.close(fd)
                sys.argv = ["-c", *req["argv"]]
                exec(compile(req["code"], "<string>", "exec"), {"__name__": "__main__"})
                code = 0
            except SystemExit as e:
                code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
            except BaseException:
                traceback.print_exc()
            finally:
                sys.stderr.flush()
                os._exit(code)
        answer = {"pid": pid}
    else:
        pid = req.get("poll", req.get("wait"))
        done, status = os.waitpid(pid, os.WNOHANG if "poll" in req else 0)
        answer = {"status": os.waitstatus_to_exitcode(status) if done else None}
    print(json.dumps(answer), flush=True)
"""


class ForkServer:
    """The server above, started on first use (and again if it died); close() stops it and any
    child still running (its process group)."""

    def __init__(self):
        self.proc = None

    def start(self, code, argv, stderr_path, memory_bytes=None):
        """Forks a child running `code` with sys.argv[1:] = `argv`; returns its pid."""
        if self.proc is None or self.proc.poll() is not None:
            self.proc = subprocess.Popen([PYTHON, "-c", SERVER, HERE], stdin=subprocess.PIPE,
                                         stdout=subprocess.PIPE, text=True, bufsize=1,
                                         start_new_session=True)
        return self._ask({"code": code, "argv": [str(a) for a in argv], "stderr": stderr_path,
                          "memory": memory_bytes})["pid"]

    def poll(self, pid):
        """The child's exit status, or None while it runs."""
        return self._ask({"poll": pid})["status"]

    def wait(self, pid, timeout=None):
        """The child's exit status once it has ended. Past `timeout` seconds the server and its
        children are killed and subprocess.TimeoutExpired is raised."""
        return self._ask({"wait": pid}, timeout)["status"]

    def close(self):
        if self.proc is not None:
            if self.proc.poll() is None:
                os.killpg(self.proc.pid, signal.SIGKILL)  # the server and a child it waits for
            self.proc.wait()
            self.proc.stdin.close()
            self.proc.stdout.close()
            self.proc = None

    def _ask(self, request, timeout=None):
        self.proc.stdin.write(json.dumps(request) + "\n")
        self.proc.stdin.flush()
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        line = self.proc.stdout.readline() if ready else ""
        if not line:
            self.close()
            if not ready:
                raise subprocess.TimeoutExpired(request, timeout)
            raise RuntimeError("the fork server died")
        return json.loads(line)
