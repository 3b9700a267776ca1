/** Reading config.json / generation_config.json and checking a graph signature against them. */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ModelError } from '../../../src/engine/errors';
import {
  type ValueMetadataLike,
  DEFAULT_NAMES,
  folderLayout,
  listVariants,
  readModelFolder,
  readGenerationConfig,
  readModelConfig,
  validateSignature,
  variantFileName,
} from '../../../src/engine/modelFolder';
import type { ModelConfigSummary } from '../../../src/engine/types';

let tmp: string;
function dirWith(name: string, files: Record<string, unknown>): string {
  const dir = join(tmp, name);
  mkdirSync(dir, { recursive: true });
  for (const [f, content] of Object.entries(files)) {
    mkdirSync(join(dir, f, '..'), { recursive: true });
    writeFileSync(join(dir, f), typeof content === 'string' ? content : JSON.stringify(content));
  }
  return dir;
}

const R1_CONFIG = {
  model_type: 'qwen2',
  hidden_size: 1536,
  num_hidden_layers: 28,
  num_attention_heads: 12,
  num_key_value_heads: 2,
  vocab_size: 151936,
  max_position_embeddings: 131072,
  bos_token_id: 151643,
  eos_token_id: 151643,
};

describe('readModelConfig / readGenerationConfig', () => {
  before(() => {
    tmp = mkdtempSync(join(tmpdir(), 'r1-folder-'));
  });
  after(() => rmSync(tmp, { recursive: true, force: true }));

  it('reads the 1.5B config and derives head_dim = hidden_size / num_attention_heads', () => {
    const c = readModelConfig(dirWith('r1', { 'config.json': R1_CONFIG }));
    assert.equal(c.headDim, 128);
    assert.equal(c.numHiddenLayers, 28);
    assert.equal(c.numKeyValueHeads, 2);
    assert.deepEqual(c.eosTokenIds, [151643]);
  });

  it('prefers an explicit head_dim, and defaults num_key_value_heads to the head count', () => {
    const { num_key_value_heads: _drop, ...rest } = R1_CONFIG;
    void _drop;
    const c = readModelConfig(dirWith('hd', { 'config.json': { ...rest, head_dim: 64 } }));
    assert.equal(c.headDim, 64);
    assert.equal(c.numKeyValueHeads, 12);
  });

  it('rejects a KV head count that does not divide the head count', () => {
    assert.throws(
      () => readModelConfig(dirWith('gqa', { 'config.json': { ...R1_CONFIG, num_key_value_heads: 5 } })),
      (e: unknown) => e instanceof ModelError && e.code === 'invalid-field' && /num_key_value_heads/.test(e.message),
    );
  });

  it('a missing required field names it', () => {
    const { vocab_size: _v, ...rest } = R1_CONFIG;
    void _v;
    assert.throws(
      () => readModelConfig(dirWith('novocab', { 'config.json': rest })),
      (e: unknown) => e instanceof ModelError && e.code === 'invalid-field' && /"vocab_size" is missing/.test(e.message),
    );
  });

  it('a JSON array is not a config', () => {
    assert.throws(
      () => readModelConfig(dirWith('array', { 'config.json': '[1, 2]' })),
      (e: unknown) => e instanceof ModelError && e.code === 'invalid-json',
    );
  });

  it('generation_config.json: eos as number or list, sampling defaults, do_sample false is greedy', () => {
    const a = readGenerationConfig(dirWith('g1', { 'generation_config.json': { eos_token_id: [151643, 151645], temperature: 0.6, top_p: 0.95 } }));
    assert.deepEqual(a.eosTokenIds, [151643, 151645]);
    assert.deepEqual(a.defaults, { temperature: 0.6, topP: 0.95 });
    const b = readGenerationConfig(dirWith('g2', { 'generation_config.json': { eos_token_id: 7, do_sample: false, temperature: 0.6, top_k: 20 } }));
    assert.deepEqual(b.eosTokenIds, [7]);
    assert.deepEqual(b.defaults, { temperature: 0, topK: 20 });
    assert.throws(
      () => readGenerationConfig(dirWith('g3', { 'generation_config.json': { eos_token_id: 'eos' } })),
      (e: unknown) => e instanceof ModelError && e.code === 'invalid-field' && /eos_token_id/.test(e.message),
    );
    assert.throws(
      () => readGenerationConfig(dirWith('g4', { 'generation_config.json': { top_p: 3 } })),
      (e: unknown) => e instanceof ModelError && /top_p/.test(e.message),
    );
  });

  it('generation_config.json is optional', () => {
    const g = readGenerationConfig(dirWith('nogen', {}));
    assert.equal(g.present, false);
    assert.deepEqual(g.eosTokenIds, []);
  });

  it('lists the variants present in onnx/', () => {
    const dir = dirWith('variants', { 'onnx/model.onnx': 'x', 'onnx/model_q4.onnx': 'x', 'onnx/model_q4.onnx_data': 'x', 'onnx/other.onnx': 'x' });
    assert.deepEqual([...listVariants(dir).keys()].sort(), ['fp32', 'q4']);
    assert.equal(variantFileName('fp32'), 'model.onnx');
    assert.equal(variantFileName('q4f16'), 'model_q4f16.onnx');
    assert.equal(listVariants(join(tmp, 'absent')).size, 0);
  });
});

/** genai_config.json as onnxruntime-genai's builder writes it for R1-Distill-Qwen-1.5B, CPU int4. */
const GENAI_1_5B = {
  model: {
    bos_token_id: 151646,
    context_length: 131072,
    decoder: {
      session_options: { log_id: 'onnxruntime-genai', provider_options: [] },
      filename: 'model.onnx',
      head_size: 128,
      hidden_size: 1536,
      inputs: { input_ids: 'input_ids', attention_mask: 'attention_mask', past_key_names: 'past_key_values.%d.key', past_value_names: 'past_key_values.%d.value' },
      outputs: { logits: 'logits', present_key_names: 'present.%d.key', present_value_names: 'present.%d.value' },
      num_attention_heads: 12,
      num_hidden_layers: 28,
      num_key_value_heads: 2,
    },
    eos_token_id: 151643,
    pad_token_id: 151643,
    type: 'qwen2',
    vocab_size: 151936,
  },
  search: { do_sample: true, early_stopping: true, max_length: 131072, min_length: 0, num_beams: 1, num_return_sequences: 1, past_present_share_buffer: true, temperature: 0.6, top_k: 1, top_p: 0.95 },
};

describe('the genai layout (genai_config.json)', () => {
  before(() => {
    tmp = mkdtempSync(join(tmpdir(), 'r1-genai-'));
  });
  after(() => rmSync(tmp, { recursive: true, force: true }));

  it('reads the architecture, the ids, the model file, the names and the search defaults from genai_config.json alone', () => {
    const dir = dirWith('cpu', { 'genai_config.json': GENAI_1_5B, 'model.onnx': 'x' });
    assert.equal(folderLayout(dir), 'genai');
    const f = readModelFolder(dir);
    assert.equal(f.layout, 'genai');
    assert.equal(f.config.numHiddenLayers, 28);
    assert.equal(f.config.headDim, 128);
    assert.equal(f.config.numKeyValueHeads, 2);
    assert.equal(f.config.maxPositionEmbeddings, 131072);
    assert.deepEqual(f.config.eosTokenIds, [151643]);
    assert.equal(f.config.bosTokenId, 151646);
    // top_k 1 is the builder's constant, not the model's: it is not taken (it would make every answer greedy).
    assert.deepEqual(f.generation, { eosTokenIds: [151643], defaults: { temperature: 0.6, topP: 0.95 }, present: true });
    assert.deepEqual([...f.variants], [['q4', join(dir, 'model.onnx')]]);
    assert.equal(f.names.pastKey, 'past_key_values.%d.key');
    assert.equal(f.names.positionIds, 'position_ids', 'the default name, for graphs that have the input');
  });

  it('calls a model the builder made for a GPU q4f16 (fp16 activations)', () => {
    const gpu = { ...GENAI_1_5B, model: { ...GENAI_1_5B.model, decoder: { ...GENAI_1_5B.model.decoder, session_options: { log_id: 'onnxruntime-genai', provider_options: [{ cuda: { enable_cuda_graph: '0' } }] } } } };
    assert.deepEqual([...readModelFolder(dirWith('gpu', { 'genai_config.json': gpu, 'model.onnx': 'x' })).variants.keys()], ['q4f16']);
  });

  it('names genai_config.json and the field in its errors', () => {
    const { head_size: _drop, ...decoder } = GENAI_1_5B.model.decoder;
    void _drop;
    assert.throws(
      () => readModelFolder(dirWith('nohead', { 'genai_config.json': { ...GENAI_1_5B, model: { ...GENAI_1_5B.model, decoder } }, 'model.onnx': 'x' })),
      (e: unknown) => e instanceof ModelError && e.file === join(tmp, 'nohead', 'genai_config.json') && /model\.decoder\.head_size/.test(e.message),
    );
    assert.throws(
      () => readModelFolder(dirWith('llama', { 'genai_config.json': { ...GENAI_1_5B, model: { ...GENAI_1_5B.model, type: 'phi3' } }, 'model.onnx': 'x' })),
      (e: unknown) => e instanceof ModelError && /model\.type is "phi3"/.test(e.message),
    );
    assert.throws(
      () => readModelFolder(dirWith('escape', { 'genai_config.json': { ...GENAI_1_5B, model: { ...GENAI_1_5B.model, decoder: { ...GENAI_1_5B.model.decoder, filename: '../../etc/passwd' } } } })),
      (e: unknown) => e instanceof ModelError && /filename/.test(e.message),
    );
  });

  it('says which file is missing when genai_config.json names a model that is not there', () => {
    const dir = dirWith('nofile', { 'genai_config.json': GENAI_1_5B });
    assert.throws(
      () => readModelFolder(dir),
      (e: unknown) => e instanceof ModelError && e.code === 'missing-file' && e.file === join(dir, 'model.onnx') && /names the model file model\.onnx/.test(e.message),
    );
  });
});

describe('validateSignature', () => {
  const cfg: ModelConfigSummary = {
    modelType: 'qwen2',
    hiddenSize: 1536,
    numHiddenLayers: 2,
    numAttentionHeads: 12,
    numKeyValueHeads: 2,
    headDim: 128,
    vocabSize: 151936,
    maxPositionEmbeddings: 131072,
  };
  const t = (name: string, type: string, shape: Array<number | string>): ValueMetadataLike => ({ name, isTensor: true, type, shape });

  function graph(opts: { kv?: string; logits?: string; layers?: number; kvShape?: Array<number | string> } = {}) {
    const kv = opts.kv ?? 'float32';
    const layers = opts.layers ?? 2;
    const kvShape = opts.kvShape ?? ['batch_size', 2, 'past_sequence_length', 128];
    const inputs = [t('input_ids', 'int64', ['b', 's']), t('attention_mask', 'int64', ['b', 't']), t('position_ids', 'int64', ['b', 's'])];
    const outputs = [t('logits', opts.logits ?? 'float32', ['b', 's', 151936])];
    for (let i = 0; i < layers; i++) {
      for (const k of ['key', 'value']) {
        inputs.push(t(`past_key_values.${i}.${k}`, kv, kvShape));
        outputs.push(t(`present.${i}.${k}`, kv, kvShape));
      }
    }
    return { inputs, outputs };
  }

  it('accepts the real layout and reports dims and dtypes', () => {
    const g = graph({ kv: 'float16', logits: 'float16' });
    const s = validateSignature('m.onnx', g.inputs, g.outputs, cfg);
    assert.equal(s.numLayers, 2);
    assert.equal(s.kvHeads, 2);
    assert.equal(s.headDim, 128);
    assert.equal(s.kvDtype, 'float16');
    assert.equal(s.logitsDtype, 'float16');
    assert.equal(s.inputs.length, 7);
  });

  it('accepts symbolic KV dims (taking the config values)', () => {
    const g = graph({ kvShape: ['b', 'h', 'p', 'd'] });
    const s = validateSignature('m.onnx', g.inputs, g.outputs, cfg);
    assert.equal(s.kvHeads, 2);
    assert.equal(s.headDim, 128);
  });

  const rejects = (g: { inputs: ValueMetadataLike[]; outputs: ValueMetadataLike[] }, re: RegExp) =>
    assert.throws(
      () => validateSignature('m.onnx', g.inputs, g.outputs, cfg),
      (e: unknown) => e instanceof ModelError && e.code === 'signature-mismatch' && e.file === 'm.onnx' && re.test(e.message),
    );

  it('accepts a graph without position_ids (GroupQueryAttention takes the positions from the mask), and says it is not fed', () => {
    const g = graph();
    assert.equal(validateSignature('m.onnx', g.inputs, g.outputs, cfg).feedsPositionIds, true);
    g.inputs = g.inputs.filter((x) => x.name !== 'position_ids');
    const s = validateSignature('m.onnx', g.inputs, g.outputs, cfg);
    assert.equal(s.feedsPositionIds, false);
    assert.deepEqual(s.pastNames.slice(0, 2), ['past_key_values.0.key', 'past_key_values.0.value']);
    assert.deepEqual(s.presentNames.slice(-1), ['present.1.value']);
  });

  it('takes the names from genai_config.json when they differ', () => {
    const names = { ...DEFAULT_NAMES, pastKey: 'past.%d.k', pastValue: 'past.%d.v', presentKey: 'kv.%d.k', presentValue: 'kv.%d.v', logits: 'scores' };
    const rename = (n: string) => n.replace(/^past_key_values\.(\d+)\.key$/, 'past.$1.k').replace(/^past_key_values\.(\d+)\.value$/, 'past.$1.v').replace(/^present\.(\d+)\.key$/, 'kv.$1.k').replace(/^present\.(\d+)\.value$/, 'kv.$1.v').replace(/^logits$/, 'scores');
    const g = graph();
    const renamed = { inputs: g.inputs.map((x) => ({ ...x, name: rename(x.name) })), outputs: g.outputs.map((x) => ({ ...x, name: rename(x.name) })) };
    const s = validateSignature('m.onnx', renamed.inputs, renamed.outputs, cfg, names);
    assert.deepEqual(s.pastNames, ['past.0.k', 'past.0.v', 'past.1.k', 'past.1.v']);
    assert.deepEqual(s.presentNames, ['kv.0.k', 'kv.0.v', 'kv.1.k', 'kv.1.v']);
    assert.throws(() => validateSignature('m.onnx', g.inputs, g.outputs, cfg, names), /unexpected input 'past_key_values\.0\.key'|no past\.\*\.k/);
  });

  it('rejects what does not match', () => {
    let g = graph();
    g.outputs = g.outputs.filter((x) => x.name !== 'present.1.value');
    rejects(g, /no output 'present\.1\.value'/);

    g = graph();
    g.outputs = g.outputs.map((x) => (x.name === 'logits' ? { ...x, name: 'lm_logits' } : x));
    rejects(g, /output 'lm_logits' where 'logits' was expected/);

    g = graph();
    g.inputs = g.inputs.map((x) => (x.name === 'input_ids' ? t('input_ids', 'int32', ['b', 's']) : x));
    rejects(g, /'input_ids' is int32; int64 was expected/);

    g = graph();
    g.outputs = g.outputs.map((x) => (x.name === 'present.0.key' ? t('present.0.key', 'float16', ['b', 2, 't', 128]) : x));
    rejects(g, /'present\.0\.key' is float16 but input 'past_key_values\.0\.key' is float32/);

    rejects(graph({ layers: 3 }), /config\.json says 2 layers, the graph has 3/);
    rejects(graph({ layers: 0 }), /no past_key_values/);
    rejects(graph({ kvShape: ['b', 4, 'p', 128] }), /4 key\/value heads|has 4/);
    rejects(graph({ kv: 'int8' }), /int8; float32 or float16 was expected/);

    g = graph();
    g.inputs.push(t('token_type_ids', 'int64', ['b', 's']));
    rejects(g, /unexpected input 'token_type_ids'/);
  });
});
