/**
 * Model-based testing (fast-check `commands`) of the real Durable Objects in
 * workerd against the plain reference model in test/support/ledger-model.ts,
 * compared after EVERY command (model-real.ts: balances per unit, by type,
 * held, awaiting, entry count, budget used; every FULL_CHECK_EVERY commands and
 * at the end: the hash chain re-verified independently, each lot, and the
 * cost basis left from the revenue report).
 *
 * Three accounts: 0 is a parent, 1 its child with a monthly budget, 2 stands
 * alone. `npm test` runs a short fixed-seed run; `npm run test:long` the same
 * with MODEL_RUNS runs and a random seed (vitest.long.config.ts).
 */
import { env } from "cloudflare:workers";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { ALL_SORT_KEYS, CREDIT_TYPES, LedgerModel } from "../support/ledger-model";
import { call, uid } from "./helpers";
import { Advance, Close, Debit, Grant, Refund, Reserve, Restart, SetPolicy, Settle, Void } from "./model-commands";
import { Activate, AwaitGrant, Recurring } from "./model-life";
import { Invoice, InvoiceVoid, Transfer, Usage } from "./model-moves";
import { compareFull, type Real, totals, UNITS } from "./model-real";

const vars = env as unknown as { MODEL_RUNS?: string; MODEL_SEED?: string };
const LONG = vars.MODEL_RUNS !== undefined && vars.MODEL_RUNS !== "";
const RUNS = LONG ? Number(vars.MODEL_RUNS) : 12;
const SEED = LONG && vars.MODEL_SEED ? Number(vars.MODEL_SEED) : LONG ? Date.now() % 2 ** 31 : 20261201;
const MAX_COMMANDS = LONG ? 60 : 30;
const BUDGET_LIMIT = 300;

const acct = fc.integer({ min: 0, max: 2 });
const unit = fc.constantFrom(...UNITS, "credits");
const small = fc.oneof({ weight: 4, arbitrary: fc.integer({ min: 1, max: 60 }) }, fc.integer({ min: 1, max: 400 }));

const grantCmd = fc
  .tuple(
    acct,
    unit,
    fc.constantFrom(...CREDIT_TYPES),
    fc.integer({ min: 1, max: 300 }),
    fc.constantFrom(0, 10, 100),
    fc.integer({ min: -2, max: 2 }),
    fc.option(fc.integer({ min: 1, max: 8 }), { nil: null }),
    fc.integer({ min: 0, max: 5000 }),
  )
  .map((a) => new Grant(...a));
const reserveCmd = fc
  .tuple(acct, unit, small, fc.constantFrom("hold" as const, "receipt" as const), fc.integer({ min: 0, max: 4 }))
  .map(([a, u, n, k, t]) => new Reserve(a, u, n, k, k === "hold" ? Math.max(1, t) : t % 2));
const closeCmd = fc
  .tuple(acct, fc.nat(20), fc.option(fc.oneof(fc.constant(-1), fc.nat(80)), { nil: null }))
  .map((a) => new Close(...a));

/** Repeated entries weigh a command up: grants, draws and closes come most often. */
const commands = [
  grantCmd,
  grantCmd,
  grantCmd,
  grantCmd,
  reserveCmd,
  reserveCmd,
  closeCmd,
  closeCmd,
  fc.tuple(acct, unit, small).map((a) => new Debit(...a)),
  fc.tuple(acct, unit, small).map((a) => new Debit(...a)),
  reserveCmd,
  closeCmd,
  fc.tuple(acct, fc.nat(20), fc.nat(80)).map((a) => new Settle(...a)),
  fc.tuple(acct, fc.nat(30)).map((a) => new Void(...a)),
  fc.tuple(acct, fc.nat(30), fc.option(fc.integer({ min: 1, max: 80 }), { nil: null })).map((a) => new Refund(...a)),
  fc
    .tuple(acct, unit, fc.array(fc.integer({ min: 1, max: 120 }), { minLength: 1, maxLength: 3 }))
    .map((a) => new Invoice(...a)),
  fc.tuple(acct, fc.nat(10)).map((a) => new InvoiceVoid(...a)),
  fc.tuple(acct, acct, unit, small).map((a) => new Transfer(...a)),
  fc
    .array(fc.record({ acct, amount: fc.integer({ min: 1, max: 80 }) }), { minLength: 1, maxLength: 5 })
    // A batch runs its accounts in parallel (USAGE_PARALLEL), so a child drawing on its parent and the
    // parent's own events race: a batch never holds both (the parent's events go to account 2).
    .map((e) => new Usage(e.some((x) => x.acct === 1) ? e.map((x) => (x.acct === 0 ? { ...x, acct: 2 } : x)) : e)),
  fc
    .tuple(
      acct,
      fc.shuffledSubarray([...ALL_SORT_KEYS], { minLength: 1 }),
      fc.shuffledSubarray([...CREDIT_TYPES], { minLength: 1 }),
    )
    .map((a) => new SetPolicy(...a)),
  fc.integer({ min: 1, max: 6 }).map((t) => new Advance(t)),
  acct.map((a) => new Restart(a)),
  fc
    .tuple(
      acct,
      fc.integer({ min: 1, max: 300 }),
      fc.option(fc.integer({ min: 1, max: 3 }), { nil: null }),
      fc.option(fc.integer({ min: 1, max: 8 }), { nil: null }),
      fc.integer({ min: 0, max: 3000 }),
    )
    .map((a) => new AwaitGrant(...a)),
  fc.tuple(acct, fc.nat(10), fc.boolean()).map((a) => new Activate(...a)),
  fc
    .tuple(
      acct,
      fc.integer({ min: 1, max: 200 }),
      fc.constantFrom(...CREDIT_TYPES),
      fc.integer({ min: 0, max: 2 }),
      fc.boolean(),
    )
    .map((a) => new Recurring(...a)),
];

/** Three fresh accounts per run: a parent, its budgeted child, one alone. */
async function setup(): Promise<{ model: LedgerModel; real: Real }> {
  const tag = uid("m").replace(/-/g, "");
  const ids = [`${tag}-parent`, `${tag}-child`, `${tag}-solo`];
  const base = Date.now();
  for (const id of [ids[0], ids[2]]) expect((await call("PUT", `/v1/accounts/${id}`, { name: id })).status).toBe(201);
  expect((await call("PUT", `/v1/accounts/${ids[1]}`, { parent_id: ids[0] })).status).toBe(201);
  const budget = await call("PUT", `/v1/accounts/${ids[1]}/budget`, { period: "month", limit: BUDGET_LIMIT });
  expect(budget.status).toBe(200);
  const model = new LedgerModel(ids, base);
  model.accounts[1] = { ...(model.accounts[1] as (typeof model.accounts)[number]), parent: 0 };
  (model.accounts[1] as (typeof model.accounts)[number]).budget = {
    unit: "credits",
    limit: BUDGET_LIMIT,
    used: 0,
    periodStart: model.monthStart(),
  };
  const real: Real = { ids, tag, counter: 0, commands: 0, label: "setup", restarts: 0 };
  // A starting stock on each account (through the same Grant command), so draws have lots to take.
  for (const g of [
    new Grant(0, "credits", "purchased", 400, 100, 0, null, 1000),
    new Grant(0, "tokens", "promotional", 150, 10, 0, 6, 0),
    new Grant(1, "credits", "compensatory", 40, 100, 0, null, 0),
    new Grant(2, "credits", "purchased", 300, 10, 0, 10, 777),
  ]) {
    await g.act(model, real);
  }
  return { model, real };
}

describe("model-based: the gate against a reference model, command by command", () => {
  it(
    `${RUNS} runs of up to ${MAX_COMMANDS} commands (seed ${SEED})`,
    async () => {
      const property = fc.asyncProperty(
        fc.commands(commands, { maxCommands: MAX_COMMANDS, size: "max" }),
        async (cmds) => {
          const { model, real } = await setup();
          totals.runs += 1;
          await fc.asyncModelRun(() => ({ model, real }), cmds);
          real.label = "end of run";
          await compareFull(real, model);
        },
      );
      const details = await fc.check(property, { seed: SEED, numRuns: RUNS, verbose: 1, endOnFailure: true });
      const message = details.failed
        ? `model run failed: seed ${details.seed}, path ${details.counterexamplePath}\n${String(details.errorInstance)}\n${fc.defaultReportMessage(details)}`
        : "";
      expect(details.failed, message).toBe(false);
      console.log(
        `RELIABILITY ${JSON.stringify({ suite: "model", runs: details.numRuns, commands: totals.commands, seed: SEED, restarts: totals.restarts, full_checks: totals.fullChecks })}`,
      );
    },
    LONG ? 3_600_000 : 120_000,
  );
});
