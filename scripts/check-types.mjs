#!/usr/bin/env node
/**
 * `npm run types:check`: fails when worker-configuration.d.ts no longer
 * matches wrangler.toml. It regenerates the file exactly as `npm run types`
 * does and compares. (`wrangler types --check` in wrangler 4.86 reads
 * .dev.vars rather than --env-file, so it disagrees on a fresh clone.)
 */
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { REPO_ROOT } from "./lib/devvars.mjs";
import { runWrangler } from "./lib/wrangler.mjs";

const path = join(REPO_ROOT, "worker-configuration.d.ts");
const committed = readFileSync(path, "utf8");
const result = await runWrangler(["types", "--env-file", ".dev.vars.example", "--strict-vars=false"]);
if (result.code !== 0) {
  console.error(result.output);
  process.exit(1);
}
const fresh = readFileSync(path, "utf8");
if (fresh !== committed) {
  writeFileSync(path, committed);
  console.error("worker-configuration.d.ts is out of date: run `npm run types` and commit it.");
  process.exit(1);
}
console.log("worker-configuration.d.ts matches wrangler.toml.");
