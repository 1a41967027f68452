#!/usr/bin/env bash
# The whole test suite: installs what is missing, builds, and runs every test
# (unit, integration) under CTest — once with a normal build and once with
# AddressSanitizer + UndefinedBehaviorSanitizer — then runs the libFuzzer targets briefly (clang).
#
# Usage: tests/run.sh             both builds
#        tests/run.sh --quick     the normal build only
set -euo pipefail
cd "$(dirname "$0")/.."

quick=0
case "${1:-}" in
    "") ;;
    --quick) quick=1 ;;
    *) echo "usage: tests/run.sh [--quick]" >&2; exit 2 ;;
esac

deploy/bootstrap.sh
# the test peers and the browser tests pin versions that run on Node.js 18 (Debian bookworm's) and later
node_version=$(node --version 2>/dev/null || echo none)
node_major=${node_version#v}; node_major=${node_major%%.*}
if ! [[ "$node_major" =~ ^[0-9]+$ ]] || ((node_major < 18)); then
    echo "tests/run.sh: the test peers need Node.js >= 18 (found: $node_version); deploy/bootstrap.sh installs Debian's" >&2
    exit 1
fi
# the test peers (oidc-provider playing Google, rogue-op, the Facebook stand-in), pinned by package-lock.json
if [[ ! -d tests/peers/node_modules || tests/peers/package-lock.json -nt tests/peers/node_modules ]]; then
    (cd tests/peers && npm ci --no-audit --no-fund --loglevel=error)
fi
jobs=$(nproc)

run_suite() {
    local dir=$1; shift
    cmake -S . -B "$dir" "$@" >/dev/null
    cmake --build "$dir" -j"$jobs"
    # integration tests start servers; two at a time keeps a 2-core machine responsive
    (cd "$dir" && ctest --output-on-failure -j2 --timeout 300)
}

echo "== build and test: RelWithDebInfo =="
run_suite build -DCMAKE_BUILD_TYPE=RelWithDebInfo
if ((quick == 0)); then
    echo "== build and test: ASan + UBSan =="
    export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:halt_on_error=1
    export LSAN_OPTIONS="suppressions=$PWD/tests/lsan.supp:print_suppressions=0"
    export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
    run_suite build-asan -DCMAKE_BUILD_TYPE=Debug -DJG_SANITIZE=ON
    echo "== fuzz targets: libFuzzer + ASan + UBSan (clang), ${JG_FUZZ_SECONDS:-20} s each =="
    CC=clang cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=Debug -DJG_FUZZ=ON -DJG_FUZZ_SECONDS="${JG_FUZZ_SECONDS:-20}" >/dev/null
    cmake --build build-fuzz -j"$jobs" --target fuzz
    (cd build-fuzz && ctest --output-on-failure -R '^fuzz_' --timeout 300)
fi
