#!/usr/bin/env python3
"""bench/console_driver.py - staff clients of the console for bench/console_load.sh.

Python 3 standard library only; the browser parts (cookie jar, keep-alive connections, redirects
followed by hand) are bench/signin_driver.py's.

Commands:
  login --gateway URL --provider NAME --email E
        one staff sign-in through the console (GET /.console/login/NAME?login_hint=E&return_to=/.console/
        -> the OP -> the gateway's callback -> 302 /.console/ -> 200); checks GET /.console/api/me;
        prints "COOKIE <jg_console>"; exit 1 on failure.
  load --gateway URL --cookie C --seconds S --clients N --customers FILE --out FILE
        N staff clients (threads, one keep-alive connection each) request every endpoint of ENDPOINTS
        in turn, with no pause, for S seconds; appends "endpoint milliseconds status" per answer to
        --out (the time from sending the request to the last byte of the answer). Customer ids for the
        per-customer endpoints come from --customers (one a line) in turn. Exit 1 when an answer was
        not 200 (listed), or nothing was answered.
  summary FILE...
        per endpoint: answers, p50, p95, max (ms), non-200 answers.
"""

import argparse
import http.client
import os
import sys
import threading
import time
from urllib.parse import quote, urlencode, urljoin, urlsplit

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from signin_driver import Client, Jar, LoginFailed, snippet, where  # noqa: E402

REQUEST_TIMEOUT_S = 60
MAX_HOPS = 12
CONSOLE_COOKIE = "jg_console"
API = "/.console/api/"
STAGES = "need,research,select,convert,own,loyalty,advocacy"


def endpoints(cust, email, today):
    """(name, path) of one client's round: every figure endpoint (marketer and security), then the
    records of one customer (search, profile, journey, export) and the day's export of everyone.
    The figures use the default period: the 30 days ending today."""
    return [
        ("overview", API + "overview"),
        ("transitions", API + "transitions"),
        ("transitions channel+stage", API + "transitions?channel=mobile&stage=convert"),
        ("paths", API + "paths"),
        ("paths channel+start steps=10 top=20",
         API + "paths?" + urlencode({"channel": "web", "start": "viewed pricing", "steps": 10, "top": 20})),
        ("funnel 7 stages", API + "funnel?" + urlencode({"steps": STAGES, "window_days": 14})),
        ("stages", API + "stages"),
        ("inventory", API + "inventory"),
        ("signins/volume (day)", API + "signins/volume"),
        ("signins/volume bucket=hour", API + "signins/volume?bucket=hour"),
        ("customers?q=email", API + "customers?" + urlencode({"q": email})),
        ("customers/ID", API + "customers/" + quote(cust)),
        ("customers/ID/journey", API + "customers/" + quote(cust) + "/journey"),
        ("export touchpoints.csv customer", API + "export/touchpoints.csv?" + urlencode({"customer": cust})),
        ("export touchpoints.csv 1 day, all", API + "export/touchpoints.csv?" + urlencode({"from": today, "to": today})),
    ]


def console_login(gateway, provider, email):
    """One staff sign-in; returns the jg_console cookie's value; raises LoginFailed."""
    client, jar = Client(), Jar()
    url = gateway + "/.console/login/" + provider + "?" + urlencode({"login_hint": email, "return_to": "/.console/"})
    gw = urlsplit(gateway)
    try:
        for _ in range(MAX_HOPS):
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
            if (u.hostname, u.port) != (gw.hostname, gw.port) or u.path != "/.console/":
                raise LoginFailed("ended at %s, not %s/.console/" % (where(url), gateway))
            cookie = jar.get(CONSOLE_COOKIE)
            if not cookie:
                raise LoginFailed("reached /.console/ but no %s cookie was set" % CONSOLE_COOKIE)
            return cookie
        raise LoginFailed("more than %d redirects (last %s)" % (MAX_HOPS, where(url)))
    finally:
        client.close()


def cmd_login(a):
    gateway = a.gateway.rstrip("/")
    try:
        cookie = console_login(gateway, a.provider, a.email)
    except LoginFailed as e:
        print("console login failed: %s" % e, file=sys.stderr)
        return 1
    u = urlsplit(gateway)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=REQUEST_TIMEOUT_S)
    conn.request("GET", API + "me", headers={"Cookie": CONSOLE_COOKIE + "=" + cookie, "Accept": "application/json"})
    resp = conn.getresponse()
    body = resp.read()
    conn.close()
    if resp.status != 200 or b'"marketer"' not in body or b'"security"' not in body:
        print("console login: GET me answered %d %s" % (resp.status, snippet(body)), file=sys.stderr)
        return 1
    print("COOKIE %s" % cookie)
    return 0


def cmd_load(a):
    u = urlsplit(a.gateway.rstrip("/"))
    with open(a.customers) as f:
        customers = [line.strip() for line in f if line.strip()]
    if not customers:
        print("load: no customer ids in %s" % a.customers, file=sys.stderr)
        return 1
    today = time.strftime("%Y-%m-%d", time.gmtime())
    headers = {"Cookie": CONSOLE_COOKIE + "=" + a.cookie, "Accept": "application/json",
               "User-Agent": "jg-console-bench/1"}
    lock = threading.Lock()
    results, errors = [], []
    deadline = time.monotonic() + a.seconds

    def worker(idx):
        conn = None
        k = idx
        while time.monotonic() < deadline:
            n = k % len(customers)
            k += a.clients
            for name, path in endpoints(customers[n], "user%d@example.com" % n, today):
                if time.monotonic() >= deadline:
                    break
                if conn is None:
                    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=REQUEST_TIMEOUT_S)
                t0 = time.monotonic()
                try:
                    conn.request("GET", path, headers=headers)
                    resp = conn.getresponse()
                    body = resp.read()
                    status = resp.status
                    if resp.will_close:
                        conn.close()
                        conn = None
                except Exception as e:  # noqa: BLE001 - reported as an error of this endpoint
                    status, body = 0, ("%s" % type(e).__name__).encode()
                    conn.close()
                    conn = None
                ms = (time.monotonic() - t0) * 1000.0
                with lock:
                    results.append((name, ms, status))
                    if status != 200:
                        errors.append("%s: %d %s" % (name, status, snippet(body)))
        if conn is not None:
            conn.close()

    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(a.clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    with open(a.out, "a") as f:
        for name, ms, status in results:
            f.write("%s\t%.3f\t%d\n" % (name, ms, status))
    print("console clients: %d answers in %.0f s from %d clients, %d not 200"
          % (len(results), a.seconds, a.clients, len(errors)))
    for e in errors[:10]:
        print("  " + e, file=sys.stderr)
    return 1 if errors or not results else 0


def pct(vals, p):
    """nearest-rank percentile of an ascending list"""
    return vals[max(0, min(len(vals) - 1, int(-(-p * len(vals) // 100)) - 1))]


def cmd_summary(a):
    by = {}
    order = []
    for fn in a.files:
        with open(fn) as f:
            for line in f:
                name, ms, status = line.rstrip("\n").split("\t")
                if name not in by:
                    by[name] = ([], [0])
                    order.append(name)
                if status == "200":
                    by[name][0].append(float(ms))
                else:
                    by[name][1][0] += 1
    print("| endpoint (30 days unless said) | answers | p50 ms | p95 ms | max ms | not 200 |")
    print("|---|---|---|---|---|---|")
    for name in order:
        v, bad = by[name]
        v.sort()
        if v:
            print("| %s | %d | %.1f | %.1f | %.1f | %d |" % (name, len(v), pct(v, 50), pct(v, 95), v[-1], bad[0]))
        else:
            print("| %s | 0 | - | - | - | %d |" % (name, bad[0]))
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    p1 = sub.add_parser("login", help="one staff sign-in; prints the console cookie")
    p1.add_argument("--gateway", required=True)
    p1.add_argument("--provider", required=True)
    p1.add_argument("--email", required=True)
    p2 = sub.add_parser("load", help="staff clients requesting every endpoint for a while")
    p2.add_argument("--gateway", required=True)
    p2.add_argument("--cookie", required=True)
    p2.add_argument("--seconds", type=float, required=True)
    p2.add_argument("--clients", type=int, required=True)
    p2.add_argument("--customers", required=True)
    p2.add_argument("--out", required=True)
    p3 = sub.add_parser("summary", help="latency per endpoint of load's files")
    p3.add_argument("files", nargs="+")
    a = ap.parse_args()
    if a.cmd == "load" and (a.seconds <= 0 or a.clients < 1):
        ap.error("--seconds and --clients must be positive")
    return {"login": cmd_login, "load": cmd_load, "summary": cmd_summary}[a.cmd](a)


if __name__ == "__main__":
    sys.exit(main())
