/**
 * Proposed edits: bound to the text the model saw (a snapshot taken when the request was sent),
 * reviewed in VS Code's diff editor through a read-only virtual document provider, applied as one
 * `WorkspaceEdit` (one undo step) where that text is now, or discarded; whole, or one hunk at a
 * time. Pending proposals are kept in `workspaceState`, so they survive a window reload.
 */
import * as vscode from 'vscode';
import { fileHunks, hunkHeader, type LineEdit } from '../protocol/diff';
import { verdictLabel, type CheckVerdict, type Proposal, type ProposalState } from '../protocol/webview';
import { reanchor } from './edits/anchor';
import { acceptHunk, rejectHunk, type HunkChoice } from './edits/hunks';
import type { ReasoningViewProvider } from './reasoningView';

export const PROPOSAL_SCHEME = 'r1-proposal';
const STORE_KEY = 'r1.proposals.v1';
/** A proposal over a larger document is not kept across reloads (workspaceState is no file store). */
const MAX_PERSISTED_CHARS = 2_000_000;

/** The text a request is about, as it was when the request was sent. */
export interface TargetSnapshot {
  uri: vscode.Uri;
  /** Workspace-relative label. */
  label: string;
  languageId: string;
  version: number;
  /** Offset of `original` in `documentText`. */
  offset: number;
  original: string;
  /** The whole document at `version`. */
  documentText: string;
}

/** The snapshot of `range` of `document` now. */
export function snapshotOf(document: vscode.TextDocument, range: vscode.Range): TargetSnapshot {
  return {
    uri: document.uri,
    label: vscode.workspace.asRelativePath(document.uri),
    languageId: document.languageId,
    version: document.version,
    offset: document.offsetAt(range.start),
    original: document.getText(range),
    documentText: document.getText(),
  };
}

/** The 1-based line where the snapshot's text starts. */
export function startLineOf(s: Pick<TargetSnapshot, 'documentText' | 'offset'>): number {
  let line = 1;
  for (let i = s.documentText.indexOf('\n'); i >= 0 && i < s.offset; i = s.documentText.indexOf('\n', i + 1)) line++;
  return line;
}

/** A stored proposal as the diff sees it (the hunks the view, the lenses and per-hunk review share). */
function lineEdit(p: Pick<StoredProposal, 'original' | 'proposed' | 'documentText' | 'offset'>): LineEdit {
  return { original: p.original, proposed: p.proposed, startLine: startLineOf(p) };
}

interface StoredProposal extends TargetSnapshot {
  id: string;
  proposed: string;
  check?: CheckVerdict;
  attempt: number;
}

type PersistedProposal = Omit<StoredProposal, 'uri'> & { uri: string };

export class ProposalStore implements vscode.TextDocumentContentProvider, vscode.CodeLensProvider, vscode.Disposable {
  private readonly pending = new Map<string, StoredProposal>();
  private readonly disposables: vscode.Disposable[] = [];
  private readonly contentChanged = new vscode.EventEmitter<vscode.Uri>();
  readonly onDidChange = this.contentChanged.event;
  private readonly lensesChanged = new vscode.EventEmitter<void>();
  readonly onDidChangeCodeLenses = this.lensesChanged.event;

  constructor(
    private readonly context: vscode.ExtensionContext,
    private readonly view: ReasoningViewProvider,
    private readonly log: vscode.LogOutputChannel,
  ) {
    this.restore();
    this.disposables.push(
      this.contentChanged,
      this.lensesChanged,
      vscode.workspace.registerTextDocumentContentProvider(PROPOSAL_SCHEME, this),
      vscode.languages.registerCodeLensProvider({ scheme: PROPOSAL_SCHEME }, this),
      vscode.commands.registerCommand('r1.acceptHunk', (id: string, hunk: number, header: string) => this.fromLens(() => this.acceptHunk(id, { hunk, header }))),
      vscode.commands.registerCommand('r1.rejectHunk', (id: string, hunk: number, header: string) => this.fromLens(() => this.rejectHunk(id, { hunk, header }))),
      view.onDidRequestAccept((e) => e.waitUntil(this.accept(e.params.exchangeId))),
      view.onDidRequestReject((e) => e.waitUntil(Promise.resolve(this.reject(e.params.exchangeId)))),
      view.onDidRequestReview((e) => e.waitUntil(this.review(e.params.exchangeId))),
      view.onDidRequestAcceptHunk((e) => e.waitUntil(this.acceptHunk(e.params.exchangeId, e.params))),
      view.onDidRequestRejectHunk((e) => e.waitUntil(Promise.resolve(this.rejectHunk(e.params.exchangeId, e.params)))),
    );
    this.updateContext();
  }

  /** Records a proposal over `target` (the text the model saw) and shows it as pending. */
  propose(id: string, target: TargetSnapshot, proposed: string, attempt = 1): void {
    const p: StoredProposal = { ...target, id, proposed, attempt };
    this.pending.set(id, p);
    this.view.showProposal(id, this.toView(p));
    this.changed(p);
  }

  /** The check's verdict of a pending proposal. */
  setCheck(id: string, check: CheckVerdict): void {
    const p = this.pending.get(id);
    if (!p) return;
    p.check = check;
    this.view.setProposalCheck(id, check);
    this.changed(p);
  }

  get(id: string): Readonly<StoredProposal> | undefined {
    return this.pending.get(id);
  }

  /** Drops a pending proposal because a better attempt of the same fix is kept. */
  supersede(id: string, message: string): void {
    if (!this.pending.delete(id)) return;
    this.view.setProposalState(id, 'superseded', message);
    this.changed();
  }

  /** The newest pending proposal's id. */
  latest(): string | undefined {
    return [...this.pending.keys()].pop();
  }

  /**
   * Applies the proposal as one undoable edit, where the text the model saw is now. Asks first
   * when its check found problems. Throws (with the reason) when it cannot apply.
   */
  async accept(id = this.latest()): Promise<void> {
    const p = this.pendingOr(id, 'accept');
    if (!(await this.confirmProblems(p))) return;
    const { anchor } = await this.apply(p, p.proposed, 'R1: accept proposed edit');
    this.pending.delete(p.id);
    this.view.setProposalState(p.id, 'accepted', anchor === 'moved' ? 'The document had changed; the edit was placed where the original code now is.' : undefined);
    this.log.info(`Accepted the proposal ${p.id} for ${p.label}${anchor === 'moved' ? ' (re-anchored)' : ''}.`);
    this.changed(p);
  }

  /** Applies one hunk; the other hunks stay proposed against the new text. */
  async acceptHunk(id: string, choice: HunkChoice): Promise<void> {
    const p = this.pendingOr(id, 'accept');
    const { apply, rest } = acceptHunk(lineEdit(p), choice);
    if (!(await this.confirmProblems(p))) return;
    const { document, offset } = await this.apply(p, apply, 'R1: accept one change of the proposed edit');
    if (!rest) {
      this.pending.delete(p.id);
      this.view.setProposalState(p.id, 'accepted');
    } else {
      const next: StoredProposal = { ...p, version: document.version, offset, original: rest.original, documentText: document.getText() };
      this.pending.set(p.id, next);
      this.view.showProposal(p.id, this.toView(next), 'One change was applied; the rest is still proposed.');
    }
    this.log.info(`Accepted change ${choice.hunk + 1} of the proposal ${p.id} for ${p.label}.`);
    this.changed(p);
  }

  reject(id = this.latest()): void {
    const p = this.pendingOr(id, 'reject');
    this.pending.delete(p.id);
    this.view.setProposalState(p.id, 'rejected');
    this.log.info(`Rejected the proposal ${p.id} for ${p.label}.`);
    this.changed(p);
  }

  /** Drops one hunk from the proposal; rejecting the last one rejects the proposal. */
  rejectHunk(id: string, choice: HunkChoice): void {
    const p = this.pendingOr(id, 'reject');
    const rest = rejectHunk(lineEdit(p), choice);
    if (!rest) {
      this.pending.delete(p.id);
      this.view.setProposalState(p.id, 'rejected');
    } else {
      const next: StoredProposal = { ...p, proposed: rest.proposed };
      this.pending.set(p.id, next);
      this.view.showProposal(p.id, this.toView(next), 'One change was rejected; the rest is still proposed.');
    }
    this.log.info(`Rejected change ${choice.hunk + 1} of the proposal ${p.id} for ${p.label}.`);
    this.changed(p);
  }

  /**
   * The diff editor's own actions (its title bar, and the command palette there): accepts or
   * rejects the hunk under the cursor, on either side of the diff.
   */
  async changeAtCursor(action: 'accept' | 'reject'): Promise<void> {
    const editor = vscode.window.activeTextEditor;
    if (!editor || editor.document.uri.scheme !== PROPOSAL_SCHEME) throw new Error('Put the cursor on a change in the diff editor of an R1 proposal (Review in diff editor).');
    const [, id, side] = editor.document.uri.path.split('/');
    const p = this.pendingOr(id, action);
    const line = editor.selection.active.line + 1;
    const hunks = fileHunks(lineEdit(p));
    const i = hunks.findIndex((h) => {
      const [start, count] = side === 'original' ? [h.oldStart, h.oldLines] : [h.newStart, h.newLines];
      return line >= start && line < start + Math.max(1, count);
    });
    if (i < 0) throw new Error(`Line ${line} is not part of a change of this proposal: put the cursor on a changed line.`);
    const choice = { hunk: i, header: hunkHeader(hunks[i]) };
    if (action === 'accept') await this.acceptHunk(id, choice);
    else this.rejectHunk(id, choice);
  }

  /** Opens VS Code's diff editor: the document as it was, against it with the proposal applied. */
  async review(id = this.latest()): Promise<void> {
    const p = this.pendingOr(id, 'review');
    const [left, right] = this.sides(p);
    await vscode.commands.executeCommand('vscode.diff', left, right, `R1 proposal: ${p.label} (original ↔ proposed)`, { preview: true });
  }

  /** Read-only content of the diff editor's two sides. */
  provideTextDocumentContent(uri: vscode.Uri): string {
    const [, id, side] = uri.path.split('/');
    const p = this.pending.get(id);
    if (!p) return '(This R1 proposal was accepted or rejected.)';
    if (side === 'original') return p.documentText;
    return p.documentText.slice(0, p.offset) + p.proposed + p.documentText.slice(p.offset + p.original.length);
  }

  /** "Accept change" / "Reject change" above each hunk of the diff editor's proposed side. */
  provideCodeLenses(document: vscode.TextDocument): vscode.CodeLens[] {
    const [, id, side] = document.uri.path.split('/');
    const p = this.pending.get(id);
    if (!p || side !== 'proposed') return [];
    const hunks = fileHunks(lineEdit(p));
    if (hunks.length < 2) return [];
    return hunks.flatMap((h, i) => {
      const line = Math.max(0, Math.min(document.lineCount - 1, h.newStart - 1));
      const range = new vscode.Range(line, 0, line, 0);
      const args = [p.id, i, hunkHeader(h)];
      return [
        new vscode.CodeLens(range, { title: `Accept change ${i + 1} of ${hunks.length}`, command: 'r1.acceptHunk', arguments: args }),
        new vscode.CodeLens(range, { title: 'Reject change', command: 'r1.rejectHunk', arguments: args }),
      ];
    });
  }

  dispose(): void {
    for (const d of this.disposables) d.dispose();
  }

  // ───────────── internals ─────────────

  private pendingOr(id: string | undefined, verb: string): StoredProposal {
    const p = id === undefined ? undefined : this.pending.get(id);
    if (!p) throw new Error(`There is no pending R1 proposal to ${verb}.`);
    return p;
  }

  /** Asks before applying an edit whose check found problems; true to go on. */
  private async confirmProblems(p: StoredProposal): Promise<boolean> {
    if (p.check?.kind !== 'problems') return true;
    const list = [...p.check.newProblems, ...p.check.remaining].map((x) => `line ${x.line}: ${x.message}`);
    const pick = await vscode.window.showWarningMessage(
      `R1's check of this edit to ${p.label} found ${verdictLabel(p.check)}. Apply it anyway?`,
      { modal: true, detail: list.join('\n') },
      'Apply Anyway',
    );
    return pick === 'Apply Anyway';
  }

  /**
   * Replaces the text the model saw with `text`, where that text is now (re-anchored when the
   * document changed, refused when it cannot be found once), as one undo step.
   */
  private async apply(p: StoredProposal, text: string, label: string): Promise<{ document: vscode.TextDocument; offset: number; anchor: 'unchanged' | 'moved' }> {
    const document = await vscode.workspace.openTextDocument(p.uri);
    const anchor = reanchor({ version: p.version, offset: p.offset, original: p.original }, document.version, document.getText());
    if (anchor.kind === 'refused') {
      this.view.setProposalState(p.id, 'pending', anchor.reason);
      throw new Error(anchor.reason);
    }
    const range = new vscode.Range(document.positionAt(anchor.offset), document.positionAt(anchor.offset + p.original.length));
    const wasDirty = document.isDirty;
    const edit = new vscode.WorkspaceEdit();
    edit.replace(p.uri, range, text, { label, needsConfirmation: false });
    if (!(await vscode.workspace.applyEdit(edit))) {
      const reason = 'VS Code refused the edit (is the file read-only?). Nothing was applied.';
      this.view.setProposalState(p.id, 'pending', reason);
      throw new Error(reason);
    }
    // A document that was saved before stays saved: the accepted edit is on disk, and Undo brings
    // the old text back. A document with unsaved changes of the user's is left unsaved.
    if (!wasDirty) await document.save();
    return { document, offset: anchor.offset, anchor: anchor.kind };
  }

  private toView(p: StoredProposal): Proposal {
    return {
      file: { uri: p.uri.toString(), label: p.label, languageId: p.languageId },
      startLine: startLineOf(p),
      original: p.original,
      proposed: p.proposed,
      check: p.check,
      attempt: p.attempt,
    };
  }

  private sides(p: Pick<StoredProposal, 'id' | 'label'>): [vscode.Uri, vscode.Uri] {
    const name = p.label.split('/').pop() ?? p.label;
    return [vscode.Uri.from({ scheme: PROPOSAL_SCHEME, path: `/${p.id}/original/${name}` }), vscode.Uri.from({ scheme: PROPOSAL_SCHEME, path: `/${p.id}/proposed/${name}` })];
  }

  /** After any change: the diff editor, its lenses, the context key and the persisted copy follow. */
  private changed(p?: StoredProposal): void {
    if (p) for (const uri of this.sides(p)) this.contentChanged.fire(uri);
    this.lensesChanged.fire();
    this.updateContext();
    void this.persist();
  }

  private async fromLens(action: () => Promise<void> | void): Promise<void> {
    try {
      await action();
    } catch (e) {
      void vscode.window.showWarningMessage(`R1: ${e instanceof Error ? e.message : String(e)}`);
    }
  }

  private updateContext(): void {
    void vscode.commands.executeCommand('setContext', 'r1.hasProposal', this.pending.size > 0);
  }

  private async persist(): Promise<void> {
    const list: PersistedProposal[] = [];
    for (const p of this.pending.values()) {
      if (p.documentText.length > MAX_PERSISTED_CHARS) continue;
      list.push({ ...p, uri: p.uri.toString(), check: p.check?.kind === 'checking' ? undefined : p.check });
    }
    try {
      await this.context.workspaceState.update(STORE_KEY, list);
    } catch (e) {
      this.log.warn(`Saving the pending proposals failed: ${String(e)}`);
    }
  }

  /**
   * Brings back the proposals pending when the window went away. Their document versions mean
   * nothing in this window, so each is placed again by its text at Accept. A proposal the view
   * shows as pending that was not kept is marked expired.
   */
  private restore(): void {
    const raw = this.context.workspaceState.get<unknown>(STORE_KEY);
    for (const r of Array.isArray(raw) ? (raw as PersistedProposal[]) : []) {
      if (typeof r?.id !== 'string' || typeof r.uri !== 'string' || typeof r.original !== 'string' || typeof r.proposed !== 'string' || typeof r.documentText !== 'string') continue;
      const record = this.view.getExchange(r.id);
      if (record?.proposal?.state !== 'pending') continue;
      this.pending.set(r.id, { ...r, uri: vscode.Uri.parse(r.uri), version: -1, attempt: r.attempt ?? 1 });
    }
    for (const record of this.view.exchanges) {
      if (record.proposal?.state === 'pending' && !this.pending.has(record.info.id)) {
        this.view.setProposalState(record.info.id, 'expired' satisfies ProposalState, 'This proposal was not kept when the window reloaded, so it can no longer be applied. Run the command again.');
      }
    }
    void this.persist();
  }
}
