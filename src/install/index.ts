/**
 * The download machinery, editor-free (no `vscode`, no LSP): the resumable file fetcher, the
 * Hugging Face hub model download and the CUDA support installer. The extension host and the CLI
 * wire commands and progress UI on top of these functions.
 */
export { DownloadError, isDownloadError, MODEL_OFFLINE_HINT, CUDA_OFFLINE_HINT, type DownloadErrorCode } from './errors';
export type { DownloadProgress } from './progress';
export type { RetryOptions } from './retry';
export {
  downloadFile,
  fetchJson,
  type DownloadFileOptions,
  type DownloadFileResult,
  type ExpectedContent,
  type FetchJsonOptions,
  type NetworkOptions,
} from './fetcher';
export {
  BASE_FILES,
  DEFAULT_HUB_URL,
  DEFAULT_MODEL_REPO,
  DEFAULT_REVISION,
  MANIFEST_FILE,
  checkDownloadedModel,
  downloadModel,
  hubResolveUrl,
  hubTreeUrl,
  listHubFiles,
  listedVariants,
  readDownloadManifest,
  selectVariantFiles,
  variantOnnxPath,
  type DownloadManifest,
  type DownloadedModelCheck,
  type HubRepoOptions,
  type HubTreeEntry,
  type ManifestFile,
  type ModelDownloadOptions,
  type ModelDownloadProgress,
  type ModelDownloadResult,
} from './hub';
export {
  CUDA_MARKER_FILE,
  CUDA_PACKAGE_ID,
  CUDA_PROVIDER_ENTRIES,
  DEFAULT_NUGET_FEED,
  findOnnxruntimeNode,
  getCudaProviderStatus,
  installCudaProvider,
  nugetPackageUrl,
  type CudaInstallPhase,
  type CudaInstallProgress,
  type CudaInstallResult,
  type CudaProviderMarker,
  type InstallCudaOptions,
  type OnnxruntimeNodeInfo,
} from './cuda';
