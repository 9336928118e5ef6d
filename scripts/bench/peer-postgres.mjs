/** peer_postgres: the strict debit as a plain Node service on a fresh PostgreSQL cluster (see peers.mjs). */
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, readdirSync, rmSync } from "node:fs";
import { appendFile, chown, mkdtemp, readFile, rm } from "node:fs/promises";
import os from "node:os";
import { join } from "node:path";
import pg from "pg";
import {
  alive,
  aptInstall,
  freePort,
  IS_ROOT,
  onExit,
  POOL_SIZE,
  processTree,
  run,
  runOk,
  START_TIMEOUT_MS,
  STOP_TIMEOUT_MS,
  startDebitService,
} from "./peer-common.mjs";

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
