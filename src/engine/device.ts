/**
 * GPU-side details of the decoder session that do not depend on the rest of the engine:
 *
 * - WebGPU keeps the KV cache on the device. The session is created with
 *   `preferredOutputLocation` so that every `present.*` output stays a GPU buffer
 *   ('gpu-buffer') and is fed as it is to the next step's `past_key_values.*`; only the logits
 *   come back to host memory ('cpu'). onnxruntime-node returns such outputs as
 *   `Tensor.fromGpuBuffer` tensors holding the OrtValue, whose `dispose()` releases it; the
 *   decoder disposes each step's old cache once the new one is there. `preferredOutputLocation`
 *   works with WebGPU only: with CUDA, DirectML and CoreML every output comes back to the host.
 * - A first run on a GPU provider, made while the provider is still being chosen, so that a
 *   provider that creates its session but cannot run the graph (a missing kernel, a device
 *   lost) falls back to the next provider instead of failing the load.
 *
 * What cannot be had with this graph: the logits of the last position only. The exported
 * decoder computes logits for every input position, so a prefill chunk of N tokens still
 * returns N rows; decode steps (one token) return one row.
 */
import type * as ort from 'onnxruntime-node';
import { ModelError } from './errors';
import { firstLine } from './providers';
import { DecoderSession } from './session';
import { DEFAULT_NAMES, kvNames } from './modelFolder';
import type { DecoderNames, ExecutionProvider, GraphSignature } from './types';

export type OutputLocation = 'cpu' | 'gpu-buffer';

/** The decoder's cache outputs for every layer (`present.{i}.{key,value}` unless `names` says otherwise). */
export function presentNames(numLayers: number, names: DecoderNames = DEFAULT_NAMES): string[] {
  return kvNames(names, numLayers).present;
}

/** Output locations for a WebGPU decoder: the KV cache stays on the device, logits come to the host. */
export function webgpuOutputLocations(numLayers: number, names: DecoderNames = DEFAULT_NAMES): Record<string, OutputLocation> {
  const loc: Record<string, OutputLocation> = { [names.logits]: 'cpu' };
  for (const n of presentNames(numLayers, names)) loc[n] = 'gpu-buffer';
  return loc;
}

/** Whether a provider can keep outputs on the device in onnxruntime-node 1.30.0. */
export function keepsKvOnDevice(provider: ExecutionProvider): boolean {
  return provider === 'webgpu';
}

/** True for a tensor whose data lives in a GPU buffer (and must be disposed explicitly). */
export function isDeviceTensor(t: { location?: string } | undefined): boolean {
  return t?.location === 'gpu-buffer';
}

/**
 * One decode step on a freshly created GPU session. Throws a plain Error (a provider failure,
 * so the next provider is tried) when the run fails; a graph that does not match config.json
 * is a ModelError and stops the load as on the CPU.
 */
export async function firstRunOnDevice(
  provider: ExecutionProvider,
  session: ort.InferenceSession,
  signature: GraphSignature,
  vocabSize: number,
  token: number,
): Promise<void> {
  const decoder = new DecoderSession(session, signature, vocabSize);
  try {
    await decoder.forward([token]);
  } catch (e) {
    const cause = e instanceof ModelError && e.code === 'runtime' ? e.cause : e;
    throw new Error(`the first ${provider} run failed: ${firstLine(cause instanceof Error ? cause.message : String(cause))}`, { cause: e });
  } finally {
    decoder.reset();
  }
}
