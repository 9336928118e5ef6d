/**
 * Bad input on units, rates, meters and metered debits/holds/receipts: each
 * refusal is RFC 9457 with its stable code, and changes nothing (no unit,
 * rate or version written, no credits moved, no audit row).
 */
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { balance, call, expectProblem, grant, ledgerEntries, uid } from "./helpers";

const unitName = () =>
  uid("u")
    .replace(/[^a-z0-9]/g, "_")
    .slice(0, 32)
    .replace(/^[^a-z]/, "u");

async function auditCount(target: string): Promise<number> {
  const row = await env.DB.prepare("SELECT COUNT(*) AS n FROM audit_events WHERE target = ?")
    .bind(target)
    .first<{ n: number }>();
  return Number(row?.n ?? 0);
}

async function versions(meter: string): Promise<number> {
  const row = await env.DB.prepare("SELECT COUNT(*) AS n FROM meter_versions WHERE meter = ?")
    .bind(meter)
    .first<{ n: number }>();
  return Number(row?.n ?? 0);
}

describe("units and rates refuse bad input", () => {
  it("refuses bad unit bodies and paths, writing nothing", async () => {
    const u = unitName();
    const bad: [unknown, string][] = [
      [{ name: "x", scale: 19 }, "invalid_request"],
      [{ name: "x", scale: -1 }, "invalid_request"],
      [{ name: "x", scale: 1.5 }, "invalid_request"],
      [{ name: "x", scale: "2" }, "invalid_request"],
      [{ name: "", scale: 0 }, "invalid_request"],
      [{ scale: 0 }, "invalid_request"],
      [{ name: "x", scale: 0, extra: 1 }, "invalid_request"],
      [{ name: "x", scale: 0, list_price: { amount: 1, currency: "usd", per: 1 } }, "invalid_request"],
      [{ name: "x", scale: 0, list_price: { amount: 0, currency: "USD", per: 1 } }, "invalid_amount"],
      [{ name: "x", scale: 0, list_price: { amount: 1, currency: "USD", per: 1, x: 1 } }, "invalid_request"],
    ];
    for (const [body, code] of bad) expectProblem(await call("PUT", `/v1/units/${u}`, body), 400, code);
    expectProblem(await call("PUT", "/v1/units/Bad-Unit", { name: "x", scale: 0 }), 400, "invalid_request");
    expectProblem(await call("PUT", `/v1/units/${u}`, undefined, { raw: "{" }), 400, "invalid_json");
    const list = await call("GET", "/v1/units");
    expect(list.json.units.some((x: { unit: string }) => x.unit === u)).toBe(false);
    expect(await auditCount(u)).toBe(0);
  });

  it("refuses rates between undefined or equal units and bad terms", async () => {
    const u = unitName();
    const ghost = unitName();
    await call("PUT", `/v1/units/${u}`, { name: "x", scale: 0 });
    expectProblem(
      await call("PUT", `/v1/rates/${u}/${ghost}`, { numerator: 1, denominator: 1 }),
      400,
      "invalid_request",
    );
    expectProblem(await call("PUT", `/v1/rates/${u}/${u}`, { numerator: 1, denominator: 1 }), 400, "invalid_request");
    for (const body of [
      { numerator: 0, denominator: 1 },
      { numerator: 1, denominator: -2 },
      { numerator: 1.5, denominator: 1 },
      { numerator: 2 ** 53, denominator: 1 },
      { numerator: "1", denominator: 1 },
      { numerator: 1 },
      { numerator: 1, denominator: 1, x: 1 },
    ]) {
      expectProblem(await call("PUT", `/v1/rates/${u}/credits`, body), 400, "invalid_request");
    }
    expectProblem(await call("DELETE", `/v1/rates/${u}/credits`), 404, "not_found");
    const rates = await call("GET", "/v1/rates");
    expect(rates.json.rates.some((r: { from: string }) => r.from === u)).toBe(false);
    expect(await auditCount(`${u}:credits`)).toBe(0);
  });

  it("lets only admin write and only readers read the catalogue", async () => {
    const gw = await call("POST", "/v1/api-keys", { name: uid("gw"), role: "gateway" });
    const fin = await call("POST", "/v1/api-keys", { name: uid("fin"), role: "finance" });
    const u = unitName();
    expectProblem(
      await call("PUT", `/v1/units/${u}`, { name: "x", scale: 0 }, { token: fin.json.key }),
      403,
      "forbidden",
    );
    expectProblem(
      await call("PUT", `/v1/meters/${uid("m")}`, { price: { amount: 1, per: 1 } }, { token: fin.json.key }),
      403,
      "forbidden",
    );
    expectProblem(
      await call("PUT", "/v1/rates/credits/x", { numerator: 1, denominator: 1 }, { token: fin.json.key }),
      403,
      "forbidden",
    );
    expect((await call("GET", "/v1/units", undefined, { token: fin.json.key })).status).toBe(200);
    expectProblem(await call("GET", "/v1/units", undefined, { token: gw.json.key }), 403, "forbidden");
    expectProblem(await call("GET", "/v1/units", undefined, { token: null }), 401, "unauthorized");
  });
});

describe("meters refuse bad input", () => {
  it("refuses bad prices, unknown units and a change of unit, writing no version", async () => {
    const m = uid("m");
    for (const [body, code] of [
      [{ price: { amount: 0, per: 1 } }, "invalid_amount"],
      [{ price: { amount: 1, per: 0 } }, "invalid_request"],
      [{ price: { amount: 1.5, per: 1 } }, "invalid_amount"],
      [{ price: { amount: 1 } }, "invalid_request"],
      [{ price: { amount: 1, per: 1 }, x: 1 }, "invalid_request"],
      [{ unit: "Credits", price: { amount: 1, per: 1 } }, "invalid_request"],
      [{ unit: unitName(), price: { amount: 1, per: 1 } }, "invalid_request"],
    ] as const) {
      expectProblem(await call("PUT", `/v1/meters/${m}`, body), 400, code);
    }
    expect(await versions(m)).toBe(0);
    expectProblem(await call("GET", `/v1/meters/${m}`), 404, "not_found");
    expectProblem(await call("GET", "/v1/meters/bad%20id"), 400, "invalid_request");
    await call("PUT", `/v1/meters/${m}`, { price: { amount: 1, per: 1 } });
    const u = unitName();
    await call("PUT", `/v1/units/${u}`, { name: "x", scale: 0 });
    expectProblem(
      await call("PUT", `/v1/meters/${m}`, { unit: u, price: { amount: 2, per: 1 } }),
      400,
      "invalid_request",
    );
    expect(await versions(m)).toBe(1);
    expect(await auditCount(m)).toBe(1);
  });

  it("refuses metered debits, holds and receipts that break the rules, moving nothing", async () => {
    const a = uid();
    const m = uid("tokens");
    await call("PUT", `/v1/meters/${m}`, { unit: "credits", price: { amount: 3, per: 1000 } });
    await grant(a, { amount: 100 });
    const before = await ledgerEntries(a);
    const bodies: [Record<string, unknown>, string][] = [
      [{ amount: 3, meter: m, quantity: 1 }, "invalid_request"],
      [{ amount: 3, quantity: 1 }, "invalid_request"],
      [{ meter: m }, "invalid_request"],
      [{ quantity: 5 }, "invalid_request"],
      [{}, "invalid_request"],
      [{ meter: uid("nope"), quantity: 1 }, "invalid_request"],
      [{ meter: m, quantity: 1, unit: "gpu_seconds" }, "invalid_request"],
      [{ meter: m, quantity: 0 }, "invalid_request"],
      [{ meter: m, quantity: -1 }, "invalid_request"],
      [{ meter: m, quantity: 1.5 }, "invalid_request"],
      [{ meter: m, quantity: "10" }, "invalid_request"],
      [{ meter: m, quantity: 2 ** 53 }, "invalid_request"],
      [{ meter: "bad id", quantity: 1 }, "invalid_request"],
      // (2^53 − 1) tokens at 3 per 1 000 ≈ 2.7·10^13 credits: in range, but more than the 100 held -> 402 below.
    ];
    for (const path of ["debits", "holds", "receipts"]) {
      const idField = path === "debits" ? "debit_id" : path === "holds" ? "hold_id" : "receipt_id";
      for (const [body, code] of bodies) {
        expectProblem(await call("POST", `/v1/accounts/${a}/${path}`, { [idField]: uid("x"), ...body }), 400, code);
      }
      const huge = await call("POST", `/v1/accounts/${a}/${path}`, {
        [idField]: uid("x"),
        meter: m,
        quantity: Number.MAX_SAFE_INTEGER,
      });
      expectProblem(huge, 402, "insufficient_credits");
      // ceil((2^53 − 1) · 3 / 1 000) = 27 021 597 764 223 credits requested.
      expect(huge.json.requested).toBe(27_021_597_764_223);
    }
    // A price that makes the charge pass 10^15 is invalid_amount, not a silent cap.
    const dear = uid("dear");
    await call("PUT", `/v1/meters/${dear}`, { price: { amount: 1_000_000_000_000_000, per: 1 } });
    expectProblem(
      await call("POST", `/v1/accounts/${a}/debits`, { debit_id: uid("x"), meter: dear, quantity: 2 }),
      400,
      "invalid_amount",
    );
    expect(await ledgerEntries(a)).toEqual(before);
    expect((await balance(a)).available).toBe(100);
  });
});
