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

/**
 * The code block of `blocks` that fixes `original`: one that names this file, else one in the
 * document's language, else the first; closed blocks first. Undefined when there is none.
 */
export function pickFixBlock(blocks: readonly CodeBlock[], languageId: string, filePath: string): CodeBlock | undefined {
  const base = filePath.split(/[\\/]/).pop() ?? filePath;
  const ranked = [...blocks].sort((a, b) => Number(b.closed) - Number(a.closed));
  return (
    ranked.find((b) => b.target !== undefined && (b.target === filePath || b.target.endsWith(`/${base}`) || b.target === base)) ??
    ranked.find((b) => fenceMatches(b.language, languageId)) ??
    ranked.find((b) => b.language === '' || b.language === 'text') ??
    ranked[0]
  );
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
