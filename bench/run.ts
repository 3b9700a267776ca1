/**
 * `npm run bench`: R1 Coder's engine against transformers.js and a bare onnxruntime-node loop on
 * the same random-weight q4 model (bench/model.ts), same prompt tokens, greedy, the same number of
 * new tokens with eos ignored. Each contender runs in its own process (its peak RSS is its own);
 * runs alternate A/B/C, A/B/C, ... and the figures are medians with their spread (min..max).
 *
 *   npm run bench -- [--quick] [--shape tiny|1.5b] [--provider cpu] [--runs N] [--new-tokens N]
 *                    [--prompts 128,1024,4096] [--contenders ours,transformers.js,bare-ort,linear-floor]
 *                    [--engine '{"cpuThreads":2}'] [--out DIR] [--label TEXT]
 *
 * Without --quick: shape 1.5b, 2 runs, 64 new tokens, prompts 128/1024/4096, results in
 * bench/results.md and bench/results.json. With --quick: shape tiny unless --shape is given, 1 run,
 * 32 new tokens, results in .cache/bench/results-quick.{md,json} (the committed figures stay).
 */
import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { cpus, loadavg, totalmem } from 'node:os';
import { join, resolve } from 'node:path';
import { measureBandwidth, type BandwidthResult } from './bandwidth';
import type { ContenderKind, ContenderParams, ContenderResult } from './contender';
import { BENCH_DIR, type BenchShape, buildBenchModel, DEFAULT_SEED } from './model';
import type { GraphRewrites } from '../src/engine/graph/rewrites';
import type { LoadOptions, ProviderPreference } from '../src/engine/types';

const ALL: ContenderKind[] = ['ours', 'transformers.js', 'bare-ort', 'linear-floor'];

interface Args {
  quick: boolean;
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
}

function parseArgs(argv: string[]): Args {
  const get = (name: string): string | undefined => {
    const i = argv.indexOf(name);
    if (i >= 0) return argv[i + 1];
    return argv.find((a) => a.startsWith(`${name}=`))?.slice(name.length + 1);
  };
  const quick = argv.includes('--quick');
  const shape = (get('--shape') ?? (quick ? 'tiny' : '1.5b')) as BenchShape;
  if (shape !== 'tiny' && shape !== '1.5b') throw new Error(`--shape must be tiny or 1.5b, got ${shape}`);
  const contenders = (get('--contenders')?.split(',') ?? ALL) as ContenderKind[];
  for (const c of contenders) if (!ALL.includes(c)) throw new Error(`unknown contender ${c} (${ALL.join(', ')})`);
  return {
    quick,
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

interface Summary {
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

function summarize(rs: ContenderResult[], prompts: number[]): Summary {
  const ttftMs: Record<string, Stat> = {};
  for (const p of prompts) ttftMs[p] = stat(rs.map((r) => r.ttftMs[p]!));
  return {
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

async function main(): Promise<void> {
  const a = parseArgs(process.argv.slice(2));
  const log = (s: string) => process.stderr.write(`${s}\n`);
  const t0 = performance.now();
  const load: number[][] = [loadavg()];
  log(`bench: shape ${a.shape}, provider ${a.provider}, ${a.runs} run(s), ${a.newTokens} new tokens, prompts ${a.prompts.join('/')}; load average ${loadavg().map((x) => x.toFixed(2)).join(' ')}`);
  const { dir, manifest } = await buildBenchModel({ shape: a.shape, seed: a.seed, log });
  log('measuring memory read bandwidth');
  const bw1: BandwidthResult = await measureBandwidth({ threads: 1, passes: 6 });
  const bwBefore: BandwidthResult = await measureBandwidth({ threads: cpus().length, passes: 8 });
  log(`bandwidth: ${fmt(bwBefore.bestBytesPerSecond / 1e9)} GB/s with ${bwBefore.threads} threads (1 thread ${fmt(bw1.bestBytesPerSecond / 1e9)} GB/s)`);
  const cacheDir = join(BENCH_DIR, 'prepared');
  const results: Record<string, ContenderResult[]> = {};
  for (let run = 0; run < a.runs; run++) {
    for (const kind of a.contenders) {
      const params: ContenderParams = {
        kind,
        modelDir: dir,
        provider: a.provider,
        promptLengths: a.prompts,
        decodePrompt: a.decodePrompt,
        newTokens: a.newTokens,
        seed: a.seed,
        prefillChunkSize: a.prefillChunkSize,
        cacheDir,
        engine: a.engine,
        rewrites: a.rewrites,
      };
      const ts = performance.now();
      const r = await runChild(params, 40 * 60_000);
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
  for (const [k, rs] of Object.entries(results)) summary[k] = summarize(rs, a.prompts);
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
  const rooflineStepMs = (manifest.weightBytesPerToken / bw.bestBytesPerSecond) * 1000;
  const roofline = {
    weightBytesPerToken: manifest.weightBytesPerToken,
    bandwidthBytesPerSecond: bw.bestBytesPerSecond,
    stepMs: rooflineStepMs,
    tokensPerSecond: 1000 / rooflineStepMs,
    fraction: ours ? ours.decodeTokensPerSecond.median / (1000 / rooflineStepMs) : null,
    bareOrtFraction: bare ? bare.decodeTokensPerSecond.median / (1000 / rooflineStepMs) : null,
    linearFloorFraction: floor ? floor.decodeTokensPerSecond.median / (1000 / rooflineStepMs) : null,
  };
  // Do the contenders agree on the greedy tokens? (Level-4 int8 compute may flip near-ties.)
  const agree = (x: ContenderKind, y: ContenderKind) => {
    const p = results[x]?.[0]?.tokens;
    const q = results[y]?.[0]?.tokens;
    if (!p || !q) return null;
    let n = 0;
    while (n < Math.min(p.length, q.length) && p[n] === q[n]) n++;
    return n;
  };
  const json = {
    date: new Date().toISOString(),
    label: a.label,
    machine: machine(),
    loadAverage: { before: load[0], afterEachChild: load.slice(1) },
    args: a,
    model: { dir, ...manifest },
    bandwidth: { allThreads: bw, oneThread: bw1, before: bwBefore, after: bwAfter },
    roofline,
    contenders: summary,
    ratios,
    greedyAgreement: { oursVsBareOrt: agree('ours', 'bare-ort'), oursVsTransformersJs: agree('ours', 'transformers.js'), bareOrtVsTransformersJs: agree('bare-ort', 'transformers.js') },
    raw: results,
    wallSeconds: (performance.now() - t0) / 1000,
  };
  await mkdir(a.out, { recursive: true });
  const base = a.quick ? 'results-quick' : 'results';
  writeFileSync(join(a.out, `${base}.json`), `${JSON.stringify(json, null, 2)}\n`);
  const md = renderMarkdown(json as unknown as ResultsJson);
  writeFileSync(join(a.out, `${base}.md`), md);
  process.stdout.write(md);
  log(`wrote ${join(a.out, base)}.{md,json} in ${fmt(json.wallSeconds, 0)} s`);
}

interface ResultsJson {
  date: string;
  label: string;
  machine: Record<string, unknown>;
  loadAverage: { before: number[]; afterEachChild: number[][] };
  args: Args;
  model: { dir: string; shape: string; fileBytes: number; weightBytesPerToken: number; matMulNBitsNodes: number };
  bandwidth: { allThreads: BandwidthResult; oneThread: BandwidthResult; before?: BandwidthResult; after?: BandwidthResult };
  roofline: { stepMs: number; tokensPerSecond: number; fraction: number | null; bareOrtFraction: number | null; linearFloorFraction: number | null; weightBytesPerToken: number; bandwidthBytesPerSecond: number };
  contenders: Record<string, Summary>;
  ratios: Record<string, number | null>;
  greedyAgreement: Record<string, number | null>;
  wallSeconds: number;
}

function attentionNote(j: ResultsJson, lp: number): string {
  const s = j.contenders['linear-floor']?.attentionProductsMs?.[lp];
  if (!s) return '';
  return ` The attention products of the ${lp}-token prompt alone (QKᵀ and probabilities·V in float32 for every layer and chunk, each row over its cached keys and half its chunk; ONNX Runtime's SGEMM) take ${fmt(s.median / 1000, 2)} s more: any exact attention adds at least that to the floor's time to first token.`;
}

export function renderMarkdown(j: ResultsJson): string {
  const a = j.args;
  const names = Object.keys(j.contenders);
  const lines: string[] = [];
  lines.push(`# Benchmark: R1 Coder engine vs transformers.js vs bare onnxruntime-node`);
  lines.push('');
  lines.push(`${j.date}${j.label ? ` — ${j.label}` : ''}. Machine: ${String(j.machine.cpu)}, ${String(j.machine.logicalCpus)} cores, ${String(j.machine.memoryGiB)} GiB, ${String(j.machine.platform)} ${String(j.machine.arch)}, Node ${String(j.machine.node)}, onnxruntime-node 1.30.0.`);
  const la = [j.loadAverage.before, ...j.loadAverage.afterEachChild].map((l) => l[0]!);
  lines.push(`Load average (1 min) before and after each contender process: ${la.map((x) => x.toFixed(2)).join(', ')}. Other engineers' processes share this machine, so figures carry that noise.`);
  lines.push('');
  lines.push(`Model: random-weight Qwen2, ${j.model.shape} shapes, q4 (MatMulNBits 4-bit, block 32, accuracy_level unset as in the public export), ${(j.model.fileBytes / 1e9).toFixed(3)} GB, provider ${a.provider}. Same prompt tokens for everyone, greedy, ${a.newTokens} new tokens after a ${a.decodePrompt}-token prompt with eos ignored, ${a.runs} run(s) alternating ${names.join(' / ')}. Figures are medians${a.runs > 1 ? ' (min–max)' : ''}.`);
  lines.push('');
  const header = ['', ...names];
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
  lines.push('| ratio | ours | linear layers alone (the kernel floor) | target |');
  lines.push('|---|---|---|---|');
  lines.push(`| decode, ours / transformers.js | ${fmt(r.decodeVsTransformersJs ?? NaN, 2)}x | ${fmt(r.linearFloorDecodeVsTransformersJs ?? NaN, 2)}x | ≥ 3x |`);
  const withAttention = r[`floorWithAttentionTtft${lp}VsTransformersJs`];
  lines.push(`| TTFT ${lp}, transformers.js / ours | ${fmt((r.ttft4096VsTransformersJs ?? r[`ttft${lp}VsTransformersJs`]) ?? NaN, 2)}x | ${fmt(r[`linearFloorTtft${lp}VsTransformersJs`] ?? NaN, 2)}x${withAttention != null ? `; ${fmt(withAttention, 2)}x with the attention products` : ''} | ≥ 2x |`);
  lines.push(`| peak RSS, ours / transformers.js | ${fmt(r.peakRssVsTransformersJs ?? NaN, 2)} | | ≤ 0.7 |`);
  lines.push(`| decode step, ours / bare ORT loop | ${fmt(r.stepOverheadVsBareOrt ?? NaN, 3)} (outside session.run: ${fmt(r.engineOverheadVsBareOrt ?? NaN, 3)}) | | ≤ 1.03 |`);
  lines.push(`| decode, ours / roofline | ${fmt((rf.fraction ?? NaN) * 100, 0)}% | ${fmt((rf.linearFloorFraction ?? NaN) * 100, 0)}% | ≥ 80% |`);
  lines.push('');
  const oo = j.contenders.ours?.outsideRunMs;
  const bo = j.contenders['bare-ort']?.outsideRunMs;
  if (oo && bo) {
    lines.push(`A decode step outside session.run takes ${fmt(oo.median, 2)} ms in ours (sampling, detokenizing, streaming, the KV slot copies) and ${fmt(bo.median, 2)} ms in the bare loop. The ratio in brackets is the bare loop's step plus that difference, over the bare loop's step: the engine's own overhead, without the machine's bandwidth swings that move both steps by ±10 % from process to process.`);
    lines.push('');
  }
  lines.push(`The kernel floor runs only the model's linear layers (MatMulNBits at accuracy_level 4, q/k/v and gate/up fused, lm_head on one position; the same weight bytes), with the same threads and prefill chunks: no engine built on onnxruntime-node's CPU kernels can be faster than it. Ours / floor: decode step ${fmt(r.stepVsLinearFloor ?? NaN, 2)}x, TTFT ${lp} ${fmt(r[`ttft${lp}VsLinearFloor`] ?? NaN, 2)}x.${
      attentionNote(j, lp)
    }`);
  lines.push('');
  lines.push(`Roofline: ${(rf.weightBytesPerToken / 1e9).toFixed(3)} GB of weights read per token (all MatMulNBits weights and scales, one embedding row, norms and biases) over ${(rf.bandwidthBytesPerSecond / 1e9).toFixed(1)} GB/s measured read bandwidth (${j.bandwidth.allThreads.threads} threads, best of ${j.bandwidth.allThreads.passes} memchr passes over ${(j.bandwidth.allThreads.bytesPerPass / 2 ** 30).toFixed(1)} GiB${j.bandwidth.before && j.bandwidth.after ? `, the higher of ${(j.bandwidth.before.bestBytesPerSecond / 1e9).toFixed(1)} before and ${(j.bandwidth.after.bestBytesPerSecond / 1e9).toFixed(1)} after the contenders` : ''}; one thread ${(j.bandwidth.oneThread.bestBytesPerSecond / 1e9).toFixed(1)} GB/s) = ${fmt(rf.stepMs, 1)} ms a token, ${fmt(rf.tokensPerSecond, 1)} tok/s. The bare ORT loop reaches ${fmt((rf.bareOrtFraction ?? NaN) * 100, 0)}% of it.`);
  const g = j.greedyAgreement;
  lines.push('');
  lines.push(`Greedy tokens identical for the first ${g.oursVsBareOrt ?? 'n/a'} steps (ours vs bare ORT, same prepared file), ${g.oursVsTransformersJs ?? 'n/a'} (ours vs transformers.js, which computes MatMulNBits in float32: int8 rounding flips near-ties of random weights).`);
  lines.push('');
  return `${lines.join('\n')}\n`;
}

if (require.main === module) {
  main().catch((e: unknown) => {
    console.error(e instanceof Error ? e.message : e);
    process.exitCode = 1;
  });
}
