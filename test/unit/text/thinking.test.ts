/** The think-tag rules every layer shares (src/text/thinking.ts). */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { answerOnly } from '../../../src/text/thinking';

describe('answerOnly', () => {
  it('keeps what follows the last </think>, as the R1 chat template does', () => {
    assert.equal(answerOnly('a</think>b</think>\n\nfinal'), 'final');
    assert.equal(answerOnly('<think>\nreasoning\n</think>\n\nThe answer.\n'), 'The answer.');
    assert.equal(answerOnly('plain answer'), 'plain answer');
  });

  it('drops a <think> that never closes, with everything after it', () => {
    // A turn cancelled while thinking has no answer.
    assert.equal(answerOnly('<think>\ncut off while thinking'), '');
    assert.equal(answerOnly('  <think>cut off'), '');
    // A model that starts thinking again in its answer: that reasoning is not answer either.
    assert.equal(answerOnly('The answer.\n<think>\nsecond thoughts, cut off'), 'The answer.');
    assert.equal(answerOnly('<think>r</think>\n\nThe answer. <think> more <think> and more'), 'The answer.');
    // Only the tags count: a closed pair after the answer is handled by the last </think>.
    assert.equal(answerOnly('x <think>y</think> z'), 'z');
    assert.equal(answerOnly('answer <thinking> stays'), 'answer <thinking> stays');
  });

  it('gives the same answer when applied twice (follow-ups pass through the view and the engine)', () => {
    for (const s of ['<think>a</think>b', '<think>\ncut', 'ans\n<think>x', 'a</think>b<think>c', ' plain \n']) {
      assert.equal(answerOnly(answerOnly(s)), answerOnly(s), JSON.stringify(s));
    }
  });
});
