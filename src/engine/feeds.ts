/**
 * The int64 feeds of a decoder step that both KV paths (the engine's slots, kvSlots.ts, and the
 * export's own hand-off, session.ts) build the same way: input_ids and position_ids.
 */
import * as ort from 'onnxruntime-node';

export class TokenFeeds {
  /** A decode step's one id, reused: no allocation per token. */
  private readonly one = new BigInt64Array(1);
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
}
