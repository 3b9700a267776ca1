/**
 * The benchmark model: a random-weight Qwen2 decoder with the shapes of DeepSeek-R1-Distill-Qwen-1.5B
 * (or a small `tiny` shape) in the q4 layout of the public onnx-community export, written as a model
 * folder that both R1 Coder's engine and transformers.js load:
 *
 *   .cache/bench/<shape>-<seed>/{config.json, generation_config.json, tokenizer.json,
 *                                tokenizer_config.json, onnx/model_q4.onnx, bench-model.json}
 *
 * Layout (as transformers.js's quantize script leaves a q4 export; it is what makes the real file
 * 1.97 GB): every linear layer, lm_head included, is a `com.microsoft` MatMulNBits with bits 4,
 * block_size 32, K and N attributes, symmetric (no zero_points input), accuracy_level unset; the
 * weight is `<name>_Q4` uint8 [N, K/32, 16] and the scales `<name>_scales` float32 [N * K/32]. The
 * token embedding stays a float32 Gather table ([151936, 1536], 933 MB). Activations, norms, biases
 * and the KV cache are float32. The graph itself is the fixture decoder (test/fixtures/onnx/qwen2.ts)
 * with the export's signature.
 *
 * The 1.5B file is about 1.9 GB, so it is never built in memory: the small part of the graph is
 * encoded with onnx-proto, and the large initializers are appended to the GraphProto field as
 * separately encoded TensorProto fields (protobuf fields concatenate), generated chunk by chunk from
 * a seeded PRNG. Same shape and seed give the same bytes.
 *
 *   npx tsx bench/model.ts [--shape tiny|1.5b] [--seed N] [--force]
 */
import { createHash } from 'node:crypto';
import { closeSync, existsSync, openSync, readdirSync, readFileSync, writeSync } from 'node:fs';
import { copyFile, mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { onnx } from 'onnx-proto';
import { type DType, GraphBuilder, elemType, f32 } from '../test/fixtures/onnx/graph';
import { buildTinyQwen2Graph, type Qwen2Shape } from '../test/fixtures/onnx/qwen2';
import { lenField } from '../src/engine/graph/protobuf';
import { Rng } from '../test/fixtures/onnx/rng';
import { GENERATION_CONFIG, R1_1_5B, VOCAB_SIZE, ensureFixture, qwen2Config } from '../test/fixtures/models';

export const BENCH_DIR: string = resolve(__dirname, '../.cache/bench');
export const DEFAULT_SEED = 1234;
export const BLOCK_SIZE = 32;

export type BenchShape = 'tiny' | '1.5b';

export type ShapeSpec = Qwen2Shape;

export const SHAPES: Record<BenchShape, ShapeSpec> = {
  '1.5b': {
    hiddenSize: R1_1_5B.hiddenSize,
    intermediateSize: R1_1_5B.intermediateSize,
    numLayers: R1_1_5B.numLayers,
    numHeads: R1_1_5B.numHeads,
    numKvHeads: R1_1_5B.numKvHeads,
    ropeTheta: R1_1_5B.ropeTheta,
    rmsNormEps: R1_1_5B.rmsNormEps,
  },
  // Small enough to build in a second, large enough that int8 vs fp32 compute in MatMulNBits shows.
  tiny: { hiddenSize: 128, intermediateSize: 384, numLayers: 2, numHeads: 4, numKvHeads: 2, ropeTheta: 10000, rmsNormEps: 1e-6 },
};

/** What bench-model.json records next to the model. */
export interface BenchModelManifest {
  shape: BenchShape;
  seed: number;
  spec: ShapeSpec & { vocabSize: number; headDim: number };
  file: string;
  fileBytes: number;
  /** Bytes of 4-bit weights and their scales (all MatMulNBits, lm_head included). */
  quantizedBytes: number;
  /** The float32 embedding table (only one row is read per token). */
  embeddingBytes: number;
  /** Other float32 initializers (norms, biases, rope constants). */
  otherBytes: number;
  /** Weight bytes a decode step reads: quantized + other + one embedding row. */
  weightBytesPerToken: number;
  matMulNBitsNodes: number;
  /** The linear-layers-only model (see buildLinearFloorGraph): same quantized bytes, fused layout. */
  linearFloor?: { file: string; fileBytes: number; quantizedBytes: number; nodes: number };
}

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

/** Builds the q4 graph description: the small part as a GraphBuilder, the large tensors as lazy ones. */
export function buildBenchGraph(shape: BenchShape, seed: number): { g: GraphBuilder; lazy: LazyTensor[]; stats: Omit<BenchModelManifest, 'shape' | 'seed' | 'spec' | 'file' | 'fileBytes' | 'otherBytes' | 'weightBytesPerToken'> } {
  const spec = SHAPES[shape];
  const lazy: LazyTensor[] = [];
  const stats = { quantizedBytes: 0, embeddingBytes: 0, matMulNBitsNodes: 0 };
  const biasRng = new Rng(seedFor(seed, 'biases'));
  const g = buildTinyQwen2Graph(
    { ...spec, vocabSize: VOCAB_SIZE, kvDtype: 'float32', seed },
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

/** File name of the linear-layers floor model, inside the bench model folder's onnx/. */
export const LINEAR_FLOOR_FILE = 'onnx/linear_floor_q4.onnx';

/**
 * The floor for any engine on ONNX Runtime's CPU kernels: a graph made only of the model's linear
 * layers as the prepared CPU copy runs them (MatMulNBits 4-bit, block 32, accuracy_level 4; q/k/v
 * and gate/up fused; lm_head on one position), with as many weight bytes as the model, and nothing
 * else: no embedding, norms, rotary, attention or KV cache. Inputs `x` [m, hidden], `y` [m,
 * intermediate] and `h` [1, hidden]; the output is one column of every node's result (a cheap
 * slice, so no node is pruned and the output copy stays small). Timing it says how fast the kernels
 * themselves go: decode with m = 1, prefill with m = the prefill chunk.
 */
export function buildLinearFloorGraph(shape: BenchShape, seed: number): { g: GraphBuilder; lazy: LazyTensor[]; quantizedBytes: number; nodes: number } {
  const spec = SHAPES[shape];
  const H = spec.hiddenSize;
  const I = spec.intermediateSize;
  const kvWidth = spec.numKvHeads * (H / spec.numHeads);
  const g = new GraphBuilder(`linear-floor-${shape}`);
  const x = g.input('x', 'float32', ['m', H]);
  const y = g.input('y', 'float32', ['m', I]);
  const h = g.input('h', 'float32', [1, H]);
  const lazy: LazyTensor[] = [];
  let quantizedBytes = 0;
  const cols: string[] = [];
  const zero = g.constI64([0]);
  const one = g.constI64([1]);
  const linear = (input: string, K: number, N: number, hint: string) => {
    const { y, bytes } = q4MatMul(g, lazy, seed, input, K, N, hint, [0.001, 0.002], { accuracy_level: 4 });
    quantizedBytes += bytes;
    cols.push(g.op('Slice', [y, zero, one, one]));
  };
  for (let l = 0; l < spec.numLayers; l++) {
    const p = `model.layers.${l}`;
    linear(x, H, H + 2 * kvWidth, `${p}.self_attn.qkv_proj`);
    linear(x, H, H, `${p}.self_attn.o_proj`);
    linear(x, H, 2 * I, `${p}.mlp.gate_up_proj`);
    linear(y, I, H, `${p}.mlp.down_proj`);
  }
  linear(h, H, VOCAB_SIZE, 'lm_head');
  // lm_head's column has one row; broadcast it next to the others by a Concat of [m, 1] columns.
  const last = cols.pop()!;
  const body = g.op('Concat', cols, { axis: 1 });
  g.output('columns', 'float32', ['m', cols.length], body);
  g.output('lm_head_column', 'float32', [1, 1], last);
  return { g, lazy, quantizedBytes, nodes: cols.length + 1 };
}

async function writeLinearFloorModel(dir: string, shape: BenchShape, seed: number): Promise<{ bytes: number; quantizedBytes: number; nodes: number }> {
  const { g, lazy, quantizedBytes, nodes } = buildLinearFloorGraph(shape, seed);
  const small = onnx.ModelProto.decode(g.encode({ opset: 17, producer: 'r1-coder-bench', docString: `linear layers only of the ${shape} bench model (kernel floor), seed ${seed}` }));
  const lazyNames = new Set(lazy.map((t) => t.name));
  small.graph!.initializer = (small.graph!.initializer ?? []).filter((t) => !lazyNames.has(t.name ?? ''));
  const file = join(dir, LINEAR_FLOOR_FILE);
  const tmp = `${file}.tmp-${process.pid}`;
  const bytes = writeStreaming(tmp, small, lazy);
  await rename(tmp, file);
  return { bytes, quantizedBytes, nodes };
}

/** Hash of the sources that shape the output, so a changed builder rebuilds cached folders. */
function sourcesKey(shape: BenchShape, seed: number): string {
  const h = createHash('sha256').update(JSON.stringify({ shape, seed, v: 1 }));
  const fx = resolve(__dirname, '../test/fixtures');
  const files = [__filename, join(fx, 'models.ts'), join(fx, 'tokenizer.ts'), ...readdirSync(join(fx, 'onnx')).filter((f) => f.endsWith('.ts')).sort().map((f) => join(fx, 'onnx', f))];
  for (const f of files) h.update(readFileSync(f));
  return h.digest('hex');
}

const MARKER = '.bench-complete.json';

export function benchModelDir(shape: BenchShape, seed = DEFAULT_SEED): string {
  return join(BENCH_DIR, `${shape}-${seed}`);
}

/** Reads bench-model.json of a complete folder, else undefined. */
export function readManifest(dir: string): BenchModelManifest | undefined {
  try {
    return JSON.parse(readFileSync(join(dir, 'bench-model.json'), 'utf8')) as BenchModelManifest;
  } catch {
    return undefined;
  }
}

/**
 * Builds (or reuses, when complete and built by the same sources) the benchmark model folder and
 * returns its path and manifest.
 */
export async function buildBenchModel(opts: { shape?: BenchShape; seed?: number; outDir?: string; force?: boolean; log?: (s: string) => void } = {}): Promise<{ dir: string; manifest: BenchModelManifest }> {
  const shape = opts.shape ?? 'tiny';
  const seed = opts.seed ?? DEFAULT_SEED;
  if (!SHAPES[shape]) throw new Error(`unknown shape '${shape}' (tiny or 1.5b)`);
  const dir = opts.outDir ?? benchModelDir(shape, seed);
  const key = sourcesKey(shape, seed);
  if (!opts.force) {
    try {
      const marker = JSON.parse(await readFile(join(dir, MARKER), 'utf8')) as { key?: string };
      const manifest = readManifest(dir);
      if (marker.key === key && manifest && existsSync(join(dir, 'onnx', 'model_q4.onnx'))) return { dir, manifest };
    } catch {
      // not built yet
    }
  }
  const t0 = performance.now();
  await mkdir(join(dir, 'onnx'), { recursive: true });
  await rm(join(dir, MARKER), { force: true });
  const tok = await ensureFixture('tokenizer');
  for (const f of ['tokenizer.json', 'tokenizer_config.json']) await copyFile(join(tok, f), join(dir, f));
  const spec = SHAPES[shape];
  await writeFile(join(dir, 'config.json'), `${JSON.stringify(qwen2Config(spec), null, 2)}\n`);
  await writeFile(join(dir, 'generation_config.json'), `${JSON.stringify(GENERATION_CONFIG, null, 2)}\n`);

  const { g, lazy, stats } = buildBenchGraph(shape, seed);
  const small = onnx.ModelProto.decode(g.encode({ opset: 17, producer: 'r1-coder-bench', docString: `random-weight Qwen2 decoder, ${shape} shapes, q4 (MatMulNBits bits 4, block 32), seed ${seed}` }));
  const lazyNames = new Set(lazy.map((t) => t.name));
  const graph = small.graph!;
  graph.initializer = (graph.initializer ?? []).filter((t) => !lazyNames.has(t.name ?? ''));
  let otherBytes = 0;
  for (const t of graph.initializer) otherBytes += t.rawData?.length ?? 0;
  const file = join(dir, 'onnx', 'model_q4.onnx');
  const tmp = `${file}.tmp-${process.pid}`;
  const fileBytes = writeStreaming(tmp, small, lazy);
  await rename(tmp, file);
  const headDim = spec.hiddenSize / spec.numHeads;
  const manifest: BenchModelManifest = {
    shape,
    seed,
    spec: { ...spec, vocabSize: VOCAB_SIZE, headDim },
    file: 'onnx/model_q4.onnx',
    fileBytes,
    ...stats,
    otherBytes,
    weightBytesPerToken: stats.quantizedBytes + otherBytes + spec.hiddenSize * 4,
  };
  const floor = await writeLinearFloorModel(dir, shape, seed);
  manifest.linearFloor = { file: LINEAR_FLOOR_FILE, fileBytes: floor.bytes, quantizedBytes: floor.quantizedBytes, nodes: floor.nodes };
  await writeFile(join(dir, 'bench-model.json'), `${JSON.stringify(manifest, null, 2)}\n`);
  await writeFile(join(dir, MARKER), `${JSON.stringify({ key, builtAt: new Date().toISOString() }, null, 2)}\n`);
  opts.log?.(`built ${file} (${(fileBytes / 1e9).toFixed(3)} GB) in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  return { dir, manifest };
}

function argValue(args: string[], name: string): string | undefined {
  const i = args.indexOf(name);
  if (i >= 0) return args[i + 1];
  const eq = args.find((a) => a.startsWith(`${name}=`));
  return eq?.slice(name.length + 1);
}

if (require.main === module) {
  const args = process.argv.slice(2);
  const shape = (argValue(args, '--shape') ?? 'tiny') as BenchShape;
  const seed = Number(argValue(args, '--seed') ?? DEFAULT_SEED);
  buildBenchModel({ shape, seed, force: args.includes('--force'), log: (s) => console.log(s) }).then(
    ({ dir, manifest }) => console.log(`${dir}: ${manifest.fileBytes} bytes, ${manifest.matMulNBitsNodes} MatMulNBits, ${(manifest.weightBytesPerToken / 1e9).toFixed(3)} GB read per token`),
    (e: unknown) => {
      console.error(e);
      process.exitCode = 1;
    },
  );
}
