#!/usr/bin/env bash
# nginx_edge_test.sh: HTTP/2 at an nginx edge in front of journeygate.
#
# A client speaks HTTP/2 over TLS to nginx (deploy/nginx-edge.conf's essentials),
# nginx forwards HTTP/1.1 to the gateway, the gateway proxies to a tiny upstream
# (python3 -m http.server). Passes when curl sees HTTP/2 and the upstream's
# unique marker in the body.
#
# Environment:
#   JG_BIN               path to the journeygate binary (required)
#   NGINX                nginx binary (default: nginx on PATH, else /usr/sbin/nginx)
#   JG_TEST_TIMEOUT_S    hard limit for the whole test (default 60)
#   JG_KEEP_TMP=1        keep the temporary directory (logs, configs) afterwards
#
# Exit 0 on pass, 1 on failure; the last line is always the summary.
set -euo pipefail

TEST_NAME=nginx_edge
TIMEOUT_S=${JG_TEST_TIMEOUT_S:-60}
[[ "$TIMEOUT_S" =~ ^[1-9][0-9]*$ ]] || { echo "$TEST_NAME: JG_TEST_TIMEOUT_S must be a positive integer" >&2; echo "0 passed, 1 failed"; exit 1; }
passed=0
tmp=""
pids=()
watchdog_pid=""

log() { echo "$TEST_NAME: $*" >&2; }
fail() { log "FAIL: $*"; exit 1; }

# Stop one background server and everything in its process group (each server
# runs under setsid, so its pid is its group id): SIGTERM, then SIGKILL after 5 s.
stop_group() {
    local pid=$1 i
    kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null; return 0; }
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null
    for ((i = 0; i < 50; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL -- "-$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    return 0
}

cleanup() {
    set +e
    trap - EXIT INT TERM
    local i f
    for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
        stop_group "${pids[i]}"
    done
    if [[ -n "$watchdog_pid" ]]; then
        kill -TERM "$watchdog_pid" 2>/dev/null
        wait "$watchdog_pid" 2>/dev/null
    fi
    if [[ -n "$tmp" && -d "$tmp" ]]; then
        if ((!passed)); then
            for f in "$tmp"/*.log; do
                [[ -s "$f" ]] || continue
                echo "----- ${f##*/} (last 40 lines) -----" >&2
                tail -n 40 "$f" >&2
            done
        fi
        if [[ "${JG_KEEP_TMP:-0}" == 1 ]]; then
            log "kept $tmp"
        else
            rm -rf -- "$tmp"
        fi
    fi
    if ((passed)); then
        echo "1 passed, 0 failed"
        exit 0
    fi
    echo "0 passed, 1 failed"
    exit 1
}
trap cleanup EXIT
trap 'log "FAIL: interrupted or timed out"; exit 1' INT TERM

# Hard deadline: the watchdog signals this shell, whose TERM trap exits through
# cleanup. It sleeps in 1 s steps that write nowhere, so killing it at any
# moment leaves nothing behind that holds the caller's pipes open.
(
    for ((t = 0; t < TIMEOUT_S; t++)); do
        sleep 1 >/dev/null 2>&1
    done
    echo "$TEST_NAME: FAIL: timed out after ${TIMEOUT_S}s" >&2
    kill -TERM $$ 2>/dev/null
) &
watchdog_pid=$!

# ---------------------------------------------------------------- checks ---
[[ -n "${JG_BIN:-}" ]] || fail "JG_BIN is not set (path to the journeygate binary)"
[[ -x "$JG_BIN" ]] || fail "JG_BIN=$JG_BIN is not an executable file"
if [[ -z "${NGINX:-}" ]]; then
    NGINX=$(command -v nginx || true)
    [[ -n "$NGINX" ]] || NGINX=/usr/sbin/nginx
fi
[[ -x "$NGINX" ]] || fail "nginx not found (install nginx-light, or set NGINX)"
for cmd in openssl curl python3 setsid; do
    command -v "$cmd" >/dev/null || fail "required command not found: $cmd"
done
curl --version | grep -qw HTTP2 || fail "this curl has no HTTP/2 support"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/jg-nginx-edge.XXXXXX")
# nginx workers (an unprivileged user when run as root) must reach their temp
# directories inside: traverse only, nothing listable.
chmod 0711 "$tmp"

# Start a server in its own session/process group, output to $tmp/NAME.log.
start() {
    local name=$1
    shift
    setsid "$@" </dev/null >"$tmp/$name.log" 2>&1 &
    pids+=("$!")
}

# Wait (bounded, 10 s) until 127.0.0.1:PORT accepts connections.
wait_port() {
    local port=$1 pid=$2 name=$3 i
    for ((i = 0; i < 100; i++)); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            return 0
        fi
        kill -0 "$pid" 2>/dev/null || fail "$name exited before listening on 127.0.0.1:$port (see $name.log below)"
        sleep 0.1
    done
    fail "$name did not listen on 127.0.0.1:$port within 10 s"
}

# Three distinct free ports below the kernel's ephemeral range (bound together, then released): no
# client socket or port-0 listener of a parallel test can take them before the servers bind.
read -r up_port gw_port edge_port < <(python3 -c '
import random, socket
try:
    low = int(open("/proc/sys/net/ipv4/ip_local_port_range").read().split()[0])
except Exception:
    low = 32768
socks = []
while len(socks) < 3:
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", random.randint(max(1024, low - 12001), low - 1)))
    except OSError:
        s.close()
        continue
    socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
') || fail "could not pick free ports with python3"
[[ -n "$edge_port" ]] || fail "could not pick free ports with python3"
log "ports: upstream=$up_port gateway=$gw_port edge=$edge_port; dir: $tmp"

# ------------------------------------------------- (a) self-signed cert ---
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
    -keyout "$tmp/key.pem" -out "$tmp/cert.pem" -days 1 \
    -subj "/CN=127.0.0.1" -addext "subjectAltName=IP:127.0.0.1" \
    >"$tmp/openssl.log" 2>&1 || fail "openssl could not create a self-signed certificate"
rm -f "$tmp/openssl.log"
chmod 0600 "$tmp/key.pem"

# ------------------------------------------------------- (b) upstream ---
marker="jg-nginx-edge-marker-$$-$RANDOM$RANDOM-$(date +%s)"
mkdir "$tmp/www"
printf '<!doctype html><title>upstream</title><p>%s</p>\n' "$marker" >"$tmp/www/index.html"
start upstream python3 -m http.server "$up_port" --bind 127.0.0.1 --directory "$tmp/www"
wait_port "$up_port" "${pids[-1]}" upstream

# -------------------------------------------------------- (c) gateway ---
mkdir -m 0700 "$tmp/store"
# JSON is written by python's json module (paths are quoted correctly).
JG_T_TMP=$tmp JG_T_UP=$up_port JG_T_GW=$gw_port JG_T_EDGE=$edge_port python3 -c '
import json, os
e = os.environ
cfg = {
    "listen": [{"address": "127.0.0.1", "port": int(e["JG_T_GW"])}],
    "public_url": "https://127.0.0.1:%s" % e["JG_T_EDGE"],
    "threads": 1,
    "access_log": "-",
    "trusted_proxies": ["127.0.0.1"],
    "store": {"path": os.path.join(e["JG_T_TMP"], "store"), "map_size_mb": 64},
    "upstreams": {"site": {"url": "http://127.0.0.1:%s" % e["JG_T_UP"], "timeout_s": 10}},
    "routes": [{"name": "site", "match": {"path_prefix": "/"}, "upstream": "site",
                "channel": "web", "auth": "none"}],
}
with open(os.path.join(e["JG_T_TMP"], "cfg.json"), "w") as f:
    json.dump(cfg, f, indent=2)
' || fail "could not write the gateway config"
start gateway "$JG_BIN" serve --config "$tmp/cfg.json"
wait_port "$gw_port" "${pids[-1]}" gateway

# ---------------------------------------------------------- (d) nginx ---
user_line=""
if ((EUID == 0)); then
    user_line="user nobody $(id -gn nobody 2>/dev/null || echo nogroup);"
fi
nginx_build=$("$NGINX" -V 2>&1 || true)
temp_paths="client_body_temp_path $tmp/nginx-body;
    proxy_temp_path $tmp/nginx-proxy;"
for mod in fastcgi uwsgi scgi; do
    if [[ "$nginx_build" != *"--without-http_${mod}_module"* ]]; then
        temp_paths+="
    ${mod}_temp_path $tmp/nginx-$mod;"
    fi
done
cat >"$tmp/nginx.conf" <<NGINX_CONF
# Standalone copy of deploy/nginx-edge.conf's essentials, everything in $tmp.
daemon off;
master_process on;
worker_processes 1;
$user_line
pid $tmp/nginx.pid;
error_log $tmp/nginx-error.log warn;

events {
    worker_connections 256;
}

http {
    access_log $tmp/nginx-access.log;
    $temp_paths

    upstream journeygate {
        server 127.0.0.1:$gw_port max_fails=0;
        keepalive 16;
        keepalive_timeout 60s;
    }

    map \$http_upgrade \$journeygate_connection {
        default upgrade;
        ''      '';
    }

    server {
        listen 127.0.0.1:$edge_port ssl http2;
        server_name 127.0.0.1;

        ssl_certificate     $tmp/cert.pem;
        ssl_certificate_key $tmp/key.pem;
        ssl_protocols TLSv1.2 TLSv1.3;

        http2_max_concurrent_streams 64;
        large_client_header_buffers 4 16k;
        client_max_body_size 1m;

        location / {
            proxy_pass http://journeygate;
            proxy_http_version 1.1;
            proxy_set_header Host              \$host;
            proxy_set_header X-Forwarded-For   \$remote_addr;
            proxy_set_header X-Forwarded-Proto \$scheme;
            proxy_set_header X-Forwarded-Host  \$host;
            proxy_set_header Upgrade           \$http_upgrade;
            proxy_set_header Connection        \$journeygate_connection;
            proxy_connect_timeout 5s;
            proxy_read_timeout 15s;
        }
    }
}
NGINX_CONF
"$NGINX" -t -q -p "$tmp/" -e "$tmp/nginx-error.log" -c "$tmp/nginx.conf" \
    >"$tmp/nginx-t.log" 2>&1 || fail "nginx -t rejected the generated config (see nginx-t.log below)"
start nginx "$NGINX" -p "$tmp/" -e "$tmp/nginx-error.log" -c "$tmp/nginx.conf"
wait_port "$edge_port" "${pids[-1]}" nginx

# ------------------------------------------------- (e) HTTP/2 request ---
url="https://127.0.0.1:$edge_port/"
if ! result=$(curl -sS -k --http2 --max-time 10 -o "$tmp/body.html" \
        -w '%{http_version} %{http_code}' "$url" 2>"$tmp/curl.log"); then
    fail "curl $url failed: $(tr '\n' ' ' <"$tmp/curl.log")"
fi
read -r http_version http_code <<<"$result"
[[ "$http_version" == 2 ]] || fail "expected HTTP/2 from the edge, got HTTP/$http_version (status $http_code)"
[[ "$http_code" == 200 ]] || fail "expected status 200 through nginx and the gateway, got $http_code"
grep -qF -- "$marker" "$tmp/body.html" \
    || fail "the upstream's marker is not in the body: $(head -c 300 "$tmp/body.html" | tr '\n' ' ')"

log "ok: HTTP/$http_version $http_code via nginx -> journeygate -> upstream"
passed=1
