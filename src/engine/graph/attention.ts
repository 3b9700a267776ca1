/**
 * The attention rewrite of the prepared CPU copy (prepare.ts, rewrites.ts): each layer's attention subgraph of
 * the export (reshape, rotary embedding from position_ids, repeat_kv, QKᵀ, mask, softmax, ·V,
 * about 40 small nodes) becomes one `com.microsoft` GroupQueryAttention node, ONNX Runtime's fused
 * kernel: rotary embedding, KV append and causal attention in one pass over the cache.
 *
 * We cannot see the real export's attention subgraph here, so the rewrite anchors only on what any
 * export of the R1 family has: the layer's q/k/v/o projections (found by name), their biases, and
 * the `past_key_values.{i}.*` inputs and `present.{i}.*` outputs. When q and k go through
 * `com.microsoft` RotaryEmbedding nodes (onnxruntime-genai's builder), the fused node takes what
 * those nodes rotate (after Qwen3's q/k norms, when there are any) and their cos/sin tables, so the
 * export's own rotary (with the rope scaling it baked in) is kept. Otherwise the tables are
 * computed from config.json: plain RoPE or Llama 3.1's llama3 rescaling; a model with q/k norms or
 * another rope scaling is then left as it is, with the reason. What sat between the projections and
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
import type { RopeScaling } from '../modelFolder';
import { type GraphIndex, dropDeadNodes, indexGraph } from './graphIndex';
import type { GraphField } from './protobuf';

/** config.json's attention numbers; the rewrite is attempted only with these. */
export interface AttentionShape {
  numHeads: number;
  numKvHeads: number;
  headDim: number;
  ropeTheta: number;
  /** Rows of the rotary cos/sin tables: the longest sequence the rewritten graph accepts. */
  maxPositions: number;
  /** rope_scaling: the tables computed here apply plain RoPE or llama3's rescaling, nothing else. Default plain. */
  ropeScaling?: RopeScaling;
  /** q/k RMSNorms before the rotary embedding (Qwen3): only kept when the export's rotary nodes show where they end. */
  qkNorm?: boolean;
}

/** What the rewrite did: the layers rewritten, or why none was. */
export interface AttentionRewrite {
  layers: number;
  why?: string;
}

/** Inverse frequencies of the rotary embedding: 1 / theta^(2i/d), rescaled as transformers does for rope_type llama3. */
export function ropeInvFreq(headDim: number, theta: number, scaling: RopeScaling = { kind: 'plain' }): number[] {
  const out: number[] = [];
  for (let i = 0; i < headDim / 2; i++) {
    const f = 1 / theta ** ((2 * i) / headDim);
    if (scaling.kind !== 'llama3') {
      out.push(f);
      continue;
    }
    const { factor, lowFreqFactor: low, highFreqFactor: high, originalMaxPositionEmbeddings: old } = scaling;
    const wavelen = (2 * Math.PI) / f;
    if (wavelen < old / high) out.push(f);
    else if (wavelen > old / low) out.push(f / factor);
    else {
      const smooth = (old / wavelen - low) / (high - low);
      out.push((1 - smooth) * (f / factor) + smooth * f);
    }
  }
  return out;
}

/**
 * The RotaryEmbedding (com.microsoft, not interleaved, whole head) that `value` flows into through
 * shape-only or norm nodes, within a few steps; its cos/sin tables must be constants.
 */
function rotaryAfter(value: string, index: GraphIndex): onnx.INodeProto | undefined {
  const PASS = new Set(['Reshape', 'SimplifiedLayerNormalization', 'Identity', 'Cast']);
  let frontier = [value];
  for (let depth = 0; depth < 6 && frontier.length > 0; depth++) {
    const next: string[] = [];
    for (const v of frontier) {
      for (const n of index.consumers.get(v) ?? []) {
        if (n.opType === 'RotaryEmbedding' && n.domain === 'com.microsoft' && n.input?.[0] === v) {
          const attr = (name: string) => Number(n.attribute?.find((a) => a.name === name)?.i ?? 0);
          const [, , cos, sin] = n.input ?? [];
          if (attr('interleaved') !== 0 || attr('rotary_embedding_dim') !== 0 || !cos || !sin || !index.isConstant(cos) || !index.isConstant(sin)) return undefined;
          return n;
        }
        if (PASS.has(n.opType ?? '')) next.push(...(n.output ?? []).filter(Boolean));
      }
    }
    frontier = next;
  }
  return undefined;
}

const T = onnx.TensorProto.DataType;
const A = onnx.AttributeProto.AttributeType;

export function intAttr(name: string, i: number): onnx.AttributeProto {
  return onnx.AttributeProto.create({ name, type: A.INT, i });
}

/** An int64 initializer: a vector, or a scalar (`dims` []). */
export function i64(name: string, values: number[], dims: number[] = [values.length]): onnx.TensorProto {
  return onnx.TensorProto.create({ name, dims, dataType: T.INT64, rawData: new Uint8Array(BigInt64Array.from(values.map(BigInt)).buffer) });
}

const PROJ = /layers[./_](\d+)[./_](?:self_attn|attn)[./_]([qkvo])_proj\b/;

/** The layer and projection a linear node belongs to, from its name or its weight's name. */
function projectionOf(n: onnx.NodeProto): { layer: number; which: 'q' | 'k' | 'v' | 'o' } | undefined {
  if (n.opType !== 'MatMulNBits' && n.opType !== 'MatMul') return undefined;
  const m = PROJ.exec(n.name ?? '') ?? PROJ.exec(n.input?.[1] ?? '');
  return m ? { layer: Number(m[1]), which: m[2] as 'q' | 'k' | 'v' | 'o' } : undefined;
}

const NOT_FOUND = "each layer's q/k/v/o projections, past_key_values.* and present.* were not all found";

/**
 * Rewrites every layer's attention, or nothing (layers 0, with the reason) when any layer does not
 * show the expected anchors. Nodes that only the old attention read are marked dropped.
 */
export function rewriteAttention(fields: GraphField[], shape: AttentionShape, extraInits: onnx.TensorProto[], opset: number): AttentionRewrite {
  const { numHeads, numKvHeads, headDim, ropeTheta, maxPositions } = shape;
  if (opset < 13 || headDim % 2 !== 0 || numHeads % numKvHeads !== 0 || maxPositions < 1) return { layers: 0, why: NOT_FOUND };
  const index = indexGraph(fields);
  if (!index) return { layers: 0, why: NOT_FOUND };
  const { producer, consumers, graphInputs, isConstant } = index;
  const nodes = fields.filter((x) => x.node && !x.dropped);
  const outputs = fields.filter((x) => x.output);
  if (!graphInputs.has('attention_mask') || !graphInputs.has('input_ids')) return { layers: 0, why: NOT_FOUND };

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
    if (l[p.which]) return { layers: 0, why: NOT_FOUND }; // two candidates: ambiguous
    l[p.which] = x;
    layers.set(p.layer, l);
  }
  const presentCount = outputs.filter((x) => /^present\.\d+\.key$/.test(x.output!.name ?? '')).length;
  if (layers.size === 0 || layers.size !== presentCount) return { layers: 0, why: NOT_FOUND };
  for (let i = 0; i < layers.size; i++) {
    const l = layers.get(i);
    if (!l?.q || !l.k || !l.v || !l.o) return { layers: 0, why: NOT_FOUND };
    for (const kind of ['key', 'value']) {
      if (!graphInputs.has(`past_key_values.${i}.${kind}`) || !producer.has(`present.${i}.${kind}`)) return { layers: 0, why: NOT_FOUND };
    }
  }

  // q and k as the fused node takes them: what the export's RotaryEmbedding nodes rotate, with
  // their tables, when every layer has such nodes sharing one pair of tables; else the projections,
  // with tables computed here.
  const rotaries = [...layers.keys()].sort((a, b) => a - b).map((i) => {
    const l = layers.get(i)!;
    const q = rotaryAfter(projected(l.q!), index);
    const k = rotaryAfter(projected(l.k!), index);
    return q && k ? { q: q.input![0]!, k: k.input![0]!, cos: q.input![2]!, sin: q.input![3]!, kCos: k.input![2]!, kSin: k.input![3]! } : undefined;
  });
  const first = rotaries[0];
  const exportTables = first && rotaries.every((r) => r && r.cos === first.cos && r.sin === first.sin && r.kCos === first.cos && r.kSin === first.sin);
  let cosName = 'r1_gqa/cos_cache';
  let sinName = 'r1_gqa/sin_cache';
  if (exportTables) {
    cosName = first.cos;
    sinName = first.sin;
  } else {
    const scaling = shape.ropeScaling ?? { kind: 'plain' };
    if (shape.qkNorm) return { layers: 0, why: 'not attempted: the model normalizes q and k before the rotary embedding (q_norm, k_norm), and the export has no rotary nodes that show where' };
    if (scaling.kind === 'other') return { layers: 0, why: `not attempted: config.json's rope_scaling (${scaling.type}) is not computed here, and the export has no rotary tables to reuse` };
    // The rotary tables, for plain RoPE or llama3's rescaling.
    const half = headDim / 2;
    const invFreq = ropeInvFreq(headDim, ropeTheta, scaling);
    const cos = new Float32Array(maxPositions * half);
    const sin = new Float32Array(maxPositions * half);
    for (let i = 0; i < half; i++) {
      for (let p = 0; p < maxPositions; p++) {
        cos[p * half + i] = Math.cos(p * invFreq[i]!);
        sin[p * half + i] = Math.sin(p * invFreq[i]!);
      }
    }
    extraInits.push(
      onnx.TensorProto.create({ name: cosName, dims: [maxPositions, half], dataType: T.FLOAT, rawData: new Uint8Array(cos.buffer) }),
      onnx.TensorProto.create({ name: sinName, dims: [maxPositions, half], dataType: T.FLOAT, rawData: new Uint8Array(sin.buffer) }),
    );
  }
  // Shared values, computed once before the first node: valid lengths from the mask, the rows
  // this run adds.
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
      input: [
        exportTables ? rotaries[i]!.q : projected(l.q!),
        exportTables ? rotaries[i]!.k : projected(l.k!),
        projected(l.v!),
        `past_key_values.${i}.key`,
        `past_key_values.${i}.value`,
        'r1_gqa/seqlens_k',
        'r1_gqa/total',
        cosName,
        sinName,
      ],
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
  return { layers: layers.size };
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
