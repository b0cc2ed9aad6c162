#!/usr/bin/env bash
# The README's main command: installs what a fresh Debian 12 machine lacks, builds engram, and
# runs the demo. Until engramd exists this is the CRDT kernel's demo: three hosts' replicas of
# one shared scope, a partition, concurrent writes, and convergence by anti-entropy.
set -euo pipefail
cd "$(dirname "$0")/.."
deploy/install-deps.sh
cmake -S . -B build >/dev/null
cmake --build build -j "$(nproc 2>/dev/null || echo 2)" --target engram-crdt-demo
exec build/deploy/engram-crdt-demo
