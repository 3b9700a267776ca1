/**
 * `npm run bench:lookup`: what prompt-lookup decoding (issue 18) buys, measured on the real engine
 * with the benchmark's random-weight models (bench/model.ts), in two parts:
 *
 * 1. `--pass-cost`: the time of one forward pass over 1, 2, 4, 8 and 16 new tokens with the
 *    logits of all of them (DecoderSession.forward(ids, ids.length)), after a cached context of
 *    `--context` tokens (1,024), each as a ratio to the 1-token pass. The sizes run interleaved in
 *    one process, round after round (rotated order), each pass rolled back after it
 *    (DecoderSession.truncate), and each round's ratios are taken within the round: the machine's
 *    speed moves by ±15 % between processes and minutes.
 * 2. `--replay`: real texts (bench/texts, SOURCES.md there) replayed through R1Engine on the
 *    1.5B model's prepared CPU copy with the engine's pick seam (GenerationInternals.pick: the
 *    text's next token in place of the sampler, eos after it), with `promptLookup` 'auto' and
 *    'off' back to back for every text and round. Drafting and verification then behave as on a
 *    model that writes that text; every pass costs what the benchmark model's passes cost. Phases:
 *    ANSWER (the code block and explanation of real bug fixes, after the Fix prompt and the
 *    reasoning) and REASONING (genuine DeepSeek-R1 reasoning with its own prompt; and reasoning
 *    texts written for the fixes, reported apart as a substitute). Then the expected speedup of a
 *    whole Fix request, split by phase. In each round llama.cpp (bench/llamaCpp.ts, the Q4_0 GGUF
 *    of the same shapes and weights) decodes as many tokens after the same prompt, plainly, so
 *    our decode with and without lookup is compared with llama.cpp's at the contexts real
 *    requests have (4-17K tokens), not only after the headline's 128 (`--no-llama-cpp` skips it).
 *
 *   npm run bench:lookup -- [--pass-cost] [--replay] [--shape 1.5b|7b] [--layout L] [--variant V]
 *                           [--context 1024] [--rounds N] [--only id,id] [--out DIR] [--quick]
 *                           [--no-llama-cpp]
 *
 * Without --pass-cost or --replay both run. --pass-cost defaults: --shape 1.5b with the
 * onnx-community q4 layout (the headline), 7b with the genai cpu layout (onnx-community has no
 * 7B; its 7B-shaped folder would need ~20 GB of disk with the prepared copy's check), 12 rounds.
 * --replay always runs the 1.5B model (3 rounds). --quick: the tiny model, 2 rounds, results in
 * .cache/bench/results-quick.* (the committed figures stay).
 *
 * Results: bench/results.json's `lookup` section (pass costs by shape, the replay's runs and
 * summaries, `lookup.ratios`), the same ratios (answerPhaseLookupSpeedup,
 * reasoningPhaseLookupSpeedup, ...) copied into the headline run's `ratios`, and
 * bench/results.md re-rendered with the lookup tables (bench/lookupReport.ts).
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { cpus, loadavg, totalmem } from 'node:os';
import { join, resolve } from 'node:path';
import { R1Engine } from '../src/engine/engine';
import type { GenerationResult } from '../src/engine/types';
import { promptIds } from './contender';
import { type LookupJson, type PassCostJson, type ReplayJson, applyLookupRatios, lookupRatios, renderLookupSummary } from './lookupReport';
import { type LlamaCppRunner, openLlamaCpp } from './llamaCpp';
import { type PassRound, type ReplayRun, type LookupMode, passCostRatios, roundOrder, summarizePhase } from './lookupStats';
import { buildBenchGguf } from './ggufModel';
import { type Replay, allReplays, replayPick } from './lookupTexts';
import { BENCH_DIR, type BenchLayout, type BenchShape, DEFAULT_SEED, buildBenchModel, defaultVariant } from './model';
import { renderMarkdown } from './run';

const PASS_SIZES = [1, 2, 4, 8, 16];

interface Args {
  passCost: boolean;
  replay: boolean;
  shape: BenchShape;
  layout: BenchLayout;
  variant: string;
  context: number;
  rounds?: number;
  only?: string[];
  out: string;
  quick: boolean;
  llamaCpp: boolean;
}

function parseArgs(argv: string[]): Args {
  const get = (name: string): string | undefined => {
    const i = argv.indexOf(name);
    if (i >= 0) return argv[i + 1];
    return argv.find((a) => a.startsWith(`${name}=`))?.slice(name.length + 1);
  };
  const quick = argv.includes('--quick');
  let passCost = argv.includes('--pass-cost');
  let replay = argv.includes('--replay');
  if (!passCost && !replay) passCost = replay = true;
  const shape = (get('--shape') ?? (quick ? 'tiny' : '1.5b')) as BenchShape;
  const layout = (get('--layout') ?? (shape === '7b' ? 'genai' : 'onnx-community')) as BenchLayout;
  return {
    passCost,
    replay,
    shape,
    layout,
    variant: get('--variant') ?? defaultVariant(layout),
    context: Number(get('--context') ?? 1024),
    rounds: get('--rounds') ? Number(get('--rounds')) : undefined,
    only: get('--only')?.split(','),
    out: resolve(get('--out') ?? (quick ? BENCH_DIR : __dirname)),
    quick,
    llamaCpp: !argv.includes('--no-llama-cpp'),
  };
}

const log = (s: string) => process.stderr.write(`${s}\n`);
const fmt = (x: number, d = 2) => (Number.isFinite(x) ? x.toFixed(d) : 'n/a');

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

async function loadEngine(layout: BenchLayout, variant: string, shape: BenchShape): Promise<{ engine: R1Engine; dir: string }> {
  const { dir } = await buildBenchModel({ layout, variant, shape, seed: DEFAULT_SEED, log });
  log(`loading ${dir} (prepared CPU copy)`);
  const engine = await R1Engine.load({ modelDir: dir, provider: 'cpu', cacheDir: join(BENCH_DIR, 'prepared'), variant: layout === 'genai' ? 'auto' : (variant as 'q4') });
  // The prepared CPU copy: logits of the last positions on request (r1_logit_count), the cache the engine's own.
  if (engine.decoder.verification !== 'free') throw new Error(`the decoder of ${dir} cannot check drafts at no cost (verification: ${engine.decoder.verification}): ${engine.info.notes.join(' ')}`);
  return { engine, dir };
}

/** Part 1: the cost of a pass over n new tokens with all their logits, as a ratio to one token. */
async function passCost(a: Args): Promise<PassCostJson> {
  const load = [loadavg()];
  const { engine, dir } = await loadEngine(a.layout, a.variant, a.shape);
  const dec = engine.decoder;
  const context = promptIds(DEFAULT_SEED, a.context);
  dec.reset();
  const t0 = performance.now();
  await dec.prefill(context, 256);
  log(`context of ${a.context} tokens cached in ${fmt((performance.now() - t0) / 1000, 1)} s`);
  const rounds = a.rounds ?? (a.quick ? 3 : 12);
  const timed: PassRound[] = [];
  // Round 0 warms every size up (ONNX Runtime plans each new shape once) and is not counted.
  for (let r = 0; r <= rounds; r++) {
    const round: PassRound = {};
    for (const n of roundOrder(PASS_SIZES, r)) {
      const ids = promptIds(DEFAULT_SEED + 1 + r * 31 + n, n);
      const t = performance.now();
      await dec.forward(ids, n);
      round[n] = performance.now() - t;
      dec.truncate(a.context);
    }
    if (r > 0) timed.push(round);
    log(`round ${r}${r === 0 ? ' (warm-up)' : ''}: ${PASS_SIZES.map((n) => `${n}: ${fmt(round[n]!, 1)} ms`).join(', ')}`);
  }
  load.push(loadavg());
  const costs = passCostRatios(timed);
  log(`pass cost vs 1 token (${a.shape}): ${costs.map((c) => `${c.tokens}: ${fmt(c.ratio)}x`).join(', ')}`);
  const notes = [...engine.info.notes];
  const steps = engine.info.preparedCopy?.steps;
  await engine.dispose();
  return {
    date: new Date().toISOString(),
    layout: a.layout,
    variant: a.variant,
    shape: a.shape,
    modelDir: dir,
    context: a.context,
    rounds,
    machine: machine(),
    loadAverage: load,
    costs,
    rawRounds: timed,
    notes,
    ...(steps ? { preparedSteps: steps.map((s) => `${s.step}: ${s.applied ? 'applied' : 'not applied'}`) } : {}),
  };
}

/** One replay of a text in one mode. */
async function replayOnce(engine: R1Engine, rp: Replay, mode: LookupMode, round: number, eos: number): Promise<{ run: ReplayRun; result: GenerationResult; ttftMs: number; reused: number }> {
  const t = performance.now();
  const result = await engine.generateFromIds(
    rp.promptIds,
    { temperature: 0, maxNewTokens: rp.textIds.length + 1, contextWindow: rp.promptIds.length + rp.textIds.length + 16, stopOnEos: true, thinkingBudget: 0, promptLookup: mode },
    { pick: replayPick(rp.textIds, eos) },
  );
  const total = performance.now() - t;
  if (result.status === 'error') throw new Error(`${rp.id} ${rp.phase} ${mode}: ${result.error}`);
  const s = result.stats;
  const written = s.reasoningTokens + s.answerTokens;
  if (written !== rp.textIds.length) throw new Error(`${rp.id} ${rp.phase} ${mode}: wrote ${written} tokens, the text has ${rp.textIds.length} (status ${result.status})`);
  return {
    run: {
      id: rp.id,
      phase: rp.phase,
      kind: rp.kind,
      mode,
      round,
      // The first token comes from the prompt's pass; the decode passes give the other n - 1 and the eos.
      tokens: rp.textIds.length,
      decodeMs: total - s.timeToFirstTokenMs,
      forwardPasses: s.forwardPasses ?? NaN,
      draftTokens: s.draftTokens ?? 0,
      acceptedDraftTokens: s.acceptedDraftTokens ?? 0,
    },
    result,
    ttftMs: s.timeToFirstTokenMs,
    reused: s.reusedPromptTokens,
  };
}

/**
 * llama.cpp's plain decode of as many tokens as the text has, after the same prompt ids (the GGUF
 * carries the same tokenizer). Its greedy tokens are its own (random weights): a pass costs the
 * same whatever the token, so the rate compares with ours at the same context length.
 */
async function replayLlamaCpp(runner: LlamaCppRunner, rp: Replay, round: number): Promise<ReplayRun> {
  const r = await runner.decodeAfter(rp.promptIds, rp.textIds.length + 1);
  const tokens = r.times.length - 1;
  return { id: rp.id, phase: rp.phase, kind: rp.kind, mode: 'llama.cpp', round, tokens, decodeMs: r.times[tokens]! - r.times[0]!, forwardPasses: tokens, draftTokens: 0, acceptedDraftTokens: 0 };
}

/** Part 2: the texts replayed with and without lookup, paired, and llama.cpp after the same prompts. */
async function replay(a: Args): Promise<ReplayJson> {
  const load = [loadavg()];
  const shape: BenchShape = a.quick ? 'tiny' : '1.5b';
  const { engine, dir } = await loadEngine('onnx-community', 'q4', shape);
  const tok = engine.tokenizer;
  const eos = engine.info.eosTokenIds[0]!;
  const replays: Replay[] = allReplays(tok, a.only);
  log(`${replays.length} replays: ${replays.map((r) => `${r.id}/${r.phase} (${r.promptIds.length} + ${r.textIds.length})`).join(', ')}`);
  const rounds = a.rounds ?? (a.quick ? 2 : 3);
  const runs: ReplayRun[] = [];
  const coldTtftMs: Record<string, number> = {};
  let llama: LlamaCppRunner | undefined;
  let llamaGguf: string | undefined;
  if (a.llamaCpp) {
    const g = await buildBenchGguf({ shape, fileType: 'Q4_0', seed: DEFAULT_SEED, log });
    llamaGguf = g.file;
    const argmaxVocab = Math.min(engine.info.config.vocabSize, tok.vocabSize);
    llama = await openLlamaCpp({ gguf: g.file, contextSize: Math.max(...replays.map((r) => r.promptIds.length + r.textIds.length)) + 16, argmaxVocab });
    log(`llama.cpp: ${g.file}, ${llama.info.threads} threads, context ${llama.info.contextSize}`);
  }
  for (const rp of replays) {
    for (let r = 0; r < rounds; r++) {
      const order: LookupMode[] = r % 2 ? ['off', 'auto'] : ['auto', 'off'];
      const texts: string[] = [];
      for (const mode of order) {
        const o = await replayOnce(engine, rp, mode, r, eos);
        // A text's first run computes its prompt but for the few tokens it shares with the previous
        // text's (the chat template's start): its time to first token is the prompt's prefill.
        if (coldTtftMs[rp.id] === undefined && o.reused < 64) coldTtftMs[rp.id] = o.ttftMs;
        runs.push(o.run);
        texts.push(o.result.reasoning + '\u0000' + o.result.answer);
        log(`${rp.id}/${rp.phase} round ${r} ${mode}: ${o.run.tokens} tokens in ${o.run.forwardPasses} passes (${fmt(o.run.tokens / o.run.forwardPasses)} a pass; drafted ${o.run.draftTokens}, kept ${o.run.acceptedDraftTokens}), ${fmt((o.run.tokens * 1000) / o.run.decodeMs)} tok/s`);
      }
      if (texts[0] !== texts[1]) throw new Error(`${rp.id}/${rp.phase}: the text with lookup differs from the text without`);
      if (llama) {
        const l = await replayLlamaCpp(llama, rp, r);
        runs.push(l);
        log(`${rp.id}/${rp.phase} round ${r} llama.cpp: ${l.tokens} tokens, ${fmt((l.tokens * 1000) / l.decodeMs)} tok/s`);
      }
    }
  }
  load.push(loadavg());
  await llama?.dispose();
  await engine.dispose();
  const answer = summarizePhase(runs, 'answer');
  const reasoningGenuine = summarizePhase(runs, 'reasoning', (r) => r.kind === 'r1');
  const reasoningSubstitute = summarizePhase(runs, 'reasoning', (r) => r.kind === 'fix');
  return {
    date: new Date().toISOString(),
    model: { layout: 'onnx-community', variant: 'q4', shape, dir },
    rounds,
    machine: machine(),
    loadAverage: load,
    texts: replays.map((r) => ({ id: r.id, phase: r.phase, kind: r.kind, promptTokens: r.promptIds.length, textTokens: r.textIds.length, truncated: r.truncated })),
    coldTtftMs,
    ...(llama && llamaGguf ? { llamaCpp: { gguf: llamaGguf, ...llama.info } } : {}),
    answer,
    reasoningGenuine,
    reasoningSubstitute,
    runs,
  };
}

/** Writes the lookup section into results.json (keeping the rest), and re-renders results.md. */
function writeResults(a: Args, pass: PassCostJson | undefined, rep: ReplayJson | undefined): void {
  const base = join(a.out, a.quick ? 'results-quick' : 'results');
  const file = `${base}.json`;
  const doc = (existsSync(file) ? JSON.parse(readFileSync(file, 'utf8')) : { schema: 2, runs: [] }) as { schema: 2; runs: { ratios: Record<string, number | null> }[]; lookup?: LookupJson };
  const lookup: LookupJson = doc.lookup ?? { schema: 1, passCost: {}, ratios: {} };
  if (pass) lookup.passCost[pass.shape] = pass;
  if (rep) lookup.replay = rep;
  lookup.ratios = lookupRatios(lookup);
  doc.lookup = lookup;
  applyLookupRatios(doc as never);
  writeFileSync(file, `${JSON.stringify(doc, null, 2)}\n`);
  writeFileSync(`${base}.md`, renderMarkdown(doc as never));
  log(`wrote ${base}.{json,md}`);
}

async function main(): Promise<void> {
  const a = parseArgs(process.argv.slice(2));
  await mkdir(a.out, { recursive: true });
  const pass = a.passCost ? await passCost(a) : undefined;
  const rep = a.replay ? await replay(a) : undefined;
  writeResults(a, pass, rep);
  const base = join(a.out, a.quick ? 'results-quick' : 'results');
  const doc = JSON.parse(readFileSync(`${base}.json`, 'utf8')) as { lookup: LookupJson };
  process.stdout.write(`${renderLookupSummary(doc.lookup)}\n`);
}

if (require.main === module) {
  main().catch((e: unknown) => {
    console.error(e instanceof Error ? (e.stack ?? e.message) : e);
    process.exitCode = 1;
  });
}
