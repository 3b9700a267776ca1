/**
 * ReasoningViewProvider (src/client/reasoningView.ts) against a fake `vscode`: the HTML and its
 * CSP, request routing with replies and errors, events with waitUntil, history in
 * workspaceState, the export, and which links open.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync, realpathSync } from 'node:fs';
import Module from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import * as fakeVscode from './fakeVscode';
import { fake, FakeWebviewView, Memento, Uri } from './fakeVscode';

// Route `require('vscode')` to the fake before the provider loads.
const mod = Module as unknown as { _load: (request: string, ...rest: unknown[]) => unknown };
const load = mod._load;
mod._load = function (request: string, ...rest: unknown[]) {
  return request === 'vscode' ? fakeVscode : load.call(this, request, ...rest);
};

type ViewModule = typeof import('../../src/client/reasoningView');
let view: ViewModule;
let dir: string;
let ws: string;

before(async () => {
  view = await import('../../src/client/reasoningView');
  dir = realpathSync(mkdtempSync(join(tmpdir(), 'r1-view-')));
  ws = join(dir, 'ws');
  mkdirSync(join(ws, 'src'), { recursive: true });
  writeFileSync(join(ws, 'src', 'a.ts'), 'export const a = 1;\n');
  writeFileSync(join(dir, 'secret.txt'), 'outside\n');
  symlinkSync(join(dir, 'secret.txt'), join(ws, 'escape.txt'));
  fake.workspaceFolders = [{ uri: Uri.file(ws), name: 'ws', index: 0 }];
});

after(() => {
  mod._load = load;
  rmSync(dir, { recursive: true, force: true });
});

const log = { info() {}, warn() {}, error() {}, debug() {}, trace() {} };

function context(state = new Memento()) {
  return { extensionUri: Uri.file('/ext'), workspaceState: state, subscriptions: [] as { dispose(): void }[] };
}

function setup(state = new Memento()) {
  const ctx = context(state);
  const provider = view.registerReasoningView(ctx as never, log as never);
  const page = new FakeWebviewView();
  provider.resolveWebviewView(page as never);
  return { ctx, provider, page, state };
}

let rid = 0;

test('registerReasoningView registers r1.trace and serves the CSP shell with only dist/ and media/ as roots', () => {
  const { ctx, provider, page } = setup();
  assert.equal(fake.providers.get('r1.trace'), provider);
  assert.equal(ctx.subscriptions.length, 2);
  assert.equal(page.webview.options.enableScripts, true);
  assert.deepEqual(page.webview.options.localResourceRoots?.map((u) => u.fsPath), ['/ext/dist', '/ext/media']);
  const nonce = /script-src 'nonce-([^']+)'/.exec(page.webview.html)?.[1];
  assert.ok(nonce && nonce.length >= 16, 'a random nonce');
  assert.match(page.webview.html, new RegExp(`<script nonce="${nonce.replace(/[+/]/g, '\\$&')}" src="https://fake\\.vscode-cdn\\.net/ext/dist/webview\\.js">`));
  assert.match(page.webview.html, /style-src https:\/\/fake\.vscode-cdn\.net /);
  for (const d of ctx.subscriptions) d.dispose();
});

test('the API streams into history; history/get returns it; it persists and revives', async () => {
  const { provider, page, state } = setup();
  const id = provider.startExchange({ command: 'fix', prompt: 'Fix it', file: { uri: Uri.file(join(ws, 'src/a.ts')).toString(), label: 'src/a.ts' } });
  page.visible = false; // hidden: nothing is posted, the host keeps up
  provider.appendDelta(id, 'reasoning', 'thinking', { reasoningTokens: 3, answerTokens: 0 });
  provider.appendDelta(id, 'answer', 'done', { reasoningTokens: 3, answerTokens: 1 });
  provider.showProposal(id, { file: { uri: 'file:///x', label: 'src/a.ts' }, startLine: 1, original: 'a\n', proposed: 'b\n' });
  provider.finishExchange(id, { status: 'complete', stats: { reasoningTokens: 3, answerTokens: 1, tokensPerSecond: 5, provider: 'cpu' } });
  assert.deepEqual(page.posted.map((m) => (m as { method: string }).method), ['exchange/started']);
  page.visible = true;
  const reply = await page.request(++rid, 'history/get');
  const [r] = (reply.result as { exchanges: { reasoning: string; answer: string; status: string; proposal: { state: string } }[] }).exchanges;
  assert.equal(r.reasoning, 'thinking');
  assert.equal(r.answer, 'done');
  assert.equal(r.status, 'complete');
  assert.equal(r.proposal.state, 'pending');
  assert.equal(provider.latestPendingProposal()?.info.id, id);

  // A running exchange, then a reload of the window: a new provider over the same workspaceState.
  const live = provider.startExchange({ command: 'ask', prompt: 'Still going' });
  provider.appendDelta(live, 'reasoning', 'hm', { reasoningTokens: 1, answerTokens: 0 });
  provider.dispose();
  await new Promise((r) => setTimeout(r, 10));
  const again = setup(state).provider;
  assert.deepEqual(again.exchanges.map((x) => [x.info.id, x.status]), [[id, 'complete'], [live, 'cancelled']]);
  assert.equal(again.getExchange(live)?.reasoning, 'hm');
});

test('requests reach listeners; waitUntil failures come back as errors; no listener is a clear error', async () => {
  const { provider, page } = setup();
  const id = provider.startExchange({ command: 'fix', prompt: 'p' });
  provider.showProposal(id, { file: { uri: 'file:///x', label: 'x.ts' }, startLine: 1, original: 'a\n', proposed: 'b\n' });

  let reply = await page.request(++rid, 'edit/accept', { id });
  assert.equal(reply.type, 'error');
  assert.equal(reply.error?.code, 'not-available');
  assert.match(reply.error?.message ?? '', /not available in this build/);

  const accepted: string[] = [];
  provider.onDidRequestAccept((e) => {
    accepted.push(e.params.exchangeId);
    e.waitUntil(Promise.reject(new Error('x.ts changed since the edit was proposed.')));
  });
  reply = await page.request(++rid, 'edit/accept', { id });
  assert.deepEqual(accepted, [id]);
  assert.deepEqual(reply.error, { code: 'failed', message: 'x.ts changed since the edit was proposed.' });

  const cancelled: string[] = [];
  provider.onDidRequestCancel((e) => void cancelled.push(e.params.exchangeId));
  reply = await page.request(++rid, 'run/cancel', { id });
  assert.equal(reply.type, 'reply');
  assert.deepEqual(cancelled, [id]);

  provider.setProposalState(id, 'rejected');
  reply = await page.request(++rid, 'edit/accept', { id });
  assert.equal(reply.error?.code, 'rejected', 'a settled proposal cannot be accepted');

  reply = await page.request(++rid, 'edit/reject', { id: 'nope' });
  assert.equal(reply.error?.code, 'unknown-exchange');
  reply = await page.request(++rid, 'no/such', {});
  assert.equal(reply.error?.code, 'invalid-request');

  // Follow-ups get the conversation without reasoning.
  provider.appendDelta(id, 'reasoning', 'PRIVATE', { reasoningTokens: 1, answerTokens: 0 });
  provider.appendDelta(id, 'answer', 'Answer one', { reasoningTokens: 1, answerTokens: 2 });
  provider.finishExchange(id, { status: 'complete' });
  const follow: unknown[] = [];
  provider.onDidRequestFollowUp((e) => void follow.push(e.params));
  reply = await page.request(++rid, 'followUp', { text: ' and then? ', parentId: id });
  assert.equal(reply.type, 'reply');
  assert.deepEqual(follow, [{ text: 'and then?', parentId: id, turns: [{ role: 'user', content: 'p' }, { role: 'assistant', content: 'Answer one' }], context: { file: undefined, selection: undefined } }]);
});

test('history/clear asks first and keeps running exchanges', async () => {
  const { provider, page } = setup();
  const done = provider.startExchange({ command: 'ask', prompt: 'a' });
  provider.finishExchange(done, { status: 'complete' });
  const running = provider.startExchange({ command: 'ask', prompt: 'b' });
  fake.warningAnswer = undefined;
  assert.deepEqual((await page.request(++rid, 'history/clear')).result, { cleared: false });
  assert.equal(provider.exchanges.length, 2);
  fake.warningAnswer = 'Clear History';
  assert.deepEqual((await page.request(++rid, 'history/clear')).result, { cleared: true });
  assert.deepEqual(provider.exchanges.map((x) => x.info.id), [running]);
  assert.ok(page.posted.some((m) => (m as { method?: string }).method === 'history/restore'));
});

test('export writes the exchange as markdown, reasoning included', async () => {
  const { provider, page } = setup();
  const id = provider.startExchange({ command: 'explain', prompt: 'Explain' });
  provider.appendDelta(id, 'reasoning', 'Because of the loop.', { reasoningTokens: 4, answerTokens: 0 });
  provider.appendDelta(id, 'answer', 'It sums.', { reasoningTokens: 4, answerTokens: 2 });
  provider.finishExchange(id, { status: 'complete' });
  fake.saveTarget = undefined;
  assert.deepEqual((await page.request(++rid, 'exchange/export', { id })).result, { saved: false });
  const target = join(dir, 'out', 'x.md');
  fake.saveTarget = Uri.file(target);
  assert.deepEqual((await page.request(++rid, 'exchange/export', { id })).result, { saved: true, path: target });
  const md = readFileSync(target, 'utf8');
  assert.match(md, /## Reasoning\n\n> Because of the loop\./);
  assert.match(md, /## Answer\n\nIt sums\./);
});

test('links: https opens outside; files open only inside the workspace, symlinks included', async () => {
  const { provider, page } = setup();
  const id = provider.startExchange({ command: 'ask', prompt: 'q', file: { uri: Uri.file(join(ws, 'src', 'a.ts')).toString(), label: 'src/a.ts' } });
  const open = (href: string) => page.request(++rid, 'link/open', { href, id });

  // A web link opens only after a modal dialog that shows its whole address.
  const leaky = 'https://example.org/x?code=export%20function%20secret()';
  fake.warningAnswer = undefined;
  fake.warnings.length = 0;
  assert.equal((await open(leaky)).type, 'reply');
  assert.deepEqual(fake.external, [], 'dismissed: not opened');
  assert.equal(fake.warnings.length, 1);
  assert.equal(fake.warnings[0].modal, true);
  assert.ok(fake.warnings[0].detail?.includes(leaky), fake.warnings[0].detail);
  fake.warningAnswer = 'Open Link';
  assert.equal((await open('https://example.org/x')).type, 'reply');
  assert.deepEqual(fake.external, ['https://example.org/x']);
  fake.warningAnswer = undefined;

  assert.equal((await open('a.ts#L1')).type, 'reply', 'relative to the exchange file');
  assert.equal((await open('src/a.ts')).type, 'reply', 'relative to the workspace folder');
  assert.equal((await open(Uri.file(join(ws, 'src', 'a.ts')).toString())).type, 'reply', 'a file: URL inside');
  assert.deepEqual(fake.opened.map((o) => [o.uri, o.line]), [
    [Uri.file(join(ws, 'src', 'a.ts')).toString(), 0],
    [Uri.file(join(ws, 'src', 'a.ts')).toString(), undefined],
    [Uri.file(join(ws, 'src', 'a.ts')).toString(), undefined],
  ]);

  for (const href of ['../secret.txt', '../../secret.txt', Uri.file(join(dir, 'secret.txt')).toString(), 'escape.txt', 'javascript:alert(1)', 'command:workbench.action.openSettings', 'missing.ts']) {
    const r = await open(href);
    assert.equal(r.type, 'error', href);
    assert.equal(r.error?.code, 'rejected', href);
  }
  assert.equal(fake.opened.length, 3, 'nothing outside the workspace was opened');
  assert.equal(fake.external.length, 1);
  void provider;
});
