/** Baselines of POST /v1/accounts/{id}/replay for unicode.security.test.ts (see ./types.ts). */
import type { BaselineArea } from "./types";

export const replay: BaselineArea = {
  rows: {
    // as_of a second ago: the fixture account exists by then (its setup ran before), and it is not in the future.
    "POST /v1/accounts/{account_id}/replay": () => ({ body: { as_of: new Date(Date.now() - 1000).toISOString() } }),
  },
};
