/**
 * Graph plumbing for the prepared copy's structural rewrites (attention.ts): an index of
 * who produces and who reads each value, and the removal of what nothing reads anymore.
 */
import type { onnx } from 'onnx-proto';
import type { GraphField } from './protobuf';

export interface GraphIndex {
  /** The node that outputs a value, and its field when it is one of the file's own nodes. */
  producer: Map<string, { node: onnx.INodeProto; field?: GraphField }>;
  consumers: Map<string, onnx.INodeProto[]>;
  graphInputs: Set<string>;
  /** An initializer or a Constant node's output. */
  isConstant: (name: string) => boolean;
}

/**
 * Indexes every live node, including those earlier rewrites placed before or after a field (e.g.
 * the kvNewRows Identity that outputs present.*). Undefined when the graph must be left alone: a
 * node we could not decode, or one with a subgraph, may read any value.
 */
export function indexGraph(fields: GraphField[]): GraphIndex | undefined {
  if (fields.some((x) => x.f.field === 1 && !x.node)) return undefined;
  if (fields.some((x) => x.node && !x.dropped && x.node.attribute?.some((a) => a.g || (a.graphs?.length ?? 0) > 0))) return undefined;
  const graphInputs = new Set(fields.flatMap((x) => (x.graphInput ? [x.graphInput] : [])));
  const producer: GraphIndex['producer'] = new Map();
  const consumers: GraphIndex['consumers'] = new Map();
  for (const x of fields) {
    const own = x.node && !x.dropped ? [{ node: x.node as onnx.INodeProto, field: x }] : [];
    for (const e of [...(x.before ?? []).map((node) => ({ node })), ...own, ...(x.after ?? []).map((node) => ({ node }))]) {
      for (const o of e.node.output ?? []) if (o) producer.set(o, e);
      for (const i of e.node.input ?? []) {
        if (!i) continue;
        const c = consumers.get(i);
        if (c) c.push(e.node);
        else consumers.set(i, [e.node]);
      }
    }
  }
  const isConstant = (name: string) => {
    const p = producer.get(name)?.node;
    return p ? p.opType === 'Constant' : !graphInputs.has(name);
  };
  return { producer, consumers, graphInputs, isConstant };
}

/**
 * Marks dropped every node whose outputs nothing live reads (graph outputs are the roots), and the
 * initializers only those nodes read (ONNX Runtime would warn about each at every load). Nodes that
 * earlier rewrites placed before or after a field are pruned the same way.
 */
export function dropDeadNodes(fields: GraphField[], graphOutputs: string[]): void {
  const index = indexGraph(fields);
  if (!index) return;
  const live = new Set<onnx.INodeProto>();
  const stack = graphOutputs.flatMap((n) => index.producer.get(n)?.node ?? []);
  while (stack.length > 0) {
    const n = stack.pop()!;
    if (live.has(n)) continue;
    live.add(n);
    for (const i of n.input ?? []) {
      const p = i ? index.producer.get(i) : undefined;
      if (p) stack.push(p.node);
    }
  }
  const read = new Set(graphOutputs);
  for (const n of live) for (const i of n.input ?? []) read.add(i);
  for (const x of fields) {
    if (x.node && !live.has(x.node)) x.dropped = true;
    if (x.init && !read.has(x.init.name) && !index.graphInputs.has(x.init.name)) x.dropped = true;
    if (x.before) x.before = x.before.filter((n) => live.has(n));
    if (x.after) x.after = x.after.filter((n) => live.has(n));
  }
}
