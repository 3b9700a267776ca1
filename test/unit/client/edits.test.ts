import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { reanchor } from '../../../src/client/edits/anchor';
import { formatAsComment } from '../../../src/client/edits/comments';
import { contextWindow, enclosingBlockByIndent, indentBlockRange, wholeLineSpan } from '../../../src/client/edits/context';
import { fixBlockOf, pickFixBlock, replacementText } from '../../../src/client/edits/proposal';
import { Runs } from '../../../src/client/runs';
import { commentSyntax } from '../../../src/text/languages';

describe('re-anchoring a proposal', () => {
  const doc = 'const a = 1;\nfunction f() {\n  return a;\n}\n';
  const original = 'function f() {\n  return a;\n}';
  const anchor = { version: 4, offset: doc.indexOf(original), original };

  test('the same version applies in place', () => {
    assert.deepEqual(reanchor(anchor, 4, doc), { kind: 'unchanged', offset: anchor.offset });
  });
  test('an edit elsewhere moves the anchor to the one place the original text is', () => {
    const changed = '// header\n\n' + doc;
    assert.deepEqual(reanchor(anchor, 5, changed), { kind: 'moved', offset: changed.indexOf(original) });
  });
  test('an edit inside the target refuses with a clear reason', () => {
    const r = reanchor(anchor, 5, doc.replace('return a;', 'return a + 1;'));
    assert.equal(r.kind, 'refused');
    assert.match((r as { reason: string }).reason, /changed since it was computed.*Nothing was applied/);
  });
  test('a duplicated target is ambiguous and refused', () => {
    const r = reanchor(anchor, 5, doc + '\n' + original + '\n');
    assert.equal(r.kind, 'refused');
    assert.match((r as { reason: string }).reason, /more than once/);
  });
  test('same version but different text (an impossible-looking state) is still checked by text', () => {
    const r = reanchor({ ...anchor, offset: 0 }, 4, doc);
    assert.deepEqual(r, { kind: 'moved', offset: doc.indexOf(original) });
  });
  test('an empty target cannot be re-found after a change', () => {
    assert.equal(reanchor({ version: 1, offset: 3, original: '' }, 2, doc).kind, 'refused');
    assert.equal(reanchor({ version: 1, offset: 3, original: '' }, 1, doc).kind, 'unchanged');
  });
});

describe('comments per language', () => {
  test('line comments keep the indentation and mark blank lines', () => {
    assert.equal(formatAsComment('Adds two numbers.\n\nReturns the sum.', 'typescript', '  '), '  // Adds two numbers.\n  //\n  // Returns the sum.\n');
    assert.equal(formatAsComment('Parses input.', 'python'), '# Parses input.\n');
    assert.equal(formatAsComment('Counts rows.', 'sql'), '-- Counts rows.\n');
    assert.equal(formatAsComment('x', 'lua'), '-- x\n');
  });
  test('block-only languages get a block comment that the text cannot close early', () => {
    const html = formatAsComment('A list --> <script>alert(1)</script>', 'html');
    assert.equal(html.match(/-->/g)?.length, 1, 'only the real closer remains');
    assert.ok(html.startsWith('<!--\n') && html.endsWith('-->\n'));
    const css = formatAsComment('Sets */ the color', 'css', '\t');
    assert.equal(css.match(/\*\//g)?.length, 1);
    assert.ok(css.startsWith('\t/*\n'));
  });
  test('unknown languages fall back to //, CRLF input is normalised', () => {
    assert.equal(commentSyntax('brainfudge').line, '//');
    assert.equal(formatAsComment('a\r\nb', 'rust'), '// a\n// b\n');
  });
});

describe('bounded context', () => {
  const lines = Array.from({ length: 100 }, (_, i) => `line ${i}`);
  test('grows evenly around the target and stops at the budget', () => {
    const w = contextWindow(lines, 50, 51, 10 * 8);
    assert.ok(w.startLine <= 50 && w.endLine >= 51);
    assert.ok(w.text.length <= 80);
    assert.ok(Math.abs(50 - w.startLine - (w.endLine - 51)) <= 1, 'balanced above and below');
  });
  test('the whole file when it fits; clamps out-of-range lines', () => {
    const w = contextWindow(lines, 0, 500);
    assert.equal(w.startLine, 0);
    assert.equal(w.endLine, 99);
    assert.equal(w.text.split('\n').length, 100);
  });
  test('the enclosing block of a line by indentation', () => {
    const src = ['import x;', '', 'function add(a, b) {', '  const s = a + b;', '  return s;', '}', '', 'add(1, 2);'];
    assert.deepEqual(enclosingBlockByIndent(src, 3), { startLine: 2, endLine: 5 });
    const py = ['def f(x):', '    y = x * 2', '    return y', '', 'print(f(2))'];
    assert.deepEqual(enclosingBlockByIndent(py, 1), { startLine: 0, endLine: 2 });
    assert.deepEqual(enclosingBlockByIndent(src, 7), { startLine: 7, endLine: 7 }, 'top-level lines stand alone');
  });
});

describe('the lines a fix replaces', () => {
  test('a selection of whole lines (ending at column 0 of the next line) does not take that line', () => {
    assert.deepEqual(wholeLineSpan({ start: { line: 2, character: 4 }, end: { line: 5, character: 0 } }), { startLine: 2, endLine: 4 });
    assert.deepEqual(wholeLineSpan({ start: { line: 2, character: 0 }, end: { line: 2, character: 0 } }), { startLine: 2, endLine: 2 });
  });
  test('the indentation fallback keeps the block\'s closing line (no duplicated brace after the fix)', () => {
    const src = ['const a = 1;', 'function f(x) {', '  if (x) {', '    return x;', '  }', '}', '', 'f(a);'];
    // The cursor on the problem at line 3: the block is lines 1..5, closing brace included.
    assert.deepEqual(wholeLineSpan(indentBlockRange(src, 3, 3)), { startLine: 2, endLine: 4 });
    assert.deepEqual(wholeLineSpan(indentBlockRange(src, 2, 2)), { startLine: 1, endLine: 5 });
  });
});

describe('the proposed code of a fix', () => {
  const blocks = [
    { language: 'bash', code: 'npm test', closed: true },
    { language: 'ts', code: 'const x: number = 1;', closed: true },
    { language: 'typescript', code: 'const y = 2;', target: 'src/other.ts', closed: true },
  ];
  test('prefers a block naming the file, then the document language', () => {
    assert.equal(pickFixBlock(blocks, 'typescript', 'src/other.ts')?.code, 'const y = 2;');
    assert.equal(pickFixBlock(blocks, 'typescript', 'src/main.ts')?.code, 'const x: number = 1;');
    assert.equal(pickFixBlock([], 'typescript', 'a.ts'), undefined);
  });
  test('closed blocks win over an unclosed one', () => {
    assert.equal(pickFixBlock([{ language: 'ts', code: 'half', closed: false }, { language: 'ts', code: 'whole', closed: true }], 'typescript', 'a.ts')?.code, 'whole');
  });
  test('an unclosed block is never proposed: it may be half of the code', () => {
    assert.equal(pickFixBlock([{ language: 'ts', code: 'export function f() {\n  return 1;', closed: false }], 'typescript', 'a.ts'), undefined);
  });
  test('a block that names another file is used only for that file, never through the language fallback', () => {
    const other = [{ language: 'typescript', code: 'export const helper = 1;', target: 'src/util.ts', closed: true }];
    assert.equal(pickFixBlock(other, 'typescript', 'src/main.ts'), undefined);
    assert.equal(pickFixBlock(other, 'typescript', 'src/util.ts')?.code, 'export const helper = 1;');
    // A target that is a symbol, not a file, does not exclude the block.
    assert.equal(pickFixBlock([{ language: 'ts', code: 'x', target: 'parsePort', closed: true }], 'typescript', 'src/main.ts')?.code, 'x');
  });
  test('only a complete answer proposes an edit; a cut-off or cancelled one says why', () => {
    const closed = [{ language: 'ts', code: 'const x = 1;', closed: true }];
    assert.deepEqual(fixBlockOf({ status: 'complete', codeBlocks: closed }, 'typescript', 'a.ts'), { block: closed[0] });
    const cut = fixBlockOf({ status: 'length', codeBlocks: closed }, 'typescript', 'a.ts');
    assert.match('none' in cut ? cut.none : '', /cut off by the token limit, so its code may be incomplete\. Continue asks again with twice the token budget/);
    const cancelled = fixBlockOf({ status: 'cancelled', codeBlocks: closed }, 'typescript', 'a.ts');
    assert.match('none' in cancelled ? cancelled.none : '', /the answer was cancelled, so its code may be incomplete/);
    const unclosed = fixBlockOf({ status: 'complete', codeBlocks: [{ language: 'ts', code: 'half', closed: false }] }, 'typescript', 'a.ts');
    assert.match('none' in unclosed ? unclosed.none : '', /never closes/);
  });
  test('re-indents code the model dedented and keeps the trailing newline', () => {
    const original = '    if (a) {\n      b();\n    }\n';
    assert.equal(replacementText('if (a) {\n  c();\n}', original), '    if (a) {\n      c();\n    }\n');
    assert.equal(replacementText('x = 1\n\n', 'x = 2'), 'x = 1');
    assert.equal(replacementText('a\nb', 'a\r\nc\r\n'), 'a\r\nb\r\n');
  });
});

describe('which request Cancel stops', () => {
  test('the one the server runs, not the newest (queued) one', () => {
    const runs = new Runs<string>();
    runs.add('a', 'first');
    runs.add('b', 'second, queued');
    assert.equal(runs.current(), 'first', 'before the server says which, the oldest: it runs first');
    runs.started('a');
    assert.equal(runs.current(), 'first');
    runs.delete('a');
    assert.equal(runs.current(), 'second, queued', 'once the first is gone, the next in line');
    runs.started('b');
    assert.equal(runs.current(), 'second, queued');
    runs.delete('b');
    assert.equal(runs.current(), undefined);
  });
  test('a report about a request that already finished changes nothing', () => {
    const runs = new Runs<string>();
    runs.add('a', 'a');
    runs.add('b', 'b');
    runs.started('gone');
    assert.equal(runs.current(), 'a');
  });
});
