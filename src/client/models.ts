/**
 * R1: Download Model and R1: Select Model. Downloads go into the extension's global storage
 * (never into the workspace); a folder is validated by the engine, in the server, before the
 * setting switches to it.
 */
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import * as vscode from 'vscode';
import { type CatalogueEntry, downloadState, entryDir, loadCatalogue } from '../install/catalogue';
import { DEFAULT_HUB_URL, DEFAULT_MODEL_REPO, downloadModel, readDownloadManifest } from '../install/hub';
import { isDownloadError } from '../install/errors';
import { gb, recommend } from '../install/recommend';
import { type MachineReport, type ModelVariant, MachineRequest, ValidateModelRequest } from '../protocol/server';
import { downloadPicks } from './modelPicks';
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

  /** Where downloads go: `<global storage>/models/<entry folder>`. */
  private modelsDir(): string {
    return join(this.context.globalStorageUri.fsPath, 'models');
  }

  /**
   * R1: Download Model: a quick pick of the catalogue, the entry this machine should use first,
   * each row with its size, memory need and score. Refuses (with the reason) an entry that cannot
   * be used here, warns before one that may not fit in memory, then downloads only its files.
   */
  async download(): Promise<void> {
    const modelsDir = this.modelsDir();
    const catalogue = loadCatalogue();
    let machine: MachineReport;
    try {
      machine = await vscode.window.withProgress({ location: vscode.ProgressLocation.Window, title: 'R1: checking this machine…' }, async () =>
        (await this.server.ensureStarted()).sendRequest(MachineRequest.type, { modelsDir }),
      );
    } catch (e) {
      void vscode.window.showErrorMessage(`R1: could not check this machine for a model: ${e instanceof Error ? e.message : String(e)}`);
      return;
    }
    const states = await Promise.all(catalogue.entries.map(async (e) => [e.id, await downloadState(e, modelsDir)] as const));
    const downloads = new Map(states);
    const downloadedIds = states.filter(([, d]) => d.status === 'downloaded').map(([id]) => id);
    const recommendation = recommend(catalogue, { ...machine, downloadedIds });
    const picks = downloadPicks(recommendation, downloads);
    const picked = await vscode.window.showQuickPick(picks, {
      title: 'R1: Download Model',
      placeHolder: `Which model? The first fits this machine best (${gb(machine.freeRamBytes)} memory and ${gb(machine.freeDiskBytes)} disk free).`,
      matchOnDescription: true,
      matchOnDetail: true,
    });
    if (!picked) return;
    const entry = catalogue.entries.find((e) => e.id === picked.entryId)!;
    if (picked.verdict.kind === 'refuse') {
      this.log.warn(`Download of ${entry.id} refused: ${picked.verdict.reason}`);
      void vscode.window.showErrorMessage(`R1: ${entry.title} cannot be used here: ${picked.verdict.reason}`);
      return;
    }
    if (picked.verdict.kind === 'warn') {
      const go = await vscode.window.showWarningMessage(`R1: ${entry.title} may not fit in memory. ${picked.verdict.reason}`, { modal: true }, 'Download Anyway');
      if (go !== 'Download Anyway') return;
    }
    await this.downloadEntry(entry, modelsDir);
  }

  private async downloadEntry(entry: CatalogueEntry, modelsDir: string): Promise<void> {
    const config = vscode.workspace.getConfiguration('r1');
    const hubUrl = config.get<string>('model.hubUrl', DEFAULT_HUB_URL) || DEFAULT_HUB_URL;
    const destDir = entryDir(modelsDir, entry);
    // onnx-community folders hold several variants: fetch the entry's. A genai folder is one build.
    const variant: ModelVariant = entry.variant ?? (entry.gpu ? 'q4f16' : 'q4');
    this.log.info(`Downloading ${entry.id} (${entry.repository}${entry.subfolder ? `/${entry.subfolder}` : ''}) from ${hubUrl} into ${destDir}.`);
    try {
      const result = await vscode.window.withProgress(
        { location: vscode.ProgressLocation.Notification, title: `R1: downloading ${entry.title}`, cancellable: true },
        async (progress, token) => {
          const controller = new AbortController();
          token.onCancellationRequested(() => controller.abort());
          let reported = 0;
          return downloadModel({
            hubUrl,
            repo: entry.repository,
            revision: entry.revision,
            subfolder: entry.subfolder,
            layout: entry.layout,
            entryId: entry.id,
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
      this.log.info(`Download of ${entry.id} complete: ${result.downloaded.length} files fetched, ${result.alreadyPresent.length} already present.`);
      await this.use(destDir, entry.title);
    } catch (e) {
      if (isDownloadError(e) && e.code === 'cancelled') {
        void vscode.window.showInformationMessage('R1: download cancelled. What was fetched is kept, and the next download resumes it.');
        return;
      }
      const message = e instanceof Error ? e.message : String(e);
      this.log.error(`Model download failed: ${message}`);
      const pick = await vscode.window.showErrorMessage(`R1: the download of ${entry.title} failed: ${message}`, 'Retry', 'Choose Folder', 'Show Log');
      if (pick === 'Retry') await this.downloadEntry(entry, modelsDir);
      else if (pick === 'Choose Folder') await this.select();
      else if (pick === 'Show Log') this.log.show();
    }
  }

  /** Switches r1.model.path to a downloaded folder (the default folder is the empty setting). */
  private async use(dir: string, title: string): Promise<void> {
    const target = dir === defaultModelDir(this.context) ? '' : dir;
    const current = () => vscode.workspace.getConfiguration('r1').get<string>('model.path', '');
    if (current() !== target) {
      // In a remote window the written value reaches this extension host a moment later: wait
      // for it, so a request sent right after the message below already uses the new model.
      const seen = new Promise<void>((resolve) => {
        const sub = vscode.workspace.onDidChangeConfiguration(() => {
          if (current() === target) {
            sub.dispose();
            resolve();
          }
        });
        setTimeout(() => {
          sub.dispose();
          resolve();
        }, 10_000);
      });
      await vscode.workspace.getConfiguration('r1').update('model.path', target, vscode.ConfigurationTarget.Global);
      if (current() !== target) await seen;
    }
    void vscode.window.showInformationMessage(`R1: ${title} is downloaded and in use. Try R1: Ask.`);
  }

  /** Picks a downloaded model or a folder, validates it with the engine, then switches to it. */
  async select(): Promise<void> {
    const items: (vscode.QuickPickItem & { dir?: string })[] = [];
    const titles = new Map(loadCatalogue().entries.map((e) => [e.id, e.title]));
    const current = vscode.workspace.getConfiguration('r1').get<string>('model.path', '') || defaultModelDir(this.context);
    for (const dir of await this.downloadedModels()) {
      const manifest = await readDownloadManifest(dir).catch(() => undefined);
      const title = (manifest?.entryId && titles.get(manifest.entryId)) || manifest?.repo || dir;
      const inUse = dir === current;
      items.push({
        label: `${inUse ? '$(check)' : '$(database)'} ${title}`,
        description: [manifest ? `${manifest.variant}, ${formatBytes(manifest.totalBytes)}` : undefined, inUse ? 'in use' : undefined].filter(Boolean).join(' · '),
        detail: dir,
        dir,
      });
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
