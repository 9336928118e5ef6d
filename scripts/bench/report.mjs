/** The bench's output: the table, the ratios the issue's targets name, and one `BENCH_JSON {...}` line. */
import os from "node:os";

const round = (n, digits = 0) => (n === null || n === undefined ? null : Number(n.toFixed(digits)));

export function report(scenarios, notes, run) {
  const { elapsedS, seconds: SECONDS, connections: CONNECTIONS, quick: QUICK, history: HISTORY } = run;
  const cpus = os.cpus();
  const machine = {
    cpu: cpus[0]?.model ?? "unknown",
    cores: cpus.length,
    node: process.version,
    os: `${os.platform()} ${os.release()}`,
    seconds_per_scenario: SECONDS,
    connections: CONNECTIONS,
    quick: QUICK,
    elapsed_s: round(elapsedS),
  };
  const rows = [];
  const row = (name, s) =>
    rows.push([
      name,
      s.rps,
      s.p50_ms ?? "-",
      s.p99_ms ?? "-",
      s.p999_ms ?? "-",
      s.cpu_ms_per_req ?? "-",
      s.unit ?? "req/s",
    ]);
  for (const [name, s] of Object.entries(scenarios)) {
    if (name === "lots_scaling") {
      for (const [k, v] of Object.entries(s)) row(`lots_scaling.${k} (${v.response_bytes} B)`, v);
    } else row(name, s);
  }
  const head = ["scenario", "rps", "p50 ms", "p99 ms", "p999 ms", "cpu ms/req", "unit"];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => String(r[i]).length)));
  const line = (r) => r.map((c, i) => String(c).padEnd(widths[i])).join("  ");
  console.log(`\n${machine.cpu}, ${machine.cores} cores, Node ${machine.node}, ${machine.os}; loopback, wrangler dev`);
  console.log(line(head));
  console.log(line(widths.map((w) => "-".repeat(w))));
  for (const r of rows) console.log(line(r));
  for (const name of ["noop_do", "debit_hot"]) {
    const split = scenarios[name]?.cpu_split_ms_per_req;
    if (split) console.log(`${name}, CPU ms per request by process: ${JSON.stringify(split)}`);
  }
  if (scenarios.ledger_parts) {
    const parts = Object.entries(scenarios.ledger_parts).filter(([k]) => k.endsWith("_us"));
    console.log(
      `ledger_parts, µs each inside the object: ${parts.map(([k, v]) => `${k.slice(0, -3)} ${v}`).join(", ")}`,
    );
  }
  const hot = scenarios.debit_hot;
  const noop = scenarios.noop_do;
  const pg = scenarios.peer_postgres;
  const ratios = {
    debit_hot_over_noop_rps: round(hot.rps / noop.rps, 2),
    debit_hot_p99_over_noop_p99: round(hot.p99_ms / noop.p99_ms, 2),
    receipts_over_postgres: round(scenarios.receipts.rps / pg.rps, 1),
    usage_over_postgres: round(scenarios.usage_batch.rps / pg.rps, 1),
    usage_over_debit_hot: round(scenarios.usage_batch.rps / hot.rps, 1),
    receipts_over_debit_hot: round(scenarios.receipts.rps / hot.rps, 1),
  };
  const lots = scenarios.lots_scaling;
  if (lots.lots_100 && lots.lots_100000)
    ratios.lots_100000_p50_over_lots_100 = round(lots.lots_100000.p50_ms / lots.lots_100.p50_ms, 2);
  if (lots.lots_100 && lots[`history_${HISTORY}`])
    ratios.history_p50_over_lots_100 = round(lots[`history_${HISTORY}`].p50_ms / lots.lots_100.p50_ms, 2);
  const parts = scenarios.ledger_parts;
  if (parts) {
    ratios.ledger_debit_us = parts.debit_us;
    ratios.debit_hot_cpu_ms_over_in_object_ms = round(hot.cpu_ms_per_req / (parts.debit_us / 1000), 1);
  }
  console.log(`\nratios (one run): ${JSON.stringify(ratios)}`);
  console.log(`Durable Object storage: ${JSON.stringify(notes)}`);
  console.log(`BENCH_JSON ${JSON.stringify({ machine, scenarios, ratios, notes })}`);
}
