#!/usr/bin/env node
/**
 * Writes the README's screenshots: docs/screenshots/customer.png,
 * customer-phone.png, admin.png and admin-phone.png (viewport-size PNGs of the
 * customer and operator views at 1280×800 and 375×812). It runs the browser
 * suite's screenshot test (test/browser/screenshots.browser.test.ts) against a
 * private gate of its own (Debian's Chromium; CHROMIUM_PATH names another),
 * with CG_README_SCREENSHOTS pointing at docs/screenshots, and reports each
 * file's size (each should stay under SCREENSHOT_MAX_BYTES).
 *
 *   node scripts/screenshots.mjs
 */
import { spawnSync } from "node:child_process";
import { statSync } from "node:fs";
import { join } from "node:path";
import { REPO_ROOT } from "./lib/devvars.mjs";

/** A README screenshot should stay this small (bytes); bigger ones are reported. */
const SCREENSHOT_MAX_BYTES = 150_000;
const OUT = join(REPO_ROOT, "docs", "screenshots");
const NAMES = ["customer", "customer-phone", "admin", "admin-phone"];

const run = spawnSync(
  process.execPath,
  [
    join(REPO_ROOT, "node_modules", "vitest", "vitest.mjs"),
    "run",
    "-c",
    "vitest.browser.config.ts",
    "test/browser/screenshots.browser.test.ts",
  ],
  { cwd: REPO_ROOT, stdio: "inherit", env: { ...process.env, CG_README_SCREENSHOTS: OUT } },
);
if (run.status !== 0) {
  console.error(`the screenshot run failed (exit ${run.status}); no screenshot is trustworthy`);
  process.exit(run.status ?? 1);
}
let tooBig = false;
for (const name of NAMES) {
  const path = join(OUT, `${name}.png`);
  const size = statSync(path).size;
  const over = size > SCREENSHOT_MAX_BYTES;
  tooBig ||= over;
  console.log(`${path.slice(REPO_ROOT.length + 1)}  ${size} bytes${over ? `  (over ${SCREENSHOT_MAX_BYTES})` : ""}`);
}
process.exit(tooBig ? 1 : 0);
