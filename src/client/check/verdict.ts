/**
 * The verdict of a fix's check: the diagnostics the editor reports for an unmodified copy of the
 * document and for a copy with the fix applied, compared. Problems the copy itself causes (an
 * import that does not resolve from where the copy lives) are in both and cancel out. Pure: no
 * `vscode` import, so it is unit-tested under plain Node.
 */
import type { CheckProblem, CheckVerdict } from '../../protocol/webview';

/** Only errors and warnings count: hints (an unused variable) and infos are not problems a fix must avoid. */
export function counts(severity: string): severity is CheckProblem['severity'] {
  return severity === 'error' || severity === 'warning';
}

function keyOf(p: Pick<CheckProblem, 'severity' | 'message' | 'source' | 'code'>): string {
  return [p.severity, p.source ?? '', p.code ?? '', p.message.replace(/\s+/g, ' ').trim()].join('\u0000');
}

function tally(list: readonly CheckProblem[]): Map<string, number> {
  const m = new Map<string, number>();
  for (const p of list) m.set(keyOf(p), (m.get(keyOf(p)) ?? 0) + 1);
  return m;
}

/**
 * Compares the copies. `targeted` are the problems the user asked to fix (the request's
 * diagnostics); one counts as fixed when the fixed copy reports it fewer times than the unmodified
 * copy. A targeted problem the unmodified copy does not report (its provider does not look at the
 * copy) cannot be judged and is left out.
 */
export function compareProblems(
  base: readonly CheckProblem[],
  fixed: readonly CheckProblem[],
  targeted: readonly Pick<CheckProblem, 'severity' | 'message' | 'source' | 'code'>[],
  tookMs: number,
): CheckVerdict {
  const baseCounts = tally(base);
  const left = new Map(baseCounts);
  const newProblems: CheckProblem[] = [];
  for (const p of fixed) {
    const k = keyOf(p);
    const n = left.get(k) ?? 0;
    if (n > 0) left.set(k, n - 1);
    else newProblems.push(p);
  }
  const fixedCounts = tally(fixed);
  const remaining: CheckProblem[] = [];
  let fixedTargets = 0;
  const seen = new Set<string>();
  for (const t of targeted) {
    const k = keyOf(t);
    if (seen.has(k) || !baseCounts.has(k)) continue;
    seen.add(k);
    if ((fixedCounts.get(k) ?? 0) < baseCounts.get(k)!) fixedTargets++;
    else remaining.push(...fixed.filter((p) => keyOf(p) === k).slice(0, 1));
  }
  const byLine = (a: CheckProblem, b: CheckProblem) => a.line - b.line;
  if (newProblems.length === 0 && remaining.length === 0) return { kind: 'checked', fixed: fixedTargets, tookMs };
  return { kind: 'problems', newProblems: newProblems.sort(byLine), remaining: remaining.sort(byLine), tookMs };
}

/** How bad an attempt's verdict is, for keeping the best: fewer is better. */
function badness(v: CheckVerdict | undefined): number {
  if (!v || v.kind === 'checking' || v.kind === 'not-checked') return 0.5; // unknown: better than a known problem, worse than a pass
  if (v.kind === 'checked') return 0;
  return v.newProblems.length + v.remaining.length;
}

/**
 * The attempt to keep of a fix and its repair rounds: the one with the fewest problems and, among
 * equals, the latest. An attempt whose check did not run counts as half a problem: better than one
 * with a known problem, worse than one that passed.
 */
export function bestAttempt<T extends { check?: CheckVerdict }>(attempts: readonly T[]): T | undefined {
  let best: T | undefined;
  for (const a of attempts) if (!best || badness(a.check) <= badness(best.check)) best = a;
  return best;
}

/** Whether a verdict asks for a repair round. */
export function needsRepair(v: CheckVerdict): v is Extract<CheckVerdict, { kind: 'problems' }> {
  return v.kind === 'problems';
}
