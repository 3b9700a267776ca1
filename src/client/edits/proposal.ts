/**
 * Turning a fix's answer into the text of a proposed edit. Pure: unit-tested under plain Node.
 */
import type { CodeBlock } from '../../protocol/server';
import { fenceMatches } from '../../text/languages';

function minIndent(text: string): string {
  let best: string | undefined;
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    const ind = /^[ \t]*/.exec(line)![0];
    if (best === undefined || ind.length < best.length) best = ind;
  }
  return best ?? '';
}

/** A block's target that names a file (a path, or a name with an extension) rather than a symbol. */
function namesFile(target: string): boolean {
  return /[\\/]/.test(target) || /\.[A-Za-z0-9]+$/.test(target);
}

/**
 * The code block of `blocks` that fixes the document at `filePath`: one that names this file, else
 * one in the document's language, else one without a language. Only closed blocks count (an
 * unclosed one is a cut-off answer: replacing a function with half of one loses code), and a block
 * that names another file is never used here. Undefined when there is none.
 */
export function pickFixBlock(blocks: readonly CodeBlock[], languageId: string, filePath: string): CodeBlock | undefined {
  const base = filePath.split(/[\\/]/).pop() ?? filePath;
  const isThisFile = (t: string) => t === filePath || t.endsWith(`/${base}`) || t === base;
  const usable = blocks.filter((b) => b.closed && !(b.target !== undefined && namesFile(b.target) && !isThisFile(b.target)));
  return (
    usable.find((b) => b.target !== undefined && isThisFile(b.target)) ??
    usable.find((b) => fenceMatches(b.language, languageId)) ??
    usable.find((b) => b.language === '' || b.language === 'text')
  );
}

/**
 * The block a fix answer proposes for the document, or why it proposes none: only a complete
 * answer does (a cut-off or cancelled one may stop inside its code).
 */
export function fixBlockOf(
  result: { status: string; codeBlocks: readonly CodeBlock[] },
  languageId: string,
  filePath: string,
): { block: CodeBlock } | { none: string } {
  if (result.status === 'length') {
    return { none: 'the answer was cut off by the token limit, so its code may be incomplete. Continue asks again with twice the token budget (r1.generation.maxNewTokens sets it).' };
  }
  if (result.status !== 'complete') return { none: `the answer was ${result.status === 'cancelled' ? 'cancelled' : 'not completed'}, so its code may be incomplete.` };
  const block = pickFixBlock(result.codeBlocks, languageId, filePath);
  if (block) return { block };
  const unclosed = result.codeBlocks.some((b) => !b.closed);
  return {
    none: unclosed
      ? 'the answer\'s code block never closes, so it may be incomplete.'
      : `the answer holds no complete code block for ${filePath}.`,
  };
}

/**
 * The replacement text for `original`: the block's code re-indented to the original's base
 * indentation when the model dropped it, and with the original's trailing newline kept.
 */
export function replacementText(code: string, original: string): string {
  let text = code.replace(/\r\n?/g, '\n');
  const eol = original.includes('\r\n') ? '\r\n' : '\n';
  const base = minIndent(original);
  if (base !== '' && minIndent(text) === '') {
    text = text
      .split('\n')
      .map((l) => (l.trim() === '' ? l : base + l))
      .join('\n');
  }
  text = text.replace(/\n+$/, '');
  if (/\r?\n$/.test(original)) text += '\n';
  return eol === '\n' ? text : text.replace(/\n/g, '\r\n');
}
