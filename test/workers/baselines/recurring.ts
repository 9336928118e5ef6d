/** Baselines of the recurring routes for unicode.security.test.ts (see ./types.ts). */
import type { BaselineArea } from "./types";

export const recurring: BaselineArea = {
  rows: {},
};
