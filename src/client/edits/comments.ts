/** Comment syntax per language, for "Insert as comment". Pure: unit-tested under plain Node. */

interface CommentSyntax {
  line?: string;
  block?: [open: string, close: string];
}

const SLASH: CommentSyntax = { line: '//', block: ['/*', '*/'] };
const HASH: CommentSyntax = { line: '#' };
const DASH: CommentSyntax = { line: '--' };

const SYNTAX: Record<string, CommentSyntax> = {
  typescript: SLASH, typescriptreact: SLASH, javascript: SLASH, javascriptreact: SLASH, jsonc: SLASH,
  c: SLASH, cpp: SLASH, csharp: SLASH, java: SLASH, kotlin: SLASH, scala: SLASH, go: SLASH, rust: SLASH,
  swift: SLASH, dart: SLASH, php: SLASH, 'objective-c': SLASH, 'objective-cpp': SLASH, groovy: SLASH, zig: { line: '//' },
  python: HASH, shellscript: HASH, ruby: HASH, perl: HASH, r: HASH, yaml: HASH, toml: HASH, dockerfile: HASH,
  makefile: HASH, powershell: { line: '#', block: ['<#', '#>'] }, coffeescript: HASH, julia: HASH, elixir: HASH, nim: HASH,
  sql: DASH, lua: { line: '--', block: ['--[[', ']]'] }, haskell: { line: '--', block: ['{-', '-}'] }, elm: DASH,
  ada: DASH, vhdl: DASH,
  html: { block: ['<!--', '-->'] }, xml: { block: ['<!--', '-->'] }, markdown: { block: ['<!--', '-->'] },
  vue: { block: ['<!--', '-->'] }, svelte: { block: ['<!--', '-->'] },
  css: { block: ['/*', '*/'] }, scss: SLASH, less: SLASH,
  latex: { line: '%' }, tex: { line: '%' }, matlab: { line: '%' }, erlang: { line: '%' },
  clojure: { line: ';;' }, lisp: { line: ';;' }, scheme: { line: ';;' }, ini: { line: ';' },
  bat: { line: 'REM' }, vb: { line: "'" }, fsharp: { line: '//', block: ['(*', '*)'] }, ocaml: { block: ['(*', '*)'] },
};

export function commentSyntax(languageId: string): CommentSyntax {
  return SYNTAX[languageId] ?? HASH_OR_SLASH_FALLBACK;
}
/** Unknown languages: `//` is the most common line comment. */
const HASH_OR_SLASH_FALLBACK: CommentSyntax = { line: '//' };

/**
 * `text` as a comment in `languageId`, each line prefixed with `indent`, ending in a newline,
 * ready to insert above a line indented by `indent`. Block-comment closers inside the text are
 * defused so the comment cannot end early.
 */
export function formatAsComment(text: string, languageId: string, indent = ''): string {
  const lines = text.replace(/\r\n?/g, '\n').trim().split('\n');
  const syntax = commentSyntax(languageId);
  if (syntax.line) {
    const p = syntax.line;
    return lines.map((l) => (l.trim() === '' ? `${indent}${p}` : `${indent}${p} ${l.trimEnd()}`)).join('\n') + '\n';
  }
  const [open, close] = syntax.block!;
  const safe = lines.map((l) => l.split(close).join(close.split('').join(' ')).trimEnd());
  return [`${indent}${open}`, ...safe.map((l) => (l === '' ? indent.trimEnd() : `${indent}  ${l}`)), `${indent}${close}`].join('\n') + '\n';
}
