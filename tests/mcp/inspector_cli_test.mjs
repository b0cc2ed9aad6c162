// engram mcp driven by the MCP Inspector's CLI mode (@modelcontextprotocol/inspector-cli), a
// client engram did not write, in its two ways of naming the server:
//   - the command line itself: `node build/index.js ENGRAM ARGS... --method M ...`
//     (the target first: --tool-arg takes every argument after it);
//   - an mcpServers config file, as desktop clients keep them: `node build/cli.js --cli
//     --config FILE --server engram --method M ...` (cli.js runs index.js).
// Each run connects, calls one method and prints its result as JSON on stdout: tools/list
// (the nine graph tools and the memory_* tools), tools/call create_entities, tools/call
// read_graph (the entity is there: a new `engram mcp` each run, so it was stored), and
// resources/read of memory://knowledge-graph.
//
// The inspector's index.js imports its package.json by a path it checks against the working
// directory, so it is run from its own build/ directory. It uses import attributes (`with {type:
// "json"}`), which node has had since 18.20 (Debian 12's nodejs is 18.20.4): an older node fails
// this test, saying so, rather than letting the inspector fail on its syntax.
//
// Usage: node inspector_cli_test.mjs BIN_DIR LOCAL_CLUSTER_SH
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";

import { Cluster, INSPECTOR_CLI_DIR, parseArgs, runTests, tempDir } from "./harness.mjs";

const [major, minor] = process.versions.node.split(".").map(Number);
if (major < 18 || (major === 18 && minor < 20)) {
  console.log(`node ${process.versions.node} lacks import attributes, which the inspector ` +
              "CLI needs: node 18.20 or newer runs this test (deploy/install-deps.sh)");
  process.exit(1);
}

const BUILD = path.join(INSPECTOR_CLI_DIR, "build");
let cluster;
let config; // the mcpServers file naming engram mcp
let mcp; // engram mcp's command line

/** Runs the inspector with argv from its build/ directory; returns its parsed stdout. */
function inspector(argv, env) {
  const out = spawnSync(process.execPath, argv, { cwd: BUILD, env, encoding: "utf8",
                                                   timeout: 60000 });
  assert.equal(out.status, 0, `inspector ${argv.join(" ")}: exit ${out.status}\n` +
                              `stdout: ${out.stdout}\nstderr: ${out.stderr}`);
  try {
    return JSON.parse(out.stdout);
  } catch (e) {
    assert.fail(`inspector ${argv.join(" ")} printed no JSON: ${out.stdout}\n${out.stderr}`);
  }
}

/** The inspector run on engram mcp named on its command line. */
function direct(...methodArgs) {
  return inspector(["index.js", mcp.command, ...mcp.args, ...methodArgs], mcp.env);
}

/** The inspector run on engram mcp named by the config file. */
function viaConfig(...methodArgs) {
  return inspector(["cli.js", "--cli", "--config", config, "--server", "engram",
                    ...methodArgs], process.env);
}

const args = parseArgs();

await runTests("inspector_cli_test", [
  ["a one-node cluster and an mcpServers config naming engram mcp", async () => {
    cluster = await Cluster.start(1, args);
    cluster.agent(1, "inspector", "alice");
    mcp = cluster.mcpCommand(1, "inspector", "alice");
    config = path.join(tempDir("engram-mcp-inspector-"), "mcp.json");
    fs.writeFileSync(config, JSON.stringify({ mcpServers: { engram: {
      type: "stdio", command: mcp.command, args: mcp.args, env: { ENGRAM_HOME: cluster.home },
    } } }, null, 2));
  }],
  ["tools/list", async () => {
    for (const listed of [direct("--method", "tools/list"),
                          viaConfig("--method", "tools/list")]) {
      const names = listed.tools.map((t) => t.name);
      for (const name of ["create_entities", "create_relations", "add_observations",
                          "delete_entities", "delete_observations", "delete_relations",
                          "read_graph", "search_nodes", "open_nodes", "memory_add",
                          "memory_search"]) {
        assert.ok(names.includes(name), `tools/list has ${name}: ${names.join(", ")}`);
      }
      const create = listed.tools.find((t) => t.name === "create_entities");
      assert.deepEqual(create.inputSchema.required, ["entities"]);
      assert.equal(create.annotations.readOnlyHint, false);
    }
  }],
  ["tools/call create_entities", async () => {
    const entities = [{ name: "Inspector", entityType: "tool", observations: ["speaks MCP"] }];
    const r = direct("--method", "tools/call", "--tool-name", "create_entities",
                     "--tool-arg", `entities=${JSON.stringify(entities)}`);
    assert.notEqual(r.isError, true, JSON.stringify(r));
    assert.deepEqual(r.structuredContent, { entities });
    assert.deepEqual(JSON.parse(r.content[0].text), entities);
  }],
  ["tools/call read_graph (another session: the entity was stored)", async () => {
    for (const r of [direct("--method", "tools/call", "--tool-name", "read_graph"),
                     viaConfig("--method", "tools/call", "--tool-name", "read_graph")]) {
      assert.notEqual(r.isError, true, JSON.stringify(r));
      const want = { entities: [{ name: "Inspector", entityType: "tool",
                                  observations: ["speaks MCP"] }], relations: [] };
      assert.deepEqual(r.structuredContent, want);
      assert.equal(r.content[0].text, JSON.stringify(want, null, 2));
    }
  }],
  ["tools/call search_nodes through the config", async () => {
    const r = viaConfig("--method", "tools/call", "--tool-name", "search_nodes",
                        "--tool-arg", "query=SPEAKS");
    assert.deepEqual(r.structuredContent.entities.map((e) => e.name), ["Inspector"]);
  }],
  ["resources/read memory://knowledge-graph", async () => {
    const r = direct("--method", "resources/read", "--uri", "memory://knowledge-graph");
    assert.equal(r.contents.length, 1);
    assert.equal(r.contents[0].uri, "memory://knowledge-graph");
    assert.equal(r.contents[0].mimeType, "application/json");
    assert.deepEqual(JSON.parse(r.contents[0].text).entities.map((e) => e.name), ["Inspector"]);
  }],
]);
