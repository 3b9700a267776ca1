/**
 * Which catalogue entry a machine should use, and why: a pure function of the catalogue and a
 * few facts about the machine, so every rule is tested with made-up machines.
 *
 * The rules:
 * 1. An entry is a candidate when the engine runs its architecture, one of its providers is
 *    available here, its repository is not gated, it fits the free disk (its download plus, for a
 *    CPU entry, the prepared copy the engine writes; nothing for an entry already downloaded), it
 *    fits the free memory, and (GPU entries) its VRAM need fits the free VRAM when that is known.
 * 2. When a GPU provider is available and some GPU entry is a candidate, the pick is among the GPU
 *    candidates: a model on the GPU runs tens of times faster than on the CPU.
 * 3. Otherwise among the CPU candidates. Within the group the best LiveCodeBench score wins, and
 *    the catalogue's order breaks ties.
 */
import type { ExecutionProvider } from '../engine/types';
import { type Catalogue, type CatalogueEntry, diskNeeds } from './catalogue';

/** What the recommendation needs to know about the machine. */
export interface MachineFacts {
  freeRamBytes: number;
  totalRamBytes: number;
  /** Free space where the models are stored. */
  freeDiskBytes: number;
  /** GPU providers available here, in the order the engine tries them (no `cpu`: it is always there). */
  gpuProviders: readonly ExecutionProvider[];
  /** Free memory of the GPU, when known. */
  vramBytes?: number;
  /** Architectures the engine runs (config.json's model_type), e.g. ['qwen2']. */
  supportedArchitectures: readonly string[];
  /** Entries already downloaded: they need no disk for their download. */
  downloadedIds?: readonly string[];
}

export interface EntryFit {
  entry: CatalogueEntry;
  /** The provider it would run on here, or null when none of its providers is available. */
  provider: ExecutionProvider | null;
  architectureSupported: boolean;
  downloaded: boolean;
  /** Disk it still needs: download (unless downloaded) plus the CPU-prepared copy. */
  diskNeededBytes: number;
  fitsDisk: boolean;
  fitsMemory: boolean;
  /** GPU entries: whether the VRAM need fits; null for CPU entries and when the VRAM is not known. */
  fitsVram: boolean | null;
  /** Passes every rule: a candidate for the recommendation. */
  eligible: boolean;
  /** Why it is not a candidate, one sentence each (empty when eligible). */
  reasons: string[];
  /** Facts worth saying that do not exclude it (e.g. the VRAM could not be measured). */
  notes: string[];
}

export interface Recommendation {
  /** The entry to use, or null when none fits. */
  recommended: EntryFit | null;
  /** Why, in a sentence or two. */
  reason: string;
  /** Every entry, in catalogue order. */
  fits: EntryFit[];
}

/** Margin kept free on the disk, as the download's own check keeps (hub.ts). */
export const DISK_MARGIN_BYTES = 64 * 1024 * 1024;

const PROVIDER_NAMES: Record<ExecutionProvider, string> = { cpu: 'CPU', cuda: 'CUDA', dml: 'DirectML', coreml: 'CoreML', webgpu: 'WebGPU' };

export function providerName(p: ExecutionProvider): string {
  return PROVIDER_NAMES[p];
}

/** Decimal gigabytes with one decimal, as the hub shows sizes. */
export function gb(n: number): string {
  return `${(n / 1e9).toFixed(1)} GB`;
}

function list(items: string[]): string {
  if (items.length <= 1) return items.join('');
  return `${items.slice(0, -1).join(', ')} and ${items[items.length - 1]}`;
}

/** How one entry fits the machine. */
export function fitEntry(entry: CatalogueEntry, m: MachineFacts): EntryFit {
  const reasons: string[] = [];
  const notes: string[] = [];
  const architectureSupported = m.supportedArchitectures.includes(entry.architecture);
  if (!architectureSupported) {
    reasons.push(`R1 Coder's engine does not run the ${entry.architecture} architecture yet (it runs ${list([...m.supportedArchitectures])}).`);
  }
  const available: ExecutionProvider[] = [...m.gpuProviders, 'cpu'];
  const provider = available.find((p) => entry.providers.includes(p)) ?? null;
  if (!provider) {
    reasons.push(`It is built for ${list(entry.providers.map(providerName))}, which this machine does not have (it has ${list(available.map(providerName))}).`);
  }
  if (entry.gated) reasons.push(`${entry.repository} is gated: downloading it needs a hub access token.`);

  const downloaded = m.downloadedIds?.includes(entry.id) ?? false;
  const disk = diskNeeds(entry);
  const diskNeededBytes = (downloaded ? 0 : disk.downloadBytes) + disk.preparedCopyBytes;
  const fitsDisk = diskNeededBytes + DISK_MARGIN_BYTES <= m.freeDiskBytes;
  if (!fitsDisk) {
    const parts = [downloaded ? undefined : `${gb(disk.downloadBytes)} to download`, disk.preparedCopyBytes > 0 ? `${gb(disk.preparedCopyBytes)} for the CPU-prepared copy` : undefined].filter(
      (s): s is string => s !== undefined,
    );
    reasons.push(`It needs ${gb(diskNeededBytes)} of disk (${list(parts)}), but only ${gb(m.freeDiskBytes)} is free.`);
  }

  const ram = entry.memory.ramBytes;
  const fitsMemory = ram <= m.freeRamBytes;
  if (!fitsMemory) {
    const whole = ram <= m.totalRamBytes ? `; it would fit in this machine's ${gb(m.totalRamBytes)} with other programs closed` : `, more than this machine's ${gb(m.totalRamBytes)}`;
    reasons.push(`It needs ${gb(ram)} of memory for a context of ${entry.memory.contextTokens} tokens, but only ${gb(m.freeRamBytes)} is free${whole}.`);
  }

  let fitsVram: boolean | null = null;
  const vram = entry.memory.vramBytes;
  if (entry.gpu && vram !== null) {
    if (m.vramBytes === undefined) {
      notes.push(`It needs ${gb(vram)} of GPU memory; the GPU's free memory could not be measured.`);
    } else {
      fitsVram = vram <= m.vramBytes;
      if (!fitsVram) reasons.push(`It needs ${gb(vram)} of GPU memory, but only ${gb(m.vramBytes)} is free.`);
    }
  }
  if (entry.bytesEstimated) notes.push('Its sizes are estimates until the hub lists the files.');
  return { entry, provider, architectureSupported, downloaded, diskNeededBytes, fitsDisk, fitsMemory, fitsVram, eligible: reasons.length === 0, reasons, notes };
}

function best(fits: EntryFit[]): EntryFit | undefined {
  // Stable: the catalogue's order breaks ties.
  return fits.reduce<EntryFit | undefined>((b, f) => (!b || f.entry.liveCodeBench > b.entry.liveCodeBench ? f : b), undefined);
}

/** "It needs …" → "it needs …", to follow a colon; other sentences keep their capital. */
function lowerFirst(s: string): string {
  return s.replace(/^It(s?) /, 'it$1 ');
}

function isEntryList(c: Catalogue | readonly CatalogueEntry[]): c is readonly CatalogueEntry[] {
  return Array.isArray(c);
}

/** The entry this machine should use, why, and how every entry fits (see the rules above). */
export function recommend(catalogue: Catalogue | readonly CatalogueEntry[], machine: MachineFacts): Recommendation {
  const entries: readonly CatalogueEntry[] = isEntryList(catalogue) ? catalogue : catalogue.entries;
  const fits = entries.map((e) => fitEntry(e, machine));
  const eligible = fits.filter((f) => f.eligible);
  const onGpu = eligible.filter((f) => f.provider !== 'cpu');
  const pick = best(onGpu.length > 0 ? onGpu : eligible);
  if (!pick) {
    // Say why for the smallest entry that could run here at all (else the first entry).
    const runnable = fits.filter((f) => f.architectureSupported && f.provider !== null && !f.entry.gated);
    const shown = runnable.reduce<EntryFit | undefined>((s, f) => (!s || f.entry.memory.ramBytes < s.entry.memory.ramBytes ? f : s), undefined) ?? fits[0];
    const reason = shown ? `No model fits this machine. ${shown.entry.title}, the smallest model it could run: ${lowerFirst(shown.reasons.join(' '))}` : 'The catalogue is empty.';
    return { recommended: null, reason, fits };
  }

  const e = pick.entry;
  const p = pick.provider!;
  const memText = `${gb(e.memory.ramBytes)} of memory (${gb(machine.freeRamBytes)} free)`;
  const diskText = pick.downloaded ? ', and it is downloaded' : ` and ${gb(pick.diskNeededBytes)} of disk (${gb(machine.freeDiskBytes)} free)`;
  let reason: string;
  if (p !== 'cpu') {
    const vram = e.memory.vramBytes;
    const vramText = vram === null ? '' : `${gb(vram)} of GPU memory (${machine.vramBytes === undefined ? 'not measured here' : `${gb(machine.vramBytes)} free`}), `;
    reason = `${e.title} has the best LiveCodeBench score (${e.liveCodeBench}) of the models that run on this machine's GPU with ${providerName(p)}: it needs ${vramText}${memText}${diskText}.`;
  } else {
    const why = machine.gpuProviders.length === 0 ? 'no GPU provider is available' : `no GPU model fits (${list(machine.gpuProviders.map(providerName))} available)`;
    reason = `${e.title} has the best LiveCodeBench score (${e.liveCodeBench}) of the models that fit on the CPU (${why}): it needs ${memText}${diskText}.`;
  }
  // The best-scoring entry passed over, and why: the answer to "why not the bigger one?". One
  // that could run here but does not fit says more than one the engine cannot run yet.
  const higher = fits.filter((f) => f.entry.liveCodeBench > e.liveCodeBench && f.entry.model !== e.model);
  const better = best(higher.filter((f) => f.architectureSupported && f.provider !== null)) ?? best(higher);
  if (better) {
    const why = better.eligible ? 'it runs on the CPU, and a model on the GPU is preferred when one fits.' : lowerFirst(better.reasons[0]!);
    reason += ` ${better.entry.title} scores higher (${better.entry.liveCodeBench}) but is left out: ${why}`;
  }
  return { recommended: pick, reason, fits };
}
