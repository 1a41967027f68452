#!/usr/bin/env python3
"""bench/console_exports_stress.py - many concurrent console exports against one gateway, to look for the
double free bench/README.md reports (the niced console pool, reverted). A diagnostic tool, not a test of
the suite: it runs for minutes and proves nothing when it passes.

Runs the real binary (JG_BIN: build it with -DJG_SANITIZE=ON to have AddressSanitizer name the fault)
through tests/integration's ConsoleEndpointsTest set-up (the test OP, staff roles, console.figures_refresh_s
1, so the figures' snapshot is swapped every second), seeds NCUST customers (6 of them with 3,000
ingested touchpoints each), then for DUR seconds runs clients in parallel (KINDS, comma separated):
  full  reads whole exports (touchpoints.csv, customers.csv), Connection: close
  cut   reads 0 B .. 300 KB of an export and leaves (half of them with a reset: SO_LINGER 0)
  slow  reads an export 2 KB at a time with a 4 KB receive buffer, then leaves within 3 s
  fig   figure endpoints (overview, funnel, paths, transitions), Connection: close
  ka    1-4 calls on one keep-alive connection with a random client timeout (0.05 s .. 20 s)
It fails when the gateway died or its stderr holds an AddressSanitizer report (printed).

  JG_BIN=build-asan/journeygate DUR=240 NCUST=200 python3 bench/console_exports_stress.py
"""
import http.client
import os
import random
import socket
import struct
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "integration"))
import test_console_endpoints as T  # noqa: E402

DURATION = float(os.environ.get("DUR", "90"))
NCUST = int(os.environ.get("NCUST", "6"))
KINDS = os.environ.get("KINDS", "full,full,cut,cut,cut,slow,slow,fig,ka,ka").split(",")
FIGURES = ["overview", "funnel", "paths", "transitions"]


class ExportsStress(T.ConsoleEndpointsTest):
    def test_concurrent_exports(self):
        ids = [self.customer("c%d@example.com" % i)[1] for i in range(max(NCUST, 1))][:6]
        t0 = int(time.time() * 1000) - 3 * 3600 * 1000
        for cid in ids:
            for part in range(3):
                self.ingest([{"customer_id": cid, "channel": "email", "touchpoint": "m %d" % k, "stage": "need",
                              "time": t0 + (part * 1000 + k) * 10, "attributes": {"n": k, "pad": "x" * 40}}
                             for k in range(1000)])
        cookie = "jg_console=" + self.staff("mia@mkt.example").cookie("jg_console")
        stop = time.time() + DURATION
        stats = {k: 0 for k in set(KINDS) | {"oserror"}}
        lock = threading.Lock()

        def count(k):
            with lock:
                stats[k] += 1

        def one(kind, rnd):
            path = "export/touchpoints.csv" if rnd.random() < 0.7 else "export/customers.csv"
            if kind == "ka":
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=rnd.choice([0.05, 0.3, 2, 20]))
                try:
                    for _ in range(rnd.randint(1, 4)):
                        p = path if rnd.random() < 0.6 else rnd.choice(FIGURES)
                        conn.request("GET", "/.console/api/" + p, headers={"Cookie": cookie})
                        conn.getresponse().read()
                except (OSError, http.client.HTTPException):
                    pass  # a client timeout: it left mid-answer, as intended
                conn.close()
                return
            if kind == "fig":
                path = rnd.choice(FIGURES)
            req = ("GET /.console/api/%s HTTP/1.1\r\nHost: 127.0.0.1\r\nCookie: %s\r\nConnection: close\r\n\r\n"
                   % (path, cookie)).encode()
            with socket.create_connection(("127.0.0.1", self.port), timeout=20) as s:
                if kind in ("cut", "slow"):
                    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
                s.sendall(req)
                if kind == "cut":
                    n, want = 0, rnd.choice([0, 1, 100, 5000, 60000, 300000])
                    while n < want:
                        d = s.recv(65536)
                        if not d:
                            break
                        n += len(d)
                    if rnd.random() < 0.5:
                        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                elif kind == "slow":
                    end = time.time() + rnd.random() * 3
                    while time.time() < end and s.recv(2048):
                        time.sleep(0.002)
                else:
                    while s.recv(1 << 16):
                        pass

        def client(kind):
            rnd = random.Random()
            while time.time() < stop and self.gw.proc.poll() is None:
                try:
                    one(kind, rnd)
                    count(kind)
                except OSError:
                    count("oserror")

        threads = [threading.Thread(target=client, args=(k,)) for k in KINDS]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        print("clients done: %s; gateway %s" % (stats, "alive" if self.gw.proc.poll() is None else "DEAD"),
              file=sys.stderr)
        err = self.gw.read_stderr()
        if "AddressSanitizer" in err or "double free" in err or self.gw.proc.poll() is not None:
            at = max(err.find("=================="), 0)
            print(err[at:at + 8000], file=sys.stderr)
            self.fail("the gateway died or reported a memory error")


if __name__ == "__main__":
    unittest.main(argv=[sys.argv[0], "ExportsStress.test_concurrent_exports"])
