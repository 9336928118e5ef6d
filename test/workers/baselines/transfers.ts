/** Baselines of the transfers routes for unicode.security.test.ts (see ./types.ts). */
import type { BaselineArea } from "./types";

export const transfers: BaselineArea = { rows: {} };
