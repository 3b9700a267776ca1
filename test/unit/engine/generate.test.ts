/**
 * The generation loop through R1Engine on the scripted model (the real 1.5B signature, 28
 * layers, whose greedy continuation after "<think>\n" is DEFAULT_SCRIPT then eos).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { R1Engine } from '../../../src/engine/engine';
import { ModelError } from '../../../src/engine/errors';
import { ReasoningSplitter } from '../../../src/engine/reasoning';
import type { GenerateOptions, GenerationResult, PromptRequest, StreamEvent } from '../../../src/engine/types';
import { join } from 'node:path';
import { DEFAULT_SCRIPT, FIXTURES_DIR, buildScriptedModel, encodeScript, ensureFixture } from '../../fixtures/models';

const expected = (() => {
  const s = new ReasoningSplitter();
  s.push(DEFAULT_SCRIPT);
  s.end();
  return { reasoning: s.reasoning, answer: s.answer };
})();

const ASK: PromptRequest = { kind: 'ask', question: 'Why does parsePort return a string?', context: {} };

async function collect(engine: R1Engine, req: PromptRequest, opts: GenerateOptions = {}) {
  const events: StreamEvent[] = [];
  const result = await engine.generate(req, {
    ...opts,
    onEvent: (e) => {
      events.push(e);
      opts.onEvent?.(e);
    },
  });
  const joined = (kind: StreamEvent['kind']) =>
    events
      .filter((e) => e.kind === kind)
      .map((e) => e.text)
      .join('');
  return { result, events, reasoning: joined('reasoning'), answer: joined('answer') };
}

function longFile(minLines: number): string {
  const lines: string[] = [];
  for (let i = 0; i < minLines; i++) lines.push(`export const value${i} = compute(${i}, "item-${i}"); // entry ${i}`);
  return lines.join('\n');
}

/** The result is exactly the script: text, split, streamed events and token counts. */
function checkScript(r: GenerationResult, streamed: { reasoning: string; answer: string }, scriptIds: number[]): void {
  assert.equal(r.status, 'complete', r.error);
  assert.equal(r.reasoning, expected.reasoning);
  assert.equal(r.answer, expected.answer);
  assert.equal(streamed.reasoning, r.reasoning, 'streamed reasoning equals the result');
  assert.equal(streamed.answer, r.answer, 'streamed answer equals the result');
  assert.equal(r.stats.reasoningTokens + r.stats.answerTokens, scriptIds.length, 'every script token, eos not counted');
  assert.ok(r.stats.reasoningTokens > 0 && r.stats.answerTokens > 0);
  assert.equal(r.stats.thinkingBudgetHit, false);
  assert.equal(r.stats.provider, 'cpu');
  assert.equal(r.stats.variant, 'q4');
}

describe('R1Engine.generate on the scripted model', () => {
  let engine: R1Engine;
  let scriptIds: number[];
  before(async () => {
    engine = await R1Engine.load({ modelDir: await ensureFixture('scripted'), provider: 'cpu' });
    scriptIds = await encodeScript(DEFAULT_SCRIPT);
  });
  after(async () => engine.dispose());

  const assertScript = (r: GenerationResult, streamed: { reasoning: string; answer: string }) => checkScript(r, streamed, scriptIds);

  it('reproduces the script with greedy decoding, split into reasoning and answer, with the code block', async () => {
    const c = await collect(engine, ASK, { temperature: 0 });
    assertScript(c.result, c);
    assert.match(c.result.reasoning, /^Okay, the user wants me to fix `parsePort`/);
    assert.ok(!c.result.reasoning.includes('</think>'));
    assert.equal(c.result.codeBlocks.length, 1);
    const block = c.result.codeBlocks[0]!;
    assert.equal(block.language, 'typescript');
    assert.equal(block.closed, true);
    assert.match(block.code, /^export function parsePort\(value: string\): number \{/);
    assert.ok(c.result.stats.promptTokens > 10);
    assert.deepEqual(c.result.truncation, []);
    // Events come in order: all reasoning, then all answer.
    const firstAnswer = c.events.findIndex((e) => e.kind === 'answer');
    assert.ok(firstAnswer > 0);
    assert.ok(c.events.slice(firstAnswer).every((e) => e.kind === 'answer'));
  });

  it('sampling at temperature 0.6 with a seed follows the script too (its logits are one-hot)', async () => {
    const c = await collect(engine, ASK, { temperature: 0.6, topP: 0.95, seed: 7 });
    assertScript(c.result, c);
  });

  it('closes the reasoning at the thinking budget and lets the answer follow', async () => {
    const budget = 12;
    const c = await collect(engine, ASK, { temperature: 0, thinkingBudget: budget });
    const r = c.result;
    assert.equal(r.status, 'complete', r.error);
    assert.equal(r.stats.thinkingBudgetHit, true);
    assert.equal(r.stats.reasoningTokens, budget);
    const tokenizer = engine.tokenizer;
    assert.equal(r.reasoning, tokenizer.decode(scriptIds.slice(0, budget)).trim());
    assert.ok(r.answer.length > 0, 'an answer follows the forced </think>');
    assert.ok(r.stats.answerTokens > 0);
    assert.equal(c.answer, r.answer);
    // The scripted model answers with its script's answer once it reads a "</think>" (see
    // test/fixtures/onnx/scripted.ts): the whole answer proves the closing tokens were fed to it.
    assert.equal(r.answer, expected.answer);
    assert.equal(r.codeBlocks.length, 1);
  });

  it('cancels within one step from onEvent, keeps the partial text, and the next request works', async () => {
    const ac = new AbortController();
    let seen = 0;
    const c = await collect(engine, ASK, {
      temperature: 0,
      signal: ac.signal,
      onEvent: () => {
        seen++;
        if (seen === 5) ac.abort();
      },
    });
    const r = c.result;
    assert.equal(r.status, 'cancelled');
    assert.ok(r.reasoning.length > 0);
    assert.ok(expected.reasoning.startsWith(r.reasoning), 'the partial reasoning is a prefix of the script');
    // No step ran after the abort: the tokens counted are those decoded up to the 5th event.
    const generated = r.stats.reasoningTokens + r.stats.answerTokens;
    assert.ok(generated <= 6, `${generated} tokens generated after abort at the 5th event`);
    assert.equal(r.answer, '');

    const again = await collect(engine, ASK, { temperature: 0 });
    assertScript(again.result, again);
  });

  it('a follow-up that replays the fix prompt\'s user turn (result.userTurn) reuses its KV rows', async () => {
    const code = Array.from({ length: 40 }, (_, i) => `  const v${i} = parsePort(values[${i}]);`).join('\n');
    const fix: PromptRequest = {
      kind: 'fix',
      context: { filePath: 'src/port.ts', language: 'typescript', code, selection: { startLine: 3, endLine: 42 }, diagnostics: [] },
    };
    const first = await engine.generate(fix, { temperature: 0 });
    assert.equal(first.status, 'complete', first.error);
    assert.ok(first.userTurn?.includes('parsePort(values[39])'), 'the user turn carries the code');
    const followUp = await engine.generate(
      {
        kind: 'ask',
        question: 'Why throw instead of returning NaN?',
        context: {},
        history: [
          { role: 'user', content: first.userTurn! },
          { role: 'assistant', content: first.answer },
        ],
      },
      { temperature: 0 },
    );
    assert.equal(followUp.status, 'complete', followUp.error);
    const userTurnTokens = engine.tokenizer.encode(first.userTurn!).length;
    assert.ok(first.stats.promptTokens > 300, `a long fix prompt: ${first.stats.promptTokens}`);
    // Everything up to the end of the replayed user turn is reused: the prompts part where the
    // first one opened <think> and the follow-up carries the earlier answer.
    assert.ok(
      followUp.stats.reusedPromptTokens >= userTurnTokens,
      `reused ${followUp.stats.reusedPromptTokens} of the fix prompt's ${first.stats.promptTokens} tokens (user turn: ${userTurnTokens})`,
    );
  });

  it('an abort from a timer is observed between steps', async () => {
    const ac = new AbortController();
    const timer = setTimeout(() => ac.abort(), 1);
    const r = await engine.generate(ASK, { temperature: 0, signal: ac.signal });
    clearTimeout(timer);
    assert.equal(r.status, 'cancelled');
    assert.ok(r.stats.reasoningTokens + r.stats.answerTokens < scriptIds.length);
  });

  it('an already aborted signal returns cancelled without generating', async () => {
    const ac = new AbortController();
    ac.abort();
    const r = await engine.generate(ASK, { temperature: 0, signal: ac.signal });
    assert.equal(r.status, 'cancelled');
    assert.equal(r.stats.reasoningTokens + r.stats.answerTokens, 0);
  });

  it("stops with status 'length' at maxNewTokens", async () => {
    const r = await engine.generate(ASK, { temperature: 0, maxNewTokens: 20 });
    assert.equal(r.status, 'length');
    assert.equal(r.stats.reasoningTokens + r.stats.answerTokens, 20);
    assert.equal(r.reasoning, engine.tokenizer.decode(scriptIds.slice(0, 20)).trim());
  });

  it('generates past eos when stopOnEos is false (benchmarks), until maxNewTokens', async () => {
    const n = scriptIds.length + 5;
    const r = await engine.generate(ASK, { temperature: 0, maxNewTokens: n, stopOnEos: false });
    assert.equal(r.status, 'length');
    assert.equal(r.stats.reasoningTokens + r.stats.answerTokens, n);
  });

  it('generateFromIds refuses a prompt that does not fit, and bad ids, with a ModelError', async () => {
    const ids = engine.tokenizer.encode('hello world');
    await assert.rejects(
      engine.generateFromIds(ids, { contextWindow: 64, maxNewTokens: 63 }),
      (e: unknown) => e instanceof ModelError && e.code === 'prompt-too-long' && /context window of 64/.test(e.message),
    );
    await assert.rejects(engine.generateFromIds([], {}), (e: unknown) => e instanceof ModelError && e.code === 'invalid-request');
    await assert.rejects(engine.generateFromIds([1, 999999999], {}), (e: unknown) => e instanceof ModelError && e.code === 'invalid-request');
    // The engine is still usable.
    const think = engine.tokenizer.encode('<｜User｜>hi<｜Assistant｜><think>\n');
    const r = await engine.generateFromIds(think, { temperature: 0 });
    assert.equal(r.status, 'complete');
    assert.equal(r.answer, expected.answer);
  });

  it('runs one generation at a time', async () => {
    const first = engine.generate(ASK, { temperature: 0, maxNewTokens: 30 });
    await assert.rejects(engine.generate(ASK, { temperature: 0 }), (e: unknown) => e instanceof ModelError && e.code === 'busy');
    assert.equal((await first).status, 'length');
  });

  it('returns status error, not a throw, when a listener fails mid-run', async () => {
    let n = 0;
    const r = await engine.generate(ASK, {
      temperature: 0,
      onEvent: () => {
        if (++n === 3) throw new Error('listener broke');
      },
    });
    assert.equal(r.status, 'error');
    assert.match(r.error ?? '', /listener broke/);
    const ok = await engine.generate(ASK, { temperature: 0 });
    assert.equal(ok.status, 'complete');
  });
});

/**
 * Long prompts on a 4-layer scripted model: the same script, a tenth of the KV cache to copy per
 * step (onnxruntime-node copies every output into JavaScript memory at each run), so the tests
 * stay quick. The 28-layer fixture above runs the short prompts.
 */
describe('R1Engine.generate on the scripted model in the genai layout (genai_config.json, no position_ids)', () => {
  let engine: R1Engine;
  let scriptIds: number[];
  before(async () => {
    engine = await R1Engine.load({ modelDir: await ensureFixture('scripted-genai'), provider: 'cpu' });
    scriptIds = await encodeScript(DEFAULT_SCRIPT);
  });
  after(async () => engine.dispose());

  it('reads the folder as genai, feeds no position_ids, and reproduces the script', async () => {
    assert.equal(engine.info.layout, 'genai');
    assert.equal(engine.decoder.signature.feedsPositionIds, false);
    const c = await collect(engine, ASK, { temperature: 0 });
    checkScript(c.result, c, scriptIds);
  });

  it('closes the reasoning at the thinking budget (several tokens in one step) and the answer follows', async () => {
    const r = (await collect(engine, ASK, { temperature: 0, thinkingBudget: 12 })).result;
    assert.equal(r.stats.thinkingBudgetHit, true);
    assert.equal(r.answer, expected.answer);
  });
});

describe('R1Engine.generate with long prompts (4-layer scripted model)', () => {
  let engine: R1Engine;
  let scriptIds: number[];
  before(async () => {
    const dir = join(FIXTURES_DIR, 'runtime-scripted-4layers');
    await buildScriptedModel(dir, { numLayers: 4 });
    engine = await R1Engine.load({ modelDir: dir, provider: 'cpu' });
    scriptIds = await encodeScript(DEFAULT_SCRIPT);
  });
  after(async () => engine.dispose());
  const assertScript = (r: GenerationResult, streamed: { reasoning: string; answer: string }) => checkScript(r, streamed, scriptIds);

  it('reproduces the script after a ~2000-token prompt prefilled in small chunks', async () => {
    const req: PromptRequest = { kind: 'ask', question: 'What does value7 hold?', context: { filePath: 'src/values.ts', fileText: longFile(90) } };
    const c = await collect(engine, req, { temperature: 0, prefillChunkSize: 64 });
    assert.ok(c.result.stats.promptTokens >= 1800 && c.result.stats.promptTokens <= 3000, `prompt of ${c.result.stats.promptTokens} tokens`);
    assertScript(c.result, c);
  });

  it('reports context dropped to fit the context window', async () => {
    const history = [
      { role: 'user' as const, content: `Earlier question: ${'explain the loop in detail. '.repeat(60)}` },
      { role: 'assistant' as const, content: `Earlier answer: ${'the loop walks the list. '.repeat(60)}` },
    ];
    const req: PromptRequest = {
      kind: 'ask',
      question: 'What does value3 hold?',
      history,
      context: { filePath: 'src/values.ts', fileText: longFile(120), selection: { startLine: 3, endLine: 4 } },
    };
    const contextWindow = 1024;
    const maxNewTokens = 300;
    const r = await engine.generate(req, { temperature: 0, contextWindow, maxNewTokens });
    assert.ok(r.truncation.length >= 1, 'something was dropped');
    assert.ok(r.truncation.some((t) => t.part === 'turn'));
    assert.ok(r.truncation.every((t) => t.droppedTokens > 0 && t.detail.length > 0));
    assert.ok(r.stats.promptTokens + maxNewTokens <= contextWindow);
    assert.equal(r.status, 'complete', r.error);
    assert.equal(r.answer, expected.answer);
  });
});
