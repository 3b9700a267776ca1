/**
 * A proposed edit as a diff with the file's own line numbers. This file owns the one computation
 * of the hunks (`fileHunks`: the selection's diff, shifted to where the selection starts in the
 * file) and the two things made from them: the unified-diff text of the markdown export
 * (`proposalPatch`) and the rows the Reasoning view draws (`diffRows`). Like the rest of
 * src/protocol it is bundled into both the extension host and the webview.
 */
import { FILE_HEADERS_ONLY, applyPatch, formatPatch, structuredPatch, type StructuredPatchHunk } from 'diff';

/** What a diff needs of a proposal: the selection's text before and after, and where it starts. */
export interface LineEdit {
  original: string;
  proposed: string;
  /** The 1-based line of the file where `original` starts. */
  startLine: number;
}

/** The hunks of `edit` (jsdiff's structured hunks), numbered with the file's lines. */
export function fileHunks(edit: LineEdit, context = 3): StructuredPatchHunk[] {
  const offset = edit.startLine - 1;
  return structuredPatch('a', 'b', edit.original, edit.proposed, '', '', { context }).hunks.map((h) => ({
    ...h,
    oldStart: h.oldStart + offset,
    newStart: h.newStart + offset,
  }));
}

/** The `@@` header of a hunk as the view prints it (see `diffRows`). */
export function hunkHeader(h: StructuredPatchHunk): string {
  return `@@ -${h.oldStart},${h.oldLines} +${h.newStart},${h.newLines} @@`;
}

/**
 * `edit.original` with only the hunks whose indexes are in `chosen` applied (indexes into
 * `fileHunks(edit)`, the hunks the view shows). Choosing every hunk gives `edit.proposed`; none
 * gives `edit.original`.
 */
export function applyHunks(edit: Pick<LineEdit, 'original' | 'proposed'>, chosen: ReadonlySet<number>): string {
  const hunks = structuredPatch('a', 'b', edit.original, edit.proposed, '', '', { context: 3 }).hunks;
  if (hunks.every((_, i) => chosen.has(i))) return edit.proposed;
  const picked = hunks.filter((_, i) => chosen.has(i));
  if (picked.length === 0) return edit.original;
  const out = applyPatch(edit.original, { oldFileName: 'a', newFileName: 'b', oldHeader: '', newHeader: '', hunks: picked });
  if (out === false) throw new Error('the chosen changes do not apply to the original text');
  return out;
}

/** The proposal as a unified diff whose line numbers are the file's. */
export function proposalPatch(p: LineEdit & { file: { label: string } }): string {
  const patch = { oldFileName: `a/${p.file.label}`, newFileName: `b/${p.file.label}`, oldHeader: '', newHeader: '', hunks: fileHunks(p) };
  return formatPatch(patch, FILE_HEADERS_ONLY).trimEnd();
}

export type DiffRow =
  | { kind: 'hunk'; text: string }
  | { kind: 'context' | 'add' | 'del'; oldLine?: number; newLine?: number; text: string };

export interface DiffView {
  rows: DiffRow[];
  added: number;
  removed: number;
}

/**
 * The proposal as the view's rows: a header row a hunk, then one row a line with its old and new
 * line numbers. The header names where the hunk sits in the file (`-2,0` for lines inserted
 * before line 2), not the unified-diff convention of the export (`-1,0`).
 */
export function diffRows(p: LineEdit, context = 3): DiffView {
  const rows: DiffRow[] = [];
  let added = 0;
  let removed = 0;
  for (const hunk of fileHunks(p, context)) {
    rows.push({ kind: 'hunk', text: hunkHeader(hunk) });
    let o = hunk.oldStart;
    let n = hunk.newStart;
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
