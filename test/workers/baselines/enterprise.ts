/** Baselines of the enterprise routes for unicode.security.test.ts (see ./types.ts). */
import type { BaselineArea } from "./types";

export const enterprise: BaselineArea = { rows: {} };
