"""Integration: floods. Refusals (policy denials, failed sign-in callbacks) are audited aggregated
and capped, on a writer of their own, so a flood neither starves sign-ins nor grows the trail
without bound, and every refusal is accounted for (a record, a count, or an audit_gap)."""

import concurrent.futures
import http.client
import json
import os
import re
import subprocess
import time
import unittest

from jgtest import JG_BIN, Browser, GatewayTestCase, admin_metrics, base_config, free_port
from test_identity import IdentityTestCase

INTERVAL_S = 1
CAP = 20


class FloodTest(IdentityTestCase):
    def extra_config(self):
        return {
            "routes": self.cfg_routes(),
            "policies": {"signed": {"rules": [{"allow": {"signed_in": True}}]},
                         "staff": {"rules": [{"allow": {"email_domain": ["staff.example"]}}]}},
            "audit": {"refusal_interval_s": INTERVAL_S, "refusals_per_interval": CAP},
            "trusted_proxies": ["127.0.0.1/32"],
        }

    def cfg_routes(self):
        return [{"name": "admin", "match": {"path_prefix": "/admin-area"}, "upstream": "up", "auth": "session",
                 "policy": "staff"},
                {"name": "app", "match": {"path_prefix": "/app"}, "upstream": "up", "auth": "session",
                 "policy": "signed"},
                {"name": "site", "match": {"path_prefix": "/"}, "upstream": "up", "auth": "none"}]

    def trail(self):
        p = subprocess.run([JG_BIN, "audit", "tail", "-n", "1000000", "--json", "--store", self.store],
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        return [json.loads(line) for line in p.stdout.splitlines()]

    def verify(self):
        p = subprocess.run([JG_BIN, "audit", "verify", "--store", self.store], capture_output=True, text=True,
                           timeout=60)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertIn("audit chain OK", p.stdout)

    def metric(self, name, labels):
        text = admin_metrics(self.admin_port, "admin-token-0123456789abcdef")
        m = re.search(r"^%s%s (\d+)$" % (re.escape(name), re.escape(labels)), text, re.M)
        self.assertIsNotNone(m, name + labels)
        return int(m.group(1))

    def poll_trail(self, accounted, want, what):
        """Polls the trail until accounted(records) reaches want (aggregates land when an interval ends)."""
        deadline = time.monotonic() + 60
        while True:
            recs = self.trail()
            got = accounted(recs)
            if got >= want or time.monotonic() > deadline:
                self.assertEqual(got, want, what)
                return recs
            time.sleep(0.2)

    @staticmethod
    def weight(r):
        return r.get("count", 1)

    def get(self, path, headers):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            c.request("GET", path, headers=headers)
            r = c.getresponse()
            r.read()
            return r.status
        finally:
            c.close()

    def test_a_customer_hammering_a_forbidden_route_neither_starves_sign_ins_nor_floods_the_trail(self):
        mallory = Browser()
        self.google(mallory, "mallory@example.com")
        cid = self.me(mallory)["customer_id"]
        cookie = {"Cookie": "jg_session=" + mallory.cookie("jg_session"), "Accept": "application/json"}
        self.assertEqual(self.get("/admin-area/x", cookie), 403)
        n = 3000

        def hammer(i):
            return self.get("/admin-area/x?i=%d" % i, cookie)

        signins = []
        with concurrent.futures.ThreadPoolExecutor(32) as pool:
            flood = [pool.submit(hammer, i) for i in range(n)]
            # meanwhile, other people sign in: never a 503
            while not all(f.done() for f in flood) or not signins:
                b = Browser()
                status, _, _, url = self.google(b, "signin-%d@example.com" % len(signins))
                signins.append((status, url, self.me(b) is not None))
            statuses = [f.result() for f in flood]
        self.assertEqual(statuses.count(403), n, set(statuses))
        for status, url, signed_in in signins:
            self.assertEqual((status, signed_in), (200, True), url)

        # every refusal is in the trail: the first of each interval on its own, the repeats counted
        def denied(recs):
            return [r for r in recs if r["event"] == "policy_denied" and r.get("customer_id") == cid]

        recs = self.poll_trail(lambda rs: sum(self.weight(r) for r in denied(rs)), n + 1, "refusals accounted for")
        mine = denied(recs)
        self.assertTrue(any(r.get("count", 0) > 1 for r in mine), mine)
        self.assertLess(len(mine), n // 10, "repeats were not aggregated")
        self.assertTrue(all(r["reason"] == "staff" and r["outcome"] == "refused" for r in mine))
        self.assertFalse([r for r in recs if r["event"] == "audit_gap"])
        self.assertEqual(self.metric("journeygate_audit_refusals_unwritten_total", '{why="aggregated"}'),
                         sum(r.get("count", 0) for r in mine))
        self.verify()

    def test_failed_callbacks_are_audited_bounded_from_one_address_and_from_many(self):
        before = len(self.trail())
        n_one, n_many = 400, 1000
        cb = "/.auth/login/google/callback?code=a&state=forged"
        start = time.monotonic()

        def one(i):
            return self.get(cb, {"Accept": "application/json"})

        def spoofed(i):
            # behind the trusted proxy (127.0.0.1), each request claims another client address
            return self.get(cb, {"Accept": "application/json",
                                 "X-Forwarded-For": "10.%d.%d.%d" % (i >> 16, (i >> 8) & 255, i & 255)})

        with concurrent.futures.ThreadPoolExecutor(16) as pool:
            statuses = list(pool.map(one, range(n_one))) + list(pool.map(spoofed, range(n_many)))
        elapsed = time.monotonic() - start
        self.assertTrue(all(400 <= s < 500 for s in statuses), set(statuses))

        def accounted(recs):
            new = recs[before:]
            return sum(self.weight(r) for r in new if r["event"] in ("callback_refused", "audit_gap"))

        recs = self.poll_trail(accounted, n_one + n_many, "failed callbacks accounted for")[before:]
        refused = [r for r in recs if r["event"] == "callback_refused"]
        gaps = [r for r in recs if r["event"] == "audit_gap"]
        # one address: one record and counted repeats per interval; many: at most CAP records per
        # interval and one gap record counting the rest
        ones = [r for r in refused if r.get("client") == "127.0.0.1"]
        self.assertEqual(sum(self.weight(r) for r in ones), n_one)
        self.assertTrue(gaps)
        self.assertTrue(all(g["reason"] == "over_limit" and g["count"] > 0 for g in gaps))
        intervals = int(elapsed / INTERVAL_S) + 3
        self.assertLessEqual(len(refused), intervals * CAP)
        self.assertLess(len(recs), n_many // 2)
        self.assertEqual(self.metric("journeygate_audit_refusals_unwritten_total", '{why="over_limit"}'),
                         sum(g["count"] for g in gaps))
        self.verify()
        # the gateway still signs people in
        b = Browser()
        self.google(b, "after-flood@example.com")
        self.assertIsNotNone(self.me(b))


class VisitorMemoryTest(GatewayTestCase):
    """Anonymous visitors with client-chosen campaign strings: memory stays within the budget."""

    BUDGET = 1024 * 1024

    def setUp(self):
        super().setUp()
        up = self.upstream()
        self.admin_port = free_port()
        token_file = os.path.join(self.tmpdir, "admin.token")
        with open(token_file, "w") as f:
            f.write("admin-token-0123456789abcdef\n")
        cfg = base_config({"up": {"url": up.url}},
                          [{"name": "site", "match": {"path_prefix": "/"}, "upstream": "up", "auth": "none",
                            "touchpoint": "landing"}],
                          journeys={"visitor_memory": "1MB"},
                          admin={"listen": {"address": "127.0.0.1", "port": self.admin_port},
                                 "token_file": token_file})
        # the memory check measures the gateway's own allocations: ASan keeps freed blocks
        # (its quarantine) unless told not to, which would count the evicted visitors as still held
        saved = os.environ.get("ASAN_OPTIONS")
        os.environ["ASAN_OPTIONS"] = (saved + ":" if saved else "") + "quarantine_size_mb=0"
        try:
            self.gw = self.start(cfg)
        finally:
            if saved is None:
                del os.environ["ASAN_OPTIONS"]
            else:
                os.environ["ASAN_OPTIONS"] = saved

    def rss_kb(self):
        with open("/proc/%d/status" % self.gw.proc.pid) as f:
            return int(re.search(r"^VmRSS:\s+(\d+) kB", f.read(), re.M).group(1))

    def evicted(self):
        text = admin_metrics(self.admin_port, "admin-token-0123456789abcdef")
        return int(re.search(r'^journeygate_visitors_forgotten_total\{why="evicted"\} (\d+)$', text, re.M).group(1))

    def flood(self, n, threads=16):
        """n requests, each from a new anonymous visitor (no cookie), with the longest campaign strings kept."""
        utm = "&".join("utm_%s=%s" % (k, c * 200) for k, c in
                       (("source", "s"), ("medium", "m"), ("campaign", "c"), ("term", "t"), ("content", "o")))
        referer = "https://" + "r" * 250 + ".example/landing"

        def worker(k):
            c = http.client.HTTPConnection("127.0.0.1", self.gw.port, timeout=30)
            statuses = set()
            for i in range(k, n, threads):
                c.request("GET", "/page?%s&n=%d" % (utm, i), headers={"Referer": referer})
                r = c.getresponse()
                r.read()
                statuses.add(r.status)
            c.close()
            return statuses

        with concurrent.futures.ThreadPoolExecutor(threads) as pool:
            statuses = set().union(*pool.map(worker, range(threads)))
        self.assertEqual(statuses, {200})

    def test_a_flood_of_anonymous_visitors_stays_within_the_budget(self):
        # warm up: the budget fills, the gateway's own buffers and pools reach their working size
        self.flood(2000)
        before = self.rss_kb()
        # 15,000 more visitors of about 1.5 KB each: some 20 MB unbounded, 1 MB within the budget
        self.flood(15000)
        grown = self.rss_kb() - before
        self.assertLess(grown * 1024, 4 * self.BUDGET, "RSS grew by %d kB" % grown)
        self.assertGreater(self.evicted(), 15000 - 2 * self.BUDGET // 1000)


if __name__ == "__main__":
    unittest.main()
