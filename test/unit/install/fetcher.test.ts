import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, afterEach, before, describe, test } from 'node:test';
import { DownloadError, downloadFile, fetchJson, type DownloadProgress } from '../../../src/install';
import { backoffDelay, parseRetryAfter, resolveRetry } from '../../../src/install/retry';
import { SpeedMeter, Throttle } from '../../../src/install/progress';
import { bytes, closedPort, gitBlobSha1, serveBytes, sha256, startLoopback, type Loopback } from './loopback';

let dir: string;
let server: Loopback;
const body = bytes(256 * 1024, 7);

/** A sleep that records the delays and returns at once. */
function fakeSleep() {
  const delays: number[] = [];
  return { delays, sleep: async (ms: number) => void delays.push(ms) };
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'r1-fetcher-'));
});
after(() => rmSync(dir, { recursive: true, force: true }));
afterEach(async () => {
  await server?.stop();
});

async function rejectsWith(p: Promise<unknown>, code: string, re?: RegExp): Promise<DownloadError> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof DownloadError, `expected a DownloadError, got ${String(e)}`);
    assert.equal(e.code, code, e.message);
    if (re) assert.match(e.message, re);
    return e;
  }
  assert.fail(`expected a DownloadError ${code}`);
}

describe('downloadFile', () => {
  test('downloads, verifies sha256 and size, renames into place and reports progress', async () => {
    server = await startLoopback();
    server.route('/f.bin', (req, res) => serveBytes(req, res, body, { chunkSize: 16 * 1024 }));
    const dest = join(dir, 'ok', 'f.bin');
    const events: DownloadProgress[] = [];
    const r = await downloadFile({ url: `${server.origin}/f.bin`, dest, expected: { size: body.length, sha256: sha256(body) }, onProgress: (p) => events.push(p) });
    assert.deepEqual(readFileSync(dest), body);
    assert.equal(existsSync(`${dest}.partial`), false);
    assert.equal(r.sha256, sha256(body));
    assert.equal(r.size, body.length);
    assert.equal(r.resumedFrom, 0);
    assert.equal(r.requests, 1);
    const last = events[events.length - 1];
    assert.deepEqual({ file: last.file, receivedBytes: last.receivedBytes, totalBytes: last.totalBytes }, { file: 'f.bin', receivedBytes: body.length, totalBytes: body.length });
    for (let i = 1; i < events.length; i++) assert.ok(events[i].receivedBytes >= events[i - 1].receivedBytes, 'progress never goes back');
  });

  test('verifies a git blob id (non-LFS hub files)', async () => {
    server = await startLoopback();
    server.route('/g.json', (req, res) => serveBytes(req, res, body.subarray(0, 1000)));
    const dest = join(dir, 'git', 'g.json');
    await downloadFile({ url: `${server.origin}/g.json`, dest, expected: { size: 1000, gitBlobSha1: gitBlobSha1(body.subarray(0, 1000)) } });
    assert.deepEqual(readFileSync(dest), body.subarray(0, 1000));
    const bad = join(dir, 'git', 'bad.json');
    await rejectsWith(downloadFile({ url: `${server.origin}/g.json`, dest: bad, expected: { size: 1000, gitBlobSha1: '0'.repeat(40) } }), 'checksum', /git blob id/);
    assert.equal(existsSync(bad), false);
    assert.equal(existsSync(`${bad}.partial`), false);
  });

  test('resumes with Range after the connection drops mid-body', async () => {
    server = await startLoopback();
    server.route('/r.bin', (req, res, ctx) => serveBytes(req, res, body, ctx.count === 0 ? { dropAfter: 100_000 } : {}));
    const dest = join(dir, 'resume', 'r.bin');
    const s = fakeSleep();
    const r = await downloadFile({ url: `${server.origin}/r.bin`, dest, expected: { size: body.length, sha256: sha256(body) }, retry: { sleep: s.sleep } });
    assert.deepEqual(readFileSync(dest), body);
    assert.equal(server.requests.length, 2);
    assert.equal(server.requests[0].range, undefined);
    const m = /^bytes=(\d+)-$/.exec(server.requests[1].range ?? '');
    assert.ok(m, `second request carries Range, got ${server.requests[1].range}`);
    assert.ok(Number(m[1]) > 0 && Number(m[1]) <= 100_000);
    assert.equal(s.delays.length, 1, 'one backoff before the retry');
    assert.equal(r.requests, 2);
  });

  test('resumes a partial file left by an earlier run', async () => {
    server = await startLoopback();
    server.route('/p.bin', (req, res) => serveBytes(req, res, body));
    const dest = join(dir, 'partial', 'p.bin');
    const { mkdirSync } = await import('node:fs');
    mkdirSync(join(dir, 'partial'), { recursive: true });
    writeFileSync(`${dest}.partial`, body.subarray(0, 5000));
    const r = await downloadFile({ url: `${server.origin}/p.bin`, dest, expected: { size: body.length, sha256: sha256(body) } });
    assert.equal(r.resumedFrom, 5000);
    assert.equal(server.requests[0].range, 'bytes=5000-');
    assert.deepEqual(readFileSync(dest), body);
  });

  test('a stale partial that fails verification is discarded and the file fetched again from zero', async () => {
    server = await startLoopback();
    server.route('/s.bin', (req, res) => serveBytes(req, res, body));
    const dest = join(dir, 'stale', 's.bin');
    const { mkdirSync } = await import('node:fs');
    mkdirSync(join(dir, 'stale'), { recursive: true });
    writeFileSync(`${dest}.partial`, Buffer.alloc(5000, 0xee));
    await downloadFile({ url: `${server.origin}/s.bin`, dest, expected: { size: body.length, sha256: sha256(body) } });
    assert.deepEqual(
      server.requests.map((r) => r.range),
      ['bytes=5000-', undefined],
    );
    assert.deepEqual(readFileSync(dest), body);
  });

  test('a server that ignores Range (200) restarts the file from zero', async () => {
    server = await startLoopback();
    server.route('/i.bin', (req, res) => serveBytes(req, res, body, { ignoreRange: true }));
    const dest = join(dir, 'ignore', 'i.bin');
    const { mkdirSync } = await import('node:fs');
    mkdirSync(join(dir, 'ignore'), { recursive: true });
    writeFileSync(`${dest}.partial`, body.subarray(0, 1234));
    await downloadFile({ url: `${server.origin}/i.bin`, dest, expected: { size: body.length, sha256: sha256(body) } });
    assert.deepEqual(readFileSync(dest), body);
  });

  test('checksum mismatch deletes the file and says which hash failed', async () => {
    server = await startLoopback();
    server.route('/c.bin', (req, res) => serveBytes(req, res, body));
    const dest = join(dir, 'cs', 'c.bin');
    const e = await rejectsWith(downloadFile({ url: `${server.origin}/c.bin`, dest, expected: { size: body.length, sha256: 'f'.repeat(64) } }), 'checksum', /sha256/);
    assert.match(e.message, /c\.bin/);
    assert.equal(e.url, `${server.origin}/c.bin`);
    assert.equal(existsSync(dest), false);
    assert.equal(existsSync(`${dest}.partial`), false);
    assert.equal(server.requests.length, 1, 'a fresh download that fails verification is not retried');
  });

  test('a size different from the listing fails with size-mismatch before writing', async () => {
    server = await startLoopback();
    server.route('/z.bin', (req, res) => serveBytes(req, res, body));
    const dest = join(dir, 'size', 'z.bin');
    await rejectsWith(downloadFile({ url: `${server.origin}/z.bin`, dest, expected: { size: body.length + 1 } }), 'size-mismatch', /bytes/);
    assert.equal(existsSync(dest), false);
  });

  test('404 is not retried and names the URL', async () => {
    server = await startLoopback();
    const s = fakeSleep();
    const e = await rejectsWith(downloadFile({ url: `${server.origin}/missing.bin`, dest: join(dir, 'nf', 'm.bin'), retry: { sleep: s.sleep } }), 'not-found');
    assert.ok(e.message.includes(`${server.origin}/missing.bin`), e.message);
    assert.equal(e.status, 404);
    assert.equal(server.requests.length, 1);
    assert.equal(s.delays.length, 0);
  });

  for (const status of [401, 403]) {
    test(`${status} is not retried and gives an access error`, async () => {
      server = await startLoopback();
      server.route('/a.bin', (_req, res) => res.writeHead(status).end());
      const e = await rejectsWith(downloadFile({ url: `${server.origin}/a.bin`, dest: join(dir, `auth${status}`, 'a.bin') }), 'unauthorized', /gated or private/);
      assert.equal(e.status, status);
      assert.equal(server.requests.length, 1);
    });
  }

  test('503 and 429 are retried, honouring Retry-After, then the file completes', async () => {
    server = await startLoopback();
    server.route('/busy.bin', (req, res, ctx) => {
      if (ctx.count === 0) res.writeHead(503, { 'retry-after': '7' }).end();
      else if (ctx.count === 1) res.writeHead(429, { 'retry-after': '3' }).end();
      else serveBytes(req, res, body);
    });
    const s = fakeSleep();
    const dest = join(dir, 'busy', 'b.bin');
    await downloadFile({ url: `${server.origin}/busy.bin`, dest, expected: { size: body.length, sha256: sha256(body) }, retry: { sleep: s.sleep } });
    assert.deepEqual(s.delays, [7000, 3000]);
    assert.deepEqual(readFileSync(dest), body);
  });

  test('retries are bounded: a server that keeps failing gives up after maxRetries + 1 requests', async () => {
    server = await startLoopback();
    server.route('/down.bin', (_req, res) => res.writeHead(500).end());
    const s = fakeSleep();
    const e = await rejectsWith(
      downloadFile({ url: `${server.origin}/down.bin`, dest: join(dir, 'down', 'd.bin'), retry: { maxRetries: 3, baseDelayMs: 100, maxDelayMs: 1000, random: () => 1, sleep: s.sleep } }),
      'http',
      /gave up after 4 attempts/,
    );
    assert.equal(e.status, 500);
    assert.equal(server.requests.length, 4);
    assert.deepEqual(s.delays, [100, 200, 400]);
  });

  test('a stalled body times out and the retry resumes', async () => {
    server = await startLoopback();
    server.route('/stall.bin', (req, res, ctx) => serveBytes(req, res, body, ctx.count === 0 ? { stallAfter: 50_000 } : {}));
    const dest = join(dir, 'stall', 's.bin');
    const s = fakeSleep();
    await downloadFile({ url: `${server.origin}/stall.bin`, dest, expected: { size: body.length, sha256: sha256(body) }, idleTimeoutMs: 300, retry: { sleep: s.sleep } });
    assert.deepEqual(readFileSync(dest), body);
    assert.match(server.requests[1].range ?? '', /^bytes=\d+-$/);
  });

  test('connection refused gives the offline error at once', async () => {
    const port = await closedPort();
    const s = fakeSleep();
    const e = await rejectsWith(downloadFile({ url: `http://127.0.0.1:${port}/x.bin`, dest: join(dir, 'off', 'x.bin'), retry: { sleep: s.sleep } }), 'offline');
    assert.equal(
      e.message,
      `You appear to be offline: could not reach 127.0.0.1:${port}. Connect and retry, or choose a local model folder with R1: Select Model.`,
    );
    assert.equal(s.delays.length, 0);
  });

  test('a host that does not resolve gives the offline error', async () => {
    const lookup = ((hostname: string, _opts: unknown, cb: (err: NodeJS.ErrnoException | null) => void) => {
      cb(Object.assign(new Error(`getaddrinfo ENOTFOUND ${hostname}`), { code: 'ENOTFOUND' }));
    }) as unknown as import('node:net').LookupFunction;
    const e = await rejectsWith(downloadFile({ url: 'http://hub.r1-test.invalid/x.bin', dest: join(dir, 'dns', 'x.bin'), lookup }), 'offline', /could not reach hub\.r1-test\.invalid/);
    assert.equal(e.url, 'http://hub.r1-test.invalid/x.bin');
  });

  test('cancel mid-body keeps the partial file, and the next call resumes it', async () => {
    server = await startLoopback();
    server.route('/cancel.bin', (req, res, ctx) => serveBytes(req, res, body, ctx.count === 0 ? { stallAfter: 120_000 } : {}));
    const dest = join(dir, 'cancel', 'c.bin');
    const ac = new AbortController();
    await rejectsWith(
      downloadFile({
        url: `${server.origin}/cancel.bin`,
        dest,
        expected: { size: body.length, sha256: sha256(body) },
        signal: ac.signal,
        progressIntervalMs: 0,
        onProgress: (p) => {
          if (p.receivedBytes >= 120_000) ac.abort();
        },
      }),
      'cancelled',
    );
    assert.equal(existsSync(dest), false);
    assert.equal(statSync(`${dest}.partial`).size, 120_000);
    const r = await downloadFile({ url: `${server.origin}/cancel.bin`, dest, expected: { size: body.length, sha256: sha256(body) } });
    assert.equal(r.resumedFrom, 120_000);
    assert.equal(server.requests[1].range, 'bytes=120000-');
    assert.deepEqual(readFileSync(dest), body);
  });

  test('an already aborted signal makes no request', async () => {
    server = await startLoopback();
    const ac = new AbortController();
    ac.abort();
    await rejectsWith(downloadFile({ url: `${server.origin}/x.bin`, dest: join(dir, 'pre', 'x.bin'), signal: ac.signal }), 'cancelled');
    assert.equal(server.requests.length, 0);
  });

  test('follows redirects and drops Authorization on another origin', async () => {
    server = await startLoopback();
    const other = await startLoopback();
    try {
      other.route('/blob', (req, res) => serveBytes(req, res, body));
      server.route('/start', (_req, res) => res.writeHead(302, { location: `${other.origin}/blob` }).end());
      const dest = join(dir, 'redir', 'r.bin');
      await downloadFile({ url: `${server.origin}/start`, dest, headers: { authorization: 'Bearer secret' }, expected: { sha256: sha256(body) } });
      assert.deepEqual(readFileSync(dest), body);
      assert.equal(server.requests[0].authorization, 'Bearer secret');
      assert.equal(other.requests[0].authorization, undefined);
    } finally {
      await other.stop();
    }
  });
});

describe('fetchJson', () => {
  test('parses JSON, retries a 502, and decodes gzip', async () => {
    server = await startLoopback();
    const { gzipSync } = await import('node:zlib');
    server.route('/j', (_req, res, ctx) => {
      if (ctx.count === 0) res.writeHead(502).end();
      else res.writeHead(200, { 'content-type': 'application/json', 'content-encoding': 'gzip' }).end(gzipSync(JSON.stringify({ ok: [1, 2] })));
    });
    const s = fakeSleep();
    const { data } = await fetchJson<{ ok: number[] }>(`${server.origin}/j`, { what: 'a test document', retry: { sleep: s.sleep } });
    assert.deepEqual(data, { ok: [1, 2] });
    assert.equal(s.delays.length, 1);
  });

  test('invalid JSON is a clear error', async () => {
    server = await startLoopback();
    server.route('/bad', (_req, res) => res.writeHead(200).end('<html>'));
    await rejectsWith(fetchJson(`${server.origin}/bad`, { what: 'a test document' }), 'invalid-response', /not valid JSON/);
  });
});

describe('retry policy and progress helpers', () => {
  test('backoff doubles, is capped, and jitters between half and all of the step', () => {
    const p = resolveRetry({ baseDelayMs: 1000, maxDelayMs: 5000, random: () => 1 });
    assert.deepEqual([0, 1, 2, 3, 4].map((i) => backoffDelay(i, p)), [1000, 2000, 4000, 5000, 5000]);
    const low = resolveRetry({ baseDelayMs: 1000, maxDelayMs: 5000, random: () => 0 });
    assert.deepEqual([0, 1, 2].map((i) => backoffDelay(i, low)), [500, 1000, 2000]);
  });

  test('Retry-After: seconds and HTTP dates', () => {
    assert.equal(parseRetryAfter('12'), 12_000);
    const now = Date.parse('2025-01-01T00:00:00Z');
    assert.equal(parseRetryAfter('Wed, 01 Jan 2025 00:00:30 GMT', now), 30_000);
    assert.equal(parseRetryAfter(undefined), undefined);
    assert.equal(parseRetryAfter('soon'), undefined);
  });

  test('the throttle lets at most one event per interval through, except forced ones', () => {
    let t = 0;
    const seen: number[] = [];
    const th = new Throttle<number>((v) => seen.push(v), 100, () => t);
    for (let i = 0; i < 1000; i++) {
      t = i; // 1 ms apart: 1 s in all
      th.push(i);
    }
    th.push(-1, true);
    assert.equal(seen.length, 11);
    assert.deepEqual(seen.slice(0, 3), [0, 100, 200]);
    assert.equal(seen[seen.length - 1], -1);
  });

  test('the speed meter measures bytes per second over its window', () => {
    let t = 0;
    const m = new SpeedMeter(() => t, 5000);
    m.start();
    for (let i = 1; i <= 10; i++) {
      t = i * 100;
      m.add(10_000);
    }
    assert.equal(m.rate(), 100_000);
  });
});
