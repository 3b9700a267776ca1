/**
 * Per-hunk review: accepting or rejecting one hunk of a proposal. Pure: unit-tested under plain
 * Node. The hunks are those the view and the diff editor show (`fileHunks` of src/protocol/diff.ts).
 */
import { applyHunks, fileHunks, hunkHeader, type LineEdit } from '../../protocol/diff';

export interface HunkChoice {
  /** Index into `fileHunks(edit)`. */
  hunk: number;
  /** The header the user saw: the choice is refused when the proposal changed since. */
  header: string;
}

/**
 * Accepting hunk `hunk` of `edit`: the text that replaces `edit.original` in the document now
 * (`apply`), and what stays proposed (`rest`, undefined when nothing does).
 */
export function acceptHunk(edit: LineEdit, choice: HunkChoice): { apply: string; rest?: LineEdit } {
  checkChoice(edit, choice);
  const apply = applyHunks(edit, new Set([choice.hunk]));
  return { apply, rest: apply === edit.proposed ? undefined : { ...edit, original: apply } };
}

/** Rejecting hunk `hunk` of `edit`: what stays proposed, undefined when nothing does. */
export function rejectHunk(edit: LineEdit, choice: HunkChoice): LineEdit | undefined {
  const count = checkChoice(edit, choice);
  const keep = new Set(Array.from({ length: count }, (_, i) => i).filter((i) => i !== choice.hunk));
  const proposed = applyHunks(edit, keep);
  return proposed === edit.original ? undefined : { ...edit, proposed };
}

function checkChoice(edit: LineEdit, choice: HunkChoice): number {
  const hunks = fileHunks(edit);
  const h = hunks[choice.hunk];
  if (!h || hunkHeader(h) !== choice.header) {
    throw new Error('The proposal changed since this change was shown (another change was accepted or rejected). Nothing was applied; look at the proposal again.');
  }
  return hunks.length;
}
