/**
 * Command-line parsing for `r1` (node:util parseArgs), separate from running so it can be
 * tested. Every mistake is a UsageError with a one-line message (exit code 2).
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import type { GraphOptimizationLevel, ModelVariant, ProviderPreference } from '../engine/types';

/** node:util's parseArgs, strict, with its complaint as a one-line UsageError. */
export function strictArgs<T extends Omit<ParseArgsConfig, 'args' | 'strict'>>(rest: readonly string[], config: T) {
  try {
    return parseArgs<T & { args: string[]; strict: true }>({ ...config, args: [...rest], strict: true });
  } catch (e) {
    throw new UsageError((e as Error).message.split('\n')[0]!);
  }
}

export class UsageError extends Error {
  override readonly name = 'UsageError';
}

export const USAGE = `Usage:
  r1 ask  --model DIR [options] "question"
  r1 ask  --server URL [--server-model M] [--server-api A] [--api-key-env VAR] [options] "question"
  r1 info --model DIR [--provider P] [--variant V] [--threads N] [--json]
  r1 install-cuda [--feed URL] [--check] [--json]
  r1 models [--models-dir DIR] [--json]
  r1 serve --model DIR [--host H] [--port N] [--api-key K] [--queue N] [options]

Options for ask:
  --file F               a source file to ask about (its text is context)
  --selection L1:L2      the lines of --file the question is about (1-based, inclusive)
  --max-new-tokens N     most tokens generated, reasoning and answer together (default 4096)
  --thinking-budget N    close the reasoning after N tokens and let the answer follow (0: none)
  --temperature T        0 is greedy; default from generation_config.json (0.6 for R1)
  --top-p P              nucleus sampling mass (default from generation_config.json, 0.95)
  --top-k K              keep only the K most likely tokens (0: no limit)
  --seed S               seed for reproducible sampling
  --context-window N     prompt plus answer tokens (default 8192)
  --json                 print one JSON object {status, reasoning, answer, codeBlocks, stats}
  --server URL           ask a server instead of a local model: an OpenAI-compatible base
                         (http://host:8000/v1 or http://host:8000) or Ollama (http://host:11434)
  --server-model M       the model on the server (default: the first it lists)
  --server-api A         auto | openai | ollama (default auto: the model listing decides)
  --api-key-env VAR      send the key in environment variable VAR as a Bearer token
Options for both (a local model):
  --provider P           auto | cuda | dml | coreml | webgpu | cpu (default auto)
  --variant V            auto | q4 | q4f16 | fp16 | fp32 | int8 | uint8 | quantized | bnb4 (default auto)
  --threads N            CPU intra-op threads (0: ONNX Runtime decides)
  --graph-opt L          disabled | basic | extended | all (default all)
  --no-prompt-lookup     one token per forward pass (by default drafts copied from the prompt are
                         checked several at a time on the CPU; the text is the same either way)
Options for serve (an OpenAI-compatible server: POST /v1/chat/completions, GET /v1/models, GET /health):
  --host H               address to listen on (default 127.0.0.1); another than loopback needs a key or --insecure
  --port N               port (default 8000; 0 picks a free one). The first line on stdout is the URL
  --api-key K            require "Authorization: Bearer K" on /v1/* (default: $R1_API_KEY; unset: no key)
  --insecure             listen on a non-loopback --host without an API key
  --queue N              requests that may wait while one generates (default 8); past it: 429 + Retry-After
  --served-model-name M  the model id of /v1/models and of requests (default: the model folder's name)
  --reasoning-field F    reasoning_content (default) | both: also send the reasoning as "reasoning"
  --max-tokens N         completion tokens when a request sets no max_tokens (default 4096)
  --thinking-budget N    reasoning tokens when a request sets no thinking_token_budget (default 0: none)
  --context-window N     prompt plus completion tokens (default 8192); longer prompts get a 400
  --provider, --variant, --threads, --graph-opt, --no-prompt-lookup as for ask
Options for install-cuda (Linux x64: CUDA 12 + cuDNN 9 support for onnxruntime-node):
  --feed URL             NuGet v3 flat container (default https://api.nuget.org/v3-flatcontainer/)
  --check                only check the CUDA 12 / cuDNN 9 runtime libraries and the install
  --target DIR           where the provider libraries go (default: onnxruntime-node's bin/napi-v6/linux/x64)
  --version V            package version (default: the installed onnxruntime-node's)
  --sha512 H             expected sha512 of the package (hex or base64), for feeds that publish none
  --download-dir DIR     where the package is downloaded and resumed (default: the temp folder)
  --json                 print one JSON object with the result
Options for models (the catalogue: sizes, memory, score, what is downloaded, what this machine should use):
  --models-dir DIR       where downloaded models are (default: $R1_MODELS_DIR, else R1 Coder's folder in VS Code's storage)
  --json                 print one JSON document {modelsDir, machine, recommended, models}
`;

const PROVIDERS: readonly ProviderPreference[] = ['auto', 'cuda', 'dml', 'coreml', 'webgpu', 'cpu'];
const VARIANTS: readonly (ModelVariant | 'auto')[] = ['auto', 'q4', 'q4f16', 'fp16', 'fp32', 'int8', 'uint8', 'quantized', 'bnb4'];
const OPT_LEVELS: readonly GraphOptimizationLevel[] = ['disabled', 'basic', 'extended', 'all'];

export interface CommonArgs {
  model: string;
  provider: ProviderPreference;
  variant: ModelVariant | 'auto';
  threads?: number;
  graphOptimizationLevel?: GraphOptimizationLevel;
  json: boolean;
}

export interface AskArgs extends CommonArgs {
  command: 'ask';
  question: string;
  file?: string;
  selection?: { startLine: number; endLine: number };
  maxNewTokens?: number;
  thinkingBudget?: number;
  temperature?: number;
  topP?: number;
  topK?: number;
  seed?: number;
  contextWindow?: number;
  /** --no-prompt-lookup: one token per forward pass (the output is the same either way). */
  promptLookup?: 'off';
  /** Ask a server instead of loading --model (then `model` is ''). */
  server?: ServerArgs;
}

export interface ServerArgs {
  url: string;
  model?: string;
  api: 'auto' | 'openai' | 'ollama';
  /** The environment variable that holds the API key. */
  apiKeyEnv?: string;
}

export interface InfoArgs extends CommonArgs {
  command: 'info';
}

export interface InstallCudaArgs {
  command: 'install-cuda';
  feed?: string;
  check: boolean;
  target?: string;
  version?: string;
  sha512?: string;
  downloadDir?: string;
  json: boolean;
}

export interface ServeArgs extends Omit<CommonArgs, 'json'> {
  command: 'serve';
  host: string;
  port: number;
  /** --api-key; the CLI falls back to $R1_API_KEY. */
  apiKey?: string;
  insecure: boolean;
  queue: number;
  servedModelName?: string;
  reasoningField: 'reasoning_content' | 'both';
  maxTokens: number;
  thinkingBudget: number;
  contextWindow: number;
  /** --no-prompt-lookup */
  promptLookup?: 'off';
}

export type CliArgs = AskArgs | InfoArgs | InstallCudaArgs | ServeArgs | { command: 'help' };

function parseInstallCuda(rest: readonly string[]): InstallCudaArgs | { command: 'help' } {
  const parsed = strictArgs(rest, {
    options: {
      feed: { type: 'string' },
      check: { type: 'boolean', default: false },
      target: { type: 'string' },
      version: { type: 'string' },
      sha512: { type: 'string' },
      'download-dir': { type: 'string' },
      json: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  const v = parsed.values;
  if (v.help) return { command: 'help' };
  if (v.feed !== undefined && !/^https?:\/\/[^/]/.test(v.feed)) throw new UsageError(`--feed must be an http(s) URL, got "${v.feed}"`);
  if (v.version !== undefined && !/^\d+\.\d+\.\d+([-.][0-9A-Za-z.-]+)?$/.test(v.version)) throw new UsageError(`--version must look like 1.30.0, got "${v.version}"`);
  if (v.sha512 !== undefined && !/^([0-9a-fA-F]{128}|[A-Za-z0-9+/]{86}==)$/.test(v.sha512.trim())) throw new UsageError('--sha512 must be 128 hex digits or 88 base64 characters');
  if (v.check && (v.sha512 !== undefined || v['download-dir'] !== undefined || v.feed !== undefined)) throw new UsageError('--check only checks: it takes no --feed, --sha512 or --download-dir');
  return {
    command: 'install-cuda',
    feed: v.feed,
    check: v.check === true,
    target: v.target,
    version: v.version,
    sha512: v.sha512?.trim(),
    downloadDir: v['download-dir'],
    json: v.json === true,
  };
}

function parseServe(rest: readonly string[]): ServeArgs | { command: 'help' } {
  const parsed = strictArgs(rest, {
    options: {
      model: { type: 'string', short: 'm' },
      host: { type: 'string' },
      port: { type: 'string' },
      'api-key': { type: 'string' },
      insecure: { type: 'boolean', default: false },
      queue: { type: 'string' },
      'served-model-name': { type: 'string' },
      'reasoning-field': { type: 'string' },
      'max-tokens': { type: 'string' },
      'thinking-budget': { type: 'string' },
      'context-window': { type: 'string' },
      'no-prompt-lookup': { type: 'boolean', default: false },
      provider: { type: 'string' },
      variant: { type: 'string' },
      threads: { type: 'string' },
      'graph-opt': { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  const v = parsed.values;
  if (v.help) return { command: 'help' };
  if (!v.model) throw new UsageError('--model DIR is required');
  const port = int('port', v.port, 0) ?? 8000;
  if (port > 65535) throw new UsageError(`--port must be at most 65535, got ${port}`);
  if (v.host !== undefined && v.host.trim() === '') throw new UsageError('--host must not be empty');
  if (v['api-key'] !== undefined && v['api-key'].trim() === '') throw new UsageError('--api-key must not be empty');
  if (v['served-model-name'] !== undefined && v['served-model-name'].trim() === '') throw new UsageError('--served-model-name must not be empty');
  return {
    command: 'serve',
    model: v.model,
    provider: oneOf('provider', v.provider, PROVIDERS, 'auto'),
    variant: oneOf('variant', v.variant, VARIANTS, 'auto'),
    threads: int('threads', v.threads, 0),
    graphOptimizationLevel: v['graph-opt'] === undefined ? undefined : oneOf('graph-opt', v['graph-opt'], OPT_LEVELS, 'all'),
    host: v.host?.trim() ?? '127.0.0.1',
    port,
    apiKey: v['api-key'],
    insecure: v.insecure === true,
    queue: int('queue', v.queue, 0) ?? 8,
    servedModelName: v['served-model-name']?.trim(),
    reasoningField: oneOf('reasoning-field', v['reasoning-field'], ['reasoning_content', 'both'] as const, 'reasoning_content'),
    maxTokens: int('max-tokens', v['max-tokens'], 1) ?? 4096,
    thinkingBudget: int('thinking-budget', v['thinking-budget'], 0) ?? 0,
    contextWindow: int('context-window', v['context-window'], 2) ?? 8192,
    ...(v['no-prompt-lookup'] ? { promptLookup: 'off' as const } : {}),
  };
}

function int(name: string, v: string | undefined, min: number): number | undefined {
  if (v === undefined) return undefined;
  if (!/^-?\d+$/.test(v.trim())) throw new UsageError(`--${name} must be an integer, got "${v}"`);
  const n = Number(v);
  if (n < min) throw new UsageError(`--${name} must be at least ${min}, got ${n}`);
  return n;
}

function num(name: string, v: string | undefined, min: number, max: number, minExclusive = false): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (v.trim() === '' || !Number.isFinite(n)) throw new UsageError(`--${name} must be a number, got "${v}"`);
  if (minExclusive ? n <= min : n < min) throw new UsageError(`--${name} must be ${minExclusive ? 'more than' : 'at least'} ${min}, got ${n}`);
  if (n > max) throw new UsageError(`--${name} must be at most ${max}, got ${n}`);
  return n;
}

function oneOf<T extends string>(name: string, v: string | undefined, allowed: readonly T[], dflt: T): T {
  if (v === undefined) return dflt;
  if (!(allowed as readonly string[]).includes(v)) throw new UsageError(`--${name} must be one of ${allowed.join(', ')}, got "${v}"`);
  return v as T;
}

export function parseSelection(v: string): { startLine: number; endLine: number } {
  const m = /^\s*(\d+)\s*(?:[:-]\s*(\d+)\s*)?$/.exec(v);
  if (!m) throw new UsageError(`--selection must look like L1:L2 (1-based lines), got "${v}"`);
  const startLine = Number(m[1]);
  const endLine = m[2] !== undefined ? Number(m[2]) : startLine;
  if (startLine < 1 || endLine < startLine) throw new UsageError(`--selection must have 1 <= L1 <= L2, got "${v}"`);
  return { startLine, endLine };
}

export function parseCli(argv: readonly string[]): CliArgs {
  const [command, ...rest] = argv;
  if (command === undefined || command === 'help' || command === '--help' || command === '-h') return { command: 'help' };
  if (command === 'install-cuda') return parseInstallCuda(rest);
  if (command === 'serve') return parseServe(rest);
  if (command !== 'ask' && command !== 'info') throw new UsageError(`unknown command "${command}" (expected ask, info, models, serve or install-cuda)`);
  const parsed = strictArgs(rest, {
    options: {
      model: { type: 'string', short: 'm' },
      file: { type: 'string' },
      selection: { type: 'string' },
      'max-new-tokens': { type: 'string' },
      'thinking-budget': { type: 'string' },
      temperature: { type: 'string' },
      'top-p': { type: 'string' },
      'top-k': { type: 'string' },
      seed: { type: 'string' },
      'context-window': { type: 'string' },
      'no-prompt-lookup': { type: 'boolean', default: false },
      provider: { type: 'string' },
      variant: { type: 'string' },
      threads: { type: 'string' },
      'graph-opt': { type: 'string' },
      server: { type: 'string' },
      'server-model': { type: 'string' },
      'server-api': { type: 'string' },
      'api-key-env': { type: 'string' },
      json: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
    allowPositionals: true,
  });
  const v = parsed.values;
  if (v.help) return { command: 'help' };
  const server = parseServerArgs(command, v);
  if (!v.model && !server) throw new UsageError(command === 'ask' ? '--model DIR is required (or --server URL to ask a server)' : '--model DIR is required');
  const common: CommonArgs = {
    model: v.model ?? '',
    provider: oneOf('provider', v.provider, PROVIDERS, 'auto'),
    variant: oneOf('variant', v.variant, VARIANTS, 'auto'),
    threads: int('threads', v.threads, 0),
    graphOptimizationLevel: v['graph-opt'] === undefined ? undefined : oneOf('graph-opt', v['graph-opt'], OPT_LEVELS, 'all'),
    json: v.json === true,
  };
  if (command === 'info') {
    if (parsed.positionals.length > 0) throw new UsageError(`info takes no question (got "${parsed.positionals[0]}")`);
    for (const opt of ['file', 'selection', 'max-new-tokens', 'thinking-budget', 'temperature', 'top-p', 'top-k', 'seed', 'context-window'] as const) {
      if (v[opt] !== undefined) throw new UsageError(`--${opt} applies to ask, not info`);
    }
    if (v['no-prompt-lookup']) throw new UsageError('--no-prompt-lookup applies to ask, not info');
    return { command: 'info', ...common };
  }
  const question = parsed.positionals.join(' ').trim();
  if (question === '') throw new UsageError('ask needs a question, e.g. r1 ask --model DIR "what does this do?"');
  if (v.selection !== undefined && v.file === undefined) throw new UsageError('--selection needs --file');
  const args: AskArgs = {
    command: 'ask',
    ...common,
    question,
    file: v.file,
    selection: v.selection !== undefined ? parseSelection(v.selection) : undefined,
    maxNewTokens: int('max-new-tokens', v['max-new-tokens'], 1),
    thinkingBudget: int('thinking-budget', v['thinking-budget'], 0),
    temperature: num('temperature', v.temperature, 0, 100),
    topP: num('top-p', v['top-p'], 0, 1, true),
    topK: int('top-k', v['top-k'], 0),
    seed: int('seed', v.seed, 0),
    contextWindow: int('context-window', v['context-window'], 2),
    ...(v['no-prompt-lookup'] ? { promptLookup: 'off' as const } : {}),
    ...(server ? { server } : {}),
  };
  return args;
}

/** --server and its companions (ask only); undefined without --server. */
function parseServerArgs(command: 'ask' | 'info', v: Record<string, string | boolean | undefined>): ServerArgs | undefined {
  const str = (k: string) => (typeof v[k] === 'string' ? (v[k] as string) : undefined);
  const url = str('server');
  if (url === undefined) {
    for (const opt of ['server-model', 'server-api', 'api-key-env']) if (v[opt] !== undefined) throw new UsageError(`--${opt} needs --server URL`);
    return undefined;
  }
  if (command !== 'ask') throw new UsageError('--server applies to ask, not info');
  if (url.trim() === '') throw new UsageError('--server must not be empty');
  if (v.model !== undefined) throw new UsageError('--model and --server exclude each other: a local model, or a server');
  for (const opt of ['provider', 'variant', 'threads', 'graph-opt']) if (v[opt] !== undefined) throw new UsageError(`--${opt} applies to a local model, not to --server`);
  if (v['no-prompt-lookup']) throw new UsageError('--no-prompt-lookup applies to a local model, not to --server (the server decodes its own way)');
  const keyEnv = str('api-key-env');
  if (keyEnv !== undefined && !/^[A-Za-z_][A-Za-z0-9_]*$/.test(keyEnv)) throw new UsageError(`--api-key-env takes the name of an environment variable, got "${keyEnv}"`);
  return {
    url: url.trim(),
    model: str('server-model')?.trim() || undefined,
    api: oneOf('server-api', str('server-api'), ['auto', 'openai', 'ollama'] as const, 'auto'),
    apiKeyEnv: keyEnv,
  };
}
