/**
 * The prepared CPU model. ONNX Runtime's MatMulNBits computes in float32 when its
 * `accuracy_level` attribute is absent or 0 (how transformers.js's quantizer leaves q4 exports),
 * and with int8 dot products when it is 4: on a 2-core x64 machine the linear layers of the 1.5B
 * model take 188 ms a token at level 0 and 43 ms at level 4. ONNX Runtime 1.30 has no session
 * option that overrides the attribute, so on the CPU the engine writes a copy of the model once,
 * with accuracy_level 4 on those nodes, and loads that copy from then on. The same copy gets graph
 * rewrites that save work at run time (GraphRewrites: logits of the last position only, new KV
 * rows only, MatMulNBits sharing an input fused into one wider node, and each layer's attention as
 * one GroupQueryAttention node, prepareAttention.ts). The attention rewrite is the one that
 * depends on the export's inner structure, so it is kept only when `PrepareOptions.verify`
 * (prepareCheck.ts) finds the same logits as a copy without it.
 *
 * The copy is streamed: the ModelProto is walked at the protobuf field level, only NodeProto
 * messages of the graph (and the headers of initializers) are decoded and re-encoded, and the
 * weights (2 GB for the 1.5B q4 file) are copied through byte for byte in chunks, also when fusion
 * concatenates them. Memory stays a few MB.
 *
 * Where: next to nothing the user owns. Models without external data go to a cache folder
 * (`LoadOptions.cacheDir`, else the user cache: `$XDG_CACHE_HOME/r1-coder/prepared`,
 * `~/Library/Caches/r1-coder/prepared`, `%LOCALAPPDATA%\r1-coder\prepared`), named by a key over
 * the source's path, size, mtime and first MB, so a changed source is prepared again; older copies
 * of the same source are removed. Models with external data files are prepared next to the source
 * (relative data paths must resolve) when that folder is writable, else not at all.
 */
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, readdirSync } from 'node:fs';
import { type FileHandle, mkdir, open, rename, rm, stat, statfs, unlink } from 'node:fs/promises';
import { homedir } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { onnx } from 'onnx-proto';
import { type AttentionShape, rewriteAttention } from './prepareAttention';

/** Bump when the rewrite changes, so older prepared copies are not reused. */
export const PREPARE_VERSION = 4;
export const CPU_ACCURACY_LEVEL = 4;

export interface PrepareOptions extends GraphRewrites {
  /** Folder for prepared copies (default: the user cache folder, see defaultPrepareCacheDir). */
  cacheDir?: string;
  /** accuracy_level written on MatMulNBits nodes that have none (or 0). Default 4. */
  accuracyLevel?: number;
  /** config.json's attention numbers: without them the attention is not rewritten. */
  attentionShape?: AttentionShape;
  /**
   * Compares a copy without the attention rewrite (`plain`) and one with it (`candidate`): resolves
   * to undefined when they compute the same logits, else to why not. Without it the attention is
   * not rewritten: the rewrite anchors on an export we cannot inspect, so it is kept only when this
   * check passes on the user's own model.
   */
  verify?: (plain: string, candidate: string) => Promise<string | undefined>;
  /** What the verdict of `verify` depends on (its own version, ONNX Runtime's): part of the prepared copy's key. */
  verifyVersion?: string;
}

export interface PrepareResult {
  /** The file to load: the prepared copy, or the source when nothing needed (or could be) prepared. */
  file: string;
  prepared: boolean;
  /** True when an earlier prepared copy was reused. */
  reused: boolean;
  /** MatMulNBits nodes rewritten (0 when the copy was reused or nothing needed rewriting). */
  rewrittenNodes: number;
  /** Set when the copy was written now: the graph rewrites applied. */
  lastLogits?: boolean;
  kvNewRows?: boolean;
  /** MatMulNBits nodes that now run as fewer, wider nodes (e.g. q/k/v → one), and into how many. */
  fusedMatMuls?: { from: number; to: number };
  /** Layers whose attention runs as GroupQueryAttention in the copy (0 when not rewritten or rejected). */
  attentionLayers?: number;
  /** Why the attention rewrite was made but not kept (the verify check failed). */
  attentionRejected?: string;
  /** Why no prepared copy is used, when `prepared` is false. */
  reason?: string;
  ms: number;
}

/** The platform's user cache folder for prepared models. */
export function defaultPrepareCacheDir(env: NodeJS.ProcessEnv = process.env, platform: NodeJS.Platform = process.platform): string {
  if (platform === 'win32') return join(env.LOCALAPPDATA || join(homedir(), 'AppData', 'Local'), 'r1-coder', 'prepared');
  if (platform === 'darwin') return join(homedir(), 'Library', 'Caches', 'r1-coder', 'prepared');
  return join(env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'r1-coder', 'prepared');
}

// ---------------------------------------------------------------------------------------------
// Field-level protobuf reading over a file.

const WINDOW = 1 << 20;

class FileReader {
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

interface Field {
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

async function readField(r: FileReader, pos: number): Promise<Field> {
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

/** A piece of the output: bytes, or a range copied from the source. */
type Segment = Uint8Array | { from: number; len: number };

function segLen(s: Segment): number {
  return s instanceof Uint8Array ? s.length : s.len;
}

/** Nodes larger than this (e.g. an If with whole subgraphs inside) are copied as they are. */
const MAX_NODE_DECODE = 16 << 20;

/** Sets accuracy_level on MatMulNBits nodes that lack it (also inside subgraphs); returns how many. */
function rewriteNode(node: onnx.NodeProto, level: number): number {
  let n = 0;
  if (node.opType === 'MatMulNBits' && node.domain === 'com.microsoft') {
    const attr = node.attribute.find((a) => a.name === 'accuracy_level');
    if (!attr) {
      node.attribute.push(onnx.AttributeProto.create({ name: 'accuracy_level', type: onnx.AttributeProto.AttributeType.INT, i: level }));
      n++;
    } else if (Number(attr.i) === 0) {
      attr.i = level;
      attr.type = onnx.AttributeProto.AttributeType.INT;
      n++;
    }
  }
  for (const a of node.attribute) {
    for (const g of [a.g, ...(a.graphs ?? [])]) {
      if (!g) continue;
      for (const sub of g.node ?? []) n += rewriteNode(sub as onnx.NodeProto, level);
    }
  }
  return n;
}

interface Plan {
  segments: Segment[];
  /** MatMulNBits nodes given an accuracy level. */
  rewritten: number;
  /** Whether lm_head now sees only the last position. */
  lastLogits: boolean;
  /** Whether present.* now carry only the new rows (see KV_NEW_ROWS_DIM). */
  kvNewRows: boolean;
  fusedMatMuls: { from: number; to: number };
  attentionLayers: number;
  outputSize: number;
}

/** What to rewrite besides the accuracy level. */
export interface GraphRewrites {
  /** lm_head on the last position only (logits [batch, 1, vocab]). Default true. */
  lastLogits?: boolean;
  /** present.* outputs carry only the rows of this run (the engine keeps the cache). Default true. */
  kvNewRows?: boolean;
  /**
   * MatMulNBits nodes that read the same input with the same K, bits, block size and accuracy level
   * (q/k/v, gate/up) become one node over the concatenated weights, followed by a Split: same
   * arithmetic per output column, fewer and wider kernels. Default true.
   */
  fuseMatMuls?: boolean;
  /**
   * Each layer's attention subgraph becomes one GroupQueryAttention node (prepareAttention.ts).
   * Needs kvNewRows, `PrepareOptions.attentionShape` and `PrepareOptions.verify`. Default true.
   */
  attention?: boolean;
}

/**
 * The symbolic dim a prepared graph's `present.*` outputs carry in place of the total length: they
 * hold only the key/value rows of the tokens of this run, [batch, kv_heads, seq, head_dim]. The
 * engine then keeps the cache itself (kvSlots.ts).
 */
export const KV_NEW_ROWS_DIM = 'r1_new_sequence_length';

/** What the fusion needs of an initializer: its name, type, shape and where its raw bytes are. */
interface InitializerHeader {
  name: string;
  dims: number[];
  dataType: number;
  raw?: { from: number; len: number };
  /** Data held any other way (typed fields, external data, segments): not fused. */
  otherData: boolean;
}

async function readInitializerHeader(r: FileReader, f: Field): Promise<InitializerHeader> {
  const h: InitializerHeader = { name: '', dims: [], dataType: 0, otherData: false };
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
    else if (g.field !== 12) h.otherData = true; // 12: doc_string
    q = g.end;
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

/** The graph-level rewrites on decoded nodes and outputs; returns what was done. */
function rewriteGraph(
  fields: GraphField[],
  want: Required<GraphRewrites>,
  extraInits: onnx.TensorProto[],
  extraSegments: Segment[],
  opset: number,
  attentionShape?: AttentionShape,
): { lastLogits: boolean; kvNewRows: boolean; fusedMatMuls: { from: number; to: number }; attentionLayers: number } {
  const nodes = fields.filter((x) => x.node);
  const outputs = fields.filter((x) => x.output);
  const producer = new Map<string, GraphField>();
  for (const x of nodes) for (const o of x.node!.output ?? []) producer.set(o, x);
  const outputField = (name: string) => outputs.find((x) => x.output!.name === name);
  const skipIdentity = (name: string): string => {
    for (let i = 0; i < 8; i++) {
      const p = producer.get(name)?.node;
      if (!p || p.opType !== 'Identity') return name;
      name = p.input![0]!;
    }
    return name;
  };
  let lastLogits = false;
  if (want.lastLogits) {
    const out = outputField('logits');
    const headField = producer.get(skipIdentity('logits'));
    const head = headField?.node;
    const dims = out?.output?.type?.tensorType?.shape?.dim;
    if (out && head && (head.opType === 'MatMulNBits' || head.opType === 'MatMul') && dims?.length === 3) {
      const starts = 'r1_last_position/starts';
      const ends = 'r1_last_position/ends';
      const axes = 'r1_last_position/axes';
      const i64 = (name: string, v: bigint) =>
        onnx.TensorProto.create({ name, dims: [1], dataType: onnx.TensorProto.DataType.INT64, rawData: new Uint8Array(BigInt64Array.of(v).buffer) });
      extraInits.push(i64(starts, -1n), i64(ends, 0x7fffffffffffffffn), i64(axes, 1n));
      const sliced = 'r1_last_position/hidden';
      const slice = onnx.NodeProto.create({ name: 'r1_last_position/Slice', opType: 'Slice', domain: '', input: [head.input![0]!, starts, ends, axes], output: [sliced] });
      head.input![0] = sliced;
      headField!.changed = true;
      (headField!.before ??= []).push(slice);
      dims[1] = onnx.TensorShapeProto.Dimension.create({ dimValue: 1 });
      out.changed = true;
      lastLogits = true;
    }
  }
  let kvNewRows = false;
  if (want.kvNewRows) {
    // present.{i}.{kind} = Concat(past_key_values.{i}.{kind}, new, axis 2) for every layer, float32.
    const plans: Array<() => void> = [];
    const presents = outputs.filter((x) => /^present\.\d+\.(key|value)$/.test(x.output!.name ?? ''));
    for (const out of presents) {
      const name = out.output!.name!;
      const past = name.replace(/^present\./, 'past_key_values.');
      const direct = producer.get(name);
      const concatField = producer.get(skipIdentity(name));
      const c = concatField?.node;
      const axis = Number(c?.attribute?.find((a) => a.name === 'axis')?.i ?? NaN);
      const dims = out.output!.type?.tensorType?.shape?.dim;
      const f32 = out.output!.type?.tensorType?.elemType === onnx.TensorProto.DataType.FLOAT;
      if (!direct || !c || c.opType !== 'Concat' || c.input?.length !== 2 || (axis !== 2 && axis !== -2) || skipIdentity(c.input[0]!) !== past || dims?.length !== 4 || !f32) {
        plans.length = 0;
        break;
      }
      plans.push(() => {
        const fresh = c.input![1]!;
        if (direct.node!.opType === 'Identity') {
          direct.node!.input![0] = fresh;
          direct.changed = true;
        } else {
          // The Concat itself outputs present.*: rename its output for its consumers, and output the new rows.
          const full = `${name}/r1_full`;
          c.output![0] = full;
          for (const x of nodes) {
            const ins = x.node!.input ?? [];
            for (let k = 0; k < ins.length; k++) {
              if (ins[k] !== name) continue;
              ins[k] = full;
              x.changed = true;
            }
          }
          concatField!.changed = true;
          (concatField!.after ??= []).push(onnx.NodeProto.create({ name: `${name}/r1_new_rows`, opType: 'Identity', domain: '', input: [fresh], output: [name] }));
        }
        dims[2] = onnx.TensorShapeProto.Dimension.create({ dimParam: KV_NEW_ROWS_DIM });
        out.changed = true;
      });
    }
    if (plans.length > 0 && plans.length === presents.length) {
      for (const p of plans) p();
      kvNewRows = true;
    }
  }
  // Attention before fusion: it finds the projections by their own nodes, which fusion replaces.
  const attentionLayers = want.attention && kvNewRows && attentionShape ? rewriteAttention(fields, attentionShape, extraInits, opset) : 0;
  const fusedMatMuls = want.fuseMatMuls ? fuseMatMulNBits(fields, extraInits, extraSegments, opset) : { from: 0, to: 0 };
  return { lastLogits, kvNewRows, fusedMatMuls, attentionLayers };
}

const intAttr = (n: onnx.NodeProto, name: string): number | undefined => {
  const a = n.attribute?.find((x) => x.name === name);
  return a ? Number(a.i) : undefined;
};

/** A protobuf TensorProto (graph initializer, field 5) whose raw data are source ranges. */
function tensorFromRanges(name: string, dataType: number, dims: number[], ranges: Array<{ from: number; len: number }>): Segment[] {
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

/**
 * Fuses MatMulNBits nodes that share their input and quantization (see GraphRewrites.fuseMatMuls).
 * The weights [N, K/block, block·bits/8] and scales [N·K/block] of the group are concatenated along
 * N straight from the source file's byte ranges; the fused node's output is Split back into the
 * original value names, so nothing downstream changes. A group is left alone unless every member
 * has only the three plain inputs and its weight and scales are raw-data initializers used by it
 * alone.
 */
function fuseMatMulNBits(fields: GraphField[], extraInits: onnx.TensorProto[], extraSegments: Segment[], opset: number): { from: number; to: number } {
  // A node too large to decode, or a weight also listed as a graph input (IR < 4), could use an
  // initializer where we cannot see it: then nothing is fused.
  if (fields.some((x) => x.f.field === 1 && !x.node)) return { from: 0, to: 0 };
  // Split with a negative axis needs opset 11.
  if (opset < 11) return { from: 0, to: 0 };
  const inits = new Map<string, GraphField>();
  for (const x of fields) if (x.init && !x.graphInput) inits.set(x.init.name, x);
  for (const x of fields) if (x.graphInput) inits.delete(x.graphInput);
  const uses = new Map<string, number>();
  const count = (nodes: onnx.INodeProto[]) => {
    for (const n of nodes) {
      for (const i of n.input ?? []) uses.set(i, (uses.get(i) ?? 0) + 1);
      for (const a of n.attribute ?? []) for (const g of [a.g, ...(a.graphs ?? [])]) if (g) count(g.node ?? []);
    }
  };
  count(fields.flatMap((x) => (x.node ? [x.node] : [])));
  // A weight that is also a graph output must stay.
  for (const x of fields) if (x.output?.name) uses.set(x.output.name, (uses.get(x.output.name) ?? 0) + 1);
  const groups = new Map<string, GraphField[]>();
  for (const x of fields) {
    const n = x.node;
    if (!n || x.dropped || n.opType !== 'MatMulNBits' || n.domain !== 'com.microsoft' || n.output?.length !== 1) continue;
    const ins = n.input ?? [];
    if (ins.length < 3 || ins.slice(3).some((i) => i !== '')) continue;
    const [a, b, sc] = ins as [string, string, string];
    const K = intAttr(n, 'K');
    const N = intAttr(n, 'N');
    const bits = intAttr(n, 'bits') ?? 4;
    const block = intAttr(n, 'block_size');
    const wi = inits.get(b)?.init;
    const si = inits.get(sc)?.init;
    if (!K || !N || !block || !wi?.raw || !si?.raw || wi.otherData || si.otherData || uses.get(b) !== 1 || uses.get(sc) !== 1) continue;
    const blocks = Math.ceil(K / block);
    if (wi.dims[0] !== N || wi.raw.len % N !== 0 || si.dims.reduce((p, d) => p * d, 1) !== N * blocks || si.raw.len % (N * blocks) !== 0) continue;
    const key = JSON.stringify([a, K, bits, block, intAttr(n, 'accuracy_level') ?? 0, wi.dataType, wi.dims.slice(1), si.dataType]);
    const g = groups.get(key) ?? [];
    g.push(x);
    groups.set(key, g);
  }
  let from = 0;
  let to = 0;
  let index = 0;
  for (const group of groups.values()) {
    if (group.length < 2) continue;
    const first = group[0]!.node!;
    const tag = `r1_fused_${index++}`;
    const ns = group.map((x) => intAttr(x.node!, 'N')!);
    const wInits = group.map((x) => inits.get(x.node!.input![1]!)!);
    const sInits = group.map((x) => inits.get(x.node!.input![2]!)!);
    const total = ns.reduce((a, b) => a + b, 0);
    const w0 = wInits[0]!.init!;
    const s0 = sInits[0]!.init!;
    const wName = `${tag}/B`;
    const sName = `${tag}/scales`;
    extraSegments.push(...tensorFromRanges(wName, w0.dataType, [total, ...w0.dims.slice(1)], wInits.map((x) => x.init!.raw!)));
    const blocks = s0.dims.reduce((p, d) => p * d, 1) / ns[0]!;
    const sDims = s0.dims.length === 2 ? [total, blocks] : [total * blocks];
    extraSegments.push(...tensorFromRanges(sName, s0.dataType, sDims, sInits.map((x) => x.init!.raw!)));
    for (const x of [...wInits, ...sInits]) x.dropped = true;
    const outputs = group.map((x) => x.node!.output![0]!);
    const fusedOut = `${tag}/Y`;
    const fused = onnx.NodeProto.create({
      name: `${tag}/MatMulNBits`,
      opType: 'MatMulNBits',
      domain: 'com.microsoft',
      input: [first.input![0]!, wName, sName],
      output: [fusedOut],
      attribute: (first.attribute ?? []).map((a) => (a.name === 'N' ? onnx.AttributeProto.create({ name: 'N', type: onnx.AttributeProto.AttributeType.INT, i: total }) : a)),
    });
    const split = onnx.NodeProto.create({ name: `${tag}/Split`, opType: 'Split', domain: '', input: [fusedOut], output: outputs });
    split.attribute.push(onnx.AttributeProto.create({ name: 'axis', type: onnx.AttributeProto.AttributeType.INT, i: -1 }));
    if (opset >= 13) {
      const splitName = `${tag}/split`;
      extraInits.push(onnx.TensorProto.create({ name: splitName, dims: [ns.length], dataType: onnx.TensorProto.DataType.INT64, rawData: new Uint8Array(BigInt64Array.from(ns.map(BigInt)).buffer) }));
      split.input.push(splitName);
    } else {
      split.attribute.push(onnx.AttributeProto.create({ name: 'split', type: onnx.AttributeProto.AttributeType.INTS, ints: ns }));
    }
    // The fused node takes the first member's place: every member's input is already computed there.
    const head = group[0]!;
    head.node = fused;
    head.changed = true;
    (head.after ??= []).unshift(split);
    for (const x of group.slice(1)) x.dropped = true;
    from += group.length;
    to += 1;
  }
  return { from, to };
}

function wantedRewrites(r: GraphRewrites): Required<GraphRewrites> {
  return { lastLogits: r.lastLogits ?? true, kvNewRows: r.kvNewRows ?? true, fuseMatMuls: r.fuseMatMuls ?? true, attention: r.attention ?? true };
}

/** The model's default-domain opset (ModelProto.opset_import, field 8); 0 when absent. */
async function defaultOpset(r: FileReader): Promise<number> {
  let version = 0;
  for (let pos = 0; pos < r.size; ) {
    const f = await readField(r, pos);
    if (f.field === 8 && f.wire === 2) {
      const o = onnx.OperatorSetIdProto.decode(await r.bytes(f.payload, f.len));
      if (!o.domain || o.domain === 'ai.onnx') version = Number(o.version);
    }
    pos = f.end;
  }
  return version;
}

/** Walks the model and returns the output as segments, with node messages rewritten. */
async function planRewrite(r: FileReader, level: number, rewrites: GraphRewrites = {}, attentionShape?: AttentionShape): Promise<Plan> {
  const want = wantedRewrites(rewrites);
  const top: Segment[] = [];
  let rewritten = 0;
  let sawGraph = false;
  let done = { lastLogits: false, kvNewRows: false, fusedMatMuls: { from: 0, to: 0 }, attentionLayers: 0 };
  const opset = await defaultOpset(r);
  for (let pos = 0; pos < r.size; ) {
    const f = await readField(r, pos);
    if (f.field === 7 && f.wire === 2 && !sawGraph) {
      sawGraph = true;
      const fields: GraphField[] = [];
      for (let q = f.payload; q < f.end; ) {
        const g = await readField(r, q);
        const x: GraphField = { f: g };
        if (g.field === 1 && g.wire === 2 && g.len <= MAX_NODE_DECODE) {
          x.node = onnx.NodeProto.decode(await r.bytes(g.payload, g.len));
          const n = rewriteNode(x.node, level);
          if (n > 0) {
            rewritten += n;
            x.changed = true;
          }
        } else if (g.field === 12 && g.wire === 2) {
          x.output = onnx.ValueInfoProto.decode(await r.bytes(g.payload, g.len));
        } else if (g.field === 11 && g.wire === 2) {
          x.graphInput = onnx.ValueInfoProto.decode(await r.bytes(g.payload, g.len)).name ?? '';
        }
        fields.push(x);
        q = g.end;
      }
      if (fields.length === 0) throw new Error('empty graph');
      const extraInits: onnx.TensorProto[] = [];
      const extraSegments: Segment[] = [];
      // Only a graph that needs the accuracy level gets the other rewrites too. The fusion and the
      // attention rewrite need the initializers' headers (a read each), so they are read only then.
      if (rewritten > 0) {
        if (want.fuseMatMuls || (want.attention && attentionShape)) for (const x of fields) if (x.f.field === 5 && x.f.wire === 2) x.init = await readInitializerHeader(r, x.f);
        done = rewriteGraph(fields, want, extraInits, extraSegments, opset, attentionShape);
      }
      const inner: Segment[] = [];
      const emitNode = (n: onnx.NodeProto) => {
        const bytes = onnx.NodeProto.encode(n).finish();
        inner.push(lenField(1, bytes.length), bytes);
      };
      for (const x of fields) {
        for (const n of x.before ?? []) emitNode(n);
        if (!x.dropped) {
          if (x.changed && x.node) emitNode(x.node);
          else if (x.changed && x.output) {
            const bytes = onnx.ValueInfoProto.encode(x.output).finish();
            inner.push(lenField(12, bytes.length), bytes);
          } else inner.push({ from: x.f.start, len: x.f.end - x.f.start });
        }
        for (const n of x.after ?? []) emitNode(n);
      }
      for (const t of extraInits) {
        const bytes = onnx.TensorProto.encode(t).finish();
        inner.push(lenField(5, bytes.length), bytes);
      }
      inner.push(...extraSegments);
      const innerLen = inner.reduce((a, s) => a + segLen(s), 0);
      top.push(lenField(7, innerLen), ...inner);
    } else {
      top.push({ from: f.start, len: f.end - f.start });
    }
    pos = f.end;
  }
  if (!sawGraph) throw new Error('the file has no graph');
  // Merge neighbouring source ranges so copying uses large reads.
  const merged: Segment[] = [];
  for (const s of top) {
    const last = merged[merged.length - 1];
    if (last && !(last instanceof Uint8Array) && !(s instanceof Uint8Array) && last.from + last.len === s.from) last.len += s.len;
    else merged.push(s instanceof Uint8Array ? s : { ...s });
  }
  return { segments: merged, rewritten, ...done, outputSize: merged.reduce((a, s) => a + segLen(s), 0) };
}

async function writeSegments(src: FileHandle, out: FileHandle, segments: Segment[]): Promise<void> {
  const chunk = Buffer.alloc(8 << 20);
  let outPos = 0;
  for (const s of segments) {
    if (s instanceof Uint8Array) {
      await out.write(s, 0, s.length, outPos);
      outPos += s.length;
      continue;
    }
    for (let done = 0; done < s.len; ) {
      const n = Math.min(chunk.length, s.len - done);
      const { bytesRead } = await src.read(chunk, 0, n, s.from + done);
      if (bytesRead !== n) throw new Error('the model file changed while it was being prepared');
      await out.write(chunk, 0, n, outPos);
      outPos += n;
      done += n;
    }
  }
}

/** Counts MatMulNBits nodes that would be rewritten, without writing anything (for tests and checks). */
export async function countUnpreparedNodes(file: string, level = CPU_ACCURACY_LEVEL): Promise<number> {
  const fh = await open(file, 'r');
  try {
    const { size } = await fh.stat();
    return (await planRewrite(new FileReader(fh, size), level)).rewritten;
  } finally {
    await fh.close();
  }
}

function hasExternalData(file: string): boolean {
  try {
    const base = basename(file);
    return readdirSync(dirname(file)).some((n) => n !== base && n.startsWith(base) && !n.includes('.tmp-'));
  } catch {
    return false;
  }
}

/** Removes temporary copies (`.tmp-<pid>-…`) left by a process that no longer runs (killed mid-write or mid-check). */
async function removeStaleTemporaries(dir: string): Promise<void> {
  for (const n of readdirSync(dir)) {
    const m = /^\.tmp-(\d+)-/.exec(n);
    if (!m || Number(m[1]) === process.pid) continue;
    try {
      process.kill(Number(m[1]), 0);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ESRCH') await unlink(join(dir, n)).catch(() => undefined);
    }
  }
}

/**
 * Returns the file to load on the CPU: a prepared copy (made now, or reused) with accuracy_level
 * `level` on every MatMulNBits node that had none, or the source itself when no node needs it or a
 * copy cannot be written (then `reason` says why). Never throws for the source being unpreparable;
 * it throws only for I/O errors reading the source.
 */
export async function prepareModelForCpu(file: string, opts: PrepareOptions = {}): Promise<PrepareResult> {
  const t0 = performance.now();
  const level = opts.accuracyLevel ?? CPU_ACCURACY_LEVEL;
  const src = resolve(file);
  const done = (r: Omit<PrepareResult, 'ms'>): PrepareResult => ({ ...r, ms: Math.round(performance.now() - t0) });
  const st = await stat(src);
  const fh = await open(src, 'r');
  try {
    const head = Buffer.alloc(Math.min(st.size, 1 << 20));
    await fh.read(head, 0, head.length, 0);
    const key = createHash('sha256').update(JSON.stringify({ v: PREPARE_VERSION, level, ...wantedRewrites(opts), attention: opts.verify && opts.attentionShape ? { shape: opts.attentionShape, check: opts.verifyVersion } : undefined, path: src, size: st.size, mtime: st.mtimeMs })).update(head).digest('hex');
    const external = hasExternalData(src);
    const dir = external ? dirname(src) : resolve(opts.cacheDir ?? defaultPrepareCacheDir());
    const pathTag = createHash('sha256').update(src).digest('hex').slice(0, 8);
    const name = external ? `${basename(src, '.onnx')}.r1-prepared-${key.slice(0, 12)}.onnx` : `${pathTag}-${key.slice(0, 12)}-${basename(src)}`;
    const target = join(dir, name);
    if (existsSync(target)) {
      const t = await stat(target).catch(() => undefined);
      if (t && t.size > 0) return done({ file: target, prepared: true, reused: true, rewrittenNodes: 0 });
    }
    const reader = new FileReader(fh, st.size);
    const shape = opts.verify ? opts.attentionShape : undefined;
    let plan = await planRewrite(reader, level, opts, shape);
    if (plan.rewritten === 0) return done({ file: src, prepared: false, reused: false, rewrittenNodes: 0, reason: 'no MatMulNBits node without accuracy_level' });
    // With the attention rewritten, a copy without it is written too, as the reference (and the
    // fallback) of the verify check.
    let plain = plan.attentionLayers > 0 ? await planRewrite(reader, level, { ...opts, attention: false }) : undefined;
    const LIMIT = 0x7fffffff;
    if (plain && plan.outputSize > LIMIT) [plan, plain] = [plain, undefined]; // the rotary tables push it over: no rewrite
    if (plan.outputSize > LIMIT || (plain?.outputSize ?? 0) > LIMIT) return done({ file: src, prepared: false, reused: false, rewrittenNodes: 0, reason: 'the prepared model would exceed the 2 GB protobuf limit' });
    try {
      await mkdir(dir, { recursive: true });
    } catch (e) {
      return done({ file: src, prepared: false, reused: false, rewrittenNodes: 0, reason: `cannot create ${dir}: ${(e as Error).message}` });
    }
    await removeStaleTemporaries(dir);
    try {
      const fs = await statfs(dir);
      const free = Number(fs.bavail) * Number(fs.bsize) - (64 << 20);
      if (plain && free < plan.outputSize + plain.outputSize) [plan, plain] = [plain, undefined]; // room for one copy only: no rewrite
      if (free < plan.outputSize) {
        return done({ file: src, prepared: false, reused: false, rewrittenNodes: 0, reason: `not enough free space in ${dir} (${((free + (64 << 20)) / 1e9).toFixed(2)} GB free, ${(plan.outputSize / 1e9).toFixed(2)} GB needed)` });
      }
    } catch {
      // statfs unsupported: try anyway
    }
    /** Writes `segments` to a temporary file in `dir` and returns its path; nothing is left on failure. */
    const write = async (segments: Segment[]): Promise<string> => {
      const tmp = join(dir, `.tmp-${process.pid}-${randomBytes(4).toString('hex')}-${name}`);
      let out: FileHandle | undefined;
      try {
        out = await open(tmp, 'w');
        await writeSegments(fh, out, segments);
        await out.close();
        return tmp;
      } catch (e) {
        await out?.close().catch(() => undefined);
        await rm(tmp, { force: true }).catch(() => undefined);
        throw e;
      }
    };
    let chosen = plan;
    let attentionRejected: string | undefined;
    const temporaries: string[] = [];
    try {
      const candidate = await write(plan.segments);
      temporaries.push(candidate);
      let keep = candidate;
      if (plain) {
        const reference = await write(plain.segments);
        temporaries.push(reference);
        attentionRejected = await opts.verify!(reference, candidate).catch((e: unknown) => `the check failed to run: ${(e as Error).message.split('\n')[0]}`);
        if (attentionRejected) [chosen, keep] = [plain, reference];
      }
      await rename(keep, target);
    } catch (e) {
      return done({ file: src, prepared: false, reused: false, rewrittenNodes: 0, reason: `cannot write the prepared copy in ${dir}: ${(e as Error).message}` });
    } finally {
      for (const t of temporaries) await rm(t, { force: true }).catch(() => undefined);
    }
    // Older copies of the same source.
    if (!external) {
      for (const n of readdirSync(dir)) {
        if (n !== name && n.startsWith(`${pathTag}-`) && n.endsWith(`-${basename(src)}`)) await unlink(join(dir, n)).catch(() => undefined);
      }
    } else {
      const prefix = `${basename(src, '.onnx')}.r1-prepared-`;
      for (const n of readdirSync(dir)) if (n !== name && n.startsWith(prefix)) await unlink(join(dir, n)).catch(() => undefined);
    }
    return done({
      file: target,
      prepared: true,
      reused: false,
      rewrittenNodes: chosen.rewritten,
      lastLogits: chosen.lastLogits,
      kvNewRows: chosen.kvNewRows,
      fusedMatMuls: chosen.fusedMatMuls,
      attentionLayers: chosen.attentionLayers,
      attentionRejected,
    });
  } finally {
    await fh.close();
  }
}

/**
 * The session factory the engine uses: CPU sessions (the first execution provider is `cpu`) load
 * the prepared copy unless `prepareForCpu` is false; a copy that cannot be made or loaded falls
 * back to the source file, with a note. Other providers load the source as it is.
 */
export function withPreparedCpuModel<S, O extends { executionProviders?: readonly unknown[] }>(
  create: (file: string, options: O) => Promise<S>,
  opts: PrepareOptions & { prepareForCpu?: boolean },
  note: (text: string) => void,
  progress?: (message: string) => void,
): (file: string, options: O) => Promise<S> {
  return async (file, options) => {
    const first = options.executionProviders?.[0];
    const name = typeof first === 'string' ? first : (first as { name?: string } | undefined)?.name;
    if (name !== 'cpu' || opts.prepareForCpu === false) return create(file, options);
    let r: PrepareResult;
    try {
      progress?.(`preparing ${basename(file)} for the CPU, once (accuracy_level ${opts.accuracyLevel ?? CPU_ACCURACY_LEVEL} on MatMulNBits${opts.verify && opts.attentionShape ? ', fused attention checked against the plain copy' : ''})`);
      r = await prepareModelForCpu(file, opts);
    } catch (e) {
      note(`The model could not be prepared for the CPU (${(e as Error).message}); it runs as it is.`);
      return create(file, options);
    }
    if (!r.prepared) {
      if (r.reason && !r.reason.startsWith('no MatMulNBits')) note(`The model was not prepared for the CPU: ${r.reason}.`);
      return create(file, options);
    }
    try {
      const s = await create(r.file, options);
      note(
        r.reused
          ? `Loaded the CPU-prepared copy ${r.file} (MatMulNBits at accuracy_level ${opts.accuracyLevel ?? CPU_ACCURACY_LEVEL}: int8 compute).`
          : `Wrote a CPU-prepared copy ${r.file} in ${r.ms} ms: ${r.rewrittenNodes} MatMulNBits nodes at accuracy_level ${opts.accuracyLevel ?? CPU_ACCURACY_LEVEL} (int8 compute)${r.fusedMatMuls?.from ? `, ${r.fusedMatMuls.from} of them fused into ${r.fusedMatMuls.to} wider nodes` : ''}${
            r.attentionLayers ? `; the attention of ${r.attentionLayers} layers runs as GroupQueryAttention (checked against the plain copy)` : ''
          }${r.attentionRejected ? `; the attention was left as exported: the GroupQueryAttention rewrite was dropped because ${r.attentionRejected}` : ''}. Turn it off with the setting r1.cpu.prepareModel.`,
      );
      return s;
    } catch (e) {
      note(`The CPU-prepared copy ${r.file} failed to load (${(e as Error).message.split('\n')[0]}); the original file is used.`);
      return create(file, options);
    }
  };
}
