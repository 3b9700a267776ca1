/**
 * Ask, Fix and Explain: gathers what the editor knows (selection, bounded file context,
 * diagnostics), sends one r1/* request to the server, streams its text into the Reasoning view,
 * and turns a fix's code block into a proposed edit.
 */
import * as vscode from 'vscode';
import { ResponseError } from 'vscode-languageclient/node';
import type { DiagnosticInfo, GenerationResult } from '../protocol/server';
import {
  AskRequest,
  ExplainRequest,
  FixRequest,
  R1ErrorCodes,
  type GenerateError,
  type GenerateParams,
  type GenerateResult,
} from '../protocol/server';
import type { ExchangeCommand } from '../protocol/webview';
import { formatAsComment } from './edits/comments';
import { contextWindow, indentBlockRange, wholeLineSpan } from './edits/context';
import { fixBlockOf, replacementText } from './edits/proposal';
import type { ProposalStore } from './proposals';
import type { ReasoningViewProvider } from './reasoningView';
import { Runs } from './runs';
import type { R1Server } from './server';

/** Arguments a code action passes to r1.fix / r1.explain / r1.ask. */
export interface TargetArgs {
  uri: string;
  range?: { start: { line: number; character: number }; end: { line: number; character: number } };
}

interface Run {
  id: string;
  source: vscode.CancellationTokenSource;
}

const SEVERITY: Record<vscode.DiagnosticSeverity, DiagnosticInfo['severity']> = {
  [vscode.DiagnosticSeverity.Error]: 'error',
  [vscode.DiagnosticSeverity.Warning]: 'warning',
  [vscode.DiagnosticSeverity.Information]: 'info',
  [vscode.DiagnosticSeverity.Hint]: 'hint',
};

function toDiagnosticInfo(d: vscode.Diagnostic): DiagnosticInfo {
  const code = typeof d.code === 'object' ? d.code.value : d.code;
  return {
    message: d.message,
    severity: SEVERITY[d.severity],
    startLine: d.range.start.line + 1,
    endLine: d.range.end.line + 1,
    source: d.source,
    code: code === undefined ? undefined : String(code),
  };
}

function lineRange(r: vscode.Range): GenerateParams['range'] {
  return { start: { line: r.start.line, character: r.start.character }, end: { line: r.end.line, character: r.end.character } };
}

/** The whole lines of `range` (a fix replaces whole lines, so indentation survives). */
function wholeLines(document: vscode.TextDocument, range: vscode.Range): vscode.Range {
  const { startLine, endLine } = wholeLineSpan(range);
  return new vscode.Range(startLine, 0, endLine, document.lineAt(endLine).text.length);
}

/** A request id, unique in this window: the exchange, the server request and its stream share it. */
function newRequestId(): string {
  return `r${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`;
}

export class Workflows implements vscode.Disposable {
  private readonly runs = new Runs<Run>();
  private readonly disposables: vscode.Disposable[] = [];

  constructor(
    private readonly server: R1Server,
    private readonly view: ReasoningViewProvider,
    private readonly proposals: ProposalStore,
    private readonly log: vscode.LogOutputChannel,
  ) {
    this.disposables.push(
      server.onStream((p) => this.view.appendDelta(p.requestId, p.kind, p.text, { reasoningTokens: p.reasoningTokens, answerTokens: p.answerTokens })),
      server.onRequestProgress((p) => {
        if (p.phase === 'queued') this.view.setQueued(p.requestId, p.position);
        else {
          this.runs.started(p.requestId);
          if (p.phase === 'running') this.view.setRunning(p.requestId);
        }
      }),
      view.onDidRequestCancel((e) => e.waitUntil(Promise.resolve(this.cancel(e.params.exchangeId)))),
      view.onDidRequestFollowUp((e) => e.waitUntil(this.followUp(e.params.text, e.params.parentId))),
      view.onDidRequestInsertComment((e) => e.waitUntil(this.insertComment(e.params.exchangeId, e.params.text))),
    );
  }

  // ───────────── commands ─────────────

  async ask(args?: TargetArgs): Promise<void> {
    const target = (await this.target(args, false)) ?? undefined;
    const question = await vscode.window.showInputBox({
      title: 'R1: Ask',
      prompt: target?.range && !target.range.isEmpty ? 'Ask about the selected code' : target ? `Ask about ${vscode.workspace.asRelativePath(target.document.uri)}` : 'Ask R1',
      placeHolder: 'e.g. Why can this return undefined?',
      ignoreFocusOut: true,
    });
    if (!question?.trim()) return;
    await this.start('ask', question.trim(), target);
  }

  async explain(args?: TargetArgs): Promise<void> {
    const target = await this.target(args, false);
    if (!target) {
      void vscode.window.showInformationMessage('R1: Explain works on the code of an editor: open a file and select the code to explain.');
      return;
    }
    await this.start('explain', 'Explain this code.', target);
  }

  async fix(args?: TargetArgs): Promise<void> {
    const target = await this.target(args, true);
    if (target === null) return; // target() has said why
    if (!target) {
      void vscode.window.showInformationMessage('R1: Fix works on the code of an editor: select the code to fix, or put the cursor on a problem.');
      return;
    }
    if (!target.range) return;
    await this.start('fix', 'Fix this code.', target);
  }

  /** Cancels `id`, or the request the server is running (not a queued one). */
  cancel(id?: string): void {
    const run = id !== undefined ? this.runs.get(id) : this.runs.current();
    if (!run) {
      if (id === undefined) void vscode.window.showInformationMessage('R1: nothing is running.');
      return;
    }
    run.source.cancel();
  }

  dispose(): void {
    for (const run of this.runs.values()) run.source.cancel();
    for (const d of this.disposables) d.dispose();
  }

  // ───────────── the target of a command ─────────────

  private async target(
    args: TargetArgs | undefined,
    forFix: boolean,
  ): Promise<{ document: vscode.TextDocument; range?: vscode.Range; diagnostics: vscode.Diagnostic[] } | undefined | null> {
    let document: vscode.TextDocument | undefined;
    let range: vscode.Range | undefined;
    if (args?.uri) {
      document = await vscode.workspace.openTextDocument(vscode.Uri.parse(args.uri));
      if (args.range) range = new vscode.Range(args.range.start.line, args.range.start.character, args.range.end.line, args.range.end.character);
    } else {
      const editor = vscode.window.activeTextEditor;
      // Output panels and other virtual documents are not code to work on.
      if (!editor || !['file', 'untitled', 'vscode-notebook-cell', 'vscode-remote', 'vscode-vfs'].includes(editor.document.uri.scheme)) return undefined;
      document = editor.document;
      range = editor.selection.isEmpty ? (forFix ? new vscode.Range(editor.selection.active, editor.selection.active) : undefined) : editor.selection;
    }
    const all = vscode.languages.getDiagnostics(document.uri);
    if (!forFix) {
      const diagnostics = range ? all.filter((d) => d.range.intersection(range!) !== undefined) : [];
      return { document, range, diagnostics };
    }
    // Fix: the selection, or the enclosing block of the diagnostic at the cursor.
    if (range && range.isEmpty) {
      const at = all.filter((d) => d.range.contains(range!.start) || d.range.start.line === range!.start.line);
      if (at.length === 0) {
        void vscode.window.showInformationMessage('R1: Fix needs a selection, or the cursor on a problem (a squiggle). Nothing was sent.');
        return null;
      }
      range = await this.enclosingBlock(document, at[0].range);
    }
    range = wholeLines(document, range!);
    const diagnostics = all.filter((d) => d.range.intersection(range!) !== undefined);
    return { document, range, diagnostics };
  }

  /** The smallest symbol (function, method, class…) around `range`, else an indentation block. */
  private async enclosingBlock(document: vscode.TextDocument, range: vscode.Range): Promise<vscode.Range> {
    const symbols = await vscode.commands
      .executeCommand<(vscode.DocumentSymbol | vscode.SymbolInformation)[] | undefined>('vscode.executeDocumentSymbolProvider', document.uri)
      .then(
        (s) => s ?? [],
        () => [],
      );
    let best: vscode.Range | undefined;
    const visit = (list: readonly (vscode.DocumentSymbol | vscode.SymbolInformation)[]) => {
      for (const s of list) {
        const r = 'range' in s ? s.range : s.location.range;
        if (!r.contains(range)) continue;
        if (!best || best.contains(r)) best = r;
        if ('children' in s) visit(s.children);
      }
    };
    visit(symbols);
    // A whole-file symbol (e.g. a module) is too broad to rewrite: use the indentation block.
    if (best && best.end.line - best.start.line < 200) return best;
    const block = indentBlockRange(document.getText().split(/\r?\n/), range.start.line, range.end.line);
    return new vscode.Range(block.start.line, block.start.character, block.end.line, block.end.character);
  }

  // ───────────── running a request ─────────────

  private async start(
    command: Exclude<ExchangeCommand, 'followUp'>,
    prompt: string,
    target: { document: vscode.TextDocument; range?: vscode.Range; diagnostics: vscode.Diagnostic[] } | undefined,
  ): Promise<void> {
    const id = newRequestId();
    const params: GenerateParams = { requestId: id, question: command === 'ask' ? prompt : undefined };
    let selection: { startLine: number; endLine: number } | undefined;
    if (target) {
      const { document, range, diagnostics } = target;
      const path = vscode.workspace.asRelativePath(document.uri);
      params.document = { uri: document.uri.toString(), version: document.version, languageId: document.languageId, path };
      params.diagnostics = diagnostics.map(toDiagnosticInfo);
      const lines = document.getText().split(/\r?\n/);
      if (range && !range.isEmpty) {
        params.range = lineRange(range);
        params.code = document.getText(range);
        selection = { startLine: range.start.line + 1, endLine: range.end.line + 1 };
        const around = contextWindow(lines, range.start.line, range.end.line);
        params.fileContext = { text: around.text, startLine: around.startLine + 1 };
      } else {
        // No selection: the current file, bounded around the cursor.
        const cursor = vscode.window.activeTextEditor?.document === document ? vscode.window.activeTextEditor.selection.active.line : 0;
        const around = contextWindow(lines, cursor, cursor);
        params.fileContext = { text: around.text, startLine: around.startLine + 1 };
      }
    }
    const file = target ? { uri: target.document.uri.toString(), label: vscode.workspace.asRelativePath(target.document.uri), languageId: target.document.languageId } : undefined;
    this.view.startExchange({ id, command, prompt, file, selection });
    void this.view.reveal(true);
    const result = await this.send(command, params);
    if (result && command === 'fix' && target?.range) this.proposeFix(id, target.document, target.range, result);
  }

  private async followUp(text: string, parentId: string | undefined): Promise<void> {
    const parent = parentId !== undefined ? this.view.getExchange(parentId) : undefined;
    const id = newRequestId();
    const history = this.view.followUpTurns(parentId);
    this.view.startExchange({ id, command: 'followUp', prompt: text, parentId, file: parent?.info.file, selection: parent?.info.selection });
    void this.send('ask', { requestId: id, question: text, history });
  }

  /** Sends the request and finishes the exchange whatever happens. Resolves to the result when there is one. */
  private async send(command: 'ask' | 'fix' | 'explain', params: GenerateParams): Promise<GenerationResult | undefined> {
    const id = params.requestId;
    const source = new vscode.CancellationTokenSource();
    this.runs.add(id, { id, source });
    const type = command === 'ask' ? AskRequest.type : command === 'fix' ? FixRequest.type : ExplainRequest.type;
    try {
      const client = await this.server.ensureStarted();
      const result: GenerateResult = await client.sendRequest(type, params, source.token);
      this.view.finishExchange(id, {
        status: result.status,
        budgetHit: result.stats.thinkingBudgetHit,
        error: result.error,
        truncation: result.truncation,
        userTurn: result.userTurn,
        stats: {
          promptTokens: result.stats.promptTokens,
          reusedPromptTokens: result.stats.reusedPromptTokens,
          reasoningTokens: result.stats.reasoningTokens,
          answerTokens: result.stats.answerTokens,
          tokensPerSecond: result.stats.decodeTokensPerSecond,
          timeToFirstTokenMs: result.stats.timeToFirstTokenMs,
          provider: result.stats.provider,
          variant: result.stats.variant,
        },
      });
      if (result.truncation.length > 0) this.log.info(`Request ${id}: dropped to fit the context window: ${result.truncation.map((t) => t.detail).join('; ')}`);
      return result;
    } catch (e) {
      this.onRequestFailed(id, e, source.token.isCancellationRequested);
      return undefined;
    } finally {
      this.runs.delete(id);
      source.dispose();
    }
  }

  private onRequestFailed(id: string, e: unknown, cancelled: boolean): void {
    if (cancelled && !(e instanceof ResponseError && e.code !== -32800)) {
      this.view.finishExchange(id, { status: 'cancelled' });
      return;
    }
    const message = e instanceof Error ? e.message : String(e);
    const fromServer = e instanceof ResponseError && (e.code === R1ErrorCodes.NoModel || e.code === R1ErrorCodes.ModelError);
    // Otherwise the connection closed under the request (jsonrpc's "Pending response rejected since
    // connection got disposed"): the view says what that means, as the notification below does.
    this.view.finishExchange(id, {
      status: 'error',
      error: fromServer ? message : `The R1 server stopped during this request (${message}). It restarts by itself; run the command again.`,
    });
    if (e instanceof ResponseError && e.code === R1ErrorCodes.NoModel) {
      void vscode.window.showWarningMessage(`R1: ${message}`, 'Download Model', 'Choose Folder').then((pick) => {
        if (pick === 'Download Model') void vscode.commands.executeCommand('r1.downloadModel');
        else if (pick === 'Choose Folder') void vscode.commands.executeCommand('r1.selectModel');
      });
      return;
    }
    if (e instanceof ResponseError && e.code === R1ErrorCodes.ModelError) {
      const data = e.data as GenerateError | undefined;
      this.log.error(`Request ${id} failed${data?.code ? ` (${data.code})` : ''}: ${message}`);
      void vscode.window.showErrorMessage(`R1: the model could not run: ${message}`, 'Show Log', 'Choose Folder').then((pick) => {
        if (pick === 'Show Log') this.log.show();
        else if (pick === 'Choose Folder') void vscode.commands.executeCommand('r1.selectModel');
      });
      return;
    }
    // The connection closed under the request: the server crashed; the client restarts it.
    this.log.error(`Request ${id} failed: ${message}`);
    void vscode.window
      .showErrorMessage(`R1: the request failed because the R1 server stopped (${message}). It restarts by itself; run the command again.`, 'Show Log')
      .then((pick) => {
        if (pick) this.log.show();
      });
  }

  private proposeFix(id: string, document: vscode.TextDocument, range: vscode.Range, result: GenerationResult): void {
    if (result.status === 'error') return; // the view and the log say what failed
    const fix = fixBlockOf(result, document.languageId, vscode.workspace.asRelativePath(document.uri));
    if ('none' in fix) {
      void vscode.window.showInformationMessage(`R1: ${fix.none}`);
      return;
    }
    const original = document.getText(range);
    const proposed = replacementText(fix.block.code, original);
    if (proposed === original) {
      void vscode.window.showInformationMessage('R1: the proposed code is the same as the current code; nothing to apply.');
      return;
    }
    this.proposals.propose(id, document, range, proposed);
  }

  /** Puts the explanation above the exchange's selection, in the language's comment syntax. */
  private async insertComment(id: string, text: string): Promise<void> {
    const r = this.view.getExchange(id);
    if (!r?.info.file || !r.info.selection) throw new Error('This answer is not tied to a selection in a file.');
    const document = await vscode.workspace.openTextDocument(vscode.Uri.parse(r.info.file.uri));
    const line = Math.min(r.info.selection.startLine - 1, document.lineCount - 1);
    const indent = /^[ \t]*/.exec(document.lineAt(line).text)![0];
    const edit = new vscode.WorkspaceEdit();
    edit.insert(document.uri, new vscode.Position(line, 0), formatAsComment(text, document.languageId, indent));
    if (!(await vscode.workspace.applyEdit(edit))) throw new Error('VS Code refused the edit (is the file read-only?).');
    await vscode.window.showTextDocument(document, { preserveFocus: true, preview: false });
  }
}
