/**
 * Starts the built language server (dist/server.js) the way vscode-languageclient does, a Node
 * child process speaking JSON-RPC over IPC, and gives tests a typed connection to it.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { createMessageConnection, IPCMessageReader, IPCMessageWriter, type MessageConnection } from 'vscode-jsonrpc/node';
import { InitializeRequest, InitializedNotification, type InitializeResult } from 'vscode-languageserver-protocol';

export const SERVER_BUNDLE = join(__dirname, '..', '..', '..', 'dist', 'server.js');

export interface RunningServer {
  child: ChildProcess;
  connection: MessageConnection;
  initializeResult: InitializeResult;
  /** Notifications received so far, by method. */
  notifications: { method: string; params: unknown }[];
  stop(): Promise<void>;
}

export interface StartOptions {
  initializationOptions?: unknown;
  /** What the server gets for `workspace/configuration` of section `r1` (a live object: tests may change it). */
  settings?: Record<string, unknown>;
}

export async function startServer(options: StartOptions = {}): Promise<RunningServer> {
  const initializationOptions = options.initializationOptions ?? { extensionVersion: '9.9.9-test' };
  const settings = options.settings ?? {};
  if (!existsSync(SERVER_BUNDLE)) throw new Error(`${SERVER_BUNDLE} is missing: run "npm run build" first.`);
  const child = fork(SERVER_BUNDLE, ['--node-ipc'], { stdio: ['ignore', 'ignore', 'pipe', 'ipc'] });
  const connection = createMessageConnection(new IPCMessageReader(child), new IPCMessageWriter(child));
  const notifications: { method: string; params: unknown }[] = [];
  connection.onNotification((method, params) => notifications.push({ method, params }));
  // The requests a real LanguageClient answers for the server.
  connection.onRequest('workspace/configuration', (params: { items: { section?: string }[] }) =>
    params.items.map((item) => (item.section === 'r1' ? settings : null)),
  );
  connection.onRequest('client/registerCapability', () => null);
  connection.onRequest('window/workDoneProgress/create', () => null);
  connection.listen();
  const initializeResult = await connection.sendRequest(InitializeRequest.type, {
    processId: process.pid,
    rootUri: null,
    capabilities: { workspace: { configuration: true }, window: { workDoneProgress: true } },
    initializationOptions,
  });
  await connection.sendNotification(InitializedNotification.type, {});
  return {
    child,
    connection,
    initializeResult,
    notifications,
    async stop() {
      connection.dispose();
      if (child.exitCode === null && child.signalCode === null) {
        const exited = new Promise((resolve) => child.once('exit', resolve));
        child.kill();
        await exited;
      }
    },
  };
}
