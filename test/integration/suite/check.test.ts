/**
 * The check of a proposed fix (src/client/check/shadow.ts) against the TypeScript diagnostics of a
 * real VS Code: the copies are checked by the built-in TypeScript extension like any open file.
 */
import * as assert from 'node:assert/strict';
import { suite, suiteSetup, suiteTeardown, test } from 'mocha';
import * as vscode from 'vscode';
import { FixChecker, type CheckInput } from '../../../src/client/check/shadow';

const SUM = [
  'import { helper } from "./helper";',
  '',
  '/** Adds up the numbers. */',
  'export function sum(values: number[]): number {',
  '  let total = 0;',
  '  for (const value of values) {',
  '    total += value;',
  '  }',
  '  return totl;',
  '}',
  '',
  'export const used = helper;',
  '',
].join('\n');

const ORIGINAL = SUM.slice(SUM.indexOf('export function sum'), SUM.indexOf('\n}\n') + 2);

function input(proposed: string, over: Partial<CheckInput> = {}): CheckInput {
  return {
    uri: vscode.Uri.parse('untitled:/r1-check-test/sum.ts'),
    label: 'src/sum.ts',
    languageId: 'typescript',
    documentText: SUM,
    offset: SUM.indexOf(ORIGINAL),
    original: ORIGINAL,
    proposed,
    targeted: [{ message: "Cannot find name 'totl'. Did you mean 'total'?", severity: 'error', startLine: 9, endLine: 9, source: 'ts', code: '2552' }],
    ...over,
  };
}

suite('The check of a proposed fix, with the TypeScript extension', () => {
  let checker: FixChecker;
  suiteSetup(async () => {
    await vscode.extensions.getExtension('vscode.typescript-language-features')?.activate();
    checker = new FixChecker();
  });
  suiteTeardown(() => checker.dispose());

  test('a fix that compiles: Checked, and the unresolved import of both copies cancels out', async () => {
    const v = await checker.check(input(ORIGINAL.replace('return totl;', 'return total;')), 30_000);
    assert.equal(v.kind, 'checked', JSON.stringify(v));
    assert.equal(v.kind === 'checked' && v.fixed, 1);
  });

  test('a fix with a type error: 1 new problem with its message and line', async () => {
    const v = await checker.check(input(ORIGINAL.replace('return totl;', 'return String(total);')), 30_000);
    assert.equal(v.kind, 'problems', JSON.stringify(v));
    if (v.kind !== 'problems') return;
    assert.equal(v.newProblems.length, 1, JSON.stringify(v.newProblems));
    assert.match(v.newProblems[0].message, /Type 'string' is not assignable to type 'number'/);
    assert.equal(v.newProblems[0].line, 9);
    assert.deepEqual(v.remaining, []);
  });

  test('a fix that leaves the targeted problem: not fixed', async () => {
    const v = await checker.check(input(ORIGINAL.replace('let total = 0;', 'let total = 1;')), 30_000);
    assert.equal(v.kind, 'problems', JSON.stringify(v));
    if (v.kind !== 'problems') return;
    assert.deepEqual(v.newProblems, []);
    assert.equal(v.remaining.length, 1);
    assert.match(v.remaining[0].message, /Cannot find name 'totl'/);
  });

  test('a file without problems and a fix without problems: Checked (the probe copy proves the provider answered)', async () => {
    const clean = SUM.replace('return totl;', 'return total;');
    const original = ORIGINAL.replace('return totl;', 'return total;');
    const v = await checker.check(input(original.replace('let total = 0;', 'let total = 0; // start'), { documentText: clean, original, offset: clean.indexOf(original), targeted: [] }), 30_000);
    assert.equal(v.kind, 'checked', JSON.stringify(v));
  });

  test('a file without problems and a fix that adds one: 1 new problem', async () => {
    const clean = SUM.replace('return totl;', 'return total;');
    const original = ORIGINAL.replace('return totl;', 'return total;');
    const v = await checker.check(input(original.replace('return total;', 'return `${total}`;'), { documentText: clean, original, offset: clean.indexOf(original), targeted: [] }), 30_000);
    assert.equal(v.kind, 'problems', JSON.stringify(v));
    assert.equal(v.kind === 'problems' && v.newProblems.length, 1);
  });

  test('a language without a diagnostics provider: Not checked, saying so, at the deadline', async () => {
    const t0 = Date.now();
    const v = await checker.check(input('x', { languageId: 'plaintext', label: 'notes.txt', documentText: 'a\nb\n', offset: 0, original: 'a', targeted: [] }), 1500);
    assert.equal(v.kind, 'not-checked');
    assert.match(v.kind === 'not-checked' ? v.reason : '', /no diagnostics provider reported on plaintext/);
    assert.ok(Date.now() - t0 >= 1500);
  });

  test('the copies leave no problem behind in the Problems panel', async () => {
    await checker.check(input(ORIGINAL.replace('return totl;', 'return String(total);')), 30_000);
    const leftover = () => vscode.languages.getDiagnostics().filter(([u, d]) => u.fsPath.includes('r1-check-') && d.length > 0);
    const tabs = () => vscode.window.tabGroups.all.flatMap((g) => g.tabs).filter((t) => /R1 check|r1-check-/.test(t.label));
    if (leftover().length > 0) {
      await new Promise<void>((resolve) => {
        const sub = vscode.languages.onDidChangeDiagnostics(() => {
          if (leftover().length === 0) {
            sub.dispose();
            resolve();
          }
        });
      });
    }
    assert.deepEqual(leftover(), []);
    assert.deepEqual(tabs().map((t) => t.label), [], 'no tab of the copies is left open');
  });
});
