/**
 * The Reasoning view. It keeps the same list of exchange records as the host (both apply host
 * notifications with `applyNotification`), renders each as an `ExchangeView`, and turns the
 * user's clicks into typed requests.
 */
import { provideVSCodeDesignSystem, vsCodeButton, vsCodeProgressRing, vsCodeTextArea } from '@vscode/webview-ui-toolkit';
import {
  applyNotification,
  commandTitle,
  isRunning,
  verdictLabel,
  type ExchangeRecord,
  type HostNotificationMessage,
  type RequestParams,
  type RequestReply,
  type WebviewRequestName,
} from '../src/protocol/webview';
import { button, h, icon, plural } from './dom';
import { ExchangeView, type ExchangeHost } from './exchangeView';
import { HostError, Rpc } from './rpc';

// Not vscode-tag/vscode-badge: their template carries an inline style attribute, which the CSP
// (rightly) refuses; `.tag` below looks the same.
provideVSCodeDesignSystem().register(vsCodeButton(), vsCodeTextArea(), vsCodeProgressRing());

/** What the webview keeps across its own reloads (`vscode.setState`). */
interface SavedState {
  v: 1;
  exchanges: ExchangeRecord[];
  /** The user's open/closed choice for each exchange's reasoning. */
  open: Record<string, boolean>;
  draft: string;
  /** The exchange the input box follows up; null: a new conversation. */
  replyTo: string | null | undefined;
}

class App implements ExchangeHost {
  private readonly rpc = new Rpc((n) => this.onNotification(n));
  private records: ExchangeRecord[] = [];
  private readonly views = new Map<string, ExchangeView>();
  private open: Record<string, boolean> = {};
  private replyToId: string | null | undefined;
  private saveTimer: ReturnType<typeof setTimeout> | undefined;
  private ticker: ReturnType<typeof setInterval> | undefined;

  private readonly list: HTMLElement;
  private readonly empty: HTMLElement;
  private readonly countEl: HTMLElement;
  private readonly clearBtn: HTMLElement;
  private readonly input: HTMLElement & { value: string };
  private readonly sendBtn: HTMLElement;
  private readonly replyLine: HTMLElement;
  private readonly replyLabel: HTMLElement;
  private readonly composerError: HTMLElement;
  private readonly live: HTMLElement;
  private readonly toast: HTMLElement;

  constructor(root: HTMLElement) {
    this.countEl = h('span', { class: 'tb-count' });
    this.clearBtn = button('Clear history', { appearance: 'icon', icon: 'trash', className: 'tb-clear', onClick: () => void this.clearHistory() });
    const toolbar = h('div', { class: 'toolbar', role: 'toolbar', 'aria-label': 'History' }, this.countEl, h('span', { class: 'spacer' }), this.clearBtn);

    this.empty = h(
      'div',
      { class: 'empty' },
      h('h2', null, 'No reasoning yet'),
      h('p', null, 'Select code in an editor and run R1: Ask, R1: Fix or R1: Explain from the context menu or the Command Palette. R1 thinks out loud here first; then comes its answer and, for a fix, the proposed edit to accept or reject.'),
      h('p', null, 'Everything runs on this machine.'),
    );
    this.list = h('div', { class: 'exchanges', role: 'feed', 'aria-label': 'R1 exchanges' });
    this.toast = h('div', { class: 'toast', role: 'alert', hidden: true });

    // Follow-up composer.
    this.replyLabel = h('span', { class: 'cp-reply-label' });
    const detach = button('Start a new conversation', { appearance: 'icon', icon: 'close', className: 'cp-detach', onClick: () => this.replyTo(null) });
    this.replyLine = h('div', { class: 'cp-reply', hidden: true }, this.replyLabel, detach);
    this.input = h('vscode-text-area', { class: 'cp-input', rows: 2, resize: 'vertical', placeholder: 'Ask R1…', 'aria-label': 'Message to R1' }) as HTMLElement & { value: string };
    this.sendBtn = button('Send', { appearance: 'primary', icon: 'send', className: 'cp-send', onClick: () => void this.send() });
    this.composerError = h('p', { class: 'cp-error', hidden: true });
    const hint = h('span', { class: 'cp-hint' }, 'Enter to send · Shift+Enter for a new line');
    const form = h('div', { class: 'composer', role: 'form', 'aria-label': 'Follow-up' }, this.replyLine, this.input, h('div', { class: 'cp-row' }, hint, h('span', { class: 'spacer' }), this.sendBtn), this.composerError);
    this.input.addEventListener('keydown', (e: KeyboardEvent) => {
      if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
        e.preventDefault();
        void this.send();
      }
    });
    this.input.addEventListener('input', () => this.saveSoon());

    this.live = h('div', { class: 'sr-only', 'aria-live': 'polite', 'aria-atomic': 'true', role: 'status' });
    root.replaceChildren(toolbar, h('main', { class: 'content' }, this.empty, this.list), this.toast, form, this.live);

    // Links in model output open only through the extension, which checks them again.
    document.addEventListener('click', (e) => this.onDocumentClick(e));
    document.addEventListener('auxclick', (e) => {
      if ((e.target as Element | null)?.closest?.('a')) e.preventDefault();
    });

    const saved = this.rpc.api.getState() as SavedState | undefined;
    if (saved?.v === 1 && Array.isArray(saved.exchanges)) {
      this.open = saved.open ?? {};
      this.replyToId = saved.replyTo;
      this.input.value = saved.draft ?? '';
      this.setRecords(saved.exchanges);
    } else {
      this.setRecords([]);
    }
    void this.loadHistory();
  }

  // ───────────── state ─────────────

  private async loadHistory(): Promise<void> {
    try {
      const { exchanges } = await this.rpc.request('history/get', {});
      this.setRecords(exchanges);
    } catch (e) {
      this.showError(`Could not load the history: ${message(e)}`);
    }
  }

  private setRecords(records: ExchangeRecord[]): void {
    this.records = records;
    const ids = new Set(records.map((r) => r.info.id));
    for (const k of Object.keys(this.open)) if (!ids.has(k)) delete this.open[k];
    if (this.replyToId && !ids.has(this.replyToId)) this.replyToId = undefined;
    this.views.clear();
    this.list.replaceChildren(
      ...records.map((r) => {
        const v = new ExchangeView(r, this);
        this.views.set(r.info.id, v);
        return v.el;
      }),
    );
    this.afterChange();
  }

  private onNotification(n: HostNotificationMessage): void {
    if (n.method === 'history/restore') {
      applyNotification(this.records, n);
      this.setRecords(this.records);
      return;
    }
    if (n.method === 'view/focusInput') {
      this.input.focus();
      return;
    }
    const stick = this.nearBottom();
    const before = n.method === 'exchange/started' ? undefined : this.records.find((r) => r.info.id === n.params.id);
    const wasRunning = before ? isRunning(before) : false;
    const r = applyNotification(this.records, n);
    if (!r) return;
    let view = this.views.get(r.info.id);
    if (!view) {
      view = new ExchangeView(r, this);
      this.views.set(r.info.id, view);
      this.list.appendChild(view.el);
      if (n.method === 'exchange/started') {
        this.replyToId = undefined; // the input follows the newest exchange again
        requestAnimationFrame(() => view?.el.scrollIntoView({ block: 'start' }));
        this.announce(`${commandTitle(r.info.command)} started${r.info.file ? ` on ${r.info.file.label}` : ''}.`);
      }
    }
    const hadFocus = view.el.contains(document.activeElement);
    view.update(r);

    if (n.method === 'exchange/proposal') this.proposalArrived(view, r);
    if (n.method === 'exchange/finished' && wasRunning) this.finished(view, r, hadFocus);
    if (n.method === 'exchange/proposalCheck' && r.proposal && r.proposal.check?.kind !== 'checking') {
      this.announce(`Check of the edit to ${r.proposal.file.label}: ${verdictLabel(r.proposal.check!)}.`);
    }
    if (n.method === 'exchange/notice') this.announce(`No edit proposed: ${n.params.text}`);
    if (n.method === 'exchange/proposalState' && r.proposal && r.proposal.state !== 'pending') {
      this.announce(`Edit to ${r.proposal.file.label} ${r.proposal.state}.`);
      if (hadFocus && !view.el.contains(document.activeElement)) view.focusTitle();
    }
    if (stick) this.scrollToBottom();
    this.afterChange();
  }

  private proposalArrived(view: ExchangeView, r: ExchangeRecord): void {
    const p = r.proposal!;
    this.announce(`Edit proposed for ${p.file.label}. Accept, reject, or review it in the diff editor.`);
    // Move the keyboard to the decision, unless the user is typing or working elsewhere in the view.
    // Never pull the keyboard out of the editor: only when the view itself has focus.
    const active = document.activeElement;
    const idle = !active || active === document.body || !active.isConnected || view.el.contains(active);
    if (document.hasFocus() && idle) view.focusProposal();
  }

  private finished(view: ExchangeView, r: ExchangeRecord, hadFocus: boolean): void {
    const took = r.runningSince !== undefined && r.finishedAt !== undefined ? ` in ${((r.finishedAt - r.runningSince) / 1000).toFixed(1)} seconds` : '';
    const what = `${commandTitle(r.info.command)}${r.info.file ? ` on ${r.info.file.label}` : ''}`;
    const tokens = plural(r.reasoningTokens + r.answerTokens, 'token');
    switch (r.status) {
      case 'complete':
        this.announce(`${what} complete: ${tokens}${took}.${r.budgetHit ? ' The thinking budget cut the reasoning.' : ''}${r.proposal?.state === 'pending' ? ' An edit is proposed.' : ''}`);
        break;
      case 'length':
        this.announce(`${what} stopped at the token limit after ${tokens}.`);
        break;
      case 'cancelled':
        this.announce(`${what} cancelled.`);
        break;
      case 'error':
        this.announce(`${what} failed: ${r.error ?? 'unknown error'}`);
        break;
    }
    // The Cancel button the user may have been on is gone: land on something that stays.
    const active = document.activeElement;
    if (hadFocus && (!active || active === document.body || !view.el.contains(active))) {
      if (!(r.proposal?.state === 'pending' && view.focusProposal())) view.focusTitle();
    }
  }

  private afterChange(): void {
    const n = this.records.length;
    this.empty.hidden = n > 0;
    this.countEl.textContent = n === 0 ? '' : plural(n, 'exchange');
    this.clearBtn.toggleAttribute('disabled', this.records.every(isRunning));
    this.list.setAttribute('aria-busy', String(this.records.some(isRunning)));
    this.updateReplyLine();
    const running = this.records.some(isRunning);
    if (running && !this.ticker) {
      this.ticker = setInterval(() => {
        const now = Date.now();
        for (const v of this.views.values()) v.tick(now);
      }, 200);
    } else if (!running && this.ticker) {
      clearInterval(this.ticker);
      this.ticker = undefined;
    }
    this.saveSoon();
  }

  private saveSoon(): void {
    this.saveTimer ??= setTimeout(() => {
      this.saveTimer = undefined;
      const state: SavedState = { v: 1, exchanges: this.records, open: this.open, draft: this.input.value ?? '', replyTo: this.replyToId };
      this.rpc.api.setState(state);
    }, 300);
  }

  // ───────────── follow-ups ─────────────

  /** The exchange the next message follows up: the chosen one, else the newest. */
  private replyTarget(): ExchangeRecord | undefined {
    if (this.replyToId === null) return undefined;
    if (this.replyToId) return this.records.find((r) => r.info.id === this.replyToId);
    return this.records.at(-1);
  }

  private updateReplyLine(): void {
    const t = this.replyTarget();
    this.replyLine.hidden = !t;
    this.input.setAttribute('placeholder', t ? 'Ask a follow-up…' : 'Ask R1…');
    if (t) this.replyLabel.textContent = `Following up: ${commandTitle(t.info.command)}${t.info.file ? ` · ${t.info.file.label}` : ''} — “${truncate(t.info.prompt, 60)}”`;
  }

  replyTo(id: string | null): void {
    this.replyToId = id;
    this.updateReplyLine();
    this.saveSoon();
    this.input.focus();
  }

  private async send(): Promise<void> {
    const text = (this.input.value ?? '').trim();
    if (text === '' || this.sendBtn.hasAttribute('disabled')) return;
    this.composerError.hidden = true;
    this.sendBtn.setAttribute('disabled', '');
    try {
      const parentId = this.replyTarget()?.info.id;
      await this.rpc.request('followUp', parentId ? { text, parentId } : { text });
      this.input.value = '';
      this.saveSoon();
    } catch (e) {
      this.composerError.textContent = message(e);
      this.composerError.hidden = false;
      this.announce(`Not sent: ${message(e)}`);
    } finally {
      this.sendBtn.removeAttribute('disabled');
    }
  }

  // ───────────── ExchangeHost ─────────────

  accept(id: string): Promise<void> {
    return this.act('edit/accept', { id }, 'Accept failed');
  }

  reject(id: string): Promise<void> {
    return this.act('edit/reject', { id }, 'Reject failed');
  }

  review(id: string): Promise<void> {
    return this.act('edit/review', { id }, 'Could not open the diff editor');
  }

  acceptHunk(id: string, hunk: number, header: string): Promise<void> {
    return this.act('edit/acceptHunk', { id, hunk, header }, 'Accepting the change failed');
  }

  rejectHunk(id: string, hunk: number, header: string): Promise<void> {
    return this.act('edit/rejectHunk', { id, hunk, header }, 'Rejecting the change failed');
  }

  continueExchange(id: string): Promise<void> {
    return this.act('exchange/continue', { id }, 'Could not continue');
  }

  cancel(id: string): Promise<void> {
    return this.act('run/cancel', { id }, 'Cancel failed');
  }

  insertComment(id: string): Promise<void> {
    return this.act('answer/insertComment', { id }, 'Could not insert the comment');
  }

  async exportExchange(id: string): Promise<void> {
    try {
      const r = await this.rpc.request('exchange/export', { id });
      if (r.saved) this.announce(`Exported to ${r.path ?? 'a Markdown file'}.`);
    } catch (e) {
      this.showError(`Export failed: ${message(e)}`);
    }
  }

  reasoningToggled(id: string, open: boolean): void {
    this.open[id] = open;
    this.saveSoon();
  }

  reasoningChoice(id: string): boolean | undefined {
    return this.open[id];
  }

  private async clearHistory(): Promise<void> {
    try {
      const r = await this.rpc.request('history/clear', {});
      if (r.cleared) this.announce('History cleared.');
    } catch (e) {
      this.showError(`Could not clear the history: ${message(e)}`);
    }
  }

  private async act<K extends WebviewRequestName>(method: K, params: RequestParams<K>, failure: string): Promise<void> {
    try {
      await this.rpc.request(method, params) as RequestReply<K>;
    } catch (e) {
      this.showError(`${failure}: ${message(e)}`);
    }
  }

  // ───────────── links, copy, messages ─────────────

  private onDocumentClick(e: MouseEvent): void {
    const target = e.target as Element | null;
    const a = target?.closest?.('a');
    if (a) {
      e.preventDefault();
      const href = a.getAttribute('data-href');
      if (!href) return;
      const id = a.closest('article.exchange')?.getAttribute('data-id') ?? undefined;
      this.rpc.request('link/open', id ? { href, id } : { href }).catch((err: unknown) => this.showError(message(err)));
      return;
    }
    const copy = target?.closest?.('[data-action="copy-code"]');
    if (copy) {
      const code = copy.closest('.code-block')?.querySelector('code')?.textContent ?? '';
      this.rpc
        .request('clipboard/write', { text: code })
        .then(() => this.announce('Code copied.'))
        .catch((err: unknown) => this.showError(`Copy failed: ${message(err)}`));
    }
  }

  private showError(text: string): void {
    this.toast.replaceChildren(icon('warning'), h('span', null, text), button('Dismiss', { appearance: 'icon', icon: 'close', onClick: () => (this.toast.hidden = true) }));
    this.toast.hidden = false;
  }

  /** Says `text` through the live region (re-announces a repeated text). */
  private announce(text: string): void {
    this.live.textContent = '';
    setTimeout(() => (this.live.textContent = text), 50);
  }

  private nearBottom(): boolean {
    const el = document.scrollingElement ?? document.documentElement;
    return el.scrollHeight - el.scrollTop - el.clientHeight < 48;
  }

  private scrollToBottom(): void {
    const el = document.scrollingElement ?? document.documentElement;
    el.scrollTop = el.scrollHeight;
  }
}

function message(e: unknown): string {
  return e instanceof HostError || e instanceof Error ? e.message : String(e);
}

function truncate(s: string, n: number): string {
  const one = s.replace(/\s+/g, ' ').trim();
  return one.length > n ? `${one.slice(0, n - 1)}…` : one;
}

const root = document.getElementById('app') ?? document.body.appendChild(h('div', { id: 'app' }));
new App(root);
