/**
 * The engine-owned KV cache for prepared CPU graphs (graph/, KV_NEW_ROWS_DIM): the graph
 * returns only the key/value rows of the tokens it just ran, and the engine keeps the cache.
 *
 * Why: onnxruntime-node copies every output into JS memory on every run. With the export's
 * `present.*` (the whole cache, [1, kv, past + seq, d] per layer and kind) that is the entire KV
 * cache per token, freshly allocated: about 92 MB a step at 1,600 tokens for the 1.5B shapes, more
 * than the model's own compute.
 *
 * How: per layer and kind one Float32Array of [kv, capacity, d] ("slots"), fed as the past input
 * [1, kv, capacity, d] without copying (ONNX Runtime reads input ArrayBuffers in place). Slots not
 * filled yet are masked out with attention_mask 0; position_ids carry the real positions, so the
 * graph's attention and rotary embedding see exactly the cached tokens (a copy whose attention
 * was rewritten, graph/attention.ts, reads the valid lengths from the same mask). The new rows are copied
 * into their slots after each run (seq rows, a few KB a token). The capacity grows in steps of
 * CAPACITY_STEP, so unused slots cost at most that many masked keys, and the past tensors keep the
 * same shape between growths (ONNX Runtime's arena reuses its buffers).
 */
import * as ort from 'onnxruntime-node';
import { ModelError } from './errors';
import { TokenFeeds } from './feeds';
import { runModel } from './run';
import { KV_NEW_ROWS_DIM, LOGIT_COUNT_INPUT } from './graph/names';
import type { GraphSignature } from './types';

export const CAPACITY_STEP = 256;

/**
 * Copies `n` rows of every head between two KV layouts [heads, rows, head_dim] of different row
 * counts: rows [from, from + n) of `src` (srcRows per head) to rows [to, to + n) of `dst`.
 */
export function copyHeadRows<T extends Float32Array | Uint16Array>(src: T, srcRows: number, from: number, dst: T, dstRows: number, to: number, n: number, heads: number, hd: number): void {
  for (let h = 0; h < heads; h++) dst.set(src.subarray((h * srcRows + from) * hd, (h * srcRows + from + n) * hd), (h * dstRows + to) * hd);
}

/** Whether the graph's present.* outputs carry only the new rows (a prepared graph). */
export function usesNewRowsKv(signature: GraphSignature): boolean {
  const p = signature.outputs.find((o) => o.name === signature.presentNames[0]);
  return !!p && p.shape[2] === KV_NEW_ROWS_DIM && signature.kvDtype === 'float32';
}

export class SlotKvCache {
  private capacity = 0;
  private filled = 0;
  private bufs: Float32Array[] = [];
  private pastTensors: ort.Tensor[] = [];
  private mask = new BigInt64Array(0);
  private readonly tokenFeeds = new TokenFeeds();
  private readonly pastNames: readonly string[];
  private readonly presentNames: readonly string[];
  private readonly kv: number;
  private readonly hd: number;
  private readonly feeds: Record<string, ort.Tensor> = {};

  constructor(
    private readonly session: ort.InferenceSession,
    private readonly signature: GraphSignature,
    private readonly vocab: number,
  ) {
    this.pastNames = signature.pastNames;
    this.presentNames = signature.presentNames;
    this.kv = signature.kvHeads;
    this.hd = signature.headDim;
  }

  /** Starts a new sequence (see truncate). */
  reset(): void {
    this.truncate(0);
  }

  /**
   * Keeps the rows of the first `keep` cached tokens (0: a new sequence). The past input is always
   * the whole capacity (unfilled slots masked), so a capacity grown far past what is kept (by a
   * long earlier request) would make every later step attend over it: it shrinks to fit.
   */
  truncate(keep: number): void {
    this.filled = Math.min(keep, this.filled);
    const fit = Math.ceil(this.filled / CAPACITY_STEP) * CAPACITY_STEP;
    if (this.filled === 0 && this.capacity > CAPACITY_STEP) this.release();
    else if (this.capacity > fit + CAPACITY_STEP) this.resize(fit);
  }

  /** Makes room for `need` cached tokens, keeping the filled rows. */
  private grow(need: number): void {
    if (need <= this.capacity && this.pastTensors.length > 0) return;
    this.resize(Math.max(this.capacity, Math.ceil(need / CAPACITY_STEP) * CAPACITY_STEP));
  }

  /** New buffers of `cap` slots (at least the filled rows), the filled rows copied over. */
  private resize(cap: number): void {
    const { kv, hd } = this;
    const next = this.pastNames.map(() => new Float32Array(kv * cap * hd));
    if (this.filled > 0) for (let t = 0; t < next.length; t++) copyHeadRows(this.bufs[t]!, this.capacity, 0, next[t]!, cap, 0, this.filled, kv, hd);
    this.bufs = next;
    this.capacity = cap;
    this.pastTensors = next.map((b) => new ort.Tensor('float32', b, [1, kv, cap, hd]));
    for (let t = 0; t < this.pastNames.length; t++) this.feeds[this.pastNames[t]!] = this.pastTensors[t]!;
  }


  /**
   * Runs `ids` after the cached tokens and returns the logits of the last `logitCount` positions,
   * [logitCount, vocab] (a view; copy to keep).
   */
  async forward(ids: ArrayLike<number>, runOptions?: ort.InferenceSession.RunOptions, logitCount = 1): Promise<Float32Array> {
    const seq = ids.length;
    if (seq === 0) throw new RangeError('forward needs at least one token');
    if (logitCount > seq) throw new RangeError(`forward of ${seq} tokens cannot give logits of ${logitCount} positions`);
    // The past input needs room for the cached rows only: the new rows enter through the graph's
    // own Concat. (Growing to filled + seq first made every prefill chunk also attend over a
    // chunk's worth of empty, masked slots: ~12% more attention work on a 4096-token prompt.)
    this.grow(this.filled);
    const cap = this.capacity;
    const total = cap + seq;
    if (this.mask.length < total) this.mask = new BigInt64Array(Math.max(total, this.mask.length * 2));
    const mask = this.mask.subarray(0, total);
    mask.fill(1n, 0, this.filled);
    mask.fill(0n, this.filled, cap);
    mask.fill(1n, cap, total);
    const feeds = this.feeds;
    const names = this.signature.names;
    feeds[names.inputIds] = this.tokenFeeds.inputIds(ids);
    feeds[names.attentionMask] = new ort.Tensor('int64', mask, [1, total]);
    if (this.signature.feedsPositionIds) feeds[names.positionIds] = this.tokenFeeds.positionIds(this.filled, seq);
    if (this.signature.feedsLogitCount) feeds[LOGIT_COUNT_INPUT] = this.tokenFeeds.logitCount(logitCount);
    const out = await runModel(this.session, feeds, runOptions);
    this.grow(this.filled + seq);
    const { kv, hd, capacity } = this;
    for (let t = 0; t < this.presentNames.length; t++) {
      const o = out[this.presentNames[t]!] as ort.Tensor | undefined;
      if (!o) throw new ModelError('signature-mismatch', `the graph did not return '${this.presentNames[t]}'.`, 'Prepare the model again (delete the prepared copy).');
      const rows = o.data as Float32Array;
      if (rows.length !== kv * seq * hd) {
        throw new ModelError('signature-mismatch', `'${this.presentNames[t]}' has ${rows.length} values; ${kv * seq * hd} new rows were expected.`, 'Prepare the model again (delete the prepared copy).');
      }
      copyHeadRows(rows, seq, 0, this.bufs[t]!, capacity, this.filled, seq, kv, hd);
    }
    this.filled += seq;
    const logits = out[this.signature.names.logits] as ort.Tensor;
    const v = logits.dims[logits.dims.length - 1]!;
    if (v !== this.vocab) {
      throw new ModelError(
        'signature-mismatch',
        `the graph returned logits over ${v} tokens; config.json says vocab_size ${this.vocab}.`,
        'The ONNX file does not match config.json; download the model again.',
      );
    }
    const data = logits.data as Float32Array;
    if (data.length < logitCount * v) {
      throw new ModelError('signature-mismatch', `the graph returned logits of ${data.length / v} positions; ${logitCount} were asked for.`, 'Prepare the model again (delete the prepared copy).');
    }
    return data.subarray(data.length - logitCount * v);
  }

  /** Logical dims of layer 0's cached key: [1, kv, cached tokens, head_dim]. */
  cacheDims(): readonly number[] {
    return [1, this.kv, this.filled, this.hd];
  }

  cacheData(): Float32Array {
    return this.bufs[0] ?? new Float32Array(0);
  }

  release(): void {
    this.bufs = [];
    this.pastTensors = [];
    this.capacity = 0;
    this.filled = 0;
  }
}
