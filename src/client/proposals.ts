/**
 * Proposed edits: bound to the document URI and version they were computed from, reviewed in
 * VS Code's diff editor through a read-only virtual document provider, applied as one
 * `WorkspaceEdit` (one undo step) or discarded.
 */
import * as vscode from 'vscode';
import type { Proposal } from '../protocol/webview';
import { reanchor } from './edits/anchor';
import type { ReasoningViewProvider } from './reasoningView';

export const PROPOSAL_SCHEME = 'r1-proposal';

interface StoredProposal {
  id: string;
  uri: vscode.Uri;
  /** Workspace-relative label. */
  label: string;
  languageId: string;
  version: number;
  /** Offset of `original` in the document at `version`. */
  offset: number;
  original: string;
  proposed: string;
  /** The whole document at `version`, for the diff editor. */
  documentText: string;
}

export class ProposalStore implements vscode.TextDocumentContentProvider, vscode.Disposable {
  private readonly pending = new Map<string, StoredProposal>();
  private readonly disposables: vscode.Disposable[] = [];

  constructor(
    private readonly view: ReasoningViewProvider,
    private readonly log: vscode.LogOutputChannel,
  ) {
    this.disposables.push(
      vscode.workspace.registerTextDocumentContentProvider(PROPOSAL_SCHEME, this),
      view.onDidRequestAccept((e) => e.waitUntil(this.accept(e.params.exchangeId))),
      view.onDidRequestReject((e) => e.waitUntil(Promise.resolve(this.reject(e.params.exchangeId)))),
      view.onDidRequestReview((e) => e.waitUntil(this.review(e.params.exchangeId))),
    );
  }

  /** Records a proposal for `range` of `document` (at its current version) and shows it. */
  propose(id: string, document: vscode.TextDocument, range: vscode.Range, proposed: string): void {
    const original = document.getText(range);
    const label = vscode.workspace.asRelativePath(document.uri);
    this.pending.set(id, {
      id,
      uri: document.uri,
      label,
      languageId: document.languageId,
      version: document.version,
      offset: document.offsetAt(range.start),
      original,
      proposed,
      documentText: document.getText(),
    });
    const proposal: Proposal = {
      file: { uri: document.uri.toString(), label, languageId: document.languageId },
      startLine: range.start.line + 1,
      original,
      proposed,
    };
    this.view.showProposal(id, proposal);
    this.updateContext();
  }

  /** The newest pending proposal's id. */
  latest(): string | undefined {
    return [...this.pending.keys()].pop();
  }

  /** Applies the proposal as one undoable edit. Throws (with the reason) when it cannot apply. */
  async accept(id = this.latest()): Promise<void> {
    const p = id === undefined ? undefined : this.pending.get(id);
    if (!p) throw new Error('There is no pending R1 proposal to accept.');
    const document = await vscode.workspace.openTextDocument(p.uri);
    const anchor = reanchor({ version: p.version, offset: p.offset, original: p.original }, document.version, document.getText());
    if (anchor.kind === 'refused') {
      this.view.setProposalState(p.id, 'pending', anchor.reason);
      throw new Error(anchor.reason);
    }
    const range = new vscode.Range(document.positionAt(anchor.offset), document.positionAt(anchor.offset + p.original.length));
    const wasDirty = document.isDirty;
    const edit = new vscode.WorkspaceEdit();
    edit.replace(p.uri, range, p.proposed, { label: 'R1: accept proposed edit', needsConfirmation: false });
    if (!(await vscode.workspace.applyEdit(edit))) {
      const reason = 'VS Code refused the edit (is the file read-only?). Nothing was applied.';
      this.view.setProposalState(p.id, 'pending', reason);
      throw new Error(reason);
    }
    // A document that was saved before stays saved: the accepted edit is on disk, and Undo brings
    // the old text back. A document with unsaved changes of the user's is left unsaved.
    if (!wasDirty) await document.save();
    this.pending.delete(p.id);
    this.view.setProposalState(p.id, 'accepted', anchor.kind === 'moved' ? 'The document had changed; the edit was placed where the original code now is.' : undefined);
    this.log.info(`Accepted the proposal ${p.id} for ${p.label}${anchor.kind === 'moved' ? ' (re-anchored)' : ''}.`);
    this.updateContext();
  }

  reject(id = this.latest()): void {
    const p = id === undefined ? undefined : this.pending.get(id);
    if (!p) throw new Error('There is no pending R1 proposal to reject.');
    this.pending.delete(p.id);
    this.view.setProposalState(p.id, 'rejected');
    this.log.info(`Rejected the proposal ${p.id} for ${p.label}.`);
    this.updateContext();
  }

  /** Opens VS Code's diff editor: the document as it was, against it with the proposal applied. */
  async review(id = this.latest()): Promise<void> {
    const p = id === undefined ? undefined : this.pending.get(id);
    if (!p) throw new Error('There is no pending R1 proposal to review.');
    const name = p.label.split('/').pop() ?? p.label;
    const left = vscode.Uri.from({ scheme: PROPOSAL_SCHEME, path: `/${p.id}/original/${name}` });
    const right = vscode.Uri.from({ scheme: PROPOSAL_SCHEME, path: `/${p.id}/proposed/${name}` });
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

  private updateContext(): void {
    void vscode.commands.executeCommand('setContext', 'r1.hasProposal', this.pending.size > 0);
  }

  dispose(): void {
    for (const d of this.disposables) d.dispose();
  }
}
