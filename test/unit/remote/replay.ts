/**
 * Replay servers: loopback HTTP servers that answer as vLLM, SGLang, llama.cpp, LM Studio,
 * Ollama (native and /v1), a server with its reasoning parser off, and one whose model never
 * closes its reasoning, built from the documented chunk formats (../shared/SERVERS.md):
 *
 * - vLLM: `docs/features/reasoning_outputs.md` (a chunk while reasoning:
 *   `{"object":"chat.completion.chunk","choices":[{"index":0,"delta":{"role":"assistant","reasoning":"is"},"finish_reason":null}]}`,
 *   `content` absent or null until `</think>`, `data: [DONE]` at the end), ModelCard
 *   `owned_by: "vllm"` with `max_model_len` (vllm/entrypoints/openai/protocol.py); usage
 *   `completion_tokens_details.reasoning_tokens` (newer); before the rename (PR #27752) the field
 *   was `reasoning_content`.
 * - SGLang: `delta.reasoning_content`, `usage.reasoning_tokens`, ModelCard `owned_by: "sglang"`
 *   (python/sglang/srt/entrypoints/openai/protocol.py), `POST /abort_request {"rid"}`
 *   (python/sglang/srt/entrypoints/http_server.py).
 * - llama.cpp: `delta.reasoning_content` with `--reasoning-format deepseek`, a last chunk with
 *   `timings` (tools/server/README.md), `/v1/models` `owned_by: "llamacpp"` (tools/server).
 * - LM Studio: `reasoning_content` for R1 models (lmstudio.ai/docs/app/api-changelog, 0.3.9).
 * - Ollama: `/api/chat` with `think: true` streams NDJSON objects with `message.thinking`, then
 *   `message.content`, and a last `done: true` object with `done_reason` and the durations in ns
 *   (api/types.go; docs/capabilities/thinking.mdx); `/api/tags`, `/api/version`; its /v1 sends
 *   `delta.reasoning` and `system_fingerprint: "fp_ollama"` (openai/openai.go).
 * - parser off: the model's raw text in `content`, only the closing `</think>` (the R1 template
 *   opens `<think>` in the prompt).
 * - `content: null` to the end: the reasoning never closes (finish_reason `length`).
 *
 * Each records the requests it got, and can fail on demand: a status on a route, a stream that
 * breaks, a malformed chunk, an error chunk, a stall, slow chunks (for cancellation).
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { DEFAULT_SCRIPT } from '../../fixtures/models';

export type Shape = 'vllm' | 'vllm-old' | 'sglang' | 'llama.cpp' | 'lmstudio' | 'ollama' | 'ollama-v1' | 'parser-off' | 'null-content';
export const SHAPES: readonly Shape[] = ['vllm', 'vllm-old', 'sglang', 'llama.cpp', 'lmstudio', 'ollama', 'ollama-v1', 'parser-off', 'null-content'];

/** The scripted model's text: what every shape carries. */
export const RAW_REASONING = DEFAULT_SCRIPT.split('</think>')[0]!;
export const RAW_ANSWER = DEFAULT_SCRIPT.slice(RAW_REASONING.length + '</think>'.length);
/** What a client must show: the engine's split of the same text. */
export const REASONING = RAW_REASONING.trim();
export const ANSWER = RAW_ANSWER.replace(/^\n+/, '');

export type Failure =
  | { kind: 'status'; route: 'models' | 'chat'; status: number; body: unknown; headers?: Record<string, string> }
  /** Destroys the connection after this many chunks of the stream. */
  | { kind: 'break'; after: number }
  /** Sends a chunk that is not JSON as this chunk. */
  | { kind: 'malformed'; at: number }
  /** Sends an error chunk (vLLM's in-stream error) as this chunk, then ends the stream. */
  | { kind: 'error-chunk'; at: number }
  /** Stops sending (keeps the connection open) after this many chunks. */
  | { kind: 'stall'; after: number };

export interface ReplayOptions {
  shape: Shape;
  /** Answer in one piece even when the request asks for a stream (a server or proxy that does not stream). */
  noStream?: boolean;
  models?: string[];
  apiKey?: string;
  failure?: Failure;
  /** Milliseconds between streamed chunks. */
  delayMs?: number;
}

export interface Recorded {
  method: string;
  path: string;
  headers: IncomingMessage['headers'];
  body: Record<string, unknown> | undefined;
}

export interface Replay {
  url: string;
  options: ReplayOptions;
  requests: Recorded[];
  /** The chat requests whose connection closed before their reply ended. */
  closedEarly: number;
  close(): Promise<void>;
}

/** Token-sized pieces: words with the whitespace before them. */
export function pieces(text: string): string[] {
  return text.match(/\s*\S+|\s+$/g) ?? [];
}

/** Pieces of 5 characters: splits `</think>` across chunks. */
function smallPieces(text: string): string[] {
  const out: string[] = [];
  for (let i = 0; i < text.length; i += 5) out.push(text.slice(i, i + 5));
  return out;
}

const OWNERS: Record<Shape, string> = {
  vllm: 'vllm',
  'vllm-old': 'vllm',
  sglang: 'sglang',
  'llama.cpp': 'llamacpp',
  lmstudio: 'organization_owner',
  ollama: 'library',
  'ollama-v1': 'library',
  'parser-off': 'vllm',
  'null-content': 'vllm',
};

function reasoningKey(shape: Shape): 'reasoning' | 'reasoning_content' {
  return shape === 'vllm' || shape === 'ollama-v1' || shape === 'null-content' ? 'reasoning' : 'reasoning_content';
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The deltas of an OpenAI-compatible stream for a shape, and its usage. */
function openaiDeltas(shape: Shape): { deltas: Record<string, unknown>[]; finish: string; reasoningTokens: number; completionTokens: number } {
  const key = reasoningKey(shape);
  if (shape === 'parser-off') {
    const d = smallPieces(`${RAW_REASONING}</think>${RAW_ANSWER}`).map((t) => ({ content: t }));
    return { deltas: d, finish: 'stop', reasoningTokens: 0, completionTokens: d.length };
  }
  const r = pieces(RAW_REASONING).map((t) => ({ [key]: t, ...(shape === 'vllm' || shape === 'null-content' ? { content: null } : {}) }));
  if (shape === 'null-content') return { deltas: r, finish: 'length', reasoningTokens: r.length, completionTokens: r.length };
  const a = pieces(RAW_ANSWER).map((t) => ({ content: t }));
  return { deltas: [...r, ...a], finish: 'stop', reasoningTokens: r.length, completionTokens: r.length + 1 + a.length };
}

function usageOf(shape: Shape, prompt: number, completion: number, reasoning: number): Record<string, unknown> {
  const u: Record<string, unknown> = { prompt_tokens: prompt, completion_tokens: completion, total_tokens: prompt + completion };
  if (shape === 'vllm' || shape === 'null-content') u.completion_tokens_details = { reasoning_tokens: reasoning };
  if (shape === 'sglang') u.reasoning_tokens = reasoning;
  return u;
}

async function readBody(req: IncomingMessage): Promise<Record<string, unknown> | undefined> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  if (chunks.length === 0) return undefined;
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, unknown>;
  } catch {
    return undefined;
  }
}

function json(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'Content-Type': 'application/json', ...headers });
  res.end(JSON.stringify(body));
}

export async function startReplay(options: ReplayOptions): Promise<Replay> {
  const state: Replay = { url: '', options, requests: [], closedEarly: 0, close: async () => undefined };
  const o = options;
  const models = o.models ?? [o.shape.startsWith('ollama') ? 'deepseek-r1:1.5b' : 'deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B'];
  const ollama = o.shape === 'ollama' || o.shape === 'ollama-v1';

  /** Streams `items` (already serialized lines/events) honouring the failure modes; false when cut. */
  async function streamOut(req: IncomingMessage, res: ServerResponse, items: string[], ending: string | undefined): Promise<void> {
    let gone = false;
    res.on('close', () => {
      if (!res.writableEnded) {
        gone = true;
        state.closedEarly++;
      }
    });
    const f = o.failure;
    for (let i = 0; i < items.length; i++) {
      if (gone) return;
      if (f?.kind === 'break' && i === f.after) {
        // Let what was written reach the client first: the connection breaks mid-reply.
        await new Promise<void>((resolve) => res.write('', () => resolve()));
        await sleep(50);
        req.socket.destroy();
        return;
      }
      if (f?.kind === 'stall' && i === f.after) return; // the client gives up
      if (f?.kind === 'malformed' && i === f.at) res.write(ending === undefined ? '{"message": {"content": "x"\n' : 'data: {"choices": [{"delta": \n\n');
      if (f?.kind === 'error-chunk' && i === f.at) {
        const err = { error: { message: 'CUDA out of memory', type: 'InternalServerError', code: 500 } };
        res.end(ending === undefined ? `${JSON.stringify({ error: 'CUDA out of memory' })}\n` : `data: ${JSON.stringify(err)}\n\n`);
        return;
      }
      res.write(items[i]);
      if (o.delayMs) await sleep(o.delayMs);
    }
    if (!gone) res.end(ending ?? '');
  }

  async function chat(req: IncomingMessage, res: ServerResponse, body: Record<string, unknown>): Promise<void> {
    const stream = body.stream === true && !o.noStream;
    const model = String(body.model);
    const promptTokens = 42;
    const created = Math.floor(Date.now() / 1000);
    if (!models.includes(model)) {
      json(res, 404, { error: { message: `The model \`${model}\` does not exist.`, type: 'NotFoundError', code: 404 } });
      return;
    }
    const { deltas, finish, reasoningTokens, completionTokens } = openaiDeltas(o.shape);
    const usage = usageOf(o.shape, promptTokens, completionTokens, reasoningTokens);
    const base = { id: 'chatcmpl-replay', object: 'chat.completion.chunk', created, model, ...(ollama ? { system_fingerprint: 'fp_ollama' } : {}) };
    if (!stream) {
      const joined = (k: string) => deltas.map((d) => d[k]).filter((v): v is string => typeof v === 'string').join('');
      const message: Record<string, unknown> = { role: 'assistant', content: joined('content') || null };
      if (o.shape !== 'parser-off') message[reasoningKey(o.shape)] = joined(reasoningKey(o.shape)) || null;
      const reply: Record<string, unknown> = { ...base, object: 'chat.completion', choices: [{ index: 0, message, finish_reason: finish }], usage };
      if (o.shape === 'llama.cpp') reply.timings = { prompt_n: promptTokens, prompt_ms: 21, prompt_per_second: 2000, predicted_n: completionTokens, predicted_ms: 1000, predicted_per_second: completionTokens, cache_n: 10 };
      json(res, 200, reply);
      return;
    }
    const events: string[] = [];
    const ev = (o: unknown) => events.push(`data: ${JSON.stringify(o)}\n\n`);
    ev({ ...base, choices: [{ index: 0, delta: { role: 'assistant', content: '' }, logprobs: null, finish_reason: null }] });
    for (const d of deltas) ev({ ...base, choices: [{ index: 0, delta: d, logprobs: null, finish_reason: null }] });
    const last: Record<string, unknown> = { ...base, choices: [{ index: 0, delta: {}, logprobs: null, finish_reason: finish }] };
    if (o.shape === 'llama.cpp') last.timings = { prompt_n: promptTokens, prompt_ms: 21, prompt_per_second: 2000, predicted_n: completionTokens, predicted_ms: 1000, predicted_per_second: completionTokens, cache_n: 10 };
    ev(last);
    const includeUsage = (body.stream_options as { include_usage?: unknown } | undefined)?.include_usage === true;
    if (includeUsage && o.shape !== 'lmstudio') ev({ ...base, choices: [], usage });
    res.writeHead(200, { 'Content-Type': 'text/event-stream; charset=utf-8', 'Cache-Control': 'no-cache' });
    res.write(': keep-alive comment\n\n');
    await streamOut(req, res, events, 'data: [DONE]\n\n');
  }

  async function ollamaChat(req: IncomingMessage, res: ServerResponse, body: Record<string, unknown>): Promise<void> {
    const stream = body.stream !== false && !o.noStream;
    const model = String(body.model);
    if (!models.includes(model)) {
      json(res, 404, { error: `model '${model}' not found` });
      return;
    }
    const created_at = new Date().toISOString();
    const think = pieces(RAW_REASONING);
    const answer = pieces(RAW_ANSWER);
    const metrics = { total_duration: 2_000_000_000, load_duration: 1_000_000, prompt_eval_count: 42, prompt_eval_duration: 21_000_000, eval_count: think.length + 1 + answer.length, eval_duration: 1_000_000_000 };
    if (!stream) {
      json(res, 200, { model, created_at, message: { role: 'assistant', content: RAW_ANSWER, thinking: RAW_REASONING }, done: true, done_reason: 'stop', ...metrics });
      return;
    }
    const out: string[] = [];
    for (const t of think) out.push(`${JSON.stringify({ model, created_at, message: { role: 'assistant', content: '', thinking: t }, done: false })}\n`);
    for (const t of answer) out.push(`${JSON.stringify({ model, created_at, message: { role: 'assistant', content: t }, done: false })}\n`);
    out.push(`${JSON.stringify({ model, created_at, message: { role: 'assistant', content: '' }, done: true, done_reason: 'stop', ...metrics })}\n`);
    res.writeHead(200, { 'Content-Type': 'application/x-ndjson' });
    await streamOut(req, res, out, undefined);
  }

  const server: Server = createServer((req, res) => {
    void (async () => {
      const path = (req.url ?? '/').split('?')[0]!;
      const body = req.method === 'POST' ? await readBody(req) : undefined;
      state.requests.push({ method: req.method ?? '', path, headers: req.headers, body });
      if (o.apiKey && req.headers.authorization !== `Bearer ${o.apiKey}`) {
        if (ollama) json(res, 401, { error: 'unauthorized' });
        else json(res, 401, { error: { message: 'Invalid API key', type: 'invalid_request_error', code: 'invalid_api_key' } });
        return;
      }
      const f = o.failure;
      const route = path === '/v1/models' || path === '/api/tags' ? 'models' : path === '/v1/chat/completions' || path === '/api/chat' ? 'chat' : undefined;
      if (f?.kind === 'status' && route === f.route) {
        json(res, f.status, f.body, f.headers);
        return;
      }
      if (req.method === 'GET' && path === '/v1/models') {
        json(res, 200, { object: 'list', data: models.map((id) => ({ id, object: 'model', created: 1700000000, owned_by: OWNERS[o.shape], ...(o.shape.startsWith('vllm') ? { max_model_len: 131072 } : {}) })) });
      } else if (req.method === 'GET' && path === '/api/version' && ollama) {
        json(res, 200, { version: '0.12.0' });
      } else if (req.method === 'GET' && path === '/api/tags' && ollama) {
        json(res, 200, { models: models.map((name) => ({ name, model: name, modified_at: '2026-01-01T00:00:00Z', size: 1_100_000_000 })) });
      } else if (req.method === 'POST' && path === '/v1/chat/completions' && body) {
        await chat(req, res, body);
      } else if (req.method === 'POST' && path === '/api/chat' && body && ollama) {
        await ollamaChat(req, res, body);
      } else if (req.method === 'POST' && path === '/abort_request' && o.shape === 'sglang') {
        res.writeHead(200).end();
      } else {
        json(res, 404, ollama ? { error: '404 page not found' } : { error: { message: `no route ${req.method} ${path}`, type: 'NotFoundError', code: 404 } });
      }
    })();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  state.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  state.close = () =>
    new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    });
  return state;
}

/** A URL on loopback where nothing listens. */
export async function deadUrl(): Promise<string> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return `http://127.0.0.1:${port}`;
}
