/**
 * The client side of the language server: starts it lazily on first use, restarts it after a
 * crash, and reports its state. The server is a separate Node process (IPC transport), so
 * ONNX Runtime never blocks the extension host.
 */
import * as vscode from 'vscode';
import {
  CloseAction,
  DidChangeConfigurationNotification,
  ErrorAction,
  LanguageClient,
  State,
  TransportKind,
  type CloseHandlerResult,
  type ErrorHandler,
  type ErrorHandlerResult,
  type LanguageClientOptions,
  type ServerOptions,
} from 'vscode-languageclient/node';
import { PingRequest, ProviderFallbackNotification, RequestProgressNotification, ServerApiKeyRequest, StateNotification, StreamNotification, type ServerState } from '../protocol/server';
import { serverKeySecret } from './serverKey';

/** How many crashes within `CRASH_WINDOW_MS` we restart from before giving up and asking the user. */
const MAX_RESTARTS = 5;
const CRASH_WINDOW_MS = 3 * 60_000;

export type ClientState = ServerState | { kind: 'stopped' } | { kind: 'crashed'; message: string };

export class R1Server implements vscode.Disposable {
  private client: LanguageClient | undefined;
  private starting: Promise<LanguageClient> | undefined;
  private readonly crashes: number[] = [];
  private readonly stateEmitter = new vscode.EventEmitter<ClientState>();
  readonly onDidChangeState = this.stateEmitter.event;
  private current: ClientState = { kind: 'stopped' };
  private readonly streamEmitter = new vscode.EventEmitter<StreamNotification.Params>();
  /** Streamed text of running requests, keyed by request id. */
  readonly onStream = this.streamEmitter.event;
  private readonly progressEmitter = new vscode.EventEmitter<RequestProgressNotification.Params>();
  /** Queue position, model loading and start of running requests. */
  readonly onRequestProgress = this.progressEmitter.event;
  private readonly fallbackEmitter = new vscode.EventEmitter<ProviderFallbackNotification.Params>();
  /** Auto mode fell back past GPU providers (once per provider per server session). */
  readonly onProviderFallback = this.fallbackEmitter.event;

  constructor(
    private readonly context: vscode.ExtensionContext,
    private readonly log: vscode.LogOutputChannel,
    /** Passed to the server: where R1: Download Model puts the default model. */
    private readonly defaultModelDir: string,
  ) {}

  get state(): ClientState {
    return this.current;
  }

  get isRunning(): boolean {
    return this.client?.state === State.Running;
  }

  /** Starts the server when it is not running yet, and resolves when it answers requests. */
  async ensureStarted(): Promise<LanguageClient> {
    if (this.client?.state === State.Running) return this.client;
    this.starting ??= this.start().finally(() => {
      this.starting = undefined;
    });
    return this.starting;
  }

  async restart(): Promise<void> {
    this.log.info('Restarting the R1 server on request.');
    await this.stop();
    this.crashes.length = 0;
    await this.ensureStarted();
  }

  /** Round trip to the server, as a health check. */
  async ping(): Promise<PingRequest.Result & { roundTripMs: number }> {
    const client = await this.ensureStarted();
    const nonce = Math.random().toString(36).slice(2);
    const t0 = Date.now();
    const result = await client.sendRequest(PingRequest.type, { nonce });
    if (result.nonce !== nonce) throw new Error('The R1 server answered a ping with the wrong nonce.');
    return { ...result, roundTripMs: Date.now() - t0 };
  }

  async stop(): Promise<void> {
    const client = this.client;
    this.client = undefined;
    if (client && client.state !== State.Stopped) {
      await client.stop().catch((e: unknown) => this.log.warn(`Stopping the R1 server failed: ${String(e)}`));
    }
    this.setState({ kind: 'stopped' });
  }

  /** Tells a running server that settings it reads changed (an API key was stored): it probes the server again. */
  settingsChanged(): void {
    if (this.client?.state === State.Running) void this.client.sendNotification(DidChangeConfigurationNotification.type, { settings: null });
  }

  dispose(): void {
    void this.stop();
    this.stateEmitter.dispose();
    this.streamEmitter.dispose();
    this.progressEmitter.dispose();
    this.fallbackEmitter.dispose();
  }

  private setState(state: ClientState): void {
    this.current = state;
    this.stateEmitter.fire(state);
  }

  private async start(): Promise<LanguageClient> {
    const module = this.context.asAbsolutePath('dist/server.js');
    const serverOptions: ServerOptions = {
      run: { module, transport: TransportKind.ipc },
      debug: { module, transport: TransportKind.ipc, options: { execArgv: ['--nolazy', '--inspect=6011'] } },
    };
    const clientOptions: LanguageClientOptions = {
      documentSelector: [{ scheme: 'file' }, { scheme: 'untitled' }],
      outputChannel: this.log,
      initializationOptions: { extensionVersion: String(this.context.extension.packageJSON.version), defaultModelDir: this.defaultModelDir, preparedModelsDir: vscode.Uri.joinPath(this.context.globalStorageUri, 'prepared').fsPath },
      middleware: { workspace: { configuration: restrictUntrustedSettings } },
      errorHandler: this.errorHandler(),
      initializationFailedHandler: (error) => {
        this.log.error(`The R1 server failed to initialize: ${String(error)}`);
        this.setState({ kind: 'crashed', message: `The R1 server failed to start: ${String(error)}` });
        return false;
      },
    };
    const client = new LanguageClient('r1', 'R1 Coder', serverOptions, clientOptions);
    this.client = client;
    this.setState({ kind: 'starting' });
    client.onNotification(StateNotification.type, (state) => this.setState(state));
    client.onNotification(StreamNotification.type, (p) => this.streamEmitter.fire(p));
    client.onNotification(RequestProgressNotification.type, (p) => this.progressEmitter.fire(p));
    client.onNotification(ProviderFallbackNotification.type, (p) => this.fallbackEmitter.fire(p));
    // The key for a server (r1.backend "server"), from SecretStorage, for the origin it was stored for only.
    client.onRequest(ServerApiKeyRequest.type, async ({ origin }) => ({ apiKey: (await this.context.secrets.get(serverKeySecret(origin))) ?? undefined }));
    this.log.info(`Starting the R1 server: ${module}`);
    await client.start();
    return client;
  }

  private errorHandler(): ErrorHandler {
    return {
      error: (): ErrorHandlerResult => ({ action: ErrorAction.Continue }),
      closed: (): CloseHandlerResult => {
        const now = Date.now();
        this.crashes.push(now);
        while (this.crashes.length > 0 && now - this.crashes[0] > CRASH_WINDOW_MS) this.crashes.shift();
        if (this.crashes.length > MAX_RESTARTS) {
          const message = `The R1 server stopped ${this.crashes.length} times in ${CRASH_WINDOW_MS / 60_000} minutes, so it will not be restarted. Use "R1: Show Log" to see why, then "R1: Restart Server".`;
          this.log.error(message);
          this.setState({ kind: 'crashed', message });
          return { action: CloseAction.DoNotRestart, message, handled: false };
        }
        this.log.warn('The R1 server stopped unexpectedly; restarting it.');
        this.setState({ kind: 'crashed', message: 'The R1 server stopped unexpectedly; restarting.' });
        return { action: CloseAction.Restart, handled: true };
      },
    };
  }
}

/** Settings a workspace may not choose while it is untrusted: only the user's own values count. */
const RESTRICTED = ['model.path', 'executionProvider', 'backend', 'server.url'] as const;

/**
 * Answers the server's `workspace/configuration` pulls. In an untrusted workspace the
 * restricted settings come from the user's settings only, never from the workspace's.
 */
const restrictUntrustedSettings: NonNullable<NonNullable<LanguageClientOptions['middleware']>['workspace']>['configuration'] = async (
  params,
  token,
  next,
) => {
  const result = await next(params, token);
  if (vscode.workspace.isTrusted || !Array.isArray(result)) return result;
  return result.map((value: unknown, i: number) => {
    if (params.items[i]?.section !== 'r1' || typeof value !== 'object' || value === null) return value;
    const copy = structuredClone(value) as Record<string, Record<string, unknown> | unknown>;
    const config = vscode.workspace.getConfiguration('r1');
    for (const key of RESTRICTED) {
      const inspected = config.inspect(key);
      const userValue = inspected?.globalValue ?? inspected?.defaultValue;
      const parts = key.split('.');
      let target = copy as Record<string, unknown>;
      for (const p of parts.slice(0, -1)) target = (target[p] ??= {}) as Record<string, unknown>;
      target[parts[parts.length - 1]] = userValue;
    }
    return copy;
  });
};
