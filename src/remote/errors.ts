/**
 * Failures of a server run, each naming the server and what to do. A `RemoteError` is thrown
 * when nothing of the reply has arrived yet; once text has streamed, a failure ends the run with
 * status `error` instead and what arrived is kept.
 */

export type RemoteErrorCode =
  /** r1.server.url (or --server) is empty or not an http(s) URL. */
  | 'not-configured'
  /** No connection: refused, unknown host, timeout, TLS failure. */
  | 'unreachable'
  /** 401 or 403: no key, or the wrong one. */
  | 'auth'
  /** The model is not among those the server lists, or the server answered 404 for it. */
  | 'unknown-model'
  /** 404 for the route: the URL is not the base of an OpenAI-compatible or Ollama server. */
  | 'not-found'
  /** 400: the server refused the request (a prompt over its context length, a field it rejects). */
  | 'bad-request'
  /** 429: the server's queue is full. */
  | 'busy'
  /** 5xx. */
  | 'server-error'
  /** A reply that is not what the API sends (not JSON, no choices, a malformed chunk). */
  | 'bad-response'
  /** The connection closed, or went silent, before the reply ended. */
  | 'stream-broken';

export class RemoteError extends Error {
  override readonly name = 'RemoteError';

  constructor(
    readonly code: RemoteErrorCode,
    message: string,
    /** The server's URL as configured. */
    readonly server: string,
    /** The HTTP status, when the server answered with one. */
    readonly status?: number,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

export function isRemoteError(e: unknown): e is RemoteError {
  return e instanceof Error && e.name === 'RemoteError' && typeof (e as RemoteError).code === 'string';
}
