"""Integration: operations — reload, drain on SIGTERM, access log, metrics, CLI, demo."""

import json
import re
import os
import signal
import socket
import subprocess
import threading
import time
import unittest
import urllib.parse
import urllib.request

from jgtest import JG_BIN, Browser, GatewayTestCase, base_config, free_port, post_touchpoints, wait_port


def site_route(upstream="up", name="site"):
    return [{"name": name, "match": {"path_prefix": "/"}, "upstream": upstream, "auth": "none"}]


class ReloadTest(GatewayTestCase):
    def test_reload_good_then_bad_file(self):
        a, b = self.upstream("a"), self.upstream("b")
        cfg = base_config({"a": {"url": a.url}, "b": {"url": b.url}}, site_route("a"))
        gw = self.start(cfg)
        status, _, body = gw.request("GET", "/x")
        self.assertEqual(json.loads(body)["upstream"], "a")

        # a long request in flight across the reload completes
        results = []
        t = threading.Thread(target=lambda: results.append(gw.request("GET", "/slow?ms=1500")))
        t.start()
        deadline = time.monotonic() + 15
        while not ([p for p in a.server.started if p.startswith("/slow")]) and time.monotonic() < deadline:
            time.sleep(0.02)  # the slow request is in flight
        cfg["routes"] = site_route("b")
        gw.write_config(cfg)
        gw.signal(signal.SIGHUP)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            if json.loads(gw.request("GET", "/x")[2])["upstream"] == "b":
                break
            time.sleep(0.1)
        self.assertEqual(json.loads(gw.request("GET", "/x")[2])["upstream"], "b")
        t.join()
        self.assertEqual(results[0][0], 200)
        self.assertEqual(json.loads(results[0][2])["upstream"], "a")

        # a broken file is refused, logged, and the running configuration keeps serving
        with open(gw.config_path, "w") as f:
            f.write('{"listen": [], "routes": "oops"')
        gw.signal(signal.SIGHUP)
        deadline = time.monotonic() + 15
        while not ("reload refused" in gw.read_stderr()) and time.monotonic() < deadline:
            time.sleep(0.02)  # the reload is refused
        self.assertIsNone(gw.proc.poll())
        self.assertEqual(json.loads(gw.request("GET", "/y")[2])["upstream"], "b")
        self.assertIn("reload refused", gw.read_stderr())

        # a file that parses but does not validate is refused too
        bad = dict(cfg)
        bad["routes"] = [{"name": "x", "match": {"path_prefix": "/"}, "upstream": "missing", "auth": "none"}]
        gw.write_config(bad)
        gw.signal(signal.SIGHUP)
        deadline = time.monotonic() + 15
        while not ('no upstream named \\"missing\\"' in gw.read_stderr()) and time.monotonic() < deadline:
            time.sleep(0.02)  # the reload is refused
        self.assertEqual(json.loads(gw.request("GET", "/z")[2])["upstream"], "b")
        self.assertIn('no upstream named \\"missing\\"', gw.read_stderr())

    def test_reload_rotates_ingest_keys_and_limits_and_names_what_needs_a_restart(self):
        old_key, new_key = "cc-old-key-0123456789", "cc-new-key-9876543210"
        keys = os.path.join(self.tmpdir, "ingest.keys")
        tail = "tail-of-a-long-line-0123456789"
        with open(keys, "w") as f:
            f.write("contact-centre:%s\n%s%s\n" % (old_key, "x" * 511, tail))  # 511: what one read takes
        up = self.upstream()
        cfg = base_config({"up": {"url": up.url}}, site_route(), ingest={"api_keys_file": keys})
        gw = self.start(cfg)

        def ingest(key):
            return post_touchpoints(cfg["public_url"], key)[0]

        self.assertEqual((ingest(old_key), ingest(new_key)), (200, 401))
        # no part of an over-long line became a key
        self.assertEqual(ingest(tail), 401)
        self.assertIn("a line is longer than 510 characters; it is ignored", gw.read_stderr())
        # the key is rotated, the ingest bucket shrinks to 2, and the session section changes too
        with open(keys, "w") as f:
            f.write("contact-centre:%s\n" % new_key)
        cfg["limits"].update({"ingest_burst": 2, "ingest_rate_per_minute": 1})
        cfg["session"] = {"ttl_s": 600}
        gw.write_config(cfg)
        gw.signal(signal.SIGHUP)
        deadline = time.monotonic() + 5
        while ingest(new_key) != 200 and time.monotonic() < deadline:
            time.sleep(0.1)
        self.assertEqual([ingest(old_key), ingest(new_key), ingest(new_key)], [401, 200, 429])
        self.assertIn("reload: changes to session take effect only after a restart", gw.read_stderr())


class DrainTest(GatewayTestCase):
    def test_sigterm_drains_in_flight_requests(self):
        up = self.upstream()
        gw = self.start(base_config({"up": {"url": up.url}}, site_route()))
        results = []
        lock = threading.Lock()

        def call(i):
            r = gw.request("GET", "/slow?ms=1200&i=%d" % i, timeout=10)
            with lock:
                results.append(r[0])

        threads = [threading.Thread(target=call, args=(i,)) for i in range(20)]
        for t in threads:
            t.start()
        deadline = time.monotonic() + 15
        while not (len(up.server.started) >= 20) and time.monotonic() < deadline:
            time.sleep(0.02)  # every request is in flight
        gw.signal(signal.SIGTERM)
        for t in threads:
            t.join()
        code = gw.proc.wait(10)
        self.assertEqual(code, 0)
        self.assertEqual(results, [200] * 20)
        # and after the drain nothing listens any more
        with self.assertRaises(OSError):
            gw.request("GET", "/late", timeout=2)

    def test_sigterm_does_not_wait_for_a_slow_provider(self):
        # a provider that accepts the discovery call and never answers (30 s timeout configured):
        # the stop cancels the call instead of waiting it out
        silent = socket.socket()
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        self.addCleanup(silent.close)
        up = self.upstream()
        cfg = base_config({"up": {"url": up.url}}, site_route(), providers={
            "google": {"type": "oidc", "client_id": "id", "client_secret": "secret", "insecure_http": True,
                       "issuer": "http://127.0.0.1:%d" % silent.getsockname()[1], "http_timeout_s": 30}})
        gw = self.start(cfg)
        silent.settimeout(10)
        conn, _ = silent.accept()  # the gateway's discovery call is now waiting on us
        self.addCleanup(conn.close)
        self.assertEqual(gw.request("GET", "/x")[0], 200)
        started = time.monotonic()
        gw.signal(signal.SIGTERM)
        self.assertEqual(gw.proc.wait(25), 0)
        self.assertLess(time.monotonic() - started, 25)  # not the provider call's 30 s


class LogAndMetricsTest(GatewayTestCase):
    def test_access_log_and_metrics(self):
        up = self.upstream()
        admin_port = free_port()
        dead = free_port()
        gw = self.start(base_config({"up": {"url": up.url}, "dead": {"url": "http://127.0.0.1:%d" % dead}},
                                    [{"name": "dead", "match": {"path_prefix": "/dead/"}, "upstream": "dead",
                                      "auth": "none"}] + site_route(),
                                    admin={"listen": {"address": "127.0.0.1", "port": admin_port}}))
        status, hdrs, body = gw.request("GET", "/logged?code=SECRETCODE&token=SECRETTOKEN",
                                        headers={"Cookie": "jg_session=SECRETCOOKIE",
                                                 "Authorization": "Bearer SECRETBEARER"})
        self.assertEqual(status, 200)
        upstream_rid = dict((k.lower(), v) for k, v in json.loads(body)["headers"])["x-request-id"]
        self.assertEqual(gw.request("GET", "/dead/x")[0], 502)
        log = gw.access_log(until=lambda log: {"/logged", "/dead/x"} <= {e["path"] for e in log})
        entry = [e for e in log if e["path"] == "/logged"][0]
        self.assertEqual(entry["request_id"], upstream_rid)
        self.assertEqual(entry["request_id"], hdrs["x-request-id"])
        self.assertEqual(entry["status"], 200)
        self.assertEqual(entry["route"], "site")
        self.assertEqual(entry["method"], "GET")
        self.assertEqual(entry["client"], "127.0.0.1")
        self.assertIsInstance(entry["duration_us"], int)
        dead_entry = [e for e in log if e["path"] == "/dead/x"][0]
        self.assertEqual(dead_entry["upstream_error"], "refused")
        # secrets never reach a log
        with open(os.path.join(gw.tmpdir, "stdout.log"), "rb") as f:
            everything = f.read() + gw.read_stderr().encode()
        for secret in (b"SECRETCODE", b"SECRETTOKEN", b"SECRETCOOKIE", b"SECRETBEARER"):
            self.assertNotIn(secret, everything)

        with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % admin_port, timeout=5) as r:
            self.assertIn("text/plain", r.headers["Content-Type"])
            text = r.read().decode()
        self.assertIn('journeygate_requests_total{route="site",code="2xx"} 1', text)
        self.assertIn('journeygate_requests_total{route="dead",code="5xx"} 1', text)
        self.assertIn('journeygate_upstream_errors_total{route="dead",kind="refused"} 1', text)
        self.assertIn("journeygate_request_duration_seconds_bucket{le=\"+Inf\"}", text)
        self.assertIn("journeygate_connections_open", text)
        # the metrics are not on the public listener
        self.assertEqual(gw.request("GET", "/metrics")[0], 200)  # proxied to the upstream, not ours
        self.assertNotIn(b"journeygate_requests_total", gw.request("GET", "/metrics")[2])

    def test_access_log_to_file_and_off(self):
        up = self.upstream()
        path = os.path.join(self.tmpdir, "access.log")
        gw = self.start(base_config({"up": {"url": up.url}}, site_route(), access_log=path))
        gw.request("GET", "/to-file")
        deadline = time.monotonic() + 15
        while not (os.path.exists(path) and "/to-file" in open(path).read()) and time.monotonic() < deadline:
            time.sleep(0.02)  # flushed every 250 ms
        with open(path) as f:
            lines = [json.loads(x) for x in f.read().splitlines()]
        self.assertEqual(lines[-1]["path"], "/to-file")
        gw2 = self.start(base_config({"up": {"url": up.url}}, site_route(), access_log=None))
        gw2.request("GET", "/no-log")
        self.assertEqual(gw2.access_log(), [])


class CheckConfigTest(GatewayTestCase):
    def run_check(self, cfg_text):
        path = os.path.join(self.tmpdir, "c.json")
        with open(path, "w") as f:
            f.write(cfg_text)
        p = subprocess.run([JG_BIN, "check-config", "--config", path], capture_output=True, text=True, timeout=10)
        return p.returncode, p.stdout, p.stderr, path

    def test_valid_file(self):
        code, out, err, path = self.run_check(json.dumps(base_config({"up": {"url": "http://127.0.0.1:1"}},
                                                                     site_route())))
        self.assertEqual(code, 0, err)
        self.assertIn("ok", out)

    def test_every_error_named_with_file_and_key(self):
        cfg = base_config({"up": {"url": "gopher://x"}}, site_route() + site_route())
        cfg["limits"] = {"header_timeout_s": "ten", "max_body_size": "huge", "ingest_burst": 0,
                         "ingest_rate_per_minute": -1}
        cfg["extra"] = 1
        cfg["listen"][0]["tls"] = {"cert": "/nonexistent/cert.pem", "key": "/nonexistent/key.pem"}
        code, out, err, path = self.run_check(json.dumps(cfg))
        self.assertEqual(code, 1)
        lines = err.strip().splitlines()
        for line in lines:
            self.assertTrue(line.startswith(path + ": "), line)
        for want in ("extra: unknown key", "upstreams.up.url: must be an absolute", "routes[1].name: duplicate",
                     "limits.header_timeout_s: must be a number", "limits.max_body_size: must be a size",
                     "limits.ingest_burst: must be a number of at least 1",
                     "limits.ingest_rate_per_minute: must be a positive number",
                     "listen[0].tls.cert: cannot read file /nonexistent/cert.pem",
                     "listen[0].tls.key: cannot read file /nonexistent/key.pem"):
            self.assertTrue([x for x in lines if want in x], "missing %r in %s" % (want, err))

    def test_syntax_error_and_missing_file(self):
        code, _, err, path = self.run_check('{"listen": [')
        self.assertEqual(code, 1)
        self.assertTrue(err.startswith(path + ": line "), err)
        p = subprocess.run([JG_BIN, "check-config", "--config", "/nonexistent/x.json"], capture_output=True,
                           text=True, timeout=10)
        self.assertEqual(p.returncode, 1)
        self.assertIn("/nonexistent/x.json: ", p.stderr)

    def test_secrets_never_printed(self):
        cfg = base_config({"up": {"url": "http://127.0.0.1:1"}}, site_route())
        cfg["providers"] = {"google": {"type": "google", "client_id": "id", "client_secret": "TOPSECRETVALUE",
                                       "issuer": "http://not-allowed.example"}}
        code, out, err, _ = self.run_check(json.dumps(cfg))
        self.assertEqual(code, 1)
        self.assertNotIn("TOPSECRETVALUE", out + err)

    def test_usage_errors(self):
        for args in (["check-config"], ["serve"], ["bogus"], ["serve", "--config"], ["check-config", "--nope", "x"]):
            p = subprocess.run([JG_BIN] + args, capture_output=True, text=True, timeout=10)
            self.assertEqual(p.returncode, 2, args)
        for args in (["--version"], ["--help"], ["serve", "--help"], ["demo", "--help"], ["check-config", "--help"]):
            p = subprocess.run([JG_BIN] + args, capture_output=True, text=True, timeout=10)
            self.assertEqual(p.returncode, 0, args)
            self.assertTrue(p.stdout)


class DemoTest(GatewayTestCase):
    def start_demo(self):
        """`journeygate demo` on free ports, with its state in the test's directory: (process, port)."""
        port, up_port = free_port(), free_port()
        env = dict(os.environ, XDG_STATE_HOME=self.tmpdir)
        p = subprocess.Popen([JG_BIN, "demo", "--port", str(port), "--upstream-port", str(up_port)],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
        self.addCleanup(lambda: p.poll() is not None or (p.kill(), p.communicate()))
        wait_port(port)
        return p, port

    def stop_demo(self, p):
        """SIGTERM; the demo must exit 0. Returns what it printed."""
        p.send_signal(signal.SIGTERM)
        out, _ = p.communicate(timeout=10)
        self.assertEqual(p.returncode, 0)
        return out

    def test_demo_serves_the_builtin_upstream_page(self):
        p, port = self.start_demo()
        with urllib.request.urlopen(urllib.request.Request(
                "http://127.0.0.1:%d/hello" % port, headers={"X-Customer-Id": "forged"}), timeout=5) as r:
            page = r.read().decode()
            self.assertIn("text/html", r.headers["Content-Type"])
        self.assertIn("Demo upstream", page)
        self.assertIn("X-Forwarded-For", page)
        self.assertIn("X-Request-Id", page)
        self.assertNotIn("forged", page)
        self.assertIn(("http://127.0.0.1:%d/" % port).encode(), self.stop_demo(p))

    def test_demo_stand_in_signs_in_again_for_a_step_up(self):
        # the Google stand-in's ID tokens say when the persona was picked (auth_time), so a
        # step-up (max_age=0, where the gateway demands an auth_time from then on) works in the demo
        p, port = self.start_demo()
        base = "http://127.0.0.1:%d" % port
        b = Browser()
        deadline = time.monotonic() + 15
        while True:  # the stand-in's discovery and keys load in the background
            status, _, page, url = b.get(base + "/.auth/login/google?reauth=1&return_to=/account/")
            if status != 503 or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        self.assertEqual(status, 200)
        m = re.search(rb'href="([^"]+)"[^>]*data-persona="ada"', page) or \
            re.search(rb'data-persona="ada"[^>]*href="([^"]+)"', page)
        self.assertIsNotNone(m, page[:400])
        link = urllib.parse.urljoin(url, m.group(1).decode().replace("&amp;", "&"))
        status, _, body, url = b.get(link)
        self.assertEqual(status, 200, body[:300])
        self.assertTrue(url.endswith("/account/"), url)
        self.assertIn(b"X-Customer-Id", body)
        self.stop_demo(p)
    def test_demo_store_opens_with_sample_journeys_once(self):
        # a newcomer's console has live views: the demo's empty store gets sample customers with
        # 30 days of journeys on four channels, marked as sample; a second start adds none
        store = os.path.join(self.tmpdir, "journeygate-demo")
        for _ in range(2):
            p, _ = self.start_demo()
            self.stop_demo(p)  # stopping flushes the recorder: every queued touchpoint is written
            out = subprocess.run([JG_BIN, "export", "customers", "--format", "ndjson", "--store", store],
                                 capture_output=True, text=True, timeout=30, check=True).stdout
            customers = [json.loads(x) for x in out.splitlines() if x.strip()]
            self.assertEqual(len(customers), 300)
            self.assertTrue(all(c["identities"][0]["subject"].startswith("sample-") for c in customers))
            self.assertTrue(all(c["identities"][0]["email"].endswith("@sample.example") for c in customers))
        out = subprocess.run([JG_BIN, "export", "touchpoints", "--format", "ndjson", "--store", store],
                             capture_output=True, text=True, timeout=30, check=True).stdout
        tps = [json.loads(x) for x in out.splitlines() if x.strip()]
        self.assertGreater(len(tps), 600)
        self.assertEqual({t["source"] for t in tps}, {"sample"})
        self.assertEqual({t["channel"] for t in tps}, {"web", "mobile-app", "contact-centre", "email"})


if __name__ == "__main__":
    unittest.main()
