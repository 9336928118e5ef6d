/** Types for wrangler.mjs, so TypeScript tests and tools can import it. */
import type { ChildProcess } from "node:child_process";

export function wranglerEnv(extra?: Record<string, string>): NodeJS.ProcessEnv;
export function runWrangler(args: string[], opts?: { echo?: boolean }): Promise<{ code: number; output: string }>;
export function applyLocalMigrations(opts?: { persistTo?: string; echo?: boolean }): Promise<string>;
export function startWranglerDev(opts: {
  port: number;
  ip?: string;
  persistTo?: string;
  envFile?: string;
  inspectorPort?: number;
  detached?: boolean;
  stdio?: "inherit" | "pipe";
  extraArgs?: string[];
}): ChildProcess;
export function freePort(host?: string): Promise<number>;
export function portIsFree(port: number, host?: string): Promise<boolean>;
export function waitForHealth(
  url: string,
  opts?: { child?: ChildProcess; timeoutMs?: number; intervalMs?: number },
): Promise<void>;
export function stopWrangler(child: ChildProcess, graceMs?: number): Promise<void>;
export interface LocalGate {
  dir: string;
  url: string;
  adminToken: string;
  /** The private signing JWK (kid, alg ES256, use sig). */
  signing: Record<string, string>;
  /** The JWK set JSON the gate signs with (private). */
  signingJwks: string;
  child: ChildProcess;
  stop(): Promise<void>;
}
export function startLocalGate(opts: {
  label: string;
  keep?: boolean;
  healthTimeoutMs?: number;
  config?: string;
  /** More variables written into the env file, e.g. `{ FAULT_INJECTION: "1" }`. */
  vars?: Record<string, string>;
}): Promise<LocalGate>;
