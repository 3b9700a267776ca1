/**
 * Broken model folders: each gives its own ModelError naming the file, what is wrong and what
 * to do, and the process keeps going (a good folder still loads afterwards).
 */
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { onnx } from 'onnx-proto';
import * as ort from 'onnxruntime-node';
import { R1Engine, modelFileError } from '../../../src/engine/engine';
import { ModelError, type ModelErrorCode } from '../../../src/engine/errors';
import { FIXTURES_DIR, buildScriptedModel, ensureFixture } from '../../fixtures/models';

let tmp: string;
let base: string;

/** A copy of the small scripted fixture (2 layers), with edits. */
function folder(name: string, edit?: (dir: string) => void): string {
  const dir = join(tmp, name);
  copyTree(base, dir);
  edit?.(dir);
  return dir;
}

function copyTree(from: string, to: string): void {
  mkdirSync(to, { recursive: true });
  for (const n of readdirSync(from)) {
    if (n.startsWith('.')) continue;
    const p = join(from, n);
    if (statSync(p).isDirectory()) copyTree(p, join(to, n));
    else copyFileSync(p, join(to, n));
  }
}

function editJson(file: string, f: (j: Record<string, unknown>) => void): void {
  const j = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
  f(j);
  writeFileSync(file, JSON.stringify(j));
}

async function expectModelError(
  dir: string,
  code: ModelErrorCode,
  checks: { file?: RegExp; message: RegExp },
  opts: { variant?: 'q4' | 'fp16' } = {},
): Promise<ModelError> {
  let caught: unknown;
  try {
    const e = await R1Engine.load({ modelDir: dir, provider: 'cpu', ...opts });
    await e.dispose();
  } catch (e) {
    caught = e;
  }
  assert.ok(caught instanceof ModelError, `expected a ModelError, got ${String(caught)}`);
  assert.equal(caught.code, code, caught.message);
  assert.match(caught.message, checks.message);
  if (checks.file) assert.match(caught.file ?? '', checks.file);
  assert.ok(caught.hint.length > 10, 'says what to do');
  assert.ok(!caught.message.includes('\n'), 'one line');
  return caught;
}

describe('bad model folders', () => {
  before(async () => {
    tmp = mkdtempSync(join(tmpdir(), 'r1-bad-'));
    base = join(FIXTURES_DIR, 'runtime-scripted-2layers');
    await buildScriptedModel(base, { numLayers: 2 });
  });
  after(() => rmSync(tmp, { recursive: true, force: true }));

  it('a folder that does not exist', async () => {
    await expectModelError(join(tmp, 'nope'), 'missing-file', { message: /model folder does not exist/, file: /nope$/ });
  });

  it('tokenizer.json missing', async () => {
    const dir = folder('no-tokenizer', (d) => rmSync(join(d, 'tokenizer.json')));
    await expectModelError(dir, 'missing-file', { file: /tokenizer\.json$/, message: /missing/ });
  });

  it('config.json missing', async () => {
    const dir = folder('no-config', (d) => rmSync(join(d, 'config.json')));
    await expectModelError(dir, 'missing-file', { file: /config\.json$/, message: /config\.json is missing/ });
  });

  it('config.json with invalid JSON', async () => {
    const dir = folder('bad-json', (d) => writeFileSync(join(d, 'config.json'), '{"model_type": "qwen2", "hidden_size": 15'));
    await expectModelError(dir, 'invalid-json', { file: /config\.json$/, message: /not valid JSON/ });
  });

  it('generation_config.json with invalid JSON', async () => {
    const dir = folder('bad-gen-json', (d) => writeFileSync(join(d, 'generation_config.json'), '{"eos_token_id": [151643,'));
    await expectModelError(dir, 'invalid-json', { file: /generation_config\.json$/, message: /not valid JSON/ });
  });

  it('a config field of the wrong type', async () => {
    const dir = folder('bad-field', (d) => editJson(join(d, 'config.json'), (j) => (j.num_hidden_layers = 'two')));
    await expectModelError(dir, 'invalid-field', { file: /config\.json$/, message: /"num_hidden_layers" must be a positive integer/ });
  });

  it('a model of an architecture outside the R1 family', async () => {
    const dir = folder('phi3', (d) => editJson(join(d, 'config.json'), (j) => (j.model_type = 'phi3')));
    await expectModelError(dir, 'invalid-field', { message: /model_type is "phi3"; R1 Coder runs the R1 family's architectures \(model_type "qwen2", "llama", "qwen3"/ });
  });

  it('a truncated .onnx file', async () => {
    const dir = folder('truncated', (d) => {
      const f = join(d, 'onnx', 'model_q4.onnx');
      const bytes = readFileSync(f);
      writeFileSync(f, bytes.subarray(0, Math.floor(bytes.length * 0.6)));
    });
    await expectModelError(dir, 'unreadable-file', { file: /model_q4\.onnx$/, message: /truncated; download it again/ });
  });

  it('an empty .onnx file', async () => {
    const dir = folder('empty-onnx', (d) => writeFileSync(join(d, 'onnx', 'model_q4.onnx'), ''));
    await expectModelError(dir, 'unreadable-file', { file: /model_q4\.onnx$/, message: /empty/ });
  });

  it('no onnx/ files at all', async () => {
    const dir = folder('no-onnx', (d) => rmSync(join(d, 'onnx'), { recursive: true }));
    await expectModelError(dir, 'no-variant', { message: /no ONNX model file/ });
  });

  it('a requested variant that is absent', async () => {
    const dir = folder('variant', () => undefined);
    await expectModelError(dir, 'missing-file', { file: /model_fp16\.onnx$/, message: /variant "fp16" was requested.*present: q4/ }, { variant: 'fp16' });
  });

  it('a graph whose input is misnamed', async () => {
    const dir = join(tmp, 'renamed');
    await buildScriptedModel(dir, { numLayers: 2, mutate: { renameInput: ['input_ids', 'input_idz'] } });
    await expectModelError(dir, 'signature-mismatch', {
      file: /model_q4\.onnx$/,
      message: /graph has input 'input_idz' where 'input_ids' was expected/,
    });
  });

  it('a graph with another layer count than config.json', async () => {
    const dir = join(tmp, 'layers');
    await buildScriptedModel(dir, { numLayers: 2, mutate: { graphLayers: 3 } });
    await expectModelError(dir, 'signature-mismatch', { message: /config\.json says 2 layers, the graph has 3/ });
  });

  it('config.json num_key_value_heads contradicting the graph', async () => {
    const dir = folder('kv-heads', (d) => editJson(join(d, 'config.json'), (j) => (j.num_key_value_heads = 4)));
    await expectModelError(dir, 'signature-mismatch', { message: /config\.json says 4 key\/value heads \(num_key_value_heads\), the graph's 'past_key_values\.0\.key' has 2/ });
  });

  it('config.json head size contradicting the graph', async () => {
    const dir = folder('head-dim', (d) => editJson(join(d, 'config.json'), (j) => (j.head_dim = 64)));
    await expectModelError(dir, 'signature-mismatch', { message: /head size of 64, the graph's 'past_key_values\.0\.key' has 128/ });
  });

  it('config.json vocab_size contradicting the graph', async () => {
    const dir = folder('vocab', (d) => editJson(join(d, 'config.json'), (j) => (j.vocab_size = 152064)));
    await expectModelError(dir, 'signature-mismatch', { message: /vocab_size 152064, the graph's logits have 151936/ });
  });

  it('an unavailable provider asked for explicitly', async () => {
    let caught: unknown;
    try {
      await R1Engine.load({ modelDir: base, provider: 'coreml' });
    } catch (e) {
      caught = e;
    }
    assert.ok(caught instanceof ModelError);
    assert.equal(caught.code, 'provider-unavailable');
    assert.match(caught.message, /"coreml" cannot run here/);
  });

  it('after all of these the process still loads and runs a good model', async () => {
    const engine = await R1Engine.load({ modelDir: await ensureFixture('scripted'), provider: 'cpu' });
    const r = await engine.generate({ kind: 'ask', question: 'hi', context: {} }, { temperature: 0, maxNewTokens: 8 });
    assert.equal(r.status, 'length');
    await engine.dispose();
  });

  describe('external weight files (a real ONNX Runtime load of a small model with external data)', () => {
    let dir: string;
    const n = 256;
    before(() => {
      dir = join(tmp, 'external');
      mkdirSync(dir, { recursive: true });
      const w = onnx.TensorProto.create({
        name: 'w',
        dataType: 1,
        dims: [n],
        dataLocation: 1,
        externalData: [
          { key: 'location', value: 'model_q4.onnx_data' },
          { key: 'offset', value: '0' },
          { key: 'length', value: String(n * 4) },
        ],
      });
      const tensor = (name: string) =>
        onnx.ValueInfoProto.create({ name, type: { tensorType: { elemType: 1, shape: { dim: [{ dimValue: n }] } } } });
      const model = onnx.ModelProto.create({
        irVersion: 8,
        opsetImport: [{ domain: '', version: 17 }],
        graph: { name: 'g', initializer: [w], node: [{ opType: 'Add', input: ['x', 'w'], output: ['y'] }], input: [tensor('x')], output: [tensor('y')] },
      });
      writeFileSync(join(dir, 'model_q4.onnx'), onnx.ModelProto.encode(model).finish());
    });

    async function loadError(): Promise<unknown> {
      try {
        const s = await ort.InferenceSession.create(join(dir, 'model_q4.onnx'));
        await s.release();
        return undefined;
      } catch (e) {
        return e;
      }
    }

    it('loads when the data file is complete', async () => {
      writeFileSync(join(dir, 'model_q4.onnx_data'), Buffer.alloc(n * 4));
      assert.equal(await loadError(), undefined);
    });

    it('a missing data file is missing-file naming it', async () => {
      rmSync(join(dir, 'model_q4.onnx_data'), { force: true });
      const e = modelFileError(join(dir, 'model_q4.onnx'), await loadError());
      assert.equal(e.code, 'missing-file');
      assert.match(e.file ?? '', /model_q4\.onnx_data$/);
      assert.match(e.hint, /Download model_q4\.onnx_data/);
    });

    it('a truncated data file is unreadable-file naming it', async () => {
      writeFileSync(join(dir, 'model_q4.onnx_data'), Buffer.alloc(n * 2));
      const e = modelFileError(join(dir, 'model_q4.onnx'), await loadError());
      assert.equal(e.code, 'unreadable-file');
      assert.match(e.file ?? '', /model_q4\.onnx_data$/);
      assert.match(e.message, /truncated; download it again/);
    });
  });
});
