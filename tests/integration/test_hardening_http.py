"""Integration: paths, headers and request framing that could get around a route's policy, body
limits applied before a body is read, a second gateway on a taken port, and /metrics behind the
admin token."""

import json
import os
import socket
import subprocess
import urllib.error
import urllib.request

from jgtest import JG_BIN, GatewayTestCase, base_config, free_port, raw_request

POLICIES = {"signed": {"rules": [{"allow": {"signed_in": True}}]}}


def status_of(answer):
    """The status code of the first response in raw bytes (0 when there is none)."""
    if not answer.startswith(b"HTTP/1.1 "):
        return 0
    return int(answer[9:12])


def responses_in(answer):
    return answer.count(b"HTTP/1.1 ")


def get(port, path, host=b"127.0.0.1", extra=b""):
    return raw_request(port, b"GET " + path + b" HTTP/1.1\r\nHost: " + host + b"\r\n" + extra +
                       b"Connection: close\r\n\r\n")


class PathRuleTest(GatewayTestCase):
    """A catch-all `auth: none` route next to a protected /admin/ prefix."""

    # each of these could be read by an upstream (Tomcat, Spring, IIS, Express, a decoding
    # framework) as a path under /admin/, while the gateway would route it to the catch-all
    REFUSED = [
        b"/public/..%2Fadmin/x", b"/public/..%2fadmin/x", b"/admin%2Fx", b"/admin%2fsecret",
        b"/x/..;/admin/", b"/x/..;/admin/x", b"/admin;foo/x", b"/admin;/x", b"/x/%3B/admin", b"/x/%3b",
        b"/public/..%5Cadmin/x", b"/public/..%5cadmin/x", b"/admin%5Cx", b"/public\\..\\admin\\x", b"/admin\\x",
        b"/public/%2e%2e/admin/x", b"/public/%2E%2E/admin/x", b"/public/.%2e/admin/x", b"/public/%2e./admin/x",
        b"/public/../admin/x", b"/public/./x", b"/public/%2e/x", b"/x/..",
        b"/x%00", b"/x%00/../admin/", b"/x%0d%0aX-Injected:%201", b"/x%09", b"/x%7f",
        b"/admin#/x", b"/public/%c0%ae%c0%ae/admin/x", b"/public/..%c0%afadmin/x", b"/public/%252e%252e/admin/x", b"/public/..%252Fadmin/x", b"/.auth/..%2Fadmin/x", b"/.auth/%2e%2e/admin/x", b"/.auth/me;x", b"/nothing/..%2F",
    ]

    def setUp(self):
        super().setUp()
        self.up = self.upstream()
        self.gw = self.start(base_config(
            {"up": {"url": self.up.url}},
            [{"name": "legacy", "match": {"path_prefix": "/legacy/"}, "upstream": "up", "auth": "none",
              "path_check": "off"},
             {"name": "admin", "match": {"path_prefix": "/admin/"}, "upstream": "up", "auth": "none",
              "policy": "signed"},
             {"name": "site", "match": {"path_prefix": "/"}, "upstream": "up", "auth": "none"}],
            policies=POLICIES))

    def test_the_policy_holds_for_plain_paths(self):
        self.assertEqual(status_of(get(self.gw.port, b"/public/x")), 200)
        self.assertIn(status_of(get(self.gw.port, b"/admin/x")), (401, 302))
        self.assertEqual([s["path"] for s in self.up.seen], ["/public/x"])

    def test_paths_an_upstream_could_read_otherwise_are_refused(self):
        for path in self.REFUSED:
            with self.subTest(path=path):
                answer = get(self.gw.port, path)
                self.assertEqual(status_of(answer), 400, answer[:200])
                self.assertIn(b"invalid_path", answer)
        self.assertEqual(self.up.seen, [], "a refused path reached the upstream")

    def test_a_route_that_opts_out_gets_them(self):
        for path in (b"/legacy/..%2Fadmin/x", b"/legacy/a;jsessionid=1", b"/legacy/a%5Cb"):
            with self.subTest(path=path):
                self.assertEqual(status_of(get(self.gw.port, path)), 200)
        self.assertEqual([s["path"] for s in self.up.seen],
                         ["/legacy/..%2Fadmin/x", "/legacy/a;jsessionid=1", "/legacy/a%5Cb"])
        # the opt-out belongs to the route the normalised path meets: these leave /legacy/
        for path in (b"/legacy/%2e%2e/admin/x", b"/legacy/../x;y"):
            with self.subTest(path=path):
                self.assertEqual(status_of(get(self.gw.port, path)), 400)
        self.assertEqual(len(self.up.seen), 3)


class PathCheckConfigTest(GatewayTestCase):
    def test_check_config_refuses_a_bad_value(self):
        cfg = base_config({"up": {"url": "http://127.0.0.1:1"}},
                          [{"name": "site", "match": {"path_prefix": "/"}, "upstream": "up", "auth": "none",
                            "path_check": "lenient"}])
        path = os.path.join(self.tmpdir, "c.json")
        with open(path, "w") as f:
            json.dump(cfg, f)
        p = subprocess.run([JG_BIN, "check-config", "--config", path], capture_output=True, text=True, timeout=10)
        self.assertEqual(p.returncode, 1)
        self.assertIn("routes[0].path_check: must be \"strict\" (the default) or \"off\"", p.stderr)
        for good in ("strict", "off"):
            cfg["routes"][0]["path_check"] = good
            with open(path, "w") as f:
                json.dump(cfg, f)
            p = subprocess.run([JG_BIN, "check-config", "--config", path], capture_output=True, text=True,
                               timeout=10)
            self.assertEqual(p.returncode, 0, p.stderr)


class HeaderRuleTest(GatewayTestCase):
    def setUp(self):
        super().setUp()
        self.up = self.upstream()
        self.gw = self.start(base_config(
            {"up": {"url": self.up.url}},
            [{"name": "shop", "match": {"host": "shop.test", "path_prefix": "/"}, "upstream": "up", "auth": "none"},
             {"name": "site", "match": {"path_prefix": "/"}, "upstream": "up", "auth": "none"}]))
        self.public_host = "127.0.0.1:%d" % self.gw.port

    def echo(self, headers):
        status, _, body = self.gw.request("GET", "/echo", headers=headers)
        self.assertEqual(status, 200)
        return dict((k.lower(), v) for k, v in json.loads(body)["headers"])

    def test_override_headers_never_reach_the_upstream(self):
        overrides = {"X-HTTP-Method-Override": "DELETE", "X-HTTP-Method": "DELETE", "X-Method-Override": "PUT",
                     "X-Original-URL": "/admin/x", "X-Original-URI": "/admin/x", "X-Rewrite-URL": "/admin/x",
                     "X-Forwarded-Prefix": "/admin", "X-Forwarded-Port": "443", "X-Real-IP": "10.0.0.1",
                     "x_http_method_override": "DELETE"}
        got = self.echo(dict(overrides, **{"X-Ordinary": "kept"}))
        for name in overrides:
            self.assertNotIn(name.lower(), got)
        self.assertEqual(got["x-ordinary"], "kept")

    def test_forwarded_host_names_only_configured_hosts(self):
        self.assertEqual(self.echo({"Host": self.public_host})["x-forwarded-host"], self.public_host)
        self.assertEqual(self.echo({"Host": "shop.test"})["x-forwarded-host"], "shop.test")
        self.assertEqual(self.echo({"Host": "SHOP.test:8080"})["x-forwarded-host"], "SHOP.test:8080")
        # a made-up host is replaced by public_url's
        self.assertEqual(self.echo({"Host": "evil.example"})["x-forwarded-host"], self.public_host)
        # the client's own X-Forwarded-Host is never believed (it is not a trusted proxy)
        self.assertEqual(self.echo({"Host": "shop.test", "X-Forwarded-Host": "evil.example"})["x-forwarded-host"],
                         "shop.test")

    def test_a_trusted_proxys_forwarded_host_is_checked_too(self):
        gw = self.start(base_config(
            {"up": {"url": self.up.url}},
            [{"name": "shop", "match": {"host": "shop.test", "path_prefix": "/"}, "upstream": "up", "auth": "none"}],
            trusted_proxies=["127.0.0.1"]))
        # believed when it names a configured host; else the request's own Host (which does) is used
        for forwarded, want in (("shop.test", "shop.test"), ("evil.example", "shop.test:1"),
                                ("shop.test\\@evil", "shop.test:1")):
            with self.subTest(forwarded=forwarded):
                status, _, body = gw.request("GET", "/echo", headers={"Host": "shop.test:1",
                                                                      "X-Forwarded-Host": forwarded})
                self.assertEqual(status, 200)
                got = dict((k.lower(), v) for k, v in json.loads(body)["headers"])
                self.assertEqual(got["x-forwarded-host"], want)

    def test_invalid_host_is_refused(self):
        for host in (b"evil.example/x", b"user@evil.example", b"a b", b"[::1", b"evil.example:80x", b"a,b"):
            with self.subTest(host=host):
                self.assertEqual(status_of(get(self.gw.port, b"/echo", host=host)), 400)
        # a control character in the value: refused by h2o's parser or by the gateway, never forwarded
        self.assertEqual(status_of(get(self.gw.port, b"/echo", host=b"a\x01b")), 400)
        self.assertEqual(self.up.seen, [])


class FramingTest(GatewayTestCase):
    def setUp(self):
        super().setUp()
        self.up = self.upstream()
        self.gw = self.start(base_config(
            {"up": {"url": self.up.url}},
            [{"name": "site", "match": {"path_prefix": "/"}, "upstream": "up", "auth": "none"}]))

    def test_two_different_content_lengths(self):
        answer = raw_request(self.gw.port, b"POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n"
                                           b"Content-Length: 6\r\n\r\nhello!")
        self.assertEqual(status_of(answer), 400, answer)
        self.assertIn(b"invalid_framing", answer)
        self.assertEqual(self.up.seen, [])

    def test_equal_content_lengths_are_one(self):
        answer = raw_request(self.gw.port, b"POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n"
                                           b"Content-Length: 5\r\nConnection: close\r\n\r\nhello")
        self.assertEqual(status_of(answer), 200, answer)
        self.assertEqual(json.loads(answer.split(b"\r\n\r\n", 1)[1])["body_len"], 5)

    def test_length_and_chunked_answered_once_and_closed(self):
        # the classic smuggling shape: whichever framing a hop believes, the rest is a second request
        for head in (b"Content-Length: 4\r\nTransfer-Encoding: chunked\r\n",
                     b"Transfer-Encoding: chunked\r\nContent-Length: 4\r\n",
                     b"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n"):
            with self.subTest(head=head):
                answer = raw_request(self.gw.port, b"POST /x HTTP/1.1\r\nHost: a\r\n" + head +
                                     b"\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n")
                self.assertEqual(status_of(answer), 400, answer)
                self.assertEqual(responses_in(answer), 1, answer)
        self.assertEqual(self.up.seen, [])

    def test_later_requests_on_a_connection_are_judged_too(self):
        answer = raw_request(self.gw.port, b"GET /first HTTP/1.1\r\nHost: a\r\n\r\n"
                                           b"POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n"
                                           b"Content-Length: 6\r\n\r\nhello!"
                                           b"GET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n")
        self.assertEqual(responses_in(answer), 2, answer)
        self.assertIn(b"invalid_framing", answer)
        self.assertEqual([s["path"] for s in self.up.seen], ["/first"])


class BodyLimitTest(GatewayTestCase):
    def setUp(self):
        super().setUp()
        self.up = self.upstream()
        self.gw = self.start(base_config(
            {"up": {"url": self.up.url}},
            [{"name": "small", "match": {"path_prefix": "/small/"}, "upstream": "up", "auth": "none",
              "max_body_size": "1KB"},
             {"name": "big", "match": {"path_prefix": "/big/"}, "upstream": "up", "auth": "none",
              "max_body_size": "8MB"}]))

    def head_only(self, path, declared, extra=b""):
        """Sends a request head declaring a body, never the body: an answer proves it was not awaited."""
        return raw_request(self.gw.port, b"POST " + path + b" HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: " +
                           str(declared).encode() + b"\r\n" + extra + b"\r\n", timeout=20)

    def test_refused_before_the_body_is_read(self):
        for path, declared in ((b"/nowhere", 4 << 20), (b"/nowhere", 1), (b"/.auth/login/google", 100000),
                               (b"/.auth/me", 1), (b"/.auth/token", 4 << 20), (b"/.auth/touchpoints", 4 << 20),
                               (b"/small/x", 1025), (b"/public%2F..", 10)):
            with self.subTest(path=path, declared=declared):
                answer = self.head_only(path, declared)
                self.assertEqual(status_of(answer), 413, answer)
        answer = raw_request(self.gw.port, b"POST /nowhere HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                                           b"Transfer-Encoding: chunked\r\n\r\n", timeout=20)
        self.assertEqual(status_of(answer), 413, answer)
        self.assertEqual(self.up.seen, [])

    def test_each_route_its_own_limit(self):
        status, _, body = self.gw.request("POST", "/small/x", body=b"a" * 1024)
        self.assertEqual(status, 200)
        status, _, body = self.gw.request("POST", "/big/x", body=b"b" * (2 << 20))
        self.assertEqual(status, 200)
        self.assertEqual(json.loads(body)["body_len"], 2 << 20)
        # a chunked body is held to the route's limit too
        def chunked(path, chunks):
            return raw_request(self.gw.port, b"POST " + path + b" HTTP/1.1\r\nHost: a\r\nConnection: close\r\n"
                               b"Transfer-Encoding: chunked\r\n\r\n" +
                               b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in chunks) + b"0\r\n\r\n")
        self.assertEqual(status_of(chunked(b"/small/x", [b"c" * 1000, b"c" * 1000])), 413)
        self.assertEqual(status_of(chunked(b"/small/x", [b"c" * 500, b"c" * 500])), 200)
        self.assertEqual(len(self.up.seen), 3)


class ListenerTest(GatewayTestCase):
    def run_second(self, cfg):
        path = os.path.join(self.tmpdir, "second.json")
        cfg = dict(cfg, store={"path": os.path.join(self.tmpdir, "store2")})
        with open(path, "w") as f:
            json.dump(cfg, f)
        return subprocess.run([JG_BIN, "serve", "--config", path], capture_output=True, text=True, timeout=60)

    def test_second_gateway_on_a_taken_port_refuses_to_start(self):
        up = self.upstream()
        cfg = base_config({"up": {"url": up.url}},
                          [{"name": "site", "match": {"path_prefix": "/"}, "upstream": "up", "auth": "none"}])
        gw = self.start(cfg)
        p = self.run_second(cfg)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("127.0.0.1:%d" % gw.port, p.stderr)
        self.assertIn("already in use", p.stderr)
        self.assertEqual(gw.request("GET", "/still-here")[0], 200)

    def test_another_processs_reuseport_listener_is_no_partner(self):
        holder = socket.socket()
        holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        holder.bind(("127.0.0.1", 0))
        holder.listen(8)
        try:
            cfg = base_config({"up": {"url": "http://127.0.0.1:1"}},
                              [{"name": "site", "match": {"path_prefix": "/"}, "upstream": "up", "auth": "none"}])
            cfg["listen"][0]["port"] = holder.getsockname()[1]
            p = self.run_second(cfg)
            self.assertNotEqual(p.returncode, 0)
            self.assertIn("listen 127.0.0.1:%d: address already in use" % holder.getsockname()[1], p.stderr)
            cfg["listen"][0]["port"] = free_port()
            cfg["admin"] = {"listen": {"address": "127.0.0.1", "port": holder.getsockname()[1]}}
            p = self.run_second(cfg)
            self.assertNotEqual(p.returncode, 0)
            self.assertIn("admin.listen 127.0.0.1:%d: address already in use" % holder.getsockname()[1], p.stderr)
        finally:
            holder.close()


class MetricsTokenTest(GatewayTestCase):
    TOKEN = "admin-token-0123456789abcdef"

    def test_metrics_need_the_admin_token(self):
        up = self.upstream()
        admin = free_port()
        token_file = os.path.join(self.tmpdir, "admin.token")
        with open(token_file, "w") as f:
            f.write(self.TOKEN + "\n")
        self.start(base_config({"up": {"url": up.url}},
                               [{"name": "site", "match": {"path_prefix": "/"}, "upstream": "up", "auth": "none"}],
                               admin={"listen": {"address": "127.0.0.1", "port": admin}, "token_file": token_file}))
        url = "http://127.0.0.1:%d" % admin
        for auth in (None, "Bearer wrong-token-0123456789abcd", "Basic " + self.TOKEN, "Bearer " + self.TOKEN + "x"):
            with self.subTest(auth=auth):
                req = urllib.request.Request(url + "/metrics", headers={"Authorization": auth} if auth else {})
                with self.assertRaises(urllib.error.HTTPError) as e:
                    urllib.request.urlopen(req, timeout=5)
                self.assertEqual(e.exception.code, 401)
                self.assertNotIn(b"journeygate_", e.exception.read())
        req = urllib.request.Request(url + "/metrics", headers={"Authorization": "Bearer " + self.TOKEN})
        with urllib.request.urlopen(req, timeout=5) as r:
            self.assertIn(b"journeygate_connections_open", r.read())
        with urllib.request.urlopen(url + "/.auth/health", timeout=5) as r:
            self.assertEqual(r.status, 200)
