/**
 * RemoteBackend: a generation on a server, with the engine's contract. `generate(request,
 * options)` takes the same PromptRequest and GenerateOptions as R1Engine.generate, streams the
 * same reasoning/answer events through `onEvent`, honours `signal`, and resolves to the same
 * GenerationResult (status complete / length / cancelled / error, codeBlocks, stats, notes,
 * userTurn), so the language server and the CLI use either without knowing which.
 *
 * The prompt is the engine's user turn as chat messages (buildMessages): the server applies the
 * model's chat template itself.
 */
import { randomBytes } from 'node:crypto';
import {
  buildMessages,
  estimateTokens,
  extractCodeBlocks,
  isModelError,
  noGeneration,
  type GenerateOptions,
  type GenerationResult,
  type GenerationStatus,
  type PromptRequest,
  type StreamEvent,
  type TruncationNote,
} from '../engine';
import { MalformedChunk, readOllamaChunk, readOpenAIChunk, readOpenAIReply, type WireDelta, type WireUsage } from './chunks';
import { isRemoteError, RemoteError } from './errors';
import { Aborted, bodyText, send, statusError } from './http';
import { takesTopK, thinkingBudgetField } from './kinds';
import { probe, type RemoteApi, type RemoteTarget } from './probe';
import { WireSplitter } from './split';
import { lines, sseEvents } from './stream';
import { parseServerUrl, type ServerUrl } from './url';

/** The engine's defaults (src/engine/generate.ts), so a server run without settings asks the same. */
const DEFAULT_MAX_NEW_TOKENS = 4096;
const DEFAULT_CONTEXT_WINDOW = 8192;

export interface RemoteConfig {
  /** The server's base URL (see url.ts). */
  url: string;
  /** '' or undefined: the first model the server lists. */
  model?: string;
  /** `auto` (default): the model listing decides; Ollama's own API when the server is Ollama. */
  api?: RemoteApi | 'auto';
  apiKey?: string;
  /** Ask for a streamed reply (default true). A server that answers in one piece anyway is read as such. */
  stream?: boolean;
  /** The longest silence inside a reply before it counts as broken, ms (default 300 000). */
  idleTimeoutMs?: number;
  /** How long the model listing may take, ms (default 10 000). */
  probeTimeoutMs?: number;
  /** Warnings worth a log line (a key sent over plain HTTP). */
  warn?: (message: string) => void;
}

function definedOnly(u: WireUsage): WireUsage {
  return Object.fromEntries(Object.entries(u).filter(([, v]) => v !== undefined)) as WireUsage;
}

function round(x: number): number {
  return Math.round(x * 100) / 100;
}

export class RemoteBackend {
  readonly server: ServerUrl;
  private target: RemoteTarget | undefined;
  private warnedClearKey = false;

  constructor(readonly config: RemoteConfig) {
    this.server = parseServerUrl(config.url);
  }

  /** The server, API and model of the last successful probe. */
  get connected(): RemoteTarget | undefined {
    return this.target;
  }

  /** Probes the server once (model listing, kind, model); later calls reuse what it found. */
  async connect(signal?: AbortSignal): Promise<RemoteTarget> {
    if (this.target) return this.target;
    this.warnClearKey();
    this.target = await probe(this.server, {
      api: this.config.api ?? 'auto',
      model: this.config.model?.trim() || undefined,
      apiKey: this.config.apiKey,
      timeoutMs: this.config.probeTimeoutMs ?? 10_000,
      signal,
    });
    return this.target;
  }

  /** Forgets the probe: the next run asks the server again (after it failed in a way a restart may change). */
  forget(): void {
    this.target = undefined;
  }

  async dispose(): Promise<void> {
    this.target = undefined;
  }

  private warnClearKey(): void {
    if (this.warnedClearKey || !this.config.apiKey || this.server.secure || this.server.loopback) return;
    this.warnedClearKey = true;
    this.config.warn?.(`The API key goes to ${this.server.origin} over plain HTTP, readable on the network. Put the server behind a reverse proxy with TLS and use an https:// URL.`);
  }

  /**
   * Generates on the server. Throws RemoteError (or the engine's ModelError for a request it
   * refuses) while nothing of the reply has arrived; after that, a failure resolves with status
   * `error` and what arrived. Cancellation resolves with status `cancelled`.
   */
  async generate(req: PromptRequest, opts: GenerateOptions = {}): Promise<GenerationResult> {
    const signal = opts.signal;
    let target: RemoteTarget;
    try {
      target = await this.connect(signal);
    } catch (e) {
      if (e instanceof Aborted) return this.emptyResult('cancelled', undefined);
      throw e;
    }
    const wanted = opts.contextWindow ?? DEFAULT_CONTEXT_WINDOW;
    const window = Math.min(wanted, target.contextLength ?? Infinity);
    const maxNewTokens = opts.maxNewTokens ?? DEFAULT_MAX_NEW_TOKENS;
    let msgs;
    try {
      msgs = buildMessages(req, { contextWindow: window, maxNewTokens });
    } catch (e) {
      if (isModelError(e) && e.code === 'prompt-too-long' && window < wanted) {
        throw new RemoteError(
          'bad-request',
          `${target.model} on the server at ${this.server.raw} has a context of ${window} tokens, which leaves no room for a prompt after reserving ${maxNewTokens} for the answer. Lower r1.generation.maxNewTokens (or --max-new-tokens).`,
          this.server.raw,
        );
      }
      throw e;
    }

    const notes: TruncationNote[] = [...msgs.truncation];
    const budget = opts.thinkingBudget ?? 0;
    let budgetField: string | undefined;
    if (budget > 0) {
      const b = thinkingBudgetField(target.kind);
      if ('field' in b) budgetField = b.field;
      else notes.push({ part: 'server', droppedTokens: 0, detail: `The thinking budget (${budget} tokens) is not enforced: ${b.reason}. The model reasons as long as it needs, within the token limit.` });
    }
    const stream = this.config.stream ?? true;
    const messages = msgs.turns.map((t) => ({ role: t.role, content: t.content }));
    const rid = target.kind === 'sglang' ? `r1-${randomBytes(8).toString('hex')}` : undefined;
    let url: string;
    let body: Record<string, unknown>;
    if (target.api === 'ollama') {
      // api/types.go: ChatRequest {model, messages, stream, think, options}; Options num_predict, num_ctx, temperature, top_p, top_k, seed.
      url = `${this.server.root}/api/chat`;
      body = {
        model: target.model,
        messages,
        stream,
        think: true,
        options: { num_predict: maxNewTokens, num_ctx: window, temperature: opts.temperature, top_p: opts.topP, top_k: opts.topK || undefined, seed: opts.seed },
      };
    } else {
      url = `${this.server.openai}/chat/completions`;
      body = {
        model: target.model,
        messages,
        stream,
        ...(stream ? { stream_options: { include_usage: true } } : {}),
        max_tokens: maxNewTokens,
        temperature: opts.temperature,
        top_p: opts.topP,
        seed: opts.seed,
        ...(opts.topK && takesTopK(target.kind) ? { top_k: opts.topK } : {}),
        ...(budgetField ? { [budgetField]: budget } : {}),
        // llama.cpp: reasoning in reasoning_content, whatever --reasoning-format says (tools/server/README.md).
        ...(target.kind === 'llama.cpp' ? { reasoning_format: 'deepseek' } : {}),
        ...(rid ? { rid } : {}),
      };
    }

    const t0 = performance.now();
    let res: Response;
    try {
      res = await send(this.server, { method: 'POST', url, body, apiKey: this.config.apiKey, signal });
    } catch (e) {
      if (e instanceof Aborted) return this.emptyResult('cancelled', target, msgs.userTurn, notes);
      if (isRemoteError(e)) this.forget();
      throw e;
    }
    if (!res.ok) {
      const err = statusError(this.server, url, res.status, await bodyText(res), { model: target.model, hasKey: Boolean(this.config.apiKey), retryAfter: res.headers.get('retry-after') });
      if (err.code === 'unknown-model' || err.code === 'auth' || err.code === 'not-found') this.forget();
      throw err;
    }

    const split = new WireSplitter(target.api === 'ollama');
    let emitted = false;
    let tFirst = 0;
    let tFirstReasoning = 0;
    let tFirstAnswer = 0;
    const emit = (events: StreamEvent[]) => {
      for (const ev of events) {
        if (!ev.text) continue;
        const now = performance.now();
        emitted = true;
        tFirst ||= now;
        if (ev.kind === 'reasoning') tFirstReasoning ||= now;
        else tFirstAnswer ||= now;
        opts.onEvent?.(ev);
      }
    };
    let finish: string | undefined;
    let usage: WireUsage = {};
    let ended = false;
    let streamed = false;
    let cancelled = false;
    let failure: RemoteError | undefined;
    const malformed = (what: string, detail: string) =>
      new RemoteError('bad-response', `The server at ${this.server.raw} sent ${what} (${detail}). The server, or a proxy in front of it, is not speaking the ${target.api === 'ollama' ? 'Ollama' : 'OpenAI'} API as expected.`, this.server.raw);
    const apply = (d: WireDelta) => {
      if (d.error !== undefined) throw new RemoteError('server-error', `The server at ${this.server.raw} reported an error in its reply: ${d.error}`, this.server.raw);
      if (d.reasoning) emit(split.pushReasoning(d.reasoning));
      if (d.content) emit(split.pushContent(d.content));
      if (d.finish) finish = d.finish;
      if (d.usage) usage = { ...usage, ...definedOnly(d.usage) };
    };
    const parse = (text: string, what: string): unknown => {
      try {
        return JSON.parse(text) as unknown;
      } catch {
        throw malformed(what, `not JSON: "${text.length > 80 ? `${text.slice(0, 80)}…` : text}"`);
      }
    };
    const idleMs = this.config.idleTimeoutMs ?? 300_000;
    const ctype = (res.headers.get('content-type') ?? '').toLowerCase();
    try {
      if (!res.body) throw malformed('an empty reply', `HTTP ${res.status} without a body`);
      if (ctype.includes('text/event-stream')) {
        streamed = true;
        for await (const ev of sseEvents(lines(res.body, this.server, idleMs, signal))) {
          if (ev.data.trim() === '[DONE]') {
            ended = true;
            break;
          }
          const obj = parse(ev.data, 'a chunk');
          apply(ev.event === 'error' ? { error: readOpenAIChunk({ error: obj }).error ?? ev.data } : readOpenAIChunk(obj));
        }
      } else if (ctype.includes('ndjson')) {
        streamed = true;
        for await (const line of lines(res.body, this.server, idleMs, signal)) {
          if (line.trim() === '') continue;
          const d = readOllamaChunk(parse(line, 'a line'));
          apply(d);
          if (d.done) {
            ended = true;
            break;
          }
        }
      } else {
        let text = '';
        for await (const line of lines(res.body, this.server, idleMs, signal)) text += `${line}\n`;
        const obj = parse(text.trim(), 'a reply');
        apply(target.api === 'ollama' ? readOllamaChunk(obj) : readOpenAIReply(obj));
        ended = true;
      }
    } catch (e) {
      if (e instanceof Aborted || signal?.aborted) cancelled = true;
      else if (isRemoteError(e)) failure = e;
      else if (e instanceof MalformedChunk) failure = malformed('a malformed chunk', e.message);
      else failure = new RemoteError('stream-broken', `Reading the reply of the server at ${this.server.raw} failed: ${e instanceof Error ? e.message : String(e)}.`, this.server.raw, undefined, { cause: e });
    }
    if (!cancelled && !failure && !ended && finish === undefined) {
      failure = new RemoteError('stream-broken', `The stream from the server at ${this.server.raw} ended before the reply did (no finish_reason, no [DONE]): the server or its connection stopped.`, this.server.raw);
    }
    if (cancelled && rid) this.abortOnServer(rid);
    if (failure && !emitted) throw failure;
    const tEnd = performance.now();
    emit(split.end());

    let status: GenerationStatus;
    let error: string | undefined;
    if (cancelled) status = 'cancelled';
    else if (failure) {
      status = 'error';
      error = `${failure.message} What arrived is kept.`;
    } else if (finish === 'length') status = 'length';
    else if (finish === 'abort') {
      status = 'error';
      error = `The server at ${this.server.raw} aborted the request (finish_reason "abort").`;
    } else status = 'complete';

    // Tokens: the server's counts where it gives them, else estimates.
    const { reasoning, answer } = split;
    const chunks = split.reasoningChunks + split.answerChunks;
    const completion = usage.completionTokens;
    let reasoningTokens: number;
    let answerTokens: number;
    let reasoningTokensFrom: 'server' | 'estimate' = 'estimate';
    if (usage.reasoningTokens !== undefined) {
      reasoningTokens = usage.reasoningTokens;
      reasoningTokensFrom = 'server';
      answerTokens = completion !== undefined ? Math.max(0, completion - reasoningTokens) : streamed ? split.answerChunks : estimateTokens(answer);
    } else if (completion !== undefined) {
      const share = streamed && chunks > 0 ? split.reasoningChunks / chunks : reasoning.length + answer.length > 0 ? reasoning.length / (reasoning.length + answer.length) : 0;
      reasoningTokens = Math.round(completion * share);
      answerTokens = completion - reasoningTokens;
    } else {
      reasoningTokens = streamed ? split.reasoningChunks : reasoning ? estimateTokens(reasoning) : 0;
      answerTokens = streamed ? split.answerChunks : answer ? estimateTokens(answer) : 0;
    }
    const total = reasoningTokens + answerTokens;
    const decodeTokensPerSecond = usage.decodePerSecond ?? (streamed && total > 1 && tEnd > tFirst && tFirst > 0 ? ((total - 1) * 1000) / (tEnd - tFirst) : 0);
    const reasoningMs = streamed
      ? tFirstReasoning > 0
        ? (tFirstAnswer || tEnd) - tFirstReasoning
        : 0
      : decodeTokensPerSecond > 0
        ? (reasoningTokens * 1000) / decodeTokensPerSecond
        : 0;

    const result: GenerationResult = {
      status,
      reasoning,
      answer,
      codeBlocks: extractCodeBlocks(answer),
      stats: {
        promptTokens: usage.promptTokens ?? msgs.estimatedTokens,
        reusedPromptTokens: usage.cachedTokens ?? 0,
        reasoningTokens,
        answerTokens,
        timeToFirstTokenMs: tFirst > 0 ? round(tFirst - t0) : 0,
        prefillTokensPerSecond: round(usage.promptPerSecond ?? 0),
        decodeTokensPerSecond: round(decodeTokensPerSecond),
        provider: 'server',
        variant: 'server',
        thinkingBudgetHit: budgetField !== undefined && reasoningTokens >= budget,
        server: {
          url: this.server.raw,
          host: this.server.host,
          model: target.model,
          kind: target.kind,
          api: target.api,
          streamed,
          reasoningTokensFrom,
          tokensFrom: usage.promptTokens !== undefined && completion !== undefined ? 'server' : 'estimate',
          reasoningMs: Math.round(reasoningMs),
          ...(budgetField ? { thinkingBudgetField: budgetField } : {}),
        },
      },
      truncation: notes,
      userTurn: msgs.userTurn,
    };
    if (error !== undefined) result.error = error;
    return result;
  }

  /** SGLang stops a request by its id (POST /abort_request, http_server.py); closing the stream alone does not always (SERVERS.md). */
  private abortOnServer(rid: string): void {
    void send(this.server, { method: 'POST', url: `${this.server.root}/abort_request`, body: { rid }, apiKey: this.config.apiKey, timeoutMs: 5000 })
      .then((r) => r.body?.cancel())
      .catch(() => undefined);
  }

  private emptyResult(status: GenerationStatus, target: RemoteTarget | undefined, userTurn?: string, truncation: TruncationNote[] = []): GenerationResult {
    const t = target ?? this.target;
    const r = noGeneration(status, 'server', 'server');
    r.truncation = truncation;
    if (userTurn !== undefined) r.userTurn = userTurn;
    r.stats.server = {
      url: this.server.raw,
      host: this.server.host,
      model: t?.model ?? this.config.model ?? '',
      kind: t?.kind ?? 'unknown',
      api: t?.api ?? 'openai',
      streamed: false,
      reasoningTokensFrom: 'estimate',
      tokensFrom: 'estimate',
      reasoningMs: 0,
    };
    return r;
  }
}
