/** Typed errors: a problem+json answer from the gate, or no answer at all. */
import type { ErrorCode } from "../errors";

export type { ErrorCode };

/** The gate answered with a problem (RFC 9457). `code` is stable; switch on it. */
export class CreditGateError extends Error {
  override readonly name = "CreditGateError";
  constructor(
    /** The contract's error code, or `unexpected_response` for a non-problem error body. */
    readonly code: ErrorCode | "unexpected_response",
    readonly status: number,
    readonly detail: string,
    /** Extra problem members, e.g. `available` and `requested` on 402. */
    readonly extra: Record<string, unknown> = {},
    readonly requestId: string | null = null,
  ) {
    super(`${status} ${code}: ${detail}`);
  }
}

/** No answer from the gate after every attempt (network errors, timeouts, 502/503/504). */
export class GateUnreachableError extends Error {
  override readonly name = "GateUnreachableError";
  readonly code = "gate_unreachable";
  constructor(
    readonly attempts: number,
    override readonly cause: unknown,
  ) {
    super(
      `the gate did not answer after ${attempts} attempt(s): ${cause instanceof Error ? cause.message : String(cause)}`,
    );
  }
}

const PROBLEM_MEMBERS = new Set(["type", "title", "status", "code", "detail"]);

/** Builds a CreditGateError from a response body (problem+json or anything else). */
export function errorFromResponse(status: number, body: unknown, requestId: string | null): CreditGateError {
  if (body !== null && typeof body === "object" && typeof (body as { code?: unknown }).code === "string") {
    const problem = body as Record<string, unknown>;
    const extra: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(problem)) if (!PROBLEM_MEMBERS.has(k)) extra[k] = v;
    return new CreditGateError(
      problem.code as ErrorCode,
      status,
      typeof problem.detail === "string" ? problem.detail : "",
      extra,
      requestId,
    );
  }
  return new CreditGateError("unexpected_response", status, `HTTP ${status} without a problem body`, {}, requestId);
}
