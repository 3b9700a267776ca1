/**
 * Issue 15: R1: Download Model against a loopback hub that serves catalogue entries
 * (onnxruntime/DeepSeek-R1-Distill-ONNX's 1.5B CPU folder holds the scripted genai fixture, the 7B
 * CPU folder lists a data file larger than any disk; onnx-community/DeepSeek-R1-Distill-Qwen-1.5B-ONNX
 * holds the scripted fixture in the hub layout). Starting with no model: the notification's
 * Download Model opens the catalogue's quick pick, the recommended entry first; the 1.5B genai
 * folder is downloaded, used, and answers; so does the onnx-community q4 (its files only); the 7B
 * is refused by the free-space check with the figures, before a byte of it is fetched.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { ensureFixture } from '../fixtures/models';
import { fileRequests, installFakeHub, startLoopback, type FakeHubFile, type Loopback } from '../unit/install/loopback';
import { E2E } from './harness';
import { ReasoningView } from './reasoning';

const REPO = 'onnxruntime/DeepSeek-R1-Distill-ONNX';
const COMMUNITY_REPO = 'onnx-community/DeepSeek-R1-Distill-Qwen-1.5B-ONNX';
const CPU_1_5B = 'deepseek-r1-distill-qwen-1.5B/cpu_and_mobile/cpu-int4-rtn-block-32-acc-level-4';
const CPU_7B = 'deepseek-r1-distill-qwen-7B/cpu_and_mobile/cpu-int4-rtn-block-32-acc-level-4';

let e2e: E2E | undefined;
let hub: Loopback | undefined;
after(async () => {
  await e2e?.stop();
  await hub?.stop();
});

/** Picks the quick pick row whose label holds `title` (typed into the filter, then Enter). */
async function pick(e: E2E, title: string): Promise<void> {
  const input = e.page.locator('.quick-input-widget .quick-input-box input');
  await input.fill(title);
  const row = e.page.locator('.quick-input-widget .monaco-list-row', { hasText: title }).first();
  await row.waitFor({ state: 'visible', timeout: 15_000 });
  await input.press('Enter');
}

test('no model → Download Model: the catalogue with the recommended entry first; the genai 1.5B and the onnx-community q4 download and answer; a model larger than the disk is refused with the figures', async () => {
  const genai = await ensureFixture('scripted-genai');
  const files: Record<string, FakeHubFile> = {};
  for (const name of readdirSync(genai)) {
    if (name.startsWith('.')) continue;
    files[`${CPU_1_5B}/${name}`] = { body: readFileSync(join(genai, name)), lfs: name.startsWith('model.onnx') };
    files[`${CPU_7B}/${name}`] = { body: readFileSync(join(genai, name)), lfs: name.startsWith('model.onnx') };
  }
  files[`${CPU_7B}/model.onnx.data`] = { ...files[`${CPU_7B}/model.onnx.data`], listedSize: 40e12 };
  // The onnx-community layout: the scripted fixture as that repository, with a q4f16 graph the q4 entry must not fetch.
  const hubLayout = await ensureFixture('scripted');
  const community: Record<string, FakeHubFile> = { 'README.md': { body: Buffer.from('# R1 distill\n') } };
  for (const name of ['config.json', 'generation_config.json', 'tokenizer.json', 'tokenizer_config.json']) community[name] = { body: readFileSync(join(hubLayout, name)) };
  // (Not LFS: the fake hub's CDN route belongs to the first repository installed on the server.)
  community['onnx/model_q4.onnx'] = { body: readFileSync(join(hubLayout, 'onnx', 'model_q4.onnx')) };
  community['onnx/model_q4f16.onnx'] = { body: Buffer.alloc(1000, 7) };
  hub = await startLoopback({ maxLifetimeMs: 15 * 60_000 });
  installFakeHub(hub, { repo: REPO, files });
  installFakeHub(hub, { repo: COMMUNITY_REPO, files: community });

  e2e = await E2E.start({ name: 'download', settings: { 'r1.model.path': undefined, 'r1.model.hubUrl': hub.origin, 'r1.generation.temperature': 0 }, viewport: { width: 1600, height: 1000 } });
  const run = e2e;
  const view = new ReasoningView(run);
  await run.step('download', async () => {
    await run.openFile('src/greet.ts');
    await run.page.locator('.monaco-editor .view-lines').first().click();
    await run.page.keyboard.press('Control+A');
    await run.runCommand('R1: Explain');
    const toast = await run.waitForNotification(/^R1: /, 60_000);
    const failed = await view.waitForNew([], 60_000); // the Explain without a model, in the view
    await run.notificationButton(toast, 'Download Model').click();

    // The catalogue: every entry, the recommended one first with its reason.
    const rows = run.page.locator('.quick-input-widget .monaco-list-row');
    await rows.first().waitFor({ state: 'visible', timeout: 60_000 });
    const first = await rows.first().innerText();
    assert.match(first, /Recommended: /, first);
    assert.match(first, /LiveCodeBench \d+\.\d/);
    assert.match(await run.page.locator('.quick-input-widget').innerText(), /R1: Download Model/);
    await run.screenshot('catalogue-quick-pick');

    await pick(run, 'R1-Distill-Qwen-1.5B int4 (CPU, onnxruntime-genai)');
    await run.waitForNotification(/R1: R1-Distill-Qwen-1\.5B int4 \(CPU, onnxruntime-genai\) is downloaded and in use\./, 180_000);
    const requested = [...new Set(fileRequests(hub!, REPO).map((r) => r.path))];
    assert.ok(requested.length > 0 && requested.every((p) => p.startsWith(`${CPU_1_5B}/`)), `only the chosen folder was fetched: ${requested.join(', ')}`);
    await run.screenshot('downloaded');

    // The downloaded model answers.
    await run.openFile('src/greet.ts');
    await run.page.locator('.monaco-editor .view-lines').first().click();
    await run.page.keyboard.press('Control+A');
    const before = [failed];
    await run.runCommand('R1: Explain');
    const id = await view.waitForNew(before, 60_000);
    const s = await view.waitForStatus(id, ['complete', 'error', 'cancelled', 'length'], 180_000);
    assert.equal(s.status, 'complete', JSON.stringify(s));
    assert.match(s.answer, /It now always returns a number/);

    // The onnx-community layout: only the q4 variant's files, and the model switches to it.
    await run.runCommandWithInput('R1: Download Model', 'R1-Distill-Qwen-1.5B q4 (CPU)');
    await run.waitForNotification(/R1: R1-Distill-Qwen-1\.5B q4 \(CPU\) is downloaded and in use\./, 180_000);
    const fetched = [...new Set(fileRequests(hub!, COMMUNITY_REPO).filter((r) => r.via === 'resolve').map((r) => r.path))].sort();
    assert.deepEqual(fetched, ['config.json', 'generation_config.json', 'onnx/model_q4.onnx', 'tokenizer.json', 'tokenizer_config.json']);
    const before2 = [failed, id];
    await run.runCommandWithInput('R1: Ask', 'Why would parsePort return a string?');
    const id2 = await view.waitForNew(before2, 60_000);
    const s2 = await view.waitForStatus(id2, ['complete', 'error', 'cancelled', 'length'], 180_000);
    assert.equal(s2.status, 'complete', JSON.stringify(s2));
    assert.match(run.extensionLog(), /Model loaded in \d+ ms: .*DeepSeek-R1-Distill-Qwen-1\.5B-ONNX\/onnx\/model_q4\.onnx/);

    // A folder larger than the disk: the download refuses before fetching it. The fake hub lists
    // 40 TB, so the hub's listing refuses it; on a machine with less free disk than the catalogue's
    // own figure for the 7B (about 13 GB with its prepared copy), the catalogue refuses it first.
    await run.runCommandWithInput('R1: Download Model', 'R1-Distill-Qwen-7B int4 (CPU, onnxruntime-genai)');
    // When this machine's free memory is short for the 7B, a warning comes first.
    const dialog = run.page.locator('.monaco-dialog-box');
    const failure = run.waitForNotification(/R1: the download of R1-Distill-Qwen-7B int4 \(CPU, onnxruntime-genai\) failed: |R1: R1-Distill-Qwen-7B int4 \(CPU, onnxruntime-genai\) cannot be used here: /, 120_000);
    await Promise.race([dialog.waitFor({ state: 'visible', timeout: 120_000 }).then(() => dialog.locator('.monaco-button', { hasText: 'Download Anyway' }).click()), failure]);
    const refused = await failure;
    const message = await refused.locator('.notification-list-item-message').innerText();
    assert.match(message, /The model needs [\d.]+ GB more in .*DeepSeek-R1-Distill-Qwen-7B-cpu-int4, but only [\d.]+ GB is free\.|It needs [\d.]+ GB of disk \([^)]*\), but only [\d.]+ GB is free\./, message);
    assert.ok(!fileRequests(hub!, REPO).some((r) => r.path.startsWith(`${CPU_7B}/`)), 'no byte of the 7B was fetched');
    await run.screenshot('too-large-refused');
  });
});
