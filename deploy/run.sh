#!/usr/bin/env bash
# The README's main command: installs what a fresh Debian 12 machine lacks, builds engram,
# starts a real engramd node, and shows two agents sharing memory through it with the CLI:
# a researcher keeps private notes and shares one, both work on a task blackboard, a writer
# reads with the researcher's causal token, and the node survives a restart with everything
# intact. The node's data lives in a temporary directory removed at the end (ENGRAM_DEMO_DIR
# keeps it elsewhere).
set -euo pipefail
cd "$(dirname "$0")/.."
deploy/install-deps.sh
cmake -S . -B build >/dev/null
cmake --build build -j "$(nproc 2>/dev/null || echo 2)" --target engramd engram-cli >/dev/null

dir=${ENGRAM_DEMO_DIR:-$(mktemp -d /tmp/engram-demo.XXXXXX)}
export ENGRAM_SOCKET="ipc://$dir/engram.sock"
engramd=build/node/engramd
engram=build/node/engram
pid=
stop() { [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null; pid=; }
cleanup() { stop; [ -z "${ENGRAM_DEMO_DIR:-}" ] && rm -rf "$dir"; }
trap cleanup EXIT

start() {
    "$engramd" --data "$dir/data" --api "$ENGRAM_SOCKET" >>"$dir/engramd.log" 2>&1 &
    pid=$!
    for _ in $(seq 50); do "$engram" stats >/dev/null 2>&1 && return; sleep 0.1; done
    echo "engramd did not start; see $dir/engramd.log" >&2; exit 1
}
say() { printf '\n\033[1m%s\033[0m\n' "$*"; }
run() { printf '$ %s\n' "$*"; "$@"; }
researcher() { run "$engram" --agent researcher-1 --user alice "$@"; }
writer() { run "$engram" --agent writer-1 --user alice "$@"; }

start
say "engramd is running (data in $dir/data); two agents act for user alice"

say "1. The researcher keeps a private note; the writer cannot see it"
researcher put private churn-source "CRM export, Q3, churn 4.1% -> 3.9%"
writer get private churn-source || echo "(exit $?: not found, as it should be: private is per agent)"

say "2. The researcher shares it into the task blackboard run:q3-proposal"
researcher share churn-source run:q3-proposal
writer --json get run:q3-proposal churn-source

say "3. Both work on the blackboard: findings log, sources set, token counter"
researcher log append run:q3-proposal findings "churn fell 0.2 points"
researcher log append run:q3-proposal findings "EU revenue up 11%"
researcher set add run:q3-proposal sources crm:q3-export
writer set add run:q3-proposal sources analyst-call
researcher counter add run:q3-proposal tokens 1800
writer counter add run:q3-proposal tokens 950
token=$(researcher put run:q3-proposal draft "Q3: churn down, EU up" | tail -n 1)

say "4. The writer reads the draft after the researcher's causal token"
writer get run:q3-proposal draft --after "$token"
writer log range run:q3-proposal findings
writer set members run:q3-proposal sources
writer counter get run:q3-proposal tokens
writer ls run:q3-proposal

say "5. A memory for alice, kept for an hour"
id=$(researcher remember user:alice "prefers summaries in bullet points" --meta '{"topic":"style"}' --ttl 3600 | tail -n 1)
writer get user:alice "$id"

say "6. Restart the node: everything is still there"
stop
start
writer get run:q3-proposal draft
writer history run:q3-proposal draft
writer stats
