/**
 * `r1 ask` and `r1 info` (spawned, like cli.test.ts) on the newer architectures of the R1 family:
 * the scripted R1-Distill-Llama-8B (its DirectML build's layout, float16 KV) and R1-0528-Qwen3-8B
 * (CPU build), and a tiny random R1-0528-Qwen3 for `r1 info`.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { resolve } from 'node:path';
import { describe, it } from 'node:test';
import { ARCH_FACTS } from '../../fixtures/archs';
import { type FixtureName, ensureFixture } from '../../fixtures/models';

const ROOT = resolve(__dirname, '../../..');

function r1(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((done, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args], { cwd: ROOT, env: { ...process.env, NO_COLOR: '1' }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => done({ code, stdout, stderr }));
  });
}

const SCRIPTED: Array<{ arch: 'llama' | 'qwen3'; fixture: FixtureName; variant: string; kv: string }> = [
  { arch: 'llama', fixture: 'scripted-llama', variant: 'q4f16', kv: 'float16' },
  { arch: 'qwen3', fixture: 'scripted-qwen3', variant: 'q4', kv: 'float32' },
];

for (const c of SCRIPTED) {
  const facts = ARCH_FACTS[c.arch];
  describe(`r1 on the scripted ${c.arch} model (${facts.model})`, () => {
    it('ask --json: the script, split into reasoning and answer at the folder\'s </think>', async () => {
      const model = await ensureFixture(c.fixture);
      const r = await r1(['ask', '--model', model, '--json', '--temperature', '0', '--provider', 'cpu', 'Why does parsePort return a string?']);
      assert.equal(r.code, 0, r.stderr);
      const out = JSON.parse(r.stdout.trim()) as { status: string; reasoning: string; answer: string; codeBlocks: Array<{ language: string }>; stats: { variant: string; reasoningTokens: number; answerTokens: number } };
      assert.equal(out.status, 'complete');
      assert.match(out.reasoning, /^Okay, the user wants me to fix `parsePort`/);
      assert.ok(!out.reasoning.includes('think>'), 'no tag in the reasoning');
      assert.match(out.answer, /^`parsePort` returned the input string on bad input/);
      assert.equal(out.codeBlocks[0]?.language, 'typescript');
      assert.equal(out.stats.variant, c.variant);
    });

    it('ask with a thinking budget: the reasoning is closed and the answer follows', async () => {
      const model = await ensureFixture(c.fixture);
      const r = await r1(['ask', '--model', model, '--json', '--temperature', '0', '--provider', 'cpu', '--thinking-budget', '10', 'Why?']);
      assert.equal(r.code, 0, r.stderr);
      const out = JSON.parse(r.stdout.trim()) as { status: string; answer: string; stats: { reasoningTokens: number; thinkingBudgetHit: boolean } };
      assert.equal(out.status, 'complete');
      assert.equal(out.stats.thinkingBudgetHit, true);
      assert.equal(out.stats.reasoningTokens, 10);
      assert.match(out.answer, /^`parsePort` returned the input string on bad input/);
    });

    it('info: the architecture, the genai layout and the real KV shape', async () => {
      const model = await ensureFixture(c.fixture);
      const r = await r1(['info', '--model', model, '--provider', 'cpu']);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, new RegExp(`config\\s+${c.arch}: ${facts.scriptedLayers} layers, hidden ${facts.real.hiddenSize}, ${facts.real.numHeads} heads, ${facts.real.numKvHeads} KV heads of 128, vocab ${facts.vocabSize}`));
      assert.match(r.stdout, /layout\s+genai/);
      assert.match(r.stdout, new RegExp(`past_key_values\\.\\{0\\.\\.${facts.scriptedLayers - 1}\\}\\.\\{key,value\\} ${c.kv}\\[batch_size, 8, past_sequence_length, 128\\]`));
      // Both exports rotate q and k in RotaryEmbedding nodes: position_ids is an input.
      assert.match(r.stdout, /input\s+position_ids int64/);
    });
  });
}

describe('r1 info on the tiny R1-0528-Qwen3 (CPU int4 build)', () => {
  it('--json: model type qwen3, the prepared copy\'s steps, eos from genai_config.json', async () => {
    const model = await ensureFixture('tiny-qwen3-genai-cpu');
    const r = await r1(['info', '--model', model, '--json', '--provider', 'cpu']);
    assert.equal(r.code, 0, r.stderr);
    const info = JSON.parse(r.stdout) as { layout: string; config: { modelType: string }; eosTokenIds: number[]; preparedCopy?: { steps: Array<{ step: string; applied: boolean; detail: string }> } };
    assert.equal(info.layout, 'genai');
    assert.equal(info.config.modelType, 'qwen3');
    assert.deepEqual(info.eosTokenIds, [ARCH_FACTS.qwen3.eosId]);
    const attention = info.preparedCopy?.steps.find((s) => s.step === 'fused attention');
    assert.equal(attention?.detail, 'the attention already is GroupQueryAttention');
  });
});
