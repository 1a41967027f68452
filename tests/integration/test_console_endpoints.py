"""Integration: every endpoint of console/API.md through the real binary, the real test OP (staff and
customers sign in there; Facebook's stand-in for a customer whose email it does not vouch for), real
proxied requests and /.auth/touchpoints ingestion: the role matrix (no session, a customer's session,
staff without the role, staff with it and the documented shape), refusals (hostile parameters, CSRF,
unknown customers, admin-only actions, erase confirmations), the audit records of every look and
every action, a revoked session refused on every thread, streamed exports (complete, ISO times,
formula guard; a client that leaves early harms nothing) and the security headers of every answer."""

import csv
import io
import json
import os
import re
import socket
import subprocess
import time
import unittest
import urllib.parse

from jgtest import JG_BIN, Browser, native_id_token, parallel_gets, post_token, post_touchpoints
from test_identity import APP_ID, APP_SECRET, CLIENT_ID, CLIENT_SECRET, IdentityTestCase

INGEST_KEY = "crm-key-0123456789abcdef"
MOBILE_ID, MOBILE_SECRET = "jg-android-client", "jg-android-secret"
API_CSP = "default-src 'none'; frame-ancestors 'none'"
ISO_MS = r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$"
NO_SUCH = "c_aaaaaaaaaaaaaaaaaaaaaaaa"  # a well-formed customer id nobody has

# marketers at mkt.example; security at sec.example and adm.example; admin only at adm.example
CONSOLE = {"roles": {"marketer": "staff_marketing", "security": "staff_security", "admin": "staff_admin"},
           "figures_refresh_s": 1}
POLICIES = {"signed": {"rules": [{"allow": {"signed_in": True}}]},
            "staff_marketing": {"rules": [{"allow": {"email_domain": ["mkt.example"]}}]},
            "staff_security": {"rules": [{"allow": {"email_domain": ["sec.example", "adm.example"]}}]},
            "staff_admin": {"rules": [{"allow": {"email_domain": ["adm.example"]}}]}}
MARKETER, SECURITY, ADMIN = "marketer", "security", "admin"


class ConsoleEndpointsTest(IdentityTestCase):
    def start_op(self, client_id, client_secret, public, extra_clients=(), redirect_uris=()):
        # the app's native sign-in too: bearer sessions from /.auth/token
        return super().start_op(client_id, client_secret, public, extra_clients=[(MOBILE_ID, MOBILE_SECRET)],
                                redirect_uris=["com.example.app:/oauth"])

    def extra_config(self):
        keys = os.path.join(self.tmpdir, "ingest.keys")
        with open(keys, "w") as f:
            f.write("crm:%s\n" % INGEST_KEY)
        routes = [{"name": "vip", "match": {"path_prefix": "/vip"}, "upstream": "up", "auth": "session",
                   "policy": "staff_admin"},
                  {"name": "landing", "match": {"path_prefix": "/landing"}, "upstream": "up", "auth": "none",
                   "channel": "web", "touchpoint": "landing", "stage": "need"},
                  {"name": "api", "match": {"path_prefix": "/api"}, "upstream": "up", "auth": "any",
                   "policy": "signed", "channel": "mobile", "touchpoint": "api", "stage": "own"},
                  {"name": "pricing", "match": {"path_prefix": "/app/pricing"}, "upstream": "up", "auth": "session",
                   "policy": "signed", "channel": "web", "touchpoint": "viewed pricing", "stage": "research"},
                  {"name": "app", "match": {"path_prefix": "/app"}, "upstream": "up", "auth": "session",
                   "policy": "signed", "channel": "web", "touchpoint": "app", "stage": "select"},
                  {"name": "site", "match": {"path_prefix": "/"}, "upstream": "up", "auth": "none"}]
        limits = lifted_limits()
        providers = {  # as IdentityTestCase's, and Google knows the app's client id
            "facebook": {"type": "facebook", "app_id": APP_ID, "app_secret": APP_SECRET,
                         "graph_url": self.fb.url + "/v19.0", "dialog_url": self.fb.url + "/v19.0/dialog/oauth",
                         "insecure_http": True, "trust_email": False},
            "google": {"type": "oidc", "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET, "issuer": self.op.url,
                       "insecure_http": True, "mobile_client_ids": [MOBILE_ID]}}
        return {"policies": POLICIES, "console": CONSOLE, "routes": routes, "ingest": {"api_keys_file": keys},
                "providers": providers,
                "journeys": {}, "limits": limits, "threads": 2}

    # ---- helpers

    def staff(self, email):
        b = Browser()
        q = urllib.parse.urlencode({"return_to": "/.console/", "login_hint": email})
        status, _, body, _ = b.get(self.public + "/.console/login/google?" + q)
        self.assertEqual(status, 200, body[:300])
        self.assertTrue(b.cookie("jg_console"))
        b.csrf = self.api(b, "me")[2]["csrf"]
        return b

    def customer(self, email):
        b = Browser()
        self.google(b, email)
        return b, self.me(b)["customer_id"]

    def api(self, b, path, method="GET", body=None, csrf=True):
        """(status, headers, JSON or raw body); every answer is checked for the API's headers."""
        h = {"Accept": "application/json"}
        if method == "GET":
            status, hdrs, data, _ = b.get(self.public + "/.console/api/" + path, headers=h)
        else:
            h["Content-Type"] = "application/json"
            if csrf and getattr(b, "csrf", None):
                h["X-CSRF-Token"] = b.csrf
            status, hdrs, data = b.post(self.public + "/.console/api/" + path, json.dumps(body).encode(), headers=h)
        self.assertEqual(hdrs.get("cache-control"), "no-store", (path, status))
        self.assertEqual(hdrs.get("content-security-policy"), API_CSP, (path, status))
        self.assertEqual(hdrs.get("x-content-type-options"), "nosniff", (path, status))
        if "text/csv" in hdrs.get("content-type", ""):
            return status, hdrs, data
        try:
            return status, hdrs, json.loads(data)
        except ValueError:
            self.fail("%s %s: not JSON: %r" % (path, status, data[:200]))

    def ok(self, b, path, method="GET", body=None):
        status, hdrs, out = self.api(b, path, method, body)
        self.assertEqual(status, 200, (path, out))
        return out

    def refused(self, b, path, status, error, method="GET", body=None, csrf=True, **more):
        got, _, out = self.api(b, path, method, body, csrf)
        if not isinstance(out, dict):
            self.fail("%s: %d %r, not the JSON refusal %d %s" % (path, got, out[:100], status, error))
        self.assertEqual((got, out.get("error")), (status, error), (path, out))
        for k, v in more.items():
            self.assertEqual(out.get(k), v, (path, out))
        return out

    def bad_param(self, b, path, param, method="GET", body=None):
        out = self.refused(b, path, 400, "invalid_parameter", method, body)
        self.assertTrue(out["message"].startswith(param + ":"), (path, out))

    def records(self):
        p = subprocess.run([JG_BIN, "audit", "tail", "-n", "5000", "--json", "--store", self.store],
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(p.returncode, 0, p.stderr)
        return [json.loads(line) for line in p.stdout.splitlines()]

    def audit_api(self, b, query):
        """Every record the audit endpoint gives for query, following next_before."""
        out, before = [], None
        while True:
            page = self.ok(b, "audit?" + query + ("&before=%d" % before if before else ""))
            out += page["records"]
            if page["next_before"] is None:
                return out
            before = page["next_before"]

    def poll(self, fetch, until, what, timeout=20):
        deadline = time.monotonic() + timeout
        while True:
            got = fetch()
            if until(got):
                return got
            if time.monotonic() > deadline:
                self.fail("%s never held: %r" % (what, got))
            time.sleep(0.1)

    def journey_all(self, b, cid):
        """Every touchpoint of the customer's journey, page after page (2000 a page)."""
        out, after = [], ""
        while True:
            page = self.ok(b, "customers/%s/journey?limit=2000%s" % (cid, after))
            out += page["touchpoints"]
            if page["next"] is None:
                return out
            after = "&after=" + page["next"]

    def journey(self, b, cid, at_least):
        """The journey once at least at_least touchpoints are written (the recorder writes shortly after)."""
        deadline = time.monotonic() + 20
        while True:
            tps = self.journey_all(b, cid)
            if len(tps) >= at_least:
                return tps
            if time.monotonic() > deadline:
                self.fail("the journey of %s has %d touchpoints, not %d" % (cid, len(tps), at_least))
            time.sleep(0.1)

    def ingest(self, events):
        for i in range(0, len(events), 1000):
            status, _, out = post_touchpoints(self.public, INGEST_KEY, events[i:i + 1000])
            self.assertEqual((status, out.get("accepted")), (200, len(events[i:i + 1000])), out)

    def world(self):
        """Customers by real sign-ins and touchpoints by proxied requests and ingestion:
        alice (Google, web and ingested email), bob (Facebook only, bob@example.com unverified)."""
        # the UTC days the data falls on (two when the test runs across midnight)
        self.first_day = time.strftime("%Y-%m-%d", time.gmtime(time.time() - 600))
        alice, alice_id = self.customer("alice@example.com")
        for path in ("/app/pricing", "/app/cart", "/app/pricing/plans"):
            self.assertEqual(alice.get(self.public + path)[0], 200)
        bob = Browser()
        self.facebook(bob, "2003")
        bob_id = self.me(bob)["customer_id"]
        self.assertEqual(bob.get(self.public + "/app/pricing")[0], 200)
        t0 = int(time.time() * 1000) - 600000
        # posted newest first: the journey orders by time
        self.ingest([{"customer_id": alice_id, "channel": "email", "touchpoint": "opened mail %d" % i,
                      "stage": "need", "time": t0 + i * 1000} for i in (3, 2, 1)])
        return alice, alice_id, bob, bob_id

    # ---- 1. the role matrix, every endpoint

    maxDiff = None

    def test_every_endpoint_role_matrix_and_shapes(self):
        alice, alice_id, bob, bob_id = self.world()
        erin, erin_id = self.customer("erin@example.com")  # erased at the end
        self.assertEqual(erin.get(self.public + "/app/x")[0], 200)
        self.facebook(alice, "2001", path="/.auth/link/facebook")  # alice: google + facebook, one to unlink
        mia, sam, ada = self.staff("mia@mkt.example"), self.staff("sam@sec.example"), self.staff("ada@adm.example")
        self.assertEqual([self.ok(s, "me")["roles"] for s in (mia, sam, ada)],
                         [["marketer"], ["security"], ["security", "admin"]])
        flow = self.poll(lambda: self.audit_api(sam, "event=callback_succeeded&customer=" + bob_id),
                         lambda r: r, "bob's sign-in on record")[0]["flow_id"]
        endpoints = [  # (method, path, role, body)
            ("GET", "me", None, None),
            ("GET", "overview", MARKETER, None),
            ("GET", "customers?q=bob%40example.com", MARKETER, None),
            ("GET", "customers/" + alice_id, MARKETER, None),
            ("GET", "customers/%s/journey" % alice_id, MARKETER, None),
            ("GET", "export/touchpoints.csv", MARKETER, None),
            ("GET", "export/customers.csv", MARKETER, None),
            ("GET", "transitions", MARKETER, None),
            ("GET", "paths", MARKETER, None),
            ("GET", "funnel", MARKETER, None),
            ("GET", "stages", MARKETER, None),
            ("GET", "inventory", MARKETER, None),
            ("GET", "signins/volume", SECURITY, None),
            ("GET", "audit", SECURITY, None),
            ("GET", "audit/chain", SECURITY, None),
            ("GET", "audit/flow/" + flow, SECURITY, None),
            ("GET", "customers/%s/security" % alice_id, SECURITY, None),
            ("GET", "policies", SECURITY, None),
            ("GET", "policies/explain?customer=%s&route=app" % alice_id, SECURITY, None),
            ("POST", "customers/%s/sessions/revoke" % bob_id, SECURITY, {"all": True}),
            ("POST", "customers/%s/unlink" % alice_id, ADMIN, {"provider": "facebook"}),
            ("POST", "customers/%s/erase" % erin_id, ADMIN, {"confirm": erin_id}),
        ]
        without = {MARKETER: [sam, ada], SECURITY: [mia], ADMIN: [mia, sam]}
        for method, path, role, body in endpoints:
            with self.subTest(path=path):
                self.refused(Browser(), path, 401, "not_signed_in", method, body)
                self.refused(alice, path, 401, "not_signed_in", method, body)  # a customer's session
                for who in without.get(role, []):
                    self.refused(who, path, 403, "forbidden", method, body, role=role)
        # nothing was done by the refused calls
        self.assertEqual(len(self.me(alice)["identities"]), 2)
        self.assertIsNotNone(self.me(erin))

        # with the role: 200 and the documented shape
        me = self.ok(mia, "me")
        self.assertEqual(set(me), {"name", "email", "provider", "roles", "csrf", "demo"})

        ov = self.poll(lambda: self.ok(mia, "overview"),
                       lambda o: metric(o, "customers_seen") == 3 and metric(o, "touchpoints") >= 9,
                       "overview counts the 3 customers")
        self.assertEqual(set(ov) - {"definition"}, {"period", "previous", "metrics", "signins_by_provider",
                                                   "touchpoints_by_channel", "touchpoints_by_day", "definitions",
                                                   "as_of"})
        self.assertEqual(ov["period"]["days"], 30)
        self.assertRegex(ov["as_of"], ISO_MS)
        self.assertEqual({m["key"] for m in ov["metrics"]}, {"customers_seen", "multi_channel_share", "new_customers",
                                                            "returning_customers", "touchpoints",
                                                            "anonymous_visitors"})
        self.assertEqual(metric(ov, "new_customers"), 3)
        self.assertAlmostEqual(metric(ov, "multi_channel_share"), 1 / 3)  # alice: web and email
        by_channel = {c["channel"]: c["value"] for c in ov["touchpoints_by_channel"]}
        self.assertEqual(by_channel["email"], 3)
        providers = {p["provider"]: p["value"] for p in ov["signins_by_provider"]}
        # staff sign-ins are not counted; Facebook: bob's sign-in and alice's link (a completed sign-in there too)
        self.assertEqual((providers.get("google"), providers.get("facebook")), (2, 2))

        # the period of the data's day(s) alone: the same customers; the period before it saw nobody
        today = time.strftime("%Y-%m-%d", time.gmtime())
        one = self.ok(mia, "overview?from=%s&to=%s" % (self.first_day, today))
        self.assertEqual((one["period"]["days"], one["previous"]["to"] < self.first_day),
                         (1 if self.first_day == today else 2, True))
        self.assertEqual({m["key"]: (m["value"], m["previous"]) for m in one["metrics"]
                          if m["key"] in ("customers_seen", "new_customers", "returning_customers")},
                         {"customers_seen": (3, 0), "new_customers": (3, 0), "returning_customers": (0, 0)})
        found = self.ok(mia, "customers?q=" + urllib.parse.quote("BOB@example.com"))["customers"]
        self.assertEqual([c["id"] for c in found], [bob_id])  # by an unverified Facebook email
        self.assertEqual(set(found[0]), {"id", "name", "email", "providers", "channels", "first_seen", "last_seen",
                                         "stage"})
        self.assertEqual((found[0]["providers"], found[0]["channels"]), (["facebook"], ["web"]))
        self.assertEqual([c["id"] for c in self.ok(mia, "customers?q=" + alice_id)["customers"]], [alice_id])
        self.assertEqual([c["id"] for c in self.ok(mia, "customers?q=facebook:2003")["customers"]], [bob_id])

        prof = self.ok(mia, "customers/" + alice_id)
        for k in ("id", "name", "email", "picture", "created", "first_seen", "last_seen", "stage", "stages_reached",
                  "identities", "channels", "devices", "consent"):
            self.assertIn(k, prof)
        self.assertEqual(sorted(i["provider"] for i in prof["identities"]), ["facebook", "google"])
        self.assertEqual(sorted(c["channel"] for c in prof["channels"]), ["email", "web"])
        self.assertEqual({i["provider"]: i["linked_by"] for i in prof["identities"]},
                         {"google": "first_sign_in", "facebook": "explicit_link"})

        tps = self.journey(mia, alice_id, 8)
        times = [t["occurred_at"] for t in tps]
        self.assertEqual(times, sorted(times))
        for t in tps:
            self.assertRegex(t["occurred_at"], ISO_MS)
        self.assertEqual([t["touchpoint"] for t in tps if t["channel"] == "email"],
                         ["opened mail 1", "opened mail 2", "opened mail 3"])
        self.assertEqual([(t["route"], t["touchpoint"], t["stage"]) for t in tps if t["channel"] == "web"],
                         [("app", "app", "select"),  # /app/x, where her sign-in returned
                          ("pricing", "viewed pricing", "research"), ("app", "app", "select"),
                          ("pricing", "viewed pricing", "research"),
                          ("app", "app", "select")])  # /app/x again, after the link
        for k in ("id", "occurred_at", "received_at", "channel", "touchpoint", "stage", "route", "method", "status",
                  "device", "provider", "source", "session", "visit_id", "visit_start", "visitor_id", "referrer_host",
                  "utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content", "click_id", "attributes"):
            self.assertIn(k, tps[0])
        # paging: two at a time reaches the same list
        paged, after = [], ""
        while True:
            page = self.ok(mia, "customers/%s/journey?limit=2%s" % (alice_id, after))
            paged += page["touchpoints"]
            if page["next"] is None:
                break
            self.assertRegex(page["next"], r"^[0-9a-f]{32}$")
            after = "&after=" + page["next"]
        self.assertEqual([t["id"] for t in paged], [t["id"] for t in tps])

        status, hdrs, data = self.api(mia, "export/touchpoints.csv")
        self.assertEqual(status, 200)
        rows = list(csv.reader(io.StringIO(data.decode())))
        self.assertEqual(rows[0][:3], ["id", "customer_id", "occurred_at"])
        self.assertEqual(sorted({r[1] for r in rows[1:]}), sorted([alice_id, bob_id, erin_id]))
        status, hdrs, data = self.api(mia, "export/customers.csv")
        self.assertEqual(status, 200)
        rows = list(csv.reader(io.StringIO(data.decode())))
        self.assertEqual(rows[0][:3], ["id", "name", "email"])
        self.assertEqual(sorted(r[0] for r in rows[1:]), sorted([alice_id, bob_id, erin_id]))

        tr = self.ok(mia, "transitions")
        for k in ("rows", "cols", "counts", "shares", "sequences", "converted_stage"):
            self.assertIn(k, tr)
        # alice: email (ingested, ten minutes ago), then web; bob and erin: web only
        self.assertEqual(sorted((tuple(q["channels"]), q["customers"]) for q in tr["sequences"]),
                         [(("email", "web"), 1), (("web",), 2)])
        self.assertEqual(tr["rows"][0], "(start)")
        self.assertEqual(tr["cols"][-2:], ["(converted)", "(lost)"])
        pa = self.ok(mia, "paths")
        self.assertEqual((pa["scope"], pa["started"]), ("person", 3))
        self.assertTrue(pa["nodes"] and pa["links"] is not None)
        fu = self.ok(mia, "funnel")
        self.assertEqual([s["stage"] for s in fu["steps"]], ["need", "research", "select", "convert"])
        self.assertEqual((fu["window_days"], fu["steps"][0]["reached"]), (14, 1))  # alice's need (email)
        self.assertIn("next_after_dropoff", fu)
        st = self.ok(mia, "stages")
        self.assertTrue({"need", "research", "select"} <= {s["stage"] for s in st["stages"]}, st)
        self.assertIn("transitions", st)
        inv = self.ok(mia, "inventory")
        routes = {r["name"]: r for r in inv["routes"]}
        self.assertEqual((routes["pricing"]["touchpoint"], routes["pricing"]["channel"]), ("viewed pricing", "web"))
        # app: alice 3 (/app/x after sign-in and after the link, /app/cart), bob 1, erin 2; pricing: alice 2, bob 1
        self.poll(lambda: {r["name"]: r["touchpoints_30d"] for r in self.ok(mia, "inventory")["routes"]},
                  lambda r: r["pricing"] == 3 and r["app"] == 6 and r["site"] == 0, "inventory counts route touchpoints")
        self.assertIn(("crm", "email", "opened mail 1", "need", 1),
                      [(i["source"], i["channel"], i["touchpoint"], i["stage"], i["touchpoints_30d"])
                       for i in self.ok(mia, "inventory")["ingested"]])

        vol = self.poll(lambda: self.ok(sam, "signins/volume"),
                        lambda v: sum(b["success"] for b in v["buckets"]) == 4, "sign-in volume")
        self.assertEqual(vol["bucket"], "day")
        self.assertEqual(len(vol["buckets"]), 30)
        self.assertEqual(sum(b["failure"] + b["refusals"] for b in vol["buckets"]), 0)
        today = time.strftime("%Y-%m-%d", time.gmtime())
        hourly = self.ok(sam, "signins/volume?from=%s&to=%s" % (self.first_day, today))
        self.assertEqual((hourly["bucket"], len(hourly["buckets"])), ("hour", 24 * one["period"]["days"]))
        by_provider = {}
        for bucket in hourly["buckets"]:
            for prov, n in bucket["by_provider"].items():
                by_provider[prov] = by_provider.get(prov, 0) + n["success"]
        self.assertEqual(by_provider, {"google": 2, "facebook": 2})
        self.assertIn("anomalies", vol)
        recs = self.ok(sam, "audit?event=callback_succeeded")
        self.assertEqual({r["customer_id"] for r in recs["records"]}, {alice_id, bob_id, erin_id})
        for k in ("seq", "time", "event", "outcome", "reason", "provider", "customer_id", "customer_name",
                  "customer_email", "client", "user_agent", "flow_id", "request_id", "actor", "route", "detail",
                  "count"):
            self.assertIn(k, recs["records"][0])
        seqs = [r["seq"] for r in recs["records"]]
        self.assertEqual(seqs, sorted(seqs, reverse=True))
        ch = self.ok(sam, "audit/chain?full=1")
        self.assertEqual((ch["state"], ch["first_broken"], ch["check"]), ("verified", None, "full"))
        self.assertGreaterEqual(ch["verified_up_to"], max(seqs))
        fl = self.ok(sam, "audit/flow/" + flow)
        self.assertEqual((fl["flow_id"], fl["customer_id"], fl["complete"]), (flow, bob_id, True))
        self.assertTrue({"callback_succeeded", "customer_created"} <= {x["event"] for x in fl["steps"]}, fl)
        self.assertEqual([x["seq"] for x in fl["steps"]], sorted(x["seq"] for x in fl["steps"]))  # oldest first
        sec = self.ok(sam, "customers/%s/security" % bob_id)
        self.assertEqual(sec["customer"]["id"], bob_id)
        self.assertEqual([(s["kind"], s["provider"]) for s in sec["sessions"]], [("cookie", "facebook")])
        self.assertRegex(sec["sessions"][0]["id"], r"^[0-9a-f]{16}$")
        self.assertIn("callback_succeeded", [e["event"] for e in sec["events"]])
        pol = self.ok(sam, "policies")
        self.assertIn("staff_admin", [p["name"] for p in pol["policies"]])
        self.assertEqual({r["name"]: r["policy"] for r in pol["routes"]}["app"], "signed")
        ex = self.ok(sam, "policies/explain?customer=%s&route=app" % alice_id)
        self.assertEqual((ex["decision"], ex["policy"], ex["rule"]), ("allow", "signed", 0))
        self.assertEqual(ex["facts"]["email"], "alice@example.com")

        self.assertEqual(self.ok(sam, "customers/%s/sessions/revoke" % bob_id, "POST", {"all": True}), {"revoked": 1})
        self.assertEqual(self.ok(ada, "customers/%s/unlink" % alice_id, "POST", {"provider": "facebook"}),
                         {"unlinked": "facebook", "sessions_ended": 0})
        self.assertEqual([i["provider"] for i in self.me(alice)["identities"]], ["google"])
        self.assertEqual(self.ok(ada, "customers/%s/erase" % erin_id, "POST", {"confirm": erin_id}),
                         {"erased": True, "sessions_ended": 1})
        self.refused(mia, "customers/" + erin_id, 404, "not_found")
        self.assertIsNone(self.me(erin))

    # ---- 2. refusals

    def test_hostile_parameters_csrf_unknown_customers_and_admin_actions(self):
        alice, alice_id = self.customer("alice@example.com")
        mia, sam, ada = self.staff("mia@mkt.example"), self.staff("sam@sec.example"), self.staff("ada@adm.example")
        long = "x" * 600
        for path, param in (("customers?q=a%01b", "q"), ("customers?q=" + long, "q"), ("customers", "q"),
                            ("customers?q=x&limit=201", "limit"), ("customers?q=x&limit=-1", "limit"),
                            ("customers/%s/journey?after=zz" % alice_id, "after"),
                            ("customers/%s/journey?after=%s" % (alice_id, "g" * 32), "after"),
                            ("customers/%s/journey?limit=2001" % alice_id, "limit"),
                            ("overview?from=2026-02-30", "from"), ("overview?to=yesterday", "to"),
                            ("overview?from=2026-03-02&to=2026-03-01", "to"),
                            ("overview?from=2020-01-01&to=2026-01-01", "to"),
                            ("overview?from=%0a2026-01-01", "from"),
                            ("transitions?channel=%1b", "channel"), ("transitions?channel=" + "c" * 300, "channel"),
                            ("transitions?stage=%09", "stage"),
                            ("paths?steps=11", "steps"), ("paths?top=0", "top"), ("paths?start=" + long, "start"),
                            ("funnel?window_days=0", "window_days"), ("funnel?steps=", "steps"),
                            ("funnel?steps=" + ",".join(["need"] * 11), "steps"),
                            ("stages?from=2026-1-1", "from"),
                            ("export/touchpoints.csv?from=2026-02-30", "from"),
                            ("export/touchpoints.csv?stage=nirvana", "stage"),
                            ("export/touchpoints.csv?channel=%00", "channel"),
                            ("export/touchpoints.csv?customer=not-an-id", "customer"),
                            ("export/customers.csv?q=%7f", "q")):
            with self.subTest(path=path):
                self.bad_param(mia, path, param)
        for path, param in (("signins/volume?bucket=week", "bucket"),
                            ("signins/volume?bucket=hour&from=2026-01-01&to=2026-03-01", "bucket"),
                            ("audit?limit=501", "limit"), ("audit?before=x", "before"), ("audit?before=0", "before"),
                            ("audit?outcome=maybe", "outcome"), ("audit?client=not-an-address", "client"),
                            ("audit?customer=nope", "customer"), ("audit?event=%01", "event"),
                            ("audit?provider=" + long, "provider"), ("audit?from=2026-13-01", "from"),
                            ("audit/chain?full=2", "full"), ("audit/flow/" + "f" * 65, "flow"),
                            ("customers/not-an-id/security", "customer"),
                            ("policies/explain?route=app", "customer"),
                            ("policies/explain?customer=%s" % alice_id, "route"),
                            ("policies/explain?customer=%s&route=nope" % alice_id, "route")):
            with self.subTest(path=path):
                self.bad_param(sam, path, param)
        # bodies of writes
        self.bad_param(sam, "customers/%s/sessions/revoke" % alice_id, "body", "POST", {"all": True, "session": "x"})
        self.bad_param(sam, "customers/%s/sessions/revoke" % alice_id, "body", "POST", {"all": "yes"})
        self.bad_param(ada, "customers/%s/erase" % alice_id, "confirm", "POST", {"confirm": 1})

        # writes without the CSRF token
        for who, path, body in ((sam, "customers/%s/sessions/revoke" % alice_id, {"all": True}),
                                (ada, "customers/%s/unlink" % alice_id, {"provider": "google"}),
                                (ada, "customers/%s/erase" % alice_id, {"confirm": alice_id})):
            self.refused(who, path, 403, "csrf", "POST", body, csrf=False)
        # unknown customers
        for who, path, method, body in ((mia, "customers/" + NO_SUCH, "GET", None),
                                        (mia, "customers/%s/journey" % NO_SUCH, "GET", None),
                                        (mia, "export/touchpoints.csv?customer=" + NO_SUCH, "GET", None),
                                        (sam, "customers/%s/security" % NO_SUCH, "GET", None),
                                        (sam, "policies/explain?customer=%s&route=app" % NO_SUCH, "GET", None),
                                        (sam, "customers/%s/sessions/revoke" % NO_SUCH, "POST", {"all": True}),
                                        (sam, "customers/%s/sessions/revoke" % alice_id, "POST",
                                         {"session": "0123456789abcdef"}),
                                        (ada, "customers/%s/unlink" % NO_SUCH, "POST", {"provider": "google"}),
                                        (ada, "customers/%s/unlink" % alice_id, "POST", {"provider": "facebook"}),
                                        (ada, "customers/%s/erase" % NO_SUCH, "POST", {"confirm": NO_SUCH})):
            with self.subTest(path=path):
                self.refused(who, path, 404, "not_found", method, body)
        self.assertEqual(self.api(sam, "audit/flow/no-such-flow")[0], 404)
        # admin actions: refused to a security-only person; the last identity; a wrong confirmation
        self.refused(sam, "customers/%s/unlink" % alice_id, 403, "forbidden", "POST", {"provider": "google"},
                     role="admin")
        self.refused(sam, "customers/%s/erase" % alice_id, 403, "forbidden", "POST", {"confirm": alice_id},
                     role="admin")
        self.refused(ada, "customers/%s/unlink" % alice_id, 409, "last_identity", "POST", {"provider": "google"})
        self.refused(ada, "customers/%s/erase" % alice_id, 409, "confirmation_mismatch", "POST", {"confirm": NO_SUCH})
        self.refused(ada, "customers/%s/erase" % alice_id, 409, "confirmation_mismatch", "POST",
                     {"confirm": alice_id.upper()})
        # and the customer is untouched
        self.assertEqual(self.me(alice)["customer_id"], alice_id)
        self.assertFalse([r for r in self.records() if r["event"] in ("erasure", "identity_unlinked", "session_revoked")])

    # ---- 3. audit: looks and actions on record with the actor; revocation on every thread

    def test_looks_and_actions_are_audited_with_the_actor(self):
        alice, alice_id, bob, bob_id = self.world()
        self.facebook(alice, "2001", path="/.auth/link/facebook")
        erin, erin_id = self.customer("erin@example.com")
        mia, ada = self.staff("mia@mkt.example"), self.staff("ada@adm.example")
        self.ok(mia, "customers/" + alice_id)
        self.ok(mia, "customers/%s/journey" % alice_id)
        self.assertEqual(self.api(mia, "export/touchpoints.csv?customer=" + alice_id)[0], 200)
        self.assertEqual(self.api(mia, "export/customers.csv?q=bob%40example.com")[0], 200)
        self.ok(ada, "customers/%s/security" % alice_id)
        self.ok(ada, "policies/explain?customer=%s&route=app" % alice_id)
        self.ok(ada, "customers/%s/unlink" % alice_id, "POST", {"provider": "facebook"})
        self.ok(ada, "customers/%s/erase" % erin_id, "POST", {"confirm": erin_id})
        MIA, ADA = "staff:google:mia@mkt.example", "staff:google:ada@adm.example"
        want = [("console_view_profile", MIA, alice_id), ("console_view_journey", MIA, alice_id),
                ("console_export", MIA, alice_id), ("console_export", MIA, bob_id),
                ("console_view_security", ADA, alice_id), ("console_explain", ADA, alice_id),
                ("identity_unlinked", ADA, alice_id), ("erasure", ADA, erin_id)]
        events = {w[0] for w in want}
        # read as a security person through the API
        got = [(r["event"], r["actor"], r["customer_id"]) for r in reversed(self.audit_api(ada, "limit=500"))
               if r["event"] in events]
        self.assertEqual(got, want)
        exports = [r for r in self.audit_api(ada, "event=console_export")]
        self.assertIn("customers.csv", exports[0]["detail"])
        self.assertIn("bob@example.com", exports[0]["detail"])
        self.assertIn("touchpoints.csv", exports[1]["detail"])
        # and through the CLI, the same records
        cli = [(r["event"], r.get("actor"), r.get("customer_id")) for r in self.records() if r["event"] in events]
        self.assertEqual(cli, want)
        # names as of now: the erased customer's are gone, alice's are hers
        latest = {r["event"]: r for r in self.audit_api(ada, "limit=500")}
        self.assertEqual((latest["erasure"]["customer_name"], latest["erasure"]["customer_email"]), (None, None))
        self.assertEqual(latest["console_view_profile"]["customer_email"], "alice@example.com")

    def test_revoked_sessions_are_refused_on_every_thread(self):
        bob = Browser()
        self.facebook(bob, "2003")
        bob_id = self.me(bob)["customer_id"]
        cookie = "jg_session=" + bob.cookie("jg_session")
        other, _ = self.customer("olga@example.com")
        sam = self.staff("sam@sec.example")

        def statuses(b_cookie, n=24):
            # fresh connections: each thread has a SO_REUSEPORT listener and the kernel spreads
            # connections by source port, so both threads see (and cache) the session
            return [self.gw.request("GET", "/app/x", headers={"Cookie": b_cookie})[0] for _ in range(n)]

        self.assertEqual(set(statuses(cookie)), {200})
        sid = self.ok(sam, "customers/%s/security" % bob_id)["sessions"][0]["id"]
        self.assertEqual(self.ok(sam, "customers/%s/sessions/revoke" % bob_id, "POST", {"session": sid}),
                         {"revoked": 1})
        self.assertNotIn(200, statuses(cookie))
        self.assertIsNone(self.me(bob))
        self.assertEqual(self.ok(sam, "customers/%s/security" % bob_id)["sessions"], [])
        self.assertEqual(set(statuses("jg_session=" + other.cookie("jg_session"), 6)), {200})  # others go on
        recs = [r for r in self.audit_api(sam, "event=session_revoked")]
        self.assertEqual([(r["actor"], r["customer_id"]) for r in recs], [("staff:google:sam@sec.example", bob_id)])
        self.assertIn(sid, recs[0]["detail"])
        # a bearer session (the app's sign-in): listed as such, ended by "all", refused on every thread
        id_token = native_id_token(self.op.url, MOBILE_ID, MOBILE_SECRET, "mo@example.com", scope="openid email")
        status, _, tok = post_token(self.public, {"provider": "google", "id_token": id_token})
        self.assertEqual(status, 200, tok)
        bearer = "Bearer " + tok["access_token"]
        mo_id = tok["customer_id"]
        self.assertEqual({self.gw.request("GET", "/api/x", headers={"Authorization": bearer})[0] for _ in range(12)},
                         {200})
        self.assertEqual([s["kind"] for s in self.ok(sam, "customers/%s/security" % mo_id)["sessions"]], ["bearer"])
        self.assertEqual(self.ok(sam, "customers/%s/sessions/revoke" % mo_id, "POST", {"all": True}), {"revoked": 1})
        self.assertNotIn(200, [self.gw.request("GET", "/api/x", headers={"Authorization": bearer})[0]
                               for _ in range(24)])
        # revoke all when none is left: on record as such
        self.assertEqual(self.ok(sam, "customers/%s/sessions/revoke" % bob_id, "POST", {"all": True}), {"revoked": 0})
        self.assertEqual([r["actor"] for r in self.audit_api(sam, "event=console_revoke_sessions&customer=" + bob_id)],
                         ["staff:google:sam@sec.example"])

    def test_anonymous_touchpoints_explain_decisions_and_unlink_ending_sessions(self):
        b = Browser()
        self.assertEqual(b.get(self.public + "/landing/spring")[0], 200)  # before signing in
        self.google(b, "alice@example.com")
        cid = self.me(b)["customer_id"]
        self.facebook(b, "2001", path="/.auth/link/facebook")
        mia, ada = self.staff("mia@mkt.example"), self.staff("ada@adm.example")
        tps = self.journey(mia, cid, 3)
        self.assertEqual([(t["route"], t.get("anonymous")) for t in tps], [("landing", True), ("app", None),
                                                                          ("app", None)])
        status, _, data = self.api(mia, "export/touchpoints.csv?customer=" + cid)
        rows = list(csv.DictReader(io.StringIO(data.decode(), newline="")))
        self.assertEqual([(r["route"], r["anonymous"]) for r in rows], [("landing", "true"), ("app", "false"),
                                                                        ("app", "false")])
        # explain: no policy and no sign-in needed; a policy no rule of which matches; one that allows
        ex = self.ok(ada, "policies/explain?customer=%s&route=site" % cid)
        self.assertEqual((ex["decision"], ex["policy"], ex["rule"]), ("allow", None, None))
        ex = self.ok(ada, "policies/explain?customer=%s&route=vip" % cid)
        self.assertEqual((ex["decision"], ex["policy"], ex["rule"]), ("deny", "staff_admin", None))
        self.assertEqual(ex["facts"]["linked_providers"], 2)
        # unlinking the identity her session came through ends that session
        self.assertEqual(self.ok(ada, "customers/%s/unlink" % cid, "POST", {"provider": "google"}),
                         {"unlinked": "google", "sessions_ended": 1})
        self.assertIsNone(self.me(b))
        self.assertNotEqual(self.gw.request("GET", "/app/x", headers={"Cookie": "jg_session=" +
                                                                      (b.cookie("jg_session") or "")})[0], 200)
        recs = self.audit_api(ada, "event=identity_unlinked")
        self.assertEqual([(r["actor"], r["customer_id"], r["provider"]) for r in recs],
                         [("staff:google:ada@adm.example", cid, "google")])

    # ---- 4. streaming

    def test_export_streams_thousands_complete_and_survives_clients_that_leave(self):
        alice, alice_id = self.customer("alice@example.com")
        self.assertEqual(alice.get(self.public + "/app/pricing")[0], 200)
        t0 = int(time.time() * 1000) - 3 * 3600 * 1000
        n = 3000
        events = [{"customer_id": alice_id, "channel": "email", "touchpoint": "mail %d" % i, "stage": "need",
                   "time": t0 + i * 1000, "attributes": {"n": i, "note": "a, \"quoted\"; b"}} for i in range(n)]
        events[1500]["touchpoint"] = "=cmd|' /C calc'!A0"
        self.ingest(events)
        mia = self.staff("mia@mkt.example")
        self.journey(mia, alice_id, n + 2)  # and /app/x (where the sign-in returned), /app/pricing
        status, hdrs, data = self.api(mia, "export/touchpoints.csv?customer=" + alice_id)
        self.assertEqual(status, 200)
        self.assertIn("text/csv", hdrs["content-type"])
        self.assertTrue(data.endswith(b"\r\n"))
        rows = list(csv.reader(io.StringIO(data.decode(), newline="")))
        head = rows[0]
        self.assertEqual(head, ["id", "customer_id", "occurred_at", "received_at", "channel", "touchpoint", "stage",
                                "route", "method", "status", "device", "provider", "source", "session", "visit_id",
                                "visit_start", "visitor_id", "anonymous", "referrer_host", "utm_source",
                                "utm_medium", "utm_campaign", "utm_term", "utm_content", "click_id", "attributes"])
        body = [dict(zip(head, r)) for r in rows[1:]]
        self.assertEqual(len(body), n + 2)
        mails = [r for r in body if r["channel"] == "email"]
        self.assertEqual(len(mails), n)
        for r in body:
            self.assertRegex(r["occurred_at"], ISO_MS)
            self.assertRegex(r["received_at"], ISO_MS)
        self.assertEqual([r["occurred_at"] for r in body], sorted(r["occurred_at"] for r in body))
        self.assertEqual(mails[0]["touchpoint"], "mail 0")
        self.assertEqual(json.loads(mails[7]["attributes"]), {"n": 7, "note": "a, \"quoted\"; b"})
        self.assertEqual(mails[1500]["touchpoint"], "'=cmd|' /C calc'!A0")
        self.assertFalse([r for r in body if r["touchpoint"][:1] in ("=", "+", "-", "@")])
        # clients that read a little and leave, more of them than there are workers
        cookie = "jg_console=" + mia.cookie("jg_console")
        req = ("GET /.console/api/export/touchpoints.csv?customer=%s HTTP/1.1\r\nHost: 127.0.0.1\r\n"
               "Cookie: %s\r\n\r\n" % (alice_id, cookie)).encode()
        for _ in range(10):
            with socket.create_connection(("127.0.0.1", self.port), timeout=10) as s:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
                s.sendall(req)
                self.assertTrue(s.recv(1024).startswith(b"HTTP/1.1 200"))
        # the gateway goes on answering: the proxy, the API, and a whole export again
        self.assertEqual(alice.get(self.public + "/app/cart")[0], 200)
        self.ok(mia, "me")
        status, _, again = self.api(mia, "export/touchpoints.csv?customer=" + alice_id)
        self.assertEqual((status, again.count(b"\r\n") >= n + 2), (200, True))
        self.assertEqual(self.gw.proc.poll(), None)

    def test_gate_answers_carry_the_api_headers(self):
        sam = self.staff("sam@sec.example")
        path = "customers/%s/sessions/revoke" % NO_SUCH
        for method, p, body, headers, status in (
                ("GET", "no/such/thing", None, {}, 404),
                ("GET", path, None, {}, 405),
                ("DELETE", "audit", None, {}, 405),
                ("POST", path, b"{}", {"Content-Type": "text/plain"}, 415),
                ("POST", path, b'{"a":"' + b"x" * 17000 + b'"}', {"Content-Type": "application/json"}, 413),
                ("POST", path, b"[1]", {"Content-Type": "application/json"}, 400),
                ("GET", "customers/%C0%AF/security", None, {}, 400),
                ("GET", "me", None, {"Cookie": "jg_console=" + "A" * 43}, 401)):
            with self.subTest(method=method, path=p, status=status):
                h = {"Cookie": "jg_console=" + sam.cookie("jg_console"), "X-CSRF-Token": sam.csrf}
                h.update(headers)
                got, hdrs, data = self.gw.request(method, "/.console/api/" + p, body, h)
                self.assertEqual(got, status, data)
                self.assertEqual(hdrs.get("cache-control"), "no-store")
                self.assertEqual(hdrs.get("content-security-policy"), API_CSP)
                self.assertEqual(hdrs.get("x-content-type-options"), "nosniff")
                self.assertIn("application/json", hdrs.get("content-type", ""))
                self.assertEqual(json.loads(data)["error"], {404: "not_found", 405: "method_not_allowed",
                                                             415: "unsupported_media_type", 413: "too_large",
                                                             401: "not_signed_in"}.get(status, json.loads(data)["error"]))

    def test_concurrent_calls_on_both_threads_all_answer(self):
        alice, alice_id, bob, bob_id = self.world()
        mia, sam = self.staff("mia@mkt.example"), self.staff("sam@sec.example")
        self.journey(mia, alice_id, 5)
        marketer = ["/.console/api/" + p for p in (
            "me", "overview", "customers?q=bob%40example.com", "customers/" + alice_id,
            "customers/%s/journey?limit=2" % alice_id, "transitions", "paths", "funnel", "stages", "inventory",
            "export/touchpoints.csv", "export/customers.csv", "customers?q=a%01")]
        security = ["/.console/api/" + p for p in (
            "signins/volume", "audit?limit=5", "audit/chain", "customers/%s/security" % bob_id, "policies",
            "policies/explain?customer=%s&route=app" % alice_id, "overview")]
        for who, paths, want in ((mia, marketer, [200] * 12 + [400]), (sam, security, [200] * 6 + [403])):
            statuses = parallel_gets(self.gw, paths, {"Cookie": "jg_console=" + who.cookie("jg_console")}, threads=6)
            self.assertEqual(sorted(statuses), sorted(want * 6))
        self.assertEqual(alice.get(self.public + "/app/cart")[0], 200)

    # ---- 5. headers of the HTML

    def test_console_html_csp_has_no_inline_script(self):
        for path in ("/.console/", "/.console/overview", "/.console/customers/" + NO_SUCH):
            status, hdrs, body, _ = Browser().get(self.public + path)
            self.assertEqual(status, 200, path)
            csp = dict((d.strip().split(" ", 1) + [""])[:2] for d in hdrs["content-security-policy"].split(";")
                       if d.strip())
            self.assertEqual(csp["script-src"], "'self'")
            self.assertNotIn("unsafe-inline", csp["script-src"])
            self.assertNotIn("unsafe-eval", hdrs["content-security-policy"])
            self.assertEqual(csp["frame-ancestors"], "'none'")
            self.assertFalse(re.search(rb"<script(?![^>]*\bsrc=)[^>]*>", body), "inline script in " + path)


def metric(overview, key):
    return {m["key"]: m["value"] for m in overview["metrics"]}[key]


def lifted_limits():
    # sign-ins and ingestion from 127.0.0.1 many times a test: the limits are lifted
    return {"auth_rate_per_minute": 1000000, "auth_burst": 1000000,
            "ingest_rate_per_minute": 1000000, "ingest_burst": 1000000}


if __name__ == "__main__":
    unittest.main()
