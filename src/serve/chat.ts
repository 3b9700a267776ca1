/**
 * One chat completion: the prompt checked against the context window, the generation with its
 * stop sequences, and the reply in OpenAI's shapes: `chat.completion`, or `chat.completion.chunk`s
 * over SSE. The reasoning goes in `reasoning_content` (and `reasoning` when asked), the answer in
 * `content`; usage counts the reasoning tokens in `completion_tokens_details.reasoning_tokens`.
 */
import { randomBytes } from 'node:crypto';
import type { ServerResponse } from 'node:http';
import { type GenerationResult, isModelError } from '../engine';
import type { ChatBackend } from './backend';
import { ApiError, badRequest } from './errors';
import { SseWriter } from './sse';
import type { ChatRequest, ReasoningField } from './validate';

export interface CompletionSettings {
  modelId: string;
  /** Prompt plus completion tokens (already capped at the model's positions). */
  contextWindow: number;
  /** Completion tokens when a request sets no max_tokens (capped by what the window leaves). */
  defaultMaxTokens: number;
  /** Reasoning tokens before the server closes the reasoning when a request sets none; 0 = none. */
  defaultThinkingBudget: number;
  reasoningField: ReasoningField;
}

/** A request that passed every check and may wait for its turn. */
export interface Plan {
  ids: number[];
  maxNewTokens: number;
  thinkingBudget: number;
}

/** How a completion ended, for the log and /health. */
export interface Outcome {
  finish: 'stop' | 'length' | 'cancelled' | 'error';
  promptTokens: number;
  completionTokens: number;
  error?: string;
}

/** The prompt's token ids and the completion limit; 400 context_length_exceeded when they do not fit. */
export function planCompletion(backend: ChatBackend, req: ChatRequest, s: CompletionSettings): Plan {
  let ids: number[];
  try {
    ids = backend.promptIds(req.turns);
  } catch (e) {
    throw toApiError(e);
  }
  const window = s.contextWindow;
  const tooLong = (message: string) => badRequest(`This model's maximum context length is ${window} tokens. ${message}`, 'messages', 'context_length_exceeded');
  if (ids.length >= window) {
    throw tooLong(`However, your messages resulted in ${ids.length} tokens, which leaves no room for a completion. Please reduce the length of the messages.`);
  }
  if (req.maxTokens !== undefined && ids.length + req.maxTokens > window) {
    throw tooLong(
      `However, you requested ${ids.length + req.maxTokens} tokens (${ids.length} in the messages, ${req.maxTokens} in the completion). Please reduce the length of the messages or completion.`,
    );
  }
  return {
    ids,
    maxNewTokens: req.maxTokens ?? Math.min(s.defaultMaxTokens, window - ids.length),
    thinkingBudget: req.thinkingBudget ?? s.defaultThinkingBudget,
  };
}

/** An engine failure as an API error: the request's fault (400) or the model's (500). */
export function toApiError(e: unknown): ApiError {
  if (e instanceof ApiError) return e;
  if (isModelError(e)) {
    if (e.code === 'prompt-too-long') return badRequest(e.problem, 'messages', 'context_length_exceeded');
    if (e.code === 'invalid-request') return badRequest(e.problem);
    if (e.code === 'busy') return new ApiError(503, e.problem, 'server_error', 'busy');
    return new ApiError(500, `The model failed: ${e.message}`, 'server_error', 'model_error');
  }
  return new ApiError(500, `The server failed: ${e instanceof Error ? e.message : String(e)}`, 'server_error', 'internal_error');
}

/** Length of the longest suffix of `text` that is a proper prefix of `s`. */
function partialSuffix(text: string, s: string): number {
  for (let n = Math.min(text.length, s.length - 1); n > 0; n--) if (text.endsWith(s.slice(0, n))) return n;
  return 0;
}

/**
 * Finds the first stop sequence in streamed text. Text that could be the start of one is held
 * back until it is decided, so no part of a stop sequence is ever sent.
 */
export class StopMatcher {
  private pending = '';

  constructor(private readonly stops: readonly string[]) {}

  /** The text that may be sent now, and whether a stop sequence was found (text ends before it). */
  push(text: string): { text: string; stopped: boolean } {
    if (this.stops.length === 0) return { text, stopped: false };
    const buf = this.pending + text;
    let at = -1;
    for (const s of this.stops) {
      const i = buf.indexOf(s);
      if (i >= 0 && (at < 0 || i < at)) at = i;
    }
    if (at >= 0) {
      this.pending = '';
      return { text: buf.slice(0, at), stopped: true };
    }
    let hold = 0;
    for (const s of this.stops) hold = Math.max(hold, partialSuffix(buf, s));
    this.pending = buf.slice(buf.length - hold);
    return { text: buf.slice(0, buf.length - hold), stopped: false };
  }

  /** What was held back, once the text has ended without a stop sequence. */
  flush(): string {
    const p = this.pending;
    this.pending = '';
    return p;
  }
}

function usageOf(r: GenerationResult) {
  const completion = r.stats.reasoningTokens + r.stats.answerTokens;
  return {
    prompt_tokens: r.stats.promptTokens,
    completion_tokens: completion,
    total_tokens: r.stats.promptTokens + completion,
    completion_tokens_details: { reasoning_tokens: r.stats.reasoningTokens },
  };
}

/**
 * Runs the generation and writes the reply to `res` (nothing once `clientGone` has aborted: the
 * client left, and the generation stops within one decode step). Throws an ApiError only while
 * nothing has been written, so the caller can answer with that error's status.
 */
export async function runCompletion(
  backend: ChatBackend,
  req: ChatRequest,
  plan: Plan,
  s: CompletionSettings,
  res: ServerResponse,
  clientGone: AbortSignal,
): Promise<Outcome> {
  const id = `chatcmpl-${randomBytes(12).toString('hex')}`;
  const created = Math.floor(Date.now() / 1000);
  const both = (req.reasoningField ?? s.reasoningField) === 'both';
  const chunk = (delta: Record<string, unknown>, finish: string | null) => ({
    id,
    object: 'chat.completion.chunk',
    created,
    model: s.modelId,
    choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }],
    ...(req.includeUsage ? { usage: null } : {}),
  });
  const sse = req.stream ? new SseWriter(res, () => chunk({ role: 'assistant', content: '' }, null)) : undefined;
  const stopper = new AbortController();
  const signal = AbortSignal.any([clientGone, stopper.signal]);
  const matcher = new StopMatcher(req.stop);
  let answer = '';
  let stopped = false;
  const sendAnswer = (text: string) => {
    if (!text) return;
    answer += text;
    sse?.send(chunk({ content: text }, null));
  };

  let result: GenerationResult;
  try {
    result = await backend.generate(plan.ids, {
      maxNewTokens: plan.maxNewTokens,
      thinkingBudget: plan.thinkingBudget,
      temperature: req.temperature,
      topP: req.topP,
      seed: req.seed,
      contextWindow: s.contextWindow,
      signal,
      onEvent: (ev) => {
        if (clientGone.aborted) return;
        if (ev.kind === 'reasoning') {
          sse?.send(chunk(both ? { reasoning_content: ev.text, reasoning: ev.text } : { reasoning_content: ev.text }, null));
          return;
        }
        if (stopped) return;
        const m = matcher.push(ev.text);
        sendAnswer(m.text);
        if (m.stopped) {
          stopped = true;
          stopper.abort();
        }
      },
    });
  } catch (e) {
    const err = toApiError(e);
    if (clientGone.aborted) return { finish: 'cancelled', promptTokens: plan.ids.length, completionTokens: 0 };
    if (sse?.started) {
      sse.send(err.body);
      sse.abort();
      return { finish: 'error', promptTokens: plan.ids.length, completionTokens: 0, error: err.message };
    }
    throw err;
  }

  const usage = usageOf(result);
  const outcome = (finish: Outcome['finish'], error?: string): Outcome => ({
    finish,
    promptTokens: usage.prompt_tokens,
    completionTokens: usage.completion_tokens,
    ...(error !== undefined ? { error } : {}),
  });
  if (clientGone.aborted) return outcome('cancelled');
  if (result.status === 'error') {
    const err = new ApiError(500, `The model failed while generating: ${result.error ?? 'unknown error'}`, 'server_error', 'model_error');
    if (sse?.started) {
      sse.send(err.body);
      sse.abort();
      return outcome('error', err.message);
    }
    throw err;
  }
  if (!stopped) sendAnswer(matcher.flush());
  // 'cancelled' here is our own stop: a stop sequence was found.
  const finish = result.status === 'length' && !stopped ? 'length' : 'stop';
  const reasoning = result.reasoning === '' ? null : result.reasoning;

  if (sse) {
    sse.send(chunk({}, finish));
    if (req.includeUsage) sse.send({ id, object: 'chat.completion.chunk', created, model: s.modelId, choices: [], usage });
    sse.done();
    return outcome(finish);
  }
  const message: Record<string, unknown> = { role: 'assistant', content: answer === '' ? null : answer, reasoning_content: reasoning };
  if (both) message.reasoning = reasoning;
  const body = {
    id,
    object: 'chat.completion',
    created,
    model: s.modelId,
    choices: [{ index: 0, message, logprobs: null, finish_reason: finish }],
    usage,
  };
  if (!res.destroyed && !res.writableEnded) {
    res.writeHead(200, { 'Content-Type': 'application/json' });
    res.end(JSON.stringify(body));
  }
  return outcome(finish);
}
