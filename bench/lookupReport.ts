/**
 * The prompt-lookup section of bench/results.json and bench/results.md (written by
 * bench/lookup.ts, kept by bench/run.ts): its shape, the ratios it carries, and its tables.
 */
import type { LlamaCppInfo } from './llamaCpp';
import { type PassCost, type PhaseSummary, type ReplayRun, expectedSpeedup, median } from './lookupStats';

export interface PassCostJson {
  date: string;
  layout: string;
  variant: string;
  shape: string;
  modelDir: string;
  context: number;
  rounds: number;
  machine: Record<string, unknown>;
  loadAverage: number[][];
  costs: PassCost[];
  rawRounds: Record<number, number>[];
  notes: string[];
  preparedSteps?: string[];
}

export interface ReplayJson {
  date: string;
  model: { layout: string; variant: string; shape: string; dir: string };
  rounds: number;
  machine: Record<string, unknown>;
  loadAverage: number[][];
  texts: { id: string; phase: 'answer' | 'reasoning'; kind: 'fix' | 'r1'; promptTokens: number; textTokens: number; truncated: number }[];
  /** Time to first token of each text's first run (cold but for at most 63 shared template tokens). */
  coldTtftMs: Record<string, number>;
  /** llama.cpp, when it decoded after the same prompts: how it ran and on which GGUF. */
  llamaCpp?: LlamaCppInfo & { gguf: string };
  answer: PhaseSummary;
  /** Genuine DeepSeek-R1 reasoning (bench/texts/r1). */
  reasoningGenuine: PhaseSummary;
  /** The reasoning texts written for the fixes (a substitute: bench/texts/SOURCES.md). */
  reasoningSubstitute: PhaseSummary;
  runs: ReplayRun[];
}

export interface LookupJson {
  schema: 1;
  passCost: Record<string, PassCostJson>;
  replay?: ReplayJson;
  ratios: Record<string, number | null>;
}

/**
 * Reasoning tokens of a Fix request for the headline expectation: R1 Coder's default thinking
 * budget (r1.generation.thinkingBudget = 2048), where the engine closes the reasoning. R1 distills
 * usually reason that long or longer on code questions; shorter reasoning gives the answer phase
 * more weight (the split table shows 512 and 1024 too).
 */
export const FIX_REASONING_TOKENS = 2048;
export const SPLIT_REASONING_TOKENS = [512, 1024, 2048];

/** Mean answer tokens of the fix texts (their code block and explanation). */
export function meanAnswerTokens(rep: ReplayJson): number {
  const a = rep.texts.filter((t) => t.phase === 'answer');
  return a.length ? a.reduce((s, t) => s + t.textTokens, 0) / a.length : NaN;
}

/** Median time to first token of the fix prompts (cold). */
export function fixPrefillMs(rep: ReplayJson): number {
  return median(rep.texts.filter((t) => t.kind === 'fix' && t.phase === 'reasoning').map((t) => rep.coldTtftMs[t.id]).filter((x): x is number => x !== undefined));
}

/** The expected speedup of a Fix request of `reasoning` tokens (decode only, and with its prefill). */
export function fixExpectation(rep: ReplayJson, reasoning: number): { decode: number; endToEnd: number } {
  const answer = meanAnswerTokens(rep);
  const p = { reasoning, answer, reasoningSpeedup: rep.reasoningGenuine.speedup, answerSpeedup: rep.answer.speedup };
  const plainRate = (rep.answer.off.tokens + rep.reasoningGenuine.off.tokens) * 1000 / (rep.answer.off.decodeMs + rep.reasoningGenuine.off.decodeMs);
  return { decode: expectedSpeedup(p), endToEnd: expectedSpeedup({ ...p, prefillMs: fixPrefillMs(rep), tokensPerSecond: plainRate }) };
}

const num = (x: number) => (Number.isFinite(x) ? Math.round(x * 1000) / 1000 : null);
const shapeKey = (s: string) => s.replace('.', '_');

/** The ratios the lookup section carries (and copies into the headline run's ratios). */
export function lookupRatios(l: LookupJson): Record<string, number | null> {
  const r: Record<string, number | null> = {};
  for (const [shape, pc] of Object.entries(l.passCost)) {
    for (const c of pc.costs) if (c.tokens !== 1) r[`passCost${c.tokens}VsOne${shapeKey(shape)}`] = num(c.ratio);
  }
  const rep = l.replay;
  if (rep) {
    r.answerPhaseLookupSpeedup = num(rep.answer.speedup);
    r.reasoningPhaseLookupSpeedup = num(rep.reasoningGenuine.speedup);
    r.reasoningPhaseLookupSpeedupSubstitute = num(rep.reasoningSubstitute.speedup);
    r.answerPhaseTokensPerPass = num(rep.answer.auto.tokensPerPass);
    r.reasoningPhaseTokensPerPass = num(rep.reasoningGenuine.auto.tokensPerPass);
    const f = fixExpectation(rep, FIX_REASONING_TOKENS);
    r.fixRequestLookupSpeedup = num(f.decode);
    r.fixRequestLookupSpeedupEndToEnd = num(f.endToEnd);
    if (rep.answer.vsLlamaCpp) {
      r.answerPhaseDecodeVsLlamaCpp = num(rep.answer.vsLlamaCpp.lookup);
      r.answerPhasePlainDecodeVsLlamaCpp = num(rep.answer.vsLlamaCpp.plain);
    }
    if (rep.reasoningGenuine.vsLlamaCpp) {
      r.reasoningPhaseDecodeVsLlamaCpp = num(rep.reasoningGenuine.vsLlamaCpp.lookup);
      r.reasoningPhasePlainDecodeVsLlamaCpp = num(rep.reasoningGenuine.vsLlamaCpp.plain);
    }
  }
  return r;
}

/** Copies the lookup ratios into the headline run (onnx-community q4, 1.5b, cpu) of a results doc. */
export function applyLookupRatios(doc: { runs: { layout?: string; variant?: string; shape?: string; args?: { provider?: string }; ratios: Record<string, number | null> }[]; lookup?: LookupJson }): void {
  if (!doc.lookup) return;
  const head = doc.runs.find((r) => r.layout === 'onnx-community' && (r.variant ?? 'q4') === 'q4' && r.shape === '1.5b' && (r.args?.provider ?? 'cpu') === 'cpu');
  if (head) Object.assign(head.ratios, doc.lookup.ratios);
}

const f = (x: number | null | undefined, d = 2) => (x != null && Number.isFinite(x) ? x.toFixed(d) : 'n/a');

function phaseTable(title: string, p: PhaseSummary, prompts: Map<string, number>): string[] {
  const llama = !!p.vsLlamaCpp;
  const head = `| ${title} | prompt tokens | tokens | tokens/pass (lookup) | drafted / kept | tok/s off | tok/s lookup | speedup (paired median) |${llama ? ' llama.cpp tok/s | ours / llama.cpp: lookup, off |' : ''}`;
  const out = [head, `|${'---|'.repeat(llama ? 10 : 8)}`];
  const vs = (x: { vsLlamaCpp?: { lookup: number; plain: number } }, bold = false) => (x.vsLlamaCpp ? ` ${bold ? '**' : ''}${f(x.vsLlamaCpp.lookup)}x${bold ? '**' : ''}, ${f(x.vsLlamaCpp.plain)}x |` : '');
  for (const t of p.texts) {
    out.push(`| ${t.id} | ${prompts.get(t.id) ?? 'n/a'} | ${t.tokens} | ${f(t.auto.tokensPerPass)} | ${t.auto.draftTokens} / ${t.auto.acceptedDraftTokens} | ${f(t.off.tokensPerSecond)} | ${f(t.auto.tokensPerSecond)} | ${f(t.pairedSpeedup)}x |${llama ? ` ${f(t.llamaCpp?.tokensPerSecond)} |${vs(t)}` : ''}`);
  }
  out.push(`| **all** | | ${p.texts.reduce((s, t) => s + t.tokens, 0)} | **${f(p.auto.tokensPerPass)}** | ${p.auto.draftTokens} / ${p.auto.acceptedDraftTokens} | ${f(p.off.tokensPerSecond)} | ${f(p.auto.tokensPerSecond)} | **${f(p.speedup)}x** (texts' median ${f(p.medianTextSpeedup)}x) |${llama ? ` ${f(p.llamaCpp?.tokensPerSecond)} |${vs(p, true)}` : ''}`);
  return out;
}

/** The lookup section of results.md. */
export function renderLookup(l: LookupJson): string {
  const lines = ['## Prompt lookup (issue 18): pass cost and replayed texts', ''];
  lines.push('`npm run bench:lookup` (bench/lookup.ts). Texts and where they come from: bench/texts/SOURCES.md.', '');
  const shapes = Object.values(l.passCost);
  if (shapes.length) {
    lines.push(`**Pass cost**: one forward pass over n new tokens with the logits of all of them, after ${[...new Set(shapes.map((s) => s.context))].join('/')} cached tokens (random ids), as a ratio to the 1-token pass; the sizes interleaved in one process (their order rotated each round, a warm-up round not counted), each pass rolled back after it, ratios taken within each round, medians over the rounds (min–max). The engine's prepared CPU copy of each model (${shapes.map((s) => `${s.shape}: load average ${s.loadAverage.map((x) => x[0]!.toFixed(2)).join(' → ')}`).join('; ')}).`, '');
    lines.push(`| model | rounds | ${shapes[0]!.costs.map((c) => `${c.tokens} token${c.tokens === 1 ? '' : 's'}`).join(' | ')} |`);
    lines.push(`|---|---|${shapes[0]!.costs.map(() => '---').join('|')}|`);
    for (const s of shapes) {
      lines.push(`| ${s.layout} ${s.variant}, ${s.shape} (${s.date.slice(0, 10)}) | ${s.rounds} | ${s.costs.map((c) => (c.tokens === 1 ? `${f(c.ms, 1)} ms` : `${f(c.ratio)}x (${f(c.ratioMin)}–${f(c.ratioMax)}); ${f(c.ms, 1)} ms`)).join(' | ')} |`);
    }
    lines.push('');
  }
  const rep = l.replay;
  if (rep) {
    const la = rep.loadAverage.map((x) => x[0]!.toFixed(2)).join(' → ');
    lines.push(`**Replays** (${rep.date.slice(0, 10)}; ${rep.model.layout} ${rep.model.variant} ${rep.model.shape}, prepared CPU copy; ${rep.rounds} rounds, lookup on and off back to back in each, alternating which goes first; load average ${la}). Each text is written through the real engine by its pick seam; both modes wrote the same tokens. Decode figures exclude the time to first token. Tokens per pass = the text's tokens / decode passes (1.00 without lookup).`, '');
    if (rep.llamaCpp) {
      const l = rep.llamaCpp;
      lines.push(`In each round llama.cpp (node-llama-cpp ${l.build}, ${l.threads} threads, batch ${l.batchSize}, flash attention ${l.flashAttention}; ${l.gguf.split('/').pop()}, the same shapes and weights) decoded as many tokens after the same prompt ids, plainly (its prompt cached after the first round, as ours is): its greedy tokens are its own, and a pass costs the same whatever the token. So each text compares our decode, with lookup and without, with llama.cpp's at that text's context length.`, '');
    }
    for (const [title, p] of [['ANSWER phase (real fixes)', rep.answer], ['REASONING phase, genuine DeepSeek-R1', rep.reasoningGenuine], ['REASONING phase, written for the fixes (substitute)', rep.reasoningSubstitute]] as const) {
      const prompts = new Map(rep.texts.filter((t) => t.phase === p.phase).map((t) => [t.id, t.promptTokens]));
      lines.push(...phaseTable(title, p, prompts), '');
    }
    const answerTokens = meanAnswerTokens(rep);
    lines.push(`**Expected speedup of a Fix request**, split by phase: answer ${f(answerTokens, 0)} tokens (the fixes' mean), reasoning R tokens at the genuine-R1 speedup ${f(rep.reasoningGenuine.speedup)}x, answer at ${f(rep.answer.speedup)}x; end to end adds the prompt's prefill (median cold time to first token of the Fix prompts, ${f(fixPrefillMs(rep) / 1000, 1)} s over ${rep.texts.filter((t) => t.kind === 'fix' && t.phase === 'reasoning' && rep.coldTtftMs[t.id] !== undefined).length} of them), which lookup does not change.`, '');
    lines.push('| reasoning tokens | decode speedup | end to end |', '|---|---|---|');
    for (const R of SPLIT_REASONING_TOKENS) {
      const e = fixExpectation(rep, R);
      lines.push(`| ${R}${R === FIX_REASONING_TOKENS ? ' (the default thinking budget: the headline)' : ''} | ${f(e.decode)}x | ${f(e.endToEnd)}x |`);
    }
    lines.push('');
    const met = rep.answer.speedup >= 1.8;
    lines.push(`Target: answer-phase decode with lookup ≥ 1.8x without, on code-fix texts: **${met ? 'met' : 'not met'}** (${f(rep.answer.speedup)}x).`, '');
    const v = rep.answer.vsLlamaCpp;
    if (v) {
      const g = rep.reasoningGenuine.vsLlamaCpp;
      lines.push(`Target: decode ≥ 1.0x llama.cpp's on the same shapes, with lookup where the text allows: at the fixes' contexts, the answer phase decodes at **${f(v.lookup)}x** llama.cpp's rate with lookup (**${v.lookup >= 1 ? 'met' : 'not met'}**) and ${f(v.plain)}x without${g ? `; genuine R1 reasoning at ${f(g.lookup)}x with lookup and ${f(g.plain)}x without` : ''}.${v.plain < 1 ? ` **Where llama.cpp is faster:** plain decode at these contexts, by ${f(1 / v.plain)}x on the answers${g && g.plain < 1 ? ` and ${f(1 / g.plain)}x on the reasoning` : ''}.` : ''}`, '');
    }
  }
  return `${lines.join('\n')}\n`;
}

/** A few lines for the terminal. */
export function renderLookupSummary(l: LookupJson): string {
  const r = l.ratios;
  return Object.entries(r).map(([k, v]) => `${k}: ${f(v)}`).join('\n');
}
