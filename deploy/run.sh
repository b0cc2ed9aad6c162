#!/usr/bin/env bash
# The README's main command: installs what a fresh Debian 12 machine lacks, builds engram,
# starts a three-node cluster on loopback (deploy/local-cluster.sh: cluster key, admission
# cards, CurveZMQ gossip) and shows agents on three hosts sharing memory through their own
# nodes with the CLI, under access control: the admin registers one agent per host and grants
# users and scopes (signed statements that spread by gossip); a private note never leaves its
# node and another agent's notebook is refused (exit 6); a task blackboard written on one node
# is read on another after a causal token; concurrent work from three nodes converges; a node
# killed with SIGKILL catches up after its restart; a write is acknowledged by all three
# nodes; a grant made on node 1 lets an agent on node 3 read, and a revocation made on node 2
# stops it there again; a redaction policy makes an e-mail address written on node 2 stored as
# [redacted:email] on every node; the writer on node 2 finds by search what the researcher
# (node 1) and the reviewer (node 3, through MCP) wrote, and gets a prompt block of it; node 3
# shows the same history of a finding revised on node 2 and reads it as of before the revision;
# MCP clients on nodes 1 and 3 edit one knowledge graph that node 2 reads; the cluster's
# status; and node 1's readiness probe and metrics (its status page's URL, and the others', is
# printed at the start). The data lives in a temporary directory removed at the end
# (ENGRAM_DEMO_DIR keeps it elsewhere; ENGRAM_BASE_PORT moves the ports; ENGRAM_BIN=DIR runs
# the engramd and engram already built in DIR, without installing or building: the `demo`
# test). Every command it runs is echoed first as
# `+ COMMAND`, ready to paste into a shell (with ENGRAM_HOME set as the demo sets it); a
# command repeated until replication has done its part is echoed once, followed by how long
# that took.
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

if [ -z "${ENGRAM_BIN:-}" ]; then
    run deploy/install-deps.sh
    run cmake -S . -B build >/dev/null
    run cmake --build build -j "$(nproc 2>/dev/null || echo 2)" --target engramd engram-cli >/dev/null
fi

dir=${ENGRAM_DEMO_DIR:-$(run mktemp -d /tmp/engram-demo.XXXXXX)}
engram=${ENGRAM_BIN:-build/bin}/engram
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
# The agent of each host: it talks only to its own host's node.
agents=(- researcher writer reviewer)
# on NODE ARGS...: the CLI on node NODE as that host's agent, acting for user alice
on() {
    local node=$1
    shift
    run "$engram" --socket "ipc://$dir/n$node/api.sock" --agent "${agents[$node]}" --user alice \
        "$@"
}
# admin NODE ARGS...: the CLI on node NODE as the admin (its key: $ENGRAM_HOME/admin.key)
admin() {
    local node=$1
    shift
    run "$engram" --socket "ipc://$dir/n$node/api.sock" "$@"
}
# elapsed WHAT START: says how long WHAT took since START (now_us)
elapsed() {
    local us=$(($(now_us) - $2))
    printf '  (%s after %d.%02d s)\n' "$1" $((us / 1000000)) $((us % 1000000 / 10000))
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
    elapsed "$what" "$start"
}
# until_denied WHAT CMD...: shows CMD, then runs it until it exits 6 (access denied), and says
# how long WHAT took
until_denied() {
    local what=$1 start rc
    shift
    start=$(now_us)
    show "$@"
    while :; do
        rc=0
        "$@" >/dev/null 2>&1 || rc=$?
        [ "$rc" -eq 6 ] && break
        if (($(now_us) - start > 30000000)); then
            echo "$what: not within 30 s (last exit status $rc)" >&2
            exit 1
        fi
        sleep 0.05
    done
    elapsed "$what" "$start"
}
# waits until node NODE holds KEY in SCOPE (read by that host's agent)
until_seen() {
    until_ "node $1 has $3" cat "$engram" --socket "ipc://$dir/n$1/api.sock" \
        --agent "${agents[$1]}" --user alice get "$2" "$3"
}
# reads `engram counter get`: succeeds if it shows the tokens of all three nodes (1800 + 950 + 400)
all_tokens() { grep -qx 3150; }
# reads `engram cluster status --json`: succeeds if it lists three members, all alive
three_alive() {
    python3 -c 'import json, sys
members = json.load(sys.stdin)["members"]
sys.exit(len(members) != 3 or any(m["state"] not in ("alive", "self") for m in members))'
}
# reads `engram acl show`: succeeds if it lists every statement in $statements, all valid
holds_statements() {
    local shown id
    shown=$(cat)
    for id in $statements; do
        grep -q "^$id .* valid$" <<<"$shown" || return 1
    done
}
# mcp NODE SCOPE TOOL ARGUMENTS: one MCP tool call, as an MCP client makes it, to `engram mcp` on
# node NODE as that host's agent (initialize, then tools/call TOOL with the JSON ARGUMENTS);
# prints the tool's result text, and fails if the tool did
mcp() {
    local node=$1 scope=$2 tool=$3 arguments=$4
    printf '  (MCP tools/call %s %s)\n' "$tool" "$arguments" >&3
    printf '%s\n' \
        '{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"run.sh","version":"1"}}}' \
        '{"jsonrpc":"2.0","method":"notifications/initialized"}' \
        "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"tools/call\",\"params\":{\"name\":\"$tool\",\"arguments\":$arguments}}" |
        on "$node" mcp --scope "$scope" 2>/dev/null | python3 -c 'import json, sys
for line in sys.stdin:
    message = json.loads(line)
    if message.get("id") == 2:
        result = message["result"]
        print(result["content"][0]["text"])
        sys.exit(1 if result.get("isError") else 0)
sys.exit(1)'
}
# http_get URL: the body of an HTTP GET (Python's standard library: curl may not be installed),
# whatever its status
http_get() {
    python3 -c 'import sys, urllib.error, urllib.request
try:
    body = urllib.request.urlopen(sys.argv[1], timeout=10).read()
except urllib.error.HTTPError as e:
    body = e.read()
sys.stdout.write(body.decode())' "$1"
}
# read a graph's export: succeed if it holds the entity Acme Corp, and the reviewer's observation
has_acme() { grep -q '"Acme Corp"'; }
has_acme_template() { grep -q 'the Acme template'; }
statements=""
# stmt NODE ARGS...: an admin command on node NODE that signs a statement; shows the id it
# prints and notes it for holds_statements
stmt() {
    local id
    id=$(admin "$@")
    printf '%s\n' "$id" >&3
    statements+=" $id"
}

say "Starting three nodes (keys, admission and join done by deploy/local-cluster.sh)"
run deploy/local-cluster.sh 3 "$dir"
export ENGRAM_HOME="$dir/home"
show export ENGRAM_HOME="$dir/home"
node_id() { cat "$dir/n$1/id"; }
http_of() { sed -n 's/.*--metrics \([^ ]*\).*/http:\/\/\1/p' "$dir/n$1/cmdline"; }
echo "Each node's status page and metrics, while the demo runs: $(http_of 1)/ $(http_of 2)/" \
    "$(http_of 3)/"

say "1. The admin registers one agent per host and says what each may do" \
    "   (a node refuses any key it has no registration for: each agent is its CURVE key pair," \
    "   created in \$ENGRAM_HOME/agents; every statement is signed with the admin key and" \
    "   spreads to every node by gossip, whichever node it was handed to)"
stmt 1 agent create researcher --node "$(node_id 1)"
stmt 2 agent create writer --node "$(node_id 2)"
stmt 3 agent create reviewer --node "$(node_id 3)"
for agent in researcher writer reviewer; do
    stmt 1 acl allow-user alice "$agent"
done
stmt 1 acl allow researcher 'run:*' read,write
stmt 1 acl allow researcher agent:researcher read,write
stmt 1 acl allow researcher team:finance read,write
stmt 1 acl allow writer 'run:*' read,write
stmt 1 acl allow reviewer run:q3-proposal read,write
for n in 1 2 3; do
    until_ "node $n holds every statement" holds_statements \
        "$engram" --socket "ipc://$dir/n$n/api.sock" acl show
done
admin 3 acl show

say "2. The researcher on node 1 keeps a private note: it never leaves node 1. Its notebook" \
    "   agent:researcher is replicated, but no other agent has an edge to it"
on 1 put private churn-source "CRM export, Q3, churn 4.1% -> 3.9%"
on 2 get private churn-source || echo "(exit $?: not found: the writer's private scope is its own)"
on 1 put agent:researcher plan "check the EU deck before drafting" >/dev/null
on 2 get agent:researcher plan || echo "(exit $?: access denied, as it should be)"
admin 2 acl check writer alice agent:researcher || echo "(exit $?)"

say "3. It shares the note into the task blackboard run:q3-proposal and drafts; the writer on" \
    "   node 2 reads with the researcher's causal token and sees everything the researcher saw"
on 1 share churn-source run:q3-proposal
on 1 log append run:q3-proposal findings "churn fell 0.2 points"
token=$(on 1 put run:q3-proposal draft "Q3: churn down, EU up" | tail -n 1)
on 2 get run:q3-proposal draft --after "$token"
on 2 log range run:q3-proposal findings

say "4. Three agents on three nodes work at once; every node converges to the same state"
on 1 set add run:q3-proposal sources crm:q3-export
on 2 set add run:q3-proposal sources analyst-call
on 3 set add run:q3-proposal sources eu-sales-deck
on 1 counter add run:q3-proposal tokens 1800
on 2 counter add run:q3-proposal tokens 950
on 3 counter add run:q3-proposal tokens 400
on 3 put run:q3-proposal review "cite the EU deck"
# A node applies each node's writes to a scope in their order: one that counts every node's
# tokens also holds every source added before them.
for n in 1 2 3; do
    until_ "node $n counts every node's tokens" all_tokens "$engram" \
        --socket "ipc://$dir/n$n/api.sock" --agent "${agents[$n]}" --user alice \
        counter get run:q3-proposal tokens
done
for n in 1 2 3; do on "$n" set members run:q3-proposal sources | tr '\n' ' '; echo; done
for n in 1 2 3; do on "$n" counter get run:q3-proposal tokens; done

say "5. Node 3 is killed (SIGKILL) while node 1 keeps writing; restarted, it catches up"
run kill -KILL "$(cat "$dir/n3/pid")"
for i in 1 2 3 4 5; do
    on 1 log append run:q3-proposal findings "note $i while node 3 is down" >/dev/null
done
on 1 put run:q3-proposal status "ready for review" >/dev/null
run deploy/local-cluster.sh restart "$dir" 3
until_seen 3 run:q3-proposal status
on 3 get run:q3-proposal status
on 3 log range run:q3-proposal findings

say "6. A write acknowledged only once all three nodes hold it"
on 2 put run:q3-proposal final "Q3 proposal v1" --replicas 3

say "7. A grant made on node 1 lets the reviewer on node 3 read team:finance; revoked on" \
    "   node 2, it stops on node 3 too"
on 1 put team:finance budget "EU budget: 1.2 M EUR" >/dev/null
on 3 get team:finance budget || echo "(exit $?: access denied: no edge from the reviewer yet)"
grant=$(admin 1 acl allow reviewer team:finance read)
echo "$grant"
until_ "node 3 lets the reviewer read" cat "$engram" --socket "ipc://$dir/n3/api.sock" \
    --agent reviewer --user alice get team:finance budget
on 3 get team:finance budget
admin 2 acl revoke "$grant"
until_denied "node 3 refuses the reviewer again" "$engram" --socket "ipc://$dir/n3/api.sock" \
    --agent reviewer --user alice get team:finance budget
on 3 get team:finance budget || echo "(exit $?: access denied again)"
admin 3 acl check reviewer alice team:finance || echo "(exit $?)"

say "8. A write policy: e-mail addresses written into run:* are redacted by the node that takes" \
    "   the write, before it stores or sends anything"
statements=$(admin 1 acl policy 'run:*' redact --pattern @email)
echo "$statements"
until_ "node 2 holds the policy" holds_statements \
    "$engram" --socket "ipc://$dir/n2/api.sock" acl show
on 2 put run:q3-proposal contact "EU numbers: ask dana.kim@example.com" >/dev/null
until_seen 3 run:q3-proposal contact
until_seen 1 run:q3-proposal contact
for n in 1 2 3; do on "$n" get run:q3-proposal contact; done
on 2 history run:q3-proposal contact

say "9. Agents find memory by its words (BM25 over folded, stemmed text), within their rights:" \
    "   the researcher's finding on node 1 (CLI) and the reviewer's constraints on node 3 (an" \
    "   MCP client, through engram mcp), found by the writer on node 2 and the reviewer, and made" \
    "   into a prompt block"
on 1 put run:q3-proposal client-needs \
    "Client needs executive summary first, uses slide decks, needs ROI figures" >/dev/null
mcp 3 run:q3-proposal memory_add '{"id": "format-constraints", "text": "Output format constraints: at most 12 slides, the Acme template, 40 words per slide"}' >/dev/null
until_seen 2 run:q3-proposal client-needs
until_seen 2 run:q3-proposal format-constraints
until_seen 3 run:q3-proposal client-needs
on 2 search "client requirements and format" --scope run:q3-proposal --top-k 3
on 3 search "output format constraints" --scope run:q3-proposal --top-k 1
on 2 context "what does the client want" --tokens 80 --scope run:q3-proposal

say "10. History is the same on every node: the writer on node 2 revises the researcher's" \
    "   finding; node 3 shows both steps, who made them and when, and reads the finding as it" \
    "   was before the revision"
before_revision=$(date -u +%Y-%m-%dT%H:%M:%S.%3NZ)
sleep 0.2
token=$(on 2 put run:q3-proposal client-needs \
    "Client needs executive summary first, then ROI figures; slide decks")
on 3 get run:q3-proposal client-needs --after "$token"
on 3 history run:q3-proposal client-needs
on 3 get run:q3-proposal client-needs --as-of "$before_revision"

say "11. MCP clients on two hosts edit one knowledge graph (the official MCP memory server's" \
    "   tools, kept as CRDTs): the researcher on node 1 creates an entity, the reviewer on node 3" \
    "   adds observations to it, and the writer on node 2 opens it with both"
mcp 1 run:q3-proposal create_entities '{"entities": [{"name": "Acme Corp", "entityType": "client", "observations": ["wants the executive summary first"]}]}'
until_ "node 3 has the entity" has_acme "$engram" --socket "ipc://$dir/n3/api.sock" \
    --agent reviewer --user alice export --mcp-memory run:q3-proposal
mcp 3 run:q3-proposal add_observations '{"observations": [{"entityName": "Acme Corp", "contents": ["decks use the Acme template"]}]}'
until_ "node 2 has both observations" has_acme_template "$engram" \
    --socket "ipc://$dir/n2/api.sock" --agent writer --user alice export --mcp-memory run:q3-proposal
mcp 2 run:q3-proposal open_nodes '{"names": ["Acme Corp"]}'

say "12. The cluster as node 1 sees it, once every node sees every member alive again:" \
    "   members, lag, version vectors, gossip counters"
for n in 1 2 3; do
    until_ "node $n sees every member alive" three_alive \
        "$engram" --socket "ipc://$dir/n$n/api.sock" cluster status --json
done
admin 1 cluster status

say "13. Monitoring: node 1's readiness probe and a few of its Prometheus metrics" \
    "   (engramd --metrics; its status page shows the same members, scopes, rates and grants)"
show http_get "$(http_of 1)/readyz"
http_get "$(http_of 1)/readyz"
echo
wanted='^engram_(requests_total\{op="(PUT|GET)"|member_state.*\} 1$|group_commits_total)'
show http_get "$(http_of 1)/metrics" '|' grep -E "$wanted"
http_get "$(http_of 1)/metrics" | grep -E "$wanted"
