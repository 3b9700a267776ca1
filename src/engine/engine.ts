/**
 * R1Engine: loads a model folder once (config, tokenizer, the ONNX session on the best provider
 * that works, a signature check and one validation step) and runs generations on it, one at a
 * time.
 */
import { readdirSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import * as ort from 'onnxruntime-node';
import { ModelError } from './errors';
import {
  type GenerationContext,
  type GenerationInternals,
  checkPrompt,
  resolveOptions,
  runGeneration,
} from './generate';
import {
  chooseVariant,
  fileSize,
  readModelFolder,
  validateSignature,
  type ValueMetadataLike,
} from './modelFolder';
import { buildPrompt } from './prompt';
import {
  type PlatformProbe,
  createWithFallback,
  firstLine,
  isModelFileError,
  planProviders,
  probeExecutionProviders,
} from './providers';
import { firstRunOnDevice, keepsKvOnDevice, webgpuOutputLocations } from './device';
import { withPreparedCpuModel } from './graph';
import { DecoderSession, STEPWISE_REUSE_LIMIT } from './session';
import { R1Tokenizer } from './tokenizer';
import type {
  DecoderNames,
  ExecutionProvider,
  GenerateOptions,
  GenerationResult,
  LoadOptions,
  LoadProgress,
  ModelInfo,
  ModelVariant,
  PreparedCopyInfo,
  PromptRequest,
  TruncationNote,
} from './types';

/** Test seams: a simulated platform or session factory. Not part of the public API. */
export interface EngineInternals {
  probe?: PlatformProbe;
  createSession?: (file: string, options: ort.InferenceSession.SessionOptions) => Promise<ort.InferenceSession>;
}

interface Loaded {
  session: ort.InferenceSession;
  variant: ModelVariant;
  file: string;
}

/**
 * ONNX Runtime's session options for one provider. With WebGPU and the layer count known, the
 * KV cache outputs stay on the device (see device.ts).
 */
export function sessionOptions(provider: ExecutionProvider, opts: LoadOptions, numLayers?: number, names?: DecoderNames): ort.InferenceSession.SessionOptions {
  const o: ort.InferenceSession.SessionOptions = {
    executionProviders: [provider],
    graphOptimizationLevel: opts.graphOptimizationLevel ?? 'all',
    logSeverityLevel: 3,
  };
  if (opts.cpuThreads && opts.cpuThreads > 0) o.intraOpNumThreads = opts.cpuThreads;
  if (keepsKvOnDevice(provider) && numLayers !== undefined && numLayers > 0) o.preferredOutputLocation = webgpuOutputLocations(numLayers, names);
  return o;
}

/** External weight files next to a model file (`model_q4.onnx_data`, `model_q4.onnx.data`, ...). */
function externalDataFiles(file: string): string[] {
  try {
    return readdirSync(dirname(file))
      .filter((n) => n.startsWith(basename(file)) && n !== basename(file))
      .map((n) => join(dirname(file), n));
  } catch {
    return [];
  }
}

/** Turns an ONNX Runtime load failure about the file into a ModelError naming it. */
export function modelFileError(file: string, e: unknown): ModelError {
  const msg = firstLine(e instanceof Error ? e.message : String(e));
  const missing = /External data path does not exist:\s*"?([^"]+)"?/i.exec(msg);
  if (missing || (/external data/i.test(msg) && /exist|No such file|not found|cannot open/i.test(msg))) {
    const dataFile = missing?.[1]?.trim();
    return new ModelError(
      'missing-file',
      `${basename(file)} keeps its weights in a separate file${dataFile ? ` (${basename(dataFile)})` : ''} that is missing.`,
      `Download ${dataFile ? basename(dataFile) : `${basename(file)}_data`} into ${dirname(file)} (it must sit next to ${basename(file)}).`,
      dataFile ?? file,
      { cause: e },
    );
  }
  if (/External initializer|out of bounds|can not be read in full|GetExtData/i.test(msg)) {
    const data = externalDataFiles(file);
    return new ModelError(
      'unreadable-file',
      `the external weight data of ${basename(file)} is shorter than the graph expects (${msg}).`,
      'The file may be truncated; download it again.',
      data.length === 1 ? data[0] : file,
      { cause: e },
    );
  }
  return new ModelError(
    'unreadable-file',
    `ONNX Runtime cannot read the model file (${msg}).`,
    'The file may be truncated; download it again.',
    file,
    { cause: e },
  );
}

export class R1Engine {
  private busy = false;
  private disposed = false;

  private constructor(
    readonly info: ModelInfo,
    readonly tokenizer: R1Tokenizer,
    /** The decoder session (exposed for tests and the benchmark). */
    readonly decoder: DecoderSession,
    private readonly ctx: GenerationContext,
  ) {}

  static async load(opts: LoadOptions, internals: EngineInternals = {}): Promise<R1Engine> {
    const t0 = performance.now();
    const progress = (stage: LoadProgress['stage'], message: string, fraction?: number) => {
      try {
        opts.onProgress?.(fraction === undefined ? { stage, message } : { stage, message, fraction });
      } catch {
        // a failing progress listener must not break loading
      }
    };
    if (!opts || typeof opts.modelDir !== 'string' || opts.modelDir === '') {
      throw new ModelError('invalid-request', 'no model folder was given.', 'Set r1.model.path (or --model) to the model folder.');
    }
    const dir = resolve(opts.modelDir);
    if (fileSize(dir) === undefined) {
      throw new ModelError('missing-file', 'the model folder does not exist.', 'Set r1.model.path (or --model) to an existing model folder, or download the model.', dir);
    }
    progress('config', 'reading the model folder (config.json, generation_config.json or genai_config.json)', 0);
    const folder = readModelFolder(dir);
    const { config, generation: gen, variants, names } = folder;
    const notes: string[] = [];
    let preparedCopy: PreparedCopyInfo | undefined;
    if (!gen.present) notes.push('generation_config.json is absent: eos ids from config.json and tokenizer_config.json, sampling defaults from the engine.');
    // A genai folder holds one model, built for one kind of device: r1.model.variant does not apply.
    const requested = folder.layout === 'genai' ? 'auto' : opts.variant;
    if (folder.layout === 'genai' && opts.variant && opts.variant !== 'auto' && !variants.has(opts.variant)) {
      notes.push(`This folder (onnxruntime-genai layout) holds one model, ${[...variants.keys()][0]}; the variant setting "${opts.variant}" does not apply to it.`);
    }

    progress('tokenizer', 'reading tokenizer.json and tokenizer_config.json', 0.1);
    const tokenizer = await R1Tokenizer.fromFolder(dir);

    // Fails early (before any provider work) when onnx/ holds no model or the variant is absent.
    chooseVariant(dir, variants, requested, 'cpu');
    const probe = internals.probe ?? (await probeExecutionProviders());
    const plan = planProviders(opts.provider, probe);
    const create = withPreparedCpuModel(
      internals.createSession ?? ((file, o) => ort.InferenceSession.create(file, o)),
      { config, cpuSessionOptions: sessionOptions('cpu', opts, config.numHiddenLayers, names), prepareForCpu: opts.prepareForCpu, cacheDir: opts.cacheDir },
      (text) => notes.push(text),
      (message) => progress('session', message, 0.15),
      (copy) => (preparedCopy = copy),
    );

    const { session: loaded, provider, attempts } = await createWithFallback<Loaded>(
      plan,
      async (p) => {
        const variant = chooseVariant(dir, variants, requested, p);
        const file = variants.get(variant)!;
        const size = fileSize(file) ?? 0;
        if (size === 0) throw new ModelError('unreadable-file', `${basename(file)} is empty.`, 'The file may be truncated; download it again.', file);
        progress('session', `creating the ${p} session for ${basename(file)} (${(size / 1e6).toFixed(1)} MB)`, 0.2);
        try {
          const session = await create(file, sessionOptions(p, opts, config.numHiddenLayers, names));
          if (p !== 'cpu') {
            // A GPU provider that cannot run the graph falls back here instead of failing validation below.
            try {
              const signature = validateSignature(file, session.inputMetadata as unknown as ValueMetadataLike[], session.outputMetadata as unknown as ValueMetadataLike[], config, names);
              await firstRunOnDevice(p, session, signature, config.vocabSize, tokenizer.bosTokenId ?? config.bosTokenId ?? 0);
            } catch (e) {
              await session.release().catch(() => undefined);
              throw e;
            }
          }
          return { session, variant, file };
        } catch (e) {
          if (e instanceof ModelError) throw e;
          const msg = e instanceof Error ? e.message : String(e);
          if (isModelFileError(msg)) throw modelFileError(file, e);
          throw e;
        }
      },
    );
    if (provider !== 'cpu') {
      notes.push(
        `The session was created with only the ${provider} provider listed; ONNX Runtime may still place nodes ${provider} cannot run (shape computations) on the CPU, and onnxruntime-node does not report node placement.`,
      );
      if (keepsKvOnDevice(provider)) notes.push('The KV cache (present.*) stays in GPU buffers between steps; only the logits are copied to host memory.');
    }

    progress('validate', 'checking the graph against config.json', 0.8);
    const { session, variant, file } = loaded;
    let decoder: DecoderSession;
    try {
      const signature = validateSignature(
        file,
        session.inputMetadata as unknown as ValueMetadataLike[],
        session.outputMetadata as unknown as ValueMetadataLike[],
        config,
        names,
      );
      decoder = new DecoderSession(session, signature, config.vocabSize);
      // One real step: catches what static metadata cannot (symbolic dims, kernels that fail).
      const probeToken = tokenizer.bosTokenId ?? config.bosTokenId ?? 0;
      await decoder.forward([probeToken]);
      const dims = decoder.cacheDims();
      if (dims.length !== 4 || dims[1] !== config.numKeyValueHeads || dims[2] !== 1 || dims[3] !== config.headDim) {
        throw new ModelError(
          'signature-mismatch',
          `${config.source} says ${config.numKeyValueHeads} key/value heads of size ${config.headDim}, the graph's ${decoder.signature.presentNames[0]} has dims [${dims.join(', ')}].`,
          'The ONNX file does not match config.json; download the model again.',
          file,
        );
      }
      decoder.reset();
      const stepFailure = await decoder.probeMultiTokenSteps(probeToken);
      if (stepFailure) {
        notes.push(
          `This graph runs only one token at a time once its KV cache holds some (ONNX Runtime: ${stepFailure}). A prompt runs in one piece; the thinking budget's closing tokens and a follow-up's new tokens run one at a time, and a follow-up reuses the cache only when it adds at most ${STEPWISE_REUSE_LIMIT} tokens.`,
        );
      }
    } catch (e) {
      await session.release().catch(() => undefined);
      if (e instanceof ModelError) {
        if (e.code === 'runtime') {
          throw new ModelError('signature-mismatch', `a validation step failed: ${e.problem}`, 'The ONNX file does not match config.json; download the model again.', file, { cause: e });
        }
        throw e;
      }
      throw new ModelError('runtime', `validating the model failed: ${firstLine(String(e))}`, 'Download the model again.', file, { cause: e });
    }

    const eos = new Set<number>([...gen.eosTokenIds, ...tokenizer.eosTokenIds]);
    if (!gen.present) for (const id of config.eosTokenIds) eos.add(id);
    const info: ModelInfo = {
      modelDir: dir,
      layout: folder.layout,
      ...(preparedCopy && provider === 'cpu' ? { preparedCopy } : {}),
      config: {
        modelType: config.modelType,
        hiddenSize: config.hiddenSize,
        numHiddenLayers: config.numHiddenLayers,
        numAttentionHeads: config.numAttentionHeads,
        numKeyValueHeads: config.numKeyValueHeads,
        headDim: config.headDim,
        vocabSize: config.vocabSize,
        maxPositionEmbeddings: config.maxPositionEmbeddings,
      },
      variant,
      modelFile: file,
      availableVariants: [...variants.keys()],
      provider,
      attempts,
      signature: decoder.signature,
      eosTokenIds: [...eos].sort((a, b) => a - b),
      generationDefaults: gen.defaults,
      notes,
      loadMs: Math.round(performance.now() - t0),
    };
    const ctx: GenerationContext = {
      decoder,
      tokenizer,
      eosTokenIds: eos,
      samplableVocab: Math.min(config.vocabSize, tokenizer.vocabSize),
      vocabSize: config.vocabSize,
      maxPositionEmbeddings: config.maxPositionEmbeddings,
      provider,
      variant,
      defaults: gen.defaults,
    };
    progress('ready', `ready: ${variant} on ${provider}`, 1);
    return new R1Engine(info, tokenizer, decoder, ctx);
  }

  /** Builds the prompt (dropping context to fit, reported in `truncation`) and generates. */
  async generate(req: PromptRequest, opts: GenerateOptions = {}): Promise<GenerationResult> {
    const o = resolveOptions(this.ctx, opts);
    const { ids, truncation, userTurn } = buildPrompt(this.tokenizer, req, { contextWindow: o.contextWindow, maxNewTokens: o.maxNewTokens });
    return { ...(await this.run(ids, opts, truncation)), userTurn };
  }

  /**
   * Generates from prompt token ids; refuses prompts that do not fit the context window.
   * `internals` are test and benchmark seams (GenerationInternals).
   */
  generateFromIds(ids: number[], opts: GenerateOptions = {}, internals?: GenerationInternals): Promise<GenerationResult> {
    return this.run(ids, opts, [], internals);
  }

  private async run(ids: readonly number[], opts: GenerateOptions, truncation: TruncationNote[], internals?: GenerationInternals): Promise<GenerationResult> {
    if (this.disposed) throw new ModelError('invalid-request', 'the engine was disposed.', 'Load the model again.');
    if (this.busy) {
      throw new ModelError('busy', 'a generation is already running on this model.', 'Wait for it to finish or cancel it first.');
    }
    const o = resolveOptions(this.ctx, opts);
    checkPrompt(ids, o, this.ctx.vocabSize);
    this.busy = true;
    try {
      return await runGeneration(this.ctx, ids, o, opts, truncation, internals);
    } finally {
      this.busy = false;
    }
  }

  async dispose(): Promise<void> {
    if (this.disposed) return;
    this.disposed = true;
    await this.decoder.release().catch(() => undefined);
  }
}

