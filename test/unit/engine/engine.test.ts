/** R1Engine.load: progress, the info it reports, provider fallback and variant per provider. */
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import * as ort from 'onnxruntime-node';
import { type EngineInternals, R1Engine } from '../../../src/engine/engine';
import { ModelError } from '../../../src/engine/errors';
import type { PlatformProbe } from '../../../src/engine/providers';
import type { LoadProgress } from '../../../src/engine/types';
import { ensureFixture } from '../../fixtures/models';

const linuxWithCuda: PlatformProbe = {
  platform: 'linux',
  arch: 'x64',
  supportedBackends: ['cpu', 'webgpu', 'cuda'],
  cudaLibraryPresent: true,
};

/** Creates real CPU sessions, but pretends the GPU providers in `failing` fail and others work. */
function simulated(failing: string[]) {
  const calls: Array<{ file: string; options: ort.InferenceSession.SessionOptions }> = [];
  const createSession: EngineInternals['createSession'] = async (file, options) => {
    calls.push({ file, options });
    const ep = String(options.executionProviders?.[0]);
    if (failing.includes(ep)) throw new Error(`simulated: ${ep} is not available`);
    return ort.InferenceSession.create(file, { ...options, executionProviders: ['cpu'] });
  };
  return { calls, internals: { probe: linuxWithCuda, createSession } satisfies EngineInternals };
}

describe('R1Engine.load', () => {
  let tmp: string;
  let twoVariants: string;
  before(async () => {
    tmp = mkdtempSync(join(tmpdir(), 'r1-engine-'));
    // A folder with both q4 (fp32 KV) and q4f16 (fp16 KV) files of the tiny model.
    const tiny = await ensureFixture('tiny-qwen2');
    const tinyF16 = await ensureFixture('tiny-qwen2-f16kv');
    twoVariants = join(tmp, 'two');
    mkdirSync(join(twoVariants, 'onnx'), { recursive: true });
    for (const f of ['config.json', 'generation_config.json', 'tokenizer.json', 'tokenizer_config.json']) copyFileSync(join(tiny, f), join(twoVariants, f));
    symlinkSync(join(tiny, 'onnx', 'model_q4.onnx'), join(twoVariants, 'onnx', 'model_q4.onnx'));
    symlinkSync(join(tinyF16, 'onnx', 'model_q4f16.onnx'), join(twoVariants, 'onnx', 'model_q4f16.onnx'));
  });
  after(() => rmSync(tmp, { recursive: true, force: true }));

  it('reports progress through every stage and describes the model', async () => {
    const events: LoadProgress[] = [];
    const engine = await R1Engine.load({ modelDir: await ensureFixture('scripted'), provider: 'cpu', onProgress: (e) => events.push(e) });
    try {
      assert.deepEqual(
        [...new Set(events.map((e) => e.stage))],
        ['config', 'tokenizer', 'session', 'validate', 'ready'],
      );
      assert.equal(events.at(-1)!.fraction, 1);
      const info = engine.info;
      assert.equal(info.provider, 'cpu');
      assert.deepEqual(info.attempts, [{ provider: 'cpu', ok: true }]);
      assert.equal(info.variant, 'q4');
      assert.deepEqual(info.availableVariants, ['q4']);
      assert.match(info.modelFile, /onnx\/model_q4\.onnx$/);
      assert.equal(info.config.numHiddenLayers, 28);
      assert.equal(info.config.headDim, 128);
      assert.equal(info.signature.numLayers, 28);
      assert.equal(info.signature.kvDtype, 'float32');
      // input_ids, attention_mask, position_ids, the prepared copy's r1_logit_count, past_key_values.*
      assert.equal(info.signature.inputs.length, 4 + 56);
      assert.equal(info.signature.outputs.length, 1 + 56);
      assert.ok(info.eosTokenIds.includes(151643));
      assert.deepEqual(info.generationDefaults, { temperature: 0.6, topP: 0.95 });
      assert.ok(info.loadMs >= 0);
    } finally {
      await engine.dispose();
    }
  });

  it('falls back past failing GPU providers, records why, and creates the CPU session once', async () => {
    const sim = simulated(['cuda', 'webgpu']);
    const engine = await R1Engine.load({ modelDir: twoVariants, cpuThreads: 1, graphOptimizationLevel: 'basic' }, sim.internals);
    try {
      assert.equal(engine.info.provider, 'cpu');
      assert.deepEqual(
        engine.info.attempts.map((a) => [a.provider, a.ok, a.reason]),
        [
          ['cuda', false, 'simulated: cuda is not available'],
          ['webgpu', false, 'simulated: webgpu is not available'],
          ['cpu', true, undefined],
        ],
      );
      // GPU attempts asked for q4f16, the CPU for q4.
      assert.deepEqual(
        sim.calls.map((c) => [c.options.executionProviders, c.file.endsWith('model_q4f16.onnx') ? 'q4f16' : 'q4']),
        [
          [['cuda'], 'q4f16'],
          [['webgpu'], 'q4f16'],
          [['cpu'], 'q4'],
        ],
      );
      const cpuCall = sim.calls[2]!.options;
      assert.equal(cpuCall.intraOpNumThreads, 1);
      assert.equal(cpuCall.graphOptimizationLevel, 'basic');
      assert.equal(engine.info.variant, 'q4');
      assert.equal(engine.info.signature.kvDtype, 'float32');
      // The session is reused across requests.
      for (let i = 0; i < 2; i++) {
        const r = await engine.generate({ kind: 'ask', question: 'hi', context: {} }, { temperature: 0, maxNewTokens: 4, stopOnEos: false });
        assert.equal(r.status, 'length');
        assert.equal(r.stats.provider, 'cpu');
      }
      assert.equal(sim.calls.length, 3);
    } finally {
      await engine.dispose();
    }
  });

  it('a GPU provider that works gets the q4f16 variant (fp16 KV cache)', async () => {
    const sim = simulated([]);
    const engine = await R1Engine.load({ modelDir: twoVariants }, sim.internals);
    try {
      assert.equal(engine.info.provider, 'cuda');
      assert.equal(engine.info.variant, 'q4f16');
      assert.equal(engine.info.signature.kvDtype, 'float16');
      assert.ok(engine.info.notes.some((n) => /only the cuda provider/.test(n)));
      const r = await engine.generate({ kind: 'ask', question: 'hi', context: {} }, { temperature: 0, maxNewTokens: 3, stopOnEos: false });
      assert.equal(r.stats.variant, 'q4f16');
      assert.equal(r.stats.provider, 'cuda');
    } finally {
      await engine.dispose();
    }
  });

  it('an explicit variant wins over the provider preference', async () => {
    const engine = await R1Engine.load({ modelDir: twoVariants, provider: 'cpu', variant: 'q4f16' });
    try {
      assert.equal(engine.info.variant, 'q4f16');
      assert.equal(engine.info.signature.kvDtype, 'float16');
    } finally {
      await engine.dispose();
    }
  });

  it('refuses to run after dispose', async () => {
    const engine = await R1Engine.load({ modelDir: await ensureFixture('scripted'), provider: 'cpu' });
    await engine.dispose();
    await assert.rejects(engine.generateFromIds([1, 2, 3]), (e: unknown) => e instanceof ModelError && /disposed/.test(e.message));
  });

  it('a throwing progress listener does not break loading', async () => {
    const engine = await R1Engine.load({
      modelDir: await ensureFixture('scripted'),
      provider: 'cpu',
      onProgress: () => {
        throw new Error('listener');
      },
    });
    await engine.dispose();
  });
});
