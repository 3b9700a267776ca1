/** One `session.run`, with ONNX Runtime's failures turned into the engine's typed error. */
import type * as ort from 'onnxruntime-node';
import { ModelError } from './errors';

/**
 * Where `Float16Array` is a global (Node 24: code-server, recent Electron), onnxruntime-common
 * backs every float16 tensor with one, and onnxruntime-node 1.30's binding reads a Float16Array
 * as 0 bytes ("not enough space: expected 64, got 0"; microsoft/onnxruntime#32323), so every
 * float16 model fails. The binding reads `type`, `dims` and `data` of what it is fed: feed it the
 * same memory as a Uint16Array.
 */
export function float16Readable(feeds: ort.InferenceSession.FeedsType): ort.InferenceSession.FeedsType {
  if (typeof (globalThis as { Float16Array?: unknown }).Float16Array === 'undefined') return feeds;
  let out: Record<string, ort.Tensor> | undefined;
  for (const [name, t] of Object.entries(feeds)) {
    if (t.type !== 'float16' || t.location !== 'cpu' || t.data instanceof Uint16Array) continue;
    const d = t.data as unknown as { buffer: ArrayBuffer; byteOffset: number; length: number };
    out ??= { ...feeds };
    out[name] = { type: 'float16', dims: t.dims, location: 'cpu', data: new Uint16Array(d.buffer, d.byteOffset, d.length) } as unknown as ort.Tensor;
  }
  return out ?? feeds;
}

export async function runModel(session: ort.InferenceSession, feeds: ort.InferenceSession.FeedsType, options?: ort.InferenceSession.RunOptions): Promise<ort.InferenceSession.ReturnType> {
  try {
    const readable = float16Readable(feeds);
    return await (options ? session.run(readable, options) : session.run(readable));
  } catch (e) {
    throw new ModelError(
      'runtime',
      `ONNX Runtime failed while running the model: ${(e as Error).message.split('\n')[0]}`,
      'The model file may not match this ONNX Runtime or the input is too long; try another variant or a shorter request.',
      undefined,
      { cause: e },
    );
  }
}
