"""Integration: what providers assert is validated where it enters. Hostile claims (control
characters in sub, email, name, hd; over-long sub), a JWS header with `crit`, step-up counted from
the provider's auth_time (not from the gateway's session), and stale Facebook signed_requests,
against the hostile OP (rogue-op.mjs) and the Facebook stand-in."""

import json
import time
import unittest
import urllib.parse

from jgtest import Browser, GatewayTestCase, Peer, base_config, free_port, native_id_token, post_token, wait_login_ready

APP_ID, APP_SECRET = "1234567890", "fb-app-secret-abcdef"
CLIENT_ID, CLIENT_SECRET = "jg-web-client", "jg-web-secret-0123456789"
MOBILE_ID, MOBILE_SECRET = "jg-android-client", "jg-android-secret"

HOSTILE_CLAIMS = {
    "sub_cr": "claim_invalid:sub",
    "sub_lf": "claim_invalid:sub",
    "sub_nul": None,  # jansson refuses the token's \u0000 before any claim is read: refused all the same
    "sub_too_long": "claim_invalid:sub",
    "email_crlf": "claim_invalid:email",
    "email_malformed": "claim_invalid:email",
    "name_ctl": "claim_invalid:name",
    "name_c1": "claim_invalid:name",
    "hd_malformed": "claim_invalid:hd",
    "crit": "id_token_invalid:crit",
    "crit_malformed": "id_token_invalid:crit",
}


class ClaimsTest(GatewayTestCase):
    def setUp(self):
        super().setUp()
        self.up = self.upstream()
        port = free_port()
        self.public = "http://127.0.0.1:%d" % port
        self.op = self.start_op(CLIENT_ID, CLIENT_SECRET, self.public, extra_clients=[(MOBILE_ID, MOBILE_SECRET)],
                                redirect_uris=["com.example.app:/oauth"])
        self.fb = Peer("facebook.mjs", ["--app-id", APP_ID, "--app-secret", APP_SECRET,
                                        "--redirect-uri", self.public + "/.auth/login/facebook/callback",
                                        "--persona", "7001:Fay Good:fay@example.com",
                                        "--persona", "7002:Eve\r\nX-Injected 1:eve@example.com",
                                        "--persona", "7003:Mal Formed:mal@@example.com",
                                        "--persona", "7004:Ned \x01Ctl:"], self.tmpdir)
        self.addCleanup(self.fb.stop)
        cfg = base_config(
            {"up": {"url": self.up.url}},
            [{"name": "app", "match": {"path_prefix": "/app/"}, "upstream": "up", "auth": "any", "policy": "signed"},
             {"name": "account", "match": {"path_prefix": "/account/"}, "upstream": "up", "auth": "any",
              "policy": "fresh"},
             {"name": "site", "match": {"path_prefix": "/"}, "upstream": "up", "auth": "none"}],
            providers={
                "google": {"type": "oidc", "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET,
                           "issuer": self.op.url, "insecure_http": True, "mobile_client_ids": [MOBILE_ID]},
                "facebook": {"type": "facebook", "app_id": APP_ID, "app_secret": APP_SECRET,
                             "graph_url": self.fb.url + "/v19.0", "dialog_url": self.fb.url + "/v19.0/dialog/oauth",
                             "insecure_http": True}},
            # ten minutes: a sign-in the OP made just now is fresh, one an hour old is not
            policies={"signed": {"rules": [{"allow": {"signed_in": True}}]},
                      "fresh": {"rules": [{"allow": {"signed_in": True, "max_session_age_s": 600}}]}})
        cfg["listen"][0]["port"] = port
        cfg["public_url"] = self.public
        self.gw = self.start(cfg)
        wait_login_ready(self.public)

    # ------------------------------------------------------------------ helpers

    def google_login(self, email, extra="", b=None):
        b = b or Browser()
        q = urllib.parse.urlencode({"return_to": "/app/x", "login_hint": email})
        status, _, body, url = b.get(self.public + "/.auth/login/google?" + q + extra, headers={"Accept": "text/html"})
        return b, status, body, url

    def facebook_login(self, persona, path="/.auth/login/facebook?return_to=/app/x", b=None):
        b = b or Browser()
        status, hdrs, _, _ = b.get(self.public + path, follow=False)
        self.assertEqual(status, 302)
        dialog = hdrs["location"]
        status, _, body, url = b.get(dialog + "&persona=" + persona, headers={"Accept": "text/html"})
        return b, status, body, url, dialog

    def me(self, b):
        status, _, body, _ = b.get(self.public + "/.auth/me", headers={"Accept": "application/json"})
        return json.loads(body) if status == 200 else None

    def native_id_token(self, email="nat@example.com"):
        """An ID token for the mobile client, as a phone's native Google sign-in hands it over."""
        return native_id_token(self.op.url, MOBILE_ID, MOBILE_SECRET, email)

    def token_exchange(self, body):
        status, _, answer = post_token(self.public, body, {"Content-Type": "application/json"})
        return status, answer

    def bearer_get(self, token, path):
        return self.gw.request("GET", path, headers={"Authorization": "Bearer " + token, "Accept": "application/json"})

    def assert_step_up_refused(self, token, label):
        status, hdrs, body = self.bearer_get(token, "/account/settings")
        self.assertEqual(status, 401, label)
        self.assertIn("insufficient_user_authentication", hdrs.get("www-authenticate", ""), label)
        self.assertEqual(json.loads(body)["error"], "step_up_required", label)

    # ------------------------------------------------------------------ claims and crit

    def test_hostile_claims_and_crit_are_refused_at_the_callback(self):
        for mode, reason in HOSTILE_CLAIMS.items():
            self.op.admin("/admin/mode", {"mode": mode})
            seen = len(self.up.seen)
            b, status, body, _ = self.google_login("hal@example.com")
            self.assertEqual(status, 401, mode)
            self.assertIn(b"no session was created", body, mode)
            if reason is not None:
                self.assertIn(reason.encode(), body, mode)
            self.assertIsNone(self.me(b), mode)
            self.assertEqual(len(self.up.seen), seen, mode + ": something reached the upstream")
        # the same OP in good mode signs in: the refusals above were the claims', nothing else
        self.op.admin("/admin/mode", {"mode": "good"})
        b, status, body, _ = self.google_login("hal@example.com")
        self.assertEqual(status, 200, body[:300])
        self.assertIsNotNone(self.me(b))

    def test_hostile_claims_and_crit_are_refused_at_the_token_endpoint(self):
        for mode, reason in HOSTILE_CLAIMS.items():
            self.op.admin("/admin/mode", {"mode": mode})
            status, ans = self.token_exchange({"provider": "google", "id_token": self.native_id_token()})
            self.assertEqual(status, 401, mode)
            self.assertEqual(ans["error"], "invalid_token", mode)
            self.assertNotIn("access_token", ans, mode)
            if reason is not None:
                self.assertEqual(ans["error_description"], reason, mode)
        self.op.admin("/admin/mode", {"mode": "good"})
        status, ans = self.token_exchange({"provider": "google", "id_token": self.native_id_token()})
        self.assertEqual(status, 200, ans)

    def test_hostile_facebook_profiles_are_refused(self):
        for persona, reason in (("7002", "claim_invalid:name"), ("7003", "claim_invalid:email"),
                                ("7004", "claim_invalid:name")):
            seen = len(self.up.seen)
            b, status, body, _, _ = self.facebook_login(persona)
            self.assertEqual(status, 401, persona)
            self.assertIn(reason.encode(), body, persona)
            self.assertIsNone(self.me(b), persona)
            self.assertEqual(len(self.up.seen), seen, persona)
            token = self.fb.admin("/admin/token", {"persona": persona})["access_token"]
            status, ans = self.token_exchange({"provider": "facebook", "access_token": token})
            self.assertEqual((status, ans.get("error_description")), (401, reason), persona)
        b, status, body, _, _ = self.facebook_login("7001")
        self.assertEqual(status, 200, body[:300])
        got = dict((k.lower(), v) for k, v in json.loads(body)["headers"])
        self.assertEqual(got["x-auth-subject"], "7001")

    def test_malformed_base64url_in_tokens_is_refused_and_the_gateway_goes_on(self):
        # cjose's base64url decoder asserts (aborts the process) on input such as "a=b": every
        # token and signed_request is checked before cjose sees it
        for token in ("eyJhbGciOiJSUzI1NiJ9.o=LvMiL.abc", "a=b.eyJ9.abc", "eyJhbGciOiJSUzI1NiJ9.eyJ9.a==="):
            status, ans = self.token_exchange({"provider": "google", "id_token": token})
            self.assertEqual((status, ans["error_description"]), (401, "id_token_invalid:format"), token)
        for sr in ("o=LvMiL.mel0aG", "a=b.eyJ9", "abc.a==="):
            status, _, _ = Browser().post(self.public + "/.auth/facebook/data-deletion",
                                          urllib.parse.urlencode({"signed_request": sr}).encode())
            self.assertEqual(status, 400, sr)
        self.assertIsNone(self.gw.proc.poll(), "the gateway died")
        self.assertEqual(self.gw.request("GET", "/")[0], 200)

    # ------------------------------------------------------------------ step-up from auth_time

    def test_silent_relogin_with_an_old_provider_sign_in_does_not_satisfy_step_up(self):
        # the happy path first: a sign-in the OP just made opens the step-up route
        b, status, _, url = self.google_login("sam@example.com")
        self.assertEqual(status, 200)
        self.assertEqual(b.get(self.public + "/account/settings", headers={"Accept": "application/json"})[0], 200)
        # the OP reuses a sign-in an hour old: a brand-new gateway session, but no fresh authentication
        self.op.admin("/admin/mode", {"mode": "stale_auth_time"})
        b2, status, _, _ = self.google_login("sam@example.com")
        self.assertEqual(status, 200)
        self.assertEqual(b2.get(self.public + "/app/x", headers={"Accept": "application/json"})[0], 200)
        status, hdrs, _, _ = b2.get(self.public + "/account/settings", headers={"Accept": "text/html"}, follow=False)
        self.assertEqual(status, 302)
        self.assertEqual(hdrs["location"], "/.auth/login/google?reauth=1&return_to=%2Faccount%2Fsettings")
        status, hdrs, _, _ = b2.get(self.public + "/account/settings", headers={"Accept": "application/json"})
        self.assertEqual(status, 401)
        self.assertIn("insufficient_user_authentication", hdrs["www-authenticate"])
        # an OP that says nothing of auth_time proves no freshness either
        self.op.admin("/admin/mode", {"mode": "no_auth_time"})
        b3, status, _, _ = self.google_login("sam@example.com")
        self.assertEqual(status, 200)
        self.assertEqual(b3.get(self.public + "/account/settings", headers={"Accept": "application/json"})[0], 401)
        # the step-up flow, with the OP really signing the person in again, opens it
        self.op.admin("/admin/mode", {"mode": "good"})
        status, _, _, url = b2.get(self.public + "/.auth/login/google?reauth=1&return_to=/account/settings&"
                                   "login_hint=sam@example.com")
        self.assertEqual(status, 200)
        self.assertTrue(url.endswith("/account/settings"), url)

    def test_an_old_id_token_at_the_token_endpoint_gives_no_step_up(self):
        for mode in ("stale_auth_time", "no_auth_time"):
            self.op.admin("/admin/mode", {"mode": mode})
            status, ans = self.token_exchange({"provider": "google", "id_token": self.native_id_token()})
            self.assertEqual(status, 200, ans)
            self.assertEqual(self.bearer_get(ans["access_token"], "/app/x")[0], 200, mode)
            self.assert_step_up_refused(ans["access_token"], mode)
        # a Facebook access token proves no time of authentication at all
        token = self.fb.admin("/admin/token", {"persona": "7001"})["access_token"]
        status, ans = self.token_exchange({"provider": "facebook", "access_token": token})
        self.assertEqual(status, 200, ans)
        self.assert_step_up_refused(ans["access_token"], "facebook")
        # a token whose auth_time is now opens it
        self.op.admin("/admin/reset", {})
        status, ans = self.token_exchange({"provider": "google", "id_token": self.native_id_token("new@example.com")})
        self.assertEqual(status, 200, ans)
        self.assertEqual(self.bearer_get(ans["access_token"], "/account/settings")[0], 200)

    def test_facebook_step_up_goes_through_reauthentication(self):
        b, status, _, _, dialog = self.facebook_login("7001")
        self.assertEqual(status, 200)
        self.assertNotIn("auth_type", dialog)
        # an ordinary Facebook sign-in says nothing of when the person authenticated
        status, hdrs, _, _ = b.get(self.public + "/account/settings", headers={"Accept": "text/html"}, follow=False)
        self.assertEqual(status, 302)
        self.assertEqual(hdrs["location"], "/.auth/login/facebook?reauth=1&return_to=%2Faccount%2Fsettings")
        before = self.fb.admin("/admin/stats")["reauthenticate_dialogs"]
        b, status, _, url, dialog = self.facebook_login("7001", hdrs["location"], b)
        self.assertEqual(urllib.parse.parse_qs(urllib.parse.urlsplit(dialog).query)["auth_type"], ["reauthenticate"])
        self.assertEqual(self.fb.admin("/admin/stats")["reauthenticate_dialogs"], before + 1)
        self.assertEqual(status, 200)
        self.assertTrue(url.endswith("/account/settings"), url)

    # ------------------------------------------------------------------ signed_request

    def test_stale_or_malformed_signed_requests_are_refused(self):
        now = int(time.time())

        def post(**kw):
            sr = self.fb.admin("/admin/signed-request", kw)["signed_request"]
            return Browser().post(self.public + "/.auth/facebook/data-deletion",
                                  urllib.parse.urlencode({"signed_request": sr}).encode())[:3:2]

        for label, kw in (("an hour old", {"issued_at": now - 3600}),
                          ("eleven minutes old", {"issued_at": now - 660}),
                          ("an hour ahead", {"issued_at": now + 3600}),
                          ("no issued_at", {"issued_at": None}),
                          ("issued_at a string", {"issued_at": str(now)}),
                          ("issued_at a float", {"issued_at": now + 0.5}),
                          ("user_id with a line break", {"user_id": "7001\r\nX: 1"}),
                          ("user_id not digits", {"user_id": "7001abc"}),
                          ("user_id empty", {"user_id": ""}),
                          ("user_id too long", {"user_id": "7" * 65}),
                          ("user_id a list", {"user_id": ["7001"]})):
            status, body = post(**kw)
            self.assertEqual(status, 400, label)
            self.assertEqual(json.loads(body)["error"], "invalid_request", label)
        # a fresh one is accepted (issued a few seconds ago, as Facebook posts it)
        status, body = post(user_id="7001", issued_at=now - 5)
        self.assertEqual(status, 200, body)
        self.assertIn("confirmation_code", json.loads(body))


if __name__ == "__main__":
    unittest.main()
