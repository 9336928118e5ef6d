/**
 * The account's one alarm, kept armed while work remains. The alarm is how
 * the outbox ships and lots expire on time, so losing it silently loses
 * history until the cron notices: every decision here trusts storage's
 * `getAlarm()` over memory.
 */
import { log } from "../log";

type AlarmStorage = Pick<DurableObjectStorage, "getAlarm" | "setAlarm">;

export class AlarmKeeper {
  /** The alarm this object last set or read (real clock); null: none known. */
  private hintMs: number | null = null;
  /** Checks run one after another, so a later request never overwrites an earlier alarm it did not see. */
  private checks: Promise<void> = Promise.resolve();

  constructor(private readonly storage: AlarmStorage) {}

  /** Reads the alarm storage holds (on wake, before the first request). */
  async load(): Promise<void> {
    this.hintMs = await this.storage.getAlarm();
  }

  /**
   * Makes sure an alarm fires at or before `atMs` (real clock). When memory
   * already knows an earlier one, storage confirms it: an alarm can be gone
   * (a handler the runtime gave up on takes it along) while memory still
   * believes in it, and then nothing would ever set it again.
   */
  request(atMs: number): void {
    if (this.hintMs === null || atMs < this.hintMs) {
      this.hintMs = atMs;
      void this.storage.setAlarm(atMs);
      return;
    }
    this.checks = this.checks.then(() => this.confirm(atMs)).catch((e: unknown) => this.failed(e));
  }

  private async confirm(atMs: number): Promise<void> {
    const current = await this.storage.getAlarm();
    if (current === null || current > atMs) {
      this.hintMs = atMs;
      await this.storage.setAlarm(atMs);
    } else {
      this.hintMs = current;
    }
  }

  /** The alarm handler started: the alarm that woke it is spent. */
  fired(): void {
    this.hintMs = null;
  }

  /** End of the handler: arm for `atMs` (null: no work left) unless storage already has an earlier alarm. */
  async settle(atMs: number | null): Promise<void> {
    await this.checks;
    const current = await this.storage.getAlarm();
    if (atMs !== null && (current === null || current > atMs)) {
      await this.storage.setAlarm(atMs);
      this.hintMs = atMs;
    } else {
      this.hintMs = current;
    }
  }

  private failed(e: unknown): void {
    this.hintMs = null;
    log({ event: "alarm.error", step: "arm", error: e instanceof Error ? e.message : String(e) });
  }
}
