/**
 * "Insert as comment": an answer as a comment block in the document's language (the comment
 * syntax comes from src/text/languages.ts). Pure: unit-tested under plain Node.
 */
import { commentSyntax } from '../../text/languages';

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
