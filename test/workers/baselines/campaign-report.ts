/** Baselines of the campaign-report routes for unicode.security.test.ts (see ./types.ts). */
import type { BaselineArea } from "./types";

export const campaignReport: BaselineArea = {
  rows: {},
};
