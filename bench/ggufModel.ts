/**
 * The benchmark's llama.cpp model: a random-weight Qwen2 GGUF with the shapes of the benchmark's
 * ONNX model (bench/model.ts SHAPES) and the very same float weights (test/fixtures/onnx/weights.ts
 * seededQwen2Weights, same seed), quantized as llama.cpp's `llama-quantize` quantizes a
 * DeepSeek-R1-Distill-Qwen-1.5B file, with R1-Distill's real tokenizer in its metadata (from the
 * repository's tokenizer fixture, test/fixtures/tokenizer.ts).
 *
 * File types (llama-quantize's choice of tensor types, llama_tensor_get_type):
 * - `Q4_0`: every 2-D weight Q4_0, but output.weight Q6_K (Q8_0 when its rows are not a multiple
 *   of 256 values), as llama-quantize writes a Q4_0 file; norms and biases F32.
 * - `Q4_K_M`: every 2-D weight Q4_K, but output.weight Q6_K and attn_v / ffn_down Q6_K in the layers
 *   llama.cpp's use_more_bits picks (the first and last eighth and every third one between: 14 of
 *   28); a K-quant whose rows are not a multiple of 256 falls back as llama-quantize's does (Q4_K →
 *   Q5_0, Q6_K → Q8_0).
 *
 * Metadata: general.* (architecture qwen2, file_type, quantization_version 2, alignment 32),
 * qwen2.* (context_length, embedding_length, block_count, feed_forward_length, head counts,
 * rope.freq_base, layer_norm_rms_epsilon) and tokenizer.ggml.* as convert_hf_to_gguf.py writes them
 * for R1-Distill-Qwen (model gpt2, pre deepseek-r1-qwen, tokens padded to the embedding's rows with
 * [PADn], token types, merges, bos/eos/padding ids, add_bos_token) and tokenizer.chat_template.
 *
 *   tsx bench/ggufModel.ts [--shape tiny|1.5b|7b] [--type Q4_0|Q4_K_M] [--seed N] [--force]
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { BENCH_DIR, type BenchShape, DEFAULT_SEED, SHAPES, type ShapeSpec } from './model';
import { GgmlType, type GgufTensor, type GgufValue, LlamaFileType, QK_K, bool, i32s, quantize, str, strings, tensorBytes, u32, f32, writeGguf } from './gguf';
import { type Matrix, type Qwen2Weights, type Vector, seededQwen2Weights } from '../test/fixtures/onnx/weights';
import { BOS_TOKEN, EOS_TOKEN, R1_CHAT_TEMPLATE, renderTokenizerFixture } from '../test/fixtures/tokenizer';

export type GgufFileType = 'Q4_0' | 'Q4_K_M' | 'F32';
export const GGUF_FILE_TYPES: readonly GgufFileType[] = ['Q4_0', 'Q4_K_M'];

/** A Qwen2 shape as the GGUF needs it (bench/model.ts's ShapeSpec, or any smaller one for tests). */
export type GgufShape = Pick<ShapeSpec, 'hiddenSize' | 'intermediateSize' | 'numLayers' | 'numHeads' | 'numKvHeads' | 'vocabSize' | 'ropeTheta' | 'rmsNormEps' | 'maxPositionEmbeddings'>;

/** llama.cpp's use_more_bits (llama-quant.cpp). */
export function useMoreBits(layer: number, layers: number): boolean {
  const eighth = Math.floor(layers / 8);
  return layer < eighth || layer >= Math.floor((7 * layers) / 8) || (layer - eighth) % 3 === 2;
}

/** The type llama-quantize gives a 2-D weight of a file of `fileType` (ne0: its row length). */
export function weightType(fileType: GgufFileType, name: string, ne0: number, layer: number, layers: number): GgmlType {
  const fallback = (t: GgmlType) => (ne0 % QK_K === 0 ? t : t === GgmlType.Q4_K ? GgmlType.Q5_0 : t === GgmlType.Q6_K ? GgmlType.Q8_0 : t);
  if (fileType === 'F32') return GgmlType.F32;
  if (name === 'output.weight') return ne0 % QK_K === 0 ? GgmlType.Q6_K : GgmlType.Q8_0;
  if (fileType === 'Q4_0') return GgmlType.Q4_0;
  if ((name.endsWith('.attn_v.weight') || name.endsWith('.ffn_down.weight')) && useMoreBits(layer, layers)) return fallback(GgmlType.Q6_K);
  return fallback(GgmlType.Q4_K);
}

// Token types (gguf-py's TokenType).
const NORMAL = 1;
const CONTROL = 3;
const USER_DEFINED = 4;
const UNUSED = 5;

/** convert_hf_to_gguf.py's does_token_look_special. */
function looksSpecial(t: string): boolean {
  return ['<unk>', '<s>', '</s>', '<pad>', '<mask>'].includes(t) || (t.startsWith('<|') && t.endsWith('|>')) || (t.startsWith('<\uFF5C') && t.endsWith('\uFF5C>'));
}

export interface GgufTokenizer {
  tokens: string[];
  tokenTypes: Int32Array;
  merges: string[];
  bosId: number;
  eosId: number;
  padId: number;
  chatTemplate: string;
}

/**
 * R1-Distill's tokenizer as convert_hf_to_gguf.py writes it (get_vocab_base): ids without a token
 * up to the embedding's rows become [PADn] (unused), added tokens are control when special or when
 * they look special (<｜User｜>, <|fim_prefix|>, ...) and user-defined otherwise (<think>).
 */
export async function ggufTokenizer(vocabSize: number): Promise<GgufTokenizer> {
  const { tokenizerJson } = await renderTokenizerFixture();
  const tj = JSON.parse(tokenizerJson) as { added_tokens: { id: number; content: string; special: boolean }[]; model: { vocab: Record<string, number>; merges: (string | [string, string])[] } };
  const tokens: string[] = new Array<string>(vocabSize);
  const tokenTypes = new Int32Array(vocabSize);
  for (const [t, id] of Object.entries(tj.model.vocab)) {
    tokens[id] = t;
    tokenTypes[id] = NORMAL;
  }
  for (const a of tj.added_tokens) {
    tokens[a.id] = a.content;
    tokenTypes[a.id] = a.special || looksSpecial(a.content) ? CONTROL : USER_DEFINED;
  }
  for (let i = 0; i < vocabSize; i++) {
    if (tokens[i] === undefined) {
      tokens[i] = `[PAD${i}]`;
      tokenTypes[i] = UNUSED;
    }
  }
  const id = (t: string) => tj.added_tokens.find((a) => a.content === t)!.id;
  return {
    tokens,
    tokenTypes,
    merges: tj.model.merges.map((m) => (typeof m === 'string' ? m : m.join(' '))),
    bosId: id(BOS_TOKEN),
    eosId: id(EOS_TOKEN),
    padId: id(EOS_TOKEN),
    chatTemplate: R1_CHAT_TEMPLATE,
  };
}

/** The metadata of a Qwen2 GGUF, in convert_hf_to_gguf.py's order. */
export function qwen2Metadata(shape: GgufShape, fileType: GgufFileType, tok: GgufTokenizer, name: string): [string, GgufValue][] {
  return [
    ['general.architecture', str('qwen2')],
    ['general.type', str('model')],
    ['general.name', str(name)],
    ['qwen2.block_count', u32(shape.numLayers)],
    ['qwen2.context_length', u32(shape.maxPositionEmbeddings)],
    ['qwen2.embedding_length', u32(shape.hiddenSize)],
    ['qwen2.feed_forward_length', u32(shape.intermediateSize)],
    ['qwen2.attention.head_count', u32(shape.numHeads)],
    ['qwen2.attention.head_count_kv', u32(shape.numKvHeads)],
    ['qwen2.rope.freq_base', f32(shape.ropeTheta)],
    ['qwen2.attention.layer_norm_rms_epsilon', f32(shape.rmsNormEps)],
    ['general.file_type', u32(LlamaFileType[fileType])],
    ['tokenizer.ggml.model', str('gpt2')],
    ['tokenizer.ggml.pre', str('deepseek-r1-qwen')],
    ['tokenizer.ggml.tokens', strings(tok.tokens)],
    ['tokenizer.ggml.token_type', i32s(tok.tokenTypes)],
    ['tokenizer.ggml.merges', strings(tok.merges)],
    ['tokenizer.ggml.bos_token_id', u32(tok.bosId)],
    ['tokenizer.ggml.eos_token_id', u32(tok.eosId)],
    ['tokenizer.ggml.padding_token_id', u32(tok.padId)],
    ['tokenizer.ggml.add_bos_token', bool(true)],
    ['tokenizer.ggml.add_eos_token', bool(false)],
    ['tokenizer.chat_template', str(tok.chatTemplate)],
    ['general.quantization_version', u32(2)],
    ['general.alignment', u32(32)],
  ];
}

/** Rows per quantization chunk: about 4 M values. */
const chunkRows = (cols: number) => Math.max(1, Math.floor((1 << 22) / cols));

function matrixTensor(name: string, m: Matrix, type: GgmlType): GgufTensor {
  return {
    name,
    dims: [m.cols, m.rows],
    type,
    write(emit) {
      const step = chunkRows(m.cols);
      for (let r = 0; r < m.rows; r += step) emit(quantize(type, m.rowsAt(r, Math.min(step, m.rows - r))));
    },
  };
}

function vectorTensor(name: string, v: Vector): GgufTensor {
  return { name, dims: [v.length], type: GgmlType.F32, write: (emit) => emit(quantize(GgmlType.F32, v.values())) };
}

/** The tensors of a Qwen2 GGUF (llama.cpp's names, ggml dims), their types as llama-quantize picks them. */
export function qwen2Tensors(w: Qwen2Weights, fileType: GgufFileType): GgufTensor[] {
  const n = w.layers.length;
  const mat = (name: string, m: Matrix, layer = -1) => matrixTensor(name, m, weightType(fileType, name, m.cols, layer, n));
  const out: GgufTensor[] = [mat('token_embd.weight', w.embed)];
  w.layers.forEach((l, i) => {
    const b = `blk.${i}`;
    out.push(
      vectorTensor(`${b}.attn_norm.weight`, l.inputNorm),
      mat(`${b}.attn_q.weight`, l.q, i),
      vectorTensor(`${b}.attn_q.bias`, l.qBias),
      mat(`${b}.attn_k.weight`, l.k, i),
      vectorTensor(`${b}.attn_k.bias`, l.kBias),
      mat(`${b}.attn_v.weight`, l.v, i),
      vectorTensor(`${b}.attn_v.bias`, l.vBias),
      mat(`${b}.attn_output.weight`, l.o, i),
      vectorTensor(`${b}.ffn_norm.weight`, l.postNorm),
      mat(`${b}.ffn_gate.weight`, l.gate, i),
      mat(`${b}.ffn_up.weight`, l.up, i),
      mat(`${b}.ffn_down.weight`, l.down, i),
    );
  });
  out.push(vectorTensor('output_norm.weight', w.finalNorm), mat('output.weight', w.lmHead));
  return out;
}

export interface GgufManifest {
  file: string;
  fileType: GgufFileType;
  shape: string;
  seed: number;
  fileBytes: number;
  /** Bytes a decode step reads: every 2-D weight but the embedding, one embedding row, norms and biases. */
  weightBytesPerToken: number;
  /** How many tensors of each ggml type. */
  tensorTypes: Record<string, number>;
  buildSeconds: number;
}

/** Writes a Qwen2 GGUF of `shape` (the weights of seededQwen2Weights(shape, seed)) to `path`. */
export async function writeQwen2Gguf(path: string, shape: GgufShape, fileType: GgufFileType, seed: number, name = 'random-weight Qwen2 (R1 Coder benchmark)'): Promise<Omit<GgufManifest, 'file' | 'shape' | 'buildSeconds'>> {
  const w = seededQwen2Weights(shape, seed);
  const tok = await ggufTokenizer(shape.vocabSize);
  const tensors = qwen2Tensors(w, fileType);
  const fileBytes = writeGguf(path, qwen2Metadata(shape, fileType, tok, name), tensors);
  const tensorTypes: Record<string, number> = {};
  let perToken = 0;
  for (const t of tensors) {
    tensorTypes[GgmlType[t.type]] = (tensorTypes[GgmlType[t.type]] ?? 0) + 1;
    perToken += t.name === 'token_embd.weight' ? tensorBytes(t) / t.dims[1]! : tensorBytes(t);
  }
  return { fileType, seed, fileBytes, weightBytesPerToken: perToken, tensorTypes };
}

/** Bump when the bytes written change. */
const GGUF_BUILD_VERSION = 1;

function sourcesKey(): string {
  const h = createHash('sha256');
  h.update(String(GGUF_BUILD_VERSION));
  for (const f of ['gguf.ts', 'ggufModel.ts']) h.update(readFileSync(join(__dirname, f)));
  for (const f of ['../test/fixtures/onnx/weights.ts', '../test/fixtures/tokenizer.ts']) h.update(readFileSync(join(__dirname, f)));
  return h.digest('hex').slice(0, 16);
}

/**
 * The benchmark's GGUF of `shape` and `fileType`, built into .cache/bench/gguf when missing or
 * built by other sources (a marker next to it holds their key). ~1 min at 1.5b on 2 cores.
 */
export async function buildBenchGguf(opts: { shape: BenchShape; fileType: GgufFileType; seed?: number; force?: boolean; log?: (s: string) => void }): Promise<GgufManifest> {
  const seed = opts.seed ?? DEFAULT_SEED;
  const dir = join(BENCH_DIR, 'gguf');
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `qwen2-${opts.shape}-${seed}-${opts.fileType}.gguf`);
  const marker = `${file}.json`;
  const key = sourcesKey();
  if (!opts.force && existsSync(file) && existsSync(marker)) {
    try {
      const m = JSON.parse(readFileSync(marker, 'utf8')) as GgufManifest & { key: string };
      if (m.key === key && statSync(file).size === m.fileBytes) return m;
    } catch {
      // rebuild
    }
  }
  opts.log?.(`writing ${file}`);
  const t0 = performance.now();
  const spec = SHAPES[opts.shape];
  const m = await writeQwen2Gguf(file, spec, opts.fileType, seed);
  const manifest: GgufManifest = { ...m, file, shape: opts.shape, buildSeconds: (performance.now() - t0) / 1000 };
  writeFileSync(marker, `${JSON.stringify({ ...manifest, key }, null, 2)}\n`);
  opts.log?.(`wrote ${(m.fileBytes / 1e9).toFixed(3)} GB in ${manifest.buildSeconds.toFixed(0)} s (${Object.entries(m.tensorTypes).map(([t, n]) => `${n} ${t}`).join(', ')})`);
  return manifest;
}

if (require.main === module) {
  const args = process.argv.slice(2);
  const get = (n: string) => {
    const i = args.indexOf(n);
    return i >= 0 ? args[i + 1] : undefined;
  };
  buildBenchGguf({
    shape: (get('--shape') ?? 'tiny') as BenchShape,
    fileType: (get('--type') ?? 'Q4_0') as GgufFileType,
    seed: Number(get('--seed') ?? DEFAULT_SEED),
    force: args.includes('--force'),
    log: (s) => process.stderr.write(`${s}\n`),
  }).then(
    (m) => console.log(JSON.stringify(m, null, 2)),
    (e: unknown) => {
      console.error(e);
      process.exitCode = 1;
    },
  );
}
