/**
 * The soak's HTTP side (scripts/soak.mjs): one call to the private gate, and
 * `send`, which repeats the SAME request (same id, same body) until the gate
 * gives a definitive answer. A definitive answer is any 2xx or 4xx; a 5xx or
 * a broken connection (status 0: wrangler dev restarting, a timeout) says
 * nothing about whether the request took effect, so it is sent again: that
 * is what idempotency ids are for, and what this soak proves safe.
 */
import canonicalize from "canonicalize";

/** One request's own timeout. */
export const CALL_TIMEOUT_MS = 30_000;
/** Attempts of one request before it is left unresolved (resolved again at the end, faults off). */
export const SEND_MAX_ATTEMPTS = 40;
/** How long one request is retried before it is left unresolved. */
export const SEND_BUDGET_MS = 90_000;
/** Backoff between attempts: 250 ms doubling, at most 4 s. */
const BACKOFF_BASE_MS = 250;
const BACKOFF_MAX_MS = 4_000;

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** A 2xx or 4xx: the gate decided. 5xx and 0 (no answer) decide nothing. */
export const definitive = (status) => status >= 200 && status < 500;

/** RFC 8785 text of a JSON value: two bodies are the same answer when these are equal. */
export const same = (a, b) => canonicalize(a) === canonicalize(b);

/**
 * A client for `url` with the admin `token`; `stats` counts requests,
 * retries and statuses (`stats.statuses[status]`).
 */
export function makeClient({ url, token, stats }) {
  async function call(method, path, body, { timeoutMs = CALL_TIMEOUT_MS } = {}) {
    stats.requests++;
    let out;
    try {
      const res = await fetch(`${url}${path}`, {
        method,
        headers: {
          authorization: `Bearer ${token}`,
          ...(body === undefined ? {} : { "content-type": "application/json" }),
        },
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(timeoutMs),
      });
      const text = await res.text();
      let json = null;
      try {
        json = JSON.parse(text);
      } catch {}
      out = { status: res.status, json, text, replayed: res.headers.get("idempotent-replayed") === "true" };
    } catch (e) {
      out = { status: 0, json: null, text: String(e?.cause ?? e), replayed: false };
    }
    stats.statuses[out.status] = (stats.statuses[out.status] ?? 0) + 1;
    return out;
  }

  /** The same request until a definitive answer; null when none came within the bounds. */
  async function send(method, path, body, { budgetMs = SEND_BUDGET_MS } = {}) {
    const deadline = Date.now() + budgetMs;
    for (let attempt = 0; attempt < SEND_MAX_ATTEMPTS; attempt++) {
      const r = await call(method, path, body);
      if (definitive(r.status) && r.json === null) {
        // Every answer of the gate is JSON: this one is not the gate's (seen from wrangler dev's proxy while it restarts).
        stats.notJson = (stats.notJson ?? 0) + 1;
        stats.notJsonSample ??= `${method} ${path}: ${r.status} ${JSON.stringify(r.text.slice(0, 300))}`;
      } else if (definitive(r.status)) return { ...r, attempts: attempt + 1 };
      stats.retries++;
      if (Date.now() >= deadline) break;
      await sleep(Math.min(BACKOFF_MAX_MS, BACKOFF_BASE_MS * 2 ** attempt));
    }
    return null;
  }

  return { call, send };
}

/** Runs `fn` over `items`, `limit` at a time; resolves with the results in order. */
export async function mapLimit(items, limit, fn) {
  const out = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i], i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}

/** mulberry32: a small seeded PRNG, so a run's choices follow its seed. */
export function rngFrom(seed) {
  let s = seed >>> 0;
  const next = () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  next.int = (lo, hi) => lo + Math.floor(next() * (hi - lo + 1));
  next.pick = (list) => list[Math.floor(next() * list.length)];
  /** A key of `weights` ({key: weight}) drawn in proportion to its weight. */
  next.weighted = (weights) => {
    const entries = Object.entries(weights).filter(([, w]) => w > 0);
    let x = next() * entries.reduce((s, [, w]) => s + w, 0);
    for (const [k, w] of entries) {
      x -= w;
      if (x < 0) return k;
    }
    return entries[entries.length - 1][0];
  };
  return next;
}
