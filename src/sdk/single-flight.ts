/**
 * One run of an async job at a time, shared by every caller while it lasts:
 * concurrent spends wait for one receipt request instead of each reserving
 * credits, and overlapping settles do not send the same request twice.
 */
export class SingleFlight<T> {
  private run: Promise<T> | null = null;

  /** The run in progress, if any. */
  get inFlight(): Promise<T> | null {
    return this.run;
  }

  /** Joins the run in progress, or starts `job` as the new one. */
  start(job: () => Promise<T>): Promise<T> {
    if (this.run !== null) return this.run;
    const run = job();
    this.run = run;
    const clear = () => {
      if (this.run === run) this.run = null;
    };
    run.then(clear, clear);
    return run;
  }
}
