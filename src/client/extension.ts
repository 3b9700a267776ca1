/**
 * Extension entry point. Activation stays light: it registers commands, the status item and the
 * log, and loads neither the language server nor ONNX Runtime; the server starts on first use.
 */
import * as vscode from 'vscode';
import { registerCommands } from './commands';
import { R1Server } from './server';
import { StatusItem } from './status';

let server: R1Server | undefined;

export function activate(context: vscode.ExtensionContext): void {
  const log = vscode.window.createOutputChannel('R1 Coder', { log: true });
  server = new R1Server(context, log);
  const status = new StatusItem();
  context.subscriptions.push(log, server, status, server.onDidChangeState((s) => status.update(s)));
  context.subscriptions.push(...registerCommands({ server, log }));
  log.info(`R1 Coder ${String(context.extension.packageJSON.version)} activated.`);
}

export function deactivate(): Promise<void> | undefined {
  return server?.stop();
}
