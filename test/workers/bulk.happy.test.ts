/**
 * Bulk grants (issue 8), the ways they succeed. "Bulk: 10 000 accounts,
 * submitted twice, exactly 10 000 grants; a repeated chunk after a simulated
 * failure grants nothing twice."
 *
 * The gateway, D1 and the queue consumer are the real ones throughout; the
 * suites deliver each chunk themselves (bulk-helpers.ts). The 10 000-account
 * run answers `grant` with a stand-in for the account namespace that applies
 * the DO's idempotency rule and counts every call: 10 000 fresh Durable
 * Objects take about 36 ms each in the pool (≈ 6 min), so the runs against
 * real DOs — counted in D1's ledger after every outbox is drained — are 250
 * accounts and one chunk of 100 with injected failures.
 */
import { env } from "cloudflare:workers";
import { describe, expect, it, vi } from "vitest";
import { BULK_STALL_MS } from "../../src/api/bulk";
import { BULK_CHUNK_SIZE } from "../../src/bulk/queue";
import { ledgerDbs } from "../../src/db/shards";
import {
  bulkStatus,
  countingAccounts,
  d1GrantCounts,
  deliver,
  flakyAccounts,
  itemCounts,
  keyOf,
  postBulk,
  recordingQueue,
  shortIds,
  storedRows,
} from "./bulk-helpers";
import { balance, call, ledgerEntries, uid } from "./helpers";
import { logLines } from "./outbox-helpers";

const outage = { amount: 50, type: "compensatory", reason: "API outage 2026-11-30", incident_id: "inc-2041" };
const future = (days: number) => new Date(Date.now() + days * 86_400_000).toISOString();

/** Moves every item of the job back in time: as if nothing had happened to it for BULK_STALL_MS. */
async function stall(bulkId: string): Promise<void> {
  await env.DB.prepare("UPDATE bulk_grant_items SET updated_at_ms = updated_at_ms - ? WHERE bulk_id = ?")
    .bind(BULK_STALL_MS + 1000, bulkId)
    .run();
}

/** As if the consumer's marks for these accounts had been lost after their grants: pending again. */
async function forgetMarks(bulkId: string, accountIds: readonly string[]): Promise<void> {
  await env.DB.prepare(
    "UPDATE bulk_grant_items SET status = 'pending', code = NULL WHERE bulk_id = ? AND account_id IN (SELECT value FROM json_each(?))",
  )
    .bind(bulkId, JSON.stringify(accountIds))
    .run();
}

describe("10 000 accounts", () => {
  it("submitted twice, every chunk delivered twice: exactly 10 000 grants, one per account", async () => {
    const started = Date.now();
    const bulkId = uid("bulk10k");
    const ids = shortIds(10_000);
    const body = { bulk_id: bulkId, account_ids: ids, grant: outage };
    // Short ids keep this body small; the bulk route takes up to BULK_BODY_MAX_BYTES (1.5 MiB).
    expect(JSON.stringify(body).length).toBeLessThanOrEqual(65_536);
    const q = recordingQueue();

    const first = await postBulk(body, { queue: q.queue });
    expect(first.status, first.text).toBe(202);
    expect(first.json).toMatchObject({
      bulk_id: bulkId,
      status: "running",
      total: 10_000,
      granted: 0,
      skipped: 0,
      failed: 0,
      pending: 10_000,
      errors: [],
      errors_more: false,
    });
    expect(q.sent).toHaveLength(100);
    expect(q.sendCalls()).toBe(1);
    expect(q.sent.every((m) => m.bulk_id === bulkId && m.account_ids.length === BULK_CHUNK_SIZE)).toBe(true);
    expect(q.sent.flatMap((m) => m.account_ids)).toEqual(ids);

    const again = await postBulk(body, { queue: q.queue });
    expect(again.status).toBe(202);
    expect(again.headers.get("idempotent-replayed")).toBe("true");
    expect(again.json).toMatchObject({ status: "running", total: 10_000, pending: 10_000 });
    expect(q.sent).toHaveLength(100); // a running job is not enqueued again

    const accounts = countingAccounts();
    expect(await deliver(q.sent, { bindings: accounts.bindings })).toEqual({ acked: 100, retried: [] });
    // Every chunk redelivered: nothing is pending, so no account is even asked again.
    expect(await deliver(q.sent, { bindings: accounts.bindings, attempts: 2 })).toEqual({ acked: 100, retried: [] });
    expect(accounts.calls).toHaveLength(10_000);
    expect(accounts.lots.size).toBe(10_000);
    expect(new Set(accounts.calls.map((c) => c.accountId))).toEqual(new Set(ids));
    const lots = [...accounts.lots.values()];
    expect(lots.every((l) => l.cmd.grantId === bulkId && l.cmd.amount === 50 && l.cmd.type === "compensatory")).toBe(
      true,
    );
    expect(lots.every((l) => l.cmd.incidentId === "inc-2041" && l.actor === "admin-token:admin")).toBe(true);
    expect(new Set(lots.map((l) => l.bodyHash)).size).toBe(1);
    expect(await itemCounts(bulkId)).toEqual({ granted: 10_000 });
    expect((await bulkStatus(bulkId)).json).toMatchObject({
      status: "completed",
      total: 10_000,
      granted: 10_000,
      skipped: 0,
      failed: 0,
      pending: 0,
      errors: [],
    });

    // One chunk's marks lost after its grants: redelivered, each DO replays and nothing is written.
    const chunk = q.sent[7];
    if (!chunk) throw new Error("no chunk 7");
    await forgetMarks(bulkId, chunk.account_ids);
    expect(await deliver([chunk], { bindings: accounts.bindings, attempts: 3 })).toEqual({ acked: 1, retried: [] });
    expect(accounts.calls).toHaveLength(10_100);
    expect(accounts.lots.size).toBe(10_000);
    expect((await bulkStatus(bulkId)).json).toMatchObject({ status: "completed", granted: 9_900, skipped: 100 });
    // The third POST, of a completed job: its status, nothing enqueued.
    const third = await postBulk(body, { queue: q.queue });
    expect(third.json).toMatchObject({ status: "completed", granted: 9_900, skipped: 100, pending: 0 });
    expect(q.sent).toHaveLength(100);
    console.log(JSON.stringify({ event: "bulk.test.10k", duration_ms: Date.now() - started }));
  });
});

describe("against the real account Durable Objects", () => {
  it("250 accounts, submitted twice, every chunk delivered twice: 250 lots and 250 grant entries in D1", async () => {
    const support = await keyOf("support", 100);
    const bulkId = uid("bulk-real");
    const ids = Array.from({ length: 250 }, () => uid("bk"));
    const body = { bulk_id: bulkId, account_ids: ids, grant: outage };
    const q = recordingQueue();
    expect((await postBulk(body, { queue: q.queue, token: support.token })).status).toBe(202);
    expect((await postBulk(body, { queue: q.queue, token: support.token })).status).toBe(202);
    expect(q.sent.map((m) => m.account_ids.length)).toEqual([100, 100, 50]);

    const log = vi.spyOn(console, "log");
    expect(await deliver(q.sent)).toEqual({ acked: 3, retried: [] });
    expect(await deliver(q.sent, { attempts: 2 })).toEqual({ acked: 3, retried: [] });
    // One structured line per chunk processed.
    const lines = logLines(log, "bulk.chunk");
    log.mockRestore();
    expect(lines).toHaveLength(6);
    expect(lines.slice(0, 3).map((l) => [l.granted, l.pending])).toEqual([
      [100, 100],
      [100, 100],
      [50, 50],
    ]);
    expect(lines.slice(3).every((l) => l.pending === 0 && l.handled === "ack")).toBe(true);
    expect(lines[0]).toMatchObject({ bulk_id: bulkId, attempts: 1, accounts: 100, duration_ms: expect.any(Number) });

    expect((await bulkStatus(bulkId, support.token)).json).toMatchObject({
      status: "completed",
      granted: 250,
      skipped: 0,
      failed: 0,
    });
    expect(await d1GrantCounts(bulkId, ids)).toEqual({
      entries: { n: 250, accounts: 250 },
      lots: { n: 250, accounts: 250 },
    });
    // The accounts spread over both ledger shards: every shard's entries carry the one actor.
    const actors = new Set<string>();
    for (const db of ledgerDbs(env)) {
      const rows = await db.prepare("SELECT DISTINCT actor FROM ledger_entries WHERE grant_id = ?").bind(bulkId).all();
      for (const r of rows.results) actors.add(String(r.actor));
    }
    expect([...actors]).toEqual([`${support.id}:support`]);

    // Unknown accounts were created, like a single grant; each lot carries the incident link.
    const one = ids[123] ?? "";
    expect((await call("GET", `/v1/accounts/${one}`)).status).toBe(200);
    const lot = await call("GET", `/v1/accounts/${one}/grants/${bulkId}`);
    expect(lot.json).toMatchObject({
      grant_id: bulkId,
      amount: 50,
      type: "compensatory",
      reason: outage.reason,
      incident_id: "inc-2041",
      remaining: 50,
    });
    expect((await balance(one)).available).toBe(50);
  });

  it("a chunk that failed mid-way is delivered again and grants nothing twice", async () => {
    const bulkId = uid("bulk-fail");
    const ids = Array.from({ length: BULK_CHUNK_SIZE }, () => uid("bf"));
    const q = recordingQueue();
    expect((await postBulk({ bulk_id: bulkId, account_ids: ids, grant: outage }, { queue: q.queue })).status).toBe(202);
    const [notGranted, answerLost] = [ids[10] ?? "", ids[20] ?? ""];

    // First delivery: one DO throws before granting, another after its grant was written.
    const failing = flakyAccounts({ before: [notGranted], after: [answerLost] });
    expect(await deliver(q.sent, { bindings: failing })).toEqual({ acked: 0, retried: [{ delaySeconds: 5 }] });
    expect((await bulkStatus(bulkId)).json).toMatchObject({ status: "running", granted: 98, pending: 2 });

    // The queue delivers it again: only the two pending accounts are asked.
    expect(await deliver(q.sent, { attempts: 2 })).toEqual({ acked: 1, retried: [] });
    expect((await bulkStatus(bulkId)).json).toMatchObject({
      status: "completed",
      granted: 99,
      skipped: 1, // answerLost: its DO already had this grant and replayed it
      failed: 0,
      pending: 0,
    });

    // Worse: every mark of the chunk lost after its grants. Delivered again, each DO replays.
    await forgetMarks(bulkId, ids);
    expect(await deliver(q.sent, { attempts: 3 })).toEqual({ acked: 1, retried: [] });
    expect((await bulkStatus(bulkId)).json).toMatchObject({ status: "completed", granted: 0, skipped: 100 });

    expect(await d1GrantCounts(bulkId, ids)).toEqual({
      entries: { n: 100, accounts: 100 },
      lots: { n: 100, accounts: 100 },
    });
    for (const a of [notGranted, answerLost]) {
      expect((await ledgerEntries(a)).map((e) => [e.kind, e.grant_id, e.amount])).toEqual([["grant", bulkId, 50]]);
      expect((await balance(a)).available).toBe(50);
    }
  });

  it("two deliveries of the same chunk at once: the DOs serialize them, each account granted once", async () => {
    const bulkId = uid("bulk-twice");
    const ids = Array.from({ length: 30 }, () => uid("bt"));
    const q = recordingQueue();
    await postBulk({ bulk_id: bulkId, account_ids: ids, grant: outage }, { queue: q.queue });
    const [a, b] = await Promise.all([deliver(q.sent), deliver(q.sent)]);
    expect(a.acked + b.acked).toBe(2);
    const status = (await bulkStatus(bulkId)).json;
    expect(status).toMatchObject({ status: "completed", failed: 0, pending: 0 });
    expect(status.granted + status.skipped).toBe(30);
    expect(await d1GrantCounts(bulkId, ids)).toEqual({
      entries: { n: 30, accounts: 30 },
      lots: { n: 30, accounts: 30 },
    });
  });

  it("each account's grant is the single grant {grant_id: bulk_id, ...grant}: that POST replays it", async () => {
    const bulkId = uid("bulk-same");
    const account = uid("bs");
    const q = recordingQueue();
    const grant = { ...outage, expires_at: future(30), metadata: { ticket: "T-1" } };
    await postBulk({ bulk_id: bulkId, account_ids: [account], grant }, { queue: q.queue });
    await deliver(q.sent);
    const single = await call("POST", `/v1/accounts/${account}/grants`, { ...grant, grant_id: bulkId });
    expect(single.status).toBe(201);
    expect(single.headers.get("idempotent-replayed")).toBe("true");
    const other = await call("POST", `/v1/accounts/${account}/grants`, { ...grant, amount: 51, grant_id: bulkId });
    expect(other.json.code).toBe("idempotency_conflict");
    expect((await balance(account)).available).toBe(50);
  });

  it("marketing: promotional, linked to a campaign; an account the policy refuses is listed with its code", async () => {
    const marketing = await keyOf("marketing", 1000);
    const [verified, strict, unknown] = [uid("mk"), uid("mk"), uid("mk")];
    await call("PUT", `/v1/accounts/${verified}`, { verified: true });
    await call("PUT", `/v1/accounts/${strict}`, { verified: false });
    expect(
      (await call("PUT", `/v1/accounts/${strict}/policy`, { require_verified_for_promotional: true })).status,
    ).toBe(200);
    const bulkId = uid("bulk-mkt");
    const q = recordingQueue();
    const grant = {
      amount: 200,
      type: "promotional",
      campaign: "winter-26",
      expires_at: future(14),
      source: "marketing",
    };
    const posted = await postBulk(
      { bulk_id: bulkId, account_ids: [verified, strict, unknown], grant },
      { queue: q.queue, token: marketing.token },
    );
    expect(posted.status, posted.text).toBe(202);
    expect(await deliver(q.sent)).toEqual({ acked: 1, retried: [] });
    expect((await bulkStatus(bulkId)).json).toMatchObject({
      status: "completed",
      total: 3,
      granted: 2,
      skipped: 0,
      failed: 1,
      errors: [{ account_id: strict, code: "account_not_verified" }],
      errors_more: false,
    });
    for (const a of [verified, unknown]) {
      const lot = await call("GET", `/v1/accounts/${a}/grants/${bulkId}`);
      expect(lot.json).toMatchObject({ type: "promotional", campaign: "winter-26", source: "marketing", amount: 200 });
    }
    expect((await call("GET", `/v1/accounts/${strict}/grants/${bulkId}`)).status).toBe(404);
  });

  it("through the real queue: the POST's chunks reach the Worker's queue handler (wrangler.toml)", async () => {
    const bulkId = uid("bulk-queue");
    const ids = [uid("bq"), uid("bq")];
    const res = await call("POST", "/v1/grants/bulk", {
      bulk_id: bulkId,
      account_ids: ids,
      grant: { amount: 7, type: "purchased" },
    });
    expect(res.status).toBe(202);
    // The local queue hands its batch over after max_batch_timeout (1 s).
    await vi.waitFor(async () => expect((await bulkStatus(bulkId)).json.status).toBe("completed"), {
      timeout: 15_000,
      interval: 100,
    });
    expect((await bulkStatus(bulkId)).json).toMatchObject({ granted: 2, failed: 0 });
    expect((await balance(ids[1] ?? "")).available).toBe(7);
  });
});

describe("progress and repeats", () => {
  it("lists the first 100 refused accounts by id and says there were more", async () => {
    const bulkId = uid("bulk-cap");
    const ids = shortIds(150, 20_000);
    const q = recordingQueue();
    await postBulk({ bulk_id: bulkId, account_ids: ids, grant: outage }, { queue: q.queue });
    const refused = countingAccounts(() => ({ ok: false, problem: { code: "account_not_verified", detail: "no" } }));
    await deliver(q.sent, { bindings: refused.bindings });
    const status = (await bulkStatus(bulkId)).json;
    expect(status).toMatchObject({ status: "completed", failed: 150, granted: 0, errors_more: true });
    expect(status.errors).toHaveLength(100);
    expect(status.errors.map((e: { account_id: string }) => e.account_id)).toEqual([...ids].sort().slice(0, 100));
    expect(new Set(status.errors.map((e: { code: string }) => e.code))).toEqual(new Set(["account_not_verified"]));
  });

  it("a job whose chunks were never sent is enqueued again by the same POST once it has stalled", async () => {
    const bulkId = uid("bulk-stall");
    const ids = shortIds(250, 30_000);
    const body = { bulk_id: bulkId, account_ids: ids, grant: outage };
    const broken = recordingQueue({ fail: true });
    const first = await postBulk(body, { queue: broken.queue });
    expect(first.json?.code, first.text).toBe("internal_error");
    expect(await storedRows(bulkId)).toEqual({ jobs: 1, items: 250 });

    const q = recordingQueue();
    const soon = await postBulk(body, { queue: q.queue });
    expect(soon.json).toMatchObject({ status: "running", pending: 250 });
    expect(q.sent).toHaveLength(0); // not stalled yet: its chunks may still be on their way

    await stall(bulkId);
    await postBulk(body, { queue: q.queue });
    expect(q.sent.map((m) => m.account_ids.length)).toEqual([100, 100, 50]);
    const accounts = countingAccounts();
    await deliver(q.sent.slice(0, 1), { bindings: accounts.bindings });

    // Stalled again after one chunk: only the 150 still pending go out.
    await stall(bulkId);
    await postBulk(body, { queue: q.queue });
    const resent = q.sent.slice(3);
    expect(resent.map((m) => m.account_ids.length)).toEqual([100, 50]);
    const done = new Set(q.sent[0]?.account_ids);
    expect(new Set(resent.flatMap((m) => m.account_ids))).toEqual(new Set(ids.filter((a) => !done.has(a))));
    // Right after a re-enqueue the job counts as moving: a further POST sends nothing.
    await postBulk(body, { queue: q.queue });
    expect(q.sent).toHaveLength(5);

    await deliver(resent, { bindings: accounts.bindings });
    await deliver(q.sent.slice(1, 3), { bindings: accounts.bindings }); // the first copies arrive late
    expect(accounts.calls).toHaveLength(250);
    expect((await bulkStatus(bulkId)).json).toMatchObject({ status: "completed", granted: 250 });
  });

  it("takes the job's id from Idempotency-Key when the body has no bulk_id; key order does not matter", async () => {
    const bulkId = uid("bulk-hdr");
    const account = uid("bh");
    const q = recordingQueue();
    const headers = { "idempotency-key": bulkId };
    const grant = { type: "purchased", amount: 3, cost_basis: { amount: 300, currency: "EUR" } };
    const first = await postBulk({ account_ids: [account], grant }, { queue: q.queue, headers });
    expect(first.json).toMatchObject({ bulk_id: bulkId, total: 1 });
    const reordered = `{"grant":{"cost_basis":{"currency":"EUR","amount":300},"amount":3,"type":"purchased"},"account_ids":["${account}"]}`;
    const again = await postBulk(undefined, { queue: q.queue, headers, raw: reordered });
    expect(again.status).toBe(202);
    expect(again.headers.get("idempotent-replayed")).toBe("true");
    await deliver(q.sent);
    expect((await call("GET", `/v1/accounts/${account}/grants/${bulkId}`)).json).toMatchObject({
      cost_basis: { amount: 300, currency: "EUR" },
    });
  });

  it("GET answers every reader, the gateway excepted", async () => {
    const bulkId = uid("bulk-read");
    await postBulk({ bulk_id: bulkId, account_ids: [uid("br")], grant: outage });
    for (const role of ["finance", "support", "marketing", "viewer"]) {
      const key = await keyOf(role, role === "support" || role === "marketing" ? 10 : null);
      const res = await bulkStatus(bulkId, key.token);
      expect(res.status, role).toBe(200);
      expect(res.json).toMatchObject({ bulk_id: bulkId, status: "running", total: 1, pending: 1 });
    }
  });
});
