/**
 * The check of a proposed fix: two copies of the document, the original and the original with the
 * fix applied, are written to a folder of the system's temporary folder (never the workspace) and
 * opened in the document's language. The language's own diagnostics provider in the editor checks
 * them like any open file; their diagnostics are read and compared (verdict.ts). The copies are
 * never the user's file, and never in the user's undo stack. (Copies in a file system of our own
 * were tried first: TypeScript checks only `file:` and `untitled:` documents for types.) Providers such as
 * TypeScript's check only documents that have a tab, so the copies get a diff tab in the
 * background for the check's duration. When the check is over the tab closes and the copies are
 * switched to plain text, so providers drop them and their problems leave the Problems panel.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import * as vscode from 'vscode';
import type { DiagnosticInfo } from '../../protocol/server';
import type { CheckProblem, CheckVerdict } from '../../protocol/webview';
import { compareProblems, counts } from './verdict';

/** After the last diagnostics event for either copy, how long the check waits for another. */
const SETTLE_MS = 600;

/** What a check needs: the document as the model saw it, where the fix goes, and the problems it targets. */
export interface CheckInput {
  /** The user's document (its diagnostics tell whether a provider works for this language). */
  uri: vscode.Uri;
  /** Workspace-relative path: the copies keep the file's name and folders. */
  label: string;
  languageId: string;
  documentText: string;
  offset: number;
  original: string;
  proposed: string;
  /** The problems the fix request named. */
  targeted: readonly DiagnosticInfo[];
}

const SEVERITY: Record<vscode.DiagnosticSeverity, DiagnosticInfo['severity']> = {
  [vscode.DiagnosticSeverity.Error]: 'error',
  [vscode.DiagnosticSeverity.Warning]: 'warning',
  [vscode.DiagnosticSeverity.Information]: 'info',
  [vscode.DiagnosticSeverity.Hint]: 'hint',
};

/** A VS Code diagnostic as the request and the check describe it (1-based lines). */
export function toDiagnosticInfo(d: vscode.Diagnostic): DiagnosticInfo {
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

function problemsOf(uri: vscode.Uri): CheckProblem[] {
  const out: CheckProblem[] = [];
  for (const d of vscode.languages.getDiagnostics(uri)) {
    const info = toDiagnosticInfo(d);
    if (counts(info.severity)) out.push({ line: info.startLine, message: info.message, severity: info.severity, source: info.source, code: info.code });
  }
  return out;
}

export class FixChecker implements vscode.Disposable {
  private root: string | undefined;
  private next = 0;

  /** `root`: where the copies go (default: a new folder in the system's temporary folder). */
  constructor(private readonly rootOption?: string) {}

  private folder(): string {
    this.root ??= this.rootOption ?? mkdtempSync(join(tmpdir(), 'r1-check-'));
    return this.root;
  }

  /**
   * Checks `input` within `timeoutMs`. Never throws: a failure of the check itself is a
   * `not-checked` verdict that says what failed.
   */
  async check(input: CheckInput, timeoutMs: number, token?: vscode.CancellationToken): Promise<CheckVerdict> {
    const t0 = Date.now();
    const n = ++this.next;
    const rel = input.label.replace(/\\/g, '/').replace(/^([a-zA-Z]:)?\/+/, '');
    const dir = join(this.folder(), String(n));
    const fixUri = vscode.Uri.file(join(dir, 'fixed', ...rel.split('/')));
    const baseUri = vscode.Uri.file(join(dir, 'original', ...rel.split('/')));
    // A provider reports nothing for a file without problems, which looks the same as no provider
    // at all. The probe, the original with a lone `)` line appended (a syntax error in nearly every
    // language), gets an answer from any provider that checks the copies; it is opened last, so by
    // its answer the providers have answered for the other two.
    const probeUri = vscode.Uri.file(join(dir, 'probe', ...rel.split('/')));
    const probeText = `${input.documentText}${input.documentText.endsWith('\n') ? '' : '\n'})\n`;
    const copies = new Set([fixUri.toString(), baseUri.toString(), probeUri.toString()]);
    const fixedText = input.documentText.slice(0, input.offset) + input.proposed + input.documentText.slice(input.offset + input.original.length);

    const heard = new Map<string, number>(); // uri → time of its last diagnostics event
    let wake: (() => void) | undefined;
    const sub = vscode.languages.onDidChangeDiagnostics((e) => {
      for (const u of e.uris) {
        const k = u.toString();
        if (copies.has(k)) {
          heard.set(k, Date.now());
          wake?.();
        }
      }
    });
    const opened: vscode.TextDocument[] = [];
    try {
      for (const [uri, text] of [
        [fixUri, fixedText],
        [baseUri, input.documentText],
        [probeUri, probeText],
      ] as const) {
        await mkdir(dirname(uri.fsPath), { recursive: true });
        await writeFile(uri.fsPath, text);
      }
      // The fixed copy first: a provider that checks open files in order has answered for it by
      // the time the original copy's answer arrives.
      for (const uri of [fixUri, baseUri, probeUri]) {
        let doc = await vscode.workspace.openTextDocument(uri);
        if (doc.languageId !== input.languageId) doc = await vscode.languages.setTextDocumentLanguage(doc, input.languageId);
        opened.push(doc);
      }
      // TypeScript (and other providers) check only documents shown in a tab: the copies get one
      // diff tab, opened in the background (the user's editor stays active and focused) and
      // pinned (a preview tab would replace the user's preview tab), and closed after the check.
      const name = rel.split('/').pop() ?? rel;
      const inBackground = { preview: false, preserveFocus: true, background: true };
      await vscode.commands.executeCommand('vscode.diff', baseUri, fixUri, `R1 check: ${name}`, inBackground);
      await vscode.commands.executeCommand('vscode.open', probeUri, inBackground);
      const deadline = t0 + timeoutMs;
      const last = () => Math.max(0, ...heard.values());
      // Answered: the original copy reported problems, or the probe did (so the others had their turn).
      const answered = () => heard.has(baseUri.toString()) || heard.has(probeUri.toString());
      for (;;) {
        if (token?.isCancellationRequested) return { kind: 'not-checked', reason: 'the check was cancelled' };
        const now = Date.now();
        const settled = answered() && now - last() >= SETTLE_MS;
        if (settled || now >= deadline) break;
        const until = answered() ? Math.min(deadline, last() + SETTLE_MS) : deadline;
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, Math.max(1, until - now));
          wake = () => {
            clearTimeout(timer);
            resolve();
          };
        });
        wake = undefined;
      }
      const tookMs = Date.now() - t0;
      if (heard.size === 0) {
        const providerSeen = vscode.languages.getDiagnostics(input.uri).length > 0;
        return {
          kind: 'not-checked',
          reason: providerSeen
            ? `the diagnostics provider for ${input.languageId} did not answer within ${(timeoutMs / 1000).toFixed(1)} s (r1.fix.checkTimeoutMs)`
            : `no diagnostics provider reported on ${input.languageId} within ${(timeoutMs / 1000).toFixed(1)} s: none is installed for this language, or it does not check copies outside the workspace`,
        };
      }
      const targeted = input.targeted.flatMap((d) => (counts(d.severity) ? [{ ...d, severity: d.severity }] : []));
      return compareProblems(problemsOf(baseUri), problemsOf(fixUri), targeted, tookMs);
    } catch (e) {
      return { kind: 'not-checked', reason: `the copies could not be opened (${e instanceof Error ? e.message : String(e)})` };
    } finally {
      sub.dispose();
      const tabs = vscode.window.tabGroups.all
        .flatMap((g) => g.tabs)
        .filter(
          (t) =>
            (t.input instanceof vscode.TabInputTextDiff && t.input.modified.toString() === fixUri.toString()) ||
            (t.input instanceof vscode.TabInputText && t.input.uri.toString() === probeUri.toString()),
        );
      if (tabs.length > 0) await vscode.window.tabGroups.close(tabs, true).then(undefined, () => undefined);
      // Plain text: the language's provider lets go of the copies and clears their problems.
      await Promise.all(opened.map((doc) => vscode.languages.setTextDocumentLanguage(doc, 'plaintext').then(undefined, () => undefined)));
      await rm(dir, { recursive: true, force: true }).catch(() => undefined);
    }
  }

  dispose(): void {
    if (this.root && !this.rootOption) rmSync(this.root, { recursive: true, force: true });
  }
}
