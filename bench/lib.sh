# shellcheck shell=bash
# bench/lib.sh - what the bench scripts share: messages, the temp dir and the processes they
# start (stopped and removed on any exit), free ports, nginx, wrk, and small statistics.
#
# Sourced, not run. The script sets BENCH_NAME (its name in messages) before sourcing, and
# START_TIMEOUT_S / STOP_TIMEOUT_S (seconds) before starting servers; FG_STOP_TIMEOUT_S, when set,
# is how long a foreground job gets to exit on SIGTERM (default STOP_TIMEOUT_S).

die() { printf '%s: error: %s\n' "$BENCH_NAME" "$*" >&2; exit 1; }
log() { printf '%s\n' "$*"; }

# the commit being measured, "+changes" when the work tree differs from it
bench_commit() {
    local root=$1 commit
    commit=$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)
    if [[ $commit != unknown ]] && ! git -C "$root" diff --quiet HEAD 2>/dev/null; then
        commit="$commit+changes"
    fi
    printf '%s\n' "$commit"
}

# ---------------------------------------------------------------------------
# temp dir, process bookkeeping and cleanup
# ---------------------------------------------------------------------------

# bench_tmp PARENT PREFIX: makes BENCH_TMP and starts the bookkeeping: PIDS (long-running servers,
# stopped in reverse order), FG_PID (the foreground job, if any); on any exit both are stopped and
# BENCH_TMP is removed unless KEEP_TMP=1
bench_tmp() {
    BENCH_TMP=$(mktemp -d "$1/$2.XXXXXX")
    PIDS=()
    FG_PID=""
    USED_PORTS=" "
    trap bench_cleanup EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
    trap 'exit 129' HUP
}

# stop_pid PID [SECONDS]: SIGTERM, then SIGKILL after SECONDS (default STOP_TIMEOUT_S)
stop_pid() {
    local pid=$1 limit=${2:-$STOP_TIMEOUT_S} i
    kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }
    kill -TERM "$pid" 2>/dev/null || true
    for (( i = 0; i < limit * 10; i++ )); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
}

# shellcheck disable=SC2317  # invoked via trap
bench_cleanup() {
    local rc=$? i
    trap - EXIT INT TERM HUP
    if [[ -n $FG_PID ]]; then
        stop_pid "$FG_PID" "${FG_STOP_TIMEOUT_S:-$STOP_TIMEOUT_S}"
    fi
    for (( i = ${#PIDS[@]} - 1; i >= 0; i-- )); do
        stop_pid "${PIDS[i]}"
    done
    if [[ ${KEEP_TMP:-0} == 1 ]]; then
        log "temp dir kept: $BENCH_TMP"
    else
        rm -rf -- "$BENCH_TMP"
    fi
    exit "$rc"
}

# run_fg CMD... : runs a foreground job so that the trap can stop it; returns its status
run_fg() {
    local rc=0
    "$@" &
    FG_PID=$!
    wait "$FG_PID" || rc=$?
    FG_PID=""
    return "$rc"
}

# ---------------------------------------------------------------------------
# ports and servers
# ---------------------------------------------------------------------------

# port_open PORT: succeeds if something accepts TCP connections on 127.0.0.1:PORT
port_open() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

free_port() {
    # Sets FREE_PORT to a random unused port outside the kernel's ephemeral range: a listener
    # cannot bind a port that an outgoing connection (e.g. one of the many proxy->upstream
    # sockets left in TIME_WAIT by an earlier run) still holds as its local port.
    local lo=32768 hi=60999 min max i p
    read -r lo hi 2>/dev/null </proc/sys/net/ipv4/ip_local_port_range || true
    if (( lo - 1 >= 11024 )); then
        min=10000; max=$(( lo - 1 ))
    elif (( hi + 1 <= 64511 )); then
        min=$(( hi + 1 )); max=65535
    else
        min=10000; max=65535
    fi
    for (( i = 0; i < 200; i++ )); do
        p=$(( min + (RANDOM * 32768 + RANDOM) % (max - min + 1) ))
        [[ $USED_PORTS == *" $p "* ]] && continue
        port_open "$p" && continue
        if command -v ss >/dev/null 2>&1 && [[ -n $(ss -Htan "( sport = :$p )" 2>/dev/null) ]]; then
            continue
        fi
        USED_PORTS+="$p "
        # shellcheck disable=SC2034  # the caller's
        FREE_PORT=$p
        return 0
    done
    die "could not find a free port"
}

# wait_listen NAME PID PORT LOGFILE
wait_listen() {
    local name=$1 pid=$2 port=$3 logf=$4 i
    for (( i = 0; i < START_TIMEOUT_S * 10; i++ )); do
        if ! kill -0 "$pid" 2>/dev/null; then
            log "$name exited during startup; last log lines:" >&2
            tail -n 20 "$logf" >&2 2>/dev/null || true
            die "$name failed to start"
        fi
        if port_open "$port"; then
            # another process could own the port: ours must still be alive
            sleep 0.2
            kill -0 "$pid" 2>/dev/null && return 0
        fi
        sleep 0.1
    done
    tail -n 20 "$logf" >&2 2>/dev/null || true
    die "$name did not listen on 127.0.0.1:$port within ${START_TIMEOUT_S}s"
}

# check_alive NAME PID LOGFILE
check_alive() {
    if ! kill -0 "$2" 2>/dev/null; then
        log "$1 (pid $2) is no longer running; last log lines:" >&2
        tail -n 20 "$3" >&2 2>/dev/null || true
        die "$1 died"
    fi
}

json_str() {
    local s=$1
    s=${s//\\/\\\\}
    s=${s//\"/\\\"}
    printf '"%s"' "$s"
}

# nginx_temp_dirs DIR: the temp path directives of an nginx instance living in DIR
nginx_temp_dirs() {
    local dir=$1 v m
    v=$(nginx -V 2>&1)
    printf '    client_body_temp_path "%s/client_body";\n' "$dir"
    for m in proxy fastcgi uwsgi scgi; do
        [[ $v == *"--without-http_${m}_module"* ]] && continue
        printf '    %s_temp_path "%s/%s";\n' "$m" "$dir" "$m"
    done
}

# nginx_proxy_conf DIR PORT UP_PORT WORKERS USER_LINE: the nginx.conf of the reverse proxy the
# gateway is compared with (nginx in DIR on 127.0.0.1:PORT in front of 127.0.0.1:UP_PORT, keep-alive
# both ways), on stdout
nginx_proxy_conf() {
    local dir=$1 port=$2 up_port=$3 workers=$4 user_line=$5
    cat <<EOF
$user_line
daemon off;
worker_processes $workers;
pid "$dir/nginx.pid";
error_log "$dir/error.log" warn;
events { worker_connections 8192; }
http {
    access_log off;
$(nginx_temp_dirs "$dir")
    keepalive_timeout 65s;
    keepalive_requests 10000000;
    upstream up {
        server 127.0.0.1:$up_port;
        keepalive 64;
        keepalive_requests 10000000;
        keepalive_timeout 30s;
    }
    server {
        listen 127.0.0.1:$port;
        location / {
            proxy_pass http://up;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_read_timeout 30s;
        }
    }
}
EOF
}

nginx_user_line() {
    if [[ $EUID -eq 0 ]]; then
        if getent passwd nobody >/dev/null 2>&1 && getent group nogroup >/dev/null 2>&1; then
            chmod 0711 "$BENCH_TMP"
            printf 'user nobody nogroup;\n'
        else
            printf 'user root root;\n'
        fi
    fi
}

# start_nginx NAME CONF -> sets STARTED_PID
start_nginx() {
    local name=$1 conf=$2 dir
    dir=$(dirname "$conf")
    nginx -t -q -p "$dir" -c "$conf" -e "$dir/error.log" \
        || { tail -n 20 "$dir/error.log" >&2 2>/dev/null || true; die "$name: nginx config test failed"; }
    nginx -p "$dir" -c "$conf" -e "$dir/error.log" </dev/null >"$dir/stdout.log" 2>&1 &
    STARTED_PID=$!
    PIDS+=("$STARTED_PID")
}

# check_jg_config: journeygate (JG_BIN) must accept BENCH_TMP/jg.json; its answer is kept in
# BENCH_TMP/check-config.out
check_jg_config() {
    if ! "$JG_BIN" check-config --config "$BENCH_TMP/jg.json" >"$BENCH_TMP/check-config.out" 2>&1; then
        sed 's/^/  /' "$BENCH_TMP/check-config.out" >&2
        die "journeygate check-config refused the generated configuration"
    fi
}

# start_google_op PORT CLIENT_ID CLIENT_SECRET REDIRECT_URI: tests/peers/google-op.mjs (oidc-provider)
# from PEERS_DIR, waited for (it prints one line "READY <port>" when listening, within
# OP_START_TIMEOUT_S) -> sets OP_PID, OP_LOG
start_google_op() {
    local port=$1 i word got
    OP_LOG="$BENCH_TMP/google-op.log"
    node "$PEERS_DIR/google-op.mjs" --port "$port" --client-id "$2" --client-secret "$3" --redirect-uri "$4" \
        </dev/null >"$BENCH_TMP/google-op.out" 2>"$OP_LOG" &
    OP_PID=$!
    PIDS+=("$OP_PID")
    for (( i = 0; ; i++ )); do
        check_alive "google-op" "$OP_PID" "$OP_LOG"
        if read -r word got 2>/dev/null <"$BENCH_TMP/google-op.out" && [[ $word == READY ]]; then
            [[ $got == "$port" ]] || die "google-op listens on $got, expected $port"
            return 0
        fi
        (( i < OP_START_TIMEOUT_S * 10 )) || { tail -n 20 "$OP_LOG" >&2; die "google-op did not print READY within ${OP_START_TIMEOUT_S}s"; }
        sleep 0.1
    done
}

# start_journeygate PORT: JG_BIN serve with BENCH_TMP/jg.json, waited for on PORT -> sets JG_PID, JG_LOG
start_journeygate() {
    JG_LOG="$BENCH_TMP/jg.log"
    "$JG_BIN" serve --config "$BENCH_TMP/jg.json" </dev/null >"$BENCH_TMP/jg.out" 2>"$JG_LOG" &
    JG_PID=$!
    PIDS+=("$JG_PID")
    wait_listen "journeygate" "$JG_PID" "$1" "$JG_LOG"
}

# wait_provider_ready URL: a provider loads discovery and keys in the background and until then a
# login (URL: the gateway's /.auth/login/NAME) answers 503; waits for its 302 (READY_TIMEOUT_S)
wait_provider_ready() {
    local i code
    for (( i = 0; ; i++ )); do
        check_alive "journeygate" "$JG_PID" "$JG_LOG"
        code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$1" || true)
        [[ $code == 302 ]] && return 0
        (( i < READY_TIMEOUT_S * 5 )) || { tail -n 20 "$JG_LOG" >&2; die "provider not ready within ${READY_TIMEOUT_S}s (last status $code from $1)"; }
        sleep 0.2
    done
}

# run_wrk LABEL URL CONNS SECONDS OUTFILE [HEADER] -> sets RPS, P99_MS, REQS; returns 1 on errors
# (wrk failed, socket errors, or answers other than 2xx/3xx); uses THREADS
run_wrk() {
    local label=$1 url=$2 conns=$3 secs=$4 out=$5 header=${6:-} rc=0 parsed
    local -a hdr=()
    [[ -n $header ]] && hdr=(-H "$header")
    timeout --kill-after=5 $(( secs + 30 )) \
        wrk -t"$THREADS" -c"$conns" -d"${secs}s" --latency "${hdr[@]}" "$url" \
        </dev/null >"$out" 2>&1 &
    FG_PID=$!
    wait "$FG_PID" || rc=$?
    FG_PID=""
    # Fields: rps p99_ms requests socket_errors non2xx
    parsed=$(awk '
        function to_ms(v,   num, unit) {
            num = v; sub(/[a-z]+$/, "", num)
            unit = v; sub(/^[0-9.]+/, "", unit)
            if (unit == "us") return num / 1000
            if (unit == "ms") return num + 0
            if (unit == "s")  return num * 1000
            if (unit == "m")  return num * 60000
            if (unit == "h")  return num * 3600000
            return -1
        }
        /^Requests\/sec:/           { rps = $2 }
        $1 == "99%"                 { p99 = to_ms($2) }
        / requests in /             { reqs = $1 }
        /Socket errors:/            { line = $0; gsub(/[^0-9 ]/, " ", line); n = split(line, f, " ")
                                      for (i = 1; i <= n; i++) serr += f[i] }
        /Non-2xx or 3xx responses:/ { non2xx = $NF }
        END {
            if (rps == "" || p99 == "") { print "PARSE_ERROR"; exit }
            printf "%s %.3f %d %d %d\n", rps, p99, reqs, serr, non2xx
        }' "$out")
    if (( rc != 0 )) || [[ $parsed == PARSE_ERROR ]]; then
        log "  $label: wrk failed (exit $rc); output:" >&2
        sed 's/^/    /' "$out" >&2
        return 1
    fi
    local serr non2xx
    # shellcheck disable=SC2034  # RPS and P99_MS are the caller's
    read -r RPS P99_MS REQS serr non2xx <<<"$parsed"
    if (( REQS == 0 || serr != 0 || non2xx != 0 )); then
        log "  $label: ERRORS: requests=$REQS socket_errors=$serr non_2xx_3xx=$non2xx; wrk output:" >&2
        sed 's/^/    /' "$out" >&2
        return 1
    fi
    return 0
}

# ---------------------------------------------------------------------------
# statistics
# ---------------------------------------------------------------------------

median() {
    printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END {
        if (NR == 0) { print "nan"; exit }
        if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.3f", a / b; else print "nan" }'; }

# ci95 R...: a 95% bootstrap interval of the median of the given ratios (5000 resamples, fixed seed
# so that the same figures give the same interval), "[lo, hi]"; "[n/a]" for fewer than 4
ci95() {
    python3 - "$@" <<'PY_EOF'
import random, statistics, sys
v = [float(x) for x in sys.argv[1:] if x != "nan"]
if len(v) < 4:
    print("[n/a]")
else:
    rnd = random.Random(20261122)
    meds = sorted(statistics.median(rnd.choices(v, k=len(v))) for _ in range(5000))
    print("[%.3f, %.3f]" % (meds[int(0.025 * len(meds))], meds[int(0.975 * len(meds)) - 1]))
PY_EOF
}
