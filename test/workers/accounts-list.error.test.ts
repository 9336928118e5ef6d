/**
 * GET /v1/accounts refuses what its strict query schema does not allow:
 * limits outside 1..ACCOUNT_LIST_MAX, cursors and parent ids that break the
 * id rules, and parameters it does not know, each as 400 problem+json.
 */
import { describe, expect, it } from "vitest";
import { ACCOUNT_LIST_MAX } from "../../src/api/accounts";
import { call, expectProblem } from "./helpers";

const BAD_QUERIES: [string, string][] = [
  ["limit 0", "limit=0"],
  ["limit above the max", `limit=${ACCOUNT_LIST_MAX + 1}`],
  ["limit -1", "limit=-1"],
  ["limit 1.5", "limit=1.5"],
  ["limit abc", "limit=abc"],
  ["empty limit", "limit="],
  ["limit huge", "limit=99999999999"],
  ["after with a space", "after=a%20b"],
  ["after of 129 chars", `after=${"x".repeat(129)}`],
  ["after é", "after=caf%C3%A9"],
  ["empty after", "after="],
  ["after with a slash", "after=a%2Fb"],
  ["parent_id with a space", "parent_id=a%20b"],
  ["empty parent_id", "parent_id="],
  ["unknown parameter cursor", "cursor=abc"],
  ["unknown parameter parent", "parent=abc"],
  ["unknown parameter Limit (case matters)", "Limit=5"],
];

describe("GET /v1/accounts: bad queries", () => {
  it.each(BAD_QUERIES)("%s → 400 invalid_request", async (_name, query) => {
    const res = await call("GET", `/v1/accounts?${query}`);
    expectProblem(res, 400, "invalid_request");
  });

  it("the limits at the edges are accepted", async () => {
    for (const limit of [1, ACCOUNT_LIST_MAX]) {
      expect((await call("GET", `/v1/accounts?limit=${limit}`)).status).toBe(200);
    }
  });

  it("needs a token: 401 unauthorized without one", async () => {
    expectProblem(await call("GET", "/v1/accounts", undefined, { token: null }), 401, "unauthorized");
  });
});
