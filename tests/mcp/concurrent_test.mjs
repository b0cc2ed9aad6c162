// Concurrent writers through MCP: two agents on two nodes of one cluster, each through its own
// `engram mcp` (claude on node 1, cursor on node 2, both acting for alice, so both keep the
// graph in user:alice), add observations to one entity at once: 20 add_observations calls each,
// all in flight together (Promise.all), every content distinct. Once gossip has carried them,
// read_graph on both sides must show all 40: engram's observations are a set CRDT, no write is
// lost however the calls interleave. The wait for convergence is bounded (30 s) and polls.
// Before that, a client subscribed to memory://knowledge-graph through node 2 must get
// notifications/resources/updated for a graph change made through node 1 (bounded, 30 s), and
// node 2 then holds the change.
//
// For the record (printed, not asserted): the same 20 + 20 against two processes of the
// official server-memory sharing one MEMORY_FILE_PATH, which loads the whole file, changes it
// and writes it back on every call, so concurrent writers overwrite each other.
//
// Usage: node concurrent_test.mjs BIN_DIR LOCAL_CLUSTER_SH
import assert from "node:assert/strict";
import path from "node:path";

import { ResourceUpdatedNotificationSchema } from "@modelcontextprotocol/sdk/types.js";

import {
  Cluster, connect, eventually, parseArgs, runTests, serverMemoryCommand, tempDir,
} from "./harness.mjs";

const PER_CLIENT = 20;
const ENTITY = "Shared";

/** Fires PER_CLIENT add_observations calls at once from client, contents tagged with tag;
 *  every call must succeed. */
async function burst(client, tag) {
  const results = await Promise.all(Array.from({ length: PER_CLIENT }, (_, k) =>
    client.callTool({ name: "add_observations", arguments: { observations: [
      { entityName: ENTITY, contents: [`${tag} observation ${k}`] },
    ] } })));
  for (const [k, r] of results.entries()) {
    assert.ok(!r.isError, `${tag} call ${k} failed: ${JSON.stringify(r)}`);
    assert.deepEqual(r.structuredContent.results,
                     [{ entityName: ENTITY, addedObservations: [`${tag} observation ${k}`] }],
                     `${tag} call ${k} added its observation`);
  }
}

/** The observations of ENTITY that client's read_graph shows (null: no such entity). */
async function observations(client) {
  const r = await client.callTool({ name: "read_graph", arguments: {} });
  assert.ok(!r.isError, `read_graph failed: ${JSON.stringify(r)}`);
  const entity = r.structuredContent.entities.find((e) => e.name === ENTITY);
  return entity ? entity.observations : null;
}

function expected() {
  const all = [];
  for (const tag of ["one", "two"]) {
    for (let k = 0; k < PER_CLIENT; k++) all.push(`${tag} observation ${k}`);
  }
  return all.sort();
}

const args = parseArgs();
let one;
let two;

await runTests("concurrent_test", [
  ["a two-node cluster, an engram mcp on each", async () => {
    const cluster = await Cluster.start(2, args);
    cluster.agent(1, "claude", "alice");
    cluster.agent(2, "cursor", "alice");
    one = await connect(cluster.mcpCommand(1, "claude", "alice"), "engram mcp on node 1");
    two = await connect(cluster.mcpCommand(2, "cursor", "alice"), "engram mcp on node 2");
  }],
  ["the entity, created on node 1, reaches node 2", async () => {
    const r = await one.callTool({ name: "create_entities", arguments: { entities: [
      { name: ENTITY, entityType: "test", observations: [] },
    ] } });
    assert.ok(!r.isError, JSON.stringify(r));
    const seen = await eventually(async () => (await observations(two)) !== null);
    assert.ok(seen, "node 2 never saw the entity within 30 s");
  }],
  ["a graph change through node 1 notifies node 2's subscriber", async () => {
    const updates = [];
    two.setNotificationHandler(ResourceUpdatedNotificationSchema, (n) => {
      updates.push(n.params.uri);
    });
    assert.deepEqual(await two.subscribeResource({ uri: "memory://knowledge-graph" }), {});
    const r = await one.callTool({ name: "create_entities", arguments: { entities: [
      { name: "Notice", entityType: "test", observations: ["written through node 1"] },
    ] } });
    assert.ok(!r.isError, JSON.stringify(r));
    const notified = await eventually(() => updates.length > 0);
    assert.ok(notified, "node 2's engram mcp sent no notifications/resources/updated within " +
                        "30 s of a change through node 1");
    assert.equal(updates[0], "memory://knowledge-graph");
    // (a late part of an earlier change may notify first: node 2 holds this one soon after)
    const held = await eventually(async () => {
      const opened = await two.callTool({ name: "open_nodes", arguments: { names: ["Notice"] } });
      return opened.structuredContent.entities.some((e) => e.name === "Notice");
    });
    assert.ok(held, "node 2 never held the change it was notified of");
  }],
  ["20 + 20 concurrent add_observations, all 40 on both nodes", async () => {
    await Promise.all([burst(one, "one"), burst(two, "two")]);
    const want = expected();
    let last = [];
    const converged = await eventually(async () => {
      last = [(await observations(one)) ?? [], (await observations(two)) ?? []];
      return last.every((obs) => obs.length === want.length);
    });
    for (const [i, obs] of last.entries()) {
      assert.deepEqual([...obs].sort(), want,
                       `node ${i + 1} shows ${obs.length} of the ${want.length} observations` +
                       (converged ? "" : " after 30 s"));
    }
    console.log(`engram mcp: ${last[0].length} of ${want.length} observations on node 1, ` +
                `${last[1].length} on node 2`);
  }],
  ["for the record: two server-memory processes sharing one file", async () => {
    const file = path.join(tempDir("engram-mcp-shared-"), "memory.jsonl");
    const a = await connect(serverMemoryCommand(file), "server-memory a");
    const b = await connect(serverMemoryCommand(file), "server-memory b");
    const r = await a.callTool({ name: "create_entities", arguments: { entities: [
      { name: ENTITY, entityType: "test", observations: [] },
    ] } });
    assert.ok(!r.isError, JSON.stringify(r));
    // a call of either may fail (it may read the file while the other renames it in)
    const settled = await Promise.allSettled([burst(a, "one"), burst(b, "two")]);
    const failed = settled.filter((s) => s.status === "rejected").length;
    const kept = (await observations(a)) ?? [];
    console.log(`server-memory x2 on one file: ${kept.length} of ${2 * PER_CLIENT} ` +
                `observations survived${failed ? ` (${failed} of the 2 bursts saw a failure)` : ""}`);
  }],
]);
