/**
 * `r1 install-cuda`: the same installer as R1: Install CUDA Support, on the command line. It
 * checks the CUDA 12 / cuDNN 9 runtime libraries first and says which are missing, then downloads
 * Microsoft.ML.OnnxRuntime.Gpu.Linux at the version of the installed onnxruntime-node, verifies
 * its sha512 and installs the provider libraries atomically next to the binding.
 * `--check` only reports. Exit codes: 0 done (or check passed), 1 failed (or check failed),
 * 2 usage error, 130 cancelled (Ctrl-C).
 */
import { type CudaInstallProgress, findOnnxruntimeNode, getCudaProviderStatus, installCudaProvider } from '../install/cuda';
import { isDownloadError } from '../install/errors';
import { type CheckCudaOptions, type CudaRuntimeCheck, checkCudaRuntime } from '../platform/cuda';
import type { InstallCudaArgs } from './args';

export interface InstallCudaIO {
  stdout: NodeJS.WritableStream & { isTTY?: boolean };
  stderr: NodeJS.WritableStream & { isTTY?: boolean };
  env: NodeJS.ProcessEnv;
  /**
   * Options of the CUDA runtime check (default: ldconfig, LD_LIBRARY_PATH from `env`, the usual
   * CUDA folders). A seam for tests, which must not depend on what this machine has installed.
   */
  cudaCheck?: CheckCudaOptions;
  /** Aborts the install (the CLI wires Ctrl-C to it). */
  signal?: AbortSignal;
}

function mb(n: number): string {
  return `${(n / 1e6).toFixed(1)} MB`;
}

function describeRuntime(check: CudaRuntimeCheck): string[] {
  return check.libraries.map((l) => {
    const state = l.status === 'found' ? 'found' : l.status === 'missing' ? 'MISSING' : 'not on the loader path';
    return `  ${l.soname.padEnd(20)} ${l.component.padEnd(18)} ${state}${l.path ? `  ${l.path}` : ''}`;
  });
}

export async function runInstallCuda(a: InstallCudaArgs, io: InstallCudaIO): Promise<number> {
  const platform = process.platform;
  const arch = process.arch;
  let version = a.version;
  let target = a.target;
  if (!version || !target) {
    const ort = findOnnxruntimeNode();
    version ??= ort.version;
    target ??= ort.providerDir;
  }
  const runtime = await checkCudaRuntime({ env: io.env, ...(io.cudaCheck ?? {}), platform, arch });
  const status = await getCudaProviderStatus(target);

  if (a.check) {
    if (a.json) {
      io.stdout.write(`${JSON.stringify({ ok: runtime.ok && status.installed, runtime, providerDir: target, providerInstalled: status.installed, marker: status.marker ?? null })}\n`);
    } else {
      io.stdout.write(`CUDA runtime: ${runtime.ok ? 'ok' : 'incomplete'}\n${describeRuntime(runtime).join('\n')}\n`);
      if (!runtime.ok) io.stdout.write(`${runtime.message}\n`);
      io.stdout.write(
        status.installed
          ? `CUDA provider: installed in ${target}${status.marker ? ` (${status.marker.packageId} ${status.marker.version})` : ''}\n`
          : `CUDA provider: not installed in ${target} (missing ${status.missing.join(', ')}); run r1 install-cuda\n`,
      );
    }
    return runtime.ok && status.installed ? 0 : 1;
  }

  if (!runtime.ok) {
    if (!a.json) io.stderr.write(`${describeRuntime(runtime).join('\n')}\n`);
    throw new CliInstallError(`CUDA support cannot work here yet. ${runtime.message}`, { runtime });
  }

  const tty = io.stderr.isTTY === true && !a.json;
  let lastPhase: CudaInstallProgress['phase'] | undefined;
  let lastPercent = -1;
  const onProgress = (p: CudaInstallProgress) => {
    if (a.json) return;
    if (p.phase === 'downloading') {
      const pct = p.totalBytes ? Math.floor((p.receivedBytes / p.totalBytes) * 100) : -1;
      const line = `downloading ${p.file}: ${mb(p.receivedBytes)}${p.totalBytes ? ` of ${mb(p.totalBytes)}, ${pct}%` : ''}${p.bytesPerSecond > 0 ? ` at ${mb(p.bytesPerSecond)}/s` : ''}`;
      if (tty) io.stderr.write(`\r\x1b[2K${line}`);
      else if (lastPhase !== 'downloading' || (pct >= 0 && Math.floor(pct / 10) > Math.floor(lastPercent / 10))) io.stderr.write(`${line}\n`);
      lastPercent = pct;
    } else if (p.phase !== lastPhase) {
      if (tty && lastPhase === 'downloading') io.stderr.write('\n');
      io.stderr.write(`${p.phase === 'done' ? 'done' : p.phase.replace('-', ' ')}${p.phase === 'checking' ? ' the CUDA runtime' : ''}\n`);
    }
    lastPhase = p.phase;
  };
  const result = await installCudaProvider({
    feedUrl: a.feed,
    version,
    targetDir: target,
    expectedSha512: a.sha512,
    downloadDir: a.downloadDir,
    runtimeCheck: false, // checked above
    signal: io.signal,
    onProgress,
    platform,
    arch,
  });
  if (a.json) {
    io.stdout.write(`${JSON.stringify({ ...result, runtime })}\n`);
  } else {
    io.stdout.write(
      `Installed ${result.installed.join(', ')}\nfrom ${result.packageId} ${result.version} (${mb(result.packageBytes)}, sha512 verified from the ${result.hashSource}).\n` +
        'The next model load tries CUDA first (restart the R1 server in VS Code: R1: Restart Server). Check with: r1 info --model DIR --provider cuda\n',
    );
  }
  return 0;
}

/** An install that cannot proceed for a reason the user must fix (exit 1). */
export class CliInstallError extends Error {
  override readonly name = 'CliInstallError';
  constructor(
    message: string,
    readonly details: { runtime?: CudaRuntimeCheck } = {},
  ) {
    super(message);
  }
}

export function isCancelled(e: unknown): boolean {
  return isDownloadError(e) && e.code === 'cancelled';
}
