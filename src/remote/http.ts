/**
 * One HTTP exchange with a server (Node's fetch), and the failures of one as RemoteErrors that
 * name the server and what to do. The key goes in `Authorization: Bearer`, as every server here
 * expects it (vLLM `--api-key`, SGLang `--api-key`, llama.cpp `--api-key`, r1 serve, a proxy in
 * front of Ollama).
 */
import { RemoteError } from './errors';
import type { ServerUrl } from './url';

export interface HttpRequest {
  method: 'GET' | 'POST';
  url: string;
  body?: unknown;
  apiKey?: string;
  signal?: AbortSignal;
  /** Gives up on the whole exchange after this long (probes); undefined: no limit. */
  timeoutMs?: number;
}

/** Thrown (as is) when the caller's signal aborted the request: the caller decides what that means. */
export class Aborted extends Error {
  override readonly name = 'Aborted';
}

function causeCode(e: unknown): string | undefined {
  let cur: unknown = e;
  for (let i = 0; i < 5 && cur && typeof cur === 'object'; i++) {
    const code = (cur as { code?: unknown }).code;
    if (typeof code === 'string') return code;
    cur = (cur as { cause?: unknown }).cause;
  }
  return undefined;
}

const NETWORK_WHY: Record<string, string> = {
  ECONNREFUSED: 'connection refused: nothing listens there',
  ENOTFOUND: 'unknown host name',
  EAI_AGAIN: 'the host name could not be resolved',
  EHOSTUNREACH: 'host unreachable',
  ENETUNREACH: 'network unreachable',
  ETIMEDOUT: 'the connection timed out',
  ECONNRESET: 'the connection was reset',
  UND_ERR_CONNECT_TIMEOUT: 'the connection timed out',
  UND_ERR_SOCKET: 'the connection closed',
  EPROTO: 'the TLS handshake failed (is it http://, not https://?)',
  ERR_SSL_WRONG_VERSION_NUMBER: 'the TLS handshake failed (is it http://, not https://?)',
  DEPTH_ZERO_SELF_SIGNED_CERT: 'its TLS certificate is self-signed',
  UNABLE_TO_VERIFY_LEAF_SIGNATURE: 'its TLS certificate cannot be verified',
  CERT_HAS_EXPIRED: 'its TLS certificate has expired',
};

/** A failure to exchange anything with the server, as a RemoteError. */
export function unreachable(server: ServerUrl, url: string, e: unknown, timedOut = false): RemoteError {
  const code = causeCode(e);
  const why = timedOut ? 'no answer in time' : ((code && NETWORK_WHY[code]) ?? (e instanceof Error ? (e.cause instanceof Error ? e.cause.message : e.message) : String(e)));
  return new RemoteError(
    'unreachable',
    `R1 Coder cannot reach the server at ${server.raw} (${url}: ${why}). Check that the server runs and that r1.server.url (or --server) names it.`,
    server.raw,
    undefined,
    { cause: e },
  );
}

export async function send(server: ServerUrl, r: HttpRequest): Promise<Response> {
  const headers: Record<string, string> = { Accept: 'application/json, text/event-stream, application/x-ndjson' };
  if (r.body !== undefined) headers['Content-Type'] = 'application/json';
  if (r.apiKey) headers.Authorization = `Bearer ${r.apiKey}`;
  const timeout = r.timeoutMs !== undefined ? AbortSignal.timeout(r.timeoutMs) : undefined;
  const signals = [r.signal, timeout].filter((s): s is AbortSignal => s !== undefined);
  const signal = signals.length === 0 ? undefined : signals.length === 1 ? signals[0] : AbortSignal.any(signals);
  if (r.signal?.aborted) throw new Aborted('cancelled');
  try {
    return await fetch(r.url, { method: r.method, headers, body: r.body !== undefined ? JSON.stringify(r.body) : undefined, signal, redirect: 'error' });
  } catch (e) {
    if (r.signal?.aborted) throw new Aborted('cancelled');
    throw unreachable(server, r.url, e, timeout?.aborted === true);
  }
}

/** The message of an error body: OpenAI's `{"error": {"message"}}`, Ollama's `{"error": "…"}`, FastAPI's `{"detail"}`, or the text. */
export function errorMessage(text: string): string {
  const t = text.trim();
  try {
    const body = JSON.parse(t) as Record<string, unknown>;
    const err = body.error;
    if (typeof err === 'string') return err;
    if (err && typeof err === 'object' && typeof (err as { message?: unknown }).message === 'string') return (err as { message: string }).message;
    if (typeof body.message === 'string') return body.message;
    if (typeof body.detail === 'string') return body.detail;
    if (Array.isArray(body.detail)) return JSON.stringify(body.detail).slice(0, 300);
  } catch {
    // not JSON
  }
  return t.length > 300 ? `${t.slice(0, 300)}…` : t || '(no message)';
}

/** A non-2xx answer as a RemoteError with what to do. `model` and `hasKey` sharpen the advice. */
export function statusError(server: ServerUrl, url: string, status: number, bodyText: string, context: { model?: string; hasKey: boolean; retryAfter?: string | null }): RemoteError {
  // The server's own words, without a final period: they sit inside parentheses.
  const said = errorMessage(bodyText).replace(/[.\s]+$/, '');
  const where = `The server at ${server.raw}`;
  const make = (code: ConstructorParameters<typeof RemoteError>[0], message: string) => new RemoteError(code, message, server.raw, status);
  if (status === 401 || status === 403) {
    return make(
      'auth',
      context.hasKey
        ? `${where} refused the API key (HTTP ${status}: ${said}). Set the right key with "R1: Set Server API Key" (on the command line: the variable --api-key-env names).`
        : `${where} needs an API key (HTTP ${status}: ${said}). Set it with "R1: Set Server API Key" (on the command line: --api-key-env VAR).`,
    );
  }
  if (status === 404) {
    if (/model/i.test(said)) {
      return make('unknown-model', `${where} does not serve the model${context.model ? ` "${context.model}"` : ''} (HTTP 404: ${said}). Set r1.server.model (or --server-model) to a model it lists, or leave it empty for the first one.`);
    }
    return make('not-found', `${where} has no ${new URL(url).pathname} (HTTP 404: ${said}). Set r1.server.url to the server's base: http://host:port or http://host:port/v1 (Ollama: http://host:11434).`);
  }
  if (status === 429) {
    const after = context.retryAfter && /^\d+$/.test(context.retryAfter) ? ` in ${context.retryAfter} s` : ' in a moment';
    return make('busy', `${where} is busy (HTTP 429: ${said}). Try again${after}.`);
  }
  if (status === 400 || status === 413 || status === 422) {
    const long = /context|too long|maximum.*length|tokens/i.test(said);
    return make(
      'bad-request',
      `${where} refused the request (HTTP ${status}: ${said}).${long ? ' Select less code, or lower r1.generation.contextWindow / r1.generation.maxNewTokens to fit the server\'s context.' : ''}`,
    );
  }
  if (status >= 500) {
    return make('server-error', `${where} failed (HTTP ${status}: ${said}). Try again; if it keeps failing, the server's own log says why.`);
  }
  return make('bad-response', `${where} answered HTTP ${status} (${said}), which R1 Coder did not expect.`);
}

/** The body of a failed response, read whole (short bodies only). */
export async function bodyText(res: Response): Promise<string> {
  try {
    return (await res.text()).slice(0, 64 * 1024);
  } catch {
    return '';
  }
}
