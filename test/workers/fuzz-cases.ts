/**
 * The requests fuzz.schema.test.ts sends for one operation: generated from its
 * schema, and mutations of its baseline (field values, the body as text,
 * headers, path ids, query strings). Each carries its kind, for the counts,
 * and, where the contract says exactly what must come back, that status.
 */
import fc from "fast-check";
import {
  arbOf,
  bodyFieldsOf,
  CONTROL_CHARS,
  LONE_SURROGATES,
  ODD_UNICODE,
  PATH_TRICKS,
  RAW_NUMBERS,
  REMOVE,
  SQL_META,
  setAt,
  WTF8_SURROGATE,
  wrongTypes,
} from "./fuzz-arbitraries";
import { BASELINES, type Fixture, type Operation, resolve, urlOf, type Wire } from "./fuzz-fixture";

export interface Case {
  kind: string;
  label: string;
  wire: Wire;
  /** The one status the contract promises for this request; else any allowed one. */
  exactly?: number;
}

/** Body bytes over every cap but the bulk route's (1 MiB + 1). */
export const BIG_BODY_BYTES = 1_048_577;
/** Depth of the deeply nested value. */
export const DEEP_LEVELS = 10_000;

const enc = (v: string) => encodeURIComponent(v);
const RAW = (i: number) => `"__raw_${i}__"`;

/** A deterministic pick of `n` items of `list` (all of them when n ≥ its length). */
function pick<T>(list: readonly T[], n: number, rnd: () => number): T[] {
  if (n >= list.length) return [...list];
  const start = Math.floor(rnd() * list.length);
  return Array.from({ length: n }, (_, i) => list[(start + i) % list.length] as T);
}

export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export const hashOf = (s: string) => [...s].reduce((h, c) => (Math.imul(h, 31) + c.charCodeAt(0)) >>> 0, 7);

/** JSON text of `body` with each RAW(i) placeholder replaced by raw[i]. */
function rawJson(body: unknown, raw: string[]): string {
  let text = JSON.stringify(body);
  raw.forEach((r, i) => {
    text = text.replace(RAW(i), r);
  });
  return text;
}

/** JSON text of `body` with the string `marker` written as the raw WTF-8 bytes of a lone surrogate. */
function wtf8(body: unknown, marker: string): Uint8Array | null {
  const parts = JSON.stringify(body).split(marker);
  if (parts.length !== 2) return null;
  const e = new TextEncoder();
  return new Uint8Array([...e.encode(parts[0]), ...WTF8_SURROGATE, ...e.encode(parts[1])]);
}

/**
 * Every request for `op` on fixture `f`: `runs` values per field and mutation
 * kind (all of them once runs reaches the list's length), `runs` × 2 generated bodies.
 */
export function casesFor(doc: any, op: Operation, f: Fixture, runs: number, seed: number, sink: string): Case[] {
  const make = BASELINES[op.key];
  if (!make) throw new Error(`no baseline for ${op.key}`);
  const rnd = mulberry32(seed ^ hashOf(op.key));
  const out: Case[] = [];
  const fresh = () => {
    const base = make(f);
    // A bulk grant runs later on a queue: aimed at a sink account, it never writes to the watched ones.
    if (op.key === "POST /v1/grants/bulk" && base.body) base.body = { ...base.body, account_ids: [sink] };
    return base;
  };
  const base0 = fresh();
  const url = () => urlOf(op, f, fresh());
  const bodySchema = op.spec.requestBody?.content?.["application/json"]?.schema;
  const json = (body: unknown, kind: string, label: string, exactly?: number, raw: string[] = []) =>
    out.push({ kind, label, exactly, wire: { method: op.method, url: url(), body: rawJson(body, raw) } });

  // ── generated from the schema ──
  if (bodySchema) {
    const arb = arbOf(doc, bodySchema);
    const whole = fc.sample(arb, { seed: seed ^ hashOf(op.key), numRuns: runs * 2 });
    whole.forEach((b, i) => {
      json(b, "schema", `generated #${i}`);
    });
    const fields = bodyFieldsOf(doc, bodySchema);
    for (const field of pick(fields, runs * 2, rnd)) {
      const [v] = fc.sample(arbOf(doc, field.schema), { seed: seed ^ hashOf(field.path.join(".")), numRuns: 1 });
      const b = setAt(fresh().body ?? {}, field.path, v);
      if (b !== null) json(b, "schema_mix", `${field.path.join(".")} = generated`);
    }
  }
  for (const p of (op.spec.parameters ?? []).filter((x: any) => x.in === "query")) {
    const vals = fc.sample(arbOf(doc, p.schema ?? {}), { seed: seed ^ hashOf(p.name), numRuns: runs });
    for (const v of vals) {
      const b = fresh();
      const query = { ...b.query, [p.name]: String(v) };
      const wire: Wire = {
        method: op.method,
        url: urlOf(op, f, { ...b, query }),
        body: b.body === undefined ? undefined : JSON.stringify(b.body),
      };
      out.push({ kind: "schema_query", label: `query ${p.name} = generated`, wire });
    }
  }

  // ── field values the schema refuses, or that test the storage ──
  if (bodySchema) {
    const fields = bodyFieldsOf(doc, bodySchema);
    for (const field of fields) {
      const name = field.path.join(".");
      const at = (v: unknown) => setAt(fresh().body ?? {}, field.path, v);
      for (const v of pick(wrongTypes(field.types), runs, rnd)) {
        const b = at(v);
        if (b !== null) json(b, "wrong_type", `${name} = ${JSON.stringify(v)}`);
      }
      if (field.types.includes("integer") || field.types.includes("number")) {
        for (const r of pick(RAW_NUMBERS, runs + 1, rnd)) {
          const b = at("__raw_0__");
          if (b !== null) json(b, "number_range", `${name} = ${r}`, undefined, [r]);
        }
      }
      if (field.types.includes("string") && resolve(doc, field.schema).format !== "date-time") {
        for (const v of pick(LONE_SURROGATES, runs, rnd)) {
          const b = at(v);
          if (b !== null) json(b, "lone_surrogate", `${name} = ${JSON.stringify(v)}`, 400);
        }
        const marker = "__wtf8__";
        const bb = at(`a${marker}b`);
        const bytes = bb === null ? null : wtf8(bb, marker);
        if (bytes) {
          out.push({
            kind: "lone_surrogate_bytes",
            label: `${name} as WTF-8`,
            exactly: 400,
            wire: { method: op.method, url: url(), body: bytes },
          });
        }
        for (const [kind, list] of [
          ["odd_unicode", ODD_UNICODE],
          ["control_chars", CONTROL_CHARS],
          ["sql_meta", SQL_META],
        ] as const) {
          for (const v of pick(list, runs, rnd)) {
            const b = at(v);
            if (b !== null) json(b, kind, `${name} = ${JSON.stringify(v)}`);
          }
        }
      }
      if (field.required && field.path.length === 1) {
        const b = at(REMOVE);
        if (b !== null) json(b, "missing_required", `without ${name}`, 400);
      }
    }
    json({ ...(fresh().body ?? {}), zz_unknown_field: 1 }, "unknown_field", "unknown top-level field", 400);
  }

  // ── the body as text ──
  if (bodySchema) {
    const text = JSON.stringify(base0.body ?? {});
    const w = (body: string | Uint8Array, kind: string, label: string, exactly?: number) =>
      out.push({ kind, label, exactly, wire: { method: op.method, url: url(), body } });
    w(text.slice(0, Math.max(1, text.length - 1)), "malformed_json", "truncated", 400);
    w(`${text.slice(0, -1)},}`, "malformed_json", "trailing comma", 400);
    w("{'a': 1}", "malformed_json", "single quotes", 400);
    for (const nb of pick(["[]", '"x"', "1", "null", "true"], runs * 2, rnd)) w(nb, "non_object_body", nb, 400);
    const [firstKey] = Object.keys(base0.body ?? {});
    if (firstKey) {
      w(`{${JSON.stringify(firstKey)}:[1,{}],${text.slice(1)}`, "duplicate_keys", `${firstKey} twice (bad first)`);
      w(`${text.slice(0, -1)},${JSON.stringify(firstKey)}:[1,{}]}`, "duplicate_keys", `${firstKey} twice (bad last)`);
    }
    const deep = `${"[".repeat(DEEP_LEVELS)}${"]".repeat(DEEP_LEVELS)}`;
    w(deep, "deep_nesting", `${DEEP_LEVELS} levels of arrays`, 400);
    w(`${text.slice(0, -1)}${text.length > 2 ? "," : ""}"metadata":${deep}}`, "deep_nesting", "deep metadata");
    w(`${'{"a":'.repeat(DEEP_LEVELS)}1${"}".repeat(DEEP_LEVELS)}`, "deep_nesting", "deep objects", 400);
    const prefix = `${text.slice(0, -1)}${text.length > 2 ? "," : ""}"zz_pad":"`;
    const big = `${prefix}${"x".repeat(BIG_BODY_BYTES - new TextEncoder().encode(prefix).length - 2)}"}`;
    w(big, "big_body", "1 MiB + 1", op.key === "POST /v1/grants/bulk" ? undefined : 413);
    w(
      new TextEncoder().encode(`${text.slice(0, -1)}\u00ff}`).slice(0, -3),
      "malformed_json",
      "cut in a UTF-8 sequence",
      400,
    );
  }

  // ── headers: `runs` of each kind's variants ──
  const baseBody = base0.body === undefined ? undefined : JSON.stringify(base0.body);
  const isPublic = op.key === "GET /.well-known/jwks.json";
  const auth401 = isPublic ? undefined : 401;
  const ct: [string, string][] = baseBody === undefined ? [] : [["content-type", "application/json"]];
  type H = [label: string, wire: Partial<Wire>, exactly?: number];
  const stream = (text: string) =>
    new ReadableStream<Uint8Array>({
      start(c) {
        const bytes = new TextEncoder().encode(text);
        for (let i = 0; i < bytes.length; i += 16_384) c.enqueue(bytes.slice(i, i + 16_384));
        c.close();
      },
    });
  const bearers = ["", " ", "cg_", `cg_${"A".repeat(43)}`, "a.b.c", "eyJhbGciOiJub25lIn0.e30.", "test-admin-tokenX"];
  const schemes = ["Basic dGVzdDp0ZXN0", "Bearer", "Token test-admin-token", "Bearer test-admin-token extra"];
  const headerKinds: Record<string, H[]> = {
    missing_auth: [["no authorization", { token: null, headers: ct }, auth401]],
    malformed_bearer: [
      ...bearers.map((b): H => [`bearer ${JSON.stringify(b)}`, { token: b, headers: ct }, auth401]),
      ...schemes.map((h): H => [h, { token: null, headers: [...ct, ["authorization", h]] }, auth401]),
    ],
    huge_header: [
      ["a 32 KB header", { headers: [...ct, ["x-fill", "z".repeat(32_768)]] }],
      ["a 64 KB bearer", { token: "q".repeat(65_536), headers: ct }, auth401],
      ["a 4 KB idempotency key", { headers: [...ct, ["idempotency-key", "k".repeat(4096)]] }],
      ["a 4 KB request id", { headers: [...ct, ["x-request-id", "r".repeat(4096)]] }],
    ],
  };
  if (baseBody !== undefined) {
    const smallCap = op.key !== "POST /v1/grants/bulk" && op.key !== "POST /v1/usage";
    Object.assign(headerKinds, {
      duplicate_content_type: [
        ["json twice", { headers: [...ct, ["content-type", "application/json"]] }],
        ["json and text", { headers: [...ct, ["content-type", "text/plain"]] }],
      ],
      wrong_content_type: [
        ["text/plain", { headers: [["content-type", "text/plain"]] }, 415],
        ["none", { headers: [] }, 415],
        ["form", { headers: [["content-type", "application/x-www-form-urlencoded"]] }, 415],
      ],
      wrong_content_length: [
        ["content-length 1", { headers: [...ct, ["content-length", "1"]] }],
        ["content-length 10^9", { headers: [...ct, ["content-length", "1000000000"]] }],
        ["content-length -1", { headers: [...ct, ["content-length", "-1"]] }],
      ],
      chunked: [
        ["baseline as a stream", { body: stream(JSON.stringify(fresh().body)), headers: ct }],
        [
          "200 KB as a stream",
          { body: stream(`{"zz":"${"c".repeat(200_000)}"}`), headers: ct },
          smallCap ? 413 : undefined,
        ],
      ],
    } satisfies Record<string, H[]>);
  }
  for (const [kind, variants] of Object.entries(headerKinds)) {
    for (const [label, wire, exactly] of pick(variants, runs, rnd)) {
      out.push({ kind, label, exactly, wire: { method: op.method, url: url(), body: baseBody, ...wire } });
    }
  }

  // ── path ids and query strings ──
  for (const p of (op.spec.parameters ?? []).filter((x: any) => x.in === "path")) {
    for (const raw of pick(PATH_TRICKS, runs * 3, rnd)) {
      const b = fresh();
      out.push({
        kind: "path_trick",
        label: `${p.name} = ${raw.slice(0, 30)}`,
        wire: {
          method: op.method,
          url: urlOf(op, f, b, { params: { [p.name]: raw } }),
          body: b.body === undefined ? undefined : JSON.stringify(b.body),
        },
      });
    }
  }
  const queryParams = (op.spec.parameters ?? []).filter((x: any) => x.in === "query");
  if (queryParams.length > 0) {
    const b = fresh();
    const q: [string, string][] = Object.entries(b.query ?? {}).map(([k, v]) => [k, enc(v)]);
    const qw = (query: [string, string][], label: string, exactly?: number) =>
      out.push({
        kind: "query_mutation",
        label,
        exactly,
        wire: {
          method: op.method,
          url: urlOf(op, f, b, { query }),
          body: b.body === undefined ? undefined : JSON.stringify(b.body),
        },
      });
    qw([...q, ["zz_unknown", "1"]], "unknown query parameter", 400);
    for (const p of queryParams) {
      for (const v of pick(
        [...SQL_META, ...CONTROL_CHARS, "-1", "1e400", "99999999999999999999", "", "[]"],
        runs,
        rnd,
      )) {
        qw([...q.filter(([k]) => k !== p.name), [p.name, enc(v)]], `query ${p.name} = ${JSON.stringify(v)}`);
      }
      qw([...q, [p.name, "x"]], `query ${p.name} twice`);
    }
  }
  return out;
}
