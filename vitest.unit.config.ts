import { defineConfig } from "vitest/config";

/** Pure domain rules (src/ledger) in plain Node: no workerd needed. */
export default defineConfig({
  test: { include: ["test/unit/**/*.test.ts"], environment: "node" },
});
