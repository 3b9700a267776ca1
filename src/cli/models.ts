/**
 * `r1 models [--json] [--models-dir DIR]`: the model catalogue (src/install/catalogue.json) with
 * each entry's download size, memory needed, LiveCodeBench score and providers, what is downloaded
 * in the models folder, and the entry this machine should use and why (recommend()).
 *
 * The machine's facts: free and total memory from the OS, free disk where the models folder is,
 * the GPU providers the engine's `auto` mode would try (its provider probe: no session is
 * created, so a provider listed may still fail to start, e.g. WebGPU without a usable adapter), the
 * NVIDIA GPU's free memory from nvidia-smi when CUDA is among them, and the architectures the
 * engine runs. The models folder is --models-dir, else $R1_MODELS_DIR, else the first editor's
 * global storage that has one (modelsDirCandidates), else VS Code's.
 * Exit codes: 0 listed, 2 usage error.
 */
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { probeMachine, type MachineReport } from '../engine/machine';

export type { MachineReport };
import { type Catalogue, type CatalogueEntry, type DownloadState, downloadState, loadCatalogue, modelsDirCandidates } from '../install/catalogue';
import { type EntryFit, gb, providerName, recommend } from '../install/recommend';
import type { CheckCudaOptions } from '../platform/cuda';
import { strictArgs, UsageError } from './args';

export interface ModelsArgs {
  json: boolean;
  modelsDir?: string;
}

export interface ModelsIO {
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
  env: NodeJS.ProcessEnv;
  /** Options of the CUDA runtime check in the provider probe (default: this machine's). */
  cudaCheck?: CheckCudaOptions;
  /** Seams for tests: the catalogue, and the machine instead of probing this one. */
  catalogue?: Catalogue;
  machine?: MachineReport;
}

export function parseModelsArgs(rest: readonly string[]): ModelsArgs | { command: 'help' } {
  const parsed = strictArgs(rest, {
    options: {
      json: { type: 'boolean', default: false },
      'models-dir': { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  const v = parsed.values;
  if (v.help) return { command: 'help' };
  if (v['models-dir'] !== undefined && v['models-dir'].trim() === '') throw new UsageError('--models-dir needs a folder');
  return { json: v.json === true, modelsDir: v['models-dir'] };
}

/** The models folder: --models-dir, $R1_MODELS_DIR, the first editor storage that has one, or VS Code's. */
export function resolveModelsDir(a: ModelsArgs, env: NodeJS.ProcessEnv): string {
  if (a.modelsDir) return resolve(a.modelsDir);
  if (env.R1_MODELS_DIR) return resolve(env.R1_MODELS_DIR);
  const candidates = modelsDirCandidates(env);
  return candidates.find((d) => existsSync(d)) ?? candidates[0]!;
}

interface Row {
  fit: EntryFit;
  download: DownloadState;
  recommended: boolean;
}

/** A few words on why an entry does not fit, for the table; the JSON has the sentences. */
function shortVerdict(f: EntryFit): string {
  if (f.eligible) return 'fits';
  const why: string[] = [];
  if (!f.architectureSupported) why.push(`${f.entry.architecture} not supported yet`);
  if (!f.provider) why.push(`needs ${f.entry.providers.map(providerName).join('/')}`);
  if (f.entry.gated) why.push('gated');
  if (!f.fitsDisk) why.push('disk');
  if (!f.fitsMemory) why.push('memory');
  if (f.fitsVram === false) why.push('GPU memory');
  return `no: ${why.join(', ')}`;
}

function approx(e: CatalogueEntry, n: number): string {
  return `${e.bytesEstimated ? '~' : ''}${gb(n)}`;
}

function table(rows: string[][]): string[] {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  ').trimEnd());
}

function formatText(modelsDir: string, m: MachineReport, catalogue: Catalogue, rows: Row[], reason: string, recommended: EntryFit | null): string {
  const lines: string[] = [];
  lines.push(`models folder  ${modelsDir}${existsSync(modelsDir) ? '' : ' (not created yet)'}, ${gb(m.freeDiskBytes)} free`);
  const gpu =
    m.gpuProviders.length === 0
      ? 'no GPU provider (CPU only)'
      : `GPU providers ${m.gpuProviders.map(providerName).join(', ')}${m.vramBytes !== undefined ? `; ${m.gpuName ?? 'GPU'}: ${gb(m.vramBytes)} of ${gb(m.vramTotalBytes ?? m.vramBytes)} free` : '; GPU memory not measured'}`;
  lines.push(`this machine   ${gb(m.freeRamBytes)} of ${gb(m.totalRamBytes)} memory free; ${gpu}; engine runs ${m.supportedArchitectures.join(', ')}`);
  lines.push('');
  const header = ['', 'ID', 'RUNS ON', 'DOWNLOAD', 'MEMORY', 'GPU MEMORY', 'SCORE', 'HERE', 'FITS'];
  const body = rows.map(({ fit: f, download: d, recommended: rec }) => {
    const e = f.entry;
    return [
      rec ? '*' : ' ',
      e.id,
      e.providers.join(','),
      approx(e, e.totalBytes),
      approx(e, e.memory.ramBytes),
      e.memory.vramBytes === null ? '-' : approx(e, e.memory.vramBytes),
      e.liveCodeBench.toFixed(1),
      d.status === 'absent' ? '-' : d.status,
      shortVerdict(f),
    ];
  });
  lines.push(...table([header, ...body]));
  lines.push('');
  lines.push(`SCORE is LiveCodeBench pass@1; memory is for a context of ${catalogue.contextTokens} tokens; ~ marks sizes estimated until the hub lists the files.`);
  lines.push(recommended ? `recommended    ${recommended.entry.id}: ${reason}` : `recommended    none. ${reason}`);
  return `${lines.join('\n')}\n`;
}

function jsonDoc(modelsDir: string, m: MachineReport, catalogue: Catalogue, rows: Row[], reason: string, recommended: EntryFit | null): unknown {
  return {
    modelsDir,
    contextTokens: catalogue.contextTokens,
    machine: {
      platform: m.platform,
      arch: m.arch,
      freeRamBytes: m.freeRamBytes,
      totalRamBytes: m.totalRamBytes,
      freeDiskBytes: m.freeDiskBytes,
      gpuProviders: m.gpuProviders,
      vramBytes: m.vramBytes ?? null,
      vramTotalBytes: m.vramTotalBytes ?? null,
      gpuName: m.gpuName ?? null,
      supportedArchitectures: m.supportedArchitectures,
    },
    recommended: recommended ? { id: recommended.entry.id, provider: recommended.provider, reason } : null,
    reason,
    models: rows.map(({ fit: f, download: d, recommended: rec }) => {
      const e = f.entry;
      return {
        id: e.id,
        title: e.title,
        model: e.model,
        repository: e.repository,
        revision: e.revision,
        subfolder: e.subfolder,
        layout: e.layout,
        architecture: e.architecture,
        variant: e.variant,
        parameters: e.parameters,
        providers: e.providers,
        liveCodeBench: e.liveCodeBench,
        gated: e.gated,
        totalBytes: e.totalBytes,
        bytesEstimated: e.bytesEstimated,
        filesConfirmed: e.filesConfirmed,
        ramBytes: e.memory.ramBytes,
        vramBytes: e.memory.vramBytes,
        diskNeededBytes: f.diskNeededBytes,
        runsOn: f.provider,
        fits: { disk: f.fitsDisk, memory: f.fitsMemory, vram: f.fitsVram, architecture: f.architectureSupported },
        eligible: f.eligible,
        recommended: rec,
        reasons: f.reasons,
        notes: f.notes,
        download: { status: d.status, dir: d.dir, presentBytes: d.presentBytes, problems: d.problems },
      };
    }),
  };
}

/** `r1 models`: returns the exit code. Usage errors throw UsageError. */
export async function runModels(argv: readonly string[], io: ModelsIO): Promise<number> {
  const a = parseModelsArgs(argv);
  if ('command' in a) {
    io.stdout.write('Usage: r1 models [--json] [--models-dir DIR]\n');
    return 0;
  }
  const modelsDir = resolveModelsDir(a, io.env);
  const catalogue = io.catalogue ?? loadCatalogue();
  const machine = io.machine ?? (await probeMachine(modelsDir, io.cudaCheck));
  const downloads = await Promise.all(catalogue.entries.map((e) => downloadState(e, modelsDir)));
  const downloadedIds = catalogue.entries.filter((_, i) => downloads[i]!.status === 'downloaded').map((e) => e.id);
  const r = recommend(catalogue, { ...machine, downloadedIds });
  const rows: Row[] = r.fits.map((fit, i) => ({ fit, download: downloads[i]!, recommended: fit === r.recommended }));
  if (a.json) io.stdout.write(`${JSON.stringify(jsonDoc(modelsDir, machine, catalogue, rows, r.reason, r.recommended))}\n`);
  else io.stdout.write(formatText(modelsDir, machine, catalogue, rows, r.reason, r.recommended));
  return 0;
}
