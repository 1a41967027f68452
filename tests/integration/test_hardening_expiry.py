"""Integration: sessions end when they should (absolute ttl_s, sliding idle_timeout_s), and under an
https public_url every cookie of the gateway is __Host- prefixed and Secure."""

import http.client
import json
import os
import ssl
import subprocess
import time
import unittest
import urllib.parse

from jgtest import Browser, GatewayTestCase, base_config, free_port

CLIENT_ID, CLIENT_SECRET = "jg-sess-client", "jg-sess-secret-0123456789"


def routes():
    return [{"name": "app", "match": {"path_prefix": "/app"}, "upstream": "up", "auth": "session",
             "policy": "signed"},
            {"name": "site", "match": {"path_prefix": "/"}, "upstream": "up", "auth": "none"}]


class SessionTestCase(GatewayTestCase):
    scheme = "http"
    session = None

    def setUp(self):
        super().setUp()
        self.port = free_port()
        self.public = "%s://127.0.0.1:%d" % (self.scheme, self.port)
        self.op = self.start_op(CLIENT_ID, CLIENT_SECRET, self.public)
        cfg = base_config({"up": {"url": self.upstream().url}}, routes(),
                          providers={"google": {"type": "oidc", "client_id": CLIENT_ID,
                                                "client_secret": CLIENT_SECRET, "issuer": self.op.url,
                                                "insecure_http": True}},
                          policies={"signed": {"rules": [{"allow": {"signed_in": True}}]}})
        cfg["listen"][0]["port"] = self.port
        cfg["public_url"] = self.public
        if self.session:
            cfg["session"] = self.session
        self.configure(cfg)
        self.gw = self.start(cfg)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self.get("/.auth/login/google")[0] == 302:
                return
            time.sleep(0.2)
        self.fail("provider never became ready")

    def configure(self, cfg):
        pass

    def conn(self):
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=20)

    def get(self, path, cookie=None):
        """One request to the gateway: (status, headers as a list of pairs, body)."""
        c = self.conn()
        try:
            c.request("GET", path, headers={"Cookie": cookie} if cookie else {})
            r = c.getresponse()
            return r.status, r.getheaders(), r.read()
        finally:
            c.close()

    def signin(self, email):
        """The code flow by hand: (Set-Cookie headers of the login start, of the callback)."""
        status, hdrs, _ = self.get("/.auth/login/google?" + urllib.parse.urlencode(
            {"login_hint": email, "return_to": "/app/x"}))
        self.assertEqual(status, 302)
        start_cookies = [v for k, v in hdrs if k.lower() == "set-cookie"]
        login = "; ".join(v.split(";")[0] for v in start_cookies)
        _, op_hdrs, _, _ = Browser().get(dict((k.lower(), v) for k, v in hdrs)["location"], follow=False)
        cb = urllib.parse.urlsplit(op_hdrs["location"])
        status, hdrs, body = self.get(cb.path + "?" + cb.query, cookie=login)
        self.assertEqual(status, 302, body[:200])
        return start_cookies, [v for k, v in hdrs if k.lower() == "set-cookie"]

    def session_cookie(self, email):
        _, cookies = self.signin(email)
        return [v.split(";")[0] for v in cookies if "jg_session=" in v.split(";")[0]][0]


class SessionExpiryTest(SessionTestCase):
    # the shortest the configuration allows; a session in use outlives the idle timeout
    session = {"ttl_s": 100, "idle_timeout_s": 60}

    def test_idle_and_absolute_expiry(self):
        t0 = time.monotonic()
        used = self.session_cookie("sess-used@example.com")
        idle = self.session_cookie("sess-idle@example.com")
        idle_since = time.monotonic()
        self.assertEqual(self.get("/app/x", idle)[0], 200)
        idle_since = time.monotonic()
        # the used session is used every few seconds, well past the idle timeout
        while time.monotonic() < t0 + 80:
            self.assertEqual(self.get("/app/x", used)[0], 200, "in use for %.0f s" % (time.monotonic() - t0))
            time.sleep(3)
        # the idle one, untouched for more than its idle timeout, is over
        self.assertGreater(time.monotonic(), idle_since + 65)
        self.assertEqual(self.get("/app/x", idle)[0], 401)
        self.assertEqual(self.get("/.auth/me", idle)[0], 401)
        # the used one ends at its absolute lifetime however much it is used
        deadline = t0 + 100 + 60
        while time.monotonic() < deadline and self.get("/app/x", used)[0] == 200:
            time.sleep(2)
        self.assertEqual(self.get("/.auth/me", used)[0], 401)
        self.assertEqual(self.get("/app/x", used)[0], 401)


class HttpsCookiesTest(SessionTestCase):
    scheme = "https"

    def configure(self, cfg):
        cert, key = os.path.join(self.tmpdir, "cert.pem"), os.path.join(self.tmpdir, "key.pem")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert,
                        "-days", "2", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
                       check=True, capture_output=True)
        cfg["listen"][0]["tls"] = {"cert": cert, "key": key}
        self.ctx = ssl.create_default_context(cafile=cert)

    def conn(self):
        return http.client.HTTPSConnection("127.0.0.1", self.port, timeout=20, context=self.ctx)

    def assert_host_cookie(self, header, name):
        parts = [p.strip() for p in header.split(";")]
        self.assertEqual(parts[0].split("=", 1)[0], "__Host-" + name, header)
        attrs = [p.lower() for p in parts[1:]]
        self.assertIn("secure", attrs, header)
        self.assertIn("httponly", attrs, header)
        self.assertIn("path=/", attrs, header)
        self.assertFalse([a for a in attrs if a.startswith("domain")], header)

    def test_cookies_are_host_prefixed_and_secure(self):
        start, done = self.signin("tls-lou@example.com")
        self.assertTrue(start)
        for header in start:
            self.assert_host_cookie(header, "jg_login")
        session = [h for h in done if h.startswith("__Host-jg_session=")]
        self.assertEqual(len(session), 1, done)
        for header in done:
            self.assertTrue(header.startswith("__Host-"), header)
            self.assertIn("; Secure", header)
        self.assert_host_cookie(session[0], "jg_session")
        cookie = session[0].split(";")[0]
        status, _, body = self.get("/.auth/me", cookie)
        self.assertEqual(status, 200, body[:200])
        self.assertEqual(json.loads(body)["identities"][0]["email"], "tls-lou@example.com")
        # the unprefixed name is not the session cookie over https
        self.assertEqual(self.get("/.auth/me", cookie.replace("__Host-", "", 1))[0], 401)


if __name__ == "__main__":
    unittest.main()
