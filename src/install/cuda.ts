/**
 * CUDA support for onnxruntime-node on Linux x64: installing ONNX Runtime's CUDA provider libraries
 * from the NuGet package Microsoft.ML.OnnxRuntime.Gpu.Linux (what onnxruntime-node's own
 * postinstall would fetch, which our .npmrc skips), after checking that the CUDA 12 / cuDNN 9
 * runtime libraries they load can be found (src/platform/cuda.ts).
 *
 * The package hash: the NuGet flat container serves only .nupkg/.nuspec/index.json, so the
 * expected sha512 comes from, in order: the `expectedSha512` option; a `.nupkg.sha512` sidecar next
 * to the package (what a mirror or our test feed serves; base64 as NuGet writes it, or hex); the
 * NuGet catalog entry's `packageHash` reached through the feed's v3 service index (nuget.org's by
 * default). Without any of them nothing is installed ('no-hash').
 */
import { randomBytes } from 'node:crypto';
import { createWriteStream, existsSync, readFileSync } from 'node:fs';
import { mkdir, open, rename, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import * as yauzl from 'yauzl';
import { checkCudaRuntime, type CheckCudaOptions, type CudaRuntimeCheck } from '../platform/cuda';
import { CUDA_OFFLINE_HINT, DownloadError, offlineError } from './errors';
import { downloadFile, fetchJson, normalizeSha512, statusError, type NetworkOptions } from './fetcher';
import { classifyNetworkError, errorCode, openRequest, readBody } from './http';
import type { DownloadProgress } from './progress';

export const DEFAULT_NUGET_FEED = 'https://api.nuget.org/v3-flatcontainer/';
export const NUGET_ORG_SERVICE_INDEX = 'https://api.nuget.org/v3/index.json';
export const CUDA_PACKAGE_ID = 'Microsoft.ML.OnnxRuntime.Gpu.Linux';
/** Paths inside the package → file names in the provider folder. */
export const CUDA_PROVIDER_ENTRIES = [
  'runtimes/linux-x64/native/libonnxruntime_providers_cuda.so',
  'runtimes/linux-x64/native/libonnxruntime_providers_shared.so',
] as const;
/** Written next to the provider libraries: which package they came from. */
export const CUDA_MARKER_FILE = 'r1-cuda-provider.json';

export interface OnnxruntimeNodeInfo {
  /** The onnxruntime-node package folder. */
  dir: string;
  version: string;
  /** Where its Linux x64 binding loads provider libraries from: bin/napi-v6/linux/x64. */
  providerDir: string;
}

/** Finds the installed onnxruntime-node package by walking up from `startDir` (default: this module's folder). */
export function findOnnxruntimeNode(startDir: string = __dirname): OnnxruntimeNodeInfo {
  let dir = startDir;
  for (;;) {
    const pkg = join(dir, 'node_modules', 'onnxruntime-node', 'package.json');
    if (existsSync(pkg)) {
      const version = (JSON.parse(readFileSync(pkg, 'utf8')) as { version?: unknown }).version;
      if (typeof version !== 'string') break;
      const root = dirname(pkg);
      return { dir: root, version, providerDir: join(root, 'bin', 'napi-v6', 'linux', 'x64') };
    }
    const parent = dirname(dir);
    if (parent === dir) break;
    dir = parent;
  }
  throw new DownloadError('io', `onnxruntime-node was not found above ${startDir}.`, 'Reinstall the extension.', { file: startDir });
}

/** `{feed}/{id}/{version}/{id}.{version}.nupkg`, lower-cased as the flat container wants. */
export function nugetPackageUrl(feedUrl: string, id: string, version: string): string {
  const feed = feedUrl.endsWith('/') ? feedUrl : `${feedUrl}/`;
  const lid = id.toLowerCase();
  const lv = version.toLowerCase();
  return `${feed}${lid}/${lv}/${lid}.${lv}.nupkg`;
}

export type CudaInstallPhase = 'checking' | 'resolving-hash' | 'downloading' | 'extracting' | 'installing' | 'done';

export interface CudaInstallProgress extends DownloadProgress {
  phase: CudaInstallPhase;
}

export interface InstallCudaOptions extends NetworkOptions {
  /** NuGet v3 flat container (PackageBaseAddress). Default https://api.nuget.org/v3-flatcontainer/. */
  feedUrl?: string;
  /** Package version. Default: the installed onnxruntime-node's version. */
  version?: string;
  /** Where the provider libraries go. Default: onnxruntime-node's bin/napi-v6/linux/x64. */
  targetDir?: string;
  /** Expected sha512 of the .nupkg, hex or base64. Checked before anything else. */
  expectedSha512?: string;
  /** NuGet v3 service index for the catalog hash. Default: nuget.org's when the feed is nuget.org's. */
  serviceIndexUrl?: string;
  /** Where the .nupkg is downloaded (and resumed). Default <tmpdir>/r1-coder-downloads. */
  downloadDir?: string;
  /** Keep the .nupkg after installing (default false). */
  keepPackage?: boolean;
  /** Options of the runtime check made before downloading; false skips it. */
  runtimeCheck?: CheckCudaOptions | false;
  platform?: NodeJS.Platform;
  arch?: string;
  onProgress?: (progress: CudaInstallProgress) => void;
  progressIntervalMs?: number;
}

export interface CudaInstallResult {
  packageId: string;
  version: string;
  packageUrl: string;
  /** Hex sha512 of the package, verified. */
  sha512: string;
  hashSource: 'option' | 'sidecar' | 'catalog';
  packageBytes: number;
  targetDir: string;
  /** Absolute paths of the installed provider libraries. */
  installed: string[];
  /** The runtime check made before downloading (absent when skipped). */
  runtime?: CudaRuntimeCheck;
}

export interface CudaProviderMarker {
  packageId: string;
  version: string;
  sha512: string;
  installedAt: string;
  files: string[];
}

/** Whether the provider libraries are in `targetDir`, and which package put them there. */
export async function getCudaProviderStatus(targetDir: string): Promise<{ installed: boolean; missing: string[]; marker?: CudaProviderMarker }> {
  const missing = CUDA_PROVIDER_ENTRIES.map((e) => basename(e)).filter((n) => !existsSync(join(targetDir, n)));
  let marker: CudaProviderMarker | undefined;
  try {
    marker = JSON.parse(readFileSync(join(targetDir, CUDA_MARKER_FILE), 'utf8')) as CudaProviderMarker;
  } catch {
    marker = undefined;
  }
  return { installed: missing.length === 0, missing, ...(marker ? { marker } : {}) };
}

async function fetchSidecarSha512(url: string, o: NetworkOptions): Promise<string | undefined> {
  let res;
  try {
    ({ res } = await openRequest(url, { headers: o.headers, signal: o.signal, connectTimeoutMs: o.connectTimeoutMs, lookup: o.lookup }));
  } catch (e) {
    if (o.signal?.aborted) throw new DownloadError('cancelled', 'Installing CUDA support was cancelled.', '', { url });
    if (classifyNetworkError(e) === 'offline') throw offlineError(url, o.offlineHint ?? CUDA_OFFLINE_HINT, e);
    return undefined;
  }
  const status = res.statusCode ?? 0;
  if (status !== 200) {
    res.resume();
    // 4xx: the feed has no sidecar (nuget.org's flat container has none). 5xx: the feed is failing.
    if (status >= 500) throw statusError(status, url, 'the package hash');
    return undefined;
  }
  try {
    const text = (await readBody(res, 4096)).toString('utf8').trim();
    return normalizeSha512(text);
  } catch {
    throw new DownloadError('invalid-response', `${url} does not hold a sha512.`, 'Check the NuGet feed URL setting.', { url });
  }
}

async function fetchCatalogSha512(serviceIndexUrl: string, id: string, version: string, o: NetworkOptions): Promise<string | undefined> {
  const { data: index } = await fetchJson<{ resources?: Array<{ '@id'?: string; '@type'?: string }> }>(serviceIndexUrl, { ...o, what: 'the NuGet service index' });
  const regs = (index.resources ?? []).filter((r) => typeof r['@id'] === 'string' && typeof r['@type'] === 'string' && r['@type'].startsWith('RegistrationsBaseUrl'));
  const reg = regs.find((r) => r['@type'] === 'RegistrationsBaseUrl/3.6.0') ?? regs[0];
  if (!reg) return undefined;
  const base = reg['@id']!.endsWith('/') ? reg['@id']! : `${reg['@id']}/`;
  const leafUrl = `${base}${id.toLowerCase()}/${version.toLowerCase()}.json`;
  const { data: leaf } = await fetchJson<{ catalogEntry?: string | { '@id'?: string; packageHash?: string; packageHashAlgorithm?: string } }>(leafUrl, {
    ...o,
    what: `the NuGet registration of ${id} ${version}`,
  });
  let entry = leaf.catalogEntry;
  if (typeof entry === 'object' && entry && !entry.packageHash && typeof entry['@id'] === 'string') entry = entry['@id'];
  if (typeof entry === 'string') {
    ({ data: entry } = await fetchJson<{ packageHash?: string; packageHashAlgorithm?: string }>(entry, { ...o, what: `the NuGet catalog entry of ${id} ${version}` }));
  }
  if (!entry || typeof entry !== 'object' || typeof entry.packageHash !== 'string') return undefined;
  if (entry.packageHashAlgorithm && entry.packageHashAlgorithm.toUpperCase() !== 'SHA512') return undefined;
  return normalizeSha512(entry.packageHash);
}

function isNugetOrg(feedUrl: string): boolean {
  try {
    return new URL(feedUrl).host === 'api.nuget.org';
  } catch {
    return false;
  }
}

/**
 * Downloads Microsoft.ML.OnnxRuntime.Gpu.Linux matching onnxruntime-node, verifies its sha512 and
 * installs libonnxruntime_providers_cuda.so and libonnxruntime_providers_shared.so into the
 * provider folder atomically (both or neither; files replaced are restored on failure).
 */
export async function installCudaProvider(options: InstallCudaOptions = {}): Promise<CudaInstallResult> {
  const platform = options.platform ?? process.platform;
  const arch = options.arch ?? process.arch;
  const signal = options.signal;
  const emit = (p: CudaInstallProgress) => {
    try {
      options.onProgress?.(p);
    } catch {
      // A failing listener must not break the install.
    }
  };
  const cancelled = () => new DownloadError('cancelled', 'Installing CUDA support was cancelled.', 'Nothing was changed; run it again to resume the download.', {});
  if (platform !== 'linux' || arch !== 'x64') {
    throw new DownloadError('unsupported-platform', `CUDA support in onnxruntime-node is for Linux x64 only (this is ${platform} ${arch}).`, 'Use the CPU, or WebGPU/DirectML/CoreML where available.', {});
  }
  let version = options.version;
  let targetDir = options.targetDir;
  if (!version || !targetDir) {
    const ort = findOnnxruntimeNode();
    version ??= ort.version;
    targetDir ??= ort.providerDir;
  }
  const net: NetworkOptions = {
    headers: options.headers,
    signal,
    retry: options.retry,
    connectTimeoutMs: options.connectTimeoutMs,
    idleTimeoutMs: options.idleTimeoutMs,
    offlineHint: options.offlineHint ?? CUDA_OFFLINE_HINT,
    lookup: options.lookup,
  };

  let runtime: CudaRuntimeCheck | undefined;
  if (options.runtimeCheck !== false) {
    emit({ phase: 'checking', file: 'CUDA runtime', receivedBytes: 0, totalBytes: undefined, bytesPerSecond: 0 });
    runtime = await checkCudaRuntime({ ...(options.runtimeCheck ?? {}), platform, arch });
    if (!runtime.ok) {
      throw new DownloadError('cuda-runtime-missing', `CUDA support cannot work here yet. ${runtime.message}`, '', {
        missing: [...runtime.missing, ...runtime.notOnLoaderPath],
      });
    }
  }
  if (signal?.aborted) throw cancelled();

  const feedUrl = options.feedUrl ?? DEFAULT_NUGET_FEED;
  const packageUrl = nugetPackageUrl(feedUrl, CUDA_PACKAGE_ID, version);

  emit({ phase: 'resolving-hash', file: basename(packageUrl), receivedBytes: 0, totalBytes: undefined, bytesPerSecond: 0 });
  let sha512: string | undefined;
  let hashSource: CudaInstallResult['hashSource'] | undefined;
  if (options.expectedSha512) {
    sha512 = normalizeSha512(options.expectedSha512);
    hashSource = 'option';
  }
  if (!sha512) {
    sha512 = await fetchSidecarSha512(`${packageUrl}.sha512`, net);
    if (sha512) hashSource = 'sidecar';
  }
  if (!sha512) {
    const serviceIndex = options.serviceIndexUrl ?? (isNugetOrg(feedUrl) ? NUGET_ORG_SERVICE_INDEX : undefined);
    if (serviceIndex) {
      sha512 = await fetchCatalogSha512(serviceIndex, CUDA_PACKAGE_ID, version, net);
      if (sha512) hashSource = 'catalog';
    }
  }
  if (!sha512 || !hashSource) {
    throw new DownloadError(
      'no-hash',
      `No sha512 is published for ${CUDA_PACKAGE_ID} ${version} on ${feedUrl}, so the package cannot be verified and was not installed.`,
      'Use a feed that serves a .nupkg.sha512 sidecar or a NuGet v3 service index, or pass the expected hash.',
      { url: packageUrl },
    );
  }

  const downloadDir = options.downloadDir ?? join(tmpdir(), 'r1-coder-downloads');
  const nupkg = join(downloadDir, `${CUDA_PACKAGE_ID.toLowerCase()}.${version.toLowerCase()}.nupkg`);
  const dl = await downloadFile({
    ...net,
    url: packageUrl,
    dest: nupkg,
    label: basename(nupkg),
    expected: { sha512 },
    progressIntervalMs: options.progressIntervalMs,
    onProgress: (p) => emit({ ...p, phase: 'downloading' }),
  }).catch((e: unknown) => {
    if (e instanceof DownloadError && e.code === 'not-found') {
      throw new DownloadError('not-found', `${CUDA_PACKAGE_ID} ${version} is not on the feed: ${packageUrl} answered 404.`, 'Check the NuGet feed URL setting, or update the extension.', {
        url: packageUrl,
        status: 404,
      });
    }
    throw e;
  });

  if (signal?.aborted) throw cancelled();
  emit({ phase: 'extracting', file: basename(nupkg), receivedBytes: dl.size, totalBytes: dl.size, bytesPerSecond: 0 });
  try {
    await mkdir(targetDir, { recursive: true });
  } catch (e) {
    throw new DownloadError('io', `Could not create ${targetDir}: ${e instanceof Error ? e.message : String(e)}.`, 'Check the folder permissions.', { file: targetDir, cause: e });
  }
  const token = randomBytes(6).toString('hex');
  const pairs = CUDA_PROVIDER_ENTRIES.map((entry) => {
    const name = basename(entry);
    return { entry, tmp: join(targetDir, `.${name}.r1-${token}.tmp`), final: join(targetDir, name) };
  });
  const markerTmp = join(targetDir, `.${CUDA_MARKER_FILE}.r1-${token}.tmp`);
  try {
    await extractEntries(nupkg, new Map(pairs.map((p) => [p.entry, p.tmp])), signal);
    if (signal?.aborted) throw cancelled();
    const marker: CudaProviderMarker = {
      packageId: CUDA_PACKAGE_ID,
      version,
      sha512,
      installedAt: new Date().toISOString(),
      files: pairs.map((p) => basename(p.final)),
    };
    await writeFile(markerTmp, `${JSON.stringify(marker, null, 2)}\n`);
    emit({ phase: 'installing', file: targetDir, receivedBytes: dl.size, totalBytes: dl.size, bytesPerSecond: 0 });
    await installFilesAtomically([...pairs.map((p) => ({ tmp: p.tmp, final: p.final })), { tmp: markerTmp, final: join(targetDir, CUDA_MARKER_FILE) }]);
  } catch (e) {
    await Promise.all([...pairs.map((p) => rm(p.tmp, { force: true })), rm(markerTmp, { force: true })]).catch(() => undefined);
    if (signal?.aborted) throw cancelled();
    if (e instanceof DownloadError) throw e;
    const code = errorCode(e);
    if (code === 'ENOSPC') throw new DownloadError('disk-full', `The disk is full while installing into ${targetDir}.`, 'Free some space and retry.', { file: targetDir, cause: e });
    throw new DownloadError('io', `Could not install the CUDA provider into ${targetDir}: ${e instanceof Error ? e.message : String(e)}.`, 'Check that the folder is writable, then retry.', {
      file: targetDir,
      cause: e,
    });
  }
  if (!options.keepPackage) await rm(nupkg, { force: true }).catch(() => undefined);
  emit({ phase: 'done', file: targetDir, receivedBytes: dl.size, totalBytes: dl.size, bytesPerSecond: 0 });
  return {
    packageId: CUDA_PACKAGE_ID,
    version,
    packageUrl,
    sha512,
    hashSource,
    packageBytes: dl.size,
    targetDir,
    installed: pairs.map((p) => p.final),
    ...(runtime ? { runtime } : {}),
  };
}

function openZip(path: string): Promise<yauzl.ZipFile> {
  return new Promise((resolve, reject) => {
    yauzl.open(path, { lazyEntries: true, autoClose: false, validateEntrySizes: true }, (err, zip) => (err ? reject(err) : resolve(zip)));
  });
}

/** Extracts the wanted zip entries (by exact path) to the given files, fsynced. */
async function extractEntries(zipPath: string, wanted: Map<string, string>, signal?: AbortSignal): Promise<void> {
  let zip: yauzl.ZipFile;
  try {
    zip = await openZip(zipPath);
  } catch (e) {
    throw new DownloadError('package-invalid', `${basename(zipPath)} is not a readable NuGet package (zip): ${e instanceof Error ? e.message : String(e)}.`, 'Retry; if it fails again, check the NuGet feed URL setting.', {
      file: zipPath,
      cause: e,
    });
  }
  const found = new Set<string>();
  try {
    await new Promise<void>((resolve, reject) => {
      zip.on('error', reject);
      zip.on('end', () => resolve());
      zip.on('entry', (entry: yauzl.Entry) => {
        if (signal?.aborted) {
          reject(new DownloadError('cancelled', 'Installing CUDA support was cancelled.', '', {}));
          return;
        }
        const target = wanted.get(entry.fileName);
        if (!target || found.has(entry.fileName)) {
          zip.readEntry();
          return;
        }
        zip.openReadStream(entry, (err, rs) => {
          if (err) {
            reject(err);
            return;
          }
          pipeline(rs, createWriteStream(target, { mode: 0o755 }))
            .then(() => fsyncFile(target))
            .then(() => {
              found.add(entry.fileName);
              zip.readEntry();
            }, reject);
        });
      });
      zip.readEntry();
    });
  } catch (e) {
    if (e instanceof DownloadError) throw e;
    throw new DownloadError('package-invalid', `${basename(zipPath)} could not be extracted: ${e instanceof Error ? e.message : String(e)}.`, 'Retry; if it fails again, check the NuGet feed URL setting.', {
      file: zipPath,
      cause: e,
    });
  } finally {
    zip.close();
  }
  const absent = [...wanted.keys()].filter((k) => !found.has(k));
  if (absent.length > 0) {
    throw new DownloadError('package-invalid', `${basename(zipPath)} does not contain ${absent.join(' and ')}.`, 'The package is not the CUDA provider package for Linux x64; check the NuGet feed URL and version.', {
      file: zipPath,
    });
  }
}

async function fsyncFile(path: string): Promise<void> {
  const fh = await open(path, 'r+');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

export interface AtomicInstallFs {
  rename: (from: string, to: string) => Promise<void>;
}

/**
 * Moves each `tmp` over its `final` (same folder), all or none: existing finals are set aside
 * first and restored if any step fails; on success they are deleted. Temp files are fsynced.
 */
export async function installFilesAtomically(pairs: Array<{ tmp: string; final: string }>, fs: AtomicInstallFs = { rename }): Promise<void> {
  const token = randomBytes(6).toString('hex');
  const backups: Array<{ bak: string; final: string }> = [];
  const placed: string[] = [];
  try {
    for (const p of pairs) await fsyncFile(p.tmp);
    for (const p of pairs) {
      if (await exists(p.final)) {
        const bak = `${p.final}.r1-backup-${token}`;
        await fs.rename(p.final, bak);
        backups.push({ bak, final: p.final });
      }
      await fs.rename(p.tmp, p.final);
      placed.push(p.final);
    }
  } catch (e) {
    for (const f of placed) await rm(f, { force: true }).catch(() => undefined);
    for (const b of backups.reverse()) await rename(b.bak, b.final).catch(() => undefined);
    for (const p of pairs) await rm(p.tmp, { force: true }).catch(() => undefined);
    throw e;
  }
  for (const dir of new Set(pairs.map((p) => dirname(p.final)))) await syncDir(dir);
  for (const b of backups) await rm(b.bak, { force: true }).catch(() => undefined);
}

async function exists(p: string): Promise<boolean> {
  try {
    await stat(p);
    return true;
  } catch {
    return false;
  }
}

async function syncDir(dir: string): Promise<void> {
  try {
    const fh = await open(dir, 'r');
    try {
      await fh.sync();
    } finally {
      await fh.close();
    }
  } catch {
    // Best effort.
  }
}
