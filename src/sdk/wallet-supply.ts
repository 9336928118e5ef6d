/**
 * Where the wallet's receipts come from: asks the gate for them, resizes a
 * request the account cannot cover, and backs off after a 402. A request
 * that got no answer is asked again under the same id and amount.
 */
import { CreditGateError } from "./errors";
import { SingleFlight } from "./single-flight";
import type { ReceiptCreated } from "./types";
import type { WalletConfig } from "./wallet-options";
import type { Held, WalletStats } from "./wallet-settlement";

export class ReceiptSupply {
  /** The receipt request in flight (prefetch or on demand), shared by concurrent spends. */
  private readonly pending = new SingleFlight<Held | null>();
  /** After a 402: until when to refuse locally, and what the gate said was available. */
  private exhausted: { untilMs: number; available: number } | null = null;
  /**
   * A receipt request that got no answer: the gate may have created it. The
   * next request reuses its id and amount, so the gate replays it instead of
   * reserving another (which would be captured in full, never spent).
   */
  private inTransit: { receiptId: string; amount: number } | null = null;

  constructor(
    private readonly c: WalletConfig,
    /** Counts receipts and the credits they reserved. */
    private readonly stats: WalletStats,
    /** Takes each new receipt as soon as the gate hands it out. */
    private readonly place: (h: Held) => void,
  ) {}

  get inFlight(): Promise<Held | null> | null {
    return this.pending.inFlight;
  }

  /** What the gate said was available at its last 402 (0 when it never said). */
  get lastAvailable(): number {
    return this.exhausted?.available ?? 0;
  }

  /** Whether a recent 402 already says `amount` cannot be had: refuse without asking again. */
  backingOff(amount: number): boolean {
    return this.exhausted !== null && this.c.now() < this.exhausted.untilMs && amount > this.exhausted.available;
  }

  /**
   * Asks for `receiptAmount` (at least `min`); on 402, for what is available if
   * that covers `min`. Places the receipt; null when the account cannot cover `min`.
   */
  request(min: number): Promise<Held | null> {
    return this.pending.start(async () => {
      let want = Math.max(min, this.c.receiptAmount);
      for (let attempt = 0; attempt < 2; attempt++) {
        // After a request that got no answer, ask again under its id and amount: if the
        // gate created it, it replays that receipt instead of reserving a second one.
        const ask = this.inTransit ?? { receiptId: `${this.c.idPrefix}_${crypto.randomUUID()}`, amount: want };
        this.inTransit = ask;
        try {
          const created = await this.c.client.createReceipt(this.c.accountId, {
            receipt_id: ask.receiptId,
            amount: ask.amount,
            unit: this.c.unit,
            ttl_seconds: this.c.ttlSeconds,
            ...(this.c.audience === undefined ? {} : { audience: this.c.audience }),
          });
          this.inTransit = null;
          this.exhausted = null;
          const h = this.held(created);
          this.place(h);
          return h;
        } catch (e) {
          // No answer (or a 5xx): it may have been created, so `inTransit` stays for the next request.
          if (!(e instanceof CreditGateError) || e.status >= 500) throw e;
          this.inTransit = null; // a refusal: nothing was created under that id
          if (e.code !== "insufficient_credits") throw e;
          const available = typeof e.extra.available === "number" ? e.extra.available : 0;
          this.exhausted = { untilMs: this.c.now() + this.c.exhaustedBackoffMs, available };
          if (available < min || available >= ask.amount) return null;
          want = available;
        }
      }
      return null;
    });
  }

  private held(created: ReceiptCreated): Held {
    this.stats.receipts++;
    this.stats.reserved += created.amount;
    return {
      receiptId: created.receipt_id,
      token: created.receipt,
      amount: created.amount,
      used: 0,
      expiresAtMs: Date.parse(created.expires_at),
      settling: null,
      settled: null,
    };
  }
}
