#!/usr/bin/env node
/**
 * `npm start`: a running local gate in one command.
 *   1. creates .dev.vars (admin token + ES256 signing key) if it is missing, never overwriting it;
 *   2. applies the local D1 migrations (no prompt: stdin closed, CI=1);
 *   3. starts `wrangler dev` on 127.0.0.1:$PORT (default 8787);
 *   4. once /v1/health answers, prints the admin token and curl lines that work as printed.
 * Ctrl-C (or SIGTERM) stops wrangler and its workerd.
 */
import { relative } from "node:path";
import { DEV_VARS_PATH, ensureDevVars, REPO_ROOT } from "./lib/devvars.mjs";
import { applyLocalMigrations, portIsFree, startWranglerDev, stopWrangler, waitForHealth } from "./lib/wrangler.mjs";

const HOST = "127.0.0.1";

function portFromEnv() {
  const raw = process.env.PORT ?? "8787";
  const port = Number(raw);
  if (!Number.isInteger(port) || port < 1 || port > 65_535) {
    console.error(`PORT must be an integer from 1 to 65535, got ${JSON.stringify(raw)}`);
    process.exit(2);
  }
  return port;
}

function banner(url, token) {
  const auth = `-H "authorization: Bearer $TOKEN"`;
  const json = `-H 'content-type: application/json'`;
  return `
────────────────────────────────────────────────────────────────────────
 Credit Gate is running at ${url}
 Admin token (from .dev.vars): ${token}
 API docs: ${url}/docs    OpenAPI: ${url}/openapi.json
────────────────────────────────────────────────────────────────────────
 Try it (in another terminal):

  export CG=${url} TOKEN='${token}'

  # grant 1000 promotional credits to account acct_demo (creates the account)
  curl -s -X POST $CG/v1/accounts/acct_demo/grants ${auth} ${json} \\
    -d '{"grant_id":"welcome-1","amount":1000,"type":"promotional","reason":"welcome bonus"}'

  # debit 3 credits (a repeat with the same debit_id replays, it never charges twice)
  curl -s -X POST $CG/v1/accounts/acct_demo/debits ${auth} ${json} \\
    -d '{"debit_id":"req-1","amount":3}'

  # read the balance and the ledger
  curl -s $CG/v1/accounts/acct_demo/balance ${auth}
  curl -s "$CG/v1/accounts/acct_demo/ledger?format=csv" ${auth}

 Ctrl-C stops the gate. State lives in .wrangler/state; secrets in .dev.vars.
────────────────────────────────────────────────────────────────────────
`;
}

async function main() {
  const port = portFromEnv();
  const url = `http://${HOST}:${port}`;
  const where = relative(process.cwd(), DEV_VARS_PATH) || ".dev.vars";

  const { vars, created, problems } = await ensureDevVars();
  if (created) console.log(`Created ${where} with a new ADMIN_TOKEN and an ES256 receipt signing key.`);
  else console.log(`Using the existing ${where}.`);
  for (const p of problems) console.warn(`warning: ${where}: ${p} (delete the file to have a new one generated)`);

  console.log("Applying local D1 migrations…");
  await applyLocalMigrations({ echo: false }).then(
    (out) => console.log(/No migrations to apply/i.test(out) ? "  up to date." : "  applied."),
    (e) => {
      console.error(e.message);
      process.exit(1);
    },
  );

  if (!(await portIsFree(port, HOST))) {
    console.error(`Port ${port} on ${HOST} is in use. Stop what runs there or pick another: PORT=8788 npm start`);
    process.exit(1);
  }

  console.log(`Starting wrangler dev on ${url}…`);
  const child = startWranglerDev({ port, ip: HOST, detached: true, stdio: "inherit" });
  let stopping = false;

  const stop = async (signal) => {
    if (stopping) {
      // A second Ctrl-C: no more patience.
      try {
        process.kill(-(child.pid ?? 0), "SIGKILL");
      } catch {
        // already gone
      }
      return;
    }
    stopping = true;
    console.log(`\n${signal}: stopping wrangler…`);
    await stopWrangler(child);
    process.exit(signal === "SIGINT" ? 130 : 143);
  };
  for (const s of ["SIGINT", "SIGTERM", "SIGHUP"]) process.on(s, () => void stop(s));
  // `npm start` runs us under `sh -c`, which may die on a signal without passing it on:
  // when our parent changes, whoever started us is gone, so stop too.
  const parentPid = process.ppid;
  setInterval(() => {
    if (process.ppid !== parentPid) void stop("SIGTERM");
  }, 1_000);
  // If this process dies on an error, do not leave wrangler running behind it.
  process.on("exit", () => {
    try {
      if (child.exitCode === null) process.kill(-(child.pid ?? 0), "SIGKILL");
    } catch {
      // already gone
    }
  });

  child.on("exit", (code, signal) => {
    if (stopping) return;
    console.error(`wrangler dev exited (code ${code}, signal ${signal}).`);
    process.exit(code ?? 1);
  });

  try {
    await waitForHealth(url, { child });
  } catch (e) {
    if (stopping) return;
    console.error(e instanceof Error ? e.message : String(e));
    await stopWrangler(child);
    process.exit(1);
  }
  console.log(banner(url, vars.ADMIN_TOKEN));
}

process.chdir(REPO_ROOT);
main().catch((e) => {
  console.error(e);
  process.exit(1);
});
