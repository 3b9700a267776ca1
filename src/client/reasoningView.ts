/**
 * The Reasoning view (`r1.trace`): a webview in the R1 activity-bar container that shows, per
 * request, the reasoning as it streams, the answer, the proposed edit and the run's figures.
 *
 * The rest of the client drives it through a small typed API (`startExchange`, `appendDelta`,
 * `showProposal`, `finishExchange`, …) and listens to what the user asks for in the view
 * (`onDidRequestAccept`, `onDidRequestFollowUp`, …). Every exchange is kept in
 * `workspaceState`, so history survives window reloads.
 *
 * The webview is rebuilt whenever it is hidden and shown again (no retainContextWhenHidden): its
 * first request, `history/get`, returns the host's records, which the host keeps current with
 * the same reducer the view runs, so nothing streamed while it was hidden is lost.
 */
import { randomBytes } from 'node:crypto';
import { realpath } from 'node:fs/promises';
import * as path from 'node:path';
import * as vscode from 'vscode';
import {
  applyNotification,
  classifyLink,
  exchangeToMarkdown,
  followUpTurns,
  isRunning,
  parseWebviewMessage,
  reviveHistory,
  webviewHtml,
  HISTORY_LIMIT,
  type CheckVerdict,
  type ErrorCode,
  type ExchangeInfo,
  type ExchangeRecord,
  type ExchangeStats,
  type HostMessage,
  type HostNotificationMessage,
  type HostNotifications,
  type PriorTurn,
  type Proposal,
  type ProposalState,
  type RequestParams,
  type RequestReply,
  type TruncationNote,
  type WebviewRequestMessage,
  type WebviewRequestName,
} from '../protocol/webview';
import { answerOnly } from '../text/thinking';

export const REASONING_VIEW_ID = 'r1.trace';
const HISTORY_KEY = 'r1.trace.history.v1';
/** How often, at most, streamed text is written to workspaceState while a request runs. */
const PERSIST_DEBOUNCE_MS = 2000;

/** A request from the view that the rest of the client answers. */
export interface ViewRequestEvent<T> {
  readonly params: T;
  /**
   * Delays the view's reply until the thenable settles. When it rejects, the view shows the
   * error's message next to the control the user used.
   */
  waitUntil(thenable: Thenable<unknown>): void;
}

export interface ExchangeRequest {
  exchangeId: string;
  exchange: ExchangeRecord;
}

export interface FollowUpRequest {
  text: string;
  /** The exchange this continues; undefined when the view had no exchange yet. */
  parentId?: string;
  /** Earlier user turns and answers of the conversation, oldest first, never the reasoning. */
  turns: PriorTurn[];
  /** The file and selection of the conversation's latest exchange, if any. */
  context?: Pick<ExchangeInfo, 'file' | 'selection'>;
}

export interface HunkRequest extends ExchangeRequest {
  hunk: number;
  header: string;
}

export interface InsertCommentRequest extends ExchangeRequest {
  /** The answer, with `<think>` tags stripped. */
  text: string;
}

/** A `vscode.Event` whose listeners can delay and fail the reply (`waitUntil`). */
class RequestEmitter<T> implements vscode.Disposable {
  private readonly listeners = new Set<(e: ViewRequestEvent<T>) => unknown>();

  readonly event = (listener: (e: ViewRequestEvent<T>) => unknown, thisArgs?: unknown, disposables?: vscode.Disposable[]): vscode.Disposable => {
    const bound = (e: ViewRequestEvent<T>) => listener.call(thisArgs, e);
    this.listeners.add(bound);
    const d = new vscode.Disposable(() => this.listeners.delete(bound));
    disposables?.push(d);
    return d;
  };

  get hasListeners(): boolean {
    return this.listeners.size > 0;
  }

  /** Runs every listener and waits for what they passed to `waitUntil`. */
  async fire(params: T): Promise<void> {
    const waits: Thenable<unknown>[] = [];
    for (const l of [...this.listeners]) {
      l({ params, waitUntil: (t) => void waits.push(t) });
    }
    await Promise.all(waits);
  }

  dispose(): void {
    this.listeners.clear();
  }
}

class RequestError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
  ) {
    super(message);
  }
}

export interface StartExchangeOptions {
  /** When set (1 = next), the exchange waits in the queue until `setRunning` or its first delta. */
  queuePosition?: number;
}

export interface FinishExchangeOptions {
  status: 'complete' | 'cancelled' | 'length' | 'error';
  stats?: ExchangeStats;
  budgetHit?: boolean;
  error?: string;
  truncation?: TruncationNote[];
  /** The user turn as the model saw it; follow-ups replay it. */
  userTurn?: string;
}

export class ReasoningViewProvider implements vscode.WebviewViewProvider, vscode.Disposable {
  private view: vscode.WebviewView | undefined;
  private readonly records: ExchangeRecord[];
  private persistTimer: ReturnType<typeof setTimeout> | undefined;
  private readonly disposables: vscode.Disposable[] = [];

  private readonly acceptEmitter = new RequestEmitter<ExchangeRequest>();
  private readonly rejectEmitter = new RequestEmitter<ExchangeRequest>();
  private readonly reviewEmitter = new RequestEmitter<ExchangeRequest>();
  private readonly cancelEmitter = new RequestEmitter<ExchangeRequest>();
  private readonly followUpEmitter = new RequestEmitter<FollowUpRequest>();
  private readonly insertCommentEmitter = new RequestEmitter<InsertCommentRequest>();
  private readonly acceptHunkEmitter = new RequestEmitter<HunkRequest>();
  private readonly rejectHunkEmitter = new RequestEmitter<HunkRequest>();
  private readonly continueEmitter = new RequestEmitter<ExchangeRequest>();

  /** Accept was pressed on a pending proposal. Call `setProposalState` when it is applied. */
  readonly onDidRequestAccept = this.acceptEmitter.event;
  readonly onDidRequestReject = this.rejectEmitter.event;
  /** "Review in diff editor" was pressed. */
  readonly onDidRequestReview = this.reviewEmitter.event;
  /** Cancel was pressed on a queued or running exchange. */
  readonly onDidRequestCancel = this.cancelEmitter.event;
  /** The user sent a follow-up from the input box. Start a new exchange with `parentId` set. */
  readonly onDidRequestFollowUp = this.followUpEmitter.event;
  /** "Insert as comment" was pressed on an answer. */
  readonly onDidRequestInsertComment = this.insertCommentEmitter.event;
  /** Accept or Reject was pressed on one hunk of a pending proposal. */
  readonly onDidRequestAcceptHunk = this.acceptHunkEmitter.event;
  readonly onDidRequestRejectHunk = this.rejectHunkEmitter.event;
  /** "Continue" was pressed on a cut-off answer. */
  readonly onDidRequestContinue = this.continueEmitter.event;

  constructor(
    private readonly context: vscode.ExtensionContext,
    private readonly log: vscode.LogOutputChannel,
  ) {
    this.records = reviveHistory(context.workspaceState.get<unknown>(HISTORY_KEY), Date.now());
    this.disposables.push(
      this.acceptEmitter,
      this.rejectEmitter,
      this.reviewEmitter,
      this.cancelEmitter,
      this.followUpEmitter,
      this.insertCommentEmitter,
      this.acceptHunkEmitter,
      this.rejectHunkEmitter,
      this.continueEmitter,
    );
  }

  // ───────────── the API the client calls ─────────────

  /** Adds an exchange to the view and returns its id (`info.id` when given, else a new one). */
  startExchange(info: Omit<ExchangeInfo, 'id' | 'createdAt'> & Partial<Pick<ExchangeInfo, 'id' | 'createdAt'>>, options: StartExchangeOptions = {}): string {
    const full: ExchangeInfo = { ...info, id: info.id ?? newId(), createdAt: info.createdAt ?? Date.now() };
    this.notify({ type: 'notification', method: 'exchange/started', params: { info: full, queuePosition: options.queuePosition, at: Date.now() } });
    this.trimHistory();
    this.persistSoon(true);
    return full.id;
  }

  /** The exchange waits behind `position - 1` others. */
  setQueued(id: string, position: number): void {
    this.notify({ type: 'notification', method: 'exchange/queued', params: { id, position } });
  }

  /** The exchange left the queue; the elapsed time counts from now. */
  setRunning(id: string): void {
    this.notify({ type: 'notification', method: 'exchange/running', params: { id, at: Date.now() } });
  }

  /**
   * Streamed text. `reasoningTokens`/`answerTokens` are the exchange's running totals.
   * `budgetHit` once the thinking budget closed the reasoning.
   */
  appendDelta(id: string, kind: 'reasoning' | 'answer', text: string, counts: { reasoningTokens: number; answerTokens: number; budgetHit?: boolean }): void {
    this.notify({ type: 'notification', method: 'exchange/delta', params: { id, kind, text, ...counts, at: Date.now() } });
    this.persistSoon();
  }

  /** Shows a proposed edit with Accept, Reject and "Review in diff editor"; it starts `pending`. */
  showProposal(id: string, proposal: Proposal, message?: string): void {
    this.notify({ type: 'notification', method: 'exchange/proposal', params: { id, proposal, message } });
    this.persistSoon(true);
  }

  /** What the check of the exchange's proposal found (or that it runs). */
  setProposalCheck(id: string, check: CheckVerdict): void {
    this.notify({ type: 'notification', method: 'exchange/proposalCheck', params: { id, check } });
    this.persistSoon(true);
  }

  /** Why the exchange proposes no edit; `canContinue` offers "Continue" (the answer was cut off). */
  setNotice(id: string, text: string, canContinue: boolean): void {
    this.notify({ type: 'notification', method: 'exchange/notice', params: { id, text, canContinue } });
    this.persistSoon(true);
  }

  /** The proposal was accepted or rejected (from the view, a command or a keybinding). */
  setProposalState(id: string, state: ProposalState, message?: string): void {
    this.notify({ type: 'notification', method: 'exchange/proposalState', params: { id, state, message } });
    this.persistSoon(true);
  }

  finishExchange(id: string, result: FinishExchangeOptions): void {
    const { status, stats, budgetHit = false, error, truncation, userTurn } = result;
    this.notify({ type: 'notification', method: 'exchange/finished', params: { id, status, at: Date.now(), stats, budgetHit, error, truncation, userTurn } });
    this.persistSoon(true);
  }

  getExchange(id: string): ExchangeRecord | undefined {
    return this.records.find((r) => r.info.id === id);
  }

  /** Every exchange, oldest first. */
  get exchanges(): readonly ExchangeRecord[] {
    return this.records;
  }

  /** The exchange whose proposal is still pending, newest first (for Accept/Reject commands). */
  latestPendingProposal(): ExchangeRecord | undefined {
    return [...this.records].reverse().find((r) => r.proposal?.state === 'pending');
  }

  /** The turns to send before a follow-up of `parentId`: user turns and answers, no reasoning. */
  followUpTurns(parentId: string | undefined): PriorTurn[] {
    return followUpTurns(this.records, parentId);
  }

  /** Clears every finished exchange (running ones stay). */
  clearHistory(): void {
    const keep = this.records.filter(isRunning);
    this.notify({ type: 'notification', method: 'history/restore', params: { exchanges: keep } });
    this.persistSoon(true);
  }

  /** Shows the view; `preserveFocus` keeps the keyboard in the editor. */
  async reveal(preserveFocus = true): Promise<void> {
    if (this.view) {
      this.view.show(preserveFocus);
      return;
    }
    await vscode.commands.executeCommand(`${REASONING_VIEW_ID}.focus`);
  }

  /** Moves the keyboard focus to the follow-up box. */
  async focusInput(): Promise<void> {
    await this.reveal(false);
    this.post({ type: 'notification', method: 'view/focusInput', params: {} });
  }

  // ───────────── WebviewViewProvider ─────────────

  resolveWebviewView(view: vscode.WebviewView): void {
    this.view = view;
    const root = this.context.extensionUri;
    view.webview.options = {
      enableScripts: true,
      enableForms: false,
      localResourceRoots: [vscode.Uri.joinPath(root, 'dist'), vscode.Uri.joinPath(root, 'media')],
    };
    const nonce = randomBytes(18).toString('base64');
    view.webview.html = webviewHtml({
      cspSource: view.webview.cspSource,
      nonce,
      scriptUri: view.webview.asWebviewUri(vscode.Uri.joinPath(root, 'dist', 'webview.js')).toString(),
      styleUri: view.webview.asWebviewUri(vscode.Uri.joinPath(root, 'dist', 'webview.css')).toString(),
    });
    const subs = [
      view.webview.onDidReceiveMessage((raw: unknown) => void this.onMessage(raw)),
      view.onDidDispose(() => {
        if (this.view === view) this.view = undefined;
        for (const d of subs) d.dispose();
      }),
    ];
  }

  dispose(): void {
    if (this.persistTimer) clearTimeout(this.persistTimer);
    this.persistTimer = undefined;
    void this.persistNow();
    for (const d of this.disposables) d.dispose();
  }

  // ───────────── messages ─────────────

  private notify(n: HostNotificationMessage): void {
    applyNotification(this.records, n);
    this.post(n);
  }

  private post(m: HostMessage): void {
    // A hidden view has no page to receive it; `history/get` brings the page up to date later.
    if (!this.view?.visible) return;
    this.view.webview.postMessage(m).then(undefined, (e: unknown) => this.log.warn(`Reasoning view: posting ${describe(m)} failed: ${String(e)}`));
  }

  private async onMessage(raw: unknown): Promise<void> {
    const parsed = parseWebviewMessage(raw);
    if (!parsed.ok) {
      this.log.warn(`Reasoning view: ignored a malformed message (${parsed.reason}).`);
      if (parsed.requestId !== undefined) this.post({ type: 'error', requestId: parsed.requestId, error: { code: 'invalid-request', message: parsed.reason } });
      return;
    }
    const m = parsed.message;
    try {
      const result = await this.handle(m);
      this.post({ type: 'reply', requestId: m.requestId, result });
    } catch (e) {
      const code: ErrorCode = e instanceof RequestError ? e.code : 'failed';
      const message = e instanceof Error ? e.message : String(e);
      if (code === 'failed') this.log.error(`Reasoning view: ${m.method} failed: ${message}`);
      else this.log.info(`Reasoning view: ${m.method} refused: ${message}`);
      this.post({ type: 'error', requestId: m.requestId, error: { code, message } });
    }
  }

  private handle(m: WebviewRequestMessage): Promise<RequestReply<WebviewRequestName>> {
    switch (m.method) {
      case 'history/get':
        return Promise.resolve({ exchanges: this.records } satisfies RequestReply<'history/get'>);
      case 'history/clear':
        return this.confirmClear();
      case 'exchange/export':
        return this.exportExchange(this.exchange(m.params.id));
      case 'edit/accept':
        return this.forward(this.acceptEmitter, 'Accepting edits', this.pendingProposal(m.params, 'accept'));
      case 'edit/reject':
        return this.forward(this.rejectEmitter, 'Rejecting edits', this.pendingProposal(m.params, 'reject'));
      case 'edit/acceptHunk':
        return this.forward(this.acceptHunkEmitter, 'Accepting one change', { ...this.pendingProposal(m.params, 'accept'), hunk: m.params.hunk, header: m.params.header });
      case 'edit/rejectHunk':
        return this.forward(this.rejectHunkEmitter, 'Rejecting one change', { ...this.pendingProposal(m.params, 'reject'), hunk: m.params.hunk, header: m.params.header });
      case 'exchange/continue': {
        const r = this.exchange(m.params.id);
        if (isRunning(r)) throw new RequestError('invalid-request', 'This answer is still being written.');
        return this.forward(this.continueEmitter, 'Continuing answers', { exchangeId: r.info.id, exchange: r });
      }
      case 'edit/review': {
        const r = this.exchange(m.params.id);
        if (!r.proposal) throw new RequestError('invalid-request', 'This exchange has no proposed edit to review.');
        return this.forward(this.reviewEmitter, 'Reviewing in the diff editor', { exchangeId: r.info.id, exchange: r });
      }
      case 'run/cancel': {
        const r = this.exchange(m.params.id);
        if (!isRunning(r)) return Promise.resolve(null); // already over: nothing to cancel
        return this.forward(this.cancelEmitter, 'Cancelling', { exchangeId: r.info.id, exchange: r });
      }
      case 'followUp': {
        const parent = m.params.parentId === undefined ? undefined : this.exchange(m.params.parentId);
        return this.forward(this.followUpEmitter, 'Follow-up questions', {
          text: m.params.text.trim(),
          parentId: parent?.info.id,
          turns: followUpTurns(this.records, parent?.info.id),
          context: parent ? { file: parent.info.file, selection: parent.info.selection } : undefined,
        });
      }
      case 'answer/insertComment': {
        const r = this.exchange(m.params.id);
        const text = answerOnly(r.answer);
        if (text === '') throw new RequestError('invalid-request', 'This exchange has no answer to insert yet.');
        return this.forward(this.insertCommentEmitter, 'Inserting answers as comments', { exchangeId: r.info.id, exchange: r, text });
      }
      case 'link/open':
        return this.openLink(m.params);
      case 'clipboard/write':
        return Promise.resolve(vscode.env.clipboard.writeText(m.params.text)).then(() => null);
    }
  }

  private exchange(id: string): ExchangeRecord {
    const r = this.getExchange(id);
    if (!r) throw new RequestError('unknown-exchange', 'That exchange is no longer in the history (it may have been cleared).');
    return r;
  }

  private pendingProposal(p: RequestParams<'edit/accept'>, verb: string): ExchangeRequest {
    const r = this.exchange(p.id);
    if (!r.proposal) throw new RequestError('invalid-request', `There is no proposed edit to ${verb}.`);
    if (r.proposal.state !== 'pending') throw new RequestError('rejected', `This edit was already ${r.proposal.state}.`);
    return { exchangeId: r.info.id, exchange: r };
  }

  private async forward<T>(emitter: RequestEmitter<T>, what: string, params: T): Promise<null> {
    if (!emitter.hasListeners) {
      throw new RequestError('not-available', `${what} is not available in this build of R1 Coder yet; nothing was changed.`);
    }
    await emitter.fire(params);
    return null;
  }

  private async confirmClear(): Promise<RequestReply<'history/clear'>> {
    const finished = this.records.filter((r) => !isRunning(r)).length;
    if (finished === 0) return { cleared: false };
    const pick = await vscode.window.showWarningMessage(
      `Clear the R1 history of this workspace? ${finished} exchange${finished === 1 ? '' : 's'}, with their reasoning, will be deleted.`,
      { modal: true },
      'Clear History',
    );
    if (pick !== 'Clear History') return { cleared: false };
    this.clearHistory();
    return { cleared: true };
  }

  private async exportExchange(r: ExchangeRecord): Promise<RequestReply<'exchange/export'>> {
    const folder = vscode.workspace.workspaceFolders?.[0]?.uri;
    const stamp = new Date(r.info.createdAt).toISOString().replace(/[:.]/g, '-').slice(0, 19);
    const base = `r1-${r.info.command}-${stamp}.md`;
    const target = await vscode.window.showSaveDialog({
      defaultUri: folder ? vscode.Uri.joinPath(folder, base) : undefined,
      filters: { Markdown: ['md'] },
      saveLabel: 'Export',
      title: 'Export R1 exchange as Markdown',
    });
    if (!target) return { saved: false };
    try {
      await vscode.workspace.fs.writeFile(target, new TextEncoder().encode(exchangeToMarkdown(r)));
    } catch (e) {
      throw new Error(`Could not write ${target.fsPath}: ${e instanceof Error ? e.message : String(e)}. Choose another folder.`);
    }
    this.log.info(`Reasoning view: exported exchange ${r.info.id} to ${target.fsPath}.`);
    return { saved: true, path: target.fsPath };
  }

  private async openLink(p: RequestParams<'link/open'>): Promise<null> {
    const target = classifyLink(p.href);
    if (target.kind === 'rejected') throw new RequestError('rejected', `Not opened: ${target.reason}.`);
    if (target.kind === 'external') {
      // Model output is untrusted: a link can carry the user's code in its query. Show the whole
      // address and open it only when the user says so.
      const pick = await vscode.window.showWarningMessage(
        'Open this web link from R1\'s answer?',
        { modal: true, detail: `${target.url}\n\nThe whole address is shown above: check that it carries nothing of yours (such as code) before opening it.` },
        'Open Link',
      );
      if (pick !== 'Open Link') return null;
      const ok = await vscode.env.openExternal(vscode.Uri.parse(target.url, true));
      if (!ok) throw new RequestError('failed', `Could not open ${target.url}.`);
      return null;
    }
    const uri = await this.resolveWorkspaceFile(target.path, target.absolute, p.id);
    const selection = target.line ? new vscode.Range(target.line - 1, 0, target.line - 1, 0) : undefined;
    await vscode.window.showTextDocument(uri, { selection, preview: true });
    return null;
  }

  /** A file path from a link, as a URI inside a workspace folder, or a refusal. */
  private async resolveWorkspaceFile(raw: string, absolute: boolean, exchangeId: string | undefined): Promise<vscode.Uri> {
    const folders = vscode.workspace.workspaceFolders?.filter((f) => f.uri.scheme === 'file') ?? [];
    if (folders.length === 0) throw new RequestError('rejected', 'File links open only inside a workspace folder, and none is open.');
    let decoded: string;
    try {
      decoded = decodeURIComponent(raw);
    } catch {
      throw new RequestError('rejected', 'Not opened: the link is not a valid path.');
    }
    let candidates: string[];
    if (/^file:/i.test(raw)) {
      candidates = [vscode.Uri.parse(raw, true).fsPath];
    } else if (absolute) {
      candidates = [path.resolve(decoded)];
    } else {
      // Relative to the exchange's file first, then to each workspace folder.
      const bases: string[] = [];
      const fileUri = exchangeId ? this.getExchange(exchangeId)?.info.file?.uri : undefined;
      if (fileUri?.startsWith('file:')) bases.push(path.dirname(vscode.Uri.parse(fileUri).fsPath));
      bases.push(...folders.map((f) => f.uri.fsPath));
      candidates = bases.map((b) => path.resolve(b, decoded));
    }
    const roots = await Promise.all(folders.map((f) => realpath(f.uri.fsPath).catch(() => f.uri.fsPath)));
    for (const c of candidates) {
      let real: string;
      try {
        real = await realpath(c);
      } catch {
        continue; // does not exist
      }
      if (roots.some((root) => isInside(root, real))) return vscode.Uri.file(real);
      throw new RequestError('rejected', `Not opened: ${c} is outside the workspace.`);
    }
    throw new RequestError('rejected', `Not opened: no file ${decoded} in the workspace.`);
  }

  // ───────────── persistence ─────────────

  private trimHistory(): void {
    while (this.records.length > HISTORY_LIMIT) {
      const i = this.records.findIndex((r) => !isRunning(r));
      if (i < 0) break;
      this.records.splice(i, 1);
    }
  }

  private persistSoon(now = false): void {
    if (now) {
      if (this.persistTimer) clearTimeout(this.persistTimer);
      this.persistTimer = undefined;
      void this.persistNow();
      return;
    }
    this.persistTimer ??= setTimeout(() => {
      this.persistTimer = undefined;
      void this.persistNow();
    }, PERSIST_DEBOUNCE_MS);
  }

  private async persistNow(): Promise<void> {
    try {
      await this.context.workspaceState.update(HISTORY_KEY, this.records);
    } catch (e) {
      this.log.warn(`Reasoning view: saving the history failed: ${String(e)}`);
    }
  }
}

function isInside(root: string, p: string): boolean {
  const rel = path.relative(root, p);
  return rel === '' || (rel !== '..' && !rel.startsWith(`..${path.sep}`) && !path.isAbsolute(rel));
}

function newId(): string {
  return `x${Date.now().toString(36)}${randomBytes(4).toString('hex')}`;
}

function describe(m: HostMessage): string {
  return m.type === 'notification' ? m.method : `${m.type} #${m.requestId}`;
}

/**
 * Registers the Reasoning view and returns its provider, whose API the commands drive.
 * Wiring in `activate` is one line: `const reasoning = registerReasoningView(context, log);`
 */
export function registerReasoningView(context: vscode.ExtensionContext, log: vscode.LogOutputChannel): ReasoningViewProvider {
  const provider = new ReasoningViewProvider(context, log);
  context.subscriptions.push(provider, vscode.window.registerWebviewViewProvider(REASONING_VIEW_ID, provider));
  return provider;
}

export type { HostNotifications };
