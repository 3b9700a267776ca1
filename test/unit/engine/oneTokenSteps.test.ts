/**
 * Graphs that take one token at a time once their cache holds some (onnxruntime-genai's
 * MultiHeadAttention export, whose causal mask only works for an empty cache or a single token):
 * the decoder finds out at load and then runs prompts in one piece and later tokens one by one.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import * as ort from 'onnxruntime-node';
import { DEFAULT_NAMES, kvNames } from '../../../src/engine/modelFolder';
import { DecoderSession, STEPWISE_REUSE_LIMIT } from '../../../src/engine/session';
import type { GraphSignature } from '../../../src/engine/types';

const VOCAB = 8;
const KV = 1;
const HD = 2;

function signature(): GraphSignature {
  const { past, present } = kvNames(DEFAULT_NAMES, 1);
  const kv = (name: string, len: string) => ({ name, dtype: 'float32', shape: ['batch', KV, len, HD] });
  return {
    inputs: [
      { name: 'input_ids', dtype: 'int64', shape: ['batch', 'seq'] },
      { name: 'attention_mask', dtype: 'int64', shape: ['batch', 'total'] },
      { name: 'position_ids', dtype: 'int64', shape: ['batch', 'seq'] },
      ...past.map((n) => kv(n, 'past')),
    ],
    outputs: [{ name: 'logits', dtype: 'float32', shape: ['batch', 'seq', VOCAB] }, ...present.map((n) => kv(n, 'total'))],
    numLayers: 1,
    kvHeads: KV,
    headDim: HD,
    kvDtype: 'float32',
    logitsDtype: 'float32',
    names: { ...DEFAULT_NAMES },
    pastNames: past,
    presentNames: present,
    feedsPositionIds: true,
    feedsLogitCount: false,
  };
}

/**
 * A decoder on host tensors whose present.* hold each token id as its row, and whose logits at
 * each position favour (token + 1) % VOCAB. With `oneTokenAfterPast` it fails as the builder's MHA
 * graph does when a run has more than one token and the cache is not empty.
 */
class HostSession {
  /** [past length, tokens in the run] of every run. */
  readonly runs: Array<[number, number]> = [];
  constructor(private readonly oneTokenAfterPast: boolean) {}
  async run(feeds: Record<string, ort.Tensor>): Promise<Record<string, ort.Tensor>> {
    const ids = Array.from(feeds.input_ids!.data as BigInt64Array, Number);
    const past = feeds['past_key_values.0.key']!;
    const pastLen = past.dims[2]!;
    this.runs.push([pastLen, ids.length]);
    if (this.oneTokenAfterPast && pastLen > 0 && ids.length > 1) {
      throw new Error(`Non-zero status code returned while running Expand node. Name:'/model/attn_mask_reformat/input_ids_subgraph/Expand' Status Message: invalid expand shape`);
    }
    const logits = new Float32Array(ids.length * VOCAB);
    ids.forEach((id, r) => (logits[r * VOCAB + ((id + 1) % VOCAB)] = 1));
    const rows = new Float32Array((pastLen + ids.length) * HD);
    rows.set((past.data as Float32Array).subarray(0, pastLen * HD));
    ids.forEach((id, r) => rows.fill(id, (pastLen + r) * HD, (pastLen + r + 1) * HD));
    const present = new ort.Tensor('float32', rows, [1, KV, pastLen + ids.length, HD]);
    return { logits: new ort.Tensor('float32', logits, [1, ids.length, VOCAB]), 'present.0.key': present, 'present.0.value': present };
  }
  async release(): Promise<void> {}
}

function decoderOn(oneTokenAfterPast: boolean): { d: DecoderSession; s: HostSession } {
  const s = new HostSession(oneTokenAfterPast);
  return { d: new DecoderSession(s as unknown as ort.InferenceSession, signature(), VOCAB), s };
}

const ids = (n: number, from = 0) => Array.from({ length: n }, (_, i) => (from + i) % VOCAB);

describe('graphs that take one token at a time once the cache holds some', () => {
  it('the probe tells them apart, says what ONNX Runtime said, and leaves the cache empty', async () => {
    const capable = decoderOn(false);
    assert.equal(await capable.d.probeMultiTokenSteps(3), undefined);
    assert.equal(capable.d.multiTokenSteps, true);
    const oneByOne = decoderOn(true);
    assert.match((await oneByOne.d.probeMultiTokenSteps(3)) ?? '', /invalid expand shape/);
    assert.equal(oneByOne.d.multiTokenSteps, false);
    assert.equal(oneByOne.d.pastLength, 0);
  });

  it('a prompt runs in one piece whatever the chunk size, and only from an empty cache', async () => {
    const { d, s } = decoderOn(true);
    await d.probeMultiTokenSteps(3);
    s.runs.length = 0;
    const logits = await d.prefill(ids(600), 256);
    assert.deepEqual(s.runs, [[0, 600]]);
    assert.equal(logits.indexOf(1), (ids(600)[599]! + 1) % VOCAB, 'the last position\'s logits');
    assert.equal(d.pastLength, 600);
  });

  it('several tokens after a cached one run one at a time, in order, and the last one\'s logits come back', async () => {
    const { d, s } = decoderOn(true);
    await d.probeMultiTokenSteps(3);
    await d.forward([5]);
    s.runs.length = 0;
    const logits = await d.forward([1, 2, 6]); // e.g. a sampled token and the thinking budget's "</think>\n\n"
    assert.deepEqual(s.runs, [[1, 1], [2, 1], [3, 1]]);
    assert.equal(logits.indexOf(1), 7);
    assert.deepEqual(Array.from(d.cacheData()).filter((_, i) => i % HD === 0), [5, 1, 2, 6], 'the cache holds the tokens in order');
  });

  it('a follow-up keeps the cached prefix only when a few tokens follow it', async () => {
    const { d, s } = decoderOn(true);
    await d.probeMultiTokenSteps(3);
    const first = ids(100);
    await d.prefill(first, 256);
    const short = [...first, ...ids(STEPWISE_REUSE_LIMIT, 3)];
    assert.equal(d.startSequence(short), 100);
    s.runs.length = 0;
    await d.prefill(short.slice(100), 256);
    assert.equal(s.runs.length, STEPWISE_REUSE_LIMIT);
    assert.ok(s.runs.every(([, n]) => n === 1));
    const long = [...first, ...ids(STEPWISE_REUSE_LIMIT + 1, 4)];
    assert.equal(d.startSequence(long), 0, 'computing the prompt again beats that many single steps');
    assert.equal(d.pastLength, 0);
  });

  it('a capable graph keeps chunked prefill', async () => {
    const { d, s } = decoderOn(false);
    await d.probeMultiTokenSteps(3);
    s.runs.length = 0;
    await d.prefill(ids(600), 256);
    assert.deepEqual(s.runs, [[0, 256], [256, 256], [512, 88]]);
  });
});
