/** Every area's baselines; unicode.security.test.ts merges them with its own rows. */
import { approvals } from "./approvals";
import { enterprise } from "./enterprise";
import { meters } from "./meters";
import { transfers } from "./transfers";
import type { BaselineArea } from "./types";
import { usage } from "./usage";

export const AREAS: BaselineArea[] = [enterprise, transfers, usage, meters, approvals];
