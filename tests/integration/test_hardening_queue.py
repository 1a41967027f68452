"""Integration: SIGTERM with a recording queue that is really full. The store's writer is held back
by another process holding LMDB's write lock, so the queue fills up (the metrics show the backlog
and the drops) before the signal; once the lock is let go, every queued touchpoint is stored."""

import ctypes
import ctypes.util
import signal
import time
import unittest

import test_journeys
from jgtest import admin_metrics, parallel_gets


class StoreWriteLock:
    """Holds the LMDB write lock of a store (a write transaction left open) from this process."""

    def __init__(self, path):
        name = ctypes.util.find_library("lmdb") or "liblmdb.so.0"
        self.lib = ctypes.CDLL(name)
        self.lib.mdb_strerror.restype = ctypes.c_char_p
        self.env, self.txn = ctypes.c_void_p(), ctypes.c_void_p()
        self.check(self.lib.mdb_env_create(ctypes.byref(self.env)))
        self.check(self.lib.mdb_env_set_maxdbs(self.env, 64))
        # MDB_NOTLS as the gateway; the map size is taken from the existing store
        self.check(self.lib.mdb_env_open(self.env, path.encode(), 0x200000, 0o600))
        self.check(self.lib.mdb_txn_begin(self.env, None, 0, ctypes.byref(self.txn)))

    def check(self, rc):
        if rc != 0:
            raise OSError("lmdb: %s" % self.lib.mdb_strerror(rc).decode())

    def release(self):
        if self.txn:
            self.lib.mdb_txn_abort(self.txn)
            self.txn = ctypes.c_void_p()
        if self.env:
            self.lib.mdb_env_close(self.env)
            self.env = ctypes.c_void_p()


class FullQueueSigtermTest(test_journeys.JourneyTest):
    queue_size = 64

    def metrics(self):
        out = {}
        for line in admin_metrics(self.admin_port, "admin-token-0123456789abcdef").splitlines():
            if line.startswith("journeygate_touchpoints_"):
                name, value = line.split()
                out[name] = int(float(value))
        return out

    def stored(self):
        code, out, err = self.cli("export", "touchpoints", "--format", "ndjson")
        self.assertEqual(code, 0, err)
        return len(out.splitlines())

    def test_sigterm_with_a_full_queue_stores_every_queued_touchpoint(self):
        b = self.web_login("fullq@example.com")
        cookie = "jg_session=" + b.cookie("jg_session")
        # the sign-in's own writes are done once its cookie works; then the writer is held back
        self.assertEqual(self.gw.request("GET", "/.auth/me", headers={"Cookie": cookie})[0], 200)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:  # whatever was queued before is written first
            m = self.metrics()
            if self.stored() == m.get("journeygate_touchpoints_recorded_total", 0):
                break
            time.sleep(0.2)
        before = self.stored()
        lock = StoreWriteLock(self.store)
        self.addCleanup(lock.release)

        statuses = parallel_gets(self.gw, ["/shop/item/%d" % i for i in range(40)], {"Cookie": cookie}, threads=4)
        # proxying never waited for the store
        self.assertEqual(statuses, [200] * 160)
        m = self.metrics()
        recorded = m["journeygate_touchpoints_recorded_total"]
        dropped = m.get("journeygate_touchpoints_dropped_total", 0)
        # the backlog before the signal: the queue is full (drops counted), nothing of it written
        self.assertGreater(dropped, 0, m)
        self.assertEqual(self.stored(), before)
        self.assertGreaterEqual(recorded - before, self.queue_size - 1, m)

        self.gw.signal(signal.SIGTERM)
        deadline = time.monotonic() + 30
        while "draining" not in self.gw.read_stderr() and time.monotonic() < deadline:
            time.sleep(0.05)
        self.assertIn("draining", self.gw.read_stderr())
        lock.release()
        self.assertEqual(self.gw.proc.wait(60), 0, self.gw.read_stderr()[-2000:])
        self.assertEqual(self.stored(), recorded)


if __name__ == "__main__":
    unittest.main()
