#!/usr/bin/env bash
# bench/proxy.sh - compare journeygate against a plain nginx reverse proxy.
#
# Topology (everything on 127.0.0.1):
#
#   wrk --> nginx-proxy (worker_processes 2) --\
#                                                >--> nginx upstream (worker_processes 1,
#   wrk --> journeygate ("threads": 2)  -------/        return 200 "hello\n")
#
# For every connection count in CONNS and every round, wrk is run against
# nginx-proxy and journeygate (the order alternates each round).  The median
# req/s and p99 latency per proxy are printed as a table together with the
# journeygate/nginx throughput ratio and the targets.  A separate run measures
# journeygate's RSS growth under sustained load.
#
# Exit status: 0 when everything ran (whether or not the targets were met);
# non-zero when something failed to start, died, or wrk reported socket
# errors or non-2xx/3xx responses.
#
# See bench/README.md.

set -euo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
BENCH_NAME=proxy.sh
# shellcheck source=bench/lib.sh
source "$BENCH_DIR/lib.sh"

usage() {
    cat <<'EOF'
Usage: bench/proxy.sh [options]

Options (each also settable via the environment variable in brackets):
  --jg-bin PATH           journeygate binary          [JG_BIN, default ./build/journeygate]
  --duration SECONDS      seconds per wrk run         [DURATION, default 10]
  --rounds N              rounds per connection count [ROUNDS, default 3]
  --conns "N N ..."       connection counts           [CONNS, default "64 256"]
  --threads N             wrk threads                 [THREADS, default 2]
  --memtest-seconds N     RSS test length, 0 = skip   [MEMTEST_SECONDS, default 60]
  --keep-tmp              keep the temp dir (logs, configs, raw wrk output) [KEEP_TMP=1]
  -h, --help              show this help
EOF
}

JG_BIN=${JG_BIN:-./build/journeygate}
DURATION=${DURATION:-10}
ROUNDS=${ROUNDS:-3}
CONNS=${CONNS:-"64 256"}
THREADS=${THREADS:-2}
MEMTEST_SECONDS=${MEMTEST_SECONDS:-60}
KEEP_TMP=${KEEP_TMP:-0}

# Fixed by the benchmark definition (2-core machine: both proxies get 2 workers).
readonly UPSTREAM_WORKERS=1
readonly NGINX_PROXY_WORKERS=2
readonly JG_THREADS=2
readonly MEMTEST_CONNS=256
readonly START_TIMEOUT_S=10   # bounded wait for each server to listen
readonly STOP_TIMEOUT_S=5     # bounded wait for each server to exit

need_arg() { [[ $# -ge 2 ]] || die "option $1 needs an argument"; }

while [[ $# -gt 0 ]]; do
    case $1 in
        --jg-bin)          need_arg "$@"; JG_BIN=$2; shift 2 ;;
        --duration)        need_arg "$@"; DURATION=$2; shift 2 ;;
        --rounds)          need_arg "$@"; ROUNDS=$2; shift 2 ;;
        --conns)           need_arg "$@"; CONNS=$2; shift 2 ;;
        --threads)         need_arg "$@"; THREADS=$2; shift 2 ;;
        --memtest-seconds) need_arg "$@"; MEMTEST_SECONDS=$2; shift 2 ;;
        --keep-tmp)        KEEP_TMP=1; shift ;;
        -h|--help)         usage; exit 0 ;;
        *)                 usage >&2; die "unknown argument: $1" ;;
    esac
done

is_uint() { [[ $1 =~ ^[0-9]+$ ]]; }
is_posint() { [[ $1 =~ ^[0-9]+$ && $1 =~ [1-9] ]]; }
is_posint "$DURATION" || die "DURATION must be a positive integer (got '$DURATION')"
is_posint "$ROUNDS" || die "ROUNDS must be a positive integer (got '$ROUNDS')"
is_posint "$THREADS" || die "THREADS must be a positive integer (got '$THREADS')"
is_uint "$MEMTEST_SECONDS" || die "MEMTEST_SECONDS must be a non-negative integer (got '$MEMTEST_SECONDS')"
# strip leading zeros so (( )) never reads them as octal
DURATION=$(( 10#$DURATION )); ROUNDS=$(( 10#$ROUNDS )); THREADS=$(( 10#$THREADS ))
MEMTEST_SECONDS=$(( 10#$MEMTEST_SECONDS ))
read -r -a CONN_LIST <<<"$CONNS"
(( ${#CONN_LIST[@]} > 0 )) || die "CONNS is empty"
for i in "${!CONN_LIST[@]}"; do
    c=${CONN_LIST[i]}
    is_posint "$c" || die "CONNS entries must be positive integers (got '$c')"
    c=$(( 10#$c )); CONN_LIST[i]=$c
    (( c >= THREADS )) || die "each CONNS entry must be >= THREADS ($c < $THREADS)"
done

for tool in nginx wrk curl timeout awk; do
    command -v "$tool" >/dev/null 2>&1 || die "required tool not found: $tool"
done
[[ -x $JG_BIN ]] || die "journeygate binary not found or not executable: $JG_BIN (build it first or set JG_BIN)"

# wrk + three servers need a few hundred descriptors each; raise the soft limit.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

# ---------------------------------------------------------------------------
# temp dir, process bookkeeping and cleanup
# ---------------------------------------------------------------------------
# (bench/lib.sh): the servers and wrk are stopped, and the temp dir removed, on any exit
bench_tmp "${TMPDIR:-/tmp}" jg-bench

# ---------------------------------------------------------------------------
# helpers (and bench/lib.sh's)
# ---------------------------------------------------------------------------
# sanity_get NAME PORT: one request must return 200 with the upstream body.
sanity_get() {
    local body
    body=$(curl -sS --max-time 5 --fail "http://127.0.0.1:$2/" 2>&1) \
        || die "$1: sanity request to http://127.0.0.1:$2/ failed: $body"
    [[ $body == "hello" ]] || die "$1: unexpected body from http://127.0.0.1:$2/: '$body'"
}

rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status" 2>/dev/null || true; }

# ---------------------------------------------------------------------------
# configs and startup
# ---------------------------------------------------------------------------
free_port; UP_PORT=$FREE_PORT
free_port; NGX_PORT=$FREE_PORT
free_port; JG_PORT=$FREE_PORT
USER_LINE=$(nginx_user_line)

mkdir -p "$BENCH_TMP/upstream" "$BENCH_TMP/nginx-proxy"

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
            return 200 "hello\n";
        }
    }
}
EOF

nginx_proxy_conf "$BENCH_TMP/nginx-proxy" "$NGX_PORT" "$UP_PORT" "$NGINX_PROXY_WORKERS" "$USER_LINE" \
    >"$BENCH_TMP/nginx-proxy/nginx.conf"

cat >"$BENCH_TMP/jg.json" <<EOF
{"listen":[{"address":"127.0.0.1","port":$JG_PORT}],"public_url":"http://127.0.0.1:$JG_PORT","threads":$JG_THREADS,"access_log":null,
 "store":{"path":$(json_str "$BENCH_TMP/store")},"upstreams":{"up":{"url":"http://127.0.0.1:$UP_PORT","timeout_s":30,"keepalive_s":30}},
 "routes":[{"name":"bench","match":{"path_prefix":"/"},"upstream":"up","channel":"web","auth":"none"}],
 "limits":{"max_connections":20000}}
EOF

start_nginx "upstream" "$BENCH_TMP/upstream/nginx.conf"
UP_PID=$STARTED_PID
wait_listen "nginx upstream" "$UP_PID" "$UP_PORT" "$BENCH_TMP/upstream/error.log"

start_nginx "nginx-proxy" "$BENCH_TMP/nginx-proxy/nginx.conf"
NGX_PID=$STARTED_PID
wait_listen "nginx-proxy" "$NGX_PID" "$NGX_PORT" "$BENCH_TMP/nginx-proxy/error.log"

JG_LOG="$BENCH_TMP/jg.log"
"$JG_BIN" serve --config "$BENCH_TMP/jg.json" </dev/null >"$JG_LOG" 2>&1 &
JG_PID=$!
PIDS+=("$JG_PID")
wait_listen "journeygate" "$JG_PID" "$JG_PORT" "$JG_LOG"

sanity_get "nginx upstream" "$UP_PORT"
sanity_get "nginx-proxy" "$NGX_PORT"
sanity_get "journeygate" "$JG_PORT"

check_all_alive() {
    check_alive "nginx upstream" "$UP_PID" "$BENCH_TMP/upstream/error.log"
    check_alive "nginx-proxy" "$NGX_PID" "$BENCH_TMP/nginx-proxy/error.log"
    check_alive "journeygate" "$JG_PID" "$JG_LOG"
}

log "== journeygate vs nginx reverse proxy =="
log "cores: $(nproc)   nginx: $(nginx -v 2>&1 | sed 's/^nginx version: //')   wrk: $(wrk -v 2>&1 | awk 'NR == 1 { print $2 }')"
log "upstream:    nginx worker_processes $UPSTREAM_WORKERS on 127.0.0.1:$UP_PORT (return 200 \"hello\\n\", keep-alive)"
log "nginx-proxy: nginx worker_processes $NGINX_PROXY_WORKERS on 127.0.0.1:$NGX_PORT (proxy_http_version 1.1, upstream keepalive 64)"
log "journeygate: \"threads\": $JG_THREADS on 127.0.0.1:$JG_PORT ($JG_BIN, pid $JG_PID)"
log "wrk: -t$THREADS, ${DURATION}s per run, $ROUNDS round(s), connections: ${CONN_LIST[*]}"
log "note: wrk, the upstream and the proxy under test all share the same $(nproc) core(s)."
log ""

# ---------------------------------------------------------------------------
# throughput rounds
# ---------------------------------------------------------------------------
FAILED=0
declare -A NGX_RPS NGX_P99 JG_RPS JG_P99   # key: conns -> space separated per-round values

run_one() {
    # run_one which conns round
    local which=$1 conns=$2 round=$3 port label
    if [[ $which == nginx ]]; then port=$NGX_PORT; label="nginx-proxy"; else port=$JG_PORT; label="journeygate"; fi
    if run_wrk "$label c=$conns r=$round" "http://127.0.0.1:$port/" "$conns" "$DURATION" \
        "$BENCH_TMP/wrk-$which-c$conns-r$round.txt"; then
        printf '  c=%-5s round %d  %-12s %12.1f req/s   p99 %9.3f ms\n' \
            "$conns" "$round" "$label" "$RPS" "$P99_MS"
        if [[ $which == nginx ]]; then
            NGX_RPS[$conns]+="$RPS "; NGX_P99[$conns]+="$P99_MS "
        else
            JG_RPS[$conns]+="$RPS "; JG_P99[$conns]+="$P99_MS "
        fi
    else
        FAILED=1
    fi
    check_all_alive
    sleep 1
}

for conns in "${CONN_LIST[@]}"; do
    for (( round = 1; round <= ROUNDS; round++ )); do
        if (( round % 2 == 1 )); then
            run_one nginx "$conns" "$round"
            run_one jg "$conns" "$round"
        else
            run_one jg "$conns" "$round"
            run_one nginx "$conns" "$round"
        fi
    done
done

# ---------------------------------------------------------------------------
# summary table
# ---------------------------------------------------------------------------
target_for() {
    case $1 in
        # targets for journeygate req/s divided by nginx-proxy req/s
        64)  printf '0.80\n' ;;
        256) printf '0.95\n' ;;
        *)   printf -- '-\n' ;;
    esac
}

log ""
log "== results (median of $ROUNDS round(s), ${DURATION}s each) =="
printf '%-7s %14s %14s %9s %13s %13s %8s %s\n' \
    "conns" "nginx req/s" "jg req/s" "jg/nginx" "nginx p99 ms" "jg p99 ms" "target" "met"
for conns in "${CONN_LIST[@]}"; do
    read -r -a nr <<<"${NGX_RPS[$conns]:-}"
    read -r -a jr <<<"${JG_RPS[$conns]:-}"
    read -r -a np <<<"${NGX_P99[$conns]:-}"
    read -r -a jp <<<"${JG_P99[$conns]:-}"
    target=$(target_for "$conns")
    [[ $target == - ]] || target=">=$target"
    if (( ${#nr[@]} == 0 || ${#jr[@]} == 0 )); then
        printf '%-7s %14s %14s %9s %13s %13s %8s %s\n' "$conns" "n/a" "n/a" "n/a" "n/a" "n/a" "$target" "n/a (runs failed)"
        continue
    fi
    n_rps=$(median "${nr[@]}"); j_rps=$(median "${jr[@]}")
    n_p99=$(median "${np[@]}"); j_p99=$(median "${jp[@]}")
    ratio=$(awk -v j="$j_rps" -v n="$n_rps" 'BEGIN { if (n > 0) printf "%.3f", j / n; else print "nan" }')
    if [[ $target == - ]]; then
        met="(no target)"
    else
        met=$(awk -v r="$ratio" -v t="${target#>=}" 'BEGIN { print ((r + 0 >= t + 0) ? "yes" : "NO") }')
    fi
    printf '%-7s %14.1f %14.1f %9s %13.3f %13.3f %8s %s\n' \
        "$conns" "$n_rps" "$j_rps" "$ratio" "$n_p99" "$j_p99" "$target" "$met"
done
log "targets: jg/nginx >= 0.80 at 64 connections, >= 0.95 at 256 connections"
log "(nginx-proxy worker_processes $NGINX_PROXY_WORKERS, journeygate threads $JG_THREADS, upstream worker_processes $UPSTREAM_WORKERS, wrk -t$THREADS)"

# ---------------------------------------------------------------------------
# memory growth
# ---------------------------------------------------------------------------
if (( MEMTEST_SECONDS > 0 )); then
    log ""
    log "== journeygate memory: ${MEMTEST_SECONDS}s at $MEMTEST_CONNS connections =="
    rss_start=$(rss_kb "$JG_PID")
    [[ -n $rss_start ]] || die "cannot read /proc/$JG_PID/status"
    if run_wrk "memtest" "http://127.0.0.1:$JG_PORT/" "$MEMTEST_CONNS" "$MEMTEST_SECONDS" "$BENCH_TMP/wrk-memtest.txt"; then
        mem_info=$(printf '%.1f req/s, %s requests' "$RPS" "$REQS")
    else
        FAILED=1
        mem_info="wrk reported errors"
    fi
    check_all_alive
    rss_end=$(rss_kb "$JG_PID")
    [[ -n $rss_end ]] || die "cannot read /proc/$JG_PID/status"
    log "load:       $mem_info"
    log "RSS start:  $rss_start KB"
    log "RSS end:    $rss_end KB"
    log "RSS growth: $(( rss_end - rss_start )) KB"
fi

log ""
if (( FAILED )); then
    log "RESULT: FAILED - some wrk runs reported errors (see above)"
    exit 1
fi
log "RESULT: all runs completed without errors"
exit 0
