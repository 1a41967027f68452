"""Integration: limits h2o lacks, HTTP/2 kept off, TLS, slow clients, connection cap."""

import json
import os
import socket
import ssl
import subprocess
import time
import unittest

from jgtest import GatewayTestCase, base_config, free_port, raw_request


def site_route():
    return [{"name": "site", "match": {"path_prefix": "/"}, "upstream": "up", "auth": "none"}]


class HeaderLimitTest(GatewayTestCase):
    def setUp(self):
        super().setUp()
        self.up = self.upstream()
        self.gw = self.start(base_config({"up": {"url": self.up.url}}, site_route()))

    def assert_still_serving(self):
        status, _, _ = self.gw.request("GET", "/still-alive")
        self.assertEqual(status, 200)

    def test_200_headers_answered_431(self):
        head = "GET /many HTTP/1.1\r\nHost: t\r\n" + "".join("X-H%d: v\r\n" % i for i in range(200)) + "\r\n"
        out = raw_request(self.gw.port, head.encode())
        self.assertTrue(out.startswith(b"HTTP/1.1 431"), out[:100])
        self.assertFalse([s for s in self.up.seen if s["path"] == "/many"])
        self.assert_still_serving()

    def test_70_headers_answered_431(self):
        # above the default cap of 64, below h2o's own limit of 100
        head = "GET /many HTTP/1.1\r\nHost: t\r\n" + "".join("X-H%d: v\r\n" % i for i in range(70)) + "\r\n"
        out = raw_request(self.gw.port, head.encode())
        self.assertTrue(out.startswith(b"HTTP/1.1 431"), out[:100])
        self.assert_still_serving()

    def test_64kb_cookie_answered_431(self):
        head = b"GET /cookie HTTP/1.1\r\nHost: t\r\nCookie: a=" + b"x" * 65536 + b"\r\n\r\n"
        out = raw_request(self.gw.port, head)
        self.assertTrue(out.startswith(b"HTTP/1.1 431"), out[:100])
        self.assert_still_serving()

    def test_headers_too_large_on_keepalive_request_answered_431(self):
        # the second request of a connection is checked by the handler
        s = socket.create_connection(("127.0.0.1", self.gw.port), timeout=5)
        s.sendall(b"GET /one HTTP/1.1\r\nHost: t\r\n\r\n")
        first = s.recv(65536)
        self.assertTrue(first.startswith(b"HTTP/1.1 200"))
        s.sendall(b"GET /two HTTP/1.1\r\nHost: t\r\nCookie: a=" + b"y" * 40000 + b"\r\n\r\n")
        second = b""
        while b"\r\n\r\n" not in second:
            chunk = s.recv(65536)
            if not chunk:
                break
            second += chunk
        s.close()
        self.assertTrue(second.startswith(b"HTTP/1.1 431"), second[:100])

    def test_long_request_line_answered_414(self):
        out = raw_request(self.gw.port, b"GET /" + b"a" * 10000 + b" HTTP/1.1\r\nHost: t\r\n\r\n")
        self.assertTrue(out.startswith(b"HTTP/1.1 414"), out[:100])
        self.assert_still_serving()

    def test_http2_prior_knowledge_is_not_spoken(self):
        preface = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"
        out = raw_request(self.gw.port, preface)
        # an HTTP/2 server would answer with a SETTINGS frame (binary); this one answers HTTP/1.1 or closes
        self.assertTrue(out == b"" or out.startswith(b"HTTP/1.1 4"), out[:100])
        self.assert_still_serving()

    def test_http2_upgrade_is_ignored(self):
        out = raw_request(self.gw.port, b"GET /up HTTP/1.1\r\nHost: t\r\nConnection: Upgrade, HTTP2-Settings\r\n"
                          b"Upgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAAA\r\nConnection: close\r\n\r\n")
        self.assertTrue(out.startswith(b"HTTP/1.1 200"), out[:100])
        self.assertNotIn(b"101 Switching", out)


class TlsTest(GatewayTestCase):
    def test_tls_listener_without_h2(self):
        cert, key = os.path.join(self.tmpdir, "cert.pem"), os.path.join(self.tmpdir, "key.pem")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert,
                        "-days", "2", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
                       check=True, capture_output=True)
        up = self.upstream()
        cfg = base_config({"up": {"url": up.url}}, site_route())
        cfg["listen"][0]["tls"] = {"cert": cert, "key": key}
        gw = self.start(cfg)
        ctx = ssl.create_default_context(cafile=cert)
        ctx.set_alpn_protocols(["h2", "http/1.1"])
        with socket.create_connection(("127.0.0.1", gw.port), timeout=5) as raw:
            with ctx.wrap_socket(raw, server_hostname="127.0.0.1") as s:
                self.assertNotEqual(s.selected_alpn_protocol(), "h2")
                s.sendall(b"GET /tls HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
                out = b""
                while True:
                    chunk = s.recv(65536)
                    if not chunk:
                        break
                    out += chunk
        self.assertTrue(out.startswith(b"HTTP/1.1 200"), out[:100])
        got = dict((k.lower(), v) for k, v in json.loads(out.partition(b"\r\n\r\n")[2])["headers"])
        self.assertEqual(got["x-forwarded-proto"], "https")


class SlowClientTest(GatewayTestCase):
    def test_slow_clients_closed_at_header_timeout_while_others_served(self):
        up = self.upstream()
        gw = self.start(base_config({"up": {"url": up.url}}, site_route(),
                                    limits={"header_timeout_s": 1.5, "max_connections": 1000}))
        slow = []
        for i in range(200):
            s = socket.create_connection(("127.0.0.1", gw.port), timeout=5)
            s.sendall(b"GET /slow-loris HTTP/1.1\r\nHost: t\r\nX-A: ")
            slow.append(s)
        start = time.monotonic()
        # a normal client is served meanwhile: while every slow connection is still open
        status, _, _ = gw.request("GET", "/normal")
        self.assertEqual(status, 200)
        for s in slow:
            s.setblocking(False)
            try:
                self.assertNotEqual(s.recv(100), b"", "the normal client waited for slow ones to be closed")
            except BlockingIOError:
                pass
            s.setblocking(True)
        # keep dribbling; every slow connection must be closed near the header timeout
        closed_at = []
        for s in slow:
            s.settimeout(5)
        deadline = start + 6
        for s in slow:
            try:
                s.sendall(b"a")
            except OSError:
                pass
        for s in slow:
            try:
                data = s.recv(100)
                self.assertEqual(data, b"")
            except (ConnectionResetError, socket.timeout) as e:
                if isinstance(e, socket.timeout):
                    self.fail("slow client not closed")
            closed_at.append(time.monotonic() - start)
            s.close()
            self.assertLess(time.monotonic(), deadline)
        self.assertEqual(len(closed_at), 200)
        self.assertLess(max(closed_at), 4.0)
        status, _, _ = gw.request("GET", "/after")
        self.assertEqual(status, 200)


class IdleAndListenersTest(GatewayTestCase):
    def test_idle_keepalive_connection_is_closed(self):
        up = self.upstream()
        gw = self.start(base_config({"up": {"url": up.url}}, site_route(), limits={"idle_timeout_s": 1}))
        s = socket.create_connection(("127.0.0.1", gw.port), timeout=5)
        s.sendall(b"GET /one HTTP/1.1\r\nHost: t\r\n\r\n")
        self.assertTrue(s.recv(65536).startswith(b"HTTP/1.1 200"))
        start = time.monotonic()
        self.assertEqual(s.recv(100), b"")  # closed by the gateway, not by our 5 s timeout
        self.assertLess(time.monotonic() - start, 3)
        s.close()

    def test_several_listeners(self):
        up = self.upstream()
        cfg = base_config({"up": {"url": up.url}}, site_route())
        second = free_port()
        cfg["listen"].append({"address": "127.0.0.1", "port": second})
        gw = self.start(cfg)
        self.assertEqual(gw.request("GET", "/first")[0], 200)
        out = raw_request(second, b"GET /second HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        self.assertTrue(out.startswith(b"HTTP/1.1 200"), out[:80])


class ConnectionCapTest(GatewayTestCase):
    def test_connections_over_cap_are_closed_and_service_recovers(self):
        up = self.upstream()
        gw = self.start(base_config({"up": {"url": up.url}}, site_route(), limits={"max_connections": 20}))
        held = [socket.create_connection(("127.0.0.1", gw.port), timeout=3) for _ in range(30)]
        time.sleep(0.3)
        closed = 0
        for s in held:
            s.settimeout(0.2)
            try:
                if s.recv(10) == b"":
                    closed += 1
            except ConnectionResetError:
                closed += 1
            except socket.timeout:
                pass
        self.assertGreaterEqual(closed, 10)
        self.assertLessEqual(closed, 12)
        for s in held:
            s.close()
        time.sleep(0.3)
        status, _, _ = gw.request("GET", "/recovered")
        self.assertEqual(status, 200)


if __name__ == "__main__":
    unittest.main()
