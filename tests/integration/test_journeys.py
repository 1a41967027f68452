"""Integration: touchpoints across channels — a customer signs in on the web (cookie) and from a
mobile app (bearer token); the journey shows both channels in order under one customer; the
recording queue drops and counts when full without touching proxying; SIGTERM loses nothing."""

import json
import os
import re
import signal
import subprocess
import time
import unittest
import urllib.parse
import urllib.request

from jgtest import (JG_BIN, Browser, GatewayTestCase, admin_metrics, base_config, free_port, native_id_token,
                    parallel_gets, post_touchpoints, wait_login_ready)

CLIENT_ID, CLIENT_SECRET = "jg-web-client", "jg-web-secret-0123456789"
MOBILE_ID, MOBILE_SECRET = "jg-android-client", "jg-android-secret"
# a visit's attribution: fields of its first touchpoint only
ATTRIBUTION = ("referrer_host", "utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content", "click_id")


class JourneyTest(GatewayTestCase):
    queue_size = None
    retention_days = None
    extra_routes = ()  # routes a subclass adds before the catch-all ones

    def setUp(self):
        super().setUp()
        self.up = self.upstream()
        port = free_port()
        self.public = "http://127.0.0.1:%d" % port
        self.op = self.start_op(CLIENT_ID, CLIENT_SECRET, self.public, extra_clients=[(MOBILE_ID, MOBILE_SECRET)],
                                redirect_uris=["com.example.app:/oauth"])
        self.admin_port = free_port()
        self.store = os.path.join(self.tmpdir, "store")
        cfg = base_config(
            {"shop": {"url": self.up.url}},
            [{"name": "shop", "match": {"path_prefix": "/shop/"}, "upstream": "shop", "auth": "session",
              "policy": "signed", "channel": "web", "touchpoint": "browse", "stage": "research"},
             {"name": "orders", "match": {"path_prefix": "/api/orders"}, "upstream": "shop", "auth": "bearer",
              "policy": "signed", "touchpoint": "order", "stage": "convert"},
             {"name": "support", "match": {"path_prefix": "/api/support"}, "upstream": "shop", "auth": "any",
              "policy": "signed", "channel": "contact-centre", "touchpoint": "support", "stage": "own"},
             *self.extra_routes,
             {"name": "plain", "match": {"path_prefix": "/plain/"}, "upstream": "shop", "auth": "none"},
             {"name": "site", "match": {"path_prefix": "/"}, "upstream": "shop", "auth": "none",
              "touchpoint": "landing"}],
            providers={"google": {"type": "oidc", "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET,
                                  "issuer": self.op.url, "insecure_http": True, "mobile_client_ids": [MOBILE_ID]}},
            policies={"signed": {"rules": [{"allow": {"signed_in": True}}]}},
            admin={"listen": {"address": "127.0.0.1", "port": self.admin_port}})
        cfg["store"]["path"] = self.store
        keys = os.path.join(self.tmpdir, "ingest.keys")
        with open(keys, "w") as f:
            f.write("# name:key\ncontact-centre:cc-key-0123456789abcdef\n")
        cfg["ingest"] = {"api_keys_file": keys}
        cfg["journeys"] = {}
        if self.queue_size:
            cfg["journeys"]["queue_size"] = self.queue_size
        if self.retention_days:
            cfg["journeys"]["retention_days"] = self.retention_days
        token_file = os.path.join(self.tmpdir, "admin.token")
        with open(token_file, "w") as f:
            f.write("admin-token-0123456789abcdef\n")
        cfg["admin"]["token_file"] = token_file
        cfg["listen"][0]["port"] = port
        cfg["public_url"] = self.public
        self.gw = self.start(cfg)
        wait_login_ready(self.public)

    def web_login(self, email):
        b = Browser()
        b.get(self.public + "/.auth/login/google?" + urllib.parse.urlencode({"login_hint": email,
                                                                          "return_to": "/plain/"}))
        return b

    def mobile_token(self, email):
        id_token = native_id_token(self.op.url, MOBILE_ID, MOBILE_SECRET, email, scope="openid email")
        req = urllib.request.Request(self.public + "/.auth/token", method="POST",
                                     data=json.dumps({"provider": "google", "id_token": id_token}).encode())
        with urllib.request.urlopen(req, timeout=10) as r:
            return json.loads(r.read())

    def cli(self, *args):
        p = subprocess.run([JG_BIN] + list(args) + ["--store", self.store], capture_output=True, text=True,
                           timeout=30)
        return p.returncode, p.stdout, p.stderr

    def metric(self, name):
        for line in admin_metrics(self.admin_port, "admin-token-0123456789abcdef", timeout=5).splitlines():
            if line.startswith(name + " "):
                return int(line.split()[1])
        return None


class CrossChannelTest(JourneyTest):
    def test_web_then_mobile_is_one_journey_in_order(self):
        b = self.web_login("jo@example.com")
        b.get(self.public + "/shop/pricing?utm_source=newsletter&utm_campaign=spring&gclid=abc",
              headers={"Referer": "https://www.search.example/results?q=shoes",
                       "User-Agent": "Mozilla/5.0 (X11; Linux x86_64)"})
        time.sleep(0.01)
        b.get(self.public + "/shop/product/7", headers={"User-Agent": "Mozilla/5.0 (X11; Linux x86_64)"})
        time.sleep(0.01)
        tok = self.mobile_token("jo@example.com")
        for path in ("/api/orders", "/api/support"):
            time.sleep(0.01)
            req = urllib.request.Request(self.public + path, headers={
                "Authorization": "Bearer " + tok["access_token"], "User-Agent": "okhttp/4.12.0"})
            with urllib.request.urlopen(req, timeout=10) as r:
                self.assertEqual(r.status, 200)
        # nothing is recorded for anonymous requests
        Browser().get(self.public + "/welcome")
        time.sleep(0.5)

        code, out, err = self.cli("journey", tok["customer_id"], "--json")
        self.assertEqual(code, 0, err)
        tps = [json.loads(line) for line in out.splitlines()]
        self.assertEqual([(t["channel"], t["touchpoint"]) for t in tps],
                         [("web", "browse"), ("web", "browse"), ("mobile", "order"), ("contact-centre", "support")])
        self.assertTrue(all(t["customer_id"] == tok["customer_id"] for t in tps))
        times = [t["occurred_at"] for t in tps]
        self.assertEqual(times, sorted(times))  # ISO 8601 UTC with milliseconds sorts as time does
        self.assertTrue(all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", t) for t in times), times)
        first = tps[0]
        self.assertEqual((first["stage"], first["route"], first["method"], first["status"], first["device"],
                          first["provider"], first["source"]),
                         ("research", "shop", "GET", 200, "desktop", "google", "proxy"))
        self.assertEqual({k: first[k] for k in first if k in ATTRIBUTION},
                         {"referrer_host": "www.search.example", "utm_source": "newsletter",
                          "utm_campaign": "spring", "click_id": True})
        self.assertTrue(first["visit_start"])
        self.assertFalse(any(k in tps[1] for k in ATTRIBUTION))  # only the first touchpoint of a visit
        self.assertEqual(tps[0]["visit_id"], tps[1]["visit_id"])
        self.assertNotEqual(tps[1]["visit_id"], tps[2]["visit_id"])  # another channel, another visit
        self.assertEqual(tps[2]["device"], "app")
        self.assertRegex(first["id"], r"^tp_[0-9a-f]{12}")
        # the session: its public id, the same for the browser's two, another for the app's token
        self.assertTrue(all(len(t["session"]) >= 16 for t in tps))
        self.assertEqual(tps[0]["session"], tps[1]["session"])
        self.assertNotEqual(tps[1]["session"], tps[2]["session"])
        self.assertEqual(tps[2]["session"], tps[3]["session"])
        self.assertNotIn(tok["access_token"], json.dumps(tps))
        for t in tps:
            self.assertNotIn("jo@example.com", json.dumps(t))  # no personal data beyond the customer id
        # the human view shows the channel switches
        code, out, _ = self.cli("journey", tok["customer_id"])
        self.assertIn("channel switch: web -> mobile", out)
        self.assertIn("4 touchpoint(s)", out)
        # exports
        code, out, _ = self.cli("export", "touchpoints", "--format", "ndjson")
        self.assertEqual(len(out.splitlines()), 4)
        code, out, _ = self.cli("export", "touchpoints", "--format", "csv", "--since", times[2])
        self.assertEqual(len(out.splitlines()), 3)  # header + 2
        # erasure takes the touchpoints with the customer
        self.assertEqual(self.cli("customer", "delete", tok["customer_id"])[0], 0)
        code, out, _ = self.cli("export", "touchpoints", "--format", "ndjson")
        self.assertEqual(out, "")

    def test_sigterm_with_queued_touchpoints_loses_nothing(self):
        b = self.web_login("many@example.com")
        sent = self.get_items(b, 300)
        self.gw.signal(signal.SIGTERM)
        self.assertEqual(self.gw.proc.wait(20), 0)
        code, out, err = self.cli("export", "touchpoints", "--format", "ndjson")
        self.assertEqual(code, 0, err)
        self.assertEqual(len(out.splitlines()), sent)

    def get_items(self, browser, n):
        """GET /shop/item/0..n-1 on one connection with the browser's session, each answered 200; returns n."""
        cookie = "jg_session=" + browser.cookie("jg_session")
        conn = self.gw.conn()
        for i in range(n):
            conn.request("GET", "/shop/item/%d" % i, headers={"Cookie": cookie})
            r = conn.getresponse()
            r.read()
            self.assertEqual(r.status, 200)
        conn.close()
        return n

    def log_blocks(self):
        """Blocks in the store's touchpoint log (appended, not merged into customers' chunks yet)."""
        p = subprocess.run(["mdb_stat", "-s", "tp_log", self.store], capture_output=True, text=True, timeout=30)
        self.assertEqual(p.returncode, 0, p.stderr)
        return int(p.stdout.split("Entries:")[1].split()[0])

    def test_kill_9_keeps_what_was_committed_and_the_log_is_merged_after_restart(self):
        b = self.web_login("crash@example.com")
        self.get_items(b, 200)
        # committed within 200 ms of being queued; merged only after a second without any
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and \
                len(self.cli("export", "touchpoints", "--format", "ndjson")[1].splitlines()) < 200:
            time.sleep(0.02)
        self.gw.proc.kill()
        self.gw.proc.wait(10)
        self.gateways.remove(self.gw)
        self.assertGreater(self.log_blocks(), 0)
        code, out, err = self.cli("export", "touchpoints", "--format", "ndjson")
        self.assertEqual(code, 0, err)
        self.assertEqual(len(out.splitlines()), 200)  # read from the log
        # the next start merges what the crash left in the log, and nothing is lost or doubled
        d = os.path.join(self.tmpdir, "after-crash")
        os.makedirs(d)
        from jgtest import Gateway
        gw = Gateway(json.load(open(self.gw.config_path)), d)
        self.gateways.append(gw)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and self.log_blocks() > 0:
            time.sleep(0.3)
        self.assertEqual(self.log_blocks(), 0)
        code, out, err = self.cli("export", "touchpoints", "--format", "ndjson")
        self.assertEqual(code, 0, err)
        tps = [json.loads(line) for line in out.splitlines()]
        self.assertEqual(sorted(t["route"] for t in tps), ["shop"] * 200)
        self.assertEqual(len({t["id"] for t in tps}), 200)


class VisitorTest(JourneyTest):
    def test_anonymous_touchpoints_join_at_sign_in_once(self):
        b = Browser()
        b.get(self.public + "/welcome?utm_source=ad")
        b.get(self.public + "/pricing")
        visitor = b.cookie("jg_visitor")
        self.assertRegex(visitor, r"^[A-Za-z0-9_-]{20,}$")
        # anonymous visits write nothing to disk
        time.sleep(0.4)
        self.assertEqual(self.cli("export", "touchpoints", "--format", "ndjson")[1], "")
        # the upstream never sees the visitor cookie
        _, _, body, _ = b.get(self.public + "/echo")
        self.assertNotIn("jg_visitor", json.dumps(json.loads(body)["headers"]))
        # sign-in on this browser: the anonymous touchpoints join the customer's journey
        b.get(self.public + "/.auth/login/google?" + urllib.parse.urlencode({"login_hint": "vic@example.com",
                                                                          "return_to": "/shop/a"}))
        cid = json.loads(b.get(self.public + "/.auth/me")[2])["customer_id"]
        deadline = time.monotonic() + 15
        while True:  # the sign-in's touchpoint is written by the recorder shortly after
            tps = [json.loads(line) for line in self.cli("journey", cid, "--json")[1].splitlines()]
            if len(tps) >= 4 or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        self.assertEqual([t["touchpoint"] for t in tps], ["landing", "landing", "landing", "browse"])
        self.assertTrue(all(t.get("visitor_id") == visitor for t in tps[:3]))
        self.assertEqual(tps[0].get("utm_source"), "ad")
        # a shared device: the next person on this browser starts a new visitor and gets nothing of the first
        self.assertIsNone(b.cookie("jg_visitor"))
        b.get(self.public + "/.auth/logout")
        b2 = Browser()
        b2.jar = b.jar  # same browser
        b2.get(self.public + "/welcome")
        self.assertNotEqual(b2.cookie("jg_visitor"), visitor)


class IngestTest(JourneyTest):
    def ingest(self, events, key="cc-key-0123456789abcdef", raw=None):
        status, _, out = post_touchpoints(self.public, key, events, raw=raw)
        return status, out

    def test_ingestion_good_bad_and_duplicate_events(self):
        b = self.web_login("kim@example.com")
        me = json.loads(b.get(self.public + "/.auth/me")[2])
        cid, subject = me["customer_id"], me["identities"][0]["subject"]
        t0 = int(time.time() * 1000)
        status, out = self.ingest([
            {"customer_id": cid, "channel": "contact-centre", "touchpoint": "called support", "stage": "own",
             "time": t0 - 60000, "idempotency_key": "call-1", "status": "resolved"},
            {"email": "KIM@example.com", "channel": "store", "touchpoint": "bought in store", "time": t0 - 30000,
             "idempotency_key": "pos-9"},
            {"provider": "google", "subject": subject, "channel": "email", "touchpoint": "opened newsletter"},
            {"customer_id": cid, "touchpoint": "no channel"},
            {"customer_id": "c_" + "a" * 24, "channel": "store", "touchpoint": "ghost"},
            {"customer_id": cid, "email": "kim@example.com", "channel": "x", "touchpoint": "two ids"},
            {"email": "nobody@example.com", "channel": "store", "touchpoint": "unknown"},
        ])
        self.assertEqual(status, 200, out)
        self.assertEqual((out["accepted"], out["duplicates"], out["errors"]), (3, 0, 4))
        self.assertEqual([r["status"] for r in out["results"]],
                         ["accepted", "accepted", "accepted", "error", "error", "error", "error"])
        self.assertIn("channel", out["results"][3]["error"])
        # a retry is safe: the same idempotency keys are not written twice
        status, out = self.ingest([
            {"customer_id": cid, "channel": "contact-centre", "touchpoint": "called support", "time": t0 - 60000,
             "idempotency_key": "call-1"},
            {"email": "kim@example.com", "channel": "store", "touchpoint": "bought in store", "idempotency_key": "pos-9"}])
        self.assertEqual((out["accepted"], out["duplicates"]), (0, 2))
        code, text, _ = self.cli("journey", cid, "--json")
        tps = [json.loads(line) for line in text.splitlines()]
        self.assertEqual([t["touchpoint"] for t in tps], ["called support", "bought in store", "opened newsletter"])
        self.assertEqual(tps[0]["source"], "contact-centre")
        self.assertEqual(tps[0]["status"], "resolved")
        self.assertEqual(tps[0]["stage"], "own")
        # authentication and body errors
        self.assertEqual(self.ingest([{"customer_id": cid, "channel": "x", "touchpoint": "y"}], key="wrong")[0], 401)
        self.assertEqual(self.ingest(None, raw=b"not json")[0], 400)
        self.assertEqual(self.ingest([])[0], 400)


class AdminViewsTest(IngestTest):
    retention_days = 365

    def admin(self, path):
        req = urllib.request.Request("http://127.0.0.1:%d%s" % (self.admin_port, path),
                                     headers={"Authorization": "Bearer admin-token-0123456789abcdef"})
        with urllib.request.urlopen(req, timeout=10) as r:
            return json.loads(r.read())

    def test_figures_pagination_and_retention(self):
        a = self.web_login("ann@example.com")
        a.get(self.public + "/shop/1")
        a.get(self.public + "/shop/2")
        tok = self.mobile_token("ann@example.com")
        req = urllib.request.Request(self.public + "/api/orders", headers={"Authorization": "Bearer " + tok["access_token"]})
        urllib.request.urlopen(req, timeout=10).read()
        b = self.web_login("ben@example.com")
        b.get(self.public + "/shop/1")
        ben = json.loads(b.get(self.public + "/.auth/me")[2])["customer_id"]
        status, out = self.ingest([{"customer_id": ben, "channel": "contact-centre", "touchpoint": "support",
                                    "time": int(time.time() * 1000) + 10}])
        self.assertEqual((status, out["accepted"]), (200, 1), out)
        deadline = time.monotonic() + 15
        while True:  # the web touchpoints reach the store through the recorder
            fig = self.admin("/admin/figures")
            if fig["touchpoints"] >= 5 or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        self.assertEqual((fig["customers"], fig["touchpoints"], fig["cross_channel_customers"]), (2, 5, 2))
        self.assertEqual(fig["channels"]["web"], {"touchpoints": 3, "customers": 2})
        self.assertEqual(fig["channels"]["mobile"], {"touchpoints": 1, "customers": 1})
        self.assertEqual(fig["transitions"], {"web -> mobile": 1, "web -> contact-centre": 1})
        self.assertEqual(sorted(p["path"] for p in fig["top_paths"]), ["browse > order", "browse > support"])
        later = self.admin("/admin/figures?from_ms=%d" % (int(time.time() * 1000) + 60000))
        self.assertEqual(later["touchpoints"], 0)
        # the journey, two at a time
        ann = tok["customer_id"]
        page = self.admin("/admin/customers/%s/journey?limit=2" % ann)
        self.assertEqual([t["touchpoint"] for t in page["touchpoints"]], ["browse", "browse"])
        nxt = page["next"]
        page2 = self.admin("/admin/customers/%s/journey?limit=2&since_ms=%d&skip=%d" % (ann, nxt["since_ms"], nxt["skip"]))
        self.assertEqual([t["touchpoint"] for t in page2["touchpoints"]], ["order"])
        self.assertNotIn("next", page2)
        # retention: a touchpoint older than 365 days goes at the next pruning (at start, then hourly)
        self.ingest([{"customer_id": ben, "channel": "email", "touchpoint": "old mail",
                      "time": int(time.time() * 1000) - 400 * 86400000}])
        self.assertIn("old mail", self.cli("journey", ben)[1])
        self.gw.stop()
        self.gateways.remove(self.gw)
        d = os.path.join(self.tmpdir, "restart")
        os.makedirs(d)
        from jgtest import Gateway
        self.gateways.append(Gateway(json.load(open(self.gw.config_path)), d))
        deadline = time.monotonic() + 15
        while "old mail" in self.cli("journey", ben)[1] and time.monotonic() < deadline:
            time.sleep(0.1)  # pruned at start, in the background
        self.assertNotIn("old mail", self.cli("journey", ben)[1])
        self.assertIn("support", self.cli("journey", ben)[1])


class OverflowTest(JourneyTest):
    queue_size = 1

    def test_full_queue_drops_and_counts_without_hurting_proxying(self):
        b = self.web_login("burst@example.com")
        cookie = "jg_session=" + b.cookie("jg_session")
        time.sleep(0.3)
        base = self.metric("journeygate_touchpoints_recorded_total") or 0
        statuses = parallel_gets(self.gw, ["/shop/x"] * 50, {"Cookie": cookie}, threads=8, timeout=60)
        self.assertEqual(statuses, [200] * 400)
        time.sleep(0.5)
        recorded = self.metric("journeygate_touchpoints_recorded_total")
        dropped = self.metric("journeygate_touchpoints_dropped_total")
        self.assertEqual(recorded - base + dropped, 400)
        self.assertGreater(dropped, 0)
        deadline = time.monotonic() + 15
        while True:  # what was queued is written within moments
            code, out, _ = self.cli("export", "touchpoints", "--format", "ndjson")
            if len(out.splitlines()) >= recorded or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        self.assertEqual(len(out.splitlines()), recorded)


if __name__ == "__main__":
    unittest.main()
