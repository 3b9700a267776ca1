/**
 * Owns the engine inside the language server: loads the model on first use (and again when a
 * model setting changes), and runs generations one at a time, in arrival order. A queued request
 * can be cancelled before it runs; every request ends (complete, cancelled or error).
 */
import type { GenerateOptions, GenerationResult, LoadOptions, LoadProgress, ModelInfo, PromptRequest } from '../engine/types';

/** What the host needs of an engine: R1Engine satisfies it; tests may pass a stand-in loader. */
export interface HostedEngine {
  readonly info: ModelInfo;
  generate(req: PromptRequest, opts?: GenerateOptions): Promise<GenerationResult>;
  dispose(): Promise<void>;
}
export type EngineLoader = (opts: LoadOptions) => Promise<HostedEngine>;

/** The `r1.*` settings the server uses, already sanitized. */
export interface ServerSettings {
  modelPath: string;
  variant: NonNullable<LoadOptions['variant']>;
  provider: NonNullable<LoadOptions['provider']>;
  cpuThreads: number;
  /** Write and use a CPU-prepared copy of q4 models (int8 compute); r1.cpu.prepareModel. */
  prepareModel: boolean;
  maxNewTokens: number;
  thinkingBudget: number;
  temperature: number;
  topP: number;
  contextWindow: number;
  /** r1.generation.promptLookup: prompt-lookup decoding where it pays, or never (GenerateOptions.promptLookup). */
  promptLookup: 'auto' | 'off';
  /** r1.backend: `local` runs the model here; `server` asks r1.server.url and never loads it. */
  backend: 'local' | 'server';
  serverUrl: string;
  /** '' : the first model the server lists. */
  serverModel: string;
  serverApi: 'auto' | 'openai' | 'ollama';
}

/** Thrown when no model folder is configured or the configured one does not exist. */
export class NoModelError extends Error {
  override readonly name = 'NoModelError';
}

export interface HostEvents {
  onLoading(message: string, fraction?: number): void;
  onLoaded(info: ModelInfo): void;
  onLoadFailed(message: string): void;
  onQueueChanged(running: string | undefined, queued: readonly string[]): void;
}

interface Job<T> {
  id: string;
  signal: AbortSignal;
  run: () => Promise<T>;
  resolve: (value: T | typeof CANCELLED_BEFORE_START) => void;
  reject: (e: unknown) => void;
}

/** Returned by `enqueue` when the job was cancelled while it waited. */
export const CANCELLED_BEFORE_START = Symbol('cancelled before start');

function modelKey(s: ServerSettings, modelDir: string): string {
  return JSON.stringify([modelDir, s.variant, s.provider, s.cpuThreads, s.prepareModel]);
}

export class EngineHost {
  private engine: HostedEngine | undefined;
  private engineKey: string | undefined;
  private loading: { key: string; promise: Promise<HostedEngine> } | undefined;
  private readonly queue: Job<unknown>[] = [];
  private running: Job<unknown> | undefined;

  constructor(
    private readonly loader: EngineLoader,
    private readonly events: HostEvents,
  ) {}

  get loadedInfo(): ModelInfo | undefined {
    return this.engine?.info;
  }

  get queuedIds(): string[] {
    return this.queue.map((j) => j.id);
  }

  /** The engine for these settings, loading (or reloading) it when needed. */
  async engineFor(settings: ServerSettings, modelDir: string): Promise<HostedEngine> {
    const key = modelKey(settings, modelDir);
    if (this.engine && this.engineKey === key) return this.engine;
    if (this.loading?.key === key) return this.loading.promise;
    const promise = this.load(settings, modelDir, key);
    this.loading = { key, promise };
    try {
      return await promise;
    } finally {
      if (this.loading?.promise === promise) this.loading = undefined;
    }
  }

  /** True when a model is loaded with other settings than these. */
  needsReload(settings: ServerSettings, modelDir: string): boolean {
    return this.engine !== undefined && this.engineKey !== modelKey(settings, modelDir);
  }

  /**
   * Runs `run` when every earlier job has finished. Resolves to CANCELLED_BEFORE_START when
   * `signal` aborts while the job waits; once started, `run` itself must honour the signal.
   */
  enqueue<T>(id: string, signal: AbortSignal, run: () => Promise<T>): Promise<T | typeof CANCELLED_BEFORE_START> {
    return new Promise<T | typeof CANCELLED_BEFORE_START>((resolve, reject) => {
      const job: Job<T> = { id, signal, run, resolve, reject };
      if (signal.aborted) {
        resolve(CANCELLED_BEFORE_START);
        return;
      }
      signal.addEventListener(
        'abort',
        () => {
          const i = this.queue.indexOf(job as Job<unknown>);
          if (i >= 0) {
            this.queue.splice(i, 1);
            resolve(CANCELLED_BEFORE_START);
            this.announceQueue();
          }
        },
        { once: true },
      );
      this.queue.push(job as Job<unknown>);
      this.announceQueue();
      this.pump();
    });
  }

  async dispose(): Promise<void> {
    const engine = this.engine;
    this.engine = undefined;
    this.engineKey = undefined;
    await engine?.dispose();
  }

  private pump(): void {
    if (this.running) return;
    const job = this.queue.shift();
    if (!job) return;
    this.running = job;
    this.announceQueue();
    job
      .run()
      .then(job.resolve, job.reject)
      .finally(() => {
        this.running = undefined;
        this.announceQueue();
        this.pump();
      });
  }

  private announceQueue(): void {
    this.events.onQueueChanged(
      this.running?.id,
      this.queue.map((j) => j.id),
    );
  }

  private async load(settings: ServerSettings, modelDir: string, key: string): Promise<HostedEngine> {
    const previous = this.engine;
    this.engine = undefined;
    this.engineKey = undefined;
    await previous?.dispose();
    this.events.onLoading(`Loading the model from ${modelDir}…`, 0);
    try {
      const engine = await this.loader({
        modelDir,
        variant: settings.variant,
        provider: settings.provider,
        cpuThreads: settings.cpuThreads > 0 ? settings.cpuThreads : undefined,
        prepareForCpu: settings.prepareModel,
        onProgress: (p: LoadProgress) => this.events.onLoading(p.message, p.fraction),
      });
      this.engine = engine;
      this.engineKey = key;
      this.events.onLoaded(engine.info);
      return engine;
    } catch (e) {
      this.events.onLoadFailed(e instanceof Error ? e.message : String(e));
      throw e;
    }
  }
}
