"""Integration: the data the console puts on screen — a profile's channels and last seen follow
every touchpoint (ingested ones too), browser noise records nothing unless a route asks for it, a
second device or a new campaign click starts a visit with its own attribution, and exports carry
every recorded field with ISO 8601 times."""

import csv
import io
import json
import re
import time
import unittest
import urllib.parse
import urllib.request

from jgtest import post_touchpoints
from test_journeys import JourneyTest

INGEST_KEY = "cc-key-0123456789abcdef"
DESKTOP = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
PHONE = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) Mobile/15E148 Safari/604.1"
ISO_MS = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")


class JourneyDataTest(JourneyTest):
    # a host whose route records every request, browser noise included
    extra_routes = ({"name": "everything", "match": {"host": "noise.example", "path_prefix": "/"},
                     "upstream": "shop", "auth": "any", "policy": "signed", "touchpoint": "anything",
                     "touchpoint_skip": []},)

    def me(self, browser):
        return json.loads(browser.get(self.public + "/.auth/me")[2])["customer_id"]

    def profile(self, cid):
        code, out, err = self.cli("customer", "show", cid, "--json")
        self.assertEqual(code, 0, err)
        return json.loads(out)

    def profile_when(self, cid, ready, timeout=15):
        """The profile once ready(profile) holds: a recorded touchpoint reaches it about a second after
        it is written (the recorder's writer brings the profiles along on its own), so poll for it."""
        deadline = time.monotonic() + timeout
        while True:
            prof = self.profile(cid)
            if ready(prof) or time.monotonic() > deadline:
                return prof
            time.sleep(0.1)

    def journey(self, cid, at_least, timeout=15):
        """The customer's touchpoints once at least `at_least` are written (the recorder writes shortly after)."""
        deadline = time.monotonic() + timeout
        while True:
            code, out, err = self.cli("journey", cid, "--json")
            self.assertEqual(code, 0, err)
            tps = [json.loads(line) for line in out.splitlines()]
            if len(tps) >= at_least or time.monotonic() > deadline:
                return tps
            time.sleep(0.1)

    def test_ingested_touchpoints_move_channels_and_last_seen(self):
        b = self.web_login("ingrid@example.com")
        cid = self.me(b)
        before = self.profile(cid)
        self.assertEqual(before["channels_seen"], ["web"])
        self.assertEqual(before["identities"][0]["linked_by"], "first_sign_in")
        t0 = int(time.time() * 1000)
        events = [{"customer_id": cid, "channel": ch, "touchpoint": tp, "stage": st, "time": t0 + i * 120000}
                  for i, (ch, tp, st) in enumerate([("email", "opened newsletter", "need"),
                                                    ("mobile", "opened app", "research"),
                                                    ("store", "bought in store", "convert"),
                                                    ("contact-centre", "called support", "own")], 1)]
        status, _, out = post_touchpoints(self.public, INGEST_KEY, events)
        self.assertEqual((status, out["accepted"]), (200, 4), out)
        after = self.profile(cid)
        self.assertEqual(sorted(after["channels_seen"]), ["contact-centre", "email", "mobile", "store", "web"])
        self.assertEqual(after["last_seen_ms"], t0 + 4 * 120000)
        self.assertGreater(after["last_seen_ms"], before["last_seen_ms"])
        self.assertEqual(after["channels"]["store"], {"first_seen_ms": t0 + 3 * 120000,
                                                      "last_seen_ms": t0 + 3 * 120000})
        self.assertEqual(after["stages_reached"]["need"], t0 + 120000)
        self.assertEqual(after["stage"], "own")
        # the human view: tables with headers and ISO times
        code, out, _ = self.cli("customer", "show", cid)
        self.assertIn("CHANNEL", out)
        self.assertIn("contact-centre", out)
        self.assertIn("first_sign_in", out)
        self.assertRegex(out, r"last seen  \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")

    def test_browser_noise_records_nothing_unless_the_route_asks(self):
        b = self.web_login("nora@example.com")
        cid = self.me(b)
        for path in ("/favicon.ico", "/robots.txt", "/apple-touch-icon-120x120.png", "/.well-known/security.txt",
                     "/pricing"):
            self.assertEqual(b.get(self.public + path, headers={"User-Agent": DESKTOP})[0], 200)
        tps = self.journey(cid, 1)
        time.sleep(0.5)  # anything else would be written by now
        tps = self.journey(cid, 1)
        self.assertEqual([(t["route"], t["touchpoint"]) for t in tps], [("site", "landing")])
        # a route with "touchpoint_skip": [] records the same request
        tok = self.mobile_token("nora@example.com")
        self.assertEqual(tok["customer_id"], cid)
        req = urllib.request.Request(self.public + "/favicon.ico", headers={
            "Authorization": "Bearer " + tok["access_token"], "Host": "noise.example", "User-Agent": "okhttp/4.12.0"})
        with urllib.request.urlopen(req, timeout=10) as r:
            self.assertEqual(r.status, 200)
        tps = self.journey(cid, 2)
        self.assertEqual([t["route"] for t in tps], ["site", "everything"])

    def test_second_device_and_new_campaign_click_start_visits(self):
        b = self.web_login("dev@example.com")
        cid = self.me(b)
        shop = self.public + "/shop/"
        b.get(shop + "a?utm_source=newsletter&utm_campaign=spring", headers={"User-Agent": DESKTOP})
        time.sleep(0.02)
        b.get(shop + "b", headers={"User-Agent": DESKTOP})
        time.sleep(0.02)
        # the same person's phone (same session), a paid click
        b.get(shop + "c?utm_source=ads&utm_medium=cpc&utm_campaign=paid-phone&gclid=X1", headers={"User-Agent": PHONE})
        time.sleep(0.02)
        b.get(shop + "d", headers={"User-Agent": DESKTOP})
        time.sleep(0.02)
        # back on the desktop, another campaign's click: a new visit even within 30 minutes
        b.get(shop + "e?utm_source=social&utm_campaign=winter", headers={"User-Agent": DESKTOP})
        tps = [t for t in self.journey(cid, 5) if t["route"] == "shop"]
        self.assertEqual(len(tps), 5, tps)
        a, b2, c, d, e = tps
        self.assertTrue(a["visit_start"])
        self.assertEqual(a["utm_campaign"], "spring")
        self.assertEqual((b2["visit_id"], b2["visit_start"]), (a["visit_id"], False))
        self.assertNotIn("utm_campaign", b2)
        self.assertTrue(c["visit_start"])
        self.assertNotEqual(c["visit_id"], a["visit_id"])
        self.assertEqual((c["device"], c["utm_source"], c["utm_medium"], c["utm_campaign"], c["click_id"]),
                         ("mobile", "ads", "cpc", "paid-phone", True))
        self.assertEqual((d["visit_id"], d["visit_start"]), (a["visit_id"], False))
        self.assertTrue(e["visit_start"])
        self.assertNotIn(e["visit_id"], (a["visit_id"], c["visit_id"]))
        self.assertEqual((e["utm_source"], e["utm_campaign"]), ("social", "winter"))
        # the profile knows both devices
        prof = self.profile_when(cid, lambda p: len(p.get("devices", {})) >= 2)
        self.assertEqual(sorted(prof["devices"]), ["desktop", "mobile"])

    def test_csv_export_has_every_field_and_iso_times(self):
        b = self.web_login("exa@example.com")
        cid = self.me(b)
        b.get(self.public + "/shop/x?utm_source=news&utm_medium=email&utm_campaign=launch&utm_term=t&utm_content=c",
              headers={"User-Agent": DESKTOP, "Referer": "https://mail.example/inbox"})
        status, _, out = post_touchpoints(self.public, INGEST_KEY, [
            {"customer_id": cid, "channel": "contact-centre", "touchpoint": "called", "status": "resolved",
             "attributes": {"queue": "billing"}}])
        self.assertEqual((status, out["accepted"]), (200, 1), out)
        self.journey(cid, 2)
        code, out, err = self.cli("export", "touchpoints", "--format", "csv")
        self.assertEqual(code, 0, err)
        rows = list(csv.DictReader(io.StringIO(out)))
        for column in ("id", "customer_id", "occurred_at", "received_at", "channel", "touchpoint", "stage", "route",
                       "method", "status", "device", "provider", "source", "session", "visit_id", "visit_start",
                       "referrer_host", "utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content",
                       "click_id", "attributes"):
            self.assertIn(column, rows[0], column)
        web = next(r for r in rows if r["route"] == "shop")
        self.assertEqual((web["utm_source"], web["utm_medium"], web["utm_campaign"], web["utm_term"],
                          web["utm_content"], web["referrer_host"], web["visit_start"], web["click_id"]),
                         ("news", "email", "launch", "t", "c", "mail.example", "true", "false"))
        self.assertEqual((web["device"], web["provider"], web["source"], web["status"]),
                         ("desktop", "google", "proxy", "200"))
        self.assertTrue(web["session"])
        call = next(r for r in rows if r["channel"] == "contact-centre")
        self.assertEqual((call["status"], json.loads(call["attributes"])), ("resolved", {"queue": "billing"}))
        for r in rows:
            self.assertRegex(r["occurred_at"], ISO_MS)
            self.assertRegex(r["received_at"], ISO_MS)
        # the same fields in NDJSON, and --since takes an ISO time
        code, out, _ = self.cli("export", "touchpoints", "--format", "ndjson", "--since", web["occurred_at"])
        nd = [json.loads(line) for line in out.splitlines()]
        self.assertIn(web["id"], [t["id"] for t in nd])
        self.assertEqual(next(t for t in nd if t["id"] == web["id"])["utm_campaign"], "launch")
        # the journey's text view: a header, ISO times
        code, out, _ = self.cli("journey", cid)
        self.assertIn("OCCURRED_AT", out)
        self.assertRegex(out, r"\n\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z +web")


    def test_csv_export_guards_formulas(self):
        """the CLI's CSV takes the console's formula guard (gw_csv_cell()): a cell a spreadsheet would run starts with '"""
        b = self.web_login("formula@example.com")
        cid = self.me(b)
        status, _, out = post_touchpoints(self.public, INGEST_KEY, [
            {"customer_id": cid, "channel": "contact-centre", "touchpoint": "called", "status": "=1+2"}])
        self.assertEqual((status, out["accepted"]), (200, 1), out)
        self.journey(cid, 1)
        code, out, err = self.cli("export", "touchpoints", "--format", "csv")
        self.assertEqual(code, 0, err)
        self.assertIn('"\'=1+2"', out)
        call = next(r for r in csv.DictReader(io.StringIO(out)) if r["customer_id"] == cid)
        self.assertEqual(call["status"], "'=1+2")

if __name__ == "__main__":
    unittest.main()
