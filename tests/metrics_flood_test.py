"""The real daemon's /metrics answers while an attacker holds connections open.

Loopback connections are open to every local user. 100 idle connections and a slowloris
(one byte per second, never a complete request) must not delay a scrape past 2 s, and the
slow clients must be cut off at the request deadline (docs/metrics.md, "Limits").
"""

import os
import socket
import sys
import tempfile
import threading
import time
import unittest
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from daemon_harness import Daemon, yaml_watch  # noqa: E402

REQUEST_TIMEOUT = 3.0  # MetricsServerLimits::request_timeout


class MetricsFloodTest(unittest.TestCase):
    def setUp(self):
        tmp = tempfile.TemporaryDirectory(prefix="ckptwatch-e2e-")
        self.addCleanup(tmp.cleanup)
        ckpt = os.path.join(tmp.name, "ckpt")
        os.mkdir(ckpt)
        self.d = Daemon(tmp.name, yaml_watch("run", ckpt))
        self.addCleanup(self.d.stop)
        self.d.start()
        self.sockets = []
        self.addCleanup(lambda: [s.close() for s in self.sockets])

    def connect(self):
        s = socket.create_connection(("127.0.0.1", self.d.port), timeout=5)
        self.sockets.append(s)
        return s

    def timed_scrape(self):
        start = time.monotonic()
        url = f"http://127.0.0.1:{self.d.port}/metrics"
        with urllib.request.urlopen(url, timeout=5) as r:
            body = r.read().decode()
        self.assertIn("ckptwatch_build_info", body)
        return time.monotonic() - start

    def test_scrape_succeeds_within_2s_while_100_idle_connections_are_held(self):
        for _ in range(100):
            self.connect()
        elapsed = self.timed_scrape()
        print(f"\nscrape with 100 idle connections held: {elapsed * 1000:.1f} ms", file=sys.stderr)
        self.assertLess(elapsed, 2.0)

    def test_slowloris_is_cut_off_and_scrapes_keep_working(self):
        stop = threading.Event()
        closed_after = []

        def dribble(s):
            start = time.monotonic()
            for b in b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 100:
                if stop.is_set():
                    return
                try:
                    s.send(bytes([b]))
                    s.settimeout(1.0)
                    if s.recv(1) == b"":
                        closed_after.append(time.monotonic() - start)
                        return
                except socket.timeout:
                    continue
                except OSError:
                    closed_after.append(time.monotonic() - start)
                    return

        # Idle ones first: at the connection bound the oldest is evicted, and the dribblers
        # must meet their deadline, not eviction.
        for _ in range(100):
            self.connect()
        threads = [threading.Thread(target=dribble, args=(self.connect(),)) for _ in range(20)]
        for t in threads:
            t.start()
        try:
            worst = max(self.timed_scrape() for _ in range(5))
            print(f"\nslowest of 5 scrapes during slowloris: {worst * 1000:.1f} ms",
                  file=sys.stderr)
            self.assertLess(worst, 2.0)
            for t in threads:
                t.join(timeout=REQUEST_TIMEOUT + 5)
        finally:
            stop.set()
        self.assertEqual(len(closed_after), 20, closed_after)
        print(f"slowloris connections closed after {min(closed_after):.2f}-"
              f"{max(closed_after):.2f} s", file=sys.stderr)
        self.assertGreater(min(closed_after), REQUEST_TIMEOUT - 0.5, closed_after)
        self.assertLess(max(closed_after), REQUEST_TIMEOUT + 2, closed_after)


if __name__ == "__main__":
    unittest.main()
