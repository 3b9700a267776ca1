/**
 * Every reasoning wire shape, read into one delta. Sources (../shared/SERVERS.md has the table):
 * - vLLM, newer: `delta.reasoning` / `message.reasoning`, usage
 *   `completion_tokens_details.reasoning_tokens` (docs/features/reasoning_outputs.md, PR #27752);
 * - vLLM, older; SGLang; llama.cpp; LM Studio: `delta.reasoning_content` /
 *   `message.reasoning_content`; SGLang adds `usage.reasoning_tokens`
 *   (python/sglang/srt/entrypoints/openai/protocol.py); llama.cpp adds `timings`
 *   (tools/server/README.md: prompt_n, prompt_per_second, predicted_per_second, cache_n);
 * - Ollama /v1: `delta.reasoning` / `message.reasoning` (openai/openai.go, Message.Reasoning);
 * - Ollama /api/chat: `message.thinking`, `message.content`, `done`, `done_reason` and the
 *   durations in nanoseconds (api/types.go, ChatResponse and Metrics);
 * - a server with its reasoning parser off: everything in `content` (the caller splits it);
 * - errors inside a stream: `{"error": {...}}` (vLLM, r1 serve) or `{"error": "..."}` (Ollama).
 * When both `reasoning` and `reasoning_content` carry text (a server sending both names), one is
 * read, never both.
 */

export interface WireUsage {
  promptTokens?: number;
  completionTokens?: number;
  reasoningTokens?: number;
  /** Prompt tokens the server reused from its cache. */
  cachedTokens?: number;
  /** The server's own speeds, tokens per second. */
  promptPerSecond?: number;
  decodePerSecond?: number;
}

export interface WireDelta {
  reasoning?: string;
  content?: string;
  /** finish_reason / done_reason, when this chunk ends the reply. */
  finish?: string;
  /** Ollama's `done: true`. */
  done?: boolean;
  usage?: WireUsage;
  /** The server reported an error in the body. */
  error?: string;
}

/** Thrown for a chunk that is JSON but not of the API's shape. */
export class MalformedChunk extends Error {
  override readonly name = 'MalformedChunk';
}

type Obj = Record<string, unknown>;

function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function str(v: unknown): string | undefined {
  return typeof v === 'string' ? v : undefined;
}

function count(v: unknown): number | undefined {
  return typeof v === 'number' && Number.isFinite(v) && v >= 0 ? v : undefined;
}

function errorOf(o: Obj): string | undefined {
  const e = o.error;
  if (typeof e === 'string') return e;
  if (isObj(e)) return str(e.message) ?? JSON.stringify(e);
  return undefined;
}

function usageOf(o: Obj): WireUsage | undefined {
  const u = isObj(o.usage) ? o.usage : undefined;
  const t = isObj(o.timings) ? o.timings : undefined;
  if (!u && !t) return undefined;
  const out: WireUsage = {};
  if (u) {
    out.promptTokens = count(u.prompt_tokens);
    out.completionTokens = count(u.completion_tokens);
    const details = isObj(u.completion_tokens_details) ? u.completion_tokens_details : undefined;
    out.reasoningTokens = count(details?.reasoning_tokens) ?? count(u.reasoning_tokens);
    const prompt = isObj(u.prompt_tokens_details) ? u.prompt_tokens_details : undefined;
    out.cachedTokens = count(prompt?.cached_tokens);
  }
  if (t) {
    out.promptTokens ??= count(t.prompt_n);
    out.completionTokens ??= count(t.predicted_n);
    out.cachedTokens ??= count(t.cache_n);
    out.promptPerSecond = count(t.prompt_per_second);
    out.decodePerSecond = count(t.predicted_per_second);
  }
  return out;
}

/** The reasoning text of a delta or message: `reasoning_content`, else `reasoning`. */
function reasoningOf(m: Obj): string | undefined {
  return str(m.reasoning_content) ?? str(m.reasoning);
}

function choiceOf(o: Obj): Obj | undefined {
  if (o.choices === undefined) return undefined;
  if (!Array.isArray(o.choices)) throw new MalformedChunk('"choices" is not an array');
  const c = o.choices[0] as unknown;
  if (c === undefined) return undefined;
  if (!isObj(c)) throw new MalformedChunk('choices[0] is not an object');
  return c;
}

/** A `chat.completion.chunk` of an OpenAI-compatible stream. */
export function readOpenAIChunk(o: unknown): WireDelta {
  if (!isObj(o)) throw new MalformedChunk('the chunk is not a JSON object');
  const error = errorOf(o);
  if (error !== undefined) return { error };
  const out: WireDelta = {};
  const choice = choiceOf(o);
  if (choice) {
    const delta = choice.delta ?? choice.message;
    if (delta !== undefined && delta !== null) {
      if (!isObj(delta)) throw new MalformedChunk('choices[0].delta is not an object');
      out.reasoning = reasoningOf(delta);
      out.content = str(delta.content);
    }
    out.finish = str(choice.finish_reason);
  }
  out.usage = usageOf(o);
  return out;
}

/** A whole `chat.completion` (a reply that was not streamed). */
export function readOpenAIReply(o: unknown): WireDelta {
  if (!isObj(o)) throw new MalformedChunk('the reply is not a JSON object');
  const error = errorOf(o);
  if (error !== undefined) return { error };
  const choice = choiceOf(o);
  if (!choice) throw new MalformedChunk('the reply has no choices');
  const message = choice.message;
  if (!isObj(message)) throw new MalformedChunk('choices[0].message is not an object');
  return { reasoning: reasoningOf(message), content: str(message.content), finish: str(choice.finish_reason) ?? 'stop', usage: usageOf(o) };
}

/** One object of Ollama's /api/chat (a line of its NDJSON stream, or the whole reply). */
export function readOllamaChunk(o: unknown): WireDelta {
  if (!isObj(o)) throw new MalformedChunk('the chunk is not a JSON object');
  const error = errorOf(o);
  if (error !== undefined) return { error };
  if (o.message !== undefined && !isObj(o.message)) throw new MalformedChunk('"message" is not an object');
  const m = o.message as Obj | undefined;
  const out: WireDelta = { reasoning: str(m?.thinking), content: str(m?.content), done: o.done === true };
  if (out.done) {
    out.finish = str(o.done_reason) ?? 'stop';
    const ns = (v: unknown) => count(v);
    const evalCount = count(o.eval_count);
    const evalNs = ns(o.eval_duration);
    const promptCount = count(o.prompt_eval_count);
    const promptNs = ns(o.prompt_eval_duration);
    out.usage = {
      promptTokens: promptCount,
      completionTokens: evalCount,
      decodePerSecond: evalCount !== undefined && evalNs ? (evalCount * 1e9) / evalNs : undefined,
      promptPerSecond: promptCount !== undefined && promptNs ? (promptCount * 1e9) / promptNs : undefined,
    };
  }
  return out;
}
