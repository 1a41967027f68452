"""Shared harness for journeygate integration tests.

Starts the real binary (JG_BIN) with a generated configuration, and a real
upstream HTTP server on 127.0.0.1 (Python's http.server, threaded) that echoes
what it received, streams, stalls, and speaks websocket. Everything binds to
127.0.0.1 and stops by itself.
"""

import base64
import hashlib
import http.client
import http.cookiejar
import urllib.error
import urllib.parse
import urllib.request
import json
import os
import signal
import random
import socket
import struct
import subprocess
import tempfile
import threading
import time
import unittest
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

JG_BIN = os.environ.get("JG_BIN", os.path.join(os.path.dirname(__file__), "../../build/journeygate"))
WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


_ports_handed_out = set()


def _ephemeral_low():
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free_port():
    """A free port for a server a test starts a moment later. Chosen below the kernel's ephemeral
    range: the peers (--port 0) and every client socket get their ports from that range, so none of
    them can take this one before the server binds it (a port 0 pick here could be)."""
    hi = _ephemeral_low() - 1
    lo = max(1024, hi - 12000)
    for _ in range(500):
        port = random.randint(lo, hi)
        if port in _ports_handed_out:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        _ports_handed_out.add(port)
        return port
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError("port %d did not open" % port)


class EchoHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def _read_body(self):
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            data = b""
            while True:
                size = int(self.rfile.readline().strip().split(b";")[0], 16)
                if size == 0:
                    self.rfile.readline()
                    break
                data += self.rfile.read(size)
                self.rfile.readline()
            return data
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def _send_json(self, obj, status=200):
        body = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _echo(self):
        body = self._read_body()
        self.server.seen.append({"path": self.path, "headers": self.headers.items()})
        self._send_json({
            "method": self.command,
            "path": self.path,
            "headers": [[k, v] for k, v in self.headers.items()],
            "body_len": len(body),
            "body_sha256": hashlib.sha256(body).hexdigest(),
            "upstream": self.server.name,
            "client_port": self.client_address[1],
        })

    def do_GET(self):
        url = urlsplit(self.path)
        q = parse_qs(url.query)
        last = url.path.rsplit("/", 1)[-1]  # dispatch on the last segment, whatever prefix routed here
        self.server.started.append(self.path)  # tests wait for a request to be in flight here
        if last == "slow":
            time.sleep(int(q.get("ms", ["1000"])[0]) / 1000.0)
            return self._echo()
        if last == "silent":
            time.sleep(30)
            return
        if last == "stream":
            n, gap = int(q.get("n", ["5"])[0]), int(q.get("gap_ms", ["200"])[0]) / 1000.0
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for i in range(n):
                chunk = ("chunk %d\n" % i).encode()
                self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                self.wfile.flush()
                time.sleep(gap)
            self.wfile.write(b"0\r\n\r\n")
            return
        if last == "ws":
            return self._websocket()
        return self._echo()

    do_POST = do_PUT = do_DELETE = do_PATCH = _echo

    def _websocket(self):
        key = self.headers.get("Sec-WebSocket-Key", "")
        accept = base64.b64encode(hashlib.sha1((key + WS_GUID).encode()).digest()).decode()
        self.send_response(101, "Switching Protocols")
        self.send_header("Upgrade", "websocket")
        self.send_header("Connection", "Upgrade")
        self.send_header("Sec-WebSocket-Accept", accept)
        self.end_headers()
        self.wfile.flush()
        while True:
            frame = ws_read_frame(self.rfile)
            if frame is None or frame[0] == 0x8:
                break
            ws_write_frame(self.wfile, frame[0], b"echo:" + frame[1], mask=False)
        self.close_connection = True


def ws_read_frame(f):
    head = f.read(2)
    if len(head) < 2:
        return None
    opcode, ln = head[0] & 0x0F, head[1] & 0x7F
    masked = head[1] & 0x80
    if ln == 126:
        ln = struct.unpack("!H", f.read(2))[0]
    elif ln == 127:
        ln = struct.unpack("!Q", f.read(8))[0]
    mask = f.read(4) if masked else None
    data = f.read(ln)
    if mask:
        data = bytes(b ^ mask[i % 4] for i, b in enumerate(data))
    return opcode, data


def ws_write_frame(f, opcode, data, mask=True):
    head = bytes([0x80 | opcode])
    ln = len(data)
    mbit = 0x80 if mask else 0
    if ln < 126:
        head += bytes([mbit | ln])
    elif ln < 65536:
        head += bytes([mbit | 126]) + struct.pack("!H", ln)
    else:
        head += bytes([mbit | 127]) + struct.pack("!Q", ln)
    if mask:
        key = os.urandom(4)
        data = key + bytes(b ^ key[i % 4] for i, b in enumerate(data))
    f.write(head + data)
    f.flush()


class Upstream:
    """A real HTTP/1.1 upstream on 127.0.0.1, in a thread."""

    def __init__(self, name="up"):
        self.port = free_port()
        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), EchoHandler)
        self.server.daemon_threads = True
        self.server.name = name
        self.server.seen = []
        self.server.started = []
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self):
        return "http://127.0.0.1:%d" % self.port

    @property
    def seen(self):
        return self.server.seen

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


class Gateway:
    """The real journeygate binary with a generated configuration."""

    def __init__(self, config, tmpdir):
        self.tmpdir = tmpdir
        self.port = config["listen"][0]["port"]
        self.config = config
        self.config_path = os.path.join(tmpdir, "journeygate.json")
        self.write_config(config)
        self.stdout = open(os.path.join(tmpdir, "stdout.log"), "wb")
        self.stderr = open(os.path.join(tmpdir, "stderr.log"), "wb")
        self.proc = subprocess.Popen([JG_BIN, "serve", "--config", self.config_path],
                                     stdout=self.stdout, stderr=self.stderr)
        try:
            wait_port(self.port)
        except TimeoutError:
            self.stop()
            raise AssertionError("gateway did not start: " + self.read_stderr())

    def write_config(self, config):
        tmp = self.config_path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(config, f, indent=1)
        os.replace(tmp, self.config_path)

    def read_stderr(self):
        if not self.stderr.closed:
            self.stderr.flush()
        with open(os.path.join(self.tmpdir, "stderr.log"), "rb") as f:
            return f.read().decode(errors="replace")

    def access_log(self, settle=0.6, until=None):
        """The access log's entries. With until (a test on the entries), polls until it holds (the log
        is flushed every 250 ms); without, waits settle seconds (for checks that nothing was logged)."""
        deadline = time.monotonic() + 15
        if until is None:
            time.sleep(settle)
        while True:
            with open(os.path.join(self.tmpdir, "stdout.log"), "rb") as f:
                entries = [json.loads(line) for line in f.read().splitlines() if line.strip()]
            if until is None or until(entries) or time.monotonic() > deadline:
                return entries
            time.sleep(0.05)

    def signal(self, sig):
        self.proc.send_signal(sig)

    def stop(self, timeout=15):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.stdout.close()
        self.stderr.close()
        return self.proc.returncode

    def conn(self, timeout=10):
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)

    def request(self, method, path, body=None, headers=None, timeout=10):
        c = self.conn(timeout)
        try:
            c.request(method, path, body=body, headers=headers or {})
            r = c.getresponse()
            return r.status, dict((k.lower(), v) for k, v in r.getheaders()), r.read()
        finally:
            c.close()


def base_config(upstreams, routes, **extra):
    port = free_port()
    cfg = {
        "listen": [{"address": "127.0.0.1", "port": port}],
        "public_url": "http://127.0.0.1:%d" % port,
        "threads": 2,
        "store": {"path": "/tmp/jg-store-unused"},
        "upstreams": upstreams,
        "routes": routes,
        # tests sign in many times from 127.0.0.1: the per-address sign-in rate limit is lifted
        # (test_policies.py checks the limit itself)
        "limits": {"auth_rate_per_minute": 1000000, "auth_burst": 1000000},
    }
    extra_limits = extra.pop("limits", None)
    cfg.update(extra)
    if extra_limits is not None:
        cfg["limits"].update(extra_limits)
    return cfg


ONE_EVENT = [{"email": "nobody@example.com", "channel": "store", "touchpoint": "visit"}]


def post_touchpoints(base_url, key, events=ONE_EVENT, raw=None, headers=None):
    """POST /.auth/touchpoints with an ingest key: (status, response headers, JSON body or {})."""
    h = {"Authorization": "Bearer " + key, "Content-Type": "application/json"}
    h.update(headers or {})
    req = urllib.request.Request(base_url + "/.auth/touchpoints", method="POST", headers=h,
                                 data=raw if raw is not None else json.dumps({"events": events}).encode())
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.headers, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, e.headers, json.loads(e.read() or b"{}")


def post_token(base_url, body, headers=None):
    """POSTs body to base_url/.auth/token (bytes as they are, anything else as JSON) with headers:
    (status, headers with lower-case names, the JSON answer; {} when there is no body)."""
    req = urllib.request.Request(base_url + "/.auth/token", method="POST", headers=headers or {},
                                 data=body if isinstance(body, bytes) else json.dumps(body).encode())
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, dict((k.lower(), v) for k, v in r.headers.items()), json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, dict((k.lower(), v) for k, v in e.headers.items()), json.loads(e.read() or b"{}")


def admin_metrics(admin_port, token, timeout=10):
    """The text of /metrics from the admin listener on admin_port, asked for with the admin token."""
    req = urllib.request.Request("http://127.0.0.1:%d/metrics" % admin_port,
                                 headers={"Authorization": "Bearer " + token})
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return r.read().decode()


def raw_request(port, data, timeout=5.0, read_all=True):
    """Sends raw bytes and returns what the server answered until it closed (or timeout)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(data)
        out = b""
        try:
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                out += chunk
                if not read_all and b"\r\n\r\n" in out:
                    break
        except socket.timeout:
            pass
        return out


class GatewayTestCase(unittest.TestCase):
    """Per-class upstream and temp dir; tests start gateways with self.start()."""

    def setUp(self):
        self._tmp = tempfile.TemporaryDirectory(prefix="jg-it-")
        self.tmpdir = self._tmp.name
        self.gateways = []
        self.upstreams = []

    def tearDown(self):
        problems = []
        for g in self.gateways:
            code = g.stop()
            # a clean SIGTERM exits 0; anything else (a crash, a sanitizer report) fails the test
            if code != 0:
                problems.append("gateway exited %s:\n%s" % (code, g.read_stderr()[-3000:]))
        for u in self.upstreams:
            u.stop()
        self._tmp.cleanup()
        self.assertFalse(problems, "\n".join(problems))

    def upstream(self, name="up"):
        u = Upstream(name)
        self.upstreams.append(u)
        return u

    def start_op(self, client_id, client_secret, public, extra_clients=(), redirect_uris=()):
        """Starts the test OP (tests/peers/rogue-op.mjs) for client_id, redirecting to the gateway's Google
        callback at public and to redirect_uris; extra_clients are (id, secret) pairs it also knows.
        It stops when the test ends."""
        args = ["--client-id", client_id, "--client-secret", client_secret]
        for cid, secret in extra_clients:
            args += ["--extra-client", "%s:%s" % (cid, secret)]
        args += ["--redirect-uri", public + "/.auth/login/google/callback"]
        for uri in redirect_uris:
            args += ["--redirect-uri", uri]
        op = Peer("rogue-op.mjs", args, self.tmpdir)
        self.addCleanup(op.stop)
        return op

    def start(self, config):
        d = os.path.join(self.tmpdir, "gw%d" % len(self.gateways))
        os.makedirs(d)
        if config.get("store", {}).get("path") == "/tmp/jg-store-unused":
            config["store"]["path"] = os.path.join(d, "store")
        g = Gateway(config, d)
        self.gateways.append(g)
        return g


PEERS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "peers")


class Peer:
    """A Node test peer from tests/peers (it prints 'READY <port>' when listening)."""

    def __init__(self, script, args, tmpdir):
        self.log = open(os.path.join(tmpdir, os.path.basename(script) + ".log"), "wb")
        self.proc = subprocess.Popen(["node", os.path.join(PEERS_DIR, script), "--port", "0"] + args,
                                     stdout=subprocess.PIPE, stderr=self.log, cwd=PEERS_DIR)
        deadline = time.monotonic() + 20
        line = b""
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if line.startswith(b"READY "):
                break
            if not line and self.proc.poll() is not None:
                break
        if not line.startswith(b"READY "):
            self.stop()
            raise AssertionError("peer %s did not start" % script)
        self.port = int(line.split()[1])
        self.url = "http://127.0.0.1:%d" % self.port

    def admin(self, path, body=None):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.url + path, data=data, method="POST" if data is not None else "GET",
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=10) as r:
            return json.loads(r.read() or b"{}")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


class Browser:
    """A cookie-keeping HTTP client that follows redirects like a browser (urllib)."""

    def __init__(self):
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar), NoErrorHandler())

    def get(self, url, headers=None, follow=True):
        h = {"Accept": "text/html,application/json"}
        h.update(headers or {})
        req = urllib.request.Request(url, headers=h)
        opener = self.opener if follow else urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(self.jar), ReturnEverything())
        r = opener.open(req, timeout=20)
        return r.status, dict((k.lower(), v) for k, v in r.headers.items()), r.read(), r.geturl()

    def post(self, url, data, headers=None):
        req = urllib.request.Request(url, data=data, headers=headers or {}, method="POST")
        r = self.opener.open(req, timeout=20)
        return r.status, dict((k.lower(), v) for k, v in r.headers.items()), r.read()

    def cookie(self, name):
        for c in self.jar:
            if c.name == name:
                return c.value
        return None


class NoErrorHandler(urllib.request.HTTPErrorProcessor):
    """Returns 4xx/5xx answers as responses; 3xx still go to the redirect handler."""

    def http_response(self, request, response):
        if 300 <= response.status < 400:
            return super().http_response(request, response)
        return response

    https_response = http_response


class ReturnEverything(urllib.request.HTTPErrorProcessor):
    """Returns every answer as it is, redirects included (nothing is followed)."""

    def http_response(self, request, response):
        return response

    https_response = http_response


def wait_login_ready(public, provider="google", timeout=15.0):
    """Polls the provider's sign-in start until the gateway redirects to it (the provider's metadata
    is loaded); True when it did within timeout seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if Browser().get(public + "/.auth/login/" + provider, follow=False)[0] == 302:
            return True
        time.sleep(0.2)
    return False


def native_id_token(op_url, client_id, client_secret, email, scope="openid email profile"):
    """An ID token for client_id from the test OP (rogue-op.mjs), as a phone's native Google sign-in
    hands it to the app: an authorization code with PKCE to the app's redirect URI, then the token call."""
    verifier = base64.urlsafe_b64encode(os.urandom(32)).rstrip(b"=").decode()
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    q = urllib.parse.urlencode({"client_id": client_id, "redirect_uri": "com.example.app:/oauth",
                                "response_type": "code", "scope": scope, "state": "s", "nonce": "n",
                                "login_hint": email, "code_challenge": challenge, "code_challenge_method": "S256"})
    _, hdrs, _, _ = Browser().get(op_url + "/authorize?" + q, follow=False)
    code = parse_qs(urlsplit(hdrs["location"]).query)["code"][0]
    form = urllib.parse.urlencode({"grant_type": "authorization_code", "code": code,
                                   "redirect_uri": "com.example.app:/oauth", "code_verifier": verifier,
                                   "client_id": client_id, "client_secret": client_secret}).encode()
    with urllib.request.urlopen(urllib.request.Request(op_url + "/token", data=form), timeout=10) as r:
        return json.loads(r.read())["id_token"]


def parallel_gets(gw, paths, headers, threads, timeout=120):
    """From `threads` threads at once, each on a connection of its own, GETs every one of paths in turn
    from the gateway gw; the statuses of all answers, in the order they came (threads still running after
    timeout seconds are left to go on)."""
    statuses = []
    guard = threading.Lock()

    def burst():
        conn = gw.conn()
        for path in paths:
            conn.request("GET", path, headers=headers)
            r = conn.getresponse()
            r.read()
            with guard:
                statuses.append(r.status)
        conn.close()

    started = [threading.Thread(target=burst) for _ in range(threads)]
    for t in started:
        t.start()
    for t in started:
        t.join(timeout)
    return statuses
