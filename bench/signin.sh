#!/usr/bin/env bash
# bench/signin.sh - journeygate sign-in throughput and the cost of a session on proxied requests.
#
# Topology (everything on 127.0.0.1):
#
#   signin_driver.py --> journeygate ("threads": 2) --> nginx upstream (worker_processes 1,
#    (browsers)      \          |  /token, /jwks          return 200 "hello\n" and echo the
#                     \         v                         X-Customer-Id it saw as X-Seen-Customer-Id)
#                      `--> google-op.mjs (oidc-provider, /auth, /interaction)
#
#   wrk --> journeygate /policy (auth "session" + policy twenty_rules, same cookie) -----------\
#   wrk --> journeygate /app  (auth "session" + policy signed_in, Cookie: jg_session=TOKEN) ---\
#   wrk --> journeygate /pubpolicy (auth "none" + policy twenty_public, no cookie) -----------\
#   wrk --> journeygate /open (auth "none")  ------------------------------------------------->-> upstream
#   wrk --> nginx-proxy (worker_processes 2) -------------------------------------------------/
#
# Part 1: browser logins for LOGIN_SECONDS with LOGIN_CONCURRENCY concurrent browsers (one
# cookie jar per login): logins/s, p50/p99 latency, failures, and the CPU time each process
# used (from /proc/PID/stat), which tells whether the OP or the gateway is the bottleneck.
# Part 2: wrk against the five targets above in alternating rounds; medians, and per-round
# ratios with a 95% bootstrap interval of their median: pubpolicy/open (a route with a 20-rule policy vs auth "none", the same anonymous GET:
# what evaluating a policy costs, target >= 0.97), policy/app (signed in, 20 rules vs 1),
# app/open (signed in vs anonymous: what a session costs, target >= 0.90), policy/open (both
# together) and each against nginx. Signed-in requests also carry a signed X-Identity-Assertion
# (ES256, reused per session and route for half its life): part of what /app and /policy cost.
#
# Exit status: 0 when everything ran (whether or not the target was met); 1 when a login
# failed, something failed to start or died, or wrk reported socket errors or non-2xx/3xx
# responses.
#
# See bench/README.md.

set -euo pipefail

usage() {
    cat <<'EOF'
Usage: bench/signin.sh [options]

Options (each also settable via the environment variable in brackets):
  --jg-bin PATH              journeygate binary          [JG_BIN, default <repo>/build/journeygate]
  --login-seconds N          length of the login test    [LOGIN_SECONDS, default 20]
  --login-concurrency N      concurrent browsers         [LOGIN_CONCURRENCY, default 8]
  --login-users N            login_hint cycles through user0..user(N-1)@example.com
                                                         [LOGIN_USERS, default 1000]
  --duration SECONDS         seconds per wrk run         [DURATION, default 10]
  --rounds N                 wrk rounds                  [ROUNDS, default 3]
  --conns "N ..."            wrk connection counts       [CONNS, default 64]
  --threads N                wrk threads                 [THREADS, default 2]
  --keep-tmp                 keep the temp dir (logs, configs, raw wrk output) [KEEP_TMP=1]
  -h, --help                 show this help
EOF
}

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$BENCH_DIR/.." && pwd)
BENCH_NAME=signin.sh
# shellcheck source=bench/lib.sh
source "$BENCH_DIR/lib.sh"
PEERS_DIR="$ROOT/tests/peers"
DRIVER="$BENCH_DIR/signin_driver.py"

JG_BIN=${JG_BIN:-$ROOT/build/journeygate}
LOGIN_SECONDS=${LOGIN_SECONDS:-20}
LOGIN_CONCURRENCY=${LOGIN_CONCURRENCY:-8}
LOGIN_USERS=${LOGIN_USERS:-1000}
DURATION=${DURATION:-10}
ROUNDS=${ROUNDS:-3}
CONNS=${CONNS:-64}
THREADS=${THREADS:-2}
KEEP_TMP=${KEEP_TMP:-0}

# Fixed by the benchmark definition (2-core machine; same shape as bench/proxy.sh).
readonly UPSTREAM_WORKERS=1
readonly NGINX_PROXY_WORKERS=2
readonly JG_THREADS=2
readonly RATIO_TARGET=0.90    # signed-in req/s / unauthenticated req/s
readonly POLICY_RATIO_TARGET=0.97   # 20-rule policy req/s / unauthenticated req/s
readonly CLIENT_ID=jg-bench-client
readonly CLIENT_SECRET=jg-bench-secret-0123456789
readonly START_TIMEOUT_S=10   # bounded wait for each server to listen
readonly OP_START_TIMEOUT_S=20
readonly READY_TIMEOUT_S=20   # bounded wait for the provider's discovery + keys
readonly STOP_TIMEOUT_S=5     # bounded wait for each server to exit

need_arg() { [[ $# -ge 2 ]] || die "option $1 needs an argument"; }

while [[ $# -gt 0 ]]; do
    case $1 in
        --jg-bin)            need_arg "$@"; JG_BIN=$2; shift 2 ;;
        --login-seconds)     need_arg "$@"; LOGIN_SECONDS=$2; shift 2 ;;
        --login-concurrency) need_arg "$@"; LOGIN_CONCURRENCY=$2; shift 2 ;;
        --login-users)       need_arg "$@"; LOGIN_USERS=$2; shift 2 ;;
        --duration)          need_arg "$@"; DURATION=$2; shift 2 ;;
        --rounds)            need_arg "$@"; ROUNDS=$2; shift 2 ;;
        --conns)             need_arg "$@"; CONNS=$2; shift 2 ;;
        --threads)           need_arg "$@"; THREADS=$2; shift 2 ;;
        --keep-tmp)          KEEP_TMP=1; shift ;;
        -h|--help)           usage; exit 0 ;;
        *)                   usage >&2; die "unknown argument: $1" ;;
    esac
done

is_posint() { [[ $1 =~ ^[0-9]+$ && $1 =~ [1-9] ]]; }
for v in LOGIN_SECONDS LOGIN_CONCURRENCY LOGIN_USERS DURATION ROUNDS THREADS; do
    is_posint "${!v}" || die "$v must be a positive integer (got '${!v}')"
    printf -v "$v" '%d' "$(( 10#${!v} ))"   # strip leading zeros (no octal surprises)
done
read -r -a CONN_LIST <<<"$CONNS"
(( ${#CONN_LIST[@]} > 0 )) || die "CONNS is empty"
for i in "${!CONN_LIST[@]}"; do
    c=${CONN_LIST[i]}
    is_posint "$c" || die "CONNS entries must be positive integers (got '$c')"
    c=$(( 10#$c )); CONN_LIST[i]=$c
    (( c >= THREADS )) || die "each CONNS entry must be >= THREADS ($c < $THREADS)"
done

for tool in nginx wrk curl timeout awk node python3; do
    command -v "$tool" >/dev/null 2>&1 || die "required tool not found: $tool"
done
[[ -x $JG_BIN ]] || die "journeygate binary not found or not executable: $JG_BIN (build it first or set JG_BIN)"
[[ -f $DRIVER ]] || die "driver not found: $DRIVER"
[[ -d $PEERS_DIR/node_modules/oidc-provider ]] \
    || die "oidc-provider is not installed: run (cd tests/peers && npm ci) first"

ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

# the temp dir and the servers started (bench/lib.sh): all stopped and removed on exit
bench_tmp "${TMPDIR:-/tmp}" jg-signin

# curl_check LABEL EXPECT_CUSTOMER(yes|no) URL [HEADER]: 200 "hello", and the upstream saw
# an X-Customer-Id (yes) or none (no)
curl_check() {
    local label=$1 expect=$2 url=$3 header=${4:-} out status seen
    local -a hdr=()
    [[ -n $header ]] && hdr=(-H "$header")
    out=$(curl -sS --max-time 5 -D - "${hdr[@]}" "$url" 2>&1) || die "$label: request to $url failed: $out"
    status=$(printf '%s\n' "$out" | awk 'NR == 1 { print $2 }')
    seen=$(printf '%s\n' "$out" | tr -d '\r' | awk 'tolower($1) == "x-seen-customer-id:" { print $2 }')
    [[ $status == 200 && $out == *hello ]] || die "$label: expected 200 hello from $url, got: $(printf '%s' "$out" | head -c 400)"
    if [[ $expect == yes && -z $seen ]]; then die "$label: the upstream saw no X-Customer-Id"; fi
    if [[ $expect == no && -n $seen ]]; then die "$label: the upstream saw X-Customer-Id '$seen'"; fi
    return 0
}

# api_status URL [HEADER]: the HTTP status of an API-style request (Accept: application/json,
# so an unauthenticated one gets 401 rather than a redirect to the sign-in page)
api_status() {
    local url=$1 header=${2:-}
    local -a hdr=(-H 'Accept: application/json')
    [[ -n $header ]] && hdr+=(-H "$header")
    curl -s -o /dev/null -w '%{http_code}' --max-time 5 "${hdr[@]}" "$url" || true
}

# assertion_seen LABEL URL [HEADER]: 200 "hello" from a URL ending in /assert; prints the
# X-Identity-Assertion the upstream received (nothing when there was none). Use as
# tok=$(assertion_seen ...) || exit 1 (die only leaves the command substitution).
assertion_seen() {
    local label=$1 url=$2 header=${3:-} out status
    local -a hdr=()
    [[ -n $header ]] && hdr=(-H "$header")
    out=$(curl -sS --max-time 5 -D - "${hdr[@]}" "$url" 2>&1) || die "$label: request to $url failed: $out"
    status=$(printf '%s\n' "$out" | awk 'NR == 1 { print $2 }')
    [[ $status == 200 && $out == *hello ]] || die "$label: expected 200 hello from $url, got: $(printf '%s' "$out" | head -c 400)"
    printf '%s\n' "$out" | tr -d '\r' | awk 'tolower($1) == "x-seen-assertion:" { print $2 }'
}

# check_assertion LABEL TOKEN ROUTE: TOKEN is a compact ES256 JWS for this customer, route and
# upstream, living at most 60 s (the signature itself is checked by the integration tests);
# prints a one-line summary
check_assertion() {
    local label=$1 tok=$2 route=$3 summary
    [[ -n $tok ]] || die "$label: the upstream received no X-Identity-Assertion"
    summary=$(python3 - "$tok" "$route" "$CUSTOMER" 2>&1 <<'PY_EOF'
import base64, json, sys
tok, route, customer = sys.argv[1:4]
def part(s):
    return json.loads(base64.urlsafe_b64decode(s + "=" * (-len(s) % 4)))
try:
    h, p, sig = tok.split(".")
    hdr, cl = part(h), part(p)
except Exception as e:
    sys.exit("not a compact JWS (%s)" % e)
life = cl.get("exp", 0) - cl.get("iat", 0)
probs = ["%s is %r, expected %r" % (k, v, want) for k, v, want in (
    ("alg", hdr.get("alg"), "ES256"), ("route", cl.get("route"), route),
    ("customer_id", cl.get("customer_id"), customer), ("aud", cl.get("aud"), "up")) if v != want]
if not 0 < life <= 60:
    probs.append("exp - iat is %r s" % life)
if len(sig) != 86:
    probs.append("signature of %d characters, not 86 (64 bytes)" % len(sig))
if probs:
    sys.exit("; ".join(probs))
print("%d bytes, alg ES256, lifetime %d s" % (len(tok), life))
PY_EOF
    ) || die "$label: bad X-Identity-Assertion: $summary"
    printf '%s\n' "$summary"
}

# ---------------------------------------------------------------------------
# configs and startup
# ---------------------------------------------------------------------------
free_port; UP_PORT=$FREE_PORT
free_port; NGX_PORT=$FREE_PORT
free_port; JG_PORT=$FREE_PORT
free_port; OP_PORT=$FREE_PORT
GW_URL="http://127.0.0.1:$JG_PORT"
OP_URL="http://127.0.0.1:$OP_PORT"
USER_LINE=$(nginx_user_line)

mkdir -p "$BENCH_TMP/upstream" "$BENCH_TMP/nginx-proxy"

# The upstream echoes the X-Customer-Id it received (nginx adds no header for an empty
# value): that is how the driver knows a login really reached the upstream signed in.
# Paths ending in /assert (sanity checks only, never measured) also echo the
# X-Identity-Assertion, so that wrk's responses stay the same size on every target.
cat >"$BENCH_TMP/upstream/nginx.conf" <<EOF
$USER_LINE
daemon off;
worker_processes $UPSTREAM_WORKERS;
pid "$BENCH_TMP/upstream/nginx.pid";
error_log "$BENCH_TMP/upstream/error.log" warn;
events { worker_connections 4096; }
http {
    access_log off;
$(nginx_temp_dirs "$BENCH_TMP/upstream")
    keepalive_timeout 65s;
    keepalive_requests 10000000;
    server {
        listen 127.0.0.1:$UP_PORT;
        location / {
            default_type text/plain;
            add_header X-Seen-Customer-Id \$http_x_customer_id;
            add_header X-Seen-Request-Length \$request_length;
            return 200 "hello\n";
        }
        location ~ "/assert\$" {
            default_type text/plain;
            add_header X-Seen-Customer-Id \$http_x_customer_id;
            add_header X-Seen-Assertion \$http_x_identity_assertion;
            return 200 "hello\n";
        }
    }
}
EOF

nginx_proxy_conf "$BENCH_TMP/nginx-proxy" "$NGX_PORT" "$UP_PORT" "$NGINX_PROXY_WORKERS" "$USER_LINE" \
    >"$BENCH_TMP/nginx-proxy/nginx.conf"

# The 20-rule policy of /policy: 19 rules that do not match the benchmark's customer (provider
# idp, verified email at example.com, no Workspace hd, one linked identity, channel web, GET),
# then the one rule that allows any signed-in customer. /first19 has the first 19 rules only,
# so a 403 there proves that none of them matches (and a 200 on /policy that none denies).
# "fb" (a provider nobody signs in with; Facebook providers fetch nothing at start) and the
# "mobile" route exist so that every name the rules use is a configured one.
BLOCKED_FILE="$BENCH_TMP/blocked-emails.txt"
{
    printf '# bench: addresses refused by policy twenty_rules (none of them signs in)\n'
    for (( i = 0; i < 1000; i++ )); do printf 'blocked%d@example.net\n' "$i"; done
} >"$BLOCKED_FILE"
FIRST19_RULES=(
    '{"deny":{"providers":["fb"]}}'
    '{"deny":{"channels":["mobile"]}}'
    '{"deny":{"methods":["DELETE"]}}'
    '{"deny":{"email_verified":false}}'
    '{"deny":{"email_domain":["blocked.example","spam.example"]}}'
    "{\"deny\":{\"emails_file\":$(json_str "$BLOCKED_FILE")}}"
    '{"deny":{"hd":["evil.example"]}}'
    '{"deny":{"providers":["idp"],"methods":["PUT","PATCH","POST"]}}'
    '{"deny":{"channels":["mobile"],"methods":["GET","HEAD"]}}'
    '{"allow":{"signed_in":false,"methods":["OPTIONS"]}}'
    '{"allow":{"hd":["example.com"]}}'
    '{"allow":{"min_linked_providers":5}}'
    '{"allow":{"providers":["fb"],"channels":["web"]}}'
    '{"allow":{"providers":["idp"],"min_linked_providers":5}}'
    '{"allow":{"email_domain":["staff.example","partners.example"]}}'
    '{"allow":{"providers":["idp"],"hd":["example.com"],"email_domain":["example.com"]}}'
    '{"allow":{"channels":["mobile"],"providers":["idp"]}}'
    '{"allow":{"providers":["fb"],"max_session_age_s":300}}'
    '{"allow":{"methods":["DELETE"],"email_verified":true}}'
)
LAST_RULE='{"allow":{"signed_in":true}}'
(( ${#FIRST19_RULES[@]} == 19 )) || die "internal: expected 19 non-matching rules, have ${#FIRST19_RULES[@]}"
join_rules() { local IFS=,; printf '%s' "$*"; }
POLICY_RULES_JSON="[$(join_rules "${FIRST19_RULES[@]}" "$LAST_RULE")]"
FIRST19_RULES_JSON="[$(join_rules "${FIRST19_RULES[@]}")]"
# The same cost for a request without a session: an auth "none" route with a 20-rule policy whose
# first 19 rules do not match an anonymous GET on the web channel and whose last allows GET/HEAD.
# /pub19 has the first 19 only (an anonymous GET there must be refused: none of them allows it).
# the same 19 rules, but "deny unverified email" (which an anonymous request matches) becomes a deny of PUT/PATCH
PUB19_RULES=("${FIRST19_RULES[@]}")
[[ ${PUB19_RULES[3]} == '{"deny":{"email_verified":false}}' ]] || die "internal: FIRST19_RULES[3] changed"
PUB19_RULES[3]='{"deny":{"methods":["PUT","PATCH"]}}'
(( ${#PUB19_RULES[@]} == 19 )) || die "internal: expected 19 public non-matching rules, have ${#PUB19_RULES[@]}"
PUB_LAST_RULE='{"allow":{"methods":["GET","HEAD"]}}'
PUB_RULES_JSON="[$(join_rules "${PUB19_RULES[@]}" "$PUB_LAST_RULE")]"
PUB19_RULES_JSON="[$(join_rules "${PUB19_RULES[@]}")]"

cat >"$BENCH_TMP/jg.json" <<EOF
{"listen":[{"address":"127.0.0.1","port":$JG_PORT}],"public_url":"$GW_URL","threads":$JG_THREADS,"access_log":null,
 "store":{"path":$(json_str "$BENCH_TMP/store")},
 "upstreams":{"up":{"url":"http://127.0.0.1:$UP_PORT","timeout_s":30,"keepalive_s":30}},
 "providers":{"idp":{"type":"google","client_id":"$CLIENT_ID","client_secret":"$CLIENT_SECRET",
                     "issuer":"$OP_URL","insecure_http":true},
              "fb":{"type":"facebook","app_id":"jg-bench-unused","app_secret":"jg-bench-unused-secret"}},
 "policies":{"signed_in":{"rules":[$LAST_RULE]},
             "twenty_rules":{"description":"bench: 19 rules that do not match, then allow signed-in","rules":$POLICY_RULES_JSON},
             "first19":{"description":"bench: the first 19 rules of twenty_rules only","rules":$FIRST19_RULES_JSON},
             "twenty_public":{"description":"bench: 19 rules that do not match an anonymous GET, then allow GET","rules":$PUB_RULES_JSON},
             "pub19":{"description":"bench: the first 19 rules of twenty_public only","rules":$PUB19_RULES_JSON}},
 "routes":[{"name":"app","match":{"path_prefix":"/app"},"upstream":"up","channel":"web","auth":"session","policy":"signed_in"},
           {"name":"open","match":{"path_prefix":"/open"},"upstream":"up","channel":"web","auth":"none"},
           {"name":"policy","match":{"path_prefix":"/policy"},"upstream":"up","channel":"web","auth":"session","policy":"twenty_rules"},
           {"name":"first19","match":{"path_prefix":"/first19"},"upstream":"up","channel":"web","auth":"session","policy":"first19"},
           {"name":"pubpolicy","match":{"path_prefix":"/pubpolicy"},"upstream":"up","channel":"web","auth":"none","policy":"twenty_public"},
           {"name":"pub19","match":{"path_prefix":"/pub19"},"upstream":"up","channel":"web","auth":"none","policy":"pub19"},
           {"name":"mobile","match":{"path_prefix":"/mobile"},"upstream":"up","channel":"mobile","auth":"none"}],
 "limits":{"max_connections":20000,"auth_rate_per_minute":1000000,"auth_burst":1000000}}
EOF
check_jg_config

start_nginx "upstream" "$BENCH_TMP/upstream/nginx.conf"
UP_PID=$STARTED_PID
wait_listen "nginx upstream" "$UP_PID" "$UP_PORT" "$BENCH_TMP/upstream/error.log"

start_nginx "nginx-proxy" "$BENCH_TMP/nginx-proxy/nginx.conf"
NGX_PID=$STARTED_PID
wait_listen "nginx-proxy" "$NGX_PID" "$NGX_PORT" "$BENCH_TMP/nginx-proxy/error.log"

start_google_op "$OP_PORT" "$CLIENT_ID" "$CLIENT_SECRET" "$GW_URL/.auth/login/idp/callback"
start_journeygate "$JG_PORT"

check_all_alive() {
    check_alive "nginx upstream" "$UP_PID" "$BENCH_TMP/upstream/error.log"
    check_alive "nginx-proxy" "$NGX_PID" "$BENCH_TMP/nginx-proxy/error.log"
    check_alive "google-op" "$OP_PID" "$OP_LOG"
    check_alive "journeygate" "$JG_PID" "$JG_LOG"
}

wait_provider_ready "$GW_URL/.auth/login/idp"

curl_check "nginx-proxy" no "http://127.0.0.1:$NGX_PORT/open"
curl_check "journeygate /open" no "$GW_URL/open"
curl_check "journeygate /open (forged X-Customer-Id)" no "$GW_URL/open" "X-Customer-Id: c_forged"
curl_check "journeygate /pubpolicy (anonymous, 20-rule policy)" no "$GW_URL/pubpolicy"
code=$(api_status "$GW_URL/pub19")
[[ $code == 401 ]] || die "journeygate /pub19 (the first 19 rules of /pubpolicy's policy), anonymous: expected 401, got $code (one of the 19 rules matches)"
for path in /app /policy /first19; do
    code=$(api_status "$GW_URL$path")
    [[ $code == 401 ]] || die "journeygate $path without a session: expected 401, got $code"
done
forged=$(assertion_seen "journeygate /open (forged X-Identity-Assertion)" "$GW_URL/open/assert" \
    "X-Identity-Assertion: eyJhbGciOiJub25lIn0.e30.") || exit 1
[[ -z $forged ]] || die "journeygate /open: the upstream received a client's X-Identity-Assertion '$forged'"

log "== journeygate sign-in benchmark =="
log "cores: $(nproc)   nginx: $(nginx -v 2>&1 | sed 's/^nginx version: //')   wrk: $(wrk -v 2>&1 | awk 'NR == 1 { print $2 }')   node: $(node --version)   $(python3 --version)"
log "upstream:    nginx worker_processes $UPSTREAM_WORKERS on 127.0.0.1:$UP_PORT (pid $UP_PID)"
log "nginx-proxy: nginx worker_processes $NGINX_PROXY_WORKERS on 127.0.0.1:$NGX_PORT (pid $NGX_PID)"
log "OP:          tests/peers/google-op.mjs (oidc-provider $(sed -n 's/^ *"version": *"\([^"]*\)".*/\1/p' "$PEERS_DIR/node_modules/oidc-provider/package.json" | head -n 1)) on $OP_URL (pid $OP_PID)"
log "journeygate: \"threads\": $JG_THREADS on $GW_URL ($JG_BIN, pid $JG_PID)"
log "config:      check-config: $(sed -n 's/^.*: ok /ok /p' "$BENCH_TMP/check-config.out" | head -n 1)"
log "note: the driver, wrk, the OP, the upstream and the gateway all share the same $(nproc) core(s)."
log ""

# ---------------------------------------------------------------------------
# part 1: logins
# ---------------------------------------------------------------------------
FAILED=0
log "== part 1: browser logins, ${LOGIN_SECONDS}s with $LOGIN_CONCURRENCY concurrent browsers =="
log "flow: GET /.auth/login/idp?login_hint=userN@example.com&return_to=/app -> OP /auth -> /interaction"
log "      -> /auth/<uid> -> /.auth/login/idp/callback -> 302 /app -> upstream (must see X-Customer-Id)"
if ! run_fg timeout --kill-after=5 $(( LOGIN_SECONDS + 180 )) \
        python3 "$DRIVER" run --gateway "$GW_URL" --seconds "$LOGIN_SECONDS" \
        --concurrency "$LOGIN_CONCURRENCY" --users "$LOGIN_USERS" \
        --proc "journeygate=$JG_PID" --proc "OP (node)=$OP_PID" --proc "nginx upstream=$UP_PID" \
        --op-name "OP (node)" --gateway-name journeygate </dev/null; then
    log "part 1: FAILED (failed logins, see above)"
    FAILED=1
fi
check_all_alive

# ---------------------------------------------------------------------------
# part 2: proxied requests with and without a session
# ---------------------------------------------------------------------------
log ""
log "== part 2: proxied requests/s: signed-in (1-rule and 20-rule policies) vs unauthenticated vs nginx =="
login_out=$(timeout 60 python3 "$DRIVER" login --gateway "$GW_URL" --email "wrk@example.com" </dev/null) \
    || die "the login for the wrk session failed"
read -r _ TOKEN _ CUSTOMER _ <<<"$login_out"
[[ $TOKEN =~ ^[A-Za-z0-9_-]+$ ]] || die "unexpected session token from the driver: '$login_out'"
COOKIE="Cookie: jg_session=$TOKEN"
curl_check "journeygate /app (session)" yes "$GW_URL/app" "$COOKIE"
curl_check "journeygate /policy (session)" yes "$GW_URL/policy" "$COOKIE"
code=$(api_status "$GW_URL/first19" "$COOKIE")
[[ $code == 403 ]] \
    || die "journeygate /first19 (the first 19 rules of /policy's policy) with a session: expected 403, got $code (one of the 19 rules matches this customer)"
tok=$(assertion_seen "journeygate /app/assert (session)" "$GW_URL/app/assert" "$COOKIE") || exit 1
ASSERT_APP=$(check_assertion "journeygate /app" "$tok" app) || exit 1
tok=$(assertion_seen "journeygate /policy/assert (session)" "$GW_URL/policy/assert" "$COOKIE") || exit 1
ASSERT_POLICY=$(check_assertion "journeygate /policy" "$tok" policy) || exit 1
# jg-openpad: an anonymous /open carrying as many extra header bytes as a signed-in /app
# delivers to the upstream (identity headers and assertion): what those bytes cost by themselves
upstream_length() {
    local -a hdr=()
    [[ -n ${2:-} ]] && hdr=(-H "$2")
    curl -sS --max-time 5 -D - -o /dev/null "${hdr[@]}" "$1" | tr -d '\r' \
        | awk 'tolower($1) == "x-seen-request-length:" { print $2 }'
}
len_app=$(upstream_length "$GW_URL/app" "$COOKIE")
len_open=$(upstream_length "$GW_URL/open")
[[ $len_app =~ ^[0-9]+$ && $len_open =~ ^[0-9]+$ ]] || die "the upstream did not report request lengths ('$len_app', '$len_open')"
PAD_BYTES=$(( len_app + 1 - len_open ))   # + 1: "/app" is one byte shorter than "/open"
(( PAD_BYTES > 9 )) || die "a signed-in request adds only $PAD_BYTES bytes upstream?"
PAD_HEADER="X-Pad: $(printf '%*s' $(( PAD_BYTES - 9 )) '' | tr ' ' p)"   # 9: "X-Pad: " and CRLF
len_pad=$(upstream_length "$GW_URL/open" "$PAD_HEADER")
(( len_pad == len_app + 1 )) || die "the padded /open reaches the upstream with $len_pad bytes, /app with $len_app"
log "upstream request: /open $len_open bytes, /app (signed in) $len_app bytes; jg-openpad sends /open with a $PAD_BYTES-byte X-Pad header"
log "session: one real login as wrk@example.com -> customer $CUSTOMER; wrk sends '-H \"Cookie: jg_session=<token>\"' to /app and /policy"
log "policy twenty_rules: ${#FIRST19_RULES[@]} rules that do not match this customer (403 on /first19, which has only those), then $LAST_RULE"
log "X-Identity-Assertion seen by the upstream: /app $ASSERT_APP; /policy $ASSERT_POLICY"
log "  (signed per session and route, reused for half its life: part of what jg-app and jg-policy cost)"
log "targets: nginx = nginx-proxy /open; jg-open = journeygate /open (auth none); jg-openpad = the same with X-Pad;"
log "         jg-app = journeygate /app (auth session + 1-rule policy); jg-policy = journeygate /policy (auth session + 20-rule policy, the last allows)"
log "wrk: -t$THREADS, ${DURATION}s per run, $ROUNDS round(s), connections: ${CONN_LIST[*]}; order alternates every round"

declare -A RPS_OF P99_OF   # key: "target conns" -> space separated per-round values
TARGETS=(nginx jg-open jg-openpad jg-pubpol jg-app jg-policy)

# CPU time so far (user + system, clock ticks, from /proc/PID/stat) of the gateway, and of the
# upstream nginx (its master and worker processes: the workers parse what the gateway sends)
jg_ticks() { awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$JG_PID/stat"; }
up_ticks() {
    local p sum=0
    for p in "$UP_PID" $(pgrep -P "$UP_PID" || true); do
        sum=$(( sum + $(awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$p/stat" 2>/dev/null || echo 0) ))
    done
    echo "$sum"
}
declare -A CPU_OF UPCPU_OF  # key: "target conns" -> space separated per-round CPU us per request

run_one() {
    local which=$1 conns=$2 round=$3 url header="" t0 t1 u0 u1
    case $which in
        nginx)   url="http://127.0.0.1:$NGX_PORT/open" ;;
        jg-open) url="$GW_URL/open" ;;
        jg-openpad) url="$GW_URL/open"; header=$PAD_HEADER ;;
        jg-pubpol) url="$GW_URL/pubpolicy" ;;
        jg-app)  url="$GW_URL/app"; header=$COOKIE ;;
        jg-policy) url="$GW_URL/policy"; header=$COOKIE ;;
    esac
    t0=$(jg_ticks) u0=$(up_ticks)
    if run_wrk "$which c=$conns r=$round" "$url" "$conns" "$DURATION" \
            "$BENCH_TMP/wrk-$which-c$conns-r$round.txt" "$header"; then
        t1=$(jg_ticks) u1=$(up_ticks)
        CPU_US=$(awk -v d=$(( t1 - t0 )) -v hz="$(getconf CLK_TCK)" -v n="$REQS" 'BEGIN { printf "%.2f", d / hz * 1e6 / n }')
        UP_US=$(awk -v d=$(( u1 - u0 )) -v hz="$(getconf CLK_TCK)" -v n="$REQS" 'BEGIN { printf "%.2f", d / hz * 1e6 / n }')
        CPU_OF["$which $conns"]+="$CPU_US "
        UPCPU_OF["$which $conns"]+="$UP_US "
        printf '  c=%-5s round %d  %-8s %12.1f req/s   p99 %9.3f ms   gateway CPU %6.2f us/request   upstream %5.2f\n' \
            "$conns" "$round" "$which" "$RPS" "$P99_MS" "$CPU_US" "$UP_US"
        RPS_OF["$which $conns"]+="$RPS "
        P99_OF["$which $conns"]+="$P99_MS "
    else
        FAILED=1
    fi
    check_all_alive
    sleep 1
}

for conns in "${CONN_LIST[@]}"; do
    for (( round = 1; round <= ROUNDS; round++ )); do
        # jg-open sits between the two it is compared with most closely (jg-pubpol, jg-policy), and
        # jg-app next to jg-openpad, so those ratios compare neighbouring runs; odd and even rounds
        # run in reverse order
        if (( round % 2 == 1 )); then order=(nginx jg-openpad jg-app jg-pubpol jg-open jg-policy); else order=(jg-policy jg-open jg-pubpol jg-app jg-openpad nginx); fi
        for which in "${order[@]}"; do
            run_one "$which" "$conns" "$round"
        done
    done
done

log ""
log "== results (median of $ROUNDS round(s), ${DURATION}s each) =="
meets() { awk -v r="$1" -v t="$2" 'BEGIN { print ((r + 0 >= t + 0) ? "yes" : "NO") }'; }
RPS_LINES=() P99_LINES=() TARGET_LINES=()
for conns in "${CONN_LIST[@]}"; do
    declare -A MED=() MEDP=()
    missing=0
    for t in "${TARGETS[@]}"; do
        read -r -a vals <<<"${RPS_OF["$t $conns"]:-}"
        read -r -a p99s <<<"${P99_OF["$t $conns"]:-}"
        if (( ${#vals[@]} == 0 )); then missing=1; continue; fi
        MED[$t]=$(median "${vals[@]}")
        MEDP[$t]=$(median "${p99s[@]}")
    done
    if (( missing )); then
        RPS_LINES+=("$(printf '%-6s %s' "$conns" "n/a (runs failed)")")
        continue
    fi
    r_app_open=$(ratio "${MED[jg-app]}" "${MED[jg-open]}")
    r_pol_open=$(ratio "${MED[jg-policy]}" "${MED[jg-open]}")
    RPS_LINES+=("$(printf '%-6s %12.1f %12.1f %12.1f %12.1f %9s %11s %10s %9s %9s %10s' "$conns" \
        "${MED[nginx]}" "${MED[jg-open]}" "${MED[jg-app]}" "${MED[jg-policy]}" \
        "$r_app_open" "$r_pol_open" "$(ratio "${MED[jg-policy]}" "${MED[jg-app]}")" \
        "$(ratio "${MED[jg-open]}" "${MED[nginx]}")" "$(ratio "${MED[jg-app]}" "${MED[nginx]}")" \
        "$(ratio "${MED[jg-policy]}" "${MED[nginx]}")")")
    P99_LINES+=("$(printf '%-6s %12.3f %12.3f %12.3f %12.3f' "$conns" \
        "${MEDP[nginx]}" "${MEDP[jg-open]}" "${MEDP[jg-app]}" "${MEDP[jg-policy]}")")
    # per round: the targets of one round ran within seconds of each other (jg-open next to
    # jg-pubpol and jg-policy), so the machine's drifts cancel
    read -r -a ov <<<"${RPS_OF["jg-open $conns"]}"
    read -r -a uv <<<"${RPS_OF["jg-pubpol $conns"]}"
    read -r -a av <<<"${RPS_OF["jg-app $conns"]}"
    read -r -a pv <<<"${RPS_OF["jg-policy $conns"]}"
    read -r -a dv <<<"${RPS_OF["jg-openpad $conns"]}"
    pu=() pa=() pp=() ppa=() pd=() pad=()
    for (( i = 0; i < ${#ov[@]} && i < ${#uv[@]} && i < ${#av[@]} && i < ${#pv[@]} && i < ${#dv[@]}; i++ )); do
        pu+=("$(ratio "${uv[$i]}" "${ov[$i]}")"); pa+=("$(ratio "${av[$i]}" "${ov[$i]}")")
        pp+=("$(ratio "${pv[$i]}" "${ov[$i]}")"); ppa+=("$(ratio "${pv[$i]}" "${av[$i]}")")
        pd+=("$(ratio "${dv[$i]}" "${ov[$i]}")"); pad+=("$(ratio "${av[$i]}" "${dv[$i]}")")
    done
    ru=$(ratio "${MED[jg-pubpol]}" "${MED[jg-open]}")
    qu=$(median "${pu[@]}") qa=$(median "${pa[@]}") qp=$(median "${pp[@]}") qpa=$(median "${ppa[@]}")
    qd=$(median "${pd[@]}") qad=$(median "${pad[@]}")
    TARGET_LINES+=("$(printf 'c=%-5s policy evaluation: pubpolicy/open %s (medians); per-round median %s %s >= %s: %s' \
        "$conns" "$ru" "$qu" "$(ci95 "${pu[@]}")" "$POLICY_RATIO_TARGET" "$(meets "$qu" "$POLICY_RATIO_TARGET")")")
    TARGET_LINES+=("$(printf 'c=%-5s policy evaluation, signed in: policy/app %s (medians); per-round median %s %s' \
        "$conns" "$(ratio "${MED[jg-policy]}" "${MED[jg-app]}")" "$qpa" "$(ci95 "${ppa[@]}")")")
    TARGET_LINES+=("$(printf 'c=%-5s being signed in: app/open %s (medians); per-round median %s %s >= %s: %s' \
        "$conns" "$r_app_open" "$qa" "$(ci95 "${pa[@]}")" "$RATIO_TARGET" "$(meets "$qa" "$RATIO_TARGET")")")
    TARGET_LINES+=("$(printf 'c=%-5s signed in + 20 rules: policy/open %s (medians); per-round median %s %s (>= %s: %s)' \
        "$conns" "$r_pol_open" "$qp" "$(ci95 "${pp[@]}")" "$POLICY_RATIO_TARGET" "$(meets "$qp" "$POLICY_RATIO_TARGET")")")
    TARGET_LINES+=("$(printf 'c=%-5s the same bytes, anonymous: openpad/open %s (medians); per-round median %s %s' \
        "$conns" "$(ratio "${MED[jg-openpad]}" "${MED[jg-open]}")" "$qd" "$(ci95 "${pd[@]}")")")
    TARGET_LINES+=("$(printf 'c=%-5s a session beyond its bytes: app/openpad %s (medians); per-round median %s %s' \
        "$conns" "$(ratio "${MED[jg-app]}" "${MED[jg-openpad]}")" "$qad" "$(ci95 "${pad[@]}")")")
    TARGET_LINES+=("$(printf 'c=%-5s per round: pubpolicy/open %s' "$conns" "${pu[*]}")")
    TARGET_LINES+=("$(printf 'c=%-5s per round: policy/app %s' "$conns" "${ppa[*]}")")
    TARGET_LINES+=("$(printf 'c=%-5s per round: app/open %s' "$conns" "${pa[*]}")")
    TARGET_LINES+=("$(printf 'c=%-5s per round: policy/open %s' "$conns" "${pp[*]}")")
    cpu_line="gateway CPU per request (median, us):"
    up_line="upstream nginx CPU per request (median, us):"
    for t in jg-open jg-openpad jg-pubpol jg-app jg-policy; do
        read -r -a cv <<<"${CPU_OF["$t $conns"]:-}"
        cpu_line+=" $t $(median "${cv[@]}")"
    done
    for t in nginx jg-open jg-openpad jg-pubpol jg-app jg-policy; do
        read -r -a cv <<<"${UPCPU_OF["$t $conns"]:-}"
        up_line+=" $t $(median "${cv[@]}")"
    done
    TARGET_LINES+=("$(printf 'c=%-5s %s' "$conns" "$cpu_line")")
    TARGET_LINES+=("$(printf 'c=%-5s %s' "$conns" "$up_line")")
done
log "req/s:"
printf '%-6s %12s %12s %12s %12s %9s %11s %10s %9s %9s %10s\n' "conns" "nginx" "jg-open" "jg-app" "jg-policy" \
    "app/open" "policy/open" "policy/app" "open/ngx" "app/ngx" "policy/ngx"
printf '%s\n' "${RPS_LINES[@]}"
if (( ${#P99_LINES[@]} > 0 )); then
    log "p99 latency (ms):"
    printf '%-6s %12s %12s %12s %12s\n' "conns" "nginx" "jg-open" "jg-app" "jg-policy"
    printf '%s\n' "${P99_LINES[@]}"
    log "targets:"
    printf '%s\n' "${TARGET_LINES[@]}"
fi
log "pubpolicy/open = a route with a 20-rule policy / a route with auth \"none\", the same anonymous GET"
log "                 (both auth none): what evaluating the policy costs (target >= $POLICY_RATIO_TARGET)"
log "policy/app     = signed in: 20 rules / 1 rule, the cost of the 19 rules that do not match"
log "app/open       = signed in (1-rule policy) / anonymous: what a session costs (target >= $RATIO_TARGET)"
log "policy/open    = signed in with the 20-rule policy / anonymous: the session's cost and the policy's together"
log "openpad/open   = anonymous with $PAD_BYTES extra header bytes (what a signed-in request adds upstream) / without"
log "app/openpad    = signed in / anonymous with those bytes: what a session costs beyond its headers' size"
log "[lo, hi]       = 95% bootstrap interval of the per-round median"
log "open/ngx, app/ngx, policy/ngx = journeygate / nginx-proxy"

# ---------------------------------------------------------------------------
# the gateway's own log
# ---------------------------------------------------------------------------
log ""
signed_in=$(grep -c '"msg":"signed in: ' "$JG_LOG" || true)
problems=$(grep -c '"level":"\(error\|warn\)"' "$JG_LOG" || true)
other=$(grep -v '"level":"\(info\|debug\)"' "$JG_LOG" | grep -vc '"level":"\(error\|warn\)"' || true)
log "journeygate stderr: $(wc -l <"$JG_LOG") lines, $signed_in \"signed in\", $problems error/warn, $other not JSON log lines"
if (( problems > 0 || other > 0 )); then
    grep -v '"level":"\(info\|debug\)"' "$JG_LOG" | sed 's/"ts":"[^"]*",//' | sort | uniq -c | sort -rn \
        | head -n 10 | sed 's/^/  /'
fi
log "journeygate RSS at the end: $(awk '/^VmRSS:/ { print $2, $3 }' "/proc/$JG_PID/status" 2>/dev/null || echo '?')"

log ""
if (( FAILED )); then
    log "RESULT: FAILED - some logins failed or wrk runs reported errors (see above)"
    exit 1
fi
log "RESULT: all logins succeeded and all wrk runs completed without errors"
exit 0
