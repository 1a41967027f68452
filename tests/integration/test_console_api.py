"""Integration: the console's core — staff sign-in through the gateway's own providers (the real
test OP plays Google), staff sessions that are not customer sessions, the API gate (401, roles,
CSRF, 405/413/415, path segments), security headers, and the audit records that say who did what
(console sign-ins, policy refusals with route and customer, admin reads and refused admin tokens)."""

import html
import json
import os
import re
import signal
import subprocess
import time
import unittest
import urllib.parse

from jgtest import JG_BIN, Browser, GatewayTestCase, base_config, free_port, wait_port
from test_identity import IdentityTestCase

ADMIN_TOKEN = "admin-token-0123456789abcdef"
UI_CSP = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
          "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")
API_CSP = "default-src 'none'; frame-ancestors 'none'"

CONSOLE = {"roles": {"marketer": "staff_marketing", "security": "staff_security", "admin": "staff_security"}}
POLICIES = {"signed": {"rules": [{"allow": {"signed_in": True}}]},
            "staff_marketing": {"rules": [{"allow": {"email_domain": ["mkt.example"]}}]},
            "staff_security": {"rules": [{"allow": {"email_domain": ["sec.example"]}}]}}


class ConsoleTest(IdentityTestCase):
    def extra_config(self):
        # a route the customers' policy refuses, for the refusal record's route and customer
        routes = [{"name": "vip", "match": {"path_prefix": "/vip"}, "upstream": "up", "auth": "session",
                   "policy": "staff_security"}] + self.base_routes()
        return {"policies": POLICIES, "console": CONSOLE, "routes": routes}

    def base_routes(self):
        return [{"name": "app", "match": {"path_prefix": "/app"}, "upstream": "up", "auth": "session",
                 "policy": "signed"},
                {"name": "site", "match": {"path_prefix": "/"}, "upstream": "up", "auth": "none"}]

    # ---- helpers

    def staff(self, email, return_to="/.console/customers"):
        """Signs in to the console as email at the test OP; returns (browser, last answer)."""
        b = Browser()
        q = urllib.parse.urlencode({"return_to": return_to, "login_hint": email})
        status, hdrs, body, url = b.get(self.public + "/.console/login/google?" + q)
        return b, (status, hdrs, body, url)

    def api(self, b, path, method="GET", body=None, headers=None):
        h = {"Accept": "application/json"}
        h.update(headers or {})
        if method == "GET":
            status, hdrs, data, _ = b.get(self.public + "/.console/api/" + path, headers=h)
        else:
            status, hdrs, data = b.post(self.public + "/.console/api/" + path, body, headers=h)
        try:
            return status, hdrs, json.loads(data)
        except ValueError:
            return status, hdrs, data

    def records(self):
        p = subprocess.run([JG_BIN, "audit", "tail", "-n", "1000", "--json", "--store", self.store],
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(p.returncode, 0, p.stderr)
        return [json.loads(line) for line in p.stdout.splitlines()]

    def wait_record(self, test, timeout=15):
        deadline = time.monotonic() + timeout
        while True:
            found = [r for r in self.records() if test(r)]
            if found or time.monotonic() > deadline:
                return found
            time.sleep(0.1)

    def customers(self):
        code, out, err = self.cli("export", "customers", "--format", "ndjson")
        self.assertEqual(code, 0, err)
        return [json.loads(line) for line in out.splitlines() if line.strip()]

    # ---- tests

    def test_no_session_is_401_with_api_headers(self):
        status, hdrs, body = self.api(Browser(), "me")
        self.assertEqual(status, 401)
        self.assertEqual(body, {"error": "not_signed_in", "message": "sign in to the console"})
        self.assertEqual(hdrs["cache-control"], "no-store")
        self.assertEqual(hdrs["content-security-policy"], API_CSP)
        self.assertEqual(hdrs["x-content-type-options"], "nosniff")
        self.assertEqual(hdrs["referrer-policy"], "same-origin")
        # providers need no session
        status, _, body = self.api(Browser(), "providers")
        self.assertEqual(status, 200)
        self.assertIn({"name": "google", "label": "google"}, body["providers"])  # no display_name configured

    def test_front_end_pages_and_headers(self):
        for path in ("/.console/", "/.console/customers/c_x", "/.console/index.html"):
            status, hdrs, body, _ = Browser().get(self.public + path)
            self.assertEqual(status, 200, path)
            self.assertIn(b"<html", body)
            self.assertEqual(hdrs["content-security-policy"], UI_CSP)
            self.assertEqual(hdrs["x-content-type-options"], "nosniff")
            self.assertEqual(hdrs["referrer-policy"], "same-origin")
            self.assertEqual(hdrs["cache-control"], "no-cache")  # index.html is not a hashed name
            self.assertRegex(hdrs["etag"], r'^"[0-9a-f]{16}"$')
        status, _, _ = self.gw.request("GET", "/.console/", headers={"If-None-Match": hdrs["etag"]})
        self.assertEqual(status, 304)

    def test_customer_session_is_not_a_staff_session(self):
        b = Browser()
        # a customer whose email the staff policy would allow: still no console access without a staff sign-in
        self.google(b, "carla@sec.example")
        self.assertIsNotNone(self.me(b))
        status, _, body = self.api(b, "me")
        self.assertEqual((status, body["error"]), (401, "not_signed_in"))
        # the customer's token presented as the console cookie is no staff session either
        token = b.cookie("jg_session")
        self.assertTrue(token)
        status, _, body = self.api(Browser(), "me", headers={"Cookie": "jg_console=" + token})
        self.assertEqual((status, body["error"]), (401, "not_signed_in"))

    def test_staff_sign_in_makes_no_customer_and_sets_the_staff_cookie(self):
        before = len(self.customers())
        b = Browser()
        q = urllib.parse.urlencode({"return_to": "/.console/customers", "login_hint": "mia@mkt.example"})
        status, hdrs, _, _ = b.get(self.public + "/.console/login/google?" + q, follow=False)
        self.assertEqual(status, 302)
        status, hdrs, _, _ = b.get(hdrs["location"], follow=False)  # the OP answers with the callback
        while status in (302, 303) and "/.auth/login/google/callback" not in hdrs["location"]:
            status, hdrs, _, _ = b.get(hdrs["location"], follow=False)
        status, hdrs, _, _ = b.get(hdrs["location"], follow=False)  # the gateway's callback
        self.assertEqual(status, 302)
        self.assertEqual(hdrs["location"], "/.console/customers")
        cookie = hdrs["set-cookie"]
        self.assertIn("jg_console=", cookie)
        for flag in ("HttpOnly", "SameSite=Lax", "Path=/"):
            self.assertIn(flag, cookie)
        self.assertNotIn("Secure", cookie)  # plain http here; __Host- and Secure under https
        self.assertIsNone(b.cookie("jg_session"))  # no customer session
        status, _, me = self.api(b, "me")
        self.assertEqual(status, 200)
        self.assertEqual((me["email"], me["provider"], me["roles"], me["demo"]),
                         ("mia@mkt.example", "google", ["marketer"], False))
        self.assertRegex(me["csrf"], r"^[A-Za-z0-9_-]{20,}$")
        self.assertEqual(len(self.customers()), before)  # no customer created
        self.assertIsNone(self.me(b))  # and the customer side does not know this person
        recs = self.wait_record(lambda r: r["event"] == "console_sign_in")
        self.assertEqual([(r["outcome"], r.get("actor")) for r in recs], [("success", "staff:google:mia@mkt.example")])
        self.assertFalse([r for r in self.records() if r["event"] in ("customer_created", "callback_succeeded")])

    def test_roles_decide_each_endpoint(self):
        mia, _ = self.staff("mia@mkt.example")
        status, _, body = self.api(mia, "audit")
        self.assertEqual((status, body), (403, {"error": "forbidden", "role": "security"}))
        status, _, body = self.api(mia, "customers/c_abc/erase", "POST", b"{}",
                                   {"Content-Type": "application/json", "X-CSRF-Token": self.api(mia, "me")[2]["csrf"]})
        self.assertEqual((status, body), (403, {"error": "forbidden", "role": "admin"}))
        # a marketer endpoint passes the gate (the endpoint itself answers)
        status, _, body = self.api(mia, "overview")
        self.assertNotIn(status, (401, 403), body)
        sam, _ = self.staff("sam@sec.example")
        self.assertEqual(self.api(sam, "me")[2]["roles"], ["security", "admin"])
        self.assertNotIn(self.api(sam, "audit")[0], (401, 403))
        self.assertEqual(self.api(sam, "overview")[:2][0], 403)

    def test_nobody_gets_the_403_page_and_no_session(self):
        b, (status, hdrs, body, _) = self.staff("nick@example.com")
        self.assertEqual(status, 403)
        self.assertIn(b"no console role", body)
        self.assertIsNone(b.cookie("jg_console"))
        self.assertEqual(self.api(b, "me")[0], 401)
        recs = self.wait_record(lambda r: r["event"] == "console_sign_in")
        self.assertEqual([(r["outcome"], r["reason"], r.get("actor")) for r in recs],
                         [("refused", "no_role", "staff:google:nick@example.com")])

    def test_posts_need_the_csrf_token_json_and_a_small_body(self):
        sam, _ = self.staff("sam@sec.example")
        csrf = self.api(sam, "me")[2]["csrf"]
        path = "customers/c_abc/sessions/revoke"
        js = {"Content-Type": "application/json"}
        status, hdrs, body = self.api(sam, path, "POST", b'{"all":true}', js)
        self.assertEqual((status, body["error"]), (403, "csrf"))
        self.assertEqual(hdrs["cache-control"], "no-store")
        status, _, body = self.api(sam, path, "POST", b'{"all":true}', dict(js, **{"X-CSRF-Token": csrf + "x"}))
        self.assertEqual((status, body["error"]), (403, "csrf"))
        good = dict(js, **{"X-CSRF-Token": csrf})
        status, _, body = self.api(sam, path, "POST", b'{"all":true}', good)
        self.assertNotIn(status, (401, 403, 405, 413, 415), body)
        status, _, body = self.api(sam, path, "POST", b'[1]', good)
        self.assertEqual((status, body["error"]), (400, "invalid_body"))
        status, _, _ = self.api(sam, path, "POST", b'all=1', dict(good, **{"Content-Type": "text/plain"}))
        self.assertEqual(status, 415)
        status, _, _ = self.api(sam, path, "POST", b'{"a":"' + b"x" * 17000 + b'"}', good)
        self.assertEqual(status, 413)
        status, hdrs, _ = self.api(sam, path)  # GET on a POST endpoint
        self.assertEqual(status, 405)
        self.assertEqual(hdrs["allow"], "POST")
        self.assertEqual(self.api(sam, "no/such/thing")[:3:2], (404, {"error": "not_found",
                                                                          "message": "no such endpoint"}))
        # path segments: not UTF-8 once decoded (refused with every path), longer than 255 bytes
        status, _, body = self.api(sam, "customers/%C0%AF/security")
        self.assertEqual((status, body["error"]), (400, "invalid_path"))
        status, _, body = self.api(sam, "customers/" + "%41" * 256 + "/security")
        self.assertEqual((status, body["error"]), (400, "invalid_parameter"))
        # 255 bytes pass the gate: the endpoint itself then judges the value (not a customer id)
        status, _, body255 = self.api(sam, "customers/" + "%41" * 255 + "/security")
        self.assertNotEqual(body255.get("message"), body["message"])

    def test_logout_needs_csrf_and_ends_the_session(self):
        mia, _ = self.staff("mia@mkt.example")
        csrf = self.api(mia, "me")[2]["csrf"]
        status, _, _ = mia.post(self.public + "/.console/logout", b"", headers={"X-CSRF-Token": "nope"})
        self.assertEqual(status, 403)
        self.assertEqual(self.api(mia, "me")[0], 200)
        status, hdrs, _, url = mia.get(self.public + "/.console/logout")
        self.assertEqual(status, 405)
        mia.post(self.public + "/.console/logout", urllib.parse.urlencode({"csrf": csrf}).encode(),
                 headers={"Content-Type": "application/x-www-form-urlencoded"})
        self.assertEqual(self.api(mia, "me")[0], 401)

    def test_a_reload_that_removes_a_role_takes_effect(self):
        mia, _ = self.staff("mia@mkt.example")
        self.assertEqual(self.api(mia, "me")[2]["roles"], ["marketer"])
        cfg = dict(self.cfg)
        cfg["console"] = {"roles": {"security": "staff_security"}}
        self.gw.write_config(cfg)
        self.gw.signal(signal.SIGHUP)
        deadline = time.monotonic() + 10
        while self.api(mia, "me")[0] == 200 and time.monotonic() < deadline:
            time.sleep(0.1)
        self.assertEqual(self.api(mia, "me")[:3:2], (403, {"error": "forbidden"}))
        self.assertEqual(self.api(mia, "overview")[0], 403)

    def test_policy_refusal_records_route_customer_and_provider(self):
        b = Browser()
        self.google(b, "alice@example.com")
        cid = self.me(b)["customer_id"]
        status, _, _, _ = b.get(self.public + "/vip/x")
        self.assertEqual(status, 403)
        recs = self.wait_record(lambda r: r["event"] == "policy_denied")
        self.assertEqual([(r.get("route"), r.get("customer_id"), r.get("provider")) for r in recs],
                         [("vip", cid, "google")])

    def test_admin_api_reads_and_refused_tokens_are_audited(self):
        b = Browser()
        self.google(b, "alice@example.com")
        cid = self.me(b)["customer_id"]
        import urllib.request
        url = "http://127.0.0.1:%d/admin/customers/%s" % (self.admin_port, cid)
        for token, expected in ((ADMIN_TOKEN, 200), ("wrong-token", 401)):
            req = urllib.request.Request(url, headers={"Authorization": "Bearer " + token})
            try:
                with urllib.request.urlopen(req, timeout=10) as r:
                    status = r.status
            except urllib.error.HTTPError as e:
                status = e.code
            self.assertEqual(status, expected)
        views = self.wait_record(lambda r: r["event"] == "admin_view_profile")
        self.assertEqual([(r["customer_id"], r.get("actor")) for r in views], [(cid, "admin-token@127.0.0.1")])
        refused = self.wait_record(lambda r: r["event"] == "admin_refused")
        self.assertEqual([(r["reason"], r["client"], r.get("route")) for r in refused],
                         [("wrong_token", "127.0.0.1", "admin:/admin/customers/" + cid)])
        trail = json.dumps(self.records())
        self.assertNotIn("wrong-token", trail)
        self.assertNotIn(ADMIN_TOKEN, trail)


class ConsoleDemoTest(GatewayTestCase):
    def test_demo_staff_persona_opens_the_console(self):
        port, up_port, idp_port = free_port(), free_port(), free_port()
        env = dict(os.environ, XDG_STATE_HOME=self.tmpdir)
        p = subprocess.Popen([JG_BIN, "demo", "--port", str(port), "--upstream-port", str(up_port),
                              "--idp-port", str(idp_port)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
        self.addCleanup(lambda: p.poll() is not None or (p.kill(), p.communicate()))
        wait_port(port)
        base = "http://127.0.0.1:%d" % port

        def sign_in(persona):
            b = Browser()
            deadline = time.monotonic() + 15
            while True:  # the stand-in's discovery loads in the background
                status, _, page, url = b.get(base + "/.console/login/google?return_to=/.console/overview")
                if status != 503 or time.monotonic() > deadline:
                    break
                time.sleep(0.2)
            m = re.search(r'data-persona="%s" href="([^"]+)"' % persona, page.decode())
            self.assertIsNotNone(m, page[:400])
            return b, b.get(urllib.parse.urljoin(url, html.unescape(m.group(1))))

        b, (status, _, _, url) = sign_in("morgan")
        self.assertEqual((status, url), (200, base + "/.console/overview"))
        status, _, me, _ = b.get(base + "/.console/api/me", headers={"Accept": "application/json"})
        me = json.loads(me)
        self.assertEqual((me["name"], me["roles"], me["demo"]),
                         ("Morgan (demo staff: console)", ["marketer", "security", "admin"], True))
        # the demo's customers are not staff
        b, (status, _, _, _) = sign_in("ada")
        self.assertEqual(status, 403)
        p.send_signal(signal.SIGTERM)
        out, _ = p.communicate(timeout=10)
        self.assertEqual(p.returncode, 0)
        self.assertIn(("console:        %s/.console/" % base).encode(), out)


class ConsoleAbsentTest(GatewayTestCase):
    def test_without_console_every_console_path_is_404(self):
        up = self.upstream()
        cfg = base_config({"up": {"url": up.url}},
                          [{"name": "site", "match": {"path_prefix": "/"}, "upstream": "up", "auth": "none"}])
        gw = self.start(cfg)
        for path in ("/.console/", "/.console/api/me", "/.console/api/providers", "/.console/login/google",
                     "/.console/assets/app.js"):
            status, _, _ = gw.request("GET", path)
            self.assertEqual(status, 404, path)
        self.assertEqual(up.seen, [])  # never proxied


if __name__ == "__main__":
    unittest.main()
