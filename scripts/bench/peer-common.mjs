/**
 * What both bench peers share (scripts/bench/peers.mjs): bounded child
 * processes and apt installs, free ports, the process tree whose CPU the
 * bench reads, cleanup at exit, and the `POST /debit` HTTP service.
 */
import { spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import { readdirSync, readFileSync } from "node:fs";
import http from "node:http";
import { createServer } from "node:net";
import os from "node:os";

export const START_TIMEOUT_MS = 30_000;
export const STOP_TIMEOUT_MS = 30_000;
export const APT_TIMEOUT_MS = 600_000; // an install may have to download; still bounded
export const POOL_SIZE = 16;
export const IDEMPOTENCY_TTL_S = 30 * 24 * 3600;
export const IS_ROOT = typeof process.getuid === "function" && process.getuid() === 0;

// ---------------------------------------------------------------------------
// Process helpers
// ---------------------------------------------------------------------------

/** Runs a command to completion (stdin closed) within `timeoutMs`; never rejects on a non-zero exit. */
export function run(cmd, args, { timeoutMs = START_TIMEOUT_MS, cwd, env } = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd, env: env ?? process.env, stdio: ["ignore", "pipe", "pipe"] });
    let output = "";
    child.stdout.on("data", (c) => (output += c));
    child.stderr.on("data", (c) => (output += c));
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`${cmd} ${args.join(" ")} did not finish within ${timeoutMs} ms:\n${output}`));
    }, timeoutMs);
    child.on("error", (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? 1, output });
    });
  });
}

export async function runOk(cmd, args, opts) {
  const r = await run(cmd, args, opts);
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(" ")} failed (exit ${r.code}):\n${r.output}`);
  return r.output;
}

/** `apt-get install -y <pkg>` (an `apt-get update` and a second try if the first fails). */
export async function aptInstall(pkg) {
  if (!IS_ROOT) throw new Error(`${pkg} is not installed and this is not root: run \`apt-get install -y ${pkg}\``);
  const env = { ...process.env, DEBIAN_FRONTEND: "noninteractive" };
  console.error(`peers: installing ${pkg} with apt-get…`);
  const first = await run("apt-get", ["install", "-y", "--no-install-recommends", pkg], {
    timeoutMs: APT_TIMEOUT_MS,
    env,
  });
  if (first.code === 0) return;
  await runOk("apt-get", ["update"], { timeoutMs: APT_TIMEOUT_MS, env });
  await runOk("apt-get", ["install", "-y", "--no-install-recommends", pkg], { timeoutMs: APT_TIMEOUT_MS, env });
}

/** A port free on loopback now (the OS picks it). */
export function freePort(host = "127.0.0.1") {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on("error", reject);
    srv.listen(0, host, () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** A process's parent pid from /proc/<pid>/stat, or null when it is gone. */
export function ppidOf(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // The command may hold spaces and parentheses: the fields after the last ")" are fixed.
    const rest = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return Number(rest[1]);
  } catch {
    return null;
  }
}

/** `root` and every live descendant of it, read from /proc now ([] when root is gone). */
export function processTree(root) {
  if (!root || ppidOf(root) === null) return [];
  const children = new Map();
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    const ppid = ppidOf(name);
    if (ppid === null) continue;
    if (!children.has(ppid)) children.set(ppid, []);
    children.get(ppid).push(Number(name));
  }
  const out = [];
  const queue = [root];
  while (queue.length) {
    const pid = queue.shift();
    out.push(pid);
    queue.push(...(children.get(pid) ?? []));
  }
  return out;
}

export function alive(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return e.code === "EPERM";
  }
}

// ---------------------------------------------------------------------------
// Cleanup on exit: whatever a peer left running is killed synchronously
// ---------------------------------------------------------------------------

export const exitCleanups = new Set();
let exitHooked = false;

export function runExitCleanups() {
  for (const fn of [...exitCleanups]) {
    exitCleanups.delete(fn);
    try {
      fn();
    } catch {
      // best effort on the way out
    }
  }
}

export function onExit(fn) {
  exitCleanups.add(fn);
  if (!exitHooked) {
    exitHooked = true;
    process.once("exit", runExitCleanups);
    for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"]) {
      process.once(sig, () => {
        runExitCleanups();
        // Ours was the only handler: die as the signal would have.
        if (process.listenerCount(sig) === 0) process.exit(128 + (os.constants.signals[sig] ?? 1));
      });
    }
  }
  return () => exitCleanups.delete(fn);
}

// ---------------------------------------------------------------------------
// The Node HTTP service both peers share
// ---------------------------------------------------------------------------

export const MAX_BODY = 64 * 1024;

/** Parses and checks a debit body; returns null when malformed. */
export function parseDebit(text) {
  let body;
  try {
    body = JSON.parse(text);
  } catch {
    return null;
  }
  if (!body || typeof body !== "object") return null;
  const { account_id: accountId, amount } = body;
  const debitId = body.debit_id ?? randomUUID();
  if (typeof accountId !== "string" || accountId.length === 0 || accountId.length > 200) return null;
  if (typeof debitId !== "string" || debitId.length === 0 || debitId.length > 200) return null;
  if (!Number.isSafeInteger(amount) || amount <= 0) return null;
  return { accountId, debitId, amount };
}

export function send(res, status, body) {
  const text = JSON.stringify(body);
  res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(text) });
  res.end(text);
}

/** Starts the plain `http` service on a free loopback port; `debit(d)` answers {status, body}. */
export async function startDebitService(debit) {
  const server = http.createServer((req, res) => {
    if (req.method !== "POST" || req.url !== "/debit") {
      req.resume();
      return send(res, 404, { code: "not_found" });
    }
    const chunks = [];
    let size = 0;
    req.on("data", (c) => {
      size += c.length;
      if (size > MAX_BODY) {
        send(res, 413, { code: "too_large" });
        req.destroy();
      } else chunks.push(c);
    });
    req.on("end", () => {
      if (res.headersSent) return;
      const d = parseDebit(Buffer.concat(chunks).toString("utf8"));
      if (!d) return send(res, 400, { code: "invalid_request" });
      debit(d).then(
        ({ status, body }) => send(res, status, body),
        (e) => send(res, 500, { code: "internal", message: String(e?.message ?? e) }),
      );
    });
  });
  server.keepAliveTimeout = 60_000;
  server.headersTimeout = 65_000;
  await new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      server.off("error", reject);
      resolve();
    });
  });
  const { port } = server.address();
  return {
    url: `http://127.0.0.1:${port}`,
    async close() {
      server.closeAllConnections?.();
      await new Promise((r) => server.close(() => r()));
    },
  };
}

// ---------------------------------------------------------------------------
// PostgreSQL
// ---------------------------------------------------------------------------

/** The directory holding initdb, pg_ctl and postgres (installing postgresql when there is none). */
