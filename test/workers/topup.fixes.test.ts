/**
 * Automatic top-up, the reviewer's findings pinned: the month's tally
 * survives DELETE then PUT; a rule above the grant approval threshold waits
 * for a second key; open records are the account's own (no isolate-wide
 * map); several rules firing in one commit respect AWAITING_OPEN_MAX; taken
 * `topup.<n>` ids move the counter on; everything is rebuilt from SQLite by
 * a new instance of the object. Real DO SQLite and local D1; no sleeping.
 */
import { env, runInDurableObject } from "cloudflare:test";
import { describe, expect, it, vi } from "vitest";
import type { AccountLedger } from "../../src/account/account-do";
import { AWAITING_OPEN_MAX, type AwaitingGrant } from "../../src/ledger/awaiting";
import { keyOf } from "./bulk-helpers";
import { call, debit, expectProblem, grant, ledgerStubFor, uid } from "./helpers";
import { alertsFor, drain, setDoClock } from "./jobs-helpers";

const putRule = (a: string, body: Record<string, unknown>, token?: string) =>
  call("PUT", `/v1/accounts/${a}/top-up`, body, token === undefined ? {} : { token });
const awaitingIds = async (a: string) =>
  (await call("GET", `/v1/accounts/${a}/grants?status=awaiting_payment`)).json.grants.map((g: any) => g.grant_id);
const activate = async (a: string, grantId: string) => {
  const res = await call("POST", `/v1/accounts/${a}/grants/${grantId}/activate`, { payment_ref: `pay-${grantId}` });
  expect(res.status, res.text).toBe(200);
  return res;
};

/** The DO's private parts, reachable only through runInDurableObject. */
type Insides = { core: { awaitingOpen: Map<string, AwaitingGrant> }; life: { topups: { counter: number } } };
const insides = (inst: AccountLedger) => inst as unknown as Insides;

/** Fills the account's open records (in memory, another unit) up to `n`. */
async function fillOpen(a: string, n: number): Promise<void> {
  await runInDurableObject(ledgerStubFor(a), (inst: AccountLedger) => {
    const open = insides(inst).core.awaitingOpen;
    for (let i = 0; i < n; i++) {
      const grantId = `filler.${i}`;
      open.set(grantId, {
        grantId,
        command: { unit: "filler", amount: 1, type: "purchased" } as AwaitingGrant["command"],
        expiresInDays: null,
        topup: false,
        status: "awaiting_payment",
        createdAtMs: 0,
        closedAtMs: null,
        paymentRef: null,
        cancelReason: null,
      });
    }
  });
}

describe("the month's tally", () => {
  it("survives DELETE then PUT: no second request this month; the next month asks again", async () => {
    const a = uid();
    await grant(a, { amount: 150 });
    await setDoClock(a, Date.UTC(2032, 2, 10));
    const rule = { below: 100, amount: 100, max_per_month: 100 };
    expect((await putRule(a, rule)).status).toBe(200);
    expect((await debit(a, 60)).status).toBe(200); // 90 < 100: topup.1 (March: 100 of 100)
    expect(await awaitingIds(a)).toEqual(["topup.1"]);
    await activate(a, "topup.1"); // 190
    expect((await call("DELETE", `/v1/accounts/${a}/top-up`)).status).toBe(200);
    const again = await putRule(a, rule);
    expect(again.status).toBe(200);
    expect(again.json).toMatchObject({ requested_this_month: 100, outstanding: null });
    expect((await debit(a, 100)).status).toBe(200); // 90: a second 100 would make 200 > 100
    expect(await awaitingIds(a)).toEqual([]);
    await setDoClock(a, Date.UTC(2032, 3, 1));
    expect((await debit(a, 1)).status).toBe(200); // 89, April
    expect(await awaitingIds(a)).toEqual(["topup.2"]);
    expect((await call("GET", `/v1/accounts/${a}/top-up`)).json.requested_this_month).toBe(100);
  });
});

describe("four eyes on a top-up rule (held to the grant threshold, compared with amount)", () => {
  it("amount 501 over 500 is 202 pending and sets nothing; another key approves; 500 runs at once", async () => {
    const a = uid("tua");
    await grant(a, { amount: 1000 });
    const put = await call("PUT", `/v1/accounts/${a}/policy`, { approval_threshold: { grant: 500 } });
    expect(put.status, put.text).toBe(200);
    const asker = await keyOf("finance");
    const other = await keyOf("finance");
    const body = { below: 800, amount: 501 };

    const asked = await putRule(a, body, asker.token);
    expect(asked.status, asked.text).toBe(202);
    expect(asked.json).toMatchObject({
      status: "pending",
      kind: "top_up",
      amount: 501,
      unit: "credits",
      request: { method: "PUT", path: `/v1/accounts/${a}/top-up`, account_id: a, body },
    });
    const id = asked.json.approval_id as string;
    expectProblem(await call("GET", `/v1/accounts/${a}/top-up`), 404, "not_found");
    // The same PUT again (the same terms, written differently): the same approval.
    const repeat = await putRule(a, { amount: 501, below: 800, grant: { type: "purchased" } }, asker.token);
    expect(repeat.status).toBe(202);
    expect(repeat.json.approval_id).toBe(id);
    expect(repeat.headers.get("idempotent-replayed")).toBe("true");

    expectProblem(
      await call("POST", `/v1/approvals/${id}/approve`, undefined, { token: asker.token }),
      403,
      "forbidden",
    );
    expectProblem(await call("GET", `/v1/accounts/${a}/top-up`), 404, "not_found");

    const approved = await call("POST", `/v1/approvals/${id}/approve`, undefined, { token: other.token });
    expect(approved.status, approved.text).toBe(200);
    expect(approved.json).toMatchObject({ unit: "credits", below: 800, amount: 501 });
    expect((await call("GET", `/v1/accounts/${a}/top-up`)).json).toMatchObject({ below: 800, amount: 501 });
    expect((await debit(a, 300)).status).toBe(200); // 700 < 800
    await drain(a);
    expect((await alertsFor(a, "topup.requested")).map((x) => [x.data.grant_id, x.data.amount])).toEqual([
      ["topup.1", 501],
    ]);
    const audit = await call("GET", `/v1/audit?target=${a}:credits`);
    expect(audit.json.events.map((e: any) => [e.action, e.actor])).toEqual([["top_up.updated", `${asker.id}:finance`]]);

    // At the threshold: runs at once.
    const small = await putRule(a, { below: 800, amount: 500 }, asker.token);
    expect(small.status, small.text).toBe(200);
    expect(small.json.amount).toBe(500);
    // The old approval, approved again, never overwrites the newer rule.
    expectProblem(
      await call("POST", `/v1/approvals/${id}/approve`, undefined, { token: other.token }),
      409,
      "idempotency_conflict",
    );
    expect((await call("GET", `/v1/accounts/${a}/top-up`)).json.amount).toBe(500);
    // Setting the approved terms again after they were replaced asks a second key again.
    const back = await putRule(a, body, asker.token);
    expect(back.status).toBe(202);
    expect(back.json.approval_id).not.toBe(id);
  });

  it("DELETE then PUT of a big rule again also needs approval", async () => {
    const a = uid("tub");
    await grant(a, { amount: 10 });
    expect((await call("PUT", `/v1/accounts/${a}/policy`, { approval_threshold: { grant: 500 } })).status).toBe(200);
    const asker = await keyOf("finance");
    const other = await keyOf("admin");
    const asked = await putRule(a, { below: 5, amount: 10_000 }, asker.token);
    expect(asked.status).toBe(202);
    const ran = await call("POST", `/v1/approvals/${asked.json.approval_id}/approve`, undefined, {
      token: other.token,
    });
    expect(ran.status, ran.text).toBe(200);
    expect((await call("DELETE", `/v1/accounts/${a}/top-up`, undefined, { token: asker.token })).status).toBe(200);
    const again = await putRule(a, { below: 5, amount: 10_000 }, asker.token);
    expect(again.status).toBe(202);
    expectProblem(await call("GET", `/v1/accounts/${a}/top-up`), 404, "not_found");
  });
});

describe("a rule that breaks its own rules never waits for approval", () => {
  it("amount above max_per_month is 400 at once, above the threshold too, and nothing is stored", async () => {
    const a = uid("tuc");
    await grant(a, { amount: 1000 });
    expect((await call("PUT", `/v1/accounts/${a}/policy`, { approval_threshold: { grant: 500 } })).status).toBe(200);
    const asker = await keyOf("finance");
    const res = await putRule(a, { below: 5, amount: 600, max_per_month: 100 }, asker.token);
    expectProblem(res, 400, "invalid_request");
    const stored = await env.DB.prepare("SELECT count(*) AS n FROM approvals WHERE account_id = ?").bind(a).first();
    expect(stored).toEqual({ n: 0 });
    expectProblem(await call("GET", `/v1/accounts/${a}/top-up`), 404, "not_found");
  });
});

describe("open records and ids", () => {
  it("the cursor of a record closed meanwhile still positions the next page", async () => {
    const a = uid();
    await grant(a, { amount: 10 });
    for (const id of ["w1", "w2", "w3", "w4"]) {
      const r = await call("POST", `/v1/accounts/${a}/grants`, {
        grant_id: id,
        amount: 5,
        type: "purchased",
        awaiting_payment: true,
      });
      expect(r.status, r.text).toBe(201);
    }
    const first = await call("GET", `/v1/accounts/${a}/grants?status=awaiting_payment&limit=2`);
    expect(first.json.grants.map((g: any) => g.grant_id)).toEqual(["w1", "w2"]);
    expect(first.json.next_cursor).toBe("w2");
    expect((await call("POST", `/v1/accounts/${a}/grants/w2/cancel`, { reason: "declined" })).status).toBe(200);
    const next = await call("GET", `/v1/accounts/${a}/grants?status=awaiting_payment&limit=2&cursor=w2`);
    expect(next.status, next.text).toBe(200);
    expect(next.json).toMatchObject({ next_cursor: null });
    expect(next.json.grants.map((g: any) => g.grant_id)).toEqual(["w3", "w4"]);
    const unknown = await call("GET", `/v1/accounts/${a}/grants?status=awaiting_payment&cursor=nope`);
    expectProblem(unknown, 400, "invalid_request");
  });

  it("client-taken topup.<n> ids are passed and the counter moves past them for good", async () => {
    const a = uid();
    await grant(a, { amount: 100 });
    for (const id of ["topup.1", "topup.2"]) await grant(a, { grant_id: id, amount: 1 }); // 102
    const held = await call("POST", `/v1/accounts/${a}/grants`, {
      grant_id: "topup.3",
      amount: 1,
      type: "purchased",
      awaiting_payment: true,
    });
    expect(held.status).toBe(201);
    expect((await putRule(a, { below: 50, amount: 100 })).status).toBe(200);
    expect((await debit(a, 60)).status).toBe(200); // 42 < 50
    expect(await awaitingIds(a)).toEqual(["topup.3", "topup.4"]);
    const counter = await runInDurableObject(
      ledgerStubFor(a),
      (inst: AccountLedger) => insides(inst).life.topups.counter,
    );
    expect(counter).toBe(4);
  });

  it("when every probed id is taken the request waits, but the counter moves on (each id probed once)", async () => {
    const a = uid();
    await grant(a, { amount: 100 });
    // TOPUP_ID_PROBES = 100 ids taken by the client's own lots.
    for (let n = 1; n <= 100; n++) await grant(a, { grant_id: `topup.${n}`, amount: 1 }); // 200
    expect((await putRule(a, { below: 150, amount: 10 })).status).toBe(200);
    expect((await debit(a, 60)).status).toBe(200); // 140 < 150: all 100 probes taken, none requested
    expect(await awaitingIds(a)).toEqual([]);
    expect(await runInDurableObject(ledgerStubFor(a), (inst: AccountLedger) => insides(inst).life.topups.counter)).toBe(
      100,
    );
    expect((await debit(a, 1)).status).toBe(200); // 139: topup.101
    expect(await awaitingIds(a)).toEqual(["topup.101"]);
  });

  it("several rules firing in one commit never take the open records past AWAITING_OPEN_MAX", async () => {
    const a = uid();
    const tok = `tok_${uid("").replace(/[^a-z0-9]/g, "_")}`.slice(0, 32);
    expect((await call("PUT", `/v1/units/${tok}`, { name: tok, scale: 0 })).status).toBeLessThan(300);
    expect((await call("PUT", `/v1/rates/${tok}/credits`, { numerator: 1, denominator: 1 })).status).toBeLessThan(300);
    await grant(a, { amount: 5 });
    await grant(a, { amount: 20, unit: tok });
    expect((await call("PUT", `/v1/accounts/${a}/policy`, { convert_from: [tok] })).status).toBe(200);
    expect((await putRule(a, { below: 10, amount: 10 })).status).toBe(200);
    expect((await putRule(a, { unit: tok, below: 20, amount: 10 })).status).toBe(200);
    // AWAITING_OPEN_MAX − 1 open records (in another unit, in memory) leave room for one.
    await fillOpen(a, AWAITING_OPEN_MAX - 1);
    // 8 credits: 5 credits and 3 tok converted: both units fall below their rules in one commit.
    const res = await debit(a, 8, { convert: true });
    expect(res.status, res.text).toBe(200);
    const ids = await runInDurableObject(ledgerStubFor(a), (inst: AccountLedger) =>
      [...insides(inst).core.awaitingOpen.keys()].filter((k) => k.startsWith("topup.")),
    );
    expect(ids).toEqual(["topup.1"]);
    expect(
      await runInDurableObject(ledgerStubFor(a), (inst: AccountLedger) => insides(inst).core.awaitingOpen.size),
    ).toBe(AWAITING_OPEN_MAX);
  });
});

describe("bounded work and one instant", () => {
  it("topup.skipped (open records full) is logged once per state change, not on every commit", async () => {
    const a = uid();
    await grant(a, { amount: 100 });
    expect((await putRule(a, { below: 90, amount: 10 })).status).toBe(200);
    await fillOpen(a, AWAITING_OPEN_MAX);
    const spy = vi.spyOn(console, "log");
    try {
      for (let i = 0; i < 5; i++) expect((await debit(a, 5)).status).toBe(200); // 95, 90, 85, 80, 75: three below 90, all while full
      const skipped = spy.mock.calls.filter((c) => String(c[0]).includes('"event":"topup.skipped"'));
      expect(skipped).toHaveLength(1);
    } finally {
      spy.mockRestore();
    }
    expect(await awaitingIds(a)).toEqual([]);
  });

  it("activation takes the time once: closed_at is the grant entry's effective_at, whatever the clock does", async () => {
    const a = uid();
    await grant(a, { amount: 10 });
    const r = await call("POST", `/v1/accounts/${a}/grants`, {
      grant_id: "inv-t",
      amount: 5,
      type: "purchased",
      awaiting_payment: true,
    });
    expect(r.status).toBe(201);
    // A clock that moves a second on every read: two reads in one activation would differ.
    await runInDurableObject(ledgerStubFor(a), (inst: AccountLedger) => {
      let ms = inst.clock.offsetMs;
      Object.defineProperty(inst.clock, "offsetMs", {
        configurable: true,
        get: () => {
          ms += 1000;
          return ms;
        },
      });
    });
    const res = await activate(a, "inv-t");
    await runInDurableObject(ledgerStubFor(a), (inst: AccountLedger) => {
      Object.defineProperty(inst.clock, "offsetMs", { configurable: true, writable: true, value: 0 });
    });
    expect(res.json.grant.closed_at).toBe(res.json.grant.effective_at);
    expect(res.json.grant.created_at).toBe(res.json.grant.closed_at);
  });

  it("a balance as_of reads the records closed after it through the (unit, closed_at_ms) index", async () => {
    const a = uid();
    await grant(a, { amount: 10 });
    const plan = await runInDurableObject(ledgerStubFor(a), (_inst: AccountLedger, state) =>
      state.storage.sql
        .exec(
          "EXPLAIN QUERY PLAN SELECT * FROM awaiting_grants WHERE unit = ? AND closed_at_ms > ? ORDER BY closed_at_ms LIMIT ?",
          "credits",
          0,
          10,
        )
        .toArray()
        .map((row) => String(row.detail)),
    );
    expect(plan.join(" ")).toContain("awaiting_grants_by_close");
  });
});

describe("a new instance of the object", () => {
  it("rebuilds rules, month tally, counter and open records from SQLite", async () => {
    const a = uid();
    await grant(a, { amount: 150 });
    await setDoClock(a, Date.UTC(2033, 4, 10));
    expect((await putRule(a, { below: 100, amount: 100, max_per_month: 200 })).status).toBe(200);
    expect((await debit(a, 60)).status).toBe(200); // 90: topup.1
    await activate(a, "topup.1"); // 190
    expect((await debit(a, 100)).status).toBe(200); // 90: topup.2 (May: 200)
    const seen = await runInDurableObject(ledgerStubFor(a), (inst: AccountLedger, state) => {
      const fresh = new (inst.constructor as new (s: DurableObjectState, e: Env) => AccountLedger)(state, env);
      fresh.clock.offsetMs = inst.clock.offsetMs;
      const rule = fresh.getTopUp(a, "credits");
      const ctx = { accountId: a, actor: "test", requestId: "t", globalPolicy: null };
      const bal = fresh.balance(ctx, "credits", null);
      return {
        rule: rule.ok ? rule.body : null,
        counter: insides(fresh).life.topups.counter,
        open: [...insides(fresh).core.awaitingOpen.keys()],
        listed: bal.ok ? (bal.body as any).awaiting_payment.map((x: any) => x.grant_id) : null,
      };
    });
    expect(seen).toEqual({
      rule: expect.objectContaining({ requested_this_month: 200, outstanding: "topup.2", below: 100, revision: 1 }),
      counter: 2,
      open: ["topup.2"],
      listed: ["topup.2"],
    });
  });

  it("one instance's open records never show in another's balances (no isolate-wide list)", async () => {
    const a = uid();
    await grant(a, { amount: 10 });
    const r = await call("POST", `/v1/accounts/${a}/grants`, {
      grant_id: "inv-1",
      amount: 5,
      type: "purchased",
      awaiting_payment: true,
    });
    expect(r.status).toBe(201);
    const listed = await runInDurableObject(ledgerStubFor(a), (inst: AccountLedger, state) => {
      // Another object over a copy where the record is gone: it must not change what this one lists.
      state.storage.sql.exec("UPDATE awaiting_grants SET status = 'cancelled', closed_at_ms = 1");
      new (inst.constructor as new (s: DurableObjectState, e: Env) => AccountLedger)(state, env);
      state.storage.sql.exec("UPDATE awaiting_grants SET status = 'awaiting_payment', closed_at_ms = NULL");
      const ctx = { accountId: a, actor: "test", requestId: "t", globalPolicy: null };
      const bal = inst.balance(ctx, "credits", null);
      return bal.ok ? (bal.body as any).awaiting_payment.map((x: any) => x.grant_id) : null;
    });
    expect(listed).toEqual(["inv-1"]);
  });
});
