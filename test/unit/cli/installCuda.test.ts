/**
 * `r1 install-cuda` against a loopback NuGet feed serving a package built in the test: success,
 * hash mismatch, missing CUDA libraries, `--check`, usage errors, and Ctrl-C mid-download (the
 * CLI spawned as a process). The runtime check is injected (io.cudaCheck) in-process, and made
 * to pass through LD_LIBRARY_PATH for the spawned run, so no test depends on this machine's CUDA.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { PassThrough } from 'node:stream';
import { afterEach, describe, test } from 'node:test';
import { ZipFile } from 'yazl';
import { UsageError, parseCli } from '../../../src/cli/args';
import { type CliIO, main } from '../../../src/cli/main';
import { CUDA_MARKER_FILE, CUDA_PACKAGE_ID } from '../../../src/install/cuda';
import { CUDA_RUNTIME_LIBRARIES } from '../../../src/platform/cuda';
import { bytes, installFakeFeed, startLoopback, type Loopback, tempDirs } from '../install/loopback';

const ROOT = resolve(__dirname, '../../..');
const VERSION = '1.30.0';
const CUDA_SO = bytes(400_000, 31);
const SHARED_SO = bytes(30_000, 32);
let server: Loopback | undefined;
const tempDir = tempDirs('r1-cli-cuda-');
afterEach(async () => {
  await server?.stop();
  server = undefined;
});

function nupkg(): Promise<Buffer> {
  const zip = new ZipFile();
  zip.addBuffer(Buffer.from(`<package><metadata><id>${CUDA_PACKAGE_ID}</id><version>${VERSION}</version></metadata></package>`), 'Microsoft.ML.OnnxRuntime.Gpu.Linux.nuspec');
  // Stored, not deflated: the package is mostly random bytes, and a real one is ~ hundreds of MB.
  zip.addBuffer(CUDA_SO, 'runtimes/linux-x64/native/libonnxruntime_providers_cuda.so', { compress: false });
  zip.addBuffer(SHARED_SO, 'runtimes/linux-x64/native/libonnxruntime_providers_shared.so', { compress: false });
  zip.end();
  return new Promise((res, rej) => {
    const chunks: Buffer[] = [];
    zip.outputStream.on('data', (c: Buffer) => chunks.push(c));
    zip.outputStream.on('end', () => res(Buffer.concat(chunks)));
    zip.outputStream.on('error', rej);
  });
}

const allLibs = [...CUDA_RUNTIME_LIBRARIES.map((l) => `\t${l.soname} (libc6,x86-64) => /usr/lib/x86_64-linux-gnu/${l.soname}`)].join('\n');
const runtimeOk = { ldconfigOutput: allLibs, searchPaths: [], env: {} };

function providerDir(): string {
  const d = join(tempDir(), 'bin', 'napi-v6', 'linux', 'x64');
  mkdirSync(d, { recursive: true });
  writeFileSync(join(d, 'libonnxruntime.so.1'), bytes(4000, 33));
  return d;
}

function listing(dir: string): Record<string, string> {
  return Object.fromEntries(readdirSync(dir).sort().map((n) => [n, createHash('sha256').update(readFileSync(join(dir, n))).digest('hex')]));
}

async function run(argv: string[], cudaCheck = runtimeOk): Promise<{ code: number; stdout: string; stderr: string }> {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  let out = '';
  let err = '';
  stdout.on('data', (d: Buffer) => (out += d.toString()));
  stderr.on('data', (d: Buffer) => (err += d.toString()));
  const io: CliIO = { stdout, stderr, env: {}, cudaCheck };
  const code = await main(argv, io);
  return { code, stdout: out, stderr: err };
}

describe('r1 install-cuda (loopback feed)', { skip: process.platform !== 'linux' || process.arch !== 'x64' ? 'CUDA support is for Linux x64 only' : false }, () => {
  test('installs both provider libraries, verified, and --check then reports them', async () => {
    server = await startLoopback();
    const pkg = await nupkg();
    const feed = installFakeFeed(server, { id: CUDA_PACKAGE_ID, version: VERSION, nupkg: pkg });
    const target = providerDir();
    const downloadDir = tempDir();
    const r = await run(['install-cuda', '--feed', feed.feedUrl, '--target', target, '--version', VERSION, '--download-dir', downloadDir, '--json']);
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout) as { sha512: string; hashSource: string; installed: string[]; packageBytes: number; runtime: { ok: boolean } };
    assert.equal(out.sha512, createHash('sha512').update(pkg).digest('hex'));
    assert.equal(out.hashSource, 'sidecar');
    assert.equal(out.packageBytes, pkg.length);
    assert.equal(out.runtime.ok, true);
    assert.deepEqual(out.installed, [join(target, 'libonnxruntime_providers_cuda.so'), join(target, 'libonnxruntime_providers_shared.so')]);
    assert.deepEqual(readFileSync(join(target, 'libonnxruntime_providers_cuda.so')), CUDA_SO);
    assert.deepEqual(readFileSync(join(target, 'libonnxruntime_providers_shared.so')), SHARED_SO);
    assert.deepEqual(readdirSync(target).sort(), [CUDA_MARKER_FILE, 'libonnxruntime.so.1', 'libonnxruntime_providers_cuda.so', 'libonnxruntime_providers_shared.so'].sort());

    const check = await run(['install-cuda', '--check', '--target', target]);
    assert.equal(check.code, 0, check.stdout);
    assert.match(check.stdout, /CUDA runtime: ok/);
    assert.match(check.stdout, new RegExp(`CUDA provider: installed in .*\\(${CUDA_PACKAGE_ID} ${VERSION.replace(/\./g, '\\.')}\\)`));
  });

  test('human output: progress on stderr by phase, the result on stdout', async () => {
    server = await startLoopback();
    const feed = installFakeFeed(server, { id: CUDA_PACKAGE_ID, version: VERSION, nupkg: await nupkg() });
    const r = await run(['install-cuda', '--feed', feed.feedUrl, '--target', providerDir(), '--version', VERSION, '--download-dir', tempDir()]);
    assert.equal(r.code, 0, r.stderr);
    const phases = r.stderr.split('\n').map((l) => l.split(' ')[0]).filter((w) => w);
    assert.deepEqual([...new Set(phases)], ['resolving', 'downloading', 'extracting', 'installing', 'done']);
    assert.match(r.stderr, /downloading microsoft\.ml\.onnxruntime\.gpu\.linux\.1\.30\.0\.nupkg: [\d.]+ MB of [\d.]+ MB, \d+%/);
    assert.match(r.stdout, /^Installed .*libonnxruntime_providers_cuda\.so, .*libonnxruntime_providers_shared\.so\nfrom Microsoft\.ML\.OnnxRuntime\.Gpu\.Linux 1\.30\.0 \([\d.]+ MB, sha512 verified from the sidecar\)\./);
  });

  test('hash mismatch: exit 1 naming the sha512, nothing installed', async () => {
    server = await startLoopback();
    const feed = installFakeFeed(server, { id: CUDA_PACKAGE_ID, version: VERSION, nupkg: await nupkg() });
    const target = providerDir();
    const before = listing(target);
    const downloadDir = tempDir();
    const r = await run(['install-cuda', '--feed', feed.feedUrl, '--target', target, '--version', VERSION, '--download-dir', downloadDir, '--sha512', 'cd'.repeat(64)]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^r1: .*does not match its expected sha512/m);
    assert.doesNotMatch(r.stderr, /unexpected error/);
    assert.deepEqual(listing(target), before);
    assert.deepEqual(readdirSync(downloadDir), [], 'the damaged download is deleted');
  });

  test('missing CUDA libraries: exit 1 saying which, before any download', async () => {
    server = await startLoopback();
    const feed = installFakeFeed(server, { id: CUDA_PACKAGE_ID, version: VERSION, nupkg: await nupkg() });
    const target = providerDir();
    const before = listing(target);
    const partial = { ldconfigOutput: '\tlibcuda.so.1 (libc6,x86-64) => /usr/lib/x86_64-linux-gnu/libcuda.so.1', searchPaths: [], env: {} };
    const r = await run(['install-cuda', '--feed', feed.feedUrl, '--target', target, '--version', VERSION], partial);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /libcudnn\.so\.9\s+cuDNN 9\s+MISSING/);
    assert.match(r.stderr, /r1: CUDA support cannot work here yet\. Missing: libcudart\.so\.12 \(CUDA 12 runtime\), .*libcudnn\.so\.9 \(cuDNN 9\)\. Install .*cuDNN 9/);
    assert.equal(server.requests.length, 0, 'nothing was fetched');
    assert.deepEqual(listing(target), before);

    const check = await run(['install-cuda', '--check', '--target', target, '--json'], partial);
    assert.equal(check.code, 1);
    const c = JSON.parse(check.stdout) as { ok: boolean; providerInstalled: boolean; runtime: { missing: string[] } };
    assert.equal(c.ok, false);
    assert.equal(c.providerInstalled, false);
    assert.deepEqual(c.runtime.missing, ['libcudart.so.12', 'libcublas.so.12', 'libcublasLt.so.12', 'libcurand.so.10', 'libcufft.so.11', 'libcudnn.so.9']);
  });

  test('Ctrl-C mid-download: exit 130, nothing installed, the partial kept; the next run resumes and installs', async () => {
    server = await startLoopback();
    const pkg = await nupkg();
    const half = Math.floor(pkg.length / 2);
    const feed = installFakeFeed(server, { id: CUDA_PACKAGE_ID, version: VERSION, nupkg: pkg, faults: (n) => (n === 0 ? { stallAfter: half } : undefined) });
    const target = providerDir();
    const before = listing(target);
    const downloadDir = tempDir();
    // The spawned CLI finds "the CUDA runtime" through LD_LIBRARY_PATH: empty files with the sonames.
    const libs = tempDir();
    for (const l of CUDA_RUNTIME_LIBRARIES) writeFileSync(join(libs, l.soname), '');
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'install-cuda', '--feed', feed.feedUrl, '--target', target, '--version', VERSION, '--download-dir', downloadDir], {
      cwd: ROOT,
      env: { ...process.env, NO_COLOR: '1', LD_LIBRARY_PATH: libs },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    const partialFile = join(downloadDir, 'microsoft.ml.onnxruntime.gpu.linux.1.30.0.nupkg.partial');
    const sent = new Promise<void>((res) => {
      const timer = setInterval(() => {
        let size = 0;
        try {
          size = statSync(partialFile).size;
        } catch {
          // not there yet
        }
        if (/downloading/.test(stderr) && size >= half) {
          clearInterval(timer);
          child.kill('SIGINT');
          res();
        }
      }, 20);
    });
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const code = await new Promise<number | null>((res) => child.on('close', (c) => res(c)));
    await sent;
    assert.equal(code, 130, stderr);
    assert.match(stderr, /r1: cancelled; nothing was changed/);
    assert.deepEqual(listing(target), before);
    assert.equal(statSync(partialFile).size, half);

    const again = await run(['install-cuda', '--feed', feed.feedUrl, '--target', target, '--version', VERSION, '--download-dir', downloadDir]);
    assert.equal(again.code, 0, again.stderr);
    const pkgRequests = server.requests.filter((r) => r.path === feed.packagePath);
    assert.equal(pkgRequests.at(-1)!.range, `bytes=${half}-`);
    assert.deepEqual(readFileSync(join(target, 'libonnxruntime_providers_cuda.so')), CUDA_SO);
  });
});

describe('r1 install-cuda arguments', () => {
  test('parses the options', () => {
    assert.deepEqual(parseCli(['install-cuda', '--feed', 'http://127.0.0.1:9/v3-flatcontainer/', '--json']), {
      command: 'install-cuda',
      feed: 'http://127.0.0.1:9/v3-flatcontainer/',
      check: false,
      target: undefined,
      version: undefined,
      sha512: undefined,
      downloadDir: undefined,
      json: true,
    });
    assert.equal((parseCli(['install-cuda', '--check']) as { check: boolean }).check, true);
  });

  test('refuses bad values with a one-line usage error', () => {
    for (const [argv, re] of [
      [['install-cuda', '--feed', 'file:///tmp/feed'], /--feed must be an http\(s\) URL/],
      [['install-cuda', '--version', 'latest'], /--version must look like 1\.30\.0/],
      [['install-cuda', '--sha512', 'abc'], /--sha512 must be 128 hex digits/],
      [['install-cuda', '--check', '--feed', 'https://x/'], /--check only checks/],
      [['install-cuda', '--model', 'x'], /Unknown option '--model'/],
    ] as const) {
      assert.throws(() => parseCli(argv), (e: unknown) => e instanceof UsageError && re.test(e.message), argv.join(' '));
    }
  });
});
