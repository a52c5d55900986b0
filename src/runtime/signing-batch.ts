/**
 * Signatures of a burst handed on together: each job's result is released in the order the
 * jobs were added, and the ready ones in one turn — at once when no other job is still
 * under way (a lone job waits for nothing), else after `maxWaitMs` at most. Used for the
 * signatures of KV writes (node.ts, `sealEntry`) and of queue items (seg-seals.ts): the
 * core then sends a burst's writes batched, as it did before they were signed, instead
 * of one message each as the signatures finish one task at a time.
 */
export type Settled<T> = { ok: true; value: T } | { ok: false; error: unknown };

interface Job<T> {
  done: boolean;
  result?: Settled<T>;
  release: (r: Settled<T>) => void;
}

export class SigningBatch {
  private readonly jobs: Job<never>[] = [];
  private pending = 0;
  private timer: ReturnType<typeof setTimeout> | null = null;

  constructor(private readonly maxWaitMs: number) {}

  /** `work` (a signature under way, or a function that starts one and may throw); `release` gets its result in turn. */
  add<T>(work: () => Promise<T>, release: (r: Settled<T>) => void): void {
    const job: Job<T> = { done: false, release };
    this.jobs.push(job as unknown as Job<never>);
    this.pending++;
    let p: Promise<T>;
    try {
      p = work();
    } catch (error) {
      p = Promise.reject(error);
    }
    p.then(
      (value) => this.ready(job, { ok: true, value }),
      (error: unknown) => this.ready(job, { ok: false, error }),
    );
  }

  private ready<T>(job: Job<T>, result: Settled<T>): void {
    job.done = true;
    job.result = result;
    if (--this.pending === 0) return this.flush();
    this.timer ??= setTimeout(() => this.flush(), this.maxWaitMs);
  }

  /** The finished head of the queue, in order, in this one turn. */
  private flush(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    let n = 0;
    while (n < this.jobs.length && this.jobs[n]!.done) n++;
    for (const job of this.jobs.splice(0, n)) job.release(job.result!);
  }
}
