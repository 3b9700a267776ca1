/**
 * Decode attention over the engine's KV slots in place: the last rewrite of the prepared CPU copy.
 *
 * Why: ONNX Runtime's CPU GroupQueryAttention, whenever its past and present are different buffers
 * (ours always are: the past is the engine's slot buffer, fed from JS, and onnxruntime-node copies
 * every output, a preallocated one too, into a new JS buffer), zeroes the whole present and
 * copies the cached rows into it once per query head (gqa_attention_base.h: the copy sits inside
 * the per-head loop, so with 12 query heads on 2 KV heads each KV head's rows are copied six
 * times), then reads them per query head. Past ~1,000 cached tokens that costs more than the
 * attention itself: at 4,096 it was half of a 1.5B decode step (bench/NOTES.md).
 *
 * What: each layer's GroupQueryAttention node (and the Slices that cut its present.* to the new
 * rows) is wrapped in an If. When the run is a decode or verification pass (at most
 * DECODE_MAX_TOKENS new tokens) over at least DECODE_MIN_SLOTS slots, the then-branch computes the
 * same attention from plain ONNX Runtime kernels without copying the cache: the rotary embedding of
 * the new q and k (RotaryEmbedding, the node's own cos/sin tables and positions filled + i), the
 * query heads grouped per KV head (rows s·G + g), scores against the cached keys read in place
 * (FusedMatMul with transB) and against the new keys apart, the mask as additive biases (unfilled
 * slots; later new tokens), one Softmax over both, then the probabilities times the cached values
 * in place plus times the new values. Prefill chunks and short caches keep GroupQueryAttention
 * (the else-branch, the node as it was), which is faster there (measured: bench/NOTES.md).
 *
 * It runs last: a graph with subgraphs is left alone by every other rewrite (graphIndex.ts). The
 * copy is checked against the one without the attention rewrites (check.ts), whose schedule runs
 * both branches.
 */
import { onnx } from 'onnx-proto';
import { type AttentionShape, i64, intAttr as int } from './attention';
import { indexGraph } from './graphIndex';
import type { GraphField } from './protobuf';

/** Decode and verification passes of up to this many new tokens take the in-place branch (1 + prompt lookup's 16 drafts). */
export const DECODE_MAX_TOKENS = 17;
/** ...when the KV slots hold at least this many rows (below, GroupQueryAttention's copy is cheaper than the extra nodes). */
export const DECODE_MIN_SLOTS = 512;

const T = onnx.TensorProto.DataType;
const A = onnx.AttributeProto.AttributeType;
/** The additive mask: exp(x - max) is 0 for it, and it stays finite when added to a score. */
const MASKED = -1e30;

const ints = (name: string, v: number[]) => onnx.AttributeProto.create({ name, type: A.INTS, ints: v });
const float = (name: string, f: number) => onnx.AttributeProto.create({ name, type: A.FLOAT, f });

function f32(name: string, value: number): onnx.TensorProto {
  return onnx.TensorProto.create({ name, dims: [], dataType: T.FLOAT, rawData: new Uint8Array(Float32Array.from([value]).buffer) });
}

function node(name: string, opType: string, input: string[], output: string[], attribute: onnx.AttributeProto[] = [], domain = ''): onnx.NodeProto {
  return onnx.NodeProto.create({ name, opType, domain, input, output, attribute });
}

/** A float tensor of unknown shape: what an If branch declares for its outputs. */
function floatOut(name: string): onnx.ValueInfoProto {
  return onnx.ValueInfoProto.create({ name, type: { tensorType: { elemType: T.FLOAT } } });
}

const attrOf = (n: onnx.INodeProto, name: string) => n.attribute?.find((a) => a.name === name);

/** Where a node is emitted: a field's own node, or an entry of its before / after list. */
interface Place {
  field: GraphField;
  list?: onnx.NodeProto[];
}

function placeOf(fields: GraphField[], n: onnx.INodeProto): Place | undefined {
  for (const field of fields) {
    if (field.node === n && !field.dropped) return { field };
    for (const list of [field.before, field.after]) if (list?.includes(n as onnx.NodeProto)) return { field, list };
  }
  return undefined;
}

function remove(fields: GraphField[], n: onnx.INodeProto): void {
  const p = placeOf(fields, n);
  if (!p) return;
  if (p.list) p.list.splice(p.list.indexOf(n as onnx.NodeProto), 1);
  else {
    p.field.dropped = true;
    p.field.changed = true;
  }
}

/**
 * The values every layer's branch reads, computed once before `first`'s node (after the slot
 * lengths, attention.ts's addSlotLengths): the condition, the positions of the new tokens, the
 * mask biases of the cached slots and of the new tokens, and the slot count; and the constants
 * the branches share.
 */
function sharedNodes(shape: AttentionShape, pastKey0: string, extraInits: onnx.TensorProto[]): onnx.NodeProto[] {
  const { numHeads: H, numKvHeads: KV, headDim: D } = shape;
  const G = H / KV;
  const d = (x: string) => `r1_dec/${x}`;
  // With addSlotLengths' r1_gqa/axis0, axis1 and axis2 ([0], [1], [2]).
  extraInits.push(
    i64(d('max_tokens'), [DECODE_MAX_TOKENS + 1]),
    i64(d('min_slots'), [DECODE_MIN_SLOTS - 1]),
    i64(d('scalar_shape'), []),
    i64(d('zero'), [0]),
    i64(d('zero_s'), [0], []),
    i64(d('one_s'), [1], []),
    i64(d('groups'), [G]),
    i64(d('bias_head'), [1, 1, -1]),
    i64(d('row_shape'), [1, 1, 1, -1]),
    f32(d('one_f'), 1),
    f32(d('masked'), MASKED),
    // The branches' shapes.
    i64(d('q5'), [1, -1, KV, G, D]),
    i64(d('qg'), [1, KV, -1, D]),
    i64(d('kv4'), [1, -1, KV, D]),
    i64(d('o5'), [1, KV, -1, G, D]),
    i64(d('out3'), [1, -1, H * D]),
    i64(d('end'), [Number.MAX_SAFE_INTEGER]),
    i64(d('axis3'), [3]),
  );
  return [
    node(d('slots_shape'), 'Shape', [pastKey0], [d('slots_shape')]),
    node(d('slots'), 'Gather', [d('slots_shape'), 'r1_gqa/axis2'], [d('slots')], [int('axis', 0)]), // [1]
    node(d('few'), 'Less', ['r1_gqa/seq', d('max_tokens')], [d('few')]),
    node(d('many_slots'), 'Less', [d('min_slots'), d('slots')], [d('many_slots')]),
    node(d('use1'), 'And', [d('few'), d('many_slots')], [d('use1')]),
    node(d('use'), 'Reshape', [d('use1'), d('scalar_shape')], [d('use')]),
    // Positions of the new tokens: filled + [0, seq).
    node(d('filled_s'), 'Squeeze', ['r1_gqa/filled', 'r1_gqa/axis0'], [d('filled_s')]),
    node(d('pos1'), 'Range', [d('filled_s'), 'r1_gqa/total64', d('one_s')], [d('pos1')]),
    node(d('pos'), 'Unsqueeze', [d('pos1'), 'r1_gqa/axis0'], [d('pos')]), // [1, seq]
    // Cached slots: 0 where the mask holds a 1, MASKED where not. [1, 1, 1, slots]
    node(d('past_mask'), 'Slice', ['attention_mask', d('zero'), d('slots'), 'r1_gqa/axis1'], [d('past_mask')]),
    node(d('past_maskf'), 'Cast', [d('past_mask')], [d('past_maskf')], [int('to', T.FLOAT)]),
    node(d('past_off'), 'Sub', [d('one_f'), d('past_maskf')], [d('past_off')]),
    node(d('past_bias2'), 'Mul', [d('past_off'), d('masked')], [d('past_bias2')]),
    node(d('past_bias'), 'Reshape', [d('past_bias2'), d('row_shape')], [d('past_bias')]),
    // New tokens: row s·G + g sees new token j ≤ s. [1, 1, seq·G, seq]
    node(d('seq_s'), 'Squeeze', ['r1_gqa/seq', 'r1_gqa/axis0'], [d('seq_s')]),
    node(d('idx'), 'Range', [d('zero_s'), d('seq_s'), d('one_s')], [d('idx')]),
    node(d('rows'), 'Unsqueeze', [d('idx'), 'r1_gqa/axis1'], [d('rows')]), // [seq, 1]
    node(d('cols'), 'Unsqueeze', [d('idx'), 'r1_gqa/axis0'], [d('cols')]), // [1, seq]
    node(d('later'), 'Greater', [d('cols'), d('rows')], [d('later')]),
    node(d('laterf'), 'Cast', [d('later')], [d('laterf')], [int('to', T.FLOAT)]),
    node(d('new_bias2'), 'Mul', [d('laterf'), d('masked')], [d('new_bias2')]),
    node(d('new_bias3'), 'Unsqueeze', [d('new_bias2'), 'r1_gqa/axis1'], [d('new_bias3')]), // [seq, 1, seq]
    node(d('grouped_shape'), 'Concat', ['r1_gqa/seq', d('groups'), 'r1_gqa/seq'], [d('grouped_shape')], [int('axis', 0)]),
    node(d('new_bias_g'), 'Expand', [d('new_bias3'), d('grouped_shape')], [d('new_bias_g')]), // [seq, G, seq]
    node(d('new_bias_shape'), 'Concat', [d('bias_head'), 'r1_gqa/seq'], [d('new_bias_shape')], [int('axis', 0)]),
    node(d('new_bias'), 'Reshape', [d('new_bias_g'), d('new_bias_shape')], [d('new_bias')]),
  ];
}

/** The then-branch of layer i: the attention over the slots in place. */
function inPlaceBranch(i: number, gqa: onnx.INodeProto, s: AttentionShape, extraInits: onnx.TensorProto[]): onnx.GraphProto {
  const { numHeads: H, numKvHeads: KV, headDim: D } = s;
  const d = (x: string) => `r1_dec/${x}`;
  const p = (x: string) => `r1_dec/${i}/${x}`;
  const ins = gqa.input ?? [];
  const scaleAttr = Number(attrOf(gqa, 'scale')?.f ?? 0);
  const scale = scaleAttr !== 0 ? scaleAttr : 1 / Math.sqrt(D);
  const rotary = Number(attrOf(gqa, 'do_rotary')?.i ?? 0) === 1;
  const nodes: onnx.NodeProto[] = [];
  let [q, k, v] = [ins[0]!, ins[1] ?? '', ins[2] ?? ''];
  if (!k) {
    if (!extraInits.some((t) => t.name === d('split'))) extraInits.push(i64(d('split'), [H * D, KV * D, KV * D]));
    nodes.push(node(p('split'), 'Split', [q, d('split')], [p('q'), p('k'), p('v')], [int('axis', 2)]));
    [q, k, v] = [p('q'), p('k'), p('v')];
  }
  if (rotary) {
    const attrs = [int('interleaved', Number(attrOf(gqa, 'rotary_interleaved')?.i ?? 0)), int('num_heads', 0), int('rotary_embedding_dim', 0)];
    nodes.push(node(p('q_rot'), 'RotaryEmbedding', [q, d('pos'), ins[7]!, ins[8]!], [p('q_rot')], attrs, 'com.microsoft'));
    nodes.push(node(p('k_rot'), 'RotaryEmbedding', [k, d('pos'), ins[7]!, ins[8]!], [p('k_rot')], attrs, 'com.microsoft'));
    [q, k] = [p('q_rot'), p('k_rot')];
  }
  const [pastK, pastV] = [ins[3]!, ins[4]!];
  nodes.push(
    node(p('q5'), 'Reshape', [q, d('q5')], [p('q5')]),
    node(p('q5t'), 'Transpose', [p('q5')], [p('q5t')], [ints('perm', [0, 2, 1, 3, 4])]),
    node(p('qg'), 'Reshape', [p('q5t'), d('qg')], [p('qg')]), // [1, KV, seq·G, D]
    node(p('k4'), 'Reshape', [k, d('kv4')], [p('k4')]),
    node(p('k_new'), 'Transpose', [p('k4')], [p('k_new')], [ints('perm', [0, 2, 1, 3])]), // [1, KV, seq, D]
    node(p('v4'), 'Reshape', [v, d('kv4')], [p('v4')]),
    node(p('v_new'), 'Transpose', [p('v4')], [p('v_new')], [ints('perm', [0, 2, 1, 3])]),
    node(p('s_past'), 'FusedMatMul', [p('qg'), pastK], [p('s_past')], [int('transB', 1), float('alpha', scale)], 'com.microsoft'), // [1, KV, seq·G, slots]
    node(p('s_new'), 'FusedMatMul', [p('qg'), p('k_new')], [p('s_new')], [int('transB', 1), float('alpha', scale)], 'com.microsoft'), // [1, KV, seq·G, seq]
    node(p('s_past_m'), 'Add', [p('s_past'), d('past_bias')], [p('s_past_m')]),
    node(p('s_new_m'), 'Add', [p('s_new'), d('new_bias')], [p('s_new_m')]),
    node(p('scores'), 'Concat', [p('s_past_m'), p('s_new_m')], [p('scores')], [int('axis', -1)]),
    node(p('probs'), 'Softmax', [p('scores')], [p('probs')], [int('axis', -1)]),
    node(p('p_past'), 'Slice', [p('probs'), d('zero'), d('slots'), d('axis3')], [p('p_past')]),
    node(p('p_new'), 'Slice', [p('probs'), d('slots'), d('end'), d('axis3')], [p('p_new')]),
    node(p('o_past'), 'MatMul', [p('p_past'), pastV], [p('o_past')]),
    node(p('o_new'), 'MatMul', [p('p_new'), p('v_new')], [p('o_new')]),
    node(p('o4'), 'Add', [p('o_past'), p('o_new')], [p('o4')]), // [1, KV, seq·G, D]
    node(p('o5'), 'Reshape', [p('o4'), d('o5')], [p('o5')]),
    node(p('o5t'), 'Transpose', [p('o5')], [p('o5t')], [ints('perm', [0, 2, 1, 3, 4])]),
    node(p('out'), 'Reshape', [p('o5t'), d('out3')], [p('out')]),
  );
  return onnx.GraphProto.create({ name: p('in_place'), node: nodes, output: [floatOut(p('out')), floatOut(p('k_new')), floatOut(p('v_new'))] });
}

/** Why a GroupQueryAttention node's attention is not reproduced by the in-place branch (undefined: it is). */
function unsupported(gqa: onnx.INodeProto, s: AttentionShape): string | undefined {
  const ins = gqa.input ?? [];
  if (Number(attrOf(gqa, 'num_heads')?.i ?? 0) !== s.numHeads || Number(attrOf(gqa, 'kv_num_heads')?.i ?? 0) !== s.numKvHeads) return "its head counts differ from config.json's";
  if (Number(attrOf(gqa, 'softcap')?.f ?? 0) !== 0 || Number(attrOf(gqa, 'local_window_size')?.i ?? -1) !== -1 || Number(attrOf(gqa, 'smooth_softmax')?.i ?? 0) !== 0) return 'it uses a soft cap, a local window or smooth softmax';
  if (ins.slice(9).some(Boolean)) return 'it takes position ids, an attention bias or head sinks';
  if (Number(attrOf(gqa, 'do_rotary')?.i ?? 0) === 1 && !(ins[7] && ins[8])) return 'it rotates without cos/sin tables';
  if (!ins[1] !== !ins[2]) return 'it takes a key without a value';
  return undefined;
}

export interface DecodeAttentionRewrite {
  layers: number;
  why?: string;
}

/**
 * Wraps every layer's GroupQueryAttention (present.{i}.* its new rows, cut by Slices: attention.ts)
 * in the If described above, or nothing (layers 0, with the reason) when any layer does not fit.
 */
export function wrapDecodeAttention(fields: GraphField[], numLayers: number, shape: AttentionShape, extraInits: onnx.TensorProto[], opset: number): DecodeAttentionRewrite {
  if (opset < 13) return { layers: 0, why: 'the model opset is below 13' };
  if (shape.numHeads % shape.numKvHeads !== 0) return { layers: 0, why: 'the query heads are not a multiple of the KV heads' };
  const index = indexGraph(fields);
  if (!index || numLayers === 0 || !index.producer.has('r1_gqa/seq')) return { layers: 0, why: 'the KV slots are not read through GroupQueryAttention' };
  const layers: { gqa: onnx.INodeProto; slices: onnx.INodeProto[]; ends: onnx.INodeProto; out: string }[] = [];
  for (let i = 0; i < numLayers; i++) {
    const slices = (['key', 'value'] as const).map((kind) => index.producer.get(`present.${i}.${kind}`)?.node);
    const [sk, sv] = slices;
    const gqa = sk && index.producer.get(sk.input?.[0] ?? '')?.node;
    const ends = sk && index.producer.get(sk.input?.[2] ?? '')?.node;
    const fits =
      sk?.opType === 'Slice' && sv?.opType === 'Slice' && gqa?.opType === 'GroupQueryAttention' && gqa.domain === 'com.microsoft' && ends &&
      gqa.output?.[1] === sk.input?.[0] && gqa.output?.[2] === sv.input?.[0] && sv.input?.[2] === sk.input?.[2] &&
      gqa.input?.[3] === `past_key_values.${i}.key` && gqa.input?.[4] === `past_key_values.${i}.value` &&
      (index.consumers.get(gqa.output![1]!)?.length ?? 0) === 1 && (index.consumers.get(gqa.output![2]!)?.length ?? 0) === 1 && (index.consumers.get(ends.output?.[0] ?? '')?.length ?? 0) === 2;
    if (!fits) return { layers: 0, why: `layer ${i}'s GroupQueryAttention and the cut of its present.* were not found` };
    const why = unsupported(gqa, shape);
    if (why) return { layers: 0, why: `layer ${i}'s GroupQueryAttention: ${why}` };
    layers.push({ gqa, slices: [sk, sv], ends, out: gqa.output![0]! });
  }
  // Emitted before their field's node even when that node was dropped.
  const first = fields.find((x) => x.before?.some((n) => n.name === 'r1_gqa/filled'));
  if (!first) return { layers: 0, why: 'the slot lengths were not found' };
  first.before!.push(...sharedNodes(shape, 'past_key_values.0.key', extraInits));
  first.changed = true;
  layers.forEach((l, i) => {
    const place = placeOf(fields, l.gqa)!;
    const e = (x: string) => `r1_dec/${i}/gqa/${x}`;
    // The else-branch: the node and its cut as they were, under names of their own (names are unique across scopes).
    const rename = new Map([l.gqa.output![0]!, l.gqa.output![1]!, l.gqa.output![2]!, l.ends.output![0]!].map((x, k) => [x, e(['out', 'present_key', 'present_value', 'ends'][k]!)]));
    const copy = (n: onnx.INodeProto, outputs: string[]) => onnx.NodeProto.create({ ...n, input: (n.input ?? []).map((x) => rename.get(x) ?? x), output: outputs });
    const elseBranch = onnx.GraphProto.create({
      name: `r1_dec/${i}/gqa`,
      node: [copy(l.gqa, [e('out'), e('present_key'), e('present_value')]), copy(l.ends, [e('ends')]), copy(l.slices[0]!, [e('key_new')]), copy(l.slices[1]!, [e('value_new')])],
      output: [floatOut(e('out')), floatOut(e('key_new')), floatOut(e('value_new'))],
    });
    const thenBranch = inPlaceBranch(i, l.gqa, shape, extraInits);
    const wrapped = onnx.NodeProto.create({
      name: `r1_dec/${i}/If`,
      opType: 'If',
      domain: '',
      input: ['r1_dec/use'],
      output: [l.out, `present.${i}.key`, `present.${i}.value`],
      attribute: [onnx.AttributeProto.create({ name: 'then_branch', type: A.GRAPH, g: thenBranch }), onnx.AttributeProto.create({ name: 'else_branch', type: A.GRAPH, g: elseBranch })],
    });
    for (const n of [l.ends, ...l.slices]) remove(fields, n);
    if (place.list) place.list.splice(place.list.indexOf(l.gqa as onnx.NodeProto), 1, wrapped);
    else {
      remove(fields, l.gqa);
      (place.field.after ??= []).unshift(wrapped);
    }
  });
  return { layers: numLayers };
}
