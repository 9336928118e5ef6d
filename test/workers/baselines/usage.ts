/** Baselines of the usage routes for unicode.security.test.ts (see ./types.ts). */
import { call, uid } from "../helpers";
import type { BaselineArea } from "./types";

const METER = "unicode-usage";

export const usage: BaselineArea = {
  // A meter, so the first event can carry every string field an event has (meter and unit included).
  setup: async () => {
    const res = await call("PUT", `/v1/meters/${METER}`, { unit: "credits", price: { amount: 1, per: 1 } });
    if (res.status >= 300) throw new Error(`usage baseline meter: ${res.status} ${res.text}`);
    return {};
  },
  rows: {
    "POST /v1/usage": (f) => ({
      body: {
        events: [
          {
            event_id: uid("ev"),
            account_id: f.account,
            meter: METER,
            quantity: 1,
            unit: "credits",
            occurred_at: new Date(Date.now() - 1000).toISOString(),
          },
          { event_id: uid("ev"), account_id: f.account, amount: 1 },
        ],
      },
    }),
  },
};
