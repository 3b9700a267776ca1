/**
 * Execution providers: which ones to try, in which order, and creating the session with the
 * first one that works. The order logic is a pure function of the platform and a few probes so
 * that it can be tested with simulated failures.
 *
 * Limits of "the provider really in use": onnxruntime-node does not report node placement. We
 * create each session with exactly one execution provider listed (ONNX Runtime still places
 * nodes the provider cannot run, such as shape computations, on its built-in CPU provider; that
 * is normal and not a fallback). A provider whose library or device cannot be loaded makes
 * session creation fail in 1.30.0 (verified for CUDA without its provider library and for WebGPU
 * without an adapter), so a session that was created with only provider X runs on X. What we
 * cannot see is a GPU provider that loads but leaves most heavy nodes to the CPU.
 */
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { checkCudaRuntime, type CheckCudaOptions } from '../platform/cuda';
import { hasVulkanLoader } from '../platform/vulkan';
import { ModelError } from './errors';
import type { ExecutionProvider, ProviderAttempt, ProviderPreference } from './types';

export interface PlatformProbe {
  platform: NodeJS.Platform;
  arch: string;
  /** Backends onnxruntime-node lists as supported in this build (listSupportedBackends()). */
  supportedBackends: readonly string[];
  /** Whether libonnxruntime_providers_cuda.so is next to the binding. */
  cudaLibraryPresent: boolean;
  /**
   * Whether the CUDA 12 and cuDNN 9 runtime libraries the CUDA provider loads can be found
   * (checkCudaRuntime). Made only when the provider library is present; undefined means not
   * checked, and then session creation is left to tell.
   */
  cudaRuntime?: { ok: boolean; message: string };
  /**
   * Linux: whether the Vulkan loader (libvulkan.so.1), which WebGPU (Dawn) needs there, is on the
   * loader's path. Undefined means not checked; then session creation is left to tell.
   */
  vulkanLoader?: boolean;
}

export interface ProviderPlan {
  /** Providers to try, in order. */
  order: ExecutionProvider[];
  /** Providers passed over without trying, with the reason. */
  skipped: ProviderAttempt[];
}

/** The providers the platform's `auto` order considers, before probes. */
export function platformAutoOrder(platform: NodeJS.Platform, arch: string): ExecutionProvider[] {
  if (platform === 'linux' && arch === 'x64') return ['cuda', 'webgpu', 'cpu'];
  if (platform === 'win32') return ['dml', 'webgpu', 'cpu'];
  if (platform === 'darwin' && arch === 'arm64') return ['coreml', 'cpu'];
  return ['cpu'];
}

export interface Unavailability {
  reason: string;
  skipped: NonNullable<ProviderAttempt['skipped']>;
}

/** Why a provider cannot be tried here (and what kind of reason it is), or undefined when it can. */
export function unavailability(p: ExecutionProvider, probe: PlatformProbe): Unavailability | undefined {
  if (p === 'cpu') return undefined;
  if (p === 'cuda') {
    if (probe.platform !== 'linux' || probe.arch !== 'x64') {
      return { reason: `CUDA is supported by onnxruntime-node only on Linux x64 (this is ${probe.platform} ${probe.arch})`, skipped: 'unsupported' };
    }
    if (!probe.cudaLibraryPresent) {
      return {
        reason:
          'CUDA support is not installed: the CUDA provider library (libonnxruntime_providers_cuda.so) is not next to the onnxruntime-node binding; run "R1: Install CUDA Support" (or r1 install-cuda)',
        skipped: 'not-installed',
      };
    }
    if (probe.cudaRuntime && !probe.cudaRuntime.ok) {
      return { reason: `CUDA support is installed but the CUDA 12 / cuDNN 9 runtime is incomplete. ${probe.cudaRuntime.message}`, skipped: 'broken' };
    }
    return undefined;
  }
  if (p === 'webgpu' && probe.platform === 'linux' && probe.vulkanLoader === false && probe.supportedBackends.includes(p)) {
    return {
      reason:
        "WebGPU needs a Vulkan driver on Linux and no Vulkan loader (libvulkan.so.1) is installed; install your GPU vendor's Vulkan driver (on Debian/Ubuntu: libvulkan1 plus the vendor's driver)",
      skipped: 'not-installed',
    };
  }
  if (!probe.supportedBackends.includes(p)) {
    const where = p === 'dml' ? 'Windows' : p === 'coreml' ? 'macOS' : 'Linux x64 and Windows';
    return { reason: `this onnxruntime-node build has no ${p} provider (it is available on ${where})`, skipped: 'unsupported' };
  }
  return undefined;
}

/** Why a provider cannot be tried here, or undefined when it can. */
export function unavailableReason(p: ExecutionProvider, probe: PlatformProbe): string | undefined {
  return unavailability(p, probe)?.reason;
}

/**
 * Which providers to try for a preference. `auto` follows the platform order and skips the ones
 * whose probe fails; an explicit provider is tried alone (no silent CPU fallback), and one that
 * cannot exist here is a ModelError.
 */
export function planProviders(pref: ProviderPreference | undefined, probe: PlatformProbe): ProviderPlan {
  if (!pref || pref === 'auto') {
    const order: ExecutionProvider[] = [];
    const skipped: ProviderAttempt[] = [];
    for (const p of platformAutoOrder(probe.platform, probe.arch)) {
      const u = unavailability(p, probe);
      if (u) skipped.push({ provider: p, ok: false, reason: u.reason, skipped: u.skipped });
      else order.push(p);
    }
    if (!order.includes('cpu')) order.push('cpu');
    return { order, skipped };
  }
  const reason = unavailableReason(pref, probe);
  if (reason) {
    throw new ModelError(
      'provider-unavailable',
      `execution provider "${pref}" cannot run here: ${reason}.`,
      'Set r1.executionProvider (or --provider) to "auto" or "cpu".',
    );
  }
  return { order: [pref], skipped: [] };
}

/** The real probe for this process. */
export function probePlatform(): PlatformProbe {
  let supportedBackends: string[] = ['cpu'];
  let bindingDir: string | undefined;
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const ort = require('onnxruntime-node') as { listSupportedBackends?: () => Array<{ name: string }> };
    supportedBackends = (ort.listSupportedBackends?.() ?? []).map((b) => b.name);
    const pkg = require.resolve('onnxruntime-node/package.json');
    bindingDir = join(dirname(pkg), 'bin', 'napi-v6', process.platform, process.arch);
  } catch {
    // keep the CPU-only defaults
  }
  return {
    platform: process.platform,
    arch: process.arch,
    supportedBackends,
    cudaLibraryPresent: bindingDir !== undefined && existsSync(join(bindingDir, 'libonnxruntime_providers_cuda.so')),
  };
}

/**
 * probePlatform() plus, when the CUDA provider library is installed, the CUDA 12 / cuDNN 9
 * runtime check, so that `auto` tries CUDA only when both are there (and says which library is
 * missing otherwise).
 */
export async function probeExecutionProviders(cudaCheck?: CheckCudaOptions): Promise<PlatformProbe> {
  const probe = probePlatform();
  if (probe.platform === 'linux' && probe.supportedBackends.includes('webgpu')) {
    // Without a Vulkan loader Dawn finds no adapter (and prints a warning on stderr): skip it.
    probe.vulkanLoader = await hasVulkanLoader(probe.arch);
  }
  if (probe.cudaLibraryPresent && probe.platform === 'linux' && probe.arch === 'x64') {
    try {
      const check = await checkCudaRuntime(cudaCheck);
      probe.cudaRuntime = { ok: check.ok, message: check.message };
    } catch {
      // Leave it unchecked: creating the CUDA session will say what is wrong.
    }
  }
  return probe;
}

/**
 * True for a fallback the user should hear about: a GPU provider that was tried and failed, or
 * one that is installed but broken. Providers that are merely not installed or not part of this
 * build are logged and listed by `r1 info`, but are not a warning.
 */
export function isNotableFallback(a: ProviderAttempt): boolean {
  return !a.ok && a.provider !== 'cpu' && (a.skipped === undefined || a.skipped === 'broken');
}

/** True when an ONNX Runtime error is about the model file rather than the provider. */
export function isModelFileError(message: string): boolean {
  return /Protobuf parsing failed|File doesn't exist|No such file|external data|External initializer|Deserialize tensor|ModelProto|Load model .* failed|INVALID_PROTOBUF|INVALID_GRAPH|is not a valid|model_path must not be empty/i.test(
    message,
  );
}

export interface SessionAttemptResult<S> {
  session: S;
  provider: ExecutionProvider;
  attempts: ProviderAttempt[];
}

/**
 * Tries the planned providers in turn with `create(provider)`. A model-file error stops at once
 * (it is not the provider's fault); a provider error is recorded and the next one is tried.
 */
export async function createWithFallback<S>(
  plan: ProviderPlan,
  create: (provider: ExecutionProvider) => Promise<S>,
  onAttempt?: (provider: ExecutionProvider) => void,
): Promise<SessionAttemptResult<S>> {
  const attempts: ProviderAttempt[] = [...plan.skipped];
  let lastError: unknown;
  for (const provider of plan.order) {
    onAttempt?.(provider);
    try {
      const session = await create(provider);
      attempts.push({ provider, ok: true });
      return { session, provider, attempts };
    } catch (e) {
      if (e instanceof ModelError) throw e;
      const message = firstLine(e instanceof Error ? e.message : String(e));
      if (isModelFileError(message)) throw e;
      attempts.push({ provider, ok: false, reason: message });
      lastError = e;
    }
  }
  const tried = attempts.map((a) => `${a.provider}: ${a.reason ?? 'ok'}`).join('; ');
  throw new ModelError(
    'provider-unavailable',
    `no execution provider could create the session (${tried}).`,
    plan.order.includes('cpu') ? 'Check the log for ONNX Runtime errors; the model file may be incompatible with this ONNX Runtime.' : 'Set r1.executionProvider (or --provider) to "auto" or "cpu".',
    undefined,
    { cause: lastError },
  );
}

/** The first meaningful line of an ONNX Runtime message, without source paths and assert text. */
export function firstLine(s: string): string {
  let line = (s.split('\n').find((l) => l.trim() !== '') ?? s).trim();
  const afterAssert = line.lastIndexOf(' was false. ');
  if (afterAssert >= 0) line = line.slice(afterAssert + ' was false. '.length);
  line = line.replace(/^\/\S+\.(cc|cpp|h):\d+\s+(\S+\s+)?/, '');
  return line.slice(0, 400);
}
