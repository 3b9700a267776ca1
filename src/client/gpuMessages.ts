/**
 * The texts of GPU support in the editor: the fallback warning, the CUDA runtime problem and the
 * install progress. Pure functions (no `vscode` import), so they are unit-tested under Node.
 */
import type { CudaInstallProgress } from '../install/cuda';
import type { CudaRuntimeCheck } from '../platform/cuda';
import type { ProviderFallback } from '../protocol/server';
import { formatBytes, providerLabel } from './labels';

/** The README heading the "Troubleshooting" buttons open, and its GitHub-style anchor. */
export const GPU_TROUBLESHOOTING_HEADING = 'GPU troubleshooting';
export const GPU_TROUBLESHOOTING_ANCHOR = 'gpu-troubleshooting';

/** One sentence per provider: "CUDA could not be used: <reason>." */
export function describeFallbacks(fallbacks: readonly ProviderFallback[]): string {
  return fallbacks.map((f) => `${providerLabel(f.provider)} could not be used: ${f.reason.replace(/\.?\s*$/, '')}.`).join(' ');
}

/** The warning shown once per server session when auto mode fell back past GPU providers. */
export function fallbackWarning(provider: string, fallbacks: readonly ProviderFallback[]): string {
  const where = provider === 'cpu' ? 'the CPU, not the GPU' : providerLabel(provider);
  return `R1 is running on ${where}. ${describeFallbacks(fallbacks)}`;
}

/** What the CUDA runtime check found, for the warning before installing. */
export function runtimeProblem(check: Pick<CudaRuntimeCheck, 'platformSupported' | 'message'>): string {
  if (!check.platformSupported) return `R1: ${check.message}`;
  return `R1: CUDA support cannot work here yet. ${check.message}`;
}

/** The libraries the check looked for, one line each, for the log. */
export function runtimeReport(check: Pick<CudaRuntimeCheck, 'libraries' | 'ldconfigError'>): string[] {
  const lines = check.libraries.map((l) => {
    const where = l.path ? ` at ${l.path}${l.via ? ` (${l.via})` : ''}` : '';
    const state = l.status === 'found' ? 'found' : l.status === 'missing' ? 'MISSING' : 'NOT ON THE LOADER PATH';
    return `${l.soname} (${l.component}): ${state}${where}`;
  });
  if (check.ldconfigError) lines.push(`ldconfig -p could not be read: ${check.ldconfigError}`);
  return lines;
}

const PHASES: Record<CudaInstallProgress['phase'], string> = {
  checking: 'checking the CUDA runtime',
  'resolving-hash': 'looking up the package hash',
  downloading: 'downloading',
  extracting: 'verified; extracting the provider libraries',
  installing: 'installing',
  done: 'done',
};

/** The progress notification's message, and the fraction done (downloading only) when known. */
export function installProgressText(p: CudaInstallProgress): { message: string; fraction?: number } {
  if (p.phase !== 'downloading') return { message: PHASES[p.phase] };
  const total = p.totalBytes;
  const speed = p.bytesPerSecond > 0 ? ` at ${formatBytes(p.bytesPerSecond)}/s` : '';
  if (total && total > 0) {
    const fraction = Math.min(1, p.receivedBytes / total);
    return { message: `downloading ${p.file}: ${formatBytes(p.receivedBytes)} of ${formatBytes(total)}, ${Math.floor(fraction * 100)}%${speed}`, fraction };
  }
  return { message: `downloading ${p.file}: ${formatBytes(p.receivedBytes)}${speed}` };
}
