/**
 * The arithmetic of the prompt-lookup benchmark (bench/lookup.ts), kept pure so the unit tests
 * can check it: pass-cost ratios from interleaved rounds, per-phase token and time totals of
 * paired replays, and the expected speedup of a whole Fix request from its phases.
 */

export function median(xs: readonly number[]): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const n = s.length;
  return n % 2 ? s[(n - 1) / 2]! : (s[n / 2 - 1]! + s[n / 2]!) / 2;
}

/** One interleaved round of pass timings: ms by the number of new tokens in the pass. */
export type PassRound = Record<number, number>;

export interface PassCost {
  tokens: number;
  /** Median time of the pass (ms). */
  ms: number;
  /** Median over rounds of (this pass / the 1-token pass of the same round). */
  ratio: number;
  /** The per-round ratios' range. */
  ratioMin: number;
  ratioMax: number;
  rounds: number;
}

/**
 * The cost of a pass over n new tokens relative to a 1-token pass. Each round times every size
 * once, close together; its ratios are taken within the round (the machine's speed drifts by
 * ±15 % between minutes), then the median over rounds. Rounds without a 1-token time are skipped.
 */
export function passCostRatios(rounds: readonly PassRound[]): PassCost[] {
  const sizes = [...new Set(rounds.flatMap((r) => Object.keys(r).map(Number)))].sort((a, b) => a - b);
  const usable = rounds.filter((r) => r[1] !== undefined && r[1] > 0);
  return sizes.map((n) => {
    const ratios = usable.filter((r) => r[n] !== undefined).map((r) => r[n]! / r[1]!);
    const ms = rounds.filter((r) => r[n] !== undefined).map((r) => r[n]!);
    return { tokens: n, ms: median(ms), ratio: median(ratios), ratioMin: Math.min(...ratios), ratioMax: Math.max(...ratios), rounds: ratios.length };
  });
}

/** The order of the pass sizes in round `r`: rotated each round, so no size always runs first or after the same one. */
export function roundOrder(sizes: readonly number[], r: number): number[] {
  const k = ((r % sizes.length) + sizes.length) % sizes.length;
  const rotated = [...sizes.slice(k), ...sizes.slice(0, k)];
  return r % 2 ? rotated.reverse() : rotated;
}

export type LookupMode = 'auto' | 'off';
/** Our engine with or without lookup, or llama.cpp decoding as many tokens after the same prompt. */
export type ReplayMode = LookupMode | 'llama.cpp';

/** One replay of one text in one mode. */
export interface ReplayRun {
  id: string;
  phase: 'answer' | 'reasoning';
  kind: 'fix' | 'r1';
  mode: ReplayMode;
  round: number;
  /** Tokens the decode passes produced: the text's tokens after the first, and the eos that ends it. */
  tokens: number;
  /** Wall time of the decode (after the first token) in ms. */
  decodeMs: number;
  forwardPasses: number;
  draftTokens: number;
  acceptedDraftTokens: number;
}

/**
 * Tokens produced by the decode passes of a replay of `textTokens` tokens: the first comes from
 * the prompt's pass, each later one (and the eos that ends the replay) from a decode pass.
 */
export function decodeTokens(textTokens: number): number {
  return Math.max(0, textTokens);
}

export interface ModeTotals {
  tokens: number;
  decodeMs: number;
  forwardPasses: number;
  draftTokens: number;
  acceptedDraftTokens: number;
  tokensPerSecond: number;
  tokensPerPass: number;
  /** Accepted / drafted (null when nothing was drafted). */
  acceptance: number | null;
}

export function totals(runs: readonly ReplayRun[]): ModeTotals {
  const sum = (f: (r: ReplayRun) => number) => runs.reduce((a, r) => a + f(r), 0);
  const tokens = sum((r) => r.tokens);
  const decodeMs = sum((r) => r.decodeMs);
  const forwardPasses = sum((r) => r.forwardPasses);
  const draftTokens = sum((r) => r.draftTokens);
  const acceptedDraftTokens = sum((r) => r.acceptedDraftTokens);
  return {
    tokens,
    decodeMs,
    forwardPasses,
    draftTokens,
    acceptedDraftTokens,
    tokensPerSecond: decodeMs > 0 ? (tokens * 1000) / decodeMs : NaN,
    tokensPerPass: forwardPasses > 0 ? tokens / forwardPasses : NaN,
    acceptance: draftTokens > 0 ? acceptedDraftTokens / draftTokens : null,
  };
}

export interface TextSummary {
  id: string;
  kind: 'fix' | 'r1';
  /** Tokens per replay (the decode passes' output). */
  tokens: number;
  auto: ModeTotals;
  off: ModeTotals;
  /** Median over rounds of off time / auto time (each round's two runs ran back to back). */
  pairedSpeedup: number;
  /** llama.cpp's plain decode after the same prompt, when it ran. */
  llamaCpp?: ModeTotals;
  vsLlamaCpp?: VsLlamaCpp;
}

/** Our decode rate over llama.cpp's, with lookup and without (> 1: ours is faster). */
export interface VsLlamaCpp {
  lookup: number;
  plain: number;
}

function vsLlamaCpp(auto: ModeTotals, off: ModeTotals, llama: readonly ReplayRun[]): { llamaCpp?: ModeTotals; vsLlamaCpp?: VsLlamaCpp } {
  if (llama.length === 0) return {};
  const l = totals(llama);
  return { llamaCpp: l, vsLlamaCpp: { lookup: auto.tokensPerSecond / l.tokensPerSecond, plain: off.tokensPerSecond / l.tokensPerSecond } };
}

export interface PhaseSummary {
  phase: 'answer' | 'reasoning';
  texts: TextSummary[];
  auto: ModeTotals;
  off: ModeTotals;
  /**
   * Decode tok/s with lookup over without, over all the phase's tokens (a text's weight is its
   * length): the phase's speedup.
   */
  speedup: number;
  /** Median of the texts' paired speedups (each text counts once). */
  medianTextSpeedup: number;
  /** llama.cpp's plain decode after the same prompts, over all the phase's tokens, when it ran. */
  llamaCpp?: ModeTotals;
  vsLlamaCpp?: VsLlamaCpp;
}

/** Per phase and text: the totals of each mode, the paired ratios and the phase's speedup. */
export function summarizePhase(runs: readonly ReplayRun[], phase: 'answer' | 'reasoning', filter: (r: ReplayRun) => boolean = () => true): PhaseSummary {
  const mine = runs.filter((r) => r.phase === phase && filter(r));
  const ids = [...new Set(mine.map((r) => r.id))];
  const texts: TextSummary[] = ids.map((id) => {
    const of = mine.filter((r) => r.id === id);
    const auto = of.filter((r) => r.mode === 'auto');
    const off = of.filter((r) => r.mode === 'off');
    const paired = [...new Set(of.map((r) => r.round))].flatMap((round) => {
      const a = auto.find((r) => r.round === round);
      const o = off.find((r) => r.round === round);
      return a && o && a.decodeMs > 0 ? [o.decodeMs / a.decodeMs] : [];
    });
    const a = totals(auto);
    const o = totals(off);
    return { id, kind: of[0]!.kind, tokens: of[0]!.tokens, auto: a, off: o, pairedSpeedup: median(paired), ...vsLlamaCpp(a, o, of.filter((r) => r.mode === 'llama.cpp')) };
  });
  const auto = totals(mine.filter((r) => r.mode === 'auto'));
  const off = totals(mine.filter((r) => r.mode === 'off'));
  const llama = mine.filter((r) => r.mode === 'llama.cpp');
  return { phase, texts, auto, off, speedup: auto.tokensPerSecond / off.tokensPerSecond, medianTextSpeedup: median(texts.map((t) => t.pairedSpeedup)), ...vsLlamaCpp(auto, off, llama) };
}

/**
 * The expected decode speedup of a whole request of `reasoning` then `answer` tokens when the
 * phases decode `reasoningSpeedup` and `answerSpeedup` times faster: (R + A) / (R/sR + A/sA).
 * With `prefillMs` and the plain decode rate `tokensPerSecond`, the time to first token (which
 * lookup does not change) is included: the end-to-end figure.
 */
export function expectedSpeedup(p: { reasoning: number; answer: number; reasoningSpeedup: number; answerSpeedup: number; prefillMs?: number; tokensPerSecond?: number }): number {
  const { reasoning: r, answer: a, reasoningSpeedup: sr, answerSpeedup: sa } = p;
  if (!(sr > 0 && sa > 0) || r + a <= 0) return NaN;
  const prefill = p.prefillMs !== undefined && p.tokensPerSecond ? (p.prefillMs * p.tokensPerSecond) / 1000 : 0; // in token-times
  return (prefill + r + a) / (prefill + r / sr + a / sa);
}
