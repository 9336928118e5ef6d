/** Baselines of the campaigns routes for unicode.security.test.ts (see ./types.ts). */
import type { BaselineArea } from "./types";

export const campaigns: BaselineArea = {
  rows: {},
};
