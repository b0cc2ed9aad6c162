#!/usr/bin/env bash
# The README's main command: installs what a fresh Debian 12 machine lacks, builds engram,
# starts a three-node cluster on loopback (deploy/local-cluster.sh: cluster key, admission
# cards, CurveZMQ gossip) and shows agents on three hosts sharing memory through their own
# nodes with the CLI: private notes that never leave a node, a task blackboard written on one
# node and read on another after a causal token, concurrent work from three nodes converging,
# a node killed with SIGKILL that catches up after its restart, a write acknowledged by all
# three nodes, and the cluster's status. The data lives in a temporary directory removed at
# the end (ENGRAM_DEMO_DIR keeps it elsewhere; ENGRAM_BASE_PORT moves the ports). Every command
# it runs is echoed first as `+ COMMAND`, ready to paste into a shell; a command repeated until
# replication has done its part is echoed once, followed by how long that took.
set -euo pipefail
cd "$(dirname "$0")/.."
exec 3>&1 # where commands are echoed: the terminal, even from inside $(...) or past >/dev/null

# show CMD...: prints `+ CMD`, each word quoted so that the line can be pasted into a shell
show() {
    local word line="+"
    for word in "$@"; do
        if [[ $word =~ ^[[:alnum:]_./:=@%+,-]+$ ]]; then
            line+=" $word"
        else
            line+=" '${word//\'/\'\\\'\'}'"
        fi
    done
    printf '%s\n' "$line" >&3
}
# run CMD...: shows CMD, then runs it
run() {
    show "$@"
    "$@"
}
# microseconds since the epoch
now_us() { echo "${EPOCHREALTIME//[!0-9]/}"; }

run deploy/install-deps.sh
run cmake -S . -B build >/dev/null
run cmake --build build -j "$(nproc 2>/dev/null || echo 2)" --target engramd engram-cli >/dev/null

dir=${ENGRAM_DEMO_DIR:-$(run mktemp -d /tmp/engram-demo.XXXXXX)}
engram=build/bin/engram
cleanup() {
    run deploy/local-cluster.sh stop "$dir" || true
    [ -n "${ENGRAM_DEMO_DIR:-}" ] || run rm -rf "$dir"
}
trap cleanup EXIT

# say LINE...: a heading
say() {
    echo
    printf '\033[1m%s\033[0m\n' "$@"
}
# on NODE as AGENT: the agent talks only to its own host's node
on() {
    local node=$1 agent=$2
    shift 2
    run "$engram" --socket "ipc://$dir/n$node/api.sock" --agent "$agent" --user alice "$@"
}
# until_ WHAT CHECK CMD...: shows CMD, then runs it until it succeeds and CHECK accepts its
# output, and says how long WHAT took (replication is asynchronous: this shows how long it
# takes here)
until_() {
    local what=$1 check=$2 start
    shift 2
    start=$(now_us)
    show "$@"
    until "$@" 2>/dev/null | "$check" >/dev/null 2>&1; do
        if (($(now_us) - start > 30000000)); then
            echo "$what: not within 30 s" >&2
            exit 1
        fi
        sleep 0.05
    done
    local us=$(($(now_us) - start))
    printf '  (%s after %d.%02d s)\n' "$what" $((us / 1000000)) $((us % 1000000 / 10000))
}
# waits until node NODE holds KEY in SCOPE
until_seen() {
    until_ "node $1 has $3" cat "$engram" --socket "ipc://$dir/n$1/api.sock" get "$2" "$3"
}
# reads `engram cluster status --json`: succeeds if it lists three members, all alive
three_alive() {
    python3 -c 'import json, sys
members = json.load(sys.stdin)["members"]
sys.exit(len(members) != 3 or any(m["state"] not in ("alive", "self") for m in members))'
}

say "Starting three nodes (keys, admission and join done by deploy/local-cluster.sh)"
run deploy/local-cluster.sh 3 "$dir"
# Each agent talks to its node with its own CURVE key pair, kept in $ENGRAM_HOME/agents; the
# node's key is pinned from the certificate it publishes beside its socket.
run deploy/local-cluster.sh agents "$dir" cli researcher-1 writer-1 reviewer-1 agent-1 agent-2 \
    agent-3
export ENGRAM_HOME="$dir/home"

say "1. The researcher on node 1 keeps a private note: it never leaves node 1"
on 1 researcher-1 put private churn-source "CRM export, Q3, churn 4.1% -> 3.9%"
on 2 writer-1 get private churn-source || echo "(exit $?: not found, as it should be)"

say "2. It shares the note into the task blackboard run:q3-proposal and drafts; the writer on" \
    "   node 2 reads with the researcher's causal token and sees everything the researcher saw"
on 1 researcher-1 share churn-source run:q3-proposal
on 1 researcher-1 log append run:q3-proposal findings "churn fell 0.2 points"
token=$(on 1 researcher-1 put run:q3-proposal draft "Q3: churn down, EU up" | tail -n 1)
on 2 writer-1 get run:q3-proposal draft --after "$token"
on 2 writer-1 log range run:q3-proposal findings

say "3. Three agents on three nodes work at once; every node converges to the same state"
on 1 researcher-1 set add run:q3-proposal sources crm:q3-export
on 2 writer-1 set add run:q3-proposal sources analyst-call
on 3 reviewer-1 set add run:q3-proposal sources eu-sales-deck
on 1 researcher-1 counter add run:q3-proposal tokens 1800
on 2 writer-1 counter add run:q3-proposal tokens 950
on 3 reviewer-1 counter add run:q3-proposal tokens 400
on 3 reviewer-1 put run:q3-proposal review "cite the EU deck"
until_seen 1 run:q3-proposal review
run sleep 1
for n in 1 2 3; do on "$n" agent-$n set members run:q3-proposal sources | tr '\n' ' '; echo; done
for n in 1 2 3; do on "$n" agent-$n counter get run:q3-proposal tokens; done

say "4. Node 3 is killed (SIGKILL) while node 1 keeps writing; restarted, it catches up"
run kill -KILL "$(cat "$dir/n3/pid")"
for i in 1 2 3 4 5; do
    on 1 researcher-1 log append run:q3-proposal findings "note $i while node 3 is down" >/dev/null
done
on 1 researcher-1 put run:q3-proposal status "ready for review" >/dev/null
run deploy/local-cluster.sh restart "$dir" 3
until_seen 3 run:q3-proposal status
on 3 reviewer-1 get run:q3-proposal status
on 3 reviewer-1 log range run:q3-proposal findings

say "5. A write acknowledged only once all three nodes hold it"
on 2 writer-1 put run:q3-proposal final "Q3 proposal v1" --replicas 3

say "6. The cluster as node 1 sees it, once every node sees every member alive again:" \
    "   members, lag, version vectors, gossip counters"
for n in 1 2 3; do
    until_ "node $n sees every member alive" three_alive \
        "$engram" --socket "ipc://$dir/n$n/api.sock" cluster status --json
done
run "$engram" --socket "ipc://$dir/n1/api.sock" cluster status
