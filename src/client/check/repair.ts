/**
 * The repair round's request: after a fix's check found problems, one more fix request over the
 * code as the fix left it, with the editor's diagnostics for it. The earlier reasoning stays out
 * (only the earlier user turn and answer are replayed, as in any follow-up). Pure: unit-tested
 * under plain Node.
 */
import type { ChatTurn, DiagnosticInfo } from '../../protocol/server';
import type { CheckProblem } from '../../protocol/webview';

export interface RepairInput {
  /** Workspace-relative path and language of the document. */
  path: string;
  languageId: string;
  /** The whole document with the proposed edit applied. */
  fixedText: string;
  /** 0-based line where the proposed code starts, and the proposed code. */
  startLine: number;
  proposed: string;
  newProblems: readonly CheckProblem[];
  remaining: readonly CheckProblem[];
  /** The conversation so far: the fix's user turn and its answer (no reasoning). */
  history: ChatTurn[];
  /** 1 for the first repair round. */
  round: number;
}

/** What the repair request sends, in the fields of a fix request. */
export interface RepairRequest {
  question: string;
  code: string;
  /** 0-based, inclusive lines of `code` in the fixed document. */
  startLine: number;
  endLine: number;
  diagnostics: DiagnosticInfo[];
  history: ChatTurn[];
}

function asDiagnostic(p: CheckProblem): DiagnosticInfo {
  return { message: p.message, severity: p.severity, startLine: p.line, endLine: p.line, source: p.source, code: p.code };
}

/** The instruction of the repair round: names each problem with its line, so the model knows what the editor found. */
export function repairQuestion(newProblems: readonly CheckProblem[], remaining: readonly CheckProblem[]): string {
  const parts: string[] = [];
  const list = (ps: readonly CheckProblem[]) => ps.map((p) => `- line ${p.line}: ${p.message.replace(/\s+/g, ' ').trim()}`).join('\n');
  if (newProblems.length > 0) {
    parts.push(`The editor checked your previous fix and it introduced ${newProblems.length === 1 ? 'a new problem' : `${newProblems.length} new problems`}:\n${list(newProblems)}`);
  }
  if (remaining.length > 0) {
    parts.push(`${newProblems.length > 0 ? 'Also, the' : 'The editor checked your previous fix, and the'} problem${remaining.length === 1 ? ' it was meant to fix is' : 's it was meant to fix are'} still reported:\n${list(remaining)}`);
  }
  parts.push('Correct the code below so that these problems are gone, and keep what the fix changed for the better.');
  return parts.join('\n\n');
}

export function repairRequest(input: RepairInput): RepairRequest {
  const lines = input.proposed.replace(/\r?\n$/, '').split(/\r?\n/);
  return {
    question: repairQuestion(input.newProblems, input.remaining),
    code: input.proposed,
    startLine: input.startLine,
    endLine: input.startLine + Math.max(0, lines.length - 1),
    diagnostics: [...input.newProblems, ...input.remaining].map(asDiagnostic),
    history: input.history,
  };
}
