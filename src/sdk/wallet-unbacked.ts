/**
 * Usage the wallet admitted fail-open, with no receipt behind it: owed to
 * the gate and debited in batches once it answers again.
 */
import { CreditGateError } from "./errors";
import { SingleFlight } from "./single-flight";
import type { WalletConfig } from "./wallet-options";

export class UnbackedUsage {
  /** Fail-open usage not yet in a debit batch. */
  private unbatched = 0;
  /** The debit in progress: its id always carries this amount, so a retry is the same request. */
  private batch: { debitId: string; amount: number } | null = null;
  private seq = 0;
  private readonly flushing = new SingleFlight<number>();
  /** Makes debit ids unique across wallets and restarts that share an idPrefix. */
  private readonly instanceId = crypto.randomUUID();

  constructor(private readonly c: WalletConfig) {}

  add(amount: number): void {
    this.unbatched += amount;
  }

  /** Whether anything is owed. */
  get due(): boolean {
    return this.unbatched > 0 || this.batch !== null;
  }

  /** What is still owed, in a batch or not. */
  get owed(): number {
    return this.unbatched + (this.batch?.amount ?? 0);
  }

  /**
   * Debits what is owed; resolves to the amount the gate took. A batch's id
   * and amount are fixed when it is formed and kept until the gate takes it,
   * so a retry is the same request (the gate replays it) and never a 409;
   * usage admitted meanwhile waits for the next batch.
   */
  flush(): Promise<number> {
    return this.flushing.start(async () => {
      let debited = 0;
      for (let round = 0; round < 3; round++) {
        if (this.batch === null) {
          if (this.unbatched === 0) break;
          this.batch = {
            debitId: `${this.c.idPrefix}_unbacked_${this.instanceId}_${this.seq++}`,
            amount: this.unbatched,
          };
          this.unbatched = 0;
        }
        const batch = this.batch;
        try {
          await this.c.client.debit(this.c.accountId, {
            debit_id: batch.debitId,
            amount: batch.amount,
            unit: this.c.unit,
          });
        } catch (e) {
          // Only another request under the same id could cause this: owe the amount under a new id.
          if (e instanceof CreditGateError && e.code === "idempotency_conflict") {
            this.batch = null;
            this.unbatched += batch.amount;
            continue;
          }
          break; // no answer, or refused (e.g. 402): the same batch is tried again next time
        }
        this.batch = null;
        debited += batch.amount;
      }
      return debited;
    });
  }
}
