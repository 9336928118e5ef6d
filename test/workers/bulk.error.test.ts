/**
 * Bulk grants (issue 8), the ways they are refused: roles and limits as for
 * single grants (and applied again, per grant, by the consumer from what the
 * job stored), bad bodies (400 problem+json, nothing written, nothing sent),
 * the same bulk_id with another body (409), and chunks the consumer cannot
 * finish (retried with backoff, then recorded as failed).
 */
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { BULK_BODY_MAX_BYTES } from "../../src/api/middleware";
import { BULK_MAX_ATTEMPTS } from "../../src/bulk/consume";
import { grantRefusal } from "../../src/bulk/permission";
import { BULK_CHUNK_SIZE } from "../../src/bulk/queue";
import { markItems } from "../../src/db/bulk";
import type { CreditType } from "../../src/ledger";
import type { Role } from "../../src/roles";
import {
  bulkStatus,
  countingAccounts,
  deliver,
  itemCounts,
  keyOf,
  postBulk,
  recordingQueue,
  shortIds,
  storedRows,
} from "./bulk-helpers";
import { call, expectProblem, uid } from "./helpers";

const outage = { amount: 50, type: "compensatory", reason: "API outage", incident_id: "inc-7" };

/** A refused POST: its problem, and neither a job, nor an item, nor a message. */
async function expectRefused(body: unknown, status: number, code: string, opts: { token?: string; raw?: string } = {}) {
  const q = recordingQueue();
  const res = await postBulk(body, { ...opts, queue: q.queue });
  expectProblem(res, status, code);
  const bulkId = (body as { bulk_id?: unknown } | null)?.bulk_id;
  if (typeof bulkId === "string") expect(await storedRows(bulkId)).toEqual({ jobs: 0, items: 0 });
  expect(q.sendCalls()).toBe(0);
  return res;
}

describe("roles and limits, as for single grants", () => {
  it("gateway and viewer: 403 before the body is read; nothing stored", async () => {
    for (const role of ["gateway", "viewer"]) {
      const { token } = await keyOf(role);
      const bulkId = uid("bulk-role");
      await expectRefused({ bulk_id: bulkId, account_ids: [uid("a")], grant: outage }, 403, "forbidden", { token });
      await expectRefused({ bulk_id: bulkId, account_ids: "not even a list" }, 403, "forbidden", { token });
    }
  });

  it("support: compensatory only, each ≤ its max_grant_amount; marketing: promotional only", async () => {
    const support = await keyOf("support", 100);
    const marketing = await keyOf("marketing", 100);
    const unlimited = await keyOf("support", null);
    const body = (grant: Record<string, unknown>) => ({ bulk_id: uid("bulk-lim"), account_ids: [uid("a")], grant });
    await expectRefused(body({ amount: 10, type: "promotional" }), 403, "forbidden", support);
    const over = await expectRefused(body({ ...outage, amount: 101 }), 403, "grant_limit_exceeded", support);
    expect(over.json.max_grant_amount).toBe(100);
    await expectRefused(body(outage), 403, "grant_limit_exceeded", unlimited);
    await expectRefused(body(outage), 403, "forbidden", marketing);
    await expectRefused(body({ amount: 101, type: "promotional" }), 403, "grant_limit_exceeded", marketing);
    expect((await postBulk(body({ ...outage, amount: 100 }), support)).status).toBe(202);
    expect((await postBulk(body({ amount: 100, type: "promotional", campaign: "c" }), marketing)).status).toBe(202);
  });

  it("the POST and the consumer's per-grant check agree for every role, type and amount", async () => {
    const types: CreditType[] = ["promotional", "compensatory", "purchased"];
    for (const role of ["admin", "finance", "support", "marketing", "gateway", "viewer"] as Role[]) {
      const key = await keyOf(role, 100);
      for (const type of types) {
        for (const amount of [100, 101]) {
          const grant = { amount, type, reason: "r" };
          const res = await postBulk({ bulk_id: uid("bulk-mx"), account_ids: [uid("a")], grant }, key);
          const refusal = grantRefusal({ role, maxGrantAmount: 100 }, type, amount);
          expect([role, type, amount, res.status, res.json.code]).toEqual([
            role,
            type,
            amount,
            refusal === null ? 202 : 403,
            refusal === null ? undefined : refusal.code,
          ]);
        }
      }
    }
  });

  it("the consumer grants on the authority stored with the job, checked again for every grant", async () => {
    for (const [tamper, code] of [
      ["UPDATE bulk_grants SET role = 'marketing' WHERE bulk_id = ?", "forbidden"],
      ["UPDATE bulk_grants SET role = 'support', max_grant_amount = 10 WHERE bulk_id = ?", "grant_limit_exceeded"],
      ["UPDATE bulk_grants SET role = 'viewer' WHERE bulk_id = ?", "forbidden"],
    ] as const) {
      const bulkId = uid("bulk-auth");
      const q = recordingQueue();
      const ids = shortIds(120, 40_000);
      expect((await postBulk({ bulk_id: bulkId, account_ids: ids, grant: outage }, { queue: q.queue })).status).toBe(
        202,
      );
      await env.DB.prepare(tamper).bind(bulkId).run();
      const accounts = countingAccounts();
      expect(await deliver(q.sent, { bindings: accounts.bindings })).toEqual({ acked: 2, retried: [] });
      expect(accounts.calls).toHaveLength(0);
      const status = (await bulkStatus(bulkId)).json;
      expect(status).toMatchObject({ status: "completed", granted: 0, failed: 120, errors_more: true });
      expect(new Set(status.errors.map((e: { code: string }) => e.code))).toEqual(new Set([code]));
    }
  });
});

describe("bad bodies: 400 problem+json, nothing written, nothing sent", () => {
  const ok = () => ({ bulk_id: uid("bulk-bad"), account_ids: [uid("a"), uid("a")], grant: outage });
  const past = new Date(Date.now() - 60_000).toISOString();
  const cases: [string, () => Record<string, unknown>, string, RegExp?][] = [
    ["no accounts", () => ({ ...ok(), account_ids: [] }), "invalid_request", /account_ids/],
    ["10 001 accounts", () => ({ ...ok(), account_ids: shortIds(10_001) }), "invalid_request", /account_ids/],
    [
      "a repeated account",
      () => ({ ...ok(), account_ids: ["x1", "x2", "x1"] }),
      "invalid_request",
      /x1.*more than once/,
    ],
    ["an id with a space", () => ({ ...ok(), account_ids: ["a b"] }), "invalid_request", /account_ids\.0/],
    ["an id of 129 chars", () => ({ ...ok(), account_ids: ["x".repeat(129)] }), "invalid_request"],
    ["an empty id", () => ({ ...ok(), account_ids: [""] }), "invalid_request"],
    ["a number as id", () => ({ ...ok(), account_ids: [42] }), "invalid_request"],
    ["account_ids not a list", () => ({ ...ok(), account_ids: "a1,a2" }), "invalid_request"],
    ["an unknown field", () => ({ ...ok(), dry_run: true }), "invalid_request", /unknown field\(s\): dry_run/],
    ["grant_id in the grant", () => ({ ...ok(), grant: { ...outage, grant_id: "g" } }), "invalid_request", /grant_id/],
    ["an unknown grant field", () => ({ ...ok(), grant: { ...outage, colour: "red" } }), "invalid_request", /colour/],
    ["no grant", () => ({ bulk_id: uid("bulk-bad"), account_ids: ["a1"] }), "invalid_request", /grant/],
    ["amount 0", () => ({ ...ok(), grant: { ...outage, amount: 0 } }), "invalid_amount"],
    ["amount as a string", () => ({ ...ok(), grant: { ...outage, amount: "50" } }), "invalid_amount"],
    ["amount above 10^15", () => ({ ...ok(), grant: { ...outage, amount: 1e15 + 1 } }), "invalid_amount"],
    [
      "compensatory without reason",
      () => ({ ...ok(), grant: { amount: 5, type: "compensatory" } }),
      "invalid_request",
      /reason/,
    ],
    [
      "expiry in the past",
      () => ({ ...ok(), grant: { ...outage, expires_at: past } }),
      "invalid_request",
      /expires_at/,
    ],
    [
      "cost_basis on promotional",
      () => ({ ...ok(), grant: { amount: 5, type: "promotional", cost_basis: { amount: 1, currency: "USD" } } }),
      "invalid_request",
      /cost_basis/,
    ],
    ["a bad bulk_id", () => ({ ...ok(), bulk_id: "no spaces allowed" }), "invalid_request", /bulk_id/],
    ["no bulk_id nor Idempotency-Key", () => ({ account_ids: ["a1"], grant: outage }), "invalid_request", /bulk_id/],
  ];
  for (const [name, make, code, detail] of cases) {
    it(name, async () => {
      const res = await expectRefused(make(), 400, code);
      if (detail) expect(res.json.detail).toMatch(detail);
    });
  }

  it("the bulk route takes 10 000 ids of 128 characters, and refuses a body above BULK_BODY_MAX_BYTES with 413", async () => {
    const longIds = Array.from({ length: 10_000 }, (_, i) => `${String(i).padStart(5, "0")}${"x".repeat(123)}`);
    const fits = { bulk_id: uid("bulk-long"), account_ids: longIds, grant: outage };
    expect(JSON.stringify(fits).length).toBeGreaterThan(1_000_000);
    const q = recordingQueue();
    const accepted = await postBulk(fits, { queue: q.queue });
    expect(accepted.status).toBe(202);
    expect(accepted.json).toMatchObject({ total: 10_000 });
    const tooBig = { bulk_id: uid("bulk-big"), account_ids: longIds, grant: { ...outage, reason: "r".repeat(256) } };
    const padded = { ...tooBig, account_ids: [...longIds.slice(0, 9_999), "y".repeat(128)], pad: "z".repeat(400_000) };
    expect(JSON.stringify(padded).length).toBeGreaterThan(BULK_BODY_MAX_BYTES);
    await expectRefused(padded, 413, "payload_too_large");
  });
});

describe("the same bulk_id", () => {
  it("with another body: 409 idempotency_conflict, the job untouched, nothing sent", async () => {
    const bulkId = uid("bulk-409");
    const ids = [uid("a"), uid("a")];
    const q = recordingQueue();
    expect((await postBulk({ bulk_id: bulkId, account_ids: ids, grant: outage }, { queue: q.queue })).status).toBe(202);
    const before = (await bulkStatus(bulkId)).text;
    for (const other of [
      { bulk_id: bulkId, account_ids: [...ids, uid("a")], grant: outage },
      { bulk_id: bulkId, account_ids: [ids[1], ids[0]], grant: outage },
      { bulk_id: bulkId, account_ids: ids, grant: { ...outage, amount: 51 } },
    ]) {
      const again = recordingQueue();
      expectProblem(await postBulk(other, { queue: again.queue }), 409, "idempotency_conflict");
      expect(again.sendCalls()).toBe(0);
    }
    expect((await bulkStatus(bulkId)).text).toBe(before);
    expect(await storedRows(bulkId)).toEqual({ jobs: 1, items: 2 });
  });

  it("two different bodies at once: one job, the other refused, their accounts never mixed", async () => {
    const bulkId = uid("bulk-race");
    const [a, b] = [shortIds(300, 50_000), shortIds(300, 60_000)];
    const [ra, rb] = await Promise.all([
      postBulk({ bulk_id: bulkId, account_ids: a, grant: outage }),
      postBulk({ bulk_id: bulkId, account_ids: b, grant: outage }),
    ]);
    expect([ra.status, rb.status].sort()).toEqual([202, 409]);
    const winner = ra.status === 202 ? a : b;
    const { results } = await env.DB.prepare("SELECT account_id FROM bulk_grant_items WHERE bulk_id = ?")
      .bind(bulkId)
      .all<{ account_id: string }>();
    expect(new Set(results.map((r) => r.account_id))).toEqual(new Set(winner));
  });
});

describe("GET /v1/grants/bulk/{bulk_id}", () => {
  it("unknown: 404 not_found; a bad id: 400; the gateway: 403", async () => {
    expectProblem(await bulkStatus(uid("bulk-none")), 404, "not_found");
    expectProblem(await bulkStatus("bad id"), 400, "invalid_request");
    expectProblem(await bulkStatus(uid("bulk-none"), (await keyOf("gateway")).token), 403, "forbidden");
    expectProblem(await call("GET", "/v1/grants/bulk/x", undefined, { token: null }), 401, "unauthorized");
  });
});

describe("chunks the consumer cannot finish", () => {
  async function job(n: number) {
    const bulkId = uid("bulk-c");
    const ids = Array.from({ length: n }, () => uid("c"));
    const q = recordingQueue();
    expect((await postBulk({ bulk_id: bulkId, account_ids: ids, grant: outage }, { queue: q.queue })).status).toBe(202);
    return { bulkId, ids, sent: q.sent };
  }

  it("a DO that throws: retried with backoff; after BULK_MAX_ATTEMPTS recorded as failed, the rest granted", async () => {
    const { bulkId, ids, sent } = await job(10);
    const down = ids[3] ?? "";
    const accounts = countingAccounts((a) => (a === down ? "throw" : undefined));
    expect(await deliver(sent, { bindings: accounts.bindings })).toEqual({ acked: 0, retried: [{ delaySeconds: 5 }] });
    expect(await deliver(sent, { bindings: accounts.bindings, attempts: 4 })).toEqual({
      acked: 0,
      retried: [{ delaySeconds: 40 }],
    });
    expect(await itemCounts(bulkId)).toEqual({ granted: 9, pending: 1 });
    expect(await deliver(sent, { bindings: accounts.bindings, attempts: BULK_MAX_ATTEMPTS - 1 })).toMatchObject({
      acked: 0,
    });
    expect(await deliver(sent, { bindings: accounts.bindings, attempts: BULK_MAX_ATTEMPTS })).toEqual({
      acked: 1,
      retried: [],
    });
    expect((await bulkStatus(bulkId)).json).toMatchObject({
      status: "completed",
      granted: 9,
      failed: 1,
      errors: [{ account_id: down, code: "internal_error" }],
    });
    // Each delivery asked only what was still pending: 10, then the one account four times.
    expect(accounts.calls).toHaveLength(13);
  });

  it("a DO that cannot read the global policy (503 overloaded) is retried, not failed", async () => {
    const { bulkId, sent } = await job(3);
    let outage503 = true;
    const accounts = countingAccounts(() =>
      outage503 ? { ok: false, problem: { code: "overloaded", detail: "policy unknown" } } : undefined,
    );
    expect((await deliver(sent, { bindings: accounts.bindings })).retried).toHaveLength(1);
    expect(await itemCounts(bulkId)).toEqual({ pending: 3 });
    outage503 = false;
    expect(await deliver(sent, { bindings: accounts.bindings, attempts: 2 })).toEqual({ acked: 1, retried: [] });
    expect(await itemCounts(bulkId)).toEqual({ granted: 3 });
  });

  it("a message that is not a chunk of a known job is dropped (acked), granting nothing", async () => {
    const accounts = countingAccounts();
    const bad = [
      { bulk_id: uid("bulk-ghost"), account_ids: [uid("a")] },
      { bulk_id: 7, account_ids: [] },
      { bulk_id: uid("bulk-x"), account_ids: Array.from({ length: BULK_CHUNK_SIZE + 1 }, () => "a") },
      null,
    ] as never[];
    expect(await deliver(bad, { bindings: accounts.bindings })).toEqual({ acked: 4, retried: [] });
    expect(accounts.calls).toHaveLength(0);
  });

  it("a result is written only over a pending item: a late one never rewrites what was recorded", async () => {
    const { bulkId, ids } = await job(2);
    const [first, second] = [ids[0] ?? "", ids[1] ?? ""];
    await markItems(env.DB, bulkId, [{ accountId: first, status: "granted", code: null }], Date.now());
    const late = [first, second].map((accountId) => ({ accountId, status: "failed" as const, code: "internal_error" }));
    await markItems(env.DB, bulkId, late, Date.now());
    expect((await bulkStatus(bulkId)).json).toMatchObject({
      granted: 1,
      failed: 1,
      errors: [{ account_id: second, code: "internal_error" }],
    });
  });

  it("a chunk naming accounts outside its job grants none of them", async () => {
    const { bulkId, ids } = await job(2);
    const accounts = countingAccounts();
    const forged = { bulk_id: bulkId, account_ids: [uid("outsider"), ids[0] ?? ""] };
    expect(await deliver([forged], { bindings: accounts.bindings })).toEqual({ acked: 1, retried: [] });
    expect(accounts.calls.map((c) => c.accountId)).toEqual([ids[0]]);
    expect(await itemCounts(bulkId)).toEqual({ granted: 1, pending: 1 });
  });
});
