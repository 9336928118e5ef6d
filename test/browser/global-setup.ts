/**
 * Global setup for the browser suites (vitest.browser.config.ts), once per
 * `npm run test:browser`: a private gate from scripts/lib/wrangler.mjs
 * startLocalGate (a fresh temp dir with its own D1 + DO state, an ADMIN_TOKEN
 * and a one-key ES256 JWK set made for this run, migrations applied, `wrangler
 * dev` on a free loopback port in its own process group, healthy before the
 * tests start), the same contract as test/e2e/global-setup.ts. Provides
 * `gateUrl`, `adminToken` and `signingJwks` (the PRIVATE JWK set, so a test can
 * forge a token the gate would sign, e.g. an expired link) through inject();
 * use gate() from ../e2e/harness.ts. Creates artifacts/screenshots/ for the
 * screenshots the tests take. Teardown stops the process group and deletes the
 * temp dir, also when tests fail; CG_BROWSER_KEEP=1 keeps the dir.
 */
import { mkdir } from "node:fs/promises";
import type { TestProject } from "vitest/node";
import { startLocalGate } from "../../scripts/lib/wrangler.mjs";
import { SCREENSHOT_DIR } from "./paths";

declare module "vitest" {
  export interface ProvidedContext {
    gateUrl: string;
    adminToken: string;
    signingJwks: string;
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  await mkdir(SCREENSHOT_DIR, { recursive: true });
  const keep = process.env.CG_BROWSER_KEEP === "1";
  const gate = await startLocalGate({ label: "browser", keep });
  if (keep) console.log(`[browser] keeping ${gate.dir}`);
  project.provide("gateUrl", gate.url);
  project.provide("adminToken", gate.adminToken);
  project.provide("signingJwks", gate.signingJwks);
  return gate.stop;
}
