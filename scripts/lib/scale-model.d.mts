/** Types for scale-model.mjs, so the TypeScript unit test can import it. */

export interface RowItem {
  what: string;
  table: number;
  index: number;
}

export interface Usage {
  workersRequests: number;
  workersCpuMs: number;
  doRequests: number;
  doGbSeconds: number;
  doRowsWritten: number;
  doRowsRead: number;
  d1RowsWritten: number;
  d1RowsRead: number;
  r2ClassA: number;
  queuesOps: number;
  aePoints: number;
}

export interface Counts {
  requests: number;
  cpuMs: number;
  doCalls: number;
  operations: number;
  entries: number;
  shipments: number;
  r2Puts?: number;
  queueMessages?: number;
}

export interface CostParams {
  doActiveMsPerCall: number;
  shipWallMs: number;
  countIndexRows?: boolean;
}

export type Prices = Record<
  | "workersRequestsPerM"
  | "workersCpuPerMs"
  | "doRequestsPerM"
  | "doGbSecondsPerM"
  | "doRowsReadPerM"
  | "doRowsWrittenPerM"
  | "doStoragePerGbMonth"
  | "d1RowsReadPerM"
  | "d1RowsWrittenPerM"
  | "d1StoragePerGbMonth"
  | "r2StoragePerGbMonth"
  | "r2ClassAPerM"
  | "r2ClassBPerM"
  | "queuesOpsPerM"
  | "aePointsPerM",
  number
>;

export const PRICES: Prices;
export const LIMITS: Record<string, number>;
export const MEASURED: {
  d1ShardBytesPerEntry: number;
  d1JournalBytesPerRow: number;
  d1RollupBytesPerRow: number;
  d1HeadBytesPerAccount: number;
  d1SegmentBytesPerRow: number;
  r2BytesPerEntry: number;
  doInObjectDebitUs: number;
  doInObjectDebitsPerS: number;
  workerCpuMsPerDebit: number;
  doColumnBytes: { entries: number; lotMarks: number; debits: number; idempotency: number };
};
export const CODE: Record<
  | "OUTBOX_BATCH"
  | "OUTBOX_DELAY_MS"
  | "OUTBOX_ROWS_PER_DEBIT"
  | "IDEMPOTENCY_RETENTION_DAYS"
  | "MAX_USAGE_EVENTS"
  | "LEDGER_SHARDS_MAX"
  | "ARCHIVE_AFTER_DAYS"
  | "DO_WINDOW_ENTRIES"
  | "CHECKPOINT_EVERY"
  | "SEGMENT_MAX_ENTRIES"
  | "CRON_RUNS_PER_DAY"
  | "PARALLEL",
  number
>;
export const CRON_JOBS: { job: string; perRun: number; unit: string; constant: string }[];
export const DO_ROWS: { perEntry: RowItem[]; perOperation: RowItem[]; perShipment: RowItem[] };
export const D1_ROWS: { perEntry: RowItem[]; perShipment: RowItem[] };

export function mulberry32(seed: number): () => number;
export function harmonic(n: number, s: number): number;
export function zipfShare(rank: number, s: number, h: number): number;
export function sampleRanks(
  n: number,
  hot: number,
  sample: number,
  rng: () => number,
): { rank: number; weight: number }[];
export function poisson(lambda: number, rng: () => number): number;
export function weightedQuantile(items: { value: number; weight: number }[], q: number): number;
export function debitsPerShipment(ratePerS: number, shipMs: number, delayMs?: number): number;
export function sumRows(rows: RowItem[], withIndexes?: boolean): number;
export function usageOf(c: Counts, p: CostParams): Usage;
export function perDebitUsage(k: number, p: CostParams & { cpuMsPerRequest: number }): Usage;
export function costPerMillion(
  usage: Usage,
  prices?: Prices,
  millions?: number,
): { lines: { item: string; quantity: number; usd: number }[]; usd: number };
export function scaleUsage(usage: Usage, n: number): Usage;
export function storageUsdPerMonth(bytes: number, pricePerGbMonth: number): number;
export function hotAccountPlan(
  ratePerS: number,
  capRps: number,
  o: { batch: number; uses: number; inObjectPerS: number },
): {
  direct: boolean;
  batchCalls: number;
  batchesSuffice: boolean;
  receiptCalls: number;
  receiptsSuffice: boolean;
  children: number;
};
export function doBytes(o: {
  totalDebits: number;
  debitsPerDay: number;
  bytes?: { entries: number; lotMarks: number; debits: number; idempotency: number };
  indexFactor?: number;
}): number;
export function daysToObjectLimit(debitsPerDay: number, limitBytes?: number, o?: { indexFactor?: number }): number;
export function shardsNeeded(bytes: number, triggerBytes: number): number;
export function tierState(o: {
  entriesTotal: number;
  entriesPerDay: number;
  archiveAfterDays: number;
  accounts: number;
  journalShare: number;
  rollupRows: number;
  triggerBytes: number;
}): {
  days: number;
  d1Entries: number;
  r2Entries: number;
  shardBytes: number;
  shards: number;
  bytesPerShard: number;
  shardsOverMax: boolean;
  fitsEntriesPerDay: number;
  retentionDaysThatFit: number;
  journalBytes: number;
  rollupBytes: number;
  primaryBytes: number;
  primaryOverLimit: boolean;
  r2Bytes: number;
};
export function r2Month(
  accountMonths: { entries: number; weight: number }[],
  shards: number,
): { segments: number; manifests: number; classA: number; bytes: number };
export function cronCoverage(
  demandPerDay: Record<string, number>,
  callMs?: number,
): {
  job: string;
  perRun: number;
  unit: string;
  constant: string;
  perDay: number;
  perSecond: number;
  demand: number;
  ratio: number;
  behind: boolean;
  consumers: number;
}[];
