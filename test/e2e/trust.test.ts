/**
 * Issue 16 in a real VS Code (code-server + Chromium): fixes checked against TypeScript's own
 * diagnostics before they are ready, the automatic repair round, typing above the target while the
 * model reasons, accepting one of two hunks, and a cut-off answer that proposes nothing.
 *
 * Each scenario runs a scripted model built for it (test/fixtures/models.ts). The repair model
 * answers the first fix with code that has a type error; its alternate script, chosen when the
 * prompt holds the word " checked" (only the repair round's prompt does: "The editor checked your
 * previous fix…"), answers with code that compiles. So the second answer proves that the repair
 * prompt carried the check's verdict.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { buildScriptedModel, FIXTURES_DIR } from '../fixtures/models';
import { E2E, SCRIPTED_MODEL } from './harness';
import { ReasoningView } from './reasoning';

const SUM_TS = 'src/sum.ts';
const STATS_TS = 'src/stats.ts';

const fence = (code: string) => `\`\`\`typescript\n${code}\n\`\`\``;

// ── the repair model ──
const SUM_WITH_TYPE_ERROR = [
  'export function sum(values: number[]): number {',
  '  let total = 0;',
  '  for (const value of values) {',
  '    total += value;',
  '  }',
  '  return String(total);',
  '}',
].join('\n');
const SUM_FIXED = SUM_WITH_TYPE_ERROR.replace('return String(total);', 'return total;');
/** Long enough (about 500 tokens, 5-25 s here) for the user to type while it streams. */
const LONG_REASONING = [
  'Okay, the user wants me to fix `sum`. The last line returns `totl`, a name that does not exist.',
  ...Array.from({ length: 20 }, (_, i) => `Looking at line ${i + 1} of the loop again: each value is added to the running total, so nothing else is wrong there.`),
].join('\n');
const REPAIR_SCRIPT = `${LONG_REASONING}\n</think>\n\nThe return statement named a variable that does not exist:\n\n${fence(SUM_WITH_TYPE_ERROR)}\n\nIt now returns the total.`;
const REPAIRED_SCRIPT = `The editor found that the function returns a string. Return the number itself.\n</think>\n\nReturn the number, not a string:\n\n${fence(SUM_FIXED)}\n\nThe function returns a \`number\` again.`;

// ── the two-hunk model ──
const STATS_FIXED = (original: string) =>
  original.replace('let min = Infinity;', 'let min = Number.POSITIVE_INFINITY;').replace('const mean = total / count;', 'const mean = count === 0 ? 0 : total / count;');

let e2e: E2E | undefined;
after(async () => {
  await e2e?.stop();
});

async function start(name: string, model: string, settings: Record<string, unknown> = {}): Promise<{ e2e: E2E; view: ReasoningView }> {
  await e2e?.stop();
  e2e = await E2E.start({ name, settings: { 'r1.model.path': model, 'r1.generation.temperature': 0, ...settings }, viewport: { width: 1600, height: 1000 } });
  const view = new ReasoningView(e2e);
  await view.frame(true);
  await e2e.setSideBarWidth(620);
  return { e2e, view };
}

test('a fix with a type error: "1 new problem", a repair round whose fix passes the check, kept and accepted; text typed above the target while the model reasoned survives', async () => {
  const model = join(FIXTURES_DIR, 'scripted-repair');
  await buildScriptedModel(model, { script: REPAIR_SCRIPT, alternate: { trigger: 'checked', script: REPAIRED_SCRIPT } });
  const { e2e, view } = await start('trust-repair', model);
  await e2e.step('repair', async () => {
    const original = readFileSync(e2e.workspaceFile(SUM_TS), 'utf8');
    await e2e.openFile(SUM_TS);
    await e2e.activeEditor().locator('.squiggly-error').first().waitFor({ state: 'visible', timeout: 60_000 });
    const before = await view.ids();
    await e2e.goTo(7, 11); // on `totl`
    await e2e.runCommand('R1: Fix');
    const first = await view.waitForNew(before);
    const streaming = await view.waitFor(first, 'reasoning streaming', (x) => x.reasoning !== '' || x.status !== 'generating', 60_000);
    assert.equal(streaming.status, 'generating', 'the model still reasons when the user types');

    // The user types above the target while the model reasons.
    const typed = 'const typedWhileR1Thinks = 1;\n';
    await e2e.goTo(1, 1);
    await e2e.page.keyboard.insertText(typed);
    await e2e.until('the typed line in the editor', async () => (await e2e.editorText()) === typed + original, 15_000);
    assert.equal((await view.snapshot(first)).status, 'generating', 'typed before the answer came');
    await e2e.screenshot('typed-while-reasoning');

    // Attempt 1: the check finds the type error the fix introduced.
    const a1 = await view.waitFor(first, 'the check of attempt 1', (x) => x.check !== '' && x.check !== 'Checking…', 120_000);
    assert.equal(a1.check, '1 new problem', JSON.stringify(a1));
    assert.match(a1.checkProblems, /line 7 Type 'string' is not assignable to type 'number'\./);
    await (await view.exchange(first)).locator('.proposal').scrollIntoViewIfNeeded();
    await e2e.screenshot('check-new-problem');

    // The repair round starts by itself, as a follow-up of the fix.
    const repair = await view.waitForNew([...before, first], 60_000);
    const r = await view.waitForStatus(repair, ['complete', 'error', 'cancelled', 'length'], 120_000);
    assert.equal(r.status, 'complete', JSON.stringify(r));
    assert.match(r.reasoning, /^The editor found that the function returns a string/, 'the alternate script: the repair prompt carried the check');
    const a2 = await view.waitFor(repair, 'the check of attempt 2', (x) => x.check !== '' && x.check !== 'Checking…', 120_000);
    assert.equal(a2.check, 'Checked', JSON.stringify(a2));
    assert.equal(a2.proposalState, 'pending');
    const kept = await view.waitFor(first, 'attempt 1 not kept', (x) => x.proposalState === 'superseded');
    assert.match(kept.proposalMessage, /Attempt 2 of this fix \(Checked\) is kept instead\./);
    await (await view.exchange(repair)).locator('.proposal').scrollIntoViewIfNeeded();
    await e2e.screenshot('repair-checked');
    // The copies leave no tab and no problem behind.
    assert.equal(await e2e.page.locator('.tabs-container .tab[aria-label^="R1 check"]').count(), 0);

    // Accept: the fix lands on the function, below the line the user typed.
    await view.click(repair, 'pr-accept');
    const done = await view.waitFor(repair, 'accepted', (x) => x.proposalState === 'accepted');
    assert.match(done.proposalMessage, /placed where the original code now is/);
    const start = original.indexOf('export function sum');
    const end = original.indexOf('\n}\n', start) + 2;
    const expected = typed + original.slice(0, start) + SUM_FIXED + original.slice(end);
    await e2e.until('the editor to hold the typed line and the repaired fix', async () => (await e2e.editorText()) === expected, 15_000);
    await e2e.screenshot('repair-accepted');
  });
});

test('a fix with two hunks: Accept one, then Reject the rest; the file holds exactly the accepted change; "Checked" without a targeted problem', async () => {
  const model = join(FIXTURES_DIR, 'scripted-hunks');
  const e2eOriginal = readFileSync(join(__dirname, 'workspace', 'src', 'stats.ts.fixture'), 'utf8');
  const fnStart = e2eOriginal.indexOf('export function stats');
  const fnEnd = e2eOriginal.indexOf('\n}\n', fnStart) + 2;
  const fixedFn = STATS_FIXED(e2eOriginal.slice(fnStart, fnEnd));
  await buildScriptedModel(model, { script: `Two small robustness fixes.\n</think>\n\nGuard the empty list:\n\n${fence(fixedFn)}\n\nThe mean of no values is 0.` });
  const { e2e, view } = await start('trust-hunks', model);
  await e2e.step('hunks', async () => {
    const original = readFileSync(e2e.workspaceFile(STATS_TS), 'utf8');
    await e2e.openFile(STATS_TS);
    await e2e.goTo(2, 1);
    for (let i = 0; i < 12; i++) await e2e.page.keyboard.press('Shift+ArrowDown');
    await e2e.page.keyboard.press('Shift+End');
    const before = await view.ids();
    await e2e.runCommand('R1: Fix');
    const id = await view.waitForNew(before);
    const s = await view.waitFor(id, 'the check', (x) => x.check !== '' && x.check !== 'Checking…', 120_000);
    assert.equal(s.check, 'Checked', JSON.stringify(s));
    const ex = await view.exchange(id);
    assert.equal(await ex.locator('.d-hunk').count(), 2, 'two hunks');
    assert.equal((await ex.locator('vscode-button.pr-accept').innerText()).trim(), 'Accept All');
    await ex.locator('.proposal').scrollIntoViewIfNeeded();
    await e2e.screenshot('two-hunks');

    // Accept the second hunk (the mean) only, from the diff editor: the cursor on it, then the
    // editor's own action "R1: Accept Change at Cursor".
    await view.click(id, 'pr-review');
    const diffEditor = e2e.page.locator('.part.editor .editor-group-container.active .monaco-diff-editor').first();
    await diffEditor.waitFor({ state: 'visible', timeout: 15_000 });
    await diffEditor.locator('.editor.modified .view-lines').click();
    await e2e.goTo(12, 5);
    assert.equal(await e2e.page.locator('.editor-actions .action-label[aria-label^="Accept Change at Cursor"]').count(), 1, 'the action is in the diff editor\'s title bar');
    await e2e.screenshot('diff-editor-actions');
    await e2e.runCommand('R1: Accept Change at Cursor');
    const half = original.replace('const mean = total / count;', 'const mean = count === 0 ? 0 : total / count;');
    await e2e.until('the file on disk to hold the second change only', async () => readFileSync(e2e.workspaceFile(STATS_TS), 'utf8') === half, 15_000);
    const rest = await view.waitFor(id, 'the rest still proposed', (x) => x.proposalState === 'pending' && /One change was applied/.test(x.proposalMessage));
    assert.equal(rest.proposalState, 'pending');
    assert.equal(await ex.locator('.d-hunk').count(), 1, 'one hunk left');
    // The diff editor follows: the accepted change is on both sides now.
    await e2e.until('the diff editor to show the accepted change on both sides', async () => /const mean = count === 0/.test((await diffEditor.locator('.editor.original .view-lines').innerText()).replace(/\u00a0/g, ' ')), 15_000);
    await e2e.screenshot('one-hunk-accepted');
    await e2e.runCommand('View: Close Editor');
    await e2e.openFile(STATS_TS);

    await view.click(id, 'pr-reject');
    await view.waitFor(id, 'rejected', (x) => x.proposalState === 'rejected');
    assert.equal(readFileSync(e2e.workspaceFile(STATS_TS), 'utf8'), half);
    assert.equal(await e2e.editorText(), half);
    // One Undo takes back the one accepted change.
    await e2e.focusEditor();
    await e2e.page.keyboard.press('Control+Z');
    await e2e.until('Undo to restore the original', async () => (await e2e.editorText()) === original, 15_000);
  });
});

test('a cut-off answer proposes nothing, says why and offers Continue, which runs the fix again with twice the budget; its proposal survives a window reload', async () => {
  await buildScriptedModel(SCRIPTED_MODEL);
  const { e2e, view } = await start('trust-cutoff', SCRIPTED_MODEL, { 'r1.generation.maxNewTokens': 100 });
  await e2e.step('cutoff', async () => {
    const original = readFileSync(e2e.workspaceFile('src/port.ts'), 'utf8');
    await e2e.openFile('src/port.ts');
    await e2e.activeEditor().locator('.squiggly-error').first().waitFor({ state: 'visible', timeout: 60_000 });
    const before = await view.ids();
    await e2e.goTo(5, 7);
    await e2e.runCommand('R1: Fix');
    const id = await view.waitForNew(before);
    const s = await view.waitForStatus(id, ['complete', 'error', 'cancelled', 'length'], 120_000);
    assert.equal(s.status, 'length', JSON.stringify(s));
    assert.match(s.answer, /```typescript|export function parsePort/, 'the answer was cut inside its code');
    const n = await view.waitFor(id, 'the notice', (x) => x.notice !== '');
    assert.match(n.notice, /No edit proposed: the answer was cut off by the token limit/);
    assert.equal(n.proposalState, undefined, 'no proposal');
    await (await view.exchange(id)).locator('.ex-notice').scrollIntoViewIfNeeded();
    await e2e.screenshot('cutoff-no-proposal');
    assert.equal(readFileSync(e2e.workspaceFile('src/port.ts'), 'utf8'), original);

    await view.click(id, 'nt-continue');
    const next = await view.waitForNew([...before, id]);
    const c = await view.waitForStatus(next, ['complete', 'error', 'cancelled', 'length'], 120_000);
    assert.equal(c.status, 'complete', JSON.stringify(c));
    const checked = await view.waitFor(next, 'the continued fix checked', (x) => x.check !== '' && x.check !== 'Checking…', 120_000);
    assert.equal(checked.check, 'Checked');
    assert.equal(checked.proposalState, 'pending');
    await e2e.screenshot('continued');

    // A window reload keeps the pending proposal: Accept still applies it.
    await e2e.reloadWindow();
    await view.frame(true);
    const kept = await view.waitFor(next, 'the proposal after the reload', (x) => x.proposalState !== undefined);
    assert.equal(kept.proposalState, 'pending', JSON.stringify(kept));
    assert.equal(kept.check, 'Checked');
    await view.click(next, 'pr-accept');
    await view.waitFor(next, 'accepted after the reload', (x) => x.proposalState === 'accepted');
    await e2e.until('src/port.ts on disk to hold the fix', async () => readFileSync(e2e.workspaceFile('src/port.ts'), 'utf8').includes('throw new RangeError'), 15_000);
    await e2e.screenshot('accepted-after-reload');
  });
});

test('with repair rounds off, Accept of a fix with a new problem asks first and names it; "Apply Anyway" applies it', async () => {
  const model = join(FIXTURES_DIR, 'scripted-repair');
  await buildScriptedModel(model, { script: REPAIR_SCRIPT, alternate: { trigger: 'checked', script: REPAIRED_SCRIPT } });
  const { e2e, view } = await start('trust-confirm', model, { 'r1.fix.repairRounds': 0 });
  await e2e.step('confirm', async () => {
    const original = readFileSync(e2e.workspaceFile(SUM_TS), 'utf8');
    await e2e.openFile(SUM_TS);
    await e2e.activeEditor().locator('.squiggly-error').first().waitFor({ state: 'visible', timeout: 60_000 });
    const before = await view.ids();
    await e2e.goTo(7, 11);
    await e2e.runCommand('R1: Fix');
    const id = await view.waitForNew(before);
    const s = await view.waitFor(id, 'the check', (x) => x.check !== '' && x.check !== 'Checking…', 180_000);
    assert.equal(s.check, '1 new problem');
    assert.deepEqual(await view.ids(), [...before, id], 'no repair round');

    await view.click(id, 'pr-accept');
    const dialog = e2e.page.locator('.monaco-dialog-box');
    await dialog.waitFor({ state: 'visible', timeout: 15_000 });
    const said = await dialog.innerText();
    assert.match(said, /R1's check of this edit to src\/sum\.ts found 1 new problem\. Apply it anyway\?/);
    assert.match(said, /line 7: Type 'string' is not assignable to type 'number'\./);
    await e2e.screenshot('confirm-new-problem');
    // Cancel first: nothing changes.
    await e2e.page.keyboard.press('Escape');
    await dialog.waitFor({ state: 'detached', timeout: 15_000 });
    assert.equal((await view.snapshot(id)).proposalState, 'pending');
    assert.equal(readFileSync(e2e.workspaceFile(SUM_TS), 'utf8'), original);

    await view.click(id, 'pr-accept');
    await dialog.waitFor({ state: 'visible', timeout: 15_000 });
    await dialog.locator('.monaco-button', { hasText: 'Apply Anyway' }).click();
    await view.waitFor(id, 'accepted', (x) => x.proposalState === 'accepted');
    const start = original.indexOf('export function sum');
    const end = original.indexOf('\n}\n', start) + 2;
    await e2e.until('the file on disk to hold the fix', async () => readFileSync(e2e.workspaceFile(SUM_TS), 'utf8') === original.slice(0, start) + SUM_WITH_TYPE_ERROR + original.slice(end), 15_000);
  });
});
