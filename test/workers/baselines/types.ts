/**
 * The shapes behind unicode.security.test.ts's baselines: a valid request
 * for every operation in /openapi.json, aimed at one fixture. Each area of
 * the API keeps its own rows in a file of this folder (listed in index.ts),
 * with a setup that adds to the fixture what its requests need.
 */

/** What every baseline is aimed at; `extra` holds what the areas' setups made. */
export interface Fixture {
  account: string;
  receipt: string;
  webhookId: string;
  apiKeyId: string;
  runId: string;
  policy: Record<string, unknown>;
  alertSettings: Record<string, unknown>;
  extra: Record<string, string>;
}

export interface Baseline {
  /** Path parameters other than account_id (which is always the fixture's account). */
  params?: Record<string, string>;
  query?: Record<string, string>;
  body?: Record<string, unknown>;
}

export type BaselineRows = Record<string, (f: Fixture) => Baseline>;

/** One area's rows; `setup` runs once per fixture (the test makes two) and returns extras to merge. */
export interface BaselineArea {
  setup?: (f: Omit<Fixture, "extra">) => Promise<Record<string, string>>;
  rows: BaselineRows;
}
