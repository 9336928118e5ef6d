/**
 * The read endpoints support and back offices use to look an account up:
 * grants (a page at a time, by status), one grant, open holds and receipts,
 * and one debit as it was asked (metadata included: defect 10 accepted the
 * metadata of POST …/debits and dropped it). Expected values come from what
 * the test itself sent and from the ledger, never from the endpoint read.
 */
import { beforeAll, describe, expect, it } from "vitest";
import { advanceClock, call, debit, expectProblem, grant, ledgerEntries, uid } from "./helpers";

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const at = (offsetMs: number) => new Date(Date.now() + offsetMs).toISOString();
const acct = (a: string, rest = "") => `/v1/accounts/${a}${rest}`;

/** Follows next_cursor from the first page until it is null; every page is checked for its size. */
async function pages(base: string, limit: number): Promise<{ items: any[]; sizes: number[]; cursors: string[] }> {
  const items: any[] = [];
  const sizes: number[] = [];
  const cursors: string[] = [];
  const sep = base.includes("?") ? "&" : "?";
  let cursor: string | null = null;
  for (let i = 0; i < 1000; i++) {
    const url = `${base}${sep}limit=${limit}${cursor === null ? "" : `&cursor=${encodeURIComponent(cursor)}`}`;
    const res = await call("GET", url);
    expect(res.status, `${url}: ${res.text}`).toBe(200);
    const list = (res.json.grants ?? res.json.holds) as any[];
    expect(list.length).toBeLessThanOrEqual(limit);
    items.push(...list);
    sizes.push(list.length);
    cursor = res.json.next_cursor;
    if (cursor === null) return { items, sizes, cursors };
    cursors.push(cursor);
  }
  throw new Error("paging does not end");
}

const ids = (xs: any[], key = "grant_id") => xs.map((x) => x[key] as string);

describe("GET /v1/accounts/{id}/grants", () => {
  const A = uid("lk-grants");
  // Created in this order; neither alphabetical nor by priority, so the list must follow creation.
  const CREATED = ["g-e", "g-a", "g-d", "g-b", "g-c"];

  beforeAll(async () => {
    for (const [i, id] of CREATED.entries()) await grant(A, { grant_id: id, amount: 10 + i, priority: 50 - i * 10 });
  });

  it("lists every grant in creation order, each as GET …/grants/{grant_id} serves it", async () => {
    const res = await call("GET", acct(A, "/grants"));
    expect(res.status).toBe(200);
    expect(Object.keys(res.json).sort()).toEqual(["grants", "next_cursor"]);
    expect(ids(res.json.grants)).toEqual(CREATED);
    expect(res.json.next_cursor).toBeNull();
    expect(res.json.grants.map((g: any) => g.amount)).toEqual([10, 11, 12, 13, 14]);
    for (const g of res.json.grants) {
      const one = await call("GET", acct(A, `/grants/${g.grant_id}`));
      expect(one.status).toBe(200);
      expect(one.json).toEqual(g);
    }
  });

  it("limit=2 over 5 grants: pages of 2, 2, 1 that visit each grant exactly once", async () => {
    const walk = await pages(acct(A, "/grants"), 2);
    expect(walk.sizes).toEqual([2, 2, 1]);
    expect(ids(walk.items)).toEqual(CREATED);
    // next_cursor names the last grant of its page.
    expect(walk.cursors).toEqual(["g-a", "g-b"]);
  });

  it("a page that ends exactly at the last grant says there is no next page", async () => {
    const five = await call("GET", acct(A, "/grants?limit=5"));
    expect(ids(five.json.grants)).toEqual(CREATED);
    expect(five.json.next_cursor).toBeNull();
    const four = await call("GET", acct(A, "/grants?limit=4"));
    expect(ids(four.json.grants)).toEqual(CREATED.slice(0, 4));
    expect(four.json.next_cursor).toBe("g-b");
    const rest = await call("GET", acct(A, "/grants?limit=4&cursor=g-b"));
    expect(rest.json).toEqual({ grants: [expect.objectContaining({ grant_id: "g-c" })], next_cursor: null });
    // A cursor at the last grant: an empty last page.
    expect((await call("GET", acct(A, "/grants?cursor=g-c"))).json).toEqual({ grants: [], next_cursor: null });
  });

  it("a cursor that names no grant of the account is 400 invalid_request", async () => {
    expectProblem(await call("GET", acct(A, "/grants?cursor=g-never")), 400, "invalid_request");
    // A grant of another account is no position here either.
    const other = uid("lk-other");
    await grant(other, { grant_id: "g-elsewhere", amount: 1 });
    expectProblem(await call("GET", acct(A, "/grants?cursor=g-elsewhere")), 400, "invalid_request");
  });

  it("filters by status, a page at a time, and every grant is in exactly one status", async () => {
    const a = uid("lk-status");
    const plan: [string, string][] = [
      ["s-active-1", "active"],
      ["s-pending-1", "pending"],
      ["s-depleted", "depleted"],
      ["s-active-2", "active"],
      ["s-voided", "voided"],
      ["s-expired", "expired"],
      ["s-active-3", "active"],
      ["s-pending-2", "pending"],
      ["s-active-4", "active"],
    ];
    for (const [id, status] of plan) {
      const body: Record<string, unknown> = { grant_id: id, amount: 5 };
      if (status === "pending") body.effective_at = at(30 * DAY);
      if (status === "expired") body.expires_at = at(HOUR);
      // The depleted lot is drawn first (priority 0) by the debit below; nothing else is.
      if (status === "depleted") body.priority = 0;
      await grant(a, body);
    }
    expect((await debit(a, 5)).json.applied).toEqual([{ grant_id: "s-depleted", type: "purchased", amount: 5 }]);
    expect((await call("POST", acct(a, "/grants/s-voided/void"), { reason: "test" })).status).toBe(200);
    await advanceClock(a, 2 * HOUR);

    const all = (await call("GET", acct(a, "/grants"))).json.grants as any[];
    expect(all.map((g) => [g.grant_id, g.status])).toEqual(plan);
    for (const status of ["active", "pending", "depleted", "voided", "expired"]) {
      const expected = plan.filter(([, s]) => s === status).map(([id]) => id);
      for (const limit of [1, 2, 1000]) {
        const walk = await pages(acct(a, `/grants?status=${status}`), limit);
        expect(ids(walk.items), `${status}, limit ${limit}`).toEqual(expected);
        expect(walk.items.every((g) => g.status === status)).toBe(true);
      }
    }
  });

  it("serves 100 grants by default; limit=1000 serves all 101", async () => {
    const a = uid("lk-many");
    const created: string[] = [];
    for (let i = 0; i < 101; i++) {
      const id = `m-${String(i).padStart(3, "0")}`;
      await grant(a, { grant_id: id, amount: 1 });
      created.push(id);
    }
    const first = await call("GET", acct(a, "/grants"));
    expect(ids(first.json.grants)).toEqual(created.slice(0, 100));
    expect(first.json.next_cursor).toBe(created[99]);
    const second = await call("GET", acct(a, `/grants?cursor=${first.json.next_cursor}`));
    expect(ids(second.json.grants)).toEqual([created[100]]);
    expect(second.json.next_cursor).toBeNull();
    const whole = await call("GET", acct(a, "/grants?limit=1000"));
    expect(ids(whole.json.grants)).toEqual(created);
    expect(whole.json.next_cursor).toBeNull();
  });
});

describe("GET /v1/accounts/{id}/grants/{grant_id}", () => {
  it("serves the grant as it stands: remaining and held move with debits and holds", async () => {
    const a = uid("lk-grant");
    const issued = await grant(a, {
      grant_id: "g-one",
      amount: 100,
      type: "purchased",
      source: "stripe",
      reason: "top-up",
      cost_basis: { amount: 999, currency: "EUR" },
      metadata: { invoice: "inv-1" },
      expires_at: at(10 * DAY),
    });
    const read = async () => {
      const res = await call("GET", acct(a, "/grants/g-one"));
      expect(res.status).toBe(200);
      return res.json;
    };
    expect(await read()).toEqual(issued.grant);

    expect((await debit(a, 30)).status).toBe(200);
    expect(await read()).toEqual({ ...issued.grant, remaining: 70, held: 0 });

    expect((await call("POST", acct(a, "/holds"), { hold_id: "h-1", amount: 20 })).status).toBe(201);
    expect(await read()).toEqual({ ...issued.grant, remaining: 70, held: 20 });

    expect((await call("POST", acct(a, "/holds/h-1/capture"), { amount: 5 })).status).toBe(200);
    expect(await read()).toEqual({ ...issued.grant, remaining: 65, held: 0 });

    expect((await debit(a, 65)).status).toBe(200);
    expect(await read()).toEqual({ ...issued.grant, remaining: 0, held: 0, status: "depleted" });

    // The ledger agrees: what left the lot is the sum of its entries.
    const entries = (await ledgerEntries(a)).filter((e) => e.grant_id === "g-one");
    expect(entries.reduce((s, e) => s + e.amount, 0)).toBe(0);
  });

  it("an unknown grant, or one of another account, is 404 grant_not_found", async () => {
    const a = uid("lk-grant-404");
    const b = uid("lk-grant-404b");
    await grant(a, { grant_id: "g-a", amount: 1 });
    await grant(b, { grant_id: "g-b", amount: 1 });
    expectProblem(await call("GET", acct(a, "/grants/g-never")), 404, "grant_not_found");
    expectProblem(await call("GET", acct(a, "/grants/g-b")), 404, "grant_not_found");
    expect((await call("GET", acct(b, "/grants/g-b"))).status).toBe(200);
  });
});

describe("GET /v1/accounts/{id}/holds", () => {
  const reserve = (a: string, kind: "holds" | "receipts", id: string, amount: number) =>
    call("POST", acct(a, `/${kind}`), { [kind === "holds" ? "hold_id" : "receipt_id"]: id, amount, ttl_seconds: 600 });

  it("lists open holds and receipts oldest first with their kind; closed ones leave the list", async () => {
    const a = uid("lk-holds");
    await grant(a, { amount: 1000 });
    const made: [string, "hold" | "receipt"][] = [
      ["h-3", "hold"],
      ["r-1", "receipt"],
      ["h-1", "hold"],
      ["r-2", "receipt"],
      ["h-2", "hold"],
    ];
    const tokens = new Map<string, string>();
    for (const [i, [id, kind]] of made.entries()) {
      const res = await reserve(a, kind === "hold" ? "holds" : "receipts", id, 10 + i);
      expect(res.status).toBe(201);
      if (kind === "receipt") tokens.set(id, res.json.receipt);
    }
    const states = new Map<string, any>();
    for (const [id] of made) states.set(id, (await call("GET", acct(a, `/holds/${id}`))).json);
    // Oldest first; holds made in the same millisecond are ordered by id.
    const byAge = [...made].sort(([x], [y]) => {
      const dx = Date.parse(states.get(x).created_at);
      const dy = Date.parse(states.get(y).created_at);
      return dx - dy || (x < y ? -1 : x > y ? 1 : 0);
    });
    const expected = byAge.map(([id, kind]) => ({ ...states.get(id), kind }));

    const res = await call("GET", acct(a, "/holds"));
    expect(res.status).toBe(200);
    expect(res.json).toEqual({ holds: expected, next_cursor: null });
    expect(expected.map((h) => h.status)).toEqual(["open", "open", "open", "open", "open"]);

    const walk = await pages(acct(a, "/holds"), 2);
    expect(walk.sizes).toEqual([2, 2, 1]);
    expect(walk.items).toEqual(expected);

    // Capture one, release one, settle one: only the other two stay listed.
    expect((await call("POST", acct(a, "/holds/h-1/capture"), {})).status).toBe(200);
    expect((await call("POST", acct(a, "/holds/h-2/release"))).status).toBe(200);
    const settled = await call("POST", "/v1/receipts/settle", { receipt: tokens.get("r-1"), used: 3 });
    expect(settled.status).toBe(200);
    const after = await call("GET", acct(a, "/holds"));
    expect(ids(after.json.holds, "hold_id")).toEqual(
      ids(expected, "hold_id").filter((id) => id === "h-3" || id === "r-2"),
    );
    // What stays listed is still open, and held adds up to what the balance says.
    const bal = (await call("GET", acct(a, "/balance"))).json;
    expect(after.json.holds.reduce((s: number, h: any) => s + h.amount, 0)).toBe(bal.held);
  });

  it("an account without open holds lists none", async () => {
    const a = uid("lk-noholds");
    await grant(a, { amount: 5 });
    expect((await call("GET", acct(a, "/holds"))).json).toEqual({ holds: [], next_cursor: null });
  });

  it("a hold past its deadline is not listed as open: the list agrees with the balance read after it", async () => {
    const a = uid("lk-deadline");
    await grant(a, { amount: 100 });
    for (const [hold_id, amount, ttl_seconds] of [
      ["h-short", 40, 60],
      ["h-long", 10, 3600],
    ] as const) {
      expect((await call("POST", acct(a, "/holds"), { hold_id, amount, ttl_seconds })).status).toBe(201);
    }
    // Two minutes later by the account's clock; no alarm or cron has run since.
    await advanceClock(a, 120_000);
    const listed = await call("GET", acct(a, "/holds"));
    expect(listed.status).toBe(200);
    const bal = (await call("GET", acct(a, "/balance"))).json;
    expect(bal.held).toBe(10);
    expect(listed.json.holds.reduce((s: number, h: any) => s + h.amount, 0)).toBe(bal.held);
    expect(ids(listed.json.holds, "hold_id")).toEqual(["h-long"]);
  });
});

describe("GET /v1/accounts/{id}/debits/{debit_id}", () => {
  it("serves the debit as asked, metadata exactly as sent, and what it drew as the ledger recorded it", async () => {
    const a = uid("lk-debit");
    await grant(a, { grant_id: "first", amount: 4, priority: 1 });
    await grant(a, { grant_id: "second", amount: 5, priority: 2, type: "promotional" });
    await grant(a, { grant_id: "third", amount: 100, priority: 3 });
    const metadata = {
      request_id: "req-42",
      route: "/v1/chat?model=x&n=1",
      "café ✓": "😀 ünïcödé",
      empty: "",
      "": "empty key",
      quote: 'a "b" \\ c\n',
      ["k".repeat(64)]: "v".repeat(512),
    };
    const posted = await debit(a, 12, { debit_id: "d-meta", metadata });
    expect(posted.status).toBe(200);
    expect(posted.json.applied).toEqual([
      { grant_id: "first", type: "purchased", amount: 4 },
      { grant_id: "second", type: "promotional", amount: 5 },
      { grant_id: "third", type: "purchased", amount: 3 },
    ]);

    const res = await call("GET", acct(a, "/debits/d-meta"));
    expect(res.status).toBe(200);
    expect(Object.keys(res.json).sort()).toEqual(
      [
        "debit_id",
        "amount",
        "unit",
        "metadata",
        "applied",
        "applied_more",
        "txn_id",
        "first_seq",
        "last_seq",
        "actor",
        "created_at",
      ].sort(),
    );
    expect(res.json).toMatchObject({ debit_id: "d-meta", amount: 12, unit: "credits", actor: "admin-token:admin" });
    expect(res.json.metadata).toStrictEqual(metadata);
    expect(res.json.applied).toEqual(posted.json.applied);
    expect(res.json.applied_more).toBe(false);

    // The entries between first_seq and last_seq are exactly this debit's, one per lot, in draw order.
    const range = (await ledgerEntries(a)).filter((e) => e.seq >= res.json.first_seq && e.seq <= res.json.last_seq);
    expect(res.json.last_seq - res.json.first_seq + 1).toBe(3);
    expect(range.map((e) => [e.kind, e.ref, e.txn_id, e.actor, e.grant_id, e.credit_type, -e.amount])).toEqual(
      posted.json.applied.map((x: any) => [
        "debit",
        "d-meta",
        res.json.txn_id,
        "admin-token:admin",
        x.grant_id,
        x.type,
        x.amount,
      ]),
    );
    expect(range.every((e) => e.recorded_at === res.json.created_at)).toBe(true);
    // No other entry carries this debit.
    expect((await ledgerEntries(a)).filter((e) => e.ref === "d-meta")).toHaveLength(3);
  });

  it("metadata keys named like Object.prototype members are kept; __proto__ is refused, never dropped", async () => {
    const a = uid("lk-proto");
    await grant(a, { amount: 10 });
    const raw = '{"debit_id":"d-proto","amount":1,"metadata":{"constructor":"c","toString":"t"}}';
    const posted = await call("POST", acct(a, "/debits"), undefined, { raw });
    expect(posted.status).toBe(200);
    const res = await call("GET", acct(a, "/debits/d-proto"));
    expect(res.status).toBe(200);
    expect(JSON.stringify(Object.entries(res.json.metadata).sort())).toBe(
      JSON.stringify(Object.entries(JSON.parse(raw).metadata).sort()),
    );
    // A plain-object copy turns "__proto__" into a prototype and loses it: refused instead.
    const proto = '{"debit_id":"d-proto2","amount":1,"metadata":{"__proto__":"p"}}';
    expectProblem(await call("POST", acct(a, "/debits"), undefined, { raw: proto }), 400, "invalid_request");
    expect((await call("GET", acct(a, "/balance"))).json.available).toBe(9);
  });

  it.each(["k", "__proto__"])("metadata is strings only: an object value under the key %s is refused", async (key) => {
    const a = uid("lk-proto-obj");
    await grant(a, { amount: 10 });
    const raw = `{"debit_id":"d-obj","amount":1,"metadata":{"${key}":{"x":"1"}}}`;
    expectProblem(await call("POST", acct(a, "/debits"), undefined, { raw }), 400, "invalid_request");
    expect((await call("GET", acct(a, "/balance"))).json.available).toBe(10);
    expectProblem(await call("GET", acct(a, "/debits/d-obj")), 404, "not_found");
  });

  it("a debit without metadata serves null; one keyed by Idempotency-Key is read by that key", async () => {
    const a = uid("lk-debit-plain");
    await grant(a, { grant_id: "g", amount: 10 });
    expect((await debit(a, 2, { debit_id: "d-plain" })).status).toBe(200);
    expect((await call("GET", acct(a, "/debits/d-plain"))).json).toMatchObject({ metadata: null, amount: 2 });
    const key = uid("idem");
    const posted = await call("POST", acct(a, "/debits"), { amount: 3 }, { headers: { "idempotency-key": key } });
    expect(posted.status).toBe(200);
    const read = await call("GET", acct(a, `/debits/${key}`));
    expect(read.json).toMatchObject({ debit_id: key, amount: 3, applied: posted.json.applied });
  });

  it("the actor is the key that debited", async () => {
    const a = uid("lk-actor");
    await grant(a, { amount: 10 });
    const key = await call("POST", "/v1/api-keys", { name: uid("gw"), role: "gateway" });
    expect(key.status).toBe(201);
    expect((await debit(a, 1, { debit_id: "d-gw" })).status).toBe(200);
    const byGateway = await call(
      "POST",
      acct(a, "/debits"),
      { debit_id: "d-by-gw", amount: 1 },
      { token: key.json.key },
    );
    expect(byGateway.status).toBe(200);
    expect((await call("GET", acct(a, "/debits/d-by-gw"))).json.actor).toBe(`${key.json.id}:gateway`);
    expect((await call("GET", acct(a, "/debits/d-gw"))).json.actor).toBe("admin-token:admin");
  });

  it("an unknown debit is 404; so are a refused debit, another account's debit and a hold's id", async () => {
    const a = uid("lk-debit-404");
    const b = uid("lk-debit-404b");
    await grant(a, { amount: 5 });
    await grant(b, { amount: 5 });
    expect((await debit(b, 1, { debit_id: "d-b" })).status).toBe(200);
    expectProblem(await debit(a, 50, { debit_id: "d-short" }), 402, "insufficient_credits");
    expect((await call("POST", acct(a, "/holds"), { hold_id: "h-x", amount: 1 })).status).toBe(201);
    for (const id of ["d-never", "d-short", "d-b", "h-x"]) {
      const res = await call("GET", acct(a, `/debits/${id}`));
      expectProblem(res, 404, "not_found");
    }
  });

  it("the same debit_id and body replays; another body is 409 and the record keeps the first", async () => {
    const a = uid("lk-debit-idem");
    await grant(a, { amount: 50 });
    const body = { debit_id: "d-once", amount: 4, metadata: { order: "o-1" } };
    const first = await call("POST", acct(a, "/debits"), body);
    expect(first.status).toBe(200);
    const record = await call("GET", acct(a, "/debits/d-once"));

    const replay = await call("POST", acct(a, "/debits"), {
      metadata: { order: "o-1" },
      amount: 4,
      debit_id: "d-once",
    });
    expect(replay.status).toBe(200);
    expect(replay.headers.get("idempotent-replayed")).toBe("true");
    expect(replay.text).toBe(first.text);

    for (const other of [
      { ...body, metadata: { order: "o-2" } },
      { ...body, metadata: undefined },
      { ...body, amount: 5 },
    ]) {
      expectProblem(await call("POST", acct(a, "/debits"), other), 409, "idempotency_conflict");
    }
    expect((await call("GET", acct(a, "/debits/d-once"))).text).toBe(record.text);
    expect((await call("GET", acct(a, "/balance"))).json.available).toBe(46);
    expect((await ledgerEntries(a)).filter((e) => e.kind === "debit")).toHaveLength(1);
  });
});

describe("write responses carry the *_more flags", () => {
  it("every balance in a write answer has expiring_more and pending_more; draws have applied_more", async () => {
    const a = uid("lk-flags");
    const g = await grant(a, { grant_id: "g-main", amount: 100, expires_at: at(5 * DAY) });
    const d = await debit(a, 1);
    const h = await call("POST", acct(a, "/holds"), { hold_id: "h-f", amount: 2 });
    const cap = await call("POST", acct(a, "/holds/h-f/capture"), {});
    const h2 = await call("POST", acct(a, "/holds"), { hold_id: "h-g", amount: 2 });
    const rel = await call("POST", acct(a, "/holds/h-g/release"));
    const r = await call("POST", acct(a, "/receipts"), { receipt_id: "r-f", amount: 3 });
    const s = await call("POST", "/v1/receipts/settle", { receipt: r.json.receipt, used: 1 });
    await grant(a, { grant_id: "g-void", amount: 1 });
    const v = await call("POST", acct(a, "/grants/g-void/void"), {});
    const read = await call("GET", acct(a, "/balance"));
    const answers = { debit: d, hold: h, capture: cap, hold2: h2, release: rel, receipt: r, settle: s, void: v };
    const balances: [string, any][] = [
      ["grant", g.balance],
      ["read", read.json],
    ];
    for (const [name, res] of Object.entries(answers)) {
      expect(res.status, `${name}: ${res.text}`).toBeLessThan(300);
      balances.push([name, res.json.balance]);
    }
    for (const [name, balance] of balances) {
      expect(balance, name).toMatchObject({ expiring_more: false, pending_more: false });
      expect(balance.expiring, name).toHaveLength(1);
    }
    for (const [name, body] of Object.entries({ debit: d.json, hold: h.json, receipt: r.json })) {
      expect(body.applied_more, name).toBe(false);
      expect(body.applied, name).toEqual([{ grant_id: "g-main", type: "purchased", amount: body.amount }]);
    }
  });

  it("more than 10 pending lots: a write answer lists 10 and says pending_more; a read lists them all", async () => {
    const a = uid("lk-pending");
    await grant(a, { grant_id: "now", amount: 5 });
    const future: string[] = [];
    let last: any = null;
    for (let i = 0; i < 11; i++) {
      const id = `p-${String(i).padStart(2, "0")}`;
      future.push(id);
      last = await grant(a, { grant_id: id, amount: 1, effective_at: at((i + 1) * DAY) });
    }
    expect(last.balance.pending.map((p: any) => p.grant_id)).toEqual(future.slice(0, 10));
    expect(last.balance.pending_more).toBe(true);
    const d = await debit(a, 1);
    expect(d.json.balance.pending).toHaveLength(10);
    expect(d.json.balance.pending_more).toBe(true);
    const read = (await call("GET", acct(a, "/balance"))).json;
    expect(read.pending.map((p: any) => p.grant_id)).toEqual(future);
    expect(read.pending_more).toBe(false);
  });
});

describe("who may read", () => {
  const A = uid("lk-roles");
  const keys: Record<string, string> = {};

  beforeAll(async () => {
    await grant(A, { grant_id: "g-r", amount: 50 });
    expect((await debit(A, 2, { debit_id: "d-r", metadata: { who: "roles" } })).status).toBe(200);
    expect((await call("POST", acct(A, "/holds"), { hold_id: "h-r", amount: 3 })).status).toBe(201);
    for (const role of ["gateway", "viewer", "finance", "support", "marketing"]) {
      const res = await call("POST", "/v1/api-keys", { name: uid(role), role });
      expect(res.status).toBe(201);
      keys[role] = res.json.key;
    }
  });

  const READS = ["/grants", "/grants/g-r", "/debits/d-r", "/holds", "/holds/h-r"];

  it("a gateway key may read holds but not grants or debits (403 forbidden)", async () => {
    for (const rest of READS) {
      const admin = await call("GET", acct(A, rest));
      expect(admin.status, rest).toBe(200);
      const res = await call("GET", acct(A, rest), undefined, { token: keys.gateway });
      if (rest.startsWith("/holds")) {
        expect(res.status, rest).toBe(200);
        expect(res.text, rest).toBe(admin.text);
      } else {
        expectProblem(res, 403, "forbidden");
      }
    }
  });

  it("viewer, finance, support and marketing keys read all of them, as the admin does", async () => {
    for (const role of ["viewer", "finance", "support", "marketing"]) {
      for (const rest of READS) {
        const admin = await call("GET", acct(A, rest));
        const res = await call("GET", acct(A, rest), undefined, { token: keys[role] });
        expect(res.status, `${role} ${rest}`).toBe(200);
        expect(res.text, `${role} ${rest}`).toBe(admin.text);
      }
    }
  });
});
