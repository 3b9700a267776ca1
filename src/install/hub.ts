/**
 * Model download from the Hugging Face hub with the hub's own HTTP API:
 * - the file list: `GET {hubUrl}/api/models/{repo}/tree/{revision}?recursive=true` (entries with
 *   `path`, `size`, `oid` (git blob id) and, for LFS files, `lfs: {oid (sha256), size}`; further
 *   pages through the `Link: <…>; rel="next"` header);
 * - the bytes: `GET {hubUrl}/{repo}/resolve/{revision}/{path}` (LFS files redirect to a CDN).
 * Only the files the chosen variant needs are fetched. Every file is verified (size, plus sha256
 * for LFS files and the git blob id for the others) and renamed into place atomically. A manifest
 * `r1-download.json` is written last, so a folder with a manifest whose files are present is a
 * complete download and anything else is a partial one.
 *
 * Why not @huggingface/hub: its downloadFileToCacheDir writes the hub cache layout (blobs and
 * snapshot symlinks) rather than a plain model folder, has no Range resume of a partial file, does
 * not verify sha256, and has no progress or retry policy; its listFiles is a thin wrapper over the
 * tree endpoint used here. The shared fetcher gives all of that with no new dependency.
 */
import { mkdir, open, readFile, rm, stat, statfs, writeFile } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import type { ModelVariant } from '../engine/types';
import { DownloadError, MODEL_OFFLINE_HINT } from './errors';
import { commitFile, downloadFile, fetchJson, type NetworkOptions } from './fetcher';
import { errorCode } from './http';
import type { DownloadProgress } from './progress';

export const DEFAULT_HUB_URL = 'https://huggingface.co';
export const DEFAULT_MODEL_REPO = 'onnx-community/DeepSeek-R1-Distill-Qwen-1.5B-ONNX';
export const DEFAULT_REVISION = 'main';
export const MANIFEST_FILE = 'r1-download.json';

/** Files every variant needs, besides its ONNX graph. */
export const BASE_FILES = ['config.json', 'generation_config.json', 'tokenizer.json', 'tokenizer_config.json'] as const;
/** Base files fetched when the repository has them, and not required otherwise. */
const OPTIONAL_BASE_FILES = new Set<string>(['generation_config.json']);

/** One entry of the hub's tree listing. */
export interface HubTreeEntry {
  type: 'file' | 'directory' | string;
  path: string;
  size: number;
  /** Git blob id (sha1) of the file as stored in git (for LFS files: of the pointer). */
  oid?: string;
  lfs?: { oid: string; size: number; pointerSize?: number };
}

export interface HubRepoOptions extends NetworkOptions {
  /** Default https://huggingface.co. */
  hubUrl?: string;
  /** Default onnx-community/DeepSeek-R1-Distill-Qwen-1.5B-ONNX. */
  repo?: string;
  /** Branch, tag or commit. Default main. */
  revision?: string;
  /** A hub access token, for gated or private repositories. */
  token?: string;
}

export interface ModelDownloadProgress extends DownloadProgress {
  /** 0-based index of the file being fetched among the files to fetch. */
  fileIndex: number;
  fileCount: number;
  /** Bytes of all the variant's files on disk so far (already complete files included). */
  overallReceivedBytes: number;
  overallTotalBytes: number;
}

export interface ModelDownloadOptions extends HubRepoOptions {
  /** onnx-community layout: the variant whose graph to fetch. A genai folder holds one build: its variant is what it says. */
  variant: ModelVariant;
  /**
   * `onnx-community` (default): the base files and one variant's graph under `onnx/`. `genai`: every
   * file of the folder (genai_config.json, the graph and its data, the tokenizer files).
   */
  layout?: 'onnx-community' | 'genai';
  /** The repository folder holding the model ("" or absent: its top). Files keep their paths relative to it. */
  subfolder?: string;
  /** The catalogue entry this download is (written into the manifest). */
  entryId?: string;
  /** The model folder to fill (created when missing). */
  destDir: string;
  onProgress?: (progress: ModelDownloadProgress) => void;
  /** Minimum time between progress events (default 100 ms). */
  progressIntervalMs?: number;
  /** Check free disk space before downloading (default true). */
  checkDiskSpace?: boolean;
}

export interface ManifestFile {
  path: string;
  size: number;
  sha256: string;
  /** True for LFS files, whose sha256 the hub lists. */
  lfs: boolean;
  /** The git blob id the hub listed (non-LFS files). */
  gitOid?: string;
}

export interface DownloadManifest {
  format: 'r1-download';
  formatVersion: 1;
  repo: string;
  revision: string;
  /** The commit the hub resolved the revision to (X-Repo-Commit), when it said. */
  commit?: string;
  hubUrl: string;
  variant: ModelVariant;
  /** The repository folder the files came from, when not its top. */
  subfolder?: string;
  layout?: 'onnx-community' | 'genai';
  /** The catalogue entry (src/install/catalogue.json) this folder is. */
  entryId?: string;
  completedAt: string;
  totalBytes: number;
  files: ManifestFile[];
}

export interface ModelDownloadResult {
  destDir: string;
  manifestPath: string;
  manifest: DownloadManifest;
  /** Repository paths fetched by this call. */
  downloaded: string[];
  /** Repository paths that were already complete and verified. */
  alreadyPresent: string[];
  /** Optional files the repository does not have (e.g. generation_config.json). */
  absentOptional: string[];
}

function trimSlash(u: string): string {
  return u.replace(/\/+$/, '');
}

function checkRepoId(repo: string): void {
  if (!/^[\w.-]+\/[\w.-]+$/.test(repo)) {
    throw new DownloadError('not-found', `"${repo}" is not a hub repository id (owner/name).`, 'Check the repository setting.', {});
  }
}

function encodePath(path: string): string {
  return path.split('/').map(encodeURIComponent).join('/');
}

/** `{hubUrl}/api/models/{repo}/tree/{revision}?recursive=true` */
export function hubTreeUrl(hubUrl: string, repo: string, revision: string): string {
  return `${trimSlash(hubUrl)}/api/models/${repo}/tree/${encodeURIComponent(revision)}?recursive=true`;
}

/** `{hubUrl}/{repo}/resolve/{revision}/{path}` */
export function hubResolveUrl(hubUrl: string, repo: string, revision: string, path: string): string {
  return `${trimSlash(hubUrl)}/${repo}/resolve/${encodeURIComponent(revision)}/${encodePath(path)}`;
}

/** The `rel="next"` target of a Link header. */
export function parseNextLink(link: string | string[] | undefined, base: string): string | undefined {
  const v = Array.isArray(link) ? link.join(', ') : link;
  if (!v) return undefined;
  for (const part of v.split(/,(?=\s*<)/)) {
    const m = /<([^>]*)>\s*;(.*)$/.exec(part.trim());
    if (m && /\brel\s*=\s*"?next"?/i.test(m[2])) return new URL(m[1], base).toString();
  }
  return undefined;
}

function authHeaders(o: HubRepoOptions): Record<string, string> {
  return { ...(o.headers ?? {}), ...(o.token ? { authorization: `Bearer ${o.token}` } : {}) };
}

/** Every file of the repository at the revision (all pages). */
export async function listHubFiles(o: HubRepoOptions = {}): Promise<HubTreeEntry[]> {
  const hubUrl = o.hubUrl ?? DEFAULT_HUB_URL;
  const repo = o.repo ?? DEFAULT_MODEL_REPO;
  const revision = o.revision ?? DEFAULT_REVISION;
  checkRepoId(repo);
  const out: HubTreeEntry[] = [];
  let url: string | undefined = hubTreeUrl(hubUrl, repo, revision);
  for (let page = 0; url && page < 1000; page++) {
    const { data, headers, finalUrl }: { data: unknown; headers: Record<string, string | string[] | undefined>; finalUrl: string } = await fetchJson(url, {
      ...o,
      headers: authHeaders(o),
      what: `the file list of ${repo}@${revision}`,
      offlineHint: o.offlineHint ?? MODEL_OFFLINE_HINT,
    });
    if (!Array.isArray(data)) {
      throw new DownloadError('invalid-response', `The file list of ${repo}@${revision} at ${url} is not a JSON array.`, 'Check the hub URL setting.', { url });
    }
    for (const item of data) {
      const e = item as Partial<HubTreeEntry>;
      if (typeof e !== 'object' || e === null || typeof e.path !== 'string' || typeof e.size !== 'number') {
        throw new DownloadError('invalid-response', `The file list of ${repo}@${revision} has an entry without path or size.`, 'Check the hub URL setting.', { url });
      }
      if ((e.type ?? 'file') !== 'file') continue;
      const lfs = e.lfs && typeof e.lfs.oid === 'string' && typeof e.lfs.size === 'number' ? e.lfs : undefined;
      out.push({ type: 'file', path: e.path, size: e.size, oid: typeof e.oid === 'string' ? e.oid : undefined, lfs });
    }
    url = parseNextLink(headers.link, finalUrl);
  }
  return out;
}

/** The ONNX graph path of a variant in the onnx-community layout (`fp32` is `onnx/model.onnx`). */
export function variantOnnxPath(variant: ModelVariant): string {
  return variant === 'fp32' ? 'onnx/model.onnx' : `onnx/model_${variant}.onnx`;
}

/** Variants whose graph is in the listing. */
export function listedVariants(entries: readonly HubTreeEntry[]): string[] {
  const out: string[] = [];
  for (const e of entries) {
    const m = /^onnx\/model(?:_([A-Za-z0-9]+))?\.onnx$/.exec(e.path);
    if (m) out.push(m[1] ?? 'fp32');
  }
  return out.sort();
}

export interface VariantSelection {
  files: HubTreeEntry[];
  absentOptional: string[];
}

/**
 * The files a variant needs: the base files, `onnx/model_<variant>.onnx` and its external data
 * (`model_<variant>.onnx_data`, `…onnx_data_1`, …, or `….onnx.data`), nothing else.
 */
export function selectVariantFiles(entries: readonly HubTreeEntry[], variant: ModelVariant, where = 'the repository'): VariantSelection {
  const byPath = new Map(entries.map((e) => [e.path, e]));
  const graph = variantOnnxPath(variant);
  if (!byPath.has(graph)) {
    const available = listedVariants(entries);
    throw new DownloadError(
      'variant-unavailable',
      `${where} has no ${graph}, so the ${variant} variant cannot be downloaded.`,
      available.length ? `Choose one of the variants it has: ${available.join(', ')}.` : 'It has no ONNX model in onnx/; choose another repository.',
      {},
    );
  }
  const files: HubTreeEntry[] = [];
  const absentOptional: string[] = [];
  for (const name of BASE_FILES) {
    const e = byPath.get(name);
    if (e) files.push(e);
    else if (OPTIONAL_BASE_FILES.has(name)) absentOptional.push(name);
    else throw new DownloadError('variant-unavailable', `${where} has no ${name}, which the model needs.`, 'Choose another repository or revision.', {});
  }
  files.push(byPath.get(graph)!);
  const stem = graph.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const dataRe = new RegExp(`^${stem}(?:_data(?:_\\d+)?|\\.data)$`);
  for (const e of entries) if (dataRe.test(e.path)) files.push(e);
  for (const f of files) checkSafePath(f.path);
  return { files, absentOptional };
}

/** Files a genai folder needs, besides its graph(s). */
const GENAI_REQUIRED = ['genai_config.json', 'tokenizer.json', 'tokenizer_config.json'] as const;

/** Every file of a genai folder (the listing's paths relative to the folder, no deeper folders). */
export function selectGenaiFiles(entries: readonly HubTreeEntry[], where = 'the repository'): VariantSelection {
  const files = entries.filter((e) => !e.path.includes('/'));
  const names = new Set(files.map((f) => f.path));
  const missing = GENAI_REQUIRED.filter((n) => !names.has(n));
  if (!files.some((f) => f.path.endsWith('.onnx'))) missing.push('a .onnx graph' as never);
  if (missing.length > 0) {
    throw new DownloadError('variant-unavailable', `${where} has no ${missing.join(', ')}, which an onnxruntime-genai model folder needs.`, 'Choose another catalogue entry, or check the hub URL setting.', {});
  }
  for (const f of files) checkSafePath(f.path);
  return { files, absentOptional: [] };
}

/** The listing's entries under `subfolder`, with paths relative to it. */
export function entriesUnder(entries: readonly HubTreeEntry[], subfolder: string | undefined): HubTreeEntry[] {
  const prefix = subfolder ? `${subfolder.replace(/^\/+|\/+$/g, '')}/` : '';
  return prefix === '' ? [...entries] : entries.filter((e) => e.path.startsWith(prefix)).map((e) => ({ ...e, path: e.path.slice(prefix.length) }));
}

function checkSafePath(p: string): void {
  const segs = p.split('/');
  if (p.startsWith('/') || segs.some((s) => s === '' || s === '.' || s === '..' || s.includes('\\'))) {
    throw new DownloadError('invalid-response', `The hub listed an unsafe file path "${p}".`, 'Check the hub URL setting.', {});
  }
}

function localPath(destDir: string, repoPath: string): string {
  return join(destDir, ...repoPath.split('/'));
}

async function sizeOf(path: string): Promise<number | undefined> {
  try {
    return (await stat(path)).size;
  } catch {
    return undefined;
  }
}

async function hashFile(path: string, gitSize: number | undefined, signal?: AbortSignal): Promise<{ sha256: string; git?: string }> {
  const sha = createHash('sha256');
  const git = gitSize != null ? createHash('sha1').update(`blob ${gitSize}\0`) : undefined;
  const fh = await open(path, 'r');
  try {
    const buf = Buffer.allocUnsafe(4 * 1024 * 1024);
    for (let pos = 0; ; ) {
      if (signal?.aborted) throw new DownloadError('cancelled', 'The model download was cancelled.', '', { file: path });
      const { bytesRead } = await fh.read(buf, 0, buf.length, pos);
      if (bytesRead === 0) break;
      sha.update(buf.subarray(0, bytesRead));
      git?.update(buf.subarray(0, bytesRead));
      pos += bytesRead;
    }
  } finally {
    await fh.close();
  }
  return { sha256: sha.digest('hex'), git: git?.digest('hex') };
}

/** Reads and checks the shape of `r1-download.json`; undefined when absent or not a manifest. */
export async function readDownloadManifest(destDir: string): Promise<DownloadManifest | undefined> {
  let text: string;
  try {
    text = await readFile(join(destDir, MANIFEST_FILE), 'utf8');
  } catch {
    return undefined;
  }
  try {
    const m = JSON.parse(text) as DownloadManifest;
    if (m.format !== 'r1-download' || m.formatVersion !== 1 || !Array.isArray(m.files) || typeof m.repo !== 'string' || typeof m.variant !== 'string') return undefined;
    for (const f of m.files) if (typeof f.path !== 'string' || typeof f.size !== 'number' || typeof f.sha256 !== 'string') return undefined;
    return m;
  } catch {
    return undefined;
  }
}

export interface DownloadedModelCheck {
  /** A manifest exists and every file it lists is present with its size (and hash, when deep). */
  complete: boolean;
  manifest?: DownloadManifest;
  /** What is wrong, one sentence each (empty when complete). */
  problems: string[];
}

/** Tells a complete download from a partial one. `deep` re-hashes every file (slow for GB files). */
export async function checkDownloadedModel(destDir: string, options: { deep?: boolean; signal?: AbortSignal } = {}): Promise<DownloadedModelCheck> {
  const manifest = await readDownloadManifest(destDir);
  if (!manifest) return { complete: false, problems: [`${join(destDir, MANIFEST_FILE)} is missing or unreadable: the download did not finish.`] };
  const problems: string[] = [];
  for (const f of manifest.files) {
    const p = localPath(destDir, f.path);
    const size = await sizeOf(p);
    if (size == null) problems.push(`${p} is missing.`);
    else if (size !== f.size) problems.push(`${p} is ${size} bytes, expected ${f.size}.`);
    else if (options.deep) {
      const { sha256 } = await hashFile(p, undefined, options.signal);
      if (sha256 !== f.sha256) problems.push(`${p} does not match its sha256.`);
    }
  }
  return { complete: problems.length === 0, manifest, problems };
}

/**
 * Downloads the files of one variant of a hub model repository into `destDir` and writes the
 * manifest. Safe to call again after a failure or a cancel: complete files are kept (verified),
 * partial files resume. Rejects with a DownloadError (see DownloadErrorCode).
 */
export async function downloadModel(options: ModelDownloadOptions): Promise<ModelDownloadResult> {
  const hubUrl = trimSlash(options.hubUrl ?? DEFAULT_HUB_URL);
  const repo = options.repo ?? DEFAULT_MODEL_REPO;
  const revision = options.revision ?? DEFAULT_REVISION;
  const { destDir, variant, signal } = options;
  const subfolder = options.subfolder?.replace(/^\/+|\/+$/g, '') || undefined;
  const where = `${repo}@${revision}${subfolder ? ` (${subfolder})` : ''}`;
  const remotePath = (path: string) => (subfolder ? `${subfolder}/${path}` : path);
  const net: NetworkOptions = {
    headers: authHeaders(options),
    signal,
    retry: options.retry,
    connectTimeoutMs: options.connectTimeoutMs,
    idleTimeoutMs: options.idleTimeoutMs,
    offlineHint: options.offlineHint ?? MODEL_OFFLINE_HINT,
    lookup: options.lookup,
  };

  const listed = await listHubFiles({ ...net, hubUrl, repo, revision, headers: options.headers, token: options.token });
  const entries = entriesUnder(listed, subfolder);
  const { files, absentOptional } = options.layout === 'genai' ? selectGenaiFiles(entries, where) : selectVariantFiles(entries, variant, where);
  const overallTotalBytes = files.reduce((n, f) => n + f.size, 0);

  // Which files are already complete? The previous manifest vouches for unchanged files of the
  // same size; other files of the right size are hashed.
  const previous = await readDownloadManifest(destDir);
  const vouched = new Map<string, ManifestFile>();
  if (previous && previous.repo === repo && previous.subfolder === subfolder) for (const f of previous.files) vouched.set(f.path, f);
  const done = new Map<string, ManifestFile>();
  for (const f of files) {
    if (signal?.aborted) throw new DownloadError('cancelled', 'The model download was cancelled.', 'Run it again to resume.', {});
    const p = localPath(destDir, f.path);
    const size = await sizeOf(p);
    if (size !== f.size) continue;
    const v = vouched.get(f.path);
    if (v && v.size === f.size && (f.lfs ? v.sha256 === f.lfs.oid.toLowerCase() : v.gitOid != null && v.gitOid === f.oid)) {
      done.set(f.path, v);
      continue;
    }
    const h = await hashFile(p, f.lfs ? undefined : f.size, signal);
    const ok = f.lfs ? h.sha256 === f.lfs.oid.toLowerCase() : f.oid == null || h.git === f.oid.toLowerCase();
    if (ok) done.set(f.path, { path: f.path, size: f.size, sha256: h.sha256, lfs: !!f.lfs, gitOid: f.lfs ? undefined : f.oid });
  }

  const todo = files.filter((f) => !done.has(f.path));
  if (todo.length > 0) {
    // The folder is about to change: it is not a complete download until the new manifest.
    await rm(join(destDir, MANIFEST_FILE), { force: true });
    if (options.checkDiskSpace !== false) await checkFreeSpace(destDir, todo);
  }

  let overallDone = [...done.values()].reduce((n, f) => n + f.size, 0);
  let commit: string | undefined = previous && previous.repo === repo && previous.revision === revision && todo.length === 0 ? previous.commit : undefined;
  const downloaded: string[] = [];
  for (let i = 0; i < todo.length; i++) {
    const f = todo[i];
    const dest = localPath(destDir, f.path);
    const before = overallDone;
    const r = await downloadFile({
      ...net,
      url: hubResolveUrl(hubUrl, repo, revision, remotePath(f.path)),
      dest,
      label: f.path,
      expected: f.lfs ? { size: f.size, sha256: f.lfs.oid } : { size: f.size, gitBlobSha1: f.oid },
      progressIntervalMs: options.progressIntervalMs,
      onProgress: options.onProgress
        ? (p) =>
            options.onProgress!({
              ...p,
              fileIndex: i,
              fileCount: todo.length,
              overallReceivedBytes: before + p.receivedBytes,
              overallTotalBytes,
            })
        : undefined,
    });
    overallDone += r.size;
    const repoCommit = r.responseHeaders[0]?.['x-repo-commit'];
    if (!commit && typeof repoCommit === 'string' && /^[0-9a-f]{40}$/i.test(repoCommit)) commit = repoCommit.toLowerCase();
    done.set(f.path, { path: f.path, size: r.size, sha256: r.sha256, lfs: !!f.lfs, gitOid: f.lfs ? undefined : f.oid });
    downloaded.push(f.path);
  }

  const manifest: DownloadManifest = {
    format: 'r1-download',
    formatVersion: 1,
    repo,
    revision,
    ...(commit ? { commit } : {}),
    hubUrl,
    variant,
    ...(subfolder ? { subfolder } : {}),
    ...(options.layout ? { layout: options.layout } : {}),
    ...(options.entryId ? { entryId: options.entryId } : {}),
    completedAt: new Date().toISOString(),
    totalBytes: overallTotalBytes,
    files: files.map((f) => done.get(f.path)!),
  };
  const manifestPath = join(destDir, MANIFEST_FILE);
  const tmp = `${manifestPath}.tmp`;
  try {
    await writeFile(tmp, `${JSON.stringify(manifest, null, 2)}\n`);
    await commitFile(tmp, manifestPath);
  } catch (e) {
    throw new DownloadError('io', `Could not write ${manifestPath}: ${e instanceof Error ? e.message : String(e)}.`, 'Check that the folder is writable, then retry.', {
      file: manifestPath,
      cause: e,
    });
  }
  return {
    destDir,
    manifestPath,
    manifest,
    downloaded,
    alreadyPresent: files.map((f) => f.path).filter((p) => !downloaded.includes(p)),
    absentOptional,
  };
}

async function checkFreeSpace(destDir: string, todo: HubTreeEntry[]): Promise<void> {
  let needed = 0;
  for (const f of todo) {
    const partial = (await sizeOf(`${localPath(destDir, f.path)}.partial`)) ?? 0;
    needed += Math.max(0, f.size - Math.min(partial, f.size));
  }
  let free: number;
  try {
    await mkdir(destDir, { recursive: true });
    const s = await statfs(destDir);
    free = Number(s.bavail) * Number(s.bsize);
  } catch (e) {
    if (errorCode(e) === 'ENOSYS') return;
    throw new DownloadError('io', `Could not create or inspect ${destDir}: ${e instanceof Error ? e.message : String(e)}.`, 'Check the folder and its permissions.', {
      file: destDir,
      cause: e,
    });
  }
  // Keep a small margin for the file system's own needs.
  const margin = 64 * 1024 * 1024;
  if (needed + margin > free) {
    const gb = (n: number) => `${(n / 1e9).toFixed(2)} GB`;
    throw new DownloadError('disk-full', `The model needs ${gb(needed)} more in ${destDir}, but only ${gb(free)} is free.`, 'Free some space, or choose a local model folder with R1: Select Model.', {
      file: destDir,
    });
  }
}
