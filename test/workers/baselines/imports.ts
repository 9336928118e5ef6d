/**
 * Baselines of the legacy import route for unicode.security.test.ts (see ./types.ts).
 * Its body is NDJSON, which these JSON baselines cannot carry, so the row is
 * the body-less dry run (an empty import: 200, nothing written); the NDJSON
 * lines' own refusals, lone surrogates included, are pinned by
 * test/workers/imports.error.test.ts.
 */
import type { BaselineArea } from "./types";

export const imports: BaselineArea = {
  rows: {
    "POST /v1/imports": () => ({ query: { dry_run: "true" } }),
  },
};
