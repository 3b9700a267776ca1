/**
 * Fenced code blocks of a model's answer (CommonMark fences, read leniently: small models indent
 * fences inside lists and sometimes never close the last one).
 */
import type { CodeBlock } from './types';

interface OpenFence {
  char: '`' | '~';
  length: number;
  indent: number;
  language: string;
  target: string | undefined;
  lines: string[];
}

const OPENING = /^([ \t]*)(`{3,}|~{3,})(.*)$/;

/** Indentation width, tabs counting 4. */
function indentWidth(ws: string): number {
  let w = 0;
  for (const c of ws) w += c === '\t' ? 4 - (w % 4) : 1;
  return w;
}

/** Removes up to `n` columns of leading whitespace. */
function dedent(line: string, n: number): string {
  let w = 0;
  let i = 0;
  while (i < line.length && w < n) {
    const c = line[i];
    if (c === ' ') w += 1;
    else if (c === '\t') w += 4 - (w % 4);
    else break;
    i++;
  }
  return line.slice(i);
}

function unquote(s: string): string {
  const m = s.match(/^(["'])(.*)\1$/);
  return m ? m[2]! : s;
}

function looksLikePath(s: string): boolean {
  return /[/\\]/.test(s) || /^[\w.-]+\.[A-Za-z0-9]{1,8}$/.test(s);
}

/** Language and target of an info string: "ts src/a.ts", "ts title=src/a.ts", "ts:src/a.ts", "{.ts}". */
export function parseInfoString(info: string): { language: string; target: string | undefined } {
  const words: string[] = [...(info.trim().match(/(?:[^\s"']+|"[^"]*"|'[^']*')+/g) ?? [])];
  let language = '';
  let target: string | undefined;
  let rest = words;
  const first = words[0];
  if (first !== undefined && !/^\w+=/.test(first)) {
    rest = words.slice(1);
    let lang = first.replace(/^\{\.?/, '').replace(/\}$/, '');
    const colon = lang.indexOf(':');
    if (colon > 0) {
      target = lang.slice(colon + 1) || undefined;
      lang = lang.slice(0, colon);
    }
    language = lang;
  }
  for (const w of rest) {
    const kv = w.match(/^(title|file|filename|path|name)=(.+)$/i);
    if (kv) {
      target = unquote(kv[2]!);
      break;
    }
    if (target === undefined && looksLikePath(unquote(w))) target = unquote(w);
  }
  // "```src/a.ts": a path given where the language goes.
  if (target === undefined && language.includes('/') && looksLikePath(language)) {
    target = language;
    language = language.match(/\.([A-Za-z0-9]+)$/)?.[1] ?? '';
  }
  return { language: language.toLowerCase(), target: target || undefined };
}

/**
 * Fenced code blocks of an answer (``` and ~~~, info string language and optional target like
 * ```ts src/a.ts or title="src/a.ts"); an unclosed final fence yields closed:false.
 */
export function extractCodeBlocks(markdown: string): CodeBlock[] {
  const blocks: CodeBlock[] = [];
  let open: OpenFence | undefined;
  for (const line of markdown.split(/\r?\n/)) {
    if (open) {
      const close = line.match(/^[ \t]*(`{3,}|~{3,})[ \t]*$/);
      if (close && close[1]![0] === open.char && close[1]!.length >= open.length) {
        blocks.push(finish(open, true));
        open = undefined;
      } else {
        open.lines.push(dedent(line, open.indent));
      }
      continue;
    }
    const m = line.match(OPENING);
    if (!m) continue;
    const fence = m[2]!;
    const info = m[3]!;
    // A backtick fence's info string cannot hold backticks (that is inline code, e.g. ```a```).
    if (fence[0] === '`' && info.includes('`')) continue;
    const { language, target } = parseInfoString(info);
    open = {
      char: fence[0] as '`' | '~',
      length: fence.length,
      indent: indentWidth(m[1]!),
      language,
      target,
      lines: [],
    };
  }
  if (open) {
    // An unclosed fence at the end of a stream: drop a trailing partial fence line ("``").
    const last = open.lines[open.lines.length - 1];
    if (last !== undefined && /^[ \t]*[`~]{1,2}$/.test(last) && last.trim()[0] === open.char) open.lines.pop();
    blocks.push(finish(open, false));
  }
  return blocks;
}

function finish(f: OpenFence, closed: boolean): CodeBlock {
  const block: CodeBlock = { language: f.language, code: f.lines.join('\n'), closed };
  if (f.target !== undefined) block.target = f.target;
  return block;
}
