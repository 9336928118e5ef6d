/** peer_redis: the strict debit as a plain Node service on redis-server (see peers.mjs). */
import { spawn } from "node:child_process";
import { existsSync, rmSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { createConnection } from "node:net";
import os from "node:os";
import { join } from "node:path";
import Redis from "ioredis";
import {
  aptInstall,
  freePort,
  IDEMPOTENCY_TTL_S,
  onExit,
  processTree,
  START_TIMEOUT_MS,
  sleep,
  startDebitService,
} from "./peer-common.mjs";

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
