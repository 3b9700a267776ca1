/**
 * The rows of R1: Download Model's quick pick, from the catalogue's recommendation: the
 * recommended entry first, then the others by LiveCodeBench score; each with its download size,
 * memory need and score, whether it is downloaded, and what picking it does (download, refuse
 * with the reason, or warn first). Pure (no `vscode` import): unit-tested under plain Node.
 */
import type { DownloadState } from '../install/catalogue';
import { gb, providerName, type EntryFit, type Recommendation } from '../install/recommend';

export type PickVerdict = { kind: 'download' } | { kind: 'refuse'; reason: string } | { kind: 'warn'; reason: string };

export interface DownloadPick {
  entryId: string;
  label: string;
  description: string;
  detail: string;
  verdict: PickVerdict;
  downloaded: boolean;
}

/**
 * What picking an entry does: recommend()'s reasons decide it. Memory that does not fit warns
 * (the user may close other programs); anything else refuses with its reason.
 */
function verdictOf(f: EntryFit): PickVerdict {
  const memory = (r: string) => /\bmemory\b/.test(r);
  const blocking = !f.architectureSupported || !f.provider || f.entry.gated || !f.fitsDisk;
  if (blocking) return { kind: 'refuse', reason: f.reasons.filter((r) => !memory(r)).join(' ') };
  if (!f.fitsMemory || f.fitsVram === false) return { kind: 'warn', reason: f.reasons.filter(memory).join(' ') };
  return { kind: 'download' };
}

/** The quick pick's rows, recommended first. */
export function downloadPicks(r: Recommendation, downloads: ReadonlyMap<string, DownloadState>): DownloadPick[] {
  const rank = (f: EntryFit) => (f === r.recommended ? 0 : f.eligible ? 1 : 2);
  const fits = r.fits
    .map((f, i) => ({ f, i }))
    .sort((a, b) => rank(a.f) - rank(b.f) || b.f.entry.liveCodeBench - a.f.entry.liveCodeBench || a.i - b.i)
    .map(({ f }) => f);
  return fits.map((f) => {
    const e = f.entry;
    const d = downloads.get(e.id);
    const downloaded = d?.status === 'downloaded';
    const verdict = verdictOf(f);
    const approx = e.bytesEstimated ? '~' : '';
    const memory = e.memory.vramBytes !== null ? `${approx}${gb(e.memory.vramBytes)} GPU memory` : `${approx}${gb(e.memory.ramBytes)} memory`;
    const icon = f === r.recommended ? '$(star-full) ' : downloaded ? '$(check) ' : verdict.kind === 'refuse' ? '$(circle-slash) ' : '';
    const detail =
      f === r.recommended
        ? `Recommended: ${r.reason}`
        : downloaded
          ? `Downloaded in ${d!.dir}.`
          : verdict.kind === 'download'
            ? `Runs on ${providerName(f.provider!)}.`
            : `${verdict.kind === 'refuse' ? 'Cannot be used here' : 'Warning'}: ${verdict.reason}`;
    return {
      entryId: e.id,
      label: `${icon}${e.title}`,
      description: `${approx}${gb(e.totalBytes)} · ${memory} · LiveCodeBench ${e.liveCodeBench.toFixed(1)}${downloaded ? ' · downloaded' : d?.status === 'partial' ? ' · partly downloaded' : ''}`,
      detail,
      verdict,
      downloaded,
    };
  });
}
