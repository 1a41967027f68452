"""Integration: hostile bodies on POST /.auth/touchpoints and POST /.auth/token against the real binary.
A batch mixing every class of bad event with good ones: each bad event gets its own error, the good
ones are recorded (read back with `journeygate journey`), and the gateway keeps answering."""

import json
import unittest
import urllib.request

from jgtest import post_token, post_touchpoints
from test_journeys import JourneyTest

KEY = "cc-key-0123456789abcdef"


class HostileIngestTest(JourneyTest):
    def alive(self):
        """The gateway still serves: health on the public listener and a good ingest call."""
        with urllib.request.urlopen(self.public + "/.auth/health", timeout=10) as r:
            self.assertEqual(r.status, 200)
        self.assertIsNone(self.gw.proc.poll(), self.gw.read_stderr())

    def journey(self, cid):
        code, text, err = self.cli("journey", cid, "--json")
        self.assertEqual(code, 0, err)
        return [json.loads(line) for line in text.splitlines()]

    def test_subject_without_provider_is_an_error_not_a_crash(self):
        b = self.web_login("lee@example.com")
        cid = json.loads(b.get(self.public + "/.auth/me")[2])["customer_id"]
        status, _, out = post_touchpoints(self.public, KEY, [
            {"customer_id": cid, "channel": "store", "touchpoint": "before"},
            {"subject": "someone", "channel": "store", "touchpoint": "no provider"},
            {"customer_id": cid, "channel": "store", "touchpoint": "after"}])
        self.assertEqual(status, 200, out)
        self.assertEqual([r["status"] for r in out["results"]], ["accepted", "error", "accepted"])
        self.assertEqual([t["touchpoint"] for t in self.journey(cid)], ["before", "after"])
        self.alive()

    def test_each_bad_event_gets_its_error_and_good_ones_are_recorded(self):
        b = self.web_login("kim@example.com")
        me = json.loads(b.get(self.public + "/.auth/me")[2])
        cid, subject = me["customer_id"], me["identities"][0]["subject"]

        def ev(touchpoint, **kw):
            e = {"customer_id": cid, "channel": "store", "touchpoint": touchpoint}
            e.update(kw)
            return {k: v for k, v in e.items() if v is not None}

        good = [
            ev("good by id"),
            {"email": "kim@example.com", "channel": "store", "touchpoint": "good by email"},
            {"provider": "google", "subject": subject, "channel": "email", "touchpoint": "good by identity"},
            ev("good with attributes", attributes={"basket": "3 items", "total": 12.5, "n": 3, "vip": True,
                                                   "note": None, "ville": "Zürich"},
               status="resolved", stage="own", idempotency_key="pos-1"),
        ]
        bad = [
            # identifier forms: incomplete, unknown, wrong type, bounded, clean
            ({"subject": subject, "channel": "store", "touchpoint": "bad 1"}, "together"),
            ({"provider": "google", "channel": "store", "touchpoint": "bad 2"}, "together"),
            ({"provider": "nosuch", "subject": subject, "channel": "store", "touchpoint": "bad 3"}, "not configured"),
            ({"provider": 7, "subject": subject, "channel": "store", "touchpoint": "bad 4"}, "provider"),
            ({"provider": "google", "subject": ["x"], "channel": "store", "touchpoint": "bad 5"}, "subject"),
            ({"provider": "google", "subject": "s" * 256, "channel": "store", "touchpoint": "bad 6"}, "subject"),
            ({"provider": "google", "subject": subject + "\r\nX-Customer-Id: evil", "channel": "store",
              "touchpoint": "bad 7"}, "subject"),
            ({"customer_id": 12, "channel": "store", "touchpoint": "bad 8"}, "customer_id"),
            ({"customer_id": cid + "\n", "channel": "store", "touchpoint": "bad 9"}, "customer_id"),
            ({"customer_id": "c_" + "a" * 500, "channel": "store", "touchpoint": "bad 10"}, "customer_id"),
            ({"email": "kim@example.com\n", "channel": "store", "touchpoint": "bad 11"}, "email"),
            ({"email": "k" * 250 + "@example.com", "channel": "store", "touchpoint": "bad 12"}, "email"),
            ({"email": True, "channel": "store", "touchpoint": "bad 13"}, "email"),
            ({"customer_id": cid, "email": "kim@example.com", "channel": "store", "touchpoint": "bad 14"},
             "exactly one"),
            ({"channel": "store", "touchpoint": "bad 15"}, "exactly one"),
            # the other fields: types, lengths, control characters
            (ev("bad 16", channel=["store"]), "channel"),
            (ev("bad 17", channel="c" * 65), "channel"),
            (ev("bad 18\r\nSet-Cookie: x=y"), "touchpoint"),
            (ev("t" * 129), "touchpoint"),
            (ev("bad 20", channel="st\u0000ore"), "channel"),
            (ev("bad 21\u001b[31m"), "touchpoint"),
            (ev("bad 22\u0085"), "touchpoint"),
            (ev("bad 23", idempotency_key="k\tey"), "idempotency_key"),
            (ev("bad 24", idempotency_key="k" * 201), "idempotency_key"),
            (ev("bad 25", time=-1), "time"),
            (ev("bad 26", time="1700000000000"), "time"),
            (ev("bad 27", time=1700000000), "time"),  # seconds, not milliseconds
            (ev("bad 28", time=10 ** 17), "time"),
            (ev("bad 29", time=1.7e12), "time"),
            (ev("bad 30", stage="purchase"), "stage"),
            (ev("bad 31", status=42), "status"),
            (ev("bad 32", status="ok\nno"), "status"),
            (ev("bad 33", attributes={"a%d" % i: i for i in range(33)}), "attributes"),
            (ev("bad 34", attributes={"nested": {"x": 1}}), "attribute"),
            (ev("bad 35", attributes={"list": [1]}), "attribute"),
            (ev("bad 36", attributes={"k": "v" * 1025}), "attribute"),
            (ev("bad 37", attributes={"k\r\n": "v"}), "attribute"),
            (ev("bad 38", attributes={"k": "v\u0000"}), "attribute"),
            (ev("bad 39", attributes="flat"), "attributes"),
            (ev("bad 40", unexpected=1), "unknown field"),
            ("not an object", "object"),
        ]
        events, expect = [], []
        for i, (e, why) in enumerate(bad):
            if i % 10 == 0 and good:
                events.append(good[0])
                expect.append(None)
                good = good[1:]
            events.append(e)
            expect.append(why)
        for g in good:
            events.append(g)
            expect.append(None)
        status, _, out = post_touchpoints(self.public, KEY, events)
        self.assertEqual(status, 200, out)
        self.assertEqual(len(out["results"]), len(events))
        for i, (r, why) in enumerate(zip(out["results"], expect)):
            self.assertEqual(r["index"], i)
            if why is None:
                self.assertEqual(r["status"], "accepted", (i, events[i], r))
            else:
                self.assertEqual(r["status"], "error", (i, events[i], r))
                self.assertIn(why, r["error"], (i, events[i]))
        self.assertEqual((out["accepted"], out["errors"]), (4, len(bad)))
        tps = self.journey(cid)
        self.assertEqual(sorted(t["touchpoint"] for t in tps if t.get("source") == "contact-centre"),
                         ["good by email", "good by id", "good by identity", "good with attributes"])
        rich = [t for t in tps if t["touchpoint"] == "good with attributes"][0]
        self.assertEqual(rich["attributes"]["ville"], "Zürich")
        self.assertEqual((rich["status"], rich["stage"]), ("resolved", "own"))
        self.alive()

    def test_bodies_refused_whole_leave_the_gateway_serving(self):
        ok = [{"email": "nobody@example.com", "channel": "store", "touchpoint": "x"}]
        for raw in [b'{"events": [{"customer_id": "c_\xff\xfe", "channel": "s", "touchpoint": "t"}]}',  # not UTF-8
                    b'{"events": [{"touchpoint": "\\ud800"}]}',  # a lone surrogate
                    b'{"events": [{"a\\u0000b": 1}]}',  # a NUL in a field name
                    json.dumps({"events": ok, "extra": 1}).encode(),
                    json.dumps({"events": ok * 1001}).encode(),
                    json.dumps({"events": {}}).encode(),
                    json.dumps([{"events": ok}]).encode(),
                    b'{"events": [' + b'[' * 5000 + b']' * 5000 + b']}',
                    b"\x00" * 64]:
            status, _, out = post_touchpoints(self.public, KEY, raw=raw)
            self.assertEqual(status, 400, (raw[:60], out))
            self.assertEqual(out.get("error"), "invalid_request")
        self.alive()

    def test_token_bodies(self):
        def token(body):
            status, _, answer = post_token(self.public, body)
            return status, answer

        for body, why in [({"provider": "nosuch", "id_token": "a.b.c"}, "unknown provider"),
                          ({"provider": ["google"], "id_token": "a.b.c"}, "unknown provider"),
                          ({"provider": "goo\r\ngle", "id_token": "a.b.c"}, "unknown provider"),
                          ({"provider": "google"}, "id_token"),
                          ({"provider": "google", "id_token": 5}, "id_token"),
                          ({"provider": "google", "id_token": ""}, "id_token"),
                          ({"provider": "google", "id_token": "a" * 8193}, "id_token"),
                          ({"provider": "google", "id_token": "a.b\r\n.c"}, "id_token"),
                          ({"provider": "google", "id_token": "a.b .c"}, "id_token"),
                          ({"provider": "google", "id_token": "a.b.\u00e9"}, "id_token"),
                          ({"provider": "google", "access_token": "a.b.c"}, "id_token"),
                          (b"[1]", "JSON object"),
                          (b'{"provider": "google", "id_token": "\xff"}', "JSON object")]:
            status, out = token(body)
            self.assertEqual(status, 400, (body, out))
            self.assertIn(why, out.get("error_description", ""), body)
        # a well-formed token that does not verify is refused later, as invalid_token
        status, out = token({"provider": "google", "id_token": "a.b.c", "ignored": 1})
        self.assertEqual((status, out.get("error")), (401, "invalid_token"), out)
        self.alive()


if __name__ == "__main__":
    unittest.main()
