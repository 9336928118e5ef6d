#!/usr/bin/env node
/**
 * `npm run rotate-key`: rotates the local receipt signing key in .dev.vars.
 * A new ES256 key goes FIRST (it signs from the next start of `wrangler dev`);
 * the previous keys stay in the set so receipts they signed keep verifying and
 * settling until they are past exp + 300 s. Keys beyond `--keep` (default 3)
 * are dropped, oldest first.
 *
 *   npm run rotate-key               # new key first, keep at most 3
 *   npm run rotate-key -- --keep 2   # new key first, keep at most 2
 *
 * Production does the same with `wrangler secret put RECEIPT_SIGNING_KEYS`
 * (see docs/receipts.md).
 */
import { relative } from "node:path";
import { DEV_VARS_PATH, generateSigningJwk, newKid, readDevVars, writeDevVars } from "./lib/devvars.mjs";

function keepFromArgs(argv) {
  const i = argv.indexOf("--keep");
  if (i < 0) return 3;
  const n = Number(argv[i + 1]);
  if (!Number.isInteger(n) || n < 2 || n > 16) {
    console.error("--keep must be an integer from 2 to 16 (the new key and at least one retired key)");
    process.exit(2);
  }
  return n;
}

async function main() {
  const keep = keepFromArgs(process.argv.slice(2));
  const where = relative(process.cwd(), DEV_VARS_PATH) || ".dev.vars";
  const vars = readDevVars();
  if (vars === null) {
    console.error(`${where} does not exist: run \`npm start\` once to create it, then rotate.`);
    process.exit(1);
  }
  let keys = [];
  if (vars.RECEIPT_SIGNING_KEYS) {
    try {
      const set = JSON.parse(vars.RECEIPT_SIGNING_KEYS);
      if (Array.isArray(set.keys)) keys = set.keys;
    } catch {
      console.error(`${where}: RECEIPT_SIGNING_KEYS is not JSON; fix or delete it first.`);
      process.exit(1);
    }
  }
  const fresh = await generateSigningJwk(newKid());
  const next = [fresh, ...keys].slice(0, keep);
  const dropped = [fresh, ...keys].slice(keep);
  writeDevVars({ ...vars, RECEIPT_SIGNING_KEYS: JSON.stringify({ keys: next }) });

  console.log(`Rotated the receipt signing key in ${where}:`);
  console.log(`  signs now:  ${fresh.kid}`);
  for (const k of next.slice(1))
    console.log(`  verifies:   ${k.kid} (retired; remove it once its receipts are past exp + 300 s)`);
  for (const k of dropped) console.log(`  dropped:    ${k.kid} (beyond --keep ${keep})`);
  console.log("Restart `npm start` / `wrangler dev` to load it. /.well-known/jwks.json then lists every key above.");
}

main().catch((e) => {
  console.error(e instanceof Error ? e.message : String(e));
  process.exit(1);
});
