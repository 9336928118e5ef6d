/** Baselines of the approvals routes for unicode.security.test.ts (see ./types.ts). */
import type { BaselineArea } from "./types";

export const approvals: BaselineArea = { rows: {} };
