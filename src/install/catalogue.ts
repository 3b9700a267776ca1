/**
 * The model catalogue: every model R1 Coder can download (`catalogue.json`, sources in
 * CATALOGUE-SOURCES.md), checked and typed, with what each entry needs to run (memory, disk) and
 * whether it is downloaded in a models folder. Editor-free: `r1 models`, R1: Download Model and
 * R1: Select Model build on it; `recommend.ts` picks the entry for a machine.
 *
 * An entry is one downloadable folder: the files of `repository` at `revision` under `subfolder`,
 * stored in `<models dir>/<folder>/` at their path relative to `subfolder` (so a genai folder's
 * `genai_config.json` is at the top of the local folder, where the engine looks for it).
 */
import { readFileSync } from 'node:fs';
import { stat } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import type { ExecutionProvider, ModelVariant } from '../engine/types';
import bundled from './catalogue.json';
import { readDownloadManifest } from './hub';

export type CatalogueLayout = 'onnx-community' | 'genai';
export type CatalogueArchitecture = 'qwen2' | 'llama' | 'qwen3';

export const LAYOUTS: readonly CatalogueLayout[] = ['onnx-community', 'genai'];
export const ARCHITECTURES: readonly CatalogueArchitecture[] = ['qwen2', 'llama', 'qwen3'];
export const PROVIDERS: readonly ExecutionProvider[] = ['cpu', 'cuda', 'dml', 'coreml', 'webgpu'];
const VARIANTS: readonly ModelVariant[] = ['q4', 'q4f16', 'fp16', 'fp32', 'int8', 'uint8', 'quantized', 'bnb4'];

/**
 * The context the memory figures are for: prompt plus answer tokens, the default of
 * `r1.generation.contextWindow`.
 */
export const DEFAULT_CONTEXT_TOKENS = 8192;

const GiB = 1024 ** 3;
const MiB = 1024 ** 2;

export interface CatalogueFile {
  /** Path relative to the entry's subfolder, which is also its path in the local folder. */
  path: string;
  bytes: number;
  /** The file's sha256 (for LFS files the hub's `lfs.oid`), or null when it could not be read. */
  sha256: string | null;
  /** True when `bytes` is an estimate (CATALOGUE-SOURCES.md says how it was made). */
  estimated: boolean;
}

/** The KV cache's shape: what one token of context costs. */
export interface KvShape {
  layers: number;
  kvHeads: number;
  headDim: number;
  dtype: 'float32' | 'float16';
}

/** What an entry needs to run, for `contextTokens` of context (see memoryNeeds). */
export interface MemoryNeeds {
  contextTokens: number;
  /** The ONNX files' bytes: what ONNX Runtime holds in memory. */
  weightsBytes: number;
  kvCacheBytes: number;
  /** Host memory. */
  ramBytes: number;
  /** GPU memory; null for a CPU entry. */
  vramBytes: number | null;
}

/** One entry of catalogue.json, as written there. */
export interface CatalogueEntryData {
  id: string;
  title: string;
  /** The model's name (DeepSeek's), shared by the entries of one model. */
  model: string;
  repository: string;
  revision: string;
  /** Folder of the repository holding the files ("" for its top). */
  subfolder: string;
  /** Name of the local folder under the models folder. */
  folder: string;
  /** onnx-community layout: the variant (`onnx/model_<variant>.onnx`); null for genai folders. */
  variant: ModelVariant | null;
  layout: CatalogueLayout;
  architecture: CatalogueArchitecture;
  parameters: number;
  /** Providers the files are built for: ['cpu'] or GPU providers, never both. */
  providers: ExecutionProvider[];
  kv: KvShape;
  /** LiveCodeBench pass@1 from DeepSeek's tables (issue 15). */
  liveCodeBench: number;
  /** The repository needs a hub access token. */
  gated: boolean;
  /** Some file's size is an estimate, so totalBytes is one too. */
  bytesEstimated: boolean;
  /** The file list was read from a listing of the repository (false: inferred, see source). */
  filesConfirmed: boolean;
  totalBytes: number;
  files: CatalogueFile[];
  /** Where the entry's facts come from, in a sentence. */
  source: string;
}

/** A checked entry, with what it needs to run. */
export interface CatalogueEntry extends CatalogueEntryData {
  /** True for an entry built for GPU providers. */
  gpu: boolean;
  memory: MemoryNeeds;
}

export interface Catalogue {
  contextTokens: number;
  entries: readonly CatalogueEntry[];
}

export class CatalogueError extends Error {
  override readonly name = 'CatalogueError';
  constructor(readonly problems: string[]) {
    super(`The model catalogue is invalid: ${problems.join(' ')}`);
  }
}

/** True for the files ONNX Runtime loads as the model: graphs and their external data. */
export function isWeightsFile(path: string): boolean {
  return /\.onnx$|\.onnx\.data$|\.onnx_data(?:_\d+)?$/.test(path);
}

/** 2 (keys and values) × layers × KV heads × head size × tokens × bytes of the element type. */
export function kvCacheBytes(kv: KvShape, tokens: number): number {
  return 2 * kv.layers * kv.kvHeads * kv.headDim * tokens * (kv.dtype === 'float16' ? 2 : 4);
}

/**
 * What an entry needs to run with a context of `contextTokens`:
 *
 *   W (weights)  the bytes of the ONNX files (`.onnx`, `.onnx.data`, `.onnx_data`). ONNX Runtime
 *                holds every initializer in memory; 4-bit matrices stay packed.
 *   KV           the KV cache at the full context (kvCacheBytes): float32 in the CPU builds,
 *                float16 in the GPU builds.
 *
 *   CPU entry    RAM = W + KV + 1 GiB + 5 % of W. The overhead is Node and the language server,
 *                the tokenizer, ONNX Runtime's arenas and a prompt chunk's activations and logits.
 *                Calibrated on bench/results.md: peak RSS minus W minus KV was 1.13 GiB for the
 *                1.5B (a 4096-token prompt) and 1.25 GiB for the 7B; the formula gives 1.09 and
 *                1.31.
 *   GPU entry    VRAM = W + KV + 512 MiB + 5 % of W (the provider's workspace and activations).
 *                RAM = W + KV + 1 GiB: ONNX Runtime reads the model into host memory before it
 *                places the initializers on the device (the peak of a load), and with CUDA,
 *                DirectML and CoreML onnxruntime-node copies the KV cache to the host after every
 *                step.
 */
export function memoryNeeds(entry: Pick<CatalogueEntryData, 'files' | 'kv' | 'providers'>, contextTokens = DEFAULT_CONTEXT_TOKENS): MemoryNeeds {
  const weightsBytes = entry.files.filter((f) => isWeightsFile(f.path)).reduce((n, f) => n + f.bytes, 0);
  const kv = kvCacheBytes(entry.kv, contextTokens);
  const gpu = isGpuEntry(entry);
  const ramBytes = gpu ? weightsBytes + kv + GiB : Math.round(weightsBytes + kv + GiB + 0.05 * weightsBytes);
  const vramBytes = gpu ? Math.round(weightsBytes + kv + 512 * MiB + 0.05 * weightsBytes) : null;
  return { contextTokens, weightsBytes, kvCacheBytes: kv, ramBytes, vramBytes };
}

/** True for an entry built for GPU providers (no `cpu` among its providers). */
export function isGpuEntry(entry: Pick<CatalogueEntryData, 'providers'>): boolean {
  return !entry.providers.includes('cpu');
}

/**
 * Disk an entry takes: its download, plus (CPU entries) the prepared copy that the engine writes
 * on the first load with `r1.cpu.prepareModel` on, as large as the model's weights.
 */
export function diskNeeds(entry: CatalogueEntry): { downloadBytes: number; preparedCopyBytes: number; totalBytes: number } {
  const preparedCopyBytes = entry.gpu ? 0 : entry.memory.weightsBytes;
  return { downloadBytes: entry.totalBytes, preparedCopyBytes, totalBytes: entry.totalBytes + preparedCopyBytes };
}

/** The file's path in the repository. */
export function repoPath(entry: Pick<CatalogueEntryData, 'subfolder'>, file: Pick<CatalogueFile, 'path'>): string {
  return entry.subfolder ? `${entry.subfolder}/${file.path}` : file.path;
}

/** The entry's local folder under a models folder. */
export function entryDir(modelsDir: string, entry: Pick<CatalogueEntryData, 'folder'>): string {
  return join(modelsDir, entry.folder);
}

// --- validation ---

type Obj = Record<string, unknown>;

function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function safeRelPath(p: string): boolean {
  const segs = p.split('/');
  return p !== '' && !p.startsWith('/') && !p.includes('\\') && segs.every((s) => s !== '' && s !== '.' && s !== '..');
}

function checkEntry(e: unknown, at: string, problems: string[]): CatalogueEntryData | undefined {
  const before = problems.length;
  const bad = (what: string) => problems.push(`${at}: ${what}.`);
  if (!isObj(e)) {
    bad('is not an object');
    return undefined;
  }
  const str = (k: string, opts: { empty?: boolean; re?: RegExp } = {}) => {
    const v = e[k];
    if (typeof v !== 'string') bad(`${k} must be a string`);
    else if (!opts.empty && v === '') bad(`${k} is empty`);
    else if (opts.re && v !== '' && !opts.re.test(v)) bad(`${k} "${v}" is malformed`);
  };
  const num = (k: string, min: number, int = true) => {
    const v = e[k];
    if (typeof v !== 'number' || !Number.isFinite(v) || v < min || (int && !Number.isInteger(v))) bad(`${k} must be ${int ? 'an integer' : 'a number'} of at least ${min}`);
  };
  const bool = (k: string) => {
    if (typeof e[k] !== 'boolean') bad(`${k} must be true or false`);
  };
  const oneOf = (k: string, allowed: readonly (string | null)[]) => {
    if (!allowed.includes(e[k] as string | null)) bad(`${k} must be one of ${allowed.map(String).join(', ')}`);
  };
  str('id', { re: /^[a-z0-9][a-z0-9.-]*$/ });
  str('title');
  str('model');
  str('repository', { re: /^[\w.-]+\/[\w.-]+$/ });
  str('revision');
  str('subfolder', { empty: true });
  if (typeof e.subfolder === 'string' && e.subfolder !== '' && !safeRelPath(e.subfolder)) bad(`subfolder "${e.subfolder}" is not a relative path`);
  str('folder', { re: /^[\w.-]+$/ });
  oneOf('layout', LAYOUTS);
  oneOf('architecture', ARCHITECTURES);
  oneOf('variant', e.layout === 'onnx-community' ? VARIANTS : [null]);
  num('parameters', 1);
  num('liveCodeBench', 0, false);
  num('totalBytes', 1);
  bool('gated');
  bool('bytesEstimated');
  bool('filesConfirmed');
  str('source');
  if (!Array.isArray(e.providers) || e.providers.length === 0 || !e.providers.every((p) => PROVIDERS.includes(p as ExecutionProvider))) {
    bad(`providers must be a non-empty list of ${PROVIDERS.join(', ')}`);
  } else if (e.providers.includes('cpu') && e.providers.length > 1) {
    bad('providers must be ["cpu"] or GPU providers, not both (a folder is built for one or the other)');
  } else if (new Set(e.providers).size !== e.providers.length) bad('providers lists a provider twice');
  const kv = e.kv;
  if (!isObj(kv) || !['layers', 'kvHeads', 'headDim'].every((k) => Number.isInteger(kv[k]) && (kv[k] as number) > 0) || (kv.dtype !== 'float32' && kv.dtype !== 'float16')) {
    bad('kv must be {layers, kvHeads, headDim, dtype: "float32" | "float16"}');
  }
  if (!Array.isArray(e.files) || e.files.length === 0) bad('files must be a non-empty list');
  else {
    const paths = new Set<string>();
    let sum = 0;
    let anyEstimated = false;
    e.files.forEach((f: unknown, i) => {
      const fat = `${at}.files[${i}]`;
      if (!isObj(f) || typeof f.path !== 'string' || !safeRelPath(f.path)) {
        problems.push(`${fat}: path must be a relative path.`);
        return;
      }
      if (paths.has(f.path)) problems.push(`${fat}: ${f.path} is listed twice.`);
      paths.add(f.path);
      if (typeof f.bytes !== 'number' || !Number.isInteger(f.bytes) || f.bytes < 0) problems.push(`${fat}: bytes must be a non-negative integer.`);
      else sum += f.bytes;
      if (f.sha256 !== null && (typeof f.sha256 !== 'string' || !/^[0-9a-f]{64}$/.test(f.sha256))) problems.push(`${fat}: sha256 must be 64 lowercase hex digits or null.`);
      if (typeof f.estimated !== 'boolean') problems.push(`${fat}: estimated must be true or false.`);
      else anyEstimated ||= f.estimated;
    });
    if (typeof e.totalBytes === 'number' && sum !== e.totalBytes) bad(`totalBytes is ${e.totalBytes} but the files sum to ${sum}`);
    if (typeof e.bytesEstimated === 'boolean' && e.bytesEstimated !== anyEstimated) bad(`bytesEstimated must be ${anyEstimated}: ${anyEstimated ? 'some' : 'no'} file's size is estimated`);
    if (![...paths].some(isWeightsFile)) bad('files have no ONNX model');
    if (e.layout === 'genai' && !paths.has('genai_config.json')) bad('a genai folder needs genai_config.json');
    if (e.layout === 'onnx-community' && typeof e.variant === 'string') {
      const graph = e.variant === 'fp32' ? 'onnx/model.onnx' : `onnx/model_${e.variant}.onnx`;
      if (!paths.has(graph)) bad(`files lack ${graph}, the ${e.variant} variant's graph`);
      if (!paths.has('config.json')) bad('an onnx-community folder needs config.json');
    }
  }
  return problems.length === before ? (e as unknown as CatalogueEntryData) : undefined;
}

/**
 * Checks a catalogue document and returns it typed, with each entry's memory needs for
 * `contextTokens` of context. Throws a CatalogueError that lists every problem.
 */
export function parseCatalogue(doc: unknown, options: { contextTokens?: number } = {}): Catalogue {
  const contextTokens = options.contextTokens ?? DEFAULT_CONTEXT_TOKENS;
  const problems: string[] = [];
  if (!isObj(doc) || doc.format !== 'r1-catalogue' || doc.formatVersion !== 1 || !Array.isArray(doc.entries)) {
    throw new CatalogueError(['it is not an r1-catalogue document of formatVersion 1 with an entries list.']);
  }
  const entries: CatalogueEntry[] = [];
  const ids = new Set<string>();
  const places = new Map<string, string>();
  doc.entries.forEach((raw: unknown, i) => {
    const e = checkEntry(raw, `entry ${i}${isObj(raw) && typeof raw.id === 'string' ? ` (${raw.id})` : ''}`, problems);
    if (!e) return;
    if (ids.has(e.id)) problems.push(`entry ${i}: the id ${e.id} is used twice.`);
    ids.add(e.id);
    // Two entries may share a local folder only as variants of one onnx-community repository.
    const place = `${e.repository}@${e.revision}/${e.subfolder}`;
    const other = places.get(e.folder);
    if (other !== undefined && (other !== place || e.layout !== 'onnx-community')) problems.push(`entry ${i} (${e.id}): the folder ${e.folder} is already another repository's.`);
    places.set(e.folder, place);
    entries.push({ ...e, gpu: isGpuEntry(e), memory: memoryNeeds(e, contextTokens) });
  });
  if (problems.length > 0) throw new CatalogueError(problems);
  return { contextTokens, entries };
}

/** The catalogue that ships with R1 Coder (`catalogue.json`), or another file's. */
export function loadCatalogue(options: { file?: string; contextTokens?: number } = {}): Catalogue {
  const doc: unknown = options.file ? JSON.parse(readFileSync(options.file, 'utf8')) : bundled;
  return parseCatalogue(doc, options);
}

// --- what is downloaded ---

export type DownloadStatus = 'downloaded' | 'partial' | 'absent';

export interface DownloadState {
  dir: string;
  /** downloaded: every file is there with its size; partial: some of its ONNX files are there; absent: none. */
  status: DownloadStatus;
  /** Bytes of the entry's files that are there with the right size. */
  presentBytes: number;
  /** One sentence per file that is missing or has the wrong size. */
  problems: string[];
}

async function sizeOf(path: string): Promise<number | undefined> {
  try {
    const s = await stat(path);
    return s.isFile() ? s.size : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Whether an entry is downloaded in `modelsDir`: every file present in its folder with the
 * catalogue's size. A file whose catalogue size is estimated counts with the size that the
 * folder's download manifest (`r1-download.json`, written by the download) recorded for it.
 */
export async function downloadState(entry: CatalogueEntryData, modelsDir: string): Promise<DownloadState> {
  const dir = entryDir(modelsDir, entry);
  const manifest = await readDownloadManifest(dir).catch(() => undefined);
  const recorded = new Map<string, number>();
  if (manifest && manifest.repo === entry.repository) {
    for (const f of manifest.files) recorded.set(f.path, f.size);
  }
  const problems: string[] = [];
  let presentBytes = 0;
  let weightsPresent = false;
  for (const f of entry.files) {
    const local = join(dir, ...f.path.split('/'));
    const size = await sizeOf(local);
    if (size === undefined) {
      problems.push(`${local} is missing.`);
      continue;
    }
    if (isWeightsFile(f.path)) weightsPresent = true;
    const expected = f.estimated ? (recorded.get(f.path) ?? recorded.get(repoPath(entry, f))) : f.bytes;
    if (size === f.bytes || size === expected) presentBytes += size;
    else if (expected === undefined) problems.push(`${local} is ${size} bytes, and no download manifest says what it should be (about ${f.bytes}).`);
    else problems.push(`${local} is ${size} bytes, expected ${expected}.`);
  }
  const status: DownloadStatus = problems.length === 0 ? 'downloaded' : weightsPresent ? 'partial' : 'absent';
  return { dir, status, presentBytes, problems };
}

// --- where models are ---

/** VS Code's identifier of this extension (package.json publisher.name), its global storage folder. */
export const EXTENSION_ID = 'r1-coder.r1-coder';

/**
 * Where R1: Download Model puts models (`<global storage>/models`), for the editors that install
 * R1 Coder, most likely first: VS Code, VS Code Insiders, VSCodium, code-server. `r1 models` uses
 * the first that exists.
 */
export function modelsDirCandidates(env: NodeJS.ProcessEnv = process.env, platform: NodeJS.Platform = process.platform, home: string = homedir()): string[] {
  const userDirs: string[] = [];
  const apps = ['Code', 'Code - Insiders', 'VSCodium'];
  if (platform === 'win32') {
    const appData = env.APPDATA || join(home, 'AppData', 'Roaming');
    for (const a of apps) userDirs.push(join(appData, a, 'User'));
  } else if (platform === 'darwin') {
    for (const a of apps) userDirs.push(join(home, 'Library', 'Application Support', a, 'User'));
  } else {
    const config = env.XDG_CONFIG_HOME || join(home, '.config');
    for (const a of apps) userDirs.push(join(config, a, 'User'));
  }
  userDirs.push(join(env.XDG_DATA_HOME || join(home, '.local', 'share'), 'code-server', 'User'));
  return userDirs.map((u) => join(u, 'globalStorage', EXTENSION_ID, 'models'));
}
