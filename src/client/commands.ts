/**
 * Every command of the manifest, as one typed table. A command that cannot act says why.
 */
import * as vscode from 'vscode';
import type { GpuSupport } from './gpu';
import type { ModelCommands } from './models';
import type { ProposalStore } from './proposals';
import type { R1Server } from './server';
import { setServerApiKey } from './serverKey';
import type { TargetArgs, Workflows } from './workflows';

export interface CommandContext {
  context: vscode.ExtensionContext;
  server: R1Server;
  log: vscode.LogOutputChannel;
  workflows: Workflows;
  proposals: ProposalStore;
  models: ModelCommands;
  gpu: GpuSupport;
}

type Handler = (ctx: CommandContext, ...args: unknown[]) => unknown;

/** Ids of the commands contributed in package.json. */
export type CommandId =
  | 'r1.ask'
  | 'r1.fix'
  | 'r1.explain'
  | 'r1.acceptEdit'
  | 'r1.rejectEdit'
  | 'r1.acceptChangeAtCursor'
  | 'r1.rejectChangeAtCursor'
  | 'r1.cancel'
  | 'r1.downloadModel'
  | 'r1.selectModel'
  | 'r1.showLog'
  | 'r1.restartServer'
  | 'r1.installCudaSupport'
  | 'r1.setServerApiKey';

function targetArgs(arg: unknown): TargetArgs | undefined {
  return typeof arg === 'object' && arg !== null && typeof (arg as TargetArgs).uri === 'string' ? (arg as TargetArgs) : undefined;
}

/** Runs a proposal action and shows why it could not act. */
async function onProposal(action: () => Promise<void> | void): Promise<void> {
  try {
    await action();
  } catch (e) {
    void vscode.window.showWarningMessage(`R1: ${e instanceof Error ? e.message : String(e)}`);
  }
}

export const commands: Record<CommandId, Handler> = {
  'r1.ask': ({ workflows }, arg) => workflows.ask(targetArgs(arg)),
  'r1.fix': ({ workflows }, arg) => workflows.fix(targetArgs(arg)),
  'r1.explain': ({ workflows }, arg) => workflows.explain(targetArgs(arg)),
  'r1.acceptEdit': ({ proposals }) => onProposal(() => proposals.accept()),
  'r1.rejectEdit': ({ proposals }) => onProposal(() => proposals.reject()),
  'r1.acceptChangeAtCursor': ({ proposals }) => onProposal(() => proposals.changeAtCursor('accept')),
  'r1.rejectChangeAtCursor': ({ proposals }) => onProposal(() => proposals.changeAtCursor('reject')),
  'r1.cancel': ({ workflows }) => workflows.cancel(),
  'r1.downloadModel': ({ models }) => models.download(),
  'r1.selectModel': ({ models }) => models.select(),
  'r1.showLog': ({ log }) => log.show(),
  'r1.installCudaSupport': ({ gpu }) => gpu.installCuda(),
  'r1.setServerApiKey': ({ context, server, log }) => setServerApiKey(context, server, log),
  'r1.restartServer': async ({ server, log }) => {
    try {
      await server.restart();
      const ping = await server.ping();
      log.info(`R1 server restarted (pid ${ping.pid}, ping ${ping.roundTripMs} ms).`);
    } catch (e) {
      const message = e instanceof Error ? e.message : String(e);
      log.error(`Restarting the R1 server failed: ${message}`);
      void vscode.window.showErrorMessage(`R1: the server could not be restarted: ${message}`, 'Show Log').then((pick) => {
        if (pick) log.show();
      });
    }
  },
};

export function registerCommands(ctx: CommandContext): vscode.Disposable[] {
  return (Object.keys(commands) as CommandId[]).map((id) =>
    vscode.commands.registerCommand(id, (...args: unknown[]) => commands[id](ctx, ...args)),
  );
}
