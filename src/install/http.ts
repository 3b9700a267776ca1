/**
 * One HTTP(S) GET with redirects, a time limit until the response headers, an AbortSignal, and
 * classification of what went wrong. Built on node:http/https (not fetch) for direct control of
 * sockets, error codes and timeouts, and because VS Code's proxy support patches these modules in
 * the extension host.
 */
import * as http from 'node:http';
import * as https from 'node:https';
import type { LookupFunction } from 'node:net';
import { DownloadError } from './errors';

export interface RequestOptions {
  headers?: Record<string, string>;
  signal?: AbortSignal;
  /** Time until the response headers arrive (DNS, connect, TLS, server think time). Default 30 s. */
  connectTimeoutMs?: number;
  /** Default 10. */
  maxRedirects?: number;
  /** Custom DNS lookup (tests use it to simulate a name that does not resolve). */
  lookup?: LookupFunction;
}

export interface OpenResponse {
  res: http.IncomingMessage;
  /** The URL that answered, after redirects. */
  finalUrl: string;
  /** Headers of every response in the redirect chain, the final one last. */
  chainHeaders: http.IncomingHttpHeaders[];
}

/** Network error codes that mean nothing could be reached at all. */
const OFFLINE_CODES = new Set(['ENOTFOUND', 'EAI_AGAIN', 'EAI_NONAME', 'EAI_FAIL', 'ECONNREFUSED', 'ENETUNREACH', 'EHOSTUNREACH', 'ENETDOWN', 'EHOSTDOWN']);
/** Network error codes worth a retry: the connection broke or stalled. */
const TRANSIENT_CODES = new Set([
  'ECONNRESET',
  'EPIPE',
  'ETIMEDOUT',
  'ECONNABORTED',
  'ESOCKETTIMEDOUT',
  'ERR_STREAM_PREMATURE_CLOSE',
  'UND_ERR_SOCKET',
  'HPE_INVALID_EOF_STATE',
  'HPE_INVALID_CHUNK_SIZE',
  'HPE_CLOSED_CONNECTION',
]);

export type NetworkErrorKind = 'offline' | 'transient' | 'fatal';

export function errorCode(e: unknown): string | undefined {
  if (e && typeof e === 'object' && 'code' in e && typeof (e as { code: unknown }).code === 'string') return (e as { code: string }).code;
  return undefined;
}

export function classifyNetworkError(e: unknown): NetworkErrorKind {
  const code = errorCode(e);
  if (code && OFFLINE_CODES.has(code)) return 'offline';
  if (code && TRANSIENT_CODES.has(code)) return 'transient';
  if (e instanceof Error && /socket hang up|aborted|premature close|other side closed/i.test(e.message)) return 'transient';
  return 'fatal';
}

export function codedError(code: string, message: string): Error {
  return Object.assign(new Error(message), { code });
}

const REDIRECTS = new Set([301, 302, 303, 307, 308]);

/** GET `url`, following redirects; resolves with the first non-redirect response (any status). */
export async function openRequest(url: string, options: RequestOptions = {}): Promise<OpenResponse> {
  const maxRedirects = options.maxRedirects ?? 10;
  const chainHeaders: http.IncomingHttpHeaders[] = [];
  let current = url;
  let headers = { ...(options.headers ?? {}) };
  const origin = new URL(url).origin;
  for (let hop = 0; ; hop++) {
    const res = await requestOnce(current, headers, options);
    chainHeaders.push(res.headers);
    const status = res.statusCode ?? 0;
    if (REDIRECTS.has(status) && res.headers.location) {
      res.resume();
      if (hop >= maxRedirects) {
        throw new DownloadError('invalid-response', `Too many redirects while fetching ${url}.`, 'Check the server URL setting.', { url, status });
      }
      const next = new URL(res.headers.location, current);
      if (next.protocol !== 'http:' && next.protocol !== 'https:') {
        throw new DownloadError('invalid-response', `${url} redirected to an unsupported URL (${next.protocol}).`, 'Check the server URL setting.', { url, status });
      }
      // Credentials stay with the origin they were meant for (signed CDN URLs need none).
      if (next.origin !== origin) {
        headers = Object.fromEntries(Object.entries(headers).filter(([k]) => k.toLowerCase() !== 'authorization'));
      }
      current = next.toString();
      continue;
    }
    return { res, finalUrl: current, chainHeaders };
  }
}

function requestOnce(url: string, headers: Record<string, string>, options: RequestOptions): Promise<http.IncomingMessage> {
  return new Promise((resolve, reject) => {
    const u = new URL(url);
    const mod = u.protocol === 'https:' ? https : u.protocol === 'http:' ? http : undefined;
    if (!mod) {
      reject(new DownloadError('invalid-response', `Unsupported URL protocol in ${url}.`, 'Use an http:// or https:// URL.', { url }));
      return;
    }
    const signal = options.signal;
    if (signal?.aborted) {
      reject(abortReason());
      return;
    }
    let settled = false;
    const req = mod.request(u, {
      method: 'GET',
      headers: { 'user-agent': 'r1-coder', ...headers },
      lookup: options.lookup,
    });
    const timer = setTimeout(() => {
      req.destroy(codedError('ETIMEDOUT', `No response from ${u.host} within ${Math.round((options.connectTimeoutMs ?? 30_000) / 1000)} s`));
    }, options.connectTimeoutMs ?? 30_000);
    const onAbort = () => req.destroy(abortReason());
    signal?.addEventListener('abort', onAbort, { once: true });
    const cleanup = () => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
    };
    req.on('response', (res) => {
      settled = true;
      cleanup();
      resolve(res);
    });
    req.on('error', (err) => {
      cleanup();
      if (!settled) {
        settled = true;
        reject(err);
      }
    });
    req.end();
  });
}

export function abortReason(): Error {
  return codedError('ABORT_ERR', 'The operation was aborted');
}

/** Reads a whole (small) body, decoding gzip/deflate/br, with a size cap. */
export async function readBody(res: http.IncomingMessage, maxBytes: number): Promise<Buffer> {
  const zlib = await import('node:zlib');
  const enc = String(res.headers['content-encoding'] ?? '').toLowerCase();
  let stream: NodeJS.ReadableStream = res;
  if (enc === 'gzip' || enc === 'x-gzip') stream = res.pipe(zlib.createGunzip());
  else if (enc === 'deflate') stream = res.pipe(zlib.createInflate());
  else if (enc === 'br') stream = res.pipe(zlib.createBrotliDecompress());
  const chunks: Buffer[] = [];
  let total = 0;
  // Errors of the raw response must reach the decoder's consumer too.
  if (stream !== res) res.on('error', (e) => (stream as unknown as { destroy(e: Error): void }).destroy(e));
  for await (const chunk of stream as AsyncIterable<Buffer>) {
    total += chunk.length;
    if (total > maxBytes) {
      res.destroy();
      throw codedError('ETOOBIG', `response larger than ${maxBytes} bytes`);
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}
