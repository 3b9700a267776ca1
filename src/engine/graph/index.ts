/**
 * The prepared CPU copy of a model (prepare.ts says what it is and why). The engine calls one
 * function here, withPreparedCpuModel, and reads the names the prepared graph adds (names.ts:
 * KV_NEW_ROWS_DIM in its KV slots, LOGIT_COUNT_INPUT in both KV paths).
 *
 *   index.ts       the session factory the engine uses
 *   prepare.ts     where the copy goes, when it is (re)written, the two-copy check around it
 *   plan.ts        one walk over the file: decode the graph message, rewrite, plan the output
 *   rewrites.ts    accuracy level, last-position logits, new KV rows only; calls the three below
 *   fuse.ts        MatMulNBits nodes sharing an input become one wider node
 *   attention.ts   each layer's attention becomes one GroupQueryAttention node
 *   decodeAttention.ts  decode passes over a long cache read the KV slots in place (an If per layer)
 *   graphIndex.ts  producers and consumers of values, dead-node removal
 *   check.ts       the copies run the engine's decoder; the attention rewrites are kept if the logits agree
 *   protobuf.ts    field-level protobuf over the file, the type every file here shares
 *   names.ts       the input and dim names the prepared graph adds
 */
import { basename } from 'node:path';
import type * as ort from 'onnxruntime-node';
import type { ModelConfig } from '../modelFolder';
import type { PreparedCopyInfo } from '../types';
import { checkedRewrites } from './check';
import { NOTHING_TO_PREPARE, type PrepareOptions, type PrepareResult, prepareModelForCpu } from './prepare';
import { CPU_ACCURACY_LEVEL } from './rewrites';

export interface PreparedCpuOptions {
  /** The model's config.json: the attention rewrite and its check need its numbers. */
  config: ModelConfig;
  /** The CPU session options the check runs both copies with (those the engine will load with). */
  cpuSessionOptions: ort.InferenceSession.SessionOptions;
  /** False: load the source as it is. Default true. */
  prepareForCpu?: boolean;
  /** Folder for prepared copies (default: the user cache folder). */
  cacheDir?: string;
}

/**
 * The session factory the engine uses: CPU sessions (the first execution provider is `cpu`) load
 * the prepared copy, with the checked rewrites this model's config allows, unless `prepareForCpu`
 * is false; a copy that cannot be made or loaded falls back to the source file, with a note. Other
 * providers load the source as it is.
 */
export function withPreparedCpuModel<S, O extends { executionProviders?: readonly unknown[] }>(
  create: (file: string, options: O) => Promise<S>,
  prepared: PreparedCpuOptions,
  note: (text: string) => void,
  progress?: (message: string) => void,
  onPrepared?: (copy: PreparedCopyInfo) => void,
): (file: string, options: O) => Promise<S> {
  const opts: PrepareOptions = { cacheDir: prepared.cacheDir, ...checkedRewrites(prepared.config, prepared.cpuSessionOptions) };
  return async (file, options) => {
    const first = options.executionProviders?.[0];
    const name = typeof first === 'string' ? first : (first as { name?: string } | undefined)?.name;
    if (name !== 'cpu' || prepared.prepareForCpu === false) return create(file, options);
    let r: PrepareResult;
    try {
      progress?.(`preparing ${basename(file)} for the CPU, once (accuracy_level ${opts.accuracyLevel ?? CPU_ACCURACY_LEVEL} on MatMulNBits${opts.verify && opts.attentionShape ? ', fused attention checked against the plain copy' : ''})`);
      r = await prepareModelForCpu(file, opts);
    } catch (e) {
      note(`The model could not be prepared for the CPU (${(e as Error).message}); it runs as it is.`);
      return create(file, options);
    }
    if (!r.prepared) {
      if (r.reason && r.reason !== NOTHING_TO_PREPARE) note(`The model was not prepared for the CPU: ${r.reason}.`);
      return create(file, options);
    }
    try {
      const s = await create(r.file, options);
      const steps = r.steps ?? [];
      onPrepared?.({ file: r.file, reused: r.reused, steps });
      const applied = steps.filter((x) => x.applied).map((x) => `${x.step} (${x.detail})`);
      const skipped = steps.filter((x) => !x.applied && (x.step === 'fused attention' || x.step === 'decode attention') && x.detail.startsWith('rewritten but not kept'));
      note(
        `${r.reused ? 'Loaded the CPU-prepared copy' : `Wrote a CPU-prepared copy`} ${r.file}${r.reused ? '' : ` in ${r.ms} ms`}${applied.length ? `: ${applied.join('; ')}` : ''}.` +
          skipped.slice(0, 1).map((x) => ` The attention was left as ${x.step === 'fused attention' ? 'exported' : 'GroupQueryAttention'}: the ${x.step === 'fused attention' ? 'GroupQueryAttention' : 'decode attention'} rewrite was ${x.detail.replace('rewritten but not kept: ', 'dropped because ')}.`).join('') +
          ' r1 info lists every step and why any did not apply. Turn the copy off with the setting r1.cpu.prepareModel.',
      );
      return s;
    } catch (e) {
      note(`The CPU-prepared copy ${r.file} failed to load (${(e as Error).message.split('\n')[0]}); the original file is used.`);
      return create(file, options);
    }
  };
}
