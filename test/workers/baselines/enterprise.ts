/** Baselines of the enterprise routes for unicode.security.test.ts (see ./types.ts). */
import type { BaselineArea } from "./types";

export const enterprise: BaselineArea = {
  rows: {
    "GET /v1/accounts/{account_id}/children": () => ({ query: { after: "a", limit: "10" } }),
  },
};
