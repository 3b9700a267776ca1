/**
 * The resumable file fetcher: GET into `<dest>.partial` (resumed with `Range` when it exists),
 * size and hash verification, fsync and an atomic rename into place, bounded retries with backoff
 * on transient failures, cancellation that keeps the partial file, and throttled progress.
 */
import { createHash, type Hash } from 'node:crypto';
import { constants as fsConstants } from 'node:fs';
import { mkdir, open, rename, rm, stat } from 'node:fs/promises';
import type { IncomingHttpHeaders, IncomingMessage } from 'node:http';
import type { LookupFunction } from 'node:net';
import { basename, dirname } from 'node:path';
import { DownloadError, MODEL_OFFLINE_HINT, offlineError } from './errors';
import { abortReason, classifyNetworkError, codedError, errorCode, openRequest, readBody } from './http';
import { type DownloadProgress, SpeedMeter, Throttle } from './progress';
import { backoffDelay, parseRetryAfter, resolveRetry, type ResolvedRetry, type RetryOptions } from './retry';

/** What the downloaded bytes must be. Hashes are hex (sha512 may also be base64, as NuGet writes it). */
export interface ExpectedContent {
  size?: number;
  sha256?: string;
  sha512?: string;
  /** Git blob id (sha1 of "blob <size>\0" + content): what the hub lists as `oid` for non-LFS files. Needs `size`. */
  gitBlobSha1?: string;
}

export interface NetworkOptions {
  /** Extra request headers (e.g. authorization). */
  headers?: Record<string, string>;
  signal?: AbortSignal;
  retry?: RetryOptions;
  /** Time until response headers arrive. Default 30 s. */
  connectTimeoutMs?: number;
  /** Longest silence while a body streams before the attempt counts as failed. Default 60 s. */
  idleTimeoutMs?: number;
  /** The second sentence of the offline error. */
  offlineHint?: string;
  /** Custom DNS lookup (tests). */
  lookup?: LookupFunction;
}

export interface DownloadFileOptions extends NetworkOptions {
  url: string;
  /** Final path. The bytes go to `partialPath` first and are renamed here once verified. */
  dest: string;
  /** Default `<dest>.partial`. */
  partialPath?: string;
  expected?: ExpectedContent;
  /** Name shown in progress events and errors. Default: the file name of `dest`. */
  label?: string;
  onProgress?: (progress: DownloadProgress) => void;
  /** Minimum time between progress events (default 100 ms: at most 10 per second). */
  progressIntervalMs?: number;
  /** Clock for speed and throttling (tests). */
  now?: () => number;
}

export interface DownloadFileResult {
  path: string;
  size: number;
  sha256: string;
  /** Present when an expected sha512 was given. */
  sha512?: string;
  /** Bytes that were already in the partial file when this call started. */
  resumedFrom: number;
  /** HTTP requests made (redirect hops not counted). */
  requests: number;
  /** Headers of the responses of the last request's redirect chain (e.g. the hub's X-Repo-Commit). */
  responseHeaders: IncomingHttpHeaders[];
}

type HashName = 'sha256' | 'sha512' | 'git';

/** Incremental hashes over the bytes of the partial file, in order. */
class MultiHash {
  bytes = 0;
  private readonly hashes = new Map<HashName, Hash>();
  constructor(names: HashName[], gitSize?: number) {
    for (const n of names) {
      if (n === 'git') {
        const h = createHash('sha1');
        h.update(`blob ${gitSize ?? 0}\0`);
        this.hashes.set('git', h);
      } else {
        this.hashes.set(n, createHash(n));
      }
    }
  }
  update(chunk: Buffer): void {
    this.bytes += chunk.length;
    for (const h of this.hashes.values()) h.update(chunk);
  }
  digest(): Partial<Record<HashName, string>> {
    const out: Partial<Record<HashName, string>> = {};
    for (const [n, h] of this.hashes) out[n] = h.digest('hex');
    return out;
  }
  /** Feeds the first `length` bytes of a file. */
  async feedFile(path: string, length: number, signal?: AbortSignal): Promise<void> {
    const fh = await open(path, 'r');
    try {
      const buf = Buffer.allocUnsafe(4 * 1024 * 1024);
      let pos = 0;
      while (pos < length) {
        if (signal?.aborted) throw abortReason();
        const { bytesRead } = await fh.read(buf, 0, Math.min(buf.length, length - pos), pos);
        if (bytesRead === 0) break;
        this.update(buf.subarray(0, bytesRead));
        pos += bytesRead;
      }
    } finally {
      await fh.close();
    }
  }
}

/** Hex of a sha512 given as hex or base64 (NuGet's form). */
export function normalizeSha512(value: string): string {
  const v = value.trim();
  if (/^[0-9a-fA-F]{128}$/.test(v)) return v.toLowerCase();
  const buf = Buffer.from(v, 'base64');
  if (buf.length === 64) return buf.toString('hex');
  throw new DownloadError('invalid-response', `"${v.slice(0, 20)}…" is not a sha512 (hex or base64).`, 'Check the expected hash.');
}

function normalizeExpected(e: ExpectedContent | undefined): ExpectedContent {
  if (!e) return {};
  return {
    size: e.size,
    sha256: e.sha256?.toLowerCase(),
    sha512: e.sha512 != null ? normalizeSha512(e.sha512) : undefined,
    gitBlobSha1: e.gitBlobSha1?.toLowerCase(),
  };
}

async function fileSize(path: string): Promise<number> {
  try {
    return (await stat(path)).size;
  } catch (e) {
    if (errorCode(e) === 'ENOENT') return 0;
    throw e;
  }
}

/** Parses `bytes start-end/total` (total may be `*`). */
export function parseContentRange(value: string | undefined): { start: number; end: number; total?: number } | undefined {
  const m = /^bytes\s+(\d+)-(\d+)\/(\d+|\*)$/i.exec(value?.trim() ?? '');
  if (!m) return undefined;
  return { start: Number(m[1]), end: Number(m[2]), total: m[3] === '*' ? undefined : Number(m[3]) };
}

/** The DownloadError for an HTTP status that is not worth a retry. */
export function statusError(status: number, url: string, what: string): DownloadError {
  if (status === 404 || status === 410) {
    return new DownloadError('not-found', `${what} was not found (HTTP ${status}) at ${url}.`, 'Check the repository, revision and server URL settings.', { url, status });
  }
  if (status === 401 || status === 403) {
    return new DownloadError(
      'unauthorized',
      `The server refused access to ${what} (HTTP ${status}) at ${url}.`,
      'The repository may be gated or private: accept its terms on the hub or use a token, or choose another repository.',
      { url, status },
    );
  }
  return new DownloadError('http', `The server answered HTTP ${status} for ${what} at ${url}.`, 'Retry later, or check the server URL setting.', { url, status });
}

function isRetryableStatus(status: number): boolean {
  return status === 408 || status === 429 || status >= 500;
}

function ioError(e: unknown, file: string, doing: string): DownloadError {
  if (e instanceof DownloadError) return e;
  const code = errorCode(e);
  if (code === 'ENOSPC') {
    return new DownloadError('disk-full', `The disk is full while ${doing} ${file}.`, 'Free some space and retry: the download resumes where it stopped.', { file, cause: e });
  }
  const msg = e instanceof Error ? e.message : String(e);
  return new DownloadError('io', `Could not ${doing} ${file}: ${msg}.`, 'Check that the folder exists and is writable, then retry.', { file, cause: e });
}

async function syncDir(dir: string): Promise<void> {
  try {
    const fh = await open(dir, fsConstants.O_RDONLY);
    try {
      await fh.sync();
    } finally {
      await fh.close();
    }
  } catch {
    // Not every file system lets a directory be fsynced; the rename itself is still atomic.
  }
}

/** fsync a file, then rename it over `dest` and fsync the folder. */
export async function commitFile(tmp: string, dest: string): Promise<void> {
  const fh = await open(tmp, 'r+');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
  await rename(tmp, dest);
  await syncDir(dirname(dest));
}

type AttemptOutcome = { kind: 'verify' } | { kind: 'retry'; error: DownloadError; delayMs?: number };

/**
 * Downloads `url` to `dest` with resume, verification and retries. Rejects with a DownloadError:
 * 'cancelled' (the partial file is kept), 'offline', 'not-found', 'unauthorized', 'http',
 * 'network', 'size-mismatch' / 'checksum' (the partial file is deleted), 'disk-full', 'io'.
 */
export async function downloadFile(options: DownloadFileOptions): Promise<DownloadFileResult> {
  const o = options;
  const url = o.url;
  const dest = o.dest;
  const partial = o.partialPath ?? `${dest}.partial`;
  const label = o.label ?? basename(dest);
  const expected = normalizeExpected(o.expected);
  const retry = resolveRetry(o.retry);
  const now = o.now ?? Date.now;
  const throttle = new Throttle<DownloadProgress>(o.onProgress, o.progressIntervalMs ?? 100, now);
  const speed = new SpeedMeter(now);
  const hashNames: HashName[] = ['sha256'];
  if (expected.sha512) hashNames.push('sha512');
  if (expected.gitBlobSha1 && expected.size != null) hashNames.push('git');
  const offlineHint = o.offlineHint ?? MODEL_OFFLINE_HINT;
  const signal = o.signal;

  const cancelled = () =>
    new DownloadError('cancelled', `The download of ${label} was cancelled.`, 'Run it again to resume: the partial file was kept.', { url, file: partial });

  try {
    await mkdir(dirname(partial), { recursive: true });
    await mkdir(dirname(dest), { recursive: true });
  } catch (e) {
    throw ioError(e, dirname(dest), 'create the folder');
  }

  let hasher: MultiHash | undefined;
  let retries = 0;
  let requests = 0;
  let receivedThisCall = 0;
  let resumedAny = false;
  let freshRestartDone = false;
  let responseHeaders: IncomingHttpHeaders[] = [];
  let initialOffset: number | undefined;

  const progress = (received: number, total: number | undefined, force = false) =>
    throttle.push({ file: label, receivedBytes: received, totalBytes: total, bytesPerSecond: speed.rate() }, force);

  const attempt = async (offset: number): Promise<AttemptOutcome> => {
    const headers: Record<string, string> = { ...(o.headers ?? {}), 'accept-encoding': 'identity' };
    if (offset > 0) headers.range = `bytes=${offset}-`;
    requests++;
    let res: IncomingMessage;
    try {
      const opened = await openRequest(url, { headers, signal, connectTimeoutMs: o.connectTimeoutMs, lookup: o.lookup });
      res = opened.res;
      responseHeaders = opened.chainHeaders;
    } catch (e) {
      if (signal?.aborted) throw cancelled();
      if (e instanceof DownloadError) throw e;
      const kind = classifyNetworkError(e);
      if (kind === 'offline') {
        // Nothing answered. Mid-transfer (the network was up a moment ago) it is worth retrying.
        if (receivedThisCall > 0) return { kind: 'retry', error: offlineError(url, offlineHint, e) };
        throw offlineError(url, offlineHint, e);
      }
      if (kind === 'transient') return { kind: 'retry', error: networkError(e) };
      throw networkError(e);
    }
    const status = res.statusCode ?? 0;
    if (status === 416) {
      res.resume();
      if (expected.size != null && offset === expected.size) return { kind: 'verify' };
      await rm(partial, { force: true });
      hasher = undefined;
      return { kind: 'retry', error: new DownloadError('invalid-response', `The server rejected the resume range of ${label}.`, 'Retry.', { url, status }), delayMs: 0 };
    }
    if (isRetryableStatus(status)) {
      res.resume();
      const after = parseRetryAfter(res.headers['retry-after']);
      const err = statusError(status, url, label);
      if (after != null && after > retry.maxRetryAfterMs) {
        throw new DownloadError('http', `The server is busy (HTTP ${status}) and asks to retry ${label} after ${Math.round(after / 1000)} s.`, 'Retry later.', { url, status });
      }
      return { kind: 'retry', error: err, delayMs: after };
    }
    if (status !== 200 && status !== 206) {
      res.resume();
      throw statusError(status, url, label);
    }
    let start = 0;
    let total: number | undefined;
    if (status === 206) {
      const range = parseContentRange(res.headers['content-range']);
      if (!range || range.start !== offset) {
        res.destroy();
        await rm(partial, { force: true });
        hasher = undefined;
        return {
          kind: 'retry',
          error: new DownloadError('invalid-response', `The server answered the resume of ${label} with a wrong range (${res.headers['content-range'] ?? 'none'}).`, 'Retry.', { url, status }),
          delayMs: 0,
        };
      }
      start = offset;
      total = range.total;
    } else {
      const cl = res.headers['content-length'];
      total = cl != null && /^\d+$/.test(cl) ? Number(cl) : undefined;
    }
    if (expected.size != null && total != null && total !== expected.size) {
      res.destroy();
      await rm(partial, { force: true });
      hasher = undefined;
      throw new DownloadError(
        'size-mismatch',
        `${label} at ${url} is ${total} bytes, but the listing says ${expected.size}.`,
        'The file changed on the server while downloading; retry the download.',
        { url, file: dest },
      );
    }
    total = expected.size ?? total;
    if (start > 0) resumedAny = true;

    if (!hasher || hasher.bytes !== start) {
      hasher = new MultiHash(hashNames, expected.size);
      if (start > 0) {
        try {
          await hasher.feedFile(partial, start, signal);
        } catch (e) {
          res.destroy();
          if (signal?.aborted) throw cancelled();
          throw ioError(e, partial, 'read');
        }
      }
    }
    const h = hasher;

    let fh;
    try {
      fh = await open(partial, start === 0 ? 'w' : 'a');
    } catch (e) {
      res.destroy();
      throw ioError(e, partial, 'write');
    }
    let written = 0;
    let idleTimer: NodeJS.Timeout | undefined;
    const idleMs = o.idleTimeoutMs ?? 60_000;
    const armIdle = () => {
      if (idleTimer) clearTimeout(idleTimer);
      idleTimer = setTimeout(() => res.destroy(codedError('ETIMEDOUT', `no data for ${Math.round(idleMs / 1000)} s`)), idleMs);
    };
    const onAbort = () => res.destroy(abortReason());
    signal?.addEventListener('abort', onAbort, { once: true });
    speed.start();
    progress(start, total, true);
    let failure: unknown;
    try {
      if (signal?.aborted) throw abortReason();
      armIdle();
      for await (const chunk of res as AsyncIterable<Buffer>) {
        armIdle();
        if (total != null && start + written + chunk.length > total) {
          throw new DownloadError('size-mismatch', `${label} at ${url} sent more than the ${total} bytes expected.`, 'Retry the download.', { url, file: dest });
        }
        await fh.write(chunk);
        h.update(chunk);
        written += chunk.length;
        receivedThisCall += chunk.length;
        speed.add(chunk.length);
        progress(start + written, total);
      }
    } catch (e) {
      failure = e;
    } finally {
      if (idleTimer) clearTimeout(idleTimer);
      signal?.removeEventListener('abort', onAbort);
      try {
        await fh.close();
      } catch (e) {
        failure ??= e;
      }
    }
    if (failure !== undefined) {
      if (signal?.aborted) throw cancelled();
      if (failure instanceof DownloadError) {
        if (failure.code === 'size-mismatch') {
          await rm(partial, { force: true });
          hasher = undefined;
        }
        throw failure;
      }
      const code = errorCode(failure);
      if (code === 'ENOSPC' || code === 'EACCES' || code === 'EROFS' || code === 'EIO') throw ioError(failure, partial, 'write');
      const kind = classifyNetworkError(failure);
      if (kind === 'fatal') throw networkError(failure);
      return { kind: 'retry', error: kind === 'offline' ? offlineError(url, offlineHint, failure) : networkError(failure) };
    }
    if (total != null && start + written < total) {
      return {
        kind: 'retry',
        error: new DownloadError('network', `The connection closed after ${start + written} of ${total} bytes of ${label}.`, 'Retry: the download resumes where it stopped.', { url }),
      };
    }
    return { kind: 'verify' };
  };

  function networkError(e: unknown): DownloadError {
    const msg = e instanceof Error ? e.message : String(e);
    const code = errorCode(e);
    return new DownloadError(
      'network',
      `The download of ${label} from ${url} failed: ${msg}${code && !msg.includes(code) ? ` (${code})` : ''}.`,
      'Check the connection and retry: the download resumes where it stopped.',
      { url, cause: e },
    );
  }

  const backoff = async (outcome: { error: DownloadError; delayMs?: number }) => {
    if (retries >= retry.maxRetries) {
      const e = outcome.error;
      const suffix = retries > 0 ? ` (gave up after ${retries + 1} attempts)` : '';
      throw new DownloadError(e.code === 'invalid-response' ? 'network' : e.code, `${e.problem.replace(/\.$/, '')}${suffix}.`, e.hint, e.details);
    }
    const delay = outcome.delayMs ?? backoffDelay(retries, retry);
    retries++;
    if (delay > 0) {
      try {
        await retry.sleep(delay, signal);
      } catch (e) {
        if (signal?.aborted) throw cancelled();
        throw e;
      }
    }
  };

  for (;;) {
    if (signal?.aborted) throw cancelled();
    let offset: number;
    try {
      offset = await fileSize(partial);
      if (expected.size != null && offset > expected.size) {
        await rm(partial, { force: true });
        hasher = undefined;
        offset = 0;
      }
    } catch (e) {
      throw ioError(e, partial, 'read');
    }
    initialOffset ??= offset;
    if (!(expected.size != null && offset === expected.size && offset > 0)) {
      const outcome = await attempt(offset);
      if (outcome.kind === 'retry') {
        await backoff(outcome);
        continue;
      }
    } else {
      resumedAny = true;
    }

    // Verify what is on disk.
    let size: number;
    let digests: Partial<Record<HashName, string>>;
    try {
      size = await fileSize(partial);
      if (!hasher || hasher.bytes !== size) {
        hasher = new MultiHash(hashNames, expected.size);
        await hasher.feedFile(partial, size, signal);
      }
      digests = hasher.digest();
      hasher = undefined;
    } catch (e) {
      if (signal?.aborted) throw cancelled();
      throw ioError(e, partial, 'read');
    }
    const mismatch = verifyProblem(expected, size, digests);
    if (mismatch) {
      await rm(partial, { force: true });
      if (resumedAny && !freshRestartDone) {
        // A partial file from an earlier attempt may be stale: start over once from zero.
        freshRestartDone = true;
        resumedAny = false;
        continue;
      }
      throw new DownloadError(
        mismatch.kind,
        `${label} downloaded from ${url} does not match its expected ${mismatch.what} (expected ${mismatch.expected}, got ${mismatch.actual}); the damaged file was deleted.`,
        'Retry the download; if it fails again, the server or a proxy is serving altered content.',
        { url, file: dest },
      );
    }
    try {
      await commitFile(partial, dest);
    } catch (e) {
      throw ioError(e, dest, 'move into place');
    }
    progress(size, size, true);
    return {
      path: dest,
      size,
      sha256: digests.sha256 ?? '',
      sha512: digests.sha512,
      resumedFrom: initialOffset ?? 0,
      requests,
      responseHeaders,
    };
  }
}

function verifyProblem(
  expected: ExpectedContent,
  size: number,
  digests: Partial<Record<HashName, string>>,
): { kind: 'size-mismatch' | 'checksum'; what: string; expected: string; actual: string } | undefined {
  if (expected.size != null && size !== expected.size) return { kind: 'size-mismatch', what: 'size', expected: `${expected.size} bytes`, actual: `${size} bytes` };
  if (expected.sha256 && digests.sha256 !== expected.sha256) return { kind: 'checksum', what: 'sha256', expected: expected.sha256, actual: digests.sha256 ?? '?' };
  if (expected.sha512 && digests.sha512 !== expected.sha512) return { kind: 'checksum', what: 'sha512', expected: expected.sha512, actual: digests.sha512 ?? '?' };
  if (expected.gitBlobSha1 && digests.git && digests.git !== expected.gitBlobSha1) {
    return { kind: 'checksum', what: 'git blob id', expected: expected.gitBlobSha1, actual: digests.git };
  }
  return undefined;
}

export interface FetchJsonOptions extends NetworkOptions {
  /** What is fetched, for messages (e.g. "the file list of org/repo"). */
  what: string;
  /** Largest body accepted (default 64 MiB). */
  maxBytes?: number;
}

/** GET a JSON document with the same retry policy as file downloads. */
export async function fetchJson<T = unknown>(url: string, options: FetchJsonOptions): Promise<{ data: T; headers: IncomingHttpHeaders; finalUrl: string }> {
  const retry: ResolvedRetry = resolveRetry(options.retry);
  const signal = options.signal;
  const offlineHint = options.offlineHint ?? MODEL_OFFLINE_HINT;
  const cancelled = () => new DownloadError('cancelled', `Fetching ${options.what} was cancelled.`, '', { url });
  let retries = 0;
  for (;;) {
    if (signal?.aborted) throw cancelled();
    let error: DownloadError;
    let delayMs: number | undefined;
    try {
      const { res, finalUrl } = await openRequest(url, {
        headers: { accept: 'application/json', 'accept-encoding': 'gzip, deflate', ...(options.headers ?? {}) },
        signal,
        connectTimeoutMs: options.connectTimeoutMs,
        lookup: options.lookup,
      });
      const status = res.statusCode ?? 0;
      if (status === 200) {
        const idleMs = options.idleTimeoutMs ?? 60_000;
        const timer = setTimeout(() => res.destroy(codedError('ETIMEDOUT', `no data for ${Math.round(idleMs / 1000)} s`)), idleMs);
        const onAbort = () => res.destroy(abortReason());
        signal?.addEventListener('abort', onAbort, { once: true });
        let body: Buffer;
        try {
          body = await readBody(res, options.maxBytes ?? 64 * 1024 * 1024);
        } finally {
          clearTimeout(timer);
          signal?.removeEventListener('abort', onAbort);
        }
        try {
          return { data: JSON.parse(body.toString('utf8')) as T, headers: res.headers, finalUrl };
        } catch (e) {
          throw new DownloadError('invalid-response', `${options.what} at ${url} is not valid JSON.`, 'Check the server URL setting.', { url, status, cause: e });
        }
      }
      res.resume();
      if (!isRetryableStatus(status)) throw statusError(status, url, options.what);
      error = statusError(status, url, options.what);
      delayMs = parseRetryAfter(res.headers['retry-after']);
      if (delayMs != null && delayMs > retry.maxRetryAfterMs) {
        throw new DownloadError('http', `The server is busy (HTTP ${status}) and asks to retry after ${Math.round(delayMs / 1000)} s.`, 'Retry later.', { url, status });
      }
    } catch (e) {
      if (signal?.aborted) throw cancelled();
      if (e instanceof DownloadError) throw e;
      const kind = classifyNetworkError(e);
      if (kind === 'offline') throw offlineError(url, offlineHint, e);
      const msg = e instanceof Error ? e.message : String(e);
      error = new DownloadError('network', `Fetching ${options.what} from ${url} failed: ${msg}.`, 'Check the connection and retry.', { url, cause: e });
      if (kind === 'fatal') throw error;
    }
    if (retries >= retry.maxRetries) {
      throw new DownloadError(error.code, `${error.problem.replace(/\.$/, '')} (gave up after ${retries + 1} attempts).`, error.hint, error.details);
    }
    const delay = delayMs ?? backoffDelay(retries, retry);
    retries++;
    try {
      await retry.sleep(delay, signal);
    } catch (e) {
      if (signal?.aborted) throw cancelled();
      throw e;
    }
  }
}
