/** The DOM of one exchange: header, reasoning, answer, proposed edit, figures. */
import { commandTitle, isRunning, stripThinkTags, verdictLabel, type CheckVerdict, type ExchangeRecord, type ProposalRecord } from '../src/protocol/webview';
import { diffRows, fileHunks, hunkHeader } from '../src/protocol/diff';
import { button, formatDuration, h, icon, plural } from './dom';
import { highlight, renderMarkdown } from './markdown';

/** What an exchange view needs from the app. */
export interface ExchangeHost {
  accept(id: string): Promise<void>;
  reject(id: string): Promise<void>;
  review(id: string): Promise<void>;
  acceptHunk(id: string, hunk: number, header: string): Promise<void>;
  rejectHunk(id: string, hunk: number, header: string): Promise<void>;
  /** "Continue" on a cut-off answer. */
  continueExchange(id: string): Promise<void>;
  cancel(id: string): Promise<void>;
  exportExchange(id: string): Promise<void>;
  insertComment(id: string): Promise<void>;
  replyTo(id: string): void;
  /** The user opened or closed the reasoning. */
  reasoningToggled(id: string, open: boolean): void;
  /** Whether the user chose to keep this exchange's reasoning open (true) or closed (false). */
  reasoningChoice(id: string): boolean | undefined;
}

const isMac = /Mac|iPhone|iPad/.test(navigator.platform || navigator.userAgent);
const ACCEPT_KEYS = isMac ? '⌘⌥Enter' : 'Ctrl+Alt+Enter';
const REJECT_KEYS = isMac ? '⌘⌥⌫' : 'Ctrl+Alt+Backspace';

let uid = 0;

export class ExchangeView {
  readonly el: HTMLElement;
  private readonly titleEl: HTMLElement;
  private readonly queueEl: HTMLElement;
  private readonly details: HTMLDetailsElement;
  private readonly summaryLabel: HTMLElement;
  private readonly summaryMeta: HTMLElement;
  private readonly summarySpinner: HTMLElement;
  private readonly reasoningText: HTMLElement;
  private readonly budgetMarker: HTMLElement;
  private readonly answerEl: HTMLElement;
  private readonly proposalSlot: HTMLElement;
  private readonly errorEl: HTMLElement;
  private readonly noticeEl: HTMLElement;
  private readonly statsEl: HTMLElement;
  private readonly actionsEl: HTMLElement;
  private readonly cancelBtn: HTMLElement;
  private readonly followBtn: HTMLElement;
  private readonly commentBtn: HTMLElement;

  private renderedReasoning = '';
  private renderedAnswer: string | undefined;
  private answerTimer: ReturnType<typeof setTimeout> | undefined;
  private proposalKey = '';
  private acceptBtn: HTMLElement | undefined;
  private record: ExchangeRecord;

  constructor(
    record: ExchangeRecord,
    private readonly host: ExchangeHost,
  ) {
    this.record = record;
    const n = ++uid;
    const id = record.info.id;
    const info = record.info;

    this.titleEl = h('h2', { class: 'ex-title', id: `ex-title-${n}`, tabindex: -1 }, info.file?.label ?? (info.command === 'followUp' ? 'Follow-up' : 'Question'));
    const selection = info.selection
      ? h('span', { class: 'ex-sel' }, info.selection.startLine === info.selection.endLine ? `line ${info.selection.startLine}` : `lines ${info.selection.startLine}–${info.selection.endLine}`)
      : null;
    const exportBtn = button('Export as Markdown', { appearance: 'icon', icon: 'save', onClick: () => void this.host.exportExchange(id) });
    const header = h(
      'header',
      { class: 'ex-head' },
      h('div', { class: 'ex-title-row' }, h('span', { class: `tag ex-cmd cmd-${info.command}` }, commandTitle(info.command)), this.titleEl, selection, h('span', { class: 'spacer' }), exportBtn),
      info.prompt.trim() ? h('p', { class: 'ex-prompt' }, info.prompt.trim()) : null,
    );

    this.queueEl = h('p', { class: 'ex-queue', hidden: true });

    // Reasoning: a disclosure, open while it streams; the user may close it at any time.
    this.summaryLabel = h('span', { class: 'rs-label' }, 'Reasoning');
    this.summaryMeta = h('span', { class: 'rs-meta' });
    this.summarySpinner = h('vscode-progress-ring', { class: 'rs-spinner', 'aria-hidden': 'true' });
    const summary = h('summary', { class: 'rs-summary' }, icon('chevron'), this.summaryLabel, this.summarySpinner, this.summaryMeta);
    this.reasoningText = h('div', { class: 'rs-text' });
    this.budgetMarker = h('p', { class: 'rs-budget', hidden: true }, icon('warning'), h('span'));
    this.details = h('details', { class: 'reasoning' }, summary, h('div', { class: 'rs-body' }, this.reasoningText, this.budgetMarker)) as HTMLDetailsElement;
    // A click on the summary (mouse, Enter or Space) is the user's choice; remember it.
    summary.addEventListener('click', () => this.host.reasoningToggled(id, !this.details.open));

    this.answerEl = h('div', { class: 'answer markdown', hidden: true });
    this.proposalSlot = h('div', { class: 'proposal-slot' });
    this.errorEl = h('div', { class: 'ex-error', hidden: true });
    this.noticeEl = h('div', { class: 'ex-notice', role: 'note', hidden: true });
    this.statsEl = h('footer', { class: 'ex-stats', hidden: true });

    this.cancelBtn = button('Cancel', { icon: 'stop', className: 'ex-cancel', onClick: () => void this.host.cancel(id) });
    this.followBtn = button('Follow up', { icon: 'comment', className: 'ex-follow', onClick: () => this.host.replyTo(id) });
    this.commentBtn = button('Insert as comment', { icon: 'comment', className: 'ex-insert', onClick: () => void this.host.insertComment(id) });
    this.actionsEl = h('div', { class: 'ex-actions' }, this.cancelBtn, this.commentBtn, this.followBtn);

    this.el = h(
      'article',
      { class: 'exchange', 'data-id': id, 'aria-labelledby': `ex-title-${n}` },
      header,
      this.queueEl,
      this.details,
      this.answerEl,
      this.proposalSlot,
      this.noticeEl,
      this.errorEl,
      this.statsEl,
      this.actionsEl,
    );
    this.update(record);
  }

  get id(): string {
    return this.record.info.id;
  }

  /** Brings the DOM up to date with `record`. Cheap when little changed. */
  update(record: ExchangeRecord, now = Date.now()): void {
    this.record = record;
    const running = isRunning(record);
    this.el.dataset.status = record.status;
    this.el.setAttribute('aria-busy', String(running));

    // Queue.
    this.queueEl.hidden = record.status !== 'queued';
    if (record.status === 'queued') {
      this.queueEl.textContent = record.queuePosition && record.queuePosition > 1 ? `Queued: ${record.queuePosition - 1} request${record.queuePosition === 2 ? '' : 's'} ahead.` : 'Queued: runs next.';
    }

    this.updateReasoning(record, now);
    this.updateAnswer(record, !running);
    this.updateProposal(record.proposal);
    this.updateNotice(record);

    // Error / end state.
    const end = endNote(record);
    this.errorEl.hidden = end === undefined;
    if (end) {
      this.errorEl.replaceChildren(icon(record.status === 'error' ? 'warning' : 'stop'), h('span', null, end));
      this.errorEl.dataset.kind = record.status;
    }

    this.updateStats(record, now);

    this.cancelBtn.hidden = !running;
    const hasAnswer = stripThinkTags(record.answer).trim() !== '';
    this.commentBtn.hidden = running || !hasAnswer || record.info.command !== 'explain' || !record.info.file;
    this.followBtn.hidden = running;
  }

  /** The elapsed-time figures move even when no token arrives (long prefill, slow steps). */
  tick(now: number): void {
    if (isRunning(this.record)) {
      this.updateReasoningMeta(this.record, now);
      this.updateStats(this.record, now);
    }
  }

  /** Focuses the Accept button of a pending proposal; false when there is none. */
  focusProposal(): boolean {
    if (!this.acceptBtn?.isConnected) return false;
    this.acceptBtn.focus();
    return true;
  }

  focusTitle(): void {
    this.titleEl.focus();
  }

  private reasoningPhase(r: ExchangeRecord): boolean {
    return r.status === 'generating' && r.reasoningEndedAt === undefined;
  }

  private updateReasoning(r: ExchangeRecord, now: number): void {
    const text = stripThinkTags(r.reasoning).replace(/^\s+/, '');
    if (text.startsWith(this.renderedReasoning)) {
      const more = text.slice(this.renderedReasoning.length);
      if (more) this.reasoningText.appendChild(document.createTextNode(more));
    } else {
      this.reasoningText.textContent = text;
    }
    this.renderedReasoning = text;

    const thinking = this.reasoningPhase(r);
    const hasReasoning = text.trim() !== '' || thinking || r.status === 'queued';
    this.details.hidden = !hasReasoning;
    this.reasoningText.dataset.empty = String(text.trim() === '');

    // Open while the reasoning streams, closed afterwards, unless the user chose otherwise.
    const choice = this.host.reasoningChoice(r.info.id);
    const wantOpen = choice ?? thinking;
    if (this.details.open !== wantOpen) this.details.open = wantOpen;

    this.budgetMarker.hidden = !r.budgetHit;
    if (r.budgetHit) {
      (this.budgetMarker.lastChild as HTMLElement).textContent = `Thinking budget reached after ${plural(r.reasoningTokens, 'token')}: the reasoning was cut here and the answer forced.`;
    }
    this.updateReasoningMeta(r, now);
  }

  private updateReasoningMeta(r: ExchangeRecord, now: number): void {
    const thinking = this.reasoningPhase(r);
    this.summaryLabel.textContent = r.status === 'queued' ? 'Waiting' : thinking ? 'Thinking…' : 'Reasoning';
    this.summarySpinner.hidden = !thinking;
    const start = r.runningSince;
    const end = r.reasoningEndedAt ?? (thinking ? now : r.finishedAt);
    const parts = [plural(r.reasoningTokens, 'token')];
    if (start !== undefined && end !== undefined) parts.push(formatDuration(end - start));
    if (r.budgetHit) parts.push('budget reached');
    this.summaryMeta.textContent = parts.join(' · ');
  }

  private updateAnswer(r: ExchangeRecord, final: boolean): void {
    const text = stripThinkTags(r.answer).trim();
    this.answerEl.hidden = text === '';
    if (text === this.renderedAnswer) return;
    // Re-rendering markdown on every token is wasteful; a few times a second reads as live.
    if (final || this.renderedAnswer === undefined || text === '') {
      this.renderAnswer(text);
    } else {
      this.answerTimer ??= setTimeout(() => {
        this.answerTimer = undefined;
        this.renderAnswer(stripThinkTags(this.record.answer).trim());
      }, 80);
    }
  }

  private renderAnswer(text: string): void {
    if (this.answerTimer) clearTimeout(this.answerTimer);
    this.answerTimer = undefined;
    this.renderedAnswer = text;
    // Safe: renderMarkdown escapes all raw HTML and emits only links, text and highlighted code.
    this.answerEl.innerHTML = renderMarkdown(text);
    this.answerEl.hidden = text === '';
  }

  private noticeKey = '';

  /** Why a fix proposes no edit, with "Continue" when the answer was cut off. */
  private updateNotice(r: ExchangeRecord): void {
    const n = r.notice;
    const key = n ? `${n.text}|${n.canContinue}` : '';
    if (key === this.noticeKey) return;
    this.noticeKey = key;
    this.noticeEl.hidden = !n;
    if (!n) return this.noticeEl.replaceChildren();
    const id = r.info.id;
    const controls = h('div', { class: 'nt-buttons' });
    if (n.canContinue) {
      controls.append(
        button('Continue', { icon: 'send', className: 'nt-continue', title: 'Ask again with twice the token budget', onClick: () => void this.busy(controls, this.host.continueExchange(id)) }),
      );
    }
    this.noticeEl.replaceChildren(h('p', null, icon('warning'), h('span', null, `No edit proposed: ${n.text}`)), controls);
  }

  private updateProposal(p: ProposalRecord | undefined): void {
    const key = p ? `${p.state}|${p.message ?? ''}|${p.startLine}|${p.original.length}|${p.proposed.length}|${JSON.stringify(p.check ?? null)}` : '';
    if (key === this.proposalKey) return;
    this.proposalKey = key;
    this.acceptBtn = undefined;
    if (!p) {
      this.proposalSlot.replaceChildren();
      return;
    }
    const id = this.record.info.id;
    const view = diffRows(p);
    const lang = p.file.languageId ?? this.record.info.file?.languageId;
    const checking = p.check?.kind === 'checking';
    // Per-hunk decisions, when there is more than one hunk to decide on.
    const headers = fileHunks(p).map(hunkHeader);
    const perHunk = p.state === 'pending' && headers.length > 1;
    let hunkIndex = -1;
    const rows = view.rows.map((row) => {
      if (row.kind === 'hunk') {
        const i = ++hunkIndex;
        const cell = h('td', { class: 'd-code', colspan: 2 }, h('span', { class: 'd-hunk-text' }, row.text));
        if (perHunk) {
          const group = h('span', { class: 'd-hunk-buttons' });
          const header = headers[i];
          group.append(
            button('Accept change', { appearance: 'icon', icon: 'check', className: 'hk-accept', title: `Apply only this change (${i + 1} of ${headers.length})`, onClick: () => void this.busy(group, this.host.acceptHunk(id, i, header)) }),
            button('Reject change', { appearance: 'icon', icon: 'close', className: 'hk-reject', title: `Drop this change (${i + 1} of ${headers.length}) from the proposal`, onClick: () => void this.busy(group, this.host.rejectHunk(id, i, header)) }),
          );
          if (checking) for (const b of group.querySelectorAll('.hk-accept')) b.setAttribute('disabled', '');
          cell.append(group);
        }
        return h('tr', { class: 'd-hunk', 'data-hunk': String(i) }, h('td', { class: 'd-ln', colspan: 2 }), cell);
      }
      const code = h('td', { class: 'd-code' });
      code.innerHTML = highlight(row.text, lang); // escaped by highlight.js
      return h(
        'tr',
        { class: `d-${row.kind}` },
        h('td', { class: 'd-ln d-old' }, row.oldLine === undefined ? '' : String(row.oldLine)),
        h('td', { class: 'd-ln d-new' }, row.newLine === undefined ? '' : String(row.newLine)),
        h('td', { class: 'd-sign', 'aria-label': row.kind === 'add' ? 'added' : row.kind === 'del' ? 'removed' : undefined }, row.kind === 'add' ? '+' : row.kind === 'del' ? '−' : ' '),
        code,
      );
    });
    const table = h('table', { class: 'diff-table' }, h('tbody', null, ...rows));
    const unchanged = view.rows.length === 0;
    const stateLabel = STATE_LABELS[p.state];

    const controls = h('div', { class: 'pr-buttons' });
    if (p.state === 'pending') {
      const accept = button(perHunk ? 'Accept All' : 'Accept', { appearance: 'primary', icon: 'check', className: 'pr-accept', title: checking ? 'The edit is being checked against the editor\'s diagnostics' : `Apply this edit to ${p.file.label} (${ACCEPT_KEYS})`, onClick: () => void this.busy(controls, this.host.accept(id)) });
      // Not ready before its check has answered (the check has a deadline: r1.fix.checkTimeoutMs).
      if (checking) accept.setAttribute('disabled', '');
      const reject = button(perHunk ? 'Reject All' : 'Reject', { icon: 'close', className: 'pr-reject', title: `Discard this edit (${REJECT_KEYS})`, onClick: () => void this.busy(controls, this.host.reject(id)) });
      const review = button('Review in diff editor', { icon: 'diff', className: 'pr-review', onClick: () => void this.busy(controls, this.host.review(id)) });
      controls.append(accept, reject, review);
      this.acceptBtn = accept;
    }

    const section = h(
      'section',
      { class: `proposal state-${p.state}`, 'aria-label': `Proposed edit to ${p.file.label}` },
      h(
        'div',
        { class: 'pr-head' },
        h('h3', null, 'Proposed edit'),
        h('span', { class: 'pr-file', title: p.file.label }, p.file.label),
        h('span', { class: 'pr-count' }, h('span', { class: 'pr-add' }, `+${view.added}`), ' ', h('span', { class: 'pr-del' }, `−${view.removed}`)),
        p.attempt && p.attempt > 1 ? h('span', { class: 'tag pr-attempt' }, `Attempt ${p.attempt}`) : null,
        stateLabel ? h('span', { class: 'tag pr-state' }, stateLabel) : null,
      ),
      p.check ? checkNote(p.check) : null,
      unchanged
        ? h('p', { class: 'pr-empty' }, 'The proposed text is the same as the original.')
        : h('div', { class: 'diff', role: 'region', tabindex: 0, 'aria-label': `Unified diff of ${p.file.label}: ${view.added} lines added, ${view.removed} removed` }, table),
      controls,
      p.state === 'pending' ? h('p', { class: 'pr-hint' }, `Accept ${ACCEPT_KEYS} · Reject ${REJECT_KEYS}`) : null,
      p.message ? h('p', { class: 'pr-message', role: 'note' }, p.message) : null,
    );
    this.proposalSlot.replaceChildren(section);
  }

  /** Disables a group of buttons while a request is in flight. */
  private async busy(group: HTMLElement, work: Promise<void>): Promise<void> {
    const buttons = [...group.querySelectorAll('vscode-button')];
    group.setAttribute('aria-busy', 'true');
    for (const b of buttons) b.setAttribute('disabled', '');
    try {
      await work;
    } finally {
      group.removeAttribute('aria-busy');
      for (const b of buttons) b.removeAttribute('disabled');
    }
  }

  private updateStats(r: ExchangeRecord, now: number): void {
    const start = r.runningSince;
    const parts: string[] = [];
    const total = r.reasoningTokens + r.answerTokens;
    const s = r.stats;
    if (total > 0 || !isRunning(r)) parts.push(`${s?.estimated ? '~' : ''}${plural(total, 'token')} (${r.reasoningTokens.toLocaleString('en-US')} reasoning, ${r.answerTokens.toLocaleString('en-US')} answer)`);
    if (s?.tokensPerSecond !== undefined) parts.push(`${s.tokensPerSecond.toFixed(1)} tok/s${s.tokensPerPass !== undefined ? ` (${s.tokensPerPass.toFixed(1)} a pass)` : ''}`);
    else if (start !== undefined && isRunning(r) && total > 0 && now > start) parts.push(`${(total / ((now - start) / 1000)).toFixed(1)} tok/s`);
    if (s?.provider) parts.push(s.variant ? `${s.provider} · ${s.variant}` : s.provider);
    if (s?.promptTokens !== undefined) {
      const reused = s.reusedPromptTokens ? ` (${s.reusedPromptTokens.toLocaleString('en-US')} cached)` : '';
      parts.push(`prompt ${s.promptTokens.toLocaleString('en-US')}${reused}`);
    }
    if (start !== undefined) parts.push(formatDuration((r.finishedAt ?? now) - start));
    // A 'server' note is no drop: it says what a server could not do (a thinking budget it does not enforce).
    const notes = (r.truncation ?? []).map((t) => h('li', null, t.part === 'server' ? t.detail : `To fit the context window, ${t.detail} (${plural(t.droppedTokens, 'token')} dropped).`));
    this.statsEl.hidden = parts.length === 0 && notes.length === 0;
    const line = h('span', { class: 'st-line' });
    parts.forEach((part, i) => line.append(...(i ? [' · '] : []), h('span', { class: 'st-part' }, part)));
    this.statsEl.replaceChildren(line);
    if (notes.length) this.statsEl.appendChild(h('ul', { class: 'st-notes' }, ...notes));
  }
}

/** The line that explains how a finished exchange ended, when it did not simply complete. */
const STATE_LABELS: Record<ProposalRecord['state'], string | undefined> = {
  pending: undefined,
  accepted: 'Accepted',
  rejected: 'Rejected',
  superseded: 'Not kept',
  expired: 'Expired',
};

/** The check's verdict: a badge, and the problems it found with their lines. */
function checkNote(v: CheckVerdict): HTMLElement {
  const label = verdictLabel(v);
  const detail =
    v.kind === 'checked'
      ? v.fixed > 0
        ? `The editor's diagnostics of the file with this edit: the targeted problem${v.fixed === 1 ? ' is' : 's are'} gone, and no new problem appeared.`
        : "The editor's diagnostics of the file with this edit: no new problem appeared."
      : v.kind === 'not-checked'
        ? `${v.reason[0].toUpperCase()}${v.reason.slice(1)}.`
        : v.kind === 'checking'
          ? "Applying the edit to a copy of the file and reading the editor's diagnostics…"
          : undefined;
  const list =
    v.kind === 'problems'
      ? h(
          'ul',
          { class: 'ck-problems' },
          ...v.newProblems.map((p) => h('li', null, h('span', { class: 'ck-line' }, `line ${p.line}`), ` ${p.message}`)),
          ...v.remaining.map((p) => h('li', null, h('span', { class: 'ck-line' }, `line ${p.line}`), ` ${p.message} (not fixed)`)),
        )
      : null;
  return h(
    'div',
    { class: `pr-check ck-${v.kind}`, role: 'status' },
    h('span', { class: 'tag ck-badge' }, v.kind === 'checked' ? icon('check') : v.kind === 'problems' ? icon('warning') : null, label),
    detail ? h('span', { class: 'ck-detail' }, detail) : null,
    list,
  );
}

function endNote(r: ExchangeRecord): string | undefined {
  switch (r.status) {
    case 'error':
      return r.error ?? 'The request failed.';
    case 'cancelled':
      return r.error ?? 'Cancelled.';
    case 'length':
      return 'Stopped at the token limit (setting r1.generation.maxNewTokens): the answer may be incomplete.';
    default:
      return undefined;
  }
}
