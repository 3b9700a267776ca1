/**
 * Issue 17, section 3: R1 Coder in code-server against a real `r1 serve` process (r1.backend
 * "server"), which runs the scripted fixture model: the key set with "R1: Set Server API Key",
 * ask, fix → accept, cancel. The model answers every prompt with DEFAULT_SCRIPT (a corrected
 * parsePort); a question with the word "slowly" switches it to a long script, so a generation
 * lasts long enough to cancel. The language server never loads a model: r1.model.path points
 * nowhere.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { buildScriptedModel, DEFAULT_SCRIPT, FIXTURES_DIR } from '../fixtures/models';
import { E2E } from './harness';
import { REPO_ROOT } from './install';
import { ReasoningView } from './reasoning';

const MODEL = join(FIXTURES_DIR, 'scripted-serve');
const MODEL_ID = 'scripted-serve';
const KEY = 'e2e-server-key-4242';
const PORT_TS = 'src/port.ts';
const TRIGGER = 'slowly';
// Long enough, with prompt lookup off in r1 serve, that a cancel lands mid-stream: 8 steps with
// lookup on streamed whole in 2.7 s and once completed before the Cancel click reached it (CI).
const STEPS = Array.from({ length: 40 }, (_, i) => `Step ${i + 1}: the value "${9000 + i}" parses to the port ${9000 + i}, which lies within 1–65535, so parsePort accepts it.`);
const LONG_SCRIPT = `Okay, let me check several inputs one by one before I answer.\n\n${STEPS.join('\n')}\n</think>\n\nAll forty ports are valid.`;

const [SCRIPT_REASONING, SCRIPT_ANSWER] = DEFAULT_SCRIPT.split('</think>').map((s) => s.trim());
const FIXED_FUNCTION = /```typescript\n([\s\S]*?)\n```/.exec(SCRIPT_ANSWER)![1];

let serve: ChildProcess;
let serveLog = '';
let serverUrl = '';
let e2e: E2E;
let view: ReasoningView;

before(async () => {
  await buildScriptedModel(MODEL, { alternate: { trigger: TRIGGER, script: LONG_SCRIPT } }); // cached after the first build
  serve = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'serve', '--model', MODEL, '--port', '0', '--provider', 'cpu', '--no-prompt-lookup'], {
    cwd: REPO_ROOT,
    env: { ...process.env, NO_COLOR: '1', R1_API_KEY: KEY },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  serve.stderr!.on('data', (d: Buffer) => (serveLog += d.toString()));
  serverUrl = await new Promise<string>((resolve, reject) => {
    let out = '';
    serve.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('\n')) resolve(out.split('\n')[0]!);
    });
    serve.once('exit', (code) => reject(new Error(`r1 serve exited (${code}):\n${serveLog}`)));
  });
  e2e = await E2E.start({
    name: 'server',
    settings: {
      'r1.backend': 'server',
      'r1.server.url': `${serverUrl}/v1`,
      'r1.model.path': '/nonexistent/no-model-here',
      'r1.generation.temperature': 0,
    },
    viewport: { width: 1600, height: 1000 },
  });
  view = new ReasoningView(e2e);
  await view.frame(true);
  await e2e.setSideBarWidth(620);
});

after(async () => {
  await e2e?.stop();
  if (serve && serve.exitCode === null) {
    const exited = new Promise((r) => serve.once('exit', r));
    serve.kill('SIGTERM');
    await exited;
  }
});

async function serveLogMatches(re: RegExp, what: string): Promise<void> {
  await e2e.until(what, async () => re.test(serveLog), 30_000);
}

test('without a key the server refuses, and the toast says how; "R1: Set Server API Key" stores it; Ask then streams from r1 serve', async () => {
  await e2e.step('key-and-ask', async () => {
    let before = await view.ids();
    await e2e.runCommandWithInput('R1: Ask', 'Why would parsePort return a string?');
    let id = await view.waitForNew(before);
    const refused = await view.waitForStatus(id, ['error', 'complete', 'cancelled', 'length']);
    assert.equal(refused.status, 'error', JSON.stringify(refused));
    assert.match(refused.error, /needs an API key \(HTTP 401/);
    const toast = await e2e.waitForNotification(/needs an API key/);
    await e2e.notificationButton(toast, 'Set API Key').waitFor({ state: 'visible' });
    await e2e.screenshot('no-key-toast');
    await e2e.notificationButton(toast, 'Set API Key').click();
    const input = e2e.page.locator('.quick-input-widget .quick-input-box input');
    await e2e.page.locator('.quick-input-widget .quick-input-title', { hasText: 'R1: Set Server API Key' }).waitFor({ state: 'visible', timeout: 15_000 });
    assert.equal(await input.getAttribute('type'), 'password', 'the key is typed into a password box');
    await input.fill(KEY);
    await input.press('Enter');
    await e2e.waitForNotification(/the API key for http:\/\/127\.0\.0\.1:\d+ is stored/);

    // The status bar names the server and the model once the server answered.
    await e2e.until('the status bar to name the server and the model', async () => /R1: 127\.0\.0\.1:\d+ · scripted-serve/.test((await e2e.statusItem().innerText()).replace(/\u00a0/g, ' ')), 30_000);

    before = await view.ids();
    await e2e.runCommandWithInput('R1: Ask', 'Why would parsePort return a string?');
    id = await view.waitForNew(before);
    const s = await view.waitForStatus(id, ['complete', 'error', 'cancelled', 'length'], 120_000);
    assert.equal(s.status, 'complete', JSON.stringify(s));
    assert.equal(s.reasoning, SCRIPT_REASONING);
    assert.match(s.answer, /throw new RangeError/);
    // "176 tokens (59 reasoning, 117 answer) · … · 127.0.0.1:PORT · scripted-serve · prompt 120 · 1.5 s"
    assert.match(s.stats, /\b\d+ tokens \(\d+ reasoning, \d+ answer\)/);
    assert.match(s.stats, new RegExp(`127\\.0\\.0\\.1:\\d+ · ${MODEL_ID}`));
    await serveLogMatches(/POST \/v1\/chat\/completions 200 \d+ ms stream stop/, 'r1 serve to log the streamed completion');
    await view.openReasoning(id);
    await e2e.screenshot('ask-on-server');
    const status = (await e2e.statusItem().innerText()).replace(/\u00a0/g, ' ');
    assert.match(status, new RegExp(`R1: 127\\.0\\.0\\.1:\\d+ · ${MODEL_ID}`));
  });
});

test('Fix → Accept: the server\'s answer becomes a checked proposal; Accept writes the fix', async () => {
  await e2e.step('fix-accept', async () => {
    const original = readFileSync(e2e.workspaceFile(PORT_TS), 'utf8');
    const start = original.indexOf('export function parsePort');
    const end = original.indexOf('\n}\n', start) + 2;
    const fixed = original.slice(0, start) + FIXED_FUNCTION + original.slice(end);
    await e2e.openFile(PORT_TS);
    await e2e.activeEditor().locator('.squiggly-error').first().waitFor({ state: 'visible', timeout: 60_000 });
    const before = await view.ids();
    await e2e.goTo(5, 7);
    await e2e.runCommand('R1: Fix');
    const id = await view.waitForNew(before);
    const s = await view.waitForStatus(id, ['complete', 'error', 'cancelled', 'length'], 120_000);
    assert.equal(s.status, 'complete', JSON.stringify(s));
    await view.waitFor(id, 'a pending proposal', (x) => x.proposalState === 'pending');
    const checked = await view.waitFor(id, 'the check of the proposal', (x) => x.check !== '' && x.check !== 'Checking…');
    assert.equal(checked.check, 'Checked', JSON.stringify(checked));
    await (await view.exchange(id)).locator('.proposal').scrollIntoViewIfNeeded();
    await e2e.screenshot('fix-proposal-from-server');
    await view.click(id, 'pr-accept');
    await view.waitFor(id, 'the proposal accepted', (x) => x.proposalState === 'accepted');
    await e2e.until('src/port.ts on disk to hold the fix', async () => readFileSync(e2e.workspaceFile(PORT_TS), 'utf8') === fixed, 15_000);
    await e2e.screenshot('fix-accepted-from-server');
  });
});

test('Cancel while the server streams: the view stops, r1 serve sees the client leave, the next request completes', async () => {
  await e2e.step('cancel', async () => {
    let before = await view.ids();
    await e2e.runCommandWithInput('R1: Ask', `Think ${TRIGGER}: which of these ports are valid?`);
    const id = await view.waitForNew(before);
    const streaming = await view.waitFor(id, 'reasoning streaming', (x) => x.reasoning !== '' || x.status !== 'generating', 60_000);
    assert.equal(streaming.status, 'generating', JSON.stringify(streaming));
    await view.click(id, 'ex-cancel');
    const cancelled = await view.waitForStatus(id, ['cancelled', 'complete', 'error', 'length']);
    assert.equal(cancelled.status, 'cancelled', JSON.stringify(cancelled));
    assert.equal(cancelled.answer, '');
    assert.ok(LONG_SCRIPT.startsWith(cancelled.reasoning.slice(0, 40)), cancelled.reasoning);
    await serveLogMatches(/stream cancelled \(client closed\)/, 'r1 serve to log the cancelled stream');
    await e2e.screenshot('cancelled-on-server');

    before = await view.ids();
    await e2e.runCommandWithInput('R1: Ask', 'Is 8080 a valid port?');
    const next = await view.waitForNew(before);
    const done = await view.waitForStatus(next, ['complete', 'error', 'cancelled', 'length'], 120_000);
    assert.equal(done.status, 'complete', JSON.stringify(done));
    // The language server never loaded a model of its own.
    assert.ok(!/Model loaded/.test(e2e.extensionLog()), 'no local model was loaded');
  });
});
