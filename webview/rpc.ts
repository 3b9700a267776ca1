/**
 * The webview side of the protocol: typed requests with a reply or an error, and the
 * notifications the host pushes.
 */
import type {
  ErrorCode,
  HostMessage,
  HostNotificationMessage,
  RequestParams,
  RequestReply,
  WebviewRequestName,
} from '../src/protocol/webview';

export interface VsCodeApi {
  postMessage(message: unknown): void;
  getState(): unknown;
  setState(state: unknown): void;
}

declare function acquireVsCodeApi(): VsCodeApi;

/** A request the host answered with an error. */
export class HostError extends Error {
  constructor(
    readonly code: ErrorCode | 'timeout',
    message: string,
  ) {
    super(message);
  }
}

/** Requests that wait for the user (dialogs) have no timeout; the others fail after this long. */
const TIMEOUT_MS = 60_000;
const UNTIMED: ReadonlySet<WebviewRequestName> = new Set<WebviewRequestName>([
  'history/clear',
  'exchange/export',
  'edit/accept',
  'edit/review',
  'followUp',
]);

export class Rpc {
  readonly api: VsCodeApi = acquireVsCodeApi();
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void; timer?: ReturnType<typeof setTimeout> }>();

  constructor(private readonly onNotification: (n: HostNotificationMessage) => void) {
    window.addEventListener('message', (e: MessageEvent) => this.receive(e.data));
  }

  request<K extends WebviewRequestName>(method: K, params: RequestParams<K>): Promise<RequestReply<K>> {
    const requestId = this.nextId++;
    return new Promise<RequestReply<K>>((resolve, reject) => {
      const timer = UNTIMED.has(method)
        ? undefined
        : setTimeout(() => {
            this.pending.delete(requestId);
            reject(new HostError('timeout', `R1 Coder did not answer "${method}" within ${TIMEOUT_MS / 1000} s.`));
          }, TIMEOUT_MS);
      this.pending.set(requestId, { resolve: resolve as (v: unknown) => void, reject, timer });
      this.api.postMessage({ type: 'request', requestId, method, params });
    });
  }

  private receive(data: unknown): void {
    if (typeof data !== 'object' || data === null) return;
    const m = data as HostMessage;
    if (m.type === 'notification') {
      this.onNotification(m);
      return;
    }
    if (m.type !== 'reply' && m.type !== 'error') return;
    const p = this.pending.get(m.requestId);
    if (!p) return;
    this.pending.delete(m.requestId);
    if (p.timer) clearTimeout(p.timer);
    if (m.type === 'reply') p.resolve(m.result);
    else p.reject(new HostError(m.error.code, m.error.message));
  }
}
