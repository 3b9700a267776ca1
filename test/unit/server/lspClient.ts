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
  /** Resolves with the first notification (received so far or later) of `method` that matches. */
  waitFor<T>(method: string, match?: (params: T) => boolean): Promise<T>;
  stop(): Promise<void>;
}

export interface StartOptions {
  initializationOptions?: unknown;
  /** What the server gets for `workspace/configuration` of section `r1` (a live object: tests may change it). */
  settings?: Record<string, unknown>;
}

export async function startServer(options: StartOptions = {}): Promise<RunningServer> {
  // Prepared CPU copies go under the repository's cache, not the user's.
  const initializationOptions = {
    preparedModelsDir: join(__dirname, '..', '..', '..', '.cache', 'test-prepared'),
    ...((options.initializationOptions as object | undefined) ?? { extensionVersion: '9.9.9-test' }),
  };
  const settings = options.settings ?? {};
  if (!existsSync(SERVER_BUNDLE)) throw new Error(`${SERVER_BUNDLE} is missing: run "npm run build" first.`);
  const child = fork(SERVER_BUNDLE, ['--node-ipc'], { stdio: ['ignore', 'ignore', 'pipe', 'ipc'] });
  const connection = createMessageConnection(new IPCMessageReader(child), new IPCMessageWriter(child));
  const notifications: { method: string; params: unknown }[] = [];
  // One catch-all handler: a method-specific handler would hide its notifications from this list.
  const waiters = new Set<{ method: string; match: (p: unknown) => boolean; resolve: (p: unknown) => void }>();
  connection.onNotification((method, params) => {
    notifications.push({ method, params });
    for (const w of [...waiters]) {
      if (w.method === method && w.match(params)) {
        waiters.delete(w);
        w.resolve(params);
      }
    }
  });
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
    waitFor<T>(method: string, match: (params: T) => boolean = () => true): Promise<T> {
      const seen = notifications.find((n) => n.method === method && match(n.params as T));
      if (seen) return Promise.resolve(seen.params as T);
      return new Promise<T>((resolve) => {
        waiters.add({ method, match: (p) => match(p as T), resolve: (p) => resolve(p as T) });
      });
    },
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
