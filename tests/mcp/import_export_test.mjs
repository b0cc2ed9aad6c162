// `engram import --mcp-memory` and `engram export --mcp-memory` against files the official
// @modelcontextprotocol/server-memory itself reads and writes, not files written by hand:
//   - server-memory builds a graph through its tools (entities, relations, observations added
//     and deleted, texts in several scripts, an emoji, quotes, backslashes, a newline, a tab),
//     keeping it in its MEMORY_FILE_PATH (which it writes without a trailing newline);
//   - `engram import --mcp-memory FILE run:imported` reads that file: it reports the
//     entities and relations it read, and `engram mcp --scope run:imported` answers read_graph
//     with the graph server-memory answers;
//   - `engram export --mcp-memory run:imported > FILE2`, and a fresh server-memory started on
//     FILE2 answers read_graph with that same graph.
// Graphs are compared as the differential test compares them: deep-equal, with entities,
// relations and observations in any order (the official server keeps insertion order, engram
// sets).
//
// Usage: node import_export_test.mjs BIN_DIR LOCAL_CLUSTER_SH
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";

import {
  Cluster, connect, normalizeGraph, parseArgs, runTests, serverMemoryCommand, tempDir,
} from "./harness.mjs";

const SCOPE = "run:imported";

// What server-memory is told, in order: [tool, arguments].
const SESSION = [
  ["create_entities", { entities: [
    { name: "Zoë", entityType: "personne", observations: ["parle français", "aime le thé 🍵"] },
    { name: "東京", entityType: "都市", observations: ["日本の首都"] },
    { name: "Acme", entityType: "company", observations: [] },
    { name: "Quote \"q\" \\ back", entityType: "odd", observations: ["line one\nline two\tend"] },
  ] }],
  ["create_relations", { relations: [
    { from: "Zoë", to: "東京", relationType: "vit à" },
    { from: "Zoë", to: "Acme", relationType: "works_at" },
    { from: "Acme", to: "東京", relationType: "based_in" },
    { from: "Quote \"q\" \\ back", to: "Zoë", relationType: "quotes" },
  ] }],
  ["add_observations", { observations: [
    { entityName: "Acme", contents: ["Größe: 12 Mitarbeiter", "Москва office"] },
    { entityName: "Zoë", contents: ["plays go"] },
  ] }],
  ["delete_observations", { deletions: [{ entityName: "Zoë", observations: ["plays go"] }] }],
  ["delete_relations", { relations: [{ from: "Acme", to: "東京", relationType: "based_in" }] }],
];

/** read_graph of client: its structured content, which must be what its text carries. */
async function readGraph(client, who) {
  const r = await client.callTool({ name: "read_graph", arguments: {} });
  assert.notEqual(r.isError, true, `${who}: read_graph failed: ${JSON.stringify(r)}`);
  assert.deepEqual(JSON.parse(r.content[0].text), r.structuredContent,
                   `${who}: read_graph's text and structured content differ`);
  return r.structuredContent;
}

function assertSameGraph(actual, expected, what) {
  assert.deepEqual(normalizeGraph(actual), normalizeGraph(expected),
                   `${what}\n  got      ${JSON.stringify(actual)}\n  expected ` +
                   JSON.stringify(expected));
}

const args = parseArgs();
const dir = tempDir("engram-mcp-files-");
let cluster;
let official; // server-memory's read_graph after SESSION

await runTests("import_export_test", [
  ["server-memory writes its file", async () => {
    const server = await connect(serverMemoryCommand(path.join(dir, "memory.jsonl")),
                                 "server-memory");
    for (const [tool, toolArgs] of SESSION) {
      const r = await server.callTool({ name: tool, arguments: toolArgs });
      assert.notEqual(r.isError, true, `server-memory ${tool}: ${JSON.stringify(r)}`);
    }
    official = await readGraph(server, "server-memory");
    assert.equal(official.entities.length, 4);
    assert.equal(official.relations.length, 3);
  }],
  ["engram import --mcp-memory reads it: engram mcp's read_graph is server-memory's",
   async () => {
     cluster = await Cluster.start(1, args);
     cluster.agent(1, "claude", "alice", SCOPE);
     const out = cluster.cli(1, "claude", "alice",
                             ["import", "--mcp-memory", path.join(dir, "memory.jsonl"), SCOPE]);
     assert.equal(out, "4 entities, 3 relations\n");
     const engram = await connect(cluster.mcpCommand(1, "claude", "alice", [SCOPE]),
                                  "engram mcp");
     assertSameGraph(await readGraph(engram, "engram mcp"), official,
                     "engram mcp's read_graph after the import is not server-memory's");
   }],
  ["engram export --mcp-memory writes a file a fresh server-memory reads as the same graph",
   async () => {
     const file = path.join(dir, "exported.jsonl");
     fs.writeFileSync(file, cluster.cli(1, "claude", "alice", ["export", "--mcp-memory", SCOPE]));
     const fresh = await connect(serverMemoryCommand(file), "server-memory on the export");
     assertSameGraph(await readGraph(fresh, "server-memory on the export"), official,
                     "server-memory's read_graph of the exported file is not the original's");
   }],
]);
