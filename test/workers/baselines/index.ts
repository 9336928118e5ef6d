/** Every area's baselines; unicode.security.test.ts merges them with its own rows. */
import { approvals } from "./approvals";
import { campaignReport } from "./campaign-report";
import { campaigns } from "./campaigns";
import { dashboard } from "./dashboard";
import { enterprise } from "./enterprise";
import { imports } from "./imports";
import { meters } from "./meters";
import { metrics } from "./metrics";
import { recurring } from "./recurring";
import { referrals } from "./referrals";
import { replay } from "./replay";
import { topup } from "./topup";
import { transfers } from "./transfers";
import type { BaselineArea } from "./types";
import { usage } from "./usage";

export const AREAS: BaselineArea[] = [
  enterprise,
  transfers,
  usage,
  meters,
  approvals,
  recurring,
  topup,
  campaigns,
  referrals,
  campaignReport,
  dashboard,
  imports,
  metrics,
  replay,
];
