#!/usr/bin/env bash
# bench/store.sh - what the customer store (gateway/store.h, LMDB) costs on this machine.
#
#   1. synced writes: N_FIRST first logins (new customers, store_login), the same identities
#      again (returning logins) and one session each (store_session_put): one synced write
#      transaction per call, the store's share of a real sign-in;
#   2. N_LOOKUPS store_session_get() of random existing sessions, on 1 thread and then split
#      over LOOKUP_THREADS threads;
#   3. a store of POPULATION customers loaded with store_set_durable(0) (no sync per commit, one
#      at the end): load time, size on disk per customer (data.mdb and `mdb_stat -efa`), and the
#      p50/p99/max latency of store_customer_get / _by_email / _by_identity over LATENCY_LOOKUPS
#      random lookups.
#
# Builds nothing: runs the store_bench program (bench/store_bench.c, CMake target store_bench)
# on stores in a fresh temp dir under TMPDIR (the filesystem matters: fsync), removed on exit.
# The run is bounded by TIMEOUT_S; Ctrl-C stops it and cleans up.
#
# Exit status: 0 when everything ran; 1 when a store call failed or answered wrongly, or on a
# setup error; 2 on bad usage; 124 when TIMEOUT_S ran out.
#
# See bench/README.md.

set -euo pipefail

usage() {
    cat <<'EOF'
Usage: bench/store.sh [options]

Options (each also settable via the environment variable in brackets):
  --store-bench PATH       the store_bench program  [STORE_BENCH, default <repo>/build/bench/store_bench]
  --first N                identities (and sessions) for the synced writes   [N_FIRST, default 2000]
  --lookups N              session lookups per run              [N_LOOKUPS, default 1000000]
  --threads N              threads of the second lookup run     [LOOKUP_THREADS, default 2]
  --population N           customers in the large store         [POPULATION, default 1000000]
  --latency-lookups N      random lookups of each kind in it    [LATENCY_LOOKUPS, default 100000]
  --map-mb N               initial map size for store_open      [MAP_MB, default 1024]
  --seed N                 random seed of the lookups           [SEED, default 1]
  --timeout SECONDS        stop the run after this long         [TIMEOUT_S, default 900]
  --keep-tmp               keep the temp dir (the two stores)   [KEEP_TMP=1]
  -h, --help               show this help
The temp dir is created under $TMPDIR (default /tmp); mdb_stat (lmdb-utils) is used when present
(MDB_STAT=PATH to choose another).
EOF
}

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$BENCH_DIR/.." && pwd)
BENCH_NAME=store.sh
# shellcheck source=bench/lib.sh
source "$BENCH_DIR/lib.sh"

STORE_BENCH=${STORE_BENCH:-$ROOT/build/bench/store_bench}
N_FIRST=${N_FIRST:-2000}
N_LOOKUPS=${N_LOOKUPS:-1000000}
LOOKUP_THREADS=${LOOKUP_THREADS:-2}
POPULATION=${POPULATION:-1000000}
LATENCY_LOOKUPS=${LATENCY_LOOKUPS:-100000}
MAP_MB=${MAP_MB:-1024}
SEED=${SEED:-1}
TIMEOUT_S=${TIMEOUT_S:-900}
KEEP_TMP=${KEEP_TMP:-0}
TMP_PARENT=${TMPDIR:-/tmp}

readonly KILL_AFTER_S=10          # after TIMEOUT_S: SIGTERM, then SIGKILL this much later
readonly BYTES_PER_CUSTOMER=1500  # disk needed per customer, with margin (about 1 KB is measured)

need_arg() { [[ $# -ge 2 ]] || { printf 'store.sh: option %s needs an argument\n' "$1" >&2; exit 2; }; }

while [[ $# -gt 0 ]]; do
    case $1 in
        --store-bench) need_arg "$@"; STORE_BENCH=$2; shift 2 ;;
        --first) need_arg "$@"; N_FIRST=$2; shift 2 ;;
        --lookups) need_arg "$@"; N_LOOKUPS=$2; shift 2 ;;
        --threads) need_arg "$@"; LOOKUP_THREADS=$2; shift 2 ;;
        --population) need_arg "$@"; POPULATION=$2; shift 2 ;;
        --latency-lookups) need_arg "$@"; LATENCY_LOOKUPS=$2; shift 2 ;;
        --map-mb) need_arg "$@"; MAP_MB=$2; shift 2 ;;
        --seed) need_arg "$@"; SEED=$2; shift 2 ;;
        --timeout) need_arg "$@"; TIMEOUT_S=$2; shift 2 ;;
        --keep-tmp) KEEP_TMP=1; shift ;;
        -h | --help) usage; exit 0 ;;
        *) printf 'store.sh: unknown option %s\n' "$1" >&2; usage >&2; exit 2 ;;
    esac
done

for pair in "N_FIRST=$N_FIRST" "N_LOOKUPS=$N_LOOKUPS" "LOOKUP_THREADS=$LOOKUP_THREADS" \
    "POPULATION=$POPULATION" "LATENCY_LOOKUPS=$LATENCY_LOOKUPS" "MAP_MB=$MAP_MB" "SEED=$SEED" \
    "TIMEOUT_S=$TIMEOUT_S"; do
    [[ ${pair#*=} =~ ^[1-9][0-9]{0,11}$ || $pair == SEED=0 ]] ||
        { printf 'store.sh: %s must be a positive integer\n' "$pair" >&2; exit 2; }
done

[[ -x $STORE_BENCH ]] ||
    die "no store_bench program at $STORE_BENCH: build it first (cmake --build build --target store_bench) or set STORE_BENCH"
command -v timeout >/dev/null || die "coreutils timeout is required"
[[ -d $TMP_PARENT ]] || die "TMPDIR $TMP_PARENT is not a directory"
if ! command -v "${MDB_STAT:-mdb_stat}" >/dev/null; then
    log "store.sh: note: ${MDB_STAT:-mdb_stat} not found (Debian: lmdb-utils); only data.mdb's size will be reported"
fi

# the large store must fit: refuse early rather than fill the disk
avail_kb=$(df -Pk "$TMP_PARENT" | awk 'NR == 2 { print $4 }')
need_kb=$(( (POPULATION + N_FIRST * 4) * BYTES_PER_CUSTOMER / 1024 + 65536 ))
(( avail_kb >= need_kb )) ||
    die "$TMP_PARENT has $(( avail_kb / 1024 )) MB free; POPULATION=$POPULATION needs about $(( need_kb / 1024 )) MB"

# the temp dir (bench/lib.sh), removed on any exit; timeout passes a SIGTERM on to store_bench and
# kills it KILL_AFTER_S later, so it gets a little longer than that to exit
readonly STOP_TIMEOUT_S=$(( KILL_AFTER_S + 5 ))
bench_tmp "$TMP_PARENT" jg-store-bench
TMP=$BENCH_TMP

commit=$(bench_commit "$ROOT")
log "store.sh: $(date -u '+%Y-%m-%d %H:%M:%S UTC'), commit $commit, program $STORE_BENCH"
log "store.sh: temp dir $TMP, at most ${TIMEOUT_S} s"
log ""

started=$SECONDS
# in the background so that a signal reaches the trap at once instead of after the run
rc=0
run_fg timeout --kill-after="$KILL_AFTER_S" "$TIMEOUT_S" "$STORE_BENCH" \
    --first "$N_FIRST" --lookups "$N_LOOKUPS" --threads "$LOOKUP_THREADS" \
    --population "$POPULATION" --latency-lookups "$LATENCY_LOOKUPS" --map-mb "$MAP_MB" \
    --seed "$SEED" "$TMP" || rc=$?

log ""
case $rc in
    0) log "store.sh: done in $(( SECONDS - started )) s" ;;
    124 | 137) log "store.sh: error: store_bench did not finish within ${TIMEOUT_S} s (lower POPULATION or raise TIMEOUT_S)" >&2
        rc=124 ;;
    *) log "store.sh: error: store_bench failed (exit status $rc)" >&2 ;;
esac
exit "$rc"
