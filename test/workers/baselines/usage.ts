/** Baselines of the usage routes for unicode.security.test.ts (see ./types.ts). */
import type { BaselineArea } from "./types";

export const usage: BaselineArea = { rows: {} };
