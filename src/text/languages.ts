/**
 * The one table of the programming languages R1 Coder knows, an entry per VS Code language id:
 * the file extensions that open in it, the tag the prompt writes on its code fences, the other tags
 * a model may write on a fence of it, its comment syntax, and its highlight.js name. The engine's
 * prompt (fences, cut markers), the client (which fenced block fixes a document, "Insert as
 * comment") and the Reasoning view (highlighting) ask it through the small functions below. This
 * file imports nothing: it is bundled into the engine, the extension and the webview.
 */

/** How a language writes a comment: a line comment, a block comment, or both. */
export interface CommentSyntax {
  line?: string;
  block?: readonly [open: string, close: string];
}

interface Language {
  /** File extensions, lowercase and without the dot. */
  ext?: readonly string[];
  /** The tag the prompt writes on a fence of this language: the id when absent, none when ''. */
  fence?: string;
  /** Other tags a model may write on a fence of this language (lowercase). */
  aliases?: readonly string[];
  comment?: CommentSyntax;
  /** The highlight.js name, when it is not the id. */
  hljs?: string;
}

const SLASH: CommentSyntax = { line: '//', block: ['/*', '*/'] };
const HASH: CommentSyntax = { line: '#' };
const DASH: CommentSyntax = { line: '--' };
const MARKUP: CommentSyntax = { block: ['<!--', '-->'] };
const PERCENT: CommentSyntax = { line: '%' };
const LISP: CommentSyntax = { line: ';;' };
const ML: CommentSyntax = { block: ['(*', '*)'] };

const LANGUAGES: Readonly<Record<string, Language>> = {
  typescript: { ext: ['ts', 'mts', 'cts'], aliases: ['ts', 'tsx'], comment: SLASH },
  typescriptreact: { ext: ['tsx'], fence: 'tsx', aliases: ['typescript', 'ts'], comment: SLASH, hljs: 'typescript' },
  javascript: { ext: ['js', 'mjs', 'cjs'], aliases: ['js', 'jsx', 'node'], comment: SLASH },
  javascriptreact: { ext: ['jsx'], fence: 'jsx', aliases: ['javascript', 'js'], comment: SLASH, hljs: 'javascript' },
  json: { ext: ['json'] },
  jsonc: { comment: SLASH, hljs: 'json' },
  c: { ext: ['c', 'h'], comment: SLASH },
  cpp: { ext: ['cc', 'cpp', 'hpp'], aliases: ['c++', 'cc', 'cxx'], comment: SLASH },
  'objective-c': { fence: 'objc', comment: SLASH, hljs: 'c' },
  'objective-cpp': { fence: 'objcpp', comment: SLASH },
  csharp: { ext: ['cs'], aliases: ['cs', 'c#'], comment: SLASH },
  java: { ext: ['java'], comment: SLASH },
  kotlin: { ext: ['kt'], comment: SLASH },
  scala: { comment: SLASH },
  groovy: { comment: SLASH },
  dart: { comment: SLASH },
  go: { ext: ['go'], aliases: ['golang'], comment: SLASH },
  rust: { ext: ['rs'], aliases: ['rs'], comment: SLASH },
  swift: { ext: ['swift'], comment: SLASH },
  php: { ext: ['php'], comment: SLASH },
  zig: { comment: { line: '//' } },
  fsharp: { comment: { line: '//', block: ['(*', '*)'] } },
  ocaml: { comment: ML },
  python: { ext: ['py'], aliases: ['py', 'python3'], comment: HASH },
  shellscript: { ext: ['sh', 'bash'], fence: 'bash', aliases: ['sh', 'shell', 'zsh'], comment: HASH, hljs: 'bash' },
  powershell: { comment: { line: '#', block: ['<#', '#>'] } },
  ruby: { ext: ['rb'], comment: HASH },
  perl: { comment: HASH },
  r: { comment: HASH },
  julia: { comment: HASH },
  elixir: { comment: HASH },
  nim: { comment: HASH },
  crystal: { comment: HASH },
  coffeescript: { comment: HASH },
  gdscript: { comment: HASH },
  yaml: { ext: ['yaml', 'yml'], comment: HASH },
  toml: { ext: ['toml'], comment: HASH },
  dockerfile: { comment: HASH },
  makefile: { comment: HASH },
  // VS Code's own ini support comments with ";".
  ini: { comment: { line: ';' } },
  sql: { ext: ['sql'], comment: DASH },
  lua: { ext: ['lua'], comment: { line: '--', block: ['--[[', ']]'] } },
  haskell: { comment: { line: '--', block: ['{-', '-}'] } },
  elm: { comment: DASH },
  ada: { comment: DASH },
  vhdl: { comment: DASH },
  html: { ext: ['html'], comment: MARKUP, hljs: 'xml' },
  xml: { comment: MARKUP },
  xsl: { comment: MARKUP },
  markdown: { ext: ['md'], comment: MARKUP },
  vue: { comment: MARKUP },
  svelte: { comment: MARKUP },
  css: { ext: ['css'], comment: { block: ['/*', '*/'] } },
  scss: { comment: SLASH },
  less: { comment: SLASH },
  latex: { comment: PERCENT },
  tex: { comment: PERCENT },
  matlab: { comment: PERCENT },
  erlang: { comment: PERCENT },
  clojure: { comment: LISP },
  lisp: { comment: LISP },
  scheme: { comment: LISP },
  bat: { comment: { line: 'REM' } },
  vb: { comment: { line: "'" } },
  plaintext: { fence: '' },
};

const BY_ID = new Map(Object.entries(LANGUAGES));
const BY_EXTENSION = new Map(Object.entries(LANGUAGES).flatMap(([id, l]) => (l.ext ?? []).map((e) => [e, id] as const)));

/** The entry of a language id, or else of the first language whose fence tag or alias `idOrTag` is. */
function entryOf(idOrTag: string): Language | undefined {
  const entry = BY_ID.get(idOrTag);
  if (entry) return entry;
  for (const l of BY_ID.values()) if (l.fence === idOrTag || l.aliases?.includes(idOrTag)) return l;
  return undefined;
}

/** The language id of a file by its extension (`src/a.ts` → `typescript`); undefined when unknown. */
export function languageOfPath(path: string): string | undefined {
  const ext = /\.([A-Za-z0-9]+)$/.exec(path)?.[1]?.toLowerCase();
  return ext === undefined ? undefined : BY_EXTENSION.get(ext);
}

/** The tag to write on a fence of `languageId` ('' for none); an unknown id is its own tag. */
export function fenceTag(languageId: string): string {
  return BY_ID.get(languageId)?.fence ?? languageId;
}

/** Whether a fence's tag (as the model wrote it) names `languageId`. */
export function fenceMatches(tag: string, languageId: string): boolean {
  const t = tag.toLowerCase();
  if (t === languageId) return true;
  const fence = fenceTag(languageId);
  return (fence !== '' && t === fence) || (BY_ID.get(languageId)?.aliases?.includes(t) ?? false);
}

/** Unknown languages: `//` is the most common line comment. */
const FALLBACK_COMMENT: CommentSyntax = { line: '//' };

/** The comment syntax of a language id (or of a fence tag such as `bash`); `//` when unknown. */
export function commentSyntax(languageId: string): CommentSyntax {
  return entryOf(languageId)?.comment ?? FALLBACK_COMMENT;
}

/** One line of text as a comment in the language: its line comment, else its block comment. */
export function commentLine(languageId: string, text: string): string {
  const syntax = commentSyntax(languageId);
  if (syntax.line) return `${syntax.line} ${text}`;
  const [open, close] = syntax.block!;
  return `${open} ${text} ${close}`;
}

/**
 * The highlight.js name for a language id or a fence tag (lowercased; VS Code ids that
 * highlight.js names differently are mapped, anything else passes through for highlight.js to
 * resolve, its own aliases included).
 */
export function hljsName(idOrTag: string): string {
  const lower = idOrTag.toLowerCase();
  return BY_ID.get(lower)?.hljs ?? lower;
}
