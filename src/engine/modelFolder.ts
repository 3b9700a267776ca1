/**
 * Reading and validating a model folder, in either of the two layouts people download:
 * - `hub` (onnx-community and other Hugging Face exports): config.json, generation_config.json and
 *   onnx/model_<variant>.onnx files;
 * - `genai` (onnxruntime-genai's model builder, e.g. onnxruntime/DeepSeek-R1-Distill-ONNX):
 *   genai_config.json, which names the one model file, its input and output names and the model's
 *   numbers; no config.json or generation_config.json is counted on.
 * And the graph signature ONNX Runtime reports for the chosen file, checked against the config.
 * Every failure is a ModelError naming the file.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { ModelError } from './errors';
import { LOGIT_COUNT_INPUT } from './graph/names';
import type {
  DecoderNames,
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
    'The model folder does not look like an R1 export (R1-Distill-Qwen, R1-Distill-Llama, R1-0528-Qwen3); download it again or point to the right folder.',
    file,
  );
}

function positiveInt(obj: Record<string, unknown>, field: string, file: string, optional = false, path = ''): number | undefined {
  const v = obj[field];
  if (v === undefined || v === null) {
    if (optional) return undefined;
    throw fieldError(file, `${path}${field}`, 'is missing');
  }
  if (typeof v !== 'number' || !Number.isInteger(v) || v <= 0) {
    throw fieldError(file, `${path}${field}`, `must be a positive integer, found ${JSON.stringify(v)}`);
  }
  return v;
}

function tokenIds(obj: Record<string, unknown>, field: string, file: string, path = ''): number[] {
  const v = obj[field];
  if (v === undefined || v === null) return [];
  const arr = Array.isArray(v) ? v : [v];
  for (const x of arr) {
    if (typeof x !== 'number' || !Number.isInteger(x) || x < 0) {
      throw fieldError(file, `${path}${field}`, `must be a token id or a list of token ids, found ${JSON.stringify(v)}`);
    }
  }
  return arr as number[];
}

/**
 * config.json's rope_scaling as the engine understands it: none (`plain`), Llama 3.1's
 * inverse-frequency rescaling (`llama3`, R1-Distill-Llama), or another kind it does not compute
 * (`other`, e.g. R1-0528-Qwen3's yarn), named by its type.
 */
export type RopeScaling =
  | { kind: 'plain' }
  | { kind: 'llama3'; factor: number; lowFreqFactor: number; highFreqFactor: number; originalMaxPositionEmbeddings: number }
  | { kind: 'other'; type: string };

export interface ModelConfig extends ModelConfigSummary {
  eosTokenIds: number[];
  bosTokenId?: number;
  /** rope_theta (Qwen2's default 10000 when absent). */
  ropeTheta: number;
  /** rope_scaling (plain when config.json has none, or the folder has no config.json). */
  ropeScaling: RopeScaling;
  /** use_sliding_window: attention over a window of the context, not all of it. */
  slidingWindow: boolean;
  /** True when rotary positions or attention span differ from plain RoPE over the whole context (rope_scaling, use_sliding_window). */
  nonPlainAttention: boolean;
  /** Per-head RMSNorms of q and k before the rotary embedding (Qwen3's q_norm / k_norm). */
  qkNorm: boolean;
  /** The file these values come from (config.json, or genai_config.json), for messages. */
  source: string;
}

function ropeScalingOf(v: unknown): RopeScaling {
  if (v === undefined || v === null || typeof v !== 'object' || Array.isArray(v)) return { kind: 'plain' };
  const r = v as Record<string, unknown>;
  const type = typeof r.rope_type === 'string' ? r.rope_type : typeof r.type === 'string' ? r.type : 'unknown';
  const num = (k: string) => (typeof r[k] === 'number' && Number.isFinite(r[k]) ? (r[k] as number) : undefined);
  const factor = num('factor');
  const low = num('low_freq_factor');
  const high = num('high_freq_factor');
  const original = num('original_max_position_embeddings');
  if (type === 'llama3' && factor && low && high && original && high > low) {
    return { kind: 'llama3', factor, lowFreqFactor: low, highFreqFactor: high, originalMaxPositionEmbeddings: original };
  }
  return { kind: 'other', type };
}

/** config.json's rotary facts: rope_theta (Qwen2's 10000 when absent), rope_scaling, a sliding window, and whether any is more than plain RoPE. */
function rotaryOf(j: Record<string, unknown>): Pick<ModelConfig, 'ropeTheta' | 'ropeScaling' | 'slidingWindow' | 'nonPlainAttention'> {
  const ropeScaling = ropeScalingOf(j.rope_scaling);
  const slidingWindow = j.use_sliding_window === true;
  return {
    ropeTheta: typeof j.rope_theta === 'number' && j.rope_theta > 0 ? j.rope_theta : 10000,
    ropeScaling,
    slidingWindow,
    nonPlainAttention: ropeScaling.kind !== 'plain' || slidingWindow,
  };
}

/** The file onnxruntime-genai's builder writes next to its model: it marks the `genai` layout. */
export const GENAI_CONFIG = 'genai_config.json';

export type FolderLayout = 'hub' | 'genai';

/** `genai` when the folder has genai_config.json, else `hub`. */
export function folderLayout(dir: string): FolderLayout {
  return existsSync(join(dir, GENAI_CONFIG)) ? 'genai' : 'hub';
}

/** The names every export we know uses (the hub's exports, and genai_config.json's defaults). */
export const DEFAULT_NAMES: Readonly<DecoderNames> = {
  inputIds: 'input_ids',
  attentionMask: 'attention_mask',
  positionIds: 'position_ids',
  pastKey: 'past_key_values.%d.key',
  pastValue: 'past_key_values.%d.value',
  logits: 'logits',
  presentKey: 'present.%d.key',
  presentValue: 'present.%d.value',
};

/** A KV name pattern for layer `i`. */
export function layerName(pattern: string, i: number): string {
  return pattern.replace('%d', String(i));
}

/** The past (inputs) and present (outputs) names of every layer, key then value. */
export function kvNames(names: DecoderNames, numLayers: number): { past: string[]; present: string[] } {
  const past: string[] = [];
  const present: string[] = [];
  for (let i = 0; i < numLayers; i++) {
    past.push(layerName(names.pastKey, i), layerName(names.pastValue, i));
    present.push(layerName(names.presentKey, i), layerName(names.presentValue, i));
  }
  return { past, present };
}

/**
 * The architectures R1 Coder runs, as config.json's model_type (genai_config.json's model.type):
 * qwen2 (R1-Distill-Qwen 1.5B/7B/14B), llama (R1-Distill-Llama-8B), qwen3 (R1-0528-Qwen3-8B).
 * Nothing else in the engine depends on the architecture: the tokenizer, the chat template, the
 * token ids and the graph's signature all come from the folder. `r1 models` recommends only
 * catalogue entries of these.
 */
export const SUPPORTED_TYPES: readonly string[] = ['qwen2', 'llama', 'qwen3'];

function checkModelType(modelType: unknown, file: string, field: string): string {
  if (typeof modelType !== 'string') throw fieldError(file, field, 'is missing');
  if (!SUPPORTED_TYPES.includes(modelType)) {
    throw new ModelError(
      'invalid-field',
      `${field} is "${modelType}"; R1 Coder runs the R1 family's architectures (${field} ${SUPPORTED_TYPES.map((t) => `"${t}"`).join(', ')}: R1-Distill-Qwen, R1-Distill-Llama, R1-0528-Qwen3).`,
      'Point r1.model.path to an ONNX export of an R1 model.',
      file,
    );
  }
  return modelType;
}

/** The architecture values the engine checks the graph against: config.json, or genai_config.json in the genai layout. */
export function readModelConfig(dir: string): ModelConfig {
  if (folderLayout(dir) === 'genai') return readGenaiFolder(dir).config;
  const file = join(dir, 'config.json');
  const j = readJsonFile(dir, 'config.json', 'the model architecture');
  const modelType = checkModelType(j.model_type, file, 'model_type');
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
    ...rotaryOf(j),
    qkNorm: modelType === 'qwen3',
    source: 'config.json',
  };
}

export interface GenerationConfig {
  eosTokenIds: number[];
  defaults: SamplingOptions & { maxNewTokens?: number };
  /** False when the file is absent (it is optional). */
  present: boolean;
}

function optionalNumber(j: Record<string, unknown>, field: string, file: string, min: number, max: number, path = ''): number | undefined {
  const v = j[field];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'number' || !Number.isFinite(v) || v < min || v > max) {
    throw fieldError(file, `${path}${field}`, `must be a number between ${min} and ${max}, found ${JSON.stringify(v)}`);
  }
  return v;
}

/**
 * Eos ids and sampling defaults: generation_config.json (optional; invalid content is an error),
 * or genai_config.json's model.eos_token_id and search options in the genai layout.
 */
export function readGenerationConfig(dir: string): GenerationConfig {
  if (folderLayout(dir) === 'genai') return readGenaiFolder(dir).generation;
  const file = join(dir, 'generation_config.json');
  if (!existsSync(file)) return { eosTokenIds: [], defaults: {}, present: false };
  const j = readJsonFile(dir, 'generation_config.json', 'sampling defaults');
  return { eosTokenIds: tokenIds(j, 'eos_token_id', file), defaults: samplingDefaults(j, file, ''), present: true };
}

/** do_sample, temperature, top_p, top_k and max_new_tokens of a JSON object (`prefix` names it in errors). */
function samplingDefaults(j: Record<string, unknown>, file: string, prefix: string): GenerationConfig['defaults'] {
  const defaults: GenerationConfig['defaults'] = {};
  const doSample = j.do_sample;
  if (doSample !== undefined && typeof doSample !== 'boolean') throw fieldError(file, `${prefix}do_sample`, 'must be true or false');
  const temperature = optionalNumber(j, 'temperature', file, 0, 100, prefix);
  const topP = optionalNumber(j, 'top_p', file, 0, 1, prefix);
  const topK = optionalNumber(j, 'top_k', file, 0, 1e9, prefix);
  const maxNew = optionalNumber(j, 'max_new_tokens', file, 1, 1e9, prefix);
  if (doSample === false) defaults.temperature = 0;
  else if (temperature !== undefined) defaults.temperature = temperature;
  if (topP !== undefined) defaults.topP = topP;
  if (topK !== undefined) defaults.topK = Math.floor(topK);
  if (maxNew !== undefined) defaults.maxNewTokens = Math.floor(maxNew);
  return defaults;
}

/** What genai_config.json says of the folder. */
export interface GenaiFolder {
  config: ModelConfig;
  generation: GenerationConfig;
  /** The model file (model.decoder.filename, beside genai_config.json). */
  file: string;
  names: DecoderNames;
  /** q4f16 when the builder wrote GPU provider options (cuda, dml, webgpu: fp16 activations and KV), else q4. */
  variant: ModelVariant;
}

function objectField(obj: Record<string, unknown>, field: string, file: string, path: string): Record<string, unknown> {
  const v = obj[field];
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw fieldError(file, `${path}${field}`, v === undefined ? 'is missing' : 'must be an object');
  return v as Record<string, unknown>;
}

function stringField(obj: Record<string, unknown>, field: string, file: string, path: string, fallback: string, pattern = false): string {
  const v = obj[field];
  if (v === undefined || v === null) return fallback;
  if (typeof v !== 'string' || v === '' || (pattern && !v.includes('%d'))) {
    throw fieldError(file, `${path}${field}`, pattern ? `must be a name with %d for the layer, found ${JSON.stringify(v)}` : `must be a name, found ${JSON.stringify(v)}`);
  }
  return v;
}

/**
 * genai_config.json: the architecture (model.type, model.decoder's sizes, vocab_size,
 * context_length), the token ids, the model file and its input and output names, and the search
 * defaults. config.json, when the folder also has one, adds what genai_config.json does not say
 * (rope_theta, rope_scaling).
 */
export function readGenaiFolder(dir: string): GenaiFolder {
  const file = join(dir, GENAI_CONFIG);
  const j = readJsonFile(dir, GENAI_CONFIG, 'the onnxruntime-genai model description');
  const model = objectField(j, 'model', file, '');
  const modelType = checkModelType(model.type, file, 'model.type');
  const decoder = objectField(model, 'decoder', file, 'model.');
  const at = 'model.decoder.';
  const numAttentionHeads = positiveInt(decoder, 'num_attention_heads', file, false, at)!;
  const numHiddenLayers = positiveInt(decoder, 'num_hidden_layers', file, false, at)!;
  const numKeyValueHeads = positiveInt(decoder, 'num_key_value_heads', file, true, at) ?? numAttentionHeads;
  const headDim = positiveInt(decoder, 'head_size', file, false, at)!;
  const hiddenSize = positiveInt(decoder, 'hidden_size', file, true, at) ?? headDim * numAttentionHeads;
  if (numAttentionHeads % numKeyValueHeads !== 0) {
    throw fieldError(file, `${at}num_key_value_heads`, `(${numKeyValueHeads}) must divide num_attention_heads (${numAttentionHeads})`);
  }
  const vocabSize = positiveInt(model, 'vocab_size', file, false, 'model.')!;
  const contextLength = positiveInt(model, 'context_length', file, true, 'model.') ?? 32768;
  const filename = stringField(decoder, 'filename', file, at, 'model.onnx');
  if (filename.includes('..') || /^[/\\]|^[A-Za-z]:/.test(filename)) throw fieldError(file, `${at}filename`, `must name a file in the model folder, found ${JSON.stringify(filename)}`);
  const inputs = decoder.inputs === undefined ? {} : objectField(decoder, 'inputs', file, at);
  const outputs = decoder.outputs === undefined ? {} : objectField(decoder, 'outputs', file, at);
  const names: DecoderNames = {
    inputIds: stringField(inputs, 'input_ids', file, `${at}inputs.`, DEFAULT_NAMES.inputIds),
    attentionMask: stringField(inputs, 'attention_mask', file, `${at}inputs.`, DEFAULT_NAMES.attentionMask),
    positionIds: stringField(inputs, 'position_ids', file, `${at}inputs.`, DEFAULT_NAMES.positionIds),
    pastKey: stringField(inputs, 'past_key_names', file, `${at}inputs.`, DEFAULT_NAMES.pastKey, true),
    pastValue: stringField(inputs, 'past_value_names', file, `${at}inputs.`, DEFAULT_NAMES.pastValue, true),
    logits: stringField(outputs, 'logits', file, `${at}outputs.`, DEFAULT_NAMES.logits),
    presentKey: stringField(outputs, 'present_key_names', file, `${at}outputs.`, DEFAULT_NAMES.presentKey, true),
    presentValue: stringField(outputs, 'present_value_names', file, `${at}outputs.`, DEFAULT_NAMES.presentValue, true),
  };
  const providerOptions = (decoder.session_options as { provider_options?: unknown } | undefined)?.provider_options;
  const gpuBuild = Array.isArray(providerOptions) && providerOptions.some((o) => typeof o === 'object' && o !== null && Object.keys(o).some((k) => k !== 'cpu'));
  const bos = model.bos_token_id;
  // config.json, when present beside it, knows the rotary numbers.
  const hf = existsSync(join(dir, 'config.json')) ? readJsonFile(dir, 'config.json', 'the model architecture') : {};
  const config: ModelConfig = {
    modelType,
    hiddenSize,
    numHiddenLayers,
    numAttentionHeads,
    numKeyValueHeads,
    headDim,
    vocabSize,
    maxPositionEmbeddings: contextLength,
    eosTokenIds: tokenIds(model, 'eos_token_id', file, 'model.'),
    bosTokenId: typeof bos === 'number' ? bos : undefined,
    ...rotaryOf(hf),
    qkNorm: modelType === 'qwen3',
    source: GENAI_CONFIG,
  };
  const search = j.search === undefined ? {} : objectField(j, 'search', file, '');
  // The builder writes top_k 1 whatever the model: taken as a default it would make every answer
  // greedy, which R1 distills loop on. The other search values come from the model's own config.
  const { top_k: _builderTopK, ...sampling } = search;
  void _builderTopK;
  const generation: GenerationConfig = { eosTokenIds: config.eosTokenIds, defaults: samplingDefaults(sampling, file, 'search.'), present: true };
  return { config, generation, file: join(dir, filename), names, variant: gpuBuild ? 'q4f16' : 'q4' };
}

/**
 * The variants present, with their files: `<dir>/onnx/model_<variant>.onnx`, or in the genai
 * layout its one model file, as q4f16 when the builder made it for a GPU (fp16 activations) and
 * q4 otherwise.
 */
export function listVariants(dir: string): Map<ModelVariant, string> {
  if (folderLayout(dir) === 'genai') {
    const g = readGenaiFolder(dir);
    return existsSync(g.file) ? new Map([[g.variant, g.file]]) : new Map();
  }
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

/** A model folder as the engine loads it, in either layout. */
export interface ModelFolder {
  dir: string;
  layout: FolderLayout;
  config: ModelConfig;
  generation: GenerationConfig;
  /** The variants present and their files (one in the genai layout). */
  variants: Map<ModelVariant, string>;
  names: DecoderNames;
}

/** Reads what the engine needs of a folder, whatever its layout. */
export function readModelFolder(dir: string): ModelFolder {
  if (folderLayout(dir) === 'genai') {
    const g = readGenaiFolder(dir);
    if (!existsSync(g.file)) {
      throw new ModelError(
        'missing-file',
        `genai_config.json names the model file ${g.file.slice(dir.length + 1)}, which is not in the folder.`,
        'Download the whole folder of the model (genai_config.json, the model file and its .data file, the tokenizer files).',
        g.file,
      );
    }
    return { dir, layout: 'genai', config: g.config, generation: g.generation, variants: new Map([[g.variant, g.file]]), names: g.names };
  }
  return { dir, layout: 'hub', config: readModelConfig(dir), generation: readGenerationConfig(dir), variants: listVariants(dir), names: { ...DEFAULT_NAMES } };
}

/** Minimal shape of ONNX Runtime's InferenceSession.ValueMetadata. */
export type ValueMetadataLike =
  | { name: string; isTensor: false }
  | { name: string; isTensor: true; type: string; shape: ReadonlyArray<number | string> };

function mismatch(file: string, problem: string): ModelError {
  return new ModelError(
    'signature-mismatch',
    problem,
    'The ONNX file does not match the model folder\'s config or is not a merged decoder with past key values; download the model again or choose another variant.',
    file,
  );
}

const FLOATS = new Set(['float32', 'float16']);

/** A pattern with %d as a regex that captures the layer. */
function layerPattern(pattern: string): RegExp {
  const [before, after] = pattern.split('%d', 2) as [string, string];
  const esc = (t: string) => t.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  return new RegExp(`^${esc(before)}(\\d+)${esc(after)}$`);
}

/**
 * Checks the graph's inputs and outputs against the config: names (`names`, from
 * genai_config.json in that layout), dtypes, the layer count and the KV head count and head size
 * (where the graph gives static dimensions). position_ids is optional: graphs whose attention
 * takes the positions from the mask (GroupQueryAttention) have none.
 */
export function validateSignature(
  file: string,
  inputs: readonly ValueMetadataLike[],
  outputs: readonly ValueMetadataLike[],
  config: ModelConfigSummary & { source?: string },
  names: DecoderNames = DEFAULT_NAMES,
): GraphSignature {
  const cfgName = config.source ?? 'config.json';
  const toSig = (m: ValueMetadataLike): TensorSignature =>
    m.isTensor ? { name: m.name, dtype: m.type, shape: [...m.shape] } : { name: m.name, dtype: 'non-tensor', shape: [] };
  const ins = new Map(inputs.map((m) => [m.name, toSig(m)]));
  const outs = new Map(outputs.map((m) => [m.name, toSig(m)]));

  const required = [names.inputIds, names.attentionMask];
  const plain = ins.has(names.positionIds) ? [...required, names.positionIds] : required;
  const pastKeyRe = layerPattern(names.pastKey);
  const pastValueRe = layerPattern(names.pastValue);
  const presentKeyRe = layerPattern(names.presentKey);
  const presentValueRe = layerPattern(names.presentValue);
  const isPast = (n: string) => pastKeyRe.test(n) || pastValueRe.test(n);
  const isPresent = (n: string) => presentKeyRe.test(n) || presentValueRe.test(n);
  // A prepared copy's own input (graph/rewrites.ts): how many last positions get logits.
  const knownInput = (n: string) => plain.includes(n) || isPast(n) || n === LOGIT_COUNT_INPUT;
  for (const name of required) {
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
  if (!outs.has(names.logits)) {
    const other = [...outs.keys()].find((n) => !isPresent(n));
    throw mismatch(file, other ? `the graph has output '${other}' where '${names.logits}' was expected.` : `the graph has no output '${names.logits}'.`);
  }
  for (const name of ins.has(LOGIT_COUNT_INPUT) ? [...plain, LOGIT_COUNT_INPUT] : plain) {
    const s = ins.get(name)!;
    if (s.dtype !== 'int64') throw mismatch(file, `input '${name}' is ${s.dtype}; int64 was expected.`);
  }

  // Layers: the past key/value of i = 0..n-1, each matching its present.
  const layerIdx = new Set<number>();
  for (const n of ins.keys()) {
    const m = pastKeyRe.exec(n) ?? pastValueRe.exec(n);
    if (m) layerIdx.add(Number(m[1]));
  }
  const graphLayers = layerIdx.size;
  if (graphLayers === 0) {
    throw mismatch(file, `the graph has no ${names.pastKey.replace('%d', '*')} inputs: it is not a decoder with KV cache (a "merged" / with-past export is needed).`);
  }
  if (graphLayers !== config.numHiddenLayers) {
    throw mismatch(file, `${cfgName} says ${config.numHiddenLayers} layers, the graph has ${graphLayers}.`);
  }
  const kv = kvNames(names, graphLayers);
  let kvDtype: string | undefined;
  let kvHeads: number | undefined;
  let headDim: number | undefined;
  for (let t = 0; t < kv.past.length; t++) {
    const pastName = kv.past[t]!;
    const presentName = kv.present[t]!;
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
        throw mismatch(file, `${cfgName} says ${config.numKeyValueHeads} key/value heads (num_key_value_heads), the graph's '${pastName}' has ${h}.`);
      }
      kvHeads = h;
    }
    if (typeof d === 'number') {
      if (d !== config.headDim) {
        throw mismatch(file, `${cfgName} gives a head size of ${config.headDim}, the graph's '${pastName}' has ${d}.`);
      }
      headDim = d;
    }
  }
  for (const n of outs.keys()) {
    if (n === names.logits || isPresent(n)) continue;
    throw mismatch(file, `the graph has an unexpected output '${n}'.`);
  }
  const logits = outs.get(names.logits)!;
  if (!FLOATS.has(logits.dtype)) throw mismatch(file, `output '${names.logits}' is ${logits.dtype}; float32 or float16 was expected.`);
  const v = logits.shape[2];
  if (logits.shape.length === 3 && typeof v === 'number' && v !== config.vocabSize) {
    throw mismatch(file, `${cfgName} says vocab_size ${config.vocabSize}, the graph's logits have ${v}.`);
  }
  return {
    inputs: [...ins.values()],
    outputs: [...outs.values()],
    numLayers: graphLayers,
    kvHeads: kvHeads ?? config.numKeyValueHeads,
    headDim: headDim ?? config.headDim,
    kvDtype: kvDtype as 'float32' | 'float16',
    logitsDtype: logits.dtype as 'float32' | 'float16',
    names: { ...names },
    pastNames: kv.past,
    presentNames: kv.present,
    feedsPositionIds: ins.has(names.positionIds),
    feedsLogitCount: ins.has(LOGIT_COUNT_INPUT),
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
