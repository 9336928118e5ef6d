/** Baselines of the dashboard-link route for unicode.security.test.ts (see ./types.ts). */
import type { BaselineArea } from "./types";

export const dashboard: BaselineArea = {
  rows: {
    "POST /v1/accounts/{account_id}/dashboard-links": () => ({ body: { ttl_seconds: 900 } }),
  },
};
