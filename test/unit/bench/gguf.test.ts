/**
 * The benchmark's GGUF writer (bench/gguf.ts, bench/ggufModel.ts): ggml's block quantizations on
 * known numbers, a tiny Qwen2 file that @huggingface/gguf parses with the right metadata, tensor
 * names, shapes, types and offsets (its data read back), and that llama.cpp (node-llama-cpp, the
 * benchmark's contender) loads and decodes greedily, the same tokens twice. No speed is asserted.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, openSync, readSync, closeSync, statSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { gguf } from '@huggingface/gguf';
import {
  BLOCK,
  GgmlType,
  GGUF_ALIGNMENT,
  dequantize,
  dequantizeQ4_0,
  quantize,
  quantizeQ4_0,
  tensorBytes,
  writeGguf,
  u32,
  str,
} from '../../../bench/gguf';
import { type GgufFileType, type GgufShape, useMoreBits, weightType, writeQwen2Gguf } from '../../../bench/ggufModel';
import { type ContenderParams, runContender } from '../../../bench/contender';
import { DEFAULT_SEED, SHAPES, buildBenchModel } from '../../../bench/model';
import { seededQwen2Weights } from '../../fixtures/onnx/weights';
import { BOS_TOKEN, EOS_TOKEN, R1_CHAT_TEMPLATE } from '../../fixtures/tokenizer';
import { VOCAB_SIZE } from '../../fixtures/models';

const dir = mkdtempSync(join(tmpdir(), 'r1-gguf-test-'));
after(() => rm(dir, { recursive: true, force: true }));

/** 2 layers, hidden 64 (Q4_0; the K-quants fall back as llama-quantize's do). */
const TINY: GgufShape = { hiddenSize: 64, intermediateSize: 128, numLayers: 2, numHeads: 4, numKvHeads: 2, vocabSize: VOCAB_SIZE, ropeTheta: 10000, rmsNormEps: 1e-6, maxPositionEmbeddings: 4096 };
/** Rows of 256 values, so Q4_K_M writes real Q4_K and Q6_K blocks. */
const TINY_K: GgufShape = { ...TINY, hiddenSize: 256, intermediateSize: 512 };
const SEED = 99;

describe('ggml block quantization', () => {
  it('Q4_0 stores fp16 d = (largest-magnitude value) / −8 and nibbles q = x/d + 8, low nibbles for the first 16 values', () => {
    // Largest magnitude −4 → d = 0.5; every value a multiple of 0.5 in [−4, 3.5]: exact.
    const x = new Float32Array(32);
    for (let j = 0; j < 32; j++) x[j] = ((j % 16) - 8) * 0.5; // −4 … 3.5, twice
    x[16] = 3.5;
    x[15] = 0;
    const b = quantizeQ4_0(x);
    assert.equal(b.length, 18);
    assert.equal(b[0]! | (b[1]! << 8), 0x3800, 'd = 0.5 as fp16');
    assert.equal(b[2], 0 | (15 << 4), 'byte 0: value 0 (−4 → 0) low, value 16 (3.5 → 15) high');
    assert.equal(b[3], 1 | (1 << 4), 'byte 1: values 1 and 17 (−3.5 → 1)');
    assert.equal(b[2 + 15], 8 | (15 << 4), 'byte 15: values 15 (0 → 8) and 31 (3.5 → 15)');
    assert.deepEqual(Array.from(dequantizeQ4_0(b, 32)), Array.from(x));
  });

  it('Q4_0 of a positive maximum: d is negative, the maximum maps to 0 and zero to 8', () => {
    const x = new Float32Array(32);
    x[3] = 8; // d = −1
    x[20] = -7;
    const b = quantizeQ4_0(x);
    const out = dequantizeQ4_0(b, 32);
    assert.equal(out[3], 8);
    assert.equal(out[20], -7);
    assert.ok(out[0] === 0);
    assert.equal(b[2 + 3]! & 0x0f, 0);
  });

  it('every type round-trips random rows within its step', () => {
    let s = 7;
    const rnd = () => ((s = (Math.imul(s, 1103515245) + 12345) >>> 0) / 2 ** 32) * 2 - 1;
    const x = Float32Array.from({ length: 1024 }, () => rnd() * 0.3);
    // The largest error, as a share of the largest magnitude: half a step (a whole one on Q4_0's and
    // Q5_0's positive side, whose largest level is 7 and 15 steps while the scale is set by 8 and 16).
    const bounds: [GgmlType, number][] = [
      [GgmlType.F32, 0],
      [GgmlType.F16, 1e-3],
      [GgmlType.Q8_0, 0.6 / 127],
      [GgmlType.Q4_0, 1.01 / 8],
      [GgmlType.Q5_0, 1.01 / 16],
      [GgmlType.Q4_K, 1.5 / 15],
      [GgmlType.Q6_K, 1.2 / 32],
    ];
    for (const [type, bound] of bounds) {
      const b = quantize(type, x);
      assert.equal(b.length, tensorBytes({ dims: [1024], type }), GgmlType[type]);
      const y = dequantize(type, b, x.length);
      let worst = 0;
      for (let i = 0; i < x.length; i++) worst = Math.max(worst, Math.abs(y[i]! - x[i]!));
      assert.ok(worst <= bound * 0.3 + 1e-7, `${GgmlType[type]}: largest error ${worst} over ${bound * 0.3}`);
    }
    assert.equal(BLOCK[GgmlType.Q4_0].bytes, 18);
    assert.equal(BLOCK[GgmlType.Q4_K].bytes, 144);
    assert.equal(BLOCK[GgmlType.Q6_K].bytes, 210);
  });
});

describe("llama-quantize's tensor types", () => {
  it('Q4_K_M: Q6_K for attn_v and ffn_down in 14 of 28 layers and for output.weight, Q4_K elsewhere', () => {
    const picked = Array.from({ length: 28 }, (_, i) => i).filter((i) => useMoreBits(i, 28));
    assert.deepEqual(picked, [0, 1, 2, 5, 8, 11, 14, 17, 20, 23, 24, 25, 26, 27]);
    assert.equal(weightType('Q4_K_M', 'blk.5.attn_v.weight', 1536, 5, 28), GgmlType.Q6_K);
    assert.equal(weightType('Q4_K_M', 'blk.4.attn_v.weight', 1536, 4, 28), GgmlType.Q4_K);
    assert.equal(weightType('Q4_K_M', 'blk.4.ffn_down.weight', 8960, 4, 28), GgmlType.Q4_K);
    assert.equal(weightType('Q4_K_M', 'blk.4.attn_q.weight', 1536, 4, 28), GgmlType.Q4_K);
    assert.equal(weightType('Q4_K_M', 'output.weight', 1536, -1, 28), GgmlType.Q6_K);
    assert.equal(weightType('Q4_K_M', 'blk.4.attn_q.weight', 64, 4, 28), GgmlType.Q5_0, 'rows not a multiple of 256');
  });

  it('Q4_0: Q4_0 everywhere but output.weight (Q6_K, or Q8_0 for short rows)', () => {
    assert.equal(weightType('Q4_0', 'token_embd.weight', 1536, -1, 28), GgmlType.Q4_0);
    assert.equal(weightType('Q4_0', 'blk.0.attn_v.weight', 1536, 0, 28), GgmlType.Q4_0);
    assert.equal(weightType('Q4_0', 'output.weight', 1536, -1, 28), GgmlType.Q6_K);
    assert.equal(weightType('Q4_0', 'output.weight', 64, -1, 2), GgmlType.Q8_0);
  });
});

describe('a tiny Qwen2 GGUF', () => {
  const files: Partial<Record<string, string>> = {};
  before(async () => {
    for (const [name, shape, type] of [
      ['q4_0', TINY, 'Q4_0'],
      ['q4_k_m', TINY_K, 'Q4_K_M'],
    ] as const) {
      files[name] = join(dir, `${name}.gguf`);
      await writeQwen2Gguf(files[name]!, shape, type as GgufFileType, SEED, 'tiny test model');
    }
  });

  it('parses with @huggingface/gguf: metadata, tokenizer, tensor names, shapes, types and aligned offsets', async () => {
    const file = files.q4_0!;
    const { metadata: m, tensorInfos, tensorDataOffset } = await gguf(file, { allowLocalFile: true });
    const md = m as unknown as Record<string, unknown>;
    assert.equal(md.version, 3);
    assert.equal(md['general.architecture'], 'qwen2');
    assert.equal(md['general.file_type'], 2);
    assert.equal(md['general.alignment'], 32);
    assert.equal(md['general.quantization_version'], 2);
    assert.equal(md['qwen2.block_count'], 2);
    assert.equal(md['qwen2.embedding_length'], 64);
    assert.equal(md['qwen2.feed_forward_length'], 128);
    assert.equal(md['qwen2.attention.head_count'], 4);
    assert.equal(md['qwen2.attention.head_count_kv'], 2);
    assert.equal(md['qwen2.context_length'], 4096);
    assert.equal(md['qwen2.rope.freq_base'], 10000);
    assert.ok(Math.abs((md['qwen2.attention.layer_norm_rms_epsilon'] as number) - 1e-6) < 1e-12);
    assert.equal(md['tokenizer.ggml.model'], 'gpt2');
    assert.equal(md['tokenizer.ggml.pre'], 'deepseek-r1-qwen');
    const tokens = md['tokenizer.ggml.tokens'] as string[];
    const types = md['tokenizer.ggml.token_type'] as number[];
    assert.equal(tokens.length, VOCAB_SIZE);
    assert.equal(types.length, VOCAB_SIZE);
    assert.equal(tokens[151646], BOS_TOKEN);
    assert.equal(tokens[151643], EOS_TOKEN);
    assert.equal(tokens[151648], '<think>');
    assert.equal(tokens[151935], '[PAD151935]');
    assert.equal(types[0], 1, 'normal');
    assert.equal(types[151646], 3, 'bos is a control token');
    assert.equal(types[151644], 3, '<｜User｜> looks special: control');
    assert.equal(types[151648], 4, '<think> is user-defined');
    assert.equal(types[151935], 5, 'padding is unused');
    const merges = md['tokenizer.ggml.merges'] as string[];
    assert.equal(merges.length, 151387);
    assert.equal(merges[0], 'Ġ Ġ');
    assert.equal(md['tokenizer.ggml.bos_token_id'], 151646);
    assert.equal(md['tokenizer.ggml.eos_token_id'], 151643);
    assert.equal(md['tokenizer.ggml.add_bos_token'], true);
    assert.equal(md['tokenizer.chat_template'], R1_CHAT_TEMPLATE);

    const byName = new Map(tensorInfos.map((t) => [t.name, t]));
    assert.equal(tensorInfos.length, 1 + 2 * 12 + 2);
    const expect = (name: string, shape: number[], dtype: GgmlType) => {
      const t = byName.get(name);
      assert.ok(t, `${name} is there`);
      assert.deepEqual(t.shape.map(Number), shape, `${name} shape`);
      assert.equal(Number(t.dtype), dtype, `${name} type`);
      assert.equal(Number(t.offset) % GGUF_ALIGNMENT, 0, `${name} offset aligned`);
    };
    expect('token_embd.weight', [64, VOCAB_SIZE], GgmlType.Q4_0);
    for (const b of ['blk.0', 'blk.1']) {
      expect(`${b}.attn_norm.weight`, [64], GgmlType.F32);
      expect(`${b}.attn_q.weight`, [64, 64], GgmlType.Q4_0);
      expect(`${b}.attn_q.bias`, [64], GgmlType.F32);
      expect(`${b}.attn_k.weight`, [64, 32], GgmlType.Q4_0);
      expect(`${b}.attn_k.bias`, [32], GgmlType.F32);
      expect(`${b}.attn_v.weight`, [64, 32], GgmlType.Q4_0);
      expect(`${b}.attn_v.bias`, [32], GgmlType.F32);
      expect(`${b}.attn_output.weight`, [64, 64], GgmlType.Q4_0);
      expect(`${b}.ffn_norm.weight`, [64], GgmlType.F32);
      expect(`${b}.ffn_gate.weight`, [64, 128], GgmlType.Q4_0);
      expect(`${b}.ffn_up.weight`, [64, 128], GgmlType.Q4_0);
      expect(`${b}.ffn_down.weight`, [128, 64], GgmlType.Q4_0);
    }
    expect('output_norm.weight', [64], GgmlType.F32);
    expect('output.weight', [64, VOCAB_SIZE], GgmlType.Q8_0);
    assert.equal(Number(tensorDataOffset) % GGUF_ALIGNMENT, 0);

    // The data read back at its offsets is the model's weights (HF rows are ggml rows).
    const w = seededQwen2Weights(TINY, SEED);
    const read = (name: string) => {
      const t = byName.get(name)!;
      const n = t.shape.reduce((a, b) => a * Number(b), 1);
      const bytes = new Uint8Array(tensorBytes({ dims: [n], type: Number(t.dtype) as GgmlType }));
      const fd = openSync(file, 'r');
      readSync(fd, bytes, 0, bytes.length, Number(tensorDataOffset + t.offset));
      closeSync(fd);
      return dequantize(Number(t.dtype) as GgmlType, bytes, n);
    };
    assert.deepEqual(Array.from(read('blk.1.attn_k.bias')), Array.from(w.layers[1]!.kBias.values()));
    const k = read('blk.1.attn_k.weight');
    const want = w.layers[1]!.k.rowsAt(0, 32);
    assert.deepEqual(Array.from(k), Array.from(dequantizeQ4_0(quantizeQ4_0(want), want.length)));
    let worst = 0;
    for (let i = 0; i < want.length; i++) worst = Math.max(worst, Math.abs(k[i]! - want[i]!));
    assert.ok(worst < (2 / 8) * 0.6, `blk.1.attn_k.weight within a Q4_0 step of the weights (${worst})`);
    // The last tensor ends where the file does (padded to the alignment).
    const last = tensorInfos.reduce((a, t) => (t.offset > a.offset ? t : a));
    const lastBytes = tensorBytes({ dims: last.shape.map(Number), type: Number(last.dtype) as GgmlType });
    assert.equal(statSync(file).size, Math.ceil((Number(tensorDataOffset + last.offset) + lastBytes) / 32) * 32);
  });

  it('Q4_K_M at rows of 256: Q4_K and Q6_K tensors where llama-quantize puts them', async () => {
    const { metadata, tensorInfos } = await gguf(files.q4_k_m!, { allowLocalFile: true });
    assert.equal((metadata as unknown as Record<string, unknown>)['general.file_type'], 15);
    const type = (name: string) => Number(tensorInfos.find((t) => t.name === name)!.dtype);
    assert.equal(type('token_embd.weight'), GgmlType.Q4_K);
    assert.equal(type('blk.0.attn_q.weight'), GgmlType.Q4_K);
    assert.equal(type('blk.0.attn_v.weight'), GgmlType.Q4_K, 'use_more_bits(0, 2) is false');
    assert.equal(type('blk.1.attn_v.weight'), GgmlType.Q6_K);
    assert.equal(type('blk.0.ffn_down.weight'), GgmlType.Q4_K);
    assert.equal(type('blk.1.ffn_down.weight'), GgmlType.Q6_K);
    assert.equal(type('output.weight'), GgmlType.Q6_K);
  });

  it('writes metadata only files too (general.alignment added when absent)', async () => {
    const file = join(dir, 'empty.gguf');
    writeGguf(file, [['general.architecture', str('qwen2')], ['x.count', u32(7)]], []);
    const { metadata, tensorInfos } = await gguf(file, { allowLocalFile: true });
    const md = metadata as unknown as Record<string, unknown>;
    assert.equal(md['x.count'], 7);
    assert.equal(md['general.alignment'], 32);
    assert.equal(tensorInfos.length, 0);
  });

  it('llama.cpp (node-llama-cpp) loads each file and decodes greedy tokens, the same on two runs', async () => {
    const nlc = await import('node-llama-cpp');
    const llama = await nlc.getLlama({ gpu: false, build: 'never', logLevel: nlc.LlamaLogLevel.error });
    try {
      for (const [name, file] of Object.entries(files)) {
        const model = await llama.loadModel({ modelPath: file!, gpuLayers: 0 });
        assert.equal(model.tokens.bos, 151646);
        assert.equal(model.tokens.eos, 151643);
        // The real tokenizer: text round-trips, and <think> is one token.
        assert.equal(model.detokenize(model.tokenize('def f(x):\n    return x  # ok')), 'def f(x):\n    return x  # ok');
        assert.deepEqual(Array.from(model.tokenize('<think>', true)), [151648]);
        // One thread: llama.cpp's threads spin at every barrier, which a loaded machine (parallel tests) punishes.
        const context = await model.createContext({ contextSize: 256, threads: 1 });
        const sequence = context.getSequence();
        const run = async () => {
          await sequence.clearHistory();
          const out: number[] = [];
          const prompt = Array.from({ length: 24 }, (_, i) => (i * 7919) % 151643);
          for await (const t of sequence.evaluate(prompt as never[], { temperature: 0, yieldEogToken: true })) {
            out.push(t as unknown as number);
            if (out.length === 16) break;
          }
          return out;
        };
        const a = await run();
        const b = await run();
        assert.equal(a.length, 16, `${name}: 16 tokens`);
        assert.ok(a.every((t) => Number.isInteger(t) && t >= 0 && t < VOCAB_SIZE), `${name}: token ids in the vocabulary`);
        assert.deepEqual(b, a, `${name}: greedy decoding is deterministic`);
        await context.dispose();
        await model.dispose();
      }
    } finally {
      await llama.dispose();
    }
  });

  it("in float32 it computes the ONNX model: llama.cpp's greedy tokens equal the bare ONNX Runtime loop's on the fp32 bench model of the same weights", async () => {
    const { dir: modelDir } = await buildBenchModel({ layout: 'onnx-community', variant: 'fp32', shape: 'tiny', outDir: join(dir, 'onnx-fp32') });
    const file = join(dir, 'f32.gguf');
    await writeQwen2Gguf(file, SHAPES.tiny, 'F32', DEFAULT_SEED);
    const common: Omit<ContenderParams, 'kind'> = {
      modelDir,
      layout: 'onnx-community',
      variant: 'fp32',
      argmaxVocab: 151665,
      provider: 'cpu',
      promptLengths: [16],
      decodePrompt: 64,
      newTokens: 8,
      seed: DEFAULT_SEED,
      prefillChunkSize: 256,
      cacheDir: join(dir, 'prepared'),
      cpuThreads: 1,
    };
    const bare = await runContender({ ...common, kind: 'bare-ort' });
    const llama = await runContender({ ...common, kind: 'llama.cpp', gguf: file });
    assert.equal(llama.tokens.length, 8);
    assert.deepEqual(llama.tokens, bare.tokens);
  });
});
