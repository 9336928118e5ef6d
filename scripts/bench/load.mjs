/**
 * The bench's load generator and meters: autocannon (from the npm registry)
 * over loopback with a fresh body per request, and the CPU the server's
 * processes spent meanwhile, read from /proc (utime + stime of every process
 * in the server's process group, or of the pids given).
 */
import { readdirSync, readFileSync } from "node:fs";
import autocannon from "autocannon";

const CLK_TCK = 100; // Linux's USER_HZ: /proc/<pid>/stat counts CPU time in 1/100 s.

/** CPU ticks of one process (utime + stime), 0 once it is gone. */
function ticksOf(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return Number(fields[11]) + Number(fields[12]);
  } catch {
    return 0;
  }
}

/** The pids of process group `pgid` (wrangler dev runs detached: its workerd and proxy are in it). */
export function groupPids(pgid) {
  const out = [];
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, "utf8");
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      if (Number(fields[2]) === pgid) out.push(Number(name));
    } catch {
      // gone
    }
  }
  return out;
}

/** A process's command name (workerd, node, …), "?" once it is gone. */
function nameOf(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")"));
  } catch {
    return "?";
  }
}

/** A CPU meter over `pids()` (re-read at each reading, so processes started meanwhile count from then). */
export function cpuMeter(pids) {
  const split = cpuMeterByName(pids);
  return () => Object.values(split()).reduce((a, b) => a + b, 0);
}

/** The same meter, split by process name: ms of CPU per name (workerd, node: wrangler's own process). */
export function cpuMeterByName(pids) {
  const start = new Map();
  for (const pid of pids()) start.set(pid, ticksOf(pid));
  return () => {
    const ms = {};
    for (const pid of pids()) {
      const name = nameOf(pid);
      ms[name] = (ms[name] ?? 0) + ((ticksOf(pid) - (start.get(pid) ?? 0)) * 1000) / CLK_TCK;
    }
    return ms;
  };
}

/**
 * Drives `url` with `connections` for `seconds`; `body(i)` makes request i's
 * JSON body (unique ids), or `request(i)` its path and body. Returns throughput, latency percentiles (ms), the
 * CPU ms per request of `serverPids()`, and the non-2xx count (a benchmark
 * that errors is not a result: the caller checks).
 */
export async function drive({ url, method = "POST", headers = {}, body, request, connections, seconds, serverPids }) {
  let i = 0;
  const cpu = serverPids ? cpuMeterByName(serverPids) : null;
  const result = await autocannon({
    url,
    connections,
    duration: seconds,
    pipelining: 1,
    requests: [
      {
        method,
        headers: { "content-type": "application/json", ...headers },
        // `request(i)` may also aim request i at another path (debits spread over accounts).
        setupRequest: (req) => {
          const n = i++;
          if (request) {
            const r = request(n);
            return { ...req, path: r.path, body: JSON.stringify(r.body) };
          }
          return { ...req, body: body ? JSON.stringify(body(n)) : undefined };
        },
      },
    ],
  });
  const byName = cpu ? cpu() : null;
  const cpuMs = byName ? Object.values(byName).reduce((a, b) => a + b, 0) : null;
  const total = result.requests.total;
  const okCount = total - result.non2xx - result.errors;
  return {
    rps: Math.round(total / (result.duration || seconds)),
    ok: okCount,
    non2xx: result.non2xx,
    errors: result.errors + result.timeouts,
    p50_ms: result.latency.p50,
    p99_ms: result.latency.p99,
    p999_ms: result.latency.p99_9,
    cpu_ms_per_req: cpuMs === null || total === 0 ? null : Number((cpuMs / total).toFixed(3)),
    // Where that CPU went, per process name: what production keeps (workerd) and what it removes (wrangler's node).
    ...(byName && total > 0
      ? {
          cpu_split_ms_per_req: Object.fromEntries(
            Object.entries(byName)
              .filter(([, ms]) => ms > 0)
              .map(([name, ms]) => [name, Number((ms / total).toFixed(3))]),
          ),
        }
      : {}),
  };
}
