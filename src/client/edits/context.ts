/**
 * What of a document goes into a prompt: the target code and a bounded window of the lines
 * around it. Pure: unit-tested under plain Node. (The engine's prompt builder trims further to
 * fit the context window, and reports what it dropped.)
 */

/** Lines of context sent around the target, at most. */
export const MAX_CONTEXT_CHARS = 24_000;

export interface LineWindow {
  /** The text of lines `startLine..endLine`, 0-based inclusive. */
  text: string;
  startLine: number;
  endLine: number;
}

/**
 * A window of `lines` around `[from, to]` (0-based, inclusive) of at most `maxChars`, growing
 * evenly above and below, so the nearest code is kept first.
 */
export function contextWindow(lines: readonly string[], from: number, to: number, maxChars = MAX_CONTEXT_CHARS): LineWindow {
  let start = Math.max(0, Math.min(from, lines.length - 1));
  let end = Math.max(start, Math.min(to, lines.length - 1));
  let size = 0;
  for (let i = start; i <= end; i++) size += lines[i].length + 1;
  let up = true;
  while (start > 0 || end < lines.length - 1) {
    const next = up ? (start > 0 ? start - 1 : -1) : end < lines.length - 1 ? end + 1 : -1;
    up = !up;
    if (next < 0) continue;
    const cost = lines[next].length + 1;
    if (size + cost > maxChars) break;
    size += cost;
    if (next < start) start = next;
    else end = next;
  }
  return { text: lines.slice(start, end + 1).join('\n'), startLine: start, endLine: end };
}

/**
 * The block that encloses `line` when no language symbols are available: from the nearest line
 * above with less indentation that opens a block (`{`, `:` or `(` at its end, or a keyword line),
 * down to the line that closes it at that indentation. Falls back to the line alone.
 */
export function enclosingBlockByIndent(lines: readonly string[], line: number): { startLine: number; endLine: number } {
  const indentOf = (s: string) => (s.trim() === '' ? Infinity : s.length - s.trimStart().length);
  const here = indentOf(lines[line] ?? '');
  let start = -1;
  for (let i = line; i >= 0; i--) {
    const ind = indentOf(lines[i]);
    if (ind < here || (i < line && ind <= here && /[{:(]\s*$/.test(lines[i]))) {
      if (/[{:(]\s*$/.test(lines[i]) || /^\s*(function|def|class|fn|func|pub|async|export|public|private|protected|static)\b/.test(lines[i])) {
        start = i;
        break;
      }
    }
    if (ind === 0 && i < line) break;
  }
  if (start < 0) return { startLine: line, endLine: line };
  const base = indentOf(lines[start]);
  let end = start;
  for (let i = start + 1; i < lines.length; i++) {
    const ind = indentOf(lines[i]);
    if (ind === Infinity) continue;
    if (ind <= base) {
      // A closing line at the header's indentation belongs to the block (`}`, `end`, `)`).
      end = /^\s*[}\])]|^\s*end\b/.test(lines[i]) ? i : end;
      break;
    }
    end = i;
  }
  return { startLine: start, endLine: Math.max(end, line) };
}

/** A range by line and character, 0-based; the end is exclusive, as in VS Code. */
export interface LineRange {
  start: { line: number; character: number };
  end: { line: number; character: number };
}

/**
 * The whole lines a fix replaces for `range`, 0-based and inclusive: a range that ends at column 0
 * of a later line (a selection of whole lines) does not include that line.
 */
export function wholeLineSpan(range: LineRange): { startLine: number; endLine: number } {
  const endLine = range.end.character === 0 && range.end.line > range.start.line ? range.end.line - 1 : range.end.line;
  return { startLine: range.start.line, endLine };
}

/**
 * The range of the indentation block around `from..to` (enclosingBlockByIndent), ending at the end
 * of its last line, so that wholeLineSpan keeps that line (its closing brace).
 */
export function indentBlockRange(lines: readonly string[], from: number, to: number): LineRange {
  const block = enclosingBlockByIndent(lines, from);
  const end = Math.max(block.endLine, to);
  return { start: { line: block.startLine, character: 0 }, end: { line: end, character: (lines[end] ?? '').length } };
}
