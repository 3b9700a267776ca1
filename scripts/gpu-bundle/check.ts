/**
 * The GPU check's runner (README "GPU check without a network"). scripts/gpu-bundle.sh bundles it
 * with esbuild into `app/gpu-check.js` of the archive, next to `app/r1.js` (the CLI, src/cli/main.ts);
 * `run.sh` at the archive's top starts it with the archive's own Node:
 *
 *   ./run.sh [--tiny] [--provider LIST] [--cpu] [--work DIR] [--cuda-libs DIR]
 *            [--prompts 128,1024,4096] [--new-tokens N] [--timeout S]
 *
 * 1. Machine facts: CPU, memory, OS, Node, onnxruntime-node's version, the GPUs nvidia-smi lists
 *    (name, driver, memory), the Vulkan loader, the CUDA 12 / cuDNN 9 runtime check
 *    (`r1 install-cuda --check --json`), and whether the CUDA provider libraries are next to the
 *    binding (`--cuda-libs DIR` copies them there first: a folder holding
 *    libonnxruntime_providers_cuda.so and libonnxruntime_providers_shared.so, or an unzipped
 *    Microsoft.ML.OnnxRuntime.Gpu.Linux package).
 * 2. Builds the benchmark's random-weight models (bench/model.ts, the same builders as
 *    `npm run bench:model`) in the GPU variants of both layouts people download: onnx-community
 *    `onnx/model_q4f16.onnx` and onnxruntime-genai's `gpu` build, at the 1.5B's shapes, or with
 *    `--tiny` at the benchmark's tiny shape (seconds to build). Under `--work` (default `work/`
 *    next to run.sh); a second run reuses them.
 * 3. For each provider (default webgpu and cuda; `--cpu` adds the CPU, `--provider` lists them) and
 *    layout: `r1 info --provider P --json` (does the session load and run a first step there?),
 *    then, in a process of its own, the benchmark: model load time, a first run (shader or kernel
 *    compilation), time to first token at each prompt length (cold: no cached rows), and greedy
 *    decode tok/s with eos ignored. CUDA runs only when the provider libraries are next to the
 *    binding. A provider that fails gives an entry with `ok: false` and the reason; the run goes on.
 * 4. Prints one JSON line on stdout (progress goes to stderr) and exits 0; exit 1 only when the
 *    check itself could not run (bad flags: 2).
 */
import { spawn, spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readFileSync } from 'node:fs';
import { cpus, release, totalmem } from 'node:os';
import { join, resolve } from 'node:path';
import { R1Engine } from '../../src/engine/engine';
import type { ExecutionProvider, GenerationResult, ModelInfo, ModelVariant } from '../../src/engine/types';
import { CUDA_PROVIDER_ENTRIES, findOnnxruntimeNode } from '../../src/install/cuda';
import { Rng } from '../../test/fixtures/onnx/rng';
import { type BenchLayout, type BenchShape, buildBenchModel } from '../../bench/model';

export const PROVIDERS = ['webgpu', 'cuda', 'cpu'] as const;
export type CheckProvider = (typeof PROVIDERS)[number];

/** The GPU builds of the two layouts: what a GPU provider loads. */
export const LAYOUTS: ReadonlyArray<{ layout: Exclude<BenchLayout, 'optimum'>; variant: string; engineVariant: ModelVariant | 'auto' }> = [
  { layout: 'onnx-community', variant: 'q4f16', engineVariant: 'q4f16' },
  { layout: 'genai', variant: 'gpu', engineVariant: 'auto' },
];

const SEED = 1234;

export interface CheckArgs {
  tiny: boolean;
  providers: CheckProvider[];
  work: string;
  cudaLibs?: string;
  prompts: number[];
  decodePrompt: number;
  newTokens: number;
  timeoutMs: number;
}

export class UsageError extends Error {}

export const USAGE = `Usage: ./run.sh [--tiny] [--cpu] [--provider LIST] [--work DIR] [--cuda-libs DIR]
                [--prompts 128,1024,4096] [--new-tokens N] [--timeout S]
  --tiny             a tiny model instead of DeepSeek-R1-Distill-Qwen-1.5B's shapes (under a minute)
  --cpu              also run on the CPU; --provider webgpu,cuda,cpu lists the providers (default webgpu,cuda)
  --work DIR         where the models and caches go (default work/ next to run.sh); a second run reuses them
  --cuda-libs DIR    copy libonnxruntime_providers_cuda.so and libonnxruntime_providers_shared.so (onnxruntime
                     1.30.0) from DIR, or from an unzipped Microsoft.ML.OnnxRuntime.Gpu.Linux package, next to the binding
  --prompts LIST     prompt lengths for the time to first token (default 128,1024,4096; --tiny 16,128)
  --new-tokens N     tokens decoded for the decode speed (default 64; --tiny 32)
  --timeout S        seconds allowed for each step (default 1800; --tiny 120)
Prints one JSON line on stdout (README.txt says what is in it); progress goes to stderr.
`;

export function parseCheckArgs(argv: readonly string[], root: string): CheckArgs {
  let tiny = false;
  let providers: CheckProvider[] | undefined;
  let cpu = false;
  let work = join(root, 'work');
  let cudaLibs: string | undefined;
  let prompts: number[] | undefined;
  let newTokens: number | undefined;
  let timeoutS: number | undefined;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const value = (): string => {
      const v = argv[++i];
      if (v === undefined) throw new UsageError(`${a} needs a value`);
      return v;
    };
    const ints = (v: string, name: string): number[] => {
      const xs = v.split(',').map((s) => Number(s.trim()));
      if (xs.length === 0 || xs.some((x) => !Number.isInteger(x) || x < 1)) throw new UsageError(`${name} takes positive integers, got "${v}"`);
      return xs;
    };
    switch (a) {
      case '-h':
      case '--help':
        throw new UsageError('help');
      case '--tiny':
        tiny = true;
        break;
      case '--cpu':
        cpu = true;
        break;
      case '--provider':
      case '--providers': {
        const list = value().split(',').map((s) => s.trim()).filter(Boolean);
        for (const p of list) if (!(PROVIDERS as readonly string[]).includes(p)) throw new UsageError(`--provider takes ${PROVIDERS.join(', ')}; got "${p}"`);
        providers = list as CheckProvider[];
        break;
      }
      case '--work':
        work = resolve(value());
        break;
      case '--cuda-libs':
        cudaLibs = resolve(value());
        break;
      case '--prompts':
        prompts = ints(value(), '--prompts');
        break;
      case '--new-tokens':
        newTokens = ints(value(), '--new-tokens')[0];
        break;
      case '--timeout':
        timeoutS = ints(value(), '--timeout')[0];
        break;
      default:
        throw new UsageError(`unknown option ${a}`);
    }
  }
  const list = providers ?? ['webgpu', 'cuda'];
  if (cpu && !list.includes('cpu')) list.push('cpu');
  const ps = prompts ?? (tiny ? [16, 128] : [128, 1024, 4096]);
  return {
    tiny,
    providers: list,
    work,
    cudaLibs,
    prompts: ps,
    decodePrompt: Math.min(...ps),
    newTokens: newTokens ?? (tiny ? 32 : 64),
    timeoutMs: (timeoutS ?? (tiny ? 120 : 1800)) * 1000,
  };
}

/** Prompt token ids: seeded, from the byte-level BPE range (no special tokens), as the benchmark's. */
export function promptIds(seed: number, n: number): number[] {
  const rng = new Rng(seed);
  return Array.from({ length: n }, () => Math.floor(rng.next() * 151643));
}

/** What the benchmark process is asked to do. */
export interface MeasureParams {
  modelDir: string;
  provider: CheckProvider;
  variant: ModelVariant | 'auto';
  prompts: number[];
  decodePrompt: number;
  newTokens: number;
  contextWindow: number;
}

export interface MeasureResult {
  provider: ExecutionProvider;
  variant: ModelVariant;
  loadMs: number;
  /** The first generation (2 tokens after 8): shader compilation, kernel selection, allocations. */
  firstRunMs: number;
  ttftMs: Record<string, number>;
  decodeTokensPerSecond: number;
  decodeStepMs: number;
  decodePromptTokens: number;
  newTokens: number;
}

/** One provider and layout, in this process: the benchmark's "ours" measurement, without its contenders. */
export async function measure(p: MeasureParams): Promise<MeasureResult> {
  const t0 = performance.now();
  const engine = await R1Engine.load({ modelDir: p.modelDir, provider: p.provider, variant: p.variant });
  const loadMs = performance.now() - t0;
  try {
    const opts = { temperature: 0, stopOnEos: false, contextWindow: p.contextWindow };
    const ok = (r: GenerationResult) => {
      if (r.status === 'error') throw new Error(r.error ?? 'generation failed');
      return r;
    };
    const t1 = performance.now();
    engine.decoder.reset();
    ok(await engine.generateFromIds(promptIds(SEED + 7, 8), { ...opts, maxNewTokens: 2 }));
    const firstRunMs = performance.now() - t1;
    const ttftMs: Record<string, number> = {};
    for (const n of p.prompts) {
      engine.decoder.reset();
      ttftMs[n] = ok(await engine.generateFromIds(promptIds(SEED, n), { ...opts, maxNewTokens: 1 })).stats.timeToFirstTokenMs;
    }
    engine.decoder.reset();
    const r = ok(await engine.generateFromIds(promptIds(SEED, p.decodePrompt), { ...opts, maxNewTokens: p.newTokens }));
    return {
      provider: engine.info.provider,
      variant: engine.info.variant,
      loadMs,
      firstRunMs,
      ttftMs,
      decodeTokensPerSecond: r.stats.decodeTokensPerSecond,
      decodeStepMs: 1000 / r.stats.decodeTokensPerSecond,
      decodePromptTokens: p.decodePrompt,
      newTokens: r.stats.reasoningTokens + r.stats.answerTokens,
    };
  } finally {
    await engine.dispose();
  }
}

interface Run {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
}

/** Runs a child with this process's Node; collects its output; kills it after `timeoutMs`. */
function runNode(args: string[], timeoutMs: number, env: NodeJS.ProcessEnv = process.env): Promise<Run> {
  return new Promise((done) => {
    // This process's Node flags too (run.sh's --no-js-float16array).
    const child = spawn(process.execPath, [...process.execArgv, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env });
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, timeoutMs);
    child.on('error', (e) => {
      stderr += String(e);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      done({ code, signal, stdout, stderr, timedOut });
    });
  });
}

/** The reason a child failed, in one line: its last `r1:` line, else its last lines. */
function failure(r: Run, what: string, timeoutMs: number): string {
  if (r.timedOut) return `${what} did not finish within ${Math.round(timeoutMs / 1000)} s`;
  const lines = r.stderr.split('\n').map((l) => l.trim()).filter(Boolean);
  const r1 = [...lines].reverse().find((l) => l.startsWith('r1: ') || l.startsWith('error: '));
  const why = r1?.replace(/^(r1|error): /, '') ?? lines.slice(-3).join(' ');
  const how = r.signal ? `was killed by ${r.signal}` : `exited with code ${r.code}`;
  return why ? why : `${what} ${how} without a message`;
}

function sh(cmd: string, args: string[]): string | undefined {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 20_000 });
  return r.status === 0 ? r.stdout : undefined;
}

export interface GpuFact {
  name: string;
  driver: string;
  memoryMiB?: number;
}

/** GPUs as nvidia-smi lists them; undefined without nvidia-smi (or when it fails: `error`). */
function nvidiaGpus(): { gpus: GpuFact[]; error?: string } | undefined {
  const r = spawnSync('nvidia-smi', ['--query-gpu=name,driver_version,memory.total', '--format=csv,noheader,nounits'], { encoding: 'utf8', timeout: 20_000 });
  if (r.error && (r.error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
  if (r.status !== 0) return { gpus: [], error: (r.stderr || r.stdout || String(r.error ?? `exit ${r.status}`)).trim().split('\n')[0] };
  const gpus = r.stdout
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean)
    .map((l) => {
      const [name, driver, mem] = l.split(',').map((s) => s.trim());
      const memoryMiB = Number(mem);
      return { name: name ?? '', driver: driver ?? '', ...(Number.isFinite(memoryMiB) ? { memoryMiB } : {}) };
    });
  return { gpus };
}

function osName(): string {
  try {
    const m = /^PRETTY_NAME="?([^"\n]*)"?$/m.exec(readFileSync('/etc/os-release', 'utf8'));
    if (m) return m[1]!;
  } catch {
    // not there
  }
  return process.platform;
}

function cpuName(): string {
  try {
    const m = /^model name\s*:\s*(.+)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'));
    if (m) return m[1]!;
  } catch {
    // not Linux
  }
  return cpus()[0]?.model ?? 'unknown';
}

/** The provider libraries' files inside `dir`: at its top, or where the NuGet package has them. */
function cudaLibsIn(dir: string): string[] | undefined {
  for (const base of [dir, join(dir, 'runtimes', 'linux-x64', 'native')]) {
    const files = CUDA_PROVIDER_ENTRIES.map((e) => join(base, e.slice(e.lastIndexOf('/') + 1)));
    if (files.every((f) => existsSync(f))) return files;
  }
  return undefined;
}

const log = (s: string) => process.stderr.write(`[gpu-check] ${s}\n`);
const round = (x: number, d = 1) => Math.round(x * 10 ** d) / 10 ** d;

export interface CheckEntry {
  provider: CheckProvider;
  layout: string;
  variant: string;
  ok: boolean;
  /** Why it failed, and at which step (`skipped`: not tried, e.g. CUDA without its libraries). */
  error?: string;
  stage?: 'skipped' | 'build' | 'info' | 'bench';
  /** `r1 info --provider P --json`: the provider and variant that loaded, the providers tried. */
  info?: { provider: string; variant: string; modelFile: string; attempts: ModelInfo['attempts']; preparedSteps?: string[]; notes: string[] };
  loadMs?: number;
  firstRunMs?: number;
  ttftMs?: Record<string, number>;
  decodeTokensPerSecond?: number;
  decodeStepMs?: number;
  decodePromptTokens?: number;
  newTokens?: number;
  seconds: number;
}

async function main(argv: string[]): Promise<number> {
  if (argv[0] === '--measure') {
    try {
      const r = await measure(JSON.parse(argv[1]!) as MeasureParams);
      process.stdout.write(`RESULT ${JSON.stringify(r)}\n`);
      return 0;
    } catch (e) {
      process.stderr.write(`error: ${(e instanceof Error ? e.message : String(e)).replace(/\s*\n\s*/g, ' ')}\n`);
      return 1;
    }
  }
  const root = resolve(__dirname, '..');
  let a: CheckArgs;
  try {
    a = parseCheckArgs(argv, root);
  } catch (e) {
    if (e instanceof UsageError && e.message === 'help') {
      process.stdout.write(USAGE);
      return 0;
    }
    if (e instanceof UsageError) {
      process.stderr.write(`run.sh: ${e.message}\n`);
      return 2;
    }
    throw e;
  }
  const t0 = performance.now();
  const cli = join(__dirname, 'r1.js');
  mkdirSync(a.work, { recursive: true });
  // Prepared CPU copies and anything else the engine caches stay in the work folder.
  const env = { ...process.env, XDG_CACHE_HOME: join(a.work, 'cache') };
  let build: Record<string, unknown> = {};
  try {
    build = JSON.parse(readFileSync(join(root, 'BUILD.json'), 'utf8')) as Record<string, unknown>;
  } catch {
    // a development run
  }

  // 1. The machine.
  const ort = findOnnxruntimeNode(root);
  const cudaTarget = ort.providerDir;
  let cudaLibsCopied: string | undefined;
  if (a.cudaLibs) {
    const files = cudaLibsIn(a.cudaLibs);
    if (!files) {
      process.stderr.write(`run.sh: --cuda-libs ${a.cudaLibs}: no libonnxruntime_providers_cuda.so and libonnxruntime_providers_shared.so there (nor in runtimes/linux-x64/native/ under it)\n`);
      return 2;
    }
    for (const f of files) copyFileSync(f, join(cudaTarget, f.slice(f.lastIndexOf('/') + 1)));
    cudaLibsCopied = a.cudaLibs;
    log(`copied the CUDA provider libraries from ${a.cudaLibs} to ${cudaTarget}`);
  }
  const cudaLibsFound = existsSync(join(cudaTarget, 'libonnxruntime_providers_cuda.so'));
  const nv = nvidiaGpus();
  const vulkan = sh('/sbin/ldconfig', ['-p']) ?? sh('ldconfig', ['-p']);
  const cudaCheck = await runNode([cli, 'install-cuda', '--check', '--json'], 60_000, env);
  let cudaRuntime: unknown;
  try {
    const j = JSON.parse(cudaCheck.stdout.trim().split('\n').pop() ?? '') as { runtime?: { ok: boolean; message: string; libraries?: Array<{ name: string; found?: unknown }> } };
    cudaRuntime = j.runtime ? { ok: j.runtime.ok, message: j.runtime.message } : undefined;
  } catch {
    cudaRuntime = { ok: false, message: failure(cudaCheck, 'r1 install-cuda --check', 60_000) };
  }
  const machine = {
    cpu: cpuName(),
    logicalCpus: cpus().length,
    memoryGiB: round(totalmem() / 2 ** 30),
    os: osName(),
    kernel: release(),
    arch: process.arch,
    node: process.version,
    nodeFlags: process.execArgv,
    float16Array: typeof (globalThis as { Float16Array?: unknown }).Float16Array === 'function',
    onnxruntime: ort.version,
    gpu: nv ? (nv.gpus[0] ?? null) : null,
    gpus: nv?.gpus ?? [],
    nvidiaSmi: nv ? (nv.error ? `failed: ${nv.error}` : 'ok') : 'not found',
    driver: nv?.gpus[0]?.driver ?? null,
    vulkanLoader: vulkan === undefined ? null : /libvulkan\.so\.1\b/.test(vulkan),
    cudaProviderLibraries: { found: cudaLibsFound, dir: cudaTarget, ...(cudaLibsCopied ? { copiedFrom: cudaLibsCopied } : {}) },
    cudaRuntime,
  };
  log(`${machine.cpu}, ${machine.memoryGiB} GiB, ${machine.os}; GPU: ${machine.gpu ? `${machine.gpu.name} (driver ${machine.gpu.driver})` : `none listed (nvidia-smi ${machine.nvidiaSmi})`}; onnxruntime-node ${ort.version}`);

  // 2. The models.
  const shape: BenchShape = a.tiny ? 'tiny' : '1.5b';
  const models: Record<string, { ok: boolean; dir?: string; file?: string; bytes?: number; buildSeconds?: number; error?: string }> = {};
  for (const l of LAYOUTS) {
    const t = performance.now();
    try {
      const { dir, manifest } = await buildBenchModel({ layout: l.layout, variant: l.variant, shape, seed: SEED, outDir: join(a.work, 'models', `${l.layout}-${l.variant}-${shape}`), log });
      models[l.layout] = { ok: true, dir, file: manifest.file, bytes: manifest.fileBytes + manifest.dataBytes, buildSeconds: round((performance.now() - t) / 1000) };
    } catch (e) {
      models[l.layout] = { ok: false, error: e instanceof Error ? e.message : String(e) };
      log(`building the ${l.layout} model failed: ${models[l.layout]!.error}`);
    }
  }

  // 3. Each provider and layout.
  const results: CheckEntry[] = [];
  for (const provider of a.providers) {
    for (const l of LAYOUTS) {
      const t = performance.now();
      const entry: CheckEntry = { provider, layout: l.layout, variant: l.variant, ok: false, seconds: 0 };
      results.push(entry);
      const done = (fields: Partial<CheckEntry>) => {
        Object.assign(entry, fields, { seconds: round((performance.now() - t) / 1000) });
        log(`${provider} ${l.layout}: ${entry.ok ? `decode ${round(entry.decodeTokensPerSecond ?? 0)} tok/s, load ${round((entry.loadMs ?? 0) / 1000, 2)} s` : `${entry.stage}: ${entry.error}`}`);
      };
      const m = models[l.layout]!;
      if (!m.ok) {
        done({ stage: 'build', error: `the model was not built: ${m.error}` });
        continue;
      }
      if (provider === 'cuda' && !cudaLibsFound) {
        done({
          stage: 'skipped',
          error: `the CUDA provider libraries are not next to the onnxruntime binding (${join(cudaTarget, 'libonnxruntime_providers_cuda.so')} is missing): run again with --cuda-libs DIR, DIR holding libonnxruntime_providers_cuda.so and libonnxruntime_providers_shared.so of onnxruntime ${ort.version} (where R1: Install CUDA Support put them, or an unzipped Microsoft.ML.OnnxRuntime.Gpu.Linux ${ort.version} package)`,
        });
        continue;
      }
      log(`${provider} ${l.layout}: r1 info --provider ${provider}`);
      const infoRun = await runNode([cli, 'info', '--model', m.dir!, '--provider', provider, '--variant', l.engineVariant, '--json'], a.timeoutMs, env);
      if (infoRun.code !== 0) {
        done({ stage: 'info', error: failure(infoRun, 'r1 info', a.timeoutMs) });
        continue;
      }
      try {
        const i = JSON.parse(infoRun.stdout.trim().split('\n').pop()!) as ModelInfo;
        entry.info = {
          provider: i.provider,
          variant: i.variant,
          modelFile: i.modelFile.startsWith(m.dir!) ? i.modelFile.slice(m.dir!.length + 1) : i.modelFile,
          attempts: i.attempts,
          ...(i.preparedCopy ? { preparedSteps: i.preparedCopy.steps.filter((s) => s.applied).map((s) => s.step) } : {}),
          notes: i.notes,
        };
      } catch (e) {
        done({ stage: 'info', error: `r1 info printed no JSON: ${String(e)}` });
        continue;
      }
      log(`${provider} ${l.layout}: benchmark (prompts ${a.prompts.join('/')}, ${a.newTokens} new tokens)`);
      const params: MeasureParams = {
        modelDir: m.dir!,
        provider,
        variant: l.engineVariant,
        prompts: a.prompts,
        decodePrompt: a.decodePrompt,
        newTokens: a.newTokens,
        contextWindow: Math.max(...a.prompts, a.decodePrompt) + a.newTokens + 16,
      };
      const benchRun = await runNode([__filename, '--measure', JSON.stringify(params)], a.timeoutMs, env);
      const line = benchRun.stdout.split('\n').find((s) => s.startsWith('RESULT '));
      if (benchRun.code !== 0 || !line) {
        done({ stage: 'bench', error: failure(benchRun, 'the benchmark', a.timeoutMs) });
        continue;
      }
      const r = JSON.parse(line.slice(7)) as MeasureResult;
      if (r.provider !== provider) {
        done({ stage: 'bench', error: `the session ran on ${r.provider}, not ${provider}` });
        continue;
      }
      done({
        ok: true,
        loadMs: round(r.loadMs),
        firstRunMs: round(r.firstRunMs),
        ttftMs: Object.fromEntries(Object.entries(r.ttftMs).map(([k, v]) => [k, round(v)])),
        decodeTokensPerSecond: round(r.decodeTokensPerSecond, 2),
        decodeStepMs: round(r.decodeStepMs, 2),
        decodePromptTokens: r.decodePromptTokens,
        newTokens: r.newTokens,
      });
    }
  }

  const out = {
    schema: 1,
    check: 'r1-gpu-check',
    build,
    mode: a.tiny ? 'tiny' : '1.5b',
    shape,
    date: new Date().toISOString(),
    machine,
    models: Object.fromEntries(Object.entries(models).map(([k, v]) => [k, { ...v, dir: undefined }])),
    settings: { providers: a.providers, prompts: a.prompts, decodePrompt: a.decodePrompt, newTokens: a.newTokens, work: a.work },
    results,
    ok: results.filter((r) => r.ok).map((r) => `${r.provider}/${r.layout}`),
    seconds: round((performance.now() - t0) / 1000),
  };
  process.stdout.write(`${JSON.stringify(out)}\n`);
  return 0;
}

if (require.main === module) {
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (e: unknown) => {
      process.stderr.write(`[gpu-check] failed: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
      process.exitCode = 1;
    },
  );
}

