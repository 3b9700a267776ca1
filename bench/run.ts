/**
 * `npm run bench`: R1 Coder's engine against transformers.js, llama.cpp and a bare onnxruntime-node loop on
 * the same random-weight model folder (bench/model.ts) in one of the layouts people download, same
 * prompt tokens, greedy, the same number of new tokens with eos ignored. Each contender runs in its
 * own process (its peak RSS is its own); runs alternate A/B/C, A/B/C, ... and the figures are
 * medians with their spread (min..max).
 *
 *   npm run bench -- [--quick] [--layout onnx-community|genai|optimum] [--variant V] [--shape tiny|1.5b|7b]
 *                    [--provider cpu] [--runs N] [--new-tokens N] [--prompts 128,1024,4096]
 *                    [--contenders ours,transformers.js,bare-ort,linear-floor,llama.cpp,llama.cpp-q4_k_m] [--engine '{"cpuThreads":2}']
 *                    [--out DIR] [--label TEXT] [--no-merge] [--external]
 *
 * Layouts (bench/model.ts; bench/NOTES.md "Layouts"): `onnx-community` (the default and the
 * headline: onnx/model_q4.onnx, onnxruntime-genai's builder graph with MultiHeadAttention, as on
 * the hub; variants q4, q4f16, fp32), `genai` (genai_config.json + model.onnx, the builder's
 * GroupQueryAttention graph; variants cpu, gpu) and `optimum` (the earlier Optimum-style q4 model).
 * Every contender runs the same file: transformers.js the folder's onnx/model_<variant>.onnx, ours
 * and the bare loop the prepared CPU copy of it, the linear floor the same shapes and weight layout.
 * transformers.js cannot load a genai folder (no config.json, no onnx/model_<dtype>.onnx): there it
 * is not started, and the results say so. llama.cpp (node-llama-cpp) decodes a GGUF of the same
 * shapes and float weights (bench/ggufModel.ts), Q4_0 (`llama.cpp`, the file the ratios
 * decodeVsLlamaCpp and ttft4096VsLlamaCpp name) and Q4_K_M (`llama.cpp-q4_k_m`, ratios suffixed
 * Q4KM); the GGUFs are built into .cache/bench/gguf on first use.
 *
 * Without --quick: shape 1.5b, 2 runs, 64 new tokens, prompts 128/1024/4096, results in
 * bench/results.md and bench/results.json. With --quick: shape tiny unless --shape is given, 1 run,
 * 32 new tokens, results in .cache/bench/results-quick.{md,json} (the committed figures stay).
 * Either file holds one run per layout, variant, shape and provider: a run replaces the run of the
 * same four and keeps the others (--no-merge: only this run); a results.json written before layouts
 * were recorded (one Optimum-layout run) is read as such and replaced by the next run. Every run,
 * and every contender's figures in it, carries its layout and variant.
 */
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { cpus, loadavg, totalmem } from 'node:os';
import { basename, join, resolve } from 'node:path';
import { measureBandwidth, type BandwidthResult } from './bandwidth';
import { type ContenderKind, type ContenderParams, type ContenderResult, LLAMA_CPP_KINDS } from './contender';
import { type GgufManifest, buildBenchGguf } from './ggufModel';
import { BENCH_DIR, BENCH_LAYOUTS, BENCH_SHAPES, type BenchLayout, type BenchModelManifest, type BenchShape, LAYOUT_VARIANTS, buildBenchModel, DEFAULT_SEED, defaultVariant } from './model';
import { type LookupJson, applyLookupRatios, renderLookup } from './lookupReport';
import { R1Tokenizer } from '../src/engine/tokenizer';
import type { GraphRewrites } from '../src/engine/graph/rewrites';
import type { LoadOptions, ModelVariant, PreparedStep, ProviderPreference } from '../src/engine/types';

const ALL: ContenderKind[] = ['ours', 'transformers.js', 'bare-ort', 'linear-floor', 'llama.cpp', 'llama.cpp-q4_k_m'];

/** Why transformers.js is not started on a genai folder. */
const TJS_GENAI = 'transformers.js cannot load an onnxruntime-genai folder: it reads config.json and onnx/model_<dtype>.onnx, and the folder has genai_config.json and model.onnx instead (the onnx-community layout is what it loads)';

interface Args {
  quick: boolean;
  layout: BenchLayout;
  variant: string;
  shape: BenchShape;
  provider: ProviderPreference;
  runs: number;
  newTokens: number;
  prompts: number[];
  contenders: ContenderKind[];
  engine: Partial<LoadOptions>;
  out: string;
  label: string;
  prefillChunkSize: number;
  seed: number;
  decodePrompt: number;
  rewrites?: GraphRewrites;
  merge: boolean;
  /** onnx-community: weights in `<file>_data` as at 7b, at any shape (bench/model.ts). */
  external: boolean;
}

function parseArgs(argv: string[]): Args {
  const get = (name: string): string | undefined => {
    const i = argv.indexOf(name);
    if (i >= 0) return argv[i + 1];
    return argv.find((a) => a.startsWith(`${name}=`))?.slice(name.length + 1);
  };
  const quick = argv.includes('--quick');
  const layout = (get('--layout') ?? 'onnx-community') as BenchLayout;
  if (!BENCH_LAYOUTS.includes(layout)) throw new Error(`--layout must be one of ${BENCH_LAYOUTS.join(', ')}, got ${layout}`);
  const variant = get('--variant') ?? defaultVariant(layout);
  if (!LAYOUT_VARIANTS[layout].includes(variant)) throw new Error(`--variant of the ${layout} layout must be one of ${LAYOUT_VARIANTS[layout].join(', ')}, got ${variant}`);
  const shape = (get('--shape') ?? (quick ? 'tiny' : '1.5b')) as BenchShape;
  if (!BENCH_SHAPES.includes(shape)) throw new Error(`--shape must be one of ${BENCH_SHAPES.join(', ')}, got ${shape}`);
  const contenders = (get('--contenders')?.split(',') ?? ALL) as ContenderKind[];
  for (const c of contenders) if (!ALL.includes(c)) throw new Error(`unknown contender ${c} (${ALL.join(', ')})`);
  return {
    quick,
    layout,
    variant,
    shape,
    provider: (get('--provider') ?? 'cpu') as ProviderPreference,
    runs: Number(get('--runs') ?? (quick ? 1 : 2)),
    newTokens: Number(get('--new-tokens') ?? (quick ? 32 : 64)),
    prompts: (get('--prompts') ?? '128,1024,4096').split(',').map(Number),
    contenders,
    engine: JSON.parse(get('--engine') ?? '{}') as Partial<LoadOptions>,
    out: resolve(get('--out') ?? (quick ? BENCH_DIR : join(__dirname))),
    label: get('--label') ?? '',
    prefillChunkSize: Number(get('--chunk') ?? 256),
    seed: Number(get('--seed') ?? DEFAULT_SEED),
    decodePrompt: Number(get('--decode-prompt') ?? 128),
    rewrites: get('--rewrites') ? (JSON.parse(get('--rewrites')!) as GraphRewrites) : undefined,
    merge: !argv.includes('--no-merge'),
    external: argv.includes('--external'),
  };
}
function runChild(params: ContenderParams, timeoutMs: number): Promise<ContenderResult> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', join(__dirname, 'contender.ts'), JSON.stringify(params)], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('close', (code) => {
      clearTimeout(timer);
      const line = out.split('\n').find((l) => l.startsWith('RESULT '));
      if (code === 0 && line) resolvePromise(JSON.parse(line.slice(7)) as ContenderResult);
      else reject(new Error(`${params.kind} exited with ${code}:\n${err.slice(-3000)}`));
    });
  });
}

interface Stat {
  median: number;
  min: number;
  max: number;
  values: number[];
}

function stat(values: number[]): Stat {
  const s = [...values].sort((a, b) => a - b);
  const n = s.length;
  const median = n % 2 ? s[(n - 1) / 2]! : (s[n / 2 - 1]! + s[n / 2]!) / 2;
  return { median, min: s[0]!, max: s[n - 1]!, values };
}

/** Which model a figure was measured on (absent in results written before layouts were recorded: the Optimum layout). */
interface LayoutTag {
  layout: BenchLayout;
  variant: string;
  shape: BenchShape;
}

interface Summary extends Partial<LayoutTag> {
  loadMs: Stat;
  ttftMs: Record<string, Stat>;
  decodeTokensPerSecond: Stat;
  stepMs: Stat;
  peakRssBytes: Stat;
  loadPeakRssBytes: Stat;
  followUpTtftMs?: Stat;
  followUp?: { promptTokens: number; reusedTokens: number };
  /** ours, bare-ort: per run, the median time of a decode step spent outside session.run. */
  outsideRunMs?: Stat;
  /** linear-floor: the attention products alone, by prompt length. */
  attentionProductsMs?: Record<string, Stat>;
}

function summarize(rs: ContenderResult[], prompts: number[], tag: LayoutTag): Summary {
  const ttftMs: Record<string, Stat> = {};
  for (const p of prompts) ttftMs[p] = stat(rs.map((r) => r.ttftMs[p]!));
  return {
    ...tag,
    loadMs: stat(rs.map((r) => r.loadMs)),
    ttftMs,
    decodeTokensPerSecond: stat(rs.map((r) => r.decode.tokensPerSecond)),
    stepMs: stat(rs.map((r) => r.decode.stepMs)),
    peakRssBytes: stat(rs.map((r) => r.peakRss)),
    loadPeakRssBytes: stat(rs.map((r) => r.loadPeakRss)),
    ...(rs.every((r) => r.decode.outsideRunMs?.length) ? { outsideRunMs: stat(rs.map((r) => stat(r.decode.outsideRunMs!).median)) } : {}),
    ...(rs.every((r) => r.attentionProductsMs) ? { attentionProductsMs: Object.fromEntries(prompts.map((n) => [n, stat(rs.map((r) => r.attentionProductsMs![n]!))])) } : {}),
    ...(rs.every((r) => r.followUp)
      ? { followUpTtftMs: stat(rs.map((r) => r.followUp!.ttftMs)), followUp: { promptTokens: rs[0]!.followUp!.promptTokens, reusedTokens: rs[0]!.followUp!.reusedTokens } }
      : {}),
  };
}

function machine(): Record<string, unknown> {
  let model = cpus()[0]?.model ?? 'unknown';
  try {
    const m = /^model name\s*:\s*(.+)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'));
    if (m) model = m[1]!;
  } catch {
    // not Linux
  }
  return { cpu: model, logicalCpus: cpus().length, memoryGiB: Math.round(totalmem() / 2 ** 30), platform: process.platform, arch: process.arch, node: process.version };
}

const fmt = (x: number, d = 1) => (Number.isFinite(x) ? x.toFixed(d) : 'n/a');
const spread = (s: Stat, d = 1, k = 1) => (s.values.length > 1 ? ` (${fmt(s.min / k, d)}–${fmt(s.max / k, d)})` : '');


/** One benchmark run: one layout, variant, shape and provider. */
interface RunJson {
  /** 2 for runs that record their layout; absent in results written before. */
  schema?: number;
  date: string;
  label: string;
  layout?: BenchLayout;
  variant?: string;
  shape?: BenchShape;
  machine: Record<string, unknown>;
  loadAverage: { before: number[]; afterEachChild: number[][] };
  args: Partial<Args> & { provider: ProviderPreference; runs: number; newTokens: number; prompts: number[]; decodePrompt: number };
  model: Partial<BenchModelManifest> & { dir: string; shape: string; fileBytes: number; weightBytesPerToken: number; matMulNBitsNodes: number };
  bandwidth: { allThreads: BandwidthResult; oneThread: BandwidthResult; before?: BandwidthResult; after?: BandwidthResult };
  roofline: { stepMs: number; tokensPerSecond: number; fraction: number | null; bareOrtFraction: number | null; linearFloorFraction: number | null; weightBytesPerToken: number; bandwidthBytesPerSecond: number } & Partial<LayoutTag>;
  contenders: Record<string, Summary>;
  /** Contenders asked for but not started, and why. */
  skipped?: Record<string, string>;
  ratios: Record<string, number | null>;
  greedyAgreement: Record<string, number | null>;
  /** How many greedy tokens each pair compared (the shorter sequence). */
  greedyCompared?: Record<string, number | null>;
  /** The prepared CPU copy ours (and the bare loop) loaded, step by step, as r1 info lists it. */
  preparedSteps?: PreparedStep[];
  /** false: the graph takes one token at a time once its cache holds some (the prompt then runs in one piece). */
  multiTokenSteps?: { ours?: boolean; bareOrt?: boolean };
  /** Set when the floor's grouping of the linear layers is not what the prepared copy reported. */
  floorMismatch?: string;
  /** The GGUF files the llama.cpp contenders decoded, by file type (bench/ggufModel.ts). */
  gguf?: Record<string, GgufManifest>;
  /** How node-llama-cpp ran (threads, batch, context, flash attention, build), from the first llama.cpp run. */
  llamaCpp?: ContenderResult['llamaCpp'];
  raw?: Record<string, ContenderResult[]>;
  wallSeconds: number;
}

/** bench/results.json: one run per layout, variant, shape and provider; `lookup`: bench/lookup.ts's section, kept as it is. */
interface ResultsDoc {
  schema: 2;
  runs: RunJson[];
  lookup?: LookupJson;
}

/** results.json as written before layouts were recorded (one run) or now (a ResultsDoc). */
type ResultsJson = RunJson | ResultsDoc;

function runsOf(j: ResultsJson): RunJson[] {
  return 'runs' in j ? j.runs : [j];
}

/** An onnx-community q4/q4f16 file with its weights in `<file>_data` (every 7b file; --external at smaller shapes). */
const externalHub = (r: RunJson) => r.layout === 'onnx-community' && r.variant !== 'fp32' && !!r.model.dataFile;
const runKey = (r: RunJson) => JSON.stringify([r.layout ?? 'optimum', r.variant ?? 'q4', r.shape ?? r.model.shape, r.args.provider, ...(externalHub(r) ? ['external'] : [])]);
const HEADLINE = JSON.stringify(['onnx-community', 'q4', '1.5b', 'cpu']);

/** The runs to keep: this one, and the existing file's runs of other layouts, variants, shapes or providers (not a file written before layouts were recorded: this run replaces it). */
function merged(file: string, run: RunJson, merge: boolean): ResultsDoc {
  let others: RunJson[] = [];
  let lookup: LookupJson | undefined;
  if (merge && existsSync(file)) {
    try {
      const old = JSON.parse(readFileSync(file, 'utf8')) as ResultsJson;
      if ('runs' in old) {
        others = old.runs.filter((r) => runKey(r) !== runKey(run));
        lookup = old.lookup;
      }
    } catch {
      // unreadable: start over
    }
  }
  const order = (r: RunJson) => (runKey(r) === HEADLINE ? -1 : BENCH_LAYOUTS.indexOf(r.layout ?? 'optimum') * 10 + BENCH_SHAPES.indexOf((r.shape ?? 'tiny') as BenchShape));
  const doc: ResultsDoc = { schema: 2, runs: [...others, run].sort((a, b) => order(a) - order(b)), ...(lookup ? { lookup } : {}) };
  // A new headline run carries the lookup section's ratios too (bench/lookup.ts measured them).
  applyLookupRatios(doc);
  return doc;
}

async function main(): Promise<void> {
  const a = parseArgs(process.argv.slice(2));
  const log = (s: string) => process.stderr.write(`${s}\n`);
  const t0 = performance.now();
  const load: number[][] = [loadavg()];
  const tag: LayoutTag = { layout: a.layout, variant: a.variant, shape: a.shape };
  log(`bench: ${a.layout} layout, variant ${a.variant}, shape ${a.shape}, provider ${a.provider}, ${a.runs} run(s), ${a.newTokens} new tokens, prompts ${a.prompts.join('/')}; load average ${loadavg().map((x) => x.toFixed(2)).join(' ')}`);
  const { dir, manifest } = await buildBenchModel({ layout: a.layout, variant: a.variant, shape: a.shape, seed: a.seed, external: a.external, log });
  const skipped: Record<string, string> = {};
  const contenders = a.contenders.filter((k) => {
    if (k === 'transformers.js' && a.layout === 'genai') {
      skipped[k] = TJS_GENAI;
      log(`transformers.js: not started: ${TJS_GENAI}`);
      return false;
    }
    return true;
  });
  // llama.cpp decodes a GGUF of the same shapes and weights (bench/ggufModel.ts), one per file type.
  const gguf: Record<string, GgufManifest> = {};
  for (const k of contenders) {
    const type = LLAMA_CPP_KINDS[k];
    if (type && !gguf[type]) gguf[type] = await buildBenchGguf({ shape: a.shape, fileType: type, seed: a.seed, log });
  }
  // Greedy picks among the ids the engine samples from (the logits may be wider than the tokenizer).
  const tokenizer = await R1Tokenizer.fromFolder(dir);
  const argmaxVocab = Math.min(manifest.spec.vocabSize, tokenizer.vocabSize);
  log('measuring memory read bandwidth');
  const bw1: BandwidthResult = await measureBandwidth({ threads: 1, passes: 6 });
  const bwBefore: BandwidthResult = await measureBandwidth({ threads: cpus().length, passes: 8 });
  log(`bandwidth: ${fmt(bwBefore.bestBytesPerSecond / 1e9)} GB/s with ${bwBefore.threads} threads (1 thread ${fmt(bw1.bestBytesPerSecond / 1e9)} GB/s)`);
  const cacheDir = join(BENCH_DIR, 'prepared');
  const results: Record<string, ContenderResult[]> = {};
  for (let run = 0; run < a.runs; run++) {
    for (const kind of contenders) {
      const params: ContenderParams = {
        kind,
        modelDir: dir,
        layout: a.layout,
        variant: (a.layout === 'genai' ? 'q4' : a.variant) as ModelVariant,
        argmaxVocab,
        provider: a.provider,
        promptLengths: a.prompts,
        decodePrompt: a.decodePrompt,
        newTokens: a.newTokens,
        seed: a.seed,
        prefillChunkSize: a.prefillChunkSize,
        cacheDir,
        engine: a.engine,
        rewrites: a.rewrites,
        ...(LLAMA_CPP_KINDS[kind] ? { gguf: gguf[LLAMA_CPP_KINDS[kind]!]!.file } : {}),
      };
      const ts = performance.now();
      const r = await runChild(params, (a.shape === '7b' ? 120 : 40) * 60_000);
      load.push(loadavg());
      (results[kind] ??= []).push(r);
      log(`run ${run + 1}/${a.runs} ${kind}: load ${fmt(r.loadMs, 0)} ms, ttft ${a.prompts.map((p) => `${p}:${fmt(r.ttftMs[p]!, 0)}ms`).join(' ')}, decode ${fmt(r.decode.tokensPerSecond, 2)} tok/s (step ${fmt(r.decode.stepMs, 1)} ms)${r.followUp ? `, follow-up ${fmt(r.followUp.ttftMs, 0)}ms (${r.followUp.reusedTokens} cached)` : ''}, peak RSS ${fmt(r.peakRss / 2 ** 20, 0)} MiB [${fmt((performance.now() - ts) / 1000, 0)} s]`);
    }
  }
  // The machine's bandwidth moves with its neighbours (25–46 GB/s within an hour here): measure
  // again after the contenders, and take the higher figure for the roofline (an upper bound).
  const bwAfter: BandwidthResult = await measureBandwidth({ threads: cpus().length, passes: 8 });
  log(`bandwidth after the runs: ${fmt(bwAfter.bestBytesPerSecond / 1e9)} GB/s with ${bwAfter.threads} threads`);
  const bw = bwAfter.bestBytesPerSecond > bwBefore.bestBytesPerSecond ? bwAfter : bwBefore;
  const summary: Record<string, Summary> = {};
  for (const [k, rs] of Object.entries(results)) summary[k] = summarize(rs, a.prompts, tag);
  const ours = summary.ours;
  const tjs = summary['transformers.js'];
  const bare = summary['bare-ort'];
  const last = Math.max(...a.prompts);
  const ratios: Record<string, number | null> = {
    decodeVsTransformersJs: ours && tjs ? ours.decodeTokensPerSecond.median / tjs.decodeTokensPerSecond.median : null,
    [`ttft${last}VsTransformersJs`]: ours && tjs ? tjs.ttftMs[last]!.median / ours.ttftMs[last]!.median : null,
    peakRssVsTransformersJs: ours && tjs ? ours.peakRssBytes.median / tjs.peakRssBytes.median : null,
    stepOverheadVsBareOrt: ours && bare ? ours.stepMs.median / bare.stepMs.median : null,
    // The same target without the machine's noise: the bare loop's step plus what ours spends
    // outside session.run beyond what the bare loop spends there.
    engineOverheadVsBareOrt:
      ours?.outsideRunMs && bare?.outsideRunMs ? (bare.stepMs.median + ours.outsideRunMs.median - bare.outsideRunMs.median) / bare.stepMs.median : null,
  };
  if (last !== 4096) ratios.ttft4096VsTransformersJs = null;
  // What no engine on ONNX Runtime's CPU kernels can beat: the linear layers alone.
  const floor = summary['linear-floor'];
  ratios.linearFloorDecodeVsTransformersJs = floor && tjs ? floor.decodeTokensPerSecond.median / tjs.decodeTokensPerSecond.median : null;
  ratios[`linearFloorTtft${last}VsTransformersJs`] = floor && tjs ? tjs.ttftMs[last]!.median / floor.ttftMs[last]!.median : null;
  ratios.stepVsLinearFloor = ours && floor ? ours.stepMs.median / floor.stepMs.median : null;
  ratios[`ttft${last}VsLinearFloor`] = ours && floor ? ours.ttftMs[last]!.median / floor.ttftMs[last]!.median : null;
  // Add the attention products every exact attention computes: the floor for the time to first token.
  const attn = floor?.attentionProductsMs?.[last]?.median;
  ratios[`floorWithAttentionTtft${last}VsTransformersJs`] = floor && tjs && attn !== undefined ? tjs.ttftMs[last]!.median / (floor.ttftMs[last]!.median + attn) : null;
  // llama.cpp (Q4_0 is the file the ratios name; Q4_K_M's carry the suffix): above 1, ours is faster.
  for (const [kind, suffix] of [['llama.cpp', ''], ['llama.cpp-q4_k_m', 'Q4KM']] as const) {
    const l = summary[kind];
    ratios[`decodeVsLlamaCpp${suffix}`] = ours && l ? ours.decodeTokensPerSecond.median / l.decodeTokensPerSecond.median : null;
    for (const p of a.prompts) ratios[`ttft${p}VsLlamaCpp${suffix}`] = ours && l ? l.ttftMs[p]!.median / ours.ttftMs[p]!.median : null;
    if (last !== 4096) ratios[`ttft4096VsLlamaCpp${suffix}`] = null;
    ratios[`peakRssVsLlamaCpp${suffix}`] = ours && l ? ours.peakRssBytes.median / l.peakRssBytes.median : null;
  }
  const rooflineStepMs = (manifest.weightBytesPerToken / bw.bestBytesPerSecond) * 1000;
  const roofline = {
    ...tag,
    weightBytesPerToken: manifest.weightBytesPerToken,
    bandwidthBytesPerSecond: bw.bestBytesPerSecond,
    stepMs: rooflineStepMs,
    tokensPerSecond: 1000 / rooflineStepMs,
    fraction: ours ? ours.decodeTokensPerSecond.median / (1000 / rooflineStepMs) : null,
    bareOrtFraction: bare ? bare.decodeTokensPerSecond.median / (1000 / rooflineStepMs) : null,
    linearFloorFraction: floor ? floor.decodeTokensPerSecond.median / (1000 / rooflineStepMs) : null,
  };
  // Do the contenders agree on the greedy tokens? (Level-4 int8 compute may flip near-ties.)
  const pair = (x: ContenderKind, y: ContenderKind) => {
    const p = results[x]?.[0]?.tokens;
    const q = results[y]?.[0]?.tokens;
    if (!p || !q) return { same: null, of: null };
    let n = 0;
    while (n < Math.min(p.length, q.length) && p[n] === q[n]) n++;
    return { same: n, of: Math.min(p.length, q.length) };
  };
  const pairs = {
    oursVsBareOrt: pair('ours', 'bare-ort'),
    oursVsTransformersJs: pair('ours', 'transformers.js'),
    bareOrtVsTransformersJs: pair('bare-ort', 'transformers.js'),
    ...(results['llama.cpp'] ? { oursVsLlamaCpp: pair('ours', 'llama.cpp') } : {}),
    ...(results['llama.cpp-q4_k_m'] ? { llamaCppQ4_0VsQ4KM: pair('llama.cpp', 'llama.cpp-q4_k_m') } : {}),
  };
  const preparedSteps = results.ours?.[0]?.preparedSteps;
  // The floor groups the linear layers as the prepared copy should: say so when the copy did otherwise.
  const fusedInCopy = preparedSteps?.find((s) => s.step === 'fused matrix products')?.applied;
  const floorFusion = manifest.linearFloor?.fusion;
  const floorMismatch =
    floor && preparedSteps && floorFusion && fusedInCopy !== (floorFusion === 'qkv+gate_up')
      ? `the floor's linear layers are grouped ${floorFusion}, but the prepared copy ${fusedInCopy ? 'fused its matrix products' : 'did not fuse its matrix products'}: the floor and the copy differ by that grouping`
      : undefined;
  const json: RunJson = {
    schema: 2,
    date: new Date().toISOString(),
    label: a.label,
    ...tag,
    machine: machine(),
    loadAverage: { before: load[0]!, afterEachChild: load.slice(1) },
    args: { ...a, contenders },
    model: { dir, ...manifest },
    bandwidth: { allThreads: bw, oneThread: bw1, before: bwBefore, after: bwAfter },
    roofline,
    contenders: summary,
    ...(Object.keys(skipped).length ? { skipped } : {}),
    ratios,
    greedyAgreement: Object.fromEntries(Object.entries(pairs).map(([k, v]) => [k, v.same])),
    greedyCompared: Object.fromEntries(Object.entries(pairs).map(([k, v]) => [k, v.of])),
    ...(preparedSteps ? { preparedSteps } : {}),
    multiTokenSteps: { ours: results.ours?.[0]?.multiTokenSteps, bareOrt: results['bare-ort']?.[0]?.multiTokenSteps },
    ...(floorMismatch ? { floorMismatch } : {}),
    ...(Object.keys(gguf).length ? { gguf, llamaCpp: (results['llama.cpp'] ?? results['llama.cpp-q4_k_m'])?.[0]?.llamaCpp } : {}),
    raw: results,
    wallSeconds: (performance.now() - t0) / 1000,
  };
  await mkdir(a.out, { recursive: true });
  const base = join(a.out, a.quick ? 'results-quick' : 'results');
  const doc = merged(`${base}.json`, json, a.merge);
  writeFileSync(`${base}.json`, `${JSON.stringify(doc, null, 2)}\n`);
  const md = renderMarkdown(doc);
  writeFileSync(`${base}.md`, md);
  process.stdout.write(renderRun(json));
  if (floorMismatch) log(`warning: ${floorMismatch}`);
  log(`wrote ${base}.{md,json} in ${fmt(json.wallSeconds, 0)} s (${doc.runs.length} run(s) in the file)`);
  log(summaryLine(json));
}

/** The layout as a table heading: "onnx-community q4, 1.5b". */
function layoutTitle(j: RunJson): string {
  if (!j.layout) return `optimum q4, ${j.model.shape} (a run from before the layouts)`;
  return `${j.layout} ${j.variant}, ${j.shape}${externalHub(j) ? `, weights in ${basename(j.model.dataFile!)}` : ''}`;
}

/** One line with the run's main figures (printed at the end of a run). */
export function summaryLine(j: RunJson): string {
  const names = Object.keys(j.contenders);
  const lp = Math.max(...j.args.prompts);
  const g = j.greedyAgreement;
  const of = j.greedyCompared ?? {};
  const agree = (k: string, label: string) => (g[k] != null ? `${label} ${g[k]}/${of[k] ?? '?'}${of[k] != null && g[k] !== of[k] ? ' (differ)' : ''}` : undefined);
  const skipped = Object.keys(j.skipped ?? {});
  return [
    `summary [${layoutTitle(j)}]`,
    `decode tok/s ${names.map((n) => `${n} ${fmt(j.contenders[n]!.decodeTokensPerSecond.median, 2)}`).join(', ')}`,
    `TTFT ${lp} s ${names.map((n) => `${n} ${fmt(j.contenders[n]!.ttftMs[lp]!.median / 1000, 2)}`).join(', ')}`,
    `greedy tokens equal: ${[agree('oursVsBareOrt', 'ours=bare-ort'), agree('oursVsTransformersJs', 'ours=transformers.js'), agree('oursVsLlamaCpp', 'ours=llama.cpp')].filter(Boolean).join(', ') || 'n/a'}`,
    ...(j.ratios.decodeVsLlamaCpp != null ? [`ours / llama.cpp Q4_0: decode ${fmt(j.ratios.decodeVsLlamaCpp, 2)}x, TTFT ${lp} ${fmt(j.ratios[`ttft${lp}VsLlamaCpp`] ?? NaN, 2)}x (above 1: ours faster)`] : []),
    ...(skipped.length ? [`not run: ${skipped.join(', ')}`] : []),
  ].join('; ');
}

function attentionNote(j: RunJson, lp: number): string {
  const s = j.contenders['linear-floor']?.attentionProductsMs?.[lp];
  if (!s) return '';
  return ` The attention products of the ${lp}-token prompt alone (QKᵀ and probabilities·V in float32 for every layer and chunk, each row over its cached keys and half its chunk; ONNX Runtime's SGEMM) take ${fmt(s.median / 1000, 2)} s more: any exact attention adds at least that to the floor's time to first token.`;
}

/** results.md: every run of the file, the headline (onnx-community q4 at 1.5b) first. */
export function renderMarkdown(j: ResultsJson): string {
  const runs = runsOf(j);
  const lines = ['# Benchmark: R1 Coder engine vs transformers.js vs bare onnxruntime-node vs llama.cpp', ''];
  if (runs.length > 1) {
    lines.push(`Runs in this file: ${runs.map((r) => `${layoutTitle(r)}${runKey(r) === HEADLINE ? ' (the headline)' : ''}`).join('; ')}.`, '');
  }
  lines.push(
    'Up to session 3 the benchmark measured an Optimum-style model of its own; the layouts people download run differently (transformers.js, for one, is much faster on the builder graph). Which figures changed, and why: bench/NOTES.md, "Final figures on the real layouts".',
    '',
  );
  const lookup = 'runs' in j && j.lookup ? `\n${renderLookup(j.lookup)}` : '';
  return `${lines.join('\n')}\n${runs.map((r) => renderRun(r, runs.length > 1 ? '## ' : '')).join('\n')}${lookup}`;
}

const LLAMA: ReadonlyArray<readonly [string, string, string]> = [
  ['llama.cpp', 'Q4_0', ''],
  ['llama.cpp-q4_k_m', 'Q4_K_M', 'Q4KM'],
];

/** Which of ours and llama.cpp is ahead on one figure, and by how many times, in words. */
function faster(what: string, oursV: number, llamaV: number, unit: string, d: number, lowerIsBetter: boolean, who: string): string {
  const oursWins = lowerIsBetter ? oursV < llamaV : oursV > llamaV;
  const x = Math.max(oursV, llamaV) / Math.min(oursV, llamaV);
  return `${what}: ${oursWins ? 'ours' : who} by ${fmt(x, 2)}x (ours ${fmt(oursV, d)} ${unit}, ${who} ${fmt(llamaV, d)} ${unit})`;
}

/** The llama.cpp contenders: what they ran, the ratios, and in plain words where llama.cpp is faster. */
function llamaCppSection(j: RunJson): string[] {
  const out: string[] = [];
  const ours = j.contenders.ours;
  const present = LLAMA.filter(([k]) => j.contenders[k]);
  const title = layoutTitle(j);
  const lc = j.llamaCpp;
  const files = present.map(([, t]) => {
    const m = j.gguf![t]!;
    return `${t} ${(m.fileBytes / 1e9).toFixed(3)} GB (${Object.entries(m.tensorTypes).map(([ty, c]) => `${c} ${ty}`).join(', ')}; ${(m.weightBytesPerToken / 1e9).toFixed(3)} GB read per token, ${fmt((((m.weightBytesPerToken / j.roofline.bandwidthBytesPerSecond) * 1000) / (j.contenders[LLAMA.find((l) => l[1] === t)![0]]?.stepMs.median ?? NaN)) * 100, 0)}% of the roofline)`;
  });
  out.push(
    `llama.cpp: node-llama-cpp 3.21.1${lc ? ` (${lc.build.startsWith('prebuilt') ? 'its prebuilt' : 'a local'} llama.cpp ${lc.build.split(' ')[1] ?? ''} CPU binaries; ${lc.systemInfo.replace(/^CPU\s*:\s*/, '').replace(/\s*\|\s*$/, '').replace(/ = 1/g, '')}), ${lc.threads} threads, batch ${lc.batchSize}, context ${lc.contextSize}, flash attention ${lc.flashAttention}, ${lc.mmap ? 'file memory-mapped (its resident pages count in the peak RSS)' : 'no mmap'}` : ''}. It decodes a random-weight GGUF of the same shapes and the same float weights (bench/ggufModel.ts, R1-Distill's tokenizer in its metadata), quantized as llama-quantize would: ${files.join('; ')}. Same prompt tokens, greedy over the same ids, eos ignored.`,
    '',
  );
  if (!ours) return out;
  out.push(`| ours vs llama.cpp (${title}) | ${present.map(([, t]) => t).join(' | ')} | target |`);
  out.push(`|---|${present.map(() => '---').join('|')}|---|`);
  const r = j.ratios;
  out.push(`| decode, ours / llama.cpp | ${present.map(([, , s]) => `${fmt(r[`decodeVsLlamaCpp${s}`] ?? NaN, 2)}x`).join(' | ')} | ≥ 1.0x (plain decode; with prompt lookup: issue 18) |`);
  for (const p of j.args.prompts) out.push(`| TTFT ${p}, llama.cpp / ours | ${present.map(([, , s]) => `${fmt(r[`ttft${p}VsLlamaCpp${s}`] ?? NaN, 2)}x`).join(' | ')} | |`);
  out.push(`| peak RSS, ours / llama.cpp | ${present.map(([, , s]) => fmt(r[`peakRssVsLlamaCpp${s}`] ?? NaN, 2)).join(' | ')} | |`);
  out.push('');
  for (const [k, t] of present) {
    const l = j.contenders[k]!;
    const who = `llama.cpp ${t}`;
    const items = [
      faster('decode', ours.decodeTokensPerSecond.median, l.decodeTokensPerSecond.median, 'tok/s', 2, false, who),
      ...j.args.prompts.map((p) => faster(`TTFT ${p}`, ours.ttftMs[p]!.median / 1000, l.ttftMs[p]!.median / 1000, 's', 2, true, who)),
      faster('peak RSS', ours.peakRssBytes.median / 2 ** 20, l.peakRssBytes.median / 2 ** 20, 'MiB', 0, true, who),
    ];
    const llamaWins = items.filter((x) => x.includes(`: ${who} by`));
    out.push(
      `**Where ${who} is ahead: ${llamaWins.length ? llamaWins.map((x) => x.split(' (')[0]!.replace(`: ${who} by `, ' by ')).join('; ') : 'nowhere'}.** Faster (smaller, for the RSS), figure by figure: ${items.join('; ')}.`,
    );
    out.push('');
  }
  const g = j.greedyAgreement;
  const of = j.greedyCompared ?? {};
  if (g.oursVsLlamaCpp != null) out.push(`Greedy tokens identical for the first ${g.oursVsLlamaCpp} of ${of.oursVsLlamaCpp ?? '?'} steps (ours vs llama.cpp Q4_0: the same float weights, quantized by each format's own rules, Q4_0's fp16 scales and activations in 8-bit blocks against ONNX Runtime's; random weights make near-ties that such differences flip).`);
  return out;
}

/** Where the layout comes from, at this shape. */
function layoutNote(j: RunJson): string {
  switch (j.layout) {
    case 'onnx-community':
      return j.shape === '7b' ? 'the layout of onnx-community/DeepSeek-R1-Distill-Qwen-1.5B-ONNX at the 7B shapes: onnx-community has no 7B export' : 'as onnx-community/DeepSeek-R1-Distill-Qwen-1.5B-ONNX ships it';
    case 'genai':
      return 'as onnxruntime/DeepSeek-R1-Distill-ONNX ships it';
    default:
      return "the benchmark's model before the layouts";
  }
}

/** One run: its header, the contenders' table and the ratios, each table headed by the layout. */
export function renderRun(j: RunJson, heading = ''): string {
  const a = j.args;
  const names = Object.keys(j.contenders);
  const lines: string[] = [];
  const title = layoutTitle(j);
  if (heading) lines.push(`${heading}${title}`, '');
  lines.push(`${j.date}${j.label ? ` — ${j.label}` : ''}. Machine: ${String(j.machine.cpu)}, ${String(j.machine.logicalCpus)} cores, ${String(j.machine.memoryGiB)} GiB, ${String(j.machine.platform)} ${String(j.machine.arch)}, Node ${String(j.machine.node)}, onnxruntime-node 1.30.0.`);
  const la = [j.loadAverage.before, ...j.loadAverage.afterEachChild].map((l) => l[0]!);
  lines.push(`Load average (1 min) before and after each contender process: ${la.map((x) => x.toFixed(2)).join(', ')}. Other engineers' processes share this machine, so figures carry that noise.`);
  lines.push('');
  const m = j.model;
  const bytes = m.fileBytes + (m.dataBytes ?? 0);
  const what = j.layout
    ? `${m.description}; ${layoutNote(j)}`
    : 'q4 (MatMulNBits 4-bit, block 32, accuracy_level unset as in the public export), Optimum-style graph (this run predates the layouts)';
  lines.push(
    `Model: random-weight Qwen2, ${m.shape} shapes, ${what}, ${(bytes / 1e9).toFixed(3)} GB, provider ${a.provider}. Same prompt tokens for everyone, greedy, ${a.newTokens} new tokens after a ${a.decodePrompt}-token prompt with eos ignored, ${a.runs} run(s) alternating ${names.join(' / ')}. Figures are medians${a.runs > 1 ? ' (min–max)' : ''}.`,
  );
  for (const [k, why] of Object.entries(j.skipped ?? {})) lines.push('', `${k}: not run. ${why[0]!.toUpperCase()}${why.slice(1)}.`);
  lines.push('');
  const header = [title, ...names];
  lines.push(`| ${header.join(' | ')} |`);
  lines.push(`|${header.map(() => '---').join('|')}|`);
  const row = (label: string, f: (s: Summary) => string) => lines.push(`| ${label} | ${names.map((n) => f(j.contenders[n]!)).join(' | ')} |`);
  row('decode tok/s', (s) => `${fmt(s.decodeTokensPerSecond.median, 2)}${spread(s.decodeTokensPerSecond, 2)}`);
  row('decode step (ms, median)', (s) => `${fmt(s.stepMs.median, 1)}${spread(s.stepMs, 1)}`);
  for (const p of a.prompts) row(`TTFT ${p}-token prompt (s)`, (s) => `${fmt(s.ttftMs[p]!.median / 1000, 2)}${spread(s.ttftMs[p]!, 2, 1000)}`);
  const fu = Object.values(j.contenders).find((s) => s.followUp)?.followUp;
  if (fu) row(`TTFT follow-up, ${fu.promptTokens} tokens of which ${fu.reusedTokens} cached (s)`, (s) => (s.followUpTtftMs ? `${fmt(s.followUpTtftMs.median / 1000, 2)}${spread(s.followUpTtftMs, 2, 1000)}` : '—'));
  row('decode step outside session.run (ms, median)', (s) => (s.outsideRunMs ? `${fmt(s.outsideRunMs.median, 2)}${spread(s.outsideRunMs, 2)}` : '—'));
  row('model load (s)', (s) => `${fmt(s.loadMs.median / 1000, 2)}${spread(s.loadMs, 2, 1000)}`);
  row('peak RSS after load (MiB)', (s) => `${fmt(s.loadPeakRssBytes.median / 2 ** 20, 0)}`);
  row('peak RSS (MiB)', (s) => `${fmt(s.peakRssBytes.median / 2 ** 20, 0)}${spread(s.peakRssBytes, 0, 2 ** 20)}`);
  lines.push('');
  const r = j.ratios;
  const rf = j.roofline;
  const lp = Math.max(...a.prompts);
  const hasTjs = !!j.contenders['transformers.js'];
  lines.push(`| ratio (${title}) | ours | linear layers alone (the kernel floor) | target |`);
  lines.push('|---|---|---|---|');
  if (hasTjs) {
    lines.push(`| decode, ours / transformers.js | ${fmt(r.decodeVsTransformersJs ?? NaN, 2)}x | ${fmt(r.linearFloorDecodeVsTransformersJs ?? NaN, 2)}x | ≥ 3x |`);
    const withAttention = r[`floorWithAttentionTtft${lp}VsTransformersJs`];
    lines.push(`| TTFT ${lp}, transformers.js / ours | ${fmt((r.ttft4096VsTransformersJs ?? r[`ttft${lp}VsTransformersJs`]) ?? NaN, 2)}x | ${fmt(r[`linearFloorTtft${lp}VsTransformersJs`] ?? NaN, 2)}x${withAttention != null ? `; ${fmt(withAttention, 2)}x with the attention products` : ''} | ≥ 2x |`);
    lines.push(`| peak RSS, ours / transformers.js | ${fmt(r.peakRssVsTransformersJs ?? NaN, 2)} | | ≤ 0.7 |`);
  }
  lines.push(`| decode step, ours / bare ORT loop | ${fmt(r.stepOverheadVsBareOrt ?? NaN, 3)} (outside session.run: ${fmt(r.engineOverheadVsBareOrt ?? NaN, 3)}) | | ≤ 1.03 |`);
  if (!hasTjs) lines.push(`| decode step, ours / linear floor | ${fmt(r.stepVsLinearFloor ?? NaN, 2)}x | 1x | |`, `| TTFT ${lp}, ours / linear floor | ${fmt(r[`ttft${lp}VsLinearFloor`] ?? NaN, 2)}x | 1x | |`);
  lines.push(`| decode, ours / roofline | ${fmt((rf.fraction ?? NaN) * 100, 0)}% | ${fmt((rf.linearFloorFraction ?? NaN) * 100, 0)}% | ≥ 80% |`);
  lines.push('');
  const oo = j.contenders.ours?.outsideRunMs;
  const bo = j.contenders['bare-ort']?.outsideRunMs;
  if (oo && bo) {
    lines.push(`A decode step outside session.run takes ${fmt(oo.median, 2)} ms in ours (sampling, detokenizing, streaming, the KV slot copies) and ${fmt(bo.median, 2)} ms in the bare loop. The ratio in brackets is the bare loop's step plus that difference, over the bare loop's step: the engine's own overhead, without the machine's bandwidth swings that move both steps by ±10 % from process to process.`);
    lines.push('');
  }
  if (j.preparedSteps) {
    lines.push(`Prepared CPU copy (ours and the bare loop load it; r1 info lists the same): ${j.preparedSteps.map((s) => `${s.step} ${s.applied ? 'applied' : 'not applied'} (${s.detail})`).join('; ')}.`);
    lines.push('');
  }
  const mt = j.multiTokenSteps;
  if (mt && (mt.ours === false || mt.bareOrt === false)) {
    lines.push('The graph runs one token at a time once its KV cache holds some (the builder\'s MultiHeadAttention graph with its attention as exported): prompts run in one piece, not in chunks.');
    lines.push('');
  }
  const fl = m.linearFloor;
  const floorWhat = fl?.fusion
    ? `${fl.weights === 'q4' ? 'MatMulNBits at accuracy_level 4' : 'float MatMuls'}, ${fl.fusion === 'qkv+gate_up' ? 'q/k/v and gate/up fused' : fl.fusion === 'qkv' ? 'q/k/v packed, gate and up apart' : 'every projection apart'} (${fl.why}), lm_head on one position; the same shapes and weight bytes`
    : 'MatMulNBits at accuracy_level 4, q/k/v and gate/up fused, lm_head on one position; the same weight bytes';
  lines.push(`The kernel floor runs only the model's linear layers as the prepared copy runs them (${floorWhat}), with the same threads and prefill chunks: no engine built on onnxruntime-node's CPU kernels can be faster than it. Ours / floor: decode step ${fmt(r.stepVsLinearFloor ?? NaN, 2)}x, TTFT ${lp} ${fmt(r[`ttft${lp}VsLinearFloor`] ?? NaN, 2)}x.${attentionNote(j, lp)}`);
  if (j.floorMismatch) lines.push('', `Note: ${j.floorMismatch}.`);
  lines.push('');
  lines.push(`Roofline: ${(rf.weightBytesPerToken / 1e9).toFixed(3)} GB of weights read per token (every linear layer's weights${m.floatLinearBytes ? '' : ' and scales'}, one row of the embedding${m.rotaryBytes ? ' and rotary tables' : ''}, norms and biases) over ${(rf.bandwidthBytesPerSecond / 1e9).toFixed(1)} GB/s measured read bandwidth (${j.bandwidth.allThreads.threads} threads, best of ${j.bandwidth.allThreads.passes} memchr passes over ${(j.bandwidth.allThreads.bytesPerPass / 2 ** 30).toFixed(1)} GiB${j.bandwidth.before && j.bandwidth.after ? `, the higher of ${(j.bandwidth.before.bestBytesPerSecond / 1e9).toFixed(1)} before and ${(j.bandwidth.after.bestBytesPerSecond / 1e9).toFixed(1)} after the contenders` : ''}; one thread ${(j.bandwidth.oneThread.bestBytesPerSecond / 1e9).toFixed(1)} GB/s) = ${fmt(rf.stepMs, 1)} ms a token, ${fmt(rf.tokensPerSecond, 1)} tok/s. The bare ORT loop reaches ${fmt((rf.bareOrtFraction ?? NaN) * 100, 0)}% of it.`);
  const g = j.greedyAgreement;
  const of = j.greedyCompared;
  const n = (k: string) => `${g[k] ?? 'n/a'}${of?.[k] != null ? ` of ${of[k]}` : ''}`;
  lines.push('');
  if (j.gguf) lines.push(...llamaCppSection(j), '');
  lines.push(
    `Greedy tokens identical for the first ${n('oursVsBareOrt')} steps (ours vs bare ORT, same prepared file)${hasTjs ? `, ${n('oursVsTransformersJs')} (ours vs transformers.js${g.oursVsTransformersJs != null && g.oursVsTransformersJs !== of?.oursVsTransformersJs ? ', which computes MatMulNBits in float32: int8 rounding flips near-ties of random weights' : ''})` : ''}.`,
  );
  lines.push('');
  return `${lines.join('\n')}\n`;
}

if (require.main === module) {
  main().catch((e: unknown) => {
    console.error(e instanceof Error ? e.message : e);
    process.exitCode = 1;
  });
}
