#!/usr/bin/env node
/**
 * The peers `npm run bench` sets beside the gate: the same strict debit as a
 * team would build it without the gate.
 *
 *   peer_postgres  a plain Node `http` service (in this process, a pg.Pool of
 *                  16) on a fresh PostgreSQL cluster (initdb in a temp dir,
 *                  fsync=on, synchronous_commit=on): one transaction per debit,
 *                  `INSERT INTO debits … ON CONFLICT DO NOTHING` as the
 *                  idempotency row, then `UPDATE accounts … WHERE balance >= $1`.
 *   peer_redis     the same service on redis-server (AOF, appendfsync everysec,
 *                  no RDB): one Lua script per debit (EVALSHA), decrement if
 *                  enough, the idempotency key kept 30 days.
 *
 * Both answer `POST /debit` with JSON `{account_id, debit_id, amount}`:
 *   200 {debit_id, amount, balance, replayed: false}   debited
 *   200 {debit_id, amount, balance, replayed: true}    a debit_id already applied (nothing written)
 *   402 {code: "insufficient_credits", balance}        not enough (nothing written; an unknown
 *                                                      account has no balance, so it lands here too)
 *   400 {code: "invalid_request"}                      malformed body
 * A missing debit_id gets a random one (a debit that is never retried).
 *
 * The servers are Debian's (apt-get install when missing), started and
 * stopped here: stop() is idempotent, and whatever is still running when the
 * process exits (or gets SIGINT/SIGTERM/SIGHUP) is killed and its temp dir
 * removed. Every wait is bounded.
 *
 * `node scripts/bench/peers.mjs --self-test` starts both, checks each with
 * checkPeer(), prints one line per peer and stops them (exit 0 / 1).
 */
import { execFileSync, spawn, spawnSync } from "node:child_process";
import { randomUUID } from "node:crypto";
import { existsSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { appendFile, chown, mkdtemp, readFile, rm } from "node:fs/promises";
import http from "node:http";
import { createConnection, createServer } from "node:net";
import os from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import Redis from "ioredis";
import pg from "pg";

const START_TIMEOUT_MS = 30_000;
const STOP_TIMEOUT_MS = 30_000;
const APT_TIMEOUT_MS = 600_000; // an install may have to download; still bounded
const POOL_SIZE = 16;
const IDEMPOTENCY_TTL_S = 30 * 24 * 3600;
const IS_ROOT = typeof process.getuid === "function" && process.getuid() === 0;

// ---------------------------------------------------------------------------
// Process helpers
// ---------------------------------------------------------------------------

/** Runs a command to completion (stdin closed) within `timeoutMs`; never rejects on a non-zero exit. */
function run(cmd, args, { timeoutMs = START_TIMEOUT_MS, cwd, env } = {}) {
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

async function runOk(cmd, args, opts) {
  const r = await run(cmd, args, opts);
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(" ")} failed (exit ${r.code}):\n${r.output}`);
  return r.output;
}

/** `apt-get install -y <pkg>` (an `apt-get update` and a second try if the first fails). */
async function aptInstall(pkg) {
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
function freePort(host = "127.0.0.1") {
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

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** A process's parent pid from /proc/<pid>/stat, or null when it is gone. */
function ppidOf(pid) {
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

function alive(pid) {
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

const exitCleanups = new Set();
let exitHooked = false;

function runExitCleanups() {
  for (const fn of [...exitCleanups]) {
    exitCleanups.delete(fn);
    try {
      fn();
    } catch {
      // best effort on the way out
    }
  }
}

function onExit(fn) {
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

const MAX_BODY = 64 * 1024;

/** Parses and checks a debit body; returns null when malformed. */
function parseDebit(text) {
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

function send(res, status, body) {
  const text = JSON.stringify(body);
  res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(text) });
  res.end(text);
}

/** Starts the plain `http` service on a free loopback port; `debit(d)` answers {status, body}. */
async function startDebitService(debit) {
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
async function postgresBinDir() {
  const has = (dir) => ["initdb", "pg_ctl", "postgres"].every((b) => existsSync(join(dir, b)));
  const find = () => {
    if (process.env.PG_BINDIR && has(process.env.PG_BINDIR)) return process.env.PG_BINDIR;
    const root = "/usr/lib/postgresql";
    const versions = existsSync(root)
      ? readdirSync(root)
          .filter((v) => /^\d+$/.test(v))
          .sort((a, b) => Number(b) - Number(a))
      : [];
    for (const v of versions) if (has(join(root, v, "bin"))) return join(root, v, "bin");
    return null;
  };
  const found = find();
  if (found) return found;
  await aptInstall("postgresql");
  const after = find();
  if (!after) throw new Error("apt-get installed postgresql but no initdb/pg_ctl/postgres under /usr/lib/postgresql");
  return after;
}

/** The user PostgreSQL runs as: ourselves, or (as root) `postgres`, created when missing. */
async function postgresUser() {
  if (!IS_ROOT) return null;
  const id = (flag) => Number(execFileSync("id", [flag, "postgres"], { encoding: "utf8" }).trim());
  try {
    return { name: "postgres", uid: id("-u"), gid: id("-g") };
  } catch {
    await runOk("useradd", [
      "--system",
      "--user-group",
      "--no-create-home",
      "--shell",
      "/usr/sbin/nologin",
      "postgres",
    ]);
    return { name: "postgres", uid: id("-u"), gid: id("-g") };
  }
}

/** argv running `cmd` as `user` (runuser when root). */
const asUser = (user, cmd, args) => (user ? ["runuser", ["-u", user.name, "--", cmd, ...args]] : [cmd, args]);

/** A temp dir the postgres user owns (under os.tmpdir(), or /tmp when that one is closed to it). */
async function postgresTempDir(user) {
  let base = os.tmpdir();
  if (user) {
    const probe = spawnSync("runuser", ["-u", user.name, "--", "test", "-x", base], { timeout: 10_000 });
    if (probe.status !== 0) base = "/tmp";
  }
  const dir = await mkdtemp(join(base, "credit-gate-pg-"));
  if (user) await chown(dir, user.uid, user.gid);
  return dir;
}

const PG_SCHEMA = `
CREATE TABLE accounts (id text PRIMARY KEY, balance bigint NOT NULL CHECK (balance >= 0));
CREATE TABLE debits (
  account_id text,
  debit_id text,
  amount bigint,
  created_at timestamptz DEFAULT now(),
  PRIMARY KEY (account_id, debit_id)
);`;

const PG_INSERT_DEBIT = {
  name: "peer_insert_debit",
  text: "INSERT INTO debits (account_id, debit_id, amount) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING RETURNING 1",
};
const PG_REPLAY = {
  name: "peer_replay",
  text:
    "SELECT d.amount, a.balance FROM debits d LEFT JOIN accounts a ON a.id = d.account_id" +
    " WHERE d.account_id = $1 AND d.debit_id = $2",
};
const PG_UPDATE = {
  name: "peer_update_balance",
  text: "UPDATE accounts SET balance = balance - $1 WHERE id = $2 AND balance >= $1 RETURNING balance",
};
const PG_BALANCE = { name: "peer_balance", text: "SELECT balance FROM accounts WHERE id = $1" };

/** The strict debit: one transaction, the idempotency row first, then the guarded decrement. */
async function pgDebit(pool, { accountId, debitId, amount }) {
  const client = await pool.connect();
  let broken = null;
  try {
    await client.query("BEGIN");
    const ins = await client.query({ ...PG_INSERT_DEBIT, values: [accountId, debitId, amount] });
    if (ins.rowCount === 0) {
      const prev = await client.query({ ...PG_REPLAY, values: [accountId, debitId] });
      await client.query("ROLLBACK"); // nothing was written
      const row = prev.rows[0] ?? {};
      return {
        status: 200,
        body: { debit_id: debitId, amount: Number(row.amount), balance: Number(row.balance), replayed: true },
      };
    }
    const upd = await client.query({ ...PG_UPDATE, values: [amount, accountId] });
    if (upd.rowCount === 0) {
      const bal = await client.query({ ...PG_BALANCE, values: [accountId] });
      await client.query("ROLLBACK"); // the idempotency row goes too: a later retry may succeed
      return {
        status: 402,
        body: { code: "insufficient_credits", balance: Number(bal.rows[0]?.balance ?? 0), requested: amount },
      };
    }
    await client.query("COMMIT");
    return {
      status: 200,
      body: { debit_id: debitId, amount, balance: Number(upd.rows[0].balance), replayed: false },
    };
  } catch (e) {
    try {
      await client.query("ROLLBACK");
    } catch (e2) {
      broken = e2; // the connection is unusable: drop it from the pool
    }
    throw e;
  } finally {
    client.release(broken ?? undefined);
  }
}

/**
 * A fresh PostgreSQL cluster and the Node service on it.
 * @returns {Promise<{name: "peer_postgres", url: string, stop(): Promise<void>, serverPids: number[],
 *   cpuPids(): number[], servicePid: number, dataDir: string, port: number, accounts: number, balance: number}>}
 */
export async function startPostgresPeer({ accounts = 16, balance = 1_000_000_000 } = {}) {
  const bin = await postgresBinDir();
  const user = await postgresUser();
  const dir = await postgresTempDir(user);
  const dataDir = join(dir, "data");
  const logFile = join(dir, "postgres.log");
  const cmd = (name, args, opts = {}) => {
    const [c, a] = asUser(user, join(bin, name), args);
    return run(c, a, { cwd: dir, ...opts });
  };
  let postmasterPid = null;
  let pool = null;
  let service = null;
  let stopped = false;

  const killSync = () => {
    // On the way out (exit / signal): immediate shutdown, then the dir.
    if (postmasterPid && alive(postmasterPid)) {
      const [c, a] = asUser(user, join(bin, "pg_ctl"), ["stop", "-D", dataDir, "-m", "immediate", "-w", "-t", "10"]);
      const r = spawnSync(c, a, { cwd: dir, stdio: "ignore", timeout: 15_000 });
      if (r.status !== 0 && alive(postmasterPid)) {
        for (const pid of processTree(postmasterPid)) {
          try {
            process.kill(pid, "SIGKILL");
          } catch {}
        }
      }
    }
    rmSync(dir, { recursive: true, force: true, maxRetries: 3 });
  };
  const unhook = onExit(killSync);

  const stop = async () => {
    if (stopped) return;
    stopped = true;
    try {
      await service?.close();
    } catch {}
    try {
      await pool?.end();
    } catch {}
    if (postmasterPid && alive(postmasterPid)) {
      const r = await cmd("pg_ctl", ["stop", "-D", dataDir, "-m", "fast", "-w", "-t", "30"], {
        timeoutMs: STOP_TIMEOUT_MS + 5_000,
      }).catch((e) => ({ code: 1, output: String(e) }));
      if (r.code !== 0 && alive(postmasterPid)) {
        for (const pid of processTree(postmasterPid)) {
          try {
            process.kill(pid, "SIGKILL");
          } catch {}
        }
      }
    }
    await rm(dir, { recursive: true, force: true, maxRetries: 3 });
    unhook();
  };

  try {
    await runOk(
      ...asUser(user, join(bin, "initdb"), [
        "-D",
        dataDir,
        "-U",
        "postgres",
        "--auth=trust",
        "--encoding=UTF8",
        "--no-locale",
        "--no-sync", // initdb's own writes only; the server below runs with fsync=on
        "--no-instructions",
      ]),
      { cwd: dir, timeoutMs: 60_000 },
    );

    // Durability stays at the defaults, spelled out; loopback TCP only; sockets in the temp dir.
    let port = 0;
    let started = false;
    let lastOutput = "";
    for (let attempt = 0; attempt < 3 && !started; attempt++) {
      port = await freePort();
      await appendFile(
        join(dataDir, "postgresql.conf"),
        [
          "",
          "# credit-gate bench peer",
          "listen_addresses = '127.0.0.1'",
          `port = ${port}`,
          `unix_socket_directories = '${dir}'`,
          "fsync = on",
          "synchronous_commit = on",
          "full_page_writes = on",
          "max_connections = 50",
          "",
        ].join("\n"),
      );
      const r = await cmd("pg_ctl", ["start", "-D", dataDir, "-l", logFile, "-w", "-t", "30"], {
        timeoutMs: START_TIMEOUT_MS + 5_000,
      });
      lastOutput = r.output;
      started = r.code === 0;
      if (!started) {
        const log = await readFile(logFile, "utf8").catch(() => "");
        lastOutput += `\n${log}`;
        if (!/could not bind|already in use/i.test(log)) break;
      }
    }
    if (!started) throw new Error(`postgres did not start:\n${lastOutput}`);
    postmasterPid = Number((await readFile(join(dataDir, "postmaster.pid"), "utf8")).split("\n")[0]);

    pool = new pg.Pool({
      host: "127.0.0.1",
      port,
      user: "postgres",
      database: "postgres",
      max: POOL_SIZE,
      connectionTimeoutMillis: 10_000,
      idleTimeoutMillis: 0,
    });
    pool.on("error", () => {}); // a connection dying while idle (e.g. at shutdown) is not a crash
    await pool.query(PG_SCHEMA);
    await pool.query(
      "INSERT INTO accounts (id, balance) SELECT 'acct-' || g, $1 FROM generate_series(0, $2::int - 1) AS g",
      [balance, accounts],
    );
    await pool.query("VACUUM ANALYZE accounts");
    // Open the whole pool now, so the first timed second does not pay for connections.
    const clients = await Promise.all(Array.from({ length: POOL_SIZE }, () => pool.connect()));
    for (const c of clients) c.release();

    service = await startDebitService((d) => pgDebit(pool, d));
    return {
      name: "peer_postgres",
      url: service.url,
      stop,
      serverPids: [postmasterPid],
      cpuPids: () => processTree(postmasterPid),
      servicePid: process.pid,
      dataDir,
      port,
      accounts,
      balance,
    };
  } catch (e) {
    await stop().catch(() => {});
    throw e;
  }
}

// ---------------------------------------------------------------------------
// Redis
// ---------------------------------------------------------------------------

async function redisServerBin() {
  const find = () =>
    [process.env.REDIS_SERVER, "/usr/bin/redis-server", "/usr/local/bin/redis-server"].find((p) => p && existsSync(p));
  const found = find();
  if (found) return found;
  await aptInstall("redis-server");
  const after = find();
  if (!after) throw new Error("apt-get installed redis-server but /usr/bin/redis-server is missing");
  return after;
}

/** Resolves once redis answers PING on `port` (bounded by the deadline, or the child exiting). */
async function waitForRedis(port, child, deadline) {
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) return false;
    const ok = await new Promise((resolve) => {
      const sock = createConnection({ host: "127.0.0.1", port });
      let buf = "";
      const done = (v) => {
        sock.destroy();
        resolve(v);
      };
      sock.setTimeout(1_000, () => done(false));
      sock.on("error", () => done(false));
      sock.on("connect", () => sock.write("PING\r\n"));
      sock.on("data", (c) => {
        buf += c;
        if (buf.includes("\r\n")) done(buf.startsWith("+PONG"));
      });
    });
    if (ok) return true;
    await sleep(50);
  }
  return false;
}

// Replay → {1, balance}; not enough → {0, balance}; debited → {2, new balance}.
const REDIS_DEBIT_LUA = `
if redis.call('EXISTS', KEYS[2]) == 1 then return {1, redis.call('GET', KEYS[1]), redis.call('GET', KEYS[2])} end
local b = tonumber(redis.call('GET', KEYS[1]) or '0')
if b < tonumber(ARGV[1]) then return {0, b} end
redis.call('SET', KEYS[2], ARGV[1], 'EX', ARGV[2])
return {2, redis.call('DECRBY', KEYS[1], ARGV[1])}
`;

async function redisDebit(client, { accountId, debitId, amount }) {
  const [kind, bal, prevAmount] = await client.peerDebit(
    `bal:${accountId}`,
    `deb:${accountId}:${debitId}`,
    amount,
    IDEMPOTENCY_TTL_S,
  );
  const balance = Number(bal ?? 0);
  if (kind === 2) return { status: 200, body: { debit_id: debitId, amount, balance, replayed: false } };
  if (kind === 1)
    return { status: 200, body: { debit_id: debitId, amount: Number(prevAmount), balance, replayed: true } };
  return { status: 402, body: { code: "insufficient_credits", balance, requested: amount } };
}

/**
 * redis-server (AOF everysec) in a temp dir and the Node service on it.
 * @returns {Promise<{name: "peer_redis", url: string, stop(): Promise<void>, serverPids: number[],
 *   cpuPids(): number[], servicePid: number, dir: string, port: number, accounts: number, balance: number}>}
 */
export async function startRedisPeer({ accounts = 16, balance = 1_000_000_000 } = {}) {
  const bin = await redisServerBin();
  const dir = await mkdtemp(join(os.tmpdir(), "credit-gate-redis-"));
  let child = null;
  let client = null;
  let service = null;
  let stopped = false;
  let log = "";

  const killSync = () => {
    if (child?.pid && child.exitCode === null && child.signalCode === null) {
      try {
        process.kill(child.pid, "SIGKILL");
      } catch {}
    }
    rmSync(dir, { recursive: true, force: true, maxRetries: 3 });
  };
  const unhook = onExit(killSync);

  const childExited = () =>
    child && (child.exitCode !== null || child.signalCode !== null)
      ? Promise.resolve()
      : new Promise((r) => child.once("exit", () => r()));

  const stop = async () => {
    if (stopped) return;
    stopped = true;
    try {
      await service?.close();
    } catch {}
    if (child && child.exitCode === null && child.signalCode === null) {
      // SHUTDOWN flushes the AOF and exits; its reply is the connection closing.
      try {
        await Promise.race([client?.call("SHUTDOWN", "NOSAVE"), sleep(5_000)]);
      } catch {}
      const exited = await Promise.race([childExited().then(() => true), sleep(10_000).then(() => false)]);
      if (!exited) {
        try {
          process.kill(child.pid, "SIGKILL");
        } catch {}
        await Promise.race([childExited(), sleep(5_000)]);
      }
    }
    client?.disconnect();
    await rm(dir, { recursive: true, force: true, maxRetries: 3 });
    unhook();
  };

  try {
    let port = 0;
    let ready = false;
    for (let attempt = 0; attempt < 3 && !ready; attempt++) {
      port = await freePort();
      log = "";
      child = spawn(
        bin,
        [
          "--port",
          String(port),
          "--bind",
          "127.0.0.1",
          "--dir",
          dir,
          "--daemonize",
          "no",
          "--appendonly",
          "yes",
          "--appendfsync",
          "everysec",
          "--save",
          "",
          "--logfile",
          "",
        ],
        { cwd: dir, stdio: ["ignore", "pipe", "pipe"] },
      );
      child.stdout.on("data", (c) => (log = (log + c).slice(-20_000)));
      child.stderr.on("data", (c) => (log = (log + c).slice(-20_000)));
      child.on("error", (e) => (log += `\nspawn error: ${e.message}`));
      ready = await waitForRedis(port, child, Date.now() + START_TIMEOUT_MS);
      if (!ready) {
        if (child.exitCode === null && child.signalCode === null) {
          child.kill("SIGKILL");
          await Promise.race([childExited(), sleep(5_000)]);
        }
        if (!/in use|bind/i.test(log)) break;
      }
    }
    if (!ready) throw new Error(`redis-server did not start:\n${log}`);

    client = new Redis({
      host: "127.0.0.1",
      port,
      lazyConnect: true,
      maxRetriesPerRequest: 2,
      connectTimeout: 10_000,
      retryStrategy: (times) => (stopped || times > 5 ? null : 100),
    });
    client.on("error", () => {}); // reported per command; silence the shutdown noise
    client.defineCommand("peerDebit", { numberOfKeys: 2, lua: REDIS_DEBIT_LUA }); // EVALSHA, EVAL on NOSCRIPT
    await client.connect();
    await client.script("LOAD", REDIS_DEBIT_LUA); // so the very first EVALSHA hits
    for (let i = 0; i < accounts; i += 1_000) {
      const args = [];
      for (let j = i; j < Math.min(accounts, i + 1_000); j++) args.push(`bal:acct-${j}`, String(balance));
      await client.mset(...args);
    }

    service = await startDebitService((d) => redisDebit(client, d));
    return {
      name: "peer_redis",
      url: service.url,
      stop,
      serverPids: [child.pid],
      cpuPids: () => processTree(child.pid),
      servicePid: process.pid,
      dir,
      port,
      accounts,
      balance,
    };
  } catch (e) {
    await stop().catch(() => {});
    throw e;
  }
}

// ---------------------------------------------------------------------------
// Self-check
// ---------------------------------------------------------------------------

async function postDebit(url, body) {
  const res = await fetch(`${url}/debit`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(10_000),
  });
  return { status: res.status, body: await res.json() };
}

/**
 * Debits the peer's last account: a debit, its replay (balance unchanged), one
 * too large (402, nothing written), then that same debit_id again with an
 * amount that fits (applied: the refused attempt left no idempotency row).
 * Throws on any mismatch; resolves with a one-line summary.
 */
export async function checkPeer(peer) {
  const account = `acct-${(peer.accounts ?? 1) - 1}`;
  const fail = (what, got) => {
    throw new Error(`${peer.name}: ${what}; got ${JSON.stringify(got)}`);
  };
  const id1 = `check-${randomUUID()}`;
  const first = await postDebit(peer.url, { account_id: account, debit_id: id1, amount: 1 });
  if (first.status !== 200 || first.body.replayed !== false || !Number.isFinite(first.body.balance))
    fail("first debit should be 200", first);
  if (peer.balance !== undefined && first.body.balance > peer.balance - 1)
    fail(`balance after the first debit should be at most ${peer.balance - 1}`, first);
  const b1 = first.body.balance;

  const replay = await postDebit(peer.url, { account_id: account, debit_id: id1, amount: 1 });
  if (replay.status !== 200 || replay.body.replayed !== true || replay.body.balance !== b1 || replay.body.amount !== 1)
    fail(`replay should be 200 with balance ${b1} unchanged`, replay);

  const id2 = `check-${randomUUID()}`;
  const big = await postDebit(peer.url, { account_id: account, debit_id: id2, amount: b1 + 1 });
  if (big.status !== 402 || big.body.code !== "insufficient_credits" || big.body.balance !== b1)
    fail("a debit above the balance should be 402 insufficient_credits", big);

  const retry = await postDebit(peer.url, { account_id: account, debit_id: id2, amount: 1 });
  if (retry.status !== 200 || retry.body.replayed !== false || retry.body.balance !== b1 - 1)
    fail(`the refused debit_id retried with 1 should apply (balance ${b1 - 1})`, retry);

  const bad = await postDebit(peer.url, { account_id: account, amount: -1 });
  if (bad.status !== 400) fail("a negative amount should be 400", bad);

  return `${peer.name}: ok (${peer.url}; debit 200 → ${b1}, replay 200 → ${b1}, over-balance 402, retry 200 → ${b1 - 1})`;
}

async function selfTest() {
  let failed = false;
  for (const [label, start] of [
    ["peer_postgres", startPostgresPeer],
    ["peer_redis", startRedisPeer],
  ]) {
    let peer = null;
    const t0 = performance.now();
    try {
      peer = await start({ accounts: 4, balance: 1_000 });
      const ms = Math.round(performance.now() - t0);
      const line = await checkPeer(peer);
      console.log(`${line}; started in ${ms} ms; server pids ${peer.cpuPids().join(",")}`);
    } catch (e) {
      failed = true;
      console.log(`${label}: FAILED ${e?.stack ?? e}`);
    } finally {
      await peer?.stop().catch((e) => {
        failed = true;
        console.log(`${label}: stop FAILED ${e?.message ?? e}`);
      });
    }
  }
  return failed ? 1 : 0;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1] && process.argv.includes("--self-test")) {
  const code = await selfTest();
  process.exit(code);
}
