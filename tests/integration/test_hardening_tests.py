"""Integration: checks that fail against the broken behaviour they name — CSRF tokens that are wrong
but well-formed, the cap on pending sign-ins per browser, expired sign-in state, admin endpoints
without their token, and the hostile modes of the test peers (rogue-op, the Facebook stand-in)."""

import base64
import hashlib
import hmac
import json
import os
import time
import threading
import unittest
import urllib.error
import urllib.parse
import urllib.request

from jgtest import Browser, free_port
from test_identity import IdentityTestCase

ADMIN_TOKEN = "admin-token-0123456789abcdef"  # what IdentityTestCase writes into its admin token file


def b64url_decode(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def b64url_encode(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


class CsrfTest(IdentityTestCase):
    def post(self, b, path, token, form=False):
        if form:
            return b.post(self.public + path, urllib.parse.urlencode({"csrf": token}).encode(),
                          headers={"Content-Type": "application/x-www-form-urlencoded"})[0]
        return b.post(self.public + path, b"", headers={"X-CSRF-Token": token})[0]

    def test_wrong_token_of_the_right_length_and_another_sessions_token_are_refused(self):
        b = Browser()
        self.google(b, "csrf-erin@example.com")
        self.facebook(b, "2003", path="/.auth/link/facebook")
        self.assertEqual(len(self.me(b)["identities"]), 2)
        token = self.csrf(b)
        other = Browser()
        self.google(other, "csrf-frank@example.com")
        foreign = self.csrf(other)
        self.assertEqual(len(foreign), len(token))
        self.assertNotEqual(foreign, token)
        flipped = token[:-1] + ("A" if token[-1] != "A" else "B")
        swapped = token[len(token) // 2:] + token[:len(token) // 2]
        for bad in (flipped, swapped, foreign, token.upper() if token.upper() != token else token.lower()):
            if bad == token:
                continue
            for form in (False, True):
                self.assertEqual(self.post(b, "/.auth/unlink/facebook", bad, form), 403, (bad, form))
                self.assertEqual(self.post(b, "/.auth/logout", bad, form), 403, (bad, form))
        # nothing happened: both identities, the session alive, the other session alive too
        self.assertEqual(len(self.me(b)["identities"]), 2)
        self.assertIsNotNone(self.me(other))
        # the right token works (so the refusals above were about the token, not the request)
        self.assertEqual(self.post(b, "/.auth/unlink/facebook", token), 200)
        self.assertEqual(self.post(b, "/.auth/logout", token, form=True), 200)
        self.assertIsNone(self.me(b))
        self.assertIsNotNone(self.me(other))


class PendingSigninTest(IdentityTestCase):
    def start_signins(self, b, n):
        locations = []
        for i in range(n):
            status, hdrs, _, _ = b.get(self.public + "/.auth/login/google?" + urllib.parse.urlencode(
                {"return_to": "/app/x", "login_hint": "pend%d@example.com" % i}), follow=False)
            self.assertEqual(status, 302)
            locations.append(hdrs["location"])
        return locations

    def test_only_the_newest_three_of_five_pending_signins_complete(self):
        b = Browser()
        locations = self.start_signins(b, 5)
        # the two oldest were dropped from the browser's pending cookie: their states are unknown
        for loc in locations[:2]:
            status, _, body, _ = b.get(loc)
            self.assertEqual(status, 400, body[:200])
            self.assertIn(b"state_unknown", body)
            self.assertIsNone(b.cookie("jg_session"))
        # the oldest one kept completes
        status, _, body, url = b.get(locations[2])
        self.assertEqual(status, 200, body[:200])
        self.assertTrue(url.endswith("/app/x"), url)
        self.assertEqual(self.me(b)["identities"][0]["email"], "pend2@example.com")

    def seal_login_cookie(self, value, change):
        """Opens a jg_login cookie with the store's session secret (as the gateway does: AES-256-GCM,
        key HMAC-SHA256(SHA-256(secret), label), the cookie name as AAD), lets change() edit the
        pending sign-ins, and seals the result again."""
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM
        with open(os.path.join(self.store, "session.key"), "rb") as f:
            master = hashlib.sha256(f.read().rstrip(b"\r\n")).digest()
        key = hmac.new(master, b"journeygate login state v1", hashlib.sha256).digest()
        raw = b64url_decode(value)
        pending = json.loads(AESGCM(key).decrypt(raw[:12], raw[12:], b"jg_login"))
        change(pending)
        nonce = os.urandom(12)
        return b64url_encode(nonce + AESGCM(key).encrypt(nonce, json.dumps(pending).encode(), b"jg_login"))

    def complete_with_cookie(self, location, login_cookie):
        # the provider answers at once; the callback carries only this jg_login cookie
        return Browser().get(location, headers={"Cookie": "jg_login=" + login_cookie})

    def test_a_pending_signin_past_its_lifetime_is_refused(self):
        b = Browser()
        loc = self.start_signins(b, 1)[0]
        cookie = b.cookie("jg_login")
        # control: the cookie re-sealed unchanged completes (the sealing here is the gateway's)
        status, _, body, _ = self.complete_with_cookie(loc, self.seal_login_cookie(cookie, lambda p: None))
        self.assertEqual(status, 200, body[:200])

        b = Browser()
        loc = self.start_signins(b, 1)[0]
        now_ms = int(time.time() * 1000)

        def expire(pending):
            self.assertEqual(len(pending), 1)
            self.assertGreater(pending[0]["e"], now_ms)  # the lifetime the gateway gave it
            pending[0]["e"] = now_ms - 1000

        status, _, body, _ = self.complete_with_cookie(loc, self.seal_login_cookie(b.cookie("jg_login"), expire))
        self.assertEqual(status, 400, body[:200])
        self.assertIn(b"state_expired", body)


class AdminTokenTest(IdentityTestCase):
    def admin(self, method, path, token=None, scheme="Bearer"):
        h = {} if token is None else {"Authorization": "%s %s" % (scheme, token)}
        req = urllib.request.Request("http://127.0.0.1:%d%s" % (self.admin_port, path), method=method, headers=h)
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                return r.status, r.read()
        except urllib.error.HTTPError as e:
            return e.code, e.read()

    def test_admin_endpoints_refuse_a_missing_or_wrong_token(self):
        b = Browser()
        self.google(b, "admin-grace@example.com")
        cid = self.me(b)["customer_id"]
        paths = [("GET", "/admin/customers/" + cid), ("GET", "/admin/customers/%s/journey" % cid),
                 ("GET", "/admin/figures"), ("GET", "/admin/audit"), ("DELETE", "/admin/customers/" + cid)]
        wrong = ADMIN_TOKEN[:-1] + "0"
        for method, path in paths:
            for token, scheme in ((None, None), (wrong, "Bearer"), ("", "Bearer"), (ADMIN_TOKEN, "Basic"),
                                  (ADMIN_TOKEN + "x", "Bearer"), (ADMIN_TOKEN[:-1], "Bearer")):
                status, _ = self.admin(method, path, token, scheme)
                self.assertEqual(status, 401, (method, path, token, scheme))
        # nothing was erased; with the token each answers
        self.assertEqual(self.me(b)["customer_id"], cid)
        for method, path in paths[:4]:
            self.assertEqual(self.admin(method, path, ADMIN_TOKEN)[0], 200, path)


class RogueModesTest(IdentityTestCase):
    """rogue-op modes no other test uses (the others are in test_signin, test_policies, test_audit)."""

    def attempt(self, mode, email="rogue-ivy@example.com"):
        self.op.admin("/admin/mode", {"mode": mode})
        b = Browser()
        status, _, body, _ = self.google(b, email)
        return b, status, body

    def test_several_audiences_with_a_foreign_azp_are_refused(self):
        b, status, body = self.attempt("multi_aud_wrong_azp")
        self.assertEqual(status, 401, body[:200])
        self.assertIn(b"id_token_invalid:azp", body)
        self.assertIsNone(self.me(b))

    def test_a_token_without_email_signs_in_without_one(self):
        b, status, body = self.attempt("missing_email", "rogue-noemail@example.com")
        self.assertEqual(status, 200, body[:200])
        me = self.me(b)
        self.assertEqual(len(me["identities"]), 1)
        self.assertFalse(me["identities"][0].get("email"))
        self.assertFalse(me["identities"][0].get("email_verified"))

    def test_a_hanging_jwks_never_blocks_proxying_and_signin_waits_for_the_keys(self):
        # a second gateway starts while the provider's JWKS hangs: it has no keys to check tokens with
        self.op.admin("/admin/mode", {"mode": "hang_jwks"})
        cfg = json.loads(json.dumps(self.cfg))
        port = free_port()
        cfg["listen"][0]["port"] = port
        cfg["public_url"] = "http://127.0.0.1:%d" % port
        cfg["store"]["path"] = os.path.join(self.tmpdir, "store2")
        del cfg["admin"]
        gw2 = self.start(cfg)
        deadline = time.monotonic() + 30
        while self.op.admin("/admin/stats")["jwks_fetches"] == 0 and time.monotonic() < deadline:
            time.sleep(0.1)
        self.assertGreater(self.op.admin("/admin/stats")["jwks_fetches"], 0)
        # no sign-in starts without the keys, and the site keeps answering
        status, _, _, _ = Browser().get(gw2.config["public_url"] + "/.auth/login/google", follow=False)
        self.assertEqual(status, 503)
        self.assertEqual(Browser().get(gw2.config["public_url"] + "/hello")[0], 200)
        # once the keys answer again, the gateway loads them by itself
        self.op.admin("/admin/mode", {"mode": "good"})
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if Browser().get(gw2.config["public_url"] + "/.auth/login/google", follow=False)[0] == 302:
                break
            time.sleep(0.5)
        self.assertEqual(Browser().get(gw2.config["public_url"] + "/.auth/login/google", follow=False)[0], 302)


class FacebookModesTest(IdentityTestCase):
    def attempt(self, mode):
        self.fb.admin("/admin/mode", {"mode": mode})
        b = Browser()
        status, _, body, _ = self.facebook(b, "2001")
        return b, status, body

    def test_cancelled_dialog_is_a_provider_error(self):
        b, status, body = self.attempt("deny")
        self.assertEqual(status, 401, body[:200])
        self.assertIn(b"provider_error", body)
        self.assertIsNone(self.me(b))

    def test_html_answer_to_the_code_exchange_is_refused(self):
        b, status, body = self.attempt("html")
        self.assertIn(status, (401, 502), body[:200])
        self.assertIn(b"token_exchange_failed", body)
        self.assertIsNone(self.me(b))

    def test_hanging_graph_api_times_out_and_the_site_keeps_answering(self):
        results = {}

        def signin():
            results["answer"] = self.attempt("hang")

        t = threading.Thread(target=signin)
        t.start()
        # while the sign-in waits on the hanging Graph API, the site answers
        deadline = time.monotonic() + 30
        while self.fb.admin("/admin/stats")["access_token_calls"] == 0 and time.monotonic() < deadline:
            time.sleep(0.1)
        self.assertEqual(Browser().get(self.public + "/hello")[0], 200)
        t.join(60)
        self.assertFalse(t.is_alive())
        b, status, body = results["answer"]
        self.assertIn(status, (502, 503, 504), body[:200])
        self.assertIsNone(self.me(b))
        self.fb.admin("/admin/mode", {"mode": "good"})
        b, status, body = self.attempt("good")
        self.assertEqual(status, 200, body[:200])


if __name__ == "__main__":
    unittest.main()
