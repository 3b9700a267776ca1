/**
 * The benchmark model folders: a random-weight Qwen2 decoder with the shapes of
 * DeepSeek-R1-Distill-Qwen-1.5B (`1.5b`), of the 7B (`7b`: hidden 3584, 28 layers, 28 heads, 4 KV
 * heads, intermediate 18944, vocabulary 152064) or a small `tiny` shape, in one of the folder
 * layouts people download, so every contender loads what it would load from the hub:
 *
 * - `onnx-community` (the headline; onnx-community/DeepSeek-R1-Distill-Qwen-1.5B-ONNX): config.json
 *   (with its transformers.js_config), generation_config.json, tokenizer.json,
 *   tokenizer_config.json and onnx/model_<variant>.onnx holding onnxruntime-genai's builder graph
 *   with MultiHeadAttention (graph A, test/fixtures/onnx/builderMha.ts). Variants: `q4` (default:
 *   transformers.js's quantizer over the fp32 export, MatMulNBits 4-bit block 32 without
 *   accuracy_level, lm_head included, fp32 embedding: 1.97 GB at 1.5B, like the hub's file),
 *   `q4f16` (the builder's int4 web build: float16 activations and KV), `fp32` (model.onnx +
 *   model.onnx_data). A file that would pass protobuf's 2 GB limit (every 7b variant) keeps its
 *   weights in `<file>_data`, and config.json's transformers.js_config says so.
 * - `genai` (onnxruntime/DeepSeek-R1-Distill-ONNX): genai_config.json, model.onnx +
 *   model.onnx.data, tokenizer files and special_tokens_map.json, no config.json; the builder's
 *   GroupQueryAttention graph (graph B, builderGqa.ts: rotary inside, no position_ids, packed
 *   q/k/v). Variants: `cpu` (default: int4, accuracy_level 4, float32 I/O) and `gpu` (the CUDA
 *   int4 build: float16 I/O, accuracy_level 0).
 * - `optimum` (variant `q4` only): the benchmark's earlier model, kept as a third layout: the
 *   Optimum-style graph of test/fixtures/onnx/qwen2.ts (decomposed attention, plain RMSNorm) with
 *   random 4-bit weights in the q4 layout above. One file, so not at 7b.
 *
 * The builder layouts take their weights from test/fixtures/onnx/weights.ts (seededQwen2Weights:
 * every tensor its own seeded stream, computed a slice at a time) and are quantized as the real
 * files were (the MatMul4BitsQuantizer's packing, genaiBuilder.ts); writeBuilderModel streams them,
 * so no model is held in memory. Same layout, variant, shape and seed give the same bytes.
 *
 * Next to the model, `floor/linear_floor.onnx` (+ `.data` when large) holds only the model's linear
 * layers as the prepared CPU copy runs them (buildLinearFloorGraph), and `bench-model.json` the
 * manifest: sizes, the weight bytes a decode step reads, the floor's layout. A folder is reused
 * only when its marker holds the key of the sources that built it, its layout, variant, shape and
 * seed; anything else is built again (into a temporary sibling that then replaces it).
 *
 *   npm run bench:model -- [--layout onnx-community|genai|optimum] [--variant V] [--shape tiny|1.5b|7b]
 *                          [--seed N] [--out DIR] [--force] [--external]
 *
 * Defaults: layout onnx-community, its default variant, shape tiny, seed 1234, folder
 * .cache/bench/<layout>-<variant>-<shape>-<seed> (`-external` appended with --external: an
 * onnx-community file with its weights in `<file>_data` at any shape, as a 7b file has them). Build times on 2 cores (4-bit quantization in JS,
 * about 45–90 M weights/s): tiny ~2 s, 1.5b ~1 min (2.0 GB model + 1.0 GB floor), 7b ~3–5 min.
 */
import { createHash } from 'node:crypto';
import { closeSync, existsSync, openSync, readdirSync, readFileSync, writeSync } from 'node:fs';
import { copyFile, mkdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { onnx } from 'onnx-proto';
import { type DType, GraphBuilder, elemType, f32 } from '../test/fixtures/onnx/graph';
import { buildTinyQwen2Graph, type Qwen2Shape } from '../test/fixtures/onnx/qwen2';
import { lenField } from '../src/engine/graph/protobuf';
import { Rng } from '../test/fixtures/onnx/rng';
import { type MhaVariant, buildMhaVariant } from '../test/fixtures/onnx/builderMha';
import { type GqaVariant, buildGqaVariant } from '../test/fixtures/onnx/builderGqa';
import { BuilderGraph, type IoDtype, builderModelSizes, floatBytes, writeBuilderModel } from '../test/fixtures/onnx/genaiBuilder';
import { seededQwen2Weights } from '../test/fixtures/onnx/weights';
import { GENERATION_CONFIG, ONNX_COMMUNITY_FILES, R1_1_5B, VOCAB_SIZE, ensureFixture, qwen2Config, writeGenaiConfigFiles } from '../test/fixtures/models';

export const BENCH_DIR: string = resolve(__dirname, '../.cache/bench');
export const DEFAULT_SEED = 1234;
export const BLOCK_SIZE = 32;

export type BenchLayout = 'onnx-community' | 'genai' | 'optimum';
export const BENCH_LAYOUTS: readonly BenchLayout[] = ['onnx-community', 'genai', 'optimum'];

/** The variants of each layout; the first is the default. */
export const LAYOUT_VARIANTS: Readonly<Record<BenchLayout, readonly string[]>> = {
  'onnx-community': ['q4', 'q4f16', 'fp32'],
  genai: ['cpu', 'gpu'],
  optimum: ['q4'],
};

export function defaultVariant(layout: BenchLayout): string {
  return LAYOUT_VARIANTS[layout][0]!;
}

export type BenchShape = 'tiny' | '1.5b' | '7b';
export const BENCH_SHAPES: readonly BenchShape[] = ['tiny', '1.5b', '7b'];

export interface ShapeSpec extends Qwen2Shape {
  vocabSize: number;
  /** config.json's max_position_embeddings (genai_config.json's context_length): rows of the rotary caches. */
  maxPositionEmbeddings: number;
}

export const SHAPES: Record<BenchShape, ShapeSpec> = {
  '1.5b': {
    hiddenSize: R1_1_5B.hiddenSize,
    intermediateSize: R1_1_5B.intermediateSize,
    numLayers: R1_1_5B.numLayers,
    numHeads: R1_1_5B.numHeads,
    numKvHeads: R1_1_5B.numKvHeads,
    ropeTheta: R1_1_5B.ropeTheta,
    rmsNormEps: R1_1_5B.rmsNormEps,
    vocabSize: VOCAB_SIZE,
    maxPositionEmbeddings: 131072,
  },
  // DeepSeek-R1-Distill-Qwen-7B (MODEL-FACTS.md): head_dim 128.
  '7b': { hiddenSize: 3584, intermediateSize: 18944, numLayers: 28, numHeads: 28, numKvHeads: 4, ropeTheta: 10000, rmsNormEps: 1e-6, vocabSize: 152064, maxPositionEmbeddings: 131072 },
  // Small enough to build in a second, large enough that int8 vs fp32 compute in MatMulNBits shows.
  tiny: { hiddenSize: 128, intermediateSize: 384, numLayers: 2, numHeads: 4, numKvHeads: 2, ropeTheta: 10000, rmsNormEps: 1e-6, vocabSize: VOCAB_SIZE, maxPositionEmbeddings: 131072 },
};

/**
 * How the floor's linear layers are grouped, as the prepared CPU copy of the measured file runs
 * them: `qkv+gate_up` (q/k/v as one node and gate/up as one: the copy fuses them, or the builder
 * packed q/k/v), `qkv` (the genai graph's packed q/k/v alone: the fused gate/up weights, written
 * into the copy, would pass protobuf's 2 GB), `none` (every projection alone: the same limit for a
 * hub file in external data, or no prepared copy at all).
 */
export type FloorFusion = 'qkv+gate_up' | 'qkv' | 'none';

export interface LinearFloorSpec {
  fusion: FloorFusion;
  /** 4-bit MatMulNBits at accuracy_level 4 (what the prepared copy runs), or float MatMul (fp32 variant). */
  weights: 'q4' | 'float';
  io: IoDtype;
  /** Why this layout, in a sentence. */
  why: string;
}

/** What bench-model.json records next to the model. */
export interface BenchModelManifest {
  layout: BenchLayout;
  variant: string;
  shape: BenchShape;
  seed: number;
  /** One sentence: what the folder reproduces. */
  description: string;
  attention: 'MultiHeadAttention' | 'GroupQueryAttention' | 'decomposed';
  spec: ShapeSpec & { headDim: number };
  /** The model file the contenders load, relative to the folder. */
  file: string;
  /** Its external data file (relative), when it has one. */
  dataFile?: string;
  /** Bytes of the .onnx file, and of its external data (0 without). */
  fileBytes: number;
  dataBytes: number;
  /** Activations, KV cache and logits. */
  ioDtype: IoDtype;
  /** Bytes of 4-bit weights and their scales (all MatMulNBits, lm_head included). */
  quantizedBytes: number;
  /** Float MatMul weights (the fp32 variant). */
  floatLinearBytes: number;
  /** The embedding table (only one row is read per token). */
  embeddingBytes: number;
  /** Rotary cos/sin tables (one row each is read per token). */
  rotaryBytes: number;
  /** Other initializers (norms, biases, small constants). */
  otherBytes: number;
  /** Weight bytes a decode step reads: linear layers + other + one row of the embedding and rotary tables. */
  weightBytesPerToken: number;
  matMulNBitsNodes: number;
  /** The linear-layers-only model (see buildLinearFloorGraph). */
  linearFloor?: LinearFloorSpec & { file: string; fileBytes: number; dataBytes: number; weightBytes: number; nodes: number };
}

/** The largest single protobuf file we write (ONNX Runtime reads up to 2 GiB - 1), with room for the graph. */
const PROTOBUF_LIMIT = 0x7fffffff - (16 << 20);

/** A large initializer written straight into the file, chunk by chunk. */
interface LazyTensor {
  name: string;
  dtype: DType;
  dims: number[];
  byteLength: number;
  produce: (emit: (chunk: Uint8Array) => void) => void;
}

const CHUNK = 1 << 24; // 16 MB

/** A 32-bit seed from the model seed and a tensor name (FNV-1a), so each tensor has its own stream. */
function seedFor(seed: number, name: string): number {
  let h = (0x811c9dc5 ^ seed) >>> 0;
  for (let i = 0; i < name.length; i++) h = Math.imul(h ^ name.charCodeAt(i), 0x01000193) >>> 0;
  return h;
}

/** Random bytes from mulberry32, 4 at a time (little-endian u32s). */
function randomBytes(seed: number, byteLength: number) {
  return (emit: (chunk: Uint8Array) => void): void => {
    let a = seed >>> 0;
    let left = byteLength;
    const buf = new Uint8Array(Math.min(CHUNK, byteLength + 3) & ~3);
    const u32 = new Uint32Array(buf.buffer);
    while (left > 0) {
      const n = Math.min(left, buf.length);
      const words = (n + 3) >>> 2;
      for (let i = 0; i < words; i++) {
        a = (a + 0x6d2b79f5) >>> 0;
        let t = a;
        t = Math.imul(t ^ (t >>> 15), t | 1);
        t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
        u32[i] = (t ^ (t >>> 14)) >>> 0;
      }
      emit(buf.subarray(0, n));
      left -= n;
    }
  };
}

/** float32 values uniform in [lo, hi), chunk by chunk. */
function uniformFloats(seed: number, count: number, lo: number, hi: number) {
  return (emit: (chunk: Uint8Array) => void): void => {
    const rng = new Rng(seed);
    const per = CHUNK / 4;
    const f = new Float32Array(Math.min(per, count));
    let left = count;
    while (left > 0) {
      const n = Math.min(left, f.length);
      for (let i = 0; i < n; i++) f[i] = lo + (hi - lo) * rng.next();
      emit(new Uint8Array(f.buffer, 0, n * 4));
      left -= n;
    }
  };
}

/** A TensorProto without raw_data, then the raw_data field's header; the caller streams the bytes. */
function tensorHeader(t: LazyTensor): Uint8Array {
  const head = onnx.TensorProto.encode({ name: t.name, dims: t.dims, dataType: elemType(t.dtype) }).finish();
  const rawHead = lenField(9, t.byteLength);
  const bodyLen = head.length + rawHead.length + t.byteLength;
  return Uint8Array.from([...lenField(5, bodyLen), ...head, ...rawHead]);
}

/**
 * Writes a ModelProto whose GraphProto is `small` plus the lazy initializers, without holding the
 * large tensors in memory.
 */
function writeStreaming(path: string, model: onnx.ModelProto, lazy: LazyTensor[]): number {
  const graph = model.graph!;
  model.graph = null;
  const head = onnx.ModelProto.encode(model).finish();
  const graphBytes = onnx.GraphProto.encode(graph).finish();
  const headers = lazy.map(tensorHeader);
  let graphLen = graphBytes.length;
  for (let i = 0; i < lazy.length; i++) graphLen += headers[i]!.length + lazy[i]!.byteLength;
  if (head.length + graphLen + 8 > 0x7fffffff) throw new Error(`the model would be ${graphLen} bytes: over protobuf's 2 GB limit`);
  const fd = openSync(path, 'w');
  let written = 0;
  const out = (b: Uint8Array) => {
    let off = 0;
    while (off < b.length) off += writeSync(fd, b, off, b.length - off);
    written += b.length;
  };
  try {
    out(head);
    out(lenField(7, graphLen));
    out(graphBytes);
    for (let i = 0; i < lazy.length; i++) {
      const t = lazy[i]!;
      out(headers[i]!);
      let got = 0;
      t.produce((chunk) => {
        got += chunk.length;
        out(chunk);
      });
      if (got !== t.byteLength) throw new Error(`${t.name}: produced ${got} bytes, expected ${t.byteLength}`);
    }
  } finally {
    closeSync(fd);
  }
  return written;
}

/** A placeholder initializer in the builder (so names and inputs check) whose bytes are streamed. */
function addLazy(g: GraphBuilder, lazy: LazyTensor[], hint: string, dtype: DType, dims: number[], byteLength: number, produce: LazyTensor['produce']): string {
  const name = g.init(hint, { dtype, dims, raw: new Uint8Array(0) });
  lazy.push({ name, dtype, dims, byteLength, produce });
  return name;
}

/**
 * `x` times a random [K, N] weight in the q4 layout (MatMulNBits, 4-bit, block 32, symmetric:
 * weights `<hint>.weight_Q4` and scales `<hint>.weight_scales` uniform in `scales`, both streamed).
 * Returns the output and the weight bytes.
 */
function q4MatMul(g: GraphBuilder, lazy: LazyTensor[], seed: number, x: string, K: number, N: number, hint: string, scales: [number, number], attrs: Record<string, number> = {}): { y: string; bytes: number } {
  const blocks = Math.ceil(K / BLOCK_SIZE);
  const blob = BLOCK_SIZE / 2;
  const qName = `${hint}.weight_Q4`;
  const sName = `${hint}.weight_scales`;
  const q = addLazy(g, lazy, qName, 'uint8', [N, blocks, blob], N * blocks * blob, randomBytes(seedFor(seed, qName), N * blocks * blob));
  const sc = addLazy(g, lazy, sName, 'float32', [N * blocks], N * blocks * 4, uniformFloats(seedFor(seed, sName), N * blocks, scales[0], scales[1]));
  const y = g.op('MatMulNBits', [x, q, sc], { K, N, bits: 4, block_size: BLOCK_SIZE, ...attrs }, { domain: 'com.microsoft', name: `${hint}/MatMul_Q4` });
  return { y, bytes: N * blocks * (blob + 4) };
}

/**
 * The Optimum-style q4 graph: the small part as a GraphBuilder, the large tensors as lazy ones
 * (test/fixtures/onnx/qwen2.ts with the linear layers as MatMulNBits and a streamed embedding).
 */
export function buildBenchGraph(spec: ShapeSpec, seed: number): { g: GraphBuilder; lazy: LazyTensor[]; stats: { quantizedBytes: number; embeddingBytes: number; matMulNBitsNodes: number } } {
  const lazy: LazyTensor[] = [];
  const stats = { quantizedBytes: 0, embeddingBytes: 0, matMulNBitsNodes: 0 };
  const biasRng = new Rng(seedFor(seed, 'biases'));
  const g = buildTinyQwen2Graph(
    { ...spec, kvDtype: 'float32', seed },
    {
      embedding: (gb, V, H) => {
        stats.embeddingBytes += V * H * 4;
        const name = 'model.embed_tokens.weight';
        return addLazy(gb, lazy, name, 'float32', [V, H], V * H * 4, uniformFloats(seedFor(seed, name), V * H, -1, 1));
      },
      linear: (gb, x, inF, outF, scale, hint, bias) => {
        // Symmetric 4-bit: w = (q - 8) * s; q uniform in 0..15 has a spread of about 4.6, so
        // s = scale / 8 gives weights about as spread as uniform(±scale).
        const { y, bytes } = q4MatMul(gb, lazy, seed, x, inF, outF, hint, [(0.75 * scale) / 8, (1.25 * scale) / 8]);
        stats.quantizedBytes += bytes;
        stats.matMulNBitsNodes++;
        if (bias === undefined) return y;
        return gb.op('Add', [y, gb.init(`${hint}.bias`, f32(biasRng.uniform(outF, bias), [outF]))]);
      },
    },
  );
  return { g, lazy, stats };
}

/** A BuilderGraph saved under the benchmark's name (the builder's own says onnxruntime-genai). */
class BenchGraph extends BuilderGraph {
  constructor(
    io: IoDtype,
    private readonly doc: string,
  ) {
    super(io);
  }
  override modelProto(): onnx.IModelProto {
    const m = super.modelProto();
    m.producerName = 'r1-coder-bench';
    m.producerVersion = '1';
    m.docString = this.doc;
    return m;
  }
}

/** The floor's layout for a measured file (see FloorFusion): what its prepared CPU copy runs. */
export function linearFloorSpec(layout: BenchLayout, variant: string, external: boolean, spec: ShapeSpec): LinearFloorSpec {
  const io: IoDtype = variant === 'q4f16' || variant === 'gpu' ? 'float16' : 'float32';
  if (variant === 'fp32') return { fusion: 'none', weights: 'float', io, why: 'a float32 graph has no MatMulNBits, so it gets no prepared copy: its MatMuls run as exported' };
  // The prepared copy writes the fused weights into itself; with the model's weights in external
  // data it fuses only while that stays under protobuf's 2 GB (src/engine/graph/prepare.ts).
  const blocks = Math.ceil(spec.hiddenSize / 32);
  const perRow = blocks * (16 + (io === 'float16' ? 2 : 4));
  const kvWidth = spec.numKvHeads * (spec.hiddenSize / spec.numHeads);
  const fused = spec.numLayers * perRow * (2 * spec.intermediateSize + (layout === 'genai' ? 0 : spec.hiddenSize + 2 * kvWidth));
  const fits = !external || fused < PROTOBUF_LIMIT - (64 << 20);
  if (layout === 'genai') {
    return fits
      ? { fusion: 'qkv+gate_up', weights: 'q4', io, why: 'the builder packs q/k/v into one MatMulNBits and the prepared copy fuses gate/up (their weights copied from model.onnx.data into the copy)' }
      : { fusion: 'qkv', weights: 'q4', io, why: `the builder packs q/k/v into one MatMulNBits; the prepared copy does not fuse gate/up: ${(fused / 1e9).toFixed(2)} GB of fused weights would pass protobuf's 2 GB` };
  }
  if (!fits) return { fusion: 'none', weights: 'q4', io, why: `the weights are external data and ${(fused / 1e9).toFixed(2)} GB of fused weights would pass protobuf's 2 GB, so the prepared copy fuses nothing` };
  return { fusion: 'qkv+gate_up', weights: 'q4', io, why: 'the prepared copy fuses q/k/v and gate/up' };
}

/**
 * The floor for any engine on ONNX Runtime's CPU kernels: a graph made only of the measured
 * model's linear layers as its prepared CPU copy runs them (`floor`: MatMulNBits 4-bit, block 32,
 * accuracy_level 4, grouped as the copy groups them, or float MatMuls for the fp32 variant; lm_head
 * on one position), with the model's shapes and as many weight bytes, and nothing else: no
 * embedding, norms, rotary, attention or KV cache. Inputs `x` [m, hidden], `y` [m, intermediate]
 * and `h` [1, hidden]; the output is one column of every node's result (a cheap slice, so no node
 * is pruned and the output copy stays small). Timing it says how fast the kernels themselves go:
 * decode with m = 1, prefill with m = the prefill chunk.
 */
export function buildLinearFloorGraph(spec: ShapeSpec, seed: number, floor: LinearFloorSpec): { bg: BuilderGraph; weightBytes: number; nodes: number } {
  const H = spec.hiddenSize;
  const I = spec.intermediateSize;
  const kvWidth = spec.numKvHeads * (H / spec.numHeads);
  const io = floor.io;
  const bg = new BenchGraph(io, `linear layers only (kernel floor), fusion ${floor.fusion}, ${floor.weights} weights, seed ${seed}`);
  const g = bg.g;
  g.input('x', io, ['m', H]);
  g.input('y', io, ['m', I]);
  g.input('h', io, [1, H]);
  const c = (v: number) => `/model/constants/TensorProto.INT64/1D/${v}`;
  let weightBytes = 0;
  const cols: string[] = [];
  const ioBytes = io === 'float16' ? 2 : 4;
  const linear = (input: string, K: number, N: number, name: string) => {
    const out = `/${name}/MatMul/output_0`;
    if (floor.weights === 'q4') {
      const blocks = Math.ceil(K / BLOCK_SIZE);
      const blob = BLOCK_SIZE / 2;
      const q = bg.tensor(`${name}.weight_Q4`, 'uint8', [N, blocks, blob], randomBytes(seedFor(seed, `${name}.weight_Q4`), N * blocks * blob));
      const sc = bg.tensor(`${name}.weight_scales`, io, [N * blocks], floatsIn(io, seedFor(seed, `${name}.weight_scales`), N * blocks, 0.001, 0.002));
      bg.node('MatMulNBits', [input, q, sc], [out], `/${name}/MatMul_Q4`, { K, N, accuracy_level: 4, bits: 4, block_size: BLOCK_SIZE }, 'com.microsoft');
      weightBytes += N * blocks * (blob + ioBytes);
    } else {
      const s = 1 / Math.sqrt(K);
      const w = bg.tensor(`${name}.weight`, io, [K, N], floatsIn(io, seedFor(seed, `${name}.weight`), K * N, -s, s));
      bg.node('MatMul', [input, w], [out], `/${name}/MatMul`);
      weightBytes += K * N * ioBytes;
    }
    cols.push(bg.slice(`/${name}/column`, [out, c(0), c(1), c(1)], io, [input === 'h' ? 1 : 'm', 1]));
  };
  for (let l = 0; l < spec.numLayers; l++) {
    const p = `model.layers.${l}`;
    if (floor.fusion === 'none') {
      linear('x', H, H, `${p}.self_attn.q_proj`);
      linear('x', H, kvWidth, `${p}.self_attn.k_proj`);
      linear('x', H, kvWidth, `${p}.self_attn.v_proj`);
    } else linear('x', H, H + 2 * kvWidth, `${p}.self_attn.qkv_proj`);
    linear('x', H, H, `${p}.self_attn.o_proj`);
    if (floor.fusion === 'qkv+gate_up') linear('x', H, 2 * I, `${p}.mlp.gate_up_proj`);
    else {
      linear('x', H, I, `${p}.mlp.gate_proj`);
      linear('x', H, I, `${p}.mlp.up_proj`);
    }
    linear('y', I, H, `${p}.mlp.down_proj`);
  }
  linear('h', H, spec.vocabSize, 'lm_head');
  // lm_head's column has one row: it is an output of its own.
  const last = cols.pop()!;
  const body = bg.concat('/columns/Concat', cols, io, ['m', cols.length], 1);
  g.output('columns', io, ['m', cols.length], body);
  g.output('lm_head_column', io, [1, 1], last);
  return { bg, weightBytes, nodes: cols.length + 1 };
}

/** float values uniform in [lo, hi) as bytes of `io`, chunk by chunk. */
function floatsIn(io: IoDtype, seed: number, count: number, lo: number, hi: number) {
  const f = uniformFloats(seed, count, lo, hi);
  return (emit: (chunk: Uint8Array) => void): void =>
    f((chunk) => emit(io === 'float32' ? chunk : floatBytes('float16', new Float32Array(chunk.buffer, chunk.byteOffset, chunk.byteLength / 4))));
}

/** Writes a builder graph to `file`, its weights in `<file>.data` (or `dataName`) when it would not fit one protobuf. */
function writeBuilt(file: string, bg: BuilderGraph, opts: { external?: boolean; dataName?: string; threshold?: number } = {}): { fileBytes: number; dataBytes: number; dataFile?: string } {
  const external = opts.external ?? builderModelSizes(bg).modelBytes > PROTOBUF_LIMIT;
  const location = opts.dataName ?? `${basename(file)}.data`;
  const w = writeBuilderModel(file, bg, external ? { external: { location, threshold: opts.threshold ?? 1024 } } : {});
  return { fileBytes: w.modelBytes, dataBytes: w.dataBytes, dataFile: external ? join(dirname(file), location) : undefined };
}

/** File name of the linear-layers floor model, inside the bench model folder. */
export const LINEAR_FLOOR_FILE = 'floor/linear_floor.onnx';

async function writeLinearFloorModel(dir: string, spec: ShapeSpec, seed: number, floor: LinearFloorSpec): Promise<NonNullable<BenchModelManifest['linearFloor']>> {
  const { bg, weightBytes, nodes } = buildLinearFloorGraph(spec, seed, floor);
  await mkdir(join(dir, dirname(LINEAR_FLOOR_FILE)), { recursive: true });
  const w = writeBuilt(join(dir, LINEAR_FLOOR_FILE), bg);
  return { ...floor, file: LINEAR_FLOOR_FILE, fileBytes: w.fileBytes, dataBytes: w.dataBytes, weightBytes, nodes };
}

/** Hash of the sources that shape the output, so a changed builder rebuilds cached folders. */
function sourcesKey(layout: BenchLayout, variant: string, shape: BenchShape, seed: number, external: boolean): string {
  const h = createHash('sha256').update(JSON.stringify({ layout, variant, shape, seed, external, v: 2 }));
  const fx = resolve(__dirname, '../test/fixtures');
  const files = [__filename, join(fx, 'models.ts'), join(fx, 'tokenizer.ts'), ...readdirSync(join(fx, 'onnx')).filter((f) => f.endsWith('.ts')).sort().map((f) => join(fx, 'onnx', f))];
  for (const f of files) h.update(readFileSync(f));
  return h.digest('hex');
}

const MARKER = '.bench-complete.json';

export function benchModelDir(layout: BenchLayout, variant: string, shape: BenchShape, seed = DEFAULT_SEED): string {
  return join(BENCH_DIR, `${layout}-${variant}-${shape}-${seed}`);
}

/** Reads bench-model.json of a folder, else undefined. */
export function readManifest(dir: string): BenchModelManifest | undefined {
  try {
    return JSON.parse(readFileSync(join(dir, 'bench-model.json'), 'utf8')) as BenchModelManifest;
  } catch {
    return undefined;
  }
}

/** Sizes of the initializers of a builder graph, by what a decode step reads of them. */
function builderStats(bg: BuilderGraph, spec: ShapeSpec): Pick<BenchModelManifest, 'quantizedBytes' | 'floatLinearBytes' | 'embeddingBytes' | 'rotaryBytes' | 'otherBytes' | 'weightBytesPerToken' | 'matMulNBitsNodes'> {
  let quantizedBytes = 0;
  let floatLinearBytes = 0;
  let embeddingBytes = 0;
  let rotaryBytes = 0;
  let otherBytes = 0;
  for (const t of bg.inits) {
    if (t.name === 'model.embed_tokens.weight') embeddingBytes += t.byteLength;
    else if (t.name === 'cos_cache' || t.name === 'sin_cache') rotaryBytes += t.byteLength;
    else if (/_Q4$|_scales$/.test(t.name)) quantizedBytes += t.byteLength;
    else if (t.matrix) floatLinearBytes += t.byteLength;
    else otherBytes += t.byteLength;
  }
  const perToken = quantizedBytes + floatLinearBytes + otherBytes + embeddingBytes / spec.vocabSize + rotaryBytes / spec.maxPositionEmbeddings;
  return { quantizedBytes, floatLinearBytes, embeddingBytes, rotaryBytes, otherBytes, weightBytesPerToken: Math.round(perToken), matMulNBitsNodes: bg.histogram().get('com.microsoft:MatMulNBits') ?? 0 };
}

/** config.json of the onnx-community layout at these shapes. */
function hubConfig(shape: BenchShape, spec: ShapeSpec, externalFile?: string): Record<string, unknown> {
  const cfg = qwen2Config(spec);
  cfg.vocab_size = spec.vocabSize;
  if (shape === '7b') {
    cfg._name_or_path = 'deepseek-ai/DeepSeek-R1-Distill-Qwen-7B';
    cfg.max_window_layers = 28;
  }
  // transformers.js loads `<file>_data` only when its config says the file has one.
  if (externalFile) cfg['transformers.js_config'] = { ...(cfg['transformers.js_config'] as object), use_external_data_format: { [externalFile]: 1 } };
  return cfg;
}

const DESCRIPTIONS: Record<string, string> = {
  'onnx-community/q4':
    "onnx-community layout (config.json, onnx/model_q4.onnx): onnxruntime-genai's builder graph with MultiHeadAttention (RotaryEmbedding, repeat_kv, 4-D mask), q4 as transformers.js's quantizer leaves it (MatMulNBits 4-bit, block 32, accuracy_level unset, lm_head included, float32 embedding)",
  'onnx-community/q4f16':
    "onnx-community layout (config.json, onnx/model_q4f16.onnx): the builder's MultiHeadAttention graph in its int4 web build (float16 activations, KV and logits, MatMulNBits accuracy_level 0 with float16 scales)",
  'onnx-community/fp32': "onnx-community layout (config.json, onnx/model.onnx + model.onnx_data): the builder's MultiHeadAttention graph in float32",
  'genai/cpu':
    "onnxruntime-genai layout (genai_config.json, model.onnx + model.onnx.data, no config.json): the builder's GroupQueryAttention graph (rotary inside, no position_ids, packed q/k/v), CPU int4 (MatMulNBits accuracy_level 4, float32 I/O)",
  'genai/gpu': "onnxruntime-genai layout (genai_config.json, model.onnx + model.onnx.data): the builder's GroupQueryAttention graph, CUDA int4 build (float16 I/O and KV, MatMulNBits accuracy_level 0)",
  'optimum/q4':
    'Optimum-style layout (config.json, onnx/model_q4.onnx): decomposed attention in standard ops, plain RMSNorm, q4 as transformers.js leaves it (MatMulNBits 4-bit, block 32, accuracy_level unset, float32 embedding)',
};

/** Writes the model files of a builder layout into `dir`; returns the manifest's model part. */
async function writeBuilderLayout(dir: string, layout: 'onnx-community' | 'genai', variant: string, shape: BenchShape, spec: ShapeSpec, seed: number, forceExternal = false): Promise<Omit<BenchModelManifest, 'linearFloor'>> {
  const dims = { hiddenSize: spec.hiddenSize, intermediateSize: spec.intermediateSize, numLayers: spec.numLayers, numHeads: spec.numHeads, numKvHeads: spec.numKvHeads, vocabSize: spec.vocabSize };
  const bspec = { weights: seededQwen2Weights(dims, seed), ropeTheta: spec.ropeTheta, rmsNormEps: spec.rmsNormEps, maxPositions: spec.maxPositionEmbeddings };
  const headDim = spec.hiddenSize / spec.numHeads;
  const bg = layout === 'onnx-community' ? buildMhaVariant(bspec, variant as MhaVariant) : buildGqaVariant(bspec, variant as GqaVariant);
  const stats = builderStats(bg, spec);
  let file: string;
  let written: { fileBytes: number; dataBytes: number; dataFile?: string };
  if (layout === 'onnx-community') {
    const name = ONNX_COMMUNITY_FILES[variant as MhaVariant];
    file = `onnx/${name}`;
    await mkdir(join(dir, 'onnx'), { recursive: true });
    // onnx.save's layout: the fp32 export always keeps its weights in model.onnx_data; a q4 file
    // only when it would pass 2 GB (every 7b variant).
    const external = variant === 'fp32' || forceExternal || builderModelSizes(bg).modelBytes > PROTOBUF_LIMIT;
    written = writeBuilt(join(dir, file), bg, { external, dataName: `${name}_data`, threshold: 1024 });
    await writeFile(join(dir, 'config.json'), `${JSON.stringify(hubConfig(shape, spec, external ? name : undefined), null, 2)}\n`);
    await writeFile(join(dir, 'generation_config.json'), `${JSON.stringify(GENERATION_CONFIG, null, 2)}\n`);
  } else {
    file = 'model.onnx';
    written = writeBuilt(join(dir, file), bg, { external: true, dataName: 'model.onnx.data', threshold: 0 });
    await writeGenaiConfigFiles(dir, {
      ep: variant === 'gpu' ? 'cuda' : 'cpu',
      contextLength: spec.maxPositionEmbeddings,
      headSize: headDim,
      hiddenSize: spec.hiddenSize,
      numAttentionHeads: spec.numHeads,
      numHiddenLayers: spec.numLayers,
      numKeyValueHeads: spec.numKvHeads,
      vocabSize: spec.vocabSize,
    });
  }
  return {
    layout,
    variant,
    shape,
    seed,
    description: DESCRIPTIONS[`${layout}/${variant}`]!,
    attention: layout === 'onnx-community' ? 'MultiHeadAttention' : 'GroupQueryAttention',
    spec: { ...spec, headDim },
    file,
    ...(written.dataFile ? { dataFile: written.dataFile.slice(dir.length + 1) } : {}),
    fileBytes: written.fileBytes,
    dataBytes: written.dataBytes,
    ioDtype: bg.io,
    ...stats,
  };
}

/** Writes the Optimum-style q4 model into `dir`; returns the manifest's model part. */
async function writeOptimumLayout(dir: string, shape: BenchShape, spec: ShapeSpec, seed: number): Promise<Omit<BenchModelManifest, 'linearFloor'>> {
  await mkdir(join(dir, 'onnx'), { recursive: true });
  await writeFile(join(dir, 'config.json'), `${JSON.stringify(hubConfig(shape, spec), null, 2)}\n`);
  await writeFile(join(dir, 'generation_config.json'), `${JSON.stringify(GENERATION_CONFIG, null, 2)}\n`);
  const { g, lazy, stats } = buildBenchGraph(spec, seed);
  const small = onnx.ModelProto.decode(g.encode({ opset: 17, producer: 'r1-coder-bench', docString: `random-weight Qwen2 decoder, ${shape} shapes, q4 (MatMulNBits bits 4, block 32), seed ${seed}` }));
  const lazyNames = new Set(lazy.map((t) => t.name));
  const graph = small.graph!;
  graph.initializer = (graph.initializer ?? []).filter((t) => !lazyNames.has(t.name ?? ''));
  let otherBytes = 0;
  for (const t of graph.initializer) otherBytes += t.rawData?.length ?? 0;
  const file = 'onnx/model_q4.onnx';
  const fileBytes = writeStreaming(join(dir, file), small, lazy);
  return {
    layout: 'optimum',
    variant: 'q4',
    shape,
    seed,
    description: DESCRIPTIONS['optimum/q4']!,
    attention: 'decomposed',
    spec: { ...spec, headDim: spec.hiddenSize / spec.numHeads },
    file,
    fileBytes,
    dataBytes: 0,
    ioDtype: 'float32',
    quantizedBytes: stats.quantizedBytes,
    floatLinearBytes: 0,
    embeddingBytes: stats.embeddingBytes,
    rotaryBytes: 0,
    otherBytes,
    weightBytesPerToken: stats.quantizedBytes + otherBytes + spec.hiddenSize * 4,
    matMulNBitsNodes: stats.matMulNBitsNodes,
  };
}

export interface BuildBenchOptions {
  /** Default `optimum` here (the unit tests' Optimum-style file); the command lines default to onnx-community. */
  layout?: BenchLayout;
  /** Default: the layout's first variant (LAYOUT_VARIANTS). */
  variant?: string;
  shape?: BenchShape;
  seed?: number;
  /**
   * onnx-community only: keep the weights in `<file>_data` whatever the size, as every 7b file
   * must (checks that path, and transformers.js's use_external_data_format, at tiny shapes).
   */
  external?: boolean;
  outDir?: string;
  force?: boolean;
  log?: (s: string) => void;
}

/**
 * Builds (or reuses, when complete and built by the same sources for the same layout, variant,
 * shape and seed) a benchmark model folder and returns its path and manifest.
 */
export async function buildBenchModel(opts: BuildBenchOptions = {}): Promise<{ dir: string; manifest: BenchModelManifest }> {
  const layout = opts.layout ?? 'optimum';
  const shape = opts.shape ?? 'tiny';
  const seed = opts.seed ?? DEFAULT_SEED;
  if (!BENCH_LAYOUTS.includes(layout)) throw new Error(`unknown layout '${layout}' (${BENCH_LAYOUTS.join(', ')})`);
  const variant = opts.variant ?? defaultVariant(layout);
  if (!LAYOUT_VARIANTS[layout].includes(variant)) throw new Error(`the ${layout} layout has no variant '${variant}' (${LAYOUT_VARIANTS[layout].join(', ')})`);
  const spec = SHAPES[shape];
  if (!spec) throw new Error(`unknown shape '${shape}' (${BENCH_SHAPES.join(', ')})`);
  if (layout === 'optimum' && shape === '7b') throw new Error('the optimum layout is one protobuf file, which cannot hold the 7b weights (over 2 GB): use the onnx-community or genai layout');
  const external = !!opts.external;
  if (external && layout !== 'onnx-community') throw new Error(`--external applies to the onnx-community layout (genai keeps its weights in model.onnx.data anyway; optimum is one file)`);
  const dir = resolve(opts.outDir ?? `${benchModelDir(layout, variant, shape, seed)}${external ? '-external' : ''}`);
  const key = sourcesKey(layout, variant, shape, seed, external);
  const file = (m: BenchModelManifest) => join(dir, m.file);
  if (!opts.force) {
    try {
      const marker = JSON.parse(await readFile(join(dir, MARKER), 'utf8')) as { key?: string };
      const manifest = readManifest(dir);
      if (marker.key === key && manifest && existsSync(file(manifest))) return { dir, manifest };
    } catch {
      // not built yet
    }
  }
  // Only a folder this function wrote is ever replaced.
  if (existsSync(dir) && readdirSync(dir).length > 0 && !existsSync(join(dir, 'bench-model.json')) && !existsSync(join(dir, MARKER))) {
    throw new Error(`${dir} exists and is not a benchmark model folder: choose another --out`);
  }
  const t0 = performance.now();
  const tmp = `${dir}.tmp-${process.pid}`;
  await rm(tmp, { recursive: true, force: true });
  await mkdir(tmp, { recursive: true });
  try {
    const tok = await ensureFixture('tokenizer');
    for (const f of ['tokenizer.json', 'tokenizer_config.json']) await copyFile(join(tok, f), join(tmp, f));
    const model = layout === 'optimum' ? await writeOptimumLayout(tmp, shape, spec, seed) : await writeBuilderLayout(tmp, layout, variant, shape, spec, seed, external);
    const manifest: BenchModelManifest = { ...model, linearFloor: await writeLinearFloorModel(tmp, spec, seed, linearFloorSpec(layout, variant, model.dataBytes > 0, spec)) };
    await writeFile(join(tmp, 'bench-model.json'), `${JSON.stringify(manifest, null, 2)}\n`);
    await writeFile(join(tmp, MARKER), `${JSON.stringify({ key, builtAt: new Date().toISOString() }, null, 2)}\n`);
    await rm(dir, { recursive: true, force: true });
    await rename(tmp, dir);
    const total = manifest.fileBytes + manifest.dataBytes;
    opts.log?.(`built ${join(dir, manifest.file)} (${(total / 1e9).toFixed(3)} GB${manifest.dataFile ? ` with ${basename(manifest.dataFile)}` : ''}) and the linear floor (${((manifest.linearFloor!.fileBytes + manifest.linearFloor!.dataBytes) / 1e9).toFixed(3)} GB) in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    return { dir, manifest };
  } catch (e) {
    await rm(tmp, { recursive: true, force: true });
    throw e;
  }
}

/** Bytes of a folder's files (what a build costs on disk). */
export async function folderBytes(dir: string): Promise<number> {
  let n = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    n += e.isDirectory() ? await folderBytes(p) : (await stat(p)).size;
  }
  return n;
}

function argValue(args: string[], name: string): string | undefined {
  const i = args.indexOf(name);
  if (i >= 0) return args[i + 1];
  const eq = args.find((a) => a.startsWith(`${name}=`));
  return eq?.slice(name.length + 1);
}

if (require.main === module) {
  const args = process.argv.slice(2);
  const layout = (argValue(args, '--layout') ?? 'onnx-community') as BenchLayout;
  const shape = (argValue(args, '--shape') ?? 'tiny') as BenchShape;
  const seed = Number(argValue(args, '--seed') ?? DEFAULT_SEED);
  const out = argValue(args, '--out');
  buildBenchModel({ layout, variant: argValue(args, '--variant'), shape, seed, external: args.includes('--external'), outDir: out === undefined ? undefined : resolve(out), force: args.includes('--force'), log: (s) => console.log(s) }).then(
    async ({ dir, manifest: m }) =>
      console.log(
        `${dir}: ${m.layout} ${m.variant} ${m.shape}, ${m.file}${m.dataFile ? ` + ${m.dataFile}` : ''} ${((m.fileBytes + m.dataBytes) / 1e9).toFixed(3)} GB, ${m.matMulNBitsNodes} MatMulNBits, ${(m.weightBytesPerToken / 1e9).toFixed(3)} GB read per token; folder ${((await folderBytes(dir)) / 1e9).toFixed(3)} GB`,
      ),
    (e: unknown) => {
      console.error(e instanceof Error ? e.message : e);
      process.exitCode = 1;
    },
  );
}
