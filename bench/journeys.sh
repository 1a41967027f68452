#!/usr/bin/env bash
# bench/journeys.sh - what recording touchpoints costs: the recorder and the store on their own,
# and proxied requests with and without a touchpoint.
#
# Part 1: journey_bench (bench/journey_bench.c, CMake target journey_bench) in a temp dir:
#   a. N_EVENTS touchpoints over CUSTOMERS customers pushed flat out through the real recorder
#      (bounded queue QUEUE, one writer thread, group commit) into a synced store: touchpoints/s
#      from the first push until gw_recorder_stop() returns (target >= 200000/s), refused pushes
#      (retried after RETRY_SLEEP_US), then DROP_EVENTS more pushed without retries (the gateway's
#      way): how many drop;
#   b. store_journey() of a customer with JOURNEY_LEN touchpoints, READS times: p50/p99 (target < 2 ms);
#   c. bytes on disk per touchpoint (data.mdb, and mdb_stat's pages when lmdb-utils is installed).
#
# Part 2: proxied requests/s with recording on vs off, in the same run (everything on 127.0.0.1):
#
#   wrk --> journeygate /rec   (auth session + policy signed_in, "touchpoint": "view") --\
#   wrk --> journeygate /norec (auth session + policy signed_in, no touchpoint) ----------->-> nginx upstream
#           (same session cookie: one real login through tests/peers/google-op.mjs)
#
# alternating wrk rounds; the ratio rec/norec of the medians, and the median of the per-round
# ratios (rec and norec back to back: the machine's drifts cancel) (target >= 0.95); then
# journeygate_touchpoints_recorded_total / _dropped_total from the admin listener's /metrics, and,
# after a SIGTERM (which flushes the queue), the touchpoints the store holds for that customer.
#
# Exit status: 0 when everything ran (whether or not the targets were met); 1 when something
# failed (a program, a server, a sanity check, wrk errors, touchpoints lost at the stop); 2 on bad
# usage; 124 when journey_bench ran out of time.
#
# See bench/README.md.

set -euo pipefail

usage() {
    cat <<'EOF'
Usage: bench/journeys.sh [options]

Options (each also settable via the environment variable in brackets):
  --journey-bench PATH     the journey_bench program   [JOURNEY_BENCH, default <repo>/build/bench/journey_bench]
  --jg-bin PATH            journeygate binary          [JG_BIN, default <repo>/build/journeygate]
  --parts "LIST"           what to run: bench, proxy   [PARTS, default "bench proxy"]
 part 1 (journey_bench):
  --events N               touchpoints of the timed recording run    [N_EVENTS, default 1000000]
  --drop-events N          then pushed without retries (0 skips)     [DROP_EVENTS, default 200000]
  --customers N            customers they are spread over            [CUSTOMERS, default 10000]
  --queue N                the recorder's queue (journeys.queue_size; also the gateway's in part 2)
                                                                     [QUEUE, default 65536]
  --retry-sleep-us N       after a refused push, sleep N us and retry (0: sched_yield() only)
                                                                     [RETRY_SLEEP_US, default 100]
  --journey-len N          touchpoints of the customer read back     [JOURNEY_LEN, default 10000]
  --reads N                store_journey() calls of each kind        [READS, default 1000]
  --bench-timeout SECONDS  journey_bench is stopped after this long  [BENCH_TIMEOUT_S, default 300]
 part 2 (proxied):
  --duration SECONDS       seconds per wrk run             [DURATION, default 5]
  --rounds N               wrk rounds (each: rec and norec) [ROUNDS, default 8]
  --conns "N ..."          wrk connection counts           [CONNS, default 64]
  --threads N              wrk threads                     [THREADS, default 2]
  --keep-tmp               keep the temp dir (stores, configs, logs, raw wrk output) [KEEP_TMP=1]
  -h, --help               show this help
The temp dir is created under $TMPDIR (default /tmp); mdb_stat (lmdb-utils) is used when present.
EOF
}

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$BENCH_DIR/.." && pwd)
BENCH_NAME=journeys.sh
# shellcheck source=bench/lib.sh
source "$BENCH_DIR/lib.sh"
PEERS_DIR="$ROOT/tests/peers"
DRIVER="$BENCH_DIR/signin_driver.py"

JOURNEY_BENCH=${JOURNEY_BENCH:-$ROOT/build/bench/journey_bench}
JG_BIN=${JG_BIN:-$ROOT/build/journeygate}
PARTS=${PARTS:-bench proxy}
N_EVENTS=${N_EVENTS:-1000000}
DROP_EVENTS=${DROP_EVENTS:-200000}
CUSTOMERS=${CUSTOMERS:-10000}
QUEUE=${QUEUE:-65536}
RETRY_SLEEP_US=${RETRY_SLEEP_US:-100}
JOURNEY_LEN=${JOURNEY_LEN:-10000}
READS=${READS:-1000}
BENCH_TIMEOUT_S=${BENCH_TIMEOUT_S:-300}
DURATION=${DURATION:-5}
ROUNDS=${ROUNDS:-8}
CONNS=${CONNS:-64}
THREADS=${THREADS:-2}
KEEP_TMP=${KEEP_TMP:-0}
TMP_PARENT=${TMPDIR:-/tmp}

# Fixed by the benchmark definition (2-core machine; same shape as bench/signin.sh).
readonly UPSTREAM_WORKERS=1
readonly JG_THREADS=2
readonly RATIO_TARGET=0.95    # req/s with a touchpoint / req/s without
readonly CLIENT_ID=jg-bench-client
readonly CLIENT_SECRET=jg-bench-secret-0123456789
readonly START_TIMEOUT_S=10   # bounded wait for each server to listen
readonly OP_START_TIMEOUT_S=20
readonly READY_TIMEOUT_S=20   # bounded wait for the provider's discovery + keys
readonly STOP_TIMEOUT_S=5     # bounded wait for each server to exit
readonly FLUSH_TIMEOUT_S=60   # bounded wait for journeygate to flush its queue and exit on SIGTERM
readonly KILL_AFTER_S=10      # journey_bench: SIGTERM at BENCH_TIMEOUT_S, SIGKILL this much later
readonly BYTES_PER_TOUCHPOINT=1200   # disk needed per touchpoint, with margin (about 700 B is measured)

usage_error() { printf 'journeys.sh: %s\n' "$*" >&2; usage >&2; exit 2; }

need_arg() { [[ $# -ge 2 ]] || usage_error "option $1 needs an argument"; }

while [[ $# -gt 0 ]]; do
    case $1 in
        --journey-bench) need_arg "$@"; JOURNEY_BENCH=$2; shift 2 ;;
        --jg-bin)        need_arg "$@"; JG_BIN=$2; shift 2 ;;
        --parts)         need_arg "$@"; PARTS=$2; shift 2 ;;
        --events)        need_arg "$@"; N_EVENTS=$2; shift 2 ;;
        --drop-events)   need_arg "$@"; DROP_EVENTS=$2; shift 2 ;;
        --customers)     need_arg "$@"; CUSTOMERS=$2; shift 2 ;;
        --queue)         need_arg "$@"; QUEUE=$2; shift 2 ;;
        --retry-sleep-us) need_arg "$@"; RETRY_SLEEP_US=$2; shift 2 ;;
        --journey-len)   need_arg "$@"; JOURNEY_LEN=$2; shift 2 ;;
        --reads)         need_arg "$@"; READS=$2; shift 2 ;;
        --bench-timeout) need_arg "$@"; BENCH_TIMEOUT_S=$2; shift 2 ;;
        --duration)      need_arg "$@"; DURATION=$2; shift 2 ;;
        --rounds)        need_arg "$@"; ROUNDS=$2; shift 2 ;;
        --conns)         need_arg "$@"; CONNS=$2; shift 2 ;;
        --threads)       need_arg "$@"; THREADS=$2; shift 2 ;;
        --keep-tmp)      KEEP_TMP=1; shift ;;
        -h|--help)       usage; exit 0 ;;
        *)               usage_error "unknown argument: $1" ;;
    esac
done

is_posint() { [[ $1 =~ ^[0-9]{1,12}$ && $1 =~ [1-9] ]]; }
for v in N_EVENTS CUSTOMERS QUEUE JOURNEY_LEN READS BENCH_TIMEOUT_S DURATION ROUNDS THREADS; do
    is_posint "${!v}" || usage_error "$v must be a positive integer (got '${!v}')"
    printf -v "$v" '%d' "$(( 10#${!v} ))"   # strip leading zeros (no octal surprises)
done
for v in DROP_EVENTS RETRY_SLEEP_US; do
    [[ ${!v} =~ ^[0-9]{1,12}$ ]] || usage_error "$v must be a non-negative integer (got '${!v}')"
    printf -v "$v" '%d' "$(( 10#${!v} ))"
done
(( RETRY_SLEEP_US <= 999999 )) || usage_error "RETRY_SLEEP_US must be below 1000000"
(( QUEUE <= 10000000 )) || usage_error "QUEUE must be at most 10000000 (journeys.queue_size)"
read -r -a CONN_LIST <<<"$CONNS"
(( ${#CONN_LIST[@]} > 0 )) || usage_error "CONNS is empty"
for i in "${!CONN_LIST[@]}"; do
    c=${CONN_LIST[i]}
    is_posint "$c" || usage_error "CONNS entries must be positive integers (got '$c')"
    c=$(( 10#$c )); CONN_LIST[i]=$c
    (( c >= THREADS )) || usage_error "each CONNS entry must be >= THREADS ($c < $THREADS)"
done
RUN_BENCH=0 RUN_PROXY=0
read -r -a PART_LIST <<<"$PARTS"
for p in "${PART_LIST[@]}"; do
    case $p in
        bench) RUN_BENCH=1 ;;
        proxy) RUN_PROXY=1 ;;
        *) usage_error "unknown part '$p' (PARTS takes bench and/or proxy)" ;;
    esac
done
(( RUN_BENCH || RUN_PROXY )) || usage_error "PARTS is empty"

command -v timeout >/dev/null 2>&1 || die "coreutils timeout is required"
[[ -d $TMP_PARENT ]] || die "TMPDIR $TMP_PARENT is not a directory"
if (( RUN_BENCH )); then
    [[ -x $JOURNEY_BENCH ]] ||
        die "no journey_bench program at $JOURNEY_BENCH: build it first (cmake --build build --target journey_bench) or set JOURNEY_BENCH"
    if ! command -v "${MDB_STAT:-mdb_stat}" >/dev/null 2>&1; then
        log "journeys.sh: note: ${MDB_STAT:-mdb_stat} not found (Debian: lmdb-utils); only data.mdb's size will be reported"
    fi
    # the store must fit: refuse early rather than fill the disk
    avail_kb=$(df -Pk "$TMP_PARENT" | awk 'NR == 2 { print $4 }')
    need_kb=$(( (N_EVENTS + DROP_EVENTS + JOURNEY_LEN) * BYTES_PER_TOUCHPOINT / 1024 + CUSTOMERS * 2 + 65536 ))
    (( avail_kb >= need_kb )) ||
        die "$TMP_PARENT has $(( avail_kb / 1024 )) MB free; N_EVENTS=$N_EVENTS needs about $(( need_kb / 1024 )) MB"
fi
if (( RUN_PROXY )); then
    for tool in nginx wrk curl awk node python3; do
        command -v "$tool" >/dev/null 2>&1 || die "required tool not found: $tool"
    done
    [[ -x $JG_BIN ]] || die "journeygate binary not found or not executable: $JG_BIN (build it first or set JG_BIN)"
    [[ -f $DRIVER ]] || die "driver not found: $DRIVER"
    [[ -d $PEERS_DIR/node_modules/oidc-provider ]] \
        || die "oidc-provider is not installed: run (cd tests/peers && npm ci) first"
    ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
fi

# ---------------------------------------------------------------------------
# temp dir, process bookkeeping and cleanup
# ---------------------------------------------------------------------------
# (bench/lib.sh); journey_bench gets KILL_AFTER_S to exit on SIGTERM
FG_STOP_TIMEOUT_S=$KILL_AFTER_S
bench_tmp "$TMP_PARENT" jg-journeys

commit=$(bench_commit "$ROOT")
log "journeys.sh: $(date -u '+%Y-%m-%d %H:%M:%S UTC'), commit $commit, $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
log "journeys.sh: temp dir $BENCH_TMP; parts: ${PART_LIST[*]}"
STARTED=$SECONDS
FAILED=0

# ---------------------------------------------------------------------------
# part 1: journey_bench
# ---------------------------------------------------------------------------
if (( RUN_BENCH )); then
    log ""
    log "== part 1: journey_bench ($JOURNEY_BENCH), at most ${BENCH_TIMEOUT_S} s =="
    mkdir -p "$BENCH_TMP/bench"
    rc=0
    # in the background so that a signal reaches the trap at once; timeout passes SIGTERM on
    timeout --kill-after="$KILL_AFTER_S" "$BENCH_TIMEOUT_S" "$JOURNEY_BENCH" \
        --events "$N_EVENTS" --drop-events "$DROP_EVENTS" --customers "$CUSTOMERS" --queue "$QUEUE" \
        --retry-sleep-us "$RETRY_SLEEP_US" \
        --journey-len "$JOURNEY_LEN" --reads "$READS" "$BENCH_TMP/bench" </dev/null &
    FG_PID=$!
    wait "$FG_PID" || rc=$?
    FG_PID=""
    case $rc in
        0) log "part 1: done after $(( SECONDS - STARTED )) s" ;;
        124 | 137)
            log "journeys.sh: error: journey_bench did not finish within ${BENCH_TIMEOUT_S} s (lower N_EVENTS or READS, or raise BENCH_TIMEOUT_S)" >&2
            exit 124 ;;
        *) log "journeys.sh: error: journey_bench failed (exit status $rc)" >&2
            FAILED=1 ;;
    esac
    # the proxied part needs neither that store nor its page cache
    [[ $KEEP_TMP == 1 ]] || rm -rf -- "$BENCH_TMP/bench"
fi

if (( ! RUN_PROXY )); then
    log ""
    if (( FAILED )); then log "RESULT: FAILED (see above)"; exit 1; fi
    log "RESULT: everything ran (in $(( SECONDS - STARTED )) s)"
    exit 0
fi

# ---------------------------------------------------------------------------
# part 2 helpers (and bench/lib.sh's)
# ---------------------------------------------------------------------------
# curl_check LABEL URL [HEADER]: 200 "hello", and the upstream saw an X-Customer-Id
curl_check() {
    local label=$1 url=$2 header=${3:-} out status seen
    local -a hdr=()
    [[ -n $header ]] && hdr=(-H "$header")
    out=$(curl -sS --max-time 5 -D - "${hdr[@]}" "$url" 2>&1) || die "$label: request to $url failed: $out"
    status=$(printf '%s\n' "$out" | awk 'NR == 1 { print $2 }')
    seen=$(printf '%s\n' "$out" | tr -d '\r' | awk 'tolower($1) == "x-seen-customer-id:" { print $2 }')
    [[ $status == 200 && $out == *hello ]] || die "$label: expected 200 hello from $url, got: $(printf '%s' "$out" | head -c 400)"
    [[ -n $seen ]] || die "$label: the upstream saw no X-Customer-Id"
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

# metric NAME: the value of an unlabelled counter on the admin listener's /metrics ("" when absent)
metric() {
    local text
    text=$(curl -sS --max-time 5 "$ADMIN_URL/metrics" 2>/dev/null) || return 0
    printf '%s\n' "$text" | awk -v n="$1" '$1 == n { print $2; exit }'
}

# wait_metric NAME MIN: waits (at most 5 s) until the counter reaches MIN; prints its value
wait_metric() {
    local name=$1 min=$2 v="" i
    for (( i = 0; i < 50; i++ )); do
        v=$(metric "$name")
        [[ -n $v ]] && (( v >= min )) && break
        sleep 0.1
    done
    printf '%s\n' "$v"
}

# ---------------------------------------------------------------------------
# part 2: configs and startup
# ---------------------------------------------------------------------------
free_port; UP_PORT=$FREE_PORT
free_port; JG_PORT=$FREE_PORT
free_port; ADMIN_PORT=$FREE_PORT
free_port; OP_PORT=$FREE_PORT
GW_URL="http://127.0.0.1:$JG_PORT"
ADMIN_URL="http://127.0.0.1:$ADMIN_PORT"
OP_URL="http://127.0.0.1:$OP_PORT"
USER_LINE=$(nginx_user_line)
STORE_DIR="$BENCH_TMP/store"

mkdir -p "$BENCH_TMP/upstream"

# The upstream echoes the X-Customer-Id it received: the sign-in driver and the sanity checks
# know from it that a request reached the upstream signed in.
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

# /rec and /norec differ only in the touchpoint; /app is where the sign-in driver lands.
cat >"$BENCH_TMP/jg.json" <<EOF
{"listen":[{"address":"127.0.0.1","port":$JG_PORT}],"public_url":"$GW_URL","threads":$JG_THREADS,"access_log":null,
 "store":{"path":$(json_str "$STORE_DIR")},
 "admin":{"listen":{"address":"127.0.0.1","port":$ADMIN_PORT}},
 "journeys":{"queue_size":$QUEUE},
 "upstreams":{"up":{"url":"http://127.0.0.1:$UP_PORT","timeout_s":30,"keepalive_s":30}},
 "providers":{"idp":{"type":"google","client_id":"$CLIENT_ID","client_secret":"$CLIENT_SECRET",
                     "issuer":"$OP_URL","insecure_http":true}},
 "policies":{"signed_in":{"rules":[{"allow":{"signed_in":true}}]}},
 "routes":[{"name":"app","match":{"path_prefix":"/app"},"upstream":"up","channel":"web","auth":"session","policy":"signed_in"},
           {"name":"rec","match":{"path_prefix":"/rec"},"upstream":"up","channel":"web","touchpoint":"view","auth":"session","policy":"signed_in"},
           {"name":"norec","match":{"path_prefix":"/norec"},"upstream":"up","channel":"web","auth":"session","policy":"signed_in"}],
 "limits":{"max_connections":20000,"auth_rate_per_minute":1000000,"auth_burst":1000000}}
EOF
check_jg_config

start_nginx "upstream" "$BENCH_TMP/upstream/nginx.conf"
UP_PID=$STARTED_PID
wait_listen "nginx upstream" "$UP_PID" "$UP_PORT" "$BENCH_TMP/upstream/error.log"

start_google_op "$OP_PORT" "$CLIENT_ID" "$CLIENT_SECRET" "$GW_URL/.auth/login/idp/callback"
start_journeygate "$JG_PORT"
wait_listen "journeygate admin listener" "$JG_PID" "$ADMIN_PORT" "$JG_LOG"

check_all_alive() {
    check_alive "nginx upstream" "$UP_PID" "$BENCH_TMP/upstream/error.log"
    check_alive "google-op" "$OP_PID" "$OP_LOG"
    check_alive "journeygate" "$JG_PID" "$JG_LOG"
}

wait_provider_ready "$GW_URL/.auth/login/idp"

for path in /rec /norec; do
    code=$(api_status "$GW_URL$path")
    [[ $code == 401 ]] || die "journeygate $path without a session: expected 401, got $code"
done
[[ -n $(metric journeygate_touchpoints_recorded_total) ]] \
    || die "the admin listener's /metrics has no journeygate_touchpoints_recorded_total"

log ""
log "== part 2: proxied requests/s with a touchpoint (/rec) vs without (/norec), same session =="
log "nginx: $(nginx -v 2>&1 | sed 's/^nginx version: //')   wrk: $(wrk -v 2>&1 | awk 'NR == 1 { print $2 }')   node: $(node --version)"
log "upstream:    nginx worker_processes $UPSTREAM_WORKERS on 127.0.0.1:$UP_PORT (pid $UP_PID)"
log "OP:          tests/peers/google-op.mjs on $OP_URL (pid $OP_PID)"
log "journeygate: \"threads\": $JG_THREADS on $GW_URL, admin listener $ADMIN_URL, journeys.queue_size $QUEUE ($JG_BIN, pid $JG_PID)"
log "config:      check-config: $(sed -n 's/^.*: ok /ok /p' "$BENCH_TMP/check-config.out" | head -n 1)"
log "note: wrk, the upstream, the OP and the gateway (with its writer thread) share the same $(nproc) core(s)."

login_out=$(timeout 60 python3 "$DRIVER" login --gateway "$GW_URL" --email "wrk@example.com" </dev/null) \
    || die "the login for the wrk session failed"
read -r _ TOKEN _ CUSTOMER _ <<<"$login_out"
[[ $TOKEN =~ ^[A-Za-z0-9_-]+$ ]] || die "unexpected session token from the driver: '$login_out'"
[[ $CUSTOMER =~ ^c_[a-z0-9]+$ ]] || die "unexpected customer id from the driver: '$login_out'"
COOKIE="Cookie: jg_session=$TOKEN"

# one request to each: only /rec records a touchpoint
rec0=$(metric journeygate_touchpoints_recorded_total)
curl_check "journeygate /norec (session)" "$GW_URL/norec" "$COOKIE"
curl_check "journeygate /rec (session)" "$GW_URL/rec" "$COOKIE"
wait_metric journeygate_touchpoints_recorded_total $(( rec0 + 1 )) >/dev/null
sleep 0.5   # a request to /norec counted late would show now
rec1=$(metric journeygate_touchpoints_recorded_total)
(( rec1 == rec0 + 1 )) \
    || die "one request to /rec and one to /norec: journeygate_touchpoints_recorded_total went from $rec0 to $rec1, expected +1"
SANITY_REC=1
log "session: one real login as wrk@example.com -> customer $CUSTOMER; wrk sends '-H \"Cookie: jg_session=<token>\"' to both"
log "check: one request to /norec and one to /rec recorded exactly 1 touchpoint (journeygate_touchpoints_recorded_total $rec0 -> $rec1)"
log "targets: rec = /rec (auth session + policy signed_in + \"touchpoint\": \"view\"); norec = /norec (the same without the touchpoint)"
log "wrk: -t$THREADS, ${DURATION}s per run, $ROUNDS round(s), connections: ${CONN_LIST[*]}; the order alternates every round"

declare -A RPS_OF P99_OF   # key: "target conns" -> space separated per-round values
REC_REQS=0

run_one() {
    local which=$1 conns=$2 round=$3
    if run_wrk "$which c=$conns r=$round" "$GW_URL/$which" "$conns" "$DURATION" \
            "$BENCH_TMP/wrk-$which-c$conns-r$round.txt" "$COOKIE"; then
        printf '  c=%-5s round %d  %-6s %12.1f req/s   p99 %9.3f ms   %9d requests\n' "$conns" "$round" "$which" \
            "$RPS" "$P99_MS" "$REQS"
        RPS_OF["$which $conns"]+="$RPS "
        P99_OF["$which $conns"]+="$P99_MS "
        if [[ $which == rec ]]; then REC_REQS=$(( REC_REQS + REQS )); fi
    else
        FAILED=1
    fi
    check_all_alive
    sleep 1
}

for conns in "${CONN_LIST[@]}"; do
    for (( round = 1; round <= ROUNDS; round++ )); do
        if (( round % 2 == 1 )); then order=(rec norec); else order=(norec rec); fi
        for which in "${order[@]}"; do
            run_one "$which" "$conns" "$round"
        done
    done
done

RECORDED=$(metric journeygate_touchpoints_recorded_total)
DROPPED=$(metric journeygate_touchpoints_dropped_total)
[[ -n $RECORDED && -n $DROPPED ]] || die "could not read the touchpoint counters from $ADMIN_URL/metrics"
RSS=$(awk '/^VmRSS:/ { t = $2 } /^RssAnon:/ { a = $2 } /^RssFile:/ { f = $2 }
    END { printf "%s kB (anonymous %s kB, file-backed %s kB: the store'"'"'s mapped pages among them)", t, a, f }' \
    "/proc/$JG_PID/status" 2>/dev/null || echo '?')

log ""
log "== results (median of $ROUNDS round(s), ${DURATION}s each) =="
meets() { awk -v r="$1" -v t="$2" 'BEGIN { print ((r + 0 >= t + 0) ? "met" : "NOT met") }'; }
printf '%-6s %12s %12s %10s %12s %12s\n' "conns" "rec req/s" "norec req/s" "rec/norec" "rec p99 ms" "norec p99 ms"
TARGET_LINES=()
for conns in "${CONN_LIST[@]}"; do
    read -r -a rv <<<"${RPS_OF["rec $conns"]:-}"
    read -r -a nv <<<"${RPS_OF["norec $conns"]:-}"
    read -r -a rp <<<"${P99_OF["rec $conns"]:-}"
    read -r -a np <<<"${P99_OF["norec $conns"]:-}"
    if (( ${#rv[@]} == 0 || ${#nv[@]} == 0 )); then
        printf '%-6s %s\n' "$conns" "n/a (runs failed)"
        continue
    fi
    mr=$(median "${rv[@]}"); mn=$(median "${nv[@]}"); q=$(ratio "$mr" "$mn")
    printf '%-6s %12.1f %12.1f %10s %12.3f %12.3f\n' "$conns" "$mr" "$mn" "$q" "$(median "${rp[@]}")" "$(median "${np[@]}")"
    # each round runs rec and norec back to back: their ratio cancels the machine's slow drifts
    pairs=()
    for (( i = 0; i < ${#rv[@]} && i < ${#nv[@]}; i++ )); do pairs+=("$(ratio "${rv[$i]}" "${nv[$i]}")"); done
    qp=$(median "${pairs[@]}")
    log "c=$conns  per-round rec/norec: ${pairs[*]}  (median $qp)"
    TARGET_LINES+=("$(printf 'c=%-5s rec/norec %s (medians) >= %s: %s; median of the per-round ratios %s: %s' "$conns" \
        "$q" "$RATIO_TARGET" "$(meets "$q" "$RATIO_TARGET")" "$qp" "$(meets "$qp" "$RATIO_TARGET")")")
done
if (( ${#TARGET_LINES[@]} > 0 )); then
    log "targets:"
    printf '%s\n' "${TARGET_LINES[@]}"
fi
log "rec/norec = req/s with a touchpoint recorded per request / req/s without (target >= $RATIO_TARGET)"
log ""
log "admin /metrics after the run: journeygate_touchpoints_recorded_total $RECORDED, journeygate_touchpoints_dropped_total $DROPPED"
log "  (wrk counted $REC_REQS completed /rec requests, plus $SANITY_REC sanity request(s): $(( REC_REQS + SANITY_REC )); recorded + dropped = $(( RECORDED + DROPPED )))"
log "journeygate RSS at the end of the wrk runs: $RSS"

# SIGTERM flushes the queue: every accepted touchpoint must be in the store afterwards
t0=$(date +%s%N)
stop_pid "$JG_PID" "$FLUSH_TIMEOUT_S"
stop_ms=$(( ($(date +%s%N) - t0) / 1000000 ))
if "$JG_BIN" journey "$CUSTOMER" --store "$STORE_DIR" >"$BENCH_TMP/journey.txt" 2>"$BENCH_TMP/journey.err"; then
    STORED=$(awk 'END { print $1 }' "$BENCH_TMP/journey.txt")
    log "journeygate stopped (SIGTERM) in $stop_ms ms; \`journeygate journey $CUSTOMER\` lists $STORED touchpoint(s), first ones:"
    sed -n '2,4p' "$BENCH_TMP/journey.txt" | sed 's/^/    /'
    if [[ $STORED != "$RECORDED" ]]; then
        log "ERROR: $RECORDED touchpoints were accepted (recorded_total) but the store holds $STORED after the stop" >&2
        FAILED=1
    fi
else
    sed 's/^/  /' "$BENCH_TMP/journey.err" >&2
    log "ERROR: journeygate journey $CUSTOMER failed" >&2
    FAILED=1
fi

problems=$(grep -c '"level":"\(error\|warn\)"' "$JG_LOG" || true)
log "journeygate stderr: $(wc -l <"$JG_LOG") lines, $problems error/warn"
if (( problems > 0 )); then
    grep '"level":"\(error\|warn\)"' "$JG_LOG" | sed 's/"ts":"[^"]*",//' | sort | uniq -c | sort -rn \
        | head -n 10 | sed 's/^/  /'
fi

log ""
if (( FAILED )); then
    log "RESULT: FAILED after $(( SECONDS - STARTED )) s (see above)"
    exit 1
fi
log "RESULT: everything ran in $(( SECONDS - STARTED )) s"
exit 0
