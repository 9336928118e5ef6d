import { defineConfig } from "vitest/config";
import { workersPool } from "./test/support/workers-pool.ts";

/**
 * `npm run test:long`: the model-based suite only, with MODEL_RUNS runs
 * (default 200) and MODEL_SEED (default: random, printed) passed into workerd
 * as bindings. Otherwise the same workerd setup as vitest.config.ts.
 */
export default defineConfig(async () => {
  const runs = process.env.MODEL_RUNS ?? "200";
  const seed = process.env.MODEL_SEED ?? String(Math.floor(Math.random() * 2 ** 31));
  return {
    plugins: [await workersPool({ MODEL_RUNS: runs, MODEL_SEED: seed })],
    test: {
      include: ["test/workers/model.commands.test.ts"],
      setupFiles: ["./test/workers/setup.ts"],
      testTimeout: 3_600_000,
      // The RELIABILITY line and fast-check's report are wanted on success too.
      silent: false,
    },
  };
});
