/**
 * Where a proposed edit applies. A proposal is bound to the document version it was computed
 * from; when the document changed since, the edit re-anchors only when the original text is still
 * found exactly once, and is refused otherwise. Pure: no `vscode` import, so it is unit-tested
 * under plain Node.
 */

export interface ProposalAnchor {
  /** Document version the proposal was computed from. */
  version: number;
  /** Offset of `original` in that version. */
  offset: number;
  original: string;
}

export type AnchorResult =
  | { kind: 'unchanged'; offset: number }
  | { kind: 'moved'; offset: number }
  | { kind: 'refused'; reason: string };

function occurrences(text: string, needle: string, limit: number): number[] {
  const found: number[] = [];
  if (needle === '') return found;
  for (let i = text.indexOf(needle); i >= 0 && found.length < limit; i = text.indexOf(needle, i + 1)) found.push(i);
  return found;
}

/**
 * Finds where `anchor.original` is in the document now (`version`, `text`). `what` names that
 * text in the refusals ("the code this proposal replaces").
 */
export function reanchor(anchor: ProposalAnchor, version: number, text: string, what = 'code this proposal replaces'): AnchorResult {
  const inPlace = text.startsWith(anchor.original, anchor.offset);
  if (version === anchor.version && inPlace) return { kind: 'unchanged', offset: anchor.offset };
  if (anchor.original.trim() === '') {
    // An empty or blank range cannot be found again by its text.
    return inPlace && version === anchor.version
      ? { kind: 'unchanged', offset: anchor.offset }
      : { kind: 'refused', reason: 'The document changed and the proposal targets an empty range, so it cannot be placed again. Run the command again.' };
  }
  const hits = occurrences(text, anchor.original, 2);
  if (hits.length === 1) return { kind: 'moved', offset: hits[0] };
  if (hits.length === 0) {
    return { kind: 'refused', reason: `The ${what} was changed since it was computed. Nothing was applied; run the command again.` };
  }
  return {
    kind: 'refused',
    reason: `The document changed and the ${what} now appears more than once, so its place is ambiguous. Nothing was applied; run the command again.`,
  };
}
