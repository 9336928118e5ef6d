import { defineConfig } from "vitest/config";

/**
 * Browser suites: Debian's Chromium driven by playwright-core against a private
 * `wrangler dev` that test/browser/global-setup.ts starts (fresh state, its own
 * secrets, a free port). One browser per file, one context per test.
 */
export default defineConfig({
  test: {
    environment: "node",
    include: ["test/browser/**/*.browser.test.ts"],
    globalSetup: ["./test/browser/global-setup.ts"],
    testTimeout: 60_000,
    hookTimeout: 120_000,
  },
});
