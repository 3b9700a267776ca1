/**
 * The verdict of a fix's check (compareProblems, bestAttempt) and the repair round's request
 * (repairRequest). The check itself, against the real TypeScript extension, is in
 * test/integration/suite/check.test.ts.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { repairQuestion, repairRequest } from '../../../src/client/check/repair';
import { bestAttempt, compareProblems, needsRepair } from '../../../src/client/check/verdict';
import type { CheckProblem, CheckVerdict } from '../../../src/protocol/webview';
import { verdictLabel } from '../../../src/protocol/webview';

const typo: CheckProblem = { line: 9, message: "Cannot find name 'totl'. Did you mean 'total'?", severity: 'error', source: 'ts', code: '2552' };
const importErr: CheckProblem = { line: 1, message: "Cannot find module './helper' or its corresponding type declarations.", severity: 'error', source: 'ts', code: '2307' };
const typeErr: CheckProblem = { line: 9, message: "Type 'string' is not assignable to type 'number'.", severity: 'error', source: 'ts', code: '2322' };

test('a fix that removes the targeted problem and adds none is Checked; problems of the copy itself cancel out', () => {
  const v = compareProblems([importErr, typo], [importErr], [typo], 120);
  assert.deepEqual(v, { kind: 'checked', fixed: 1, tookMs: 120 });
  assert.equal(verdictLabel(v), 'Checked');
});

test('a new problem is reported with its line, even when it sits where the old one was', () => {
  const v = compareProblems([importErr, typo], [importErr, typeErr], [typo], 50);
  assert.equal(v.kind, 'problems');
  assert.ok(needsRepair(v));
  assert.deepEqual(v.kind === 'problems' && v.newProblems, [typeErr]);
  assert.deepEqual(v.kind === 'problems' && v.remaining, []);
  assert.equal(verdictLabel(v), '1 new problem');
});

test('a second copy of an existing problem is new; a moved problem (other line, same message) is not', () => {
  const moved = { ...importErr, line: 3 };
  const v = compareProblems([importErr], [moved, { ...importErr, line: 7 }], [], 1);
  assert.equal(v.kind, 'problems');
  assert.deepEqual(v.kind === 'problems' && v.newProblems.map((p) => p.line), [7]);
});

test('a targeted problem still there is not fixed; one the copy never reports cannot be judged', () => {
  const v = compareProblems([typo], [typo], [typo], 1);
  assert.equal(v.kind, 'problems');
  assert.deepEqual(v.kind === 'problems' && v.remaining, [typo]);
  assert.equal(verdictLabel(v), '1 problem not fixed');
  // An ESLint problem of the user's file that the copies do not get: no verdict on it.
  const lint = { line: 2, message: 'Unexpected var, use let or const instead.', severity: 'error' as const, source: 'eslint', code: 'no-var' };
  assert.deepEqual(compareProblems([], [], [lint], 1), { kind: 'checked', fixed: 0, tookMs: 1 });
});

test('the best attempt has the fewest problems, the latest among equals; an unchecked one ranks between', () => {
  const checked: CheckVerdict = { kind: 'checked', fixed: 1, tookMs: 1 };
  const one: CheckVerdict = { kind: 'problems', newProblems: [typeErr], remaining: [], tookMs: 1 };
  const two: CheckVerdict = { kind: 'problems', newProblems: [typeErr, importErr], remaining: [], tookMs: 1 };
  const unknown: CheckVerdict = { kind: 'not-checked', reason: 'timeout' };
  const a = (id: string, check: CheckVerdict) => ({ id, check });
  assert.equal(bestAttempt([a('1', one), a('2', checked)])?.id, '2');
  assert.equal(bestAttempt([a('1', checked), a('2', one)])?.id, '1', 'a later attempt with problems does not replace a passing one');
  assert.equal(bestAttempt([a('1', one), a('2', one)])?.id, '2', 'among equals, the latest');
  assert.equal(bestAttempt([a('1', one), a('2', two)])?.id, '1');
  assert.equal(bestAttempt([a('1', one), a('2', unknown)])?.id, '2');
  assert.equal(bestAttempt([a('1', checked), a('2', unknown)])?.id, '1');
});

test('the repair request: the proposed code at its lines of the fixed file, the problems, the replayed conversation', () => {
  const history = [
    { role: 'user' as const, content: 'Fix the code at lines 2-9 of `src/sum.ts` (typescript).\n\nCode to fix …' },
    { role: 'assistant' as const, content: 'Fixed:\n```ts\n…\n```' },
  ];
  const proposed = 'export function sum(values: number[]): number {\n  let total = 0;\n  return String(total);\n}\n';
  const r = repairRequest({ path: 'src/sum.ts', languageId: 'typescript', fixedText: `// head\n${proposed}`, startLine: 1, proposed, newProblems: [typeErr], remaining: [], history, round: 1 });
  assert.equal(r.code, proposed);
  assert.equal(r.startLine, 1);
  assert.equal(r.endLine, 4, 'the last line of the proposed code, not the empty line after its newline');
  assert.deepEqual(r.diagnostics, [{ message: typeErr.message, severity: 'error', startLine: 9, endLine: 9, source: 'ts', code: '2322' }]);
  assert.deepEqual(r.history, history, 'the fix\'s user turn and answer, no reasoning');
  assert.equal(
    r.question,
    "The editor checked your previous fix and it introduced a new problem:\n- line 9: Type 'string' is not assignable to type 'number'.\n\nCorrect the code below so that these problems are gone, and keep what the fix changed for the better.",
  );
});

test('the repair question names new and unfixed problems apart', () => {
  const q = repairQuestion([typeErr, importErr], [typo]);
  assert.match(q, /introduced 2 new problems:\n- line 9: Type 'string'.*\n- line 1: Cannot find module/);
  assert.match(q, /Also, the problem it was meant to fix is still reported:\n- line 9: Cannot find name 'totl'/);
  assert.match(repairQuestion([], [typo]), /^The editor checked your previous fix, and the problem it was meant to fix is still reported/);
});
