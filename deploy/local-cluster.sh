#!/usr/bin/env bash
# A cluster of engram nodes on this host's loopback, keys and admission done.
#
#   deploy/local-cluster.sh N DIR        start N nodes (creating the cluster on first use)
#   deploy/local-cluster.sh stop DIR     stop every node of DIR (SIGTERM, clean)
#   deploy/local-cluster.sh restart DIR I  restart node I on its data
#   deploy/local-cluster.sh agents DIR NAME...  key pairs for agents NAME... in DIR/home
#
# Prints one line per node started: `node=I api=ENDPOINT gossip=ENDPOINT pid=PID`.
# Everything lives under DIR: the admin's $ENGRAM_HOME (DIR/home: cluster id, admin key, and
# the agents' CURVE key pairs: agents talk to a node with ENGRAM_HOME=DIR/home),
# node I's data, card and log (DIR/nI/), its API socket (ipc://DIR/nI/api.sock). Node I
# gossips on tcp://127.0.0.1:(ENGRAM_BASE_PORT + 10*I), introductions on the port after it;
# nodes 2..N join through node 1. Binaries come from ENGRAM_BIN (default build/bin).
# Stopped nodes keep their data: `N DIR` again starts them on it.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bin=${ENGRAM_BIN:-$root/build/bin}
base=${ENGRAM_BASE_PORT:-7100}
# The agent this script checks a node with.
probe_agent=local-cluster

usage() {
    echo "usage: $0 N DIR | stop DIR | restart DIR I | agents DIR NAME..." >&2
    exit 2
}

# Key pairs for agents in DIR/home/agents, as `engram agent create` writes them.
agents() {
    local dir=$1
    shift
    python3 "$root/tests/support/agent_keys.py" "$dir/home" "$@"
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
    agents "$dir" "$probe_agent"
    for _ in $(seq 100); do
        if ENGRAM_HOME="$dir/home" "$bin/engram" --socket "$api" --agent "$probe_agent" stats \
            >/dev/null 2>&1; then
            echo "node=$i api=$api gossip=$gossip pid=$pid"
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
        local key
        key=$("$bin/engramd" --data "$node/data" --identity | sed -n 's/.* key=\([0-9a-f]*\).*/\1/p')
        ENGRAM_HOME="$dir/home" "$bin/engram" node admit "$key" --out "$node/admission" >/dev/null
    fi
    local port=$((base + 10 * i))
    local join=""
    [ "$i" -gt 1 ] && join="--join tcp://127.0.0.1:$((base + 10))"
    echo "$bin/engramd --data $node/data --api ipc://$node/api.sock --admission $node/admission" \
        "--gossip tcp://127.0.0.1:$port $join ${ENGRAM_NODE_FLAGS:-}" >"$node/cmdline"
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
agents)
    [ $# -ge 3 ] || usage
    agents "$2" "${@:3}"
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
