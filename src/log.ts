/** One JSON line per event: ledger writes, errors, job runs. */
export function log(fields: Record<string, unknown>): void {
  console.log(JSON.stringify({ ts: new Date().toISOString(), ...fields }));
}
