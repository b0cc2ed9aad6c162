// What the MCP tests share: a cluster of engram nodes from deploy/local-cluster.sh, agents
// registered on it, `engram mcp` and the official @modelcontextprotocol/server-memory spawned
// as MCP servers (through the SDK's StdioClientTransport, or as raw child processes speaking
// JSON-RPC lines), and the run of one test file with its cleanup.
//
// Every test file is run by CTest as `node FILE.mjs BIN_DIR LOCAL_CLUSTER_SH` (BIN_DIR holds
// engram and engramd). Invariants:
//   - whatever a test starts is ended when it ends, passed, failed or killed by SIGTERM/SIGINT
//     (CTest's timeout): the cluster is stopped (local-cluster.sh stop), the spawned servers
//     are killed, the temporary directories removed;
//   - the cluster's ports are drawn at random and checked free, and drawn again when a node
//     lost its port before binding it, so that these tests run beside any others;
//   - a failure exits 1 with the assertion's message and the last lines each server wrote to
//     stderr; success prints "N passed, 0 failed" and exits 0.
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";

export const HERE = path.dirname(fileURLToPath(import.meta.url));
export const MODULES = path.join(HERE, "node_modules");
export const SERVER_MEMORY = path.join(
  MODULES, "@modelcontextprotocol", "server-memory", "dist", "index.js");
export const INSPECTOR_CLI_DIR = path.join(MODULES, "@modelcontextprotocol", "inspector-cli");

const cleanups = []; // run last first, once, at the end of the test or on a signal
const stderrTails = new Map(); // label -> what that server wrote to stderr (bounded)
const STDERR_KEEP = 8192;

/** Registers fn to run when the test ends (synchronous: it may run from a signal handler). */
export function atExit(fn) {
  cleanups.push(fn);
}

function runCleanups() {
  while (cleanups.length > 0) {
    const fn = cleanups.pop();
    try {
      fn();
    } catch (e) {
      console.error(`cleanup: ${e.message}`);
    }
  }
}

for (const signal of ["SIGTERM", "SIGINT"]) {
  process.on(signal, () => {
    console.error(`${signal}: stopping what the test started`);
    runCleanups();
    process.exit(1);
  });
}

/** Keeps the tail of a child's stderr under label, printed when the test fails. */
function keepStderr(label, stream) {
  if (!stream) return;
  stderrTails.set(label, "");
  stream.setEncoding("utf8");
  stream.on("data", (chunk) => {
    const text = stderrTails.get(label) + chunk;
    stderrTails.set(label, text.length > STDERR_KEEP ? text.slice(-STDERR_KEEP) : text);
  });
}

/** The command line: BIN_DIR and LOCAL_CLUSTER_SH, checked. */
export function parseArgs() {
  const [binDir, localCluster] = process.argv.slice(2);
  if (!binDir || !localCluster) {
    console.error(`usage: node ${path.basename(process.argv[1])} BIN_DIR LOCAL_CLUSTER_SH`);
    process.exit(2);
  }
  for (const f of [path.join(binDir, "engram"), path.join(binDir, "engramd"), localCluster]) {
    if (!fs.existsSync(f)) throw new Error(`${f} does not exist`);
  }
  if (!fs.existsSync(SERVER_MEMORY)) {
    throw new Error(`${SERVER_MEMORY} is missing: run deploy/install-deps.sh ` +
                    "(npm ci --prefix tests/mcp)");
  }
  return { binDir: path.resolve(binDir), localCluster: path.resolve(localCluster) };
}

/**
 * Runs the test cases in order ([name, async fn] pairs), then the cleanups; exits 0 when all
 * passed, 1 otherwise. A failure stops the run (the cases build on each other) unless
 * keepGoing, where the cases after it run too and every failure is reported.
 */
export async function runTests(file, cases, { keepGoing = false } = {}) {
  let passed = 0;
  const failures = [];
  try {
    for (const [n, [name, fn]] of cases.entries()) {
      const started = Date.now();
      try {
        await fn();
      } catch (e) {
        failures.push(name);
        console.log(`not ok ${n + 1} - ${name}`);
        console.log(`${file}: ${name} failed:\n${e?.stack ?? e}`);
        if (keepGoing) continue;
        break;
      }
      passed++;
      console.log(`ok ${n + 1} - ${name} (${Date.now() - started} ms)`);
    }
  } finally {
    runCleanups();
  }
  if (failures.length) {
    for (const [label, text] of stderrTails) {
      if (text.trim()) console.log(`--- stderr of ${label} (tail) ---\n${text}`);
    }
  }
  console.log(`${passed} passed, ${failures.length} failed`);
  process.exit(failures.length ? 1 : 0);
}

/** A temporary directory, removed at exit. */
export function tempDir(prefix) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  atExit(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function portFree(port) {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once("error", () => resolve(false));
    server.listen(port, "127.0.0.1", () => server.close(() => resolve(true)));
  });
}

function randomBase() {
  return 20000 + 100 * Math.floor(Math.random() * 390); // 20000 .. 58900, as the Python tests
}

/**
 * A cluster of n engram nodes in a temporary directory (deploy/local-cluster.sh), with the
 * admin's home at dir/home; stopped and removed at exit.
 */
export class Cluster {
  static async start(n, { binDir, localCluster }) {
    for (let attempt = 0; attempt < 5; attempt++) {
      const base = randomBase();
      const ports = [];
      for (let i = 1; i <= n; i++) ports.push(base + 10 * i, base + 10 * i + 1, base + 10 * i + 2);
      const free = await Promise.all(ports.map(portFree));
      if (!free.every(Boolean)) continue;
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), "engram-mcp-"));
      const env = {
        ...process.env,
        ENGRAM_BIN: binDir,
        ENGRAM_BASE_PORT: String(base),
        ENGRAM_NODE_FLAGS: "--gossip-interval-ms 100",
      };
      const cluster = new Cluster(n, dir, env, binDir, localCluster);
      atExit(() => cluster.stop());
      const out = spawnSync(localCluster, [String(n), dir], { env, encoding: "utf8",
                                                             timeout: 120000 });
      if (out.status === 0) return cluster;
      const logs = cluster.logs();
      cluster.stop();
      // a port taken between the check and the bind (gossip, or the metrics listener): draw again
      if (!logs.includes("cannot bind gossip") && !logs.includes("--metrics: cannot listen")) {
        throw new Error(`local-cluster.sh ${n} failed: ${out.stderr}\n${logs.slice(-3000)}`);
      }
    }
    throw new Error("no free ports for the cluster in 5 draws");
  }

  constructor(n, dir, env, binDir, localCluster) {
    this.n = n;
    this.dir = dir;
    this.home = path.join(dir, "home");
    this.env = env;
    this.engram = path.join(binDir, "engram");
    this.localCluster = localCluster;
    this.stopped = false;
  }

  api(i) {
    return `ipc://${this.dir}/n${i}/api.sock`;
  }

  logs() {
    let text = "";
    for (let i = 1; i <= this.n; i++) {
      const log = path.join(this.dir, `n${i}`, "engramd.log");
      if (fs.existsSync(log)) text += `--- n${i}/engramd.log ---\n${fs.readFileSync(log, "utf8")}`;
    }
    return text;
  }

  /** Registers agent name on node i, acting for user, reading and writing each resource. */
  agent(i, name, user, ...resources) {
    const out = spawnSync(this.localCluster, ["agent", this.dir, String(i), name, user,
                                              ...resources],
                          { env: this.env, encoding: "utf8", timeout: 120000 });
    if (out.status !== 0) {
      throw new Error(`local-cluster.sh agent ${i} ${name} ${user}: exit ${out.status}: ` +
                      `${out.stderr}`);
    }
  }

  /** The engram CLI's options acting as agent on node i for user. */
  as(i, agent, user) {
    return ["--socket", this.api(i), "--agent", agent, "--user", user];
  }

  /** Runs `engram ARGV...` as agent on node i for user; its stdout (an exit other than 0
   *  fails). */
  cli(i, agent, user, argv) {
    const out = spawnSync(this.engram, [...this.as(i, agent, user), ...argv],
                          { env: { ...process.env, ENGRAM_HOME: this.home }, encoding: "utf8",
                            timeout: 60000 });
    if (out.status !== 0) {
      throw new Error(`engram ${argv.join(" ")}: exit ${out.status}: ${out.stderr}`);
    }
    return out.stdout;
  }

  /** The command line of `engram mcp` as agent on node i for user, with the --scope values. */
  mcpCommand(i, agent, user, scopes = []) {
    return {
      command: this.engram,
      args: [...this.as(i, agent, user), "mcp", ...scopes.flatMap((s) => ["--scope", s])],
      env: { ...process.env, ENGRAM_HOME: this.home },
    };
  }

  stop() {
    if (this.stopped) return;
    this.stopped = true;
    spawnSync(this.localCluster, ["stop", this.dir], { env: this.env, timeout: 120000 });
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

/** The command line of the official memory server keeping its graph in file. */
export function serverMemoryCommand(file) {
  return {
    command: process.execPath,
    args: [SERVER_MEMORY],
    env: { ...process.env, MEMORY_FILE_PATH: file },
  };
}

/**
 * An SDK Client connected over StdioClientTransport to the server that spec ({command, args,
 * env}) starts; closed at the end of the test. label names its stderr in a failure's report.
 */
export async function connect(spec, label, { client = "engram-mcp-tests", capabilities } = {}) {
  const transport = new StdioClientTransport({ ...spec, stderr: "pipe" });
  keepStderr(label, transport.stderr);
  const c = new Client({ name: client, version: "1.0.0" }, capabilities ? { capabilities } : {});
  await c.connect(transport);
  atExit(() => {
    // synchronous end: the child is killed; close() would await its exit
    const pid = transport.pid;
    if (pid) {
      try {
        process.kill(pid, "SIGKILL");
      } catch {
        // already gone
      }
    }
  });
  return c;
}

/**
 * A server spoken to in raw JSON-RPC lines: send(obj or string) writes one line; next()
 * resolves with the next parsed line the server writes (bounded wait); request(method,
 * params) sends a request with a fresh id and resolves with the answer that has that id.
 */
export class RawSession {
  constructor(spec, label) {
    this.child = spawn(spec.command, spec.args, { env: spec.env, stdio: ["pipe", "pipe", "pipe"] });
    keepStderr(label, this.child.stderr);
    atExit(() => this.child.kill("SIGKILL"));
    this.lines = [];
    this.waiters = [];
    this.buffer = "";
    this.nextId = 1;
    this.exited = null;
    this.child.on("exit", (code, signal) => {
      this.exited = { code, signal };
      for (const w of this.waiters.splice(0)) w.reject(new Error(`server exited (${code ?? signal})`));
    });
    this.child.stdout.setEncoding("utf8");
    this.child.stdout.on("data", (chunk) => {
      this.buffer += chunk;
      let nl;
      while ((nl = this.buffer.indexOf("\n")) >= 0) {
        const line = this.buffer.slice(0, nl);
        this.buffer = this.buffer.slice(nl + 1);
        if (line.trim() === "") continue;
        let message;
        try {
          message = JSON.parse(line);
        } catch (e) {
          message = { unparsable: line };
        }
        const w = this.waiters.shift();
        if (w) w.resolve(message);
        else this.lines.push(message);
      }
    });
  }

  send(message) {
    this.child.stdin.write((typeof message === "string" ? message : JSON.stringify(message)) + "\n");
  }

  next(timeoutMs = 10000) {
    if (this.lines.length > 0) return Promise.resolve(this.lines.shift());
    if (this.exited) return Promise.reject(new Error(`server exited (${this.exited.code})`));
    return new Promise((resolve, reject) => {
      const w = { resolve, reject };
      const timer = setTimeout(() => {
        this.waiters.splice(this.waiters.indexOf(w), 1);
        reject(new Error(`no line from the server in ${timeoutMs} ms`));
      }, timeoutMs);
      w.resolve = (m) => { clearTimeout(timer); resolve(m); };
      w.reject = (e) => { clearTimeout(timer); reject(e); };
      this.waiters.push(w);
    });
  }

  /** The answer with id (notifications in between are skipped). */
  async answer(id, timeoutMs = 10000) {
    for (;;) {
      const m = await this.next(timeoutMs);
      if (m.id === id && m.method === undefined) return m;
    }
  }

  async request(method, params) {
    const id = this.nextId++;
    this.send({ jsonrpc: "2.0", id, method, ...(params === undefined ? {} : { params }) });
    return this.answer(id);
  }

  close() {
    this.child.stdin.end();
  }
}

/** An initialize request's params asking for version. */
export function initializeParams(version) {
  return {
    protocolVersion: version,
    capabilities: {},
    clientInfo: { name: "engram-mcp-tests-raw", version: "1.0.0" },
  };
}

/** Polls fn (async, returning a truthy value when done) every intervalMs up to timeoutMs;
 *  returns the last value (falsy when time ran out). */
export async function eventually(fn, { timeoutMs = 30000, intervalMs = 200 } = {}) {
  const deadline = Date.now() + timeoutMs;
  let value;
  for (;;) {
    value = await fn();
    if (value || Date.now() >= deadline) return value;
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

/** The JSON a tool result's text carries (the text itself when it is not JSON). */
export function resultText(result) {
  assert.ok(Array.isArray(result.content) && result.content.length >= 1,
            `a tool result has content: ${JSON.stringify(result)}`);
  assert.equal(result.content[0].type, "text");
  return result.content[0].text;
}

export function resultJson(result) {
  const text = resultText(result);
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

function byKeys(keys) {
  return (a, b) => {
    for (const k of keys) {
      const x = String(a[k]);
      const y = String(b[k]);
      if (x !== y) return x < y ? -1 : 1;
    }
    return 0;
  };
}

/** x with its arrays of entities, relations and observations sorted (key order kept): the
 *  official server keeps them in insertion order, engram in sets, so the order is no part of
 *  what is compared. */
export function normalizeGraph(x) {
  if (Array.isArray(x)) {
    const items = x.map(normalizeGraph);
    if (items.every((i) => typeof i === "string")) return [...items].sort();
    if (items.every((i) => i && typeof i === "object" && "entityType" in i)) {
      return items.sort(byKeys(["name"]));
    }
    if (items.every((i) => i && typeof i === "object" && "relationType" in i)) {
      return items.sort(byKeys(["from", "to", "relationType"]));
    }
    if (items.every((i) => i && typeof i === "object" && "entityName" in i)) {
      return items.sort(byKeys(["entityName"]));
    }
    return items;
  }
  if (x && typeof x === "object") {
    return Object.fromEntries(Object.entries(x).map(([k, v]) => [k, normalizeGraph(v)]));
  }
  return x;
}
