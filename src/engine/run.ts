/** One `session.run`, with ONNX Runtime's failures turned into the engine's typed error. */
import type * as ort from 'onnxruntime-node';
import { ModelError } from './errors';

export async function runModel(session: ort.InferenceSession, feeds: ort.InferenceSession.FeedsType, options?: ort.InferenceSession.RunOptions): Promise<ort.InferenceSession.ReturnType> {
  try {
    return await (options ? session.run(feeds, options) : session.run(feeds));
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
