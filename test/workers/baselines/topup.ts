/** Baselines of the topup routes for unicode.security.test.ts (see ./types.ts). */
import type { BaselineArea } from "./types";

export const topup: BaselineArea = {
  rows: {},
};
