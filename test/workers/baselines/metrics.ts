/** Baselines of the metrics route for unicode.security.test.ts (see ./types.ts). */
import type { BaselineArea } from "./types";

export const metrics: BaselineArea = {
  rows: {
    "GET /v1/metrics": () => ({}),
  },
};
