"""Integration: per-route policies (allow, 403 naming the policy, step-up), policies from files,
the signed X-Identity-Assertion verified by an independent library (npm jose), and the sign-in
rate limits (429 with Retry-After, then recovery; failed callbacks and touchpoint ingestion)."""

import json
import os
import re
import signal
import subprocess
import time
import unittest
import urllib.parse
import urllib.request

from jgtest import (JG_BIN, PEERS_DIR, Browser, GatewayTestCase, base_config, free_port, post_touchpoints,
                    wait_login_ready)

CLIENT_ID, CLIENT_SECRET = "jg-web-client", "jg-web-secret-0123456789"


class PolicyTest(GatewayTestCase):
    limits = None

    def setUp(self):
        super().setUp()
        self.up = self.upstream()
        port = free_port()
        self.public = "http://127.0.0.1:%d" % port
        self.op = self.start_op(CLIENT_ID, CLIENT_SECRET, self.public)
        staff_file = os.path.join(self.tmpdir, "staff.json")
        with open(staff_file, "w") as f:
            json.dump({"description": "staff by verified email domain",
                       "rules": [{"allow": {"email_domain": ["example.com"], "email_verified": True}}]}, f)
        cfg = base_config(
            {"shop": {"url": self.up.url}},
            [{"name": "staff", "match": {"path_prefix": "/staff/"}, "upstream": "shop", "auth": "session",
              "policy": "staff"},
             {"name": "fresh", "match": {"path_prefix": "/account/"}, "upstream": "shop", "auth": "session",
              "policy": "fresh"},
             {"name": "readonly", "match": {"path_prefix": "/orders/"}, "upstream": "shop", "auth": "session",
              "policy": "readonly"},
             {"name": "app", "match": {"path_prefix": "/app/"}, "upstream": "shop", "auth": "any",
              "policy": "customers", "channel": "web"},
             {"name": "pub", "match": {"path_prefix": "/pub/"}, "upstream": "shop", "auth": "none",
              "policy": "public"},
             {"name": "site", "match": {"path_prefix": "/"}, "upstream": "shop", "auth": "none"}],
            providers={"google": {"type": "oidc", "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET,
                                  "issuer": self.op.url, "insecure_http": True}},
            policies={"staff": staff_file,
                      "fresh": {"rules": [{"allow": {"signed_in": True, "max_session_age_s": 2}}]},
                      "readonly": {"rules": [{"deny": {"methods": ["DELETE"]}},
                                             {"allow": {"signed_in": True, "methods": ["GET", "HEAD"]}}]},
                      "customers": {"rules": [{"allow": {"signed_in": True}}]},
                      "public": os.path.join(os.environ.get("JG_SOURCE", os.path.join(os.path.dirname(__file__), "..", "..")),
                                             "policies", "examples", "public.json")})
        if self.limits:
            cfg["limits"].update(self.limits)
        self.configure(cfg)
        cfg["listen"][0]["port"] = port
        cfg["public_url"] = self.public
        self.gw = self.start(cfg)
        wait_login_ready(self.public)

    def configure(self, cfg):
        """What a test class adds to the configuration before the gateway starts."""

    def login(self, email):
        b = Browser()
        q = urllib.parse.urlencode({"return_to": "/", "login_hint": email})
        status, _, _, _ = b.get(self.public + "/.auth/login/google?" + q)
        self.assertEqual(status, 200)
        return b


class PolicyOutcomesTest(PolicyTest):
    def test_allow_and_403_naming_the_policy(self):
        staff = self.login("ana@example.com")
        status, _, body, _ = staff.get(self.public + "/staff/tools")
        self.assertEqual(status, 200)
        outsider = self.login("olaf@other.example")
        status, _, body, _ = outsider.get(self.public + "/staff/tools", headers={"Accept": "application/json"})
        self.assertEqual(status, 403)
        self.assertEqual(json.loads(body), {"error": "forbidden", "error_description": 'refused by policy "staff"'})
        status, _, body, _ = outsider.get(self.public + "/staff/tools", headers={"Accept": "text/html"})
        self.assertEqual(status, 403)
        self.assertIn(b"staff", body)
        self.assertNotIn(b"example.com", body)  # the rule's internals stay private
        self.assertFalse([s for s in self.up.seen if s["path"].startswith("/staff/") and
                          dict(s["headers"]).get("X-Customer-Email") == "olaf@other.example"])

    def test_unverified_email_never_satisfies_a_domain_rule(self):
        self.op.admin("/admin/mode", {"mode": "unverified_email"})
        b = self.login("eve@example.com")
        self.op.admin("/admin/mode", {"mode": "good"})
        status, _, _, _ = b.get(self.public + "/staff/tools", headers={"Accept": "application/json"})
        self.assertEqual(status, 403)

    def test_methods(self):
        b = self.login("mia@example.com")
        self.assertEqual(b.get(self.public + "/orders/1")[0], 200)
        status, _, _ = b.post(self.public + "/orders/1", b"x", headers={"Accept": "application/json"})
        self.assertEqual(status, 403)

    def test_policy_on_a_public_route_is_enforced(self):
        # auth "none" + the shipped public.json: anyone reads, writing needs a signed-in customer
        anon = Browser()
        for _ in range(4):  # decisions for anonymous requests are reused per route and method: never mixed up
            self.assertEqual(anon.get(self.public + "/pub/page")[0], 200)
            status, hdrs, body = anon.post(self.public + "/pub/form", b"x", headers={"Accept": "application/json"})
            self.assertEqual(status, 401)
            self.assertEqual(json.loads(body)["error"], "unauthenticated")
        self.assertFalse([s for s in self.up.seen if s["path"] == "/pub/form"])
        b = self.login("pia@example.com")
        status, _, body = b.post(self.public + "/pub/form", b"x", headers={"Accept": "application/json"})
        self.assertEqual(status, 200)
        seen = [dict((k.lower(), v) for k, v in s["headers"]) for s in self.up.seen if s["path"] == "/pub/form"]
        self.assertEqual(len(seen), 1)
        self.assertTrue(seen[0].get("x-customer-id", "").startswith("c_"))
        # a forged session cookie is no session: still refused
        forged = Browser()
        status, _, _ = forged.post(self.public + "/pub/form", b"x",
                                   headers={"Accept": "application/json", "Cookie": "jg_session=" + "A" * 43})
        self.assertEqual(status, 401)

    def test_a_reloaded_policy_applies_to_signed_in_sessions_at_once(self):
        # decisions are reused per session, route and method: never across a configuration reload
        b = self.login("rex@example.com")
        self.assertEqual(b.get(self.public + "/orders/1")[0], 200)
        cfg = json.load(open(self.gw.config_path))
        cfg["policies"]["readonly"] = {"rules": [{"deny": {"methods": ["GET"]}}, {"allow": {"signed_in": True}}]}
        cfg["routes"].insert(0, {"name": "reloaded", "match": {"path_prefix": "/reloaded/"}, "upstream": "shop",
                                 "auth": "session", "policy": "customers"})
        self.assertEqual(b.get(self.public + "/orders/1")[0], 200)  # decided, and cached, just before
        self.gw.write_config(cfg)
        self.gw.signal(signal.SIGHUP)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            status, _, body, _ = b.get(self.public + "/reloaded/x")
            if status == 200 and "x-customer-id" in (k.lower() for k, _ in json.loads(body)["headers"]):
                break
            time.sleep(0.05)
        else:
            self.fail("the reload was not applied")
        for _ in range(4):  # every thread, whatever it cached
            self.assertEqual(b.get(self.public + "/orders/1", headers={"Accept": "application/json"})[0], 403)

    def test_a_reloaded_policy_applies_to_anonymous_requests_at_once(self):
        anon = Browser()
        for _ in range(4):  # decided, and reused, on every thread
            self.assertEqual(anon.get(self.public + "/pub/page")[0], 200)
        cfg = json.load(open(self.gw.config_path))
        cfg["policies"]["public"] = {"rules": [{"allow": {"signed_in": True}}]}
        self.gw.write_config(cfg)
        self.gw.signal(signal.SIGHUP)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if anon.get(self.public + "/pub/page", headers={"Accept": "application/json"})[0] == 401:
                break
            time.sleep(0.05)
        else:
            self.fail("the reload was not applied")
        for _ in range(4):
            self.assertEqual(anon.get(self.public + "/pub/page", headers={"Accept": "application/json"})[0], 401)

    def test_step_up_sends_the_browser_back_through_its_provider(self):
        b = self.login("sue@example.com")
        self.assertEqual(b.get(self.public + "/account/settings")[0], 200)
        time.sleep(3.1)
        status, hdrs, _, _ = b.get(self.public + "/account/settings", headers={"Accept": "text/html"}, follow=False)
        self.assertEqual(status, 302)
        self.assertEqual(hdrs["location"], "/.auth/login/google?reauth=1&return_to=%2Faccount%2Fsettings")
        # and the provider is asked to make the person sign in again, not to reuse its own session
        status, hdrs2, _, _ = b.get(self.public + hdrs["location"], follow=False)
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(hdrs2["location"]).query)
        self.assertEqual((query["prompt"], query["max_age"]), (["login"], ["0"]))
        status, hdrs, body, _ = b.get(self.public + "/account/settings", headers={"Accept": "application/json"})
        self.assertEqual(status, 401)
        self.assertIn("insufficient_user_authentication", hdrs["www-authenticate"])
        # a fresh sign-in opens it again
        status, _, _, url = b.get(self.public + "/.auth/login/google?return_to=/account/settings&login_hint=sue@example.com")
        self.assertEqual(status, 200)
        self.assertTrue(url.endswith("/account/settings"))

    def test_a_reused_decision_ends_when_the_session_age_reaches_the_limit(self):
        # "fresh" allows sign-ins at most 2 s old: a decision reused across requests must stop
        # holding when the session turns 3 s old (its age in whole seconds passes 2), not later
        before = time.monotonic()
        b = self.login("tim@example.com")
        after = time.monotonic()
        flipped = None
        while time.monotonic() < after + 6:
            status = b.get(self.public + "/account/x", headers={"Accept": "application/json"})[0]
            now = time.monotonic()
            if status != 200:
                self.assertEqual(status, 401)
                flipped = now
                break
            time.sleep(0.02)
        self.assertIsNotNone(flipped, "still allowed 6 s after sign-in")
        self.assertGreaterEqual(flipped - before, 2.9)
        self.assertLessEqual(flipped - after, 3.6)

    def test_step_up_needs_a_provider_that_really_signed_the_person_in_again(self):
        # after max_age=0 the ID token's auth_time must be from then on: a provider that reuses
        # its own older sign-in (or does not say) gets no session, and the old one stays too old
        b = self.login("ray@example.com")
        time.sleep(3.1)
        for mode, label in (("stale_auth_time", "an older sign-in"), ("no_auth_time", "no auth_time")):
            self.op.admin("/admin/mode", {"mode": mode})
            status, _, body, _ = b.get(self.public + "/.auth/login/google?reauth=1&return_to=/account/x&"
                                       "login_hint=ray@example.com", headers={"Accept": "text/html"})
            self.assertEqual(status, 401, label)
            self.assertIn(b"id_token_invalid:auth_time", body, label)
            self.assertIn(b"did not ask you to sign in again", body, label)
            status, hdrs, _, _ = b.get(self.public + "/account/x", headers={"Accept": "application/json"})
            self.assertEqual(status, 401, label)
            self.assertIn("insufficient_user_authentication", hdrs["www-authenticate"], label)
        # an ordinary sign-in asks nothing of auth_time: the OP's older session is fine there
        self.op.admin("/admin/mode", {"mode": "stale_auth_time"})
        self.assertEqual(self.login("ray@example.com").get(self.public + "/orders/1")[0], 200)
        self.op.admin("/admin/mode", {"mode": "good"})
        status, _, _, url = b.get(self.public + "/.auth/login/google?reauth=1&return_to=/account/x&"
                                  "login_hint=ray@example.com")
        self.assertEqual(status, 200)
        self.assertTrue(url.endswith("/account/x"))

    def test_identity_assertion_verifies_with_jose_and_tampering_fails(self):
        b = self.login("val@example.com")
        status, _, body, _ = b.get(self.public + "/app/x")
        self.assertEqual(status, 200)
        got = dict((k.lower(), v) for k, v in json.loads(body)["headers"])
        token = got["x-identity-assertion"]
        jwks = self.public + "/.auth/jwks.json"

        def verify(tok, aud="shop"):
            p = subprocess.run(["node", os.path.join(PEERS_DIR, "verify-assertion.mjs"), jwks, aud, tok],
                               capture_output=True, text=True, timeout=30, cwd=PEERS_DIR)
            return p.returncode, json.loads(p.stdout or "{}")

        code, out = verify(token)
        self.assertEqual(code, 0, out)
        claims = out["claims"]
        self.assertEqual(claims["customer_id"], got["x-customer-id"])
        self.assertEqual(claims["email"], "val@example.com")
        self.assertEqual((claims["provider"], claims["channel"], claims["route"], claims["aud"]),
                         ("google", "web", "app", "shop"))
        self.assertLessEqual(claims["exp"] - claims["iat"], 60)
        self.assertEqual(out["header"]["alg"], "ES256")
        # tampered payload, tampered signature, wrong audience: refused
        head, payload, sig = token.split(".")
        forged = json.dumps(dict(claims, customer_id="c_" + "a" * 24)).encode()
        import base64
        forged_b64 = base64.urlsafe_b64encode(forged).rstrip(b"=").decode()
        self.assertEqual(verify("%s.%s.%s" % (head, forged_b64, sig))[0], 1)
        self.assertEqual(verify("%s.%s.%s" % (head, payload, sig[:-4] + ("AAAA" if sig[-4:] != "AAAA" else "BBBB")))[0], 1)
        self.assertEqual(verify(token, aud="another-backend")[0], 1)
        # a client's own X-Identity-Assertion never passes
        status, _, body, _ = Browser().get(self.public + "/", headers={"X-Identity-Assertion": token})
        self.assertNotIn("x-identity-assertion", [k.lower() for k, _ in json.loads(body)["headers"]])

    def test_bad_policy_file_is_named_by_check_config(self):
        bad = os.path.join(self.tmpdir, "bad-policy.json")
        with open(bad, "w") as f:
            json.dump({"rules": [{"allow": {"signed_in": True}}, {"allow": {"email_domain": "not-a-list"}}]}, f)
        cfg = json.load(open(self.gw.config_path))
        cfg["policies"]["staff"] = bad
        path = os.path.join(self.tmpdir, "bad.json")
        with open(path, "w") as f:
            json.dump(cfg, f)
        p = subprocess.run([JG_BIN, "check-config", "--config", path], capture_output=True, text=True, timeout=10)
        self.assertEqual(p.returncode, 1)
        self.assertIn(bad + ": policies.staff.rules[1].allow.email_domain", p.stderr)


class ExplainTest(PolicyTest):
    def test_policy_explain(self):
        self.login("ana@example.com")
        self.login("olaf@other.example")

        def explain(*args):
            p = subprocess.run([JG_BIN, "policy", "explain", "--config", self.gw.config_path] + list(args),
                               capture_output=True, text=True, timeout=20)
            return p.returncode, p.stdout + p.stderr

        code, out = explain("--route", "staff", "--email", "ana@example.com")
        self.assertEqual(code, 0, out)
        self.assertIn("allow", out.lower())
        code, out = explain("--path", "/staff/x", "--email", "olaf@other.example")
        self.assertEqual(code, 0, out)
        self.assertIn("deny", out.lower())
        code, out = explain("--path", "/%73taff/x")  # decoded like the gateway does
        self.assertIn("route staff", out)
        self.assertIn("deny", out.lower())
        code, out = explain("--path", "/site/..%2Fstaff/x")  # refused like the gateway does
        self.assertEqual(code, 0, out)
        self.assertIn("400 invalid_path (encoded slash or backslash)", out)
        self.assertNotIn("route", out)
        code, out = explain("--route", "site")
        self.assertIn("open to everyone", out)
        code, out = explain("--route", "nope")
        self.assertEqual(code, 1)


class RateLimitTest(PolicyTest):
    limits = {"auth_rate_per_minute": 60, "auth_burst": 3}

    def test_sign_in_rate_limit_429_then_recovers(self):
        time.sleep(3.2)  # the readiness probes in setUp spent some of this address's tokens
        codes = [Browser().get(self.public + "/.auth/login/google", follow=False) for _ in range(5)]
        statuses = [c[0] for c in codes]
        self.assertEqual(statuses[:3], [302, 302, 302])
        self.assertEqual(statuses[3:], [429, 429])
        self.assertTrue(int(codes[3][1]["retry-after"]) >= 1)
        # proxied traffic is not rate limited
        self.assertEqual(Browser().get(self.public + "/open")[0], 200)
        time.sleep(1.2)
        self.assertEqual(Browser().get(self.public + "/.auth/login/google", follow=False)[0], 302)


class RateLimitKindsTest(PolicyTest):
    # one token every 20 s: nothing refills while a test runs. Each test's requests come from their own
    # address (X-Forwarded-For from a trusted proxy), so the readiness probes in setUp spend none of it.
    limits = {"auth_rate_per_minute": 3, "auth_burst": 3, "ingest_rate_per_minute": 3, "ingest_burst": 4}
    KEY = "cc-key-0123456789abcdef"

    def configure(self, cfg):
        keys = os.path.join(self.tmpdir, "ingest.keys")
        with open(keys, "w") as f:
            f.write("contact-centre:%s\n" % self.KEY)
        cfg["ingest"] = {"api_keys_file": keys}
        cfg["trusted_proxies"] = ["127.0.0.1"]
        self.admin_port = free_port()
        cfg["admin"] = {"listen": {"address": "127.0.0.1", "port": self.admin_port}}

    def refused(self, bucket):
        """journeygate_rate_limited_total{bucket} from the admin listener's /metrics."""
        with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % self.admin_port, timeout=5) as r:
            text = r.read().decode()
        m = re.search(r'^journeygate_rate_limited_total\{bucket="%s"\} (\d+)$' % bucket, text, re.M)
        self.assertIsNotNone(m, text)
        return int(m.group(1))

    def get(self, addr, path, browser=None, follow=False, headers=None):
        """GET as a browser at `addr`; a followed redirect keeps the header."""
        return (browser or Browser()).get(self.public + path, headers=dict(headers or {}, **{"X-Forwarded-For": addr}),
                                          follow=follow)

    def callback(self, addr):
        return self.get(addr, "/.auth/login/google/callback?code=forged&state=guessed")

    def test_failed_callbacks_take_tokens_and_successful_ones_do_not(self):
        # the counters are the process's: polling for the providers' readiness may have counted too
        before = (self.refused("signin"), self.refused("ingest"))
        statuses = [self.callback("203.0.113.7")[0] for _ in range(3)]
        self.assertEqual(statuses, [400, 400, 400])
        status, headers, body, _ = self.callback("203.0.113.7")
        self.assertEqual(status, 429, body[:200])
        self.assertGreaterEqual(int(headers["retry-after"]), 1)
        # a browser is told in a page, a script in JSON
        self.assertIn("text/html", headers["content-type"])
        self.assertIn(b"Please wait %s seconds" % headers["retry-after"].encode(), body)
        status, headers, body, _ = self.get("203.0.113.7", "/.auth/login/google",
                                            headers={"X-Requested-With": "XMLHttpRequest"})
        self.assertEqual((status, json.loads(body)["error"]), (429, "rate_limited"))
        # the same bucket: this address cannot start a sign-in either, while others can
        self.assertEqual(self.get("203.0.113.7", "/.auth/login/google")[0], 429)
        self.assertEqual(self.get("203.0.113.9", "/.auth/login/google")[0], 302)

        # a sign-in that succeeds costs its start only: two more starts fit in the burst of 3
        b = Browser()
        q = urllib.parse.urlencode({"return_to": "/", "login_hint": "ann@example.com"})
        status, _, _, url = self.get("203.0.113.8", "/.auth/login/google?" + q, browser=b, follow=True)
        self.assertEqual(status, 200)
        self.assertTrue(b.cookie("jg_session"), url)
        starts = [self.get("203.0.113.8", "/.auth/login/google")[0] for _ in range(3)]
        self.assertEqual(starts, [302, 302, 429])
        self.assertEqual((self.refused("signin") - before[0], self.refused("ingest") - before[1]), (4, 0))

    def ingest(self, addr, key):
        return post_touchpoints(self.public, key, headers={"X-Forwarded-For": addr})

    def test_touchpoint_ingestion_is_limited(self):
        # guessing keys counts as failed sign-ins
        statuses = [self.ingest("198.51.100.4", "wrong-key-0123456789")[0] for _ in range(3)]
        self.assertEqual(statuses, [401, 401, 401])
        status, headers, out = self.ingest("198.51.100.4", "wrong-key-0123456789")
        self.assertEqual((status, out.get("error")), (429, "rate_limited"))
        self.assertGreaterEqual(int(headers["Retry-After"]), 1)
        # a valid key draws on its own bucket (4 here), even from the address that guessed
        statuses = [self.ingest("198.51.100.4", self.KEY)[0] for _ in range(4)]
        self.assertEqual(statuses, [200] * 4)
        status, headers, out = self.ingest("198.51.100.4", self.KEY)
        self.assertEqual((status, out.get("error")), (429, "rate_limited"))
        self.assertGreaterEqual(int(headers["Retry-After"]), 1)
        # per address: another sender is not held up, and proxied traffic never is
        self.assertEqual(self.ingest("198.51.100.5", self.KEY)[0], 200)
        self.assertEqual(self.get("198.51.100.4", "/open")[0], 200)
        self.assertEqual((self.refused("signin"), self.refused("ingest")), (1, 1))


if __name__ == "__main__":
    unittest.main()
