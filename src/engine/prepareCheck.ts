/**
 * The check that decides whether a prepared copy's attention rewrite (prepareAttention.ts) is
 * kept: the copy with it and the copy without it run the same token schedule through the engine's
 * own decoder, and their logits must agree. The schedule covers what the engine does with a
 * model: a prompt prefilled in chunks, across a growth of the KV slots, decode steps, and a second
 * prompt that keeps a prefix of the first (cached rows beyond it are stale, not zero).
 *
 * One session at a time, released before the next: the check never holds two models in memory.
 */
import * as ort from 'onnxruntime-node';
import { type ModelConfig, type ValueMetadataLike, validateSignature } from './modelFolder';
import { DecoderSession } from './session';

/** Largest difference allowed, as a share of the largest reference logit (int8 rounding flips stay far below). */
export const CHECK_TOLERANCE = 0.02;

/** The token schedule: every call's logits are compared. */
async function schedule(d: DecoderSession, vocab: number): Promise<Float32Array[]> {
  const id = (i: number) => (i * 7919 + 13) % vocab;
  const first = Array.from({ length: 272 }, (_, i) => id(i));
  const out: Float32Array[] = [];
  const keep = async (p: Promise<Float32Array>) => out.push((await p).slice());
  d.startSequence(first);
  for (let s = 0; s < first.length; s += 128) await keep(d.forward(first.slice(s, s + 128)));
  for (let i = 0; i < 4; i++) await keep(d.forward([id(1000 + i)]));
  // A second prompt sharing the first 200 tokens: the cache is cut back, not cleared.
  const second = [...first.slice(0, 200), ...Array.from({ length: 20 }, (_, i) => id(2000 + i))];
  const kept = d.startSequence(second);
  await keep(d.forward(second.slice(kept)));
  await keep(d.forward([id(3000)]));
  return out;
}

/**
 * Resolves to undefined when `candidate` computes the same logits as `plain` over the schedule,
 * else to a sentence saying where they part.
 */
export async function sameLogits(plain: string, candidate: string, config: ModelConfig, options: ort.InferenceSession.SessionOptions): Promise<string | undefined> {
  const run = async (file: string) => {
    const session = await ort.InferenceSession.create(file, options);
    const signature = validateSignature(file, session.inputMetadata as unknown as ValueMetadataLike[], session.outputMetadata as unknown as ValueMetadataLike[], config);
    const d = new DecoderSession(session, signature, config.vocabSize);
    try {
      return await schedule(d, config.vocabSize);
    } finally {
      await d.release();
    }
  };
  const want = await run(plain);
  const got = await run(candidate);
  for (let k = 0; k < want.length; k++) {
    const a = want[k]!;
    const b = got[k]!;
    let scale = 0;
    let diff = 0;
    for (let i = 0; i < a.length; i++) {
      scale = Math.max(scale, Math.abs(a[i]!));
      const d = Math.abs(a[i]! - b[i]!);
      if (!(d <= diff)) diff = d; // NaN counts as the largest difference
    }
    if (!(diff <= CHECK_TOLERANCE * scale)) {
      return `its logits differ from the plain copy's at step ${k + 1} of ${want.length} (largest difference ${diff.toPrecision(3)}, largest logit ${scale.toPrecision(3)})`;
    }
  }
  return undefined;
}
