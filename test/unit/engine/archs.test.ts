/**
 * The engine on the R1 family's newer architectures (issue 15, section 1), every model-specific
 * fact read from the folder:
 * - llama (R1-Distill-Llama-8B): Llama 3 tokenizer, eos 128001, `<think>` 128013, `</think>` 128014;
 * - qwen3 (R1-0528-Qwen3-8B): R1-0528's tokenizer configuration and template (a system prompt, no
 *   forced `<think>`: the model opens it), eos 151645, `</think>` 151668.
 * Tiny random models in their exports' layouts (onnxruntime-genai's builder: DirectML int4 for
 * llama, CPU int4 for qwen3, plus llama's CPU build) decode with the KV cache exactly as without it,
 * as exported and prepared; scripted models with the real KV shapes reproduce their script, split it
 * at the folder's `</think>`, and the thinking budget closes the reasoning with that token.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { buildBenchModel } from '../../../bench/model';
import { R1Engine } from '../../../src/engine/engine';
import { attentionShapeOf, sameLogits } from '../../../src/engine/graph/check';
import { prepareModelForCpu } from '../../../src/engine/graph/prepare';
import { readModelConfig } from '../../../src/engine/modelFolder';
import { buildPrompt, renderChat } from '../../../src/engine/prompt';
import { ReasoningSplitter } from '../../../src/engine/reasoning';
import { R1Tokenizer } from '../../../src/engine/tokenizer';
import type { PromptRequest } from '../../../src/engine/types';
import { ARCH_FACTS } from '../../fixtures/archs';
import { DEFAULT_SCRIPT, type FixtureName, buildLayoutModel, encodeScript, ensureFixture } from '../../fixtures/models';
import { ASSISTANT_TOKEN, BOS_TOKEN, EOS_TOKEN, USER_TOKEN } from '../../fixtures/tokenizer';

const cacheDir = mkdtempSync(join(tmpdir(), 'r1-archs-'));
after(() => rmSync(cacheDir, { recursive: true, force: true }));

const ASK: PromptRequest = { kind: 'ask', question: 'Why does parsePort return a string?', context: {} };

function split(text: string): { reasoning: string; answer: string } {
  const s = new ReasoningSplitter();
  s.push(text);
  s.end();
  return { reasoning: s.reasoning, answer: s.answer };
}

describe("the folder's chat template decides how the reply starts", () => {
  let qwen3: R1Tokenizer;
  let llama: R1Tokenizer;
  before(async () => {
    qwen3 = await R1Tokenizer.fromFolder(await ensureFixture('tokenizer-qwen3'));
    llama = await R1Tokenizer.fromFolder(await ensureFixture('tokenizer-llama'));
  });

  it("R1-0528's template renders a system prompt and needs no forced <think>: the model opens it", () => {
    assert.equal(renderChat(qwen3, [{ role: 'user', content: 'hi' }]), `${BOS_TOKEN}${USER_TOKEN}hi${ASSISTANT_TOKEN}`);
    const withSystem = renderChat(qwen3, [{ role: 'user', content: 'hi' }], { system: 'You review TypeScript.' });
    assert.equal(withSystem, `${BOS_TOKEN}You review TypeScript.${USER_TOKEN}hi${ASSISTANT_TOKEN}`);
    const ids = qwen3.encode(withSystem);
    assert.equal(ids[0], ARCH_FACTS.qwen3.bosId);
    assert.equal(ids.at(-1), ARCH_FACTS.qwen3.assistantId);
    assert.ok(!ids.includes(qwen3.thinkStartId!), 'no <think> in the prompt');
  });

  it('R1-0528: earlier turns carry their answers only, the conversation ends at <｜Assistant｜>', () => {
    const text = renderChat(qwen3, [
      { role: 'user', content: 'What does `sum` return?' },
      { role: 'assistant', content: '<think>\nIt adds.\n</think>\n\nThe total.' },
      { role: 'user', content: 'And for []?' },
    ]);
    assert.equal(text, `${BOS_TOKEN}${USER_TOKEN}What does \`sum\` return?${ASSISTANT_TOKEN}The total.${EOS_TOKEN}${USER_TOKEN}And for []?${ASSISTANT_TOKEN}`);
  });

  it("R1-Distill-Llama's template (the distills' newer revision) ends in <think>\\n, with the Llama ids", () => {
    const text = renderChat(llama, [{ role: 'user', content: 'hi' }]);
    assert.equal(text, `${BOS_TOKEN}${USER_TOKEN}hi${ASSISTANT_TOKEN}<think>\n`);
    const ids = llama.encode(text);
    assert.deepEqual(ids.slice(0, 2), [ARCH_FACTS.llama.bosId, 128011]);
    assert.deepEqual(ids.slice(-3), [ARCH_FACTS.llama.assistantId, ARCH_FACTS.llama.thinkId, 198]);
  });

  it('the prompts of R1 Coder work for each: the same user turn, each template around it', () => {
    for (const tok of [llama, qwen3]) {
      const p = buildPrompt(tok, ASK, { contextWindow: 4096, maxNewTokens: 1024 });
      assert.ok(p.text.includes(p.userTurn));
      assert.match(p.userTurn, /Question: Why does parsePort return a string\?/);
      assert.deepEqual(p.ids, tok.encode(p.text));
    }
  });
});

interface TinyCase {
  fixture: FixtureName;
  arch: 'llama' | 'qwen3';
  what: string;
  /** Largest difference between cached and no-cache logits, relative to the largest logit. */
  tolerance: number;
  /** The prepared copy's steps that apply. */
  steps: string[];
}

const TINY: TinyCase[] = [
  { fixture: 'tiny-llama-genai-gpu', arch: 'llama', what: 'DirectML int4 build (float16, q/k/v apart, RotaryEmbedding nodes)', tolerance: 1e-2, steps: ['int8 compute', 'last-position logits', 'fused matrix products'] },
  { fixture: 'tiny-llama-genai-cpu', arch: 'llama', what: 'CPU int4 build (packed q/k/v, rotary in the attention)', tolerance: 1e-3, steps: ['last-position logits', 'new KV rows only', 'fused matrix products', 'decode attention'] },
  { fixture: 'tiny-qwen3-genai-cpu', arch: 'qwen3', what: 'CPU int4 build (q/k norms, RotaryEmbedding nodes)', tolerance: 1e-3, steps: ['last-position logits', 'new KV rows only', 'fused matrix products', 'decode attention'] },
];

const PROMPT_LEN = 60;

for (const c of TINY) {
  const facts = ARCH_FACTS[c.arch];
  describe(`${c.arch}: ${facts.model}, ${c.what}`, () => {
    const prompt = Array.from({ length: PROMPT_LEN }, (_, i) => (i * 7919 + 11) % 120000);
    prompt.unshift(facts.bosId);

    async function load(prepareForCpu: boolean): Promise<R1Engine> {
      return R1Engine.load({ modelDir: await ensureFixture(c.fixture), provider: 'cpu', prepareForCpu, cacheDir, cpuThreads: 1 });
    }

    it("reads the architecture and the folder's own token ids", async () => {
      const e = await load(false);
      try {
        assert.equal(e.info.config.modelType, c.arch);
        assert.equal(e.info.layout, 'genai');
        assert.deepEqual(e.info.eosTokenIds, [facts.eosId]);
        assert.equal(e.tokenizer.bosTokenId, facts.bosId);
        assert.equal(e.tokenizer.thinkStartId, facts.thinkId);
        assert.equal(e.tokenizer.thinkEndId, facts.thinkEndId);
        assert.equal(e.info.config.vocabSize, facts.vocabSize);
      } finally {
        await e.dispose();
      }
    });

    it('greedy decoding with the KV cache picks what full runs pick, as exported and prepared; the prepared copy says which steps applied', async () => {
      for (const prepared of [false, true]) {
        const e = await load(prepared);
        try {
          const d = e.decoder;
          const vocab = e.info.config.vocabSize;
          const argmax = (l: Float32Array) => l.reduce((best, v, i) => (v > l[best]! ? i : best), 0);
          d.reset();
          let logits = await d.prefill(prompt, 16);
          const cachedLogits = [logits.slice()];
          const tokens: number[] = [];
          for (let k = 0; k < 6; k++) {
            tokens.push(argmax(logits.subarray(0, vocab)));
            logits = await d.forward([tokens[k]!]);
            cachedLogits.push(logits.slice());
          }
          for (let k = 0; k < tokens.length; k++) {
            d.reset();
            const full = await d.forward([...prompt, ...tokens.slice(0, k)]);
            assert.equal(argmax(full), tokens[k], `${prepared ? 'prepared' : 'as exported'}: token ${k}`);
            let scale = 0;
            let diff = 0;
            for (let i = 0; i < vocab; i++) {
              scale = Math.max(scale, Math.abs(full[i]!));
              diff = Math.max(diff, Math.abs(full[i]! - cachedLogits[k]![i]!));
            }
            assert.ok(diff / scale < c.tolerance, `${prepared ? 'prepared' : 'as exported'}: step ${k} differs by ${diff / scale} of the largest logit`);
          }
          if (prepared) {
            const steps = e.info.preparedCopy?.steps ?? [];
            assert.deepEqual(steps.filter((s) => s.applied).map((s) => s.step), c.steps, e.info.notes.join('\n'));
            assert.equal(steps.find((s) => s.step === 'fused attention')?.detail, 'the attention already is GroupQueryAttention');
          }
        } finally {
          await e.dispose();
        }
      }
    });
  });
}

for (const arch of ['llama', 'qwen3'] as const) {
  const facts = ARCH_FACTS[arch];
  describe(`scripted ${arch} (${facts.model}'s tokenizer, template and KV shape)`, () => {
    let engine: R1Engine;
    let scriptIds: number[];
    const expected = split(DEFAULT_SCRIPT);
    before(async () => {
      engine = await R1Engine.load({ modelDir: await ensureFixture(arch === 'llama' ? 'scripted-llama' : 'scripted-qwen3'), provider: 'cpu' });
      scriptIds = await encodeScript(facts.scriptPrefix + DEFAULT_SCRIPT, arch);
    });
    after(async () => engine.dispose());

    it("the prompt ends as the folder's template says: <think>\\n for the distill, <｜Assistant｜> for R1-0528", () => {
      const { ids } = buildPrompt(engine.tokenizer, ASK, { contextWindow: 8192, maxNewTokens: 1024 });
      if (arch === 'llama') assert.deepEqual(ids.slice(-3), [facts.assistantId, facts.thinkId, 198]);
      else assert.equal(ids.at(-1), facts.assistantId);
      assert.equal(ids[0], facts.bosId);
    });

    it("reproduces its script, split at the folder's </think>, and stops at the folder's eos", async () => {
      let streamedReasoning = '';
      let streamedAnswer = '';
      const r = await engine.generate(ASK, {
        temperature: 0,
        onEvent: (ev) => {
          if (ev.kind === 'reasoning') streamedReasoning += ev.text;
          else streamedAnswer += ev.text;
        },
      });
      assert.equal(r.status, 'complete', r.error);
      assert.equal(r.reasoning, expected.reasoning);
      assert.equal(r.answer, expected.answer);
      assert.equal(streamedReasoning, r.reasoning);
      assert.equal(streamedAnswer, r.answer);
      assert.ok(!r.reasoning.includes('<think>') && !r.reasoning.includes('</think>'));
      assert.equal(r.stats.reasoningTokens + r.stats.answerTokens, scriptIds.length, 'every script token, then eos');
      assert.equal(r.codeBlocks.length, 1);
      assert.equal(r.codeBlocks[0]!.language, 'typescript');
      assert.deepEqual(engine.info.eosTokenIds, [facts.eosId]);
    });

    it("the thinking budget closes the reasoning with the folder's </think>, and the answer follows", async () => {
      const budget = 12;
      const r = await engine.generate(ASK, { temperature: 0, thinkingBudget: budget });
      assert.equal(r.status, 'complete', r.error);
      assert.equal(r.stats.thinkingBudgetHit, true);
      assert.equal(r.stats.reasoningTokens, budget);
      assert.equal(r.reasoning, split(engine.tokenizer.decode(scriptIds.slice(0, budget))).reasoning);
      // The scripted model jumps to its answer only when it reads its own </think> id (channel 1 of
      // its KV flags): the whole answer proves the engine fed the folder's token.
      assert.equal(r.answer, expected.answer);
    });

    it('a follow-up replays the answer only and reuses the earlier prompt', async () => {
      const first = await engine.generate(ASK, { temperature: 0 });
      const followUp = await engine.generate(
        { kind: 'ask', question: 'Why throw?', context: {}, history: [{ role: 'user', content: first.userTurn! }, { role: 'assistant', content: `<think>\n${first.reasoning}\n</think>\n\n${first.answer}` }] },
        { temperature: 0 },
      );
      assert.equal(followUp.status, 'complete', followUp.error);
      assert.equal(followUp.answer, expected.answer);
      assert.ok(followUp.stats.reusedPromptTokens >= engine.tokenizer.encode(first.userTurn!).length, `reused ${followUp.stats.reusedPromptTokens}`);
    });
  });
}

describe('the prepared copy of hub-layout (MultiHeadAttention) graphs of the newer architectures', () => {
  // No such export is published (both are genai builds), but a user may make one with the builder.
  for (const arch of ['llama', 'qwen3'] as const) {
    it(`${arch}: the fused attention keeps the export's rotary tables (and q/k norms), and passes the check`, async () => {
      const dir = join(cacheDir, `hub-${arch}`);
      await buildLayoutModel(dir, { layout: 'onnx-community', arch });
      const plain = await R1Engine.load({ modelDir: dir, variant: 'q4', provider: 'cpu', prepareForCpu: false, cacheDir, cpuThreads: 1 });
      let want: Float32Array;
      const prompt = [ARCH_FACTS[arch].bosId, ...Array.from({ length: 40 }, (_, i) => (i * 7919 + 3) % 120000)];
      try {
        plain.decoder.reset();
        want = (await plain.decoder.prefill(prompt, 8)).slice();
      } finally {
        await plain.dispose();
      }
      const e = await R1Engine.load({ modelDir: dir, variant: 'q4', provider: 'cpu', cacheDir, cpuThreads: 1 });
      try {
        const steps = e.info.preparedCopy?.steps ?? [];
        assert.deepEqual(steps.filter((s) => s.applied).map((s) => s.step), ['int8 compute', 'last-position logits', 'new KV rows only', 'fused matrix products', 'fused attention', 'decode attention'], e.info.notes.join('\n'));
        e.decoder.reset();
        const got = await e.decoder.prefill(prompt, 16);
        let scale = 0;
        let diff = 0;
        for (let i = 0; i < want.length; i++) {
          scale = Math.max(scale, Math.abs(want[i]!));
          diff = Math.max(diff, Math.abs(want[i]! - got[i]!));
        }
        assert.ok(diff / scale < 0.05, `prepared and exported logits differ by ${diff / scale} of the largest logit`);
      } finally {
        await e.dispose();
      }
    });
  }

  it('a graph without rotary nodes to reuse: q/k norms, or a rope scaling it cannot compute, leave the attention as exported, with the reason', async () => {
    // The benchmark's tiny q4 model: standard ops, its rotary computed from position_ids (no RotaryEmbedding node).
    const { dir, manifest } = await buildBenchModel({ shape: 'tiny' });
    const source = join(dir, manifest.file);
    const config = readModelConfig(dir);
    const verify = (a: string, b: string) => sameLogits(a, b, config, { executionProviders: ['cpu'], intraOpNumThreads: 1 });
    const norms = await prepareModelForCpu(source, { cacheDir: join(cacheDir, 'qk-norm'), attentionShape: { ...attentionShapeOf(config), qkNorm: true }, verify });
    assert.equal(norms.attentionLayers, 0);
    assert.match(norms.steps?.find((s) => s.step === 'fused attention')?.detail ?? '', /^not attempted: the model normalizes q and k before the rotary embedding/);
    const yarn = await prepareModelForCpu(source, { cacheDir: join(cacheDir, 'yarn'), attentionShape: { ...attentionShapeOf(config), ropeScaling: { kind: 'other', type: 'yarn' } }, verify });
    assert.equal(yarn.attentionLayers, 0);
    assert.match(yarn.steps?.find((s) => s.step === 'fused attention')?.detail ?? '', /^not attempted: config\.json's rope_scaling \(yarn\) is not computed here/);
  });
});
