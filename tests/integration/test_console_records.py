"""Integration: the marketer's records through the real console (console.c's gate and streaming,
console_marketer.c's endpoints) and the real sign-in flow: a customer who signed in only with
Facebook (which does not vouch for the address) is found by that email, and a Google sign-in with
the same address is not linked to them; the profile, the journey and the exports answer as
console/API.md says, and each view is on record with the staff member who looked."""

import csv
import io
import json
import os
import subprocess
import time
import unittest
import urllib.parse

from jgtest import JG_BIN, Browser
from test_identity import IdentityTestCase

SOURCE = os.environ.get("JG_SOURCE", os.path.join(os.path.dirname(__file__), "../.."))
HAS_CONSOLE = os.path.exists(os.path.join(SOURCE, "gateway/console/console.c"))

CONSOLE = {"roles": {"marketer": "staff_marketing", "security": "staff_security", "admin": "staff_security"}}
POLICIES = {"signed": {"rules": [{"allow": {"signed_in": True}}]},
            "staff_marketing": {"rules": [{"allow": {"email_domain": ["mkt.example"]}}]},
            "staff_security": {"rules": [{"allow": {"email_domain": ["sec.example"]}}]}}


@unittest.skipUnless(HAS_CONSOLE, "the console's HTTP side (gateway/console/console.c) is not in this tree")
class ConsoleRecordsTest(IdentityTestCase):
    auto_link = True  # on: and still Facebook's unverified address links nothing

    def extra_config(self):
        routes = [{"name": "app", "match": {"path_prefix": "/app"}, "upstream": "up", "auth": "session",
                   "policy": "signed", "channel": "web", "touchpoint": "app", "stage": "research"},
                  {"name": "site", "match": {"path_prefix": "/"}, "upstream": "up", "auth": "none"}]
        return {"policies": POLICIES, "console": CONSOLE, "routes": routes}

    def staff(self, email):
        b = Browser()
        q = urllib.parse.urlencode({"return_to": "/.console/customers", "login_hint": email})
        status, _, _, _ = b.get(self.public + "/.console/login/google?" + q)
        self.assertEqual(status, 200)
        return b

    def api(self, b, path):
        status, hdrs, data, _ = b.get(self.public + "/.console/api/" + path, headers={"Accept": "application/json"})
        try:
            return status, hdrs, json.loads(data)
        except ValueError:
            return status, hdrs, data

    def records(self):
        p = subprocess.run([JG_BIN, "audit", "tail", "-n", "1000", "--json", "--store", self.store],
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(p.returncode, 0, p.stderr)
        return [json.loads(line) for line in p.stdout.splitlines()]

    def test_facebook_only_customer_found_by_email_profile_journey_exports(self):
        bob = Browser()
        self.facebook(bob, "2003")  # Bob FB, bob@example.com, not vouched for (trust_email false)
        bob_id = self.me(bob)["customer_id"]
        bob.get(self.public + "/app/pricing")
        other = Browser()
        self.google(other, "bob@example.com")  # a verified address at the OP: still not Bob's customer
        other_id = self.me(other)["customer_id"]
        self.assertNotEqual(other_id, bob_id)

        mia = self.staff("mia@mkt.example")
        status, hdrs, body = self.api(mia, "customers?q=" + urllib.parse.quote("BOB@Example.com"))
        self.assertEqual(status, 200, body)
        self.assertEqual(hdrs["cache-control"], "no-store")
        found = {c["id"]: c for c in body["customers"]}
        self.assertEqual(set(found), {bob_id, other_id})
        self.assertEqual(found[bob_id]["providers"], ["facebook"])
        self.assertEqual(found[bob_id]["email"], "bob@example.com")
        self.assertEqual(found[bob_id]["name"], "Bob FB")

        status, _, profile = self.api(mia, "customers/" + bob_id)
        self.assertEqual(status, 200, profile)
        ident = profile["identities"][0]
        self.assertEqual((ident["provider"], ident["email"], ident["email_verified"], ident["linked_by"]),
                         ("facebook", "bob@example.com", False, "first_sign_in"))
        self.assertRegex(profile["created"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
        views = [r for r in self.records() if r["event"] == "console_view_profile"]
        self.assertEqual([(r.get("actor"), r.get("customer_id")) for r in views],
                         [("staff:google:mia@mkt.example", bob_id)])

        # the journey: the touchpoint of /app/pricing, once the recorder has written it
        deadline = time.monotonic() + 15
        while True:
            status, _, journey = self.api(mia, "customers/%s/journey?limit=10" % bob_id)
            self.assertEqual(status, 200, journey)
            if journey["touchpoints"] or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        tps = [t for t in journey["touchpoints"] if t["route"] == "app"]
        self.assertTrue(tps, journey)
        self.assertEqual((tps[0]["channel"], tps[0]["touchpoint"], tps[0]["stage"], tps[0]["provider"]),
                         ("web", "app", "research", "facebook"))
        self.assertIsNone(journey["next"])
        self.assertTrue(any(r["event"] == "console_view_journey" and r.get("customer_id") == bob_id
                            for r in self.records()))

        status, hdrs, data, _ = mia.get(self.public + "/.console/api/export/touchpoints.csv?customer=" + bob_id)
        self.assertEqual(status, 200)
        self.assertIn("text/csv", hdrs["content-type"])
        self.assertIn("touchpoints.csv", hdrs.get("content-disposition", ""))
        rows = list(csv.reader(io.StringIO(data.decode())))
        self.assertEqual(rows[0][:4], ["id", "customer_id", "occurred_at", "received_at"])
        self.assertTrue(rows[1:] and all(r[1] == bob_id for r in rows[1:]), rows)
        status, _, data, _ = mia.get(self.public + "/.console/api/export/customers.csv?q=bob%40example.com")
        self.assertEqual(status, 200)
        rows = list(csv.reader(io.StringIO(data.decode())))
        self.assertEqual(sorted(r[0] for r in rows[1:]), sorted([bob_id, other_id]))
        exports = [r for r in self.records() if r["event"] == "console_export"]
        self.assertEqual(len(exports), 2)
        self.assertTrue(all(r.get("actor") == "staff:google:mia@mkt.example" for r in exports))

    def test_refusals(self):
        sam = self.staff("sam@sec.example")  # security only
        status, _, body = self.api(sam, "customers?q=x%40example.com")
        self.assertEqual((status, body), (403, {"error": "forbidden", "role": "marketer"}))
        mia = self.staff("mia@mkt.example")
        for path, param in (("customers?q=a%01b", "q"), ("customers?q=x&limit=0", "limit"),
                            ("customers/c_nope", "customer"),
                            ("customers/c_aaaaaaaaaaaaaaaaaaaaaaaa/journey?after=zz", "after"),
                            ("export/touchpoints.csv?stage=nirvana", "stage"),
                            ("export/touchpoints.csv?from=2026-02-30", "from")):
            status, _, body = self.api(mia, path)
            self.assertEqual(status, 400, path)
            self.assertEqual(body["error"], "invalid_parameter", path)
            self.assertTrue(body["message"].startswith(param + ":"), (path, body))
        status, _, body = self.api(mia, "customers/c_aaaaaaaaaaaaaaaaaaaaaaaa")
        self.assertEqual((status, body["error"]), (404, "not_found"))
        self.assertFalse([r for r in self.records() if r["event"].startswith("console_view")])


if __name__ == "__main__":
    unittest.main()
