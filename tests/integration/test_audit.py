"""Integration: the tamper-evident audit trail of login flows — one record per refusal with the
right reason, records written with the changes they describe, `audit verify` catching edits,
deletions, swaps and truncation in a copy of the store, and no secrets in logs or the trail."""

import json
import os
import shutil
import signal
import subprocess
import time
import unittest
import urllib.error
import urllib.parse
import urllib.request

from jgtest import JG_BIN, Browser, Peer, base_config, free_port
from test_identity import IdentityTestCase

TAMPER = os.environ.get("JG_AUDIT_TAMPER", os.path.join(os.path.dirname(JG_BIN), "tests", "audit_tamper"))


class AuditTest(IdentityTestCase):
    def audit(self, *args, store=None):
        p = subprocess.run([JG_BIN, "audit"] + list(args) + ["--store", store or self.store], capture_output=True,
                           text=True, timeout=30)
        return p.returncode, p.stdout, p.stderr

    def records(self):
        code, out, err = self.audit("tail", "-n", "1000", "--json")
        self.assertEqual(code, 0, err)
        return [json.loads(line) for line in out.splitlines()]

    def new_records(self, before):
        # refusal records are written by a worker right after the answer: wait for them to show
        deadline = time.monotonic() + 15
        while True:
            recs = [r for r in self.records() if r["seq"] > before]
            if recs or time.monotonic() > deadline:
                return recs
            time.sleep(0.05)

    def last_seq(self):
        recs = self.records()
        return recs[-1]["seq"] if recs else 0

    def test_login_and_refusals_each_leave_exactly_one_record(self):
        # a successful first login: the callback and the customer it created, with a flow id
        seq = self.last_seq()
        b = Browser()
        self.google(b, "audit-alice@example.com")
        recs = self.new_records(seq)
        self.assertEqual([r["event"] for r in recs], ["callback_succeeded", "customer_created"])
        self.assertEqual(recs[0]["customer_id"], self.me(b)["customer_id"])
        self.assertTrue(recs[0]["flow_id"])
        self.assertRegex(recs[0]["subject_hash"], r"^[0-9a-f]{32}$")
        self.assertNotIn("subject", recs[0])
        self.assertEqual(recs[0]["client"], "127.0.0.1")
        self.assertRegex(recs[0]["request_id"], r"^[0-9a-f]{32}$")

        refusals = [
            ("/.auth/login/google/callback?code=a&state=b", "state_cookie_missing"),
            ("/.auth/login/google/callback?code=a&code=b&state=c", "duplicate_parameter"),
            ("/.auth/login/google/callback?error=access_denied&state=x", "provider_error"),
        ]
        for path, reason in refusals:
            seq = self.last_seq()
            Browser().get(self.public + path)
            recs = self.new_records(seq)
            self.assertEqual(len(recs), 1, (reason, recs))
            self.assertEqual((recs[0]["event"], recs[0]["outcome"], recs[0]["reason"]),
                             ("callback_refused", "refused", reason))
        # a pending login, then a forged state
        seq = self.last_seq()
        bb = Browser()
        bb.get(self.public + "/.auth/login/google", follow=False)
        bb.get(self.public + "/.auth/login/google/callback?code=a&state=forged")
        recs = self.new_records(seq)
        self.assertEqual([(r["event"], r["reason"]) for r in recs], [("callback_refused", "state_unknown")])
        # hostile tokens: the failed check is the reason
        for mode, reason in (("wrong_aud", "id_token_invalid:aud"), ("wrong_nonce", "nonce_mismatch"),
                             ("bad_signature", "id_token_invalid:signature"), ("html_token", "token_exchange_failed")):
            self.op.admin("/admin/mode", {"mode": mode})
            seq = self.last_seq()
            self.google(Browser(), "audit-bob@example.com")
            recs = self.new_records(seq)
            self.assertEqual([(r["event"], r["reason"]) for r in recs], [("callback_refused", reason)], mode)
        self.op.admin("/admin/mode", {"mode": "good"})
        # a conflicting link, an unlink, a logout and an erasure
        dana = Browser()
        self.facebook(dana, "2002")
        seq = self.last_seq()
        self.facebook(b, "2002", path="/.auth/link/facebook")
        recs = self.new_records(seq)
        self.assertEqual([(r["event"], r["reason"]) for r in recs], [("link_refused", "conflict")])
        seq = self.last_seq()
        token = self.csrf(b)
        b.post(self.public + "/.auth/logout", urllib.parse.urlencode({"csrf": token}).encode(),
               headers={"Content-Type": "application/x-www-form-urlencoded"})
        self.assertEqual([r["event"] for r in self.new_records(seq)], ["logout"])
        cid = self.me(dana)["customer_id"]
        seq = self.last_seq()
        code, _, err = self.cli("customer", "delete", cid)
        self.assertEqual(code, 0, err)
        recs = self.new_records(seq)
        self.assertEqual([(r["event"], r["reason"], r["customer_id"]) for r in recs], [("erasure", "cli", cid)])

        code, out, _ = self.audit("verify")
        self.assertEqual(code, 0, out)
        self.assertIn("audit chain OK", out)

        # no token, code, cookie or secret in the trail or the logs
        with open(os.path.join(self.gw.tmpdir, "stdout.log"), "rb") as f:
            logs = f.read() + self.gw.read_stderr().encode()
        trail = self.audit("tail", "-n", "100000", "--json")[1].encode()
        secrets = [CLIENT_SECRET_BYTES, APP_SECRET_BYTES, b"jg_session=", b"admin-token-0123456789abcdef"]
        for s in secrets:
            self.assertNotIn(s, logs)
            self.assertNotIn(s, trail)
        self.assertNotIn(b"alice@", trail)  # personal data stays out of the trail

    def test_verify_finds_tampering_in_a_copy(self):
        for i in range(4):
            self.google(Browser(), "chain%d@example.com" % i)
        code, out, _ = self.audit("verify")
        self.assertEqual(code, 0, out)
        n = int(out.split(":")[1].split()[0])
        self.assertGreaterEqual(n, 8)

        def tampered(*op):
            copy = os.path.join(self.tmpdir, "copy-%s" % "-".join(op))
            shutil.copytree(self.store, copy)
            subprocess.run([TAMPER, copy] + list(op), check=True, timeout=30)
            return self.audit("verify", store=copy)

        for op, seq, expect_at in (("edit", "3", 3), ("edit-rehash", "3", 4), ("delete", "4", 4), ("swap", "2", 2)):
            code, out, _ = tampered(op, seq)
            self.assertEqual(code, 1, (op, out))
            self.assertIn("BROKEN at sequence %d" % expect_at, out, op)
        code, out, _ = tampered("truncate")
        self.assertEqual(code, 1)
        self.assertIn("BROKEN at sequence %d" % n, out)
        # the original is untouched
        self.assertEqual(self.audit("verify")[0], 0)


class AuditSearchTest(IdentityTestCase):
    def extra_config(self):
        return {"audit": {"refusal_interval_s": 1}}

    def test_admin_search_and_login_metrics(self):
        b = Browser()
        self.google(b, "search@example.com")
        cid = self.me(b)["customer_id"]
        for _ in range(3):
            Browser().get(self.public + "/.auth/login/google/callback?code=a&state=b")
        token = "admin-token-0123456789abcdef"

        def search(query):
            req = urllib.request.Request("http://127.0.0.1:%d/admin/audit?%s" % (self.admin_port, query),
                                         headers={"Authorization": "Bearer " + token})
            with urllib.request.urlopen(req, timeout=10) as r:
                return json.loads(r.read())

        # the same refusal from the same address: the first on its own, the repeats as one record
        # with a count when the interval ends
        deadline = time.monotonic() + 30
        while len(search("event=callback_refused")["records"]) < 2 and time.monotonic() < deadline:
            time.sleep(0.2)
        got = search("customer_id=" + cid)
        self.assertEqual([r["event"] for r in got["records"]], ["callback_succeeded", "customer_created"])
        self.assertEqual([r.get("count") for r in search("event=callback_refused")["records"]], [None, 2])
        got = search("event=callback_refused&outcome=refused&limit=1")
        self.assertEqual(len(got["records"]), 1)
        rest = search("event=callback_refused&after_seq=%d" % got["next_after_seq"])
        self.assertEqual(len(rest["records"]), 1)
        self.assertNotIn("next_after_seq", rest)
        self.assertEqual(search("from_ms=%d" % (int(time.time() * 1000) + 60000))["records"], [])
        with self.assertRaises(urllib.error.HTTPError):
            urllib.request.urlopen("http://127.0.0.1:%d/admin/audit" % self.admin_port, timeout=5)
        with self.assertRaises(urllib.error.HTTPError):  # the metrics need the admin token too
            urllib.request.urlopen("http://127.0.0.1:%d/metrics" % self.admin_port, timeout=5)
        req = urllib.request.Request("http://127.0.0.1:%d/metrics" % self.admin_port,
                                     headers={"Authorization": "Bearer " + token})
        with urllib.request.urlopen(req, timeout=5) as r:
            text = r.read().decode()
        self.assertIn('journeygate_logins_total{provider="google",outcome="success",reason="browser"} 1', text)
        self.assertIn('journeygate_logins_total{provider="google",outcome="refused",reason="state_cookie_missing"} 3',
                      text)


class AuditForwardingTest(IdentityTestCase):
    """Records go to syslog (RFC 5424 with structured data); reloads are audited; tail --follow."""

    def setUp(self):
        import socket
        import tempfile
        self.sock_dir = tempfile.mkdtemp(prefix="jg-syslog-")
        self.sock_path = os.path.join(self.sock_dir, "log")
        self.syslog = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.syslog.bind(self.sock_path)
        self.syslog.settimeout(5)
        self.addCleanup(shutil.rmtree, self.sock_dir, True)
        self.addCleanup(self.syslog.close)
        super().setUp()

    def extra_config(self):
        return {"audit": {"syslog": True, "syslog_socket": self.sock_path}}

    def test_syslog_reload_and_follow(self):
        follow = subprocess.Popen([JG_BIN, "audit", "tail", "--follow", "--json", "-n", "1", "--store", self.store],
                                  stdout=subprocess.PIPE, text=True)
        self.addCleanup(follow.kill)
        time.sleep(1.5)  # let tail open the store and print what exists before the new records come
        b = Browser()
        self.google(b, "sys@example.com")
        got = [self.syslog.recv(8192).decode() for _ in range(2)]
        self.assertTrue(got[0].startswith("<85>1 "), got[0])
        self.assertIn(" journeygate ", got[0])
        self.assertIn('[journeygate@32473 seq="', got[0])
        self.assertIn('event="callback_succeeded"', got[0])
        self.assertIn('event="customer_created"', got[1])
        self.assertNotIn("sys@example.com", "".join(got))
        # a reload is audited (and forwarded)
        self.gw.signal(signal.SIGHUP)
        msg = self.syslog.recv(8192).decode()
        self.assertIn('event="config_reloaded"', msg)
        self.assertIn('outcome="success"', msg)
        # tail --follow printed the new records as they came
        lines = []
        deadline = time.time() + 10
        while time.time() < deadline and not any("config_reloaded" in l for l in lines):
            lines.append(follow.stdout.readline())
        events = [json.loads(l)["event"] for l in lines if l.strip()]
        self.assertIn("callback_succeeded", events)
        self.assertIn("config_reloaded", events)


CLIENT_SECRET_BYTES = b"jg-web-secret-0123456789"
APP_SECRET_BYTES = b"fb-app-secret-abcdef"

if __name__ == "__main__":
    unittest.main()
