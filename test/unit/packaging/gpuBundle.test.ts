/**
 * The GPU check archive (scripts/gpu-bundle.sh; README "GPU check without a network"): built, or
 * reused from .cache/gpu-bundle when its content has not changed (scripts/gpu-bundle/build.ts keys
 * it by the hash of every file it holds; writing the .tar.xz takes minutes on two cores), unpacked
 * into an empty temporary folder and run there as a machine without Node would run it: PATH holds
 * the system's programs but no `node` (nor npm), and the environment nothing else of ours. There is
 * no GPU here, so `--tiny --cpu` must give ok CPU entries and WebGPU / CUDA entries with reasons.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, before, describe, test } from 'node:test';

const ROOT = resolve(__dirname, '..', '..', '..');
const MAX_BYTES = 60 * 2 ** 20;
const tmp = mkdtempSync(join(tmpdir(), 'r1-gpu-bundle-test-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

/** A PATH of the system's programs (/usr/bin, /bin) without Node: a folder of links to them. */
function pathWithoutNode(): string {
  const bin = join(tmp, 'bin');
  mkdirSync(bin);
  const skip = new Set(['node', 'nodejs', 'npm', 'npx', 'corepack', 'tsx']);
  for (const dir of ['/usr/bin', '/bin']) {
    for (const name of readdirSync(dir)) {
      if (skip.has(name) || existsSync(join(bin, name))) continue;
      symlinkSync(join(dir, name), join(bin, name));
    }
  }
  return bin;
}

interface Entry {
  provider: string;
  layout: string;
  ok: boolean;
  error?: string;
  stage?: string;
  loadMs?: number;
  ttftMs?: Record<string, number>;
  decodeTokensPerSecond?: number;
  info?: { provider: string; variant: string };
}

describe('the GPU check archive', () => {
  let archive = '';
  let dir = '';
  let env: NodeJS.ProcessEnv = {};

  before(() => {
    const r = spawnSync('bash', [join(ROOT, 'scripts/gpu-bundle.sh')], { cwd: ROOT, encoding: 'utf8', timeout: 30 * 60_000 });
    assert.equal(r.status, 0, `scripts/gpu-bundle.sh failed:\n${r.stdout}\n${r.stderr}`);
    archive = r.stdout.trim().split('\n').pop()!;
    dir = join(tmp, 'unpacked');
    mkdirSync(dir);
    const x = spawnSync('tar', ['-xf', archive, '-C', dir], { encoding: 'utf8' });
    assert.equal(x.status, 0, x.stderr);
    const path = pathWithoutNode();
    env = { PATH: path, HOME: join(tmp, 'home'), LANG: 'C.UTF-8' };
    for (const d of path.split(':')) assert.ok(!existsSync(join(d, 'node')), `${d} has node`);
    assert.notEqual(spawnSync('sh', ['-c', 'command -v node'], { env }).status, 0, 'node is not on PATH');
  });

  test('is one .tar.xz under 60 MiB with run.sh, Node 24, the bundles and the Linux x64 ONNX Runtime at its top', () => {
    assert.match(archive, /r1-gpu-check-linux-x64\.tar\.xz$/);
    const bytes = statSync(archive).size;
    assert.ok(bytes < MAX_BYTES, `${archive} is ${bytes} bytes`);
    for (const f of [
      'run.sh',
      'README.txt',
      'BUILD.json',
      'node/bin/node',
      'app/r1.js',
      'app/gpu-check.js',
      'node_modules/onnxruntime-node/bin/napi-v6/linux/x64/onnxruntime_binding.node',
      'node_modules/onnxruntime-node/bin/napi-v6/linux/x64/libonnxruntime.so.1',
      'node_modules/onnxruntime-node/dist/index.js',
      'node_modules/onnxruntime-common/dist/cjs/index.js',
      'node_modules/onnxruntime-common/dist/cjs/package.json',
    ]) {
      assert.ok(existsSync(join(dir, f)), `${f} is in the archive`);
    }
    assert.ok(statSync(join(dir, 'run.sh')).mode & 0o100, 'run.sh is executable');
    // Only the Linux x64 binaries, and no CUDA provider (hundreds of MB, installed separately).
    assert.deepEqual(readdirSync(join(dir, 'node_modules/onnxruntime-node/bin/napi-v6')), ['linux']);
    assert.deepEqual(readdirSync(join(dir, 'node_modules/onnxruntime-node/bin/napi-v6/linux')), ['x64']);
    const v = spawnSync(join(dir, 'node/bin/node'), ['--version'], { encoding: 'utf8', env });
    assert.match(v.stdout, /^v24\./);
    console.log(`# archive ${(bytes / 2 ** 20).toFixed(1)} MiB (${bytes} bytes)`);
  });

  test('./run.sh --tiny --cpu from a clean folder without Node prints one JSON line: CPU ok, WebGPU and CUDA with their reasons', () => {
    const t0 = performance.now();
    const r = spawnSync(join(dir, 'run.sh'), ['--tiny', '--cpu'], { cwd: dir, env, encoding: 'utf8', timeout: 10 * 60_000 });
    const seconds = (performance.now() - t0) / 1000;
    assert.equal(r.status, 0, `run.sh failed (${r.status ?? r.signal}):\n${r.stderr}`);
    const lines = r.stdout.split('\n').filter((l) => l.trim() !== '');
    assert.equal(lines.length, 1, `one line on stdout, got:\n${r.stdout}`);
    const j = JSON.parse(lines[0]!) as {
      mode: string;
      machine: { node: string; onnxruntime: string; gpu: unknown; cudaProviderLibraries: { found: boolean }; cudaRuntime: { ok: boolean; message: string } };
      models: Record<string, { ok: boolean; bytes: number }>;
      results: Entry[];
      seconds: number;
    };
    assert.equal(j.mode, 'tiny');
    assert.equal(j.machine.node, 'v24.21.0');
    assert.equal(j.machine.onnxruntime, '1.30.0');
    assert.ok('gpu' in j.machine);
    assert.equal(typeof j.machine.cudaRuntime.ok, 'boolean');
    for (const layout of ['onnx-community', 'genai']) {
      assert.ok(j.models[layout]?.ok && j.models[layout].bytes > 0, `the ${layout} model was built`);
      const of = (p: string) => j.results.find((e) => e.provider === p && e.layout === layout);
      const cpu = of('cpu');
      assert.ok(cpu?.ok, `cpu ${layout}: ${cpu?.error}`);
      assert.ok(cpu.decodeTokensPerSecond! > 0);
      assert.ok(cpu.loadMs! > 0);
      assert.deepEqual(Object.keys(cpu.ttftMs!), ['16', '128']);
      for (const ms of Object.values(cpu.ttftMs!)) assert.ok(ms > 0);
      assert.equal(cpu.info?.provider, 'cpu');
      // No GPU here: entries with the reason, not an aborted run.
      const webgpu = of('webgpu');
      assert.ok(webgpu && !webgpu.ok, `webgpu ${layout} is an error entry`);
      assert.match(webgpu.error ?? '', /webgpu|vulkan|adapter/i);
      const cuda = of('cuda');
      assert.ok(cuda && !cuda.ok, `cuda ${layout} is an error entry`);
      assert.match(cuda.error ?? '', j.machine.cudaProviderLibraries.found ? /\w/ : /CUDA provider libraries are not next to the onnxruntime binding/);
    }
    // Everything it wrote is under the folder it was unpacked in.
    assert.ok(existsSync(join(dir, 'work', 'models')));
    assert.ok(!existsSync(join(tmp, 'home')) || readdirSync(join(tmp, 'home')).length === 0, 'nothing written to HOME');
    console.log(`# ./run.sh --tiny --cpu: ${seconds.toFixed(1)} s (the runner's own count: ${j.seconds} s)`);
  });

  test("--cuda-libs puts the provider libraries next to the binding, CUDA is then tried and fails with the engine's reason; nvidia-smi's GPU is recorded", () => {
    // A NuGet package's layout, with files that are no libraries: the engine's CUDA runtime check
    // (or the session) refuses them here, which is the point: an entry with the reason.
    const pkg = join(tmp, 'cuda-package');
    const native = join(pkg, 'runtimes', 'linux-x64', 'native');
    mkdirSync(native, { recursive: true });
    for (const f of ['libonnxruntime_providers_cuda.so', 'libonnxruntime_providers_shared.so']) writeFileSync(join(native, f), 'not a library');
    const fake = join(tmp, 'fake-bin');
    mkdirSync(fake);
    writeFileSync(join(fake, 'nvidia-smi'), '#!/bin/sh\necho "NVIDIA Test GPU, 555.42.06, 8192"\n', { mode: 0o755 });
    const binding = join(dir, 'node_modules/onnxruntime-node/bin/napi-v6/linux/x64');
    try {
      const r = spawnSync(join(dir, 'run.sh'), ['--tiny', '--provider', 'cuda', '--cuda-libs', pkg], { cwd: dir, env: { ...env, PATH: `${fake}:${env.PATH}` }, encoding: 'utf8', timeout: 10 * 60_000 });
      assert.equal(r.status, 0, r.stderr);
      const j = JSON.parse(r.stdout) as { machine: { gpu: unknown; driver: string; cudaProviderLibraries: { found: boolean; copiedFrom?: string } }; results: Entry[] };
      assert.deepEqual(j.machine.gpu, { name: 'NVIDIA Test GPU', driver: '555.42.06', memoryMiB: 8192 });
      assert.equal(j.machine.driver, '555.42.06');
      assert.deepEqual(j.machine.cudaProviderLibraries, { found: true, dir: binding, copiedFrom: pkg });
      assert.deepEqual(j.results.map((e) => [e.provider, e.layout, e.ok]), [['cuda', 'onnx-community', false], ['cuda', 'genai', false]]);
      for (const e of j.results) {
        assert.ok(e.stage === 'info' || e.stage === 'bench', `tried, not skipped: ${e.stage}`);
        assert.match(e.error ?? '', /cuda/i);
      }
    } finally {
      for (const f of ['libonnxruntime_providers_cuda.so', 'libonnxruntime_providers_shared.so']) rmSync(join(binding, f), { force: true });
    }
  });

  test('refuses an unknown option, and a --cuda-libs folder without the libraries, with exit code 2', () => {
    const r = spawnSync(join(dir, 'run.sh'), ['--bogus'], { cwd: dir, env, encoding: 'utf8' });
    assert.equal(r.status, 2);
    assert.match(r.stderr, /unknown option --bogus/);
    const c = spawnSync(join(dir, 'run.sh'), ['--tiny', '--cuda-libs', tmp], { cwd: dir, env, encoding: 'utf8' });
    assert.equal(c.status, 2, c.stderr);
    assert.match(c.stderr, /--cuda-libs .*: no libonnxruntime_providers_cuda\.so and libonnxruntime_providers_shared\.so there/);
    assert.equal(c.stdout, '');
  });
});
