/**
 * Field-level protobuf over a model file, shared by every part of the prepared copy: reading
 * fields from a window over the file (the weights are never loaded), writing tags and lengths,
 * the output as segments (new bytes, or ranges copied from the source), and GraphField, one field
 * of the graph message with what the rewrites decoded of it and did to it.
 */
import type { FileHandle } from 'node:fs/promises';
import type { onnx } from 'onnx-proto';

const WINDOW = 1 << 20;

export class FileReader {
  private buf = Buffer.alloc(WINDOW);
  private bufStart = 0;
  private bufLen = 0;

  constructor(
    readonly fh: FileHandle,
    readonly size: number,
  ) {}

  private async fill(pos: number, need: number): Promise<void> {
    if (pos >= this.bufStart && pos + need <= this.bufStart + this.bufLen) return;
    if (need > this.buf.length) this.buf = Buffer.alloc(need);
    const { bytesRead } = await this.fh.read(this.buf, 0, this.buf.length, pos);
    this.bufStart = pos;
    this.bufLen = bytesRead;
    if (bytesRead < Math.min(need, this.size - pos)) throw new Error(`short read at ${pos}`);
  }

  /** Reads a varint at `pos`; returns [value, bytes used]. */
  async varint(pos: number): Promise<[number, number]> {
    await this.fill(pos, Math.min(10, this.size - pos));
    let v = 0;
    let mul = 1;
    for (let i = 0; i < 10; i++) {
      if (pos + i >= this.size) throw new Error('truncated varint');
      const b = this.buf[pos - this.bufStart + i]!;
      v += (b & 0x7f) * mul;
      mul *= 128;
      if (!(b & 0x80)) return [v, i + 1];
    }
    throw new Error('bad varint');
  }

  async bytes(pos: number, len: number): Promise<Uint8Array> {
    if (pos + len > this.size) throw new Error('field runs past the end of the file');
    await this.fill(pos, len);
    return Uint8Array.from(this.buf.subarray(pos - this.bufStart, pos - this.bufStart + len));
  }
}

export interface Field {
  field: number;
  wire: number;
  /** Start of the tag. */
  start: number;
  /** Start of the payload (after the length for LEN fields). */
  payload: number;
  /** Payload length. */
  len: number;
  /** End of the field. */
  end: number;
}

export async function readField(r: FileReader, pos: number): Promise<Field> {
  const [tag, tn] = await r.varint(pos);
  const field = Math.floor(tag / 8);
  const wire = tag % 8;
  let p = pos + tn;
  let len: number;
  if (wire === 0) {
    const [, n] = await r.varint(p);
    len = n;
  } else if (wire === 1) len = 8;
  else if (wire === 5) len = 4;
  else if (wire === 2) {
    const [l, n] = await r.varint(p);
    p += n;
    len = l;
  } else throw new Error(`unsupported wire type ${wire}`);
  const end = p + len;
  if (end > r.size) throw new Error('field runs past the end of the file');
  return { field, wire, start: pos, payload: p, len, end };
}

/** A protobuf varint (also used by the benchmark model writer). */
export function varintBytes(n: number): number[] {
  const out: number[] = [];
  while (n >= 0x80) {
    out.push((n % 0x80) | 0x80);
    n = Math.floor(n / 0x80);
  }
  out.push(n);
  return out;
}

/** The tag and length of a length-delimited protobuf field whose payload follows. */
export function lenField(field: number, payloadLen: number): Uint8Array {
  return Uint8Array.from([...varintBytes((field << 3) | 2), ...varintBytes(payloadLen)]);
}

/**
 * A range of bytes of the source model file, or of one of its external data files (`file`, relative
 * to the model's folder, as TensorProto.external_data names it).
 */
export interface SourceRange {
  from: number;
  len: number;
  file?: string;
}

/** A piece of the output: bytes, or a range copied from the source. */
export type Segment = Uint8Array | SourceRange;

export function segLen(s: Segment): number {
  return s instanceof Uint8Array ? s.length : s.len;
}

/** What the fusion needs of an initializer: its name, type, shape and where its raw bytes are. */
export interface InitializerHeader {
  name: string;
  dims: number[];
  dataType: number;
  /** Where its bytes are: raw_data in the model file, or a range of an external data file. */
  raw?: SourceRange;
  /** Data held any other way (typed fields, segments, external data we cannot place): not fused. */
  otherData: boolean;
  /** The data are in an external file (TensorProto.data_location EXTERNAL, or external_data entries). */
  external: boolean;
}

export async function readInitializerHeader(r: FileReader, f: Field): Promise<InitializerHeader> {
  const h: InitializerHeader = { name: '', dims: [], dataType: 0, otherData: false, external: false };
  const ext = new Map<string, string>();
  for (let q = f.payload; q < f.end; ) {
    const g = await readField(r, q);
    if (g.field === 1 && g.wire === 0) h.dims.push((await r.varint(g.payload))[0]);
    else if (g.field === 1 && g.wire === 2) {
      for (let p = g.payload; p < g.end; ) {
        const [v, n] = await r.varint(p);
        h.dims.push(v);
        p += n;
      }
    } else if (g.field === 2 && g.wire === 0) h.dataType = (await r.varint(g.payload))[0];
    else if (g.field === 8 && g.wire === 2) h.name = new TextDecoder().decode(await r.bytes(g.payload, g.len));
    else if (g.field === 9 && g.wire === 2) h.raw = { from: g.payload, len: g.len };
    else if (g.field === 13 && g.wire === 2) {
      // external_data: a StringStringEntryProto (key 1, value 2) such as location / offset / length.
      const entry: string[] = [];
      for (let p = g.payload; p < g.end; ) {
        const e = await readField(r, p);
        if (e.wire === 2 && (e.field === 1 || e.field === 2)) entry[e.field - 1] = new TextDecoder().decode(await r.bytes(e.payload, e.len));
        p = e.end;
      }
      if (entry[0] !== undefined) ext.set(entry[0], entry[1] ?? '');
      h.external = true;
    } else if (g.field === 14 && g.wire === 0) {
      if ((await r.varint(g.payload))[0] === 1) h.external = true; // data_location EXTERNAL
    } else if (g.field !== 12) h.otherData = true; // 12: doc_string
    q = g.end;
  }
  if (h.external) {
    // A range of a data file beside the model: a plain relative name, with its offset and length.
    const location = ext.get('location') ?? '';
    const offset = Number(ext.get('offset') ?? '0');
    const length = Number(ext.get('length') ?? 'NaN');
    const plain = location !== '' && !location.split(/[\\/]/).includes('..') && !/^([\\/]|[A-Za-z]:)/.test(location);
    if (plain && Number.isSafeInteger(offset) && offset >= 0 && Number.isSafeInteger(length) && length >= 0 && !h.raw) h.raw = { file: location, from: offset, len: length };
    else h.otherData = true;
  }
  return h;
}

export interface GraphField {
  f: Field;
  node?: onnx.NodeProto;
  output?: onnx.ValueInfoProto;
  init?: InitializerHeader;
  /** Name of a graph input (field 11). */
  graphInput?: string;
  changed?: boolean;
  /** Left out of the copy (a node or initializer the fusion replaced). */
  dropped?: boolean;
  /** Nodes emitted before / after this field. */
  before?: onnx.NodeProto[];
  after?: onnx.NodeProto[];
}

/** A protobuf TensorProto (graph initializer, field 5) whose raw data are source ranges. */
export function tensorFromRanges(name: string, dataType: number, dims: number[], ranges: readonly SourceRange[]): Segment[] {
  const head: number[] = [];
  for (const d of dims) head.push(0x08, ...varintBytes(d)); // dims, field 1
  head.push(0x10, ...varintBytes(dataType)); // data_type, field 2
  const nameBytes = new TextEncoder().encode(name);
  head.push(...lenField(8, nameBytes.length), ...nameBytes);
  const rawLen = ranges.reduce((a, x) => a + x.len, 0);
  const rawTag = lenField(9, rawLen);
  const payload = head.length + rawTag.length + rawLen;
  return [lenField(5, payload), Uint8Array.from(head), rawTag, ...ranges.map((x) => ({ ...x }))];
}
