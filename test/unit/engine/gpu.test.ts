/**
 * GPU providers on a CPU machine: the auto order with the CUDA runtime check, which fallbacks
 * are worth a warning, a GPU session that is created but cannot run (it falls back), the WebGPU
 * session options, the device-resident KV cache bookkeeping against a simulated session, and the
 * real WebGPU path where an adapter exists (reported as not run, with the reason, where none does).
 */
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it, test } from 'node:test';
import * as ort from 'onnxruntime-node';
import { firstRunOnDevice, isDeviceTensor, presentNames, webgpuOutputLocations } from '../../../src/engine/device';
import { DEFAULT_NAMES } from '../../../src/engine/modelFolder';
import { type EngineInternals, R1Engine, sessionOptions } from '../../../src/engine/engine';
import { type PlatformProbe, createWithFallback, isNotableFallback, planProviders } from '../../../src/engine/providers';
import { DecoderSession } from '../../../src/engine/session';
import type { GraphSignature, ProviderAttempt } from '../../../src/engine/types';
import { ensureFixture } from '../../fixtures/models';

const linux = (over: Partial<PlatformProbe> = {}): PlatformProbe => ({
  platform: 'linux',
  arch: 'x64',
  supportedBackends: ['cpu', 'webgpu', 'cuda', 'tensorrt'],
  cudaLibraryPresent: true,
  ...over,
});

describe('auto order with the CUDA runtime check', () => {
  it('CUDA is tried only when the provider library AND the CUDA/cuDNN runtime are there', () => {
    assert.deepEqual(planProviders('auto', linux({ cudaRuntime: { ok: true, message: 'found' } })).order, ['cuda', 'webgpu', 'cpu']);
    const broken = planProviders('auto', linux({ cudaRuntime: { ok: false, message: 'Missing: libcudnn.so.9 (cuDNN 9).' } }));
    assert.deepEqual(broken.order, ['webgpu', 'cpu']);
    assert.equal(broken.skipped.length, 1);
    assert.equal(broken.skipped[0]!.skipped, 'broken');
    assert.match(broken.skipped[0]!.reason!, /runtime is incomplete\. Missing: libcudnn\.so\.9 \(cuDNN 9\)\./);
    const absent = planProviders('auto', linux({ cudaLibraryPresent: false }));
    assert.deepEqual(absent.order, ['webgpu', 'cpu']);
    assert.equal(absent.skipped[0]!.skipped, 'not-installed');
    assert.match(absent.skipped[0]!.reason!, /Install CUDA Support/);
  });

  it('an explicit cuda with a broken runtime is an error naming the missing library', () => {
    assert.throws(() => planProviders('cuda', linux({ cudaRuntime: { ok: false, message: 'Missing: libcublas.so.12 (CUDA 12 cuBLAS).' } })), /libcublas\.so\.12/);
  });

  it('providers this build lacks are skipped as unsupported', () => {
    const p = planProviders('auto', { platform: 'win32', arch: 'arm64', supportedBackends: ['cpu', 'dml'], cudaLibraryPresent: false });
    assert.deepEqual(p.order, ['dml', 'cpu']);
    assert.deepEqual(
      p.skipped.map((a) => [a.provider, a.skipped]),
      [['webgpu', 'unsupported']],
    );
  });

  it('warns about tried-and-failed and broken GPU providers, not about ones merely not installed', () => {
    const cases: Array<[ProviderAttempt, boolean]> = [
      [{ provider: 'webgpu', ok: false, reason: 'Failed to get a WebGPU adapter' }, true],
      [{ provider: 'cuda', ok: false, reason: 'runtime incomplete', skipped: 'broken' }, true],
      [{ provider: 'cuda', ok: false, reason: 'not installed', skipped: 'not-installed' }, false],
      [{ provider: 'webgpu', ok: false, reason: 'no webgpu in this build', skipped: 'unsupported' }, false],
      [{ provider: 'cuda', ok: true }, false],
      [{ provider: 'cpu', ok: false, reason: 'x' }, false],
    ];
    for (const [a, notable] of cases) assert.equal(isNotableFallback(a), notable, JSON.stringify(a));
  });

  it('records a simulated CUDA failure, then a WebGPU failure, and lands on the CPU', async () => {
    const r = await createWithFallback(planProviders('auto', linux({ cudaRuntime: { ok: true, message: '' } })), async (p) => {
      if (p === 'cuda') throw new Error('CUDA failure 35: CUDA driver version is insufficient for CUDA runtime version');
      if (p === 'webgpu') throw new Error('Failed to get a WebGPU adapter: No supported adapters');
      return p;
    });
    assert.equal(r.provider, 'cpu');
    assert.deepEqual(
      r.attempts.filter(isNotableFallback).map((a) => [a.provider, a.reason]),
      [
        ['cuda', 'CUDA failure 35: CUDA driver version is insufficient for CUDA runtime version'],
        ['webgpu', 'Failed to get a WebGPU adapter: No supported adapters'],
      ],
    );
  });
});

describe('WebGPU session options', () => {
  it('keeps every present.* on the device and brings logits to the host', () => {
    const o = sessionOptions('webgpu', { modelDir: '/m' }, 28);
    const loc = o.preferredOutputLocation as Record<string, string>;
    assert.equal(loc.logits, 'cpu');
    assert.equal(Object.keys(loc).length, 1 + 56);
    for (const n of presentNames(28)) assert.equal(loc[n], 'gpu-buffer', n);
    assert.deepEqual(webgpuOutputLocations(1), { logits: 'cpu', 'present.0.key': 'gpu-buffer', 'present.0.value': 'gpu-buffer' });
  });

  it('other providers keep the default (host) output location', () => {
    for (const p of ['cpu', 'cuda', 'dml', 'coreml'] as const) assert.equal(sessionOptions(p, { modelDir: '/m' }, 28).preferredOutputLocation, undefined, p);
  });
});

/** A decoder graph signature for the simulated session. */
function fakeSignature(numLayers: number, kvHeads: number, headDim: number): GraphSignature {
  const past = presentNames(numLayers).map((n) => ({ name: n.replace('present.', 'past_key_values.'), dtype: 'float16', shape: ['batch', kvHeads, 'past', headDim] }));
  return {
    inputs: [
      { name: 'input_ids', dtype: 'int64', shape: ['batch', 'seq'] },
      { name: 'attention_mask', dtype: 'int64', shape: ['batch', 'total'] },
      { name: 'position_ids', dtype: 'int64', shape: ['batch', 'seq'] },
      ...past,
    ],
    outputs: [{ name: 'logits', dtype: 'float32', shape: ['batch', 'seq', 8] }, ...presentNames(numLayers).map((n) => ({ name: n, dtype: 'float16', shape: ['batch', kvHeads, 'total', headDim] }))],
    numLayers,
    kvHeads,
    headDim,
    kvDtype: 'float16',
    logitsDtype: 'float32',
    names: { ...DEFAULT_NAMES },
    pastNames: past.map((p) => p.name),
    presentNames: presentNames(numLayers),
    feedsPositionIds: true,
    feedsLogitCount: false,
  };
}

/**
 * Behaves like onnxruntime-node with preferredOutputLocation 'gpu-buffer' for present.*: those
 * outputs are Tensor.fromGpuBuffer tensors whose dispose() releases the device memory.
 */
class DeviceSession {
  readonly feeds: Array<Record<string, ort.Tensor>> = [];
  readonly outputs: Array<Record<string, ort.Tensor>> = [];
  readonly disposed = new Map<ort.Tensor, number>();
  released = false;
  constructor(
    private readonly numLayers: number,
    private readonly vocab: number,
  ) {}
  async run(feeds: Record<string, ort.Tensor>): Promise<Record<string, ort.Tensor>> {
    this.feeds.push(feeds);
    const seq = feeds.input_ids!.dims[1]!;
    const total = feeds.attention_mask!.dims[1]!;
    const logits = new Float32Array(seq * this.vocab);
    // Row r favours token (step + r) % vocab, so the test can see which row came back.
    for (let r = 0; r < seq; r++) logits[r * this.vocab + ((this.feeds.length + r) % this.vocab)] = 1;
    const out: Record<string, ort.Tensor> = { logits: new ort.Tensor('float32', logits, [1, seq, this.vocab]) };
    for (const n of presentNames(this.numLayers)) {
      const t: ort.Tensor = ort.Tensor.fromGpuBuffer({} as never, {
        dataType: 'float16',
        dims: [1, 2, total, 4],
        dispose: () => this.disposed.set(t, (this.disposed.get(t) ?? 0) + 1),
      });
      out[n] = t;
    }
    this.outputs.push(out);
    return out;
  }
  async release(): Promise<void> {
    this.released = true;
  }
}

describe('KV cache kept on the device (simulated WebGPU session)', () => {
  it('feeds each step the previous present.* as they are and releases each old buffer exactly once', async () => {
    const layers = 3;
    const fake = new DeviceSession(layers, 8);
    const d = new DecoderSession(fake as unknown as ort.InferenceSession, fakeSignature(layers, 2, 4), 8);

    const l1 = await d.forward([1, 2, 3]);
    // Logits of the last of the 3 positions: row 2 of step 1 favours (1 + 2) % 8.
    assert.equal(l1.indexOf(1), 3);
    const firstPast = fake.feeds[0]!['past_key_values.0.key']!;
    assert.equal(firstPast.location, 'cpu', 'the first step starts from empty host tensors');
    assert.equal(d.cacheLocation(), 'gpu-buffer');
    assert.deepEqual(d.cacheDims(), [1, 2, 3, 4]);

    await d.forward([4]);
    await d.forward([5]);
    for (let step = 1; step < 3; step++) {
      for (const n of presentNames(layers)) {
        const fed = fake.feeds[step]![n.replace('present.', 'past_key_values.')]!;
        assert.equal(fed, fake.outputs[step - 1]![n], `step ${step + 1} is fed step ${step}'s ${n} itself`);
      }
    }
    // Steps 1 and 2 are released once each; step 3's cache is live.
    for (let step = 0; step < 3; step++) {
      for (const n of presentNames(layers)) assert.equal(fake.disposed.get(fake.outputs[step]![n]!) ?? 0, step < 2 ? 1 : 0, `step ${step + 1} ${n}`);
    }
    assert.equal(fake.feeds[2]!.attention_mask!.dims[1], 5);
    assert.ok(isDeviceTensor(fake.outputs[2]!['present.0.key']), 'the live cache is a device tensor');
    assert.ok(!isDeviceTensor(fake.outputs[0]!['present.0.key']), 'a released one is not (its location is none)');

    d.reset();
    for (const n of presentNames(layers)) assert.equal(fake.disposed.get(fake.outputs[2]![n]!), 1, 'reset releases the live cache');
    assert.equal(firstPast.location, 'cpu', 'the shared empty host tensors are never disposed');
    await d.forward([7]);
    assert.equal(fake.feeds[3]!['past_key_values.0.key'], firstPast, 'after reset the empty host tensors are used again');
    await d.release();
    for (const n of presentNames(layers)) assert.equal(fake.disposed.get(fake.outputs[3]![n]!), 1, 'release frees the cache');
    assert.equal(fake.released, true);
    const total = [...fake.disposed.values()].reduce((a, b) => a + b, 0);
    assert.equal(total, 4 * presentNames(layers).length, 'no buffer released twice');
  });

  it('a GPU session whose first run fails is released and reported as a provider failure', async () => {
    const fake = new DeviceSession(2, 8);
    fake.run = async () => {
      throw new Error('/onnxruntime_src/x.cc:1 Foo Non-zero status code returned while running MatMulNBits node.');
    };
    await assert.rejects(firstRunOnDevice('webgpu', fake as unknown as ort.InferenceSession, fakeSignature(2, 2, 4), 8, 1), (e: unknown) => {
      assert.ok(!(e instanceof Error && e.name === 'ModelError'), 'a provider failure, not a model error');
      assert.match((e as Error).message, /^the first webgpu run failed: .*MatMulNBits/);
      return true;
    });
  });
});

describe('R1Engine.load with a GPU session that cannot run', () => {
  let tmp: string;
  let twoVariants: string;
  before(async () => {
    tmp = mkdtempSync(join(tmpdir(), 'r1-gpu-'));
    const tiny = await ensureFixture('tiny-qwen2');
    const tinyF16 = await ensureFixture('tiny-qwen2-f16kv');
    twoVariants = join(tmp, 'two');
    mkdirSync(join(twoVariants, 'onnx'), { recursive: true });
    for (const f of ['config.json', 'generation_config.json', 'tokenizer.json', 'tokenizer_config.json']) copyFileSync(join(tiny, f), join(twoVariants, f));
    symlinkSync(join(tiny, 'onnx', 'model_q4.onnx'), join(twoVariants, 'onnx', 'model_q4.onnx'));
    symlinkSync(join(tinyF16, 'onnx', 'model_q4f16.onnx'), join(twoVariants, 'onnx', 'model_q4f16.onnx'));
  });
  after(() => rmSync(tmp, { recursive: true, force: true }));

  it('falls back to the CPU, records why, and releases the GPU session', async () => {
    const released: string[] = [];
    const created: Array<{ ep: string; file: string; location: unknown }> = [];
    const createSession: EngineInternals['createSession'] = async (file, options) => {
      const ep = String(options.executionProviders?.[0]);
      created.push({ ep, file, location: options.preferredOutputLocation });
      const { preferredOutputLocation: _drop, ...cpuOptions } = options;
      const real = await ort.InferenceSession.create(file, { ...cpuOptions, executionProviders: ['cpu'] });
      if (ep === 'cpu') return real;
      // Creates fine, but every run fails: what a missing kernel on the device looks like.
      return new Proxy(real, {
        get(target, prop) {
          if (prop === 'run') return async () => Promise.reject(new Error(`simulated: ${ep} cannot run MatMulNBits`));
          if (prop === 'release') {
            return async () => {
              released.push(ep);
              await target.release();
            };
          }
          const v = Reflect.get(target, prop, target) as unknown;
          return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
        },
      });
    };
    const probe = linux({ supportedBackends: ['cpu', 'webgpu'], cudaLibraryPresent: false });
    const engine = await R1Engine.load({ modelDir: twoVariants }, { probe, createSession });
    try {
      assert.equal(engine.info.provider, 'cpu');
      assert.equal(engine.info.variant, 'q4');
      assert.deepEqual(
        engine.info.attempts.map((a) => [a.provider, a.ok, a.skipped]),
        [
          ['cuda', false, 'not-installed'],
          ['webgpu', false, undefined],
          ['cpu', true, undefined],
        ],
      );
      assert.equal(engine.info.attempts[1]!.reason, 'the first webgpu run failed: simulated: webgpu cannot run MatMulNBits');
      assert.deepEqual(released, ['webgpu']);
      assert.deepEqual(
        created.map((c) => [c.ep, c.file.endsWith('model_q4f16.onnx') ? 'q4f16' : 'q4', c.location === undefined ? 'host' : 'device']),
        [
          ['webgpu', 'q4f16', 'device'],
          ['cpu', 'q4', 'host'],
        ],
      );
      assert.equal(engine.decoder.cacheLocation(), 'cpu');
    } finally {
      await engine.dispose();
    }
  });
});

/** Why WebGPU cannot run here, or undefined when an adapter was found. */
async function webgpuUnavailable(): Promise<string | undefined> {
  if (!ort.listSupportedBackends().some((b) => b.name === 'webgpu')) return `this onnxruntime-node build (${process.platform} ${process.arch}) has no WebGPU provider`;
  const file = join(await ensureFixture('tiny-qwen2-f16kv'), 'onnx', 'model_q4f16.onnx');
  try {
    const s = await ort.InferenceSession.create(file, { executionProviders: ['webgpu'], logSeverityLevel: 4 });
    await s.release();
    return undefined;
  } catch (e) {
    return `no WebGPU adapter: ${(e as Error).message.split('\n')[0]!.replace(/^.* was false\. /, '')}`;
  }
}

test('WebGPU on a real adapter: the KV cache stays in GPU buffers and the logits match the CPU', async (t) => {
  const reason = await webgpuUnavailable();
  if (reason) {
    // Not run, and not counted as passed: node:test reports it as skipped, with the reason.
    console.log(`# NOT RUN: WebGPU gpu-buffer test: ${reason}`);
    t.skip(`not run: ${reason}`);
    return;
  }
  const dir = await ensureFixture('tiny-qwen2-f16kv');
  const gpu = await R1Engine.load({ modelDir: dir, provider: 'webgpu' });
  const cpu = await R1Engine.load({ modelDir: dir, provider: 'cpu' });
  try {
    assert.equal(gpu.info.provider, 'webgpu');
    assert.ok(gpu.info.notes.some((n) => /stays in GPU buffers/.test(n)));
    const ids = [151646, 151644, 100, 200, 300, 151645];
    const a = Float32Array.from(await gpu.decoder.prefill(ids, 4));
    const b = Float32Array.from(await cpu.decoder.prefill(ids, 4));
    assert.equal(gpu.decoder.cacheLocation(), 'gpu-buffer');
    assert.equal(cpu.decoder.cacheLocation(), 'cpu');
    for (const tok of [42, 4242]) {
      const ga = Float32Array.from(await gpu.decoder.forward([tok]));
      const cb = Float32Array.from(await cpu.decoder.forward([tok]));
      let worst = 0;
      for (let i = 0; i < ga.length; i++) worst = Math.max(worst, Math.abs(ga[i]! - cb[i]!));
      assert.ok(worst < 5e-2, `decode logits differ by ${worst}`);
      assert.equal(gpu.decoder.cacheLocation(), 'gpu-buffer');
    }
    let worst = 0;
    for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i]! - b[i]!));
    assert.ok(worst < 5e-2, `prefill logits differ by ${worst}`);
    assert.deepEqual(gpu.decoder.cacheDims(), cpu.decoder.cacheDims());
  } finally {
    await gpu.dispose();
    await cpu.dispose();
  }
});
