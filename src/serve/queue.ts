/**
 * One generation at a time, and a bounded line of waiting ones. A request past the line is
 * refused at once (the HTTP layer answers 429 with Retry-After); a waiting request whose client
 * goes away leaves the line without running.
 */

/** Returned by `run` when the job's signal aborted while it waited: it never ran. */
export const NOT_STARTED = Symbol('not started');

export class QueueFullError extends Error {
  override readonly name = 'QueueFullError';
  constructor(
    /** Seconds after which a retry may find room: the expected time of the work ahead. */
    readonly retryAfterSeconds: number,
  ) {
    super('the queue is full');
  }
}

interface Waiting {
  signal: AbortSignal;
  start: () => void;
}

export class GenerationQueue {
  private busy = false;
  private readonly waiting: Waiting[] = [];
  /** Moving average of a job's duration (ms), for Retry-After. */
  private averageMs: number | undefined;

  constructor(
    /** Jobs that may wait while one runs. */
    readonly limit: number,
  ) {}

  get running(): number {
    return this.busy ? 1 : 0;
  }

  get queued(): number {
    return this.waiting.length;
  }

  /**
   * Runs `job` when every earlier one has ended. Throws QueueFullError when `limit` jobs already
   * wait; resolves to NOT_STARTED when `signal` aborts before the job's turn.
   */
  async run<T>(signal: AbortSignal, job: () => Promise<T>): Promise<T | typeof NOT_STARTED> {
    if (signal.aborted) return NOT_STARTED;
    if (this.busy) {
      if (this.waiting.length >= this.limit) throw new QueueFullError(this.retryAfter());
      const started = await new Promise<boolean>((resolve) => {
        const entry: Waiting = {
          signal,
          start: () => {
            signal.removeEventListener('abort', onAbort);
            resolve(true);
          },
        };
        const onAbort = () => {
          const i = this.waiting.indexOf(entry);
          if (i >= 0) this.waiting.splice(i, 1);
          resolve(false);
        };
        signal.addEventListener('abort', onAbort, { once: true });
        this.waiting.push(entry);
      });
      // `start` handed the turn over with `busy` still set.
      if (!started) return NOT_STARTED;
    } else {
      this.busy = true;
    }
    const t0 = performance.now();
    try {
      return await job();
    } finally {
      const ms = performance.now() - t0;
      this.averageMs = this.averageMs === undefined ? ms : 0.7 * this.averageMs + 0.3 * ms;
      const next = this.waiting.shift();
      if (next) next.start();
      else this.busy = false;
    }
  }

  private retryAfter(): number {
    const each = (this.averageMs ?? 1000) / 1000;
    return Math.max(1, Math.ceil(each * (this.waiting.length + 1)));
  }
}
