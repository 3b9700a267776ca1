/**
 * The decoder session: one ONNX Runtime session of the merged decoder, reused for every request,
 * and its KV cache. `forward(ids)` runs the given tokens after the cached ones and returns the
 * logits of the last position (of the last few, for a prompt-lookup pass), and `truncate` drops
 * cached tokens a pass ran but the request did not keep.
 *
 * Per step it allocates only what the API forces: ONNX Runtime's output tensors (the `present.*`
 * tensors become the next step's `past_key_values.*` as they are, without copying or
 * converting, float16 included) and a few small Tensor wrappers. The attention mask and
 * position ids are views into buffers that grow geometrically.
 */
import * as ort from 'onnxruntime-node';
import { ModelError } from './errors';
import { TokenFeeds } from './feeds';
import { runModel } from './run';
import { LOGIT_COUNT_INPUT } from './graph/names';
import { SlotKvCache, copyHeadRows, usesNewRowsKv } from './kvSlots';
import type { GraphSignature } from './types';

type KvData = Float32Array | Uint16Array;

/**
 * On a graph that takes one token at a time once its cache holds some (multiTokenSteps false), a
 * follow-up keeps the cached prefix only when at most this many new prompt tokens follow it: they
 * run one by one, each as fast as a decode step, which beats computing the whole prompt again.
 */
export const STEPWISE_REUSE_LIMIT = 64;

let halfTable: Float32Array | undefined;
/** float16 bit patterns to float32 values (a 256 KB table built once). */
export function float16Table(): Float32Array {
  if (halfTable) return halfTable;
  const t = new Float32Array(65536);
  for (let h = 0; h < 65536; h++) {
    const s = h & 0x8000 ? -1 : 1;
    const e = (h >> 10) & 0x1f;
    const f = h & 0x3ff;
    if (e === 0) t[h] = s * f * 2 ** -24;
    else if (e === 31) t[h] = f ? NaN : s * Infinity;
    else t[h] = s * (1 + f / 1024) * 2 ** (e - 15);
  }
  halfTable = t;
  return t;
}

/** Releases tensors whose data lives in a GPU buffer; host tensors are left alone (they may be shared). */
function disposeDeviceTensors(tensors: readonly ort.Tensor[]): void {
  for (const t of tensors) {
    if (t?.location === 'gpu-buffer') t.dispose();
  }
}

export interface ForwardTimings {
  runMs: number;
}

/** The first `keep` rows (axis 2) of a host KV tensor [1, kv, rows, head_dim], copied. */
function keepRows(t: ort.Tensor, keep: number): ort.Tensor {
  const [b, kv, rows, hd] = t.dims as [number, number, number, number];
  const src = t.data as Float32Array | Uint16Array;
  const out = new (src.constructor as new (n: number) => Float32Array | Uint16Array)(b * kv * keep * hd);
  copyHeadRows(src, rows, 0, out, keep, 0, keep, b * kv, hd);
  return new ort.Tensor(t.type as 'float32' | 'float16', out, [b, kv, keep, hd]);
}

/** How many leading tokens `cached` and `ids` share, at most `max`. */
function sharedPrefixLength(cached: readonly number[], ids: ArrayLike<number>, max: number, from = 0): number {
  let n = Math.min(from, max);
  while (n < max && cached[n] === ids[n]) n++;
  return n;
}

export class DecoderSession {
  private past: ort.Tensor[] = [];
  /** The token ids in the cache (either kind), in order. */
  private tokens: number[] = [];
  private ones = new BigInt64Array(0);
  private readonly tokenFeeds = new TokenFeeds();
  private logitsBuf: Float32Array;
  private readonly pastNames: readonly string[];
  private readonly presentNames: readonly string[];
  private readonly emptyPast: ort.Tensor[];
  private readonly vocab: number;
  /** Set for prepared CPU graphs whose present.* are only the new rows: the engine keeps the cache (kvSlots.ts). */
  private readonly slots?: SlotKvCache;

  constructor(
    readonly session: ort.InferenceSession,
    readonly signature: GraphSignature,
    vocabSize: number,
  ) {
    this.pastNames = signature.pastNames;
    this.presentNames = signature.presentNames;
    const dims = [1, signature.kvHeads, 0, signature.headDim];
    this.emptyPast = this.pastNames.map(() =>
      signature.kvDtype === 'float16' ? new ort.Tensor('float16', new Uint16Array(0), dims) : new ort.Tensor('float32', new Float32Array(0), dims),
    );
    this.vocab = vocabSize;
    this.logitsBuf = new Float32Array(vocabSize);
    if (usesNewRowsKv(signature)) this.slots = new SlotKvCache(session, signature, vocabSize);
    this.reset();
  }

  /** Tokens in the KV cache. */
  get pastLength(): number {
    return this.tokens.length;
  }

  /**
   * Starts a new sequence that begins with `ids`, keeping the cached rows of the longest prefix it
   * shares with the previous sequence (at most ids.length - 1 tokens: the last one always runs,
   * for its logits). A token's rows depend only on it and the tokens before it, so the kept rows
   * are those a fresh run would compute. Returns how many are kept: run `ids.slice(count)` next.
   */
  startSequence(ids: ArrayLike<number>): number {
    const keep = sharedPrefixLength(this.tokens, ids, Math.min(this.tokens.length, ids.length - 1));
    // KV kept on a GPU device (WebGPU) cannot be cut from here: start over.
    const stepwiseTooLong = !this.multiTokenSteps && ids.length - keep > STEPWISE_REUSE_LIMIT;
    if (keep === 0 || stepwiseTooLong || this.past.some((t) => t.location !== 'cpu')) {
      this.reset();
      return 0;
    }
    if (this.slots) this.slots.truncate(keep);
    else if (keep < this.tokens.length) this.past = this.past.map((t) => keepRows(t, keep));
    this.tokens.length = keep;
    return keep;
  }

  /**
   * Whether one pass can check drafted tokens (prompt lookup, lookup.ts), and at what cost:
   * - `free`: a CPU-prepared copy. It gives the logits of the last positions on request, and its
   *   cache is the engine's (kvSlots.ts), so dropping the rows of rejected drafts costs nothing.
   * - `copying`: a graph on the CPU whose logits cover every position of a run. Dropping rows
   *   copies the whole cache (its present.* are one tensor per layer and kind), about a decode
   *   step's worth of memory traffic on a long context: only tests and the benchmark use it.
   * - `none`: one token per pass (the cache on a GPU, logits of the last position only, or a graph
   *   that runs one token at a time once its cache holds some).
   */
  get verification(): 'free' | 'copying' | 'none' {
    if (!this.multiTokenSteps) return 'none';
    if (this.slots) return this.signature.feedsLogitCount ? 'free' : 'none';
    const logits = this.signature.outputs.find((o) => o.name === this.signature.names.logits);
    if (!logits || logits.shape.length !== 3 || logits.shape[1] === 1 || this.past.some((t) => t.location !== 'cpu')) return 'none';
    return 'copying';
  }

  /**
   * Keeps the cached tokens `seq` begins with, except its last token (which must run next, for its
   * logits), and drops the rest (the rows of rejected drafts). The first `known` agree already.
   */
  keepPrefixOf(seq: readonly number[], known = 0): void {
    this.truncate(sharedPrefixLength(this.tokens, seq, Math.min(this.tokens.length, seq.length - 1), known));
  }

  /** Keeps the first `length` cached tokens and drops the rest (the rows of rejected drafts). */
  truncate(length: number): void {
    if (length >= this.tokens.length) return;
    if (length <= 0 || this.past.some((t) => t.location !== 'cpu')) {
      if (length > 0) throw new RangeError('the KV cache is on the device: it cannot be cut');
      this.reset();
      return;
    }
    if (this.slots) this.slots.truncate(length);
    else this.past = this.past.map((t) => keepRows(t, length));
    this.tokens.length = length;
  }

  /** Drops the KV cache (the next forward starts a new sequence). */
  reset(): void {
    this.slots?.reset();
    disposeDeviceTensors(this.past);
    this.past = this.emptyPast.slice();
    this.tokens = [];
  }

  private ensure(total: number): void {
    if (this.ones.length >= total) return;
    let cap = Math.max(256, this.ones.length);
    while (cap < total) cap *= 2;
    this.ones = new BigInt64Array(cap).fill(1n);
  }

  /**
   * False for graphs that cannot run more than one token once the cache holds some: onnxruntime-
   * genai's MultiHeadAttention export (the onnx-community files) builds its causal mask by
   * expanding an [S, S] triangle to [S, past + S], which only works for an empty cache or one
   * token. Found by probeMultiTokenSteps(). Then a prompt runs in one piece from an empty cache,
   * and tokens after the cache holds some run one at a time.
   */
  multiTokenSteps = true;
  /** Options of the next runs (the probe silences ONNX Runtime's log of an expected failure). */
  private runOptions?: ort.InferenceSession.RunOptions;

  /**
   * Finds out whether the graph runs two tokens after a cached one (see multiTokenSteps); leaves
   * the cache empty. Resolves to the error ONNX Runtime gave when it cannot. Throws when even one
   * token after a cached one fails: no request could run.
   */
  async probeMultiTokenSteps(token: number): Promise<string | undefined> {
    this.reset();
    this.multiTokenSteps = true;
    let failure: string | undefined;
    let decodeWorks = false;
    try {
      await this.forward([token]);
      // A decode step after a cached token must work (a failure here is the graph's fault, and
      // the load fails with it); it is what every request does after its prompt.
      await this.forward([token]);
      decodeWorks = true;
      // A failure of a two-token step is an answer, not an error: ONNX Runtime need not print it.
      this.runOptions = { logSeverityLevel: 4 };
      await this.forward([token, token]);
    } catch (e) {
      if (!decodeWorks || !(e instanceof ModelError) || e.code !== 'runtime') throw e;
      failure = e.problem;
      this.multiTokenSteps = false;
    } finally {
      this.runOptions = undefined;
    }
    this.reset();
    return failure;
  }

  /**
   * Runs `ids` after the cached tokens, appends them to the cache and returns the logits of the
   * last `logitCount` positions, [logitCount, vocab] (a buffer reused by the next call: copy it
   * to keep it). More than one position needs `verification` other than `none`.
   */
  async forward(ids: ArrayLike<number>, logitCount = 1): Promise<Float32Array> {
    if (logitCount !== 1) {
      const can = this.verification !== 'none';
      if (!can || logitCount < 1 || logitCount > ids.length) throw new RangeError(`logits of ${logitCount} positions of a ${ids.length}-token run: ${can ? 'out of range' : 'this graph cannot give them'}`);
    }
    if (!this.multiTokenSteps && ids.length > 1) {
      if (this.tokens.length > 0) {
        let last: Float32Array | undefined;
        for (let i = 0; i < ids.length; i++) last = await this.forward([ids[i]!]);
        return last!;
      }
      // From an empty cache the whole piece runs at once; the engine-kept slots must then be empty too.
      this.slots?.release();
    }
    const logits = this.slots ? await this.slots.forward(ids, this.runOptions, logitCount) : await this.forwardWithPresent(ids, logitCount);
    for (let i = 0; i < ids.length; i++) this.tokens.push(ids[i]!);
    return logits;
  }

  /** forward() on the export's own KV hand-off: present.* become the next past. */
  private async forwardWithPresent(ids: ArrayLike<number>, logitCount = 1): Promise<Float32Array> {
    const seq = ids.length;
    if (seq === 0) throw new RangeError('forward needs at least one token');
    const pastLen = this.tokens.length;
    const total = pastLen + seq;
    this.ensure(total);
    const names = this.signature.names;
    const feeds: Record<string, ort.Tensor> = {
      [names.inputIds]: this.tokenFeeds.inputIds(ids),
      [names.attentionMask]: new ort.Tensor('int64', this.ones.subarray(0, total), [1, total]),
    };
    // position_ids = cumsum(attention_mask) - 1 over the last `seq` entries; with an all-ones
    // mask that is pastLen .. total-1.
    if (this.signature.feedsPositionIds) feeds[names.positionIds] = this.tokenFeeds.positionIds(pastLen, seq);
    if (this.signature.feedsLogitCount) feeds[LOGIT_COUNT_INPUT] = this.tokenFeeds.logitCount(logitCount);
    for (let i = 0; i < this.pastNames.length; i++) feeds[this.pastNames[i]!] = this.past[i]!;
    const out = await runModel(this.session, feeds, this.runOptions);
    // With WebGPU the present.* tensors are GPU buffers (device.ts): they become the next past as
    // they are, and the previous step's buffers are released once replaced.
    for (let i = 0; i < this.presentNames.length; i++) {
      const t = out[this.presentNames[i]!] as ort.Tensor | undefined;
      if (!t) throw new ModelError('signature-mismatch', `the graph did not return '${this.presentNames[i]}'.`, 'Download the model again.');
      const old = this.past[i]!;
      this.past[i] = t;
      if (old.location === 'gpu-buffer') old.dispose();
    }
    const logits = out[this.signature.names.logits] as ort.Tensor;
    const dims = logits.dims;
    const v = dims[dims.length - 1]!;
    const rows = logits.size / v;
    if (v !== this.vocab) {
      throw new ModelError(
        'signature-mismatch',
        `the graph returned logits over ${v} tokens; config.json says vocab_size ${this.vocab}.`,
        'The ONNX file does not match config.json; download the model again.',
      );
    }
    if (rows < logitCount) throw new ModelError('signature-mismatch', `the graph returned logits of ${rows} positions; ${logitCount} were asked for.`, 'Turn prompt lookup off (r1.generation.promptLookup).');
    const data = logits.data as Float32Array | Uint16Array;
    const off = (rows - logitCount) * v;
    const n = logitCount * v;
    if (data instanceof Float32Array) return data.subarray(off, off + n);
    if (this.logitsBuf.length < n) this.logitsBuf = new Float32Array(n);
    const buf = this.logitsBuf.subarray(0, n);
    if (data instanceof Uint16Array) {
      const t = float16Table();
      for (let i = 0; i < n; i++) buf[i] = t[data[off + i]!]!;
      return buf;
    }
    // Float16Array (Node 24+) reads as numbers.
    const arr = data as unknown as ArrayLike<number>;
    for (let i = 0; i < n; i++) buf[i] = arr[off + i]!;
    return buf;
  }

  /** Runs `ids` in chunks of at most `chunkSize` tokens; returns the last position's logits. */
  async prefill(ids: ArrayLike<number>, chunkSize: number, onChunk?: () => Promise<void> | void): Promise<Float32Array> {
    // A graph that takes one token at a time after the first run gets the whole prompt at once.
    const size = !this.multiTokenSteps && this.tokens.length === 0 ? ids.length : Math.max(1, Math.floor(chunkSize));
    let logits: Float32Array | undefined;
    for (let start = 0; start < ids.length; start += size) {
      const end = Math.min(ids.length, start + size);
      const chunk = Array.prototype.slice.call(ids, start, end) as number[];
      logits = await this.forward(chunk);
      if (end < ids.length) await onChunk?.();
    }
    if (!logits) throw new RangeError('prefill needs at least one token');
    return logits;
  }

  /** Dims of the cached key of layer 0 (for checks). */
  cacheDims(): readonly number[] {
    if (this.slots) return this.slots.cacheDims();
    return this.past[0]!.dims;
  }

  /** Where the KV cache lives: 'cpu', or 'gpu-buffer' when WebGPU keeps it on the device. */
  cacheLocation(): string {
    return this.past[0]!.location;
  }

  /** The KV tensors in use (for tests: their data type). */
  cacheData(): KvData {
    if (this.slots) return this.slots.cacheData();
    return this.past[0]!.data as KvData;
  }

  async release(): Promise<void> {
    this.slots?.release();
    disposeDeviceTensors(this.past);
    this.past = [];
    await this.session.release();
  }
}
