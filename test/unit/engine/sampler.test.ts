/** The sampler: greedy, seeded reproducibility, top-k and top-p against known distributions. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Sampler, argmax, mulberry32 } from '../../../src/engine/sampler';

function randomLogits(n: number, seed: number, scale = 4): Float32Array {
  const r = mulberry32(seed);
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = (r() - 0.5) * 2 * scale;
  return a;
}

/** Logits whose softmax (temperature 1) is exactly `probs`. */
function logitsOf(probs: number[], vocab = probs.length): Float32Array {
  const a = new Float32Array(vocab).fill(-Infinity);
  probs.forEach((p, i) => (a[i] = Math.log(p)));
  return a;
}

function frequencies(s: Sampler, logits: Float32Array, draws: number): Map<number, number> {
  const m = new Map<number, number>();
  for (let i = 0; i < draws; i++) {
    const t = s.sample(logits);
    m.set(t, (m.get(t) ?? 0) + 1);
  }
  return m;
}

describe('Sampler', () => {
  const V = 151936;

  it('greedy (temperature 0) is argmax', () => {
    const s = new Sampler({ temperature: 0 });
    for (let k = 0; k < 5; k++) {
      const l = randomLogits(V, 100 + k);
      const expected = argmax(l);
      assert.equal(s.sample(l), expected);
      // the value is really the max
      assert.ok(l.every((x) => x <= l[expected]!));
    }
  });

  it('top-k = 1 equals greedy at any temperature', () => {
    const s = new Sampler({ temperature: 1.5, topK: 1, seed: 3 });
    for (let k = 0; k < 5; k++) {
      const l = randomLogits(V, 200 + k);
      assert.equal(s.sample(l), argmax(l));
    }
  });

  it('the same seed gives the same sequence; another seed another one', () => {
    const logits = Array.from({ length: 40 }, (_, k) => randomLogits(V, 300 + k, 8));
    const run = (seed: number) => {
      const s = new Sampler({ temperature: 0.7, topP: 0.95, seed });
      return logits.map((l) => s.sample(l));
    };
    assert.deepEqual(run(42), run(42));
    assert.notDeepEqual(run(42), run(43));
  });

  it('respects the vocabulary bound', () => {
    const l = new Float32Array(100).fill(0);
    l[90] = 50; // outside the bound of 80: never picked
    const s = new Sampler({ temperature: 1, seed: 1 });
    for (let i = 0; i < 200; i++) assert.ok(s.sample(l, 80) < 80);
    assert.equal(new Sampler({ temperature: 0 }).sample(l, 80), 0);
  });

  it('top-p keeps exactly the nucleus, with probabilities renormalised inside it', () => {
    // Sorted probabilities 0.5, 0.2, 0.15, 0.1, 0.05: with top-p 0.8 the nucleus is {0, 1, 2}
    // (0.5 + 0.2 = 0.7 < 0.8, + 0.15 = 0.85 >= 0.8), with weights 0.5/0.85, 0.2/0.85, 0.15/0.85.
    const probs = [0.1, 0.5, 0.05, 0.2, 0.15]; // ids 1, 3, 4 are the nucleus
    const l = logitsOf(probs, 1000);
    const s = new Sampler({ temperature: 1, topP: 0.8, seed: 1234 });
    const n = 20000;
    const f = frequencies(s, l, n);
    assert.deepEqual([...f.keys()].sort(), [1, 3, 4]);
    for (const [id, p] of [
      [1, 0.5 / 0.85],
      [3, 0.2 / 0.85],
      [4, 0.15 / 0.85],
    ] as const) {
      const got = f.get(id)! / n;
      // 5 standard deviations of a binomial proportion
      const sd = Math.sqrt((p * (1 - p)) / n);
      assert.ok(Math.abs(got - p) < 5 * sd, `token ${id}: ${got} vs ${p}`);
    }
  });

  it('top-p 1 and no top-k samples the full distribution', () => {
    const probs = [0.4, 0.3, 0.2, 0.1];
    const s = new Sampler({ temperature: 1, topP: 1, seed: 99 });
    const n = 20000;
    const f = frequencies(s, logitsOf(probs), n);
    probs.forEach((p, id) => {
      const sd = Math.sqrt((p * (1 - p)) / n);
      assert.ok(Math.abs(f.get(id)! / n - p) < 5 * sd, `token ${id}`);
    });
  });

  it('top-k keeps the k most likely tokens, then top-p applies within them', () => {
    const probs = [0.05, 0.3, 0.25, 0.2, 0.2];
    const s = new Sampler({ temperature: 1, topK: 3, seed: 5 });
    const f = frequencies(s, logitsOf(probs), 5000);
    // ids 1 and 2 are the top 2; ids 3 and 4 tie for third (the lower id wins the tie)
    assert.deepEqual([...f.keys()].sort(), [1, 2, 3]);
    const s2 = new Sampler({ temperature: 1, topK: 3, topP: 0.5, seed: 5 });
    // within the top 3 (0.3, 0.25, 0.2 of 0.75): 0.4 + 0.333 reaches 0.5 -> {1, 2}
    assert.deepEqual([...frequencies(s2, logitsOf(probs), 3000).keys()].sort(), [1, 2]);
  });

  it('a flat distribution over the whole vocabulary still samples inside the nucleus', () => {
    const l = new Float32Array(V); // all equal: the nucleus of 0.5 is half the vocabulary
    const s = new Sampler({ temperature: 0.6, topP: 0.5, seed: 8 });
    const seen = new Set<number>();
    for (let i = 0; i < 200; i++) {
      const t = s.sample(l);
      assert.ok(t >= 0 && t < V);
      seen.add(t);
    }
    // ties are broken by id, so the nucleus is the lower half of the ids
    assert.ok([...seen].every((t) => t < V / 2 + 1));
    assert.ok(seen.size > 150);
  });

  it('temperature sharpens and flattens', () => {
    const probs = [0.6, 0.4];
    const n = 10000;
    const cold = frequencies(new Sampler({ temperature: 0.25, topP: 1, seed: 1 }), logitsOf(probs), n).get(0)! / n;
    const hot = frequencies(new Sampler({ temperature: 4, topP: 1, seed: 1 }), logitsOf(probs), n).get(0)! / n;
    // p0 at temperature T: 0.6^(1/T) / (0.6^(1/T) + 0.4^(1/T))
    const at = (t: number) => 0.6 ** (1 / t) / (0.6 ** (1 / t) + 0.4 ** (1 / t));
    assert.ok(Math.abs(cold - at(0.25)) < 0.03, `cold ${cold} vs ${at(0.25)}`);
    assert.ok(Math.abs(hot - at(4)) < 0.03, `hot ${hot} vs ${at(4)}`);
  });

  it('rejects invalid options', () => {
    assert.throws(() => new Sampler({ temperature: -1 }), RangeError);
    assert.throws(() => new Sampler({ topP: 0 }), RangeError);
    assert.throws(() => new Sampler({ topK: 1.5 }), RangeError);
  });
});
