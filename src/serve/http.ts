/**
 * The HTTP side of `r1 serve`, on node's own http module: routing, the API key, the body limit,
 * the queue, /health, and a log line per request. Every failure becomes an OpenAI-shaped error
 * response; none reaches the process.
 */
import { type IncomingMessage, type Server, type ServerResponse, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { ChatBackend } from './backend';
import { type CompletionSettings, type Outcome, planCompletion, runCompletion } from './chat';
import { ApiError, badRequest } from './errors';
import { GenerationQueue, NOT_STARTED, QueueFullError } from './queue';
import { authorized, checkBindSafety } from './security';
import { type ChatRequest, parseChatRequest } from './validate';

/** Request bodies above this are refused with 413. */
export const DEFAULT_MAX_BODY_BYTES = 4 * 1024 * 1024;
/** A refused body is read and dropped up to this many times the limit (so the client reads the 413), then the connection is cut. */
const DRAIN_FACTOR = 16;

export interface ServeOptions {
  backend: ChatBackend;
  settings: CompletionSettings;
  host: string;
  /** 0: a free port (RunningServer.url says which). */
  port: number;
  /** When set, /v1/* requires `Authorization: Bearer <apiKey>`. */
  apiKey?: string;
  /** Allow a non-loopback host without an API key. */
  insecure?: boolean;
  /** Requests that may wait while one generates; past it: 429. */
  queueLimit: number;
  maxBodyBytes?: number;
  /** One line per request, and the server's own notes. */
  log?: (line: string) => void;
}

export interface Health {
  status: 'ok' | 'stopping';
  model: string;
  generations: {
    running: number;
    queued: number;
    /** Ended with finish_reason stop or length. */
    completed: number;
    /** The client went away (or the server stopped) before the end. */
    cancelled: number;
    /** The model failed. */
    failed: number;
    /** Refused with 429: the queue was full. */
    rejected: number;
  };
}

export interface RunningServer {
  /** `http://host:port`, with the port really bound; OpenAI clients use `${url}/v1`. */
  readonly url: string;
  health(): Health;
  /** Stops listening, cancels the running and waiting generations and closes every connection. */
  close(): Promise<void>;
}

type Handler = (req: IncomingMessage, res: ServerResponse) => Promise<string | void>;

function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  if (res.headersSent || res.destroyed) {
    if (!res.writableEnded) res.end();
    return;
  }
  res.writeHead(status, { 'Content-Type': 'application/json', ...headers });
  res.end(JSON.stringify(body));
}

function sendError(res: ServerResponse, e: ApiError): void {
  sendJson(res, e.status, e.body, e.headers);
}

function urlHost(host: string): string {
  return host.includes(':') ? `[${host}]` : host;
}

export async function startServer(o: ServeOptions): Promise<RunningServer> {
  await checkBindSafety(o.host, o.apiKey, o.insecure === true);
  const { backend, settings } = o;
  const log = o.log ?? (() => undefined);
  const maxBody = o.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
  const queue = new GenerationQueue(o.queueLimit);
  const shutdown = new AbortController();
  const counts = { completed: 0, cancelled: 0, failed: 0, rejected: 0 };
  const created = Math.floor(Date.now() / 1000);
  const active = new Set<Promise<unknown>>();

  const health = (): Health => ({
    status: shutdown.signal.aborted ? 'stopping' : 'ok',
    model: settings.modelId,
    generations: { running: queue.running, queued: queue.queued, ...counts },
  });

  const modelObject = () => ({ id: settings.modelId, object: 'model', created, owned_by: 'r1-coder' });

  /** Reads the body up to the limit; past it, answers 413 and drops the rest as it comes. */
  const readBody = (req: IncomingMessage): Promise<Buffer> =>
    new Promise((resolve, reject) => {
      const tooLarge = () =>
        new ApiError(413, `The request body is larger than this server's limit of ${maxBody} bytes.`, 'invalid_request_error', 'request_too_large');
      const drain = () => {
        let dropped = 0;
        req.removeAllListeners('data');
        req.on('data', (c: Buffer) => {
          dropped += c.length;
          if (dropped > DRAIN_FACTOR * maxBody) req.socket.destroy();
        });
        req.resume();
      };
      const declared = Number(req.headers['content-length']);
      if (Number.isFinite(declared) && declared > maxBody) {
        drain();
        reject(tooLarge());
        return;
      }
      const chunks: Buffer[] = [];
      let size = 0;
      req.on('data', (c: Buffer) => {
        size += c.length;
        if (size > maxBody) {
          drain();
          reject(tooLarge());
          return;
        }
        chunks.push(c);
      });
      req.on('end', () => resolve(Buffer.concat(chunks)));
      req.on('error', reject);
      // A client that leaves mid-body (after 'end' this changes nothing).
      req.on('close', () => reject(new ApiError(400, 'The client closed the connection before the body ended.', 'invalid_request_error', 'incomplete_body')));
    });

  const chat: Handler = async (req, res) => {
    const raw = await readBody(req);
    let json: unknown;
    try {
      json = JSON.parse(raw.toString('utf8'));
    } catch (e) {
      throw badRequest(`The body is not valid JSON (${e instanceof Error ? e.message : String(e)}).`, null, 'invalid_json');
    }
    const request: ChatRequest = parseChatRequest(json, settings.modelId);
    const plan = planCompletion(backend, request, settings);

    // The request ends when its client goes away (or the server stops): its generation is cancelled.
    const gone = new AbortController();
    res.once('close', () => {
      if (!res.writableFinished) gone.abort();
    });
    const ended = AbortSignal.any([gone.signal, shutdown.signal]);
    let outcome: Outcome | typeof NOT_STARTED;
    try {
      outcome = await queue.run(ended, () => runCompletion(backend, request, plan, settings, res, ended));
    } catch (e) {
      if (e instanceof QueueFullError) {
        counts.rejected++;
        throw new ApiError(
          429,
          `The server is busy: one generation is running and ${queue.limit} wait${queue.limit === 1 ? 's' : ''}. Retry after ${e.retryAfterSeconds} s.`,
          'rate_limit_error',
          'rate_limit_exceeded',
          null,
          { 'Retry-After': String(e.retryAfterSeconds) },
        );
      }
      if (e instanceof ApiError && e.status >= 500) counts.failed++;
      throw e;
    }
    const kind = request.stream ? 'stream' : 'json';
    if (outcome === NOT_STARTED) {
      counts.cancelled++;
      return `${kind} cancelled while queued`;
    }
    if (outcome.finish === 'cancelled') counts.cancelled++;
    else if (outcome.finish === 'error') counts.failed++;
    else counts.completed++;
    const tokens = `${outcome.promptTokens} prompt + ${outcome.completionTokens} completion tokens`;
    return `${kind} ${outcome.finish === 'cancelled' ? 'cancelled (client closed)' : outcome.finish}, ${tokens}${outcome.error ? `: ${outcome.error}` : ''}`;
  };

  const routes: Record<string, Record<string, Handler>> = {
    '/health': {
      GET: async (_req, res) => sendJson(res, shutdown.signal.aborted ? 503 : 200, health()),
    },
    '/v1/models': {
      GET: async (_req, res) => sendJson(res, 200, { object: 'list', data: [modelObject()] }),
    },
    '/v1/chat/completions': { POST: chat },
  };

  const route = (path: string): Record<string, Handler> | undefined => {
    const exact = routes[path];
    if (exact) return exact;
    const m = /^\/v1\/models\/(.+)$/.exec(path);
    if (!m) return undefined;
    return {
      GET: async (_req, res) => {
        const id = decodeURIComponent(m[1]!);
        if (id !== settings.modelId) {
          throw new ApiError(404, `The model \`${id}\` does not exist. This server serves \`${settings.modelId}\`.`, 'invalid_request_error', 'model_not_found', 'model');
        }
        sendJson(res, 200, modelObject());
      },
    };
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const t0 = performance.now();
    const method = req.method ?? 'GET';
    let path = '/';
    let note: string | void = undefined;
    try {
      path = new URL(req.url ?? '/', 'http://x').pathname;
      const methods = route(path);
      if (!methods) {
        throw new ApiError(404, `Unknown request URL: ${method} ${path}.`, 'invalid_request_error', 'unknown_url');
      }
      const handler = methods[method];
      if (!handler) {
        const allow = Object.keys(methods).join(', ');
        throw new ApiError(405, `${method} is not allowed on ${path} (allowed: ${allow}).`, 'invalid_request_error', 'method_not_allowed', null, { Allow: allow });
      }
      if (o.apiKey && path.startsWith('/v1/') && !authorized(req.headers.authorization, o.apiKey)) {
        throw new ApiError(
          401,
          'Incorrect or missing API key: send "Authorization: Bearer <key>" with the key the server was started with.',
          'invalid_request_error',
          'invalid_api_key',
          null,
          { 'WWW-Authenticate': 'Bearer' },
        );
      }
      note = await handler(req, res);
    } catch (e) {
      const err = e instanceof ApiError ? e : new ApiError(500, `The server failed: ${e instanceof Error ? e.message : String(e)}`, 'server_error', 'internal_error');
      if (!(e instanceof ApiError)) log(`internal error on ${method} ${path}: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
      // A request refused before its body was read: drop the body so the connection can be reused.
      if (!req.readableEnded && req.listenerCount('data') === 0) req.resume();
      sendError(res, err);
      note = err.code ?? undefined;
    }
    const ms = Math.round(performance.now() - t0);
    log(`${method} ${path} ${res.statusCode} ${ms} ms${note ? ` ${note}` : ''}`);
  };

  const server: Server = createServer((req, res) => {
    res.on('error', () => undefined); // a client that left mid-write
    const p = handle(req, res).catch(() => undefined);
    active.add(p);
    void p.finally(() => active.delete(p));
  });
  server.on('clientError', (_err, socket) => {
    if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
    else socket.destroy();
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(o.port, o.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address() as AddressInfo;
  const url = `http://${urlHost(address.address)}:${address.port}`;

  let closing: Promise<void> | undefined;
  return {
    url,
    health,
    close: () => {
      closing ??= (async () => {
        // Cancels what runs and waits (its client gets no more), then cuts every connection:
        // each handler ends within a decode step.
        shutdown.abort();
        const stopped = new Promise<void>((resolve) => server.close(() => resolve()));
        server.closeAllConnections();
        await Promise.allSettled([...active]);
        await stopped;
      })();
      return closing;
    },
  };
}
