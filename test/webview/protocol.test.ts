/** The shared logic of the Reasoning view protocol, in plain Node. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  applyNotification,
  classifyLink,
  escapeHtml,
  exchangeToMarkdown,
  followUpTurns,
  parseWebviewMessage,
  reviveHistory,
  stripThinkTags,
  webviewCsp,
  webviewHtml,
  HISTORY_LIMIT,
  type ExchangeInfo,
  type ExchangeRecord,
  type HostNotificationMessage,
  type HostNotifications,
} from '../../src/protocol/webview';
import { proposalPatch } from '../../src/protocol/diff';

function n<K extends keyof HostNotifications>(method: K, params: HostNotifications[K]): HostNotificationMessage {
  return { type: 'notification', method, params } as HostNotificationMessage;
}

function info(id: string, over: Partial<ExchangeInfo> = {}): ExchangeInfo {
  return { id, command: 'ask', prompt: `question ${id}`, createdAt: 1000, ...over };
}

/** Runs a finished exchange through the reducer. */
function run(records: ExchangeRecord[], id: string, reasoning: string, answer: string, over: Partial<ExchangeInfo> = {}): void {
  applyNotification(records, n('exchange/started', { info: info(id, over), at: 1000 }));
  applyNotification(records, n('exchange/delta', { id, kind: 'reasoning', text: reasoning, reasoningTokens: 10, answerTokens: 0, at: 1500 }));
  if (answer) applyNotification(records, n('exchange/delta', { id, kind: 'answer', text: answer, reasoningTokens: 10, answerTokens: 5, at: 2000 }));
  applyNotification(records, n('exchange/finished', { id, status: 'complete', at: 3000, budgetHit: false }));
}

test('the reducer follows an exchange from the queue to the end', () => {
  const records: ExchangeRecord[] = [];
  const r = applyNotification(records, n('exchange/started', { info: info('a'), queuePosition: 2, at: 100 }))!;
  assert.equal(r.status, 'queued');
  assert.equal(r.queuePosition, 2);
  applyNotification(records, n('exchange/queued', { id: 'a', position: 1 }));
  assert.equal(r.queuePosition, 1);
  applyNotification(records, n('exchange/running', { id: 'a', at: 200 }));
  assert.equal(r.status, 'generating');
  assert.equal(r.runningSince, 200);
  applyNotification(records, n('exchange/delta', { id: 'a', kind: 'reasoning', text: '<think>\nhmm', reasoningTokens: 3, answerTokens: 0, at: 250 }));
  applyNotification(records, n('exchange/delta', { id: 'a', kind: 'reasoning', text: ' ok', reasoningTokens: 5, answerTokens: 0, budgetHit: true, at: 300 }));
  assert.equal(r.reasoning, '<think>\nhmm ok');
  assert.equal(r.budgetHit, true);
  assert.equal(r.reasoningEndedAt, undefined);
  applyNotification(records, n('exchange/delta', { id: 'a', kind: 'answer', text: 'Yes.', reasoningTokens: 5, answerTokens: 2, at: 400 }));
  assert.equal(r.reasoningEndedAt, 400);
  assert.equal(r.answerTokens, 2);
  applyNotification(records, n('exchange/proposal', { id: 'a', proposal: { file: { uri: 'file:///a', label: 'a' }, startLine: 1, original: 'x\n', proposed: 'y\n' } }));
  assert.equal(r.proposal?.state, 'pending');
  applyNotification(records, n('exchange/finished', { id: 'a', status: 'complete', at: 900, budgetHit: false, stats: { reasoningTokens: 5, answerTokens: 3, tokensPerSecond: 9 } }));
  assert.equal(r.status, 'complete');
  assert.equal(r.budgetHit, true, 'a budget hit seen while streaming stays');
  assert.equal(r.answerTokens, 3);
  // Late deltas after the end are ignored; unknown ids touch nothing.
  applyNotification(records, n('exchange/delta', { id: 'a', kind: 'answer', text: 'late', reasoningTokens: 9, answerTokens: 9 }));
  assert.equal(r.answer, 'Yes.');
  assert.equal(applyNotification(records, n('exchange/delta', { id: 'zz', kind: 'answer', text: 'x', reasoningTokens: 0, answerTokens: 1 })), undefined);
  applyNotification(records, n('exchange/proposalState', { id: 'a', state: 'accepted' }));
  assert.equal(r.proposal?.state, 'accepted');
  applyNotification(records, n('history/restore', { exchanges: [] }));
  assert.equal(records.length, 0);
});

test('follow-ups carry earlier answers, never earlier reasoning', () => {
  const records: ExchangeRecord[] = [];
  run(records, 'a', 'SECRET-REASONING-A', '<think>stray</think>Answer A', { userTurn: 'question a\n```ts\ncode\n```' });
  run(records, 'other', 'SECRET-OTHER', 'Unrelated answer');
  run(records, 'b', 'SECRET-REASONING-B', '', { parentId: 'a' }); // cancelled before answering
  run(records, 'c', 'SECRET-REASONING-C', 'Answer C', { parentId: 'b', command: 'followUp' });
  const turns = followUpTurns(records, 'c');
  assert.deepEqual(turns, [
    { role: 'user', content: 'question a\n```ts\ncode\n```' },
    { role: 'assistant', content: 'Answer A' },
    { role: 'user', content: 'question c' },
    { role: 'assistant', content: 'Answer C' },
  ]);
  assert.ok(!JSON.stringify(turns).includes('SECRET'), 'no reasoning in the prompt');
  assert.ok(!JSON.stringify(turns).includes('Unrelated'), 'other conversations stay out');
  assert.deepEqual(followUpTurns(records, undefined), []);
  // A cycle in parent links cannot hang.
  records[0].info.parentId = 'c';
  assert.equal(followUpTurns(records, 'c').length, 4);
});

test('a follow-up replays the user turn the model saw (code included), which exchange/finished records', () => {
  const records: ExchangeRecord[] = [];
  applyNotification(records, n('exchange/started', { info: info('f', { command: 'fix', prompt: 'Fix this code.' }), at: 1000 }));
  applyNotification(records, n('exchange/delta', { id: 'f', kind: 'answer', text: 'Fixed.', reasoningTokens: 0, answerTokens: 1, at: 1100 }));
  const userTurn = 'Fix the code at lines 2-8 of `src/port.ts` (typescript).\n\nCode to fix (lines 2-8):\n```ts\nexport function parsePort() {}\n```';
  applyNotification(records, n('exchange/finished', { id: 'f', status: 'complete', at: 1200, budgetHit: false, userTurn }));
  run(records, 'g', 'r', 'Because.', { parentId: 'f', command: 'followUp' });
  assert.deepEqual(followUpTurns(records, 'g').slice(0, 2), [
    { role: 'user', content: userTurn },
    { role: 'assistant', content: 'Fixed.' },
  ]);
  // Persisted with the record: a reloaded window replays it too.
  assert.equal(reviveHistory(JSON.parse(JSON.stringify(records)), 2000)[0].info.userTurn, userTurn);
});

test('follow-ups leave out what an unclosed <think> opened, as the engine does', () => {
  const records: ExchangeRecord[] = [];
  run(records, 'a', 'r', '<think>\nthought again, then cancelled'); // no answer
  run(records, 'b', 'r', 'Answer B.\n<think>\nsecond thoughts, cut off', { parentId: 'a' });
  run(records, 'c', 'r', 'Answer C', { parentId: 'b' });
  assert.deepEqual(followUpTurns(records, 'c'), [
    { role: 'user', content: 'question b' },
    { role: 'assistant', content: 'Answer B.' },
    { role: 'user', content: 'question c' },
    { role: 'assistant', content: 'Answer C' },
  ]);
});

test('stripThinkTags removes both tags and nothing else', () => {
  assert.equal(stripThinkTags('<think>\nreasoning\n</think>\n\nanswer <thinking> stays'), 'reasoning\n\nanswer <thinking> stays');
});

test('the host accepts only well-formed requests from the view', () => {
  const ok = (m: unknown) => parseWebviewMessage(m).ok;
  assert.ok(ok({ type: 'request', requestId: 1, method: 'edit/accept', params: { id: 'a' } }));
  assert.ok(ok({ type: 'request', requestId: 2, method: 'history/get' }));
  assert.ok(ok({ type: 'request', requestId: 3, method: 'followUp', params: { text: 'why?', parentId: 'a' } }));
  const bad = [
    null,
    'edit/accept',
    { type: 'request', method: 'edit/accept', params: { id: 'a' } }, // no id
    { type: 'request', requestId: 1.5, method: 'edit/accept', params: { id: 'a' } },
    { type: 'request', requestId: 1, method: 'eval', params: {} },
    { type: 'request', requestId: 1, method: 'edit/accept', params: { id: 42 } },
    { type: 'request', requestId: 1, method: 'followUp', params: { text: '   ' } },
    { type: 'request', requestId: 1, method: 'link/open', params: { href: 'x'.repeat(200_000) } },
    { type: 'notification', requestId: 1, method: 'edit/accept', params: { id: 'a' } },
  ];
  for (const m of bad) assert.equal(parseWebviewMessage(m).ok, false, JSON.stringify(m)?.slice(0, 80));
  const r = parseWebviewMessage({ type: 'request', requestId: 7, method: 'edit/accept', params: { id: 3 } });
  assert.ok(!r.ok && r.requestId === 7, 'a bad request with an id can still get an error reply');
  // Extra fields do not pass through.
  const clean = parseWebviewMessage({ type: 'request', requestId: 1, method: 'run/cancel', params: { id: 'a', extra: 'x' } });
  assert.ok(clean.ok);
  assert.deepEqual(clean.message.params, { id: 'a' });
});

test('links: http(s) go outside, files stay files, every other scheme is refused', () => {
  assert.deepEqual(classifyLink('https://example.org/a?b#c'), { kind: 'external', url: 'https://example.org/a?b#c' });
  assert.deepEqual(classifyLink('src/a.ts#L12'), { kind: 'file', path: 'src/a.ts', absolute: false, line: 12 });
  assert.deepEqual(classifyLink('file:///w/src/a.ts'), { kind: 'file', path: 'file:///w/src/a.ts', absolute: true });
  assert.deepEqual(classifyLink('/w/a.ts'), { kind: 'file', path: '/w/a.ts', absolute: true });
  for (const href of [
    'javascript:alert(1)',
    'JavaScript:alert(1)',
    ' javascript:alert(1)',
    'java\nscript:alert(1)',
    'java\u0000script:alert(1)',
    'data:text/html,<script>x</script>',
    'vbscript:x',
    'command:workbench.action.terminal.new',
    'vscode://ms-python.python/x',
    '//evil.example/x',
    '\\\\evil.example\\share',
    'file://evil.example/share/x',
    '#top',
    '',
  ]) {
    assert.equal(classifyLink(href).kind, 'rejected', JSON.stringify(href));
  }
});

test('the shell: strict CSP with a nonce, our script and stylesheet only', () => {
  const csp = webviewCsp('https://x.vscode-cdn.net', 'N0NCE');
  assert.match(csp, /^default-src 'none'; /);
  assert.match(csp, /script-src 'nonce-N0NCE'(;|$)/);
  assert.match(csp, /style-src https:\/\/x\.vscode-cdn\.net 'sha256-47DEQpj8HBSa\+\/TImW\+5JCeuQeRkm5NMpJWZG3hSuFU='(;|$)/);
  assert.ok(!csp.includes('unsafe'), 'no unsafe-inline or unsafe-eval');
  const html = webviewHtml({ cspSource: 'https://x.vscode-cdn.net', nonce: 'N0NCE', scriptUri: 'https://x/dist/webview.js', styleUri: 'https://x/dist/webview.css' });
  assert.equal(html.match(/<script/g)?.length, 1);
  assert.match(html, /<script nonce="N0NCE" src="https:\/\/x\/dist\/webview\.js"><\/script>/);
  assert.match(html, /<link rel="stylesheet" href="https:\/\/x\/dist\/webview\.css">/);
});

test('escapeHtml: safe in element content and in double-quoted attributes', () => {
  assert.equal(escapeHtml(`<a href="x" title='y'>&amp;</a>`), `&lt;a href=&quot;x&quot; title='y'&gt;&amp;amp;&lt;/a&gt;`);
});

test('export: one exchange as markdown, reasoning included, edit as a diff with file line numbers', () => {
  const records: ExchangeRecord[] = [];
  run(records, 'a', '<think>\nFirst thought.\n\nSecond thought.\n</think>', 'Use `<`.\n\n```ts\nfor (;;) {}\n```', {
    command: 'fix',
    prompt: 'Fix the loop.',
    file: { uri: 'file:///w/src/sum.ts', label: 'src/sum.ts' },
    selection: { startLine: 10, endLine: 12 },
  });
  applyNotification(records, n('exchange/proposal', { id: 'a', proposal: { file: { uri: 'file:///w/src/sum.ts', label: 'src/sum.ts' }, startLine: 10, original: 'a\nb\nc\n', proposed: 'a\nB\nc\n' } }));
  const md = exchangeToMarkdown(records[0]);
  assert.match(md, /^# R1 Fix: src\/sum\.ts\n/);
  assert.match(md, /- Selection: lines 10–12/);
  assert.match(md, /## Reasoning\n\n> First thought\.\n>\n> Second thought\.\n/);
  assert.ok(!md.includes('<think>') && !md.includes('</think>'));
  assert.match(md, /## Answer\n\nUse `<`\.\n\n```ts\nfor \(;;\) \{\}\n```/);
  assert.match(md, /## Proposed edit \(pending\)\n\n```diff\n--- a\/src\/sum\.ts\n\+\+\+ b\/src\/sum\.ts\n@@ -10,3 \+10,3 @@\n a\n-b\n\+B\n c\n```\n/);
  // A diff that itself contains a fence gets a longer one.
  records[0].proposal = { ...records[0].proposal!, original: 'x\n```\n', proposed: 'y\n```\n' };
  assert.match(exchangeToMarkdown(records[0]), /\n````diff\n[^]*\n````\n/);
  assert.ok(proposalPatch(records[0].proposal).includes('@@ -10,2 +10,2 @@'));
});

test('export: the speed says how many tokens a forward pass gave when prompt lookup checked drafts, and nothing of it otherwise', () => {
  const records: ExchangeRecord[] = [];
  run(records, 'a', '', 'Fixed.', { command: 'fix', prompt: 'Fix it.' });
  applyNotification(records, n('exchange/finished', { id: 'a', status: 'complete', at: 900, budgetHit: false, stats: { reasoningTokens: 5, answerTokens: 40, tokensPerSecond: 52.4, tokensPerPass: 2.317 } }));
  assert.match(exchangeToMarkdown(records[0]), /\n- Speed: 52\.4 tok\/s \(2\.32 tokens a forward pass: prompt lookup\)\n/);
  records[0].stats = { reasoningTokens: 5, answerTokens: 40, tokensPerSecond: 24.1 };
  assert.match(exchangeToMarkdown(records[0]), /\n- Speed: 24\.1 tok\/s\n/);
});

test('export and history carry the check: each attempt with its verdict and problems, a notice when no edit was proposed', () => {
  const records: ExchangeRecord[] = [];
  run(records, 'r', 'r', 'Return the number.', { command: 'repair', prompt: 'Repair round 1: the check found 1 new problem.', parentId: 'f' });
  const proposal = { file: { uri: 'file:///w/src/sum.ts', label: 'src/sum.ts' }, startLine: 2, original: 'a\n', proposed: 'b\n', attempt: 2 };
  applyNotification(records, n('exchange/proposal', { id: 'r', proposal }));
  applyNotification(records, n('exchange/proposalCheck', { id: 'r', check: { kind: 'checking' } }));
  applyNotification(records, n('exchange/proposalCheck', {
    id: 'r',
    check: { kind: 'problems', newProblems: [{ line: 7, message: "Type 'string' is not assignable to type 'number'.", severity: 'error' }], remaining: [], tookMs: 800 },
  }));
  const md = exchangeToMarkdown(records[0]);
  assert.match(md, /^# R1 Repair\n/);
  assert.match(md, /## Proposed edit \(pending, attempt 2\)\n\n- Check: 1 new problem\n  - line 7: Type 'string' is not assignable to type 'number'\.\n/);
  // History is the records themselves: a revived copy keeps the verdict.
  const revived = reviveHistory(JSON.parse(JSON.stringify(records)), 1);
  assert.equal(revived[0].proposal?.check?.kind, 'problems');

  run(records, 'c', 'r', '```ts\nexport function', { command: 'fix' });
  applyNotification(records, n('exchange/notice', { id: 'c', text: 'the answer was cut off by the token limit.', canContinue: true }));
  assert.match(exchangeToMarkdown(records[1]), /_No edit proposed: the answer was cut off by the token limit\._/);
});

test('a revived history drops junk, keeps the newest, and closes runs the reload interrupted', () => {
  const records: ExchangeRecord[] = [];
  for (let i = 0; i < HISTORY_LIMIT + 5; i++) run(records, `x${i}`, 'r', 'a');
  applyNotification(records, n('exchange/started', { info: info('live'), at: 1 }));
  const raw = JSON.parse(JSON.stringify([{ junk: true }, 42, ...records]));
  const revived = reviveHistory(raw, 5000);
  assert.equal(revived.length, HISTORY_LIMIT);
  assert.equal(revived.at(-1)?.info.id, 'live');
  assert.equal(revived.at(-1)?.status, 'cancelled');
  assert.match(revived.at(-1)?.error ?? '', /reloaded/);
  assert.deepEqual(reviveHistory(undefined, 0), []);
  assert.deepEqual(reviveHistory({ not: 'a list' }, 0), []);
});
