// engram mcp through the official MCP TypeScript SDK's Client over StdioClientTransport, the
// client most MCP hosts are built on, plus raw JSON-RPC lines for what the SDK never sends:
//   - initialize: server info, capabilities (tools; resources with subscribe); the SDK asks
//     for its latest protocol version and gets it; raw initializes asking for 2025-03-26 and
//     2025-06-18 get them back, one asking for an unknown version gets the server's latest,
//     2025-11-25;
//   - ping; tools/list: the nine knowledge graph tools and the ten memory_* tools, each with
//     the annotations readOnlyHint, destructiveHint, idempotentHint;
//   - every memory_* tool called, each with an assertion on what it did; then their options,
//     each with its effect: memory_add's id (a repeat stores nothing), memory_search's scope,
//     scopes, filters and top_k, memory_list's prefix and filters, memory_context's scopes
//     and top_k;
//   - resources/list and resources/read of memory://knowledge-graph; resources/subscribe, then
//     a graph mutation brings notifications/resources/updated;
//   - an unknown method is answered -32601, a line that is not JSON -32700 with a null id,
//     and the server goes on answering after both.
//
// A one-node cluster; agent claude acts for alice (its graph and default scope: user:alice)
// and may read and write run:*.
//
// Usage: node sdk_client_test.mjs BIN_DIR LOCAL_CLUSTER_SH
import assert from "node:assert/strict";

import { LATEST_PROTOCOL_VERSION, ResourceUpdatedNotificationSchema }
  from "@modelcontextprotocol/sdk/types.js";

import {
  Cluster, RawSession, connect, eventually, initializeParams, parseArgs, resultJson, runTests,
} from "./harness.mjs";

const GRAPH_TOOLS = ["create_entities", "create_relations", "add_observations",
                     "delete_entities", "delete_observations", "delete_relations", "read_graph",
                     "search_nodes", "open_nodes"];
const MEMORY_TOOLS = ["memory_add", "memory_search", "memory_get", "memory_list",
                      "memory_update", "memory_delete", "memory_forget", "memory_history",
                      "memory_context", "memory_share"];
const SERVER_LATEST = "2025-11-25";

const args = parseArgs();
let cluster;
let client;
let tools; // name -> tool, from tools/list
const updates = []; // the notifications/resources/updated received

/** tools/call of name with args, which must succeed: its result. */
async function ok(name, toolArgs) {
  const r = await client.callTool({ name, arguments: toolArgs });
  assert.notEqual(r.isError, true, `${name} ${JSON.stringify(toolArgs)} failed: ` +
                                   JSON.stringify(r));
  return r;
}

/** tools/call of name with args, which must fail as a tool (isError): its text. */
async function refused(name, toolArgs) {
  const r = await client.callTool({ name, arguments: toolArgs });
  assert.equal(r.isError, true, `${name} ${JSON.stringify(toolArgs)} should have failed: ` +
                                JSON.stringify(r));
  return r.content[0].text;
}

/** The raw session: initialize asking for version, the answer's result. */
async function rawInitialize(version) {
  const raw = new RawSession(cluster.mcpCommand(1, "claude", "alice"), `raw ${version}`);
  const answer = await raw.request("initialize", initializeParams(version));
  raw.send({ jsonrpc: "2.0", method: "notifications/initialized" });
  return { raw, answer };
}

await runTests("sdk_client_test", [
  ["a one-node cluster and the SDK client connected", async () => {
    cluster = await Cluster.start(1, args);
    cluster.agent(1, "claude", "alice", "run:*");
    client = await connect(cluster.mcpCommand(1, "claude", "alice"), "engram mcp");
    client.setNotificationHandler(ResourceUpdatedNotificationSchema, (n) => {
      updates.push(n.params.uri);
    });
  }],
  ["initialize: server info and capabilities", async () => {
    const info = client.getServerVersion();
    assert.equal(typeof info.name, "string");
    assert.ok(info.name.length > 0, "server info has a name");
    assert.equal(typeof info.version, "string");
    const caps = client.getServerCapabilities();
    assert.ok(caps.tools, `capabilities has tools: ${JSON.stringify(caps)}`);
    assert.equal(caps.resources?.subscribe, true,
                 `capabilities has resources with subscribe: ${JSON.stringify(caps)}`);
  }],
  ["protocol version: the SDK's latest, the older ones echoed, an unknown one the latest",
   async () => {
     assert.equal(LATEST_PROTOCOL_VERSION, SERVER_LATEST, "the SDK's latest is 2025-11-25");
     for (const version of ["2025-03-26", "2025-06-18", SERVER_LATEST]) {
       const { raw, answer } = await rawInitialize(version);
       assert.equal(answer.result?.protocolVersion, version,
                    `initialize asking for ${version}: ${JSON.stringify(answer)}`);
       raw.close();
     }
     const { raw, answer } = await rawInitialize("1999-01-01");
     assert.equal(answer.result?.protocolVersion, SERVER_LATEST,
                  `initialize asking for 1999-01-01: ${JSON.stringify(answer)}`);
     raw.close();
   }],
  ["ping", async () => {
    assert.deepEqual(await client.ping(), {});
  }],
  ["tools/list: the nine graph tools and the ten memory_* tools, annotated", async () => {
    const listed = (await client.listTools()).tools;
    tools = Object.fromEntries(listed.map((t) => [t.name, t]));
    for (const name of [...GRAPH_TOOLS, ...MEMORY_TOOLS]) {
      const t = tools[name];
      assert.ok(t, `tools/list has ${name}: ${Object.keys(tools).join(", ")}`);
      assert.equal(t.inputSchema.type, "object", `${name}'s inputSchema is an object schema`);
      assert.equal(typeof t.description, "string", `${name} has a description`);
      for (const hint of ["readOnlyHint", "destructiveHint", "idempotentHint"]) {
        assert.equal(typeof t.annotations?.[hint], "boolean", `${name} has ${hint}`);
      }
    }
    assert.equal(listed.length, GRAPH_TOOLS.length + MEMORY_TOOLS.length,
                 `exactly the 19 tools: ${Object.keys(tools).join(", ")}`);
    for (const name of ["read_graph", "search_nodes", "open_nodes", "memory_search",
                        "memory_get", "memory_list", "memory_history", "memory_context"]) {
      assert.equal(tools[name].annotations.readOnlyHint, true, `${name} is read-only`);
    }
    for (const name of ["delete_entities", "memory_delete", "memory_forget"]) {
      assert.equal(tools[name].annotations.destructiveHint, true, `${name} is destructive`);
    }
  }],
  ["resources/list and resources/read memory://knowledge-graph", async () => {
    const { resources } = await client.listResources();
    const graph = resources.find((r) => r.uri === "memory://knowledge-graph");
    assert.ok(graph, `resources/list has memory://knowledge-graph: ${JSON.stringify(resources)}`);
    assert.equal(graph.mimeType, "application/json");
    await ok("create_entities", { entities: [
      { name: "Engram", entityType: "project", observations: ["written in C"] },
    ] });
    const read = await client.readResource({ uri: "memory://knowledge-graph" });
    assert.equal(read.contents.length, 1);
    assert.equal(read.contents[0].uri, "memory://knowledge-graph");
    assert.equal(read.contents[0].mimeType, "application/json");
    const text = read.contents[0].text;
    assert.deepEqual(JSON.parse(text), { entities: [
      { name: "Engram", entityType: "project", observations: ["written in C"] },
    ], relations: [] });
    assert.equal(text, JSON.stringify(JSON.parse(text), null, 2));
  }],
  ["resources/subscribe: a mutation brings notifications/resources/updated", async () => {
    assert.deepEqual(updates, [], "no update before subscribing");
    assert.deepEqual(await client.subscribeResource({ uri: "memory://knowledge-graph" }), {});
    await ok("add_observations", { observations: [
      { entityName: "Engram", contents: ["speaks MCP"] },
    ] });
    const got = await eventually(() => updates.length > 0, { timeoutMs: 10000 });
    assert.ok(got, "no notifications/resources/updated within 10 s of add_observations");
    assert.equal(updates[0], "memory://knowledge-graph");
  }],
  ["the memory_* tools", async () => {
    await memoryTools();
  }],
  ["the memory_* tools' options: id, scope, scopes, filters, top_k, prefix", async () => {
    await memoryToolOptions();
  }],
  ["unknown method -32601, malformed JSON -32700, and the server goes on", async () => {
    const { raw, answer } = await rawInitialize(SERVER_LATEST);
    assert.ok(answer.result, JSON.stringify(answer));
    const unknown = await raw.request("no/such/method", {});
    assert.equal(unknown.error?.code, -32601, `unknown method: ${JSON.stringify(unknown)}`);
    raw.send("{\"jsonrpc\": \"2.0\", \"id\": 99, \"method\": \"ping\"");
    const parse = await raw.next();
    assert.equal(parse.error?.code, -32700, `malformed JSON: ${JSON.stringify(parse)}`);
    // the id the line names, found by a scan, so that the client can match the refusal
    // (with a null id the SDK's client waited for its timeout)
    assert.equal(parse.id, 99, "a parse error is answered with the id the line names");
    raw.send("this is not json at all");
    const none = await raw.next();
    assert.equal(none.error?.code, -32700);
    assert.equal(none.id, null, "a line that names no id is answered with a null id");
    const pong = await raw.request("ping");
    assert.deepEqual(pong.result, {}, `ping after the errors: ${JSON.stringify(pong)}`);
    const listed = await raw.request("tools/list", {});
    assert.ok(listed.result.tools.length >= 19, "tools/list after the errors");
    raw.close();
  }],
]);

/** Each memory_* tool at least once, with what it must have done. */
async function memoryTools() {
  const sc = (r) => r.structuredContent;
  // memory_add: an id, the session's scope (user:alice), stored
  const report = sc(await ok("memory_add", { text: "The quarterly report is due on Friday",
                                             metadata: { topic: "deadlines" } }));
  assert.equal(typeof report.id, "string", `memory_add gives an id: ${JSON.stringify(report)}`);
  assert.ok(report.id.length > 0);
  assert.equal(report.scope, "user:alice", "memory_add writes to the session's scope");
  assert.equal(report.stored, true);
  const tea = sc(await ok("memory_add", { text: "Alice prefers green tea",
                                          metadata: { topic: "prefs" } })).id;
  const scratch = [];
  for (const n of ["one", "two"]) {
    scratch.push(sc(await ok("memory_add", { text: `temporary note ${n}`,
                                             metadata: { topic: "scratch" } })).id);
  }
  assert.equal(new Set([report.id, tea, ...scratch]).size, 4, "four distinct ids");

  // memory_search: finds it by its words
  const found = await eventually(async () => {
    const results = sc(await ok("memory_search", { query: "quarterly report" })).results;
    return results.length > 0 && results;
  }, { timeoutMs: 10000 });
  assert.ok(found, "memory_search never found the quarterly report");
  assert.equal(found[0].text, "The quarterly report is due on Friday");
  assert.equal(found[0].scope, "user:alice");
  assert.ok(!found.some((r) => r.text.includes("green tea")), "search returns what matches");

  // memory_get: text, metadata, author, and a version for memory_update
  const got = sc(await ok("memory_get", { key: report.id }));
  assert.equal(got.text, "The quarterly report is due on Friday");
  assert.deepEqual(got.metadata, { topic: "deadlines" });
  assert.equal(got.author, "claude");
  assert.equal(typeof got.version, "string");
  assert.ok(got.version.length > 0, "memory_get gives a version");
  assert.match(await refused("memory_get", { key: "no-such-key" }), /no-such-key/);

  // memory_list: paged; the pages together are the single page, no key twice
  const whole = sc(await ok("memory_list", { limit: 100 }));
  assert.equal(whole.next_cursor, "", "everything fits in one page of 100");
  const pages = [];
  let cursor;
  for (let n = 0; n < 100; n++) {
    const page = sc(await ok("memory_list", { limit: 2, ...(cursor ? { cursor } : {}) }));
    assert.ok(page.items.length <= 2, "a page holds at most limit items");
    pages.push(...page.items.map((item) => item.key));
    cursor = page.next_cursor;
    if (!cursor) break;
    assert.equal(page.items.length, 2, "a page before the last is full");
  }
  assert.deepEqual(pages, whole.items.map((item) => item.key), "pages of 2 = one page of 100");
  assert.ok(whole.items.length >= 4, `memory_list lists the 4 memories: ${JSON.stringify(whole)}`);
  assert.equal(new Set(pages).size, pages.length, "no key on two pages");

  // memory_update: with the version from memory_get; a stale version is refused
  await ok("memory_update", { key: report.id, text: "The quarterly report is due on Monday",
                              version: got.version });
  const updated = sc(await ok("memory_get", { key: report.id }));
  assert.equal(updated.text, "The quarterly report is due on Monday");
  assert.notEqual(updated.version, got.version, "the version moved");
  await refused("memory_update", { key: report.id, text: "stale write", version: got.version });
  assert.equal(sc(await ok("memory_get", { key: report.id })).text,
               "The quarterly report is due on Monday", "the stale update changed nothing");

  // memory_history: both texts, oldest first
  const history = sc(await ok("memory_history", { key: report.id }));
  const texts = history.steps.map((step) => step.text);
  assert.deepEqual(texts.filter((t) => t.startsWith("The quarterly report")),
                   ["The quarterly report is due on Friday",
                    "The quarterly report is due on Monday"],
                   `memory_history: ${JSON.stringify(history)}`);

  // memory_context: a prompt block with the relevant memory
  const context = await eventually(async () => {
    const c = sc(await ok("memory_context", { query: "quarterly report", tokens: 200 }));
    return c.context.includes("due on Monday") && c;
  }, { timeoutMs: 10000 });
  assert.ok(context, "memory_context never held the updated report");
  assert.ok(context.tokens > 0 && context.tokens <= 200, `within the budget: ${context.tokens}`);

  // memory_forget: a dry run counts, the real run deletes, a second dry run counts none
  const dry = sc(await ok("memory_forget", { filters: { topic: "scratch" } }));
  assert.deepEqual([dry.count, dry.dry_run], [2, true], `dry run: ${JSON.stringify(dry)}`);
  await ok("memory_get", { key: scratch[0] });
  const real = sc(await ok("memory_forget", { filters: { topic: "scratch" }, dry_run: false }));
  assert.deepEqual([real.count, real.dry_run], [2, false], `real run: ${JSON.stringify(real)}`);
  assert.equal(sc(await ok("memory_forget", { filters: { topic: "scratch" } })).count, 0);
  for (const id of scratch) await refused("memory_get", { key: id });
  await ok("memory_get", { key: tea });

  // memory_delete
  await ok("memory_delete", { key: tea });
  await refused("memory_get", { key: tea });

  // memory_share: a private memory copied into user:alice
  const secret = sc(await ok("memory_add", { text: "a private thought", scope: "private" }));
  await refused("memory_get", { key: secret.id });
  assert.equal(sc(await ok("memory_get", { key: secret.id, scope: "private" })).text,
               "a private thought");
  await ok("memory_share", { key: secret.id, scope: "user:alice" });
  const shared = sc(await ok("memory_get", { key: secret.id, scope: "user:alice" }));
  assert.equal(shared.text, "a private thought");
  assert.equal(shared.author, "claude");
}

/** The options of memory_add, memory_search, memory_list and memory_context, each with what it
 *  changed: "zebra" memories in three scopes, two of them under ids of the test's. */
async function memoryToolOptions() {
  const sc = (r) => r.structuredContent;
  // memory_add with an id: the first add stores, a repeat stores nothing and changes nothing
  const first = sc(await ok("memory_add", { text: "zebra crossing near the office",
                                            id: "zebra/crossing",
                                            metadata: { place: "office" } }));
  assert.deepEqual([first.id, first.scope, first.stored], ["zebra/crossing", "user:alice", true]);
  const repeat = sc(await ok("memory_add", { text: "zebra crossing moved", id: "zebra/crossing",
                                             metadata: { place: "street" } }));
  assert.deepEqual([repeat.id, repeat.stored], ["zebra/crossing", false],
                   `a repeated add with an id: ${JSON.stringify(repeat)}`);
  const kept = sc(await ok("memory_get", { key: "zebra/crossing" }));
  assert.deepEqual([kept.text, kept.metadata], ["zebra crossing near the office",
                                                 { place: "office" }]);
  await ok("memory_add", { text: "zebra stripes are unique", id: "zebra/stripes",
                           metadata: { place: "zoo" } });
  await ok("memory_add", { text: "zebra documentary tonight", scope: "private" });
  await ok("memory_add", { text: "zebra feeding at noon", scope: "run:zoo",
                           metadata: { place: "zoo" } });

  // memory_search: by default every scope claude may read, here the four zebras
  const search = async (options) => sc(await ok("memory_search", { query: "zebra",
                                                                   ...options })).results;
  const texts = (results) => results.map((r) => r.text).sort();
  const all = await eventually(async () => {
    const results = await search({});
    return results.length === 4 && results;
  }, { timeoutMs: 10000 });
  assert.ok(all, `memory_search never found the 4 zebras: ${JSON.stringify(await search({}))}`);
  assert.deepEqual(all.map((r) => r.scope).sort(), ["private", "run:zoo", "user:alice",
                                                     "user:alice"]);
  // scope: that one only; scopes: those only; both: all of them
  assert.deepEqual(texts(await search({ scope: "private" })), ["zebra documentary tonight"]);
  const two = await search({ scopes: ["user:alice", "run:zoo"] });
  assert.deepEqual(two.map((r) => r.scope).sort(), ["run:zoo", "user:alice", "user:alice"],
                   `scopes: ${JSON.stringify(two)}`);
  assert.deepEqual(texts(await search({ scope: "private", scopes: ["run:zoo"] })),
                   ["zebra documentary tonight", "zebra feeding at noon"]);
  // filters: on the metadata, across the scopes searched
  assert.deepEqual(texts(await search({ filters: { place: "zoo" } })),
                   ["zebra feeding at noon", "zebra stripes are unique"]);
  assert.deepEqual(texts(await search({ scope: "user:alice", filters: { place: "zoo" } })),
                   ["zebra stripes are unique"]);
  // top_k: at most that many, the best of them
  const best = await search({ top_k: 2 });
  assert.equal(best.length, 2, `top_k 2: ${JSON.stringify(best)}`);
  assert.deepEqual(best.map((r) => r.key), all.slice(0, 2).map((r) => r.key));

  // memory_list: prefix keeps the keys starting with it, filters those whose metadata matches
  const list = async (options) => sc(await ok("memory_list", options)).items.map((i) => i.key);
  assert.deepEqual(await list({ prefix: "zebra/" }), ["zebra/crossing", "zebra/stripes"]);
  assert.deepEqual(await list({ filters: { place: "zoo" } }), ["zebra/stripes"]);
  assert.deepEqual(await list({ scope: "run:zoo", filters: { place: "office" } }), []);

  // memory_context: a header, then one line "- ..." a memory, of the scopes given, at most
  // top_k of them
  const context = async (options) => {
    const c = sc(await ok("memory_context", { query: "zebra", tokens: 500, ...options }));
    return c.context.split("\n").filter((line) => line.startsWith("- "));
  };
  assert.equal((await context({})).length, 4, "memory_context holds the 4 zebras");
  const lines = await context({ scopes: ["private", "run:zoo"] });
  assert.equal(lines.length, 2, `scopes private and run:zoo: ${JSON.stringify(lines)}`);
  assert.ok(lines.some((l) => l.includes("zebra documentary tonight")), lines.join("\n"));
  assert.ok(lines.some((l) => l.includes("zebra feeding at noon")), lines.join("\n"));
  assert.equal((await context({ top_k: 1 })).length, 1, "top_k 1: one memory");
}
