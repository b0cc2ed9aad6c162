#!/usr/bin/env bash
# A cluster of engram nodes on this host's loopback, keys and admission done.
#
#   deploy/local-cluster.sh N DIR        start N nodes (creating the cluster on first use)
#   deploy/local-cluster.sh stop DIR     stop every node of DIR (SIGTERM, clean)
#   deploy/local-cluster.sh restart DIR I  restart node I on its data
#   deploy/local-cluster.sh agent DIR I NAME USER [RESOURCE]...
#                                        register agent NAME on node I, let USER act through
#                                        it, let it read and write each RESOURCE
#
# Prints one line per node started:
#   `node=I api=ENDPOINT gossip=ENDPOINT http=URL pid=PID id=NODE_ID`
# (NODE_ID: 16 hex digits, as `engram agent create --node` and `cluster remove` take it).
# Everything lives under DIR: the admin's $ENGRAM_HOME (DIR/home: cluster id, admin key, and
# the agents' CURVE key pairs: agents talk to a node with ENGRAM_HOME=DIR/home),
# node I's data, card, id and log (DIR/nI/), its API socket (ipc://DIR/nI/api.sock). Node I
# gossips on tcp://127.0.0.1:(ENGRAM_BASE_PORT + 10*I), introductions on the port after it,
# and serves its metrics and status page on http://127.0.0.1:(ENGRAM_BASE_PORT + 10*I + 2)/;
# nodes 2..N join through node 1. Binaries come from ENGRAM_BIN (default build/bin).
# Stopped nodes keep their data: `N DIR` again starts them on it.
#
# Access control: every node's trust root is the admin key of its card, so the admin
# (ENGRAM_HOME=DIR/home) administers it from the start; agents are refused until registered.
# `agent` does that with the CLI, as an admin would by hand (engram help agent create):
#   engram agent create NAME --node ID      NAME's key pair in DIR/home/agents, its registration
#   engram acl allow-user USER NAME         NAME may act for USER
#   engram acl allow NAME RESOURCE read,write   for each RESOURCE (run:q3, 'run:*', '*', ...)
# through node I, printing each statement id, and returns once every running node of DIR
# holds every statement node I holds (statements spread by gossip in sys:acl).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bin=${ENGRAM_BIN:-$root/build/bin}
base=${ENGRAM_BASE_PORT:-7100}

usage() {
    echo "usage: $0 N DIR | stop DIR | restart DIR I | agent DIR I NAME USER [RESOURCE]..." >&2
    exit 2
}

# admin DIR I ARGS...: the engram CLI as the admin, talking to node I
admin() {
    local dir=$1 i=$2
    shift 2
    ENGRAM_HOME="$dir/home" "$bin/engram" --socket "ipc://$dir/n$i/api.sock" "$@"
}

# The ids of the statements node I holds, sorted, one a line (nothing if it does not answer).
statement_ids() {
    admin "$1" "$2" --json acl show 2>/dev/null | python3 -c 'import json, sys
print("\n".join(sorted(s["id"] for s in json.load(sys.stdin)["statements"])))' 2>/dev/null
}

# Registers agent NAME on node I (its home), lets USER act through it and lets it read and
# write each RESOURCE; waits until every running node holds every statement node I holds.
agent() {
    local dir=$1 i=$2 name=$3 user=$4
    shift 4
    [ -f "$dir/n$i/id" ] || { echo "$0: no node $i in $dir" >&2; return 1; }
    admin "$dir" "$i" agent create "$name" --node "$(cat "$dir/n$i/id")"
    admin "$dir" "$i" acl allow-user "$user" "$name"
    local resource
    for resource in "$@"; do
        admin "$dir" "$i" acl allow "$name" "$resource" read,write
    done
    local want node n
    want=$(statement_ids "$dir" "$i")
    for node in "$dir"/n*; do
        [ -f "$node/pid" ] && kill -0 "$(cat "$node/pid")" 2>/dev/null || continue
        n=${node##*/n}
        for _ in $(seq 300); do
            [ -z "$(comm -23 <(echo "$want") <(statement_ids "$dir" "$n"))" ] && continue 2
            sleep 0.1
        done
        echo "$0: node $n lacks statements of node $i after 30 s" >&2
        return 1
    done
}

# The command line of node I, saved so that a restart runs exactly the same.
start_node() {
    local dir=$1 i=$2
    local node="$dir/n$i"
    local line
    line=$(cat "$node/cmdline")
    # shellcheck disable=SC2086
    setsid $line >>"$node/engramd.log" 2>&1 </dev/null &
    local pid=$!
    echo "$pid" >"$node/pid"
    local api gossip
    api=$(sed -n 's/.*--api \([^ ]*\).*/\1/p' "$node/cmdline")
    gossip=$(sed -n 's/.*--gossip \([^ ]*\).*/\1/p' "$node/cmdline")
    local http
    http=$(sed -n 's/.*--metrics \([^ ]*\).*/http:\/\/\1\//p' "$node/cmdline")
    # the admin's key is good on every node from the start (the root of its access control)
    for _ in $(seq 100); do
        if admin "$dir" "$i" cluster status >/dev/null 2>&1; then
            echo "node=$i api=$api gossip=$gossip http=$http pid=$pid" \
                "id=$(cat "$node/id" 2>/dev/null)"
            return 0
        fi
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    echo "$0: node $i did not start; see $node/engramd.log:" >&2
    tail -n 5 "$node/engramd.log" >&2
    return 1
}

create_node() {
    local dir=$1 i=$2
    local node="$dir/n$i"
    mkdir -p "$node"
    if [ ! -f "$node/admission" ]; then
        local identity key
        identity=$("$bin/engramd" --data "$node/data" --identity)
        key=$(sed -n 's/.* key=\([0-9a-f]*\).*/\1/p' <<<"$identity")
        sed -n 's/^node=\([0-9a-f]*\) .*/\1/p' <<<"$identity" >"$node/id"
        ENGRAM_HOME="$dir/home" "$bin/engram" node admit "$key" --out "$node/admission" >/dev/null
    fi
    local port=$((base + 10 * i))
    local join=""
    [ "$i" -gt 1 ] && join="--join tcp://127.0.0.1:$((base + 10))"
    echo "$bin/engramd --data $node/data --api ipc://$node/api.sock --admission $node/admission" \
        "--gossip tcp://127.0.0.1:$port --metrics 127.0.0.1:$((port + 2)) $join" \
        "${ENGRAM_NODE_FLAGS:-}" >"$node/cmdline"
}

stop_node() {
    local node=$1
    [ -f "$node/pid" ] || return 0
    local pid
    pid=$(cat "$node/pid")
    if kill -TERM "$pid" 2>/dev/null; then
        for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null || true
    fi
    rm -f "$node/pid"
}

case "${1:-}" in
agent)
    [ $# -ge 5 ] || usage
    agent "$(cd "$2" && pwd)" "${@:3}"
    ;;
stop)
    [ $# -eq 2 ] || usage
    for node in "$2"/n*; do [ -d "$node" ] && stop_node "$node"; done
    ;;
restart)
    [ $# -eq 3 ] || usage
    [ -f "$2/n$3/cmdline" ] || { echo "$0: no node $3 in $2" >&2; exit 1; }
    stop_node "$2/n$3"
    start_node "$2" "$3"
    ;;
'' | *[!0-9]*)
    usage
    ;;
*)
    [ $# -eq 2 ] || usage
    n=$1
    dir=$(mkdir -p "$2" && cd "$2" && pwd)
    [ -f "$dir/home/cluster" ] || ENGRAM_HOME="$dir/home" "$bin/engram" cluster init >/dev/null
    for i in $(seq "$n"); do
        [ -f "$dir/n$i/cmdline" ] || create_node "$dir" "$i"
    done
    for i in $(seq "$n"); do start_node "$dir" "$i"; done
    ;;
esac
