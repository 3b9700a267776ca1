/**
 * Typed errors of the download machinery (model download from the Hugging Face hub, CUDA support
 * installer). Each one says what is wrong, names the URL or file involved and what to do, so that
 * the extension host and the CLI can show `message` as it is. None of them is fatal to the process.
 */

export type DownloadErrorCode =
  | 'offline' // DNS failure, connection refused, network unreachable: nothing answered
  | 'not-found' // HTTP 404 (or 410)
  | 'unauthorized' // HTTP 401 / 403: a gated or private repository, or a bad token
  | 'http' // another HTTP status, or 5xx/429 that kept failing after the retries
  | 'network' // connection reset, timeouts, truncated bodies that kept failing after the retries
  | 'size-mismatch' // the bytes received do not have the size the listing promised
  | 'checksum' // the bytes received do not have the hash the listing / feed promised
  | 'cancelled' // the AbortSignal fired
  | 'disk-full' // ENOSPC, or not enough free space for the files to fetch
  | 'io' // a local file-system error (permissions, rename failed, ...)
  | 'invalid-response' // a malformed listing, JSON or Content-Range
  | 'variant-unavailable' // the repository has no onnx/model_<variant>.onnx, or lacks a required file
  | 'unsupported-platform' // CUDA support requested outside Linux x64
  | 'cuda-runtime-missing' // CUDA 12 / cuDNN 9 runtime libraries cannot be found
  | 'package-invalid' // the NuGet package is not a zip or lacks the provider libraries
  | 'no-hash'; // no expected hash is available for the NuGet package: refusing to install it

export class DownloadError extends Error {
  override readonly name = 'DownloadError';
  constructor(
    readonly code: DownloadErrorCode,
    /** What is wrong, in one sentence. */
    readonly problem: string,
    /** What the user can do about it. */
    readonly hint: string,
    readonly details: {
      /** The URL involved (the one requested, before redirects). */
      url?: string;
      /** The local file involved. */
      file?: string;
      /** The HTTP status, when there was one. */
      status?: number;
      /** Missing libraries (code 'cuda-runtime-missing'). */
      missing?: string[];
      cause?: unknown;
    } = {},
  ) {
    super(`${problem}${hint ? ` ${hint}` : ''}`, details.cause === undefined ? undefined : { cause: details.cause });
  }

  get url(): string | undefined {
    return this.details.url;
  }
  get file(): string | undefined {
    return this.details.file;
  }
  get status(): number | undefined {
    return this.details.status;
  }
}

export function isDownloadError(e: unknown): e is DownloadError {
  return e instanceof DownloadError;
}

/** The default hint of the offline error for the model download. */
export const MODEL_OFFLINE_HINT = 'Connect and retry, or choose a local model folder with R1: Select Model.';
/** The default hint of the offline error for the CUDA support installer. */
export const CUDA_OFFLINE_HINT = 'Connect and retry R1: Install CUDA Support.';

export function offlineError(url: string, hint: string, cause?: unknown): DownloadError {
  const host = safeHost(url);
  return new DownloadError('offline', `You appear to be offline: could not reach ${host}.`, hint, { url, cause });
}

export function cancelledError(what: string, detail?: string): DownloadError {
  return new DownloadError('cancelled', `${what} was cancelled.`, detail ?? '', {});
}

export function safeHost(url: string): string {
  try {
    return new URL(url).host;
  } catch {
    return url;
  }
}
