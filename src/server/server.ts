/**
 * The R1 language server: a separate Node process that owns the inference engine, because
 * onnxruntime-node's session creation and `run()` block their thread. The client starts it
 * through vscode-languageclient over IPC (`--node-ipc`).
 */
import { createConnection, ProposedFeatures, TextDocumentSyncKind } from 'vscode-languageserver/node';
import { PingRequest, StateNotification, type ServerState } from '../protocol/server';

const startedAt = Date.now();
const connection = createConnection(ProposedFeatures.all);

let serverVersion = '0.0.0';
let state: ServerState = { kind: 'starting' };

function setState(next: ServerState): void {
  state = next;
  void connection.sendNotification(StateNotification.type, next);
}

// A bug must not take the server down silently: log it where the user can see it (R1: Show Log).
process.on('uncaughtException', (err) => {
  connection.console.error(`Uncaught exception in the R1 server: ${err.stack ?? String(err)}`);
});
process.on('unhandledRejection', (reason) => {
  connection.console.error(`Unhandled rejection in the R1 server: ${reason instanceof Error ? (reason.stack ?? reason.message) : String(reason)}`);
});

connection.onInitialize((params) => {
  const options = (params.initializationOptions ?? {}) as { extensionVersion?: unknown };
  if (typeof options.extensionVersion === 'string') serverVersion = options.extensionVersion;
  return {
    capabilities: { textDocumentSync: TextDocumentSyncKind.None },
    serverInfo: { name: 'R1 Coder', version: serverVersion },
  };
});

connection.onInitialized(() => {
  connection.console.info(`R1 server ${serverVersion} started (pid ${process.pid}, node ${process.version}).`);
  setState({ kind: 'no-model', message: 'No model loaded yet.' });
});

connection.onRequest(PingRequest.type, (params) => ({
  nonce: params.nonce,
  serverVersion,
  pid: process.pid,
  uptimeMs: Date.now() - startedAt,
  state,
}));

connection.listen();
