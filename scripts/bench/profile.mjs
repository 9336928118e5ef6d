#!/usr/bin/env node
/**
 * `npm run bench:profile`: where a debit's CPU goes inside workerd. Starts the
 * bench Worker (as `npm run bench` does), gives one account 50 lots, then
 * takes a V8 CPU profile through wrangler dev's inspector while autocannon
 * drives debits at it (BENCH_SECONDS, default 5; 16 connections), and prints
 * the functions with the most self time, grouped by source file. Loopback
 * only; stops everything it started. `--route noop` profiles the no-op round
 * trip instead, for comparison.
 */
import WebSocket from "ws";
import { startLocalGate } from "../lib/wrangler.mjs";
import { drive } from "./load.mjs";

const SECONDS = Number(process.env.BENCH_SECONDS ?? 5);
const ROUTE = process.argv.includes("--route") ? process.argv[process.argv.indexOf("--route") + 1] : "debit";
const TOP = 30;

/** One CDP session over the inspector's websocket. */
async function inspector(port) {
  const targets = await (await fetch(`http://127.0.0.1:${port}/json`)).json();
  const target = targets.find((t) => t.webSocketDebuggerUrl) ?? targets[0];
  const ws = new WebSocket(target.webSocketDebuggerUrl);
  await new Promise((resolve, reject) => {
    ws.once("open", resolve);
    ws.once("error", reject);
  });
  let id = 0;
  const waiting = new Map();
  ws.on("message", (raw) => {
    const msg = JSON.parse(String(raw));
    if (msg.id && waiting.has(msg.id)) {
      waiting.get(msg.id)(msg);
      waiting.delete(msg.id);
    }
  });
  const send = (method, params = {}) =>
    new Promise((resolve) => {
      id += 1;
      waiting.set(id, resolve);
      ws.send(JSON.stringify({ id, method, params }));
    });
  return { send, close: () => ws.close(), targets: targets.map((t) => t.title ?? t.url) };
}

/** Self time per function and per file from a V8 CPU profile. */
function summarize(profile) {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const dt = new Map();
  for (let i = 0; i < profile.samples.length; i++) {
    const node = profile.samples[i];
    dt.set(node, (dt.get(node) ?? 0) + (profile.timeDeltas[i] ?? 0));
  }
  const fns = new Map();
  const files = new Map();
  let total = 0;
  for (const [nodeId, us] of dt) {
    const frame = byId.get(nodeId).callFrame;
    const file = (frame.url || "(native)").replace(/^.*\/(src|bench|node_modules)\//, "$1/");
    const key = `${frame.functionName || "(anonymous)"}  ${file}:${frame.lineNumber + 1}\u0000${frame.scriptId}:${frame.lineNumber}`;
    fns.set(key, (fns.get(key) ?? 0) + us);
    files.set(file, (files.get(file) ?? 0) + us);
    total += us;
  }
  const top = (m) => [...m.entries()].sort((a, b) => b[1] - a[1]).slice(0, TOP);
  return { total, fns: top(fns), files: top(files) };
}

const gate = await startLocalGate({ label: "profile", config: "bench/wrangler.toml" });
try {
  const H = { authorization: `Bearer ${gate.adminToken}`, "content-type": "application/json" };
  const hot = "profile-hot";
  await fetch(`${gate.url}/v1/accounts/${hot}`, { method: "PUT", headers: H, body: JSON.stringify({ name: "p" }) });
  for (let i = 0; i < 50; i++) {
    const expires = i % 2 === 0 ? { expires_at: new Date(Date.now() + (10 + i) * 86_400_000).toISOString() } : {};
    await fetch(`${gate.url}/v1/accounts/${hot}/grants`, {
      method: "POST",
      headers: H,
      body: JSON.stringify({ grant_id: `g${i}`, amount: 1e9, type: i % 3 ? "purchased" : "promotional", ...expires }),
    });
  }
  // The bench's caller: a gateway key (the admin token takes another path through auth).
  const keyRes = await fetch(`${gate.url}/v1/api-keys`, {
    method: "POST",
    headers: H,
    body: JSON.stringify({ name: "profile", role: "gateway" }),
  });
  const gatewayKey = (await keyRes.json()).key;
  const cdp = await inspector(gate.inspectorPort);
  console.log(`inspector targets: ${cdp.targets.join(", ")}`);
  await cdp.send("Profiler.enable");
  await cdp.send("Profiler.setSamplingInterval", { interval: 100 });
  await cdp.send("Profiler.start");
  const url = ROUTE === "noop" ? `${gate.url}/__bench/noop/${hot}` : `${gate.url}/v1/accounts/${hot}/debits`;
  const res = await drive({
    url,
    headers: { authorization: `Bearer ${gatewayKey}` },
    body: (i) => ({ debit_id: `pr-${i}`, amount: 1 }),
    connections: 16,
    seconds: SECONDS,
    serverPids: () => [],
  });
  const { result } = await cdp.send("Profiler.stop");
  const s = summarize(result.profile);
  // The bundle's anonymous functions are named by the line they start on.
  await cdp.send("Debugger.enable");
  const sources = new Map();
  const lineOf = async (scriptId, line) => {
    if (!scriptId || scriptId === "0") return "";
    if (!sources.has(scriptId)) {
      const got = await cdp.send("Debugger.getScriptSource", { scriptId });
      sources.set(scriptId, (got.result?.scriptSource ?? "").split("\n"));
    }
    return (sources.get(scriptId)[line] ?? "").trim().slice(0, 90);
  };
  const fns = [];
  for (const [key, us] of s.fns) {
    const [name, where] = key.split("\u0000");
    const [scriptId, line] = where.split(":");
    fns.push([`${name}  ${await lineOf(scriptId, Number(line))}`, us]);
  }
  s.fns = fns;
  cdp.close();
  const perReq = (us) => (us / res.ok).toFixed(1);
  console.log(
    `\n${ROUTE}: ${res.ok} requests in ${SECONDS} s; isolate CPU sampled ${(s.total / 1000).toFixed(0)} ms = ${perReq(s.total)} µs/request`,
  );
  console.log("\nself time by file (µs per request):");
  for (const [file, us] of s.files) console.log(`  ${perReq(us).padStart(8)}  ${file}`);
  console.log("\nself time by function (µs per request):");
  for (const [fn, us] of s.fns) console.log(`  ${perReq(us).padStart(8)}  ${fn}`);
} finally {
  await gate.stop();
}
