/**
 * The prepared CPU model: MatMulNBits nodes get accuracy_level 4 in a streamed copy, the copy is
 * reused, everything else is byte-identical, the logits stay close to the source's, and the engine
 * loads the copy on the CPU unless told not to.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { onnx } from 'onnx-proto';
import * as ort from 'onnxruntime-node';
import { buildBenchModel } from '../../../bench/model';
import { GraphBuilder, f32 } from '../../fixtures/onnx/graph';
import { R1Engine } from '../../../src/engine/engine';
import { type ValueMetadataLike, readModelConfig, validateSignature } from '../../../src/engine/modelFolder';
import { countUnpreparedNodes } from '../../../src/engine/graph/plan';
import { defaultPrepareCacheDir, prepareModelForCpu } from '../../../src/engine/graph/prepare';
import { KV_NEW_ROWS_DIM, LOGIT_COUNT_INPUT } from '../../../src/engine/graph/rewrites';
import { DecoderSession } from '../../../src/engine/session';
import { attentionShapeOf, sameLogits } from '../../../src/engine/graph/check';

let modelDir: string;
let source: string;
let nodes: number;
const cacheDir = mkdtempSync(join(tmpdir(), 'r1-prepare-test-'));

before(async () => {
  const { dir, manifest } = await buildBenchModel({ shape: 'tiny' });
  modelDir = dir;
  source = join(dir, manifest.file);
  nodes = manifest.matMulNBitsNodes;
});

after(async () => {
  await rm(cacheDir, { recursive: true, force: true });
});

/** The logits of the last `count` positions of `ids` run from an empty cache, [count × vocab]. */
async function lastLogits(file: string, ids: number[], count = 1): Promise<Float32Array> {
  const s = await ort.InferenceSession.create(file, { executionProviders: ['cpu'], intraOpNumThreads: 1 });
  try {
    const n = ids.length;
    const feeds: Record<string, ort.Tensor> = {
      input_ids: new ort.Tensor('int64', BigInt64Array.from(ids.map(BigInt)), [1, n]),
      attention_mask: new ort.Tensor('int64', new BigInt64Array(n).fill(1n), [1, n]),
      position_ids: new ort.Tensor('int64', BigInt64Array.from(ids.map((_, i) => BigInt(i))), [1, n]),
    };
    if (s.inputNames.includes(LOGIT_COUNT_INPUT)) feeds[LOGIT_COUNT_INPUT] = new ort.Tensor('int64', BigInt64Array.of(BigInt(count)), [1]);
    const meta = JSON.parse(readFileSync(join(modelDir, 'config.json'), 'utf8')) as Record<string, number>;
    const hd = meta.hidden_size! / meta.num_attention_heads!;
    for (const name of s.inputNames) {
      if (name.startsWith('past_key_values.')) feeds[name] = new ort.Tensor('float32', new Float32Array(0), [1, meta.num_key_value_heads!, 0, hd]);
    }
    const out = await s.run(feeds);
    const logits = out.logits!;
    const v = logits.dims[2]!;
    const data = logits.data as Float32Array;
    return data.slice(data.length - count * v); // a prepared graph returns the last `count` positions only
  } finally {
    await s.release();
  }
}

/** A DecoderSession on `file`; `onRun` sees the feeds of every session.run. */
async function openDecoder(file: string, onRun?: (feeds: Record<string, ort.Tensor>) => void): Promise<DecoderSession> {
  const config = readModelConfig(modelDir);
  const s = await ort.InferenceSession.create(file, { executionProviders: ['cpu'], intraOpNumThreads: 1 });
  if (onRun) {
    const run = s.run.bind(s);
    (s as { run: unknown }).run = (feeds: Record<string, ort.Tensor>, ...rest: unknown[]) => {
      onRun(feeds);
      return (run as (...a: unknown[]) => unknown)(feeds, ...rest);
    };
  }
  const sig = validateSignature(file, s.inputMetadata as unknown as ValueMetadataLike[], s.outputMetadata as unknown as ValueMetadataLike[], config);
  return new DecoderSession(s, sig, config.vocabSize);
}

function graphOf(file: string): onnx.GraphProto {
  return onnx.ModelProto.decode(readFileSync(file)).graph as onnx.GraphProto;
}

function accuracyLevels(file: string): Array<number | undefined> {
  return graphOf(file)
    .node.filter((n) => n.opType === 'MatMulNBits')
    .map((n) => {
      const a = (n.attribute ?? []).find((x) => x.name === 'accuracy_level');
      return a ? Number(a.i) : undefined;
    });
}

describe('prepareModelForCpu', () => {
  it('rewrites every MatMulNBits node without accuracy_level, and only those bytes', async () => {
    assert.equal(await countUnpreparedNodes(source), nodes);
    assert.ok(accuracyLevels(source).every((l) => l === undefined), 'the bench model leaves accuracy_level unset, as the public export');
    const r = await prepareModelForCpu(source, { cacheDir: join(cacheDir, 'level-only'), lastLogits: false, kvNewRows: false, fuseMatMuls: false });
    assert.equal(r.prepared, true);
    assert.equal(r.reused, false);
    assert.equal(r.rewrittenNodes, nodes);
    assert.ok(r.file.startsWith(cacheDir));
    assert.equal(r.lastLogits, false);
    assert.equal(r.kvNewRows, false);
    assert.deepEqual(accuracyLevels(r.file), new Array<number>(nodes).fill(4));
    assert.equal(await countUnpreparedNodes(r.file), 0);
    // Same model apart from the attribute: initializers byte-identical, same node order.
    const a = graphOf(source);
    const b = graphOf(r.file);
    assert.deepEqual(b.node.map((n) => n.name), a.node.map((n) => n.name));
    assert.equal(b.initializer.length, a.initializer.length);
    for (let i = 0; i < a.initializer.length; i++) {
      assert.equal(b.initializer[i]!.name, a.initializer[i]!.name);
      assert.ok(Buffer.from(b.initializer[i]!.rawData ?? []).equals(Buffer.from(a.initializer[i]!.rawData ?? [])));
    }
    // Each added attribute is a few bytes.
    const grown = statSync(r.file).size - statSync(source).size;
    assert.ok(grown > 0 && grown < nodes * 40, `grew by ${grown} bytes`);
  });

  it('by default also computes logits for the last position only and returns only the new KV rows', async () => {
    const r = await prepareModelForCpu(source, { cacheDir });
    assert.equal(r.lastLogits, true);
    assert.equal(r.kvNewRows, true);
    const s = await ort.InferenceSession.create(r.file);
    try {
      const meta = s.outputMetadata as unknown as Array<{ name: string; shape: Array<number | string> }>;
      assert.deepEqual(meta.find((m) => m.name === 'logits')!.shape, ['batch_size', LOGIT_COUNT_INPUT, 151936]);
      assert.equal(meta.find((m) => m.name === 'present.1.value')!.shape[2], KV_NEW_ROWS_DIM);
      assert.ok(s.inputNames.includes(LOGIT_COUNT_INPUT));
    } finally {
      await s.release();
    }
    // r1_logit_count = 3: the logits of the last three positions, those the source computes there.
    const ids = [151646, 9707, 11, 1879, 0, 42];
    const v = 151936;
    const three = await lastLogits(r.file, ids, 3);
    assert.equal(three.length, 3 * v);
    const all = await lastLogits(source, ids, ids.length);
    const want = all.subarray(all.length - 3 * v);
    let worst = 0;
    let scale = 0;
    for (let i = 0; i < want.length; i++) {
      worst = Math.max(worst, Math.abs(three[i]! - want[i]!));
      scale = Math.max(scale, Math.abs(want[i]!));
    }
    assert.ok(worst / scale < 0.05, `the three rows match the source's last three (int8 compute): ${worst} of ${scale}`);
    assert.ok(Math.abs(three[0]! - three[v]!) + Math.abs(three[v]! - three[2 * v]!) > 0, 'three different positions');
  });

  it('engine-kept KV slots give the same logits as the export\'s present.* hand-off', async () => {
    const slotted = await openDecoder((await prepareModelForCpu(source, { cacheDir })).file);
    // Same fusion on both sides: int8 rounding of activations can flip between differently fused graphs.
    const plain = await openDecoder((await prepareModelForCpu(source, { cacheDir: join(cacheDir, 'level-fused'), lastLogits: false, kvNewRows: false })).file);
    try {
      assert.deepEqual(plain.cacheDims(), [1, 2, 0, 32]);
      assert.deepEqual(slotted.cacheDims(), [1, 2, 0, 32]);
      const ids = Array.from({ length: 300 }, (_, i) => (i * 7919) % 151643);
      // Chunks that cross the slot capacity step (256), then single-token decode steps.
      const steps = [ids.slice(0, 100), ids.slice(100, 290), ...ids.slice(290).map((t) => [t])];
      let worst = 0;
      for (const chunk of steps) {
        const a = await plain.forward(chunk);
        const b = await slotted.forward(chunk);
        for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i]! - b[i]!));
      }
      assert.equal(slotted.pastLength, 300);
      assert.deepEqual(slotted.cacheDims(), [1, 2, 300, 32]);
      assert.ok(worst < 1e-4, `largest logit difference ${worst}`);
      // A new sequence after reset starts from an empty cache.
      slotted.reset();
      plain.reset();
      const a = await plain.forward(ids.slice(0, 5));
      const b = await slotted.forward(ids.slice(0, 5));
      assert.ok(a.every((x, i) => Math.abs(x - b[i]!) < 1e-4));
      // ... and does not keep attending over the capacity the long sequence grew (kv 2 x 256 slots x 32).
      assert.equal(slotted.cacheData().length, 2 * 256 * 32);
    } finally {
      await slotted.release();
      await plain.release();
    }
  });

  it('feeds a prefill chunk only the cached rows as past: no attention over empty slots', async () => {
    const file = (await prepareModelForCpu(source, { cacheDir })).file;
    const masks: bigint[][] = [];
    const d = await openDecoder(file, (feeds) => masks.push(Array.from(feeds.attention_mask!.data as BigInt64Array)));
    try {
      const ids = Array.from({ length: 513 }, (_, i) => (i * 104729) % 151643);
      await d.forward(ids.slice(0, 256));
      await d.forward(ids.slice(256, 512));
      await d.forward(ids.slice(512));
      // [past slots | new rows]: the first chunk has no past, the second exactly the 256 cached
      // rows; the decode step after 512 rows sees them all, none masked.
      assert.deepEqual(masks.map((m) => m.length), [256, 256 + 256, 512 + 1]);
      assert.ok(masks.every((m) => m.every((v) => v === 1n)), 'no masked (empty) slot was attended over');
      // Capacity then grows in steps: the next step attends over the empty rest of the new step.
      await d.forward([ids[0]!]);
      assert.equal(masks[3]!.length, 768 + 1);
      assert.equal(masks[3]!.filter((v) => Number(v) === 0).length, 768 - 513);
    } finally {
      await d.release();
    }
  });

  it('keeps the KV rows of the prefix a new prompt shares with the previous sequence, and only those', async () => {
    const file = (await prepareModelForCpu(source, { cacheDir })).file;
    const fed: number[] = [];
    const reusing = { d: await openDecoder(file, (feeds) => fed.push(feeds.input_ids!.dims[1]!)), fed };
    const fresh = { d: await openDecoder(file) };
    try {
      const ids = (n: number, seed: number) => Array.from({ length: n }, (_, i) => (i * 7919 + seed * 104729) % 151643);
      const first = ids(300, 1);
      // A first request: its prompt, then three generated tokens.
      assert.equal(reusing.d.startSequence(first), 0);
      await reusing.d.prefill(first, 256);
      for (const t of [11, 12, 13]) await reusing.d.forward([t]);
      // A follow-up shares the first 300 tokens, then differs (as a next turn's prompt does).
      const follow = [...first, ...ids(40, 2)];
      reusing.fed.length = 0;
      assert.equal(reusing.d.startSequence(follow), 300);
      const got = (await reusing.d.prefill(follow.slice(300), 256)).slice();
      assert.deepEqual(reusing.fed, [40], 'only the 40 new prompt tokens were run');
      assert.equal(reusing.d.pastLength, 340);
      // Same logits as a fresh sequence over the whole follow-up, run in the same chunks.
      assert.equal(fresh.d.startSequence(follow), 0);
      await fresh.d.prefill(first, 256);
      const want = await fresh.d.forward(follow.slice(300));
      const worst = got.reduce((m, x, i) => Math.max(m, Math.abs(x - want[i]!)), 0);
      assert.ok(worst < 1e-4, `largest logit difference ${worst}`);
      // The whole prompt cached: the last token still runs, for its logits.
      assert.equal(reusing.d.startSequence(follow), 339);
      // A prompt that differs from the first token keeps nothing.
      assert.equal(reusing.d.startSequence(ids(10, 3)), 0);
      assert.equal(reusing.d.pastLength, 0);
    } finally {
      await reusing.d.release();
      await fresh.d.release();
    }
  });

  it('fuses q/k/v and gate/up into wider MatMulNBits nodes with the same logits', async () => {
    const unfused = await prepareModelForCpu(source, { cacheDir: join(cacheDir, 'unfused'), fuseMatMuls: false });
    const fused = await prepareModelForCpu(source, { cacheDir: join(cacheDir, 'fused') });
    assert.deepEqual(unfused.fusedMatMuls, { from: 0, to: 0 });
    // Tiny bench shape: 2 layers; per layer q, k, v → 1 and gate, up → 1. o, down and lm_head stay.
    assert.deepEqual(fused.fusedMatMuls, { from: 10, to: 4 });
    const g = graphOf(fused.file);
    const mm = g.node.filter((n) => n.opType === 'MatMulNBits');
    assert.equal(mm.length, nodes - 6);
    const widths = mm.map((n) => Number(n.attribute!.find((a) => a.name === 'N')!.i)).sort((a, b) => a - b);
    // q (128) + k (64) + v (64) = 256; gate + up = 2 x 384; o 128, down 128, lm_head 151936.
    assert.deepEqual(widths, [128, 128, 128, 128, 256, 256, 768, 768, 151936]);
    // The replaced weights are gone from the file, not kept beside the fused ones.
    assert.equal(g.initializer.filter((t) => /_Q4$|_scales$/.test(t.name ?? '')).length, 2 * 5);
    assert.ok(Math.abs(statSync(fused.file).size - statSync(unfused.file).size) < 4096);
    const ids = [151646, 151644, 9707, 11, 1879, 0, 3555, 151645, 151648, 198];
    const a = await lastLogits(unfused.file, ids);
    const b = await lastLogits(fused.file, ids);
    const diffs = a.map((x, i) => Math.abs(x - b[i]!)).sort();
    const maxAbs = a.reduce((m, x) => Math.max(m, Math.abs(x)), 0);
    // Same arithmetic per output column; the only possible difference is a summation-order ulp
    // flipping the int8 rounding of a later activation. A wrong concatenation or split order
    // would change every logit.
    assert.ok(diffs[Math.floor(diffs.length * 0.99)]! < 1e-4, `99th percentile difference ${diffs[Math.floor(diffs.length * 0.99)]}`);
    assert.ok(diffs[diffs.length - 1]! < 0.05 * maxAbs, `largest difference ${diffs[diffs.length - 1]}`);
  });

  it('fuses only MatMulNBits whose weights it can concatenate safely', async () => {
    // x feeds seven MatMulNBits: three with their own raw weights (fusable), two that share one
    // weight tensor, one whose scales are stored as float_data instead of raw bytes, and one whose
    // weight is also a graph output.
    const g = new GraphBuilder('fuse-rules');
    const K = 64;
    const x = g.input('x', 'float32', [1, K]);
    let seed = 7;
    const bytes = (n: number) => Uint8Array.from({ length: n }, () => (seed = (seed * 1103515245 + 12345) % 2147483648) >>> 23);
    const weight = (name: string, N: number) => g.init(name, { dtype: 'uint8', dims: [N, K / 32, 16], raw: bytes(N * (K / 32) * 16) });
    const scales = (name: string, N: number) => g.init(name, f32(Array.from({ length: N * (K / 32) }, (_, i) => 0.01 + 0.001 * (i % 7)), [N * (K / 32)]));
    const mm = (w: string, s: string, N: number) => g.op('MatMulNBits', [x, w, s], { K, N, bits: 4, block_size: 32 }, { domain: 'com.microsoft' });
    const shared = weight('shared_Q4', 16);
    const outs = [
      mm(weight('a_Q4', 16), scales('a_scales', 16), 16),
      mm(weight('b_Q4', 48), scales('b_scales', 48), 48),
      mm(shared, scales('c_scales', 16), 16),
      mm(shared, scales('d_scales', 16), 16),
      mm(weight('e_Q4', 16), scales('e_scales', 16), 16),
      mm(weight('f_Q4', 16), scales('f_scales', 16), 16),
      mm(weight('g_Q4', 16), scales('g_scales', 16), 16),
    ];
    outs.forEach((o, i) => g.output(`y${i}`, 'float32', [1, i === 1 ? 48 : 16], o));
    // g's weight is also a graph output: it must stay in the file as it is.
    g.output('g_Q4', 'uint8', [16, K / 32, 16]);
    const model = onnx.ModelProto.decode(g.encode());
    const e = model.graph!.initializer!.find((t) => t.name === 'e_scales')!;
    e.floatData = Array.from(new Float32Array(Uint8Array.from(e.rawData!).buffer));
    delete (e as { rawData?: Uint8Array }).rawData;
    const file = join(cacheDir, 'fuse-rules.onnx');
    writeFileSync(file, onnx.ModelProto.encode(model).finish());
    const r = await prepareModelForCpu(file, { cacheDir: join(cacheDir, 'fuse-rules') });
    assert.deepEqual(r.fusedMatMuls, { from: 3, to: 1 });
    const fusedNode = graphOf(r.file).node.find((n) => n.opType === 'MatMulNBits' && n.name!.startsWith('r1_fused'))!;
    assert.equal(Number(fusedNode.attribute!.find((a) => a.name === 'N')!.i), 80);
    const feeds = { x: new ort.Tensor('float32', Float32Array.from({ length: K }, (_, i) => Math.sin(i)), [1, K]) };
    const run = async (f: string) => {
      const s = await ort.InferenceSession.create(f, { executionProviders: ['cpu'], intraOpNumThreads: 1 });
      try {
        return await s.run(feeds);
      } finally {
        await s.release();
      }
    };
    const level4 = await run((await prepareModelForCpu(file, { cacheDir: join(cacheDir, 'fuse-rules-off'), fuseMatMuls: false })).file);
    const fusedOut = await run(r.file);
    assert.deepEqual(fusedOut.g_Q4!.data, level4.g_Q4!.data);
    for (let i = 0; i < outs.length; i++) {
      const a = level4[`y${i}`]!.data as Float32Array;
      const b = fusedOut[`y${i}`]!.data as Float32Array;
      assert.equal(b.length, a.length);
      assert.ok(a.every((v, j) => Math.abs(v - b[j]!) < 1e-5), `y${i} differs`);
    }
  });

  it('reuses the prepared copy on the next call', async () => {
    const first = await prepareModelForCpu(source, { cacheDir });
    const again = await prepareModelForCpu(source, { cacheDir });
    assert.equal(again.file, first.file);
    assert.equal(again.reused, true);
  });

  it('leaves a model alone when every node already has an accuracy level', async () => {
    const prepared = (await prepareModelForCpu(source, { cacheDir })).file;
    const r = await prepareModelForCpu(prepared, { cacheDir: join(cacheDir, 'second') });
    assert.equal(r.prepared, false);
    assert.equal(r.file, prepared);
    assert.match(r.reason ?? '', /no MatMulNBits/);
  });

  it('falls back to the source with a reason when the cache folder cannot be created', async () => {
    const blocker = join(cacheDir, 'a-file');
    writeFileSync(blocker, 'not a folder');
    const r = await prepareModelForCpu(source, { cacheDir: join(blocker, 'sub') });
    assert.equal(r.prepared, false);
    assert.equal(r.file, source);
    assert.match(r.reason ?? '', /cannot create/);
  });

  it('keeps logits at accuracy level 4 close to level 0 (int8 compute vs float32)', async () => {
    const prepared = (await prepareModelForCpu(source, { cacheDir })).file;
    const ids = [151646, 151644, 9707, 11, 1879, 0, 3555, 374, 220, 17, 10, 17, 30, 151645, 151648, 198];
    const ref = await lastLogits(source, ids);
    const q8 = await lastLogits(prepared, ids);
    let maxDiff = 0;
    let maxAbs = 0;
    for (let i = 0; i < ref.length; i++) {
      maxDiff = Math.max(maxDiff, Math.abs(ref[i]! - q8[i]!));
      maxAbs = Math.max(maxAbs, Math.abs(ref[i]!));
    }
    console.log(`# largest logit difference, level 4 vs level 0: ${maxDiff.toExponential(3)} (largest |logit| ${maxAbs.toFixed(3)})`);
    // The level really changed the computation, and only by int8 rounding of the activations.
    assert.ok(maxDiff > 0, 'accuracy_level 4 must change the arithmetic');
    assert.ok(maxDiff < 0.05 * maxAbs, `difference ${maxDiff} too large for logits up to ${maxAbs}`);
  });
});

describe('the attention rewrite (GroupQueryAttention), kept only when checked', () => {
  const config = () => readModelConfig(modelDir);
  const shapeOf = (ropeTheta = config().ropeTheta) => ({ ...attentionShapeOf(config()), ropeTheta });
  const check = (plain: string, candidate: string) => sameLogits(plain, candidate, config(), { executionProviders: ['cpu'], intraOpNumThreads: 1 });
  const ops = (file: string) => graphOf(file).node.map((n) => n.opType);

  /** Logits of every call of an engine-like schedule: chunked prefill across a slot growth, decode, a cut-back follow-up. */
  async function scheduleLogits(file: string): Promise<Float32Array[]> {
    const d = await openDecoder(file);
    try {
      const ids = (n: number, seed: number) => Array.from({ length: n }, (_, i) => (i * 7919 + seed * 104729) % 151643);
      const out: Float32Array[] = [];
      // A short request first: the next prompt then starts over on its KV slots (stale rows, masked).
      const short = ids(20, 4);
      d.startSequence(short);
      out.push((await d.forward(short)).slice());
      const first = ids(300, 5);
      assert.equal(d.startSequence(first), 0);
      for (let s = 0; s < first.length; s += 256) out.push((await d.forward(first.slice(s, s + 256))).slice());
      for (const t of [21, 22, 23, 24, 25]) out.push((await d.forward([t])).slice());
      const follow = [...first.slice(0, 150), ...ids(30, 6)];
      assert.equal(d.startSequence(follow), 150);
      out.push((await d.forward(follow.slice(150))).slice());
      for (const t of [31, 32]) out.push((await d.forward([t])).slice());
      return out;
    } finally {
      await d.release();
    }
  }

  /** The 99th percentile and the largest difference of each call's logits, relative to its largest logit; undefined when `got` is not as long. */
  const logitDiffs = (want: Float32Array[], got: Float32Array[]) =>
    want.map((w, k) => {
      const diffs = w.map((x, i) => Math.abs(x - got[k]![i]!)).sort();
      const maxAbs = w.reduce((m, x) => Math.max(m, Math.abs(x)), 0);
      return { p99: diffs[Math.floor(diffs.length * 0.99)]! / maxAbs, max: diffs[diffs.length - 1]! / maxAbs };
    });

  function assertSameLogits(want: Float32Array[], got: Float32Array[]): void {
    assert.equal(got.length, want.length);
    logitDiffs(want, got).forEach((d, k) => {
      // Only the attention's summation order differs, and with it, now and then, the int8 rounding
      // of a later activation (at accuracy level 0 the two copies agree to 1e-6; at level 4 this
      // model's differences reach 0.3 % of the largest logit). A rope base off by 20 % already
      // moves the 99th percentile by 2–4 %.
      assert.ok(d.p99 < 0.01, `call ${k}: 99th percentile difference ${d.p99} of the largest logit`);
      assert.ok(d.max < 0.02, `call ${k}: largest difference ${d.max} of the largest logit`);
    });
  }

  /** Every node of a graph and of its If branches. */
  const allNodes = (g: onnx.IGraphProto): onnx.INodeProto[] => (g.node ?? []).flatMap((n) => [n, ...(n.attribute ?? []).flatMap((a) => (a.g ? allNodes(a.g) : []))]);
  const branchOps = (n: onnx.INodeProto, branch: 'then_branch' | 'else_branch') => (n.attribute?.find((a) => a.name === branch)?.g?.node ?? []).map((x) => x.opType);

  /** Logits of every position of passes over 6, 17 and 18 new tokens after 600 cached ones (as prompt lookup checks drafts). */
  async function passLogits(file: string): Promise<Float32Array[]> {
    const d = await openDecoder(file);
    try {
      const ids = (n: number, seed: number) => Array.from({ length: n }, (_, i) => (i * 7919 + seed * 104729) % 151643);
      const prompt = ids(600, 7);
      d.startSequence(prompt);
      await d.forward(prompt);
      const out: Float32Array[] = [];
      for (const n of [6, 17, 18]) {
        out.push((await d.forward(ids(n, n), n)).slice());
        d.truncate(prompt.length);
      }
      return out;
    } finally {
      await d.release();
    }
  }

  it('replaces every layer\'s attention by one GroupQueryAttention node with the same logits', async () => {
    const plain = await prepareModelForCpu(source, { cacheDir: join(cacheDir, 'attn-plain'), attention: false, attentionShape: shapeOf(), verify: check });
    const fused = await prepareModelForCpu(source, { cacheDir: join(cacheDir, 'attn'), attentionShape: shapeOf(), verify: check, decodeAttention: false });
    assert.equal(plain.attentionLayers, 0);
    assert.equal(fused.attentionLayers, config().numHiddenLayers);
    assert.equal(fused.attentionRejected, undefined);
    const g = graphOf(fused.file);
    assert.equal(ops(fused.file).filter((o) => o === 'GroupQueryAttention').length, config().numHiddenLayers);
    // The export's attention is gone: no softmax, no rotary tables computed from position_ids.
    for (const gone of ['Softmax', 'Cos', 'Sin', 'Range', 'Where']) assert.ok(!ops(fused.file).includes(gone), `${gone} left in the graph`);
    // Nothing dead stays in the file: every initializer is read by a node.
    const read = new Set(g.node.flatMap((n) => n.input ?? []));
    assert.deepEqual(g.initializer.filter((t) => !read.has(t.name!)).map((t) => t.name), []);
    // Only the checked copy is left in its folder (the reference copy is removed).
    assert.deepEqual(readdirSync(join(cacheDir, 'attn')).sort(), [basename(fused.file), `${basename(fused.file)}.steps.json`]);
    assert.deepEqual(
      fused.steps?.map((s) => [s.step, s.applied]),
      [['int8 compute', true], ['last-position logits', true], ['new KV rows only', true], ['fused matrix products', true], ['fused attention', true], ['decode attention', false]],
    );
    assertSameLogits(await scheduleLogits(plain.file), await scheduleLogits(fused.file));
  });

  it('reads the KV cache in place for decode passes over 512 or more cached tokens (an If around each GroupQueryAttention), with the same logits', async () => {
    const plain = await prepareModelForCpu(source, { cacheDir: join(cacheDir, 'attn-plain'), attention: false, attentionShape: shapeOf(), verify: check });
    const r = await prepareModelForCpu(source, { cacheDir: join(cacheDir, 'attn-decode'), attentionShape: shapeOf(), verify: check });
    const layers = config().numHiddenLayers;
    assert.equal(r.attentionRejected, undefined);
    assert.equal(r.attentionLayers, layers);
    assert.equal(r.decodeAttentionLayers, layers);
    assert.deepEqual(r.steps?.filter((x) => x.applied).map((x) => x.step), ['int8 compute', 'last-position logits', 'new KV rows only', 'fused matrix products', 'fused attention', 'decode attention']);
    assert.match(r.steps!.find((x) => x.step === 'decode attention')!.detail, /up to 17 tokens over 512 or more cached tokens/);
    const g = graphOf(r.file);
    const ifs = g.node.filter((n) => n.opType === 'If');
    assert.equal(ifs.length, layers);
    for (const n of ifs) {
      assert.deepEqual(branchOps(n, 'else_branch'), ['GroupQueryAttention', 'Add', 'Slice', 'Slice']);
      const then = branchOps(n, 'then_branch');
      assert.ok(!then.includes('GroupQueryAttention') && then.includes('FusedMatMul') && then.includes('Softmax') && then.includes('RotaryEmbedding'), then.join(' '));
    }
    // Nothing dead stays in the file: every initializer is read by a node, in a branch or not.
    const read = new Set(allNodes(g).flatMap((n) => n.input ?? []));
    assert.deepEqual(g.initializer.filter((t) => !read.has(t.name!)).map((t) => t.name), []);
    // Both branches against the copy without any attention rewrite: prefill chunks, decode steps
    // over 256 and 512 slots, and passes of 6, 17 (in place) and 18 tokens (GroupQueryAttention).
    assertSameLogits(await scheduleLogits(plain.file), await scheduleLogits(r.file));
    assertSameLogits(await passLogits(plain.file), await passLogits(r.file));
  });

  it('the in-place branch is what decode steps over 512 slots run: a copy whose branch scales the scores wrong differs there only', async () => {
    const plain = await prepareModelForCpu(source, { cacheDir: join(cacheDir, 'attn-plain'), attention: false, attentionShape: shapeOf(), verify: check });
    const r = await prepareModelForCpu(source, { cacheDir: join(cacheDir, 'attn-decode'), attentionShape: shapeOf(), verify: check });
    const model = onnx.ModelProto.decode(readFileSync(r.file));
    let changed = 0;
    for (const n of model.graph!.node!.filter((x) => x.opType === 'If')) {
      for (const m of n.attribute!.find((a) => a.name === 'then_branch')!.g!.node!) {
        const alpha = m.opType === 'FusedMatMul' ? m.attribute!.find((a) => a.name === 'alpha') : undefined;
        if (alpha) {
          alpha.f = Number(alpha.f) * 3;
          changed++;
        }
      }
    }
    assert.equal(changed, 2 * config().numHiddenLayers);
    const broken = join(cacheDir, 'decode-branch-broken.onnx');
    writeFileSync(broken, onnx.ModelProto.encode(model).finish());
    const d = logitDiffs(await scheduleLogits(plain.file), await scheduleLogits(broken));
    // scheduleLogits' calls: 0 a 20-token prompt, 1–2 prefill chunks of 256 and 44, 3–7 decode steps
    // over 512 slots, 8 a 30-token follow-up, 9–10 decode steps.
    const inPlace = [3, 4, 5, 6, 7, 9, 10];
    d.forEach((x, k) => {
      if (inPlace.includes(k)) assert.ok(x.p99 > 0.02, `call ${k} should run the in-place branch: ${x.p99}`);
      else assert.ok(x.p99 < 0.01, `call ${k} should run GroupQueryAttention: ${x.p99}`);
    });
  });

  it('keeps the plain copy, and says why, when the rewritten one computes something else', async () => {
    // Rotary tables for the wrong base: every position is rotated differently.
    const r = await prepareModelForCpu(source, { cacheDir: join(cacheDir, 'attn-wrong'), attentionShape: shapeOf(500), verify: check });
    assert.equal(r.prepared, true);
    assert.equal(r.attentionLayers, 0);
    assert.match(r.attentionRejected ?? '', /logits differ from the plain copy's at step \d+/);
    assert.ok(!ops(r.file).includes('GroupQueryAttention'));
    assert.deepEqual(readdirSync(join(cacheDir, 'attn-wrong')).sort(), [basename(r.file), `${basename(r.file)}.steps.json`], 'neither the rejected copy nor a temporary file is left');
    assert.match(r.steps?.find((s) => s.step === 'fused attention')?.detail ?? '', /^rewritten but not kept: /);
    // A check that cannot run counts as failed.
    const broken = await prepareModelForCpu(source, { cacheDir: join(cacheDir, 'attn-broken'), attentionShape: shapeOf(), verify: () => Promise.reject(new Error('out of memory')) });
    assert.equal(broken.attentionLayers, 0);
    assert.match(broken.attentionRejected ?? '', /the check failed to run: out of memory/);
  });

  it('refuses a rewrite whose logits are not numbers', async () => {
    const r = await prepareModelForCpu(source, { cacheDir: join(cacheDir, 'attn-nan'), attentionShape: shapeOf(Number.NaN), verify: check });
    assert.equal(r.attentionLayers, 0);
    assert.match(r.attentionRejected ?? '', /logits at step 1 of \d+ are not numbers/);
  });

  it('removes temporary copies left by a process that no longer runs, and only those', async () => {
    const dir = join(cacheDir, 'attn-stale');
    mkdirSync(dir, { recursive: true });
    const child = spawnSync(process.execPath, ['-e', '0']);
    assert.equal(child.status, 0);
    const dead = join(dir, `.tmp-${child.pid}-0000-${basename(source)}`);
    const live = join(dir, `.tmp-${process.ppid}-0000-${basename(source)}`);
    writeFileSync(dead, 'left by a killed prepare');
    writeFileSync(live, 'another process is still writing this');
    const r = await prepareModelForCpu(source, { cacheDir: dir, attentionShape: shapeOf(), verify: check });
    assert.equal(r.attentionLayers, config().numHiddenLayers);
    assert.deepEqual(readdirSync(dir).sort(), [basename(live), basename(r.file), `${basename(r.file)}.steps.json`].sort());
  });

  it('does not rewrite the attention without a check to run', async () => {
    const r = await prepareModelForCpu(source, { cacheDir: join(cacheDir, 'attn-unchecked'), attentionShape: shapeOf() });
    assert.equal(r.attentionLayers, 0);
    assert.ok(!ops(r.file).includes('GroupQueryAttention'));
  });
});

describe('R1Engine on the CPU with a q4 model', () => {
  it('loads the prepared copy by default and the source when prepareForCpu is false', async () => {
    const engine = await R1Engine.load({ modelDir, provider: 'cpu', cacheDir });
    try {
      assert.ok(engine.info.notes.some((n) => /CPU-prepared copy/.test(n)), engine.info.notes.join('\n'));
      assert.equal(engine.info.modelFile, source);
    } finally {
      await engine.dispose();
    }
    const plain = await R1Engine.load({ modelDir, provider: 'cpu', cacheDir, prepareForCpu: false });
    try {
      assert.ok(!plain.info.notes.some((n) => /prepared/.test(n)), plain.info.notes.join('\n'));
    } finally {
      await plain.dispose();
    }
  });

  it('a repeated or follow-up request reuses the cached prompt prefix and says so in its stats', async () => {
    const e = await R1Engine.load({ modelDir, provider: 'cpu', cacheDir, cpuThreads: 1 });
    try {
      const prompt = [151646, 151644, ...Array.from({ length: 60 }, (_, i) => (i * 7919) % 151643), 151645, 151648, 198];
      const opts = { temperature: 0, stopOnEos: false, maxNewTokens: 6 };
      const a = await e.generateFromIds(prompt, opts);
      assert.equal(a.status, 'length');
      assert.equal(a.stats.reusedPromptTokens, 0);
      const b = await e.generateFromIds(prompt, opts);
      assert.equal(b.stats.reusedPromptTokens, prompt.length - 1);
      assert.equal(b.reasoning + b.answer, a.reasoning + a.answer, 'the same greedy continuation');
      const c = await e.generateFromIds([...prompt.slice(0, 20), 42, 43], opts);
      assert.equal(c.stats.reusedPromptTokens, 20);
    } finally {
      await e.dispose();
    }
  });

  it('really runs the prepared copy: its logits are those of the level-4 file, not the source', async () => {
    const ids = [151646, 151644, 9707, 151645, 151648, 198];
    const e = await R1Engine.load({ modelDir, provider: 'cpu', cacheDir, cpuThreads: 1 });
    let got: Float32Array;
    try {
      got = (await e.decoder.forward(ids)).slice();
    } finally {
      await e.dispose();
    }
    // The engine's copy is the only one of this source left in the folder (older ones are removed).
    const copies = readdirSync(cacheDir).filter((n) => n.endsWith(`-${basename(source)}`) && !n.startsWith('.tmp-'));
    assert.equal(copies.length, 1, copies.join(', '));
    const prepared = join(cacheDir, copies[0]!);
    const diff = (a: Float32Array, b: Float32Array) => a.reduce((m, x, i) => Math.max(m, Math.abs(x - b[i]!)), 0);
    assert.ok(diff(got, await lastLogits(prepared, ids)) < 1e-5);
    assert.ok(diff(got, await lastLogits(source, ids)) > 1e-4);
  });

  it('uses the user cache folder by default', () => {
    assert.match(defaultPrepareCacheDir({ XDG_CACHE_HOME: '/x/cache' }, 'linux'), /^\/x\/cache\/r1-coder\/prepared$/);
    assert.match(defaultPrepareCacheDir({ LOCALAPPDATA: 'C:\\Users\\u\\AppData\\Local' }, 'win32'), /r1-coder.prepared$/);
  });
});
