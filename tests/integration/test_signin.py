"""Integration: browser sign-in through the real binary against a real OpenID Provider
(oidc-provider from npm, playing Google) and hostile-token cases against rogue-op."""

import json
import time
import unittest
import urllib.parse

from jgtest import Browser, GatewayTestCase, Peer, base_config, free_port

CLIENT_ID, CLIENT_SECRET = "jg-test-client", "jg-test-secret-0123456789"


def routes():
    return [
        {"name": "app", "match": {"path_prefix": "/app"}, "upstream": "up", "auth": "session", "policy": "signed",
         "channel": "web"},
        {"name": "api", "match": {"path_prefix": "/api/"}, "upstream": "up", "auth": "bearer", "policy": "signed",
         "channel": "mobile"},
        {"name": "site", "match": {"path_prefix": "/"}, "upstream": "up", "auth": "none"},
    ]


class SigninTestCase(GatewayTestCase):
    op_script = "google-op.mjs"
    provider_type = "google"

    def setUp(self):
        super().setUp()
        self.up = self.upstream()
        port = free_port()
        self.public = "http://127.0.0.1:%d" % port
        callback = self.public + "/.auth/login/idp/callback"
        self.op = Peer(self.op_script, ["--client-id", CLIENT_ID, "--client-secret", CLIENT_SECRET,
                                        "--redirect-uri", callback], self.tmpdir)
        self.addCleanup(self.op.stop)
        cfg = base_config({"up": {"url": self.up.url}}, routes(),
                          providers={"idp": {"type": self.provider_type, "client_id": CLIENT_ID,
                                             "client_secret": CLIENT_SECRET, "issuer": self.op.url,
                                             "insecure_http": True, "jwks_min_refresh_s": 1,
                                             "mobile_client_ids": ["jg-mobile-client"]}},
                          policies={"signed": {"rules": [{"allow": {"signed_in": True}}]}})
        cfg["listen"][0]["port"] = port
        cfg["public_url"] = self.public
        self.gw = self.start(cfg)
        self.wait_ready()

    def wait_ready(self):
        # discovery and keys load in the background; a login before that answers 503
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            status, _, _, _ = Browser().get(self.public + "/.auth/login/idp", follow=False)
            if status == 302:
                return
            time.sleep(0.2)
        self.fail("provider never became ready")

    def login(self, browser, email="alice@example.com", return_to="/app/home"):
        q = urllib.parse.urlencode({"return_to": return_to, "login_hint": email})
        return browser.get(self.public + "/.auth/login/idp?" + q)

    def assert_signed_out(self, browser):
        self.assertIsNone(browser.cookie("jg_session"))
        status, _, _, _ = browser.get(self.public + "/.auth/me")
        self.assertEqual(status, 401)


class GoogleSigninTest(SigninTestCase):
    def test_full_code_flow_reaches_upstream_with_identity(self):
        b = Browser()
        status, _, body, url = self.login(b)
        self.assertEqual(status, 200, body[:300])
        self.assertTrue(url.endswith("/app/home"), url)
        echo = json.loads(body)
        got = dict((k.lower(), v) for k, v in echo["headers"])
        self.assertRegex(got["x-customer-id"], r"^c_[a-z2-7]{24}$")
        self.assertEqual(got["x-customer-email"], "alice@example.com")
        self.assertEqual(got["x-auth-provider"], "idp")
        self.assertTrue(got["x-auth-subject"])
        self.assertEqual(got["x-journey-channel"], "web")
        self.assertTrue(got["x-journey-session"])
        # the gateway's cookies never reach the upstream
        self.assertNotIn("jg_session", got.get("cookie", ""))
        self.assertNotIn("jg_login", got.get("cookie", ""))

        status, _, body, _ = b.get(self.public + "/.auth/me")
        self.assertEqual(status, 200)
        me = json.loads(body)
        self.assertEqual(me["customer_id"], got["x-customer-id"])
        self.assertEqual(me["identities"][0]["provider"], "idp")
        self.assertEqual(me["identities"][0]["email"], "alice@example.com")
        self.assertTrue(me["identities"][0]["email_verified"])
        self.assertEqual(me["session"]["channel"], "web")

        # the same person again: the same customer
        b2 = Browser()
        status, _, body, _ = self.login(b2)
        got2 = dict((k.lower(), v) for k, v in json.loads(body)["headers"])
        self.assertEqual(got2["x-customer-id"], got["x-customer-id"])
        self.assertNotEqual(b2.cookie("jg_session"), b.cookie("jg_session"))

    def test_unauthenticated_browser_goes_to_signin_page_and_api_gets_401(self):
        b = Browser()
        status, hdrs, _, _ = b.get(self.public + "/app/x?y=1", follow=False)
        self.assertEqual(status, 302)
        self.assertEqual(hdrs["location"], "/.auth/signin?return_to=%2Fapp%2Fx%3Fy%3D1")
        status, hdrs, body, _ = b.get(self.public + hdrs["location"])
        self.assertEqual(status, 200)
        self.assertIn(b"/.auth/login/idp?return_to=%2Fapp%2Fx%3Fy%3D1", body)
        status, hdrs, body, _ = b.get(self.public + "/app/x", headers={"Accept": "application/json"}, follow=False)
        self.assertEqual(status, 401)
        self.assertIn("Bearer", hdrs["www-authenticate"])
        self.assertFalse([s for s in self.up.seen if s["path"].startswith("/app")])

    def test_logout_needs_csrf_and_kills_the_session_server_side(self):
        b = Browser()
        self.login(b)
        token = b.cookie("jg_session")
        self.assertTrue(token)
        # a cross-site POST without the token is refused
        status, _, _ = b.post(self.public + "/.auth/logout", b"")
        self.assertEqual(status, 403)
        self.assertEqual(b.get(self.public + "/.auth/me")[0], 200)
        status, _, page, _ = b.get(self.public + "/.auth/logout")
        self.assertEqual(status, 200)
        csrf = page.decode().split('name="csrf" value="')[1].split('"')[0]
        status, _, _ = b.post(self.public + "/.auth/logout", urllib.parse.urlencode({"csrf": csrf}).encode(),
                              headers={"Content-Type": "application/x-www-form-urlencoded"})
        self.assertEqual(status, 200)
        self.assert_signed_out(b)
        # the old cookie replayed is worthless
        replay = Browser()
        status, _, _, _ = replay.get(self.public + "/.auth/me", headers={"Cookie": "jg_session=" + token})
        self.assertEqual(status, 401)

    def test_return_to_open_redirects_fall_back_to_root(self):
        for bad in ("//evil.example/", "/\\evil.example", "https://evil.example/", "javascript:alert(1)",
                    "/%2F%2Fevil.example", "/%5Cevil", "/x\ty", "/x\r\nSet-Cookie: a=b", "evil"):
            b = Browser()
            status, _, _, url = self.login(b, return_to=bad)
            self.assertEqual(status, 200, bad)
            self.assertEqual(urllib.parse.urlsplit(url).path, "/", bad)

    def test_callback_refusals_create_no_session(self):
        b = Browser()
        # no state cookie at all
        status, _, body, _ = b.get(self.public + "/.auth/login/idp/callback?code=abc&state=xyz")
        self.assertEqual(status, 400)
        self.assertIn(b"state_cookie_missing", body)
        # duplicate parameters
        status, _, body, _ = b.get(self.public + "/.auth/login/idp/callback?code=a&code=b&state=x")
        self.assertEqual(status, 400)
        self.assertIn(b"duplicate_parameter", body)
        # an error answer from the provider
        status, _, body, _ = b.get(self.public + "/.auth/login/idp/callback?error=access_denied&state=x")
        self.assertEqual(status, 401)
        self.assertIn(b"provider_error", body)
        # a real pending login, then a callback with a state we never issued
        status, hdrs, _, _ = b.get(self.public + "/.auth/login/idp?login_hint=bob@example.com", follow=False)
        self.assertEqual(status, 302)
        status, _, body, _ = b.get(self.public + "/.auth/login/idp/callback?code=abc&state=forged")
        self.assertEqual(status, 400)
        self.assertIn(b"state_unknown", body)
        self.assert_signed_out(b)

    def test_replayed_callback_is_refused(self):
        b = Browser()
        status, hdrs, _, _ = b.get(self.public + "/.auth/login/idp?login_hint=carol@example.com", follow=False)
        login_cookie = b.cookie("jg_login")
        # follow the provider by hand to capture the callback URL
        status, hdrs, _, _ = b.get(hdrs["location"], follow=False)
        callback = None
        for _ in range(10):
            loc = hdrs.get("location", "")
            if "/.auth/login/idp/callback" in loc:
                callback = loc if loc.startswith("http") else self.op.url + loc
                break
            nxt = loc if loc.startswith("http") else self.op.url + loc
            status, hdrs, _, _ = b.get(nxt, follow=False)
        self.assertIsNotNone(callback)
        status, _, _, _ = b.get(callback)
        self.assertEqual(status, 200)
        # an attacker replays the same callback with the old login cookie
        attacker = Browser()
        status, _, body, _ = attacker.get(callback, headers={"Cookie": "jg_login=" + login_cookie})
        self.assertEqual(status, 400)
        self.assertIn(b"state_replayed", body)
        self.assert_signed_out(attacker)

    def test_forged_and_truncated_session_cookies_are_signed_out(self):
        b = Browser()
        self.login(b)
        token = b.cookie("jg_session")
        for bad in (token[:-1], token[:-1] + ("A" if token[-1] != "A" else "B"), "x" * 43, "", "%00" * 10,
                    "a" * 5000):
            status, _, _, _ = Browser().get(self.public + "/.auth/me", headers={"Cookie": "jg_session=" + bad})
            self.assertEqual(status, 401, bad[:20])
            status, _, _, _ = Browser().get(self.public + "/app/x", headers={"Cookie": "jg_session=" + bad,
                                                                             "Accept": "application/json"})
            self.assertEqual(status, 401)

    def test_pending_logins_are_bounded(self):
        b = Browser()
        for i in range(6):
            status, _, _, _ = b.get(self.public + "/.auth/login/idp?login_hint=p%d@example.com" % i, follow=False)
            self.assertEqual(status, 302)
        self.assertLess(len(b.cookie("jg_login")), 2000)


class RogueProviderTest(SigninTestCase):
    op_script = "rogue-op.mjs"
    provider_type = "oidc"

    def attempt(self, mode):
        self.op.admin("/admin/mode", {"mode": mode})
        b = Browser()
        status, _, body, _ = self.login(b)
        return b, status, body

    def test_good_token_signs_in(self):
        b, status, body = self.attempt("good")
        self.assertEqual(status, 200, body[:300])
        self.assertTrue(b.cookie("jg_session"))

    def test_hostile_tokens_create_no_session(self):
        cases = {
            "bad_signature": b"id_token_invalid:signature",
            "alg_none": b"id_token_invalid:alg",
            "hs256_pubkey": b"id_token_invalid:alg",
            "ps256": b"id_token_invalid:alg",
            "rs512": b"id_token_invalid:alg",
            "wrong_iss": b"id_token_invalid:iss",
            "wrong_aud": b"id_token_invalid:aud",
            "multi_aud_no_azp": b"id_token_invalid:azp",
            "wrong_nonce": b"nonce_mismatch",
            "expired": b"id_token_invalid:exp",
            "nbf_future": b"id_token_invalid:nbf",
            "iat_future": b"id_token_invalid:iat",
            "no_exp": b"id_token_invalid:exp",
            "unknown_kid": b"id_token_invalid:kid",
            "html_token": b"token_exchange_failed",
            "huge_token": b"token_exchange_failed",
        }
        for mode, reason in cases.items():
            b, status, body = self.attempt(mode)
            self.assertIn(status, (401, 502), mode)
            self.assertIn(reason, body, mode)
            self.assert_signed_out(b)

    def test_key_rotation_refetches_once(self):
        self.attempt("good")
        before = self.op.admin("/admin/stats")["jwks_fetches"]
        time.sleep(1.1)  # past jwks_min_refresh_s
        b, status, body = self.attempt("rotate")
        self.assertEqual(status, 200, body[:300])
        after = self.op.admin("/admin/stats")["jwks_fetches"]
        self.assertEqual(after - before, 1)

    def test_unknown_kid_refetch_is_throttled(self):
        self.attempt("good")
        time.sleep(1.1)
        before = self.op.admin("/admin/stats")["jwks_fetches"]
        t0 = time.monotonic()
        for _ in range(8):
            self.attempt("unknown_kid")
        elapsed = time.monotonic() - t0
        after = self.op.admin("/admin/stats")["jwks_fetches"]
        # at most one refetch per jwks_min_refresh_s (1 s here), however many tokens name the unknown key
        self.assertLessEqual(after - before, 1 + int(elapsed))
        self.assertLess(after - before, 8)


if __name__ == "__main__":
    unittest.main()


class ProviderOptionsTest(GatewayTestCase):
    """Discovery issuer check, client_secret_post, Workspace hd, RFC 9207 iss, provider mix-up."""

    def gateway(self, op, extra=None, providers_extra=None):
        port = free_port()
        public = "http://127.0.0.1:%d" % port
        prov = {"type": "oidc", "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET, "issuer": op.url,
                "insecure_http": True}
        prov.update(extra or {})
        providers = {"idp": prov}
        providers.update(providers_extra or {})
        cfg = base_config({"up": {"url": self.upstream().url}}, routes(), providers=providers,
                          policies={"signed": {"rules": [{"allow": {"signed_in": True}}]}})
        cfg["listen"][0]["port"] = port
        cfg["public_url"] = public
        return self.start(cfg), public

    def op(self, public_port_hint, *args):
        op = Peer("rogue-op.mjs", ["--client-id", CLIENT_ID, "--client-secret", CLIENT_SECRET,
                                   "--redirect-uri", public_port_hint] + list(args), self.tmpdir)
        self.addCleanup(op.stop)
        return op

    def ready(self, public, name="idp"):
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if Browser().get(public + "/.auth/login/%s" % name, follow=False)[0] == 302:
                return True
            time.sleep(0.2)
        return False

    def test_discovery_naming_another_issuer_is_refused(self):
        port = free_port()
        op = self.op("http://127.0.0.1:%d/.auth/login/idp/callback" % port)
        op.admin("/admin/mode", {"mode": "wrong_discovery_issuer"})
        gw, public = self.gateway(op)
        self.assertFalse(self.ready(public))
        status, _, body, _ = Browser().get(public + "/.auth/login/idp", follow=False)
        self.assertEqual(status, 503)
        self.assertIn("discovery names issuer", gw.read_stderr())

    def start_pair(self, extra=None, op_args=()):
        # the OP must know the callback before the gateway exists: pick the gateway port first
        port = free_port()
        op = self.op("http://127.0.0.1:%d/.auth/login/idp/callback" % port, *op_args)
        public = "http://127.0.0.1:%d" % port
        prov = {"type": "oidc", "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET, "issuer": op.url,
                "insecure_http": True}
        prov.update(extra or {})
        cfg = base_config({"up": {"url": self.upstream().url}}, routes(), providers={"idp": prov},
                          policies={"signed": {"rules": [{"allow": {"signed_in": True}}]}})
        cfg["listen"][0]["port"] = port
        cfg["public_url"] = public
        gw = self.start(cfg)
        self.assertTrue(self.ready(public))
        return op, gw, public

    def test_client_secret_post(self):
        # the OP refuses client_secret_basic for this client: only a gateway that posts the secret signs in
        op, gw, public = self.start_pair({"token_endpoint_auth": "client_secret_post"},
                                         ("--token-auth-method", "client_secret_post"))
        status, _, body, _ = Browser().get(public + "/.auth/login/idp?return_to=/app/x")
        self.assertEqual(status, 200, body[:200])
        # the same OP and a gateway left at the default (basic): refused at the token endpoint
        op, gw, public = self.start_pair(op_args=("--token-auth-method", "client_secret_post"))
        status, _, body, _ = Browser().get(public + "/.auth/login/idp?return_to=/app/x")
        self.assertIn(status, (401, 502), body[:200])
        self.assertIn(b"token_exchange_failed", body)
        # and the default is basic: an OP that insists on basic signs it in
        op, gw, public = self.start_pair(op_args=("--token-auth-method", "client_secret_basic"))
        status, _, body, _ = Browser().get(public + "/.auth/login/idp?return_to=/app/x")
        self.assertEqual(status, 200, body[:200])

    def test_workspace_hd_is_enforced_on_the_signed_claim(self):
        op, gw, public = self.start_pair({"hd": "example.com"}, ("--hd-domain", "example.com"))
        b = Browser()
        status, _, body, _ = b.get(public + "/.auth/login/idp?login_hint=alice@example.com&return_to=/app/x")
        self.assertEqual(status, 200, body[:200])
        op.admin("/admin/mode", {"mode": "hd_other"})
        b = Browser()
        status, _, body, _ = b.get(public + "/.auth/login/idp?login_hint=alice@example.com&return_to=/app/x")
        self.assertEqual(status, 401)
        self.assertIn(b"id_token_invalid:hd", body)
        # an account outside any Workspace has no hd claim at all
        op.admin("/admin/mode", {"mode": "good"})
        status, _, body, _ = Browser().get(public + "/.auth/login/idp?login_hint=x@gmail.example&return_to=/app/x")
        self.assertEqual(status, 401)

    def test_rfc9207_iss_and_provider_mixup(self):
        op, gw, public = self.start_pair()
        b = Browser()
        status, hdrs, _, _ = b.get(public + "/.auth/login/idp", follow=False)
        state = urllib.parse.parse_qs(urllib.parse.urlsplit(hdrs["location"]).query)["state"][0]
        status, _, body, _ = b.get(public + "/.auth/login/idp/callback?" + urllib.parse.urlencode(
            {"code": "c", "state": state, "iss": "https://evil.example"}))
        self.assertEqual(status, 400)
        self.assertIn(b"issuer_mismatch", body)

    def test_state_for_one_provider_is_refused_at_another(self):
        port = free_port()
        op = self.op("http://127.0.0.1:%d/.auth/login/idp/callback" % port,
                     "--redirect-uri", "http://127.0.0.1:%d/.auth/login/other/callback" % port)
        public = "http://127.0.0.1:%d" % port
        prov = {"type": "oidc", "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET, "issuer": op.url,
                "insecure_http": True}
        cfg = base_config({"up": {"url": self.upstream().url}}, routes(), providers={"idp": prov, "other": dict(prov)},
                          policies={"signed": {"rules": [{"allow": {"signed_in": True}}]}})
        cfg["listen"][0]["port"] = port
        cfg["public_url"] = public
        self.start(cfg)
        self.assertTrue(self.ready(public, "idp") and self.ready(public, "other"))
        b = Browser()
        status, hdrs, _, _ = b.get(public + "/.auth/login/idp", follow=False)
        state = urllib.parse.parse_qs(urllib.parse.urlsplit(hdrs["location"]).query)["state"][0]
        status, _, body, _ = b.get(public + "/.auth/login/other/callback?" + urllib.parse.urlencode(
            {"code": "c", "state": state}))
        self.assertEqual(status, 400)
        self.assertIn(b"state_foreign", body)
        self.assertIsNone(b.cookie("jg_session"))
