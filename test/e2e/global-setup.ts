/**
 * Global setup for the Node end-to-end suites (vitest.e2e.config.ts).
 *
 * Contract — what it does, once per `npm run test:e2e`:
 *   1. makes a fresh temp dir (`credit-gate-e2e-*`) holding the whole run: D1 + DO state
 *      (`state/`), the env file with the secrets (`e2e.env`) and wrangler's output (`wrangler.log`);
 *   2. generates secrets for this run only: ADMIN_TOKEN (`cg_admin_…`) and RECEIPT_SIGNING_KEYS,
 *      a JWK set with one fresh private ES256 key (kid `e2e-<date>-<hex>`, alg ES256, use sig);
 *   3. applies the D1 migrations into that state (`wrangler d1 migrations apply DB --local --persist-to`);
 *   4. starts `wrangler dev` on 127.0.0.1:<free port> with `--persist-to` the same state and
 *      `--env-file e2e.env` (so the checkout's .dev.vars and .wrangler/state are never touched),
 *      in its own process group, and waits for GET /v1/health;
 *   5. provides to every test, through vitest's `inject()` (use `gate()` from ./harness.ts):
 *        gateUrl      string  e.g. "http://127.0.0.1:41234" (no trailing slash)
 *        adminToken   string  the bootstrap admin bearer token
 *        signingJwks  string  the PRIVATE JWK set JSON the gate signs with; tests derive
 *                             public keys themselves (drop `d`) for independent verification.
 * (scripts/lib/wrangler.mjs startLocalGate does 1-4.) Teardown stops the process group
 * (SIGTERM, then SIGKILL) and deletes the temp dir, also
 * when tests fail; set CG_E2E_KEEP=1 to keep the dir for a post-mortem. A process exit
 * without teardown still SIGKILLs the group. Suites share this one gate, so each test
 * uses its own account ids.
 */
import type { TestProject } from "vitest/node";
import { startLocalGate } from "../../scripts/lib/wrangler.mjs";

declare module "vitest" {
  export interface ProvidedContext {
    gateUrl: string;
    adminToken: string;
    signingJwks: string;
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const gate = await startLocalGate({ label: "e2e", keep: process.env.CG_E2E_KEEP === "1" });
  if (process.env.CG_E2E_KEEP === "1") console.log(`[e2e] keeping ${gate.dir}`);
  project.provide("gateUrl", gate.url);
  project.provide("adminToken", gate.adminToken);
  project.provide("signingJwks", gate.signingJwks);
  return gate.stop;
}
