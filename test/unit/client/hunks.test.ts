/**
 * Per-hunk review: accepting or rejecting one hunk applies exactly that change, and what is left
 * stays proposed against the new text.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { reanchor } from '../../../src/client/edits/anchor';
import { acceptHunk, rejectHunk } from '../../../src/client/edits/hunks';
import { fileHunks, hunkHeader, type LineEdit } from '../../../src/protocol/diff';

const body = Array.from({ length: 14 }, (_, i) => `  const v${i} = ${i};`);
const original = ['export function f(): number {', ...body, '  return 0;', '}'].join('\n');
const proposed = original.replace('const v0 = 0;', 'const v0 = 100;').replace('return 0;', 'return v0;');
const edit: LineEdit = { original, proposed, startLine: 10 };
const headers = fileHunks(edit).map(hunkHeader);

test('the proposal has two hunks, numbered with the file\'s lines', () => {
  assert.deepEqual(headers, ['@@ -10,5 +10,5 @@', '@@ -22,5 +22,5 @@']);
});

test('accepting the second hunk applies only it; the first stays proposed against the new text', () => {
  const { apply, rest } = acceptHunk(edit, { hunk: 1, header: headers[1] });
  assert.equal(apply, original.replace('return 0;', 'return v0;'));
  assert.ok(rest);
  assert.equal(rest.original, apply);
  assert.equal(rest.proposed, proposed);
  assert.deepEqual(fileHunks(rest).map(hunkHeader), ['@@ -10,5 +10,5 @@']);
  // Accepting what is left finishes the proposal.
  const last = acceptHunk(rest, { hunk: 0, header: '@@ -10,5 +10,5 @@' });
  assert.equal(last.apply, proposed);
  assert.equal(last.rest, undefined);
});

test('after a partial accept the rest re-anchors on the new document text', () => {
  const doc = `// a\n${original}\n// z\n`;
  const { apply, rest } = acceptHunk(edit, { hunk: 0, header: headers[0] });
  const after = doc.replace(original, apply);
  assert.deepEqual(reanchor({ version: 2, offset: 5, original: rest!.original }, 2, after), { kind: 'unchanged', offset: 5 });
});

test('rejecting a hunk drops it from the proposal; rejecting the last one leaves nothing', () => {
  const rest = rejectHunk(edit, { hunk: 0, header: headers[0] });
  assert.ok(rest);
  assert.equal(rest.original, original);
  assert.equal(rest.proposed, original.replace('return 0;', 'return v0;'));
  assert.equal(rejectHunk(rest, { hunk: 0, header: hunkHeader(fileHunks(rest)[0]) }), undefined);
});

test('a choice made on a proposal that changed since is refused', () => {
  assert.throws(() => acceptHunk(edit, { hunk: 1, header: headers[0] }), /The proposal changed since this change was shown/);
  assert.throws(() => rejectHunk(edit, { hunk: 2, header: headers[1] }), /The proposal changed/);
});

test('CRLF text and a trailing newline survive a partial accept', () => {
  const o = `${original.replace(/\n/g, '\r\n')}\r\n`;
  const p = `${proposed.replace(/\n/g, '\r\n')}\r\n`;
  const e = { original: o, proposed: p, startLine: 1 };
  const h = fileHunks(e).map(hunkHeader);
  const { apply } = acceptHunk(e, { hunk: 1, header: h[1] });
  assert.equal(apply, o.replace('return 0;', 'return v0;'));
});
