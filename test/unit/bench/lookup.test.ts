/**
 * The prompt-lookup benchmark's pure parts (bench/lookupTexts.ts, lookupStats.ts,
 * lookupReport.ts): the texts load and become the prompts and token sequences the replay feeds
 * the engine, and the ratios are computed as documented. No timing is asserted.
 */
import assert from 'node:assert/strict';
import { resolve } from 'node:path';
import { before, describe, it } from 'node:test';
import { buildPrompt } from '../../../src/engine/prompt';
import { R1Tokenizer } from '../../../src/engine/tokenizer';
import { type LookupJson, type ReplayJson, applyLookupRatios, fixExpectation, lookupRatios, renderLookup } from '../../../bench/lookupReport';
import { type PassRound, type ReplayRun, expectedSpeedup, median, passCostRatios, roundOrder, summarizePhase } from '../../../bench/lookupStats';
import { REASONING_CLOSE, type Replay, agreeingPrefix, fixAnswer, fixReplays, fixRequest, loadFixCases, loadR1Traces, replayPick, traceReplay } from '../../../bench/lookupTexts';
import { bestLengthDrafter, bestPlaceDrafter, engineDrafter, linearCost, simulatePhase, simulateReplay } from '../../../bench/lookupSim';
import { renderMarkdown } from '../../../bench/run';
import { buildTokenizerFixture } from '../../fixtures/tokenizer';

const FIXTURE = resolve(__dirname, '../../../.cache/fixtures/tokenizer');
let tok: R1Tokenizer;

before(async () => {
  await buildTokenizerFixture(FIXTURE);
  tok = await R1Tokenizer.fromFolder(FIXTURE);
});

describe('bench texts', () => {
  it('loads every fix case: the selection is the function before the fix, from a real commit', () => {
    const cases = loadFixCases();
    assert.ok(cases.length >= 5, `${cases.length} cases`);
    assert.ok(new Set(cases.map((c) => c.language)).size >= 4, 'several languages');
    for (const c of cases) {
      const lines = c.fileText.split('\n');
      assert.equal(c.code, lines.slice(c.selection.startLine - 1, c.selection.endLine).join('\n'), c.id);
      assert.notEqual(c.code, c.fixed, `${c.id}: the fix changes the code`);
      assert.match(c.source.commit, /^[0-9a-f]{40}$/, c.id);
      assert.equal(c.source.url, `https://github.com/${c.source.repo}/commit/${c.source.commit}`);
      assert.ok(c.fileText.length <= 24_000, `${c.id}: the client's context window is at most 24,000 characters`);
      assert.ok(c.explanation.length > 20 && c.reasoning.length > 200, c.id);
    }
  });

  it('builds the answer a Fix prompt asks for: one fenced block with the language tag, then the explanation', () => {
    const c = loadFixCases().find((x) => x.language === 'python')!;
    const answer = fixAnswer(c);
    assert.ok(answer.startsWith(`\`\`\`python\n${c.fixed}\n\`\`\`\n\n`), answer.slice(0, 40));
    assert.ok(answer.endsWith(c.explanation));
  });

  it('sends the request the client sends for R1: Fix (the selection in document lines, the file window and where it starts)', () => {
    for (const c of loadFixCases()) {
      const req = fixRequest(c);
      const start = c.source.windowStartLine;
      assert.equal(req.kind, 'fix');
      assert.equal(req.question, undefined);
      assert.equal(req.context?.fileStartLine, start);
      assert.deepEqual(req.context?.selection, { startLine: c.selection.startLine + start - 1, endLine: c.selection.endLine + start - 1 });
      const prompt = buildPrompt(tok, req, { contextWindow: 8192, maxNewTokens: 4096 });
      assert.ok(prompt.text.includes(c.code), `${c.id}: the selected code is in the prompt`);
      assert.equal(prompt.text.split(c.code).length, 2, `${c.id}: once`);
      assert.ok(prompt.text.includes(`lines ${req.context!.selection!.startLine}-${req.context!.selection!.endLine}`), c.id);
      assert.ok(prompt.text.endsWith('<think>\n'));
    }
    assert.ok(loadFixCases().some((c) => c.source.windowStartLine > 1), 'a window of a larger file');
  });

  it('makes two replays per fix: the answer prompt is the reasoning prompt followed by the reasoning and its close', () => {
    const c = loadFixCases()[0]!;
    const [reasoning, answer] = fixReplays(tok, c);
    assert.equal(reasoning!.phase, 'reasoning');
    assert.equal(answer!.phase, 'answer');
    assert.deepEqual(answer!.promptIds, [...reasoning!.promptIds, ...reasoning!.textIds]);
    assert.equal(tok.decode(reasoning!.textIds), c.reasoning + REASONING_CLOSE);
    assert.equal(tok.decode(answer!.textIds), fixAnswer(c));
  });

  it('loads the genuine R1 traces and renders their conversation with the chat template', () => {
    const traces = loadR1Traces();
    assert.equal(traces.length, 3);
    for (const t of traces) {
      assert.ok(t.reasoning.length > 1000, t.id);
      assert.ok(!t.reasoning.includes('<think>') && !t.reasoning.includes('</think>'), t.id);
      assert.match(t.model, /DeepSeek-R1/);
    }
    const rp = traceReplay(tok, traces[0]!);
    assert.equal(rp.kind, 'r1');
    assert.ok(tok.decode(rp.promptIds).endsWith('<think>\n'));
    assert.ok(tok.decode(rp.promptIds).includes(traces[0]!.messages.find((m) => m.role === 'user')!.content));
  });

  it('the pick seam writes the text, then eos', () => {
    const pick = replayPick([5, 6, 7], 99);
    const row = new Float32Array(4);
    assert.deepEqual([0, 1, 2, 3, 4].map((n) => pick(row, Array(n).fill(0) as number[])), [5, 6, 7, 99, 99]);
    assert.equal(agreeingPrefix([1, 2, 3], [1, 2, 4]), 2);
  });
});

describe('bench lookup arithmetic', () => {
  it('takes pass-cost ratios within each round, then the median over rounds', () => {
    // The machine halves its speed in round 2: the within-round ratios do not move.
    const rounds: PassRound[] = [
      { 1: 10, 2: 12, 16: 50 },
      { 1: 20, 2: 24, 16: 100 },
      { 1: 10, 2: 14, 16: 55 },
    ];
    const costs = passCostRatios(rounds);
    assert.deepEqual(costs.map((c) => c.tokens), [1, 2, 16]);
    assert.equal(costs[0]!.ratio, 1);
    assert.equal(costs[1]!.ratio, 1.2);
    assert.equal(costs[2]!.ratio, 5);
    assert.equal(costs[2]!.ratioMax, 5.5);
    assert.equal(costs[1]!.ms, 14);
    assert.equal(median([3, 1, 2, 10]), 2.5);
  });

  it('rotates the order of the pass sizes so each runs at every position', () => {
    const sizes = [1, 2, 4, 8, 16];
    const firsts = new Set<number>();
    for (let r = 0; r < 5; r++) {
      const o = roundOrder(sizes, r);
      assert.deepEqual([...o].sort((a, b) => a - b), sizes);
      firsts.add(o[0]!);
    }
    assert.ok(firsts.size >= 3);
  });

  const run = (id: string, mode: 'auto' | 'off' | 'llama.cpp', round: number, decodeMs: number, passes: number, phase: 'answer' | 'reasoning' = 'answer', tokens = 100): ReplayRun => ({
    id,
    phase,
    kind: 'fix',
    mode,
    round,
    tokens,
    decodeMs,
    forwardPasses: passes,
    draftTokens: mode === 'auto' ? 2 * (tokens - passes) : 0,
    acceptedDraftTokens: mode === 'auto' ? tokens - passes : 0,
  });

  /** The replay section of results.json over `runs`, its phases summarized as bench/lookup.ts does. */
  const replayOf = (runs: ReplayRun[], rest: Partial<Record<keyof ReplayJson, unknown>>): ReplayJson =>
    ({
      answer: summarizePhase(runs, 'answer'),
      reasoningGenuine: summarizePhase(runs, 'reasoning', (r) => r.kind === 'r1'),
      reasoningSubstitute: summarizePhase(runs, 'reasoning', (r) => r.kind === 'fix'),
      loadAverage: [[1], [2]],
      rounds: 1,
      date: '2026-01-01T00:00:00Z',
      model: { layout: 'onnx-community', variant: 'q4', shape: '1.5b', dir: '' },
      runs,
      ...rest,
    }) as unknown as ReplayJson;

  it('sums a phase over its texts (longer texts weigh more) and pairs each round', () => {
    const runs = [
      run('a', 'auto', 0, 1000, 40), run('a', 'off', 0, 2000, 100),
      run('a', 'auto', 1, 1000, 40), run('a', 'off', 1, 3000, 100),
      run('b', 'auto', 0, 3000, 300, 'answer', 300), run('b', 'off', 0, 3000, 300, 'answer', 300),
      run('c', 'auto', 0, 500, 50, 'reasoning'), run('c', 'off', 0, 1000, 100, 'reasoning'),
    ];
    const p = summarizePhase(runs, 'answer');
    assert.deepEqual(p.texts.map((t) => t.id), ['a', 'b']);
    assert.equal(p.texts[0]!.pairedSpeedup, 2.5);
    assert.equal(p.texts[0]!.auto.tokensPerPass, 2.5);
    assert.equal(p.texts[1]!.pairedSpeedup, 1);
    // auto: 500 tokens in 5 s; off: 500 tokens in 8 s.
    assert.equal(p.auto.tokensPerSecond, 100);
    assert.equal(p.off.tokensPerSecond, 62.5);
    assert.equal(p.speedup, 1.6);
    assert.equal(p.off.tokensPerPass, 1);
    assert.equal(p.auto.acceptance, 0.5);
    assert.equal(summarizePhase(runs, 'reasoning').speedup, 2);
  });

  it('expects a request\'s speedup from its phases: (R + A) / (R/sR + A/sA), prefill unchanged', () => {
    assert.equal(expectedSpeedup({ reasoning: 1000, answer: 1000, reasoningSpeedup: 1, answerSpeedup: 3 }), 1.5);
    assert.equal(expectedSpeedup({ reasoning: 0, answer: 500, reasoningSpeedup: 1, answerSpeedup: 2 }), 2);
    // 10 s of prefill at 100 tok/s is worth 1000 token-times that lookup does not shorten.
    assert.equal(expectedSpeedup({ reasoning: 0, answer: 1000, reasoningSpeedup: 1, answerSpeedup: 2, prefillMs: 10_000, tokensPerSecond: 100 }), 2000 / 1500);
    assert.ok(Number.isNaN(expectedSpeedup({ reasoning: 1, answer: 1, reasoningSpeedup: 0, answerSpeedup: 1 })));
  });

  it('carries the ratios in results.json: the lookup section, copied into the headline run only', () => {
    const runs = [run('a', 'auto', 0, 1000, 40), run('a', 'off', 0, 2000, 100), { ...run('r', 'auto', 0, 900, 90, 'reasoning'), kind: 'r1' as const }, { ...run('r', 'off', 0, 1000, 100, 'reasoning'), kind: 'r1' as const }];
    const rep = replayOf(runs, {
      texts: [
        { id: 'a', phase: 'reasoning', kind: 'fix', promptTokens: 10, textTokens: 50, truncated: 0 },
        { id: 'a', phase: 'answer', kind: 'fix', promptTokens: 60, textTokens: 100, truncated: 0 },
      ],
      coldTtftMs: { a: 1000 },
    });
    const lookup: LookupJson = {
      schema: 1,
      passCost: { '1.5b': { date: '2026-01-01T00:00:00Z', layout: 'onnx-community', variant: 'q4', shape: '1.5b', context: 1024, rounds: 3, loadAverage: [[0.5], [2]], costs: [{ tokens: 1, ms: 30, ratio: 1, ratioMin: 1, ratioMax: 1, rounds: 3 }, { tokens: 4, ms: 50, ratio: 1.7, ratioMin: 1.6, ratioMax: 1.8, rounds: 3 }] } as never },
      replay: rep,
      ratios: {},
    };
    lookup.ratios = lookupRatios(lookup);
    assert.equal(lookup.ratios.answerPhaseLookupSpeedup, 2);
    assert.equal(lookup.ratios.reasoningPhaseLookupSpeedup, 1.111);
    assert.equal(lookup.ratios.passCost4VsOne1_5b, 1.7);
    assert.equal(lookup.ratios.fixRequestLookupSpeedup, Math.round(fixExpectation(rep, 2048).decode * 1000) / 1000);
    const headline = { layout: 'onnx-community', variant: 'q4', shape: '1.5b', args: { provider: 'cpu' }, ratios: { decodeVsLlamaCpp: 0.9 } as Record<string, number | null> };
    const other = { layout: 'genai', variant: 'cpu', shape: '1.5b', args: { provider: 'cpu' }, ratios: {} as Record<string, number | null> };
    applyLookupRatios({ runs: [other, headline], lookup });
    assert.equal(headline.ratios.answerPhaseLookupSpeedup, 2);
    assert.equal(headline.ratios.decodeVsLlamaCpp, 0.9);
    assert.equal(other.ratios.answerPhaseLookupSpeedup, undefined);
    const md = renderLookup(lookup);
    assert.match(md, /answer-phase decode with lookup ≥ 1\.8x without, on code-fix texts: \*\*met\*\* \(2\.00x\)/);
    assert.match(md, /\| 4 tokens \|/);
    assert.ok(renderMarkdown({ schema: 2, runs: [], lookup } as never).includes('## Prompt lookup (issue 18)'));
    assert.doesNotMatch(md, /llama\.cpp tok\/s/, 'no llama.cpp columns when it did not run');
  });

  it('compares our decode with llama.cpp\'s after the same prompts, with lookup and without, and says where llama.cpp is faster', () => {
    // a: ours 100 tokens in 1 s with lookup, 2 s without; llama.cpp 100 tokens in 1.25 s (80 tok/s).
    const runs = [run('a', 'auto', 0, 1000, 40), run('a', 'off', 0, 2000, 100), run('a', 'llama.cpp', 0, 1250, 100), run('b', 'auto', 0, 1000, 100), run('b', 'off', 0, 1000, 100)];
    const p = summarizePhase(runs, 'answer');
    assert.equal(p.texts[0]!.llamaCpp!.tokensPerSecond, 80);
    assert.deepEqual(p.texts[0]!.vsLlamaCpp, { lookup: 1.25, plain: 0.625 });
    assert.equal(p.texts[1]!.vsLlamaCpp, undefined, 'b had no llama.cpp run');
    // The phase: ours 200 tokens in 2 s / 3 s; llama.cpp 100 tokens in 1.25 s.
    assert.equal(p.vsLlamaCpp!.lookup, 100 / 80);
    assert.equal(p.vsLlamaCpp!.plain, (200 / 3) / 80);
    assert.equal(p.speedup, 1.5, 'llama.cpp runs do not count as ours');
    const rep = replayOf(runs, {
      texts: [{ id: 'a', phase: 'answer', kind: 'fix', promptTokens: 4321, textTokens: 100, truncated: 0 }, { id: 'b', phase: 'answer', kind: 'fix', promptTokens: 10, textTokens: 100, truncated: 0 }],
      coldTtftMs: {},
      llamaCpp: { gguf: '/x/qwen2-1.5b-1234-Q4_0.gguf', threads: 2, batchSize: 512, contextSize: 5000, flashAttention: 'true', build: 'prebuilt b1', systemInfo: '', mmap: true },
    });
    const lookup: LookupJson = { schema: 1, passCost: {}, replay: rep, ratios: {} };
    lookup.ratios = lookupRatios(lookup);
    assert.equal(lookup.ratios.answerPhaseDecodeVsLlamaCpp, 1.25);
    assert.equal(lookup.ratios.answerPhasePlainDecodeVsLlamaCpp, 0.833);
    const md = renderLookup(lookup);
    assert.match(md, /\| a \| 4321 \| 100 \| 2\.50 \| .* \| 80\.00 \| 1\.25x, 0\.63x \|/);
    assert.match(md, /with lookup where the text allows: .* \*\*1\.25x\*\* llama\.cpp's rate with lookup \(\*\*met\*\*\) and 0\.83x without/);
    assert.match(md, /\*\*Where llama\.cpp is faster:\*\* plain decode at these contexts, by 1\.20x on the answers/);
  });
});

describe('bench lookup simulation (bench/lookupSim.ts)', () => {
  // A prompt holding a 60-token "function", and a text that copies it with one token changed.
  const code = Array.from({ length: 60 }, (_, i) => 1000 + ((i * 7) % 53));
  const copied = [...code.slice(0, 30), 5, ...code.slice(31)];
  const replay: Replay = { id: 'copy', phase: 'answer', kind: 'fix', promptIds: [1, 2, 3, ...code, 4], textIds: copied, truncated: 0 };

  it('a drafter that never drafts writes one token a pass at the cost of one step each', () => {
    const none = { draft: () => [], record: () => undefined, measured: () => undefined };
    const r = simulateReplay(replay, none, linearCost(0.25));
    // The first token comes from the prompt's pass; the others and the eos take a pass each.
    assert.deepEqual(r, { tokens: 60, passes: 60, cost: 60, drafted: 0, kept: 0 });
  });

  it('the best-length ceiling keeps every token it drafts, and our drafting copies the code in few passes', () => {
    const best = simulateReplay(replay, bestLengthDrafter(), linearCost(0.25));
    assert.equal(best.kept, best.drafted);
    assert.equal(best.passes, 60 - best.kept);
    const ours = simulateReplay(replay, engineDrafter(), linearCost(0.25));
    assert.ok(ours.tokens / ours.passes > 3, `${ours.passes} passes`);
    assert.ok(ours.kept <= ours.drafted && ours.passes === 60 - ours.kept, JSON.stringify(ours));
    assert.ok(best.passes <= ours.passes, `${best.passes} <= ${ours.passes}`);
  });

  it('with a flat pass cost the speedup is the tokens per pass; a dearer pass lowers it; the ceilings are ordered', () => {
    const rs = fixReplays(tok, loadFixCases()[0]!).filter((r) => r.phase === 'answer');
    const flat = simulatePhase(rs, engineDrafter, linearCost(0));
    assert.ok(Math.abs(flat.speedup - flat.tokensPerPass) < 1e-9, JSON.stringify(flat));
    const dear = simulatePhase(rs, engineDrafter, linearCost(0.25));
    assert.ok(dear.speedup < flat.speedup && dear.speedup > 1, JSON.stringify(dear));
    const length = simulatePhase(rs, bestLengthDrafter, linearCost(0.25));
    const place = simulatePhase(rs, bestPlaceDrafter, linearCost(0.25));
    assert.ok(length.speedup > dear.speedup && place.speedup >= length.speedup, `${dear.speedup} < ${length.speedup} <= ${place.speedup}`);
  });
});
