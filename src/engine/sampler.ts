/**
 * Token sampling: greedy (temperature 0), temperature, top-k and top-p (nucleus) with a seeded
 * PRNG for reproducible runs.
 *
 * It never sorts the whole vocabulary: one pass computes the softmax weights, then only the
 * tokens above a probability threshold are collected and sorted. All excluded tokens are below
 * the threshold, hence below every collected one, so when the collected tokens already hold the
 * nucleus (or the top k), the result is exact; otherwise the threshold is lowered and the pass
 * repeated (rare: very flat distributions).
 */

/** mulberry32: a small, fast 32-bit PRNG; returns floats in [0, 1). */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface SamplerOptions {
  temperature?: number;
  topK?: number;
  topP?: number;
  seed?: number;
}

/** Index of the largest value (the first one on ties). */
export function argmax(logits: ArrayLike<number>, length = logits.length): number {
  let best = 0;
  let bestV = -Infinity;
  for (let i = 0; i < length; i++) {
    const v = logits[i]!;
    if (v > bestV) {
      bestV = v;
      best = i;
    }
  }
  return best;
}

export class Sampler {
  readonly temperature: number;
  readonly topK: number;
  readonly topP: number;
  readonly seed: number;
  private readonly rng: () => number;
  private weights = new Float32Array(0);
  private cand = new Int32Array(0);

  constructor(opts: SamplerOptions = {}) {
    const t = opts.temperature ?? 0;
    if (!(t >= 0) || !Number.isFinite(t)) throw new RangeError(`temperature must be a number >= 0, got ${opts.temperature}`);
    const p = opts.topP ?? 1;
    if (!(p > 0 && p <= 1)) throw new RangeError(`topP must be in (0, 1], got ${opts.topP}`);
    const k = opts.topK ?? 0;
    if (!(Number.isInteger(k) && k >= 0)) throw new RangeError(`topK must be an integer >= 0, got ${opts.topK}`);
    this.temperature = t;
    this.topP = p;
    this.topK = k;
    this.seed = opts.seed ?? ((Math.random() * 2 ** 32) >>> 0);
    this.rng = mulberry32(this.seed);
  }

  get greedy(): boolean {
    return this.temperature === 0 || this.topK === 1;
  }

  /** Picks the next token id from the logits of the last position. `length` bounds the vocabulary considered. */
  sample(logits: ArrayLike<number>, length = logits.length): number {
    if (this.greedy) return argmax(logits, length);
    if (this.weights.length < length) {
      this.weights = new Float32Array(length);
      this.cand = new Int32Array(length);
    }
    const w = this.weights;
    const invT = 1 / this.temperature;
    let max = -Infinity;
    for (let i = 0; i < length; i++) {
      const v = logits[i]!;
      if (v > max) max = v;
    }
    if (!Number.isFinite(max)) return argmax(logits, length);
    let total = 0;
    for (let i = 0; i < length; i++) {
      const e = Math.exp((logits[i]! - max) * invT);
      w[i] = e;
      total += e;
    }
    // No truncation at all: one multinomial draw over the whole vocabulary.
    if (this.topK === 0 && this.topP >= 1) return this.draw(w, length, total);

    const cand = this.cand;
    // The largest weight is exactly 1 (exp(0)); thresholds are relative to it.
    let threshold = 1e-3;
    for (;;) {
      let n = 0;
      for (let i = 0; i < length; i++) if (w[i]! >= threshold) cand[n++] = i;
      const ids = Array.from(cand.subarray(0, n));
      ids.sort((a, b) => w[b]! - w[a]! || a - b);
      const complete = n === length || threshold === 0;
      let kept = ids;
      if (this.topK > 0) {
        if (n < this.topK && !complete) {
          threshold = lower(threshold);
          continue;
        }
        kept = ids.slice(0, this.topK);
      }
      // Nucleus within the kept set, relative to the kept mass (top-k first, as in transformers).
      const mass = this.topK > 0 ? kept.reduce((s, i) => s + w[i]!, 0) : total;
      const target = this.topP * mass;
      let acc = 0;
      let cut = -1;
      for (let j = 0; j < kept.length; j++) {
        acc += w[kept[j]!]!;
        if (acc >= target * (1 - 1e-7)) {
          cut = j + 1;
          break;
        }
      }
      if (cut < 0) {
        if (!complete) {
          threshold = lower(threshold);
          continue;
        }
        cut = kept.length;
      }
      const nucleus = kept.slice(0, cut);
      let nm = 0;
      for (const i of nucleus) nm += w[i]!;
      let r = this.rng() * nm;
      for (const i of nucleus) {
        r -= w[i]!;
        if (r < 0) return i;
      }
      return nucleus[nucleus.length - 1]!;
    }
  }

  private draw(w: Float32Array, length: number, total: number): number {
    let r = this.rng() * total;
    let last = 0;
    for (let i = 0; i < length; i++) {
      const x = w[i]!;
      if (x > 0) {
        last = i;
        r -= x;
        if (r < 0) return i;
      }
    }
    return last;
  }
}

function lower(t: number): number {
  const next = t / 100;
  return next < 1e-30 ? 0 : next;
}
