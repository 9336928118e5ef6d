/**
 * Shared checks for the fault suites (test/workers/faults.*.test.ts): after
 * every scenario the faults are cleared, every outbox drains, and then each
 * account must satisfy DESIGN.md's invariants (1, 2, 3, 5, 8) and the real
 * reconciliation job (through the scheduled handler) must report no drift.
 * Also counts every fault a suite injected (the plan's counters and the
 * test seams), for the suite's RELIABILITY line.
 */
import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import canonicalize from "canonicalize";
import { expect } from "vitest";
import type { AccountLedger } from "../../src/account/account-do";
import { ledgerDb } from "../../src/db/shards";
import { faultsInjected, setFaultPlan } from "../../src/faults";
import { call, ledgerEntries, ledgerStubFor } from "./helpers";
import { runCron } from "./jobs-helpers";

/** Faults the plan had injected before this file began (the isolate may be shared). */
const planBaseline = faultsInjected();
let seamFaults = 0;
let scenarios = 0;
/** Drifts the reconciliation runs of this file reported (each scenario then expects 0). */
let driftFound = 0;

/** A test seam's throw that is counted as an injected fault; `times` throws, then it lets calls through. */
export function seamThrow(label: string, times = 1): () => void {
  let left = times;
  return () => {
    if (left <= 0) return;
    left--;
    seamFaults++;
    throw new Error(`injected fault: ${label}`);
  };
}

/** Resets the account's Durable Object (ctx.abort): memory is lost, SQLite stays. Counted as a fault. */
export async function resetObject(accountId: string): Promise<void> {
  seamFaults++;
  await runInDurableObject(ledgerStubFor(accountId), (_inst: AccountLedger, state) => {
    state.abort("injected fault: reset between operations");
  }).catch(() => undefined);
}

/** Counts faults a test makes itself (a duplicated or out-of-order cron run, a settle racing the sweep). */
export const countFaults = (n: number): void => {
  seamFaults += n;
};

export const injected = (): number => faultsInjected() - planBaseline + seamFaults;
export const scenarioDone = (): void => {
  scenarios++;
};

/** Clears the plan, then drains the account's outbox until nothing waits (a few tries: a reset may interrupt). */
export async function settle(accountId: string): Promise<void> {
  setFaultPlan({});
  for (let i = 0; i < 5; i++) {
    const left = await runInDurableObject(ledgerStubFor(accountId), async (inst: AccountLedger) => {
      await inst.drain();
      return inst.pendingOutbox();
    }).catch(() => -1);
    if (left === 0) return;
  }
  throw new Error(`outbox of ${accountId} did not drain`);
}

async function sha256Hex(text: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

/**
 * The invariants after recovery: (1) available = Σ live lots − held, never
 * negative; (2) Σ entry amount = remaining and Σ held_delta = held, per lot
 * and per unit; (3) seqs 1..n and D1 holds exactly the DO's entries, same
 * ids, seqs and hashes, nothing doubled; (8) the chain re-verifies with an
 * independent JCS and WebCrypto. Returns the DO's entries.
 */
export async function checkAccount(accountId: string, units: readonly string[] = ["credits"]): Promise<any[]> {
  await settle(accountId);
  const base = `/v1/accounts/${accountId}`;
  await call("GET", `${base}/balance`);
  const lots = (await call("GET", `${base}/grants?limit=200`)).json.grants as any[];
  const entries = await ledgerEntries(accountId);
  for (const unit of units) {
    const b = (await call("GET", `${base}/balance?unit=${unit}`)).json;
    const mine = lots.filter((l) => l.unit === unit);
    const live = mine.filter((l) => l.status === "active" || l.status === "depleted");
    expect(b.available).toBe(live.reduce((s, l) => s + l.remaining - l.held, 0));
    expect(b.available).toBeGreaterThanOrEqual(0);
    expect(b.held).toBe(mine.reduce((s, l) => s + l.held, 0));
    const inUnit = entries.filter((e) => e.unit === unit);
    expect(inUnit.reduce((s, e) => s + e.amount, 0)).toBe(mine.reduce((s, l) => s + l.remaining, 0));
    expect(inUnit.reduce((s, e) => s + e.held_delta, 0)).toBe(b.held);
    for (const l of mine) {
      const own = entries.filter((e) => e.grant_id === l.grant_id);
      expect(own.reduce((s, e) => s + e.amount, 0)).toBe(l.remaining);
      expect(own.reduce((s, e) => s + e.held_delta, 0)).toBe(l.held);
    }
  }
  expect(entries.map((e) => e.seq)).toEqual(entries.map((_, i) => i + 1));
  const d1 = await ledgerDb(env, accountId)
    .prepare("SELECT entry_id, seq, hash FROM ledger_entries WHERE account_id = ? ORDER BY seq")
    .bind(accountId)
    .all<{ entry_id: string; seq: number; hash: string }>();
  expect(d1.results.map((r) => [r.entry_id, r.seq, r.hash])).toEqual(entries.map((e) => [e.entry_id, e.seq, e.hash]));
  // Nothing doubled in the journal either: one row per entry that moved a lot's credits, rollups counting each once.
  const journal = await env.DB.prepare(
    `SELECT (SELECT count(*) FROM journal WHERE account_id = ?1) AS rows,
       (SELECT count(DISTINCT entry_id) FROM journal WHERE account_id = ?1) AS ids,
       (SELECT coalesce(sum(rows), 0) FROM journal_daily WHERE account_id = ?1) AS rolled`,
  )
    .bind(accountId)
    .first<{ rows: number; ids: number; rolled: number }>();
  expect(journal?.rolled).toBe(journal?.rows);
  expect(journal?.ids).toBe(journal?.rows);
  let prev = "0".repeat(64);
  for (const e of entries) {
    expect(e.prev_hash).toBe(prev);
    const { hash, ...rest } = e;
    expect(await sha256Hex(canonicalize(rest) as string)).toBe(hash);
    prev = hash;
  }
  return entries;
}

/**
 * Runs the real scheduled handler (reconciliation among its jobs) and
 * expects its run to report zero drift and to have verified each account up
 * to its DO's head.
 */
export async function reconcileClean(accountIds: readonly string[]): Promise<void> {
  for (const a of accountIds) await settle(a);
  await runCron(Date.now());
  const run = (await call("GET", "/v1/reconciliation/runs?limit=1")).json.runs[0];
  const detail = (await call("GET", `/v1/reconciliation/runs/${run.id}`)).json;
  driftFound += Number(detail.run.drifts);
  expect(detail.drifts).toEqual([]);
  expect(detail.run.drifts).toBe(0);
  for (const a of accountIds) {
    const head = await runInDurableObject(ledgerStubFor(a), (inst: AccountLedger) => inst.head());
    const cp = await env.DB.prepare("SELECT verified_seq, behind FROM reconciliation_checkpoints WHERE account_id = ?")
      .bind(a)
      .first<{ verified_seq: number; behind: number }>();
    expect({ account: a, verified: cp?.verified_seq, behind: cp?.behind }).toEqual({
      account: a,
      verified: head.seq,
      behind: 0,
    });
  }
}

/** The suite's figures, one line on stdout for the lead (workerd tests cannot write files). */
export function printReliability(part: string): void {
  console.log(
    `RELIABILITY ${JSON.stringify({ suite: "faults", part, faults_injected: injected(), scenarios, drift: driftFound })}`,
  );
}
