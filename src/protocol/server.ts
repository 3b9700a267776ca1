/**
 * Messages between the extension host (client) and the language server that hosts the engine.
 * Each message is one namespace with its `method` (prefixed `r1/`) and its typed `type`, as
 * vscode-eslint does. The direction is written above each.
 */
import { NotificationType, RequestType } from 'vscode-languageserver-protocol';

/** What the server is doing; shown by the client's status item. */
export type ServerState =
  | { kind: 'starting' }
  | { kind: 'no-model'; message: string }
  | { kind: 'loading'; message: string; fraction?: number }
  | { kind: 'ready'; provider: string; variant: string; model: string }
  | { kind: 'generating'; provider: string; tokensPerSecond?: number; queued: number }
  | { kind: 'error'; message: string };

/** client → server: a liveness check that also proves the wiring end to end. */
export namespace PingRequest {
  export const method = 'r1/ping' as const;
  export interface Params {
    /** Echoed back, so the client can match the reply. */
    nonce: string;
  }
  export interface Result {
    nonce: string;
    /** Version of the server bundle (the extension's version). */
    serverVersion: string;
    pid: number;
    uptimeMs: number;
    state: ServerState;
  }
  export const type = new RequestType<Params, Result, void>(method);
}

/** server → client: the server's state changed. */
export namespace StateNotification {
  export const method = 'r1/state' as const;
  export type Params = ServerState;
  export const type = new NotificationType<Params>(method);
}
