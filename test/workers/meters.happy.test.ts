/**
 * Units, rates and meters end to end in workerd: the catalogue in local D1
 * (audited), metered debits, holds and receipts priced by a meter's current
 * version, the `rating` member carried through DO SQLite, the outbox to D1,
 * the JSON and CSV exports and the D1 replay, and hash chains that verify.
 * Figures are worked by hand in the comments.
 */
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { entryFromD1 } from "../../src/db/reconciliation";
import { ledgerDb } from "../../src/db/shards";
import { verifyChain } from "../../src/ledger";
import { balance, call, grant, ledgerEntries, runAlarm, uid } from "./helpers";

const unitName = () =>
  uid("u")
    .replace(/[^a-z0-9]/g, "_")
    .slice(0, 32)
    .replace(/^[^a-z]/, "u");

async function putMeter(meter: string, body: Record<string, unknown>) {
  return call("PUT", `/v1/meters/${meter}`, body);
}

async function auditOf(target: string) {
  const { results } = await env.DB.prepare(
    "SELECT action, before, after FROM audit_events WHERE target = ? ORDER BY id",
  )
    .bind(target)
    .all<{ action: string; before: string | null; after: string | null }>();
  return results.map((r) => ({
    action: r.action,
    before: r.before && JSON.parse(r.before),
    after: r.after && JSON.parse(r.after),
  }));
}

describe("units and rates", () => {
  it("defines, lists and replaces units; credits always exists", async () => {
    const u = unitName();
    const created = await call("PUT", `/v1/units/${u}`, {
      name: "GPU seconds",
      scale: 0,
      list_price: { amount: 5, currency: "USD", per: 100 },
    });
    expect(created.status).toBe(201);
    expect(created.json).toMatchObject({
      unit: u,
      name: "GPU seconds",
      scale: 0,
      list_price: { amount: 5, currency: "USD", per: 100 },
    });
    const replaced = await call("PUT", `/v1/units/${u}`, { name: "GPU s", scale: 3 });
    expect(replaced.status).toBe(200);
    expect(replaced.json).toMatchObject({
      unit: u,
      name: "GPU s",
      scale: 3,
      list_price: null,
      created_at: created.json.created_at,
    });
    const list = await call("GET", "/v1/units");
    expect(list.status).toBe(200);
    const names = list.json.units.map((x: { unit: string }) => x.unit);
    expect(names).toContain(u);
    expect(names).toContain("credits");
    expect([...names].sort()).toEqual(names);
    expect(await auditOf(u)).toEqual([
      { action: "unit.created", before: null, after: created.json },
      { action: "unit.updated", before: created.json, after: replaced.json },
    ]);
  });

  it("sets, lists and deletes a rate between two defined units, audited", async () => {
    const u = unitName();
    await call("PUT", `/v1/units/${u}`, { name: "tokens", scale: 0 });
    const set = await call("PUT", `/v1/rates/${u}/credits`, { numerator: 3, denominator: 1000 });
    expect(set.status).toBe(201);
    expect(set.json).toMatchObject({ from: u, to: "credits", numerator: 3, denominator: 1000 });
    const again = await call("PUT", `/v1/rates/${u}/credits`, { numerator: 1, denominator: 500 });
    expect(again.status).toBe(200);
    const list = await call("GET", "/v1/rates");
    expect(list.json.rates.filter((r: { from: string }) => r.from === u)).toEqual([again.json]);
    const removed = await call("DELETE", `/v1/rates/${u}/credits`);
    expect(removed.status).toBe(200);
    expect(removed.json).toMatchObject({ numerator: 1, denominator: 500 });
    const gone = await call("GET", "/v1/rates");
    expect(gone.json.rates.some((r: { from: string }) => r.from === u)).toBe(false);
    expect((await auditOf(`${u}:credits`)).map((e) => e.action)).toEqual([
      "rate.created",
      "rate.updated",
      "rate.deleted",
    ]);
  });
});

describe("meters", () => {
  it("versions a price only when it changes, and shows the history newest first", async () => {
    const m = uid("tokens-gpt-x");
    const v1 = await putMeter(m, { unit: "credits", price: { amount: 3, per: 1000 } });
    expect(v1.status).toBe(201);
    expect(v1.json).toMatchObject({ meter: m, version: 1, unit: "credits", price: { amount: 3, per: 1000 } });
    const same = await putMeter(m, { unit: "credits", price: { amount: 3, per: 1000 } });
    expect(same.status).toBe(200);
    expect(same.json).toEqual(v1.json);
    // 6 per 2 000 is the same rate but not the same price terms: a new version.
    const v2 = await putMeter(m, { price: { amount: 6, per: 2000 } });
    expect(v2.status).toBe(200);
    expect(v2.json).toMatchObject({ version: 2, unit: "credits", price: { amount: 6, per: 2000 } });
    const got = await call("GET", `/v1/meters/${m}`);
    expect(got.status).toBe(200);
    expect(got.json).toMatchObject({ meter: m, version: 2, history_more: false });
    expect(got.json.history.map((h: { version: number }) => h.version)).toEqual([2, 1]);
    const list = await call("GET", "/v1/meters");
    expect(list.json.meters.filter((x: { meter: string }) => x.meter === m)).toEqual([v2.json]);
    expect((await auditOf(m)).map((e) => e.action)).toEqual(["meter.created", "meter.updated"]);
  });

  it("debits by meter: rounded up per request, recorded on the entries, explained after a price change", async () => {
    const a = uid();
    const m = uid("tokens-gpt-x");
    await putMeter(m, { unit: "credits", price: { amount: 3, per: 1000 } });
    await grant(a, { grant_id: "g1", amount: 10, priority: 1 });
    await grant(a, { grant_id: "g2", amount: 100, priority: 2 });
    // 2 500 tokens at 3 per 1 000 = 7.5 -> 8 credits, all from g1 (10 -> 2).
    const first = await call("POST", `/v1/accounts/${a}/debits`, { debit_id: "d1", meter: m, quantity: 2500 });
    expect(first.status).toBe(200);
    expect(first.json).toMatchObject({
      debit_id: "d1",
      amount: 8,
      unit: "credits",
      meter: m,
      quantity: 2500,
      price_version: 1,
      applied: [{ grant_id: "g1", amount: 8 }],
    });
    expect(first.json.balance.available).toBe(102);
    // The price doubles: 4 per 1 000. 1 000 tokens = 4 credits: 2 from g1, 2 from g2.
    await putMeter(m, { unit: "credits", price: { amount: 4, per: 1000 } });
    const second = await call("POST", `/v1/accounts/${a}/debits`, { debit_id: "d2", meter: m, quantity: 1000 });
    expect(second.json).toMatchObject({
      amount: 4,
      price_version: 2,
      applied: [
        { grant_id: "g1", amount: 2 },
        { grant_id: "g2", amount: 2 },
      ],
    });
    // The same body again replays the first answer, even though the price moved.
    const replay = await call("POST", `/v1/accounts/${a}/debits`, { debit_id: "d1", meter: m, quantity: 2500 });
    expect(replay.headers.get("idempotent-replayed")).toBe("true");
    expect(replay.json).toEqual(first.json);
    // A plain debit still has no rating member anywhere.
    const plain = await call("POST", `/v1/accounts/${a}/debits`, { debit_id: "d3", amount: 1 });
    expect(plain.status).toBe(200);
    expect(Object.hasOwn(plain.json, "meter")).toBe(false);
    expect((await balance(a)).available).toBe(110 - 8 - 4 - 1);

    const entries = await ledgerEntries(a);
    expect(verifyChain(entries)).toBeNull();
    const byRef = (ref: string) => entries.filter((e) => e.ref === ref);
    expect(byRef("d1").map((e) => [e.amount, e.rating])).toEqual([
      [-8, { meter: m, quantity: 2500, price_version: 1 }],
    ]);
    expect(byRef("d2").map((e) => e.rating)).toEqual([
      { meter: m, quantity: 1000, price_version: 2 },
      { meter: m, quantity: 1000, price_version: 2 },
    ]);
    for (const e of [...byRef("d3"), ...entries.filter((x) => x.kind === "grant")])
      expect(Object.hasOwn(e, "rating")).toBe(false);
    // GET …/debits/{id} says how each was rated; a plain debit has no such members.
    const recorded = await call("GET", `/v1/accounts/${a}/debits/d2`);
    expect(recorded.json).toMatchObject({ amount: 4, meter: m, quantity: 1000, price_version: 2 });
    expect(Object.hasOwn((await call("GET", `/v1/accounts/${a}/debits/d3`)).json, "meter")).toBe(false);
    // The version named on d1's entry still says what it cost: 3 per 1 000.
    const history = await call("GET", `/v1/meters/${m}`);
    expect(history.json.history.find((h: { version: number }) => h.version === 1).price).toEqual({
      amount: 3,
      per: 1000,
    });

    // Shipped to D1 with the rating, and rebuilt from D1 exactly (what reconciliation hashes).
    await runAlarm(a);
    const { results } = await ledgerDb(env, a)
      .prepare("SELECT * FROM ledger_entries WHERE account_id = ? ORDER BY seq")
      .bind(a)
      .all();
    const fromD1 = results.map((r) => entryFromD1(r as unknown as Parameters<typeof entryFromD1>[0]));
    expect(fromD1).toEqual(entries);
    expect(verifyChain(fromD1)).toBeNull();
    expect(results.filter((r) => r.rating_meter === m).map((r) => [r.rating_quantity, r.rating_price_version])).toEqual(
      [
        [2500, 1],
        [1000, 2],
        [1000, 2],
      ],
    );

    // CSV carries rating and conversion as six trailing columns when asked, empty where absent.
    const plainCsv = await call("GET", `/v1/accounts/${a}/ledger?format=csv`);
    expect(plainCsv.text.split("\r\n")[0]?.endsWith(",prev_hash,hash")).toBe(true);
    const csv = await call("GET", `/v1/accounts/${a}/ledger?format=csv&rating_columns=true`);
    const lines = csv.text.trim().split("\r\n");
    expect(
      lines[0]?.endsWith(
        ",hash,rating_meter,rating_quantity,rating_price_version,conversion_to_unit,conversion_numerator,conversion_denominator",
      ),
    ).toBe(true);
    const d1Line = lines.find((l) => l.includes(",d1,"));
    expect(d1Line?.endsWith(`,${m},2500,1,,,`)).toBe(true);
    const grantLine = lines.find((l) => l.includes(",grant,"));
    expect(grantLine?.endsWith(",,,,,,")).toBe(true);
  });

  it("holds and receipts by meter record the rating on their reserving entries", async () => {
    const a = uid();
    const gpu = unitName();
    await call("PUT", `/v1/units/${gpu}`, { name: "GPU seconds", scale: 0 });
    const m = uid("gpu-a100");
    // 2 GPU seconds per 1 second of job time.
    await putMeter(m, { unit: gpu, price: { amount: 2, per: 1 } });
    await grant(a, { grant_id: "g1", amount: 1000, unit: gpu });
    const hold = await call("POST", `/v1/accounts/${a}/holds`, { hold_id: "h1", meter: m, quantity: 90 });
    expect(hold.status).toBe(201);
    // 90 s · 2 = 180 GPU seconds held.
    expect(hold.json).toMatchObject({
      hold_id: "h1",
      amount: 180,
      unit: gpu,
      meter: m,
      quantity: 90,
      price_version: 1,
    });
    expect(hold.json.balance).toMatchObject({ unit: gpu, available: 820, held: 180 });
    const capture = await call("POST", `/v1/accounts/${a}/holds/h1/capture`, { amount: 100 });
    expect(capture.json).toMatchObject({ captured: 100, released: 80 });
    const receipt = await call("POST", `/v1/accounts/${a}/receipts`, {
      receipt_id: "r1",
      meter: m,
      quantity: 10,
      unit: gpu,
    });
    expect(receipt.status).toBe(201);
    expect(receipt.json).toMatchObject({ amount: 20, unit: gpu, meter: m, quantity: 10, price_version: 1 });
    // The signed token carries the priced amount and the meter's unit.
    const claims = JSON.parse(atob(receipt.json.receipt.split(".")[1].replace(/-/g, "+").replace(/_/g, "/")));
    expect(claims).toMatchObject({ amt: 20, unit: gpu });
    const entries = await ledgerEntries(a);
    expect(verifyChain(entries)).toBeNull();
    expect(entries.filter((e) => e.rating).map((e) => [e.kind, e.held_delta, e.rating.quantity])).toEqual([
      ["hold", 180, 90],
      ["receipt", 20, 10],
    ]);
    expect((await balance(a, gpu)).available).toBe(1000 - 100 - 20);
  });
});
