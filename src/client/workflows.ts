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
import { verdictLabel, type CheckVerdict } from '../protocol/webview';
import { repairRequest } from './check/repair';
import { toDiagnosticInfo, type FixChecker } from './check/shadow';
import { bestAttempt, needsRepair } from './check/verdict';
import { reanchor } from './edits/anchor';
import { formatAsComment } from './edits/comments';
import { contextWindow, indentBlockRange, wholeLineSpan } from './edits/context';
import { fixBlockOf, replacementText } from './edits/proposal';
import { snapshotOf, startLineOf, type ProposalStore, type TargetSnapshot } from './proposals';
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

/** A fix and its repair rounds: the text the model saw, what it targets, and each attempt. */
interface FixSession {
  snapshot: TargetSnapshot;
  targeted: DiagnosticInfo[];
  attempts: { id: string; check?: CheckVerdict }[];
}

/** What a request was about, kept to re-run it ("Continue") and to place what it produced. */
interface SentRequest {
  command: 'ask' | 'fix' | 'explain';
  params: GenerateParams;
  /** The selection as the model saw it. */
  snapshot?: TargetSnapshot;
  targeted: DiagnosticInfo[];
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
  /** The requests of this window, by exchange id (for Continue and Insert as comment). */
  private readonly sent = new Map<string, SentRequest>();
  private readonly disposables: vscode.Disposable[] = [];

  constructor(
    private readonly server: R1Server,
    private readonly view: ReasoningViewProvider,
    private readonly proposals: ProposalStore,
    private readonly checker: FixChecker,
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
      view.onDidRequestContinue((e) => e.waitUntil(this.continueExchange(e.params.exchangeId))),
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
    command: 'ask' | 'fix' | 'explain',
    prompt: string,
    target: { document: vscode.TextDocument; range?: vscode.Range; diagnostics: vscode.Diagnostic[] } | undefined,
  ): Promise<void> {
    const id = newRequestId();
    const params: GenerateParams = { requestId: id, question: command === 'ask' ? prompt : undefined };
    let selection: { startLine: number; endLine: number } | undefined;
    let snapshot: TargetSnapshot | undefined;
    if (target) {
      const { document, range, diagnostics } = target;
      // The text the model sees, taken with the request: an edit lands on it, wherever it is by then.
      if (range && !range.isEmpty) snapshot = snapshotOf(document, range);
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
    await this.run(id, { command, params, snapshot, targeted: params.diagnostics ?? [] });
  }

  /** Sends a request and, for a fix, proposes its edit (checked, and repaired when needed). */
  private async run(id: string, request: SentRequest): Promise<void> {
    this.sent.set(id, request);
    const result = await this.send(request.command, request.params);
    if (result && request.command === 'fix' && request.snapshot) {
      const session: FixSession = { snapshot: request.snapshot, targeted: request.targeted, attempts: [] };
      await this.proposeFix(session, id, result, 0);
      this.keepBest(session);
    }
  }

  /** "Continue" on a cut-off answer: the same request again, with twice the token budget. */
  private async continueExchange(parentId: string): Promise<void> {
    const parent = this.view.getExchange(parentId);
    const request = this.sent.get(parentId);
    if (!parent || !request) throw new Error('R1 no longer has this request (the window was reloaded). Run the command again.');
    const maxNewTokens = Math.min(32_768, 2 * (request.params.maxNewTokens ?? vscode.workspace.getConfiguration('r1').get<number>('generation.maxNewTokens', 4096)));
    const id = newRequestId();
    this.view.startExchange({ id, command: parent.info.command, prompt: `${parent.info.prompt} (continued with a budget of ${maxNewTokens.toLocaleString('en-US')} tokens)`, parentId, file: parent.info.file, selection: parent.info.selection });
    void this.view.reveal(true);
    await this.run(id, { ...request, params: { ...request.params, requestId: id, maxNewTokens } });
  }

  private async followUp(text: string, parentId: string | undefined): Promise<void> {
    // (A follow-up is an ask: it proposes no edit.)
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
          ...(result.stats.draftTokens && result.stats.tokensPerPass !== undefined ? { tokensPerPass: result.stats.tokensPerPass } : {}),
          timeToFirstTokenMs: result.stats.timeToFirstTokenMs,
          // A server run: its host and model where a local one shows provider and variant.
          provider: result.stats.server?.host ?? result.stats.provider,
          variant: result.stats.server?.model ?? result.stats.variant,
          ...(result.stats.server?.reasoningTokensFrom === 'estimate' ? { estimated: true } : {}),
        },
      });
      const drops = result.truncation.filter((t) => t.part !== 'server');
      if (drops.length > 0) this.log.info(`Request ${id}: dropped to fit the context window: ${drops.map((t) => t.detail).join('; ')}`);
      for (const t of result.truncation) if (t.part === 'server') this.log.info(`Request ${id}: ${t.detail}`);
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
    const fromServer = e instanceof ResponseError && (e.code === R1ErrorCodes.NoModel || e.code === R1ErrorCodes.ModelError || e.code === R1ErrorCodes.ServerError);
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
    if (e instanceof ResponseError && e.code === R1ErrorCodes.ServerError) {
      // r1.backend "server": the message names the server and what to do; the buttons do it.
      const code = (e.data as GenerateError | undefined)?.code;
      this.log.error(`Request ${id} failed on the server${code ? ` (${code})` : ''}: ${message}`);
      const fix = code === 'auth' ? 'Set API Key' : ['unreachable', 'unknown-model', 'not-found', 'not-configured'].includes(code ?? '') ? 'Open Settings' : undefined;
      void vscode.window.showErrorMessage(`R1: ${message}`, ...(fix ? [fix] : []), 'Show Log').then((pick) => {
        if (pick === 'Set API Key') void vscode.commands.executeCommand('r1.setServerApiKey');
        else if (pick === 'Open Settings') void vscode.commands.executeCommand('workbench.action.openSettings', 'r1.server');
        else if (pick === 'Show Log') this.log.show();
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

  /**
   * Turns a fix's answer into a proposal over the text the model saw, checks it against the
   * editor's diagnostics, and runs a repair round when the check finds problems.
   */
  private async proposeFix(session: FixSession, id: string, result: GenerationResult, round: number): Promise<void> {
    if (result.status === 'error') return; // the view and the log say what failed
    const { snapshot } = session;
    const fix = fixBlockOf(result, snapshot.languageId, snapshot.label);
    if ('none' in fix) {
      this.view.setNotice(id, fix.none, result.status === 'length');
      return;
    }
    const proposed = replacementText(fix.block.code, snapshot.original);
    if (proposed === snapshot.original) {
      this.view.setNotice(id, 'the proposed code is the same as the current code, so there is nothing to apply.', false);
      return;
    }
    this.proposals.propose(id, snapshot, proposed, round + 1);
    const attempt: FixSession['attempts'][number] = { id };
    session.attempts.push(attempt);
    attempt.check = await this.checkFix(id, session, proposed);
    const rounds = vscode.workspace.getConfiguration('r1').get<number>('fix.repairRounds', 1);
    if (needsRepair(attempt.check) && round < rounds && this.proposals.get(id)) {
      await this.repair(session, id, proposed, attempt.check, round + 1);
    }
  }

  private async checkFix(id: string, session: FixSession, proposed: string): Promise<CheckVerdict> {
    const timeoutMs = vscode.workspace.getConfiguration('r1').get<number>('fix.checkTimeoutMs', 15_000);
    if (timeoutMs <= 0) {
      const off: CheckVerdict = { kind: 'not-checked', reason: 'the check is off (r1.fix.checkTimeoutMs is 0)' };
      this.proposals.setCheck(id, off);
      return off;
    }
    this.proposals.setCheck(id, { kind: 'checking' });
    const { snapshot } = session;
    const verdict = await this.checker.check({ ...snapshot, proposed, targeted: session.targeted }, timeoutMs);
    this.proposals.setCheck(id, verdict);
    this.log.info(`Checked the proposal ${id} for ${snapshot.label}: ${verdictLabel(verdict)}${verdict.kind === 'not-checked' ? ` (${verdict.reason})` : ''}.`);
    return verdict;
  }

  /** One repair round: the fix as proposed and the problems found, as a new fix request. */
  private async repair(session: FixSession, parentId: string, proposed: string, verdict: Extract<CheckVerdict, { kind: 'problems' }>, round: number): Promise<void> {
    const { snapshot } = session;
    const fixedText = snapshot.documentText.slice(0, snapshot.offset) + proposed + snapshot.documentText.slice(snapshot.offset + snapshot.original.length);
    const startLine = startLineOf(snapshot) - 1;
    const req = repairRequest({
      path: snapshot.label,
      languageId: snapshot.languageId,
      fixedText,
      startLine,
      proposed,
      newProblems: verdict.newProblems,
      remaining: verdict.remaining,
      history: this.view.followUpTurns(parentId),
      round,
    });
    const id = newRequestId();
    const lines = fixedText.split(/\r?\n/);
    const around = contextWindow(lines, req.startLine, req.endLine);
    const params: GenerateParams = {
      requestId: id,
      document: { uri: snapshot.uri.toString(), version: snapshot.version, languageId: snapshot.languageId, path: snapshot.label },
      range: { start: { line: req.startLine, character: 0 }, end: { line: req.endLine, character: (lines[req.endLine] ?? '').length } },
      code: req.code,
      question: req.question,
      fileContext: { text: around.text, startLine: around.startLine + 1 },
      diagnostics: req.diagnostics,
      history: req.history,
    };
    this.view.startExchange({
      id,
      command: 'repair',
      prompt: `Repair round ${round}: the check found ${verdictLabel(verdict)}.`,
      parentId,
      file: { uri: snapshot.uri.toString(), label: snapshot.label, languageId: snapshot.languageId },
      selection: { startLine: req.startLine + 1, endLine: req.endLine + 1 },
    });
    this.sent.set(id, { command: 'fix', params, snapshot, targeted: session.targeted });
    const result = await this.send('fix', params);
    if (result) await this.proposeFix(session, id, result, round);
  }

  /** Of a fix's attempts still pending, keeps the best (fewest problems, then the latest). */
  private keepBest(session: FixSession): void {
    const pending = session.attempts.filter((a) => this.proposals.get(a.id));
    if (pending.length < 2) return;
    const best = bestAttempt(pending)!;
    const n = session.attempts.indexOf(best) + 1;
    for (const a of pending) {
      if (a !== best) this.proposals.supersede(a.id, `Attempt ${n} of this fix (${best.check ? verdictLabel(best.check) : 'not checked'}) is kept instead.`);
    }
  }

  /**
   * Puts the explanation above the code the model saw, where that code is now (the same
   * anchoring as edits: refused when it changed or cannot be found once).
   */
  private async insertComment(id: string, text: string): Promise<void> {
    const r = this.view.getExchange(id);
    if (!r?.info.file || !r.info.selection) throw new Error('This answer is not tied to a selection in a file.');
    const snapshot = this.sent.get(id)?.snapshot;
    if (!snapshot) throw new Error('R1 no longer knows where the explained code is (the window was reloaded). Select the code and run Explain again.');
    const document = await vscode.workspace.openTextDocument(snapshot.uri);
    const anchor = reanchor(snapshot, document.version, document.getText(), 'code this answer explains');
    if (anchor.kind === 'refused') throw new Error(anchor.reason);
    const line = document.positionAt(anchor.offset).line;
    const indent = /^[ \t]*/.exec(document.lineAt(line).text)![0];
    const edit = new vscode.WorkspaceEdit();
    edit.insert(document.uri, new vscode.Position(line, 0), formatAsComment(text, document.languageId, indent));
    if (!(await vscode.workspace.applyEdit(edit))) throw new Error('VS Code refused the edit (is the file read-only?).');
    await vscode.window.showTextDocument(document, { preserveFocus: true, preview: false });
  }
}
