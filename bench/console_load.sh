#!/usr/bin/env bash
# bench/console_load.sh - does the proxy's throughput move while the console is used?
#
# Topology (everything on 127.0.0.1):
#
#   wrk --> nginx-proxy (worker_processes 2) ----------\
#                                                        >--> nginx upstream (worker_processes 1)
#   wrk --> journeygate ("threads": 2, console) -------/
#              ^        \--> store seeded by console_bench (TOUCHPOINTS over CUSTOMERS, SIGNINS sign-ins)
#              |
#   console_driver.py load (CONSOLE_CLIENTS staff clients: every figure endpoint, a customer's records,
#                           the day's export), signed in to the console through google-op.mjs
#
# The store is seeded first (console_bench --seed-only: the figures' data, PROFILES of the customers as real
# records so that profile, journey and export answer). One customer signs in (wrk's session on /app, a
# signed-in route) and one staff member signs in to the console, both through the OP. Then, per round, wrk
# runs against nginx-proxy (/app, no session needed there), journeygate with the console idle, and
# journeygate while the staff clients request the console's API continuously (the order of the last two
# flips every round). Printed: req/s per run, medians, the ratio console/idle (medians and the median of the
# per-round ratios), each against nginx, the gateway's CPU time per run, and the console answers' latency
# through HTTP per endpoint (p50/p95/max) while the proxy was under load.
#
# Exit status: 0 when everything ran (whether or not the target was met); 1 when something failed (a
# server did not start or died, wrk errors, a console answer other than 200); 2 on bad usage.
# See bench/README.md "Console under load".

set -euo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$BENCH_DIR/.." && pwd)
BENCH_NAME=console_load.sh
# shellcheck source=bench/lib.sh
source "$BENCH_DIR/lib.sh"

usage() {
    cat <<'EOF'
Usage: bench/console_load.sh [options]

Options (each also settable via the environment variable in brackets):
  --jg-bin PATH           journeygate binary               [JG_BIN, default <repo>/build/journeygate]
  --console-bench PATH    the seeding program              [CONSOLE_BENCH, default <repo>/build/bench/console_bench]
  --touchpoints N         touchpoints seeded               [TOUCHPOINTS, default 1000000]
  --customers N           customers they belong to         [CUSTOMERS, default 100000]
  --signins N             sign-in audit records seeded     [SIGNINS, default 200000]
  --profiles N            customers made real records      [PROFILES, default 200]
  --clients N             concurrent staff clients         [CONSOLE_CLIENTS, default 2]
  --duration SECONDS      seconds per wrk run              [DURATION, default 10]
  --rounds N              rounds (nginx, idle, console)    [ROUNDS, default 4]
  --conns N               wrk connections                  [CONNS, default 64]
  --threads N             wrk threads                      [THREADS, default 2]
  --keep-tmp              keep the temp dir                [KEEP_TMP=1]
  -h, --help              show this help
EOF
}

JG_BIN=${JG_BIN:-$ROOT/build/journeygate}
CONSOLE_BENCH=${CONSOLE_BENCH:-$ROOT/build/bench/console_bench}
TOUCHPOINTS=${TOUCHPOINTS:-1000000}
CUSTOMERS=${CUSTOMERS:-100000}
SIGNINS=${SIGNINS:-200000}
PROFILES=${PROFILES:-200}
CONSOLE_CLIENTS=${CONSOLE_CLIENTS:-2}
DURATION=${DURATION:-10}
ROUNDS=${ROUNDS:-4}
CONNS=${CONNS:-64}
THREADS=${THREADS:-2}
KEEP_TMP=${KEEP_TMP:-0}

readonly UPSTREAM_WORKERS=1
readonly NGINX_PROXY_WORKERS=2
readonly JG_THREADS=2
readonly DAYS=35
readonly START_TIMEOUT_S=30   # the gateway opens a large store
readonly STOP_TIMEOUT_S=10
readonly OP_START_TIMEOUT_S=20
readonly READY_TIMEOUT_S=20
readonly FIGURES_TIMEOUT_S=300  # the first snapshot of a large store
readonly BYTES_PER_TOUCHPOINT=400
readonly CLIENT_ID=jg-console-bench
readonly CLIENT_SECRET=jg-console-bench-secret-0123456789
PEERS_DIR="$ROOT/tests/peers"
DRIVER="$BENCH_DIR/console_driver.py"
SIGNIN_DRIVER="$BENCH_DIR/signin_driver.py"

need_arg() { [[ $# -ge 2 ]] || { printf 'console_load.sh: option %s needs an argument\n' "$1" >&2; exit 2; }; }
while [[ $# -gt 0 ]]; do
    case $1 in
        --jg-bin)        need_arg "$@"; JG_BIN=$2; shift 2 ;;
        --console-bench) need_arg "$@"; CONSOLE_BENCH=$2; shift 2 ;;
        --touchpoints)   need_arg "$@"; TOUCHPOINTS=$2; shift 2 ;;
        --customers)     need_arg "$@"; CUSTOMERS=$2; shift 2 ;;
        --signins)       need_arg "$@"; SIGNINS=$2; shift 2 ;;
        --profiles)      need_arg "$@"; PROFILES=$2; shift 2 ;;
        --clients)       need_arg "$@"; CONSOLE_CLIENTS=$2; shift 2 ;;
        --duration)      need_arg "$@"; DURATION=$2; shift 2 ;;
        --rounds)        need_arg "$@"; ROUNDS=$2; shift 2 ;;
        --conns)         need_arg "$@"; CONNS=$2; shift 2 ;;
        --threads)       need_arg "$@"; THREADS=$2; shift 2 ;;
        --keep-tmp)      KEEP_TMP=1; shift ;;
        -h|--help)       usage; exit 0 ;;
        *)               usage >&2; printf 'console_load.sh: unknown argument %s\n' "$1" >&2; exit 2 ;;
    esac
done
for pair in "TOUCHPOINTS=$TOUCHPOINTS" "CUSTOMERS=$CUSTOMERS" "SIGNINS=$SIGNINS" "PROFILES=$PROFILES" \
    "CONSOLE_CLIENTS=$CONSOLE_CLIENTS" "DURATION=$DURATION" "ROUNDS=$ROUNDS" "CONNS=$CONNS" "THREADS=$THREADS"; do
    [[ ${pair#*=} =~ ^[0-9]{1,11}$ ]] || { printf 'console_load.sh: %s must be a non-negative integer\n' "$pair" >&2; exit 2; }
done
TOUCHPOINTS=$(( 10#$TOUCHPOINTS )); CUSTOMERS=$(( 10#$CUSTOMERS )); SIGNINS=$(( 10#$SIGNINS ))
PROFILES=$(( 10#$PROFILES )); CONSOLE_CLIENTS=$(( 10#$CONSOLE_CLIENTS )); DURATION=$(( 10#$DURATION ))
ROUNDS=$(( 10#$ROUNDS )); CONNS=$(( 10#$CONNS )); THREADS=$(( 10#$THREADS ))
(( PROFILES >= 1 && PROFILES <= CUSTOMERS )) || { echo 'console_load.sh: PROFILES must be in 1..CUSTOMERS' >&2; exit 2; }
(( CONSOLE_CLIENTS >= 1 && DURATION >= 1 && ROUNDS >= 1 && CONNS >= THREADS && THREADS >= 1 )) \
    || { echo 'console_load.sh: CONSOLE_CLIENTS, DURATION, ROUNDS, THREADS must be positive, CONNS >= THREADS' >&2; exit 2; }

for tool in nginx wrk curl timeout awk node python3; do
    command -v "$tool" >/dev/null 2>&1 || die "required tool not found: $tool"
done
[[ -x $JG_BIN ]] || die "journeygate binary not found: $JG_BIN (cmake --build build)"
[[ -x $CONSOLE_BENCH ]] || die "console_bench not found: $CONSOLE_BENCH (cmake --build build --target console_bench)"
[[ -d $PEERS_DIR/node_modules/oidc-provider ]] || die "tests/peers/node_modules missing: cd tests/peers && npm ci"
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

TMP_PARENT=${TMPDIR:-/tmp}
avail_kb=$(df -Pk "$TMP_PARENT" | awk 'NR == 2 { print $4 }')
need_kb=$(( TOUCHPOINTS * BYTES_PER_TOUCHPOINT / 1024 + 65536 ))
(( avail_kb >= need_kb )) || die "$TMP_PARENT has $(( avail_kb / 1024 )) MB free; about $(( need_kb / 1024 )) MB are needed"
MAP_MB=$(( need_kb / 1024 * 2 + 1024 ))

bench_tmp "$TMP_PARENT" jg-console-load

# the CPU seconds (user + system) a process used so far, from /proc/PID/stat
cpu_s() {
    awk -v tck="$(getconf CLK_TCK)" '{ sub(/^.*\) /, ""); print ($12 + $13) / tck }' "/proc/$1/stat" 2>/dev/null || echo 0
}
loadavg() { cut -d' ' -f1-3 /proc/loadavg; }
# the CPU seconds of a process's threads so far, summed by nice value: "n0=S n5=S n10=S" (the event loops and
# workers run at nice 0, the touchpoint writer at 5, the analytics' builder and query threads at 10)
cpu_by_nice() {
    awk -v tck="$(getconf CLK_TCK)" '{ sub(/^.*\) /, ""); s[$17] += ($12 + $13) / tck }
        END { for (n in s) printf "n%s=%.2f ", n, s[n] }' /proc/"$1"/task/*/stat 2>/dev/null || true
}
# nice0_us "BEFORE" "AFTER" REQUESTS: the nice-0 threads' CPU (event loops, shared workers) per proxied request, µs
nice0_us() {
    awk -v a="$1" -v b="$2" -v r="$3" 'BEGIN {
        n = split(a, x, " "); for (i = 1; i <= n; i++) { split(x[i], kv, "="); if (kv[1] == "n0") p = kv[2] }
        n = split(b, y, " "); for (i = 1; i <= n; i++) { split(y[i], kv, "="); if (kv[1] == "n0") q = kv[2] }
        if (r > 0) printf "%.1f", (q - p) * 1e6 / r; else print "nan" }'
}
# the machine's busy CPU seconds so far (all cores, every process: ours and anyone else's), from /proc/stat
machine_busy_s() {
    awk -v tck="$(getconf CLK_TCK)" '$1 == "cpu" { print ($2 + $3 + $4 + $7 + $8) / tck; exit }' /proc/stat
}
# nice_delta "BEFORE" "AFTER": the difference per nice value, "nice 0: S, nice 10: S"
nice_delta() {
    awk -v a="$1" -v b="$2" 'BEGIN {
        n = split(a, x, " "); for (i = 1; i <= n; i++) { split(x[i], kv, "="); before[kv[1]] = kv[2] }
        n = split(b, y, " "); out = ""
        for (i = 1; i <= n; i++) { split(y[i], kv, "="); d = kv[2] - before[kv[1]]
            if (d >= 0.005) out = out sprintf("%snice %s %.2f", out == "" ? "" : ", ", substr(kv[1], 2), d) }
        print out }'
}

log "console_load.sh: $(date -u '+%Y-%m-%d %H:%M:%S UTC'), commit $(bench_commit "$ROOT"), $(nproc) cores, load average $(loadavg)"

# ---------------------------------------------------------------------------
# the store
# ---------------------------------------------------------------------------
log "seeding $TOUCHPOINTS touchpoints over $CUSTOMERS customers ($DAYS days, $SIGNINS sign-ins, $PROFILES real customer records)..."
t0=$(date +%s)
run_fg timeout --kill-after=10 1800 "$CONSOLE_BENCH" --dir "$BENCH_TMP/store" --seed-only \
    --touchpoints "$TOUCHPOINTS" --customers "$CUSTOMERS" --days "$DAYS" --signins "$SIGNINS" \
    --profiles "$PROFILES" --profiles-out "$BENCH_TMP/profiles.txt" --map-mb "$MAP_MB" \
    >"$BENCH_TMP/seed.log" 2>&1 || { tail -n 20 "$BENCH_TMP/seed.log" >&2; die "seeding failed"; }
log "  $(grep '^seeded:' "$BENCH_TMP/seed.log") (script: $(( $(date +%s) - t0 )) s); store $(du -sh "$BENCH_TMP/store" | awk '{ print $1 }')"

# ---------------------------------------------------------------------------
# servers
# ---------------------------------------------------------------------------
free_port; UP_PORT=$FREE_PORT
free_port; NGX_PORT=$FREE_PORT
free_port; JG_PORT=$FREE_PORT
free_port; OP_PORT=$FREE_PORT
GW_URL="http://127.0.0.1:$JG_PORT"
OP_URL="http://127.0.0.1:$OP_PORT"
USER_LINE=$(nginx_user_line)
mkdir -p "$BENCH_TMP/upstream" "$BENCH_TMP/nginx-proxy"

# the upstream echoes the X-Customer-Id it received: signin_driver.py's login checks it
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
            return 200 "hello\n";
        }
    }
}
EOF

nginx_proxy_conf "$BENCH_TMP/nginx-proxy" "$NGX_PORT" "$UP_PORT" "$NGINX_PROXY_WORKERS" "$USER_LINE" \
    >"$BENCH_TMP/nginx-proxy/nginx.conf"

# staff: anyone signing in with an email at staff.example, all three roles
cat >"$BENCH_TMP/jg.json" <<EOF
{"listen":[{"address":"127.0.0.1","port":$JG_PORT}],"public_url":"$GW_URL","threads":$JG_THREADS,"access_log":null,
 "store":{"path":$(json_str "$BENCH_TMP/store"),"map_size_mb":$MAP_MB},
 "upstreams":{"up":{"url":"http://127.0.0.1:$UP_PORT","timeout_s":30,"keepalive_s":30}},
 "providers":{"idp":{"type":"google","client_id":"$CLIENT_ID","client_secret":"$CLIENT_SECRET",
                     "issuer":"$OP_URL","insecure_http":true}},
 "policies":{"signed_in":{"rules":[{"allow":{"signed_in":true}}]},
             "staff":{"description":"bench: console staff","rules":[{"allow":{"email_domain":["staff.example"]}}]}},
 "console":{"roles":{"marketer":"staff","security":"staff","admin":"staff"}},
 "routes":[{"name":"app","match":{"path_prefix":"/app"},"upstream":"up","channel":"web","auth":"session","policy":"signed_in"}],
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

# ---------------------------------------------------------------------------
# sign-ins: wrk's customer, one staff member; then wait for the first snapshot
# ---------------------------------------------------------------------------
login_out=$(timeout 60 python3 "$SIGNIN_DRIVER" login --gateway "$GW_URL" --email "wrk@example.com" </dev/null) \
    || die "the customer login for wrk failed"
read -r _ TOKEN _ _ <<<"$login_out"
[[ $TOKEN =~ ^[A-Za-z0-9_-]+$ ]] || die "unexpected session token: '$login_out'"
COOKIE="Cookie: jg_session=$TOKEN"
code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$GW_URL/app") || true
[[ $code == 401 ]] || die "/app without a session: expected 401, got $code"
code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 -H "$COOKIE" "$GW_URL/app") || true
[[ $code == 200 ]] || die "/app with the session: expected 200, got $code"

staff_out=$(timeout 60 python3 "$DRIVER" login --gateway "$GW_URL" --provider idp --email "morgan@staff.example" </dev/null) \
    || die "the staff sign-in failed"
read -r _ STAFF_COOKIE <<<"$staff_out"
[[ $STAFF_COOKIE =~ ^[A-Za-z0-9_-]+$ ]] || die "unexpected console cookie: '$staff_out'"

t0=$(date +%s)
for (( i = 0; ; i++ )); do
    check_all_alive
    code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 30 -H "Cookie: jg_console=$STAFF_COOKIE" \
        "$GW_URL/.console/api/overview") || true
    [[ $code == 200 ]] && break
    [[ $code == 503 ]] || die "GET overview: expected 200 or 503 (snapshot not built yet), got $code"
    (( $(date +%s) - t0 < FIGURES_TIMEOUT_S )) || die "the figures were not available within ${FIGURES_TIMEOUT_S}s"
    sleep 1
done
log "first snapshot ready $(( $(date +%s) - t0 )) s after the staff sign-in"
# one untimed round of every endpoint (pages and caches warm, answers checked)
timeout 300 python3 "$DRIVER" load --gateway "$GW_URL" --cookie "$STAFF_COOKIE" --seconds 5 --clients 1 \
    --customers "$BENCH_TMP/profiles.txt" --out "$BENCH_TMP/console-warmup.tsv" </dev/null \
    || die "the console's warm-up round failed"

log ""
log "== proxied GET /app (signed in), wrk -t$THREADS -c$CONNS -d${DURATION}s: nginx, journeygate idle, journeygate + console =="
log "upstream: nginx worker_processes $UPSTREAM_WORKERS; nginx-proxy: worker_processes $NGINX_PROXY_WORKERS; journeygate: \"threads\": $JG_THREADS (pid $JG_PID)"
log "console: $CONSOLE_CLIENTS staff clients through HTTP, each requesting $(python3 -c "import sys; sys.path.insert(0, '$BENCH_DIR'); import console_driver as d; print(len(d.endpoints('c', 'e', 'd')))") endpoints in turn without pause"
log "note: wrk, nginx, the OP, the staff clients and the gateway all share the same $(nproc) cores."

FAILED=0
NGX_L=(); IDLE_L=(); CONS_L=(); RATIOS=(); NGX_RATIO_IDLE=(); NGX_RATIO_CONS=()
JG_CPU_IDLE=(); JG_CPU_CONS=(); DRV_CPU=(); US_IDLE=(); US_CONS=()

# run_target KIND ROUND -> sets R_RPS (empty on failure)
run_target() {
    local kind=$1 round=$2 url c0 c1 t0 t1 m0 m1 dpid="" d0 d1 drc=0
    R_RPS=""
    if [[ $kind == nginx ]]; then url="http://127.0.0.1:$NGX_PORT/app"; else url="$GW_URL/app"; fi
    c0=$(cpu_s "$JG_PID"); t0=$(cpu_by_nice "$JG_PID"); m0=$(machine_busy_s)
    if [[ $kind == console ]]; then
        python3 "$DRIVER" load --gateway "$GW_URL" --cookie "$STAFF_COOKIE" --seconds $(( DURATION + 2 )) \
            --clients "$CONSOLE_CLIENTS" --customers "$BENCH_TMP/profiles.txt" \
            --out "$BENCH_TMP/console-load.tsv" </dev/null >"$BENCH_TMP/driver-r$round.out" 2>&1 &
        dpid=$!
        PIDS+=("$dpid")
        sleep 1
        d0=$(cpu_s "$dpid")
        c0=$(cpu_s "$JG_PID"); t0=$(cpu_by_nice "$JG_PID"); m0=$(machine_busy_s)
    fi
    if run_wrk "$kind r=$round" "$url" "$CONNS" "$DURATION" "$BENCH_TMP/wrk-$kind-r$round.txt" "$COOKIE"; then
        R_RPS=$RPS
    else
        FAILED=1
    fi
    c1=$(cpu_s "$JG_PID"); t1=$(cpu_by_nice "$JG_PID"); m1=$(machine_busy_s)
    if [[ -n $dpid ]]; then
        d1=$(cpu_s "$dpid")
        wait "$dpid" || drc=$?
        if (( drc != 0 )); then
            sed 's/^/    /' "$BENCH_TMP/driver-r$round.out" >&2
            log "  console clients failed (exit $drc)" >&2
            FAILED=1
        fi
        DRV_CPU+=("$(awk -v a="$d0" -v b="$d1" 'BEGIN { printf "%.2f", b - a }')")
    fi
    R_CPU=$(awk -v a="$c0" -v b="$c1" 'BEGIN { printf "%.2f", b - a }')
    R_US=""
    if [[ -n $R_RPS ]]; then
        R_US=$(nice0_us "$t0" "$t1" "$REQS")
        printf '  round %d  %-8s %10.1f req/s   p99 %8.3f ms   machine busy %4.1f of %d core-s   gateway CPU %5.2f s (%s; nice 0 per request %s us)%s\n' \
            "$round" "$kind" "$R_RPS" "$P99_MS" "$(awk -v a="$m0" -v b="$m1" 'BEGIN { print b - a }')" \
            "$(( $(nproc) * DURATION ))" "$R_CPU" "$(nice_delta "$t0" "$t1")" "$R_US" \
            "$([[ $kind == console ]] && printf '; %s, their CPU %s s' "$(head -n 1 "$BENCH_TMP/driver-r$round.out")" "${DRV_CPU[-1]}")"
    fi
    check_all_alive
    sleep 1
}

for (( round = 1; round <= ROUNDS; round++ )); do
    if (( round % 2 == 1 )); then order=(nginx idle console); else order=(console idle nginx); fi
    n=""; i=""; c=""
    for kind in "${order[@]}"; do
        run_target "$kind" "$round"
        case $kind in
            nginx) n=$R_RPS; [[ -n $n ]] && NGX_L+=("$n") ;;
            idle) i=$R_RPS; [[ -n $i ]] && { IDLE_L+=("$i"); JG_CPU_IDLE+=("$R_CPU"); US_IDLE+=("$R_US"); } ;;
            console) c=$R_RPS; [[ -n $c ]] && { CONS_L+=("$c"); JG_CPU_CONS+=("$R_CPU"); US_CONS+=("$R_US"); } ;;
        esac
    done
    [[ -n $i && -n $c ]] && RATIOS+=("$(ratio "$c" "$i")")
    [[ -n $n && -n $i ]] && NGX_RATIO_IDLE+=("$(ratio "$i" "$n")")
    [[ -n $n && -n $c ]] && NGX_RATIO_CONS+=("$(ratio "$c" "$n")")
done

(( ${#IDLE_L[@]} > 0 && ${#CONS_L[@]} > 0 && ${#NGX_L[@]} > 0 )) || die "no complete round"
m_n=$(median "${NGX_L[@]}"); m_i=$(median "${IDLE_L[@]}"); m_c=$(median "${CONS_L[@]}")
log ""
log "== results ($ROUNDS rounds of ${DURATION}s; load average at the end $(loadavg)) =="
printf '%-34s %12s\n' "nginx-proxy, median req/s" "$m_n"
printf '%-34s %12s   (gateway CPU per run, median: %s s)\n' "journeygate idle, median req/s" "$m_i" "$(median "${JG_CPU_IDLE[@]}")"
printf '%-34s %12s   (gateway CPU per run, median: %s s; staff clients CPU: %s s)\n' "journeygate + console, median" "$m_c" \
    "$(median "${JG_CPU_CONS[@]}")" "$(median "${DRV_CPU[@]}")"
log "console / idle:  $(ratio "$m_c" "$m_i") (medians); per round: ${RATIOS[*]} -> median $(median "${RATIOS[@]}") $(ci95 "${RATIOS[@]}")  (target >= 0.95)"
log "gateway CPU of its nice-0 threads per proxied request (the proxy's own cost, whatever else runs): idle ${US_IDLE[*]} us -> median $(median "${US_IDLE[@]}"); console ${US_CONS[*]} us -> median $(median "${US_CONS[@]}")"
log "idle / nginx:    $(ratio "$m_i" "$m_n") (medians); per round: ${NGX_RATIO_IDLE[*]}"
log "console / nginx: $(ratio "$m_c" "$m_n") (medians); per round: ${NGX_RATIO_CONS[*]}"
log ""
log "== console answers through HTTP while wrk ran (all rounds; target: every figure answer under 200 ms) =="
python3 "$DRIVER" summary "$BENCH_TMP/console-load.tsv"
log ""
log "the same, console alone (the untimed warm-up round, 1 client, no proxy load):"
python3 "$DRIVER" summary "$BENCH_TMP/console-warmup.tsv"

if (( FAILED )); then
    log "RESULT: FAILED - some runs reported errors (see above)"
    exit 1
fi
log "RESULT: all runs completed without errors"
exit 0
