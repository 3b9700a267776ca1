/**
 * One benchmark contender in its own process (so its peak RSS is its own): loads the benchmark
 * model, measures time to first token for each prompt length and greedy decode speed with eos
 * ignored, and prints one JSON line (prefixed `RESULT `) with the figures and VmHWM.
 *
 *   tsx bench/contender.ts '<json ContenderParams>'
 *
 * Contenders:
 * - `ours`: R1Engine (prepared CPU model, chunked prefill, its own sampler and detokenizer);
 * - `transformers.js`: @huggingface/transformers 4.3.1, offline from the local folder, dtype = the
 *   variant (q4 by default). It loads hub folders (config.json + onnx/model_<dtype>.onnx) only: an
 *   onnxruntime-genai folder has neither, so run.ts does not start it there;
 * - `bare-ort`: session.run + argmax on the same prepared file and session options as ours, with
 *   what the graph declares: the folder's input and output names (genai_config.json's in the genai
 *   layout), position_ids only when the graph has that input, r1_logit_count = 1 when the prepared
 *   copy takes it (the last position's logits, as the engine's plain step), the engine's KV slots when the copy
 *   outputs new rows only (else present.* fed back as past_key_values.*), the prompt in one piece
 *   when the graph takes one token at a time once its cache holds some (the builder's
 *   MultiHeadAttention graph whose attention was not rewritten); no detokenization: the floor for
 *   engine overhead.
 * - `linear-floor`: only the model's linear layers as the prepared copy runs them (bench/model.ts
 *   buildLinearFloorGraph, its layout in bench-model.json), same session options, decode steps
 *   with one row and prefill in the same chunks: the time ONNX Runtime's MatMulNBits kernels alone
 *   take, which no engine on these kernels can beat. It produces no tokens.
 * - `llama.cpp`, `llama.cpp-q4_k_m`: node-llama-cpp 3.21.1 on the Q4_0 / Q4_K_M GGUF of the same
 *   shapes and float weights (bench/ggufModel.ts): bench/llamaCpp.ts says how it is run.
 */
import { readFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { R1Engine, sessionOptions } from '../src/engine/engine';
import { type ValueMetadataLike, chooseVariant, readModelFolder, validateSignature } from '../src/engine/modelFolder';
import { checkedRewrites } from '../src/engine/graph/check';
import { prepareModelForCpu } from '../src/engine/graph/prepare';
import { type GraphRewrites, KV_NEW_ROWS_DIM, LOGIT_COUNT_INPUT } from '../src/engine/graph/rewrites';
import { float16Table } from '../src/engine/session';
import type { GenerationResult, LoadOptions, ModelVariant, PreparedStep, ProviderPreference } from '../src/engine/types';
import { Rng } from '../test/fixtures/onnx/rng';
import { GraphBuilder, float32ArrayToFloat16Bits } from '../test/fixtures/onnx/graph';
import { type BenchLayout, readManifest } from './model';
import { type LlamaCppInfo, llamaCppDecodeRate, openLlamaCpp } from './llamaCpp';

export type ContenderKind = 'ours' | 'transformers.js' | 'bare-ort' | 'linear-floor' | 'llama.cpp' | 'llama.cpp-q4_k_m';

/** The llama.cpp contenders, by the GGUF file type each decodes (bench/ggufModel.ts). */
export const LLAMA_CPP_KINDS: Readonly<Partial<Record<ContenderKind, 'Q4_0' | 'Q4_K_M'>>> = { 'llama.cpp': 'Q4_0', 'llama.cpp-q4_k_m': 'Q4_K_M' };

export interface ContenderParams {
  kind: ContenderKind;
  modelDir: string;
  layout: BenchLayout;
  /** The hub variant to load (onnx/model_<variant>.onnx; transformers.js's dtype); ignored in the genai layout (one model). */
  variant: ModelVariant;
  /** Greedy picks among ids below this (the vocabulary the engine samples from: min(logits, tokenizer)). */
  argmaxVocab: number;
  provider: ProviderPreference;
  promptLengths: number[];
  /** Prompt length of the decode measurement. */
  decodePrompt: number;
  newTokens: number;
  seed: number;
  prefillChunkSize: number;
  cacheDir: string;
  cpuThreads?: number;
  /** Extra engine load options (experiments). */
  engine?: Partial<LoadOptions>;
  /** bare-ort only: which graph rewrites its prepared copy gets (experiments; default all). */
  rewrites?: GraphRewrites;
  /** llama.cpp contenders: the GGUF file (bench/ggufModel.ts) of the same shapes and weights. */
  gguf?: string;
}

export interface ContenderResult {
  kind: ContenderKind;
  loadMs: number;
  /** VmHWM right after loading (bytes). */
  loadPeakRss: number;
  /** Time to first token by prompt length (ms). */
  ttftMs: Record<string, number>;
  decode: {
    promptTokens: number;
    newTokens: number;
    tokensPerSecond: number;
    stepMs: number;
    stepsMs?: number[];
    /** Per decode step, the time spent outside session.run (ours, bare-ort): the loop's own cost. */
    outsideRunMs?: number[];
  };
  /** Greedy tokens of the decode run (to check the contenders agree). */
  tokens: number[];
  peakRss: number;
  notes: string[];
  /** ours only: time to first token of a follow-up whose first `reusedTokens` prompt tokens were cached. */
  followUp?: { promptTokens: number; reusedTokens: number; ttftMs: number };
  /** ours: the prepared copy's steps (as r1 info lists them); undefined when no copy was loaded. */
  preparedSteps?: PreparedStep[];
  /** ours, bare-ort: false when the graph takes one token at a time once its cache holds some. */
  multiTokenSteps?: boolean;
  /** llama.cpp contenders: how node-llama-cpp ran (threads, batch, context, flash attention, build). */
  llamaCpp?: LlamaCppInfo;
  /**
   * linear-floor only: by prompt length, the time of the attention products alone (QKᵀ and
   * probabilities·V in float32, every layer and chunk, each row over its cached keys and half its
   * chunk), which any exact attention computes on top of the linear layers.
   */
  attentionProductsMs?: Record<string, number>;
}

/** Prompt token ids: seeded, from the byte-level BPE range (no special tokens). */
export function promptIds(seed: number, n: number): number[] {
  const rng = new Rng(seed);
  return Array.from({ length: n }, () => Math.floor(rng.next() * 151643));
}

function vmHWM(): number {
  const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'));
  return m ? Number(m[1]) * 1024 : process.memoryUsage().rss;
}

/**
 * Wraps `session.run` to add up the time spent inside it; `outside(stepMs)` then gives the part
 * of a step spent elsewhere since the previous call. Unlike step times, this does not move with the
 * machine's memory bandwidth, which is what the engine-overhead target needs.
 */
function runClock(session: ort.InferenceSession): { outside: (stepMs: number) => number } {
  let inside = 0;
  let seen = 0;
  const run = session.run.bind(session);
  (session as { run: unknown }).run = async (...args: Parameters<typeof run>) => {
    const t = performance.now();
    try {
      return await run(...args);
    } finally {
      inside += performance.now() - t;
    }
  };
  return {
    outside: (stepMs) => {
      const ran = inside - seen;
      seen = inside;
      return stepMs - ran;
    },
  };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.floor((s.length - 1) / 2)]! : 0;
}

async function runOurs(p: ContenderParams): Promise<ContenderResult> {
  const t0 = performance.now();
  const engine = await R1Engine.load({ modelDir: p.modelDir, provider: p.provider, cacheDir: p.cacheDir, cpuThreads: p.cpuThreads, variant: p.layout === 'genai' ? 'auto' : p.variant, ...p.engine });
  const loadMs = performance.now() - t0;
  const loadPeakRss = vmHWM();
  const ttftMs: Record<string, number> = {};
  const opts = { temperature: 0, stopOnEos: false, prefillChunkSize: p.prefillChunkSize, contextWindow: 131072 };
  // Every prompt is measured cold: the prompts share their first tokens (same seed), and the
  // engine would otherwise reuse the previous request's KV rows for them.
  const cold = (r: GenerationResult) => {
    if (r.status === 'error') throw new Error(r.error);
    if (r.stats.reusedPromptTokens !== 0) throw new Error(`the prompt was not measured cold: ${r.stats.reusedPromptTokens} tokens reused`);
    return r;
  };
  for (const n of p.promptLengths) {
    engine.decoder.reset();
    const r = cold(await engine.generateFromIds(promptIds(p.seed, n), { ...opts, maxNewTokens: 1 }));
    ttftMs[n] = r.stats.timeToFirstTokenMs;
  }
  // A follow-up: a request, then one whose prompt starts with the first one's and adds 64 tokens
  // (the shape of a next turn, or another question on the same file). Its first prompt is the
  // largest measured one up to 1,024 tokens.
  const base = Math.max(...p.promptLengths.filter((n) => n <= 1024), 1);
  engine.decoder.reset();
  cold(await engine.generateFromIds(promptIds(p.seed, base), { ...opts, maxNewTokens: 1 }));
  const followIds = [...promptIds(p.seed, base), ...promptIds(p.seed + 1, 64)];
  const follow = await engine.generateFromIds(followIds, { ...opts, maxNewTokens: 1 });
  if (follow.status === 'error') throw new Error(follow.error);
  if (follow.stats.reusedPromptTokens !== base) throw new Error(`the follow-up reused ${follow.stats.reusedPromptTokens} tokens, expected ${base}`);
  const followUp = { promptTokens: followIds.length, reusedTokens: base, ttftMs: follow.stats.timeToFirstTokenMs };
  // Decode: time each step through the decoder (the loop's own stats give the rate).
  const tokens: number[] = [];
  const steps: number[] = [];
  const outsideRunMs: number[] = [];
  const dec = engine.decoder;
  const clock = runClock(dec.session);
  const origForward = dec.forward.bind(dec);
  let last = 0;
  dec.forward = async (ids) => {
    const out = await origForward(ids);
    const now = performance.now();
    const outside = clock.outside(last ? now - last : 0);
    if (ids.length === 1) {
      tokens.push(ids[0]!);
      if (last) {
        steps.push(now - last);
        outsideRunMs.push(outside);
      }
    }
    last = now;
    return out;
  };
  engine.decoder.reset();
  const r = cold(await engine.generateFromIds(promptIds(p.seed, p.decodePrompt), { ...opts, maxNewTokens: p.newTokens }));
  dec.forward = origForward;
  const notes = [...engine.info.notes];
  const preparedSteps = engine.info.preparedCopy?.steps;
  const multiTokenSteps = engine.decoder.multiTokenSteps;
  await engine.dispose();
  return {
    kind: 'ours',
    preparedSteps,
    multiTokenSteps,
    loadMs,
    loadPeakRss,
    ttftMs,
    decode: { promptTokens: p.decodePrompt, newTokens: p.newTokens, tokensPerSecond: r.stats.decodeTokensPerSecond, stepMs: 1000 / r.stats.decodeTokensPerSecond, stepsMs: steps, outsideRunMs },
    tokens,
    peakRss: vmHWM(),
    notes,
    followUp,
  };
}

/** Index of the largest of `n` values starting at `off`. */
function argmaxAt(data: Float32Array, off: number, n: number): number {
  let best = 0;
  let bv = -Infinity;
  for (let i = 0; i < n; i++) {
    const x = data[off + i]!;
    if (x > bv) {
      bv = x;
      best = i;
    }
  }
  return best;
}

/** The last position's logits as float32 (float16 graphs: converted, as the engine converts them). */
function lastRow(t: ort.Tensor, v: number, n: number): { data: Float32Array; off: number } {
  const data = t.data as Float32Array | Uint16Array;
  const off = data.length - v;
  if (data instanceof Float32Array) return { data, off };
  const table = float16Table();
  const row = new Float32Array(n);
  for (let i = 0; i < n; i++) row[i] = table[data[off + i]!]!;
  return { data: row, off: 0 };
}

const CAPACITY_STEP = 256; // the engine's KV slot growth (src/engine/kvSlots.ts)

async function runBare(p: ContenderParams): Promise<ContenderResult> {
  const t0 = performance.now();
  const provider = p.provider === 'auto' ? 'cpu' : p.provider;
  // The file the engine loads: onnx/model_<variant>.onnx, or genai_config.json's model file, with
  // the folder's names (genai_config.json's in the genai layout).
  const folder = readModelFolder(p.modelDir);
  const { config, names } = folder;
  const variant = chooseVariant(p.modelDir, folder.variants, folder.layout === 'genai' ? 'auto' : p.variant, provider);
  const src = folder.variants.get(variant)!;
  // The same prepared copy as ours: same rewrites, the attention checked the same way.
  const options = { modelDir: p.modelDir, cpuThreads: p.cpuThreads, ...p.engine };
  const attention = checkedRewrites(config, sessionOptions('cpu', options, config.numHiddenLayers, names));
  const rewritesDir = p.rewrites ? join(p.cacheDir, `rewrites-${JSON.stringify(p.rewrites).replace(/[^a-z0-9]+/gi, '-')}`) : p.cacheDir;
  const file = provider === 'cpu' && p.engine?.prepareForCpu !== false ? (await prepareModelForCpu(src, { cacheDir: rewritesDir, ...attention, ...p.rewrites })).file : src;
  const session = await ort.InferenceSession.create(file, sessionOptions(provider, options, config.numHiddenLayers, names));
  // What the graph declares: its inputs (position_ids or not), KV names, dtypes, new rows or the whole cache.
  const sig = validateSignature(file, session.inputMetadata as unknown as ValueMetadataLike[], session.outputMetadata as unknown as ValueMetadataLike[], config, names);
  const { kvHeads: kv, headDim: hd, pastNames, presentNames, kvDtype } = sig;
  const V = config.vocabSize;
  const pick = Math.min(V, p.argmaxVocab);
  const newRows = sig.outputs.find((o) => o.name === presentNames[0])?.shape[2] === KV_NEW_ROWS_DIM && kvDtype === 'float32';
  // The KV state of one sequence: fixed slots [kv, cap, hd] the new rows are copied into (unfilled
  // slots masked out, grown in the engine's steps), or the export's present.* hand-off.
  interface Kv {
    filled: number;
    cap: number;
    bufs: Float32Array[];
    past: ort.Tensor[];
  }
  const empty = () => (kvDtype === 'float16' ? new ort.Tensor('float16', new Uint16Array(0), [1, kv, 0, hd]) : new ort.Tensor('float32', new Float32Array(0), [1, kv, 0, hd]));
  const newKv = (): Kv => ({ filled: 0, cap: 0, bufs: [], past: pastNames.map(empty) });
  const grow = (s: Kv, need: number) => {
    if (need <= s.cap && s.bufs.length > 0) return;
    const cap = Math.max(s.cap, Math.ceil(need / CAPACITY_STEP) * CAPACITY_STEP);
    const bufs = pastNames.map(() => new Float32Array(kv * cap * hd));
    if (s.filled > 0) bufs.forEach((b, t) => { for (let h = 0; h < kv; h++) b.set(s.bufs[t]!.subarray(h * s.cap * hd, (h * s.cap + s.filled) * hd), h * cap * hd); });
    s.bufs = bufs;
    s.cap = cap;
    s.past = bufs.map((b) => new ort.Tensor('float32', b, [1, kv, cap, hd]));
  };
  const logitCountOne = new ort.Tensor('int64', BigInt64Array.from([1n]), [1]);
  // Runs `ids` after the cached tokens; returns the argmax of the last row.
  const step = async (ids: number[], s: Kv, runOptions?: ort.InferenceSession.RunOptions) => {
    const n = ids.length;
    if (newRows) grow(s, s.filled);
    const width = newRows ? s.cap : s.filled;
    const mask = new BigInt64Array(width + n).fill(1n);
    if (newRows) mask.fill(0n, s.filled, s.cap);
    const feeds: Record<string, ort.Tensor> = {
      [names.inputIds]: new ort.Tensor('int64', BigInt64Array.from(ids.map(BigInt)), [1, n]),
      [names.attentionMask]: new ort.Tensor('int64', mask, [1, width + n]),
    };
    if (sig.feedsPositionIds) feeds[names.positionIds] = new ort.Tensor('int64', BigInt64Array.from(ids.map((_, i) => BigInt(s.filled + i))), [1, n]);
    // The prepared copy's own input (since PREPARE_VERSION 7): logits of the last position only, as the engine asks for a plain step.
    if (sig.feedsLogitCount) feeds[LOGIT_COUNT_INPUT] = logitCountOne;
    pastNames.forEach((pn, t) => (feeds[pn] = s.past[t]!));
    const out = runOptions ? await session.run(feeds, runOptions) : await session.run(feeds);
    if (newRows) {
      grow(s, s.filled + n);
      presentNames.forEach((on, t) => {
        const rows = out[on]!.data as Float32Array;
        for (let h = 0; h < kv; h++) s.bufs[t]!.set(rows.subarray(h * n * hd, (h + 1) * n * hd), (h * s.cap + s.filled) * hd);
      });
    } else presentNames.forEach((on, t) => (s.past[t] = out[on]!));
    s.filled += n;
    const { data, off } = lastRow(out[names.logits]!, V, pick);
    return argmaxAt(data, off, pick);
  };
  // As the engine finds out at load: can the graph run two tokens once its cache holds one? (The
  // builder's MultiHeadAttention graph cannot, unless the prepared copy's attention rewrite was kept.)
  let multiTokenSteps = true;
  let stepFailure = '';
  {
    const s = newKv();
    await step([13], s);
    try {
      await step([13, 13], s, { logSeverityLevel: 4 });
    } catch (e) {
      multiTokenSteps = false;
      stepFailure = String((e as Error).message ?? e).split('\n')[0]!;
    }
  }
  const loadMs = performance.now() - t0;
  const loadPeakRss = vmHWM();
  // A graph that takes one token at a time once its cache holds some gets the prompt in one piece.
  const prefill = async (ids: number[]) => {
    const s = newKv();
    const size = multiTokenSteps ? p.prefillChunkSize : ids.length;
    let tok = 0;
    for (let i = 0; i < ids.length; i += size) tok = await step(ids.slice(i, i + size), s);
    return { tok, s };
  };
  const ttftMs: Record<string, number> = {};
  for (const n of p.promptLengths) {
    const t = performance.now();
    await prefill(promptIds(p.seed, n));
    ttftMs[n] = performance.now() - t;
  }
  const prompt = promptIds(p.seed, p.decodePrompt);
  const first = await prefill(prompt);
  let tok = first.tok;
  const tokens = [tok];
  const steps: number[] = [];
  const outsideRunMs: number[] = [];
  const clock = runClock(session);
  const tFirst = performance.now();
  clock.outside(0);
  let last = tFirst;
  for (let i = 1; i < p.newTokens; i++) {
    tok = await step([tok], first.s);
    tokens.push(tok);
    const now = performance.now();
    steps.push(now - last);
    outsideRunMs.push(clock.outside(now - last));
    last = now;
  }
  const tps = ((p.newTokens - 1) * 1000) / (last - tFirst);
  await session.release();
  return {
    kind: 'bare-ort',
    loadMs,
    loadPeakRss,
    ttftMs,
    decode: { promptTokens: p.decodePrompt, newTokens: p.newTokens, tokensPerSecond: tps, stepMs: 1000 / tps, stepsMs: steps, outsideRunMs },
    tokens,
    peakRss: vmHWM(),
    multiTokenSteps,
    notes: [
      `file ${basename(file)}`,
      `inputs ${sig.inputs.filter((i) => !pastNames.includes(i.name)).map((i) => i.name).join(', ')} + ${pastNames.length} past`,
      newRows ? 'KV: new rows into slots grown as the engine grows them' : 'KV: present.* fed back as past',
      multiTokenSteps ? 'prefill in chunks' : `prompt in one piece, then one token a step (${stepFailure})`,
    ],
  };
}

async function runTransformersJs(p: ContenderParams): Promise<ContenderResult> {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const tjs = require('@huggingface/transformers') as typeof import('@huggingface/transformers');
  tjs.env.allowRemoteModels = false;
  tjs.env.allowLocalModels = true;
  tjs.env.localModelPath = dirname(p.modelDir);
  const t0 = performance.now();
  const device = p.provider === 'auto' ? 'cpu' : p.provider;
  if (p.layout === 'genai') throw new Error('transformers.js cannot load an onnxruntime-genai folder: it has no config.json and no onnx/model_<dtype>.onnx');
  const model = await tjs.AutoModelForCausalLM.from_pretrained(basename(p.modelDir), { dtype: p.variant as 'q4', device: device as 'cpu' });
  const loadMs = performance.now() - t0;
  const loadPeakRss = vmHWM();
  const generate = async (ids: number[], newTokens: number) => {
    const times: number[] = [];
    const tokens: number[] = [];
    let calls = 0;
    const streamer = {
      put(value: bigint[][]) {
        // The first call carries the prompt; every later one the new token.
        if (calls++ === 0) return;
        times.push(performance.now());
        tokens.push(Number(value[0]![0]));
      },
      end() {},
    };
    const n = ids.length;
    const input_ids = new tjs.Tensor('int64', BigInt64Array.from(ids.map(BigInt)), [1, n]);
    const attention_mask = new tjs.Tensor('int64', new BigInt64Array(n).fill(1n), [1, n]);
    const t = performance.now();
    await model.generate({ input_ids, attention_mask, max_new_tokens: newTokens, min_new_tokens: newTokens, do_sample: false, streamer } as never);
    return { t, times, tokens };
  };
  const ttftMs: Record<string, number> = {};
  for (const n of p.promptLengths) {
    const r = await generate(promptIds(p.seed, n), 1);
    ttftMs[n] = r.times[0]! - r.t;
  }
  const r = await generate(promptIds(p.seed, p.decodePrompt), p.newTokens);
  const steps = r.times.slice(1).map((x, i) => x - r.times[i]!);
  const tps = ((r.times.length - 1) * 1000) / (r.times[r.times.length - 1]! - r.times[0]!);
  await (model as unknown as { dispose(): Promise<void> }).dispose?.();
  return {
    kind: 'transformers.js',
    loadMs,
    loadPeakRss,
    ttftMs,
    decode: { promptTokens: p.decodePrompt, newTokens: p.newTokens, tokensPerSecond: tps, stepMs: 1000 / tps, stepsMs: steps },
    tokens: r.tokens,
    peakRss: vmHWM(),
    notes: [],
  };
}

async function runLinearFloor(p: ContenderParams): Promise<ContenderResult> {
  const t0 = performance.now();
  // The floor's shapes and layout are the model's (bench-model.json; a genai folder has no config.json).
  const manifest = readManifest(p.modelDir);
  const floor = manifest?.linearFloor;
  if (!manifest || !floor) throw new Error(`${p.modelDir} has no linear floor model (bench-model.json): build it with npm run bench:model`);
  const { hiddenSize: H, intermediateSize: I } = manifest.spec;
  const provider = p.provider === 'auto' ? 'cpu' : p.provider;
  const session = await ort.InferenceSession.create(join(p.modelDir, floor.file), sessionOptions(provider, { modelDir: p.modelDir, cpuThreads: p.cpuThreads, ...p.engine }));
  const loadMs = performance.now() - t0;
  const loadPeakRss = vmHWM();
  const rng = new Rng(p.seed);
  const rows = (m: number, width: number) => {
    const values = Float32Array.from({ length: m * width }, () => rng.next() * 2 - 1);
    return floor.io === 'float16' ? new ort.Tensor('float16', float32ArrayToFloat16Bits(values), [m, width]) : new ort.Tensor('float32', values, [m, width]);
  };
  const h = rows(1, H);
  const inputs = new Map<number, Record<string, ort.Tensor>>();
  const run = async (m: number) => {
    let feeds = inputs.get(m);
    if (!feeds) inputs.set(m, (feeds = { x: rows(m, H), y: rows(m, I), h }));
    await session.run(feeds);
  };
  const ttftMs: Record<string, number> = {};
  for (const n of p.promptLengths) {
    const t = performance.now();
    for (let i = 0; i < n; i += p.prefillChunkSize) await run(Math.min(p.prefillChunkSize, n - i));
    ttftMs[n] = performance.now() - t;
  }
  await run(1);
  const steps: number[] = [];
  for (let i = 1; i < p.newTokens; i++) {
    const t = performance.now();
    await run(1);
    steps.push(performance.now() - t);
  }
  const total = steps.reduce((a, b) => a + b, 0);
  await session.release();
  const attentionProductsMs = await timeAttentionProducts(p, { heads: manifest.spec.numHeads, headDim: manifest.spec.headDim, layers: manifest.spec.numLayers }, rng);
  return {
    kind: 'linear-floor',
    loadMs,
    loadPeakRss,
    ttftMs,
    decode: { promptTokens: 0, newTokens: p.newTokens, tokensPerSecond: (steps.length * 1000) / total, stepMs: total / steps.length, stepsMs: steps },
    tokens: [],
    peakRss: vmHWM(),
    notes: [`linear layers only (${floor.weights === 'q4' ? 'MatMulNBits at accuracy_level 4' : 'float MatMul'}, grouped ${floor.fusion} as in the prepared copy: ${floor.why}); no attention, norms or embedding`],
    attentionProductsMs,
  };
}

/**
 * The attention products of each prompt, alone: per chunk and layer, Q [heads, c, d] · Kᵀ [heads,
 * d, w] and P [heads, c, w] · V [heads, w, d] as two float32 MatMuls, where w = the cached keys
 * plus half the chunk (causal rows see their past and, on average, half of their own chunk).
 * Every exact attention does at least this arithmetic; ONNX Runtime's CPU kernels do it with the
 * same SGEMM.
 */
async function timeAttentionProducts(p: ContenderParams, shape: { heads: number; headDim: number; layers: number }, rng: Rng): Promise<Record<string, number>> {
  const heads = shape.heads;
  const d = shape.headDim;
  const g = new GraphBuilder('attention-products');
  const q = g.input('q', 'float32', [heads, 'c', d]);
  const kT = g.input('kT', 'float32', [heads, d, 'w']);
  const probs = g.input('probs', 'float32', [heads, 'c', 'w']);
  const v = g.input('v', 'float32', [heads, 'w', d]);
  g.output('scores', 'float32', [heads, 'c', 'w'], g.op('MatMul', [q, kT]));
  g.output('context', 'float32', [heads, 'c', d], g.op('MatMul', [probs, v]));
  const provider = p.provider === 'auto' ? 'cpu' : p.provider;
  const session = await ort.InferenceSession.create(g.encode({ opset: 17 }), sessionOptions(provider, { modelDir: p.modelDir, cpuThreads: p.cpuThreads, ...p.engine }));
  const tensor = (dims: number[]) => new ort.Tensor('float32', Float32Array.from({ length: dims.reduce((a, b) => a * b, 1) }, () => rng.next() - 0.5), dims);
  const out: Record<string, number> = {};
  try {
    for (const n of p.promptLengths) {
      let ms = 0;
      for (let start = 0; start < n; start += p.prefillChunkSize) {
        const c = Math.min(p.prefillChunkSize, n - start);
        const w = start + Math.ceil(c / 2);
        const feeds = { q: tensor([heads, c, d]), kT: tensor([heads, d, w]), probs: tensor([heads, c, w]), v: tensor([heads, w, d]) };
        const t = performance.now();
        for (let l = 0; l < shape.layers; l++) await session.run(feeds);
        ms += performance.now() - t;
      }
      out[n] = ms;
    }
  } finally {
    await session.release();
  }
  return out;
}

/**
 * llama.cpp (bench/llamaCpp.ts says how it is run): the GGUF of the same shapes and weights, the
 * same prompt tokens, greedy over the same ids as the others, the same thread count as ours (ONNX
 * Runtime's default, the physical cores: llama.cpp's math cores). Each prompt is measured cold (the
 * sequence's history cleared). Peak RSS counts the mapped file's resident pages, as VmHWM does.
 */
async function runLlamaCpp(p: ContenderParams): Promise<ContenderResult> {
  if (!p.gguf) throw new Error(`${p.kind}: no GGUF file given`);
  const t0 = performance.now();
  const contextSize = Math.max(...p.promptLengths, p.decodePrompt + p.newTokens) + 16;
  const runner = await openLlamaCpp({ gguf: p.gguf, contextSize, argmaxVocab: p.argmaxVocab, threads: p.cpuThreads });
  const loadMs = performance.now() - t0;
  const loadPeakRss = vmHWM();
  const ttftMs: Record<string, number> = {};
  for (const len of p.promptLengths) {
    const r = await runner.generate(promptIds(p.seed, len), 1);
    ttftMs[len] = r.times[0]! - r.t;
  }
  const r = await runner.generate(promptIds(p.seed, p.decodePrompt), p.newTokens);
  const steps = r.times.slice(1).map((x, i) => x - r.times[i]!);
  const tps = llamaCppDecodeRate(r);
  const llamaCpp = runner.info;
  await runner.dispose();
  return {
    kind: p.kind,
    loadMs,
    loadPeakRss,
    ttftMs,
    decode: { promptTokens: p.decodePrompt, newTokens: p.newTokens, tokensPerSecond: tps, stepMs: 1000 / tps, stepsMs: steps },
    tokens: r.tokens,
    peakRss: vmHWM(),
    notes: [`${basename(p.gguf)}: node-llama-cpp ${llamaCpp.build}, ${llamaCpp.threads} threads, batch ${llamaCpp.batchSize}, flash attention ${llamaCpp.flashAttention}`],
    llamaCpp,
  };
}

export async function runContender(p: ContenderParams): Promise<ContenderResult> {
  const res = await (p.kind === 'ours' ? runOurs(p) : p.kind === 'bare-ort' ? runBare(p) : p.kind === 'linear-floor' ? runLinearFloor(p) : LLAMA_CPP_KINDS[p.kind] ? runLlamaCpp(p) : runTransformersJs(p));
  res.decode.stepMs = median(res.decode.stepsMs ?? []) || res.decode.stepMs;
  return res;
}

if (require.main === module) {
  const params = JSON.parse(process.argv[2] ?? '{}') as ContenderParams;
  runContender(params).then(
    (r) => {
      process.stdout.write(`RESULT ${JSON.stringify(r)}\n`);
    },
    (e: unknown) => {
      console.error(e instanceof Error ? e.stack : e);
      process.exitCode = 1;
    },
  );
}
