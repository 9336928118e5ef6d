import { defineConfig } from "vitest/config";
import { workersPool } from "./test/support/workers-pool.ts";

/**
 * The long schema fuzz: test/workers/fuzz.schema.test.ts only, with FUZZ_RUNS
 * (default 10: values per field and mutation kind, 2 × that many generated
 * bodies per operation) and FUZZ_SEED (default: random, printed in the
 * RELIABILITY line) passed into workerd as bindings. `npm test` runs the same
 * file through vitest.config.ts with FUZZ_RUNS 1 and seed 1337.
 *   FUZZ_RUNS=30 FUZZ_SEED=7 npx vitest run -c vitest.fuzz.config.ts
 */
export default defineConfig(async () => {
  const runs = process.env.FUZZ_RUNS ?? "10";
  const seed = process.env.FUZZ_SEED ?? String(1 + Math.floor(Math.random() * 2 ** 31));
  return {
    plugins: [await workersPool({ FUZZ_RUNS: runs, FUZZ_SEED: seed })],
    test: {
      include: ["test/workers/fuzz.schema.test.ts"],
      setupFiles: ["./test/workers/setup.ts"],
      testTimeout: 3_600_000,
      hookTimeout: 600_000,
      // The RELIABILITY line is wanted on success too.
      silent: false,
    },
  };
});
