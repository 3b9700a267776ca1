/// <reference lib="dom" />
/**
 * The Reasoning view in headless Chromium: the real bundle, in the real shell and CSP, fed by a
 * fake host. Requires Debian's `chromium` (/usr/bin/chromium, or CHROMIUM_PATH).
 */
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, afterEach, before, test } from 'node:test';
import type { Browser } from 'playwright-core';
import type { ExchangeInfo, Proposal } from '../../src/protocol/webview';
import { ensureWebviewBundle, launch, openView, root, serve, until, FakeHost, type Served, type ViewPage } from './harness';

let browser: Browser;
let served: Served;
const open: ViewPage[] = [];

before(async () => {
  await ensureWebviewBundle();
  served = await serve();
  browser = await launch();
});

after(async () => {
  await browser?.close();
  await served?.close();
});

/** Every test ends with the page clean: no CSP violation, no error, no request off the loopback server. */
afterEach(async () => {
  for (const v of open.splice(0)) {
    const csp = await v.cspViolations();
    await v.context.close();
    assert.deepEqual(csp, [], 'CSP violations');
    assert.deepEqual(v.problems, [], 'console errors, page errors or remote requests');
    assert.deepEqual(v.host.malformed, [], 'malformed messages from the view');
  }
});

async function view(theme: 'dark' | 'light' | 'high-contrast' = 'dark', host?: FakeHost): Promise<ViewPage> {
  const v = await openView(browser, served, theme, host);
  open.push(v);
  // The view's first message asks for the history.
  await until('history/get', () => v.host.sent('history/get').length > 0);
  return v;
}

let seq = 0;
function info(over: Partial<ExchangeInfo> = {}): ExchangeInfo {
  return {
    id: `ex${++seq}`,
    command: 'fix',
    prompt: 'Fix the off-by-one error in the loop.',
    file: { uri: 'file:///work/demo/src/sum.ts', label: 'src/sum.ts', languageId: 'typescript' },
    selection: { startLine: 3, endLine: 7 },
    createdAt: Date.now(),
    ...over,
  };
}

const PROPOSAL: Proposal = {
  file: { uri: 'file:///work/demo/src/sum.ts', label: 'src/sum.ts', languageId: 'typescript' },
  startLine: 3,
  original: 'export function sum(xs: number[]): number {\n  let total = 0;\n  for (let i = 0; i <= xs.length; i++) {\n    total += xs[i];\n  }\n  return total;\n}\n',
  proposed: 'export function sum(xs: number[]): number {\n  let total = 0;\n  for (let i = 0; i < xs.length; i++) {\n    total += xs[i];\n  }\n  return total;\n}\n',
};

const ANSWER =
  'The loop runs one step too far: `i <= xs.length` reads `xs[xs.length]`, which is `undefined`, so the sum becomes `NaN`.\n\n' +
  '```ts\nfor (let i = 0; i < xs.length; i++) {\n  total += xs[i];\n}\n```\n\nSee [the MDN page](https://developer.mozilla.org/en-US/docs/Web/JavaScript/Reference/Statements/for) and [sum.ts](src/sum.ts#L5).';

const text = (v: ViewPage, sel: string) => v.page.evaluate((s) => document.querySelector(s)?.textContent ?? null, sel);

async function delta(v: ViewPage, id: string, kind: 'reasoning' | 'answer', t: string, reasoningTokens: number, answerTokens: number, budgetHit?: boolean) {
  await v.host.notify('exchange/delta', { id, kind, text: t, reasoningTokens, answerTokens, budgetHit, at: Date.now() });
}

test('reasoning streams live into an open section with a moving token count, then the answer renders as markdown', async () => {
  const v = await view();
  const x = info();
  await v.host.notify('exchange/started', { info: x, at: Date.now() });
  const art = `article[data-id="${x.id}"]`;
  await until('the exchange', () => v.page.$(art));

  assert.equal(await text(v, `${art} .ex-title`), 'src/sum.ts');
  assert.equal(await text(v, `${art} .ex-sel`), 'lines 3–7');
  assert.equal(await text(v, `${art} .ex-cmd`), 'Fix');
  assert.match((await text(v, `${art} .ex-prompt`)) ?? '', /off-by-one/);

  await delta(v, x.id, 'reasoning', '<think>\nOkay, the user wants me to fix', 8, 0);
  await until('reasoning text', async () => (await text(v, `${art} .rs-text`))?.includes('Okay, the user wants me to fix'));
  assert.equal(await v.page.$eval(`${art} details.reasoning`, (d) => (d as HTMLDetailsElement).open), true, 'open while streaming');
  assert.equal(await v.page.$eval(`${art} .rs-spinner`, (e) => (e as HTMLElement).hidden), false, 'a spinner shows progress');
  assert.match((await text(v, `${art} .rs-label`)) ?? '', /Thinking/);
  assert.match((await text(v, `${art} .rs-meta`)) ?? '', /^8 tokens · \d+\.\d s$/);
  assert.ok(!(await text(v, `${art} .rs-text`))!.includes('<think>'), 'no <think> tag in the view');

  // The elapsed time moves on its own while the model is silent.
  const t1 = /· (\d+\.\d) s/.exec((await text(v, `${art} .rs-meta`))!)![1];
  await until('the elapsed time to move', async () => /· (\d+\.\d) s/.exec((await text(v, `${art} .rs-meta`))!)![1] !== t1);

  await delta(v, x.id, 'reasoning', ' the loop. The condition `i <= xs.length` overruns the array by one.', 31, 0);
  await until('token count 31', async () => (await text(v, `${art} .rs-meta`))?.startsWith('31 tokens'));

  await delta(v, x.id, 'reasoning', '\n</think>\n\n', 33, 0);
  await delta(v, x.id, 'answer', ANSWER.slice(0, 40), 33, 9);
  await delta(v, x.id, 'answer', ANSWER.slice(40), 33, 74);
  await until('the answer', async () => (await text(v, `${art} .answer`))?.includes('See the MDN page'));
  await until('auto-collapse once the answer starts', () => v.page.$eval(`${art} details.reasoning`, (d) => !(d as HTMLDetailsElement).open));
  assert.match((await text(v, `${art} .rs-label`)) ?? '', /^Reasoning$/);
  assert.match((await text(v, `${art} .rs-meta`)) ?? '', /^33 tokens · \d+\.\d s$/);

  // Markdown: inline code, a highlighted code block, links that point where they say.
  assert.ok(await v.page.$(`${art} .answer code.hljs.language-ts .hljs-keyword`), 'highlighted TypeScript');
  assert.equal(await v.page.$$eval(`${art} .answer a`, (as) => as.map((a) => a.getAttribute('href')).join(' ')), 'https://developer.mozilla.org/en-US/docs/Web/JavaScript/Reference/Statements/for src/sum.ts#L5');
  const all = (await text(v, art))!;
  assert.ok(!all.includes('<think>') && !all.includes('</think>'), 'no think tags anywhere in the exchange');

  await v.host.notify('exchange/finished', {
    id: x.id,
    status: 'complete',
    at: Date.now(),
    budgetHit: false,
    stats: { promptTokens: 412, reasoningTokens: 33, answerTokens: 74, tokensPerSecond: 11.26, provider: 'cpu', variant: 'q4' },
  });
  await until('stats', async () => (await text(v, `${art} .ex-stats`))?.includes('11.3 tok/s'));
  const stats = (await text(v, `${art} .ex-stats`))!;
  assert.match(stats, /^107 tokens \(33 reasoning, 74 answer\) · 11\.3 tok\/s · cpu · q4 · prompt 412 · \d+\.\d s$/);
  assert.equal(await v.page.$eval(`${art} .ex-cancel`, (e) => (e as HTMLElement).hidden), true, 'no Cancel once finished');
  await until('completion announced', async () => /Fix on src\/sum\.ts complete: 107 tokens in \d+\.\d seconds\./.test((await text(v, '[aria-live="polite"]')) ?? ''));
});

test('the user can collapse the reasoning while it streams, and it stays collapsed', async () => {
  const v = await view();
  const x = info({ command: 'explain', prompt: 'Explain this function.' });
  await v.host.notify('exchange/started', { info: x, at: Date.now() });
  const art = `article[data-id="${x.id}"]`;
  await delta(v, x.id, 'reasoning', 'First, look at the signature.', 6, 0);
  await until('open', () => v.page.$eval(`${art} details.reasoning`, (d) => (d as HTMLDetailsElement).open));

  // By keyboard: focus the summary and press Enter.
  await v.page.focus(`${art} summary`);
  await v.page.keyboard.press('Enter');
  await until('closed', () => v.page.$eval(`${art} details.reasoning`, (d) => !(d as HTMLDetailsElement).open));

  await delta(v, x.id, 'reasoning', ' Then the loop body, which adds each element.', 15, 0);
  await until('token count 15', async () => (await text(v, `${art} .rs-meta`))?.startsWith('15 tokens'));
  assert.equal(await v.page.$eval(`${art} details.reasoning`, (d) => (d as HTMLDetailsElement).open), false, 'still closed');
  assert.match((await text(v, `${art} .rs-text`)) ?? '', /adds each element/, 'text keeps streaming while closed');

  // And open again with a click.
  await v.page.click(`${art} summary`);
  await until('open again', () => v.page.$eval(`${art} details.reasoning`, (d) => (d as HTMLDetailsElement).open));

  // The thinking budget marker.
  await delta(v, x.id, 'reasoning', ' Maybe', 2048, 0, true);
  await until('budget marker', async () => (await text(v, `${art} .rs-budget`))?.includes('Thinking budget reached after 2,048 tokens'));
  assert.match((await text(v, `${art} .rs-meta`)) ?? '', /budget reached/);
});

test('hostile model output stays inert: no HTML, no script, no javascript: links, no remote images', async () => {
  const v = await view();
  const evil = [
    'Try this: <img src=x onerror="window.__pwned=1">',
    '<script>window.__pwned=2</script>',
    '<a href="javascript:window.__pwned=3">html link</a>',
    '[click me](javascript:window.__pwned=4)',
    '[spaced](java\tscript:window.__pwned=5)',
    '[entity](javascript&#58;window.__pwned=6)',
    '<javascript:window.__pwned=7>',
    '[data](data:text/html,<script>window.__pwned=8</script>)',
    '[proto-relative](//evil.example/x)',
    '![tracker](https://evil.example/pixel.png)',
    '![local](x.png)',
    '<iframe src="https://evil.example"></iframe>',
    '<style>body{display:none}</style>',
    '<svg onload="window.__pwned=9"></svg>',
    '[ok](https://example.org/docs)',
  ].join('\n\n');
  const x = info({ command: 'ask', prompt: 'What does <img src=x onerror="window.__pwned=10"> do?', file: { uri: 'file:///w/a.ts', label: '<img src=x onerror="window.__pwned=11">.ts' } });
  await v.host.notify('exchange/started', { info: x, at: Date.now() });
  await delta(v, x.id, 'reasoning', '<img src=x onerror="window.__pwned=12"><script>window.__pwned=13</script>', 4, 0);
  await delta(v, x.id, 'answer', evil, 4, 120);
  await v.host.notify('exchange/finished', { id: x.id, status: 'complete', at: Date.now(), budgetHit: false });
  const art = `article[data-id="${x.id}"]`;
  await until('answer rendered', async () => (await text(v, `${art} .answer`))?.includes('proto-relative'));
  await new Promise((r) => setTimeout(r, 300)); // give any payload a chance to fire

  const dom = await v.page.evaluate(() => ({
    pwned: (window as unknown as { __pwned?: number }).__pwned,
    imgs: document.querySelectorAll('img').length,
    iframes: document.querySelectorAll('iframe').length,
    styles: document.querySelectorAll('style').length,
    scripts: [...document.querySelectorAll('script')].map((s) => s.getAttribute('src')),
    svgOnload: [...document.querySelectorAll('svg')].filter((s) => s.hasAttribute('onload')).length,
    handlers: [...document.querySelectorAll('*')].filter((e) => [...e.attributes].some((a) => a.name.startsWith('on'))).length,
    links: [...document.querySelectorAll('a')].map((a) => a.getAttribute('href')),
    answer: document.querySelector('.answer')!.textContent!,
    reasoning: document.querySelector('.rs-text')!.textContent!,
    title: document.querySelector('.ex-title')!.textContent!,
  }));
  assert.equal(dom.pwned, undefined, 'no payload ran');
  assert.equal(dom.imgs, 0, 'no <img> at all');
  assert.equal(dom.iframes, 0);
  assert.equal(dom.styles, 0, 'no <style> from model output');
  assert.deepEqual(dom.scripts, [`${served.origin}/dist/webview.js`], 'only our own script');
  assert.equal(dom.svgOnload, 0);
  assert.equal(dom.handlers, 0, 'no inline event handler attributes anywhere');
  // Only http(s) links: the markdown links with other schemes stayed text (linkify may turn a
  // bare https URL inside escaped HTML into a link, which is fine: the host opens it externally).
  assert.ok(dom.links.includes('https://example.org/docs'));
  for (const href of dom.links) assert.match(href ?? '', /^https:\/\/[a-z]/, `link ${href}`);
  assert.ok(dom.answer.includes('[click me](javascript:window.__pwned=4)'), 'a javascript: link shows as text');
  assert.ok(dom.answer.includes('[proto-relative](//evil.example/x)'), 'a protocol-relative link shows as text');
  // The HTML shows as text.
  assert.ok(dom.answer.includes('<img src=x onerror="window.__pwned=1">'));
  assert.ok(dom.answer.includes('<script>window.__pwned=2</script>'));
  assert.ok(dom.answer.includes('[image: tracker (https://evil.example/pixel.png)]'), 'images render as inert text');
  assert.ok(dom.reasoning.includes('<script>window.__pwned=13</script>'));
  assert.equal(dom.title, '<img src=x onerror="window.__pwned=11">.ts');

  // Clicking the safe link does not navigate: it asks the host to open it.
  const before = v.page.url();
  await v.page.click(`${art} .answer a[href="https://example.org/docs"]`);
  await until('link/open', () => v.host.sent('link/open').length === 1);
  assert.deepEqual(v.host.sent('link/open')[0].params, { href: 'https://example.org/docs', id: x.id });
  assert.equal(v.page.url(), before);
  // The javascript: "link" is plain text: clicking it does nothing.
  await v.page.getByText('[click me](javascript:window.__pwned=4)').click();
  await new Promise((r) => setTimeout(r, 100));
  assert.equal(v.host.sent('link/open').length, 1);
  assert.equal(await v.page.evaluate(() => (window as unknown as { __pwned?: number }).__pwned), undefined);
});

test('a proposal shows a numbered unified diff; focus moves to Accept; Accept, Reject, Review and Cancel post the right requests', async () => {
  const v = await view();
  const x = info();
  await v.host.notify('exchange/started', { info: x, at: Date.now() });
  const art = `article[data-id="${x.id}"]`;
  await delta(v, x.id, 'reasoning', 'The loop overruns.', 4, 0);

  // Cancel while generating, by keyboard.
  await v.page.focus(`${art} .ex-cancel`);
  await v.page.keyboard.press('Enter');
  await until('run/cancel', () => v.host.sent('run/cancel').length === 1);
  assert.deepEqual(v.host.sent('run/cancel')[0].params, { id: x.id });

  await delta(v, x.id, 'answer', 'Use `<` instead of `<=`.', 4, 8);
  await v.host.notify('exchange/proposal', { id: x.id, proposal: PROPOSAL });
  await until('the diff', () => v.page.$(`${art} .diff-table`));

  const rows = await v.page.$$eval(`${art} .diff-table tr`, (trs) => trs.map((tr) => [...tr.children].map((td) => td.textContent).join('|')));
  assert.deepEqual(rows, [
    '|@@ -3,6 +3,6 @@',
    '3|3| |export function sum(xs: number[]): number {',
    '4|4| |  let total = 0;',
    '5||−|  for (let i = 0; i <= xs.length; i++) {',
    '|5|+|  for (let i = 0; i < xs.length; i++) {',
    '6|6| |    total += xs[i];',
    '7|7| |  }',
    '8|8| |  return total;',
  ]);
  assert.equal(await text(v, `${art} .pr-count`), '+1 −1');
  // The run is still going, and the user is on the Cancel button: focus goes to the decision.
  await until('focus on Accept', () => v.page.evaluate(() => document.activeElement?.classList.contains('pr-accept')));
  await until('proposal announced', async () => /Edit proposed for src\/sum\.ts/.test((await text(v, '[aria-live="polite"]')) ?? ''));

  await v.page.keyboard.press('Enter');
  await until('edit/accept', () => v.host.sent('edit/accept').length === 1);
  assert.deepEqual(v.host.sent('edit/accept')[0].params, { id: x.id });

  await v.page.click(`${art} .pr-reject`);
  await until('edit/reject', () => v.host.sent('edit/reject').length === 1);
  assert.deepEqual(v.host.sent('edit/reject')[0].params, { id: x.id });

  await v.page.click(`${art} .pr-review`);
  await until('edit/review', () => v.host.sent('edit/review').length === 1);
  assert.deepEqual(v.host.sent('edit/review')[0].params, { id: x.id });

  // The host settles it: the buttons go, the state shows.
  await v.host.notify('exchange/proposalState', { id: x.id, state: 'accepted' });
  await until('accepted', async () => (await text(v, `${art} .pr-state`)) === 'Accepted');
  assert.equal(await v.page.$(`${art} .pr-accept`), null);
});

test('an error reply shows its message; a failed run is announced', async () => {
  const host = new FakeHost();
  host.handlers['edit/accept'] = () => {
    throw new Error('src/sum.ts changed since the edit was proposed. Run R1: Fix again.');
  };
  const v = await view('dark', host);
  const x = info();
  await v.host.notify('exchange/started', { info: x, at: Date.now() });
  await v.host.notify('exchange/proposal', { id: x.id, proposal: PROPOSAL });
  await v.host.notify('exchange/finished', { id: x.id, status: 'complete', at: Date.now(), budgetHit: false });
  const art = `article[data-id="${x.id}"]`;
  await until('accept button', () => v.page.$(`${art} .pr-accept`));
  await v.page.click(`${art} .pr-accept`);
  await until('the error', async () => (await text(v, '.toast'))?.includes('changed since the edit was proposed'));
  assert.equal(await v.page.$eval('.toast', (e) => e.getAttribute('role')), 'alert');
  // The buttons are usable again after the failure.
  assert.equal(await v.page.$eval(`${art} .pr-accept`, (e) => e.hasAttribute('disabled')), false);

  const y = info({ command: 'ask', prompt: 'Why?' });
  await v.host.notify('exchange/started', { info: y, at: Date.now() });
  await v.host.notify('exchange/finished', { id: y.id, status: 'error', at: Date.now(), budgetHit: false, error: 'The model ran out of memory. Choose the q4 variant in r1.model.variant.' });
  await until('failure announced', async () => /Ask on src\/sum\.ts failed: The model ran out of memory/.test((await text(v, '[aria-live="polite"]')) ?? ''));
  assert.match((await text(v, `article[data-id="${y.id}"] .ex-error`)) ?? '', /ran out of memory/);
});

test('the input box sends a follow-up of the latest exchange, by Enter', async () => {
  const v = await view();
  const x = info({ command: 'explain', prompt: 'Explain sum.' });
  await v.host.notify('exchange/started', { info: x, at: Date.now() });
  await delta(v, x.id, 'answer', 'It adds numbers.', 0, 4);
  await v.host.notify('exchange/finished', { id: x.id, status: 'complete', at: Date.now(), budgetHit: false });
  await until('reply line', async () => (await text(v, '.cp-reply-label'))?.includes('Explain · src/sum.ts'));

  await v.page.click('.cp-input');
  await v.page.keyboard.type('And what if xs is empty?');
  await v.page.keyboard.press('Enter');
  await until('followUp', () => v.host.sent('followUp').length === 1);
  assert.deepEqual(v.host.sent('followUp')[0].params, { text: 'And what if xs is empty?', parentId: x.id });
  await until('input cleared', () => v.page.$eval('.cp-input', (e) => (e as HTMLElement & { value: string }).value === ''));

  // "Start a new conversation" detaches the input from the exchange.
  await v.page.click('.cp-detach');
  await v.page.keyboard.type('Unrelated question');
  await v.page.click('.cp-send');
  await until('second followUp', () => v.host.sent('followUp').length === 2);
  assert.deepEqual(v.host.sent('followUp')[1].params, { text: 'Unrelated question' });

  // A proposal that arrives while the user types does not take the keyboard away.
  await v.page.click('.cp-input');
  await v.page.keyboard.type('half a thought');
  const y = info();
  await v.host.notify('exchange/started', { info: y, at: Date.now() });
  await v.host.notify('exchange/proposal', { id: y.id, proposal: PROPOSAL });
  await until('proposal shown', () => v.page.$(`article[data-id="${y.id}"] .pr-accept`));
  await until('announced', async () => /Edit proposed/.test((await text(v, '[aria-live="polite"]')) ?? ''));
  assert.equal(await v.page.evaluate(() => document.activeElement?.classList.contains('cp-input')), true, 'focus stays in the input');
  await v.page.keyboard.type(', continued');
  assert.equal(await v.page.$eval('.cp-input', (e) => (e as HTMLElement & { value: string }).value), 'half a thought, continued');
});

test('history survives a reload of the page, with the user\'s open/closed choices', async () => {
  const v = await view();
  const x = info();
  await v.host.notify('exchange/started', { info: x, at: Date.now() });
  await delta(v, x.id, 'reasoning', 'Reasoning that must survive.', 5, 0);
  await delta(v, x.id, 'answer', 'An answer that must survive.', 5, 6);
  await v.host.notify('exchange/proposal', { id: x.id, proposal: PROPOSAL });
  await v.host.notify('exchange/finished', { id: x.id, status: 'complete', at: Date.now(), budgetHit: false });
  const art = `article[data-id="${x.id}"]`;
  await until('finished', () => v.page.$eval(art, (e) => (e as HTMLElement).dataset.status === 'complete'));
  await v.page.click(`${art} summary`); // the user opens the reasoning
  await new Promise((r) => setTimeout(r, 400)); // state is saved within 300 ms

  // Reload with the host holding back its history: the page restores from its own saved state.
  let release!: () => void;
  v.host.historyGate = new Promise<void>((r) => (release = r));
  await v.page.reload();
  await until('restored from webview state', async () => (await text(v, `${art} .answer`))?.includes('An answer that must survive.'));
  assert.equal(await v.page.$eval(`${art} details.reasoning`, (d) => (d as HTMLDetailsElement).open), true, 'the open reasoning stays open');
  release();
  await until('second history/get', () => v.host.sent('history/get').length === 2);

  // A fresh page (no webview state at all), as after a window reload: the host's history alone.
  await v.page.evaluate(() => sessionStorage.clear());
  v.host.historyGate = undefined;
  await v.page.reload();
  await until('restored from the host', async () => (await text(v, `${art} .answer`))?.includes('An answer that must survive.'));
  assert.match((await text(v, `${art} .rs-text`)) ?? '', /Reasoning that must survive/);
  assert.ok(await v.page.$(`${art} .pr-accept`), 'the pending proposal is still actionable');
  assert.equal(await text(v, '.tb-count'), '1 exchange');
});

test('every control is reachable by keyboard', async () => {
  const v = await view();
  const x = info();
  await v.host.notify('exchange/started', { info: x, at: Date.now() });
  await delta(v, x.id, 'reasoning', 'Thinking.', 2, 0);
  await delta(v, x.id, 'answer', 'Answer with [a link](https://example.org) and\n\n```ts\nconst a = 1;\n```', 2, 10);
  await v.host.notify('exchange/proposal', { id: x.id, proposal: PROPOSAL });
  await v.host.notify('exchange/finished', { id: x.id, status: 'complete', at: Date.now(), budgetHit: false });
  await until('proposal', () => v.page.$('.pr-accept'));
  await v.page.evaluate(() => (document.activeElement as HTMLElement | null)?.blur());

  const seen = new Set<string>();
  for (let i = 0; i < 30; i++) {
    await v.page.keyboard.press('Tab');
    const d = await v.page.evaluate(() => {
      const e = document.activeElement as HTMLElement | null;
      if (!e || e === document.body) return 'body';
      return `${e.tagName.toLowerCase()}${e.className && typeof e.className === 'string' ? `.${e.className.trim().split(/\s+/).join('.')}` : ''}`;
    });
    seen.add(d);
  }
  const has = (re: RegExp) => [...seen].some((s) => re.test(s));
  for (const [what, re] of [
    ['clear history', /tb-clear/],
    ['export', /vscode-button/],
    ['reasoning summary', /^summary/],
    ['link', /^a\.md-link/],
    ['code block', /^pre/],
    ['copy code', /vscode-button/],
    ['diff region', /^div\.diff$/],
    ['accept', /pr-accept/],
    ['reject', /pr-reject/],
    ['review', /pr-review/],
    ['follow up', /ex-follow/],
    ['input', /cp-input/],
    ['send', /cp-send/],
  ] as const) {
    assert.ok(has(re), `${what} is reachable by Tab (seen: ${[...seen].join(', ')})`);
  }
});

test('screenshots: light, dark and high contrast', async () => {
  mkdirSync(join(root, 'test-results'), { recursive: true });
  for (const theme of ['light', 'dark', 'high-contrast'] as const) {
    const v = await view(theme);
    const a = info({ createdAt: Date.now() - 60_000 });
    await v.host.notify('exchange/started', { info: a, at: Date.now() - 31_000 });
    await v.host.notify('exchange/delta', { id: a.id, kind: 'reasoning', text: 'Okay, so the loop goes from 0 to xs.length inclusive. That reads one element past the end…', reasoningTokens: 412, answerTokens: 0, at: Date.now() - 20_000 });
    await v.host.notify('exchange/delta', { id: a.id, kind: 'answer', text: ANSWER, reasoningTokens: 412, answerTokens: 96, at: Date.now() - 19_000 });
    await v.host.notify('exchange/proposal', { id: a.id, proposal: PROPOSAL });
    await v.host.notify('exchange/finished', {
      id: a.id,
      status: 'complete',
      at: Date.now() - 12_000,
      budgetHit: false,
      stats: { promptTokens: 388, reasoningTokens: 412, answerTokens: 96, tokensPerSecond: 17.4, provider: 'cpu', variant: 'q4' },
    });
    const b = info({ command: 'explain', prompt: 'Why does this return NaN for an empty array?', selection: { startLine: 12, endLine: 12 } });
    await v.host.notify('exchange/started', { info: b, at: Date.now() - 8_400 });
    await v.host.notify('exchange/delta', {
      id: b.id,
      kind: 'reasoning',
      text: "<think>\nAlright, the user asks about an empty array. With xs = [], the loop condition i <= 0 is true once, so xs[0] is undefined and total + undefined is NaN.\n\nWait, but after the fix the loop wouldn't run at all, and total stays 0. Let me check the return type",
      reasoningTokens: 143,
      answerTokens: 0,
      at: Date.now(),
    });
    await until('rendered', () => v.page.$('.pr-accept'));
    await v.page.evaluate(() => (document.activeElement as HTMLElement | null)?.blur());
    // A side bar tall enough for everything, so the sticky input box sits at the bottom.
    const height = await v.page.evaluate(() => document.documentElement.scrollHeight);
    await v.page.setViewportSize({ width: 420, height: Math.max(900, height) });
    await new Promise((r) => setTimeout(r, 250));
    await v.page.screenshot({ path: join(root, 'test-results', `reasoning-view-${theme}.png`) });
    const bg = await v.page.evaluate(() => getComputedStyle(document.querySelector('.composer')!).backgroundColor);
    assert.equal(bg, { light: 'rgb(248, 248, 248)', dark: 'rgb(24, 24, 24)', 'high-contrast': 'rgb(0, 0, 0)' }[theme], 'the theme colours apply');
  }
});

test('a request whose prompt prefix was still cached says how many prompt tokens it reused', async () => {
  const v = await view();
  const x = info({ command: 'ask', prompt: 'And what about negative numbers?' });
  const art = `article[data-id="${x.id}"]`;
  await v.host.notify('exchange/started', { info: x, at: Date.now() });
  await v.host.notify('exchange/delta', { id: x.id, kind: 'answer', text: 'They are rejected.', reasoningTokens: 0, answerTokens: 4, at: Date.now() });
  await v.host.notify('exchange/finished', {
    id: x.id,
    status: 'complete',
    at: Date.now(),
    budgetHit: false,
    stats: { promptTokens: 1240, reusedPromptTokens: 1187, reasoningTokens: 0, answerTokens: 4, tokensPerSecond: 15.2, provider: 'cpu', variant: 'q4' },
  });
  await until('stats', async () => (await text(v, `${art} .ex-stats`))?.includes('15.2 tok/s'));
  assert.match((await text(v, `${art} .ex-stats`))!, / · prompt 1,240 \(1,187 cached\) · /);
});

test('prompt lookup: the stats show the tokens a forward pass gave beside the speed', async () => {
  const v = await view();
  const x = info({ command: 'fix', prompt: 'Fix parsePort.' });
  const art = `article[data-id="${x.id}"]`;
  await v.host.notify('exchange/started', { info: x, at: Date.now() });
  await v.host.notify('exchange/delta', { id: x.id, kind: 'answer', text: 'Fixed.', reasoningTokens: 0, answerTokens: 60, at: Date.now() });
  await v.host.notify('exchange/finished', {
    id: x.id,
    status: 'complete',
    at: Date.now(),
    budgetHit: false,
    stats: { promptTokens: 300, reasoningTokens: 0, answerTokens: 60, tokensPerSecond: 61.04, tokensPerPass: 2.26, provider: 'cpu', variant: 'q4' },
  });
  await until('stats', async () => (await text(v, `${art} .ex-stats`))?.includes('61.0 tok/s'));
  assert.match((await text(v, `${art} .ex-stats`))!, /^60 tokens \(0 reasoning, 60 answer\) · 61\.0 tok\/s \(2\.3 a pass\) · cpu · q4 · prompt 300/);
});

test('a server run shows the host and model, ~ on estimated counts, and a note the server gave as it is', async () => {
  const v = await view();
  const x = info({ command: 'ask', prompt: 'Why NaN?' });
  const art = `article[data-id="${x.id}"]`;
  await v.host.notify('exchange/started', { info: x, at: Date.now() });
  await v.host.notify('exchange/delta', { id: x.id, kind: 'answer', text: 'Off by one.', reasoningTokens: 0, answerTokens: 3, at: Date.now() });
  await v.host.notify('exchange/finished', {
    id: x.id,
    status: 'complete',
    at: Date.now(),
    budgetHit: false,
    stats: { promptTokens: 310, reasoningTokens: 40, answerTokens: 3, tokensPerSecond: 31.5, provider: 'gpu-box:11434', variant: 'deepseek-r1:32b', estimated: true },
    truncation: [
      { part: 'turn', droppedTokens: 120, detail: 'Left out the oldest question of the conversation and its answer ("a").' },
      { part: 'server', droppedTokens: 0, detail: 'The thinking budget (2048 tokens) is not enforced: Ollama has no thinking budget.' },
    ],
  });
  await until('stats', async () => (await text(v, `${art} .ex-stats`))?.includes('31.5 tok/s'));
  const stats = (await text(v, `${art} .ex-stats`))!;
  assert.match(stats, /^~43 tokens \(40 reasoning, 3 answer\) · 31\.5 tok\/s · gpu-box:11434 · deepseek-r1:32b · prompt 310/);
  const notes = await v.page.evaluate((sel) => [...document.querySelectorAll(`${sel} .st-notes li`)].map((li) => li.textContent), art);
  assert.deepEqual(notes, [
    'To fit the context window, Left out the oldest question of the conversation and its answer ("a"). (120 tokens dropped).',
    'The thinking budget (2048 tokens) is not enforced: Ollama has no thinking budget.',
  ]);
});

test('the check of a proposal: Accept waits for it, the verdict names the new problems, and per-hunk buttons post the hunk they sit on', async () => {
  const v = await view();
  const x = info();
  await v.host.notify('exchange/started', { info: x, at: Date.now() });
  await v.host.notify('exchange/finished', { id: x.id, status: 'complete', at: Date.now(), budgetHit: false });
  const art = `article[data-id="${x.id}"]`;
  // Two changes far apart: two hunks.
  const lines = Array.from({ length: 16 }, (_, i) => `  const v${i} = ${i};`);
  const original = ['export function f(): number {', ...lines, '  return 0;', '}', ''].join('\n');
  const proposed = original.replace('const v0 = 0;', 'const v0 = 100;').replace('return 0;', 'return v0;');
  const two: Proposal = { ...PROPOSAL, original, proposed, check: { kind: 'checking' } };
  await v.host.notify('exchange/proposal', { id: x.id, proposal: two });
  await until('the diff', () => v.page.$(`${art} .diff-table`));
  assert.equal(await text(v, `${art} .ck-badge`), 'Checking…');
  assert.equal(await v.page.$eval(`${art} .pr-accept`, (b) => b.hasAttribute('disabled')), true, 'not ready while checking');
  assert.equal(await text(v, `${art} .pr-accept`), 'Accept All');

  await v.host.notify('exchange/proposalCheck', {
    id: x.id,
    check: { kind: 'problems', newProblems: [{ line: 21, message: "Type 'string' is not assignable to type 'number'.", severity: 'error', source: 'ts', code: '2322' }], remaining: [], tookMs: 900 },
  });
  await until('the verdict', async () => (await text(v, `${art} .ck-badge`)) === '1 new problem');
  assert.equal(await text(v, `${art} .ck-problems li`), "line 21 Type 'string' is not assignable to type 'number'.");
  assert.equal(await v.page.$eval(`${art} .pr-accept`, (b) => b.hasAttribute('disabled')), false);
  await until('announced', async () => /Check of the edit to src\/sum\.ts: 1 new problem/.test((await text(v, '[aria-live="polite"]')) ?? ''));

  const headers = await v.page.$$eval(`${art} .d-hunk .d-hunk-text`, (els) => els.map((e) => e.textContent));
  assert.equal(headers.length, 2);
  await v.page.click(`${art} .d-hunk[data-hunk="1"] .hk-accept`);
  await until('edit/acceptHunk', () => v.host.sent('edit/acceptHunk').length === 1);
  assert.deepEqual(v.host.sent('edit/acceptHunk')[0].params, { id: x.id, hunk: 1, header: headers[1] });
  await v.page.click(`${art} .d-hunk[data-hunk="0"] .hk-reject`);
  await until('edit/rejectHunk', () => v.host.sent('edit/rejectHunk').length === 1);
  assert.deepEqual(v.host.sent('edit/rejectHunk')[0].params, { id: x.id, hunk: 0, header: headers[0] });

  // A better attempt was kept: this one says so and loses its buttons.
  await v.host.notify('exchange/proposalState', { id: x.id, state: 'superseded', message: 'Attempt 2 of this fix (Checked) is kept instead.' });
  await until('not kept', async () => (await text(v, `${art} .pr-state`)) === 'Not kept');
  assert.equal(await v.page.$(`${art} .pr-accept`), null);
  assert.equal(await v.page.$(`${art} .hk-accept`), null);
  assert.equal(await text(v, `${art} .pr-message`), 'Attempt 2 of this fix (Checked) is kept instead.');
});

test('a cut-off fix says why it proposes nothing and offers Continue', async () => {
  const v = await view();
  const x = info();
  await v.host.notify('exchange/started', { info: x, at: Date.now() });
  await delta(v, x.id, 'answer', '```ts\nexport function sum(', 3, 5);
  await v.host.notify('exchange/finished', { id: x.id, status: 'length', at: Date.now(), budgetHit: false });
  await v.host.notify('exchange/notice', { id: x.id, text: 'the answer was cut off by the token limit, so its code may be incomplete.', canContinue: true });
  const art = `article[data-id="${x.id}"]`;
  await until('the notice', () => v.page.$(`${art} .ex-notice .nt-continue`));
  assert.match((await text(v, `${art} .ex-notice`)) ?? '', /No edit proposed: the answer was cut off by the token limit/);
  assert.equal(await v.page.$(`${art} .proposal`), null);
  await v.page.click(`${art} .nt-continue`);
  await until('exchange/continue', () => v.host.sent('exchange/continue').length === 1);
  assert.deepEqual(v.host.sent('exchange/continue')[0].params, { id: x.id });
});
