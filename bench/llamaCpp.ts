/**
 * llama.cpp through node-llama-cpp 3.21.1 (its prebuilt CPU binaries, @node-llama-cpp/linux-x64;
 * never built or downloaded), as the benchmark runs it: one sequence, the given thread count (by
 * default node-llama-cpp's math cores), greedy (temperature 0) among the ids below `argmaxVocab`
 * (the GGUF's [PADn] rows above the tokenizer are never picked), eos and every end-of-generation
 * token yielded and decoding going on. Everything else as node-llama-cpp sets it for a user:
 * batch 512, flash attention "auto", F16 KV cache, the file memory-mapped.
 *
 * Used by the headline contenders (contender.ts: TTFT and decode after random prompts) and by the
 * prompt-lookup replays (lookup.ts: plain decode after the replayed texts' own prompts).
 */

export interface LlamaCppInfo {
  threads: number;
  batchSize: number;
  contextSize: number;
  flashAttention: string;
  build: string;
  systemInfo: string;
  mmap: boolean;
}

/** One evaluation: when it started, and the time of each token it yielded. */
export interface LlamaCppRun {
  t: number;
  times: number[];
  tokens: number[];
}

export interface LlamaCppRunner {
  info: LlamaCppInfo;
  /** Runs `ids` from an empty sequence and yields `count` tokens. */
  generate(ids: readonly number[], count: number): Promise<LlamaCppRun>;
  /**
   * Decodes `count` tokens after `ids` and keeps the prompt cached: a later call with the same ids
   * re-runs only their last token (the generated rows are erased), as our engine reuses its prefix.
   */
  decodeAfter(ids: readonly number[], count: number): Promise<LlamaCppRun>;
  dispose(): Promise<void>;
}

export async function openLlamaCpp(o: { gguf: string; contextSize: number; argmaxVocab: number; threads?: number }): Promise<LlamaCppRunner> {
  const nlc = await import('node-llama-cpp');
  const threads = o.threads && o.threads > 0 ? o.threads : undefined;
  const llama = await nlc.getLlama({ gpu: false, build: 'never', logLevel: nlc.LlamaLogLevel.error, ...(threads ? { maxThreads: threads } : {}) });
  const n = threads ?? llama.cpuMathCores;
  llama.maxThreads = n;
  const model = await llama.loadModel({ modelPath: o.gguf, gpuLayers: 0 });
  const context = await model.createContext({ contextSize: o.contextSize, threads: { ideal: n, min: n } });
  const sequence = context.getSequence();
  const bias = new nlc.TokenBias(model.tokenizer);
  const rows = Number(model.fileInfo.tensorInfo?.find((t) => t.name === 'token_embd.weight')?.dimensions[1] ?? 0);
  for (let id = o.argmaxVocab; id < rows; id++) bias.set(id as never, 'never');
  const evalOptions = { temperature: 0, yieldEogToken: true, tokenBias: bias } as const;
  const info: LlamaCppInfo = { threads: n, batchSize: context.batchSize, contextSize: context.contextSize, flashAttention: String(context.flashAttention), build: `${llama.buildType} ${llama.llamaCppRelease.release}`, systemInfo: llama.systemInfo.trim(), mmap: model.useMmap !== false };
  let cached: readonly number[] = [];

  const evaluate = async (ids: readonly number[], count: number): Promise<LlamaCppRun> => {
    const times: number[] = [];
    const tokens: number[] = [];
    const t = performance.now();
    for await (const tok of sequence.evaluate(ids as never[], evalOptions)) {
      times.push(performance.now());
      tokens.push(tok as unknown as number);
      if (tokens.length >= count) break;
    }
    if (tokens.length < count) throw new Error(`llama.cpp stopped after ${tokens.length} of ${count} tokens`);
    return { t, times, tokens };
  };
  const sameIds = (a: readonly number[], b: readonly number[]) => a.length === b.length && a.every((x, i) => x === b[i]);

  return {
    info,
    async generate(ids, count) {
      await sequence.clearHistory();
      cached = [];
      return evaluate(ids, count);
    },
    async decodeAfter(ids, count) {
      if (ids.length > 1 && sameIds(ids, cached)) {
        await sequence.eraseContextTokenRanges([{ start: ids.length - 1, end: sequence.nextTokenIndex }]);
        return evaluate(ids.slice(-1), count);
      }
      await sequence.clearHistory();
      const r = await evaluate(ids, count);
      cached = [...ids];
      return r;
    },
    async dispose() {
      await context.dispose();
      await model.dispose();
      await llama.dispose();
    },
  };
}

/** Decode tok/s of a run: the tokens after the first over the time from the first to the last. */
export function llamaCppDecodeRate(r: LlamaCppRun): number {
  const n = r.times.length;
  return n > 1 ? ((n - 1) * 1000) / (r.times[n - 1]! - r.times[0]!) : NaN;
}
