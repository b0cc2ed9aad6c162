// engramd's status page (node/http/page): reads /api/status and /api/access of the listener
// that served it, every REFRESH_MS, and fills index.html's tables. Every name shown (members,
// scopes, agents, users, resources) comes from the node's state, so it is written as text
// (textContent), never as markup.
"use strict";

const REFRESH_MS = 5000; // the node makes its documents anew at most every 2 s

function cell(row, text, className) {
  const td = document.createElement("td");
  td.textContent = text === undefined || text === null ? "" : String(text);
  if (className) td.className = className;
  row.appendChild(td);
  return td;
}

function fill(tableId, rows, makeRow) {
  const body = document.querySelector("#" + tableId + " tbody");
  body.replaceChildren();
  for (const item of rows) body.appendChild(makeRow(item));
  if (!rows.length) {
    const tr = document.createElement("tr");
    const td = cell(tr, "none", "quiet");
    td.colSpan = document.querySelectorAll("#" + tableId + " thead th").length;
    body.appendChild(tr);
  }
}

function time(ms) {
  return ms === null || ms === undefined ? "—" : new Date(ms).toISOString().replace(".000", "");
}

function duration(ms) {
  const s = Math.floor(ms / 1000);
  if (s < 120) return s + " s";
  if (s < 7200) return Math.floor(s / 60) + " min";
  return Math.floor(s / 3600) + " h";
}

function showNode(node) {
  document.getElementById("node-id").textContent = node.id;
  document.getElementById("node-facts").textContent =
    "engramd " + node.version + " · replica " + node.replica + " · up " + duration(node.uptime_ms) +
    " · durability " + node.durability + " · storage " + node.storage;
  const readiness = document.getElementById("readiness");
  const failed = Object.entries(node.ready.checks).filter(([, ok]) => !ok).map(([name]) => name);
  readiness.textContent = node.ready.ready ? "ready" : "not ready: " + failed.join(", ");
  readiness.className = node.ready.ready ? "ok" : "bad";
  readiness.dataset.ready = String(node.ready.ready);
}

function showCluster(cluster) {
  const facts = document.getElementById("cluster-facts");
  if (!cluster) {
    facts.textContent = "a single node: no cluster";
    fill("members", [], () => null);
    fill("scopes", [], () => null);
    return;
  }
  facts.textContent = "cluster " + cluster.id + " · gossip " + cluster.endpoint +
    " · local health " + cluster.local_health + "/8";
  fill("members", cluster.members, (m) => {
    const tr = document.createElement("tr");
    tr.dataset.member = m.id;
    tr.dataset.state = m.state;
    cell(tr, m.id, "mono");
    cell(tr, m.state, "state-" + m.state);
    cell(tr, m.endpoint, "mono");
    cell(tr, m.incarnation);
    cell(tr, m.state === "self" ? "—" : m.lag_known ? m.lag_ops : "not known yet");
    cell(tr, m.state === "self" ? "—" : m.lag_known ? m.lag_bytes : "");
    return tr;
  });
  fill("scopes", cluster.scopes, (s) => {
    const tr = document.createElement("tr");
    tr.dataset.scope = s.scope;
    cell(tr, s.scope, "mono");
    cell(tr, s.vector, "mono");
    cell(tr, s.ops);
    cell(tr, s.garbage);
    return tr;
  });
}

// One small chart per series: the rate per second between consecutive samples (the node's
// samples every few seconds, then its totals at the moment it answered).
function showRates(rates) {
  const series = [
    ["requests", "requests/s"], ["writes", "writes/s"], ["errors", "errors/s"],
    ["deltas_applied", "deltas applied/s"], ["bytes_received", "gossip bytes in/s"],
    ["bytes_sent", "gossip bytes out/s"],
  ];
  const box = document.getElementById("rates");
  box.replaceChildren();
  const samples = rates.samples;
  for (const [field, label] of series) {
    const points = [];
    for (let i = 1; i < samples.length; i++) {
      const seconds = (samples[i].at_ms - samples[i - 1].at_ms) / 1000;
      points.push(seconds > 0 ? (samples[i][field] - samples[i - 1][field]) / seconds : 0);
    }
    const div = document.createElement("div");
    div.className = "rate";
    div.dataset.series = field;
    const last = points.length ? points[points.length - 1] : 0;
    const caption = document.createElement("div");
    caption.textContent = label + ": " + (points.length ? last.toFixed(1) : "…");
    if (points.length) div.dataset.rate = last.toFixed(3);
    div.appendChild(caption);
    const svgNS = "http://www.w3.org/2000/svg";
    const svg = document.createElementNS(svgNS, "svg");
    svg.setAttribute("width", "240");
    svg.setAttribute("height", "48");
    const max = Math.max(1, ...points);
    const line = document.createElementNS(svgNS, "polyline");
    line.setAttribute("points", points.map((v, i) =>
      (points.length > 1 ? (i * 238) / (points.length - 1) + 1 : 1) + "," +
      (46 - (v / max) * 44)).join(" "));
    svg.appendChild(line);
    div.appendChild(svg);
    box.appendChild(div);
  }
}

function showAccess(access) {
  const valid = access.statements.filter((s) => s.valid);
  fill("acts-for", valid.filter((s) => s.kind === "user_agent"), (s) => {
    const tr = document.createElement("tr");
    tr.dataset.user = s.user;
    tr.dataset.agent = s.agent;
    cell(tr, s.user);
    cell(tr, s.agent);
    cell(tr, time(s.from_ms));
    cell(tr, time(s.until_ms));
    return tr;
  });
  fill("grants", valid.filter((s) => s.kind === "agent_resource"), (s) => {
    const tr = document.createElement("tr");
    tr.dataset.agent = s.agent;
    tr.dataset.resource = s.resource;
    cell(tr, s.agent);
    cell(tr, s.resource, "mono");
    cell(tr, s.read ? "yes" : "no");
    cell(tr, s.write ? "yes" : "no");
    cell(tr, time(s.until_ms));
    return tr;
  });
}

async function refresh() {
  const refreshed = document.getElementById("refreshed");
  try {
    const [status, access] = await Promise.all(
      ["/api/status", "/api/access"].map(async (path) => {
        const response = await fetch(path, { cache: "no-store" });
        if (!response.ok) throw new Error(path + ": " + response.status);
        return response.json();
      }));
    showNode(status.node);
    showCluster(status.cluster);
    showRates(status.rates);
    showAccess(access);
    refreshed.textContent = "as of " + new Date().toISOString();
    refreshed.className = "quiet";
    document.body.dataset.loaded = "true";
  } catch (error) {
    refreshed.textContent = "cannot reach the node: " + error.message;
    refreshed.className = "bad";
  }
}

refresh();
setInterval(refresh, REFRESH_MS);
