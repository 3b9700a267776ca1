/**
 * Reading and validating a model folder in the onnx-community layout: config.json,
 * generation_config.json, the onnx/model_<variant>.onnx files, and the graph signature that
 * ONNX Runtime reports for the chosen file. Every failure is a ModelError naming the file.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { ModelError } from './errors';
import type {
  ExecutionProvider,
  GraphSignature,
  ModelConfigSummary,
  ModelVariant,
  SamplingOptions,
  TensorSignature,
} from './types';

export const ALL_VARIANTS: readonly ModelVariant[] = ['q4', 'q4f16', 'fp16', 'fp32', 'int8', 'uint8', 'quantized', 'bnb4'];

/** Preference when the variant is `auto`: the first present wins. */
export const CPU_VARIANT_ORDER: readonly ModelVariant[] = ['q4', 'int8', 'quantized', 'uint8', 'fp32', 'bnb4', 'fp16', 'q4f16'];
export const GPU_VARIANT_ORDER: readonly ModelVariant[] = ['q4f16', 'fp16', 'q4', 'fp32', 'int8', 'quantized', 'uint8', 'bnb4'];

export function isGpuProvider(p: ExecutionProvider): boolean {
  return p !== 'cpu';
}

/** `onnx/model.onnx` for fp32, `onnx/model_<variant>.onnx` otherwise. */
export function variantFileName(v: ModelVariant): string {
  return v === 'fp32' ? 'model.onnx' : `model_${v}.onnx`;
}

export function isModelVariant(s: string): s is ModelVariant {
  return (ALL_VARIANTS as readonly string[]).includes(s);
}

/** Reads and parses a JSON file of the model folder; ModelError when missing or invalid. */
export function readJsonFile(dir: string, name: string, what: string): Record<string, unknown> {
  const file = join(dir, name);
  if (!existsSync(file)) {
    throw new ModelError(
      'missing-file',
      `${name} is missing from the model folder (${what}).`,
      'Check that the model folder is complete, or download the model again.',
      file,
    );
  }
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new ModelError('unreadable-file', `cannot read ${name}: ${(e as Error).message}.`, 'Check the file permissions.', file, {
      cause: e,
    });
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw new ModelError(
      'invalid-json',
      `${name} is not valid JSON (${(e as Error).message}).`,
      'The file may be truncated or edited by hand; download it again.',
      file,
      { cause: e },
    );
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new ModelError('invalid-json', `${name} must hold a JSON object.`, 'Download the file again.', file);
  }
  return value as Record<string, unknown>;
}

function fieldError(file: string, field: string, problem: string): ModelError {
  return new ModelError(
    'invalid-field',
    `field "${field}" ${problem}.`,
    'The model folder does not look like a Qwen2 / R1-Distill export; download it again or point to the right folder.',
    file,
  );
}

function positiveInt(obj: Record<string, unknown>, field: string, file: string, optional = false): number | undefined {
  const v = obj[field];
  if (v === undefined || v === null) {
    if (optional) return undefined;
    throw fieldError(file, field, 'is missing');
  }
  if (typeof v !== 'number' || !Number.isInteger(v) || v <= 0) {
    throw fieldError(file, field, `must be a positive integer, found ${JSON.stringify(v)}`);
  }
  return v;
}

function tokenIds(obj: Record<string, unknown>, field: string, file: string): number[] {
  const v = obj[field];
  if (v === undefined || v === null) return [];
  const arr = Array.isArray(v) ? v : [v];
  for (const x of arr) {
    if (typeof x !== 'number' || !Number.isInteger(x) || x < 0) {
      throw fieldError(file, field, `must be a token id or a list of token ids, found ${JSON.stringify(v)}`);
    }
  }
  return arr as number[];
}

export interface ModelConfig extends ModelConfigSummary {
  eosTokenIds: number[];
  bosTokenId?: number;
  /** rope_theta (Qwen2's default 10000 when absent). */
  ropeTheta: number;
  /** True when rotary positions or attention span differ from plain RoPE over the whole context (rope_scaling, use_sliding_window). */
  nonPlainAttention: boolean;
}

/** config.json: the architecture values the engine checks the graph against. */
export function readModelConfig(dir: string): ModelConfig {
  const file = join(dir, 'config.json');
  const j = readJsonFile(dir, 'config.json', 'the model architecture');
  const modelType = j.model_type;
  if (typeof modelType !== 'string') throw fieldError(file, 'model_type', 'is missing');
  if (modelType !== 'qwen2') {
    throw new ModelError(
      'invalid-field',
      `model_type is "${modelType}"; R1 Coder runs DeepSeek-R1-Distill-Qwen models (model_type "qwen2").`,
      'Point r1.model.path to an R1-Distill-Qwen ONNX export.',
      file,
    );
  }
  const hiddenSize = positiveInt(j, 'hidden_size', file)!;
  const numHiddenLayers = positiveInt(j, 'num_hidden_layers', file)!;
  const numAttentionHeads = positiveInt(j, 'num_attention_heads', file)!;
  const numKeyValueHeads = positiveInt(j, 'num_key_value_heads', file, true) ?? numAttentionHeads;
  const vocabSize = positiveInt(j, 'vocab_size', file)!;
  const maxPositionEmbeddings = positiveInt(j, 'max_position_embeddings', file, true) ?? 32768;
  let headDim = positiveInt(j, 'head_dim', file, true);
  if (headDim === undefined) {
    if (hiddenSize % numAttentionHeads !== 0) {
      throw fieldError(file, 'hidden_size', `(${hiddenSize}) is not a multiple of num_attention_heads (${numAttentionHeads})`);
    }
    headDim = hiddenSize / numAttentionHeads;
  }
  if (numAttentionHeads % numKeyValueHeads !== 0) {
    throw fieldError(
      file,
      'num_key_value_heads',
      `(${numKeyValueHeads}) must divide num_attention_heads (${numAttentionHeads})`,
    );
  }
  const bos = j.bos_token_id;
  const ropeTheta = typeof j.rope_theta === 'number' && j.rope_theta > 0 ? j.rope_theta : 10000;
  const nonPlainAttention = (j.rope_scaling !== undefined && j.rope_scaling !== null) || j.use_sliding_window === true;
  return {
    modelType,
    hiddenSize,
    numHiddenLayers,
    numAttentionHeads,
    numKeyValueHeads,
    headDim,
    vocabSize,
    maxPositionEmbeddings,
    eosTokenIds: tokenIds(j, 'eos_token_id', file),
    bosTokenId: typeof bos === 'number' ? bos : undefined,
    ropeTheta,
    nonPlainAttention,
  };
}

export interface GenerationConfig {
  eosTokenIds: number[];
  defaults: SamplingOptions & { maxNewTokens?: number };
  /** False when the file is absent (it is optional). */
  present: boolean;
}

function optionalNumber(j: Record<string, unknown>, field: string, file: string, min: number, max: number): number | undefined {
  const v = j[field];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'number' || !Number.isFinite(v) || v < min || v > max) {
    throw fieldError(file, field, `must be a number between ${min} and ${max}, found ${JSON.stringify(v)}`);
  }
  return v;
}

/** generation_config.json: eos ids and sampling defaults. Optional; invalid content is an error. */
export function readGenerationConfig(dir: string): GenerationConfig {
  const file = join(dir, 'generation_config.json');
  if (!existsSync(file)) return { eosTokenIds: [], defaults: {}, present: false };
  const j = readJsonFile(dir, 'generation_config.json', 'sampling defaults');
  const defaults: GenerationConfig['defaults'] = {};
  const doSample = j.do_sample;
  if (doSample !== undefined && typeof doSample !== 'boolean') throw fieldError(file, 'do_sample', 'must be true or false');
  const temperature = optionalNumber(j, 'temperature', file, 0, 100);
  const topP = optionalNumber(j, 'top_p', file, 0, 1);
  const topK = optionalNumber(j, 'top_k', file, 0, 1e9);
  const maxNew = optionalNumber(j, 'max_new_tokens', file, 1, 1e9);
  if (doSample === false) defaults.temperature = 0;
  else if (temperature !== undefined) defaults.temperature = temperature;
  if (topP !== undefined) defaults.topP = topP;
  if (topK !== undefined) defaults.topK = Math.floor(topK);
  if (maxNew !== undefined) defaults.maxNewTokens = Math.floor(maxNew);
  return { eosTokenIds: tokenIds(j, 'eos_token_id', file), defaults, present: true };
}

/** The variants present in `<dir>/onnx/`, with their files. */
export function listVariants(dir: string): Map<ModelVariant, string> {
  const onnxDir = join(dir, 'onnx');
  const out = new Map<ModelVariant, string>();
  let names: string[];
  try {
    names = readdirSync(onnxDir);
  } catch {
    return out;
  }
  for (const v of ALL_VARIANTS) {
    const name = variantFileName(v);
    if (names.includes(name)) out.set(v, join(onnxDir, name));
  }
  return out;
}

/**
 * The variant to load: the requested one (which must be present), or with `auto` the first
 * present in the provider kind's preference order.
 */
export function chooseVariant(
  dir: string,
  available: ReadonlyMap<ModelVariant, string> | readonly ModelVariant[],
  requested: ModelVariant | 'auto' | undefined,
  provider: ExecutionProvider,
): ModelVariant {
  const present = new Set<ModelVariant>(Array.isArray(available) ? available : [...(available as Map<ModelVariant, string>).keys()]);
  const onnxDir = join(dir, 'onnx');
  if (present.size === 0) {
    throw new ModelError(
      'no-variant',
      'no ONNX model file found (expected onnx/model_q4.onnx, onnx/model_q4f16.onnx, onnx/model.onnx, ...).',
      'Download an onnx-community export of the model, with its onnx/ folder.',
      onnxDir,
    );
  }
  if (requested && requested !== 'auto') {
    if (!present.has(requested)) {
      throw new ModelError(
        'missing-file',
        `variant "${requested}" was requested but onnx/${variantFileName(requested)} is not in the model folder (present: ${[...present].join(', ')}).`,
        'Choose a present variant (r1.model.variant / --variant) or "auto", or download that file.',
        join(onnxDir, variantFileName(requested)),
      );
    }
    return requested;
  }
  const order = isGpuProvider(provider) ? GPU_VARIANT_ORDER : CPU_VARIANT_ORDER;
  for (const v of order) if (present.has(v)) return v;
  /* c8 ignore next */
  return [...present][0]!;
}

/** Minimal shape of ONNX Runtime's InferenceSession.ValueMetadata. */
export type ValueMetadataLike =
  | { name: string; isTensor: false }
  | { name: string; isTensor: true; type: string; shape: ReadonlyArray<number | string> };

function mismatch(file: string, problem: string): ModelError {
  return new ModelError(
    'signature-mismatch',
    problem,
    'The ONNX file does not match config.json or is not a merged decoder with past key values (onnx-community layout); download the model again or choose another variant.',
    file,
  );
}

const FLOATS = new Set(['float32', 'float16']);

/**
 * Checks the graph's inputs and outputs against config.json: names, dtypes, the layer count and
 * the KV head count and head size (where the graph gives static dimensions).
 */
export function validateSignature(
  file: string,
  inputs: readonly ValueMetadataLike[],
  outputs: readonly ValueMetadataLike[],
  config: ModelConfigSummary,
): GraphSignature {
  const toSig = (m: ValueMetadataLike): TensorSignature =>
    m.isTensor ? { name: m.name, dtype: m.type, shape: [...m.shape] } : { name: m.name, dtype: 'non-tensor', shape: [] };
  const ins = new Map(inputs.map((m) => [m.name, toSig(m)]));
  const outs = new Map(outputs.map((m) => [m.name, toSig(m)]));

  const expectedPlain = ['input_ids', 'attention_mask', 'position_ids'];
  const pastRe = /^past_key_values\.(\d+)\.(key|value)$/;
  const presentRe = /^present\.(\d+)\.(key|value)$/;
  const knownInput = (n: string) => expectedPlain.includes(n) || pastRe.test(n);
  for (const name of expectedPlain) {
    if (!ins.has(name)) {
      const stray = [...ins.keys()].find((n) => !knownInput(n));
      throw mismatch(
        file,
        stray
          ? `the graph has input '${stray}' where '${name}' was expected.`
          : `the graph has no input '${name}'.`,
      );
    }
  }
  const stray = [...ins.keys()].find((n) => !knownInput(n));
  if (stray) throw mismatch(file, `the graph has an unexpected input '${stray}'.`);
  if (!outs.has('logits')) {
    const other = [...outs.keys()].find((n) => !presentRe.test(n));
    throw mismatch(file, other ? `the graph has output '${other}' where 'logits' was expected.` : `the graph has no output 'logits'.`);
  }
  for (const name of expectedPlain) {
    const s = ins.get(name)!;
    if (s.dtype !== 'int64') throw mismatch(file, `input '${name}' is ${s.dtype}; int64 was expected.`);
  }

  // Layers: past_key_values.{i}.key/value for i = 0..n-1, matching present.{i}.*
  const layerIdx = new Set<number>();
  for (const n of ins.keys()) {
    const m = pastRe.exec(n);
    if (m) layerIdx.add(Number(m[1]));
  }
  const graphLayers = layerIdx.size;
  if (graphLayers === 0) {
    throw mismatch(file, 'the graph has no past_key_values.* inputs: it is not a decoder with KV cache (a "merged" / with-past export is needed).');
  }
  if (graphLayers !== config.numHiddenLayers) {
    throw mismatch(file, `config.json says ${config.numHiddenLayers} layers, the graph has ${graphLayers}.`);
  }
  let kvDtype: string | undefined;
  let kvHeads: number | undefined;
  let headDim: number | undefined;
  for (let i = 0; i < graphLayers; i++) {
    for (const kind of ['key', 'value'] as const) {
      const pastName = `past_key_values.${i}.${kind}`;
      const presentName = `present.${i}.${kind}`;
      const past = ins.get(pastName);
      if (!past) throw mismatch(file, `the graph has no input '${pastName}' (layers must be numbered 0..${graphLayers - 1}).`);
      const present = outs.get(presentName);
      if (!present) throw mismatch(file, `the graph has no output '${presentName}' for its input '${pastName}'.`);
      if (!FLOATS.has(past.dtype)) throw mismatch(file, `input '${pastName}' is ${past.dtype}; float32 or float16 was expected.`);
      if (present.dtype !== past.dtype) {
        throw mismatch(file, `output '${presentName}' is ${present.dtype} but input '${pastName}' is ${past.dtype}.`);
      }
      if (kvDtype === undefined) kvDtype = past.dtype;
      else if (kvDtype !== past.dtype) throw mismatch(file, `input '${pastName}' is ${past.dtype} while other KV inputs are ${kvDtype}.`);
      if (past.shape.length !== 4) {
        throw mismatch(file, `input '${pastName}' has ${past.shape.length} dimensions; [batch, kv_heads, past, head_dim] was expected.`);
      }
      const h = past.shape[1];
      const d = past.shape[3];
      if (typeof h === 'number') {
        if (h !== config.numKeyValueHeads) {
          throw mismatch(file, `config.json says ${config.numKeyValueHeads} key/value heads (num_key_value_heads), the graph's '${pastName}' has ${h}.`);
        }
        kvHeads = h;
      }
      if (typeof d === 'number') {
        if (d !== config.headDim) {
          throw mismatch(file, `config.json gives a head size of ${config.headDim}, the graph's '${pastName}' has ${d}.`);
        }
        headDim = d;
      }
    }
  }
  for (const n of outs.keys()) {
    if (n === 'logits' || presentRe.test(n)) continue;
    throw mismatch(file, `the graph has an unexpected output '${n}'.`);
  }
  const logits = outs.get('logits')!;
  if (!FLOATS.has(logits.dtype)) throw mismatch(file, `output 'logits' is ${logits.dtype}; float32 or float16 was expected.`);
  const v = logits.shape[2];
  if (logits.shape.length === 3 && typeof v === 'number' && v !== config.vocabSize) {
    throw mismatch(file, `config.json says vocab_size ${config.vocabSize}, the graph's logits have ${v}.`);
  }
  return {
    inputs: [...ins.values()],
    outputs: [...outs.values()],
    numLayers: graphLayers,
    kvHeads: kvHeads ?? config.numKeyValueHeads,
    headDim: headDim ?? config.headDim,
    kvDtype: kvDtype as 'float32' | 'float16',
    logitsDtype: logits.dtype as 'float32' | 'float16',
  };
}

/** Size of a file, or undefined. */
export function fileSize(file: string): number | undefined {
  try {
    return statSync(file).size;
  } catch {
    return undefined;
  }
}
