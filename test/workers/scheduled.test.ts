/** The cron entry point: every job runs and logs one JSON line with counts and duration, even when one fails. */
import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it, vi } from "vitest";
import { grant, uid } from "./helpers";
import { drain, runCron } from "./jobs-helpers";

const JOBS = [
  "recurring",
  "expirations",
  "sweeps",
  "transfers",
  "redrive",
  "reconcile",
  "archive",
  "expiring",
  "spikes",
  "dispatch",
  "metrics",
];

function cronLines(spy: { mock: { calls: unknown[][] } }) {
  return spy.mock.calls
    .map((c) => {
      try {
        return JSON.parse(String(c[0])) as Record<string, unknown>;
      } catch {
        return null;
      }
    })
    .filter((l): l is Record<string, unknown> => l !== null && (l.event === "cron.job" || l.event === "cron"));
}

describe("scheduled handler", () => {
  afterEach(() => vi.restoreAllMocks());

  it("runs every job once and logs one line per job with counts and duration, then a summary", async () => {
    const a = uid();
    await grant(a, { amount: 10 });
    await drain(a);
    const spy = vi.spyOn(console, "log");
    await runCron(Date.now());
    const lines = cronLines(spy);
    expect(lines.filter((l) => l.event === "cron.job").map((l) => l.job)).toEqual(JOBS);
    for (const l of lines.filter((x) => x.event === "cron.job")) {
      expect(l.ok).toBe(true);
      expect(typeof l.duration_ms).toBe("number");
    }
    expect(lines.find((l) => l.job === "reconcile")).toMatchObject({ checked: expect.any(Number), drifts: 0 });
    expect(lines[lines.length - 1]).toMatchObject({ event: "cron", cron: "*/5 * * * *", jobs: JOBS.length, failed: 0 });
  });

  it("a failing job is logged and the others still run", async () => {
    await env.DB.prepare(
      "INSERT INTO settings (key, value, updated_at_ms) VALUES ('alerts', 'not json', 0) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
    ).run();
    const spy = vi.spyOn(console, "log");
    await runCron(Date.now());
    const jobs = cronLines(spy).filter((l) => l.event === "cron.job");
    expect(jobs.map((l) => [l.job, l.ok])).toEqual([
      ["recurring", true],
      ["expirations", true],
      ["sweeps", true],
      ["transfers", true],
      ["redrive", true],
      ["reconcile", true],
      ["archive", true],
      ["expiring", false],
      ["spikes", false],
      ["dispatch", true],
      ["metrics", true],
    ]);
    expect(cronLines(spy).at(-1)).toMatchObject({ event: "cron", failed: 2 });
    await env.DB.prepare("DELETE FROM settings WHERE key = 'alerts'").run();
  });
});
