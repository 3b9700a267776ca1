/** The language table every layer shares (src/text/languages.ts). */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { commentLine, commentSyntax, fenceMatches, fenceTag, hljsName, languageOfPath } from '../../../src/text/languages';

describe('the language table', () => {
  it('knows a file by its extension', () => {
    assert.equal(languageOfPath('src/a.ts'), 'typescript');
    assert.equal(languageOfPath('C:\\w\\App.TSX'), 'typescriptreact');
    assert.equal(languageOfPath('x/config.yml'), 'yaml');
    assert.equal(languageOfPath('Makefile'), undefined);
    assert.equal(languageOfPath('a.constructor'), undefined, 'no prototype keys');
  });

  it('writes fence tags a model knows, and recognises the ones it writes', () => {
    assert.equal(fenceTag('typescriptreact'), 'tsx');
    assert.equal(fenceTag('shellscript'), 'bash');
    assert.equal(fenceTag('plaintext'), '');
    assert.equal(fenceTag('python'), 'python');
    assert.equal(fenceTag('brainfudge'), 'brainfudge');
    assert.ok(fenceMatches('TS', 'typescript') && fenceMatches('tsx', 'typescript') && fenceMatches('typescript', 'typescript'));
    assert.ok(fenceMatches('zsh', 'shellscript') && fenceMatches('bash', 'shellscript') && fenceMatches('c#', 'csharp'));
    assert.ok(fenceMatches('objc', 'objective-c'), 'the tag the prompt writes matches too');
    assert.ok(!fenceMatches('python', 'typescript') && !fenceMatches('', 'plaintext') && !fenceMatches('ts', 'constructor'));
  });

  it('comments in each language: the prompt markers and "Insert as comment" agree', () => {
    assert.equal(commentLine('typescript', 'x'), '// x');
    assert.equal(commentLine('python', 'x'), '# x');
    assert.equal(commentLine('bash', 'x'), '# x', 'a fence tag finds its language');
    assert.equal(commentLine('gdscript', 'x'), '# x');
    assert.equal(commentLine('lua', 'x'), '-- x');
    assert.equal(commentLine('xsl', 'x'), '<!-- x -->');
    assert.equal(commentLine('css', 'x'), '/* x */');
    assert.equal(commentLine('latex', 'x'), '% x');
    assert.equal(commentLine('ini', 'x'), '; x');
    assert.equal(commentLine('ocaml', 'x'), '(* x *)');
    assert.equal(commentLine('brainfudge', 'x'), '// x');
    assert.deepEqual(commentSyntax('haskell'), { line: '--', block: ['{-', '-}'] });
    assert.deepEqual(commentSyntax('toString'), { line: '//' });
  });

  it('names highlight.js languages, passing unknown names through', () => {
    assert.equal(hljsName('typescriptreact'), 'typescript');
    assert.equal(hljsName('HTML'), 'xml');
    assert.equal(hljsName('shellscript'), 'bash');
    assert.equal(hljsName('ts'), 'ts', "highlight.js resolves its own aliases (the class stays language-ts)");
    assert.equal(hljsName('Rust'), 'rust');
  });
});
