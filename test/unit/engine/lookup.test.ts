/**
 * Prompt-lookup decoding (src/engine/lookup.ts and its use in generate.ts): drafting, the exact
 * acceptance rule (greedy: token-identical output; sampling: the target distribution, tested
 * statistically on a tiny vocabulary), and verification with rollback on every layout's model,
 * around slot growth, prefix reuse, the thinking budget and the length limit.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { R1Engine } from '../../../src/engine/engine';
import { ModelError } from '../../../src/engine/errors';
import type { GenerationInternals } from '../../../src/engine/generate';
import { CAPACITY_STEP } from '../../../src/engine/kvSlots';
import { DEFAULT_PASS_COST, MIN_MATCH, PromptLookup, bestDraftLength, expectedTokens, findDraft, verifyDrafts } from '../../../src/engine/lookup';
import { buildPrompt } from '../../../src/engine/prompt';
import { Sampler, argmax } from '../../../src/engine/sampler';
import type { GenerateOptions, GenerationResult, ModelVariant, PromptRequest, StreamEvent } from '../../../src/engine/types';
import { type FixtureName, ensureFixture } from '../../fixtures/models';

const cacheDir = mkdtempSync(join(tmpdir(), 'r1-lookup-'));
after(() => rmSync(cacheDir, { recursive: true, force: true }));

describe('drafting (findDraft, PromptLookup)', () => {
  it('drafts what followed the longest earlier match of the last tokens, the latest place on ties', () => {
    // ... 1 2 3 [9 9] ... 5 2 3 [7 7] ... 2 3 -> the 2-token match "2 3" occurs twice: the latest wins.
    const ctx = [1, 2, 3, 9, 9, 4, 5, 2, 3, 7, 7, 6, 2, 3];
    assert.deepEqual(findDraft(ctx, 4), { tokens: [7, 7, 6, 2], match: 2 });
    // A longer match beats a later shorter one: "1 2 3" matches 3 tokens at the start.
    const ctx2 = [1, 2, 3, 8, 8, 5, 2, 3, 7, 1, 2, 3];
    assert.deepEqual(findDraft(ctx2, 2), { tokens: [8, 8], match: 3 });
    // The draft stops at the end of the context.
    assert.deepEqual(findDraft([4, 5, 6, 4, 5], 8), { tokens: [6, 4, 5], match: 2 });
  });

  it('drafts nothing below MIN_MATCH tokens of agreement, or with no room', () => {
    assert.equal(MIN_MATCH, 2);
    assert.equal(findDraft([1, 2, 3, 4, 9, 4], 4), undefined, 'a one-token match drafts nothing');
    assert.equal(findDraft([1, 2, 3, 1, 2], 0), undefined);
    assert.equal(findDraft([1, 2], 4), undefined);
  });

  it('chooses the draft length by expected tokens per cost: none when drafts are rarely right, more when they are', () => {
    assert.equal(expectedTokens(0.5, 0), 1);
    assert.equal(expectedTokens(0.5, 2), 1.75);
    assert.equal(bestDraftLength(0.1, DEFAULT_PASS_COST, 16), 0, 'a 2-token pass costs 1.2x: a 10% draft does not pay');
    const mid = bestDraftLength(0.8, DEFAULT_PASS_COST, 16);
    const high = bestDraftLength(0.97, DEFAULT_PASS_COST, 16);
    assert.ok(mid >= 1 && high > mid, `${mid} then ${high}`);
    assert.ok(bestDraftLength(0.97, DEFAULT_PASS_COST, 3) <= 3, 'never past the limit');
    // A flat cost (a GPU, say) drafts the most it may.
    const flat = DEFAULT_PASS_COST.map((_, i) => (i === 0 ? 0 : 1));
    assert.equal(bestDraftLength(0.9, flat, 16), 16);
  });

  it('learns: a match kind whose drafts keep failing stops drafting (and is tried again later), one whose drafts hold drafts longer', () => {
    const copy = [10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25];
    const ctx = [...copy, 99, ...copy.slice(0, 3)]; // "10 11 12" matches 3 tokens, then 13 14 ...
    const good = new PromptLookup();
    const first = good.draft(ctx, 16).length;
    assert.ok(first >= 1, 'a prior that drafts');
    for (let i = 0; i < 20; i++) {
      const d = good.draft(ctx, 16);
      good.record(d.length);
    }
    assert.ok(good.draft(ctx, 16).length > first, 'longer after every draft held');
    const bad = new PromptLookup();
    let stopped = -1;
    for (let i = 0; i < 20 && stopped < 0; i++) {
      if (bad.draft(ctx, 16).length === 0) stopped = i;
      bad.record(0);
    }
    assert.ok(stopped > 0, 'no draft after drafts failed');
    // Tries of one token, further and further apart while they fail.
    const gaps: number[] = [];
    for (let t = 0; t < 3; t++) {
      let gap = 0;
      for (;;) {
        const d = bad.draft(ctx, 16);
        if (d.length > 0) {
          assert.equal(d.length, 1);
          break;
        }
        gap++;
      }
      bad.record(0);
      gaps.push(gap);
    }
    assert.ok(gaps[0]! >= 10 && gaps[1]! > gaps[0]! && gaps[2]! > gaps[1]!, `gaps ${gaps.join(', ')}`);
  });

  it('measures the pass cost of this machine: wide passes that cost little are drafted wider', () => {
    const p = new PromptLookup();
    const ctx = [...Array.from({ length: 40 }, (_, i) => i), 0, 1, 2];
    for (let i = 0; i < 5; i++) p.record(0);
    const before = p.draft(ctx, 16).length;
    // Every width costs what one token costs (a GPU, or a large model on many cores).
    for (let w = 1; w <= 17; w++) for (let i = 0; i < 3; i++) p.measured(w, 10);
    assert.ok(p.draft(ctx, 16).length > before, `${before} → wider`);
    const q = new PromptLookup();
    // Noise that makes a wide pass look cheaper than a narrow one is not believed.
    q.measured(1, 10);
    q.measured(2, 30);
    q.measured(3, 5);
    assert.equal(q.draft(ctx, 1).length, 0, 'a 2-token pass measured at 3x does not pay for one draft');
  });
});

describe('exact acceptance (verifyDrafts) with sampling, on a tiny vocabulary', () => {
  // Target distributions of three positions over 4 tokens, as logits at temperature 1.
  const P = [
    [0.5, 0.2, 0.2, 0.1],
    [0.1, 0.6, 0.1, 0.2],
    [0.25, 0.25, 0.25, 0.25],
  ];
  const logits = P.map((p) => Float32Array.from(p.map(Math.log)));
  const drafts = [0, 1];

  /** The distribution of a pass's emitted tokens when each position is sampled one after another. */
  function exact(): Map<string, number> {
    const m = new Map<string, number>();
    for (let y0 = 0; y0 < 4; y0++) {
      if (y0 !== drafts[0]) m.set(`${y0}`, P[0]![y0]!);
    }
    for (let y1 = 0; y1 < 4; y1++) {
      if (y1 !== drafts[1]) m.set(`0,${y1}`, P[0]![0]! * P[1]![y1]!);
    }
    for (let y2 = 0; y2 < 4; y2++) m.set(`0,1,${y2}`, P[0]![0]! * P[1]![1]! * P[2]![y2]!);
    return m;
  }

  function chiSquare(counts: Map<string, number>, expected: Map<string, number>, n: number): number {
    let x2 = 0;
    for (const [k, p] of expected) {
      const e = p * n;
      const o = counts.get(k) ?? 0;
      x2 += ((o - e) * (o - e)) / e;
    }
    for (const k of counts.keys()) assert.ok(expected.has(k), `emitted ${k}, which cannot happen`);
    return x2;
  }

  it('emits token sequences with the probabilities of sampling the model alone (chi-square, 11 cells)', () => {
    const n = 40_000;
    const sampler = new Sampler({ temperature: 1, topP: 1, seed: 1234 });
    const counts = new Map<string, number>();
    for (let t = 0; t < n; t++) {
      const out: number[] = [];
      verifyDrafts(drafts, (r) => sampler.sample(logits[r]!), (tok) => (out.push(tok), true));
      counts.set(out.join(','), (counts.get(out.join(',')) ?? 0) + 1);
    }
    const x2 = chiSquare(counts, exact(), n);
    // 10 degrees of freedom: 29.6 is the 0.1% critical value.
    assert.ok(x2 < 29.6, `chi-square ${x2.toFixed(1)}`);
    // The rule the test guards against: keeping a draft whenever it is possible at all.
    const greedyKeep = new Map<string, number>([['0,1,0', 0.25], ['0,1,1', 0.25], ['0,1,2', 0.25], ['0,1,3', 0.25]]);
    const wrong = new Map<string, number>();
    for (const k of exact().keys()) wrong.set(k, greedyKeep.get(k) ?? 1e-9);
    assert.ok(chiSquare(counts, wrong, n) > 1000);
  });

  it('stops where take() says, and counts only the drafts kept', () => {
    const greedy = (r: number) => argmax(logits[r]!);
    const seen: number[] = [];
    assert.equal(verifyDrafts([0, 1], greedy, (tok) => (seen.push(tok), true)), 2);
    assert.deepEqual(seen, [0, 1, 0], 'two drafts kept, then the bonus token (argmax of row 2: the first of equals)');
    const cut: number[] = [];
    assert.equal(verifyDrafts([0, 1], greedy, (tok) => (cut.push(tok), cut.length < 1)), 0);
    assert.deepEqual(cut, [0]);
    const miss: number[] = [];
    assert.equal(verifyDrafts([0, 3], greedy, (tok) => (miss.push(tok), true)), 1);
    assert.deepEqual(miss, [0, 1], 'the second draft (3) differs from the choice (1): the choice is emitted, nothing after');
  });
});

/** A greedy run that records its tokens (pick = argmax is what the greedy sampler does). */
function recorder(tokens: number[], extra: GenerationInternals = {}): GenerationInternals {
  return {
    ...extra,
    pick: (row, generated) => {
      const t = argmax(row);
      tokens.length = 0;
      tokens.push(...generated, t);
      return t;
    },
  };
}

/**
 * Drafts from a known continuation: 1..6 tokens of it, every third draft with its last token
 * wrong, so passes keep all, some or none of their drafts.
 */
function oracle(promptLength: number, truth: readonly number[], vocab: number): GenerationInternals['draft'] {
  let pass = 0;
  return (context, max) => {
    pass++;
    const at = context.length - promptLength;
    const d = truth.slice(at, at + Math.min(max, (pass % 6) + 1));
    if (pass % 3 === 0 && d.length > 0) d[d.length - 1] = (d[d.length - 1]! + 1) % vocab;
    return d;
  };
}

interface LayoutCase {
  fixture: FixtureName;
  variant?: ModelVariant;
  /** How the decoder checks drafts (DecoderSession.verification). */
  verification: 'free' | 'copying' | 'none';
}

const LAYOUTS: LayoutCase[] = [
  { fixture: 'tiny-onnx-community', variant: 'q4', verification: 'free' },
  // The export's MultiHeadAttention graph runs one token at a time once it has a cache.
  { fixture: 'tiny-onnx-community', variant: 'fp32', verification: 'none' },
  { fixture: 'tiny-genai-cpu', verification: 'free' },
  { fixture: 'tiny-qwen2', variant: 'q4', verification: 'copying' },
  { fixture: 'tiny-qwen2-f16kv', verification: 'copying' },
  { fixture: 'tiny-llama-genai-cpu', verification: 'free' },
  { fixture: 'tiny-qwen3-genai-cpu', verification: 'free' },
];

describe('verification on every layout: greedy output with drafts is token-identical to without', () => {
  for (const c of LAYOUTS) {
    it(`${c.fixture}${c.variant ? ` ${c.variant}` : ''}: ${c.verification === 'none' ? 'no drafts (one token per pass), same tokens' : 'kept, partly kept and rejected drafts, across a KV slot growth, then prefix reuse'}`, async () => {
      const e = await R1Engine.load({ modelDir: await ensureFixture(c.fixture), variant: c.variant, provider: 'cpu', cacheDir, cpuThreads: 1 });
      try {
        assert.equal(e.decoder.verification, c.verification);
        const vocab = e.info.config.vocabSize;
        // A prompt that ends just before the engine's KV capacity step, so drafts cross it.
        const prompt = Array.from({ length: CAPACITY_STEP - 8 }, (_, i) => (i * 7919 + 11) % 1000);
        const opts: GenerateOptions = { temperature: 0, maxNewTokens: 40, stopOnEos: false };
        const plain: number[] = [];
        const p = await e.generateFromIds(prompt, { ...opts, promptLookup: 'off' }, recorder(plain));
        assert.equal(p.status, 'length', p.error);
        assert.equal(plain.length, 40);
        assert.equal(p.stats.forwardPasses, 39);
        const withDrafts: number[] = [];
        const l = await e.generateFromIds(prompt, { ...opts, promptLookup: 'on' }, recorder(withDrafts, { draft: oracle(prompt.length, plain, vocab) }));
        assert.equal(l.status, 'length', l.error);
        assert.deepEqual(withDrafts, plain, 'the same tokens');
        assert.equal(l.answer + l.reasoning, p.answer + p.reasoning);
        if (c.verification === 'none') {
          assert.equal(l.stats.draftTokens, 0);
          assert.equal(l.stats.forwardPasses, 39);
          return;
        }
        const s = l.stats;
        assert.ok(s.acceptedDraftTokens! > 10 && s.acceptedDraftTokens! < s.draftTokens!, `${s.acceptedDraftTokens} of ${s.draftTokens} drafts kept`);
        assert.ok(s.forwardPasses! < 39, `${s.forwardPasses} passes for 40 tokens`);
        assert.equal(e.decoder.pastLength, prompt.length + 39, 'the cache holds the prompt and every kept token but the last (it never ran)');
        // Prefix reuse after rejected rows were dropped: a follow-up agrees with a fresh run.
        const follow = [...prompt, ...plain.slice(0, 20), 5, 6, 7];
        const reused: number[] = [];
        const r = await e.generateFromIds(follow, { ...opts, maxNewTokens: 12, promptLookup: 'on' }, recorder(reused));
        assert.ok(r.stats.reusedPromptTokens >= prompt.length + 20, `${r.stats.reusedPromptTokens} reused`);
        e.decoder.reset();
        const fresh: number[] = [];
        await e.generateFromIds(follow, { ...opts, maxNewTokens: 12, promptLookup: 'off' }, recorder(fresh));
        assert.deepEqual(reused, fresh);
      } finally {
        await e.dispose();
      }
    });
  }
});

describe('prompt lookup in R1Engine.generate on the scripted model', () => {
  let engine: R1Engine;
  // The scripted model's answer rewrites parsePort; the fix request carries a version of it.
  const FIX: PromptRequest = {
    kind: 'fix',
    question: 'parsePort should always return a number.',
    context: {
      filePath: 'src/port.ts',
      language: 'typescript',
      code: 'export function parsePort(value: string): number {\n  const port = Number.parseInt(value, 10);\n  if (!Number.isInteger(port) || port < 1 || port > 65535) {\n    return value as unknown as number;\n  }\n  return port;\n}',
    },
  };
  before(async () => {
    engine = await R1Engine.load({ modelDir: await ensureFixture('scripted'), provider: 'cpu', cacheDir });
  });
  after(async () => engine.dispose());

  async function run(opts: GenerateOptions, internals?: GenerationInternals) {
    const events: StreamEvent[] = [];
    const tokens: number[] = [];
    let result: GenerationResult;
    if (internals) {
      // generateFromIds with the fix prompt's ids: the seams need them.
      const { ids } = buildPrompt(engine.tokenizer, FIX, { contextWindow: 8192, maxNewTokens: 4096 });
      result = await engine.generateFromIds(ids, { ...opts, onEvent: (ev) => events.push(ev) }, recorder(tokens, internals));
    } else {
      result = await engine.generate(FIX, { ...opts, onEvent: (ev) => events.push(ev) });
    }
    return { result, events, tokens };
  }

  it('drafts from the code in the prompt by default: same text, events and counts as without, in fewer passes', async () => {
    assert.equal(engine.decoder.verification, 'free', 'the CPU-prepared copy of the scripted model');
    const off = await run({ temperature: 0, promptLookup: 'off' });
    const on = await run({ temperature: 0 });
    assert.equal(off.result.status, 'complete');
    assert.equal(on.result.answer, off.result.answer);
    assert.equal(on.result.reasoning, off.result.reasoning);
    assert.deepEqual(on.events.map((x) => x.kind + x.text).join(''), off.events.map((x) => x.kind + x.text).join(''));
    const a = off.result.stats;
    const b = on.result.stats;
    assert.equal(b.reasoningTokens, a.reasoningTokens);
    assert.equal(b.answerTokens, a.answerTokens);
    assert.equal(a.draftTokens, 0);
    assert.equal(a.forwardPasses, a.reasoningTokens + a.answerTokens, 'one pass a token, eos included, the first from the prompt');
    assert.ok(b.acceptedDraftTokens! >= 30, `${b.acceptedDraftTokens} of ${b.draftTokens} drafted tokens kept`);
    assert.equal(b.forwardPasses, a.forwardPasses! - b.acceptedDraftTokens!, 'each kept draft saves one pass');
    assert.equal(a.tokensPerPass, undefined, 'no figure without lookup');
    assert.equal(b.tokensPerPass, Math.round((a.forwardPasses! / b.forwardPasses!) * 100) / 100, 'tokens chosen from decode passes over those passes');
    assert.match(on.result.answer, /```typescript\nexport function parsePort/);
  });

  it("'auto' drafts only where dropping rows is free: not on the unprepared graph, where 'on' still gives the same text", async () => {
    const plain = await R1Engine.load({ modelDir: await ensureFixture('scripted'), provider: 'cpu', cacheDir, prepareForCpu: false });
    try {
      assert.equal(plain.decoder.verification, 'copying');
      const auto = await plain.generate(FIX, { temperature: 0 });
      assert.equal(auto.stats.draftTokens, 0);
      const on = await plain.generate(FIX, { temperature: 0, promptLookup: 'on' });
      assert.ok(on.stats.acceptedDraftTokens! > 0);
      assert.equal(on.answer, auto.answer);
      assert.equal(on.reasoning, auto.reasoning);
    } finally {
      await plain.dispose();
    }
  });

  it('sampling with a seed gives the same text with drafts as without (one draw per emitted token either way)', async () => {
    const off = await run({ temperature: 0.6, topP: 0.95, seed: 11, promptLookup: 'off' });
    const on = await run({ temperature: 0.6, topP: 0.95, seed: 11 });
    assert.equal(on.result.answer, off.result.answer);
    assert.ok(on.result.stats.acceptedDraftTokens! > 0);
  });

  it('the thinking budget cuts in the middle of a pass: the closing tokens replace the drafts that followed', async () => {
    for (const budget of [5, 9, 14]) {
      const plain = await run({ temperature: 0, thinkingBudget: budget, promptLookup: 'off' }, {});
      const vocab = engine.info.config.vocabSize;
      const promptLength = plain.result.stats.promptTokens;
      // Drafts that would go on reasoning past the budget (the script without the cut).
      const script = await run({ temperature: 0, promptLookup: 'off' }, {});
      const drafted = await run({ temperature: 0, thinkingBudget: budget, promptLookup: 'on' }, { draft: oracle(promptLength, script.tokens, vocab) });
      assert.equal(drafted.result.stats.thinkingBudgetHit, true);
      assert.equal(drafted.result.stats.reasoningTokens, budget);
      assert.equal(drafted.result.reasoning, plain.result.reasoning, `budget ${budget}`);
      assert.equal(drafted.result.answer, plain.result.answer, `budget ${budget}: the answer after the closing tokens`);
      assert.ok(drafted.result.stats.draftTokens! > 0);
    }
  });

  it('maxNewTokens stops at the same token, and drafts never run past it', async () => {
    for (const max of [7, 30, 61]) {
      const off = await run({ temperature: 0, maxNewTokens: max, promptLookup: 'off' });
      const on = await run({ temperature: 0, maxNewTokens: max, promptLookup: 'on' });
      assert.equal(on.result.status, 'length');
      assert.equal(on.result.reasoning + on.result.answer, off.result.reasoning + off.result.answer, `max ${max}`);
      assert.equal(engine.decoder.pastLength <= on.result.stats.promptTokens + max, true, 'no row past the limit was kept');
    }
  });

  it('a cancel from onEvent stops after the pass it came in: the text is a prefix of the full answer', async () => {
    const full = await run({ temperature: 0, promptLookup: 'off' });
    const ac = new AbortController();
    let seen = 0;
    const r = await engine.generate(FIX, {
      temperature: 0,
      promptLookup: 'on',
      signal: ac.signal,
      onEvent: () => {
        if (++seen === 70) ac.abort();
      },
    });
    assert.equal(r.status, 'cancelled');
    const text = r.reasoning + r.answer;
    assert.ok(text.length > 0 && (full.result.reasoning + full.result.answer).startsWith(r.reasoning), 'a prefix');
    assert.ok(r.stats.reasoningTokens + r.stats.answerTokens < full.result.stats.reasoningTokens + full.result.stats.answerTokens);
  });

  it('refuses an unknown promptLookup value with a ModelError', async () => {
    await assert.rejects(engine.generate(FIX, { promptLookup: 'always' as never }), (err: unknown) => err instanceof ModelError && /promptLookup/.test(err.message));
  });
});
