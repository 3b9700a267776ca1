/**
 * R1: Download Model and R1: Select Model. Downloads go into the extension's global storage
 * (never into the workspace); a folder is validated by the engine, in the server, before the
 * setting switches to it.
 */
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import * as vscode from 'vscode';
import { DEFAULT_HUB_URL, DEFAULT_MODEL_REPO, downloadModel, readDownloadManifest } from '../install/hub';
import { isDownloadError } from '../install/errors';
import { type ModelVariant, ValidateModelRequest } from '../protocol/server';
import type { R1Server } from './server';
import { formatBytes, providerLabel } from './labels';

/** Where R1: Download Model puts the default model. */
export function defaultModelDir(context: vscode.ExtensionContext): string {
  return join(context.globalStorageUri.fsPath, 'models', DEFAULT_MODEL_REPO.split('/')[1]);
}

export class ModelCommands {
  constructor(
    private readonly context: vscode.ExtensionContext,
    private readonly server: R1Server,
    private readonly log: vscode.LogOutputChannel,
  ) {}

  async download(): Promise<void> {
    const config = vscode.workspace.getConfiguration('r1');
    const configured = config.get<string>('model.variant', 'auto');
    // The CPU variant unless the user chose one: q4 runs everywhere, q4f16 wants a GPU.
    const variant = (configured === 'auto' ? 'q4' : configured) as ModelVariant;
    const hubUrl = config.get<string>('model.hubUrl', DEFAULT_HUB_URL) || DEFAULT_HUB_URL;
    const destDir = defaultModelDir(this.context);
    this.log.info(`Downloading ${DEFAULT_MODEL_REPO} (${variant}) from ${hubUrl} into ${destDir}.`);
    try {
      const result = await vscode.window.withProgress(
        { location: vscode.ProgressLocation.Notification, title: `R1: downloading DeepSeek-R1-Distill-Qwen-1.5B (${variant})`, cancellable: true },
        async (progress, token) => {
          const controller = new AbortController();
          token.onCancellationRequested(() => controller.abort());
          let reported = 0;
          return downloadModel({
            hubUrl,
            variant,
            destDir,
            signal: controller.signal,
            onProgress: (p) => {
              const fraction = p.overallTotalBytes > 0 ? p.overallReceivedBytes / p.overallTotalBytes : 0;
              const increment = Math.max(0, fraction * 100 - reported);
              reported += increment;
              const speed = p.bytesPerSecond > 0 ? ` at ${formatBytes(p.bytesPerSecond)}/s` : '';
              progress.report({
                increment,
                message: `${p.file} (${p.fileIndex + 1}/${p.fileCount}): ${formatBytes(p.overallReceivedBytes)} of ${formatBytes(p.overallTotalBytes)}, ${Math.floor(fraction * 100)}%${speed}`,
              });
            },
          });
        },
      );
      this.log.info(`Download complete: ${result.downloaded.length} files fetched, ${result.alreadyPresent.length} already present.`);
      const current = config.get<string>('model.path', '');
      if (current && current !== destDir) {
        const pick = await vscode.window.showInformationMessage(`R1: the model is downloaded, but r1.model.path points at ${current}. Use the downloaded model?`, 'Use It');
        if (pick) await config.update('model.path', '', vscode.ConfigurationTarget.Global);
      } else {
        void vscode.window.showInformationMessage('R1: the model is downloaded and ready. Try R1: Ask.');
      }
    } catch (e) {
      if (isDownloadError(e) && e.code === 'cancelled') {
        void vscode.window.showInformationMessage('R1: download cancelled. What was fetched is kept, and the next download resumes it.');
        return;
      }
      const message = e instanceof Error ? e.message : String(e);
      this.log.error(`Model download failed: ${message}`);
      const pick = await vscode.window.showErrorMessage(`R1: the download failed: ${message}`, 'Retry', 'Choose Folder', 'Show Log');
      if (pick === 'Retry') await this.download();
      else if (pick === 'Choose Folder') await this.select();
      else if (pick === 'Show Log') this.log.show();
    }
  }

  /** Picks a downloaded model or a folder, validates it with the engine, then switches to it. */
  async select(): Promise<void> {
    const items: (vscode.QuickPickItem & { dir?: string })[] = [];
    for (const dir of await this.downloadedModels()) {
      const manifest = await readDownloadManifest(dir).catch(() => undefined);
      items.push({ label: `$(database) ${manifest?.repo ?? dir}`, description: manifest ? `${manifest.variant}, ${formatBytes(manifest.totalBytes)}` : undefined, detail: dir, dir });
    }
    items.push({ label: '$(folder-opened) Choose Folder…', description: 'a folder with config.json, tokenizer.json and onnx/' });
    const picked = items.length === 1 ? items[0] : await vscode.window.showQuickPick(items, { title: 'R1: Select Model', placeHolder: 'Which model should R1 use?' });
    if (!picked) return;
    let dir = picked.dir;
    if (!dir) {
      const uris = await vscode.window.showOpenDialog({ canSelectFolders: true, canSelectFiles: false, canSelectMany: false, title: 'R1: choose a model folder', openLabel: 'Use This Model' });
      if (!uris?.[0]) return;
      dir = uris[0].fsPath;
    }
    const chosen = dir;
    const result = await vscode.window.withProgress(
      { location: vscode.ProgressLocation.Notification, title: 'R1: checking the model…' },
      async () => (await this.server.ensureStarted()).sendRequest(ValidateModelRequest.type, { modelDir: chosen }),
    );
    if (!result.ok) {
      this.log.error(`The model in ${chosen} was not selected: ${result.message}`);
      const pick = await vscode.window.showErrorMessage(`R1: this folder cannot be used: ${result.message}`, 'Show Log');
      if (pick) this.log.show();
      return;
    }
    const target = chosen === defaultModelDir(this.context) ? '' : chosen;
    await vscode.workspace.getConfiguration('r1').update('model.path', target, vscode.ConfigurationTarget.Global);
    const { info } = result;
    this.log.info(`Selected the model ${chosen} (${info.variant} on ${info.provider}).`);
    void vscode.window.showInformationMessage(`R1: using ${chosen} (${info.variant}, ${providerLabel(info.provider)}).`);
  }

  private async downloadedModels(): Promise<string[]> {
    const root = join(this.context.globalStorageUri.fsPath, 'models');
    let names: string[];
    try {
      names = readdirSync(root);
    } catch {
      return [];
    }
    const dirs = names.map((n) => join(root, n)).filter((d) => statSync(d).isDirectory());
    const complete = await Promise.all(dirs.map(async (d) => ((await readDownloadManifest(d).catch(() => undefined)) ? d : undefined)));
    return complete.filter((d): d is string => d !== undefined);
  }
}
