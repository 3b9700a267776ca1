/**
 * The graph rewrites of the prepared CPU copy on the decoded graph (GraphRewrites): accuracy_level
 * on MatMulNBits, logits of the last position only, present.* carrying the new KV rows only, then
 * the attention rewrite (attention.ts), the MatMulNBits fusion (fuse.ts), and last the decode
 * attention over the KV slots in place (decodeAttention.ts).
 */
import { onnx } from 'onnx-proto';
import { type AttentionShape, cutGqaPresents, rewriteAttention } from './attention';
import { wrapDecodeAttention } from './decodeAttention';
import { fuseMatMulNBits } from './fuse';
import { KV_NEW_ROWS_DIM, LOGIT_COUNT_INPUT } from './names';
import type { GraphField, Segment } from './protobuf';

/** accuracy_level 4: int8 compute in MatMulNBits (see prepare.ts). */
export const CPU_ACCURACY_LEVEL = 4;

/** Sets accuracy_level on MatMulNBits nodes that lack it (also inside subgraphs); returns how many. */
export function rewriteNode(node: onnx.NodeProto, level: number): number {
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

export interface GraphRewrites {
  /** lm_head on the last positions only (logits [batch, r1_logit_count, vocab]). Default true. */
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
   * Each layer's attention subgraph becomes one GroupQueryAttention node (attention.ts).
   * Needs kvNewRows, `PrepareOptions.attentionShape` and `PrepareOptions.verify`. Default true.
   */
  attention?: boolean;
  /**
   * Decode passes over many cached tokens read the KV slots in place instead of through
   * GroupQueryAttention's copy (decodeAttention.ts). Needs the attention as GroupQueryAttention
   * (rewritten or exported so) and the same check. Default true; off with `attention`.
   */
  decodeAttention?: boolean;
}

export { KV_NEW_ROWS_DIM, LOGIT_COUNT_INPUT } from './names';

export function wantedRewrites(r: GraphRewrites): Required<GraphRewrites> {
  return { lastLogits: r.lastLogits ?? true, kvNewRows: r.kvNewRows ?? true, fuseMatMuls: r.fuseMatMuls ?? true, attention: r.attention ?? true, decodeAttention: r.decodeAttention ?? true };
}

/** What the graph-level rewrites did, and why each that was wanted did not apply. */
export interface GraphRewriteResult {
  lastLogits: boolean;
  kvNewRows: boolean;
  fusedMatMuls: { from: number; to: number };
  attentionLayers: number;
  /** Layers whose decode passes read the KV slots in place (decodeAttention.ts). */
  decodeAttentionLayers: number;
  why: { lastLogits?: string; kvNewRows?: string; fuseMatMuls?: string; attention?: string; decodeAttention?: string };
}

/** The graph-level rewrites on decoded nodes and outputs; returns what was done. */
export function rewriteGraph(
  fields: GraphField[],
  want: Required<GraphRewrites>,
  extraInits: onnx.TensorProto[],
  extraSegments: Segment[],
  extraInputs: onnx.ValueInfoProto[],
  opset: number,
  attentionShape?: AttentionShape,
): GraphRewriteResult {
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
  const why: GraphRewriteResult['why'] = {};
  let lastLogits = false;
  if (want.lastLogits) {
    const out = outputField('logits');
    const headField = producer.get(skipIdentity('logits'));
    const head = headField?.node;
    const dims = out?.output?.type?.tensorType?.shape?.dim;
    // A graph whose logits already cover the last positions only (a prepared copy) is left as it is.
    const onePosition = (dims?.[1]?.dimValue !== undefined && dims[1].dimValue !== null && Number(dims[1].dimValue) === 1) || dims?.[1]?.dimParam === LOGIT_COUNT_INPUT;
    if (out && head && (head.opType === 'MatMulNBits' || head.opType === 'MatMul') && dims?.length === 3 && !onePosition) {
      // lm_head reads hidden[:, -count:, :], count fed at run time (LOGIT_COUNT_INPUT): 1 for a
      // decode step, the drafted tokens + 1 when a prompt-lookup pass verifies them.
      const starts = 'r1_last_position/starts';
      const ends = 'r1_last_position/ends';
      const axes = 'r1_last_position/axes';
      const i64 = (name: string, v: bigint) =>
        onnx.TensorProto.create({ name, dims: [1], dataType: onnx.TensorProto.DataType.INT64, rawData: new Uint8Array(BigInt64Array.of(v).buffer) });
      extraInits.push(i64(ends, 0x7fffffffffffffffn), i64(axes, 1n));
      extraInputs.push(
        onnx.ValueInfoProto.create({
          name: LOGIT_COUNT_INPUT,
          type: { tensorType: { elemType: onnx.TensorProto.DataType.INT64, shape: { dim: [onnx.TensorShapeProto.Dimension.create({ dimValue: 1 })] } } },
        }),
      );
      const neg = onnx.NodeProto.create({ name: 'r1_last_position/Neg', opType: 'Neg', domain: '', input: [LOGIT_COUNT_INPUT], output: [starts] });
      const sliced = 'r1_last_position/hidden';
      const slice = onnx.NodeProto.create({ name: 'r1_last_position/Slice', opType: 'Slice', domain: '', input: [head.input![0]!, starts, ends, axes], output: [sliced] });
      head.input![0] = sliced;
      headField!.changed = true;
      (headField!.before ??= []).push(neg, slice);
      dims[1] = onnx.TensorShapeProto.Dimension.create({ dimParam: LOGIT_COUNT_INPUT });
      out.changed = true;
      lastLogits = true;
    } else {
      why.lastLogits = onePosition ? 'the logits already cover the last position only' : 'the logits do not come from a MatMul over [batch, sequence, hidden]';
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
    } else if (presents.length > 0 && presents.every((x) => x.output!.type?.tensorType?.elemType === onnx.TensorProto.DataType.FLOAT && x.output!.type?.tensorType?.shape?.dim?.length === 4)) {
      // A graph whose attention already is GroupQueryAttention: its present.* are the node's own.
      kvNewRows = cutGqaPresents(fields, presents.length / 2, extraInits);
      if (kvNewRows) {
        for (const out of presents) {
          out.output!.type!.tensorType!.shape!.dim![2] = onnx.TensorShapeProto.Dimension.create({ dimParam: KV_NEW_ROWS_DIM });
          out.changed = true;
        }
      }
    }
    if (!kvNewRows) {
      why.kvNewRows = presents.some((x) => x.output!.type?.tensorType?.elemType !== onnx.TensorProto.DataType.FLOAT)
        ? 'the KV cache is not float32'
        : 'present.* are neither a Concat of past_key_values.* and the new rows nor GroupQueryAttention outputs';
    }
  }
  // Attention before fusion: it finds the projections by their own nodes, which fusion replaces.
  const gqa = nodes.some((x) => x.node!.opType === 'GroupQueryAttention');
  const attention = want.attention && kvNewRows && attentionShape && !gqa ? rewriteAttention(fields, attentionShape, extraInits, opset) : { layers: 0 };
  const attentionLayers = attention.layers;
  if (want.attention && attentionLayers === 0) {
    why.attention = gqa
      ? 'the attention already is GroupQueryAttention'
      : !attentionShape
        ? 'not attempted: the model config has a sliding window, or the check is off'
        : !kvNewRows
          ? 'not attempted: it needs new KV rows only'
          : (attention.why ?? "each layer's q/k/v/o projections, past_key_values.* and present.* were not all found");
  }
  const fusedMatMuls = want.fuseMatMuls ? fuseMatMulNBits(fields, extraInits, extraSegments, opset) : { from: 0, to: 0 };
  if (want.fuseMatMuls && fusedMatMuls.from === 0) {
    const unplaced = fields.some((x) => x.init?.otherData && nodes.some((n) => n.node!.opType === 'MatMulNBits' && n.node!.input?.[1] === x.init!.name));
    why.fuseMatMuls = unplaced
      ? 'the 4-bit weights are held where the fusion cannot copy them from (typed fields, or a data file outside the model folder)'
      : 'no MatMulNBits nodes share an input with the same quantization (or their weights are used elsewhere)';
  }
  // Last: it wraps nodes in If subgraphs, which every rewrite above leaves alone (graphIndex.ts).
  let decodeAttentionLayers = 0;
  if (want.attention && want.decodeAttention) {
    const layers = outputs.filter((x) => /^present\.\d+\.key$/.test(x.output!.name ?? '')).length;
    const wrapped = kvNewRows && attentionShape && (attentionLayers > 0 || gqa) ? wrapDecodeAttention(fields, layers, attentionShape, extraInits, opset) : undefined;
    decodeAttentionLayers = wrapped?.layers ?? 0;
    if (decodeAttentionLayers === 0) {
      why.decodeAttention = wrapped?.why ?? (!kvNewRows ? 'not attempted: it needs new KV rows only' : !attentionShape ? 'not attempted: the model config has a sliding window, or the check is off' : 'not attempted: the attention is not GroupQueryAttention');
    }
  }
  return { lastLogits, kvNewRows, fusedMatMuls, attentionLayers, decodeAttentionLayers, why };
}
