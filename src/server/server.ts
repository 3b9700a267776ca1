/**
 * The R1 language server: a separate Node process that owns the inference engine, because
 * onnxruntime-node's session creation and `run()` block their thread. The client starts it
 * through vscode-languageclient over IPC (`--node-ipc`).
 *
 * Requests r1/ask, r1/fix and r1/explain run one at a time (EngineHost's queue); their text
 * streams back as r1/stream notifications keyed by request id, and LSP cancellation aborts the
 * engine within one decode step.
 */
import { existsSync } from 'node:fs';
import {
  createConnection,
  DidChangeConfigurationNotification,
  ProposedFeatures,
  ResponseError,
  TextDocumentSyncKind,
  type CancellationToken,
  type WorkDoneProgressReporter,
} from 'vscode-languageserver/node';
import { R1Engine, noGeneration } from '../engine';
import { isModelError } from '../engine/errors';
import { probeMachine } from '../engine/machine';
import { isNotableFallback, type PlatformProbe } from '../engine/providers';
import type { GenerateOptions, GenerationResult, ModelInfo, PromptKind, PromptRequest } from '../engine/types';
import {
  AskRequest,
  ExplainRequest,
  FixRequest,
  MachineRequest,
  ModelInfoRequest,
  PingRequest,
  ProviderFallbackNotification,
  R1ErrorCodes,
  RequestProgressNotification,
  ServerApiKeyRequest,
  StateNotification,
  StreamNotification,
  ValidateModelRequest,
  type GenerateError,
  type GenerateParams,
  type GenerateResult,
  type InitializationOptions,
  type ProviderFallback,
  type RemoteServerInfo,
  type ServerState,
} from '../protocol/server';
import { isRemoteError, type RemoteTarget } from '../remote';
import { CANCELLED_BEFORE_START, EngineHost, NoModelError, type ServerSettings } from './engineHost';
import { RemoteHost, serverInfo } from './remote';
import { sanitizeSettings } from './settings';

const startedAt = Date.now();
const connection = createConnection(ProposedFeatures.all);

let serverVersion = '0.0.0';
/** Where R1: Download Model puts the default model; used when r1.model.path is empty. */
let defaultModelDir: string | undefined;
let state: ServerState = { kind: 'starting' };
let loadProgress: WorkDoneProgressReporter | undefined;
/** initializationOptions.diagnostics.platformProbe: a diagnostic override of the platform probe. */
let probeOverride: PlatformProbe | undefined;
/** GPU providers whose fallback the client was told about in this server session. */
const reportedFallbacks = new Set<string>();

/** The GPU providers auto mode could not use for this model, with the reason. */
function fallbacksOf(info: ModelInfo): ProviderFallback[] {
  return info.attempts.filter(isNotableFallback).map((a) => ({ provider: a.provider, reason: a.reason ?? 'unknown reason', kind: a.skipped === 'broken' ? 'broken' : 'failed' }));
}

function readyState(info: ModelInfo): ServerState {
  const fallbacks = fallbacksOf(info);
  return { kind: 'ready', provider: info.provider, variant: info.variant, model: info.modelDir, ...(fallbacks.length > 0 ? { fallbacks } : {}) };
}

/** Checks the diagnostic probe override; undefined (and a warning) when it is malformed. */
function parseProbeOverride(raw: unknown): PlatformProbe | undefined {
  if (raw === undefined || raw === null) return undefined;
  const o = raw as Record<string, unknown>;
  const ok =
    typeof o === 'object' &&
    typeof o.platform === 'string' &&
    typeof o.arch === 'string' &&
    Array.isArray(o.supportedBackends) &&
    o.supportedBackends.every((b) => typeof b === 'string') &&
    typeof o.cudaLibraryPresent === 'boolean' &&
    (o.cudaRuntime === undefined || (typeof o.cudaRuntime === 'object' && o.cudaRuntime !== null && typeof (o.cudaRuntime as { ok?: unknown }).ok === 'boolean'));
  if (!ok) {
    connection.console.warn(`Ignoring initializationOptions.diagnostics.platformProbe: not a valid probe (${JSON.stringify(raw)}).`);
    return undefined;
  }
  const probe: PlatformProbe = {
    platform: o.platform as NodeJS.Platform,
    arch: o.arch as string,
    supportedBackends: o.supportedBackends as string[],
    cudaLibraryPresent: o.cudaLibraryPresent as boolean,
  };
  if (o.cudaRuntime) {
    const r = o.cudaRuntime as { ok: boolean; message?: unknown };
    probe.cudaRuntime = { ok: r.ok, message: typeof r.message === 'string' ? r.message : '' };
  }
  return probe;
}

/** Where prepared CPU copies of models go; undefined lets the engine use the user's cache folder. */
let preparedModelsDir: string | undefined;

function loadEngine(opts: Parameters<typeof R1Engine.load>[0]): Promise<R1Engine> {
  return R1Engine.load({ cacheDir: preparedModelsDir, ...opts }, probeOverride ? { probe: probeOverride } : {});
}

function setState(next: ServerState): void {
  state = next;
  void connection.sendNotification(StateNotification.type, next);
}

// A bug must not take the server down silently: log it where the user can see it (R1: Show Log).
process.on('uncaughtException', (err) => {
  connection.console.error(`Uncaught exception in the R1 server: ${err.stack ?? String(err)}`);
});
process.on('unhandledRejection', (reason) => {
  connection.console.error(`Unhandled rejection in the R1 server: ${reason instanceof Error ? (reason.stack ?? reason.message) : String(reason)}`);
});

const host = new EngineHost(loadEngine, {
  onLoading(message, fraction) {
    setState({ kind: 'loading', message, fraction });
    loadProgress?.report(fraction !== undefined ? Math.round(fraction * 100) : 0, message);
  },
  onLoaded(info) {
    connection.console.info(
      `Model loaded in ${info.loadMs.toFixed(0)} ms: ${info.modelFile} (${info.variant}) on ${info.provider}.` +
        info.attempts
          .filter((a) => !a.ok)
          .map((a) => ` ${a.provider} not used: ${a.reason ?? 'unknown reason'}.`)
          .join(''),
    );
    setState(readyState(info));
    // No silent fallback: each GPU provider that auto mode could not use is logged as a warning
    // and reported to the client once per server session.
    const fallbacks = fallbacksOf(info);
    for (const f of fallbacks) connection.console.warn(`${f.provider} could not be used, running on ${info.provider}: ${f.reason}`);
    const fresh = fallbacks.filter((f) => !reportedFallbacks.has(f.provider));
    if (fresh.length > 0) {
      for (const f of fresh) reportedFallbacks.add(f.provider);
      void connection.sendNotification(ProviderFallbackNotification.type, { provider: info.provider, variant: info.variant, fallbacks: fresh });
    }
  },
  onLoadFailed(message) {
    connection.console.error(`The model failed to load: ${message}`);
    setState({ kind: 'error', message });
  },
  onQueueChanged(running, queued) {
    queued.forEach((requestId, i) => void connection.sendNotification(RequestProgressNotification.type, { requestId, phase: 'queued', position: i + 1 }));
    const info = host.loadedInfo;
    if (running && info) setState({ kind: 'generating', provider: info.provider, queued: queued.length });
    else if (!running && info && state.kind === 'generating') setState(readyState(info));
  },
});

/** r1.backend `server`: the server of r1.server.url answers; the local model is never loaded. */
const remote = new RemoteHost({
  apiKey: async (origin) => (await connection.sendRequest(ServerApiKeyRequest.type, { origin })).apiKey || undefined,
  info: (m) => connection.console.info(m),
  warn: (m) => connection.console.warn(m),
});

function remoteReady(t: RemoteTarget): ServerState {
  const server = serverInfo(t);
  return { kind: 'ready', provider: 'server', variant: 'server', model: server.model, server };
}

/** The status bar's word on the server: it is probed now, so a wrong URL or key shows before the first request. */
function announceRemote(settings: ServerSettings): void {
  setState({ kind: 'unloaded', message: `R1 Coder asks the server at ${settings.serverUrl || '(r1.server.url is empty)'}.` });
  void remote.connect(settings).then(
    (t) => setState(remoteReady(t)),
    (e: unknown) => setState({ kind: 'error', message: e instanceof Error ? e.message : String(e) }),
  );
}

async function pullSettings(): Promise<ServerSettings> {
  const raw: unknown = await connection.workspace.getConfiguration('r1');
  return sanitizeSettings(raw, (m) => connection.console.warn(m));
}

function resolveModelDir(settings: ServerSettings): string {
  const dir = settings.modelPath || defaultModelDir;
  if (!dir) throw new NoModelError('No model is configured: download the default model or choose a model folder.');
  if (!existsSync(dir)) {
    throw new NoModelError(
      settings.modelPath
        ? `The model folder ${settings.modelPath} (r1.model.path) does not exist.`
        : 'The default model has not been downloaded yet.',
    );
  }
  return dir;
}

connection.onInitialize((params) => {
  const options = (params.initializationOptions ?? {}) as { [K in keyof InitializationOptions]?: unknown };
  if (typeof options.extensionVersion === 'string') serverVersion = options.extensionVersion;
  if (typeof options.defaultModelDir === 'string') defaultModelDir = options.defaultModelDir;
  if (typeof options.preparedModelsDir === 'string') preparedModelsDir = options.preparedModelsDir;
  if (typeof options.diagnostics === 'object' && options.diagnostics !== null) {
    probeOverride = parseProbeOverride((options.diagnostics as { platformProbe?: unknown }).platformProbe);
  }
  return {
    capabilities: { textDocumentSync: TextDocumentSyncKind.None },
    serverInfo: { name: 'R1 Coder', version: serverVersion },
  };
});

connection.onInitialized(() => {
  connection.console.info(`R1 server ${serverVersion} started (pid ${process.pid}, node ${process.version}).`);
  if (probeOverride) connection.console.warn(`Diagnostic override active: the platform probe is replaced by ${JSON.stringify(probeOverride)}.`);
  void connection.client.register(DidChangeConfigurationNotification.type, { section: 'r1' });
  void pullSettings().then(announceUnloaded, () => setState({ kind: 'no-model', message: 'No model loaded yet.' }));
});

/** Before the first request: is there a model to load, and where. */
function announceUnloaded(settings: ServerSettings): void {
  if (settings.backend === 'server') {
    announceRemote(settings);
    return;
  }
  try {
    const dir = resolveModelDir(settings);
    setState({ kind: 'unloaded', message: `The model in ${dir} loads on first use.` });
  } catch (e) {
    setState({ kind: 'no-model', message: (e as Error).message });
  }
}

// A model setting changed: reload now when a model was loaded, so the next request finds it ready.
connection.onDidChangeConfiguration(() => {
  void (async () => {
    const settings = await pullSettings();
    if (settings.backend === 'server') {
      // The server answers from now on: free the local model.
      if (host.loadedInfo) await host.dispose();
      announceRemote(settings);
      return;
    }
    let dir: string;
    try {
      dir = resolveModelDir(settings);
    } catch (e) {
      if (host.loadedInfo) await host.dispose();
      setState({ kind: 'no-model', message: (e as Error).message });
      return;
    }
    if (!host.loadedInfo) {
      announceUnloaded(settings);
      return;
    }
    if (!host.needsReload(settings, dir)) return;
    connection.console.info('A model setting changed: reloading the model.');
    await host.enqueue('settings-reload', new AbortController().signal, () => host.engineFor(settings, dir)).catch(() => {
      // onLoadFailed has logged it and set the error state.
    });
  })();
});

connection.onRequest(PingRequest.type, (params) => ({
  nonce: params.nonce,
  serverVersion,
  pid: process.pid,
  uptimeMs: Date.now() - startedAt,
  state,
}));

/** A request's own token budget, when it names a sane one (the settings' range). */
function requestedBudget(n: number | undefined): number | undefined {
  return typeof n === 'number' && Number.isInteger(n) && n >= 16 && n <= 32_768 ? n : undefined;
}

function toPromptRequest(kind: PromptKind, p: GenerateParams): PromptRequest {
  return {
    kind,
    question: p.question,
    history: p.history,
    context: {
      filePath: p.document?.path,
      language: p.document?.languageId,
      code: p.code,
      selection: p.range ? { startLine: p.range.start.line + 1, endLine: p.range.end.line + 1 } : undefined,
      fileText: p.fileContext?.text,
      fileStartLine: p.fileContext?.startLine,
      diagnostics: p.diagnostics,
      extraContext: p.extraContext,
    },
  };
}

function emptyResult(status: GenerationResult['status'], onServer = false): GenerationResult {
  const info = onServer ? undefined : host.loadedInfo;
  return onServer ? noGeneration(status, 'server', 'server') : noGeneration(status, info?.provider ?? 'cpu', info?.variant ?? 'q4');
}

function toResponseError(e: unknown): ResponseError<GenerateError> {
  if (e instanceof NoModelError) return new ResponseError(R1ErrorCodes.NoModel, e.message, { kind: 'no-model' });
  if (isModelError(e)) return new ResponseError(R1ErrorCodes.ModelError, e.message, { kind: 'model-error', code: e.code, file: e.file });
  if (isRemoteError(e)) {
    connection.console.warn(`The server failed (${e.code}): ${e.message}`);
    return new ResponseError(R1ErrorCodes.ServerError, e.message, { kind: 'remote', code: e.code });
  }
  const message = e instanceof Error ? e.message : String(e);
  connection.console.error(`Request failed: ${e instanceof Error ? (e.stack ?? message) : message}`);
  return new ResponseError(R1ErrorCodes.ModelError, `R1 failed: ${message}`, { kind: 'internal' });
}

/** Streams a run's text to the client as r1/stream notifications, with the speed in the state every half second. */
function streamer(requestId: string, generating: (tokensPerSecond: number | undefined) => ServerState): NonNullable<GenerateOptions['onEvent']> {
  let reasoningTokens = 0;
  let answerTokens = 0;
  let firstAt = 0;
  let lastStateAt = 0;
  return (event) => {
    if (event.kind === 'reasoning') reasoningTokens++;
    else answerTokens++;
    const now = Date.now();
    firstAt ||= now;
    void connection.sendNotification(StreamNotification.type, { requestId, kind: event.kind, text: event.text, reasoningTokens, answerTokens });
    if (now - lastStateAt > 500) {
      lastStateAt = now;
      const seconds = (now - firstAt) / 1000;
      setState(generating(seconds > 0.2 ? (reasoningTokens + answerTokens) / seconds : undefined));
    }
  };
}

/** One run on the server (r1.backend `server`), inside the host's queue. */
async function runOnServer(requestId: string, kind: PromptKind, params: GenerateParams, settings: ServerSettings, signal: AbortSignal): Promise<GenerationResult> {
  let server: RemoteServerInfo;
  try {
    server = serverInfo(await remote.connect(settings, signal));
  } catch (e) {
    if (signal.aborted) return emptyResult('cancelled', true);
    setState({ kind: 'error', message: e instanceof Error ? e.message : String(e) });
    throw e;
  }
  void connection.sendNotification(RequestProgressNotification.type, { requestId, phase: 'running', provider: server.host });
  const generating = (tokensPerSecond: number | undefined): ServerState => ({ kind: 'generating', provider: 'server', tokensPerSecond, queued: host.queuedIds.length, server });
  setState(generating(undefined));
  try {
    const { result, target } = await remote.generate(settings, toPromptRequest(kind, params), {
      maxNewTokens: requestedBudget(params.maxNewTokens) ?? settings.maxNewTokens,
      thinkingBudget: settings.thinkingBudget > 0 ? settings.thinkingBudget : undefined,
      temperature: settings.temperature,
      topP: settings.topP,
      contextWindow: settings.contextWindow,
      signal,
      onEvent: streamer(requestId, generating),
    });
    if (result.status === 'error') connection.console.warn(`Request ${requestId} ended with an error: ${result.error ?? 'unknown error'}`);
    setState(target ? remoteReady(target) : { kind: 'ready', provider: 'server', variant: 'server', model: server.model, server });
    return result;
  } catch (e) {
    setState({ kind: 'error', message: e instanceof Error ? e.message : String(e) });
    throw e;
  }
}

async function generate(kind: PromptKind, params: GenerateParams, token: CancellationToken): Promise<GenerateResult | ResponseError<GenerateError>> {
  const { requestId } = params;
  const controller = new AbortController();
  token.onCancellationRequested(() => controller.abort());
  try {
    const settings = await pullSettings();
    if (settings.backend === 'server') {
      const onServer = await host.enqueue(requestId, controller.signal, () => runOnServer(requestId, kind, params, settings, controller.signal));
      return { ...(onServer === CANCELLED_BEFORE_START ? emptyResult('cancelled', true) : onServer), requestId };
    }
    const modelDir = resolveModelDir(settings);
    const outcome = await host.enqueue(requestId, controller.signal, async () => {
      if (!host.loadedInfo || host.needsReload(settings, modelDir)) {
        void connection.sendNotification(RequestProgressNotification.type, { requestId, phase: 'loading-model', message: 'Loading the model…' });
        loadProgress = await connection.window.createWorkDoneProgress();
        loadProgress.begin('R1: loading the model', 0, undefined, false);
      }
      let engine;
      try {
        engine = await host.engineFor(settings, modelDir);
      } finally {
        loadProgress?.done();
        loadProgress = undefined;
      }
      void connection.sendNotification(RequestProgressNotification.type, { requestId, phase: 'running', provider: engine.info.provider });
      return engine.generate(toPromptRequest(kind, params), {
        maxNewTokens: requestedBudget(params.maxNewTokens) ?? settings.maxNewTokens,
        thinkingBudget: settings.thinkingBudget > 0 ? settings.thinkingBudget : undefined,
        temperature: settings.temperature,
        topP: settings.topP,
        contextWindow: settings.contextWindow,
        promptLookup: settings.promptLookup,
        signal: controller.signal,
        onEvent: streamer(requestId, (tokensPerSecond) => ({ kind: 'generating', provider: engine.info.provider, tokensPerSecond, queued: host.queuedIds.length })),
      });
    });
    const result = outcome === CANCELLED_BEFORE_START ? emptyResult('cancelled') : outcome;
    return { ...result, requestId };
  } catch (e) {
    return toResponseError(e);
  }
}

connection.onRequest(AskRequest.type, (params, token) => generate('ask', params, token));
connection.onRequest(FixRequest.type, (params, token) => generate('fix', params, token));
connection.onRequest(ExplainRequest.type, (params, token) => generate('explain', params, token));

connection.onRequest(ValidateModelRequest.type, async ({ modelDir }) => {
  const settings = await pullSettings();
  try {
    const engine = await loadEngine({
      modelDir,
      variant: settings.variant,
      provider: settings.provider,
      cpuThreads: settings.cpuThreads || undefined,
      prepareForCpu: settings.prepareModel,
    });
    const info = engine.info;
    await engine.dispose();
    return { ok: true as const, info };
  } catch (e) {
    if (isModelError(e)) return { ok: false as const, message: e.message, code: e.code, file: e.file };
    return { ok: false as const, message: e instanceof Error ? e.message : String(e) };
  }
});

connection.onRequest(MachineRequest.type, ({ modelsDir }) => probeMachine(modelsDir));

connection.onRequest(ModelInfoRequest.type, async () => {
  if (host.loadedInfo) return host.loadedInfo;
  const settings = await pullSettings();
  if (settings.backend === 'server') return null; // the server's model: nothing loads here
  const dir = resolveModelDir(settings);
  const engine = await host.enqueue('model-info', new AbortController().signal, () => host.engineFor(settings, dir));
  return engine === CANCELLED_BEFORE_START ? null : engine.info;
});

connection.onShutdown(() => {
  remote.dispose();
  return host.dispose();
});

connection.listen();
