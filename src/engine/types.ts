/**
 * Public types of the inference engine. The engine imports nothing from the editor layers
 * (`vscode`, the language client/server, `client/`, `server/`, `webview/`): these types are the
 * contract the server and the CLI build on.
 */

/** Execution providers the user can ask for. `auto` tries the platform's GPU providers first. */
export type ProviderPreference = 'auto' | 'cuda' | 'dml' | 'coreml' | 'webgpu' | 'cpu';
/** A concrete provider that a session really runs on. */
export type ExecutionProvider = Exclude<ProviderPreference, 'auto'>;

/** ONNX variants of the onnx-community layout: `onnx/model_<variant>.onnx` (`fp32` is `model.onnx`). */
export type ModelVariant = 'q4' | 'q4f16' | 'fp16' | 'fp32' | 'int8' | 'uint8' | 'quantized' | 'bnb4';

export type GraphOptimizationLevel = 'disabled' | 'basic' | 'extended' | 'all';

export interface LoadOptions {
  /** Folder with config.json, tokenizer files and onnx/. */
  modelDir: string;
  /** `auto` picks q4f16 on GPU providers, q4 on the CPU, else the best variant present. */
  variant?: ModelVariant | 'auto';
  provider?: ProviderPreference;
  /** Intra-op threads for the CPU provider; 0 or undefined lets ONNX Runtime decide. */
  cpuThreads?: number;
  graphOptimizationLevel?: GraphOptimizationLevel;
  /**
   * On the CPU, load a prepared copy of the model whose MatMulNBits nodes compute in int8
   * (accuracy_level 4) instead of float32: about 4x faster decoding on q4 models. The copy is
   * written once (as large as the model) and reused. Default true.
   */
  prepareForCpu?: boolean;
  /** Folder for prepared copies; default the user cache folder (`$XDG_CACHE_HOME/r1-coder/prepared`). */
  cacheDir?: string;
  /** Progress while loading (reading files, creating the session, validating). */
  onProgress?: (event: LoadProgress) => void;
}

export interface LoadProgress {
  stage: 'config' | 'tokenizer' | 'session' | 'validate' | 'ready';
  message: string;
  /** 0..1 when known. */
  fraction?: number;
}

/** Why a provider that was tried is not the one in use. */
export interface ProviderAttempt {
  provider: ExecutionProvider;
  ok: boolean;
  reason?: string;
  /**
   * Set when the provider was passed over without trying to create a session:
   * 'not-installed' (its optional libraries are absent: nothing is broken), 'unsupported' (this
   * platform or onnxruntime-node build has no such provider), 'broken' (installed but it cannot
   * work here, e.g. the CUDA runtime libraries are missing). Absent when a session was tried.
   */
  skipped?: 'not-installed' | 'unsupported' | 'broken';
}

export type GenerationStatus = 'complete' | 'cancelled' | 'length' | 'error';

export interface SamplingOptions {
  /** 0 means greedy. */
  temperature?: number;
  topP?: number;
  topK?: number;
  /** Seed for reproducible sampling. */
  seed?: number;
}

export interface GenerateOptions extends SamplingOptions {
  maxNewTokens?: number;
  /** After this many reasoning tokens the engine closes the reasoning itself. */
  thinkingBudget?: number;
  /** Prompt + maxNewTokens must fit; the prompt builder drops context to fit. */
  contextWindow?: number;
  /** Tokens per prefill run (bounded logits memory). */
  prefillChunkSize?: number;
  /** Stop on eos tokens (default true). Benchmarks turn it off. */
  stopOnEos?: boolean;
  /**
   * Prompt-lookup decoding (lookup.ts): `auto` (the default) drafts tokens from earlier text and
   * checks them in one pass where that pays (a CPU-prepared copy, DecoderSession.verification);
   * the output is the same as without. `on`: wherever the decoder can check drafts at all, also
   * where dropping rejected rows copies the cache (tests, the benchmark). `off`: one token per pass.
   */
  promptLookup?: 'auto' | 'on' | 'off';
  signal?: AbortSignal;
  onEvent?: (event: StreamEvent) => void;
}

/** Streamed text. Reasoning runs until the first `</think>`; everything after is answer. */
export interface StreamEvent {
  kind: 'reasoning' | 'answer';
  text: string;
}

export interface CodeBlock {
  language: string;
  code: string;
  /** File or symbol named for the block, when the model names one (e.g. ```ts title=src/a.ts). */
  target?: string;
  /** False when the fence was never closed. */
  closed: boolean;
}

export interface GenerationStats {
  promptTokens: number;
  /**
   * Prompt tokens whose KV rows were kept from the previous request (the longest shared prefix:
   * a follow-up in the same conversation, or another request on the same code) and not computed
   * again.
   */
  reusedPromptTokens: number;
  reasoningTokens: number;
  answerTokens: number;
  timeToFirstTokenMs: number;
  prefillTokensPerSecond: number;
  decodeTokensPerSecond: number;
  /** Where the tokens were generated: a provider of this machine, or `server` (then `server` says which). */
  provider: ExecutionProvider | 'server';
  /** The ONNX variant; `server` when a server generated them. */
  variant: ModelVariant | 'server';
  thinkingBudgetHit: boolean;
  /** Forward passes after the prompt's (this engine only; a server's are its own). */
  forwardPasses?: number;
  /** Tokens prompt lookup drafted and checked, and how many of them the model kept (this engine only). */
  draftTokens?: number;
  acceptedDraftTokens?: number;
  /** Tokens per forward pass after the prompt's, when prompt lookup was on (1 without kept drafts). */
  tokensPerPass?: number;
  /** Set when a server generated the answer (src/remote): which one, and which figures it reported. */
  server?: ServerStats;
}

/** The kinds of server src/remote tells apart (by their model listing); `unknown` is any other OpenAI-compatible one. */
export type ServerKind = 'vllm' | 'sglang' | 'llama.cpp' | 'ollama' | 'r1' | 'unknown';

/** What a server run adds to GenerationStats. */
export interface ServerStats {
  /** The server's base URL as configured. */
  url: string;
  /** host[:port], for the status bar and the view. */
  host: string;
  model: string;
  kind: ServerKind;
  /** `openai`: POST /v1/chat/completions; `ollama`: Ollama's own POST /api/chat. */
  api: 'openai' | 'ollama';
  streamed: boolean;
  /** Whether the server counted the reasoning tokens (usage) or R1 Coder estimated them (a streamed chunk per token, else the text's length). */
  reasoningTokensFrom: 'server' | 'estimate';
  /** Prompt and completion totals: the server's usage, or an estimate. */
  tokensFrom: 'server' | 'estimate';
  /** Time spent reasoning, ms, on this side's clock (first reasoning text to first answer text), else from the server's decode rate. */
  reasoningMs: number;
  /** The request field the thinking budget went in; absent when no budget was sent (see the result's notes). */
  thinkingBudgetField?: string;
}

export interface GenerationResult {
  status: GenerationStatus;
  reasoning: string;
  answer: string;
  codeBlocks: CodeBlock[];
  stats: GenerationStats;
  /** Set when status is 'error'. */
  error?: string;
  /** What the prompt builder dropped to fit the context window; empty when nothing was dropped. */
  truncation: TruncationNote[];
  /** The user turn as it went to the model (set by `generate`): what a follow-up replays. */
  userTurn?: string;
}

export interface TruncationNote {
  /**
   * e.g. 'turn', 'file-context', 'selection'; 'server' is not a drop but a note about a server run
   * (a thinking budget it cannot enforce), with droppedTokens 0.
   */
  part: string;
  droppedTokens: number;
  detail: string;
}

/** A conversation turn. Assistant turns carry the answer only, never the reasoning. */
export interface ChatTurn {
  role: 'user' | 'assistant';
  content: string;
}

export interface DiagnosticInfo {
  message: string;
  severity: 'error' | 'warning' | 'info' | 'hint';
  /** 1-based line numbers. */
  startLine: number;
  endLine: number;
  source?: string;
  code?: string;
}

/** Typed input for the three prompt kinds. Lines are 1-based and inclusive. */
export interface CodeContext {
  filePath?: string;
  language?: string;
  /** The selected or target code. */
  code?: string;
  selection?: { startLine: number; endLine: number };
  /** Text of the surrounding file, for bounded context. */
  fileText?: string;
  /**
   * The document line (1-based) where `fileText` starts, when it is a window of a larger file
   * (default 1): `selection` is in document lines either way.
   */
  fileStartLine?: number;
  diagnostics?: DiagnosticInfo[];
  extraContext?: string;
}

export type PromptKind = 'ask' | 'fix' | 'explain';

export interface PromptRequest {
  kind: PromptKind;
  question?: string;
  context: CodeContext;
  /** Earlier turns of the conversation (answers only). */
  history?: ChatTurn[];
}

/** The config.json values the engine uses (read at run time, never hard-coded). */
export interface ModelConfigSummary {
  modelType: string;
  hiddenSize: number;
  numHiddenLayers: number;
  numAttentionHeads: number;
  numKeyValueHeads: number;
  /** config.head_dim, else hidden_size / num_attention_heads. */
  headDim: number;
  vocabSize: number;
  maxPositionEmbeddings: number;
}

/** One graph input or output as ONNX Runtime reports it. */
export interface TensorSignature {
  name: string;
  dtype: string;
  /** Numbers for static dimensions, names for symbolic ones. */
  shape: Array<number | string>;
}

/**
 * The names of a decoder's inputs and outputs. The KV names are patterns in which `%d` stands for
 * the layer, as genai_config.json writes them.
 */
export interface DecoderNames {
  inputIds: string;
  attentionMask: string;
  positionIds: string;
  pastKey: string;
  pastValue: string;
  logits: string;
  presentKey: string;
  presentValue: string;
}

/** What the loaded graph looks like, checked against config.json. */
export interface GraphSignature {
  inputs: TensorSignature[];
  outputs: TensorSignature[];
  numLayers: number;
  kvHeads: number;
  headDim: number;
  kvDtype: 'float32' | 'float16';
  logitsDtype: 'float32' | 'float16';
  /** Input and output names (genai_config.json's, or the exports' usual ones). */
  names: DecoderNames;
  /** Every layer's past inputs and present outputs, key then value, in layer order. */
  pastNames: string[];
  presentNames: string[];
  /** Whether the graph takes position_ids (GroupQueryAttention graphs take the positions from the mask). */
  feedsPositionIds: boolean;
  /**
   * Whether the graph takes `r1_logit_count` (a CPU-prepared copy, graph/rewrites.ts
   * LOGIT_COUNT_INPUT): its logits cover that many last positions. Other graphs' logits cover
   * every position of the run, or (a few exports) the last one only.
   */
  feedsLogitCount: boolean;
}

/** One step of the CPU-prepared copy (src/engine/graph): whether it applies to this model, and what it did or why not. */
export interface PreparedStep {
  step: 'int8 compute' | 'last-position logits' | 'new KV rows only' | 'fused matrix products' | 'fused attention' | 'decode attention';
  applied: boolean;
  detail: string;
}

/** The CPU-prepared copy a session loaded. */
export interface PreparedCopyInfo {
  file: string;
  /** Written by an earlier load. */
  reused: boolean;
  steps: PreparedStep[];
}

/** Everything known about a loaded model: shown by `r1 info` and the status bar. */
export interface ModelInfo {
  modelDir: string;
  /** `hub` (config.json + onnx/model_<variant>.onnx) or `genai` (onnxruntime-genai's genai_config.json). */
  layout: 'hub' | 'genai';
  config: ModelConfigSummary;
  variant: ModelVariant;
  /** Absolute path of the .onnx file loaded. */
  modelFile: string;
  /** Variants present in onnx/. */
  availableVariants: ModelVariant[];
  /** The provider the session really runs on. */
  provider: ExecutionProvider;
  /** Every provider considered, in order, with the reason each one not in use was passed over. */
  attempts: ProviderAttempt[];
  signature: GraphSignature;
  eosTokenIds: number[];
  /** Sampling defaults from generation_config.json (absent fields: the engine's defaults). */
  generationDefaults: SamplingOptions & { maxNewTokens?: number };
  /** The CPU-prepared copy in use, and which of its steps applied (absent when the file runs as it is). */
  preparedCopy?: PreparedCopyInfo;
  /** Notes about the provider detection limits or optional files that were absent. */
  notes: string[];
  loadMs: number;
}

/** What recommend() takes about the machine, plus where the facts come from. */
export interface MachineReport {
  /** `process.platform` (a string here: this file is also read by the webview's type check, which has no Node types). */
  platform: string;
  arch: string;
  freeRamBytes: number;
  totalRamBytes: number;
  /** Free space where the models are stored. */
  freeDiskBytes: number;
  /** GPU providers available here, in the order the engine tries them (no `cpu`). */
  gpuProviders: ExecutionProvider[];
  /** Free memory of the GPU, when measured. */
  vramBytes?: number;
  /** Architectures the engine runs (config.json's model_type). */
  supportedArchitectures: string[];
  /** The NVIDIA GPU whose free memory is vramBytes, when measured. */
  gpuName?: string;
  /** Total memory of that GPU. */
  vramTotalBytes?: number;
}
