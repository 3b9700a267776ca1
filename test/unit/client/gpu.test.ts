/** The texts of GPU support: the fallback warning, the runtime problem, install progress, and the README anchor. */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { checkCudaRuntime } from '../../../src/platform/cuda';
import {
  GPU_TROUBLESHOOTING_ANCHOR,
  GPU_TROUBLESHOOTING_HEADING,
  fallbackWarning,
  installProgressText,
  runtimeProblem,
  runtimeReport,
} from '../../../src/client/gpuMessages';

describe('GPU messages', () => {
  test('the fallback warning names the provider in use and each GPU provider with its reason', () => {
    const text = fallbackWarning('cpu', [
      { provider: 'cuda', reason: 'CUDA failure 100: no CUDA-capable device is detected', kind: 'failed' },
      { provider: 'webgpu', reason: 'Failed to get a WebGPU adapter: No supported adapters.', kind: 'failed' },
    ]);
    assert.equal(
      text,
      'R1 is running on the CPU, not the GPU. CUDA could not be used: CUDA failure 100: no CUDA-capable device is detected. WebGPU could not be used: Failed to get a WebGPU adapter: No supported adapters.',
    );
    assert.equal(
      fallbackWarning('webgpu', [{ provider: 'cuda', reason: 'CUDA support is installed but the CUDA 12 / cuDNN 9 runtime is incomplete. Missing: libcudnn.so.9 (cuDNN 9).', kind: 'broken' }]),
      'R1 is running on WebGPU. CUDA could not be used: CUDA support is installed but the CUDA 12 / cuDNN 9 runtime is incomplete. Missing: libcudnn.so.9 (cuDNN 9).',
    );
  });

  test('the runtime problem says precisely which libraries are missing', async () => {
    const ldconfigOutput = '\tlibcuda.so.1 (libc6,x86-64) => /usr/lib/x86_64-linux-gnu/libcuda.so.1';
    const check = await checkCudaRuntime({ ldconfigOutput, searchPaths: [], env: {}, platform: 'linux', arch: 'x64' });
    const text = runtimeProblem(check);
    assert.match(text, /^R1: CUDA support cannot work here yet\. Missing: libcudart\.so\.12 \(CUDA 12 runtime\), .*libcudnn\.so\.9 \(cuDNN 9\)\./);
    assert.doesNotMatch(text, /libcuda\.so\.1 \(NVIDIA driver\)/, 'the driver was found');
    const report = runtimeReport(check);
    assert.equal(report[0], 'libcuda.so.1 (NVIDIA driver): found at /usr/lib/x86_64-linux-gnu/libcuda.so.1 (ldconfig)');
    assert.ok(report.includes('libcudnn.so.9 (cuDNN 9): MISSING'));
    const mac = await checkCudaRuntime({ platform: 'darwin', arch: 'arm64' });
    assert.equal(runtimeProblem(mac), 'R1: CUDA support in onnxruntime-node is for Linux x64 only (this is darwin arm64).');
  });

  test('install progress: phase, bytes, percent and speed while downloading', () => {
    assert.deepEqual(installProgressText({ phase: 'downloading', file: 'pkg.nupkg', receivedBytes: 150e6, totalBytes: 300e6, bytesPerSecond: 12.5e6 }), {
      message: 'downloading pkg.nupkg: 150.0 MB of 300.0 MB, 50% at 12.5 MB/s',
      fraction: 0.5,
    });
    assert.deepEqual(installProgressText({ phase: 'downloading', file: 'pkg.nupkg', receivedBytes: 2000, totalBytes: undefined, bytesPerSecond: 0 }), { message: 'downloading pkg.nupkg: 2 kB' });
    assert.deepEqual(installProgressText({ phase: 'extracting', file: 'pkg.nupkg', receivedBytes: 1, totalBytes: 1, bytesPerSecond: 0 }), { message: 'verified; extracting the provider libraries' });
  });

  test('the README has the section the Troubleshooting buttons open', () => {
    const readme = readFileSync(join(__dirname, '..', '..', '..', 'README.md'), 'utf8');
    const heading = readme.split('\n').find((l) => /^#+\s/.test(l) && l.replace(/^#+\s*/, '').trim() === GPU_TROUBLESHOOTING_HEADING);
    assert.ok(heading, `README.md has a "${GPU_TROUBLESHOOTING_HEADING}" heading`);
    // GitHub's anchor for the heading is the one documented for links.
    assert.equal(GPU_TROUBLESHOOTING_HEADING.toLowerCase().replace(/[^a-z0-9 -]/g, '').replace(/ /g, '-'), GPU_TROUBLESHOOTING_ANCHOR);
  });
});
