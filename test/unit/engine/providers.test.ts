/** Provider order per platform with simulated probes and failures, and variant choice per provider. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ModelError } from '../../../src/engine/errors';
import { CPU_VARIANT_ORDER, GPU_VARIANT_ORDER, chooseVariant } from '../../../src/engine/modelFolder';
import {
  type PlatformProbe,
  createWithFallback,
  firstLine,
  isModelFileError,
  planProviders,
  probePlatform,
} from '../../../src/engine/providers';
import type { ExecutionProvider, ModelVariant } from '../../../src/engine/types';

const linux = (cuda: boolean): PlatformProbe => ({
  platform: 'linux',
  arch: 'x64',
  supportedBackends: ['cpu', 'webgpu', 'cuda', 'tensorrt'],
  cudaLibraryPresent: cuda,
});
const windows: PlatformProbe = { platform: 'win32', arch: 'x64', supportedBackends: ['cpu', 'dml', 'webgpu'], cudaLibraryPresent: false };
const macArm: PlatformProbe = { platform: 'darwin', arch: 'arm64', supportedBackends: ['cpu', 'coreml'], cudaLibraryPresent: false };
const linuxArm: PlatformProbe = { platform: 'linux', arch: 'arm64', supportedBackends: ['cpu'], cudaLibraryPresent: false };

describe('planProviders', () => {
  it('Linux x64 with the CUDA library: cuda, webgpu, cpu', () => {
    const p = planProviders('auto', linux(true));
    assert.deepEqual(p.order, ['cuda', 'webgpu', 'cpu']);
    assert.deepEqual(p.skipped, []);
  });

  it('Linux x64 without the CUDA library skips cuda with the reason', () => {
    const p = planProviders(undefined, linux(false));
    assert.deepEqual(p.order, ['webgpu', 'cpu']);
    assert.equal(p.skipped.length, 1);
    assert.equal(p.skipped[0]!.provider, 'cuda');
    assert.equal(p.skipped[0]!.ok, false);
    assert.match(p.skipped[0]!.reason!, /libonnxruntime_providers_cuda\.so/);
  });

  it('Linux without a Vulkan loader skips webgpu as not installed (no warning); an explicit webgpu says why it cannot run', () => {
    const p = planProviders('auto', { ...linux(false), vulkanLoader: false });
    assert.deepEqual(p.order, ['cpu']);
    const webgpu = p.skipped.find((s) => s.provider === 'webgpu');
    assert.equal(webgpu?.skipped, 'not-installed');
    assert.match(webgpu!.reason!, /libvulkan\.so\.1/);
    assert.deepEqual(planProviders('auto', { ...linux(false), vulkanLoader: true }).order, ['webgpu', 'cpu']);
    assert.throws(() => planProviders('webgpu', { ...linux(false), vulkanLoader: false }), /Vulkan loader/);
  });

  it('Windows: dml, webgpu, cpu', () => {
    assert.deepEqual(planProviders('auto', windows).order, ['dml', 'webgpu', 'cpu']);
  });

  it('macOS arm64: coreml, cpu', () => {
    assert.deepEqual(planProviders('auto', macArm).order, ['coreml', 'cpu']);
  });

  it('other platforms: cpu only', () => {
    assert.deepEqual(planProviders('auto', linuxArm).order, ['cpu']);
  });

  it('an explicit provider is tried alone (no silent CPU fallback)', () => {
    assert.deepEqual(planProviders('cuda', linux(true)).order, ['cuda']);
    assert.deepEqual(planProviders('cpu', windows).order, ['cpu']);
  });

  it('an explicit provider that cannot exist here is a provider-unavailable ModelError', () => {
    for (const [pref, probe, re] of [
      ['dml', linux(true), /no dml provider/],
      ['cuda', linux(false), /libonnxruntime_providers_cuda\.so/],
      ['cuda', windows, /only on Linux x64/],
      ['coreml', windows, /no coreml provider/],
    ] as const) {
      assert.throws(
        () => planProviders(pref, probe),
        (e: unknown) => e instanceof ModelError && e.code === 'provider-unavailable' && re.test(e.message) && /"auto" or "cpu"/.test(e.hint),
      );
    }
  });

  it('the real probe of this machine lists the CPU', () => {
    const probe = probePlatform();
    assert.ok(probe.supportedBackends.includes('cpu'));
    assert.equal(probe.platform, process.platform);
  });
});

describe('createWithFallback (simulated failures)', () => {
  it('records each failure and reports the provider really in use', async () => {
    const tried: ExecutionProvider[] = [];
    const r = await createWithFallback(planProviders('auto', linux(true)), async (p) => {
      tried.push(p);
      if (p === 'cuda') throw new Error('/onnxruntime_src/x.cc:12 Foo CUDA failure 100: no CUDA-capable device is detected');
      if (p === 'webgpu') throw new Error('/onnxruntime_src/webgpu_context.cc:136 lambda adapter_result.status == Success was false. Failed to get a WebGPU adapter: No supported adapters');
      return `session on ${p}`;
    });
    assert.deepEqual(tried, ['cuda', 'webgpu', 'cpu']);
    assert.equal(r.provider, 'cpu');
    assert.equal(r.session, 'session on cpu');
    assert.deepEqual(
      r.attempts.map((a) => [a.provider, a.ok]),
      [
        ['cuda', false],
        ['webgpu', false],
        ['cpu', true],
      ],
    );
    assert.match(r.attempts[0]!.reason!, /^CUDA failure 100: no CUDA-capable device is detected$/);
    assert.equal(r.attempts[1]!.reason, 'Failed to get a WebGPU adapter: No supported adapters');
  });

  it('keeps probe-skipped providers in the attempts, first', async () => {
    const r = await createWithFallback(planProviders('auto', linux(false)), async (p) => {
      if (p !== 'cpu') throw new Error('no adapter');
      return 1;
    });
    assert.deepEqual(
      r.attempts.map((a) => a.provider),
      ['cuda', 'webgpu', 'cpu'],
    );
  });

  it('the first provider that works wins', async () => {
    const r = await createWithFallback(planProviders('auto', windows), async (p) => p);
    assert.equal(r.provider, 'dml');
    assert.deepEqual(r.attempts, [{ provider: 'dml', ok: true }]);
  });

  it('a model-file error stops at once instead of blaming the provider', async () => {
    const tried: ExecutionProvider[] = [];
    await assert.rejects(
      createWithFallback(planProviders('auto', linux(true)), async (p) => {
        tried.push(p);
        throw new Error('Load model from /m/model_q4.onnx failed:Protobuf parsing failed.');
      }),
      /Protobuf parsing failed/,
    );
    assert.deepEqual(tried, ['cuda']);
  });

  it('an explicit provider that fails is a ModelError, not a CPU session', async () => {
    await assert.rejects(
      createWithFallback(planProviders('cuda', linux(true)), async () => {
        throw new Error('CUDA driver version is insufficient');
      }),
      (e: unknown) => e instanceof ModelError && e.code === 'provider-unavailable' && /cuda: CUDA driver version is insufficient/.test(e.message),
    );
  });

  it('classifies ONNX Runtime messages', () => {
    assert.ok(isModelFileError('Load model from /x failed:Protobuf parsing failed.'));
    assert.ok(isModelFileError('External data path does not exist: "/x/model.onnx_data"'));
    assert.ok(!isModelFileError('Failed to get a WebGPU adapter: No supported adapters'));
    assert.equal(firstLine('\n  first line\nsecond'), 'first line');
  });
});

describe('variant choice per provider', () => {
  const dir = '/models/r1';
  const all: ModelVariant[] = ['q4', 'q4f16', 'fp16', 'fp32', 'int8', 'uint8', 'quantized', 'bnb4'];

  it('auto: q4 on the CPU, q4f16 on GPU providers', () => {
    assert.equal(chooseVariant(dir, all, 'auto', 'cpu'), 'q4');
    for (const p of ['cuda', 'dml', 'coreml', 'webgpu'] as const) assert.equal(chooseVariant(dir, all, 'auto', p), 'q4f16');
  });

  it('auto falls back along the preference order to the best variant present', () => {
    assert.equal(chooseVariant(dir, ['fp32', 'int8', 'fp16'], 'auto', 'cpu'), 'int8');
    assert.equal(chooseVariant(dir, ['fp32', 'fp16'], 'auto', 'cpu'), 'fp32');
    assert.equal(chooseVariant(dir, ['q4f16'], 'auto', 'cpu'), 'q4f16');
    assert.equal(chooseVariant(dir, ['fp32', 'fp16', 'q4'], 'auto', 'cuda'), 'fp16');
    assert.equal(chooseVariant(dir, ['fp32', 'q4'], 'auto', 'webgpu'), 'q4');
    assert.deepEqual(CPU_VARIANT_ORDER.slice(0, 2), ['q4', 'int8']);
    assert.deepEqual(GPU_VARIANT_ORDER.slice(0, 2), ['q4f16', 'fp16']);
  });

  it('an explicit variant must be present', () => {
    assert.equal(chooseVariant(dir, ['q4', 'fp16'], 'fp16', 'cpu'), 'fp16');
    assert.throws(
      () => chooseVariant(dir, ['q4'], 'q4f16', 'cuda'),
      (e: unknown) => e instanceof ModelError && e.code === 'missing-file' && /model_q4f16\.onnx/.test(e.file ?? ''),
    );
  });

  it('no variant at all is no-variant', () => {
    assert.throws(
      () => chooseVariant(dir, [], 'auto', 'cpu'),
      (e: unknown) => e instanceof ModelError && e.code === 'no-variant',
    );
  });
});
