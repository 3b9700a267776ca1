/**
 * The language server with r1.backend `server`: each r1/ask, r1/fix and r1/explain goes to the
 * server of r1.server.url through src/remote's RemoteBackend, which has the engine's generate()
 * contract, so the client's streaming, proposals, history and follow-ups work unchanged. The
 * local model is never loaded. The API key comes from the client (SecretStorage) for the URL's
 * origin, before each run.
 */
import type { GenerateOptions, GenerationResult, PromptRequest } from '../engine/types';
import type { RemoteServerInfo } from '../protocol/server';
import { RemoteBackend, describeTarget, parseServerUrl, type RemoteTarget } from '../remote';
import type { ServerSettings } from './engineHost';

export interface RemoteDeps {
  /** The key stored for this origin, if any (asks the client). */
  apiKey(origin: string): Promise<string | undefined>;
  info(message: string): void;
  warn(message: string): void;
}

export function serverInfo(t: RemoteTarget): RemoteServerInfo {
  return { url: t.server.raw, host: t.server.host, model: t.model, kind: t.kind, api: t.api };
}

/** Owns one RemoteBackend for the current r1.server.* settings and key. */
export class RemoteHost {
  private backend: RemoteBackend | undefined;
  private backendKey: string | undefined;

  constructor(private readonly deps: RemoteDeps) {}

  /** The backend for these settings (a new one when a setting or the key changed). Throws RemoteError for a bad URL. */
  async backendFor(settings: ServerSettings): Promise<RemoteBackend> {
    const url = parseServerUrl(settings.serverUrl);
    const apiKey = await this.deps.apiKey(url.origin).catch(() => undefined);
    const key = JSON.stringify([settings.serverUrl, settings.serverModel, settings.serverApi, apiKey ?? null]);
    if (this.backend && this.backendKey === key) return this.backend;
    this.backend = new RemoteBackend({ url: settings.serverUrl, model: settings.serverModel, api: settings.serverApi, apiKey, warn: (m) => this.deps.warn(m) });
    this.backendKey = key;
    return this.backend;
  }

  /** Probes the server: what the status bar shows. */
  async connect(settings: ServerSettings, signal?: AbortSignal): Promise<RemoteTarget> {
    const backend = await this.backendFor(settings);
    const known = backend.connected;
    const target = await backend.connect(signal);
    if (target !== known) this.deps.info(`Using ${describeTarget(target)} at ${target.server.raw}.`);
    return target;
  }

  async generate(settings: ServerSettings, req: PromptRequest, opts: GenerateOptions): Promise<{ result: GenerationResult; target: RemoteTarget | undefined }> {
    const backend = await this.backendFor(settings);
    const result = await backend.generate(req, opts);
    return { result, target: backend.connected };
  }

  dispose(): void {
    void this.backend?.dispose();
    this.backend = undefined;
    this.backendKey = undefined;
  }
}
