import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ReasoningSplitter } from '../../../src/engine/reasoning';
import type { StreamEvent } from '../../../src/engine/types';

/** Feeds the chunks, returns the events (merged by kind, in order) and the splitter. */
function run(chunks: string[]): { events: StreamEvent[]; splitter: ReasoningSplitter } {
  const splitter = new ReasoningSplitter();
  const events: StreamEvent[] = [];
  for (const c of chunks) events.push(...splitter.push(c));
  events.push(...splitter.end());
  const merged: StreamEvent[] = [];
  for (const e of events) {
    assert.ok(e.text.length > 0, 'no empty events');
    const last = merged[merged.length - 1];
    if (last && last.kind === e.kind) last.text += e.text;
    else merged.push({ ...e });
  }
  return { events: merged, splitter };
}

function chars(s: string): string[] {
  return [...s];
}

describe('ReasoningSplitter', () => {
  it('splits at the first </think> (template already opened <think>)', () => {
    const { events, splitter } = run(['Okay, the user wants', ' a fix.\n</think>\n\nHere is', ' the fix.']);
    assert.deepEqual(events, [
      { kind: 'reasoning', text: 'Okay, the user wants a fix.' },
      { kind: 'answer', text: 'Here is the fix.' },
    ]);
    assert.equal(splitter.reasoning, 'Okay, the user wants a fix.');
    assert.equal(splitter.answer, 'Here is the fix.');
    assert.equal(splitter.inAnswer, true);
  });

  it('accepts and never emits an opening <think>', () => {
    const { events } = run(['<think>\nLet me see.\n</think>\n\nDone.']);
    assert.deepEqual(events, [
      { kind: 'reasoning', text: 'Let me see.' },
      { kind: 'answer', text: 'Done.' },
    ]);
  });

  it('handles tags split across pushes at every position', () => {
    const full = '<think>\nStep one. Step two.\n</think>\n\nThe answer is `x < y`.';
    const expected = run([full]).events;
    assert.deepEqual(expected, [
      { kind: 'reasoning', text: 'Step one. Step two.' },
      { kind: 'answer', text: 'The answer is `x < y`.' },
    ]);
    for (let i = 1; i < full.length; i++) {
      assert.deepEqual(run([full.slice(0, i), full.slice(i)]).events, expected, `split at ${i}`);
    }
    assert.deepEqual(run(chars(full)).events, expected, 'one character at a time');
    assert.deepEqual(run(['<think>\nStep one. Step two.\n</thi', 'nk>\n\nThe answer is `x < y`.']).events, expected);
  });

  it('never emits a partial tag while it is undecided', () => {
    const s = new ReasoningSplitter();
    assert.deepEqual(s.push('thinking </th'), [{ kind: 'reasoning', text: 'thinking' }]);
    assert.deepEqual(s.push('ink>'), []);
    assert.equal(s.inAnswer, true);
    assert.deepEqual(s.push('answer'), [{ kind: 'answer', text: 'answer' }]);
  });

  it('keeps text that only looks like the start of a tag', () => {
    const { events } = run(['compare a </', 'b and <th', 'ese> tags</think>ok']);
    assert.deepEqual(events, [
      { kind: 'reasoning', text: 'compare a </b and <these> tags' },
      { kind: 'answer', text: 'ok' },
    ]);
  });

  it('treats text before <think> as reasoning', () => {
    const { events } = run(['Sure.', ' <think>\nhmm\n</think>\n\nyes']);
    assert.deepEqual(events, [
      { kind: 'reasoning', text: 'Sure. \nhmm' },
      { kind: 'answer', text: 'yes' },
    ]);
  });

  it('leaves everything as reasoning when </think> never comes', () => {
    const { events, splitter } = run(['<think>\nstill thinking', ' about it\n', '</thi']);
    assert.deepEqual(events, [{ kind: 'reasoning', text: 'still thinking about it\n</thi' }]);
    assert.equal(splitter.inAnswer, false);
    assert.equal(splitter.answer, '');
  });

  it('handles an empty reasoning (<think>\\n\\n</think>)', () => {
    const { events } = run(['<think>\n\n</think>\n\n', 'Direct answer.']);
    assert.deepEqual(events, [{ kind: 'answer', text: 'Direct answer.' }]);
  });

  it('passes later think tags through in the answer', () => {
    const { events } = run(['a</think>\n\nUse `</think>` to close ', '<think>.']);
    assert.deepEqual(events, [
      { kind: 'reasoning', text: 'a' },
      { kind: 'answer', text: 'Use `</think>` to close <think>.' },
    ]);
  });

  it('keeps the indentation of the first answer line and blank lines inside', () => {
    const { events } = run(['r</think>\n\n', '    indented code\n\n\nmore\n']);
    assert.deepEqual(events, [
      { kind: 'reasoning', text: 'r' },
      { kind: 'answer', text: '    indented code\n\n\nmore\n' },
    ]);
  });

  it('keeps whitespace inside the reasoning', () => {
    const { events } = run(['line 1\n', '\n', 'line 2', ' ', 'end</think>x']);
    assert.deepEqual(events[0], { kind: 'reasoning', text: 'line 1\n\nline 2 end' });
  });

  it('ignores empty pushes', () => {
    const s = new ReasoningSplitter();
    assert.deepEqual(s.push(''), []);
    assert.deepEqual(s.end(), []);
    assert.equal(s.reasoning, '');
  });
});
