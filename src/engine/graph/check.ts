/**
 * The check that decides whether a prepared copy's attention rewrite (attention.ts) is
 * kept: the copy with it and the copy without it run the same token schedule through the engine's
 * own decoder, and their logits must agree. The schedule covers what the engine does with a
 * model: a short request, then an unrelated prompt that starts over on the same KV slots (stale
 * rows, all masked), prefilled in chunks across a growth of the slots, decode steps and a pass
 * over several tokens with all their logits (as prompt lookup runs), and a follow-up that keeps a
 * prefix of it (cached rows beyond the prefix are stale, not zero).
 *
 * One session at a time, released before the next: the check never holds two models in memory.
 */
import * as ort from 'onnxruntime-node';
import { type ModelConfig, type ValueMetadataLike, validateSignature } from '../modelFolder';
import { DecoderSession } from '../session';
import type { AttentionShape } from './attention';
import type { PrepareOptions } from './prepare';

/**
 * What may differ: the attention's summation order, whose last-bit differences can flip the int8
 * rounding of a later activation. Per call, the 99th percentile of the differences must stay
 * below PERCENTILE_TOLERANCE of the largest reference logit and the largest difference below
 * MAX_TOLERANCE of it. Measured: the benchmark's random 1.5B model differs by at most 0.02 % /
 * 0.04 %, the tiny test model by 0.27 % / 0.45 % (at accuracy level 0 both agree to 1e-6); a rope
 * base off by 20 % moves the tiny model by 2.3–4.1 % / 4.1–8.4 %, off by 20x by 8–11 % / 14–20 %.
 */
export const PERCENTILE_TOLERANCE = 0.02;
export const MAX_TOLERANCE = 0.05;
/** Bump when the schedule or the tolerances change. */
const CHECK_VERSION = 2;
/** What a verdict depends on: this check and ONNX Runtime's kernels (PrepareOptions.verifyVersion). */
export const CHECK_ID = `check ${CHECK_VERSION}, onnxruntime ${ort.env.versions.common}`;

/** config.json's numbers the attention rewrite needs. */
export function attentionShapeOf(config: ModelConfig): AttentionShape {
  return {
    numHeads: config.numAttentionHeads,
    numKvHeads: config.numKeyValueHeads,
    headDim: config.headDim,
    ropeTheta: config.ropeTheta,
    maxPositions: config.maxPositionEmbeddings,
    ropeScaling: config.ropeScaling,
    qkNorm: config.qkNorm,
  };
}

/**
 * The prepare options that turn on the checked rewrites for this model (none when its config has
 * a sliding window): the attention shape, and the check run with `options`. Rope scaling and q/k
 * norms are the rewrite's to handle or refuse, with its reason (attention.ts).
 */
export function checkedRewrites(config: ModelConfig, options: ort.InferenceSession.SessionOptions): Pick<PrepareOptions, 'attentionShape' | 'verify' | 'verifyVersion'> {
  if (config.slidingWindow) return {};
  return {
    attentionShape: attentionShapeOf(config),
    verify: (plain, candidate) => sameLogits(plain, candidate, config, options),
    verifyVersion: CHECK_ID,
  };
}

/** The token schedule: every call's logits are compared. */
async function schedule(d: DecoderSession, vocab: number): Promise<Float32Array[]> {
  const id = (i: number) => (i * 7919 + 13) % vocab;
  const first = Array.from({ length: 272 }, (_, i) => id(i));
  const out: Float32Array[] = [];
  const keep = async (p: Promise<Float32Array>) => out.push((await p).slice());
  const short = Array.from({ length: 20 }, (_, i) => id(5000 + i));
  d.startSequence(short);
  await keep(d.forward(short));
  await keep(d.forward([id(5100)]));
  if (d.startSequence(first) !== 0) throw new Error('the check schedule expected a fresh start');
  for (let s = 0; s < first.length; s += 128) await keep(d.forward(first.slice(s, s + 128)));
  // Decode steps and a 6-token pass (as prompt lookup checks drafts) over 512 slots: the decode
  // attention's in-place branch (decodeAttention.ts). The step after the pass reads the pass's
  // KV rows in every layer, which its causal mask decided. (Only last logits: an export's graph
  // may take one token at a time once its cache holds some.)
  for (let i = 0; i < 4; i++) await keep(d.forward([id(1000 + i)]));
  await keep(d.forward(Array.from({ length: 6 }, (_, i) => id(1500 + i))));
  await keep(d.forward([id(1600)]));
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
      // A copy whose attention is still the export's may take one token at a time once its cache
      // holds some (the builder's MultiHeadAttention graph): its decoder then steps through the
      // schedule's chunks token by token, which gives the same logits at the end of each call.
      await d.probeMultiTokenSteps(13 % config.vocabSize);
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
    const diffs = new Float32Array(a.length);
    for (let i = 0; i < a.length; i++) {
      scale = Math.max(scale, Math.abs(a[i]!));
      diffs[i] = Math.abs(a[i]! - b[i]!);
      if (Number.isNaN(diffs[i]!)) return `its logits at step ${k + 1} of ${want.length} are not numbers`;
    }
    diffs.sort();
    const p99 = diffs[Math.floor(diffs.length * 0.99)]!;
    const max = diffs[diffs.length - 1]!;
    if (!(p99 <= PERCENTILE_TOLERANCE * scale && max <= MAX_TOLERANCE * scale)) {
      return `its logits differ from the plain copy's at step ${k + 1} of ${want.length} (99th percentile of the differences ${p99.toPrecision(3)}, largest ${max.toPrecision(3)}, largest logit ${scale.toPrecision(3)})`;
    }
  }
  return undefined;
}
