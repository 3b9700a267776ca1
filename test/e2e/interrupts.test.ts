/**
 * Scenarios 4 and 6 of issue 6 in a real VS Code (code-server + Chromium): a generation is
 * cancelled (the view's Cancel button, then "R1: Cancel") and the stream stops; the language
 * server is killed in the middle of a generation, an error is shown, and the next request works.
 * They run a scripted fixture model with a longer script (several hundred tokens of reasoning), so
 * that a generation lasts long enough to be interrupted.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { buildScriptedModel, encodeScript, FIXTURES_DIR } from '../fixtures/models';
import { E2E } from './harness';
import { ReasoningView, type ExchangeSnapshot } from './reasoning';

const LONG_MODEL = join(FIXTURES_DIR, 'scripted-long');
// About 1,000 tokens: several seconds at the scripted model's speed (its CPU-prepared copy runs a
// few hundred tokens a second), time enough to click Cancel while it streams.
const STEPS = Array.from(
  { length: 30 },
  (_, i) => `Step ${i + 1}: the value "${8000 + i}" parses to the port ${8000 + i}, which lies within 1–65535, so parsePort accepts it.`,
);
const LONG_REASONING = ['Okay, the user asks about `parsePort`. Let me check several inputs one by one before I answer.', '', ...STEPS].join('\n');
const LONG_ANSWER = 'All thirty ports are valid, so `parsePort` accepts each of them.';
const LONG_SCRIPT = `${LONG_REASONING}\n</think>\n\n${LONG_ANSWER}`;

let e2e: E2E;
let view: ReasoningView;
let scriptTokens = 0;

before(async () => {
  await buildScriptedModel(LONG_MODEL, { script: LONG_SCRIPT }); // cached after the first build
  scriptTokens = (await encodeScript(LONG_SCRIPT)).length;
  e2e = await E2E.start({
    name: 'interrupts',
    // One token per pass: the script's steps repeat each other, and prompt lookup would check most
    // of them several tokens at a time, too fast to be interrupted reliably.
    settings: { 'r1.model.path': LONG_MODEL, 'r1.generation.temperature': 0, 'r1.generation.promptLookup': 'off' },
    viewport: { width: 1600, height: 1000 },
  });
  view = new ReasoningView(e2e);
  await view.frame(true);
  await e2e.setSideBarWidth(620);
});

after(async () => {
  await e2e?.stop();
});

/** Starts "R1: Ask" and waits until its reasoning streams; returns the exchange id. */
async function askAndWaitForStreaming(question: string): Promise<string> {
  const before = await view.ids();
  await e2e.runCommandWithInput('R1: Ask', question);
  const id = await view.waitForNew(before);
  const s = await view.waitFor(id, 'reasoning streaming', (x) => x.reasoning !== '' || x.status !== 'generating', 60_000);
  assert.equal(s.status, 'generating', `the request is still running when its reasoning shows: ${JSON.stringify(s)}`);
  return id;
}

/** Asks a question and waits for the complete answer (the request after an interruption works). */
async function askToCompletion(question: string): Promise<ExchangeSnapshot> {
  const before = await view.ids();
  await e2e.runCommandWithInput('R1: Ask', question);
  const id = await view.waitForNew(before);
  const s = await view.waitForStatus(id, ['complete', 'error', 'cancelled', 'length'], 120_000);
  assert.equal(s.status, 'complete', `the next request completes: ${JSON.stringify(s)}`);
  assert.equal(s.reasoning, LONG_REASONING);
  assert.equal(s.answer, LONG_ANSWER.replace(/`/g, ''));
  assert.match(s.stats, /\btok\/s\b.*\bcpu\b/);
  return s;
}

/** The reasoning token count the view shows for a stopped exchange ("N tokens (R reasoning, A answer)"). */
function totalTokens(s: ExchangeSnapshot): number {
  const m = /\b(\d+) tokens? \(/.exec(s.stats);
  assert.ok(m, `stats show a token count: ${s.stats}`);
  return Number(m[1]);
}

test('4. Cancel during a generation stops the stream (the view\'s Cancel button, then "R1: Cancel"); the next request works', async () => {
  await e2e.step('cancel', async () => {
    // The view's Cancel button.
    const first = await askAndWaitForStreaming('Which of these ports are valid?');
    await e2e.screenshot('streaming-before-cancel');
    await view.click(first, 'ex-cancel');
    const cancelled = await view.waitForStatus(first, ['cancelled', 'complete', 'error', 'length']);
    assert.equal(cancelled.status, 'cancelled', JSON.stringify(cancelled));
    assert.match(cancelled.error, /Cancelled/i, 'the view says it was cancelled');
    assert.equal(cancelled.answer, '', 'no answer was produced');
    assert.ok(totalTokens(cancelled) < scriptTokens, `stopped before the end of the ${scriptTokens}-token script: ${cancelled.stats}`);
    assert.ok(LONG_REASONING.startsWith(cancelled.reasoning), 'the reasoning shown is a prefix of the script');
    assert.equal((await (await view.exchange(first)).locator('vscode-button.ex-cancel').isVisible()), false, 'Cancel is gone');
    await e2e.screenshot('cancelled-by-button');

    // "R1: Cancel" from the command palette.
    const second = await askAndWaitForStreaming('And these?');
    await e2e.runCommand('R1: Cancel');
    const cancelled2 = await view.waitForStatus(second, ['cancelled', 'complete', 'error', 'length']);
    assert.equal(cancelled2.status, 'cancelled', JSON.stringify(cancelled2));
    assert.ok(totalTokens(cancelled2) < scriptTokens, cancelled2.stats);

    // The next request runs to its end.
    await askToCompletion('Is 8080 a valid port?');
    await e2e.screenshot('completed-after-cancel');

    // The cancelled streams stayed stopped: nothing was added to them while the next request ran.
    for (const [id, then] of [[first, cancelled], [second, cancelled2]] as const) {
      const now = await view.snapshot(id);
      assert.equal(now.status, 'cancelled');
      assert.equal(now.reasoning, then.reasoning, 'no reasoning arrived after the cancel');
      assert.equal(now.answer, '');
    }
  });
});

test('6. The language server is killed mid-run: an error is shown, the server restarts, and the next request works', async () => {
  await e2e.step('server-killed', async () => {
    const id = await askAndWaitForStreaming('Check the ports again.');
    const pids = e2e.serverPids();
    assert.equal(pids.length, 1, `one R1 server process runs: ${pids.join(', ')}`);
    const [pid] = pids;
    process.kill(pid, 'SIGKILL');

    const toast = await e2e.waitForNotification(/^R1: the request failed because the R1 server stopped/, 30_000);
    const failed = await view.waitForStatus(id, ['error', 'cancelled', 'complete', 'length']);
    assert.equal(failed.status, 'error', `the running request ended in an error: ${JSON.stringify(failed)}`);
    assert.match(failed.error, /The R1 server stopped during this request.*It restarts by itself; run the command again\./, 'the view says why and what to do');
    await e2e.screenshot('server-killed-error');
    await e2e.notificationButton(toast, 'Show Log').waitFor({ state: 'visible' });

    const s = await askToCompletion('Is 8080 a valid port?');
    assert.equal(s.status, 'complete');
    const after = e2e.serverPids();
    assert.equal(after.length, 1, `one R1 server process runs again: ${after.join(', ')}`);
    assert.notEqual(after[0], pid, 'a new server process answered');
    await e2e.screenshot('completed-after-restart');
  });
});
