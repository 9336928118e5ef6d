/**
 * fast-check arbitraries derived from the JSON schemas of /openapi.json, and
 * the mutations fuzz.schema.test.ts applies to each field: the values a
 * schema admits (types, enums, bounds, lengths, required and optional
 * properties) and the values it does not.
 */
import fc from "fast-check";
import { resolve, typesOf } from "./fuzz-fixture";

/** Arrays and maps generated are at most this long, objects at most this deep: a request stays small. */
export const GEN_MAX_ITEMS = 3;
export const GEN_MAX_DEPTH = 5;
/** Generated strings without a pattern or enum are at most this long. */
export const GEN_MAX_STRING = 40;

function compile(pattern: string): RegExp | null {
  try {
    return new RegExp(pattern);
  } catch {
    return null;
  }
}

const isoOf = (d: Date) => d.toISOString();

/** What the schema admits (as far as fast-check can say it), sometimes a little past its bounds. */
export function arbOf(doc: any, schema: any, depth = 0): fc.Arbitrary<unknown> {
  const s = resolve(doc, schema);
  if (depth > GEN_MAX_DEPTH) return fc.constant(null);
  const alts = [...(s.anyOf ?? []), ...(s.oneOf ?? [])];
  if (alts.length > 0) return fc.oneof(...alts.map((a: any) => arbOf(doc, a, depth + 1)));
  if (s.allOf?.length) return arbOf(doc, s.allOf[0], depth + 1);
  if (s.const !== undefined) return fc.constant(s.const);
  if (Array.isArray(s.enum)) return fc.constantFrom(...s.enum);
  const types = typesOf(s);
  if (types.length === 0) return fc.oneof(fc.string({ maxLength: 8 }), fc.integer(), fc.boolean(), fc.constant(null));
  return fc.oneof(...types.map((t) => arbOfType(doc, s, t, depth)));
}

function arbOfType(doc: any, s: any, type: string, depth: number): fc.Arbitrary<unknown> {
  switch (type) {
    case "null":
      return fc.constant(null);
    case "boolean":
      return fc.boolean();
    case "integer":
    case "number": {
      const lo = Math.max(
        s.minimum ?? (s.exclusiveMinimum ?? Number.MIN_SAFE_INTEGER - 1) + 1,
        Number.MIN_SAFE_INTEGER,
      );
      const hi = Math.min(
        s.maximum ?? (s.exclusiveMaximum ?? Number.MAX_SAFE_INTEGER + 1) - 1,
        Number.MAX_SAFE_INTEGER,
      );
      const small = fc.integer({ min: Math.max(lo, -1000), max: Math.max(Math.min(hi, 1000), Math.max(lo, -1000)) });
      // Mostly small (what the ledger can serve), sometimes anywhere in range, sometimes just outside.
      return fc.oneof(
        { weight: 4, arbitrary: small },
        { weight: 2, arbitrary: fc.integer({ min: lo, max: Math.max(lo, hi) }) },
        { weight: 1, arbitrary: fc.constantFrom(lo - 1, hi + 1, lo, hi) },
        ...(type === "number" ? [{ weight: 1, arbitrary: fc.double({ noNaN: true, noDefaultInfinity: true }) }] : []),
      );
    }
    case "string": {
      if (s.format === "date-time") {
        return fc
          .date({ min: new Date("1969-01-01T00:00:00Z"), max: new Date("2101-01-01T00:00:00Z"), noInvalidDate: true })
          .map(isoOf);
      }
      const maxLength = Math.min(s.maxLength ?? GEN_MAX_STRING, 300);
      const minLength = Math.min(s.minLength ?? 0, maxLength);
      const free = fc.string({ minLength, maxLength, unit: "binary" });
      const re = typeof s.pattern === "string" ? compile(s.pattern) : null;
      if (!re) return free;
      return fc.oneof(
        { weight: 4, arbitrary: fc.stringMatching(re).filter((v) => v.length >= minLength && v.length <= maxLength) },
        { weight: 1, arbitrary: free },
      );
    }
    case "array": {
      const minLength = Math.min(s.minItems ?? 0, GEN_MAX_ITEMS);
      return fc.array(arbOf(doc, s.items ?? {}, depth + 1), {
        minLength,
        maxLength: Math.max(minLength, GEN_MAX_ITEMS),
      });
    }
    case "object": {
      const props = Object.fromEntries(
        Object.entries(s.properties ?? {}).map(([k, v]) => [k, arbOf(doc, v, depth + 1)] as const),
      );
      const record = fc.record(props, { requiredKeys: (s.required ?? []).filter((k: string) => k in props) });
      if (!s.additionalProperties || typeof s.additionalProperties !== "object") return record;
      const extra = fc.dictionary(
        fc.string({ minLength: 1, maxLength: 12 }),
        arbOf(doc, s.additionalProperties, depth + 1),
        {
          maxKeys: GEN_MAX_ITEMS,
        },
      );
      return fc.tuple(extra, record).map(([e, r]) => ({ ...e, ...r }));
    }
    default:
      return fc.constant(null);
  }
}

// ── the fields of a body, every type ──────────────────────────────────────

export interface BodyField {
  /** Property names from the body's root; "*" is a new key of a map. */
  path: string[];
  types: string[];
  required: boolean;
  schema: any;
}

/** Every property the body schema declares, nested ones included (first item of arrays as "0"). */
export function bodyFieldsOf(
  doc: any,
  schema: any,
  path: string[] = [],
  out: BodyField[] = [],
  depth = 0,
): BodyField[] {
  const s = resolve(doc, schema);
  if (depth > GEN_MAX_DEPTH) return out;
  for (const sub of [...(s.anyOf ?? []), ...(s.oneOf ?? []), ...(s.allOf ?? [])]) {
    bodyFieldsOf(doc, sub, path, out, depth + 1);
  }
  for (const [prop, sub] of Object.entries(s.properties ?? {})) {
    const r = resolve(doc, sub);
    const types = [
      ...typesOf(r),
      ...[...(r.anyOf ?? []), ...(r.oneOf ?? [])].flatMap((a: any) => typesOf(resolve(doc, a))),
    ];
    const p = [...path, prop];
    if (!out.some((f) => f.path.join(".") === p.join("."))) {
      out.push({ path: p, types, required: (s.required ?? []).includes(prop), schema: r });
    }
    bodyFieldsOf(doc, r, p, out, depth + 1);
  }
  if (s.items) bodyFieldsOf(doc, s.items, [...path, "0"], out, depth + 1);
  return out;
}

/** The body with `value` at `path`, or the field removed when value is REMOVE; null when the baseline has no container there. */
export const REMOVE = Symbol("remove");
export function setAt(body: unknown, path: string[], value: unknown): unknown | null {
  const copy = structuredClone(body) as any;
  let at = copy;
  for (const step of path.slice(0, -1)) {
    at = at?.[step];
    if (at === null || typeof at !== "object") return null;
  }
  const last = path[path.length - 1] as string;
  if (value === REMOVE) {
    if (!(last in at)) return null;
    if (Array.isArray(at)) at.splice(Number(last), 1);
    else delete at[last];
  } else at[last] = value;
  return copy;
}

// ── the mutation values ───────────────────────────────────────────────────

/** Values of the wrong JSON type for a field of these types. */
export function wrongTypes(types: string[]): unknown[] {
  const all: [string, unknown][] = [
    ["boolean", true],
    ["array", []],
    ["object", {}],
    ["null", null],
    ["string", "7"],
    ["number", 1.5],
    ["integer", -1],
  ];
  return all.filter(([t]) => !types.includes(t) && !(t === "integer" && types.includes("number"))).map(([, v]) => v);
}

/** Raw JSON number texts (written as is into the body): 2^53 and past, -0, 1e400, and friends. */
export const RAW_NUMBERS = [
  "9007199254740992",
  "9007199254740993",
  "-9007199254740993",
  "1000000000000001",
  "-0",
  "0",
  "-1",
  "1e400",
  "-1e400",
  "1.0000000000000002",
  "1e-400",
  '"NaN"',
  '"Infinity"',
  '"1"',
  "1E2",
];

/** Ill-formed Unicode: the JSON escape of a lone surrogate (raw WTF-8 bytes are a separate kind). */
export const LONE_SURROGATES = ["a\ud800b", "\udfff", "\ud83d", "x\udc00\ud800"];
/** WTF-8 bytes of a lone surrogate, to splice into a body as raw bytes. */
export const WTF8_SURROGATE = [0xed, 0xa0, 0x80];
/** Well-formed but awkward Unicode: accepted or refused, never a 5xx. */
export const ODD_UNICODE = ["\u202egnp.exe", "e\u0301", "\ufeffbom", "😀".repeat(40), "\uffff", "\u200d\u200b"];
export const CONTROL_CHARS = [
  "\u0000",
  "a\u0001b",
  "line\nbreak\r\n",
  "\t",
  "\u007f",
  "\u0085\u2028\u2029",
  "\u001b[31m",
];
export const SQL_META = [
  "' OR 1=1 --",
  '"; DROP TABLE entries; --',
  "%",
  "_",
  "\\",
  "\\'; --",
  "%' OR '%'='",
  "a_b%c",
  "1; SELECT * FROM api_keys",
];
/** Path parameter values as they go on the wire (already encoded, or not, on purpose). */
export const PATH_TRICKS = [
  "..",
  "%2e%2e",
  "%2E%2E%2F%2E%2E",
  "%2F",
  "a%2Fb",
  "a/b",
  ".",
  "%00",
  "a%0Ab",
  "%252e%252e",
  "x".repeat(129),
  "y".repeat(4096),
  "%C3%A9",
  "%F0%9F%98%80",
  "a?b=1",
  "a%3Fb",
  "a#b",
  "a%23b",
  "%27%20OR%201%3D1%20--",
  "%25",
  "%",
  "%zz",
];
