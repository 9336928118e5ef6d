/**
 * A strict reader of the Prometheus text exposition format (0.0.4), for the
 * metrics suites: it throws on anything the format does not allow, so a
 * malformed /v1/metrics fails the test rather than parsing loosely.
 */

export interface Family {
  type: "counter" | "gauge";
  help: string;
}

export interface Parsed {
  families: Map<string, Family>;
  /** `name{labels}` (labels as sent) -> value. */
  samples: Map<string, number>;
  /** Labels of each sample, decoded. */
  labels: Map<string, Record<string, string>>;
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

/** Decodes `a="x",b="y\"z"` exactly; throws on a bad escape, a missing quote or a repeated name. */
function parseLabels(text: string, line: string): Record<string, string> {
  const out: Record<string, string> = {};
  let i = 0;
  while (i < text.length) {
    const eq = text.indexOf("=", i);
    if (eq < 0) throw new Error(`label without '=': ${line}`);
    const name = text.slice(i, eq);
    if (!LABEL_NAME.test(name)) throw new Error(`bad label name ${JSON.stringify(name)}: ${line}`);
    if (text[eq + 1] !== '"') throw new Error(`label value must be quoted: ${line}`);
    let value = "";
    let j = eq + 2;
    for (;;) {
      const ch = text[j];
      if (ch === undefined) throw new Error(`unterminated label value: ${line}`);
      if (ch === '"') break;
      if (ch === "\n") throw new Error(`raw newline in label value: ${line}`);
      if (ch === "\\") {
        const next = text[j + 1];
        if (next === "\\") value += "\\";
        else if (next === '"') value += '"';
        else if (next === "n") value += "\n";
        else throw new Error(`bad escape \\${next}: ${line}`);
        j += 2;
        continue;
      }
      value += ch;
      j++;
    }
    if (name in out) throw new Error(`label ${name} repeated: ${line}`);
    out[name] = value;
    i = j + 1;
    if (i < text.length) {
      if (text[i] !== ",") throw new Error(`expected ',' between labels: ${line}`);
      i++;
    }
  }
  return out;
}

function parseValue(raw: string, line: string): number {
  if (raw === "+Inf") return Number.POSITIVE_INFINITY;
  if (raw === "-Inf") return Number.NEGATIVE_INFINITY;
  if (raw === "NaN") return Number.NaN;
  if (!/^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(raw)) throw new Error(`bad value ${raw}: ${line}`);
  return Number(raw);
}

export function parseExposition(text: string): Parsed {
  if (!text.endsWith("\n")) throw new Error("the exposition must end with a newline");
  const families = new Map<string, Family>();
  const helps = new Map<string, string>();
  const samples = new Map<string, number>();
  const labels = new Map<string, Record<string, string>>();
  const seenSamplesOf = new Set<string>();
  for (const line of text.slice(0, -1).split("\n")) {
    if (line === "") throw new Error("empty line");
    if (line.startsWith("# HELP ")) {
      const rest = line.slice(7);
      const sp = rest.indexOf(" ");
      const name = sp < 0 ? rest : rest.slice(0, sp);
      if (!NAME.test(name)) throw new Error(`bad metric name in HELP: ${line}`);
      if (helps.has(name)) throw new Error(`second HELP for ${name}`);
      helps.set(name, sp < 0 ? "" : rest.slice(sp + 1));
      continue;
    }
    if (line.startsWith("# TYPE ")) {
      const [name, type, extra] = line.slice(7).split(" ");
      if (name === undefined || !NAME.test(name) || extra !== undefined) throw new Error(`bad TYPE line: ${line}`);
      if (type !== "counter" && type !== "gauge") throw new Error(`unexpected type ${type}: ${line}`);
      if (families.has(name)) throw new Error(`second TYPE for ${name}`);
      if (seenSamplesOf.has(name)) throw new Error(`TYPE after samples of ${name}`);
      families.set(name, { type, help: helps.get(name) ?? "" });
      continue;
    }
    if (line.startsWith("#")) continue; // a comment
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)( -?\d+)?$/.exec(line);
    if (!m?.[1] || m[4] === undefined) throw new Error(`bad sample line: ${JSON.stringify(line)}`);
    const name = m[1];
    if (!families.has(name)) throw new Error(`sample of ${name} before its TYPE`);
    seenSamplesOf.add(name);
    const decoded = m[3] === undefined ? {} : parseLabels(m[3], line);
    const key = `${name}{${m[3] ?? ""}}`;
    if (samples.has(key)) throw new Error(`duplicate series ${key}`);
    samples.set(key, parseValue(m[4], line));
    labels.set(key, decoded);
  }
  return { families, samples, labels };
}

/** A sample's value by name and label pairs (any order); 0 when the series does not exist yet. */
export function sampleOf(p: Parsed, name: string, want: Record<string, string> = {}): number {
  for (const [key, value] of p.samples) {
    if (!key.startsWith(`${name}{`)) continue;
    const got = p.labels.get(key) ?? {};
    const keys = Object.keys(want);
    if (Object.keys(got).length === keys.length && keys.every((k) => got[k] === want[k])) return value;
  }
  return 0;
}
