/**
 * The served contract: every route the app answers is in /openapi.json (the
 * zod schemas that validate requests also produce the document), and the
 * document names the request schemas, so clients can generate from it.
 */
import { describe, expect, it } from "vitest";
import { buildApp } from "../../src/api/app";
import { call } from "./helpers";

describe("/openapi.json", () => {
  it("documents every route the app mounts", async () => {
    const doc = (await call("GET", "/openapi.json", undefined, { token: null })).json;
    expect(doc.openapi).toBe("3.1.0");
    const documented = new Set<string>();
    for (const [path, ops] of Object.entries(doc.paths as Record<string, object>)) {
      for (const method of Object.keys(ops)) documented.add(`${method.toUpperCase()} ${path}`);
    }
    // Every mounted route, except the served contract itself and health.
    const undocumentedOnPurpose = new Set(["GET /openapi.json", "GET /docs", "GET /v1/health"]);
    const mounted = buildApp()
      .routes.filter((r) => r.method !== "ALL")
      .map((r) => `${r.method} ${r.path.replace(/:([A-Za-z_]+)/g, "{$1}")}`)
      .filter((r) => !undocumentedOnPurpose.has(r))
      // The dashboard's HTML pages (src/dashboard/) are not API operations.
      .filter((r) => !/^[A-Z]+ \/app(\/|$)/.test(r))
      // The test-only fault switch (src/faults.ts) is not part of the contract on purpose.
      .filter((r) => !/^[A-Z]+ \/__faults$/.test(r));
    expect(mounted.length).toBeGreaterThan(20);
    for (const route of mounted) expect(documented, route).toContain(route);
    for (const name of ["GrantInput", "DebitInput", "HoldInput", "ReceiptInput", "Problem", "Balance", "Entry"]) {
      expect(Object.keys(doc.components.schemas)).toContain(name);
    }
  });
});
