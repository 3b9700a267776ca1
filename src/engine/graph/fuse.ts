/**
 * MatMulNBits fusion in the prepared copy: nodes that read the same input with the same
 * quantization become one wider node over weights concatenated straight from the source file.
 */
import { onnx } from 'onnx-proto';
import { type GraphField, type Segment, tensorFromRanges } from './protobuf';

const intAttr = (n: onnx.NodeProto, name: string): number | undefined => {
  const a = n.attribute?.find((x) => x.name === name);
  return a ? Number(a.i) : undefined;
};

/**
 * Fuses MatMulNBits nodes that share their input and quantization (see GraphRewrites.fuseMatMuls).
 * The weights [N, K/block, block·bits/8] and scales [N·K/block] of the group are concatenated along
 * N straight from the source file's byte ranges; the fused node's output is Split back into the
 * original value names, so nothing downstream changes. A group is left alone unless every member
 * has only the three plain inputs and its weight and scales are raw-data initializers used by it
 * alone.
 */
export function fuseMatMulNBits(fields: GraphField[], extraInits: onnx.TensorProto[], extraSegments: Segment[], opset: number): { from: number; to: number } {
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
