/**
 * The body of `POST /v1/chat/completions`, checked field by field. Fields of OpenAI's Chat
 * Completions API that `r1 serve` honours are typed here; a known field of the wrong type is a
 * 400 naming it. Fields it does not know are ignored, as OpenAI-compatible servers do (clients
 * send `user`, `metadata`, …); fields it knows but cannot honour with another value than the
 * default (`n` > 1, `logprobs`, `tools`) are refused rather than silently ignored.
 */
import type { ChatTurn } from '../engine';
import { ApiError, badRequest } from './errors';

/** Where the reasoning goes: `reasoning_content` only, or `reasoning_content` and `reasoning`. */
export type ReasoningField = 'reasoning_content' | 'both';
export const REASONING_FIELDS: readonly ReasoningField[] = ['reasoning_content', 'both'];

export interface ChatRequest {
  /**
   * The conversation as the engine takes it: user and assistant turns. System (and developer)
   * messages are folded into the first user turn, as DeepSeek advises for R1 (no system prompt);
   * an assistant turn keeps its answer only (its reasoning fields are dropped, and so is any
   * `<think>…</think>` in its content, when the prompt is rendered).
   */
  turns: ChatTurn[];
  stream: boolean;
  /** stream_options.include_usage: a last chunk with the usage, before `[DONE]`. */
  includeUsage: boolean;
  /** max_completion_tokens, else max_tokens; undefined: the server's default. */
  maxTokens?: number;
  temperature?: number;
  topP?: number;
  seed?: number;
  /** Stop sequences, matched in the answer (content) only. */
  stop: string[];
  /** Reasoning tokens before the server closes the reasoning; 0 = no budget; undefined: the server's default. */
  thinkingBudget?: number;
  /** undefined: the server's default (--reasoning-field). */
  reasoningField?: ReasoningField;
}

const MAX_STOP_SEQUENCES = 16;
const ROLES = ['system', 'developer', 'user', 'assistant'] as const;
type Role = (typeof ROLES)[number];

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function typeName(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  return typeof v === 'object' ? 'an object' : `a ${typeof v}`;
}

function wrongType(param: string, expected: string, v: unknown): ApiError {
  return badRequest(`${param} must be ${expected}, got ${typeName(v)}.`, param, 'invalid_type');
}

/** An optional field: undefined and null both mean "not given". */
function present(body: Record<string, unknown>, key: string): boolean {
  return body[key] !== undefined && body[key] !== null;
}

function int(body: Record<string, unknown>, key: string, min: number): number | undefined {
  if (!present(body, key)) return undefined;
  const v = body[key];
  if (typeof v !== 'number' || !Number.isSafeInteger(v)) throw wrongType(key, 'an integer', v);
  if (v < min) throw badRequest(`${key} must be at least ${min}, got ${v}.`, key);
  return v;
}

function num(body: Record<string, unknown>, key: string, min: number, max: number, minExclusive = false): number | undefined {
  if (!present(body, key)) return undefined;
  const v = body[key];
  if (typeof v !== 'number' || !Number.isFinite(v)) throw wrongType(key, 'a number', v);
  if (minExclusive ? v <= min : v < min) throw badRequest(`${key} must be ${minExclusive ? 'more than' : 'at least'} ${min}, got ${v}.`, key);
  if (v > max) throw badRequest(`${key} must be at most ${max}, got ${v}.`, key);
  return v;
}

function bool(body: Record<string, unknown>, key: string): boolean | undefined {
  if (!present(body, key)) return undefined;
  const v = body[key];
  if (typeof v !== 'boolean') throw wrongType(key, 'a boolean', v);
  return v;
}

/** A message's text: a string, or an array of `{type: "text", text}` parts. */
function contentText(v: unknown, param: string, role: Role): string {
  if (typeof v === 'string') return v;
  if ((v === null || v === undefined) && role === 'assistant') return '';
  if (Array.isArray(v)) {
    return v
      .map((part, i) => {
        const p = `${param}[${i}]`;
        if (!isObject(part)) throw wrongType(p, 'a content part object', part);
        if (part.type !== 'text') {
          throw badRequest(`${p}.type is ${JSON.stringify(part.type)}: this server takes text parts only.`, `${p}.type`, 'unsupported_value');
        }
        if (typeof part.text !== 'string') throw wrongType(`${p}.text`, 'a string', part.text);
        return part.text;
      })
      .join('');
  }
  throw wrongType(param, 'a string or an array of text parts', v);
}

function turnsOf(v: unknown): ChatTurn[] {
  if (v === undefined || v === null) throw badRequest('messages is required.', 'messages', 'missing_required_parameter');
  if (!Array.isArray(v)) throw wrongType('messages', 'an array', v);
  if (v.length === 0) throw badRequest('messages must hold at least one message.', 'messages');
  const system: string[] = [];
  const turns: ChatTurn[] = [];
  v.forEach((m, i) => {
    const param = `messages[${i}]`;
    if (!isObject(m)) throw wrongType(param, 'an object', m);
    if (typeof m.role !== 'string') throw wrongType(`${param}.role`, 'a string', m.role);
    const role = m.role as Role;
    if (!ROLES.includes(role)) {
      throw badRequest(
        `${param}.role is ${JSON.stringify(m.role)}: this server takes system, developer, user and assistant messages (no tools).`,
        `${param}.role`,
        'unsupported_value',
      );
    }
    const text = contentText(m.content, `${param}.content`, role);
    // reasoning_content / reasoning of earlier assistant turns are never read: R1 sees answers only.
    if (role === 'system' || role === 'developer') {
      if (text.trim() !== '') system.push(text.trim());
    } else {
      turns.push({ role, content: text });
    }
  });
  const firstUser = turns.findIndex((t) => t.role === 'user');
  if (firstUser < 0) throw badRequest('messages must hold at least one user message.', 'messages');
  if (system.length > 0) {
    const t = turns[firstUser]!;
    turns[firstUser] = { role: 'user', content: `${system.join('\n\n')}\n\n${t.content}` };
  }
  return turns;
}

function stopOf(v: unknown): string[] {
  if (v === undefined || v === null) return [];
  const list = typeof v === 'string' ? [v] : v;
  if (!Array.isArray(list)) throw wrongType('stop', 'a string or an array of strings', v);
  if (list.length > MAX_STOP_SEQUENCES) throw badRequest(`stop may hold at most ${MAX_STOP_SEQUENCES} sequences, got ${list.length}.`, 'stop');
  return list.map((s, i) => {
    if (typeof s !== 'string') throw wrongType(`stop[${i}]`, 'a string', s);
    if (s === '') throw badRequest(`stop[${i}] is empty.`, `stop[${i}]`);
    return s;
  });
}

/** thinking_token_budget (vLLM), also thinking_budget_tokens (llama.cpp): a positive count, or -1 for none. */
function thinkingBudgetOf(body: Record<string, unknown>): number | undefined {
  const keys = ['thinking_token_budget', 'thinking_budget_tokens'].filter((k) => present(body, k));
  const values = keys.map((k) => {
    const v = body[k];
    if (typeof v !== 'number' || !Number.isSafeInteger(v)) throw wrongType(k, 'an integer', v);
    if (v === 0 || v < -1) {
      throw badRequest(`${k} must be a positive number of reasoning tokens, or -1 for no budget, got ${v} (R1 always reasons before it answers).`, k);
    }
    return v === -1 ? 0 : v;
  });
  if (values.length === 2 && values[0] !== values[1]) {
    throw badRequest('thinking_token_budget and thinking_budget_tokens disagree: send one of them.', 'thinking_budget_tokens');
  }
  return values[0];
}

/**
 * Checks a parsed JSON body. `modelId` is the id this server serves: another `model` is a 404
 * (model_not_found), as OpenAI answers; an absent `model` means this one.
 */
export function parseChatRequest(body: unknown, modelId: string): ChatRequest {
  if (!isObject(body)) throw badRequest(`The request body must be a JSON object, got ${typeName(body)}.`, null, 'invalid_type');
  if (present(body, 'model')) {
    if (typeof body.model !== 'string') throw wrongType('model', 'a string', body.model);
    if (body.model !== modelId) {
      throw new ApiError(404, `The model \`${body.model}\` does not exist. This server serves \`${modelId}\`.`, 'invalid_request_error', 'model_not_found', 'model');
    }
  }
  const turns = turnsOf(body.messages);
  const stream = bool(body, 'stream') ?? false;
  let includeUsage = false;
  if (present(body, 'stream_options')) {
    const so = body.stream_options;
    if (!isObject(so)) throw wrongType('stream_options', 'an object', so);
    if (!stream) throw badRequest('stream_options is only allowed when stream is true.', 'stream_options');
    includeUsage = bool(so, 'include_usage') ?? false;
  }
  const n = int(body, 'n', 1);
  if (n !== undefined && n !== 1) throw badRequest(`n must be 1: this server generates one choice per request, got ${n}.`, 'n', 'unsupported_value');
  if (bool(body, 'logprobs') === true) throw badRequest('logprobs are not supported by this server.', 'logprobs', 'unsupported_value');
  if (present(body, 'tools')) {
    if (!Array.isArray(body.tools)) throw wrongType('tools', 'an array', body.tools);
    if (body.tools.length > 0) throw badRequest('tools are not supported by this server.', 'tools', 'unsupported_value');
  }
  // max_completion_tokens is OpenAI's current name; max_tokens the older one.
  const legacyMaxTokens = int(body, 'max_tokens', 1);
  const maxTokens = int(body, 'max_completion_tokens', 1) ?? legacyMaxTokens;
  let reasoningField: ReasoningField | undefined;
  if (present(body, 'reasoning_field')) {
    const v = body.reasoning_field;
    if (typeof v !== 'string') throw wrongType('reasoning_field', 'a string', v);
    if (!(REASONING_FIELDS as readonly string[]).includes(v)) {
      throw badRequest(`reasoning_field must be one of ${REASONING_FIELDS.join(', ')}, got ${JSON.stringify(v)}.`, 'reasoning_field');
    }
    reasoningField = v as ReasoningField;
  }
  return {
    turns,
    stream,
    includeUsage,
    maxTokens,
    temperature: num(body, 'temperature', 0, 2),
    topP: num(body, 'top_p', 0, 1, true),
    seed: int(body, 'seed', Number.MIN_SAFE_INTEGER),
    stop: stopOf(body.stop),
    thinkingBudget: thinkingBudgetOf(body),
    reasoningField,
  };
}
