/**
 * The generation loop on the merged decoder: chunked prefill, sampling, streaming through the
 * tokenizer's stream decoder and the reasoning splitter, the thinking budget, eos and length
 * stops, cancellation between steps, and the statistics of the run.
 */
import { THINK_CLOSE } from '../text/thinking';
import { extractCodeBlocks } from './codeBlocks';
import { ModelError } from './errors';
import { PromptLookup, verifyDrafts } from './lookup';
import { ReasoningSplitter } from './reasoning';
import { Sampler } from './sampler';
import type { DecoderSession } from './session';
import type { R1Tokenizer } from './tokenizer';
import type {
  ExecutionProvider,
  GenerateOptions,
  GenerationResult,
  GenerationStats,
  GenerationStatus,
  ModelVariant,
  SamplingOptions,
  StreamEvent,
  TruncationNote,
} from './types';

export const DEFAULT_MAX_NEW_TOKENS = 4096;
export const DEFAULT_CONTEXT_WINDOW = 8192;
export const DEFAULT_PREFILL_CHUNK = 256;
/** DeepSeek's recommendation for R1 distills, used when generation_config.json has none. */
export const DEFAULT_TEMPERATURE = 0.6;
export const DEFAULT_TOP_P = 0.95;

export interface GenerationContext {
  decoder: DecoderSession;
  tokenizer: R1Tokenizer;
  eosTokenIds: ReadonlySet<number>;
  /** Token ids the sampler may pick: min(graph vocabulary, tokenizer vocabulary). */
  samplableVocab: number;
  /** The graph's vocabulary (embedding rows): prompt ids must be below it. */
  vocabSize: number;
  maxPositionEmbeddings: number;
  provider: ExecutionProvider;
  variant: ModelVariant;
  defaults: SamplingOptions & { maxNewTokens?: number };
}

/** Gives the event loop a turn (timers, IPC, an abort from elsewhere). Costs a few microseconds. */
/**
 * The result of a request that generated nothing (cancelled before it started, or refused): empty
 * text and zero figures, with where it would have run.
 */
export function noGeneration(status: GenerationResult['status'], provider: GenerationStats['provider'], variant: GenerationStats['variant']): GenerationResult {
  return {
    status,
    reasoning: '',
    answer: '',
    codeBlocks: [],
    truncation: [],
    stats: {
      promptTokens: 0,
      reusedPromptTokens: 0,
      reasoningTokens: 0,
      answerTokens: 0,
      timeToFirstTokenMs: 0,
      prefillTokensPerSecond: 0,
      decodeTokensPerSecond: 0,
      provider,
      variant,
      thinkingBudgetHit: false,
    },
  };
}

export function yieldToEventLoop(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

export interface ResolvedOptions {
  maxNewTokens: number;
  contextWindow: number;
  prefillChunkSize: number;
  thinkingBudget: number;
  stopOnEos: boolean;
  promptLookup: NonNullable<GenerateOptions['promptLookup']>;
  sampling: Required<Pick<SamplingOptions, 'temperature' | 'topP' | 'topK'>> & { seed?: number };
}

function checkInt(name: string, v: number | undefined, min: number): void {
  if (v === undefined) return;
  if (!Number.isInteger(v) || v < min) {
    throw new ModelError('invalid-request', `${name} must be an integer >= ${min}, got ${v}.`, `Pass a valid ${name}.`);
  }
}

/** Applies defaults (options, then generation_config.json, then the engine's) and checks ranges. */
export function resolveOptions(ctx: Pick<GenerationContext, 'maxPositionEmbeddings' | 'defaults'>, opts: GenerateOptions = {}): ResolvedOptions {
  checkInt('maxNewTokens', opts.maxNewTokens, 1);
  checkInt('contextWindow', opts.contextWindow, 2);
  checkInt('prefillChunkSize', opts.prefillChunkSize, 1);
  checkInt('thinkingBudget', opts.thinkingBudget, 0);
  checkInt('topK', opts.topK, 0);
  if (opts.promptLookup !== undefined && !['auto', 'on', 'off'].includes(opts.promptLookup)) {
    throw new ModelError('invalid-request', `promptLookup must be 'auto', 'on' or 'off', got ${JSON.stringify(opts.promptLookup)}.`, "Pass promptLookup 'auto' or 'off'.");
  }
  const temperature = opts.temperature ?? ctx.defaults.temperature ?? DEFAULT_TEMPERATURE;
  const topP = opts.topP ?? ctx.defaults.topP ?? DEFAULT_TOP_P;
  if (!(temperature >= 0 && temperature <= 100)) throw new ModelError('invalid-request', `temperature must be >= 0, got ${temperature}.`, 'Pass a temperature between 0 and 2.');
  if (!(topP > 0 && topP <= 1)) throw new ModelError('invalid-request', `topP must be in (0, 1], got ${topP}.`, 'Pass a top-p between 0.01 and 1.');
  return {
    maxNewTokens: opts.maxNewTokens ?? ctx.defaults.maxNewTokens ?? DEFAULT_MAX_NEW_TOKENS,
    contextWindow: Math.min(opts.contextWindow ?? DEFAULT_CONTEXT_WINDOW, ctx.maxPositionEmbeddings),
    prefillChunkSize: opts.prefillChunkSize ?? DEFAULT_PREFILL_CHUNK,
    thinkingBudget: opts.thinkingBudget ?? 0,
    stopOnEos: opts.stopOnEos ?? true,
    promptLookup: opts.promptLookup ?? 'auto',
    sampling: { temperature, topP, topK: opts.topK ?? ctx.defaults.topK ?? 0, seed: opts.seed },
  };
}

/** Refuses prompts that cannot run: empty, unknown ids, or not fitting the context window. */
export function checkPrompt(ids: readonly number[], o: ResolvedOptions, vocab: number): void {
  if (ids.length === 0) throw new ModelError('invalid-request', 'the prompt is empty.', 'Pass at least one token.');
  for (const id of ids) {
    if (!Number.isInteger(id) || id < 0 || id >= vocab) {
      throw new ModelError('invalid-request', `the prompt holds token id ${id}, outside the vocabulary (0..${vocab - 1}).`, 'Encode the prompt with this model\'s tokenizer.');
    }
  }
  if (ids.length + o.maxNewTokens > o.contextWindow) {
    throw new ModelError(
      'prompt-too-long',
      `the prompt has ${ids.length} tokens and up to ${o.maxNewTokens} new tokens are allowed: ${ids.length + o.maxNewTokens} is more than the context window of ${o.contextWindow} tokens.`,
      'Shorten the request, lower maxNewTokens (r1.generation.maxNewTokens) or raise the context window (r1.generation.contextWindow).',
    );
  }
}

/** Test and benchmark seams of one generation. Not part of the public API. */
export interface GenerationInternals {
  /**
   * Chooses every token in place of the sampler: `row` is that position's logits, `generated` the
   * tokens generated so far in this request. The benchmark replays a real text through the real
   * engine with it (bench/lookup.ts).
   */
  pick?: (row: Float32Array, generated: readonly number[]) => number;
  /** Drafts in place of prompt lookup's (where lookup is on): tests check verification with known drafts. */
  draft?: (context: readonly number[], max: number) => number[];
}

/** Runs one generation from prompt ids. Never throws for cancellation or runtime failures (status tells). */
export async function runGeneration(
  ctx: GenerationContext,
  promptIds: readonly number[],
  o: ResolvedOptions,
  opts: GenerateOptions,
  truncation: TruncationNote[],
  internals: GenerationInternals = {},
): Promise<GenerationResult> {
  const { decoder, tokenizer } = ctx;
  const sampler = new Sampler(o.sampling);
  const splitter = new ReasoningSplitter();
  let stream = tokenizer.createStreamDecoder();
  const signal = opts.signal;
  const onEvent = opts.onEvent;
  const verification = decoder.verification;
  const lookup = (o.promptLookup === 'auto' && verification === 'free') || (o.promptLookup === 'on' && verification !== 'none') ? new PromptLookup() : undefined;
  const vocab = ctx.vocabSize;
  /** The prompt and every token generated since (forced ones too): what drafts are looked up in. */
  const context = promptIds.slice();
  const generated: number[] = [];
  const pick = internals.pick;
  const choose = pick ? (row: Float32Array) => pick(row, generated) : (row: Float32Array) => sampler.sample(row, ctx.samplableVocab);
  let reasoningTokens = 0;
  let answerTokens = 0;
  let newTokens = 0;
  let thinkingBudgetHit = false;
  let status: GenerationStatus = 'complete';
  let error: string | undefined;
  let timeToFirstTokenMs = 0;
  let prefillMs = 0;
  let tFirst = 0;
  let tEnd = 0;
  /** Tokens chosen from the logits of decode passes (after the prompt's). */
  let decodedTokens = 0;
  let forwardPasses = 0;
  let draftTokens = 0;
  let acceptedDraftTokens = 0;

  const emit = (events: StreamEvent[]) => {
    if (!onEvent) return;
    for (const ev of events) if (ev.text) onEvent(ev);
  };
  const pushText = (text: string) => {
    if (text) emit(splitter.push(text));
  };
  const append = (ids: readonly number[]) => {
    for (const id of ids) {
      context.push(id);
      generated.push(id);
    }
  };

  /**
   * Takes one chosen token: eos, counting, streaming, the thinking budget (whose closing tokens
   * follow it) and the length limit. Returns the status that ends the generation, if it does.
   */
  const take = (tok: number): GenerationStatus | undefined => {
    newTokens++;
    if (newTokens === 1) {
      tFirst = performance.now();
      timeToFirstTokenMs = tFirst - t0;
    }
    if (o.stopOnEos && ctx.eosTokenIds.has(tok)) return 'complete';
    if (splitter.inAnswer) answerTokens++;
    else reasoningTokens++;
    pushText(stream.push(tok));
    append([tok]);
    if (o.thinkingBudget > 0 && !thinkingBudgetHit && !splitter.inAnswer && reasoningTokens >= o.thinkingBudget) {
      // Close the reasoning ourselves: the model reads "</think>\n\n" as its own output, with
      // the folder's own `</think>` token when its tokenizer has one.
      thinkingBudgetHit = true;
      pushText(stream.flush());
      stream = tokenizer.createStreamDecoder();
      const closing = `${THINK_CLOSE}\n\n`;
      const forced = tokenizer.thinkEndId === undefined ? tokenizer.encode(closing) : [tokenizer.thinkEndId, ...tokenizer.encode('\n\n')];
      append(forced);
      newTokens += forced.length;
      pushText(closing);
    }
    if (newTokens >= o.maxNewTokens) return 'length';
    return undefined;
  };

  const t0 = performance.now();
  const reused = decoder.startSequence(promptIds);
  try {
    if (signal?.aborted) {
      status = 'cancelled';
    } else {
      let logits = await decoder.prefill(promptIds.slice(reused), o.prefillChunkSize, async () => {
        await yieldToEventLoop();
      });
      prefillMs = performance.now() - t0;
      /** The drafted tokens the last pass checked; its logits have a row more. */
      let drafts: number[] = [];
      let first = true;
      /** Cached tokens before the last pass: those agree with the context. */
      let passStart = 0;
      for (;;) {
        // Row r of the logits follows the pass's tokens up to draft r (row 0: before any draft).
        let end: GenerationStatus | undefined;
        const closedBefore: boolean = thinkingBudgetHit;
        const accepted = verifyDrafts(
          drafts,
          (r) => choose(logits.subarray(r * vocab, (r + 1) * vocab)),
          (tok) => {
            if (!first) decodedTokens++;
            end = take(tok);
            // The budget's closing tokens replace whatever the drafts said next.
            return !end && thinkingBudgetHit === closedBefore;
          },
        );
        first = false;
        if (drafts.length > 0) {
          acceptedDraftTokens += accepted;
          lookup?.record(accepted);
        }
        if (end) {
          status = end;
          break;
        }
        // The cache ran every draft: keep the rows of the tokens the text kept.
        decoder.keepPrefixOf(context, passStart);
        const pending = context.slice(decoder.pastLength);
        if (decoder.pastLength + pending.length > o.contextWindow) {
          status = 'length';
          break;
        }
        if (signal?.aborted) {
          status = 'cancelled';
          break;
        }
        await yieldToEventLoop();
        if (signal?.aborted) {
          status = 'cancelled';
          break;
        }
        // A pass emits at most drafts + 1 tokens: never draft past the length limits.
        const room = Math.min(o.maxNewTokens - newTokens, o.contextWindow - decoder.pastLength - pending.length + 1) - 1;
        drafts = lookup && room > 0 ? (internals.draft ? internals.draft(context, room) : lookup.draft(context, room)) : [];
        draftTokens += drafts.length;
        passStart = decoder.pastLength;
        const tPass = performance.now();
        logits = await decoder.forward(drafts.length > 0 ? [...pending, ...drafts] : pending, drafts.length + 1);
        forwardPasses++;
        if (pending.length === 1) lookup?.measured(1 + drafts.length, performance.now() - tPass);
      }
    }
  } catch (e) {
    status = 'error';
    error = e instanceof Error ? e.message : String(e);
  }
  tEnd = performance.now();
  try {
    pushText(stream.flush());
    emit(splitter.end());
  } catch (e) {
    if (status !== 'error') {
      status = 'error';
      error = e instanceof Error ? e.message : String(e);
    }
  }
  const answer = splitter.answer;
  const result: GenerationResult = {
    status,
    reasoning: splitter.reasoning,
    answer,
    codeBlocks: extractCodeBlocks(answer),
    stats: {
      promptTokens: promptIds.length,
      reusedPromptTokens: reused,
      reasoningTokens,
      answerTokens,
      timeToFirstTokenMs: round(timeToFirstTokenMs),
      prefillTokensPerSecond: prefillMs > 0 ? round(((promptIds.length - reused) * 1000) / prefillMs) : 0,
      decodeTokensPerSecond: decodedTokens > 0 && tEnd > tFirst ? round((decodedTokens * 1000) / (tEnd - tFirst)) : 0,
      provider: ctx.provider,
      variant: ctx.variant,
      thinkingBudgetHit,
      forwardPasses,
      draftTokens,
      acceptedDraftTokens,
      ...(lookup && forwardPasses > 0 ? { tokensPerPass: round(decodedTokens / forwardPasses) } : {}),
    },
    truncation,
  };
  if (error !== undefined) result.error = error;
  return result;
}

function round(x: number): number {
  return Math.round(x * 100) / 100;
}
