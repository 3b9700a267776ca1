/**
 * Token sampling: greedy (temperature 0), temperature, top-k and top-p (nucleus) with a seeded
 * PRNG for reproducible runs.
 *
 * It never sorts the whole vocabulary. One pass computes the softmax weights and a histogram of
 * them over logarithmic buckets (mass and count per bucket); walking the buckets from the top
 * finds the bucket where the top-k count or the top-p mass is reached. Every token of a higher
 * bucket is kept; only the tokens of that boundary bucket are sorted (by weight, then id), so
 * the kept set is exactly the one a full sort would give.
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

/** Buckets per unit of scaled logit (e-fold of probability) and how many: e^-48 and below share the last. */
const BUCKETS_PER_NAT = 16;
const NUM_BUCKETS = 48 * BUCKETS_PER_NAT;

export class Sampler {
  readonly temperature: number;
  readonly topK: number;
  readonly topP: number;
  readonly seed: number;
  private readonly rng: () => number;
  private weights = new Float32Array(0);
  private bucketOf = new Uint16Array(0);
  private kept = new Int32Array(0);
  private readonly bucketMass = new Float64Array(NUM_BUCKETS);
  private readonly bucketCount = new Int32Array(NUM_BUCKETS);

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
      this.bucketOf = new Uint16Array(length);
      this.kept = new Int32Array(length);
    }
    const w = this.weights;
    const invT = 1 / this.temperature;
    let max = -Infinity;
    for (let i = 0; i < length; i++) {
      const v = logits[i]!;
      if (v > max) max = v;
    }
    if (!Number.isFinite(max)) return argmax(logits, length);
    if (this.topK === 0 && this.topP >= 1) {
      // No truncation at all: one multinomial draw over the whole vocabulary.
      let sum = 0;
      for (let i = 0; i < length; i++) {
        const e = Math.exp((logits[i]! - max) * invT);
        w[i] = e;
        sum += e;
      }
      return this.draw(w, length, sum);
    }
    const bOf = this.bucketOf;
    const mass = this.bucketMass.fill(0);
    const count = this.bucketCount.fill(0);
    let total = 0;
    for (let i = 0; i < length; i++) {
      const sc = (logits[i]! - max) * invT; // <= 0
      const e = Math.exp(sc);
      w[i] = e;
      total += e;
      let b = Math.floor(-sc * BUCKETS_PER_NAT);
      if (!(b < NUM_BUCKETS)) b = NUM_BUCKETS - 1; // also NaN
      bOf[i] = b;
      mass[b]! += e;
      count[b]!++;
    }
    // The boundary bucket: top-k by count, else top-p by mass.
    let boundary = NUM_BUCKETS - 1;
    let need = 0; // tokens (top-k) still needed from the boundary bucket
    let above = 0; // mass (top-p) of the buckets above it
    const target = this.topP * total * (1 - 1e-7);
    if (this.topK > 0) {
      let c = 0;
      for (let b = 0; b < NUM_BUCKETS; b++) {
        if (c + count[b]! >= this.topK) {
          boundary = b;
          need = this.topK - c;
          break;
        }
        c += count[b]!;
      }
    } else {
      let m = 0;
      for (let b = 0; b < NUM_BUCKETS; b++) {
        if (m + mass[b]! >= target) {
          boundary = b;
          break;
        }
        m += mass[b]!;
      }
      above = m;
    }
    // Keep every token above the boundary bucket; sort the boundary bucket only.
    const kept = this.kept;
    let n = 0;
    const edge: number[] = [];
    for (let i = 0; i < length; i++) {
      const b = bOf[i]!;
      if (b < boundary) kept[n++] = i;
      else if (b === boundary) edge.push(i);
    }
    edge.sort((a, b) => w[b]! - w[a]! || a - b);
    if (this.topK > 0) {
      for (let j = 0; j < need && j < edge.length; j++) kept[n++] = edge[j]!;
      // Nucleus within the top k, relative to their mass (top-k first, as in transformers).
      let ids = Array.from(kept.subarray(0, n));
      if (this.topP < 1) {
        ids.sort((a, b) => w[b]! - w[a]! || a - b);
        let km = 0;
        for (const i of ids) km += w[i]!;
        const t = this.topP * km * (1 - 1e-7);
        let acc = 0;
        let cut = ids.length;
        for (let j = 0; j < ids.length; j++) {
          acc += w[ids[j]!]!;
          if (acc >= t) {
            cut = j + 1;
            break;
          }
        }
        ids = ids.slice(0, cut);
      }
      return this.pick(ids, ids.length);
    }
    let acc = above;
    for (const i of edge) {
      kept[n++] = i;
      acc += w[i]!;
      if (acc >= target) break;
    }
    return this.pick(kept, n);
  }

  /** Draws among `ids[0..n)` proportionally to their weights. */
  private pick(ids: ArrayLike<number>, n: number): number {
    const w = this.weights;
    let m = 0;
    for (let j = 0; j < n; j++) m += w[ids[j]!]!;
    let r = this.rng() * m;
    for (let j = 0; j < n; j++) {
      r -= w[ids[j]!]!;
      if (r < 0) return ids[j]!;
    }
    return ids[n - 1]!;
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
