#!/usr/bin/env bash
# bench/console.sh - the console's figures at scale: console_bench (bench/console_bench.c, CMake target
# console_bench) in a temp dir seeds TOUCHPOINTS touchpoints over CUSTOMERS customers across DAYS days
# (4 channels, the 7 lifecycle stages, sign-ins in the audit trail) with store_set_durable(0), then times
# the analytics snapshot build (bytes per touchpoint, RSS) and every figure query for the 30 days ending
# today, REPEATS times each (p50 / max, query + JSON text). Target: every answer under 200 ms.
#
# The issue's figure is 10,000,000 touchpoints over 1,000,000 customers (--touchpoints 10000000
# --customers 1000000: about 3.5 GB of disk, a few minutes); the default is a tenth of it.
#
# Exit status: 0 when everything ran (whether or not the target was met), 1 when something failed,
# 2 on bad usage, 124 when the run took longer than TIMEOUT_S. See bench/README.md.

set -euo pipefail

usage() {
    cat <<'USAGE'
Usage: bench/console.sh [options]

Options (each also settable via the environment variable in brackets):
  --console-bench PATH  the console_bench program  [CONSOLE_BENCH, default <repo>/build/bench/console_bench]
  --touchpoints N       touchpoints seeded          [TOUCHPOINTS, default 1000000]
  --customers N         customers they belong to    [CUSTOMERS, default 100000]
  --days N              days they span (>= 31)      [DAYS, default 35]
  --signins N           sign-in audit records       [SIGNINS, default 200000]
  --repeats N           runs of each query          [REPEATS, default 7]
  --timeout SECONDS     stop the run after this long [TIMEOUT_S, default 1800]
  --keep-tmp            keep the temp dir (the store) [KEEP_TMP=1]
  -h, --help            show this help
The temp dir is created under $TMPDIR (default /tmp).
USAGE
}

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$BENCH_DIR/.." && pwd)
BENCH_NAME=console.sh
# shellcheck source=bench/lib.sh
source "$BENCH_DIR/lib.sh"

CONSOLE_BENCH=${CONSOLE_BENCH:-$ROOT/build/bench/console_bench}
TOUCHPOINTS=${TOUCHPOINTS:-1000000}
CUSTOMERS=${CUSTOMERS:-100000}
DAYS=${DAYS:-35}
SIGNINS=${SIGNINS:-200000}
REPEATS=${REPEATS:-7}
TIMEOUT_S=${TIMEOUT_S:-1800}
KEEP_TMP=${KEEP_TMP:-0}
TMP_PARENT=${TMPDIR:-/tmp}

readonly KILL_AFTER_S=10
readonly BYTES_PER_TOUCHPOINT=400 # disk per touchpoint with margin (about 240 B is measured)
readonly STOP_TIMEOUT_S=$(( KILL_AFTER_S + 5 ))

need_arg() { [[ $# -ge 2 ]] || { printf 'console.sh: option %s needs an argument\n' "$1" >&2; exit 2; }; }

while [[ $# -gt 0 ]]; do
    case $1 in
        --console-bench) need_arg "$@"; CONSOLE_BENCH=$2; shift 2 ;;
        --touchpoints) need_arg "$@"; TOUCHPOINTS=$2; shift 2 ;;
        --customers) need_arg "$@"; CUSTOMERS=$2; shift 2 ;;
        --days) need_arg "$@"; DAYS=$2; shift 2 ;;
        --signins) need_arg "$@"; SIGNINS=$2; shift 2 ;;
        --repeats) need_arg "$@"; REPEATS=$2; shift 2 ;;
        --timeout) need_arg "$@"; TIMEOUT_S=$2; shift 2 ;;
        --keep-tmp) KEEP_TMP=1; shift ;;
        -h | --help) usage; exit 0 ;;
        *) printf 'console.sh: unknown option %s\n' "$1" >&2; usage >&2; exit 2 ;;
    esac
done

for pair in "TOUCHPOINTS=$TOUCHPOINTS" "CUSTOMERS=$CUSTOMERS" "DAYS=$DAYS" "SIGNINS=$SIGNINS" \
    "REPEATS=$REPEATS" "TIMEOUT_S=$TIMEOUT_S"; do
    [[ ${pair#*=} =~ ^[0-9]{1,11}$ ]] || { printf 'console.sh: %s must be a non-negative integer\n' "$pair" >&2; exit 2; }
done

[[ -x $CONSOLE_BENCH ]] ||
    die "no console_bench program at $CONSOLE_BENCH: build it first (cmake --build build --target console_bench) or set CONSOLE_BENCH"
command -v timeout >/dev/null || die "coreutils timeout is required"

avail_kb=$(df -Pk "$TMP_PARENT" | awk 'NR == 2 { print $4 }')
need_kb=$(( TOUCHPOINTS * BYTES_PER_TOUCHPOINT / 1024 + 65536 ))
(( avail_kb >= need_kb )) ||
    die "$TMP_PARENT has $(( avail_kb / 1024 )) MB free; $TOUCHPOINTS touchpoints need about $(( need_kb / 1024 )) MB"
MAP_MB=$(( need_kb / 1024 * 2 + 1024 ))

bench_tmp "$TMP_PARENT" jg-console-bench
log "console.sh: $(date -u '+%Y-%m-%d %H:%M:%S UTC'), commit $(bench_commit "$ROOT"), program $CONSOLE_BENCH"
log "console.sh: $(nproc) core(s), $(awk '/MemTotal/ { printf "%.1f GB", $2 / 1048576 }' /proc/meminfo) of memory, temp dir $BENCH_TMP ($(fs_name_of() { stat -f -c %T "$1"; }; fs_name_of "$BENCH_TMP"))"
rc=0
run_fg timeout --kill-after="$KILL_AFTER_S" "$TIMEOUT_S" "$CONSOLE_BENCH" --dir "$BENCH_TMP/store" \
    --touchpoints "$TOUCHPOINTS" --customers "$CUSTOMERS" --days "$DAYS" --signins "$SIGNINS" \
    --repeats "$REPEATS" --map-mb "$MAP_MB" || rc=$?
log "console.sh: store on disk: $(du -sh "$BENCH_TMP/store" 2>/dev/null | awk '{ print $1 }')"
(( rc == 0 )) || log "console.sh: console_bench exited with status $rc"
exit "$rc"
