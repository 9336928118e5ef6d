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
 * Teardown stops the process group (SIGTERM, then SIGKILL) and deletes the temp dir, also
 * when tests fail; set CG_E2E_KEEP=1 to keep the dir for a post-mortem. A process exit
 * without teardown still SIGKILLs the group. Suites share this one gate, so each test
 * uses its own account ids.
 */
import { createWriteStream } from "node:fs";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { TestProject } from "vitest/node";
import { formatDevVars, generateAdminToken, generateSigningJwk, newKid } from "../../scripts/lib/devvars.mjs";
import {
  applyLocalMigrations,
  freePort,
  startWranglerDev,
  stopWrangler,
  waitForHealth,
} from "../../scripts/lib/wrangler.mjs";

declare module "vitest" {
  export interface ProvidedContext {
    gateUrl: string;
    adminToken: string;
    signingJwks: string;
  }
}

async function logTail(path: string, lines = 60): Promise<string> {
  try {
    return (await readFile(path, "utf8")).split("\n").slice(-lines).join("\n");
  } catch {
    return "(no wrangler output)";
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const dir = await mkdtemp(join(tmpdir(), "credit-gate-e2e-"));
  const persistTo = join(dir, "state");
  const envFile = join(dir, "e2e.env");
  const logPath = join(dir, "wrangler.log");
  const cleanupDir = async () => {
    if (process.env.CG_E2E_KEEP === "1") console.log(`[e2e] kept ${dir}`);
    else await rm(dir, { recursive: true, force: true });
  };

  const adminToken = generateAdminToken();
  const signingJwks = JSON.stringify({ keys: [await generateSigningJwk(newKid("e2e"))] });
  await writeFile(
    envFile,
    formatDevVars({ ADMIN_TOKEN: adminToken, RECEIPT_SIGNING_KEYS: signingJwks }, "e2e secrets"),
    { mode: 0o600 },
  );

  try {
    await applyLocalMigrations({ persistTo });
  } catch (e) {
    await cleanupDir();
    throw e;
  }

  const port = await freePort();
  const gateUrl = `http://127.0.0.1:${port}`;
  const child = startWranglerDev({
    port,
    persistTo,
    envFile,
    inspectorPort: await freePort(),
    detached: true,
    stdio: "pipe",
  });
  const log = createWriteStream(logPath);
  child.stdout?.pipe(log);
  child.stderr?.pipe(log);
  // Last resort when the runner dies without teardown: never leave a workerd behind.
  const killOnExit = () => {
    try {
      if (child.pid !== undefined) process.kill(-child.pid, "SIGKILL");
    } catch {
      // already gone
    }
  };
  process.once("exit", killOnExit);

  const teardown = async () => {
    await stopWrangler(child);
    process.off("exit", killOnExit);
    log.end();
    await cleanupDir();
  };

  try {
    await waitForHealth(gateUrl, { child, timeoutMs: 120_000 });
  } catch (e) {
    const tail = await logTail(logPath);
    await teardown();
    throw new Error(`${e instanceof Error ? e.message : String(e)}\n--- wrangler output ---\n${tail}`);
  }

  project.provide("gateUrl", gateUrl);
  project.provide("adminToken", adminToken);
  project.provide("signingJwks", signingJwks);
  return teardown;
}
