"""Integration: Facebook Login (browser and mobile) against the strict Graph API stand-in,
Google native-sign-in ID tokens for the mobile token endpoint, bearer routes, and a
provider that hangs while proxied traffic keeps its latency."""

import json
import threading
import time
import unittest
import urllib.parse
import urllib.request

from jgtest import Browser, GatewayTestCase, Peer, base_config, free_port, native_id_token, post_token

APP_ID, APP_SECRET = "1234567890", "fb-app-secret-abcdef"
CLIENT_ID, CLIENT_SECRET = "jg-web-client", "jg-web-secret-0123456789"
MOBILE_ID, MOBILE_SECRET = "jg-android-client", "jg-android-secret"


def routes():
    return [
        {"name": "app", "match": {"path_prefix": "/app"}, "upstream": "up", "auth": "session", "policy": "signed"},
        {"name": "api", "match": {"path_prefix": "/api/"}, "upstream": "up", "auth": "bearer", "policy": "signed",
         "channel": "mobile"},
        {"name": "site", "match": {"path_prefix": "/"}, "upstream": "up", "auth": "none"},
    ]


class ProvidersTest(GatewayTestCase):
    def setUp(self):
        super().setUp()
        self.up = self.upstream()
        port = free_port()
        self.public = "http://127.0.0.1:%d" % port
        self.fb = Peer("facebook.mjs", ["--app-id", APP_ID, "--app-secret", APP_SECRET,
                                        "--redirect-uri", self.public + "/.auth/login/facebook/callback",
                                        "--persona", "1001:Dana Example:dana@example.com",
                                        "--persona", "1002:Eli NoEmail:"], self.tmpdir)
        self.addCleanup(self.fb.stop)
        self.op = self.start_op(CLIENT_ID, CLIENT_SECRET, self.public,
                                extra_clients=[(MOBILE_ID, MOBILE_SECRET), ("someone-else", "x")],
                                redirect_uris=["com.example.app:/oauth"])
        cfg = base_config({"up": {"url": self.up.url}}, routes(),
                          providers={
                              "facebook": {"type": "facebook", "app_id": APP_ID, "app_secret": APP_SECRET,
                                           "graph_url": self.fb.url + "/v19.0",
                                           "dialog_url": self.fb.url + "/v19.0/dialog/oauth",
                                           "insecure_http": True, "http_timeout_s": 2},
                              "google": {"type": "oidc", "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET,
                                         "issuer": self.op.url, "insecure_http": True, "http_timeout_s": 1.5,
                                         "mobile_client_ids": [MOBILE_ID]}},
                          policies={"signed": {"rules": [{"allow": {"signed_in": True}}]}})
        cfg["listen"][0]["port"] = port
        cfg["public_url"] = self.public
        self.gw = self.start(cfg)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if Browser().get(self.public + "/.auth/login/google", follow=False)[0] == 302:
                break
            time.sleep(0.2)

    def token_exchange(self, body):
        return post_token(self.public, body, {"Content-Type": "application/json"})

    def native_id_token(self, client_id, secret, email="frank@example.com"):
        """What a phone's native Google sign-in hands the app: an ID token for its own client id."""
        return native_id_token(self.op.url, client_id, secret, email)

    def call_api(self, token, path="/api/orders"):
        return self.gw.request("GET", path, headers={"Authorization": "Bearer " + token} if token else {})

    def test_facebook_browser_login_with_appsecret_proof(self):
        b = Browser()
        status, _, body, url = b.get(self.public + "/.auth/login/facebook?return_to=/app/fb")
        self.assertEqual(status, 200, body[:300])
        got = dict((k.lower(), v) for k, v in json.loads(body)["headers"])
        self.assertEqual(got["x-auth-provider"], "facebook")
        self.assertEqual(got["x-auth-subject"], "1001")
        self.assertEqual(got["x-customer-email"], "dana@example.com")
        me = json.loads(b.get(self.public + "/.auth/me")[2])
        # Facebook email is not treated as verified unless the config says so
        self.assertFalse(me["identities"][0]["email_verified"])
        stats = self.fb.admin("/admin/stats")
        self.assertEqual(stats["me_calls"], 1)  # the stand-in refuses /me without a correct appsecret_proof
        self.assertEqual(stats["proof_failures"], 0)
        self.assertEqual(stats["access_token_calls"], 1)

    def test_facebook_mobile_token_and_bearer_route(self):
        fb_token = self.fb.admin("/admin/token", {"persona": "1002"})["access_token"]
        status, _, out = self.token_exchange({"provider": "facebook", "access_token": fb_token})
        self.assertEqual(status, 200, out)
        self.assertEqual(out["token_type"], "Bearer")
        self.assertGreater(out["expires_in"], 0)
        status, _, body = self.call_api(out["access_token"])
        self.assertEqual(status, 200)
        got = dict((k.lower(), v) for k, v in json.loads(body)["headers"])
        self.assertEqual(got["x-customer-id"], out["customer_id"])
        self.assertEqual(got["x-auth-subject"], "1002")
        self.assertNotIn("x-customer-email", got)  # a missing email is normal
        self.assertEqual(got["x-journey-channel"], "mobile")
        # a token minted for another app, and an expired one, are refused
        for bad in ({"persona": "1001", "app_id": "999"}, {"persona": "1001", "expired": True}):
            t = self.fb.admin("/admin/token", bad)["access_token"]
            status, hdrs, out2 = self.token_exchange({"provider": "facebook", "access_token": t})
            self.assertEqual(status, 401, bad)
            self.assertEqual(out2["error"], "invalid_token")
            self.assertIn('error="invalid_token"', hdrs["www-authenticate"])

    def test_google_native_id_token_for_mobile(self):
        token = self.native_id_token(MOBILE_ID, MOBILE_SECRET)
        status, _, out = self.token_exchange({"provider": "google", "id_token": token})
        self.assertEqual(status, 200, out)
        status, _, body = self.call_api(out["access_token"])
        self.assertEqual(status, 200)
        # an ID token for a client id that is not ours is refused
        other = self.native_id_token("someone-else", "x")
        status, _, out = self.token_exchange({"provider": "google", "id_token": other})
        self.assertEqual(status, 401)
        self.assertEqual(out["error"], "invalid_token")

    def test_token_endpoint_input_errors(self):
        for body in ({}, {"provider": "nope", "id_token": "x"}, {"provider": "google"},
                     {"provider": "google", "id_token": "not.a.jwt"}):
            status, _, out = self.token_exchange(body)
            self.assertIn(status, (400, 401), body)
            self.assertIn(out["error"], ("invalid_request", "invalid_token"))
        req = urllib.request.Request(self.public + "/.auth/token", data=b"<html>", method="POST")
        with self.assertRaises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(req, timeout=5)
        self.assertEqual(e.exception.code, 400)

    def test_bearer_route_refusals(self):
        status, hdrs, body = self.call_api(None)
        self.assertEqual(status, 401)
        self.assertIn("Bearer", hdrs["www-authenticate"])
        status, hdrs, _ = self.call_api("A" * 43)
        self.assertEqual(status, 401)
        self.assertIn('error="invalid_token"', hdrs["www-authenticate"])
        # a session cookie is not a bearer token, and a token in the query string is ignored
        fb_token = self.fb.admin("/admin/token", {"persona": "1001"})["access_token"]
        out = self.token_exchange({"provider": "facebook", "access_token": fb_token})[2]
        status, _, _ = self.gw.request("GET", "/api/orders?access_token=" + out["access_token"])
        self.assertEqual(status, 401)
        status, _, _ = self.gw.request("GET", "/api/orders", headers={"Cookie": "jg_session=" + out["access_token"]})
        self.assertEqual(status, 401)
        # and a bearer token does not open cookie routes
        status, _, _ = self.gw.request("GET", "/app/x", headers={"Authorization": "Bearer " + out["access_token"],
                                                                 "Accept": "application/json"})
        self.assertEqual(status, 401)

    def test_hanging_provider_times_out_and_proxying_is_unaffected(self):
        self.op.admin("/admin/mode", {"mode": "hang_token"})
        results = {}

        def login():
            b = Browser()
            t0 = time.monotonic()
            status, _, body, _ = b.get(self.public + "/.auth/login/google?login_hint=gina@example.com")
            results["login"] = (status, body, time.monotonic() - t0)

        t = threading.Thread(target=login)
        t.start()
        deadline = time.monotonic() + 15
        while self.op.admin("/admin/stats")["token_calls"] == 0 and time.monotonic() < deadline:
            time.sleep(0.02)  # the gateway's token call is now hanging at the provider
        served = 0
        # while the token call hangs (1.5 s provider timeout), proxied requests keep being answered:
        # many complete before the sign-in does, so nothing waited on the provider
        while t.is_alive() and served < 20:
            status, _, _ = self.gw.request("GET", "/open")
            self.assertEqual(status, 200)
            served += 1
        still_hanging = t.is_alive()
        t.join(20)
        status, body, took = results["login"]
        self.assertEqual(status, 504)
        self.assertIn(b"idp_timeout", body)
        self.assertGreaterEqual(took, 1.4)  # it did wait for the provider's timeout...
        self.assertLess(took, 5)
        self.assertEqual(served, 20)  # ...while 20 proxied requests were served
        self.assertTrue(still_hanging)


if __name__ == "__main__":
    unittest.main()
