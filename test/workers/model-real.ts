/**
 * The real side of the model-based suite: the accounts' Durable Objects in
 * workerd, driven through the HTTP API, and the comparison with the
 * reference model (test/support/ledger-model.ts) after every command.
 * The hash chain is re-verified with `canonicalize` + WebCrypto, never with
 * src/ledger/hash.ts.
 */
import { runInDurableObject } from "cloudflare:test";
import canonicalize from "canonicalize";
import { expect } from "vitest";
import type { AccountLedger } from "../../src/account/account-do";
import { CREDIT_TYPES, type LedgerModel, type MAccount, TICK_MS } from "../support/ledger-model";
import { call, ledgerStubFor, type Res } from "./helpers";

export const UNITS = ["credits", "tokens"] as const;
/** Full checks (chain, cost basis, lots) every this many commands, and at the end of each run. */
export const FULL_CHECK_EVERY = 6;

export interface Real {
  ids: string[];
  /** Prefix of every id this run sends: sortable, so creation order is id order. */
  tag: string;
  counter: number;
  /** Commands executed so far, and the label of the current one for messages. */
  commands: number;
  label: string;
  restarts: number;
}

/** Counters of the whole suite, printed as the RELIABILITY line. */
export const totals = { runs: 0, commands: 0, restarts: 0, fullChecks: 0 };

export function nextId(r: Real, kind: string): string {
  r.counter += 1;
  return `${r.tag}-${String(r.counter).padStart(5, "0")}-${kind}`;
}

/** Fails with the command and run tag, so a failing step is named (fast-check adds seed and path). */
export function want(r: Real, what: string, actual: unknown, expected: unknown): void {
  expect(actual, `${r.label} (#${r.commands}, run ${r.tag}): ${what}`).toEqual(expected);
}

export function expectStatus(r: Real, res: Res, status: number): void {
  want(r, `status of ${res.text.slice(0, 300)}`, res.status, status);
}

async function sha256Hex(text: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

/** Moves every account's clock by the same ticks: the model keeps one clock. */
export async function advanceAll(r: Real, m: LedgerModel, ticks: number): Promise<void> {
  m.tick += ticks;
  for (const id of r.ids) await setOffset(id, m.tick * TICK_MS);
}

export async function setOffset(id: string, offsetMs: number): Promise<void> {
  await runInDurableObject(ledgerStubFor(id), (inst: AccountLedger) => {
    inst.clock.offsetMs = offsetMs;
  });
}

/**
 * Resets one account's Durable Object: a throw inside blockConcurrencyWhile
 * breaks its input gate and workerd drops the instance, so the next call
 * builds a new one from SQLite. A memory-only marker proves it: it is gone,
 * and so is the clock offset (re-applied here, the model's clock is shared).
 */
export async function restart(id: string, offsetMs: number): Promise<void> {
  await runInDurableObject(ledgerStubFor(id), (inst: AccountLedger) => {
    (inst as unknown as { modelMarker: number }).modelMarker = 1;
  });
  const thrown = await runInDurableObject(ledgerStubFor(id), async (_inst: AccountLedger, state) => {
    await state.blockConcurrencyWhile(async () => {
      throw new Error("model-based suite: restart");
    });
  }).then(
    () => false,
    () => true,
  );
  expect(thrown).toBe(true);
  const fresh = await runInDurableObject(ledgerStubFor(id), (inst: AccountLedger) => {
    const marker = (inst as unknown as { modelMarker?: number }).modelMarker;
    const was = inst.clock.offsetMs;
    inst.clock.offsetMs = offsetMs;
    return { marker: marker ?? null, was };
  });
  expect(fresh, "the object was rebuilt (memory-only fields reset)").toEqual({ marker: null, was: 0 });
}

/** The account's alarm, run to its end: expiry, due holds, recurring periods, shipping. */
export async function alarmAll(r: Real): Promise<void> {
  for (const id of r.ids) await runInDurableObject(ledgerStubFor(id), (inst: AccountLedger) => inst.alarm());
}

async function drainAll(r: Real): Promise<void> {
  for (const id of r.ids) {
    for (let i = 0; i < 20; i++) {
      const left = await runInDurableObject(
        ledgerStubFor(id),
        async (inst: AccountLedger) => (await inst.drain()).pending,
      );
      if (left === 0) break;
    }
  }
}

/** Every step: balances per unit (available, held, by type, awaiting), entry count, budget used. */
export async function compareStep(r: Real, m: LedgerModel): Promise<void> {
  for (const [i, a] of m.accounts.entries()) {
    const id = r.ids[i] as string;
    for (const unit of UNITS) {
      const res = await call("GET", `/v1/accounts/${id}/balance?unit=${unit}`);
      expectStatus(r, res, 200);
      const b = m.balance(a, unit);
      want(
        r,
        `balance of account ${i} in ${unit}`,
        {
          available: res.json.available,
          held: res.json.held,
          by_type: res.json.by_type,
          awaiting: res.json.awaiting_payment.length,
        },
        b,
      );
    }
    // The entry count: the entry at seq n exists and none comes after it.
    const n = a.entries;
    const page = await call("GET", `/v1/accounts/${id}/ledger?after_seq=${Math.max(0, n - 1)}&limit=2`);
    want(
      r,
      `entry seqs after ${n - 1} on account ${i}`,
      page.json.entries.map((e: { seq: number }) => e.seq),
      n === 0 ? [] : [n],
    );
    if (a.budget !== null) {
      const bud = await call("GET", `/v1/accounts/${id}/budget`);
      m.budgetLeft(a);
      want(r, `budget used on account ${i}`, bud.json.used, a.budget.used);
    }
  }
}

async function verifyChain(r: Real, i: number, a: MAccount): Promise<void> {
  const id = r.ids[i] as string;
  const entries: Record<string, unknown>[] = [];
  let after = 0;
  for (let page = 0; page < 10; page++) {
    const res = await call("GET", `/v1/accounts/${id}/ledger?after_seq=${after}&limit=1000`);
    entries.push(...res.json.entries);
    if (res.json.next_after_seq === null) break;
    after = res.json.next_after_seq;
  }
  want(
    r,
    `seqs of account ${i}`,
    entries.map((e) => e.seq),
    Array.from({ length: a.entries }, (_, k) => k + 1),
  );
  let prev = "0".repeat(64);
  for (const e of entries) {
    want(r, `prev_hash of seq ${e.seq} on account ${i}`, e.prev_hash, prev);
    const { hash, ...rest } = e;
    want(r, `hash of seq ${e.seq} on account ${i}`, await sha256Hex(canonicalize(rest) as string), hash);
    prev = hash as string;
  }
  // Invariant 2 from the entries alone, per unit: Σ amount = remaining, Σ held_delta = held (model's).
  for (const unit of UNITS) {
    const mine = entries.filter((e) => e.unit === unit);
    const lots = a.lots.filter((l) => l.unit === unit);
    want(
      r,
      `replay of account ${i} in ${unit}`,
      [mine.reduce((s, e) => s + (e.amount as number), 0), mine.reduce((s, e) => s + (e.held_delta as number), 0)],
      [lots.reduce((s, l) => s + l.remaining, 0), lots.reduce((s, l) => s + l.held, 0)],
    );
  }
}

function monthStartIso(ms: number, add: number): string {
  const d = new Date(ms);
  return new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + add, 1)).toISOString();
}

/** Every few steps and at the end: the chain, the lots the gate names as the model does, and cost basis left. */
export async function compareFull(r: Real, m: LedgerModel): Promise<void> {
  totals.fullChecks += 1;
  await drainAll(r);
  for (const [i, a] of m.accounts.entries()) {
    const id = r.ids[i] as string;
    await verifyChain(r, i, a);
    const lots = (await call("GET", `/v1/accounts/${id}/grants?limit=1000`)).json.grants as {
      grant_id: string;
      remaining: number;
      held: number;
      type: string;
    }[];
    want(r, `lot count of account ${i}`, lots.length, a.lots.length);
    const served = new Map(lots.map((l) => [l.grant_id, l]));
    for (const l of a.lots) {
      if (l.id === null) continue;
      const g = served.get(l.id);
      want(r, `lot ${l.id}`, g && { remaining: g.remaining, held: g.held, type: g.type }, {
        remaining: l.remaining,
        held: l.held,
        type: l.type,
      });
    }
    for (const t of CREDIT_TYPES) {
      want(
        r,
        `lots of type ${t} on account ${i}`,
        lots.filter((l) => l.type === t).reduce((s, l) => s + l.remaining, 0),
        a.lots.filter((l) => l.type === t).reduce((s, l) => s + l.remaining, 0),
      );
    }
    // Cost basis left (deferred revenue), from the revenue report over D1's journal.
    const q = `currency=USD&account_id=${id}&period=month&from=${monthStartIso(m.baseMs, 0)}&to=${monthStartIso(m.baseMs, 2)}`;
    const rev = await call("GET", `/v1/reports/revenue?${q}`);
    expectStatus(r, rev, 200);
    const periods = rev.json.periods as { deferred_closing: number }[];
    want(r, `deferred cost left on account ${i}`, periods[periods.length - 1]?.deferred_closing, m.deferred(a));
  }
}
