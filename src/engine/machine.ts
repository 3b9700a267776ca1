/**
 * The machine facts that decide which model fits (the catalogue's recommend() in src/install):
 * free and total memory from the OS, free disk where the models folder is, the GPU providers the
 * engine's `auto` mode would try (its provider probe: no session is created, so a provider listed
 * may still fail to start, e.g. WebGPU without a usable adapter), the NVIDIA GPU's free memory
 * from nvidia-smi when CUDA is among them, and the architectures the engine runs. Used by
 * `r1 models` and, through the language server, by R1: Download Model.
 */
import { existsSync } from 'node:fs';
import { statfs } from 'node:fs/promises';
import { freemem, totalmem } from 'node:os';
import { dirname } from 'node:path';
import type { CheckCudaOptions } from '../platform/cuda';
import { queryNvidiaMemory } from '../platform/nvidiaSmi';
import { SUPPORTED_TYPES } from './modelFolder';
import { planProviders, probeExecutionProviders } from './providers';
import type { ExecutionProvider, MachineReport } from './types';

export type { MachineReport };

/** Free bytes on the file system of `dir`, or of its nearest existing parent. */
async function freeDiskAt(dir: string): Promise<number> {
  let d = dir;
  for (;;) {
    if (existsSync(d)) {
      try {
        const s = await statfs(d);
        return Number(s.bavail) * Number(s.bsize);
      } catch {
        return 0;
      }
    }
    const up = dirname(d);
    if (up === d) return 0;
    d = up;
  }
}

/** This machine's facts (see the file comment). */
export async function probeMachine(modelsDir: string, cudaCheck?: CheckCudaOptions): Promise<MachineReport> {
  const probe = await probeExecutionProviders(cudaCheck);
  const gpuProviders = planProviders('auto', probe).order.filter((p): p is ExecutionProvider => p !== 'cpu');
  const report: MachineReport = {
    platform: probe.platform,
    arch: probe.arch,
    freeRamBytes: freemem(),
    totalRamBytes: totalmem(),
    freeDiskBytes: await freeDiskAt(modelsDir),
    gpuProviders,
    supportedArchitectures: [...SUPPORTED_TYPES],
  };
  if (gpuProviders.includes('cuda')) {
    const gpus = await queryNvidiaMemory();
    const first = gpus?.[0];
    if (first) Object.assign(report, { vramBytes: first.freeBytes, vramTotalBytes: first.totalBytes, gpuName: first.name });
  }
  return report;
}

