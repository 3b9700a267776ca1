import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, test } from 'node:test';
import { ZipFile } from 'yazl';
import {
  CUDA_MARKER_FILE,
  CUDA_PACKAGE_ID,
  findOnnxruntimeNode,
  getCudaProviderStatus,
  installCudaProvider,
  nugetPackageUrl,
  type CudaInstallProgress,
} from '../../../src/install';
import { installFilesAtomically } from '../../../src/install/cuda';
import { runtimeOk } from '../platform/ldconfigFixture';
import { bytes, closedPort, installFakeFeed, startLoopback, type Loopback, rejectsWith, tempDirs } from './loopback';

const VERSION = '1.30.0';
const CUDA_SO = bytes(300_000, 11);
const SHARED_SO = bytes(20_000, 12);
let server: Loopback | undefined;
const tempDir = tempDirs('r1-cuda-');
afterEach(async () => {
  await server?.stop();
  server = undefined;
});

/** A nupkg as NuGet lays it out: a zip with the nuspec, content types and runtimes/. */
function buildNupkg(entries: Record<string, Buffer>): Promise<Buffer> {
  const zip = new ZipFile();
  for (const [name, data] of Object.entries(entries)) zip.addBuffer(data, name, { compress: true });
  zip.end();
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    zip.outputStream.on('data', (c: Buffer) => chunks.push(c));
    zip.outputStream.on('end', () => resolve(Buffer.concat(chunks)));
    zip.outputStream.on('error', reject);
  });
}

function realNupkg(): Promise<Buffer> {
  return buildNupkg({
    '[Content_Types].xml': Buffer.from('<?xml version="1.0"?><Types/>'),
    'Microsoft.ML.OnnxRuntime.Gpu.Linux.nuspec': Buffer.from(`<package><metadata><id>${CUDA_PACKAGE_ID}</id><version>${VERSION}</version></metadata></package>`),
    'runtimes/linux-x64/native/libonnxruntime_providers_cuda.so': CUDA_SO,
    'runtimes/linux-x64/native/libonnxruntime_providers_shared.so': SHARED_SO,
    'runtimes/linux-x64/native/libonnxruntime_providers_tensorrt.so': bytes(1000, 13),
  });
}


/** A provider folder as onnxruntime-node ships it, with the CPU library and the binding. */
function providerDir(): string {
  const d = join(tempDir(), 'bin', 'napi-v6', 'linux', 'x64');
  mkdirSync(d, { recursive: true });
  writeFileSync(join(d, 'libonnxruntime.so.1'), bytes(5000, 21));
  writeFileSync(join(d, 'onnxruntime_binding.node'), bytes(3000, 22));
  return d;
}

function snapshot(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const n of readdirSync(dir).sort()) out[n] = createHash('sha256').update(readFileSync(join(dir, n))).digest('hex');
  return out;
}

describe('installCudaProvider against a loopback NuGet feed', () => {
  test('installs both provider libraries from a verified package (sidecar sha512)', async () => {
    server = await startLoopback();
    const nupkg = await realNupkg();
    const feed = installFakeFeed(server, { id: CUDA_PACKAGE_ID, version: VERSION, nupkg });
    const target = providerDir();
    const before = snapshot(target);
    const phases: CudaInstallProgress['phase'][] = [];
    const downloadDir = tempDir();
    const r = await installCudaProvider({ feedUrl: feed.feedUrl, version: VERSION, targetDir: target, runtimeCheck: runtimeOk, downloadDir, onProgress: (p) => phases.push(p.phase) });

    assert.deepEqual(readFileSync(join(target, 'libonnxruntime_providers_cuda.so')), CUDA_SO);
    assert.deepEqual(readFileSync(join(target, 'libonnxruntime_providers_shared.so')), SHARED_SO);
    assert.ok(statSync(join(target, 'libonnxruntime_providers_cuda.so')).mode & 0o100, 'the library is executable');
    const after = snapshot(target);
    for (const [n, h] of Object.entries(before)) assert.equal(after[n], h, `${n} untouched`);
    assert.deepEqual(Object.keys(after).sort(), [...Object.keys(before), 'libonnxruntime_providers_cuda.so', 'libonnxruntime_providers_shared.so', CUDA_MARKER_FILE].sort());
    assert.equal(r.hashSource, 'sidecar');
    assert.equal(r.sha512, createHash('sha512').update(nupkg).digest('hex'));
    assert.equal(r.packageUrl, `${feed.feedUrl}microsoft.ml.onnxruntime.gpu.linux/1.30.0/microsoft.ml.onnxruntime.gpu.linux.1.30.0.nupkg`);
    assert.equal(r.packageBytes, nupkg.length);
    assert.deepEqual(readdirSync(downloadDir), [], 'the package is removed after installing');
    assert.deepEqual([...new Set(phases)], ['checking', 'resolving-hash', 'downloading', 'extracting', 'installing', 'done']);
    const status = await getCudaProviderStatus(target);
    assert.equal(status.installed, true);
    assert.equal(status.marker?.version, VERSION);
    assert.equal(status.marker?.sha512, r.sha512);
  });

  test('replaces an older install in place', async () => {
    server = await startLoopback();
    const feed = installFakeFeed(server, { id: CUDA_PACKAGE_ID, version: VERSION, nupkg: await realNupkg() });
    const target = providerDir();
    writeFileSync(join(target, 'libonnxruntime_providers_cuda.so'), Buffer.from('old cuda'));
    writeFileSync(join(target, 'libonnxruntime_providers_shared.so'), Buffer.from('old shared'));
    await installCudaProvider({ feedUrl: feed.feedUrl, version: VERSION, targetDir: target, runtimeCheck: runtimeOk, downloadDir: tempDir() });
    assert.deepEqual(readFileSync(join(target, 'libonnxruntime_providers_cuda.so')), CUDA_SO);
    assert.deepEqual(readFileSync(join(target, 'libonnxruntime_providers_shared.so')), SHARED_SO);
    assert.deepEqual(readdirSync(target).filter((n) => n.includes('r1-')), [CUDA_MARKER_FILE], 'no temp or backup files remain');
  });

  test('uses the NuGet catalog packageHash when the feed has no sidecar', async () => {
    server = await startLoopback();
    const nupkg = await realNupkg();
    const feed = installFakeFeed(server, { id: CUDA_PACKAGE_ID, version: VERSION, nupkg, sidecar: null, catalogHash: createHash('sha512').update(nupkg).digest('base64') });
    const target = providerDir();
    const r = await installCudaProvider({ feedUrl: feed.feedUrl, serviceIndexUrl: feed.serviceIndexUrl, version: VERSION, targetDir: target, runtimeCheck: runtimeOk, downloadDir: tempDir() });
    assert.equal(r.hashSource, 'catalog');
    assert.deepEqual(readFileSync(join(target, 'libonnxruntime_providers_cuda.so')), CUDA_SO);
  });

  test('without any published hash nothing is downloaded or installed', async () => {
    server = await startLoopback();
    const feed = installFakeFeed(server, { id: CUDA_PACKAGE_ID, version: VERSION, nupkg: await realNupkg(), sidecar: null });
    const target = providerDir();
    const before = snapshot(target);
    await rejectsWith(installCudaProvider({ feedUrl: feed.feedUrl, version: VERSION, targetDir: target, runtimeCheck: runtimeOk, downloadDir: tempDir() }), 'no-hash');
    assert.deepEqual(snapshot(target), before);
    assert.equal(server.requests.filter((r) => r.path === feed.packagePath).length, 0);
  });

  test('hash mismatch: nothing installed, the target folder unchanged', async () => {
    server = await startLoopback();
    const nupkg = await realNupkg();
    const wrong = createHash('sha512').update('something else').digest('base64');
    const feed = installFakeFeed(server, { id: CUDA_PACKAGE_ID, version: VERSION, nupkg, sidecar: wrong });
    const target = providerDir();
    writeFileSync(join(target, 'libonnxruntime_providers_shared.so'), Buffer.from('previous shared'));
    const before = snapshot(target);
    const downloadDir = tempDir();
    const e = await rejectsWith(installCudaProvider({ feedUrl: feed.feedUrl, version: VERSION, targetDir: target, runtimeCheck: runtimeOk, downloadDir }), 'checksum');
    assert.match(e.message, /sha512/);
    assert.deepEqual(snapshot(target), before);
    assert.deepEqual(readdirSync(downloadDir), [], 'the damaged package was deleted');
  });

  test('an expected hash given by the caller wins over the feed', async () => {
    server = await startLoopback();
    const feed = installFakeFeed(server, { id: CUDA_PACKAGE_ID, version: VERSION, nupkg: await realNupkg() });
    const target = providerDir();
    const before = snapshot(target);
    await rejectsWith(installCudaProvider({ feedUrl: feed.feedUrl, version: VERSION, targetDir: target, runtimeCheck: runtimeOk, downloadDir: tempDir(), expectedSha512: 'ab'.repeat(64) }), 'checksum');
    assert.deepEqual(snapshot(target), before);
    assert.equal(server.requests.filter((r) => r.path.endsWith('.sha512')).length, 0);
  });

  test('missing CUDA libraries: a precise error before any download', async () => {
    server = await startLoopback();
    const feed = installFakeFeed(server, { id: CUDA_PACKAGE_ID, version: VERSION, nupkg: await realNupkg() });
    const target = providerDir();
    const before = snapshot(target);
    const ldconfigOutput = ['\tlibcuda.so.1 (libc6,x86-64) => /usr/lib/x86_64-linux-gnu/libcuda.so.1', '\tlibcudart.so.12 (libc6,x86-64) => /usr/local/cuda/lib64/libcudart.so.12'].join('\n');
    const e = await rejectsWith(
      installCudaProvider({ feedUrl: feed.feedUrl, version: VERSION, targetDir: target, runtimeCheck: { ldconfigOutput, searchPaths: [], env: {} }, downloadDir: tempDir() }),
      'cuda-runtime-missing',
    );
    assert.deepEqual(e.details.missing, ['libcublas.so.12', 'libcublasLt.so.12', 'libcurand.so.10', 'libcufft.so.11', 'libcudnn.so.9']);
    assert.match(e.message, /libcudnn\.so\.9 \(cuDNN 9\)/);
    assert.equal(server.requests.length, 0, 'nothing was fetched');
    assert.deepEqual(snapshot(target), before);
  });

  test('cancel mid-download: the target folder unchanged, the partial kept for resume', async () => {
    server = await startLoopback();
    const nupkg = await realNupkg();
    const half = Math.floor(nupkg.length / 2);
    const feed = installFakeFeed(server, { id: CUDA_PACKAGE_ID, version: VERSION, nupkg, faults: (n) => (n === 0 ? { stallAfter: half } : undefined) });
    const target = providerDir();
    const before = snapshot(target);
    const downloadDir = tempDir();
    const ac = new AbortController();
    await rejectsWith(
      installCudaProvider({
        feedUrl: feed.feedUrl,
        version: VERSION,
        targetDir: target,
        runtimeCheck: runtimeOk,
        downloadDir,
        signal: ac.signal,
        progressIntervalMs: 0,
        onProgress: (p) => {
          if (p.phase === 'downloading' && p.receivedBytes >= half) ac.abort();
        },
      }),
      'cancelled',
    );
    assert.deepEqual(snapshot(target), before);
    const partials = readdirSync(downloadDir);
    assert.deepEqual(partials, ['microsoft.ml.onnxruntime.gpu.linux.1.30.0.nupkg.partial']);
    assert.equal(statSync(join(downloadDir, partials[0])).size, half);

    // Running it again resumes and installs.
    await installCudaProvider({ feedUrl: feed.feedUrl, version: VERSION, targetDir: target, runtimeCheck: runtimeOk, downloadDir });
    const pkgRequests = server.requests.filter((r) => r.path === feed.packagePath);
    assert.equal(pkgRequests[pkgRequests.length - 1].range, `bytes=${half}-`);
    assert.deepEqual(readFileSync(join(target, 'libonnxruntime_providers_cuda.so')), CUDA_SO);
  });

  test('a package without the provider libraries is refused and nothing is installed', async () => {
    server = await startLoopback();
    const nupkg = await buildNupkg({ 'runtimes/linux-x64/native/libonnxruntime_providers_shared.so': SHARED_SO });
    const feed = installFakeFeed(server, { id: CUDA_PACKAGE_ID, version: VERSION, nupkg });
    const target = providerDir();
    const before = snapshot(target);
    const e = await rejectsWith(installCudaProvider({ feedUrl: feed.feedUrl, version: VERSION, targetDir: target, runtimeCheck: runtimeOk, downloadDir: tempDir() }), 'package-invalid');
    assert.match(e.message, /libonnxruntime_providers_cuda\.so/);
    assert.deepEqual(snapshot(target), before);
  });

  test('a version the feed lacks gives not-found naming the package', async () => {
    server = await startLoopback();
    const feed = installFakeFeed(server, { id: CUDA_PACKAGE_ID, version: VERSION, nupkg: await realNupkg() });
    const e = await rejectsWith(
      installCudaProvider({ feedUrl: feed.feedUrl, version: '9.9.9', targetDir: providerDir(), runtimeCheck: runtimeOk, downloadDir: tempDir(), expectedSha512: 'ab'.repeat(64) }),
      'not-found',
    );
    assert.match(e.message, /Microsoft\.ML\.OnnxRuntime\.Gpu\.Linux 9\.9\.9 is not on the feed/);
  });

  test('offline feed gives the offline error with the installer hint', async () => {
    const port = await closedPort();
    const e = await rejectsWith(
      installCudaProvider({ feedUrl: `http://127.0.0.1:${port}/v3-flatcontainer/`, version: VERSION, targetDir: providerDir(), runtimeCheck: runtimeOk, downloadDir: tempDir() }),
      'offline',
    );
    assert.equal(e.message, `You appear to be offline: could not reach 127.0.0.1:${port}. Connect and retry R1: Install CUDA Support.`);
  });

  test('other platforms are refused', async () => {
    await rejectsWith(installCudaProvider({ platform: 'darwin', arch: 'arm64', version: VERSION, targetDir: tempDir() }), 'unsupported-platform');
  });
});

describe('helpers', () => {
  test('the flat-container URL is lower-cased as NuGet wants', () => {
    assert.equal(
      nugetPackageUrl('https://api.nuget.org/v3-flatcontainer/', CUDA_PACKAGE_ID, '1.30.0'),
      'https://api.nuget.org/v3-flatcontainer/microsoft.ml.onnxruntime.gpu.linux/1.30.0/microsoft.ml.onnxruntime.gpu.linux.1.30.0.nupkg',
    );
  });

  test('findOnnxruntimeNode reads the installed version and the provider folder', () => {
    const ort = findOnnxruntimeNode();
    assert.equal(ort.version, '1.30.0');
    assert.ok(existsSync(join(ort.providerDir, 'libonnxruntime.so.1')));
  });

  test('installFilesAtomically rolls back when a rename fails: the old files come back', async () => {
    const d = tempDir();
    writeFileSync(join(d, 'a.so'), 'old a');
    writeFileSync(join(d, 'b.so'), 'old b');
    writeFileSync(join(d, 'a.tmp'), 'new a');
    writeFileSync(join(d, 'b.tmp'), 'new b');
    const { rename } = await import('node:fs/promises');
    let calls = 0;
    const failing = async (from: string, to: string) => {
      calls++;
      if (from.endsWith('b.tmp')) throw Object.assign(new Error('simulated rename failure'), { code: 'EIO' });
      await rename(from, to);
    };
    await assert.rejects(
      installFilesAtomically(
        [
          { tmp: join(d, 'a.tmp'), final: join(d, 'a.so') },
          { tmp: join(d, 'b.tmp'), final: join(d, 'b.so') },
        ],
        { rename: failing },
      ),
      /simulated rename failure/,
    );
    assert.ok(calls >= 3);
    assert.equal(readFileSync(join(d, 'a.so'), 'utf8'), 'old a');
    assert.equal(readFileSync(join(d, 'b.so'), 'utf8'), 'old b');
    assert.deepEqual(readdirSync(d).sort(), ['a.so', 'b.so']);
  });
});
