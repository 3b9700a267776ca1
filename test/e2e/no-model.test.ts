/**
 * Scenario 5 of issue 6: with no model configured, a request ends in a notification that offers
 * "Download Model" and "Choose Folder".
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { E2E } from './harness';

let e2e: E2E;

before(async () => {
  // No r1.model.path and a fresh user-data folder: no model anywhere.
  e2e = await E2E.start({ name: 'no-model', settings: { 'r1.model.path': undefined } });
});

after(async () => {
  await e2e?.stop();
});

test('"R1: Explain" without a model: a notification offers Download Model and Choose Folder', async () => {
  await e2e.step('no-model', async () => {
    await e2e.openFile('src/greet.ts');
    await e2e.page.locator('.monaco-editor .view-lines').first().click();
    await e2e.page.keyboard.press('Control+A');
    await e2e.runCommand('R1: Explain');
    const toast = await e2e.waitForNotification(/^R1: /, 60_000);
    const message = await toast.locator('.notification-list-item-message').innerText();
    assert.match(message, /model/i, `the notification is about the model: ${message}`);
    await e2e.notificationButton(toast, 'Download Model').waitFor({ state: 'visible' });
    await e2e.notificationButton(toast, 'Choose Folder').waitFor({ state: 'visible' });
    await e2e.screenshot('no-model-notification');
  });
});
