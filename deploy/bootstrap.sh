#!/usr/bin/env bash
# Install every Debian bookworm package journeygate's build, tests, benchmarks
# and demo need. Idempotent: only missing packages are installed, and
# `apt-get update` runs at most once, only when something is missing.
#
# Usage: deploy/bootstrap.sh            (as root)
#        sudo deploy/bootstrap.sh       (or as a user: sudo is used for apt)
#        deploy/bootstrap.sh --check    (report missing packages; exit 1 if any)
set -euo pipefail

# Packages, grouped by purpose. Add new ones here.
BUILD_PACKAGES=(build-essential cmake pkg-config clang-format)
LIB_PACKAGES=(libh2o-evloop-dev libh2o-dev libssl-dev libjansson-dev liboauth2-dev
              libcjose-dev libcurl4-openssl-dev liblmdb-dev lmdb-utils)
TEST_PACKAGES=(check libcmocka-dev python3 openssl curl
               python3-cryptography strace)  # the integration tests forge sealed cookies and trace syscalls
# libFuzzer targets (tests/fuzz): clang with its fuzzer runtime
FUZZ_PACKAGES=(clang libclang-rt-14-dev)
BENCH_DEMO_PACKAGES=(nginx-light wrk)
# end-to-end browser tests (tests/e2e, driven by playwright-core from tests/peers)
E2E_PACKAGES=(chromium)
# Installed only when no `node` is on PATH (CI machines ship Node 20 already).
NODE_PACKAGES=(nodejs npm)

export DEBIAN_FRONTEND=noninteractive

check_only=0
case "${1:-}" in
    "") ;;
    --check) check_only=1 ;;
    -h|--help) sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "bootstrap: unknown argument: $1 (try --help)" >&2; exit 2 ;;
esac

wanted=("${BUILD_PACKAGES[@]}" "${LIB_PACKAGES[@]}" "${TEST_PACKAGES[@]}" "${FUZZ_PACKAGES[@]}"
        "${BENCH_DEMO_PACKAGES[@]}" "${E2E_PACKAGES[@]}")
# The test peers (tests/peers/package.json "engines") run on Node.js 18 (Debian bookworm's) and later.
NODE_MIN_MAJOR=18
node_note=""
if command -v node >/dev/null 2>&1; then
    node_version=$(node --version 2>/dev/null || echo '?')
    node_major=${node_version#v}; node_major=${node_major%%.*}
    if ! [[ "$node_major" =~ ^[0-9]+$ ]] || ((node_major < NODE_MIN_MAJOR)); then
        echo "bootstrap: node $node_version found at $(command -v node), but the test peers need Node.js >= $NODE_MIN_MAJOR;" \
             "install Debian's nodejs (18) or a newer Node and put it first on PATH" >&2
        exit 1
    fi
    node_note=" (node $node_version already present: nodejs skipped)"
    # Debian's nodejs comes without npm: a machine with only the nodejs package still needs it
    if ! command -v npm >/dev/null 2>&1; then
        wanted+=(npm)
    fi
else
    wanted+=("${NODE_PACKAGES[@]}")
fi

is_installed() {
    local status
    status=$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null) || return 1
    [[ "$status" == "install ok installed" ]]
}

missing=()
for pkg in "${wanted[@]}"; do
    is_installed "$pkg" || missing+=("$pkg")
done

if ((${#missing[@]} == 0)); then
    echo "bootstrap: all ${#wanted[@]} packages already installed${node_note}"
    exit 0
fi

if ((check_only)); then
    echo "bootstrap: ${#missing[@]} of ${#wanted[@]} packages missing: ${missing[*]}${node_note}"
    exit 1
fi

# Root runs apt directly; anyone else goes through sudo (which resets the
# environment, so DEBIAN_FRONTEND is passed explicitly).
as_root=()
if ((EUID != 0)); then
    if ! command -v sudo >/dev/null 2>&1; then
        echo "bootstrap: missing ${missing[*]}; run as root or install sudo" >&2
        exit 1
    fi
    as_root=(sudo env DEBIAN_FRONTEND=noninteractive)
fi

"${as_root[@]}" apt-get update -q
"${as_root[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"

# Verify: a package apt could not install must not pass silently.
still_missing=()
for pkg in "${missing[@]}"; do
    is_installed "$pkg" || still_missing+=("$pkg")
done
if ((${#still_missing[@]} > 0)); then
    echo "bootstrap: failed to install: ${still_missing[*]}" >&2
    exit 1
fi
echo "bootstrap: installed ${#missing[@]} package(s) (${missing[*]}); all ${#wanted[@]} present${node_note}"
