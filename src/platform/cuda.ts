/**
 * Whether the CUDA 12 and cuDNN 9 runtime libraries that onnxruntime's CUDA provider loads can be
 * found, the way the dynamic loader would find them, and what to do when they are not.
 *
 * Which libraries: onnxruntime's CMake links libonnxruntime_providers_cuda.so against cudart,
 * cublas, cublasLt, curand and the driver (libcuda.so.1); cuDNN 9 and cuFFT are linked in older
 * builds and loaded at run time by newer ones (cudnn_stub.cc / cufft_stub.cc), and onnxruntime's
 * own Python preload list for Linux names libcublasLt.so.12, libcublas.so.12, libcurand.so.10,
 * libcufft.so.11, libcudart.so.12 and libcudnn.so.9. All of them are checked, so that a release of
 * either kind loads.
 *
 * Both the engine's provider planning and the CUDA provider installer (src/install) ask this; it
 * imports neither.
 */
import { existsSync, readdirSync } from 'node:fs';
import { delimiter, dirname, join } from 'node:path';
import { parseLdconfig, runLdconfig } from './ldconfig';

export interface CudaLibrarySpec {
  soname: string;
  component: string;
}

/** The runtime libraries the CUDA provider of onnxruntime 1.30 loads (see the file comment). */
export const CUDA_RUNTIME_LIBRARIES: readonly CudaLibrarySpec[] = [
  { soname: 'libcuda.so.1', component: 'NVIDIA driver' },
  { soname: 'libcudart.so.12', component: 'CUDA 12 runtime' },
  { soname: 'libcublas.so.12', component: 'CUDA 12 cuBLAS' },
  { soname: 'libcublasLt.so.12', component: 'CUDA 12 cuBLASLt' },
  { soname: 'libcurand.so.10', component: 'CUDA 12 cuRAND' },
  { soname: 'libcufft.so.11', component: 'CUDA 12 cuFFT' },
  { soname: 'libcudnn.so.9', component: 'cuDNN 9' },
];

/** Folders where CUDA installs usually put the libraries. */
export const DEFAULT_CUDA_SEARCH_PATHS: readonly string[] = [
  '/usr/local/cuda/lib64',
  '/usr/local/cuda/targets/x86_64-linux/lib',
  '/usr/lib/x86_64-linux-gnu',
  '/lib/x86_64-linux-gnu',
  '/usr/lib64',
  '/usr/lib/wsl/lib',
];

/** Folders the dynamic loader searches without configuration (glibc trusted dirs, multiarch). */
const LOADER_DEFAULT_DIRS = new Set(['/lib', '/usr/lib', '/lib64', '/usr/lib64', '/lib/x86_64-linux-gnu', '/usr/lib/x86_64-linux-gnu']);

export interface CheckCudaOptions {
  /** Folders to look in besides the loader's (default DEFAULT_CUDA_SEARCH_PATHS and /usr/local/cuda-12*). */
  searchPaths?: readonly string[];
  /** The output of `ldconfig -p` (default: run it). */
  ldconfigOutput?: string;
  /** Environment for LD_LIBRARY_PATH (default process.env). */
  env?: NodeJS.ProcessEnv;
  platform?: NodeJS.Platform;
  arch?: string;
}

export interface CudaLibraryStatus extends CudaLibrarySpec {
  /**
   * found: the loader will find it (ldconfig cache, LD_LIBRARY_PATH or a default folder);
   * not-on-loader-path: present in a folder the loader does not search; missing: nowhere.
   */
  status: 'found' | 'not-on-loader-path' | 'missing';
  path?: string;
  via?: 'ldconfig' | 'LD_LIBRARY_PATH' | 'loader-default' | 'search-path';
}

export interface CudaRuntimeCheck {
  /** Every library is found by the loader (and the platform is Linux x64). */
  ok: boolean;
  platformSupported: boolean;
  libraries: CudaLibraryStatus[];
  /** Sonames found nowhere. */
  missing: string[];
  /** Sonames present only in folders the loader does not search. */
  notOnLoaderPath: string[];
  /** One paragraph for the user: what is missing and what to do. */
  message: string;
  /** Why `ldconfig -p` could not be read, when it could not. */
  ldconfigError?: string;
}

function cudaVersionedDirs(): string[] {
  try {
    return readdirSync('/usr/local')
      .filter((n) => /^cuda-12(\.\d+)*$/.test(n))
      .sort()
      .reverse()
      .map((n) => join('/usr/local', n, 'lib64'));
  } catch {
    return [];
  }
}

/**
 * Finds the CUDA 12 and cuDNN 9 runtime libraries the way the dynamic loader would, and says
 * precisely which are missing or outside the loader's path.
 */
export async function checkCudaRuntime(options: CheckCudaOptions = {}): Promise<CudaRuntimeCheck> {
  const platform = options.platform ?? process.platform;
  const arch = options.arch ?? process.arch;
  const platformSupported = platform === 'linux' && arch === 'x64';
  if (!platformSupported) {
    return {
      ok: false,
      platformSupported,
      libraries: CUDA_RUNTIME_LIBRARIES.map((l) => ({ ...l, status: 'missing' as const })),
      missing: CUDA_RUNTIME_LIBRARIES.map((l) => l.soname),
      notOnLoaderPath: [],
      message: `CUDA support in onnxruntime-node is for Linux x64 only (this is ${platform} ${arch}).`,
    };
  }
  let ldconfigError: string | undefined;
  let ldOutput = options.ldconfigOutput;
  if (ldOutput == null) {
    try {
      ldOutput = await runLdconfig();
    } catch (e) {
      ldconfigError = e instanceof Error ? e.message : String(e);
      ldOutput = '';
    }
  }
  const cache = parseLdconfig(ldOutput, arch);
  const env = options.env ?? process.env;
  const ldPath = (env.LD_LIBRARY_PATH ?? '').split(delimiter).filter((d) => d.length > 0);
  const searchPaths = options.searchPaths ?? [...DEFAULT_CUDA_SEARCH_PATHS, ...cudaVersionedDirs()];

  const libraries: CudaLibraryStatus[] = CUDA_RUNTIME_LIBRARIES.map((lib) => {
    const cached = cache.get(lib.soname);
    if (cached) return { ...lib, status: 'found', path: cached, via: 'ldconfig' };
    for (const d of ldPath) {
      const p = join(d, lib.soname);
      if (existsSync(p)) return { ...lib, status: 'found', path: p, via: 'LD_LIBRARY_PATH' };
    }
    for (const d of searchPaths) {
      const p = join(d, lib.soname);
      if (existsSync(p)) {
        return LOADER_DEFAULT_DIRS.has(d.replace(/\/+$/, ''))
          ? { ...lib, status: 'found', path: p, via: 'loader-default' }
          : { ...lib, status: 'not-on-loader-path', path: p, via: 'search-path' };
      }
    }
    return { ...lib, status: 'missing' };
  });
  const missing = libraries.filter((l) => l.status === 'missing').map((l) => l.soname);
  const notOnLoaderPath = libraries.filter((l) => l.status === 'not-on-loader-path').map((l) => l.soname);
  const ok = missing.length === 0 && notOnLoaderPath.length === 0;
  return { ok, platformSupported, libraries, missing, notOnLoaderPath, message: describeCheck(libraries), ...(ldconfigError ? { ldconfigError } : {}) };
}

function describeCheck(libraries: CudaLibraryStatus[]): string {
  const missing = libraries.filter((l) => l.status === 'missing');
  const hidden = libraries.filter((l) => l.status === 'not-on-loader-path');
  if (missing.length === 0 && hidden.length === 0) return 'The CUDA 12 and cuDNN 9 runtime libraries were found.';
  const parts: string[] = [];
  if (missing.length > 0) {
    parts.push(`Missing: ${missing.map((l) => `${l.soname} (${l.component})`).join(', ')}.`);
    const needDriver = missing.some((l) => l.soname === 'libcuda.so.1');
    const needCudnn = missing.some((l) => l.soname.startsWith('libcudnn'));
    const needCuda = missing.some((l) => l.soname !== 'libcuda.so.1' && !l.soname.startsWith('libcudnn'));
    const todo: string[] = [];
    if (needDriver) todo.push('the NVIDIA driver');
    if (needCuda) todo.push('the CUDA 12 runtime libraries (NVIDIA\'s cuda-libraries-12-x packages or the CUDA 12 toolkit)');
    if (needCudnn) todo.push('cuDNN 9 for CUDA 12 (e.g. the libcudnn9-cuda-12 package)');
    parts.push(`Install ${todo.join(', ')}, then run R1: Install CUDA Support again.`);
  }
  if (hidden.length > 0) {
    const dirs = [...new Set(hidden.map((l) => dirname(l.path!)))];
    parts.push(
      `Found outside the loader's search path: ${hidden.map((l) => `${l.soname} in ${dirname(l.path!)}`).join(', ')}. ` +
        `Add ${dirs.join(' and ')} to LD_LIBRARY_PATH for VS Code, or list ${dirs.length > 1 ? 'them' : 'it'} in /etc/ld.so.conf.d/ and run sudo ldconfig.`,
    );
  }
  return parts.join(' ');
}
