/** Progress events: a throttle (at most one event per interval) and a sliding-window speed meter. */

export interface DownloadProgress {
  /** The file being fetched (a repository path for the model download, a file name otherwise). */
  file: string;
  /** Bytes of this file on disk so far, resumed bytes included. */
  receivedBytes: number;
  /** Size of this file, when known. */
  totalBytes: number | undefined;
  /** Transfer speed over the last few seconds (0 before the first bytes). */
  bytesPerSecond: number;
}

/** Speed over a sliding window of samples. */
export class SpeedMeter {
  private samples: Array<{ t: number; bytes: number }> = [];
  private total = 0;
  constructor(
    private readonly now: () => number = Date.now,
    private readonly windowMs = 5000,
  ) {}

  add(bytes: number): void {
    this.total += bytes;
    const t = this.now();
    this.samples.push({ t, bytes: this.total });
    const cutoff = t - this.windowMs;
    // Keep one sample at or before the window start as the baseline.
    while (this.samples.length > 2 && this.samples[1].t <= cutoff) this.samples.shift();
  }

  /** Bytes per second over the window; 0 until two samples apart in time exist. */
  rate(): number {
    if (this.samples.length < 2) return 0;
    const first = this.samples[0];
    const last = this.samples[this.samples.length - 1];
    const dt = last.t - first.t;
    if (dt <= 0) return 0;
    return Math.round(((last.bytes - first.bytes) * 1000) / dt);
  }

  /** Marks the start of a transfer (a zero-byte sample), so the first chunk's time counts. */
  start(): void {
    this.samples = [{ t: this.now(), bytes: this.total }];
  }
}

/** Calls `emit` at most once per `intervalMs`, except forced calls (start, end). */
export class Throttle<T> {
  private last = -Infinity;
  constructor(
    private readonly emit: ((value: T) => void) | undefined,
    private readonly intervalMs = 100,
    private readonly now: () => number = Date.now,
  ) {}

  push(value: T, force = false): void {
    if (!this.emit) return;
    const t = this.now();
    if (!force && t - this.last < this.intervalMs) return;
    this.last = t;
    try {
      this.emit(value);
    } catch {
      // A failing progress listener must not break the download.
    }
  }
}
