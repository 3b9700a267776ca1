/**
 * GPU support in the editor: the warning when auto mode fell back past a GPU provider (sent by
 * the server once per server session, never a silent fallback), the "Troubleshooting" link to the
 * README's GPU section, and R1: Install CUDA Support, which checks the CUDA 12 / cuDNN 9 runtime,
 * then downloads Microsoft.ML.OnnxRuntime.Gpu.Linux (hash-verified) and installs its provider
 * libraries atomically into this extension's own onnxruntime-node (bin/napi-v6/linux/x64).
 */
import * as vscode from 'vscode';
import { DEFAULT_NUGET_FEED, findOnnxruntimeNode, getCudaProviderStatus, installCudaProvider } from '../install/cuda';
import { isDownloadError } from '../install/errors';
import { checkCudaRuntime } from '../platform/cuda';
import type { ProviderFallbackNotification } from '../protocol/server';
import {
  GPU_TROUBLESHOOTING_HEADING,
  fallbackWarning,
  installProgressText,
  runtimeProblem,
  runtimeReport,
} from './gpuMessages';
import { formatBytes, providerLabel } from './labels';

const TROUBLESHOOTING = 'Troubleshooting';
/** globalState key: the provider fallbacks the user has been shown. */
const FALLBACKS_SHOWN_KEY = 'r1.gpu.fallbacksShown';

export class GpuSupport {
  private installing = false;

  constructor(
    private readonly context: vscode.ExtensionContext,
    private readonly log: vscode.LogOutputChannel,
  ) {}

  /**
   * r1/providerFallback: the server sends each provider once per server session; the user sees
   * each (provider, reason) once on this machine, then it goes to the log only — a CPU-only
   * laptop is not warned about its missing GPU at every start.
   */
  async showFallback(p: ProviderFallbackNotification.Params): Promise<void> {
    const text = fallbackWarning(p.provider, p.fallbacks);
    this.log.warn(text);
    const seen = new Set(this.context.globalState.get<string[]>(FALLBACKS_SHOWN_KEY, []));
    const keys = p.fallbacks.map((f) => `${f.provider}\u0000${f.reason}`);
    if (keys.every((k) => seen.has(k))) return;
    for (const k of keys) seen.add(k);
    await this.context.globalState.update(FALLBACKS_SHOWN_KEY, [...seen].slice(-50));
    const pick = await vscode.window.showWarningMessage(text, TROUBLESHOOTING, 'Show Log');
    if (pick === TROUBLESHOOTING) await this.openTroubleshooting();
    else if (pick === 'Show Log') this.log.show();
  }

  /** Opens the README shipped with the extension at its "GPU troubleshooting" section. */
  async openTroubleshooting(): Promise<void> {
    const uri = vscode.Uri.joinPath(this.context.extensionUri, 'README.md');
    try {
      const doc = await vscode.workspace.openTextDocument(uri);
      const line = doc
        .getText()
        .split(/\r?\n/)
        .findIndex((l) => /^#+\s/.test(l) && l.replace(/^#+\s*/, '').trim() === GPU_TROUBLESHOOTING_HEADING);
      const pos = new vscode.Position(Math.max(0, line), 0);
      const editor = await vscode.window.showTextDocument(doc, { preview: true, selection: new vscode.Range(pos, pos) });
      editor.revealRange(new vscode.Range(pos, pos), vscode.TextEditorRevealType.AtTop);
    } catch (e) {
      this.log.error(`Could not open ${uri.fsPath}: ${e instanceof Error ? e.message : String(e)}`);
    }
  }

  /** R1: Install CUDA Support. */
  async installCuda(): Promise<void> {
    if (process.platform !== 'linux' || process.arch !== 'x64') {
      const other = process.platform === 'win32' ? 'On Windows R1 uses DirectML (and WebGPU) without any install.' : process.platform === 'darwin' ? 'On macOS R1 uses CoreML without any install.' : 'Here R1 runs on the CPU.';
      void vscode.window.showInformationMessage(`R1: CUDA support is for Linux x64 only (this is ${process.platform} ${process.arch}). ${other}`);
      return;
    }
    if (this.installing) {
      void vscode.window.showInformationMessage('R1: CUDA support is already being installed.');
      return;
    }
    this.installing = true;
    try {
      await this.install();
    } finally {
      this.installing = false;
    }
  }

  private async install(): Promise<void> {
    let ort;
    try {
      ort = findOnnxruntimeNode(this.context.extensionPath);
    } catch (e) {
      void vscode.window.showErrorMessage(`R1: ${e instanceof Error ? e.message : String(e)}`);
      return;
    }
    const status = await getCudaProviderStatus(ort.providerDir);
    if (status.installed && status.marker?.version === ort.version) {
      const pick = await vscode.window.showInformationMessage(
        `R1: CUDA support ${ort.version} is already installed in ${ort.providerDir}.`,
        'Reinstall',
        'Restart Server',
      );
      if (pick === 'Restart Server') return this.restartServer();
      if (pick !== 'Reinstall') return;
    }

    const runtime = await checkCudaRuntime();
    this.log.info(`CUDA runtime check: ${runtime.message}`);
    for (const line of runtimeReport(runtime)) this.log.info(`  ${line}`);
    if (!runtime.ok) {
      const pick = await vscode.window.showWarningMessage(runtimeProblem(runtime), TROUBLESHOOTING, 'Show Log');
      if (pick === TROUBLESHOOTING) await this.openTroubleshooting();
      else if (pick === 'Show Log') this.log.show();
      return;
    }

    const feedUrl = vscode.workspace.getConfiguration('r1').get<string>('cuda.feedUrl', DEFAULT_NUGET_FEED) || DEFAULT_NUGET_FEED;
    this.log.info(`Installing CUDA support ${ort.version} from ${feedUrl} into ${ort.providerDir}.`);
    try {
      const result = await vscode.window.withProgress(
        { location: vscode.ProgressLocation.Notification, title: 'R1: installing CUDA support', cancellable: true },
        async (progress, token) => {
          const controller = new AbortController();
          token.onCancellationRequested(() => controller.abort());
          let reported = 0;
          return installCudaProvider({
            feedUrl,
            version: ort.version,
            targetDir: ort.providerDir,
            // Checked just above, with the result shown to the user.
            runtimeCheck: false,
            signal: controller.signal,
            onProgress: (p) => {
              const { message, fraction } = installProgressText(p);
              const percent = fraction !== undefined ? fraction * 100 : p.phase === 'done' ? 100 : reported;
              const increment = Math.max(0, percent - reported);
              reported += increment;
              progress.report({ message, increment });
            },
          });
        },
      );
      this.log.info(`CUDA support installed: ${result.installed.join(', ')} (${formatBytes(result.packageBytes)} package, sha512 from the ${result.hashSource} verified).`);
      const pick = await vscode.window.showInformationMessage(
        `R1: CUDA support ${result.version} is installed. Restart the server so that it runs on ${providerLabel('cuda')}.`,
        'Restart Server',
      );
      if (pick) await this.restartServer();
    } catch (e) {
      if (isDownloadError(e) && e.code === 'cancelled') {
        this.log.info('Installing CUDA support was cancelled.');
        void vscode.window.showInformationMessage('R1: installing CUDA support was cancelled. Nothing was changed.');
        return;
      }
      const message = e instanceof Error ? e.message : String(e);
      this.log.error(`Installing CUDA support failed: ${message}`);
      const pick = await vscode.window.showErrorMessage(`R1: installing CUDA support failed: ${message}`, 'Retry', TROUBLESHOOTING, 'Show Log');
      if (pick === 'Retry') await this.install();
      else if (pick === TROUBLESHOOTING) await this.openTroubleshooting();
      else if (pick === 'Show Log') this.log.show();
    }
  }

  private async restartServer(): Promise<void> {
    await vscode.commands.executeCommand('r1.restartServer');
  }
}
