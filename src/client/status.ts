/** The status bar item that always says what the R1 server is doing and where the model runs. */
import * as vscode from 'vscode';
import type { RemoteServerInfo } from '../protocol/server';
import { providerLabel, serverKindLabel } from './labels';
import type { ClientState } from './server';

/** "gpu-box:8000 · DeepSeek-R1-Distill-Qwen-32B": the host and the model's last path part. */
function serverLabel(s: RemoteServerInfo): string {
  return `${s.host} · ${s.model.split('/').pop() || s.model}`;
}

export function describeState(state: ClientState): { text: string; tooltip: string; error: boolean } {
  switch (state.kind) {
    case 'stopped':
      return { text: '$(circle-outline) R1', tooltip: 'R1 Coder: the server starts on first use.', error: false };
    case 'starting':
      return { text: '$(loading~spin) R1: starting', tooltip: 'R1 Coder: starting the language server…', error: false };
    case 'no-model':
      return { text: '$(warning) R1: no model', tooltip: `R1 Coder: ${state.message} Run "R1: Download Model" or "R1: Select Model".`, error: false };
    case 'unloaded':
      return { text: '$(circle-large-outline) R1', tooltip: `R1 Coder: ${state.message}`, error: false };
    case 'loading':
      return {
        text: `$(loading~spin) R1: loading${state.fraction !== undefined ? ` ${Math.round(state.fraction * 100)}%` : ''}`,
        tooltip: `R1 Coder: ${state.message}`,
        error: false,
      };
    case 'ready':
      if (state.server) {
        return {
          text: `$(cloud) R1: ${serverLabel(state.server)}`,
          tooltip: `R1 Coder: ${state.server.model} on ${serverKindLabel(state.server.kind)} at ${state.server.url}${state.server.api === 'ollama' ? " (Ollama's /api/chat)" : ''}. No model runs on this machine (r1.backend is "server").`,
          error: false,
        };
      }
      return {
        text: `$(check) R1: ${providerLabel(state.provider)}`,
        tooltip:
          `R1 Coder: ${state.model} (${state.variant}) ready on ${providerLabel(state.provider)}.` +
          (state.fallbacks ?? []).map((f) => ` ${providerLabel(f.provider)} not used: ${f.reason}`).join(''),
        error: false,
      };
    case 'generating': {
      const speed = state.tokensPerSecond !== undefined ? ` ${state.tokensPerSecond.toFixed(1)} tok/s` : '';
      const queued = state.queued > 0 ? ` (+${state.queued} queued)` : '';
      if (state.server) {
        return {
          text: `$(sync~spin) R1: ${serverLabel(state.server)}${speed}${queued}`,
          tooltip: `R1 Coder: ${state.server.model} is generating on ${serverKindLabel(state.server.kind)} at ${state.server.url}.`,
          error: false,
        };
      }
      return {
        text: `$(sync~spin) R1: ${providerLabel(state.provider)}${speed}${queued}`,
        tooltip: `R1 Coder: generating on ${providerLabel(state.provider)}.`,
        error: false,
      };
    }
    case 'crashed':
    case 'error':
      return { text: '$(error) R1', tooltip: `R1 Coder: ${state.message} Click to show the log.`, error: true };
  }
}

export class StatusItem implements vscode.Disposable {
  private readonly item = vscode.window.createStatusBarItem('r1.status', vscode.StatusBarAlignment.Right, 100);

  constructor() {
    this.item.name = 'R1 Coder';
    this.item.command = 'r1.showLog';
    this.update({ kind: 'stopped' });
    this.item.show();
  }

  update(state: ClientState): void {
    const { text, tooltip, error } = describeState(state);
    this.item.text = text;
    this.item.tooltip = tooltip;
    this.item.backgroundColor = error ? new vscode.ThemeColor('statusBarItem.errorBackground') : undefined;
  }

  dispose(): void {
    this.item.dispose();
  }
}
