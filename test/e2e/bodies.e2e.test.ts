/**
 * Refused request bodies over real HTTP against `wrangler dev` (issue 7): an
 * oversized body, chunked or with content-length, and one that breaks off
 * early, is answered 413 problem+json, and never affects the requests that
 * follow, on a new connection or on the same kept-alive one.
 *
 * Raw sockets (node:net), not fetch: the cases need chunked framing written by
 * hand, a body that stops short, and a second request on the same connection.
 * Before the fix the gate cancelled an oversized chunked body half read: the
 * next request to any route stalled until another request came in, and the
 * next request on the same connection was reset.
 */
import { connect, type Socket } from "node:net";
import { beforeAll, describe, expect, it } from "vitest";
import { api, gate, uid } from "./harness";

/** Generous: a prompt answer takes milliseconds; the stall this pins lasted until the client gave up. */
const PER_REQUEST_MS = 10_000;
/** Each case runs this many times: the stall depended on timing. */
const ROUNDS = 4;
/** The contract's cap (src/api/middleware.ts MAX_BODY_BYTES): 64 KiB. */
const CAP = 65_536;

interface RawResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
}

/** Parses one HTTP/1.1 response from the front of `buf`; null until it is complete. */
function parseResponse(buf: Buffer): { res: RawResponse; rest: Buffer } | null {
  const end = buf.indexOf("\r\n\r\n");
  if (end < 0) return null;
  const [statusLine = "", ...lines] = buf.subarray(0, end).toString("latin1").split("\r\n");
  const headers: Record<string, string> = {};
  for (const line of lines) {
    const colon = line.indexOf(":");
    headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
  const status = Number(statusLine.split(" ")[1]);
  let at = end + 4;
  if (headers["transfer-encoding"]?.toLowerCase() === "chunked") {
    const parts: Buffer[] = [];
    for (;;) {
      const lineEnd = buf.indexOf("\r\n", at);
      if (lineEnd < 0) return null;
      const size = Number.parseInt(buf.subarray(at, lineEnd).toString("latin1"), 16);
      if (buf.length < lineEnd + 2 + size + 2) return null;
      parts.push(buf.subarray(lineEnd + 2, lineEnd + 2 + size));
      at = lineEnd + 2 + size + 2;
      if (size === 0) break;
    }
    return { res: { status, headers, body: Buffer.concat(parts).toString("utf8") }, rest: buf.subarray(at) };
  }
  const length = Number(headers["content-length"] ?? "0");
  if (buf.length < at + length) return null;
  return {
    res: { status, headers, body: buf.subarray(at, at + length).toString("utf8") },
    rest: buf.subarray(at + length),
  };
}

/** One connection to the gate: write bytes, read responses in order, each within PER_REQUEST_MS. */
class Conn {
  private buf: Buffer = Buffer.alloc(0);
  private failure: Error | null = null;
  private wake: () => void = () => {};
  private readonly socket: Socket;

  constructor(url: string) {
    const u = new URL(url);
    this.socket = connect(Number(u.port), u.hostname);
    this.socket.on("data", (d: Buffer) => {
      this.buf = Buffer.concat([this.buf, d]);
      this.wake();
    });
    const fail = (e: Error) => {
      this.failure ??= e;
      this.wake();
    };
    this.socket.on("error", fail);
    this.socket.on("end", () => fail(new Error("the gate closed the connection")));
  }

  /** Writes the parts in turn, yielding between them as a client streaming an upload does. */
  async write(parts: readonly (string | Buffer)[]): Promise<void> {
    for (const part of parts) {
      if (this.failure || this.socket.destroyed) return; // answered early and closed: the response tells
      await new Promise<void>((resolve) => this.socket.write(part, () => resolve()));
      await new Promise((resolve) => setImmediate(resolve));
    }
  }

  /** Stops sending (TCP half-close) while still reading. */
  endWrites(): void {
    this.socket.end();
  }

  async response(what: string): Promise<RawResponse> {
    const deadline = Date.now() + PER_REQUEST_MS;
    for (;;) {
      const parsed = parseResponse(this.buf);
      if (parsed) {
        this.buf = parsed.rest;
        return parsed.res;
      }
      if (this.failure) throw new Error(`${what}: ${this.failure.message}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`${what}: no answer within ${PER_REQUEST_MS} ms`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
  }

  close(): void {
    this.socket.destroy();
  }
}

const chunk = (part: Buffer): Buffer =>
  Buffer.concat([Buffer.from(`${part.length.toString(16)}\r\n`), part, Buffer.from("\r\n")]);
const LAST_CHUNK = "0\r\n\r\n";

function slices(body: Buffer, size = 16_384): Buffer[] {
  const out: Buffer[] = [];
  for (let at = 0; at < body.length; at += size) out.push(body.subarray(at, at + size));
  return out;
}

/** A debit body of `bytes` bytes: valid JSON, so only its size is wrong. */
const debitBody = (bytes: number): Buffer => {
  const head = JSON.stringify({ debit_id: uid("d-big"), amount: 1, metadata: { pad: "" } });
  return Buffer.from(head.replace('"pad":""', `"pad":"${"x".repeat(bytes - head.length)}"`));
};

function head(path: string, token: string, framing: string): string {
  const { host } = new URL(gate().url);
  return (
    `POST ${path} HTTP/1.1\r\nhost: ${host}\r\nauthorization: Bearer ${token}\r\n` +
    `content-type: application/json\r\n${framing}\r\n\r\n`
  );
}

function expect413(res: RawResponse): void {
  expect({ status: res.status, type: res.headers["content-type"] }).toEqual({
    status: 413,
    type: "application/problem+json",
  });
  expect(JSON.parse(res.body)).toMatchObject({ status: 413, code: "payload_too_large", detail: expect.any(String) });
  expect(res.headers["x-request-id"]).toMatch(/^[A-Za-z0-9._-]{1,128}$/);
}

describe("refused bodies never affect the requests that follow", () => {
  const g = gate();
  const account = uid("bodies");
  const debits = `/v1/accounts/${account}/debits`;
  let available = 1_000;

  beforeAll(async () => {
    const res = await api("POST", `/v1/accounts/${account}/grants`, {
      grant_id: "g1",
      amount: available,
      type: "purchased",
    });
    expect(res.status).toBe(201);
  });

  /** One request on a fresh connection, given up after PER_REQUEST_MS. */
  async function timed(method: string, path: string, body?: unknown): Promise<{ status: number; json: any }> {
    const res = await fetch(`${g.url}${path}`, {
      method,
      headers: { authorization: `Bearer ${g.adminToken}`, "content-type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(PER_REQUEST_MS),
    });
    return { status: res.status, json: await res.json() };
  }

  /** The next requests, on fresh connections: health, a balance read and a debit, each with the right answer. */
  async function nextRequestsAnswer(): Promise<void> {
    expect(await timed("GET", "/v1/health")).toEqual({ status: 200, json: { ok: true } });
    const balance = await timed("GET", `/v1/accounts/${account}/balance`);
    expect({ status: balance.status, available: balance.json.available }).toEqual({ status: 200, available });
    const debit = await timed("POST", debits, { debit_id: uid("d"), amount: 1 });
    available -= 1;
    expect({ status: debit.status, available: debit.json.balance?.available }).toEqual({ status: 200, available });
  }

  type Frame = (body: Buffer) => { framing: string; parts: (string | Buffer)[] };
  const oversized: [string, Frame, number][] = [
    [
      "chunked, 70 kB",
      (b) => ({ framing: "transfer-encoding: chunked", parts: [...slices(b).map(chunk), LAST_CHUNK] }),
      70_000,
    ],
    [
      "chunked, 900 kB",
      (b) => ({ framing: "transfer-encoding: chunked", parts: [...slices(b, 65_536).map(chunk), LAST_CHUNK] }),
      900_000,
    ],
    ["content-length, 70 kB", (b) => ({ framing: `content-length: ${b.length}`, parts: slices(b) }), 70_000],
  ];

  /** One oversized upload on a new connection, answered 413; the connection is left open for the caller. */
  async function refused(name: string, frame: Frame, bytes: number, round: number): Promise<Conn> {
    const { framing, parts } = frame(debitBody(bytes));
    const conn = new Conn(g.url);
    try {
      await conn.write([head(debits, g.adminToken, framing), ...parts]);
      expect413(await conn.response(`${name}, round ${round}`));
      return conn;
    } catch (e) {
      conn.close();
      throw e;
    }
  }

  for (const [name, frame, bytes] of oversized) {
    it(`${name}: 413 problem+json, then the next requests answer at once`, async () => {
      for (let round = 0; round < ROUNDS; round++) {
        (await refused(name, frame, bytes, round)).close();
        await nextRequestsAnswer();
      }
    });

    it(`${name}: the same kept-alive connection serves the next request`, async () => {
      const { host } = new URL(g.url);
      for (let round = 0; round < ROUNDS; round++) {
        const conn = await refused(name, frame, bytes, round);
        try {
          await conn.write([`GET /v1/health HTTP/1.1\r\nhost: ${host}\r\n\r\n`]);
          const next = await conn.response(`the request after ${name} on the same connection`);
          expect({ status: next.status, body: next.body }).toEqual({ status: 200, body: '{"ok":true}' });
        } finally {
          conn.close();
        }
      }
      await nextRequestsAnswer();
    });
  }

  it("an oversized chunked body that breaks off (no last chunk, the client stops sending): 413 problem+json", async () => {
    for (let round = 0; round < ROUNDS; round++) {
      const conn = new Conn(g.url);
      try {
        await conn.write([
          head(debits, g.adminToken, "transfer-encoding: chunked"),
          ...slices(debitBody(CAP + 8_000)).map(chunk),
        ]);
        conn.endWrites();
        expect413(await conn.response(`broken-off upload, round ${round}`));
      } finally {
        conn.close();
      }
      await nextRequestsAnswer();
    }
  });

  it("a body that stops short of its content-length: whatever answers it, the next requests answer at once", async () => {
    // The answer to this request is not asserted: under wrangler dev its own
    // proxy answers a client upload that breaks off (a text/plain 503) before
    // the gate's 400 can reach the client.
    for (let round = 0; round < ROUNDS; round++) {
      const body = debitBody(200);
      const conn = new Conn(g.url);
      try {
        await conn.write([head(debits, g.adminToken, `content-length: ${body.length + 100}`), body]);
        conn.endWrites();
        await conn.response(`short upload, round ${round}`).catch(() => null);
      } finally {
        conn.close();
      }
      await nextRequestsAnswer();
    }
  });

  it("a body within the cap holding a lone surrogate (key or value) is 400 invalid_request", async () => {
    for (const raw of [
      `{"debit_id":"d-lone","amount":1,"metadata":{"note":"\\ud800"}}`,
      `{"debit_id":"d-lone","amount":1,"metadata":{"\\udc00":"x"}}`,
    ]) {
      const res = await fetch(`${g.url}${debits}`, {
        method: "POST",
        headers: { authorization: `Bearer ${g.adminToken}`, "content-type": "application/json" },
        body: raw,
        signal: AbortSignal.timeout(PER_REQUEST_MS),
      });
      expect({ status: res.status, type: res.headers.get("content-type") }).toEqual({
        status: 400,
        type: "application/problem+json",
      });
      expect(await res.json()).toMatchObject({ code: "invalid_request", detail: expect.stringContaining("Unicode") });
    }
    await nextRequestsAnswer();
  });
});
