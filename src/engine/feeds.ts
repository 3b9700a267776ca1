/**
 * The int64 feeds of a decoder step that both KV paths (the engine's slots, kvSlots.ts, and the
 * export's own hand-off, session.ts) build the same way: input_ids, position_ids and a prepared
 * copy's r1_logit_count.
 */
import * as ort from 'onnxruntime-node';

export class TokenFeeds {
  /** A decode step's one id, reused: no allocation per token. */
  private readonly one = new BigInt64Array(1);
  /** r1_logit_count tensors by count (1 for every decode step, a few others for lookup passes). */
  private readonly counts = new Map<number, ort.Tensor>();
  /** 0, 1, 2, …: position_ids are views into it. */
  private iota = new BigInt64Array(0);

  /** input_ids [1, seq]. */
  inputIds(ids: ArrayLike<number>): ort.Tensor {
    const seq = ids.length;
    let data = this.one;
    if (seq === 1) data[0] = BigInt(ids[0]!);
    else {
      data = new BigInt64Array(seq);
      for (let i = 0; i < seq; i++) data[i] = BigInt(ids[i]!);
    }
    return new ort.Tensor('int64', data, [1, seq]);
  }

  /** position_ids [1, seq] of the tokens at positions from … from + seq - 1. */
  positionIds(from: number, seq: number): ort.Tensor {
    const end = from + seq;
    if (this.iota.length < end) {
      const n = Math.max(end, this.iota.length * 2, 1024);
      this.iota = new BigInt64Array(n);
      for (let i = 0; i < n; i++) this.iota[i] = BigInt(i);
    }
    return new ort.Tensor('int64', this.iota.subarray(from, end), [1, seq]);
  }

  /** r1_logit_count [1]: logits for the last `n` positions (graph/rewrites.ts LOGIT_COUNT_INPUT). */
  logitCount(n: number): ort.Tensor {
    let t = this.counts.get(n);
    if (!t) this.counts.set(n, (t = new ort.Tensor('int64', BigInt64Array.of(BigInt(n)), [1])));
    return t;
  }
}
