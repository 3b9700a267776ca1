/**
 * buildMessages (src/engine/prompt.ts): a server gets the same user turn as the local prompt, the
 * earlier turns by their answer only, and the same drops to fit, measured with the estimate.
 */
import assert from 'node:assert/strict';
import { resolve } from 'node:path';
import { before, test } from 'node:test';
import { buildMessages, buildPrompt, estimateTokens } from '../../../src/engine/prompt';
import { R1Tokenizer } from '../../../src/engine/tokenizer';
import type { PromptRequest } from '../../../src/engine/types';
import { buildTokenizerFixture } from '../../fixtures/tokenizer';

const FIXTURE = resolve(__dirname, '../../../.cache/fixtures/tokenizer');
let tok: R1Tokenizer;

before(async () => {
  await buildTokenizerFixture(FIXTURE);
  tok = await R1Tokenizer.fromFolder(FIXTURE);
});

const FILE = Array.from({ length: 80 }, (_, i) => `const v${i} = ${i}; // line ${i + 1}`).join('\n');

const FIX: PromptRequest = {
  kind: 'fix',
  question: 'make it a number',
  context: {
    filePath: 'src/a.ts',
    language: 'typescript',
    fileText: FILE,
    selection: { startLine: 40, endLine: 41 },
    diagnostics: [{ message: 'Type string is not assignable to number', severity: 'error', startLine: 40, endLine: 40, source: 'ts', code: '2322' }],
  },
  history: [
    { role: 'user', content: 'What does this file do?' },
    { role: 'assistant', content: 'It counts.</think>\n\nIt declares eighty constants.' },
  ],
};

test('the user turn is the one the local prompt renders; assistant turns carry their answer only', () => {
  const local = buildPrompt(tok, FIX, { contextWindow: 8192, maxNewTokens: 1024 });
  const remote = buildMessages(FIX, { contextWindow: 8192, maxNewTokens: 1024 });
  assert.equal(remote.userTurn, local.userTurn);
  assert.deepEqual(remote.turns, [
    { role: 'user', content: 'What does this file do?' },
    { role: 'assistant', content: 'It declares eighty constants.' },
    { role: 'user', content: local.userTurn },
  ]);
  assert.deepEqual(remote.truncation, []);
  assert.ok(remote.estimatedTokens >= estimateTokens(local.userTurn));
});

test('a tight window drops the oldest turns, then far lines of the file, and says so', () => {
  const full = buildMessages(FIX, { contextWindow: 8192, maxNewTokens: 1024 });
  const tight = buildMessages(FIX, { contextWindow: 1024 + Math.floor(full.estimatedTokens / 2), maxNewTokens: 1024 });
  assert.deepEqual(tight.truncation.map((t) => t.part), ['turn', 'file-context']);
  assert.equal(tight.turns.length, 1);
  assert.ok(tight.userTurn.includes('Code to fix (lines 40-41)'));
  assert.ok(tight.estimatedTokens <= Math.floor(full.estimatedTokens / 2));
});

test('an empty question is refused as locally; no room at all is prompt-too-long', () => {
  assert.throws(() => buildMessages({ kind: 'ask', question: ' ', context: {} }, { contextWindow: 8192, maxNewTokens: 16 }), /question is empty/);
  assert.throws(() => buildMessages(FIX, { contextWindow: 1024, maxNewTokens: 1024 }), /leaves no room/);
});
