/**
 * A GGUF writer of our own (ggml's docs/gguf.md, version 3) and the ggml block quantizations the
 * benchmark's llama.cpp files need: Q4_0, Q5_0, Q8_0, Q4_K and Q6_K (ggml-common.h's layouts,
 * quantized as ggml's `quantize_row_*_ref` reference functions do for Q4_0, Q5_0 and Q8_0; Q4_K and
 * Q6_K by a plain min/max fit rather than llama.cpp's search: valid blocks whose values are close
 * to the weights, which is all a random-weight model needs), plus F32 for norms and biases.
 *
 * File layout (little-endian): magic "GGUF", version u32 = 3, tensor count u64, metadata count
 * u64; each metadata pair as key (u64 length + UTF-8) + value type u32 + value (arrays: item type
 * u32 + count u64 + items); each tensor's info as name + n_dims u32 + dims u64[n_dims] (ggml
 * order: ne[0] is the contiguous dimension, so a Hugging Face [out, in] weight is [in, out]) +
 * type u32 + offset u64 (from the start of the data section, a multiple of the alignment); then
 * padding to `general.alignment` (32) and the tensors' data, each padded to the alignment.
 *
 * The writer streams: each tensor's data comes from a callback that hands over its bytes a piece at
 * a time, so a 1.5B model is never held in memory.
 */
import { closeSync, openSync, renameSync, writeSync } from 'node:fs';
import { float16BitsToFloat32, float32ToFloat16Bits } from '../test/fixtures/onnx/graph';

export const GGUF_MAGIC = 0x46554747; // "GGUF" read as a little-endian u32
export const GGUF_VERSION = 3;
export const GGUF_ALIGNMENT = 32;

/** ggml_type values (ggml.h) of the tensor types this writer knows. */
export enum GgmlType {
  F32 = 0,
  F16 = 1,
  Q4_0 = 2,
  Q5_0 = 6,
  Q8_0 = 8,
  Q4_K = 12,
  Q6_K = 14,
}

/** llama_ftype values (llama.h) written as general.file_type. */
export enum LlamaFileType {
  F32 = 0,
  Q4_0 = 2,
  Q4_K_M = 15,
}

/** Weights per block and bytes per block of each type (ggml's type traits). */
export const BLOCK: Readonly<Record<GgmlType, { weights: number; bytes: number }>> = {
  [GgmlType.F32]: { weights: 1, bytes: 4 },
  [GgmlType.F16]: { weights: 1, bytes: 2 },
  [GgmlType.Q4_0]: { weights: 32, bytes: 18 },
  [GgmlType.Q5_0]: { weights: 32, bytes: 22 },
  [GgmlType.Q8_0]: { weights: 32, bytes: 34 },
  [GgmlType.Q4_K]: { weights: 256, bytes: 144 },
  [GgmlType.Q6_K]: { weights: 256, bytes: 210 },
};

export const QK_K = 256;

/** Bytes of `n` values of `type` (n a multiple of its block). */
export function typeBytes(type: GgmlType, n: number): number {
  const b = BLOCK[type];
  if (n % b.weights) throw new Error(`${GgmlType[type]}: ${n} values are not a whole number of ${b.weights}-value blocks`);
  return (n / b.weights) * b.bytes;
}

// gguf_type (the metadata value types).
export enum GgufValueType {
  UINT8 = 0,
  INT8 = 1,
  UINT16 = 2,
  INT16 = 3,
  UINT32 = 4,
  INT32 = 5,
  FLOAT32 = 6,
  BOOL = 7,
  STRING = 8,
  ARRAY = 9,
  UINT64 = 10,
  INT64 = 11,
  FLOAT64 = 12,
}

export type GgufScalar =
  | { type: GgufValueType.UINT32 | GgufValueType.INT32 | GgufValueType.FLOAT32 | GgufValueType.UINT64 | GgufValueType.UINT8; value: number }
  | { type: GgufValueType.BOOL; value: boolean }
  | { type: GgufValueType.STRING; value: string };

export type GgufValue =
  | GgufScalar
  | { type: GgufValueType.ARRAY; itemType: GgufValueType.STRING; values: readonly string[] }
  | { type: GgufValueType.ARRAY; itemType: GgufValueType.INT32 | GgufValueType.UINT32 | GgufValueType.FLOAT32; values: ArrayLike<number> };

export const u32 = (value: number): GgufValue => ({ type: GgufValueType.UINT32, value });
export const i32 = (value: number): GgufValue => ({ type: GgufValueType.INT32, value });
export const f32 = (value: number): GgufValue => ({ type: GgufValueType.FLOAT32, value });
export const bool = (value: boolean): GgufValue => ({ type: GgufValueType.BOOL, value });
export const str = (value: string): GgufValue => ({ type: GgufValueType.STRING, value });
export const strings = (values: readonly string[]): GgufValue => ({ type: GgufValueType.ARRAY, itemType: GgufValueType.STRING, values });
export const i32s = (values: ArrayLike<number>): GgufValue => ({ type: GgufValueType.ARRAY, itemType: GgufValueType.INT32, values });

/** One tensor: its dims in ggml order (ne[0] first), its type, and a producer of its bytes in order. */
export interface GgufTensor {
  name: string;
  dims: number[];
  type: GgmlType;
  /** Calls `emit` with the tensor's bytes, in order, a piece at a time; all pieces add up to its size. */
  write(emit: (bytes: Uint8Array) => void): void;
}

/** Grows a byte buffer of the header. */
class ByteSink {
  private buf = new Uint8Array(1 << 16);
  private view = new DataView(this.buf.buffer);
  length = 0;

  private reserve(n: number): void {
    if (this.length + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.length + n) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buf.subarray(0, this.length));
    this.buf = next;
    this.view = new DataView(next.buffer);
  }

  u8(v: number): void {
    this.reserve(1);
    this.view.setUint8(this.length, v);
    this.length += 1;
  }
  u32(v: number): void {
    this.reserve(4);
    this.view.setUint32(this.length, v, true);
    this.length += 4;
  }
  i32(v: number): void {
    this.reserve(4);
    this.view.setInt32(this.length, v, true);
    this.length += 4;
  }
  f32(v: number): void {
    this.reserve(4);
    this.view.setFloat32(this.length, v, true);
    this.length += 4;
  }
  u64(v: number): void {
    this.reserve(8);
    this.view.setBigUint64(this.length, BigInt(v), true);
    this.length += 8;
  }
  string(s: string): void {
    const b = Buffer.from(s, 'utf8');
    this.u64(b.length);
    this.reserve(b.length);
    this.buf.set(b, this.length);
    this.length += b.length;
  }
  pad(alignment: number): void {
    const n = (alignment - (this.length % alignment)) % alignment;
    this.reserve(n);
    this.buf.fill(0, this.length, this.length + n);
    this.length += n;
  }
  bytes(): Uint8Array {
    return this.buf.subarray(0, this.length);
  }
}

function writeValue(s: ByteSink, v: GgufValue): void {
  switch (v.type) {
    case GgufValueType.UINT8:
      return s.u8(v.value);
    case GgufValueType.UINT32:
      return s.u32(v.value);
    case GgufValueType.INT32:
      return s.i32(v.value);
    case GgufValueType.FLOAT32:
      return s.f32(v.value);
    case GgufValueType.UINT64:
      return s.u64(v.value);
    case GgufValueType.BOOL:
      return s.u8(v.value ? 1 : 0);
    case GgufValueType.STRING:
      return s.string(v.value);
    case GgufValueType.ARRAY: {
      s.u32(v.itemType);
      s.u64(v.values.length);
      if (v.itemType === GgufValueType.STRING) for (const x of v.values as readonly string[]) s.string(x);
      else {
        const vals = v.values as ArrayLike<number>;
        for (let i = 0; i < vals.length; i++) {
          if (v.itemType === GgufValueType.INT32) s.i32(vals[i]!);
          else if (v.itemType === GgufValueType.UINT32) s.u32(vals[i]!);
          else s.f32(vals[i]!);
        }
      }
      return;
    }
  }
}

/** Bytes of a tensor's data (its dims' product in its type). */
export function tensorBytes(t: Pick<GgufTensor, 'dims' | 'type'>): number {
  return typeBytes(t.type, t.dims.reduce((a, b) => a * b, 1));
}

/**
 * Writes a GGUF file: the metadata in the given order (general.alignment is added when absent),
 * the tensors' infos and their data, each at an offset aligned to 32 bytes. Written to a temporary
 * sibling and renamed, so a reader never sees half a file. Returns the file's size.
 */
export function writeGguf(path: string, metadata: ReadonlyArray<readonly [string, GgufValue]>, tensors: readonly GgufTensor[]): number {
  const kv = [...metadata];
  if (!kv.some(([k]) => k === 'general.alignment')) kv.push(['general.alignment', u32(GGUF_ALIGNMENT)]);
  const s = new ByteSink();
  s.u32(GGUF_MAGIC);
  s.u32(GGUF_VERSION);
  s.u64(tensors.length);
  s.u64(kv.length);
  for (const [k, v] of kv) {
    s.string(k);
    s.u32(v.type);
    writeValue(s, v);
  }
  let offset = 0;
  const align = (n: number) => Math.ceil(n / GGUF_ALIGNMENT) * GGUF_ALIGNMENT;
  for (const t of tensors) {
    s.string(t.name);
    s.u32(t.dims.length);
    for (const d of t.dims) s.u64(d);
    s.u32(t.type);
    s.u64(offset);
    offset = align(offset + tensorBytes(t));
  }
  s.pad(GGUF_ALIGNMENT);
  const tmp = `${path}.${process.pid}.tmp`;
  const fd = openSync(tmp, 'w');
  let total = 0;
  try {
    const put = (b: Uint8Array) => {
      let done = 0;
      while (done < b.length) done += writeSync(fd, b, done, b.length - done);
      total += b.length;
    };
    put(s.bytes());
    const zeros = new Uint8Array(GGUF_ALIGNMENT);
    for (const t of tensors) {
      const want = tensorBytes(t);
      let got = 0;
      t.write((b) => {
        got += b.length;
        put(b);
      });
      if (got !== want) throw new Error(`tensor ${t.name}: wrote ${got} bytes, expected ${want} (${GgmlType[t.type]} ${t.dims.join('x')})`);
      const pad = align(want) - want;
      if (pad) put(zeros.subarray(0, pad));
    }
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
  return total;
}

// ---------------------------------------------------------------------------------------------
// Block quantization (ggml-common.h layouts). Each takes whole rows (length a multiple of the
// block) and returns the blocks' bytes; each dequantize is ggml's dequantize_row_*.

/** float32 → fp16 bits, as GGML_FP32_TO_FP16 (round to nearest even). */
const toHalf = (x: number) => float32ToFloat16Bits(x);
const fromHalf = (h: number) => float16BitsToFloat32(h);
/** The float32 value of x (C's float arithmetic). */
const fr = Math.fround;
/** ggml's nearest_int: round half to even, as lrintf. */
function nearestInt(x: number): number {
  const r = Math.round(x);
  return r - x === 0.5 && r % 2 !== 0 ? r - 1 : r;
}
/** C's roundf: half away from zero. */
const roundf = (x: number) => (x < 0 ? -Math.floor(-x + 0.5) : Math.floor(x + 0.5));
/** C's (int8_t) cast of a float in range: truncation toward zero. */
const trunc = (x: number) => Math.trunc(x);

/** Q4_0: per 32 values, d = (the value of largest magnitude, signed) / −8 as fp16, then 16 bytes; byte j holds value j in its low nibble and value j + 16 in its high one; x = (q − 8)·d. */
export function quantizeQ4_0(x: Float32Array): Uint8Array {
  const nb = x.length / 32;
  if (!Number.isInteger(nb)) throw new Error('Q4_0: length must be a multiple of 32');
  const out = new Uint8Array(nb * 18);
  const view = new DataView(out.buffer);
  for (let i = 0; i < nb; i++) {
    let amax = 0;
    let max = 0;
    for (let j = 0; j < 32; j++) {
      const v = x[i * 32 + j]!;
      if (amax < Math.abs(v)) {
        amax = Math.abs(v);
        max = v;
      }
    }
    const d = fr(max / -8);
    const id = d ? fr(1 / d) : 0;
    view.setUint16(i * 18, toHalf(d), true);
    for (let j = 0; j < 16; j++) {
      const x0 = fr(x[i * 32 + j]! * id);
      const x1 = fr(x[i * 32 + 16 + j]! * id);
      const q0 = Math.min(15, trunc(fr(x0 + 8.5)));
      const q1 = Math.min(15, trunc(fr(x1 + 8.5)));
      out[i * 18 + 2 + j] = q0 | (q1 << 4);
    }
  }
  return out;
}

export function dequantizeQ4_0(b: Uint8Array, n: number): Float32Array {
  const out = new Float32Array(n);
  const view = new DataView(b.buffer, b.byteOffset, b.byteLength);
  for (let i = 0; i < n / 32; i++) {
    const d = fromHalf(view.getUint16(i * 18, true));
    for (let j = 0; j < 16; j++) {
      const q = b[i * 18 + 2 + j]!;
      out[i * 32 + j] = ((q & 0x0f) - 8) * d;
      out[i * 32 + 16 + j] = ((q >> 4) - 8) * d;
    }
  }
  return out;
}

/** Q5_0: d = max / −16 (fp16), qh u32 (the fifth bits: bit j of value j, bit j + 16 of value j + 16), 16 bytes of low nibbles as Q4_0; x = (q − 16)·d. */
export function quantizeQ5_0(x: Float32Array): Uint8Array {
  const nb = x.length / 32;
  if (!Number.isInteger(nb)) throw new Error('Q5_0: length must be a multiple of 32');
  const out = new Uint8Array(nb * 22);
  const view = new DataView(out.buffer);
  for (let i = 0; i < nb; i++) {
    let amax = 0;
    let max = 0;
    for (let j = 0; j < 32; j++) {
      const v = x[i * 32 + j]!;
      if (amax < Math.abs(v)) {
        amax = Math.abs(v);
        max = v;
      }
    }
    const d = fr(max / -16);
    const id = d ? fr(1 / d) : 0;
    view.setUint16(i * 22, toHalf(d), true);
    let qh = 0;
    for (let j = 0; j < 16; j++) {
      const q0 = Math.min(31, trunc(fr(fr(x[i * 32 + j]! * id) + 16.5)));
      const q1 = Math.min(31, trunc(fr(fr(x[i * 32 + 16 + j]! * id) + 16.5)));
      out[i * 22 + 6 + j] = (q0 & 0x0f) | ((q1 & 0x0f) << 4);
      qh |= ((q0 & 0x10) >>> 4) << j;
      qh |= ((q1 & 0x10) >>> 4) << (j + 16);
    }
    view.setUint32(i * 22 + 2, qh >>> 0, true);
  }
  return out;
}

export function dequantizeQ5_0(b: Uint8Array, n: number): Float32Array {
  const out = new Float32Array(n);
  const view = new DataView(b.buffer, b.byteOffset, b.byteLength);
  for (let i = 0; i < n / 32; i++) {
    const d = fromHalf(view.getUint16(i * 22, true));
    const qh = view.getUint32(i * 22 + 2, true);
    for (let j = 0; j < 16; j++) {
      const q = b[i * 22 + 6 + j]!;
      const h0 = ((qh >>> j) << 4) & 0x10;
      const h1 = (qh >>> (j + 12)) & 0x10;
      out[i * 32 + j] = (((q & 0x0f) | h0) - 16) * d;
      out[i * 32 + 16 + j] = (((q >> 4) | h1) - 16) * d;
    }
  }
  return out;
}

/** Q8_0: d = amax / 127 (fp16), 32 int8 values rounded to nearest; x = q·d. */
export function quantizeQ8_0(x: Float32Array): Uint8Array {
  const nb = x.length / 32;
  if (!Number.isInteger(nb)) throw new Error('Q8_0: length must be a multiple of 32');
  const out = new Uint8Array(nb * 34);
  const view = new DataView(out.buffer);
  for (let i = 0; i < nb; i++) {
    let amax = 0;
    for (let j = 0; j < 32; j++) amax = Math.max(amax, Math.abs(x[i * 32 + j]!));
    const d = fr(amax / 127);
    const id = d ? fr(1 / d) : 0;
    view.setUint16(i * 34, toHalf(d), true);
    for (let j = 0; j < 32; j++) view.setInt8(i * 34 + 2 + j, roundf(fr(x[i * 32 + j]! * id)));
  }
  return out;
}

export function dequantizeQ8_0(b: Uint8Array, n: number): Float32Array {
  const out = new Float32Array(n);
  const view = new DataView(b.buffer, b.byteOffset, b.byteLength);
  for (let i = 0; i < n / 32; i++) {
    const d = fromHalf(view.getUint16(i * 34, true));
    for (let j = 0; j < 32; j++) out[i * 32 + j] = view.getInt8(i * 34 + 2 + j) * d;
  }
  return out;
}

/**
 * Q4_K: per 256 values, d and dmin (fp16), 12 bytes of 6-bit scales and mins of the eight 32-value
 * sub-blocks (ggml's packing: j < 4 in the low 6 bits of bytes j and j + 4, j ≥ 4 split over the
 * nibbles of byte j + 4 and the top bits of bytes j − 4 and j), 128 bytes of nibbles (per 64
 * values, byte l holds value l low and value l + 32 high); x = d·sc·q − dmin·m.
 * Each sub-block is fitted by its min (≤ 0) and max.
 */
export function quantizeQ4_K(x: Float32Array): Uint8Array {
  const nb = x.length / QK_K;
  if (!Number.isInteger(nb)) throw new Error('Q4_K: length must be a multiple of 256');
  const out = new Uint8Array(nb * 144);
  const view = new DataView(out.buffer);
  const scales = new Float32Array(8);
  const mins = new Float32Array(8);
  const L = new Uint8Array(QK_K);
  for (let i = 0; i < nb; i++) {
    const base = i * QK_K;
    let maxScale = 0;
    let maxMin = 0;
    for (let j = 0; j < 8; j++) {
      let lo = 0;
      let hi = -Infinity;
      for (let l = 0; l < 32; l++) {
        const v = x[base + j * 32 + l]!;
        if (v < lo) lo = v;
        if (v > hi) hi = v;
      }
      scales[j] = (hi - lo) / 15;
      mins[j] = -lo;
      maxScale = Math.max(maxScale, scales[j]!);
      maxMin = Math.max(maxMin, mins[j]!);
    }
    const invScale = maxScale > 0 ? 63 / maxScale : 0;
    const invMin = maxMin > 0 ? 63 / maxMin : 0;
    const o = i * 144;
    const d = fromHalf(toHalf(maxScale / 63));
    const dmin = fromHalf(toHalf(maxMin / 63));
    view.setUint16(o, toHalf(maxScale / 63), true);
    view.setUint16(o + 2, toHalf(maxMin / 63), true);
    const sc = out.subarray(o + 4, o + 16);
    const ls = new Uint8Array(8);
    const lm = new Uint8Array(8);
    for (let j = 0; j < 8; j++) {
      ls[j] = Math.min(63, nearestInt(invScale * scales[j]!));
      lm[j] = Math.min(63, nearestInt(invMin * mins[j]!));
      if (j < 4) {
        sc[j] = ls[j]!;
        sc[j + 4] = lm[j]!;
      } else {
        sc[j + 4] = (ls[j]! & 0x0f) | ((lm[j]! & 0x0f) << 4);
        sc[j - 4]! |= (ls[j]! >> 4) << 6;
        sc[j]! |= (lm[j]! >> 4) << 6;
      }
    }
    for (let j = 0; j < 8; j++) {
      const dl = d * ls[j]!;
      const ml = dmin * lm[j]!;
      for (let l = 0; l < 32; l++) {
        const q = dl ? nearestInt((x[base + j * 32 + l]! + ml) / dl) : 0;
        L[j * 32 + l] = Math.max(0, Math.min(15, q));
      }
    }
    const qs = out.subarray(o + 16, o + 144);
    for (let j = 0, q = 0; j < QK_K; j += 64, q += 32) for (let l = 0; l < 32; l++) qs[q + l] = L[j + l]! | (L[j + l + 32]! << 4);
  }
  return out;
}

/** ggml's get_scale_min_k4. */
function scaleMinK4(j: number, q: Uint8Array): [number, number] {
  if (j < 4) return [q[j]! & 63, q[j + 4]! & 63];
  return [(q[j + 4]! & 0x0f) | ((q[j - 4]! >> 6) << 4), (q[j + 4]! >> 4) | ((q[j]! >> 6) << 4)];
}

export function dequantizeQ4_K(b: Uint8Array, n: number): Float32Array {
  const out = new Float32Array(n);
  const view = new DataView(b.buffer, b.byteOffset, b.byteLength);
  for (let i = 0; i < n / QK_K; i++) {
    const o = i * 144;
    const d = fromHalf(view.getUint16(o, true));
    const dmin = fromHalf(view.getUint16(o + 2, true));
    const sc = b.subarray(o + 4, o + 16);
    let y = i * QK_K;
    let q = o + 16;
    for (let j = 0, is = 0; j < QK_K; j += 64, is += 2, q += 32) {
      const [s1, m1] = scaleMinK4(is, sc);
      const [s2, m2] = scaleMinK4(is + 1, sc);
      for (let l = 0; l < 32; l++) out[y + l] = d * s1 * (b[q + l]! & 0x0f) - dmin * m1;
      for (let l = 0; l < 32; l++) out[y + 32 + l] = d * s2 * (b[q + l]! >> 4) - dmin * m2;
      y += 64;
    }
  }
  return out;
}

/**
 * Q6_K: per 256 values, 128 bytes of low nibbles (ql), 64 bytes of high 2-bit pairs (qh), 16 int8
 * scales of 16-value sub-blocks, d (fp16) last; x = d·sc·(q − 32). Layout per 128 values: ql[l]
 * holds values l (low) and l + 64 (high), ql[l + 32] values l + 32 and l + 96, qh[l] the top bits of
 * values l, l + 32, l + 64, l + 96. Each sub-block's scale is its signed largest value / −32.
 */
export function quantizeQ6_K(x: Float32Array): Uint8Array {
  const nb = x.length / QK_K;
  if (!Number.isInteger(nb)) throw new Error('Q6_K: length must be a multiple of 256');
  const out = new Uint8Array(nb * 210);
  const view = new DataView(out.buffer);
  const sub = new Float32Array(16);
  const L = new Uint8Array(QK_K);
  for (let i = 0; i < nb; i++) {
    const base = i * QK_K;
    let maxScale = 0;
    let maxAbs = 0;
    for (let ib = 0; ib < 16; ib++) {
      let amax = 0;
      let max = 0;
      for (let l = 0; l < 16; l++) {
        const v = x[base + ib * 16 + l]!;
        if (Math.abs(v) > amax) {
          amax = Math.abs(v);
          max = v;
        }
      }
      sub[ib] = max / -32;
      if (Math.abs(sub[ib]!) > maxAbs) {
        maxAbs = Math.abs(sub[ib]!);
        maxScale = sub[ib]!;
      }
    }
    const o = i * 210;
    if (maxAbs === 0) continue; // all zeros: d = 0, ql/qh/scales 0 (q − 32 times 0)
    const iscale = -128 / maxScale;
    const dBits = toHalf(1 / iscale);
    const d = fromHalf(dBits);
    view.setUint16(o + 208, dBits, true);
    for (let ib = 0; ib < 16; ib++) {
      const s = Math.max(-128, Math.min(127, nearestInt(iscale * sub[ib]!)));
      view.setInt8(o + 192 + ib, s);
      const ds = d * s;
      for (let l = 0; l < 16; l++) {
        const q = ds ? nearestInt(x[base + ib * 16 + l]! / ds) : 0;
        L[ib * 16 + l] = Math.max(-32, Math.min(31, q)) + 32;
      }
    }
    for (let j = 0; j < QK_K; j += 128) {
      const ql = o + j / 2;
      const qh = o + 128 + j / 4;
      for (let l = 0; l < 32; l++) {
        const q1 = L[j + l]!;
        const q2 = L[j + l + 32]!;
        const q3 = L[j + l + 64]!;
        const q4 = L[j + l + 96]!;
        out[ql + l] = (q1 & 0x0f) | ((q3 & 0x0f) << 4);
        out[ql + l + 32] = (q2 & 0x0f) | ((q4 & 0x0f) << 4);
        out[qh + l] = (q1 >> 4) | ((q2 >> 4) << 2) | ((q3 >> 4) << 4) | ((q4 >> 4) << 6);
      }
    }
  }
  return out;
}

export function dequantizeQ6_K(b: Uint8Array, n: number): Float32Array {
  const out = new Float32Array(n);
  const view = new DataView(b.buffer, b.byteOffset, b.byteLength);
  for (let i = 0; i < n / QK_K; i++) {
    const o = i * 210;
    const d = fromHalf(view.getUint16(o + 208, true));
    for (let half = 0; half < 2; half++) {
      const ql = o + half * 64;
      const qh = o + 128 + half * 32;
      const sc = o + 192 + half * 8;
      const y = i * QK_K + half * 128;
      for (let l = 0; l < 32; l++) {
        const is = l >> 4;
        const h = b[qh + l]!;
        const q1 = ((b[ql + l]! & 0x0f) | ((h & 3) << 4)) - 32;
        const q2 = ((b[ql + l + 32]! & 0x0f) | (((h >> 2) & 3) << 4)) - 32;
        const q3 = ((b[ql + l]! >> 4) | (((h >> 4) & 3) << 4)) - 32;
        const q4 = ((b[ql + l + 32]! >> 4) | (((h >> 6) & 3) << 4)) - 32;
        out[y + l] = d * view.getInt8(sc + is) * q1;
        out[y + l + 32] = d * view.getInt8(sc + is + 2) * q2;
        out[y + l + 64] = d * view.getInt8(sc + is + 4) * q3;
        out[y + l + 96] = d * view.getInt8(sc + is + 6) * q4;
      }
    }
  }
  return out;
}

/** Values → bytes of `type` (F32 as little-endian floats). */
export function quantize(type: GgmlType, x: Float32Array): Uint8Array {
  switch (type) {
    case GgmlType.F32:
      return new Uint8Array(x.buffer.slice(x.byteOffset, x.byteOffset + x.byteLength));
    case GgmlType.F16: {
      const h = new Uint16Array(x.length);
      for (let i = 0; i < x.length; i++) h[i] = toHalf(x[i]!);
      return new Uint8Array(h.buffer);
    }
    case GgmlType.Q4_0:
      return quantizeQ4_0(x);
    case GgmlType.Q5_0:
      return quantizeQ5_0(x);
    case GgmlType.Q8_0:
      return quantizeQ8_0(x);
    case GgmlType.Q4_K:
      return quantizeQ4_K(x);
    case GgmlType.Q6_K:
      return quantizeQ6_K(x);
  }
}

/** Bytes of `type` → `n` values. */
export function dequantize(type: GgmlType, b: Uint8Array, n: number): Float32Array {
  switch (type) {
    case GgmlType.F32:
      return new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + n * 4));
    case GgmlType.F16: {
      const out = new Float32Array(n);
      const view = new DataView(b.buffer, b.byteOffset, b.byteLength);
      for (let i = 0; i < n; i++) out[i] = fromHalf(view.getUint16(i * 2, true));
      return out;
    }
    case GgmlType.Q4_0:
      return dequantizeQ4_0(b, n);
    case GgmlType.Q5_0:
      return dequantizeQ5_0(b, n);
    case GgmlType.Q8_0:
      return dequantizeQ8_0(b, n);
    case GgmlType.Q4_K:
      return dequantizeQ4_K(b, n);
    case GgmlType.Q6_K:
      return dequantizeQ6_K(b, n);
  }
}
