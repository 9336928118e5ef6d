/** Baselines of the referrals routes for unicode.security.test.ts (see ./types.ts). */
import type { BaselineArea } from "./types";

export const referrals: BaselineArea = {
  rows: {},
};
