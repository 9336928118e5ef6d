/**
 * The soak's faults (scripts/soak.mjs), on a gate started with
 * FAULT_INJECTION=1 (the switch and `/__faults` are src/faults.ts and
 * src/api/faults-admin.ts):
 *   - a cycle of phases, PHASE_MS each: D1 refusing, losing the answer of
 *     and delaying outbox shipments; Durable Objects reset in the middle of a
 *     shipment (after D1 committed, before the rows are marked shipped); the
 *     webhook delivery failing or hanging (in the Worker, and the soak's own
 *     loopback receiver answering 500 or never); then all off;
 *   - every RESTART_EVERY_MS, wrangler dev itself stopped and started again on
 *     the same state (every Durable Object reset between operations, every
 *     request in flight cut);
 *   - the cron every CRON_EVERY_MS, sometimes two runs at once.
 * Counters: what the Worker says it injected (GET /__faults; carried over a
 * restart, which clears them), plus restarts and the receiver's refusals.
 */
import { createServer } from "node:http";
import { sleep } from "./soak-http.mjs";

export const PHASE_MS = 3_000;
export const CRON_EVERY_MS = 20_000;
/** How long the receiver keeps a hung delivery open: past the gate's 10 s attempt timeout. */
export const HANG_MS = 12_000;
const CRON_PATH = `/cdn-cgi/handler/scheduled?cron=${encodeURIComponent("*/5 * * * *")}`;

/** The cycle. Each plan is the whole plan (`POST /__faults` replaces it). */
export const PHASES = [
  { name: "d1", plan: { d1_ship_error: 0.3, d1_ship_error_after_commit: 0.2, d1_ship_delay_ms: 400 }, receiver: "ok" },
  { name: "do_reset", plan: { do_reset_mid_ship: 0.3, d1_ship_error_after_commit: 0.1 }, receiver: "ok" },
  { name: "webhook", plan: { webhook_fail: 0.4, webhook_hang: 0.1 }, receiver: "fail" },
  { name: "off", plan: {}, receiver: "ok" },
];

/** A loopback webhook receiver whose `state.mode` is "ok" (204), "fail" (500) or "hang". */
export async function startReceiver() {
  const state = { mode: "ok", received: 0, ok: 0, failed: 0, hung: 0 };
  const timers = new Set();
  const server = createServer((req, res) => {
    req.resume();
    req.on("end", () => {
      state.received++;
      if (state.mode === "fail") {
        state.failed++;
        res.writeHead(500).end();
      } else if (state.mode === "hang") {
        state.hung++;
        const t = setTimeout(() => res.writeHead(503).end(), HANG_MS);
        timers.add(t);
        res.on("close", () => {
          clearTimeout(t);
          timers.delete(t);
        });
      } else {
        state.ok++;
        res.writeHead(204).end();
      }
    });
  });
  await new Promise((r) => server.listen(0, "127.0.0.1", r));
  const url = `http://127.0.0.1:${server.address().port}/hook`;
  const close = async () => {
    for (const t of timers) clearTimeout(t);
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  };
  return { url, state, close };
}

/** Sums two counter objects. */
const add = (a, b) => {
  const out = { ...a };
  for (const [k, v] of Object.entries(b ?? {})) out[k] = (out[k] ?? 0) + v;
  return out;
};

/**
 * Starts the fault cycle and the cron loop; `stop()` ends both, turns every
 * fault off and answers the counters. `restartEveryMs` 0: no restarts.
 */
export function startFaults({ client, gate, receiver, seed, restartEveryMs, log }) {
  let stopped = false;
  const wakers = new Set();
  const nap = (ms) =>
    new Promise((r) => {
      const done = () => {
        clearTimeout(t);
        wakers.delete(done);
        r();
      };
      const t = setTimeout(done, ms);
      wakers.add(done);
    });
  let carried = {};
  const figures = { phases: 0, phases_refused: 0, restarts: 0, restart_failed: null, cron_runs: 0, cron_failed: 0 };
  let restarting = false;

  const snapshot = async () => {
    const r = await client.call("GET", "/__faults");
    return r.status === 200 ? r.json.counters : null;
  };

  const cycle = (async () => {
    let lastRestart = Date.now();
    for (let i = 0; !stopped; i++) {
      const phase = PHASES[i % PHASES.length];
      const r = await client.call("POST", "/__faults", { ...phase.plan, seed: (seed + i) >>> 0 });
      if (r.status === 200) figures.phases++;
      else figures.phases_refused++;
      receiver.state.mode = phase.name === "webhook" ? (i % 8 === 2 ? "hang" : "fail") : phase.receiver;
      await nap(PHASE_MS);
      if (!stopped && restartEveryMs > 0 && phase.name === "off" && Date.now() - lastRestart >= restartEveryMs) {
        carried = add(carried, await snapshot());
        log(`fault: restarting wrangler dev on the same state (restart ${figures.restarts + 1})`);
        restarting = true;
        const t0 = Date.now();
        try {
          await gate.restart();
          figures.restarts++;
          log(`fault: wrangler dev back after ${((Date.now() - t0) / 1000).toFixed(1)} s`);
        } catch (e) {
          figures.restart_failed = String(e).slice(0, 300);
          log(`fault: wrangler dev did not come back: ${figures.restart_failed}`);
          return;
        } finally {
          restarting = false;
          lastRestart = Date.now();
        }
      }
    }
  })();

  const cron = (async () => {
    let i = 0;
    while (!stopped) {
      await nap(CRON_EVERY_MS);
      if (stopped || restarting) continue;
      const twice = i++ % 4 === 3; // a duplicate run at once
      const runs = await Promise.all(
        Array.from({ length: twice ? 2 : 1 }, () => client.call("GET", CRON_PATH, undefined, { timeoutMs: 120_000 })),
      );
      for (const r of runs) r.status === 200 ? figures.cron_runs++ : figures.cron_failed++;
    }
  })();

  return {
    figures,
    /** Ends both loops at once, without asking the gate anything (the way out on a signal or give-up). */
    halt() {
      stopped = true;
      for (const w of [...wakers]) w();
    },
    async stop() {
      stopped = true;
      for (const w of [...wakers]) w();
      await Promise.all([cycle, cron]);
      receiver.state.mode = "ok";
      const off = await client.send("POST", "/__faults", {});
      if (off?.status !== 200) throw new Error(`could not turn faults off: ${off?.status} ${off?.text}`);
      const counters = add(carried, off.json.counters);
      const worker = Object.values(counters).reduce((s, v) => s + v, 0);
      return {
        counters,
        worker,
        total: worker + figures.restarts + receiver.state.failed + receiver.state.hung,
      };
    },
  };
}

/** Runs the cron once (wrangler's local trigger); true on 200. */
export async function runCron(client) {
  const r = await client.call("GET", CRON_PATH, undefined, { timeoutMs: 120_000 });
  return r.status === 200;
}

export { sleep };
