"""Integration: sessions end with what they stood on (unlink, Facebook data deletion, erasure by
another process), on every thread; the gateway survives another process growing the store's map."""

import http.client
import json
import os
import subprocess
import time
import urllib.parse

from jgtest import JG_BIN, Browser
from test_identity import IdentityTestCase

STORE_GROW = os.environ.get("JG_STORE_GROW", os.path.join(os.path.dirname(JG_BIN), "tests", "store_grow"))
THREADS = 4
CONNECTIONS = 8


class SessionsTestCase(IdentityTestCase):
    def extra_config(self):
        return {
            "threads": THREADS,
            "routes": [
                {"name": "app", "match": {"path_prefix": "/app"}, "upstream": "up", "auth": "session",
                 "policy": "signed"},
                {"name": "two", "match": {"path_prefix": "/two"}, "upstream": "up", "auth": "session",
                 "policy": "two"},
                {"name": "site", "match": {"path_prefix": "/"}, "upstream": "up", "auth": "none"}],
            "policies": {"signed": {"rules": [{"allow": {"signed_in": True}}]},
                         "two": {"rules": [{"allow": {"min_linked_providers": 2}}]}},
        }

    def connections(self, n=CONNECTIONS):
        """Keep-alive connections, opened at once so the gateway's threads each take some."""
        conns = [http.client.HTTPConnection("127.0.0.1", self.port, timeout=10) for _ in range(n)]
        for c in conns:
            c.connect()
            self.addCleanup(c.close)
        return conns

    def status(self, conn, path, cookie):
        conn.request("GET", path, headers={"Cookie": "jg_session=" + cookie, "Accept": "application/json"})
        r = conn.getresponse()
        r.read()
        return r.status

    def statuses(self, conns, path, cookie):
        return [self.status(c, path, cookie) for c in conns]

    def warm(self, conns, path, cookie, expect=200):
        """Every connection's thread has the session cached (several requests each)."""
        for _ in range(3):
            self.assertEqual(self.statuses(conns, path, cookie), [expect] * len(conns))

    def poll_refused(self, conns, path, cookie, within=1.0):
        """Every connection refuses the session within `within` seconds; the statuses last seen."""
        deadline = time.monotonic() + within
        while True:
            seen = self.statuses(conns, path, cookie)
            if all(s != 200 for s in seen) or time.monotonic() > deadline:
                return seen
            time.sleep(0.05)

    def linked_customer(self, google_email, fb_persona):
        """A customer signed in with Google and linked to Facebook: (google cookie, facebook cookie, id)."""
        g = Browser()
        self.google(g, google_email)
        google_cookie = g.cookie("jg_session")
        cid = self.me(g)["customer_id"]
        status, _, body, _ = self.facebook(g, fb_persona, path="/.auth/link/facebook")
        self.assertEqual(status, 200, body[:300])
        f = Browser()
        self.facebook(f, fb_persona)  # a session made through the Facebook identity
        self.assertEqual(self.me(f)["customer_id"], cid)
        self.assertEqual(self.me(f)["session"]["provider"], "facebook")
        self.assertEqual(g.cookie("jg_session"), google_cookie)  # a link keeps the session it was made from
        return g, google_cookie, f.cookie("jg_session"), cid


class UnlinkEndsSessionsTest(SessionsTestCase):
    def test_unlink_ends_the_identitys_sessions_on_every_thread(self):
        g, google_cookie, fb_cookie, _ = self.linked_customer("erin@example.com", "2003")
        conns = self.connections()
        self.warm(conns, "/app/x", fb_cookie)
        # the link counts at once for the session made before it (min_linked_providers: 2)
        self.warm(conns, "/two/x", google_cookie)
        token = self.csrf(g)
        status, _, body = g.post(self.public + "/.auth/unlink/facebook", b"", headers={"X-CSRF-Token": token})
        self.assertEqual(status, 200, body)
        seen = self.poll_refused(conns, "/app/x", fb_cookie)
        self.assertTrue(all(s != 200 for s in seen), "the Facebook session still works after unlink: %s" % seen)
        # the Google session goes on, but no longer counts two identities
        self.assertEqual(self.statuses(conns, "/app/x", google_cookie), [200] * len(conns))
        seen = self.poll_refused(conns, "/two/x", google_cookie)
        self.assertEqual(seen, [403] * len(conns))
        # and fresh connections (any thread) agree
        self.assertNotIn(200, self.statuses(self.connections(), "/app/x", fb_cookie))


class DataDeletionEndsSessionsTest(SessionsTestCase):
    def test_facebook_data_deletion_ends_the_facebook_sessions(self):
        _, google_cookie, fb_cookie, cid = self.linked_customer("dana@example.com", "2002")
        conns = self.connections()
        self.warm(conns, "/app/x", fb_cookie)
        self.warm(conns, "/two/x", google_cookie)
        sr = self.fb.admin("/admin/signed-request", {"user_id": "2002"})["signed_request"]
        status, _, body = Browser().post(self.public + "/.auth/facebook/data-deletion",
                                         urllib.parse.urlencode({"signed_request": sr}).encode())
        self.assertEqual(status, 200, body)
        seen = self.poll_refused(conns, "/app/x", fb_cookie)
        self.assertTrue(all(s != 200 for s in seen), "a Facebook session outlived the data deletion: %s" % seen)
        # the customer keeps the Google identity and its session, now with one identity
        self.assertEqual(self.statuses(conns, "/app/x", google_cookie), [200] * len(conns))
        self.assertEqual(self.poll_refused(conns, "/two/x", google_cookie), [403] * len(conns))
        code, out, _ = self.cli("customer", "show", cid, "--json")
        self.assertEqual(code, 0)
        self.assertEqual([i["provider"] for i in json.loads(out)["identities"]], ["google"])


class CliErasureEndsSessionsTest(SessionsTestCase):
    def test_customer_delete_in_another_process_ends_sessions_on_every_thread(self):
        _, google_cookie, fb_cookie, cid = self.linked_customer("gina@example.com", "2001")
        conns = self.connections()
        self.warm(conns, "/app/x", google_cookie)
        self.warm(conns, "/app/x", fb_cookie)
        code, out, err = self.cli("customer", "delete", cid)
        self.assertEqual(code, 0, err)
        for cookie in (google_cookie, fb_cookie):
            seen = self.poll_refused(conns, "/app/x", cookie)
            self.assertTrue(all(s != 200 for s in seen), "a session outlived its customer: %s" % seen)


class MapGrownElsewhereTest(SessionsTestCase):
    map_size_mb = 1  # the gateway's own map: another process grows the file far past it

    def test_gateway_goes_on_after_another_process_grows_the_map(self):
        g = Browser()
        self.google(g, "hal@example.com")
        cookie = g.cookie("jg_session")
        conns = self.connections(4)
        self.warm(conns, "/app/x", cookie)
        p = subprocess.run([STORE_GROW, self.store, "64", "8"], capture_output=True, text=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        # reads (a cache miss reads the store: another process's commit changed its generation) ...
        self.assertEqual(self.statuses(conns, "/app/x", cookie), [200] * len(conns))
        # ... and writes: a new sign-in, and an erasure by the gateway
        b = Browser()
        self.google(b, "ivan@example.com")
        self.assertIsNotNone(self.me(b))
        self.assertEqual(self.statuses(conns, "/app/x", b.cookie("jg_session")), [200] * len(conns))
        self.assertIn("store map resized by another process", self.gw.read_stderr())


SESSIONS_AGE = os.environ.get("JG_SESSIONS_AGE", os.path.join(os.path.dirname(JG_BIN), "tests", "sessions_age"))


class ExpiredSessionsPurgedTest(SessionsTestCase):
    def sessions_age(self, mode):
        p = subprocess.run([SESSIONS_AGE, self.store, mode], capture_output=True, text=True, timeout=30)
        self.assertEqual(p.returncode, 0, p.stderr)
        return int(p.stdout)

    def test_expired_sessions_are_deleted_from_the_store(self):
        b, fresh = Browser(), Browser()
        self.google(b, "jane@example.com")
        cid = self.me(b)["customer_id"]
        self.assertEqual(self.gw.stop(), 0)
        # the session's ttl passes while the gateway is down (the tool stands in for the clock)
        self.assertEqual(self.sessions_age("expire"), 1)
        self.gw = self.start(self.cfg)
        self.wait_ready()
        self.google(fresh, "kim@example.com")  # a live session: the purge leaves it
        deadline = time.monotonic() + 15
        while self.sessions_age("count") != 1 and time.monotonic() < deadline:
            time.sleep(0.1)
        self.assertEqual(self.sessions_age("count"), 1)
        self.assertIn("purged 1 expired session(s)", self.gw.read_stderr())
        self.assertIsNotNone(self.me(fresh))
        self.assertIsNone(self.me(b))
        # the customer's session index lost it too: nothing left to erase with the customer
        code, out, err = self.cli("customer", "delete", cid)
        self.assertEqual(code, 0, err)
        self.assertIn("and 0 session(s)", out)
