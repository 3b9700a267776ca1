/**
 * Scenarios 1, 2, 3 and 7 of issue 6, and issue 4's "a document edited in between is re-anchored
 * or refused", in a real VS Code (code-server + Chromium) driving the scripted fixture model: it
 * answers every prompt with DEFAULT_SCRIPT (test/fixtures/models.ts), reasoning then an answer
 * whose ```typescript block is a corrected `parsePort`, the function of the workspace's
 * src/port.ts, which has a type error there.
 */
import assert from 'node:assert/strict';
import { readFileSync, statSync } from 'node:fs';
import { after, before, test } from 'node:test';
import { formatAsComment } from '../../src/client/edits/comments';
import { buildScriptedModel, DEFAULT_SCRIPT } from '../fixtures/models';
import { E2E, SCRIPTED_MODEL } from './harness';
import { ReasoningView } from './reasoning';

const PORT_TS = 'src/port.ts';
const GREET_TS = 'src/greet.ts';

const [SCRIPT_REASONING, SCRIPT_ANSWER] = DEFAULT_SCRIPT.split('</think>').map((s) => s.trim());
/** The code block of the script's answer: the corrected parsePort. */
const FIXED_FUNCTION = /```typescript\n([\s\S]*?)\n```/.exec(SCRIPT_ANSWER)![1];

let e2e: E2E;
let view: ReasoningView;
/** src/port.ts as the fixture workspace has it. */
let portOriginal: string;
/** src/port.ts with its parsePort replaced by the script's, nothing else changed. */
let portFixed: string;

before(async () => {
  await buildScriptedModel(SCRIPTED_MODEL); // cached: returns at once when built
  e2e = await E2E.start({ name: 'workflows', settings: { 'r1.generation.temperature': 0 }, viewport: { width: 1600, height: 1000 } });
  view = new ReasoningView(e2e);
  await view.frame(true);
  await e2e.setSideBarWidth(620);
  portOriginal = readFileSync(e2e.workspaceFile(PORT_TS), 'utf8');
  const start = portOriginal.indexOf('export function parsePort');
  const end = portOriginal.indexOf('\n}\n', start) + 2;
  assert.ok(start >= 0 && end > start, 'src/port.ts holds parsePort');
  portFixed = portOriginal.slice(0, start) + FIXED_FUNCTION + portOriginal.slice(end);
});

after(async () => {
  await e2e?.stop();
});

function disk(path: string): string {
  return readFileSync(e2e.workspaceFile(path), 'utf8');
}

/** Puts an edited file back as it is on disk ("File: Revert File"), whatever a failed step left. */
async function revert(path: string, expected: string): Promise<void> {
  if (!(await e2e.isDirty(path))) return;
  await e2e.runCommand('File: Revert File');
  await e2e.until(`${path} to show the file on disk again`, async () => !(await e2e.isDirty(path)) && (await e2e.editorText()) === expected, 15_000);
}

/** Opens src/port.ts and waits until TypeScript reports its error (a red squiggle). */
async function openPortWithError(): Promise<void> {
  await e2e.openFile(PORT_TS);
  await e2e.activeEditor().locator('.squiggly-error').first().waitFor({ state: 'visible', timeout: 60_000 });
}

/**
 * Puts the cursor on the error (`return value;`, line 5), presses Ctrl+. and picks "Fix with R1".
 * Returns the id of the exchange it started.
 */
async function quickFixWithR1(): Promise<string> {
  const before = await view.ids();
  await e2e.goTo(5, 7);
  const item = e2e.page.locator('.action-widget .monaco-list-row', { hasText: 'Fix with R1' }).first();
  // Ctrl+. can land before the editor has focus or before its code actions are computed (seen
  // once in CI); the menu then never shows the item. Press again, up to three times in all.
  for (let attempt = 1; ; attempt++) {
    await e2e.page.keyboard.press('Control+.');
    const shown = await item.waitFor({ state: 'visible', timeout: attempt < 3 ? 10_000 : 30_000 }).then(() => true, (e: unknown) => {
      if (attempt >= 3) throw e;
      return false;
    });
    if (shown) break;
    await e2e.page.keyboard.press('Escape');
    await e2e.goTo(5, 7);
  }
  await e2e.screenshot('quick-fix-menu');
  await item.click();
  return view.waitForNew(before);
}

/** "R1: Fix" from the command palette with the cursor on the error; returns the exchange once its proposal is pending. */
async function fixViaPalette(): Promise<string> {
  const before = await view.ids();
  await e2e.goTo(5, 7);
  await e2e.runCommand('R1: Fix');
  const id = await view.waitForNew(before);
  await waitForProposal(id);
  return id;
}

/**
 * A "Fix with R1" proposal on src/port.ts, then the user types `text` at line:column before
 * accepting; waits until the editor shows `edited`. Returns the exchange.
 */
async function proposeThenEdit(line: number, column: number, text: string, edited: string, what: string): Promise<string> {
  await openPortWithError();
  const id = await quickFixWithR1();
  await waitForProposal(id);
  await e2e.goTo(line, column);
  await e2e.page.keyboard.insertText(text);
  await e2e.until(what, async () => (await e2e.editorText()) === edited, 15_000);
  return id;
}

/** Waits for exchange `id` to complete with a pending proposal. */
async function waitForProposal(id: string): Promise<void> {
  const s = await view.waitForStatus(id, ['complete', 'error', 'cancelled', 'length']);
  assert.equal(s.status, 'complete', `the fix completed: ${JSON.stringify(s)}`);
  await view.waitFor(id, 'a pending proposal', (x) => x.proposalState === 'pending');
  // The script's parsePort type-checks: the check says so before the proposal is ready.
  const checked = await view.waitFor(id, 'the check of the proposal', (x) => x.check !== '' && x.check !== 'Checking…');
  assert.equal(checked.check, 'Checked', `the check's verdict: ${JSON.stringify(checked)}`);
}

/** The proposal's diff rows of exchange `id`: [sign, code] per row. */
async function diffRows(id: string): Promise<[string, string][]> {
  const el = await view.exchange(id);
  return el.locator('.proposal .diff-table tr').evaluateAll((rows) =>
    rows.map((r) => [r.querySelector('.d-sign')?.textContent ?? '', (r.querySelector('.d-code')?.textContent ?? '').replace(/\u00a0/g, ' ')] as [string, string]),
  );
}

test('1. "R1: Ask": the view shows the reasoning, then the answer, then the stats (tokens, tok/s, provider cpu)', async () => {
  await e2e.step('ask', async () => {
    await view.frame(true);
    await view.recordParts();
    const before = await view.ids();
    await e2e.runCommandWithInput('R1: Ask', 'Why would parsePort return a string?');
    const id = await view.waitForNew(before);
    const s = await view.waitForStatus(id, ['complete', 'error', 'cancelled', 'length']);
    assert.equal(s.status, 'complete', `the request completed: ${JSON.stringify(s)}`);

    const order = (await view.partEvents(id)).map((e) => e.part);
    assert.deepEqual(order, ['reasoning', 'answer', 'stats'], 'the reasoning appeared first, then the answer, then the final stats');
    assert.equal(s.reasoning, SCRIPT_REASONING);
    assert.match(s.answer, /It now always returns a number and rejects bad input with a clear error\./);
    assert.match(s.answer, /throw new RangeError/);
    // e.g. "176 tokens (59 reasoning, 117 answer) · 120.3 tok/s · cpu · q4 · prompt 120 · 1.5 s"
    assert.match(s.stats, /\b\d+ tokens \(\d+ reasoning, \d+ answer\)/);
    assert.match(s.stats, /\b\d+(\.\d+)? tok\/s\b/);
    assert.match(s.stats, /\bcpu\b/);
    assert.equal(s.error, '');

    await view.openReasoning(id);
    await (await view.exchange(id)).locator('.ex-stats').scrollIntoViewIfNeeded();
    await e2e.screenshot('ask-reasoning-answer-stats');
  });
});

test('2. "Fix with R1" quick fix on a TypeScript error: a diff in the view; Accept changes the file on disk; Undo restores it', async () => {
  await e2e.step('fix-accept-undo', async () => {
    await openPortWithError();
    await e2e.screenshot('port-ts-error');
    const id = await quickFixWithR1();
    await waitForProposal(id);
    // Prompt lookup, on by default: the answer copies parsePort from the prompt, so forward passes
    // checked drafted tokens and kept some (the view shows tokens a pass beside the speed).
    const stats = (await view.waitFor(id, 'the stats', (x) => /tok\/s/.test(x.stats))).stats;
    const perPass = /tok\/s \((\d+\.\d) a pass\)/.exec(stats);
    assert.ok(perPass && Number(perPass[1]) > 1, `tokens a pass in the stats: ${stats}`);

    const rows = await diffRows(id);
    const removed = rows.filter(([sign]) => sign === '−').map(([, code]) => code.trim());
    const added = rows.filter(([sign]) => sign === '+').map(([, code]) => code.trim());
    assert.ok(removed.includes('return value;'), `the diff removes "return value;": ${JSON.stringify(rows)}`);
    assert.ok(added.includes('throw new RangeError(`invalid port: ${value}`);'), `the diff adds the RangeError: ${JSON.stringify(rows)}`);
    assert.equal(disk(PORT_TS), portOriginal, 'nothing is written before Accept');
    await (await view.exchange(id)).locator('.proposal').scrollIntoViewIfNeeded();
    await e2e.screenshot('fix-diff');

    await view.click(id, 'pr-accept');
    await view.waitFor(id, 'the proposal accepted', (x) => x.proposalState === 'accepted');
    // The document had no unsaved changes, so the accepted edit is saved to disk.
    await e2e.until('src/port.ts on disk to hold the fix', async () => disk(PORT_TS) === portFixed, 15_000);
    assert.equal(await e2e.editorText(), portFixed);
    assert.equal(await e2e.isDirty(PORT_TS), false);
    await e2e.screenshot('fix-accepted');

    // One Undo brings back the whole original (the accept was one edit); saving puts it on disk.
    await e2e.focusEditor();
    await e2e.page.keyboard.press('Control+Z');
    await e2e.until('the editor to show the original text after Undo', async () => (await e2e.editorText()) === portOriginal, 15_000);
    await e2e.screenshot('fix-undone');
    await e2e.save(PORT_TS);
    assert.equal(disk(PORT_TS), portOriginal);
  });
});

test('3. Reject leaves the file unchanged on disk', async () => {
  await e2e.step('fix-reject', async () => {
    await openPortWithError();
    const mtime = statSync(e2e.workspaceFile(PORT_TS)).mtimeMs;
    // This time through the command palette, with the cursor on the error.
    const id = await fixViaPalette();

    // "Review in diff editor" opens VS Code's diff editor: the file against the proposal, read-only.
    await view.click(id, 'pr-review');
    const diffTab = e2e.page.locator('.tabs-container .tab[aria-label^="R1 proposal: src/port.ts"]').first();
    await diffTab.waitFor({ state: 'visible', timeout: 15_000 });
    const diffEditor = e2e.page.locator('.part.editor .editor-group-container.active .monaco-diff-editor').first();
    await diffEditor.waitFor({ state: 'visible', timeout: 15_000 });
    await e2e.until('the diff editor to show the removed and the added line', async () => {
      const removed = await diffEditor.locator('.editor.original .view-lines').innerText();
      const added = await diffEditor.locator('.editor.modified .view-lines').innerText();
      return /return value;/.test(removed.replace(/\u00a0/g, ' ')) && /throw new RangeError/.test(added.replace(/\u00a0/g, ' '));
    }, 15_000);
    await e2e.screenshot('review-diff-editor');
    await e2e.runCommand('View: Close Editor');
    await diffTab.waitFor({ state: 'detached', timeout: 15_000 });

    await view.click(id, 'pr-reject');
    await view.waitFor(id, 'the proposal rejected', (x) => x.proposalState === 'rejected');
    await (await view.exchange(id)).locator('.proposal').scrollIntoViewIfNeeded();
    await e2e.screenshot('fix-rejected');
    assert.equal(disk(PORT_TS), portOriginal);
    assert.equal(statSync(e2e.workspaceFile(PORT_TS)).mtimeMs, mtime, 'the file was not written');
    assert.equal(await e2e.editorText(), portOriginal);
    assert.equal(await e2e.isDirty(PORT_TS), false);
    const actions = await (await view.exchange(id)).locator('.proposal vscode-button.pr-accept').count();
    assert.equal(actions, 0, 'a rejected proposal offers no Accept');
  });
});

test('the keybindings: Ctrl+Alt+Enter accepts the pending proposal, Ctrl+Alt+Backspace rejects the next one', async () => {
  await e2e.step('keybindings-accept-reject', async () => {
    await openPortWithError();
    let id = await fixViaPalette();
    await e2e.focusEditor();
    await e2e.page.keyboard.press('Control+Alt+Enter');
    await view.waitFor(id, 'the proposal accepted by its keybinding', (x) => x.proposalState === 'accepted');
    await e2e.until('src/port.ts on disk to hold the fix', async () => disk(PORT_TS) === portFixed, 15_000);
    // Back to the original for the next proposal.
    await e2e.focusEditor();
    await e2e.page.keyboard.press('Control+Z');
    await e2e.until('the editor to show the original text after Undo', async () => (await e2e.editorText()) === portOriginal, 15_000);
    await e2e.save(PORT_TS);
    assert.equal(disk(PORT_TS), portOriginal);

    const mtime = statSync(e2e.workspaceFile(PORT_TS)).mtimeMs;
    id = await fixViaPalette();
    await e2e.focusEditor();
    await e2e.page.keyboard.press('Control+Alt+Backspace');
    await view.waitFor(id, 'the proposal rejected by its keybinding', (x) => x.proposalState === 'rejected');
    assert.equal(disk(PORT_TS), portOriginal);
    assert.equal(statSync(e2e.workspaceFile(PORT_TS)).mtimeMs, mtime, 'the file was not written');
    assert.equal(await e2e.editorText(), portOriginal);
    // With no proposal pending the keybinding does nothing (its `when` clause is false): the text stays.
    await e2e.page.keyboard.press('Control+Alt+Enter');
    await e2e.page.waitForTimeout(500);
    assert.equal(await e2e.editorText(), portOriginal);
  });
});

test('issue 4: a document edited elsewhere between the proposal and Accept is re-anchored', async () => {
  await e2e.step('reanchor', async () => {
    // The user adds a line at the top: the target moves down by one line.
    const id = await proposeThenEdit(1, 1, 'const DEFAULT_PORT = 8080;\n', `const DEFAULT_PORT = 8080;\n${portOriginal}`, 'the editor to show the added line');

    await view.click(id, 'pr-accept');
    const s = await view.waitFor(id, 'the proposal accepted', (x) => x.proposalState === 'accepted');
    assert.match(s.proposalMessage, /The document had changed; the edit was placed where the original code now is\./);
    await e2e.until('the editor to show the fix below the added line', async () => (await e2e.editorText()) === `const DEFAULT_PORT = 8080;\n${portFixed}`, 15_000);
    // The user's change was not saved, so nothing is written behind their back.
    assert.equal(await e2e.isDirty(PORT_TS), true);
    assert.equal(disk(PORT_TS), portOriginal);
    await (await view.exchange(id)).locator('.proposal').scrollIntoViewIfNeeded();
    await e2e.screenshot('reanchored');
  }).finally(() => revert(PORT_TS, portOriginal));
});

test('issue 4: a document edited inside the target between the proposal and Accept is refused with a message', async () => {
  await e2e.step('refused', async () => {
    // The user changes the code the proposal replaces: `return value;` → `return value as never;`.
    const edited = portOriginal.replace('    return value;', '    return value as never;');
    assert.notEqual(edited, portOriginal);
    const id = await proposeThenEdit(5, 17, ' as never', edited, 'the editor to show the edit inside parsePort');

    await view.click(id, 'pr-accept');
    const s = await view.waitFor(id, 'a message on the proposal', (x) => x.proposalMessage !== '');
    assert.equal(s.proposalState, 'pending', 'the proposal is not applied');
    assert.match(s.proposalMessage, /The code this proposal replaces was changed since it was computed\. Nothing was applied; run the command again\./);
    assert.equal(await e2e.editorText(), edited, 'the document is left as the user made it');
    assert.equal(disk(PORT_TS), portOriginal);
    await (await view.exchange(id)).locator('.proposal').scrollIntoViewIfNeeded();
    await e2e.screenshot('refused');

    await view.click(id, 'pr-reject');
    await view.waitFor(id, 'the proposal rejected', (x) => x.proposalState === 'rejected');
  }).finally(() => revert(PORT_TS, portOriginal));
});

test('7. "R1: Explain" on a selection, then "Insert as comment": the explanation appears above the selection', async () => {
  await e2e.step('explain-insert-comment', async () => {
    await e2e.openFile(GREET_TS);
    const original = disk(GREET_TS);
    const lines = original.split('\n');
    assert.match(lines[1], /^export function greet/);
    // Select the function: lines 2-5.
    await e2e.goTo(2, 1);
    for (let i = 0; i < 4; i++) await e2e.page.keyboard.press('Shift+ArrowDown');
    const before = await view.ids();
    await e2e.runCommand('R1: Explain');
    const id = await view.waitForNew(before);
    const s = await view.waitForStatus(id, ['complete', 'error', 'cancelled', 'length']);
    assert.equal(s.status, 'complete', `the explanation completed: ${JSON.stringify(s)}`);

    await view.click(id, 'ex-insert');
    const expected = [lines[0], formatAsComment(SCRIPT_ANSWER, 'typescript', '') + lines.slice(1).join('\n')].join('\n');
    await e2e.until('the comment above the selection in the editor', async () => (await e2e.editorText()) === expected, 15_000);
    assert.equal(await e2e.isDirty(GREET_TS), true, 'the comment is an edit in the editor, not written behind it');
    await e2e.screenshot('explain-inserted-comment');
    await e2e.save(GREET_TS);
    assert.equal(disk(GREET_TS), expected);
  });
});
