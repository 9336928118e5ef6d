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
import { randomUUID } from "node:crypto";
import { fileURLToPath } from "node:url";
import { startPostgresPeer } from "./peer-postgres.mjs";
import { startRedisPeer } from "./peer-redis.mjs";

export { startPostgresPeer, startRedisPeer };

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
