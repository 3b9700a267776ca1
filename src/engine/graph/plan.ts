/**
 * One walk over the model file: the graph message is decoded field by field, the rewrites
 * (rewrites.ts) run on it, and the result is a plan of output segments: re-encoded messages, and
 * source byte ranges copied as they are.
 */
import { open } from 'node:fs/promises';
import { onnx } from 'onnx-proto';
import type { AttentionShape } from './attention';
import { type GraphField, FileReader, lenField, readField, readInitializerHeader, type Segment, segLen } from './protobuf';
import { CPU_ACCURACY_LEVEL, type GraphRewriteResult, type GraphRewrites, rewriteGraph, rewriteNode, wantedRewrites } from './rewrites';

/** Nodes larger than this (e.g. an If with whole subgraphs inside) are copied as they are. */
const MAX_NODE_DECODE = 16 << 20;

export interface Plan {
  segments: Segment[];
  /** MatMulNBits nodes given an accuracy level. */
  rewritten: number;
  /** Whether lm_head now sees only the last positions (LOGIT_COUNT_INPUT). */
  lastLogits: boolean;
  /** Whether present.* now carry only the new rows (see KV_NEW_ROWS_DIM). */
  kvNewRows: boolean;
  fusedMatMuls: { from: number; to: number };
  attentionLayers: number;
  decodeAttentionLayers: number;
  /** Why each wanted rewrite did not apply. */
  why: GraphRewriteResult['why'];
  /** Whether any rewrite applies: otherwise the file is used as it is. */
  changed: boolean;
  outputSize: number;
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
export async function planRewrite(r: FileReader, level: number, rewrites: GraphRewrites = {}, attentionShape?: AttentionShape): Promise<Plan> {
  const want = wantedRewrites(rewrites);
  const top: Segment[] = [];
  let rewritten = 0;
  let sawGraph = false;
  let quantized = false;
  let done: GraphRewriteResult = { lastLogits: false, kvNewRows: false, fusedMatMuls: { from: 0, to: 0 }, attentionLayers: 0, decodeAttentionLayers: 0, why: {} };
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
        } else if (g.field === 13) {
          // value_info: shape hints ONNX Runtime can do without, and the builder's are wrong in
          // places (its q4f16 graph then fails its first decode step on the CPU): left out.
          x.dropped = true;
        }
        fields.push(x);
        q = g.end;
      }
      if (fields.length === 0) throw new Error('empty graph');
      quantized = fields.some((x) => x.node?.opType === 'MatMulNBits');
      const extraInits: onnx.TensorProto[] = [];
      const extraSegments: Segment[] = [];
      const extraInputs: onnx.ValueInfoProto[] = [];
      // Only a quantized graph is prepared (see `changed` below): the others are not rewritten at
      // all. The fusion and the attention rewrite need the initializers' headers (a read each), so
      // they are read only when one of them is wanted.
      if (quantized) {
        if (want.fuseMatMuls || (want.attention && attentionShape)) for (const x of fields) if (x.f.field === 5 && x.f.wire === 2) x.init = await readInitializerHeader(r, x.f);
        done = rewriteGraph(fields, want, extraInits, extraSegments, extraInputs, opset, attentionShape);
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
      for (const v of extraInputs) {
        const bytes = onnx.ValueInfoProto.encode(v).finish();
        inner.push(lenField(11, bytes.length), bytes);
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
    if (last && !(last instanceof Uint8Array) && !(s instanceof Uint8Array) && last.file === s.file && last.from + last.len === s.from) last.len += s.len;
    else merged.push(s instanceof Uint8Array ? s : { ...s });
  }
  // Quantized models (MatMulNBits) are prepared: those the export left at float32 compute, and
  // those already at int8 compute (onnxruntime-genai's CPU builds) when another rewrite applies.
  const changed = rewritten > 0 || done.lastLogits || done.kvNewRows || done.fusedMatMuls.from > 0 || done.attentionLayers > 0 || done.decodeAttentionLayers > 0;
  return { segments: merged, rewritten, ...done, changed, outputSize: merged.reduce((a, s) => a + segLen(s), 0) };
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
