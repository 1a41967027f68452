"""Integration: touchpoints across channels — a customer signs in on the web (cookie) and from a
mobile app (bearer token); the journey shows both channels in order under one customer; the
recording queue drops and counts when full without touching proxying; SIGTERM loses nothing."""

import base64
import hashlib
import json
import os
import signal
import subprocess
import threading
import time
import unittest
import urllib.parse
import urllib.request

from jgtest import JG_BIN, Browser, GatewayTestCase, Peer, base_config, free_port

CLIENT_ID, CLIENT_SECRET = "jg-web-client", "jg-web-secret-0123456789"
MOBILE_ID, MOBILE_SECRET = "jg-android-client", "jg-android-secret"


class JourneyTest(GatewayTestCase):
    queue_size = None

    def setUp(self):
        super().setUp()
        self.up = self.upstream()
        port = free_port()
        self.public = "http://127.0.0.1:%d" % port
        self.op = Peer("rogue-op.mjs", ["--client-id", CLIENT_ID, "--client-secret", CLIENT_SECRET,
                                        "--extra-client", "%s:%s" % (MOBILE_ID, MOBILE_SECRET),
                                        "--redirect-uri", self.public + "/.auth/login/google/callback",
                                        "--redirect-uri", "com.example.app:/oauth"], self.tmpdir)
        self.addCleanup(self.op.stop)
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
             {"name": "site", "match": {"path_prefix": "/"}, "upstream": "shop", "auth": "none",
              "touchpoint": "landing"}],
            providers={"google": {"type": "oidc", "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET,
                                  "issuer": self.op.url, "insecure_http": True, "mobile_client_ids": [MOBILE_ID]}},
            policies={"signed": {"rules": [{"allow": {"signed_in": True}}]}},
            admin={"listen": {"address": "127.0.0.1", "port": self.admin_port}})
        cfg["store"]["path"] = self.store
        if self.queue_size:
            cfg["journeys"] = {"queue_size": self.queue_size}
        cfg["listen"][0]["port"] = port
        cfg["public_url"] = self.public
        self.gw = self.start(cfg)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and Browser().get(self.public + "/.auth/login/google",
                                                            follow=False)[0] != 302:
            time.sleep(0.2)

    def web_login(self, email):
        b = Browser()
        b.get(self.public + "/.auth/login/google?" + urllib.parse.urlencode({"login_hint": email, "return_to": "/"}))
        return b

    def mobile_token(self, email):
        verifier = base64.urlsafe_b64encode(os.urandom(32)).rstrip(b"=").decode()
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
        q = urllib.parse.urlencode({"client_id": MOBILE_ID, "redirect_uri": "com.example.app:/oauth",
                                    "response_type": "code", "scope": "openid email", "state": "s", "nonce": "n",
                                    "login_hint": email, "code_challenge": challenge,
                                    "code_challenge_method": "S256"})
        _, hdrs, _, _ = Browser().get(self.op.url + "/authorize?" + q, follow=False)
        code = urllib.parse.parse_qs(urllib.parse.urlsplit(hdrs["location"]).query)["code"][0]
        form = urllib.parse.urlencode({"grant_type": "authorization_code", "code": code,
                                       "redirect_uri": "com.example.app:/oauth", "code_verifier": verifier,
                                       "client_id": MOBILE_ID, "client_secret": MOBILE_SECRET}).encode()
        with urllib.request.urlopen(urllib.request.Request(self.op.url + "/token", data=form), timeout=10) as r:
            id_token = json.loads(r.read())["id_token"]
        req = urllib.request.Request(self.public + "/.auth/token", method="POST",
                                     data=json.dumps({"provider": "google", "id_token": id_token}).encode())
        with urllib.request.urlopen(req, timeout=10) as r:
            return json.loads(r.read())

    def cli(self, *args):
        p = subprocess.run([JG_BIN] + list(args) + ["--store", self.store], capture_output=True, text=True,
                           timeout=30)
        return p.returncode, p.stdout, p.stderr

    def metric(self, name):
        with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % self.admin_port, timeout=5) as r:
            for line in r.read().decode().splitlines():
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
        times = [t["occurred_at_ms"] for t in tps]
        self.assertEqual(times, sorted(times))
        first = tps[0]
        self.assertEqual((first["stage"], first["route"], first["method"], first["status"], first["device"],
                          first["provider"], first["source"]),
                         ("research", "shop", "GET", 200, "desktop", "google", "proxy"))
        self.assertEqual(first["attribution"], {"referrer_host": "www.search.example", "utm_source": "newsletter",
                                                "utm_campaign": "spring", "click_id": True})
        self.assertNotIn("attribution", tps[1])  # only the first touchpoint of a visit
        self.assertEqual(tps[0]["visit_id"], tps[1]["visit_id"])
        self.assertNotEqual(tps[1]["visit_id"], tps[2]["visit_id"])  # another channel, another visit
        self.assertEqual(tps[2]["device"], "app")
        self.assertRegex(first["id"], r"^tp_[0-9a-f]{12}")
        for t in tps:
            self.assertNotIn("jo@example.com", json.dumps(t))  # no personal data beyond the customer id
        # the human view shows the channel switches
        code, out, _ = self.cli("journey", tok["customer_id"])
        self.assertIn("channel switch: web -> mobile", out)
        self.assertIn("4 touchpoint(s)", out)
        # exports
        code, out, _ = self.cli("export", "touchpoints", "--format", "ndjson")
        self.assertEqual(len(out.splitlines()), 4)
        code, out, _ = self.cli("export", "touchpoints", "--format", "csv", "--since", str(times[2]))
        self.assertEqual(len(out.splitlines()), 3)  # header + 2
        # erasure takes the touchpoints with the customer
        self.assertEqual(self.cli("customer", "delete", tok["customer_id"])[0], 0)
        code, out, _ = self.cli("export", "touchpoints", "--format", "ndjson")
        self.assertEqual(out, "")

    def test_sigterm_with_queued_touchpoints_loses_nothing(self):
        b = self.web_login("many@example.com")
        cookie = "jg_session=" + b.cookie("jg_session")
        sent = 0
        conn = self.gw.conn()
        for i in range(300):
            conn.request("GET", "/shop/item/%d" % i, headers={"Cookie": cookie})
            r = conn.getresponse()
            r.read()
            self.assertEqual(r.status, 200)
            sent += 1
        conn.close()
        self.gw.signal(signal.SIGTERM)
        self.assertEqual(self.gw.proc.wait(20), 0)
        code, out, err = self.cli("export", "touchpoints", "--format", "ndjson")
        self.assertEqual(code, 0, err)
        self.assertEqual(len(out.splitlines()), sent)


class OverflowTest(JourneyTest):
    queue_size = 1

    def test_full_queue_drops_and_counts_without_hurting_proxying(self):
        b = self.web_login("burst@example.com")
        cookie = "jg_session=" + b.cookie("jg_session")
        statuses = []
        lock = threading.Lock()

        def burst():
            conn = self.gw.conn()
            for i in range(50):
                conn.request("GET", "/shop/x", headers={"Cookie": cookie})
                r = conn.getresponse()
                r.read()
                with lock:
                    statuses.append(r.status)
            conn.close()

        threads = [threading.Thread(target=burst) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        self.assertEqual(statuses, [200] * 400)
        time.sleep(0.5)
        recorded = self.metric("journeygate_touchpoints_recorded_total")
        dropped = self.metric("journeygate_touchpoints_dropped_total")
        self.assertEqual(recorded + dropped, 400)
        self.assertGreater(dropped, 0)
        code, out, _ = self.cli("export", "touchpoints", "--format", "ndjson")
        self.assertEqual(len(out.splitlines()), recorded)


if __name__ == "__main__":
    unittest.main()
