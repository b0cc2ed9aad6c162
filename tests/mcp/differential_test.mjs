// engram mcp against the official @modelcontextprotocol/server-memory, differentially: one
// scripted session of the nine knowledge graph tools is run against both servers (the official
// one keeping its graph in a temporary MEMORY_FILE_PATH, engram's in user:alice of a one-node
// cluster), and everything each answered must be the same:
//   - tools/list: for each of the nine, name, title, description, inputSchema (deep-equal),
//     outputSchema, annotations;
//   - resources/list, and resources/read of memory://knowledge-graph;
//   - every tool call: isError, structuredContent, and the content text, parsed as JSON where
//     it is JSON (and then written exactly as JSON.stringify(x, null, 2) writes it), the text
//     itself where it is not. The official server keeps entities, relations and observations
//     in insertion order, engram in sets: arrays of entities are compared sorted by name,
//     relations by from/to/relationType, observations inside an entity sorted. Texts are
//     compared with key order kept (a client printing the text sees it);
//   - schema violations (a missing required field, a wrong type): isError only, the messages
//     are each validator's own; "Entity with name X not found" and the unknown tool: the text
//     too.
// Within one call, names are distinct (engram's sets would merge duplicates the official
// server keeps: out of scope). On a difference, the test fails with the step, both answers and
// their JSON diff.
//
// Usage: node differential_test.mjs BIN_DIR LOCAL_CLUSTER_SH
import assert from "node:assert/strict";
import path from "node:path";
import { isDeepStrictEqual } from "node:util";

import { ErrorCode } from "@modelcontextprotocol/sdk/types.js";

import {
  Cluster, connect, normalizeGraph, parseArgs, runTests, serverMemoryCommand, tempDir,
} from "./harness.mjs";

const GRAPH_TOOLS = ["create_entities", "create_relations", "add_observations",
                     "delete_entities", "delete_observations", "delete_relations", "read_graph",
                     "search_nodes", "open_nodes"];

// The session: [label, tool, arguments, how to compare] ("full": everything; "isError": a
// schema violation, whose message is the validator's own).
const SESSION = [
  ["empty graph", "read_graph", {}],
  ["create three entities", "create_entities", { entities: [
    { name: "Alice", entityType: "person", observations: ["likes coffee", "Works at Acme"] },
    { name: "Bob", entityType: "person", observations: ["plays chess"] },
    { name: "Acme", entityType: "Company", observations: [] },
  ] }],
  ["create entities, one already stored (with another type)", "create_entities", { entities: [
    { name: "Alice", entityType: "robot", observations: ["ignored"] },
    { name: "Carol", entityType: "person", observations: ["reads Tolstoy"] },
  ] }],
  ["create an entity whose every name is stored", "create_entities", { entities: [
    { name: "Bob", entityType: "person", observations: ["plays chess"] },
  ] }],
  ["create relations", "create_relations", { relations: [
    { from: "Alice", to: "Acme", relationType: "works_at" },
    { from: "Bob", to: "Alice", relationType: "knows" },
    { from: "Carol", to: "Bob", relationType: "knows" },
  ] }],
  ["create relations, one already stored, one to an entity that does not exist",
   "create_relations", { relations: [
    { from: "Alice", to: "Acme", relationType: "works_at" },
    { from: "Alice", to: "Bob", relationType: "knows" },
    { from: "Bob", to: "Dave", relationType: "mentors" },
  ] }],
  ["same endpoints, another type", "create_relations", { relations: [
    { from: "Alice", to: "Acme", relationType: "founded" },
  ] }],
  ["graph after creations", "read_graph", {}],
  ["add observations, one already there", "add_observations", { observations: [
    { entityName: "Alice", contents: ["likes tea", "likes coffee"] },
    { entityName: "Bob", contents: ["Lives in Paris"] },
  ] }],
  ["add observations with one missing entity: refused whole", "add_observations",
   { observations: [
    { entityName: "Carol", contents: ["should not be saved"] },
    { entityName: "Nobody", contents: ["nor this"] },
  ] }],
  ["nothing of the refused call was saved", "open_nodes", { names: ["Carol"] }],
  ["delete observations, one of a missing entity, one absent", "delete_observations",
   { deletions: [
    { entityName: "Alice", observations: ["likes tea", "never said"] },
    { entityName: "Nobody", observations: ["x"] },
  ] }],
  ["delete relations, one that does not exist", "delete_relations", { relations: [
    { from: "Carol", to: "Bob", relationType: "knows" },
    { from: "Acme", to: "Alice", relationType: "works_at" },
  ] }],
  ["graph after deletions", "read_graph", {}],
  ["search by name, another case", "search_nodes", { query: "ALICE" }],
  ["search by type, another case", "search_nodes", { query: "company" }],
  ["search by observation, another case", "search_nodes", { query: "COFFEE" }],
  ["search matching a name and an observation", "search_nodes", { query: "acme" }],
  ["search by a substring", "search_nodes", { query: "ol" }],
  ["search matching nothing", "search_nodes", { query: "zzz" }],
  ["open nodes, one missing", "open_nodes", { names: ["Bob", "Nobody"] }],
  ["open nodes, two related", "open_nodes", { names: ["Alice", "Acme"] }],
  ["open nothing", "open_nodes", { names: [] }],
  ["delete entities, one missing: relations touching Bob go too", "delete_entities",
   { entityNames: ["Bob", "Nobody"] }],
  ["graph after deleting Bob", "read_graph", {}],
  ["the relation to the missing Dave went with Bob", "search_nodes", { query: "Dave" }],
  ["create again a deleted entity", "create_entities", { entities: [
    { name: "Bob", entityType: "cat", observations: ["purrs"] },
  ] }],
  ["Bob is new: no old observation nor relation", "open_nodes", { names: ["Bob"] }],
  ["texts a set element cannot hold: empty, multi-line, long, non-ASCII", "create_entities",
   { entities: [
    { name: "", entityType: "", observations: [""] },
    { name: "Long", entityType: "report", observations: [
      "Line one\nline two\ttabbed", "Ünïcödé " + "€".repeat(2000)] },
  ] }],
  ["a relation between long names", "create_relations", { relations: [
    { from: "Long", to: "", relationType: "r".repeat(1500) },
  ] }],
  ["search in a long observation, another case", "search_nodes", { query: "ÜNÏCÖDÉ €€" }],
  ["open the empty name", "open_nodes", { names: [""] }],
  ["delete a multi-line observation", "delete_observations", { deletions: [
    { entityName: "Long", observations: ["Line one\nline two\ttabbed"] },
  ] }],
  ["graph with the long texts", "read_graph", {}],
  ["schema: entity without observations", "create_entities",
   { entities: [{ name: "X", entityType: "t" }] }, "isError"],
  ["schema: entities missing", "create_entities", {}, "isError"],
  ["schema: relation without relationType", "create_relations",
   { relations: [{ from: "Alice", to: "Carol" }] }, "isError"],
  ["schema: contents a string", "add_observations",
   { observations: [{ entityName: "Alice", contents: "one" }] }, "isError"],
  ["schema: query a number", "search_nodes", { query: 5 }, "isError"],
  ["schema: names missing", "open_nodes", {}, "isError"],
  ["schema: entityNames a string", "delete_entities", { entityNames: "Alice" }, "isError"],
  ["nothing of the violations was saved", "read_graph", {}],
  ["unknown tool", "no_such_tool", { a: 1 }],
];

/** One server's answer to a tools/call: the result, or the protocol error it threw. */
async function call(client, name, args) {
  try {
    return { result: await client.callTool({ name, arguments: args }) };
  } catch (e) {
    return { error: { code: e.code, message: e.message } };
  }
}

/** What is compared of a text: the normalized JSON it carries, or the text itself. */
function textForm(text, label, server) {
  let parsed;
  try {
    parsed = JSON.parse(text);
  } catch {
    return { text };
  }
  assert.equal(text, JSON.stringify(parsed, null, 2),
               `${label}: ${server}'s text is not JSON.stringify(x, null, 2) of its JSON`);
  return { json: JSON.stringify(normalizeGraph(parsed), null, 2) };
}

/** The comparable form of an answer, for the given way of comparing. */
function comparable(answer, how, label, server) {
  if (answer.error) {
    // a protocol error where a result was due: kept whole, so that it shows in the diff
    return how === "isError" ? { protocolError: true } : { protocolError: answer.error };
  }
  const r = answer.result;
  const isError = r.isError === true;
  if (how === "isError") return { isError };
  return {
    isError,
    content: r.content.map((item) => (item.type === "text"
      ? { type: "text", ...textForm(item.text, label, server) } : item)),
    structuredContent: r.structuredContent === undefined
      ? undefined : JSON.stringify(normalizeGraph(r.structuredContent), null, 2),
  };
}

/** The paths where a and b differ, each with both values (key order aside). */
function jsonDiff(a, b, at = "$") {
  if (isDeepStrictEqual(a, b)) return [];
  const objects = a && b && typeof a === "object" && typeof b === "object" &&
                  Array.isArray(a) === Array.isArray(b);
  if (!objects) {
    // a text carrying JSON shows compact, readable
    const show = (x) => (typeof x === "string" && /^[[{]/.test(x)
      ? JSON.stringify(JSON.parse(x)) : JSON.stringify(x));
    return [`${at}: server-memory ${show(a)}, engram ${show(b)}`];
  }
  const keys = [...new Set([...Object.keys(a), ...Object.keys(b)])];
  return keys.flatMap((k) => jsonDiff(a[k], b[k], Array.isArray(a) ? `${at}[${k}]` : `${at}.${k}`));
}

/** Where official and engram differ, as lines (none: the same): deep-equal, and when keyOrder,
 *  written alike too (a text's key order shows to whoever reads it; a schema's does not
 *  matter). */
function differences(label, official, engram, { keyOrder = true } = {}) {
  const diff = jsonDiff(official, engram);
  if (diff.length === 0 &&
      (!keyOrder || JSON.stringify(official) === JSON.stringify(engram))) return [];
  return [`${label}:`, ...(diff.length ? diff.map((d) => `  ${d}`) : [
    "  the same but for the order of keys:",
    `  server-memory ${JSON.stringify(official)}`, `  engram        ${JSON.stringify(engram)}`,
  ])];
}

/** Fails with every difference found (the steps after a difference still ran, so that one
 *  run shows them all). */
function assertNoDifferences(what, lines) {
  if (lines.length) assert.fail(`${what}: engram mcp differs from server-memory\n${lines.join("\n")}`);
}

/** The nine tools as a client sees them, keyed by name. */
async function graphTools(client) {
  const { tools } = await client.listTools();
  const out = {};
  for (const t of tools) {
    if (GRAPH_TOOLS.includes(t.name)) {
      out[t.name] = {
        name: t.name, title: t.title, description: t.description,
        inputSchema: t.inputSchema, outputSchema: t.outputSchema, annotations: t.annotations,
      };
    }
  }
  return out;
}

const args = parseArgs();
let official; // the SDK clients of each server
let engram;
let cluster;

await runTests("differential_test", [
  ["start server-memory and a one-node cluster with engram mcp", async () => {
    const dir = tempDir("engram-mcp-official-");
    official = await connect(serverMemoryCommand(path.join(dir, "memory.jsonl")),
                             "server-memory");
    cluster = await Cluster.start(1, args);
    cluster.agent(1, "claude", "alice");
    engram = await connect(cluster.mcpCommand(1, "claude", "alice"), "engram mcp");
  }],
  ["tools/list: the nine tools are the official ones", async () => {
    const o = await graphTools(official);
    const e = await graphTools(engram);
    assert.deepEqual(Object.keys(o).sort(), [...GRAPH_TOOLS].sort(),
                     "server-memory lists the nine tools");
    assert.deepEqual(Object.keys(e).sort(), [...GRAPH_TOOLS].sort(),
                     "engram mcp lists the nine tools");
    assertNoDifferences("tools/list", GRAPH_TOOLS.flatMap((name) =>
      differences(name, o[name], e[name], { keyOrder: false })));
  }],
  ["resources/list", async () => {
    const o = await official.listResources();
    const e = await engram.listResources();
    assertNoDifferences("resources/list", differences("resources/list", o, e, { keyOrder: false }));
  }],
  ["the scripted session", async () => {
    const lines = [];
    for (const [label, tool, toolArgs, how = "full"] of SESSION) {
      const o = comparable(await call(official, tool, toolArgs), how, label, "server-memory");
      const answer = await call(engram, tool, toolArgs);
      if (answer.error?.code === ErrorCode.ConnectionClosed) {
        assert.fail(`${label}: engram mcp exited (see its stderr below)\n${lines.join("\n")}`);
      }
      const e = comparable(answer, how, label, "engram mcp");
      lines.push(...differences(`${label} (${tool} ${JSON.stringify(toolArgs)})`, o, e));
      if (how === "isError") {
        assert.ok(o.isError || o.protocolError, `${label}: server-memory refused it`);
      }
    }
    assertNoDifferences("the session", lines);
  }],
  ["resources/read memory://knowledge-graph", async () => {
    const read = async (client, server) => {
      const r = await client.readResource({ uri: "memory://knowledge-graph" });
      return r.contents.map((c) => ({ ...c, text: textForm(c.text, "resources/read", server) }));
    };
    assertNoDifferences("resources/read", differences("resources/read",
      await read(official, "server-memory"), await read(engram, "engram mcp")));
  }],
  ["the graph survives a new session (engram: a second engram mcp)", async () => {
    const again = await connect(cluster.mcpCommand(1, "claude", "alice"), "engram mcp (2)");
    const o = comparable(await call(official, "read_graph", {}), "full", "reread", "official");
    const e = comparable(await call(again, "read_graph", {}), "full", "reread", "engram");
    assertNoDifferences("read_graph", differences("read_graph from a new engram mcp", o, e));
  }],
], { keepGoing: true });
