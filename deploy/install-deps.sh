#!/usr/bin/env bash
# Installs the Debian 12 packages engram needs to build and test. Idempotent: packages already
# present are left alone, and apt is only asked when something is missing.
#
#   deploy/install-deps.sh            build + test dependencies
#   deploy/install-deps.sh --bench    also the peers the benchmarks compare against
#   deploy/install-deps.sh --fuzz     also clang and its runtime for ENGRAM_FUZZ=ON
set -euo pipefail

packages=(build-essential cmake pkg-config
          libzmq3-dev libczmq-dev librocksdb-dev libprotobuf-c-dev protobuf-c-compiler
          libsodium-dev libjansson-dev libutf8proc-dev libzstd-dev libcmocka-dev valgrind python3
          libstemmer-dev libsqlite3-dev fortunes python3-zmq python3-protobuf protobuf-compiler
          iproute2 nftables iptables libfaketime python3-matplotlib libnetfilter-queue-dev
          libmicrohttpd-dev python3-prometheus-client chromium systemd python3-yaml
          libmimalloc-dev)
          # search: Snowball stemmers; SQLite FTS5, the peer its bench and tests compare with;
          # the fortunes, a corpus of short texts for its BM25 test. iproute2 to
          # libnetfilter-queue-dev: jepsen/ (namespaces, partitions, skew, plots, the packet
          # delayer). python3-zmq, python3-protobuf, protobuf-compiler: the Python client
          # (node/client/python). libmicrohttpd: engramd's --metrics listener;
          # python3-prometheus-client: the Prometheus project's parser, which
          # tests/cli/metrics_test.py reads /metrics with; chromium: the status page's browser
          # test. systemd: systemd-analyze and systemd-sysusers, which check
          # deploy/engramd.service; python3-yaml reads deploy/'s compose and Kubernetes files
          # (tests/deploy). libmimalloc-dev: engramd's allocator (README, "Running a node")
for arg in "$@"; do
    case "$arg" in
        --bench) packages+=(redis-server redis-tools etcd-server etcd-client rocksdb-tools
                             libhiredis-dev) ;;
        --fuzz)  packages+=(clang libclang-rt-14-dev) ;;
        *) echo "install-deps.sh: unknown option '$arg'" >&2; exit 2 ;;
    esac
done
# tests/mcp runs on node (18.20 or newer): Debian's nodejs and npm, unless a node is on PATH already
command -v node >/dev/null && command -v npm >/dev/null || packages+=(nodejs npm)

missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ "${#missing[@]}" -ne 0 ]; then
    if [ "$(id -u)" -ne 0 ]; then
        SUDO=sudo
    else
        SUDO=
    fi
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get update -q
    $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

# tests/mcp's npm packages, exactly as its package-lock.json pins them: installed when
# node_modules is missing or older than the lock
mcp="$(cd "$(dirname "$0")/.." && pwd)/tests/mcp"
if [ ! -d "$mcp/node_modules" ] || [ "$mcp/package-lock.json" -nt "$mcp/node_modules" ]; then
    npm ci --prefix "$mcp" --no-audit --no-fund --loglevel=error >/dev/null
    touch "$mcp/node_modules"
fi
