/**
 * The AccountLedger's state and wiring (account-do.ts holds its RPC methods):
 * the account's core, alarm keeper, outbox courier to DB and the account's
 * ledger shard, the transfer, budget and lifecycle desks, the window with
 * its time travel, the metrics book, and the test seams on them.
 */
import { DurableObject } from "cloudflare:workers";
import { ledgerDb } from "../db/shards";
import { shipFaults } from "../faults";
import { MetricsBook } from "../metrics/counter";
import { dispatchAlerts } from "../webhooks/dispatch";
import { AlarmKeeper } from "./alarm";
import { BudgetDesk } from "./budget";
import { AccountCore } from "./core";
import { Lifecycle } from "./lifecycle";
import { OUTBOX_DELAY_MS, OutboxCourier } from "./outbox";
import type { ReferralPeer } from "./referral";
import { migrate } from "./schema";
import { ledgerStub } from "./stub";
import { TimeTravel } from "./time-travel";
import type { TransferPeer } from "./transfer-records";
import { TransferDesk } from "./transfers";
import { AccountWindow } from "./window";

export class AccountLedgerBase extends DurableObject<Env> {
  protected readonly core: AccountCore;
  protected readonly alarms: AlarmKeeper;
  /**
   * Test seam: wraps every D1 this object talks to (DB, and the ledger shard its entries ship to),
   * so a test can fail, delay or record D1 for one account; null: the bindings as they are.
   */
  shipVia: ((real: D1Database) => D1Database) | null = null;
  protected readonly courier: OutboxCourier;
  /** Transfers this account sends or receives, and its budget draws (transfers.ts, budget.ts). */
  protected readonly transfers: TransferDesk;
  protected readonly budgets: BudgetDesk;
  /** Recurring grants, awaiting payment, top-up and referrals, on the core's seams (lifecycle.ts). */
  protected readonly life: Lifecycle;
  /** The bounded window of entries with its checkpoints (window.ts), and reads of the past (time-travel.ts). */
  protected readonly past: TimeTravel;
  readonly metrics: MetricsBook; // per-minute counters (src/metrics/counter.ts); `dataset` is a test seam

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    const sql = ctx.storage.sql;
    migrate(sql);
    this.alarms = new AlarmKeeper(ctx.storage);
    void ctx.blockConcurrencyWhile(() => this.alarms.load());
    this.core = new AccountCore(
      sql,
      (write) => ctx.storage.transactionSync(write),
      (nowMs) => this.alarms.request(nowMs + OUTBOX_DELAY_MS - this.clock.offsetMs),
    );
    // Read at each shipment, so a test's `shipVia` takes effect on the next batch. Shipped
    // alerts fan out to webhooks straight away; the cron's dispatch job catches any missed.
    this.courier = new OutboxCourier(sql, () => {
      const accountId = this.core.account?.account_id ?? null;
      const reset = () => ctx.abort("injected fault: reset mid-shipment");
      const db = shipFaults(this.d1, env, reset); // src/faults.ts
      // Entries go to the account's ledger shard (src/db/shards.ts); with one shard, that is DB itself.
      const shard = accountId === null ? env.DB : ledgerDb(env, accountId);
      const entryDb = shard === env.DB ? db : shipFaults(this.shipVia?.(shard) ?? shard, env, reset);
      return { db, entryDb, accountId, onAlerts: (ids) => dispatchAlerts(this.d1, env.WEBHOOK_QUEUE, { ids }) };
    });
    const transact = (write: () => void) => ctx.storage.transactionSync(write);
    const peer = (accountId: string) => ledgerStub(env, accountId) as unknown as TransferPeer;
    const wake = (atMs: number) => this.alarms.request(atMs - this.clock.offsetMs);
    this.transfers = new TransferDesk(this.core, transact, peer, wake);
    this.budgets = new BudgetDesk(this.core, transact, peer, wake);
    const referralPeer = (accountId: string) => ledgerStub(env, accountId) as unknown as ReferralPeer;
    this.life = new Lifecycle(this.core, transact, wake, referralPeer, () => this.d1);
    this.past = new TimeTravel(this.core, new AccountWindow(this.core, env, transact));
    this.metrics = new MetricsBook(sql, this.core, () => this.d1, wake, env.METRICS);
    this.core.hooks.push(this.metrics.hook);
  }

  /** DB as this object sees it (through the test seam `shipVia` when one is set). */
  get d1(): D1Database {
    return this.shipVia?.(this.env.DB) ?? this.env.DB;
  }

  /** Test seam: tests move this account's clock with runInDurableObject. */
  get clock(): { offsetMs: number } {
    return this.core.clock;
  }
}
