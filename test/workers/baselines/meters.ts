/** Baselines of the units, rates and meters routes for unicode.security.test.ts (see ./types.ts). */
import { call, uid } from "../helpers";
import type { BaselineArea } from "./types";

const unitName = (prefix: string) => `${prefix}_${uid("").replace(/[^a-z0-9]/g, "_")}`.slice(0, 32);

async function ok(res: Promise<{ status: number; text: string }>, what: string): Promise<void> {
  const r = await res;
  if (r.status < 200 || r.status >= 300) throw new Error(`meters baseline setup, ${what}: ${r.status} ${r.text}`);
}

export const meters: BaselineArea = {
  // Per fixture: a unit, one rate to keep and one for DELETE to remove, and a meter.
  setup: async () => {
    const unit = unitName("tok");
    const spare = unitName("gb");
    const meter = uid("tokens-gpt-x");
    await ok(call("PUT", `/v1/units/${unit}`, { name: "Tokens", scale: 0 }), "unit");
    await ok(call("PUT", `/v1/units/${spare}`, { name: "Gigabytes", scale: 0 }), "spare unit");
    await ok(call("PUT", `/v1/rates/${spare}/credits`, { numerator: 10, denominator: 1 }), "rate to delete");
    await ok(call("PUT", `/v1/meters/${meter}`, { unit: "credits", price: { amount: 3, per: 1000 } }), "meter");
    return { meterUnit: unit, meterSpareUnit: spare, meter };
  },
  rows: {
    "PUT /v1/units/{unit}": (f) => ({
      params: { unit: f.extra.meterUnit ?? "" },
      body: { name: "Tokens", scale: 0, list_price: { amount: 2, currency: "USD", per: 1000 } },
    }),
    "GET /v1/units": () => ({}),
    "PUT /v1/rates/{from}/{to}": (f) => ({
      params: { from: f.extra.meterUnit ?? "", to: "credits" },
      body: { numerator: 3, denominator: 1000 },
    }),
    "GET /v1/rates": () => ({}),
    "DELETE /v1/rates/{from}/{to}": (f) => ({ params: { from: f.extra.meterSpareUnit ?? "", to: "credits" } }),
    "PUT /v1/meters/{meter}": (f) => ({
      params: { meter: f.extra.meter ?? "" },
      body: { unit: "credits", price: { amount: 3, per: 1000 } },
    }),
    "GET /v1/meters/{meter}": (f) => ({ params: { meter: f.extra.meter ?? "" } }),
    "GET /v1/meters": () => ({}),
  },
};
