/**
 * R1 Coder in a real VS Code (code-server + Chromium): it installs from its VSIX, activates,
 * starts its language server on request, and a command that cannot act says why.
 * Run: npm run test:e2e (first run installs code-server and Node 24 into .cache/e2e, ~4 min).
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, test } from 'node:test';
import { E2E } from './harness';

let e2e: E2E;

before(async () => {
  e2e = await E2E.start({ name: 'basics' });
});

after(async () => {
  await e2e?.stop();
});

test('the workbench loads with R1 Coder installed and activated: the status bar shows "R1"', async (t) => {
  await e2e.step('status-item', async () => {
    const item = e2e.statusItem();
    assert.match(await item.innerText(), /\bR1\b/);
    // The item names the extension for screen readers and runs "R1: Show Log" when clicked.
    assert.match((await item.getAttribute('aria-label')) ?? '', /R1/);
    await e2e.screenshot('workbench-with-r1');
    t.diagnostic(`code-server up in ${e2e.timings.serverStartMs} ms; workbench in ${e2e.timings.workbenchMs} ms; R1 status item after ${e2e.timings.statusItemMs} ms`);
  });
});

test('VS Code reports R1 Coder activated, with its activation time', async (t) => {
  const ms = await e2e.step('activation-time', () => e2e.activationTimeMs());
  assert.ok(Number.isFinite(ms) && ms >= 0, `activation time ${ms}`);
  assert.match(e2e.extensionLog(), /R1 Coder \d+\.\d+\.\d+\S* activated\./);
  t.diagnostic(`R1 Coder activation time (Developer: Show Running Extensions): ${ms} ms`);
});

test('"R1: Restart Server" then "R1: Show Log" shows the server\'s start line in the Output panel', async () => {
  await e2e.step('restart-and-log', async () => {
    await e2e.runCommand('R1: Restart Server');
    await e2e.runCommand('R1: Show Log');
    const text = await e2e.waitForOutput(/R1 server \S+ started \(pid \d+, node v\d+/);
    // The client pinged the restarted server over the language server connection and logged the reply.
    assert.match(text, /R1 server restarted \(pid \d+, ping \d+ ms\)/);
    const started = /R1 server \S+ started \(pid (\d+)/.exec(text);
    const restarted = /R1 server restarted \(pid (\d+)/.exec(text);
    assert.equal(started?.[1], restarted?.[1], 'the ping came from the server that logged its start');
    await e2e.screenshot('show-log-server-started');
  });
});

test('"R1: Fix" with no editor open shows a notification saying why nothing happened', async () => {
  await e2e.step('fix-notification', async () => {
    const before = readFileSync(e2e.workspaceFile('src/sum.ts'), 'utf8');
    await e2e.runCommand('View: Close All Editors');
    await e2e.runCommand('R1: Fix');
    const toast = await e2e.waitForNotification(/^R1: Fix\b/);
    const message = await toast.locator('.notification-list-item-message').innerText();
    assert.match(message, /^R1: Fix (is not available|works on the code of an editor)/);
    await e2e.screenshot('fix-notification');
    assert.equal(readFileSync(e2e.workspaceFile('src/sum.ts'), 'utf8'), before, 'no file changed');
  });
});

test('the Reasoning view opens and its webview renders the extension\'s page', async () => {
  await e2e.step('reasoning-view', async () => {
    const frame = await e2e.openReasoningView();
    // The page renders after its script starts and the extension answers; wait for content.
    const text = await e2e.until('text in the Reasoning view', async () => (await frame.locator('#app').innerText()).trim(), 20_000);
    assert.ok(text.length > 0, 'the view shows content');
    await e2e.screenshot('reasoning-view');
  });
});

test('stopping the harness ends code-server, the extension host and the R1 server', async () => {
  const pid = e2e.codeServerPid;
  assert.ok(pid !== undefined);
  assert.ok(e2e.leftoverPids().length > 0, 'code-server and its children are running before stop()');
  await e2e.stop();
  assert.deepEqual(e2e.leftoverPids(), []);
  assert.throws(() => process.kill(-pid, 0), 'the process group is gone');
});
