import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { extractCodeBlocks, parseInfoString } from '../../../src/engine/codeBlocks';

describe('extractCodeBlocks', () => {
  it('finds fenced blocks with their language', () => {
    const md = 'Here is the fix:\n\n```ts\nconst a = 1;\nconst b = 2;\n```\n\nAnd in Python:\n\n```python\nprint("hi")\n```\n';
    assert.deepEqual(extractCodeBlocks(md), [
      { language: 'ts', code: 'const a = 1;\nconst b = 2;', closed: true },
      { language: 'python', code: 'print("hi")', closed: true },
    ]);
  });

  it('reads targets from the info string', () => {
    const md = [
      '```ts src/a.ts',
      'a',
      '```',
      '```typescript title="src/b.ts"',
      'b',
      '```',
      "```rust file='src/main.rs'",
      'c',
      '```',
      '```py:tools/run.py',
      'd',
      '```',
      '```src/e.go',
      'e',
      '```',
    ].join('\n');
    assert.deepEqual(
      extractCodeBlocks(md).map((b) => [b.language, b.target, b.code]),
      [
        ['ts', 'src/a.ts', 'a'],
        ['typescript', 'src/b.ts', 'b'],
        ['rust', 'src/main.rs', 'c'],
        ['py', 'tools/run.py', 'd'],
        ['go', 'src/e.go', 'e'],
      ],
    );
    assert.equal(extractCodeBlocks('```js\nx\n```')[0]!.target, undefined);
  });

  it('yields closed:false for an unclosed final fence', () => {
    assert.deepEqual(extractCodeBlocks('Fix:\n```js\nlet x = 1;\nlet y'), [
      { language: 'js', code: 'let x = 1;\nlet y', closed: false },
    ]);
    // A closing fence still arriving in the stream is not code.
    assert.deepEqual(extractCodeBlocks('```js\nlet x = 1;\n``'), [{ language: 'js', code: 'let x = 1;', closed: false }]);
    assert.deepEqual(extractCodeBlocks('```\n'), [{ language: '', code: '', closed: false }]);
  });

  it('keeps inner ``` fences inside a 4-backtick block', () => {
    const md = '````markdown\n# Title\n```js\nconsole.log(1);\n```\n````\nafter';
    assert.deepEqual(extractCodeBlocks(md), [
      { language: 'markdown', code: '# Title\n```js\nconsole.log(1);\n```', closed: true },
    ]);
  });

  it('closes only on the same character with at least the same length', () => {
    const md = '~~~sh\necho ```\n```\n~~~~\n```\nnext\n```';
    assert.deepEqual(extractCodeBlocks(md), [
      { language: 'sh', code: 'echo ```\n```', closed: true },
      { language: '', code: 'next', closed: true },
    ]);
  });

  it('handles ~~~ fences and a closing fence with trailing spaces', () => {
    assert.deepEqual(extractCodeBlocks('~~~python\nx = 1\n~~~   \n'), [{ language: 'python', code: 'x = 1', closed: true }]);
  });

  it('removes the indentation of an indented fence from its lines', () => {
    const md = '1. Change this:\n\n   ```ts\n   if (a) {\n     b();\n   }\n   ```\n';
    assert.deepEqual(extractCodeBlocks(md), [{ language: 'ts', code: 'if (a) {\n  b();\n}', closed: true }]);
    // Lines indented less than the fence lose only what they have.
    assert.deepEqual(extractCodeBlocks('    ```c\n  x;\n        y;\n    ```'), [{ language: 'c', code: 'x;\n    y;', closed: true }]);
  });

  it('keeps blank lines, trailing spaces and CRLF-free code', () => {
    const md = '```js\r\nconst a = 1;  \r\n\r\n\r\nconst b = 2;\r\n```\r\n';
    assert.deepEqual(extractCodeBlocks(md), [{ language: 'js', code: 'const a = 1;  \n\n\nconst b = 2;', closed: true }]);
  });

  it('ignores inline backticks and text without fences', () => {
    assert.deepEqual(extractCodeBlocks('Use ```inline``` code or `x`.\nNo blocks here.'), []);
    assert.deepEqual(extractCodeBlocks(''), []);
    assert.deepEqual(extractCodeBlocks('``not a fence``\n``\n'), []);
  });

  it('parses info strings', () => {
    assert.deepEqual(parseInfoString(''), { language: '', target: undefined });
    assert.deepEqual(parseInfoString(' TypeScript '), { language: 'typescript', target: undefined });
    assert.deepEqual(parseInfoString('{.python}'), { language: 'python', target: undefined });
    assert.deepEqual(parseInfoString('js {1,3} path=lib/x.js'), { language: 'js', target: 'lib/x.js' });
    assert.deepEqual(parseInfoString('title="a b.ts"'), { language: '', target: 'a b.ts' });
    assert.deepEqual(parseInfoString('diff main.c'), { language: 'diff', target: 'main.c' });
  });
});
