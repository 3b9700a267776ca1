/**
 * Every command of the manifest, as one typed table. A command whose feature is not built yet
 * says so plainly when run, instead of doing nothing.
 */
import * as vscode from 'vscode';
import type { R1Server } from './server';

export interface CommandContext {
  server: R1Server;
  log: vscode.LogOutputChannel;
}

type Handler = (ctx: CommandContext, ...args: unknown[]) => unknown;

/** Ids of the commands contributed in package.json. */
export type CommandId =
  | 'r1.ask'
  | 'r1.fix'
  | 'r1.explain'
  | 'r1.acceptEdit'
  | 'r1.rejectEdit'
  | 'r1.cancel'
  | 'r1.downloadModel'
  | 'r1.selectModel'
  | 'r1.showLog'
  | 'r1.restartServer';

function notBuiltYet(title: string): Handler {
  return () => {
    void vscode.window.showInformationMessage(
      `R1: ${title} is not available in this build of R1 Coder yet. It arrives with a coming release; nothing was changed.`,
    );
  };
}

export const commands: Record<CommandId, Handler> = {
  'r1.ask': notBuiltYet('Ask'),
  'r1.fix': notBuiltYet('Fix'),
  'r1.explain': notBuiltYet('Explain'),
  'r1.acceptEdit': notBuiltYet('Accept Edit'),
  'r1.rejectEdit': notBuiltYet('Reject Edit'),
  'r1.cancel': notBuiltYet('Cancel'),
  'r1.downloadModel': notBuiltYet('Download Model'),
  'r1.selectModel': notBuiltYet('Select Model'),
  'r1.showLog': ({ log }) => log.show(),
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
