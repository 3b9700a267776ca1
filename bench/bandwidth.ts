/**
 * Memory read bandwidth, without native code of our own: each thread streams through its own
 * large buffer with `Buffer.indexOf` of a byte that is not there (libc memchr, vectorized), several
 * passes, best of. The buffers are filled with a non-zero byte first, so no page is the shared
 * zero page. With N threads all passes start together (an Atomics barrier) and the bandwidth of a
 * pass is all bytes read over the time from the first start to the last end.
 *
 *   tsx bench/bandwidth.ts [--threads N] [--mb-per-thread M] [--passes P]
 */
import { Worker } from 'node:worker_threads';

export interface BandwidthResult {
  threads: number;
  bytesPerPass: number;
  passes: number;
  /** Best pass, bytes per second. */
  bestBytesPerSecond: number;
  /** Median pass, bytes per second. */
  medianBytesPerSecond: number;
}

interface WorkerData {
  bytes: number;
  passes: number;
  barrier: SharedArrayBuffer;
  threads: number;
}

/** The worker, as plain JavaScript (workers do not inherit the TypeScript loader). */
const WORKER_SOURCE = `
const { parentPort, workerData: d } = require('node:worker_threads');
const buf = Buffer.alloc(d.bytes, 0x5a);
const bar = new Int32Array(d.barrier);
const spans = [];
if (buf.indexOf(0) !== -1) throw new Error('unexpected byte'); // warm-up pass
for (let p = 0; p < d.passes; p++) {
  if (Atomics.add(bar, p, 1) + 1 === d.threads) Atomics.notify(bar, p);
  else while (Atomics.load(bar, p) < d.threads) Atomics.wait(bar, p, Atomics.load(bar, p), 1000);
  const t0 = performance.timeOrigin + performance.now();
  if (buf.indexOf(0) !== -1) throw new Error('unexpected byte');
  spans.push([t0, performance.timeOrigin + performance.now()]);
}
parentPort.postMessage(spans);
`;

export async function measureBandwidth(opts: { threads?: number; bytesPerThread?: number; passes?: number } = {}): Promise<BandwidthResult> {
  const threads = opts.threads ?? 2;
  const bytes = opts.bytesPerThread ?? 512 * 1024 * 1024;
  const passes = opts.passes ?? 8;
  const barrier = new SharedArrayBuffer(4 * passes);
  const results = await Promise.all(
    Array.from({ length: threads }, () =>
      new Promise<Array<[number, number]>>((resolve, reject) => {
        const w = new Worker(WORKER_SOURCE, { eval: true, workerData: { bytes, passes, barrier, threads } satisfies WorkerData });
        w.once('message', (m: Array<[number, number]>) => resolve(m));
        w.once('error', reject);
        w.once('exit', (code) => {
          if (code !== 0) reject(new Error(`bandwidth worker exited with ${code}`));
        });
      }),
    ),
  );
  const rates: number[] = [];
  for (let p = 0; p < passes; p++) {
    const start = Math.min(...results.map((r) => r[p]![0]));
    const end = Math.max(...results.map((r) => r[p]![1]));
    rates.push((bytes * threads) / ((end - start) / 1000));
  }
  const sorted = [...rates].sort((a, b) => a - b);
  return {
    threads,
    bytesPerPass: bytes * threads,
    passes,
    bestBytesPerSecond: sorted[sorted.length - 1]!,
    medianBytesPerSecond: sorted[Math.floor((sorted.length - 1) / 2)]!,
  };
}

if (require.main === module) {
  const args = process.argv.slice(2);
  const num = (name: string, d: number) => {
    const i = args.indexOf(name);
    return i >= 0 ? Number(args[i + 1]) : d;
  };
  (async () => {
    for (const threads of [1, num('--threads', 2)]) {
      const r = await measureBandwidth({ threads, bytesPerThread: num('--mb-per-thread', 512) * 1024 * 1024, passes: num('--passes', 8) });
      console.log(`${threads} thread(s): best ${(r.bestBytesPerSecond / 1e9).toFixed(1)} GB/s, median ${(r.medianBytesPerSecond / 1e9).toFixed(1)} GB/s`);
    }
  })().catch((e: unknown) => {
    console.error(e);
    process.exitCode = 1;
  });
}
