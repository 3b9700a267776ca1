/**
 * Extension entry point. Activation stays light: it registers commands, the Reasoning view, the
 * code actions, the status item and the log, and loads neither the language server nor ONNX
 * Runtime; the server starts on the first request.
 */
import * as vscode from 'vscode';
import { FixChecker } from './check/shadow';
import { R1CodeActions } from './codeActions';
import { registerCommands } from './commands';
import { GpuSupport } from './gpu';
import { defaultModelDir, ModelCommands } from './models';
import { ProposalStore } from './proposals';
import { registerReasoningView } from './reasoningView';
import { R1Server } from './server';
import { StatusItem } from './status';
import { Workflows } from './workflows';

let server: R1Server | undefined;

export function activate(context: vscode.ExtensionContext): void {
  const log = vscode.window.createOutputChannel('R1 Coder', { log: true });
  server = new R1Server(context, log, defaultModelDir(context));
  const status = new StatusItem();
  const view = registerReasoningView(context, log);
  const proposals = new ProposalStore(context, view, log);
  const checker = new FixChecker();
  const workflows = new Workflows(server, view, proposals, checker, log);
  const models = new ModelCommands(context, server, log);
  const gpu = new GpuSupport(context, log);
  context.subscriptions.push(
    log,
    server,
    status,
    proposals,
    checker,
    workflows,
    server.onDidChangeState((s) => status.update(s)),
    server.onProviderFallback((p) => void gpu.showFallback(p)),
    vscode.languages.registerCodeActionsProvider([{ scheme: 'file' }, { scheme: 'untitled' }], new R1CodeActions(), {
      providedCodeActionKinds: R1CodeActions.kinds,
    }),
    ...registerCommands({ context, server, log, workflows, proposals, models, gpu }),
  );
  log.info(`R1 Coder ${String(context.extension.packageJSON.version)} activated.`);
}

export function deactivate(): Promise<void> | undefined {
  return server?.stop();
}
