/** The exposition format and the Analytics Engine points, in plain Node. */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { AE_INDEX_MAX_BYTES, point } from "../../src/metrics/analytics";
import { COUNTERS, escapeLabel, exposition, GAUGES, labelsOf, minuteOf } from "../../src/metrics/names";
import { parseExposition, sampleOf } from "../workers/metrics-helpers";

describe("labels", () => {
  it("sorts keys and escapes backslash, quote and newline", () => {
    expect(labelsOf({ unit: "credits", kind: "debit" })).toBe('kind="debit",unit="credits"');
    expect(escapeLabel('a\\b"c\nd')).toBe('a\\\\b\\"c\\nd');
    expect(labelsOf({})).toBe("");
  });

  it("any label values survive exposition and a strict parse unchanged", () => {
    fc.assert(
      fc.property(fc.string(), fc.string(), fc.nat(), (kind, unit, value) => {
        const labels = labelsOf({ kind, unit });
        const text = exposition([{ name: "creditgate_entries_total", labels, value }], []);
        const parsed = parseExposition(text);
        expect(sampleOf(parsed, "creditgate_entries_total", { kind, unit })).toBe(value);
      }),
    );
  });
});

describe("exposition", () => {
  it("declares every family once, counters as counter and gauges as gauge, samples under their family", () => {
    const text = exposition(
      [
        { name: "creditgate_denials_total", labels: labelsOf({ code: "insufficient_credits" }), value: 3 },
        { name: "creditgate_entries_total", labels: labelsOf({ kind: "grant", unit: "credits" }), value: 2 },
      ],
      [{ name: "creditgate_outbox_lag_entries", labels: "", value: 7 }],
    );
    const p = parseExposition(text);
    for (const name of Object.keys(COUNTERS)) expect(p.families.get(name)?.type).toBe("counter");
    for (const name of Object.keys(GAUGES)) expect(p.families.get(name)?.type).toBe("gauge");
    expect(p.samples.size).toBe(3);
    expect(sampleOf(p, "creditgate_denials_total", { code: "insufficient_credits" })).toBe(3);
    expect(sampleOf(p, "creditgate_outbox_lag_entries")).toBe(7);
    expect(text).toContain('creditgate_entries_total{kind="grant",unit="credits"} 2\n');
  });

  it("the strict parser refuses what the format does not allow", () => {
    const bad = [
      "x 1", // no newline at the end
      "x 1\n", // no TYPE
      "# TYPE x counter\nx{a=b} 1\n", // unquoted
      '# TYPE x counter\nx{a="\\q"} 1\n', // bad escape
      '# TYPE x counter\nx{a="1"} 1\nx{a="1"} 2\n', // duplicate series
      "# TYPE x counter\nx one\n", // not a number
      "# TYPE x summary\n",
    ];
    for (const text of bad) expect(() => parseExposition(text), text).toThrow();
  });
});

describe("Analytics Engine points", () => {
  it("lays out name, two label values, the account; the value as double; the account as index", () => {
    expect(point("creditgate_entries_total", ["debit", "credits"], 3, "acct-1")).toEqual({
      blobs: ["creditgate_entries_total", "debit", "credits", "acct-1"],
      doubles: [3],
      indexes: ["acct-1"],
    });
    expect(point("creditgate_http_errors", ["forbidden", "403"], 1, null).indexes).toEqual(["creditgate_http_errors"]);
  });

  it("cuts an index to AE_INDEX_MAX_BYTES (ids are ASCII)", () => {
    const long = "a".repeat(128);
    expect(point("n", [], 1, long).indexes[0]).toHaveLength(AE_INDEX_MAX_BYTES);
    expect(point("n", [], 1, long).blobs[3]).toBe(long);
  });
});

describe("minutes", () => {
  it("minuteOf is the start of the UTC minute", () => {
    expect(minuteOf(Date.UTC(2026, 0, 1, 12, 34, 56, 789))).toBe(Date.UTC(2026, 0, 1, 12, 34));
    fc.assert(fc.property(fc.nat(), (ms) => minuteOf(ms) <= ms && ms - minuteOf(ms) < 60_000));
  });
});
