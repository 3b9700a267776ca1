/**
 * Messages between the extension host (client) and the language server that hosts the engine.
 * Each message is one namespace with its `method` (prefixed `r1/`) and its typed `type`, as
 * vscode-eslint does. The direction is written above each.
 */
import { NotificationType, RequestType } from 'vscode-languageserver-protocol';
import type { ChatTurn, DiagnosticInfo, GenerationResult, MachineReport, ModelInfo, PromptKind } from '../engine/types';

/** The engine's types that cross the wire; the client reaches them only through this file. */
export type { ChatTurn, CodeBlock, DiagnosticInfo, GenerationResult, ModelInfo, ModelVariant, PromptKind } from '../engine/types';
export type { MachineReport } from '../engine/types';

/** What the server is doing; shown by the client's status item. */
export type ServerState =
  | { kind: 'starting' }
  | { kind: 'no-model'; message: string }
  /** A model is configured and loads on the first request. */
  | { kind: 'unloaded'; message: string }
  | { kind: 'loading'; message: string; fraction?: number }
  | {
      kind: 'ready';
      provider: string;
      variant: string;
      model: string;
      /** GPU providers auto mode tried (or found broken) before the one in use, with the reason. */
      fallbacks?: ProviderFallback[];
      /** Set when r1.backend is `server`: the server answers instead of a local model. */
      server?: RemoteServerInfo;
    }
  | { kind: 'generating'; provider: string; tokensPerSecond?: number; queued: number; server?: RemoteServerInfo }
  | { kind: 'error'; message: string };

/** The server R1 Coder talks to when r1.backend is `server`. */
export interface RemoteServerInfo {
  url: string;
  /** host[:port]. */
  host: string;
  model: string;
  /** vllm, sglang, llama.cpp, ollama, r1 or unknown. */
  kind: string;
  /** `openai` or `ollama` (Ollama's own /api/chat). */
  api: string;
}

/** A GPU provider that auto mode could not use, and why. */
export interface ProviderFallback {
  provider: string;
  reason: string;
  /** 'failed': its session was tried and failed; 'broken': installed but cannot work (e.g. CUDA runtime libraries missing). */
  kind: 'failed' | 'broken';
}

/** What the client passes in `initializationOptions`. */
export interface InitializationOptions {
  extensionVersion?: string;
  /** Where R1: Download Model puts the default model (used when r1.model.path is empty). */
  defaultModelDir?: string;
  /** Where prepared CPU copies of models go (the extension's global storage). */
  preparedModelsDir?: string;
  /**
   * Diagnostic overrides, for support and for tests; the extension never sets them.
   * `platformProbe` replaces what the server detects about the platform (platform, arch, the
   * backends of the onnxruntime-node build, whether the CUDA provider library is installed and
   * the CUDA runtime check), so the provider order of another machine can be reproduced. Every
   * provider it lets through is still really tried with ONNX Runtime. The server logs a warning
   * when an override is active.
   */
  diagnostics?: {
    platformProbe?: {
      platform: string;
      arch: string;
      supportedBackends: string[];
      cudaLibraryPresent: boolean;
      cudaRuntime?: { ok: boolean; message: string };
    };
  };
}

/**
 * server → client: auto mode fell back past GPU providers. Sent after a load, at most once per
 * provider per server session (a reload that meets the same failure does not repeat it), so the
 * client can warn once. No silent fallback: the reason is also in the log and in `r1 info`.
 */
export namespace ProviderFallbackNotification {
  export const method = 'r1/providerFallback' as const;
  export interface Params {
    /** The provider really in use after the fallback. */
    provider: string;
    variant: string;
    /** Providers not reported before in this server session. */
    fallbacks: ProviderFallback[];
  }
  export const type = new NotificationType<Params>(method);
}

/** client → server: a liveness check that also proves the wiring end to end. */
export namespace PingRequest {
  export const method = 'r1/ping' as const;
  export interface Params {
    /** Echoed back, so the client can match the reply. */
    nonce: string;
  }
  export interface Result {
    nonce: string;
    /** Version of the server bundle (the extension's version). */
    serverVersion: string;
    pid: number;
    uptimeMs: number;
    state: ServerState;
  }
  export const type = new RequestType<Params, Result, void>(method);
}

/** server → client: the server's state changed. */
export namespace StateNotification {
  export const method = 'r1/state' as const;
  export type Params = ServerState;
  export const type = new NotificationType<Params>(method);
}

// ---------------------------------------------------------------------------------------------
// Generation: ask, fix and explain. The client sends one request per run; the server streams
// text as notifications keyed by the request id and answers the request with the final result.
// LSP cancellation ($/cancelRequest) stops the run within one decode step.
// ---------------------------------------------------------------------------------------------


/** A position in a document, 0-based as in LSP. */
export interface LinePosition {
  line: number;
  character: number;
}
export interface LineRange {
  start: LinePosition;
  end: LinePosition;
}

/** The document a request is about, pinned to the version it was computed from. */
export interface DocumentSnapshot {
  uri: string;
  version: number;
  languageId: string;
  /** Workspace-relative path when there is one, for the prompt and the view's header. */
  path: string;
}

export interface GenerateParams {
  /** Chosen by the client; keys the stream notifications and the view's exchange. */
  requestId: string;
  document?: DocumentSnapshot;
  /** The selected range, or the target range of a fix. */
  range?: LineRange;
  question?: string;
  /** The code of `range` (or of the whole file when nothing is selected). */
  code?: string;
  /** Bounded text around the range, and the 1-based line where it starts in the document. */
  fileContext?: { text: string; startLine: number };
  diagnostics?: DiagnosticInfo[];
  extraContext?: string;
  /** Earlier turns of the conversation: answers only, never reasoning. */
  history?: ChatTurn[];
  /** A token budget for this request instead of r1.generation.maxNewTokens ("Continue" doubles it). */
  maxNewTokens?: number;
}

export interface GenerateResult extends GenerationResult {
  requestId: string;
}

function generateRequest(kind: PromptKind) {
  return new RequestType<GenerateParams, GenerateResult, GenerateError>(`r1/${kind}`);
}

/** Error data attached to a failed generate request, so the client can offer the right action. */
export interface GenerateError {
  kind: 'no-model' | 'model-error' | 'internal' | 'remote';
  /** ModelError code when kind is 'model-error'; the RemoteError code (unreachable, auth, unknown-model, …) when kind is 'remote'. */
  code?: string;
  file?: string;
}

/** client → server: answer a question about code. */
export namespace AskRequest {
  export const method = 'r1/ask' as const;
  export const type = generateRequest('ask');
}
/** client → server: propose a fix; the answer's code block becomes a proposed edit. */
export namespace FixRequest {
  export const method = 'r1/fix' as const;
  export const type = generateRequest('fix');
}
/** client → server: explain code. */
export namespace ExplainRequest {
  export const method = 'r1/explain' as const;
  export const type = generateRequest('explain');
}

/** server → client: streamed text of a running request. */
export namespace StreamNotification {
  export const method = 'r1/stream' as const;
  export interface Params {
    requestId: string;
    kind: 'reasoning' | 'answer';
    text: string;
    reasoningTokens: number;
    answerTokens: number;
  }
  export const type = new NotificationType<Params>(method);
}

/** server → client: where a request is in its life before it streams. */
export namespace RequestProgressNotification {
  export const method = 'r1/requestProgress' as const;
  export type Params =
    | { requestId: string; phase: 'queued'; position: number }
    | { requestId: string; phase: 'loading-model'; message: string }
    | { requestId: string; phase: 'running'; provider: string };
  export const type = new NotificationType<Params>(method);
}

/** client → server: load and validate a model folder without switching to it (R1: Select Model). */
export namespace ValidateModelRequest {
  export const method = 'r1/validateModel' as const;
  export interface Params {
    modelDir: string;
  }
  export type Result = { ok: true; info: ModelInfo } | { ok: false; message: string; code?: string; file?: string };
  export const type = new RequestType<Params, Result, void>(method);
}

/**
 * client → server: this machine's facts for choosing a model (free memory and disk, the GPU
 * providers the engine would try, the architectures it runs). R1: Download Model feeds them to
 * the catalogue's recommend().
 */
export namespace MachineRequest {
  export const method = 'r1/machine' as const;
  export interface Params {
    /** Where models are stored: its free disk space counts. */
    modelsDir: string;
  }
  export type Result = MachineReport;
  export const type = new RequestType<Params, Result, void>(method);
}

/** client → server: the loaded model's info (loads it when needed). */
export namespace ModelInfoRequest {
  export const method = 'r1/modelInfo' as const;
  export type Result = ModelInfo | null;
  export const type = new RequestType<void, Result, void>(method);
}

/**
 * server → client: the API key for a server (r1.backend `server`), from VS Code's SecretStorage.
 * Asked before each server run, for the origin (scheme://host:port) of r1.server.url: a key is
 * only ever sent to the origin it was stored for. No key: `{}`.
 */
export namespace ServerApiKeyRequest {
  export const method = 'r1/serverApiKey' as const;
  export interface Params {
    origin: string;
  }
  export interface Result {
    apiKey?: string;
  }
  export const type = new RequestType<Params, Result, void>(method);
}

/** Error codes of r1/* requests (JSON-RPC server-defined range). */
export const R1ErrorCodes = {
  NoModel: -32001,
  ModelError: -32002,
  /** r1.backend is `server` and the server could not answer (data: GenerateError with kind 'remote'). */
  ServerError: -32003,
} as const;
