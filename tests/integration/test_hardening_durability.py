"""Integration: what the gateway answers is on disk first. A sign-in's 302, taken straight from the
callback, survives kill -9 of the gateway right after it, and the store's sync is seen (strace)
completing before the answer is written to the client's socket."""

import http.client
import os
import re
import shutil
import signal
import subprocess
import time
import unittest
import urllib.parse

from jgtest import Browser, Gateway
from test_identity import IdentityTestCase


class SyncedBeforeAnswerTest(IdentityTestCase):
    def callback_url(self, email):
        """Starts a sign-in and follows the provider by hand: (callback path and query, jg_login cookie)."""
        b = Browser()
        status, hdrs, _, _ = b.get(self.public + "/.auth/login/google?" + urllib.parse.urlencode(
            {"return_to": "/app/x", "login_hint": email}), follow=False)
        self.assertEqual(status, 302)
        status, hdrs, _, _ = b.get(hdrs["location"], follow=False)
        self.assertEqual(status, 302)
        cb = urllib.parse.urlsplit(hdrs["location"])
        self.assertEqual(cb.path, "/.auth/login/google/callback")
        return cb.path + "?" + cb.query, b.cookie("jg_login")

    def attach_strace(self, out):
        pid = self.gw.proc.pid
        tasks = len(os.listdir("/proc/%d/task" % pid))
        err = open(out + ".err", "wb")
        self.addCleanup(err.close)
        p = subprocess.Popen(["strace", "-f", "-y", "-s", "4096", "-o", out, "-p", str(pid),
                              "-e", "trace=fdatasync,fsync,msync,sync_file_range,write,writev,sendmsg,sendto,"
                                    "read,readv,recvfrom,recvmsg"], stderr=err)
        self.addCleanup(lambda: p.poll() is None and p.kill())
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with open(out + ".err", "rb") as f:
                text = f.read().decode(errors="replace")
            # one line per thread, or "Process N attached with T threads"
            m = re.search(r"attached with (\d+) threads", text)
            if (m and int(m.group(1)) >= tasks) or text.count("attached") >= tasks:
                return p
            if p.poll() is not None or "Operation not permitted" in text:
                self.skipTest("strace cannot attach here: " + text.strip()[:200])
            time.sleep(0.05)
        self.fail("strace did not attach to every thread")

    def test_signin_answer_survives_kill_9_and_follows_the_sync(self):
        if shutil.which("strace") is None:
            self.skipTest("strace is not installed (deploy/bootstrap.sh installs it)")
        path, login = self.callback_url("durable-kim@example.com")
        trace = os.path.join(self.tmpdir, "strace.out")
        tracer = self.attach_strace(trace)
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        c.request("GET", path, headers={"Cookie": "jg_login=" + login})
        r = c.getresponse()
        status, cookies = r.status, r.msg.get_all("Set-Cookie") or []
        # the answer is in hand: the gateway dies at once, without any chance to flush anything
        self.gw.proc.send_signal(signal.SIGKILL)
        self.gw.proc.wait(30)
        self.gateways.remove(self.gw)  # its exit status is -9 on purpose
        self.gw.stdout.close()
        self.gw.stderr.close()
        c.close()
        tracer.wait(30)
        self.assertEqual(status, 302)
        session = [v.split(";")[0].split("=", 1)[1] for v in cookies if v.startswith("jg_session=")]
        self.assertEqual(len(session), 1, cookies)
        self.assertTrue(session[0])

        # the order of syscalls: the request read, a completed sync of the store's data file, then
        # the 302 written to the client (strace stops each thread at every traced syscall, so a
        # sync line printed before the write finished before the write began)
        with open(trace, "rb") as f:
            lines = f.read().decode(errors="replace").splitlines()
        req_at = next(i for i, l in enumerate(lines) if "GET /.auth/login/google/callback" in l)
        ans_at = next(i for i, l in enumerate(lines) if i > req_at and "HTTP/1.1 302" in l and "jg_session=" in l)
        syncs = [i for i, l in enumerate(lines)
                 if re.search(r"(fdatasync|fsync|msync|sync_file_range)\(.*data\.mdb.*\) = 0", l)
                 or (re.search(r"<\.\.\. (fdatasync|fsync|msync|sync_file_range) resumed>.* = 0", l))]
        self.assertTrue([i for i in syncs if req_at < i < ans_at],
                        "no completed store sync between the callback request and its 302:\n" +
                        "\n".join(l[:160] for l in lines[req_at:ans_at + 1] if "read" not in l[:40]))

        # restart on the same store: the session the 302 handed out is there
        d = os.path.join(self.tmpdir, "restart")
        os.makedirs(d)
        self.gw = Gateway(self.cfg, d)
        self.gateways.append(self.gw)
        self.wait_ready()
        status, _, body, _ = Browser().get(self.public + "/.auth/me", headers={"Cookie": "jg_session=" + session[0]})
        self.assertEqual(status, 200, body[:200])


class FullDiskTest(IdentityTestCase):
    """The store on a small tmpfs that the test fills up: a sign-in whose writes fail is a 503 with no
    session, never a cookie that does not work; once there is room again, sign-ins work."""

    def extra_config(self):
        self.mounted = None
        d = os.path.join(self.tmpdir, "store")
        os.makedirs(d, exist_ok=True)
        p = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", d], capture_output=True, text=True)
        if p.returncode == 0:
            self.mounted = d
        else:
            self.mount_error = p.stderr.strip()
        return {}

    def tearDown(self):
        # the gateways stop first, then the tmpfs goes, then the temporary directory
        for g in self.gateways:
            if g.proc.poll() is None:
                g.proc.send_signal(signal.SIGTERM)
                g.proc.wait(15)
        if self.mounted:
            subprocess.run(["umount", self.mounted], capture_output=True)
        super().tearDown()

    def fill(self):
        path = os.path.join(self.mounted, "filler")
        with open(path, "wb") as f:
            try:
                while True:
                    f.write(b"\0" * 65536)
                    f.flush()
            except OSError:
                pass
        return path

    def test_a_signin_that_cannot_be_written_is_503_without_a_session(self):
        if self.mounted is None:
            self.skipTest("cannot mount a tmpfs here: " + self.mount_error)
        b = Browser()
        status, _, body, _ = self.google(b, "disk-amy@example.com")
        self.assertEqual(status, 200, body[:200])
        filler = self.fill()
        for email in ("disk-amy@example.com", "disk-new@example.com"):
            b = Browser()
            status, _, body, _ = self.google(b, email)
            self.assertEqual(status, 503, body[:300])
            self.assertIsNone(self.me(b))
        os.unlink(filler)
        b = Browser()
        status, _, body, _ = self.google(b, "disk-new@example.com")
        self.assertEqual(status, 200, body[:200])
        self.assertIsNotNone(self.me(b))


if __name__ == "__main__":
    unittest.main()
