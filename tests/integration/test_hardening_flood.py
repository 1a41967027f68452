"""Integration: floods. Refusals (policy denials, failed sign-in callbacks) are audited aggregated
and capped, on a writer of their own, so a flood neither starves sign-ins nor grows the trail
without bound, and every refusal is accounted for (a record, a count, or an audit_gap)."""

import concurrent.futures
import http.client
import json
import re
import subprocess
import time
import unittest
import urllib.request

from jgtest import JG_BIN, Browser
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
        req = urllib.request.Request("http://127.0.0.1:%d/metrics" % self.admin_port,
                                     headers={"Authorization": "Bearer admin-token-0123456789abcdef"})
        text = urllib.request.urlopen(req, timeout=10).read().decode()
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


if __name__ == "__main__":
    unittest.main()
