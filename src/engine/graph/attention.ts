/**
 * The attention rewrite of the prepared CPU copy (prepare.ts, rewrites.ts): each layer's attention subgraph of
 * the export (reshape, rotary embedding from position_ids, repeat_kv, QKᵀ, mask, softmax, ·V,
 * about 40 small nodes) becomes one `com.microsoft` GroupQueryAttention node, ONNX Runtime's fused
 * kernel: rotary embedding, KV append and causal attention in one pass over the cache.
 *
 * We cannot see the real export's attention subgraph here, so the rewrite anchors only on what any
 * Qwen2 export has: the layer's q/k/v/o projections (found by name), their biases, and the
 * `past_key_values.{i}.*` inputs and `present.{i}.*` outputs. What sat between the projections and
 * o_proj is dropped when nothing else reads it. It is not trusted blindly: prepareModelForCpu keeps
 * the rewritten copy only when it returns the same logits as the copy without it (see
 * `PrepareOptions.verify`).
 *
 * It needs the engine-kept KV slots (kvNewRows): the past inputs carry `capacity` rows of which
 * the first `filled` are real, the attention mask is [filled ones, zeros, seq ones]. GQA reads the
 * valid lengths from `seqlens_k` (= mask sum - 1) and never looks past them; present.* are cut back
 * to the rows of this run, [filled, filled + seq).
 */
import { onnx } from 'onnx-proto';
import { dropDeadNodes, indexGraph } from './graphIndex';
import type { GraphField } from './protobuf';

/** config.json's attention numbers; the rewrite is attempted only with these. */
export interface AttentionShape {
  numHeads: number;
  numKvHeads: number;
  headDim: number;
  ropeTheta: number;
  /** Rows of the rotary cos/sin tables: the longest sequence the rewritten graph accepts. */
  maxPositions: number;
}

const T = onnx.TensorProto.DataType;
const A = onnx.AttributeProto.AttributeType;

function intAttr(name: string, i: number): onnx.AttributeProto {
  return onnx.AttributeProto.create({ name, type: A.INT, i });
}

function i64(name: string, values: number[]): onnx.TensorProto {
  return onnx.TensorProto.create({ name, dims: [values.length], dataType: T.INT64, rawData: new Uint8Array(BigInt64Array.from(values.map(BigInt)).buffer) });
}

const PROJ = /layers[./_](\d+)[./_](?:self_attn|attn)[./_]([qkvo])_proj\b/;

/** The layer and projection a linear node belongs to, from its name or its weight's name. */
function projectionOf(n: onnx.NodeProto): { layer: number; which: 'q' | 'k' | 'v' | 'o' } | undefined {
  if (n.opType !== 'MatMulNBits' && n.opType !== 'MatMul') return undefined;
  const m = PROJ.exec(n.name ?? '') ?? PROJ.exec(n.input?.[1] ?? '');
  return m ? { layer: Number(m[1]), which: m[2] as 'q' | 'k' | 'v' | 'o' } : undefined;
}

/**
 * Rewrites every layer's attention, or nothing (returns 0) when any layer does not show the
 * expected anchors. Nodes that only the old attention read are marked dropped.
 */
export function rewriteAttention(fields: GraphField[], shape: AttentionShape, extraInits: onnx.TensorProto[], opset: number): number {
  const { numHeads, numKvHeads, headDim, ropeTheta, maxPositions } = shape;
  if (opset < 13 || headDim % 2 !== 0 || numHeads % numKvHeads !== 0 || maxPositions < 1) return 0;
  const index = indexGraph(fields);
  if (!index) return 0;
  const { producer, consumers, graphInputs, isConstant } = index;
  const nodes = fields.filter((x) => x.node && !x.dropped);
  const outputs = fields.filter((x) => x.output);
  if (!graphInputs.has('attention_mask') || !graphInputs.has('input_ids')) return 0;

  /** A projection's output, after its bias Add when there is one. */
  const projected = (x: GraphField): string => {
    const out = x.node!.output![0]!;
    const c = consumers.get(out) ?? [];
    const add = c.length === 1 && c[0]!.opType === 'Add' ? c[0]! : undefined;
    if (add && add.input?.length === 2) {
      const other = add.input[0] === out ? add.input[1]! : add.input[0]!;
      if (isConstant(other)) return add.output![0]!;
    }
    return out;
  };

  const layers = new Map<number, Partial<Record<'q' | 'k' | 'v' | 'o', GraphField>>>();
  for (const x of nodes) {
    const p = projectionOf(x.node!);
    if (!p) continue;
    const l = layers.get(p.layer) ?? {};
    if (l[p.which]) return 0; // two candidates: ambiguous
    l[p.which] = x;
    layers.set(p.layer, l);
  }
  const presentCount = outputs.filter((x) => /^present\.\d+\.key$/.test(x.output!.name ?? '')).length;
  if (layers.size === 0 || layers.size !== presentCount) return 0;
  for (let i = 0; i < layers.size; i++) {
    const l = layers.get(i);
    if (!l?.q || !l.k || !l.v || !l.o) return 0;
    for (const kind of ['key', 'value']) {
      if (!graphInputs.has(`past_key_values.${i}.${kind}`) || !producer.has(`present.${i}.${kind}`)) return 0;
    }
  }

  // Shared values, computed once before the first node: valid lengths from the mask, the rows
  // this run adds, and the rotary tables.
  const half = headDim / 2;
  const cos = new Float32Array(maxPositions * half);
  const sin = new Float32Array(maxPositions * half);
  for (let i = 0; i < half; i++) {
    const invFreq = 1 / ropeTheta ** ((2 * i) / headDim);
    for (let p = 0; p < maxPositions; p++) {
      cos[p * half + i] = Math.cos(p * invFreq);
      sin[p * half + i] = Math.sin(p * invFreq);
    }
  }
  extraInits.push(
    onnx.TensorProto.create({ name: 'r1_gqa/cos_cache', dims: [maxPositions, half], dataType: T.FLOAT, rawData: new Uint8Array(cos.buffer) }),
    onnx.TensorProto.create({ name: 'r1_gqa/sin_cache', dims: [maxPositions, half], dataType: T.FLOAT, rawData: new Uint8Array(sin.buffer) }),
  );
  addSlotLengths(nodes[0]!, extraInits);

  for (let i = 0; i < layers.size; i++) {
    const l = layers.get(i)!;
    const o = l.o!.node!;
    const tag = `r1_gqa/${i}`;
    const out = `${tag}/output`;
    const presentKey = `${tag}/present_key`;
    const presentValue = `${tag}/present_value`;
    const gqa = onnx.NodeProto.create({
      name: `${tag}/GroupQueryAttention`,
      opType: 'GroupQueryAttention',
      domain: 'com.microsoft',
      input: [projected(l.q!), projected(l.k!), projected(l.v!), `past_key_values.${i}.key`, `past_key_values.${i}.value`, 'r1_gqa/seqlens_k', 'r1_gqa/total', 'r1_gqa/cos_cache', 'r1_gqa/sin_cache'],
      output: [out, presentKey, presentValue],
      attribute: [intAttr('num_heads', numHeads), intAttr('kv_num_heads', numKvHeads), intAttr('do_rotary', 1), intAttr('rotary_interleaved', 0)],
    });
    // The nodes that output present.* now output dead values (dropped below).
    for (const kind of ['key', 'value'] as const) {
      const present = `present.${i}.${kind}`;
      const old = producer.get(present)!;
      old.node.output = old.node.output!.map((n) => (n === present ? `${present}/r1_replaced` : n));
      if (old.field) old.field.changed = true;
    }
    o.input![0] = out;
    l.o!.changed = true;
    (l.o!.before ??= []).push(gqa, ...newRowsOf(i, presentKey, presentValue));
  }
  dropDeadNodes(fields, outputs.map((x) => x.output!.name!));
  return layers.size;
}

/**
 * The values the engine's KV slots (../kvSlots.ts) imply, computed once before `first`: with a
 * mask of [filled ones, stale zeros, seq ones], `r1_gqa/seqlens_k` (valid length − 1, int32),
 * `r1_gqa/total` (valid length, int32), `r1_gqa/seq` and `r1_gqa/filled` ([1] int64).
 */
function addSlotLengths(first: GraphField, extraInits: onnx.TensorProto[]): void {
  const pre = (name: string, opType: string, input: string[], attribute: onnx.AttributeProto[] = []) =>
    onnx.NodeProto.create({ name: `r1_gqa/${name}`, opType, domain: '', input, output: [`r1_gqa/${name}`], attribute });
  extraInits.push(i64('r1_gqa/axis0', [0]), i64('r1_gqa/axis1', [1]), i64('r1_gqa/one', [1]), i64('r1_gqa/index1', [1]), i64('r1_gqa/axis2', [2]));
  (first.before ??= []).push(
    pre('mask_sum', 'ReduceSum', ['attention_mask', 'r1_gqa/axis1'], [intAttr('keepdims', 0)]), // [b]
    pre('seqlens64', 'Sub', ['r1_gqa/mask_sum', 'r1_gqa/one']),
    pre('seqlens_k', 'Cast', ['r1_gqa/seqlens64'], [intAttr('to', T.INT32)]),
    pre('total64', 'ReduceMax', ['r1_gqa/mask_sum'], [intAttr('keepdims', 0)]), // scalar
    pre('total', 'Cast', ['r1_gqa/total64'], [intAttr('to', T.INT32)]),
    pre('ids_shape', 'Shape', ['input_ids']),
    pre('seq', 'Gather', ['r1_gqa/ids_shape', 'r1_gqa/index1'], [intAttr('axis', 0)]), // [1]
    pre('total1', 'Unsqueeze', ['r1_gqa/total64', 'r1_gqa/axis0']), // [1]
    pre('filled', 'Sub', ['r1_gqa/total1', 'r1_gqa/seq']), // [1]: rows already in the cache
  );
}

/** present.{i}.* as the rows [filled, filled + seq) of a GroupQueryAttention node's present outputs. */
function newRowsOf(i: number, presentKey: string, presentValue: string): onnx.NodeProto[] {
  const ends = `r1_gqa/${i}/ends`;
  return [
    onnx.NodeProto.create({ name: ends, opType: 'Add', domain: '', input: ['r1_gqa/filled', 'r1_gqa/seq'], output: [ends] }),
    ...(['key', 'value'] as const).map((kind) => {
      const present = `present.${i}.${kind}`;
      return onnx.NodeProto.create({ name: `${present}/r1_new_rows`, opType: 'Slice', domain: '', input: [kind === 'key' ? presentKey : presentValue, 'r1_gqa/filled', ends, 'r1_gqa/axis2'], output: [present] });
    }),
  ];
}

/**
 * New KV rows only, in a graph whose attention already is GroupQueryAttention (onnxruntime-genai's
 * own builds): each node that reads past_key_values.{i}.* and outputs present.{i}.* now reads the
 * valid lengths the engine's slots imply, and present.{i}.* become the rows this run added.
 * Returns false, changing nothing, unless every layer has such a node.
 */
export function cutGqaPresents(fields: GraphField[], numLayers: number, extraInits: onnx.TensorProto[]): boolean {
  const index = indexGraph(fields);
  if (!index || numLayers === 0 || !index.graphInputs.has('attention_mask') || !index.graphInputs.has('input_ids')) return false;
  const gqa: GraphField[] = [];
  for (let i = 0; i < numLayers; i++) {
    const p = index.producer.get(`present.${i}.key`);
    const n = p?.node;
    const ok =
      p?.field && n?.opType === 'GroupQueryAttention' && n.domain === 'com.microsoft' && n.output?.[1] === `present.${i}.key` && n.output?.[2] === `present.${i}.value` &&
      n.input?.[3] === `past_key_values.${i}.key` && n.input?.[4] === `past_key_values.${i}.value` && (n.input?.length ?? 0) >= 7;
    if (!ok) return false;
    gqa.push(p.field!);
  }
  addSlotLengths(fields.find((x) => x.node && !x.dropped)!, extraInits);
  gqa.forEach((x, i) => {
    const n = x.node!;
    const full = [`present.${i}.key/r1_full`, `present.${i}.value/r1_full`];
    n.input![5] = 'r1_gqa/seqlens_k';
    n.input![6] = 'r1_gqa/total';
    n.output![1] = full[0]!;
    n.output![2] = full[1]!;
    x.changed = true;
    (x.after ??= []).push(...newRowsOf(i, full[0]!, full[1]!));
  });
  dropDeadNodes(fields, fields.flatMap((x) => (x.output?.name ? [x.output.name] : [])));
  return true;
}
