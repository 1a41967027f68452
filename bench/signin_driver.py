#!/usr/bin/env python3
"""bench/signin_driver.py - concurrent browser sign-in driver for bench/signin.sh.

Python 3 standard library only. Each login is one fresh browser: its own cookie jar
(class Jar: path-scoped, port-blind like a browser's), redirects followed by hand, starting at

    GET {gateway}/.auth/login/idp?login_hint=userN@example.com&return_to=/app

and normally going gateway 302 -> OP /auth 303 -> /interaction/<uid> 303 -> /auth/<uid> 303
-> gateway callback 302 -> /app 200 (proxied to the upstream). A login succeeds only when
it ends with 200 on {gateway}/app and the upstream saw an X-Customer-Id (the nginx upstream
of bench/signin.sh echoes it back as the response header X-Seen-Customer-Id).

Every worker thread keeps one keep-alive connection per host:port (as a browser does); a
request that fails because a reused idle connection was closed by the server before it
answered is retried once on a new connection. Nothing else is retried.

Commands:
  login --gateway URL [--email E]
        one login; prints "TOKEN <jg_session> CUSTOMER <id> HOPS <requests>"; exit 1 on failure.
  run --gateway URL --seconds S --concurrency C [--users N] [--proc NAME=PID]...
        logins for S seconds with C threads (after one untimed warm-up login per thread);
        prints logins/s, latency percentiles, failures, the CPU time of each --proc
        process (and its children) read from /proc/PID/stat before and after the timed
        window, and which process dominated. Exit 1 if any login failed (or one email
        was given two different customer ids).
"""

import argparse
import http.client
import itertools
import os
import re
import sys
import threading
import time
from email.utils import parsedate_to_datetime
from urllib.parse import urlencode, urljoin, urlsplit

REQUEST_TIMEOUT_S = 30
MAX_HOPS = 12
SESSION_COOKIE = "jg_session"
CUSTOMER_ECHO = "X-Seen-Customer-Id"
CLK_TCK = os.sysconf("SC_CLK_TCK")


class LoginFailed(Exception):
    pass


class Jar:
    """A browser's cookie jar for one login, reduced to what a single host needs.

    Every server here is 127.0.0.1 (cookies ignore ports, so the OP's cookies also go to the
    gateway, as in a browser). Honoured: Path (default-path and path-match of RFC 6265 5.1.4),
    deletion by Max-Age <= 0 or an Expires in the past, Secure (never sent over http).
    Not needed here: Domain (one host), expiry of cookies during a login.
    """

    def __init__(self):
        self.cookies = {}  # (name, path) -> value

    @staticmethod
    def _path_match(req_path, cookie_path):
        if req_path == cookie_path:
            return True
        if req_path.startswith(cookie_path):
            return cookie_path.endswith("/") or req_path[len(cookie_path)] == "/"
        return False

    def header_for(self, req_path):
        hits = [(p, n, v) for (n, p), v in self.cookies.items() if self._path_match(req_path, p)]
        hits.sort(key=lambda h: -len(h[0]))  # longer paths first (RFC 6265 5.4)
        return "; ".join("%s=%s" % (n, v) for _, n, v in hits)

    def update(self, resp, req_path):
        for line in resp.msg.get_all("Set-Cookie") or ():
            first, *attrs = line.split(";")
            name, eq, value = first.strip().partition("=")
            if not eq or not name:
                continue
            a = {}
            for attr in attrs:
                k, _, v = attr.partition("=")
                a[k.strip().lower()] = v.strip()
            if "secure" in a:
                continue
            path = a.get("path", "")
            if not path.startswith("/"):
                path = req_path[:req_path.rfind("/")] or "/"
            gone = False
            if "max-age" in a:
                gone = not a["max-age"].lstrip("-").isdigit() or int(a["max-age"]) <= 0
            elif "expires" in a:
                try:
                    gone = parsedate_to_datetime(a["expires"]).timestamp() <= time.time()
                except (TypeError, ValueError):
                    pass
            if gone:
                self.cookies.pop((name, path), None)
            else:
                self.cookies[(name, path)] = value

    def get(self, name):
        return next((v for (n, _), v in self.cookies.items() if n == name), None)


class Client:
    """One per thread: persistent HTTP/1.1 connections keyed by (host, port)."""

    def __init__(self):
        self.conns = {}

    def close(self):
        for c in self.conns.values():
            c.close()
        self.conns.clear()

    def get(self, url, jar):
        u = urlsplit(url)
        if u.scheme != "http":
            raise LoginFailed("non-http redirect: %s" % url[:120])
        key = (u.hostname, u.port or 80)
        headers = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8", "User-Agent": "jg-signin-bench/1"}
        cookie = jar.header_for(u.path or "/")
        if cookie:
            headers["Cookie"] = cookie
        path = u.path or "/"
        if u.query:
            path += "?" + u.query
        for attempt in (0, 1):
            conn = self.conns.get(key)
            reused = conn is not None
            if conn is None:
                conn = http.client.HTTPConnection(key[0], key[1], timeout=REQUEST_TIMEOUT_S)
                self.conns[key] = conn
            try:
                conn.request("GET", path, headers=headers)
                resp = conn.getresponse()
                body = resp.read()
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                conn.close()
                del self.conns[key]
                if reused and attempt == 0:
                    continue  # the server closed an idle keep-alive connection: retry once
                raise
            except Exception:
                conn.close()
                del self.conns[key]
                raise
            jar.update(resp, u.path or "/")
            if resp.will_close:
                conn.close()
                del self.conns[key]
            return resp, body
        raise AssertionError("unreachable")


def login(client, gateway, email):
    """One full browser login; returns (customer_id, session_token, requests); raises LoginFailed."""
    jar = Jar()
    url = gateway + "/.auth/login/idp?" + urlencode({"login_hint": email, "return_to": "/app"})
    gw = urlsplit(gateway)
    for hop in range(1, MAX_HOPS + 1):
        try:
            resp, body = client.get(url, jar)
        except LoginFailed:
            raise
        except Exception as e:  # socket errors, timeouts, protocol errors
            raise LoginFailed("%s at %s" % (type(e).__name__, where(url))) from None
        if resp.status in (301, 302, 303, 307, 308):
            loc = resp.getheader("Location")
            if not loc:
                raise LoginFailed("%d without Location at %s" % (resp.status, where(url)))
            url = urljoin(url, loc)
            continue
        u = urlsplit(url)
        if resp.status != 200:
            raise LoginFailed("HTTP %d at %s: %s" % (resp.status, where(url), snippet(body)))
        if (u.hostname, u.port) != (gw.hostname, gw.port) or u.path != "/app":
            raise LoginFailed("ended at %s, not %s/app" % (where(url), gateway))
        customer = resp.getheader(CUSTOMER_ECHO, "")
        if not customer:
            raise LoginFailed("reached /app but the upstream saw no X-Customer-Id")
        token = jar.get(SESSION_COOKIE)
        if not token:
            raise LoginFailed("reached /app but no %s cookie was set" % SESSION_COOKIE)
        return customer, token, hop
    raise LoginFailed("more than %d redirects (last %s)" % (MAX_HOPS, where(url)))


def where(url):
    u = urlsplit(url)
    return "%s:%s%s" % (u.hostname, u.port, u.path)


def snippet(body):
    text = body[:160].decode("utf-8", "replace")
    text = re.sub(r"<[^>]*>", " ", text)  # error pages are HTML
    return re.sub(r"\s+", " ", text).strip()


# ---------------------------------------------------------------- /proc accounting

def proc_ticks(pid):
    """utime+stime of one process (all its threads), in clock ticks; None if gone."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])  # stat fields 14 and 15
    except (OSError, IndexError, ValueError):
        return None


def thread_ticks(pid, tid):
    try:
        with open("/proc/%d/task/%d/stat" % (pid, tid)) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])
    except (OSError, IndexError, ValueError):
        return None


def children(pid):
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                fields = f.read().rsplit(")", 1)[1].split()
            if int(fields[1]) == pid:
                out.append(int(d))
        except (OSError, IndexError, ValueError):
            continue
    return out


def group_pids(pid):
    """pid and all its descendants (nginx: master + workers)."""
    pids, todo = [], [pid]
    while todo:
        p = todo.pop()
        pids.append(p)
        todo.extend(children(p))
    return pids


def machine_ticks():
    """(busy, total) clock ticks of all CPUs from /proc/stat."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    idle = v[3] + (v[4] if len(v) > 4 else 0)  # idle + iowait
    total = sum(v[:8])  # guest time is already included in user
    return total - idle, total


def snapshot(groups):
    snap = {}
    for name, pids in groups.items():
        snap[name] = {p: proc_ticks(p) for p in pids}
    return snap


def group_seconds(before, after, name):
    total = 0
    for p, t0 in before[name].items():
        t1 = after[name].get(p)
        if t0 is not None and t1 is not None:
            total += t1 - t0
    return total / CLK_TCK


# ---------------------------------------------------------------- commands

def cmd_login(a):
    client = Client()
    try:
        customer, token, hops = login(client, a.gateway.rstrip("/"), a.email)
    except LoginFailed as e:
        print("login failed: %s" % e, file=sys.stderr)
        return 1
    finally:
        client.close()
    print("TOKEN %s CUSTOMER %s HOPS %d" % (token, customer, hops))
    return 0


def percentile(sorted_vals, p):
    """nearest-rank percentile of an ascending list"""
    if not sorted_vals:
        return float("nan")
    k = max(0, min(len(sorted_vals) - 1, int(-(-p * len(sorted_vals) // 100)) - 1))
    return sorted_vals[k]


def cmd_run(a):
    gateway = a.gateway.rstrip("/")
    groups = {}
    for spec in a.proc:
        name, _, pid = spec.partition("=")
        groups[name] = group_pids(int(pid))
    groups["driver (python)"] = [os.getpid()]
    op_name = a.op_name if a.op_name in groups else None
    op_pid = groups[op_name][0] if op_name else None

    lock = threading.Lock()
    counter = itertools.count()
    latencies, hop_counts = [], []
    failures = {}  # reason -> count
    first_fail = []
    customer_of = {}
    mismatches = []
    warm_fail = []
    start_evt = threading.Event()
    ready = threading.Barrier(a.concurrency + 1)
    deadline = [0.0]

    def email_for(n):
        return "user%d@example.com" % (n % a.users)

    def record(email, customer):
        prev = customer_of.setdefault(email, customer)
        if prev != customer:
            mismatches.append((email, prev, customer))

    def worker(idx):
        client = Client()
        try:
            # untimed warm-up: one login per thread (JIT, connections, first customers)
            email = "warmup%d@example.com" % idx
            try:
                login(client, gateway, email)
            except LoginFailed as e:
                with lock:
                    warm_fail.append(str(e))
            try:
                ready.wait(60)
            except threading.BrokenBarrierError:
                return
            start_evt.wait()
            while time.monotonic() < deadline[0]:
                n = next(counter)
                email = email_for(n)
                t0 = time.monotonic()
                try:
                    customer, _, hops = login(client, gateway, email)
                except LoginFailed as e:
                    reason = re.sub(r"/(interaction|auth)/[^ :]+", r"/\1/<uid>", str(e))
                    reason = re.sub(r"\d{4,}", "N", reason)
                    with lock:
                        failures[reason] = failures.get(reason, 0) + 1
                        if len(first_fail) < 5:
                            first_fail.append("%s: %s" % (email, e))
                    continue
                dt = time.monotonic() - t0
                with lock:
                    latencies.append(dt)
                    hop_counts.append(hops)
                    record(email, customer)
        finally:
            client.close()

    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(a.concurrency)]
    for t in threads:
        t.start()
    try:
        ready.wait(90)
    except threading.BrokenBarrierError:
        print("warm-up logins did not finish in time", file=sys.stderr)
        return 1
    if warm_fail:
        print("warm-up logins failed (%d):" % len(warm_fail))
        for w in warm_fail[:5]:
            print("  " + w)

    before = snapshot(groups)
    op_main0 = thread_ticks(op_pid, op_pid) if op_pid else None
    m0 = machine_ticks()
    t_start = time.monotonic()
    deadline[0] = t_start + a.seconds
    start_evt.set()
    for t in threads:
        t.join(a.seconds + REQUEST_TIMEOUT_S * MAX_HOPS + 10)
    elapsed = time.monotonic() - t_start
    after = snapshot(groups)
    op_main1 = thread_ticks(op_pid, op_pid) if op_pid else None
    m1 = machine_ticks()
    stuck = sum(1 for t in threads if t.is_alive())

    ok = len(latencies)
    nfail = sum(failures.values())
    lat = sorted(latencies)
    print("logins:        %d ok, %d failed in %.1f s (%d concurrent browsers, %d distinct users)"
          % (ok, nfail, elapsed, a.concurrency, min(a.users, ok + nfail)))
    print("logins/s:      %.1f" % (ok / elapsed if elapsed > 0 else 0.0))
    if lat:
        print("latency:       p50 %.1f ms   p90 %.1f ms   p99 %.1f ms   max %.1f ms"
              % (percentile(lat, 50) * 1e3, percentile(lat, 90) * 1e3, percentile(lat, 99) * 1e3, lat[-1] * 1e3))
        print("requests/login: %s (gateway, OP /auth, /interaction, /auth/<uid>, callback, /app)"
              % "/".join(str(h) for h in sorted(set(hop_counts))))
    if failures:
        print("failures by reason:")
        for reason, cnt in sorted(failures.items(), key=lambda kv: -kv[1]):
            print("  %6d  %s" % (cnt, reason))
        print("first failures:")
        for f in first_fail:
            print("  " + f)
    if mismatches:
        print("IDENTITY: %d login(s) gave an email a different customer id than before, e.g. %s: %s then %s"
              % (len(mismatches), mismatches[0][0], mismatches[0][1], mismatches[0][2]))
    if stuck:
        print("%d driver thread(s) still running at the end" % stuck)

    # CPU accounting over the timed window
    busy = (m1[0] - m0[0]) / CLK_TCK
    total = (m1[1] - m0[1]) / CLK_TCK
    ncpu = os.cpu_count() or 1
    print("")
    print("CPU time during the timed window (%.1f s wall, %d cores; %% = of one core):" % (elapsed, ncpu))
    rows = [(name, group_seconds(before, after, name)) for name in groups]
    for name, secs in sorted(rows, key=lambda r: -r[1]):
        per_login = " %6.2f ms/login" % (secs / ok * 1e3) if ok else ""
        print("  %-24s %7.2f s  %6.1f%%%s" % (name, secs, secs / elapsed * 100, per_login))
    accounted = sum(s for _, s in rows)
    print("  %-24s %7.2f s  %6.1f%%   (machine busy %.0f%% of %d cores)"
          % ("all processes", busy, busy / elapsed * 100, 100 * busy / total if total else 0, ncpu))
    print("  %-24s %7.2f s" % ("(not listed above)", max(0.0, busy - accounted)))
    if op_pid and op_main0 is not None and op_main1 is not None:
        main = (op_main1 - op_main0) / CLK_TCK
        print("  OP main JavaScript thread: %.2f s = %.0f%% of one core (node runs JS on this one thread)"
              % (main, main / elapsed * 100))
        top_name, top_secs = max(rows, key=lambda r: r[1])
        machine_full = total > 0 and busy / total >= 0.90
        if top_name == op_name:
            verdict = ("the OP (oidc-provider) used the most CPU of any process (%.2f s vs the gateway's %.2f s)"
                       % (top_secs, dict(rows).get(a.gateway_name, 0.0)))
            if main / elapsed >= 0.80:
                verdict += "; its single JS thread was ~saturated, so oidc-provider is the bottleneck here"
                verdict += ", not journeygate"
            elif machine_full:
                verdict += "; the machine's cores were saturated, mostly by the OP: logins/s measures the OP"
            else:
                verdict += ", but neither it nor the machine was saturated (latency-bound: raise concurrency)"
        else:
            verdict = "%s used the most CPU (%.2f s), not the OP" % (top_name, top_secs)
            if machine_full:
                verdict += "; the machine's cores were saturated"
        print("bottleneck:    " + verdict)

    if warm_fail or nfail or mismatches or stuck or ok == 0:
        return 1
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    p1 = sub.add_parser("login", help="one login; prints the session token")
    p1.add_argument("--gateway", required=True)
    p1.add_argument("--email", default="bench@example.com")
    p2 = sub.add_parser("run", help="timed concurrent logins")
    p2.add_argument("--gateway", required=True)
    p2.add_argument("--seconds", type=float, required=True)
    p2.add_argument("--concurrency", type=int, required=True)
    p2.add_argument("--users", type=int, default=1000, help="login_hint cycles through user0..user(N-1)")
    p2.add_argument("--proc", action="append", default=[], metavar="NAME=PID",
                    help="a process (with its children) whose CPU time to report")
    p2.add_argument("--op-name", default="OP (node)", help="which --proc is the OpenID Provider")
    p2.add_argument("--gateway-name", default="journeygate", help="which --proc is the gateway")
    a = ap.parse_args()
    if a.cmd == "run" and (a.seconds <= 0 or a.concurrency < 1 or a.users < 1):
        ap.error("--seconds, --concurrency and --users must be positive")
    return cmd_login(a) if a.cmd == "login" else cmd_run(a)


if __name__ == "__main__":
    sys.exit(main())
