/** Baselines of the meters routes for unicode.security.test.ts (see ./types.ts). */
import type { BaselineArea } from "./types";

export const meters: BaselineArea = { rows: {} };
