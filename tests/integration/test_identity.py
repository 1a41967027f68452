"""Integration: one customer per person — linking, unlinking, erasure, the data deletion
callback, the store CLI, concurrency and durability, through the real login flow."""

import json
import os
import signal
import subprocess
import threading
import time
import unittest
import urllib.parse
import urllib.request

from jgtest import JG_BIN, Browser, Gateway, GatewayTestCase, Peer, base_config, free_port, wait_login_ready

APP_ID, APP_SECRET = "1234567890", "fb-app-secret-abcdef"
CLIENT_ID, CLIENT_SECRET = "jg-web-client", "jg-web-secret-0123456789"


class IdentityTestCase(GatewayTestCase):
    trust_facebook_email = False
    auto_link = False
    map_size_mb = None

    def setUp(self):
        super().setUp()
        self.up = self.upstream()
        self.port = free_port()
        self.public = "http://127.0.0.1:%d" % self.port
        self.fb = Peer("facebook.mjs", ["--app-id", APP_ID, "--app-secret", APP_SECRET,
                                        "--redirect-uri", self.public + "/.auth/login/facebook/callback",
                                        "--persona", "2001:Alice FB:alice@example.com",
                                        "--persona", "2002:Dana FB:dana@example.com",
                                        "--persona", "2003:Bob FB:bob@example.com",
                                        "--persona", "2004:Test FB:shared@test.example"], self.tmpdir)
        self.addCleanup(self.fb.stop)
        self.op = self.start_op(CLIENT_ID, CLIENT_SECRET, self.public)
        self.admin_port = free_port()
        token_file = os.path.join(self.tmpdir, "admin.token")
        with open(token_file, "w") as f:
            f.write("admin-token-0123456789abcdef\n")
        self.store = os.path.join(self.tmpdir, "store")
        cfg = base_config(
            {"up": {"url": self.up.url}},
            [{"name": "app", "match": {"path_prefix": "/app"}, "upstream": "up", "auth": "session",
              "policy": "signed"},
             {"name": "site", "match": {"path_prefix": "/"}, "upstream": "up", "auth": "none"}],
            providers={
                "facebook": {"type": "facebook", "app_id": APP_ID, "app_secret": APP_SECRET,
                             "graph_url": self.fb.url + "/v19.0", "dialog_url": self.fb.url + "/v19.0/dialog/oauth",
                             "insecure_http": True, "trust_email": self.trust_facebook_email},
                "google": {"type": "oidc", "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET,
                           "issuer": self.op.url, "insecure_http": True}},
            policies={"signed": {"rules": [{"allow": {"signed_in": True}}]}},
            linking={"auto_link_verified_email": self.auto_link, "blocked_emails": ["shared@test.example"]},
            admin={"listen": {"address": "127.0.0.1", "port": self.admin_port}, "token_file": token_file})
        cfg["store"]["path"] = self.store
        if self.map_size_mb:
            cfg["store"]["map_size_mb"] = self.map_size_mb
        cfg.update(self.extra_config())
        cfg["listen"][0]["port"] = self.port
        cfg["public_url"] = self.public
        self.cfg = cfg
        self.gw = self.start(cfg)
        self.wait_ready()

    def extra_config(self):
        return {}

    def wait_ready(self):
        if not wait_login_ready(self.public):
            self.fail("provider never became ready")

    def google(self, b, email, path="/.auth/login/google"):
        q = urllib.parse.urlencode({"return_to": "/app/x", "login_hint": email})
        return b.get(self.public + path + "?" + q)

    def facebook(self, b, persona, path="/.auth/login/facebook"):
        # the stand-in's dialog picks the persona from its query: add it to the gateway's redirect
        status, hdrs, _, _ = b.get(self.public + path + "?return_to=/app/x", follow=False)
        self.assertEqual(status, 302)
        return b.get(hdrs["location"] + "&persona=" + persona)

    def me(self, b):
        status, _, body, _ = b.get(self.public + "/.auth/me")
        return json.loads(body) if status == 200 else None

    def csrf(self, b):
        status, _, page, _ = b.get(self.public + "/.auth/logout")
        return page.decode().split('name="csrf" value="')[1].split('"')[0]

    def cli(self, *args):
        p = subprocess.run([JG_BIN] + list(args) + ["--store", self.store], capture_output=True, text=True,
                           timeout=30)
        return p.returncode, p.stdout, p.stderr


class LinkingTest(IdentityTestCase):
    def test_explicit_link_makes_one_customer(self):
        b = Browser()
        self.google(b, "alice@example.com")
        first = self.me(b)
        status, _, body, url = self.facebook(b, "2001", path="/.auth/link/facebook")
        self.assertEqual(status, 200, body[:300])
        after = self.me(b)
        self.assertEqual(after["customer_id"], first["customer_id"])
        self.assertEqual(sorted(i["provider"] for i in after["identities"]), ["facebook", "google"])
        # signing in with Facebook alone now reaches the same customer
        b2 = Browser()
        self.facebook(b2, "2001")
        self.assertEqual(self.me(b2)["customer_id"], first["customer_id"])

    def test_conflicting_link_is_409_and_changes_nothing(self):
        dana = Browser()
        self.facebook(dana, "2002")
        dana_id = self.me(dana)["customer_id"]
        b = Browser()
        self.google(b, "carol@example.com")
        carol = self.me(b)
        status, _, body, _ = self.facebook(b, "2002", path="/.auth/link/facebook")
        self.assertEqual(status, 409)
        self.assertIn(b"already linked to another customer", body)
        self.assertEqual(self.me(b), carol)
        self.assertEqual(len(self.me(dana)["identities"]), 1)
        self.assertEqual(self.me(dana)["customer_id"], dana_id)

    def test_link_needs_a_session(self):
        status, _, _, _ = Browser().get(self.public + "/.auth/link/facebook", follow=False)
        self.assertEqual(status, 401)

    def test_unlink_never_the_last(self):
        b = Browser()
        self.google(b, "erin@example.com")
        self.facebook(b, "2003", path="/.auth/link/facebook")
        self.assertEqual(len(self.me(b)["identities"]), 2)
        # without the CSRF token: refused
        status, _, _ = b.post(self.public + "/.auth/unlink/facebook", b"")
        self.assertEqual(status, 403)
        token = self.csrf(b)
        status, _, body = b.post(self.public + "/.auth/unlink/facebook", b"", headers={"X-CSRF-Token": token})
        self.assertEqual(status, 200, body)
        self.assertEqual([i["provider"] for i in self.me(b)["identities"]], ["google"])
        status, _, body = b.post(self.public + "/.auth/unlink/google", b"", headers={"X-CSRF-Token": token})
        self.assertEqual(status, 409)
        self.assertEqual(json.loads(body)["error"], "last_identity")
        # the unlinked Facebook identity now signs in as a new customer
        b2 = Browser()
        self.facebook(b2, "2003")
        self.assertNotEqual(self.me(b2)["customer_id"], self.me(b)["customer_id"])

    def test_no_auto_link_when_off(self):
        b1, b2 = Browser(), Browser()
        self.google(b1, "alice@example.com")
        self.facebook(b2, "2001")
        self.assertNotEqual(self.me(b1)["customer_id"], self.me(b2)["customer_id"])


class AutoLinkTest(IdentityTestCase):
    trust_facebook_email = True
    auto_link = True

    def test_verified_emails_link_automatically(self):
        b1, b2 = Browser(), Browser()
        self.google(b1, "alice@example.com")
        self.facebook(b2, "2001")
        m1, m2 = self.me(b1), self.me(b2)
        self.assertEqual(m1["customer_id"], m2["customer_id"])
        self.assertEqual(len(m2["identities"]), 2)

    def test_unverified_email_never_links(self):
        self.op.admin("/admin/mode", {"mode": "unverified_email"})
        b1 = Browser()
        self.google(b1, "bob@example.com")
        self.op.admin("/admin/mode", {"mode": "good"})
        b2 = Browser()
        self.facebook(b2, "2003")  # bob@example.com, trusted as verified here
        self.assertNotEqual(self.me(b1)["customer_id"], self.me(b2)["customer_id"])

    def test_blocked_email_never_links(self):
        b1, b2 = Browser(), Browser()
        self.google(b1, "shared@test.example")
        self.facebook(b2, "2004")
        self.assertNotEqual(self.me(b1)["customer_id"], self.me(b2)["customer_id"])


class ErasureTest(IdentityTestCase):
    def test_cli_show_export_and_delete_while_running(self):
        b = Browser()
        self.google(b, "frank@example.com")
        cid = self.me(b)["customer_id"]
        code, out, err = self.cli("customer", "show", "frank@example.com", "--json")
        self.assertEqual(code, 0, err)
        self.assertEqual(json.loads(out)["id"], cid)
        code, out, _ = self.cli("customer", "show", cid)
        self.assertIn("frank@example.com (verified)", out)
        code, out, _ = self.cli("export", "customers", "--format", "ndjson")
        self.assertEqual(code, 0)
        self.assertIn(cid, [json.loads(line)["id"] for line in out.splitlines()])
        code, out, _ = self.cli("export", "customers", "--format", "csv")
        self.assertTrue(out.startswith("customer_id,"))
        self.assertIn('"%s"' % cid, out)
        code, out, err = self.cli("customer", "delete", cid)
        self.assertEqual(code, 0, err)
        self.assertIn("1 session", out)
        self.assertIsNone(self.me(b))  # the session went with the customer
        code, _, _ = self.cli("customer", "show", cid)
        self.assertEqual(code, 1)
        code, _, _ = self.cli("customer", "delete", cid)
        self.assertEqual(code, 1)

    def admin(self, method, path, token="admin-token-0123456789abcdef"):
        req = urllib.request.Request("http://127.0.0.1:%d%s" % (self.admin_port, path), method=method,
                                     headers={"Authorization": "Bearer " + token} if token else {})
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                return r.status, json.loads(r.read())
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read() or b"{}")

    def test_admin_api_erasure(self):
        b = Browser()
        self.google(b, "gina@example.com")
        cid = self.me(b)["customer_id"]
        self.assertEqual(self.admin("GET", "/admin/customers/" + cid, token=None)[0], 401)
        self.assertEqual(self.admin("GET", "/admin/customers/" + cid, token="wrong")[0], 401)
        status, body = self.admin("GET", "/admin/customers/" + cid)
        self.assertEqual((status, body["id"]), (200, cid))
        status, body = self.admin("DELETE", "/admin/customers/" + cid)
        self.assertEqual(status, 200)
        self.assertEqual(body["sessions_removed"], 1)
        self.assertIsNone(self.me(b))
        self.assertEqual(self.admin("GET", "/admin/customers/" + cid)[0], 404)

    def test_facebook_data_deletion_callback(self):
        b = Browser()
        self.facebook(b, "2002")
        cid = self.me(b)["customer_id"]
        sr = self.fb.admin("/admin/signed-request", {"user_id": "2002"})["signed_request"]
        forged = self.fb.admin("/admin/signed-request", {"user_id": "2002", "bad_signature": True})["signed_request"]
        status, _, _ = Browser().post(self.public + "/.auth/facebook/data-deletion",
                                      urllib.parse.urlencode({"signed_request": forged}).encode())
        self.assertEqual(status, 400)
        self.assertIsNotNone(self.me(b))
        status, _, body = Browser().post(self.public + "/.auth/facebook/data-deletion",
                                         urllib.parse.urlencode({"signed_request": sr}).encode())
        self.assertEqual(status, 200, body)
        ans = json.loads(body)
        self.assertTrue(ans["url"].startswith(self.public + "/.auth/facebook/deletion?id="))
        status, _, page, _ = Browser().get(ans["url"])
        self.assertEqual(status, 200)
        self.assertIn(ans["confirmation_code"].encode(), page)
        self.assertIn(b"erased", page)
        self.assertIsNone(self.me(b))
        self.assertEqual(self.cli("customer", "show", cid)[0], 1)


class ConcurrencyAndDurabilityTest(IdentityTestCase):
    map_size_mb = 1  # tiny: the store grows by itself when needed (tests/unit/gateway/test_store.c proves it)

    def test_simultaneous_first_logins_make_one_customer(self):
        for round_ in range(100):
            email = "twin%d@example.com" % round_
            ids = [None, None]

            def login(i):
                b = Browser()
                self.google(b, email)
                ids[i] = (self.me(b) or {}).get("customer_id")

            threads = [threading.Thread(target=login, args=(i,)) for i in range(2)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(30)
            self.assertIsNotNone(ids[0], round_)
            self.assertEqual(ids[0], ids[1], round_)
        code, out, _ = self.cli("export", "customers", "--format", "ndjson")
        emails = [json.loads(line)["profile"].get("email") for line in out.splitlines()]
        self.assertEqual(sum(1 for e in emails if e and e.startswith("twin")), 100)

    def test_kill_9_loses_no_answered_login(self):
        answered = []
        lock = threading.Lock()
        stop = threading.Event()

        def stream(n):
            i = 0
            while not stop.is_set():
                b = Browser()
                try:
                    status, _, body, _ = self.google(b, "k%d-%d@example.com" % (n, i))
                except OSError:
                    return
                i += 1
                if status == 200 and b.cookie("jg_session"):
                    with lock:
                        answered.append(b.cookie("jg_session"))

        threads = [threading.Thread(target=stream, args=(n,)) for n in range(4)]
        for t in threads:
            t.start()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # sign-ins under way and a good number answered
            with lock:
                if len(answered) > 10:
                    break
            time.sleep(0.05)
        self.gw.proc.send_signal(signal.SIGKILL)
        self.gw.proc.wait(10)
        stop.set()
        for t in threads:
            t.join(30)
        self.assertGreater(len(answered), 10)
        # restart on the same store: every answered login's session is there
        self.gateways.remove(self.gw)
        d = os.path.join(self.tmpdir, "restart")
        os.makedirs(d)
        gw2 = Gateway(self.cfg, d)
        self.gateways.append(gw2)
        self.wait_ready()
        for token in answered:
            status, _, _, _ = Browser().get(self.public + "/.auth/me", headers={"Cookie": "jg_session=" + token})
            self.assertEqual(status, 200)


if __name__ == "__main__":
    unittest.main()
