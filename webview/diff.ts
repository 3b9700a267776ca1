/** A proposal as unified-diff rows with the file's own line numbers. */
import { structuredPatch } from 'diff';
import type { Proposal } from '../src/protocol/webview';

export type DiffRow =
  | { kind: 'hunk'; text: string }
  | { kind: 'context' | 'add' | 'del'; oldLine?: number; newLine?: number; text: string };

export interface DiffView {
  rows: DiffRow[];
  added: number;
  removed: number;
}

export function diffRows(p: Proposal, context = 3): DiffView {
  const patch = structuredPatch('a', 'b', p.original, p.proposed, '', '', { context });
  const offset = p.startLine - 1;
  const rows: DiffRow[] = [];
  let added = 0;
  let removed = 0;
  for (const hunk of patch.hunks) {
    const oldStart = hunk.oldStart + offset;
    const newStart = hunk.newStart + offset;
    rows.push({ kind: 'hunk', text: `@@ -${oldStart},${hunk.oldLines} +${newStart},${hunk.newLines} @@` });
    let o = hunk.oldLines === 0 ? oldStart + 1 : oldStart;
    let n = hunk.newLines === 0 ? newStart + 1 : newStart;
    for (const line of hunk.lines) {
      const sign = line[0];
      const text = line.slice(1);
      if (sign === '\\') continue; // "\ No newline at end of file"
      if (sign === '+') {
        rows.push({ kind: 'add', newLine: n++, text });
        added++;
      } else if (sign === '-') {
        rows.push({ kind: 'del', oldLine: o++, text });
        removed++;
      } else {
        rows.push({ kind: 'context', oldLine: o++, newLine: n++, text });
      }
    }
  }
  return { rows, added, removed };
}
