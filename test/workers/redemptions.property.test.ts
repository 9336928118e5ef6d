/**
 * Redemptions against a small reference model (fast-check, real D1 and
 * Durable Objects): for any campaign limit, mix of single- and multi-use
 * codes and sequence of (account, code) attempts, each answer is the
 * model's, and afterwards the counter, the D1 rows, the claimed codes and the
 * accounts' lots all agree with it. Then the same attempts all at once: the
 * answers may differ in who wins, never in the invariants.
 */

import { env } from "cloudflare:workers";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { addCodes, campaignCounter, putCampaign, redeem } from "./campaign-helpers";
import { call, ledgerEntries, uid } from "./helpers";

interface Model {
  max: number;
  count: number;
  byAccount: Map<number, number>;
  usedSingle: Set<number>;
}

/** What the model answers for one attempt, and its new state (docs: once per account and campaign, single-use once, never past max). */
function step(m: Model, account: number, code: number, single: boolean): string {
  const had = m.byAccount.get(account);
  if (had !== undefined) return had === code ? "201" : "already_redeemed";
  if (single && m.usedSingle.has(code)) return "already_redeemed";
  if (m.count >= m.max) return "campaign_closed";
  m.count++;
  m.byAccount.set(account, code);
  if (single) m.usedSingle.add(code);
  return "201";
}

const scenario = fc.record({
  max: fc.integer({ min: 1, max: 4 }),
  singles: fc.array(fc.boolean(), { minLength: 1, maxLength: 3 }),
  attempts: fc.array(fc.record({ account: fc.integer({ min: 0, max: 4 }), code: fc.integer({ min: 0, max: 2 }) }), {
    minLength: 1,
    maxLength: 10,
  }),
});

async function world(singles: boolean[], max: number) {
  const { id } = await putCampaign({ max_redemptions: max });
  const codes: string[] = [];
  for (const single of singles) {
    const [code] = single
      ? await addCodes(id, { count: 1 })
      : await addCodes(id, {
          codes: [
            uid("M")
              .replace(/[^A-Za-z0-9-]/g, "")
              .slice(0, 40),
          ],
        });
    codes.push(code as string);
  }
  const accounts = Array.from({ length: 5 }, () => uid("prop"));
  return { id, codes, accounts };
}

async function invariants(id: string, codes: string[], singles: boolean[], accounts: string[], max: number) {
  const lots: string[] = [];
  for (const a of accounts) {
    // An account no redemption created is unknown: no entries.
    const grants = ((await ledgerEntries(a)) ?? []).filter((e) => e.kind === "grant");
    expect(grants.length).toBeLessThanOrEqual(1);
    if (grants.length === 1) lots.push(a);
  }
  const rows = (
    await env.DB.prepare("SELECT account_id, code, status FROM campaign_redemptions WHERE campaign_id = ?")
      .bind(id)
      .all<{ account_id: string; code: string; status: string }>()
  ).results;
  expect(rows.every((r) => r.status === "granted")).toBe(true);
  expect(rows.map((r) => r.account_id).sort()).toEqual([...lots].sort());
  expect(await campaignCounter(id)).toBe(rows.length);
  expect(rows.length).toBeLessThanOrEqual(max);
  for (const [i, code] of codes.entries()) {
    const users = rows.filter((r) => r.code === code).length;
    if (singles[i]) expect(users).toBeLessThanOrEqual(1);
  }
  return { lots, rows };
}

describe("redemptions against a reference model", () => {
  it("one at a time: every answer is the model's, and D1, the counter and the lots agree with it", async () => {
    await fc.assert(
      fc.asyncProperty(scenario, async ({ max, singles, attempts }) => {
        const { id, codes, accounts } = await world(singles, max);
        const m: Model = { max, count: 0, byAccount: new Map(), usedSingle: new Set() };
        for (const at of attempts) {
          const codeIx = at.code % codes.length;
          const want = step(m, at.account, codeIx, singles[codeIx] as boolean);
          const res = await redeem(codes[codeIx] as string, accounts[at.account] as string);
          expect(res.status === 201 ? "201" : res.json.code).toBe(want);
        }
        const { lots } = await invariants(id, codes, singles, accounts, max);
        expect(lots.sort()).toEqual([...m.byAccount.keys()].map((i) => accounts[i] as string).sort());
        expect((await call("GET", `/v1/campaigns/${id}`)).json.redeemed).toBe(m.count);
      }),
      { numRuns: 12 },
    );
  });

  it("all at once: whoever wins, the invariants hold", async () => {
    await fc.assert(
      fc.asyncProperty(scenario, async ({ max, singles, attempts }) => {
        const { id, codes, accounts } = await world(singles, max);
        const results = await Promise.all(
          attempts.map((at) => redeem(codes[at.code % codes.length] as string, accounts[at.account] as string)),
        );
        for (const r of results) {
          expect([201, 409]).toContain(r.status);
          if (r.status === 409) expect(["already_redeemed", "campaign_closed"]).toContain(r.json.code);
        }
        const { lots } = await invariants(id, codes, singles, accounts, max);
        // Every account that got a 201 holds the lot; no account without one does.
        const winners = new Set(
          attempts.filter((_, i) => results[i]?.status === 201).map((at) => accounts[at.account]),
        );
        expect([...winners].sort()).toEqual(lots.sort());
      }),
      { numRuns: 12 },
    );
  });
});
