/**
 * Running the project's own wrangler from Node scripts and test setup:
 * migrations without prompts, `wrangler dev` in its own process group, a
 * health wait, and a reliable stop. Used by scripts/dev.mjs and test/e2e.
 */
import { spawn } from "node:child_process";
import { createWriteStream } from "node:fs";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { formatDevVars, generateAdminToken, generateSigningJwk, newKid, REPO_ROOT } from "./devvars.mjs";

const WRANGLER_JS = join(REPO_ROOT, "node_modules", "wrangler", "bin", "wrangler.js");

/**
 * The environment wrangler runs with: CI=1 makes every confirmation prompt
 * (e.g. `d1 migrations apply`) take its default instead of waiting on stdin,
 * and metrics stay off because the machine may have no internet.
 */
export function wranglerEnv(extra = {}) {
  return { ...process.env, CI: "1", WRANGLER_SEND_METRICS: "false", FORCE_COLOR: "0", ...extra };
}

/**
 * Runs `wrangler <args>` to completion with stdin closed.
 * Resolves with the exit code and the combined output; never rejects on a non-zero exit.
 */
export function runWrangler(args, { echo = false } = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [WRANGLER_JS, ...args], {
      cwd: REPO_ROOT,
      env: wranglerEnv(),
      stdio: ["ignore", "pipe", "pipe"],
    });
    let output = "";
    const collect = (chunk) => {
      output += chunk;
      if (echo) process.stdout.write(chunk);
    };
    child.stdout.on("data", collect);
    child.stderr.on("data", collect);
    child.on("error", reject);
    child.on("close", (code) => resolve({ code: code ?? 1, output }));
  });
}

/** Applies every pending D1 migration to the local database (in `persistTo` when given). */
export async function applyLocalMigrations({ persistTo, echo = false, config } = {}) {
  const args = ["d1", "migrations", "apply", "DB", "--local"];
  if (persistTo) args.push("--persist-to", persistTo);
  if (config) args.push("--config", config);
  const result = await runWrangler(args, { echo });
  if (result.code !== 0) {
    throw new Error(`wrangler ${args.join(" ")} failed (exit ${result.code}):\n${result.output}`);
  }
  return result.output;
}

/**
 * Starts `wrangler dev` on `ip:port`. With `detached` the process leads its
 * own group, so stopWrangler() also ends the workerd it spawns.
 * `stdio` is passed to spawn: "inherit" for a terminal, "pipe" to capture.
 */
export function startWranglerDev({
  port,
  ip = "127.0.0.1",
  persistTo,
  envFile,
  inspectorPort,
  detached = false,
  stdio = "inherit",
  extraArgs = [],
}) {
  const args = ["dev", "--ip", ip, "--port", String(port), "--show-interactive-dev-session=false"];
  if (persistTo) args.push("--persist-to", persistTo);
  if (envFile) args.push("--env-file", envFile);
  if (inspectorPort) args.push("--inspector-port", String(inspectorPort));
  args.push(...extraArgs);
  return spawn(process.execPath, [WRANGLER_JS, ...args], {
    cwd: REPO_ROOT,
    env: wranglerEnv(),
    stdio: stdio === "inherit" ? ["ignore", "inherit", "inherit"] : ["ignore", "pipe", "pipe"],
    detached,
  });
}

/** A TCP port that was free a moment ago on `host`. */
export function freePort(host = "127.0.0.1") {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on("error", reject);
    server.listen(0, host, () => {
      const address = server.address();
      const port = typeof address === "object" && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/** True when nothing listens on `host:port` (so wrangler can take it). */
export function portIsFree(port, host = "127.0.0.1") {
  return new Promise((resolve) => {
    const server = createServer();
    server.unref();
    server.once("error", () => resolve(false));
    server.listen(port, host, () => server.close(() => resolve(true)));
  });
}

/**
 * Polls `${url}/v1/health` until it answers 200 with `{"ok": true}`.
 * Rejects when `child` exits first or after `timeoutMs`.
 */
export async function waitForHealth(url, { child, timeoutMs = 90_000, intervalMs = 250 } = {}) {
  const deadline = Date.now() + timeoutMs;
  let exited = null;
  const onExit = (code, signal) => {
    exited = { code, signal };
  };
  child?.once("exit", onExit);
  try {
    while (Date.now() < deadline) {
      if (exited) throw new Error(`wrangler dev exited (code ${exited.code}, signal ${exited.signal}) before healthy`);
      try {
        const res = await fetch(`${url}/v1/health`, { signal: AbortSignal.timeout(2_000) });
        if (res.ok && (await res.json()).ok === true) return;
      } catch {
        // not listening yet
      }
      await new Promise((r) => setTimeout(r, intervalMs));
    }
    throw new Error(`${url}/v1/health did not answer within ${timeoutMs} ms`);
  } finally {
    child?.off("exit", onExit);
  }
}

function signalGroup(child, signal) {
  if (child.pid === undefined) return;
  try {
    // A negative pid signals the whole process group (wrangler and its workerd).
    process.kill(-child.pid, signal);
  } catch {
    try {
      child.kill(signal);
    } catch {
      // already gone
    }
  }
}

/**
 * Stops a detached wrangler: SIGTERM to its process group, SIGKILL after
 * `graceMs` if it is still there. Resolves once the process has exited.
 */
export async function stopWrangler(child, graceMs = 5_000) {
  if (child.exitCode !== null || child.signalCode !== null) {
    signalGroup(child, "SIGKILL"); // the leader is gone; make sure its workerd is too
    return;
  }
  const exited = new Promise((r) => child.once("exit", r));
  signalGroup(child, "SIGTERM");
  const timer = setTimeout(() => signalGroup(child, "SIGKILL"), graceMs);
  await exited;
  clearTimeout(timer);
  signalGroup(child, "SIGKILL");
}

async function logTail(path, lines = 60) {
  try {
    return (await readFile(path, "utf8")).split("\n").slice(-lines).join("\n");
  } catch {
    return "(no wrangler output)";
  }
}

/**
 * A private gate for the e2e suites, the bench and measurements: a fresh temp
 * dir holding its D1 + DO state, an env file with secrets made for this run
 * (ADMIN_TOKEN and a one-key ES256 JWK set, kid `<label>-…`) and wrangler's
 * output; migrations applied; `wrangler dev` on a free loopback port in its
 * own process group, healthy before this resolves. The checkout's .dev.vars
 * and .wrangler/state are never touched. `stop()` ends the process group and
 * deletes the dir (kept when `keep`); a process exit without stop() still
 * SIGKILLs the group. `config`: another wrangler config (the bench's own
 * Worker, bench/wrangler.toml), relative to the repository. `vars`: more
 * variables for the env file (e.g. `{FAULT_INJECTION: "1"}` for the soak).
 */
export async function startLocalGate({ label, keep = false, healthTimeoutMs = 120_000, config, vars = {} }) {
  const dir = await mkdtemp(join(tmpdir(), `credit-gate-${label}-`));
  const persistTo = join(dir, "state");
  const envFile = join(dir, `${label}.env`);
  const logPath = join(dir, "wrangler.log");
  const removeDir = async () => {
    if (!keep) await rm(dir, { recursive: true, force: true });
  };
  const adminToken = generateAdminToken();
  const signing = await generateSigningJwk(newKid(label));
  const signingJwks = JSON.stringify({ keys: [signing] });
  await writeFile(
    envFile,
    formatDevVars({ ...vars, ADMIN_TOKEN: adminToken, RECEIPT_SIGNING_KEYS: signingJwks }, `${label} secrets`),
    { mode: 0o600 },
  );
  try {
    await applyLocalMigrations({ persistTo, config });
  } catch (e) {
    await removeDir();
    throw e;
  }
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const inspectorPort = await freePort();
  const log = createWriteStream(logPath);
  const spawnDev = () => {
    const extraArgs = config ? ["--config", config] : [];
    const dev = startWranglerDev({ port, persistTo, envFile, inspectorPort, detached: true, stdio: "pipe", extraArgs });
    dev.stdout?.pipe(log, { end: false });
    dev.stderr?.pipe(log, { end: false });
    return dev;
  };
  let child = spawnDev();
  const killOnExit = () => signalGroup(child, "SIGKILL");
  process.once("exit", killOnExit);
  const stop = async () => {
    await stopWrangler(child);
    process.off("exit", killOnExit);
    log.end();
    await removeDir();
  };
  try {
    await waitForHealth(url, { child, timeoutMs: healthTimeoutMs });
  } catch (e) {
    const tail = await logTail(logPath);
    await stop();
    throw new Error(`${e instanceof Error ? e.message : String(e)}\n--- wrangler output ---\n${tail}`);
  }
  /** Stops wrangler dev and starts it again on the same port and state (what a deploy or a crash does to a job in flight). */
  const restart = async () => {
    await stopWrangler(child);
    child = spawnDev();
    await waitForHealth(url, { child, timeoutMs: healthTimeoutMs });
  };
  return {
    dir,
    url,
    adminToken,
    signing,
    signingJwks,
    inspectorPort,
    get child() {
      return child;
    },
    stop,
    restart,
  };
}
