/**
 * "Fix with R1" as a quick fix on diagnostics of any language, and "Explain with R1" and
 * "Ask R1 about this" on a selection.
 */
import * as vscode from 'vscode';
import type { TargetArgs } from './workflows';

function args(document: vscode.TextDocument, range: vscode.Range): TargetArgs {
  return {
    uri: document.uri.toString(),
    range: { start: { line: range.start.line, character: range.start.character }, end: { line: range.end.line, character: range.end.character } },
  };
}

export class R1CodeActions implements vscode.CodeActionProvider {
  static readonly kinds = [vscode.CodeActionKind.QuickFix, vscode.CodeActionKind.Empty];

  provideCodeActions(document: vscode.TextDocument, range: vscode.Range | vscode.Selection, context: vscode.CodeActionContext): vscode.CodeAction[] {
    const actions: vscode.CodeAction[] = [];
    const wantsQuickFix = !context.only || context.only.contains(vscode.CodeActionKind.QuickFix);
    if (wantsQuickFix && context.diagnostics.length > 0 && !document.uri.scheme.startsWith('r1-')) {
      const diagnostic = context.diagnostics[0];
      const fix = new vscode.CodeAction('Fix with R1', vscode.CodeActionKind.QuickFix);
      fix.diagnostics = [...context.diagnostics];
      // With a selection, fix the selection; else the diagnostic's enclosing block (r1.fix finds it).
      const target = range.isEmpty ? new vscode.Range(diagnostic.range.start, diagnostic.range.start) : range;
      fix.command = { command: 'r1.fix', title: 'Fix with R1', arguments: [args(document, target)] };
      actions.push(fix);
    }
    if (!range.isEmpty && (!context.only || context.only.contains(vscode.CodeActionKind.Empty))) {
      const explain = new vscode.CodeAction('Explain with R1', vscode.CodeActionKind.Empty);
      explain.command = { command: 'r1.explain', title: 'Explain with R1', arguments: [args(document, range)] };
      const ask = new vscode.CodeAction('Ask R1 about this', vscode.CodeActionKind.Empty);
      ask.command = { command: 'r1.ask', title: 'Ask R1 about this', arguments: [args(document, range)] };
      actions.push(explain, ask);
    }
    return actions;
  }
}
