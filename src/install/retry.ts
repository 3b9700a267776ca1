/**
 * Retry policy: bounded count, exponential backoff with jitter, Retry-After honoured. The delays
 * and the sleep are injectable so that tests run without waiting.
 */
import { DownloadError } from './errors';

export interface RetryOptions {
  /** Retries after the first attempt (default 5): at most maxRetries + 1 requests per file. */
  maxRetries?: number;
  /** First backoff delay (default 1000 ms); doubles each retry. */
  baseDelayMs?: number;
  /** Cap of one backoff delay (default 30 s). */
  maxDelayMs?: number;
  /** Longest Retry-After the client will wait (default 120 s); a longer one fails with the server's word. */
  maxRetryAfterMs?: number;
  /** Source of jitter in [0, 1) (default Math.random). */
  random?: () => number;
  /** How to wait (default: an abortable timer). Tests inject one that records and returns at once. */
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
}

export interface ResolvedRetry {
  maxRetries: number;
  baseDelayMs: number;
  maxDelayMs: number;
  maxRetryAfterMs: number;
  random: () => number;
  sleep: (ms: number, signal?: AbortSignal) => Promise<void>;
}

export function resolveRetry(o: RetryOptions | undefined): ResolvedRetry {
  return {
    maxRetries: Math.max(0, Math.floor(o?.maxRetries ?? 5)),
    baseDelayMs: Math.max(0, o?.baseDelayMs ?? 1000),
    maxDelayMs: Math.max(0, o?.maxDelayMs ?? 30_000),
    maxRetryAfterMs: Math.max(0, o?.maxRetryAfterMs ?? 120_000),
    random: o?.random ?? Math.random,
    sleep: o?.sleep ?? abortableSleep,
  };
}

/**
 * The delay before retry number `retry` (0-based): min(max, base * 2^retry), "equal jitter"
 * (between half and all of it), so that clients that failed together do not retry together.
 */
export function backoffDelay(retry: number, policy: Pick<ResolvedRetry, 'baseDelayMs' | 'maxDelayMs' | 'random'>): number {
  const exp = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** Math.min(retry, 30));
  return Math.round(exp / 2 + (exp / 2) * policy.random());
}

/** Retry-After as milliseconds: delta-seconds or an HTTP date; undefined when absent or unparsable. */
export function parseRetryAfter(value: string | string[] | undefined, now = Date.now()): number | undefined {
  const v = Array.isArray(value) ? value[0] : value;
  if (v == null || v.trim() === '') return undefined;
  const s = v.trim();
  if (/^\d+$/.test(s)) return Number(s) * 1000;
  const t = Date.parse(s);
  if (Number.isNaN(t)) return undefined;
  return Math.max(0, t - now);
}

/** A timer that rejects with a 'cancelled' DownloadError when the signal fires. */
export function abortableSleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(new DownloadError('cancelled', 'The download was cancelled.', ''));
      return;
    }
    const onAbort = () => {
      clearTimeout(timer);
      reject(new DownloadError('cancelled', 'The download was cancelled.', ''));
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
