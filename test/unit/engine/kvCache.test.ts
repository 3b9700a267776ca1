/**
 * The KV cache path against a single run over the whole sequence: step-by-step decoding and
 * chunked prefill must give the same last-position logits as one run with an empty past.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { R1Engine } from '../../../src/engine/engine';
import { ensureFixture } from '../../fixtures/models';

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i]! - b[i]!);
    if (!(d <= m)) m = Number.isNaN(d) ? Infinity : d;
  }
  return m;
}

function maxAbs(a: Float32Array): number {
  let m = 0;
  for (const x of a) m = Math.max(m, Math.abs(x));
  return m;
}

const TEXT = 'function add(a: number, b: number) { return a + b; } // adds two numbers, then the caller prints the sum';

for (const [fixture, tol] of [
  ['tiny-qwen2', 1e-4],
  // float16 KV cache: each cached value is rounded to fp16 (relative error 2^-11) in one path
  // and not in the other, so the logits agree to fp16 precision only.
  ['tiny-qwen2-f16kv', 2e-3],
] as const) {
  describe(`KV cache on ${fixture}`, () => {
    let engine: R1Engine;
    let ids: number[];
    before(async () => {
      engine = await R1Engine.load({ modelDir: await ensureFixture(fixture), provider: 'cpu' });
      ids = engine.tokenizer.encode(TEXT);
      assert.ok(ids.length >= 20, `expected a prompt of at least 20 tokens, got ${ids.length}`);
    });
    after(async () => engine.dispose());

    async function fullForward(n: number): Promise<Float32Array> {
      engine.decoder.reset();
      return Float32Array.from(await engine.decoder.forward(ids.slice(0, n)));
    }

    it('a new sequence keeps the cached rows of the prefix it shares with the previous one', async () => {
      const d = engine.decoder;
      assert.equal(d.startSequence(ids), 0);
      await d.forward(ids.slice(0, 12));
      for (const t of ids.slice(12, 15)) await d.forward([t]);
      // A prompt that shares the first 12 tokens, then goes on differently.
      const other = [...ids.slice(0, 12), ...ids.slice(0, 6)];
      assert.equal(d.startSequence(other), 12);
      assert.equal(d.pastLength, 12);
      assert.equal(d.cacheDims()[2], 12);
      const kept = Float32Array.from(await d.forward(other.slice(12)));
      d.reset();
      const full = Float32Array.from(await d.forward(other));
      const diff = maxAbsDiff(kept, full);
      assert.ok(diff < tol * Math.max(1, maxAbs(full)), `kept-prefix logits differ by ${diff}`);
      // Nothing in common: nothing kept.
      assert.equal(d.startSequence([ids[1]!, ids[0]!]), 0);
      assert.equal(d.pastLength, 0);
    });

    it('reports the KV dtype of the graph', () => {
      assert.equal(engine.info.signature.kvDtype, fixture === 'tiny-qwen2' ? 'float32' : 'float16');
    });

    it('step-n logits with the KV cache equal a forward over the whole sequence', async () => {
      const d = engine.decoder;
      d.reset();
      const prefix = 5;
      let cached = Float32Array.from(await d.forward(ids.slice(0, prefix)));
      const checks: number[] = [];
      for (let n = prefix + 1; n <= ids.length; n++) {
        cached = Float32Array.from(await d.forward([ids[n - 1]!]));
        assert.equal(d.pastLength, n);
        if (n % 5 === 0 || n === ids.length) {
          const saved = cached;
          const full = await fullForward(n);
          const diff = maxAbsDiff(saved, full);
          assert.ok(diff <= tol, `step ${n}: max |diff| ${diff} > ${tol} (logit scale ${maxAbs(full)})`);
          checks.push(n);
          // Restore the cached sequence: replay the first n tokens.
          d.reset();
          await d.forward(ids.slice(0, n));
        }
      }
      assert.ok(checks.length >= 4);
      // The logits really depend on the context (the comparison is not vacuous).
      const a = await fullForward(ids.length);
      const b = await fullForward(ids.length - 1);
      assert.ok(maxAbsDiff(a, b) > 10 * tol, 'logits at different positions should differ');
    });

    it('chunked prefill equals a single prefill', async () => {
      const d = engine.decoder;
      const single = await fullForward(ids.length);
      for (const chunk of [1, 3, 7, 16]) {
        d.reset();
        const chunked = Float32Array.from(await d.prefill(ids, chunk));
        assert.equal(d.pastLength, ids.length);
        const diff = maxAbsDiff(chunked, single);
        assert.ok(diff <= tol, `chunk ${chunk}: max |diff| ${diff} > ${tol}`);
      }
    });

    it('keeps the cache in the model dtype without conversion', async () => {
      const d = engine.decoder;
      d.reset();
      await d.forward(ids.slice(0, 3));
      const data = d.cacheData();
      if (fixture === 'tiny-qwen2') assert.ok(data instanceof Float32Array);
      else assert.ok(data instanceof Uint16Array || data.constructor.name === 'Float16Array');
      assert.deepEqual([...d.cacheDims()], [1, engine.info.signature.kvHeads, 3, engine.info.signature.headDim]);
    });
  });
}
