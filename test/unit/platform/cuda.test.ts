import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { CUDA_RUNTIME_LIBRARIES, checkCudaRuntime } from '../../../src/platform/cuda';
import { parseLdconfig } from '../../../src/platform/ldconfig';
import { tempDirs } from '../install/loopback';
import { runtimeOk } from './ldconfigFixture';

const tempDir = tempDirs('r1-cuda-runtime-');

describe('checkCudaRuntime', () => {
  test('all libraries in the ldconfig cache: ok', async () => {
    const r = await checkCudaRuntime(runtimeOk);
    assert.equal(r.ok, true);
    assert.deepEqual(r.missing, []);
    assert.ok(r.libraries.every((l) => l.via === 'ldconfig'));
  });

  test('lists exactly what is missing, from injected ldconfig output', async () => {
    const ldconfigOutput = [
      '\tlibcudart.so.12 (libc6,x86-64) => /usr/local/cuda/lib64/libcudart.so.12',
      '\tlibcublas.so.12 (libc6,x86-64) => /usr/local/cuda/lib64/libcublas.so.12',
      '\tlibcublasLt.so.12 (libc6,x86-64) => /usr/local/cuda/lib64/libcublasLt.so.12',
      '\tlibcuda.so.1 (libc6,x86-64) => /usr/lib/x86_64-linux-gnu/libcuda.so.1',
      // A 32-bit copy does not count for an x64 process.
      '\tlibcurand.so.10 (libc6) => /usr/lib/i386-linux-gnu/libcurand.so.10',
    ].join('\n');
    const r = await checkCudaRuntime({ ldconfigOutput, searchPaths: [], env: {} });
    assert.equal(r.ok, false);
    assert.deepEqual(r.missing, ['libcurand.so.10', 'libcufft.so.11', 'libcudnn.so.9']);
    assert.deepEqual(r.notOnLoaderPath, []);
    assert.match(r.message, /^Missing: libcurand\.so\.10 \(CUDA 12 cuRAND\), libcufft\.so\.11 \(CUDA 12 cuFFT\), libcudnn\.so\.9 \(cuDNN 9\)\./);
    assert.match(r.message, /cuDNN 9 for CUDA 12/);
  });

  test('LD_LIBRARY_PATH counts; a folder the loader does not search is reported with what to do', async () => {
    const ld = tempDir();
    const hidden = tempDir();
    for (const l of CUDA_RUNTIME_LIBRARIES.slice(0, 5)) writeFileSync(join(ld, l.soname), '');
    writeFileSync(join(hidden, 'libcufft.so.11'), '');
    const r = await checkCudaRuntime({ ldconfigOutput: '', searchPaths: [hidden], env: { LD_LIBRARY_PATH: `/nonexistent:${ld}` } });
    assert.deepEqual(r.missing, ['libcudnn.so.9']);
    assert.deepEqual(r.notOnLoaderPath, ['libcufft.so.11']);
    assert.equal(r.libraries.find((l) => l.soname === 'libcudart.so.12')?.via, 'LD_LIBRARY_PATH');
    assert.ok(r.message.includes(`libcufft.so.11 in ${hidden}`), r.message);
    assert.match(r.message, /LD_LIBRARY_PATH/);
  });

  test('parseLdconfig keeps x86-64 entries only', () => {
    const m = parseLdconfig('\tlibx.so.1 (libc6) => /usr/lib32/libx.so.1\n\tlibx.so.1 (libc6,x86-64) => /usr/lib/x86_64-linux-gnu/libx.so.1\n');
    assert.equal(m.get('libx.so.1'), '/usr/lib/x86_64-linux-gnu/libx.so.1');
  });

  test('this machine (no GPU) runs the real ldconfig and reports missing libraries without throwing', async () => {
    const r = await checkCudaRuntime();
    assert.equal(r.libraries.length, CUDA_RUNTIME_LIBRARIES.length);
    assert.equal(typeof r.message, 'string');
  });
});
