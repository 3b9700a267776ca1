/**
 * The NVIDIA GPUs' memory, from `nvidia-smi` (installed with the NVIDIA driver). `r1 models`
 * compares it with what a GPU model needs. No other GPU's memory can be read from Node without a
 * native module, so for DirectML, WebGPU and CoreML it stays unknown.
 */
import { execFile } from 'node:child_process';

export interface GpuMemory {
  name: string;
  totalBytes: number;
  freeBytes: number;
}

const MiB = 1024 * 1024;

/**
 * Parses `nvidia-smi --query-gpu=name,memory.total,memory.free --format=csv,noheader,nounits`:
 * one line per GPU, `name, total MiB, free MiB` (the name may itself hold commas).
 */
export function parseNvidiaSmiMemory(output: string): GpuMemory[] {
  const out: GpuMemory[] = [];
  for (const line of output.split('\n')) {
    const m = /^\s*(.+?)\s*,\s*(\d+)\s*,\s*(\d+)\s*$/.exec(line);
    if (m) out.push({ name: m[1]!, totalBytes: Number(m[2]) * MiB, freeBytes: Number(m[3]) * MiB });
  }
  return out;
}

/** The NVIDIA GPUs' memory, or undefined when nvidia-smi is absent or fails. */
export function queryNvidiaMemory(): Promise<GpuMemory[] | undefined> {
  return new Promise((resolve) => {
    execFile('nvidia-smi', ['--query-gpu=name,memory.total,memory.free', '--format=csv,noheader,nounits'], { timeout: 5000 }, (err, stdout) => {
      if (err) resolve(undefined);
      else {
        const gpus = parseNvidiaSmiMemory(stdout);
        resolve(gpus.length > 0 ? gpus : undefined);
      }
    });
  });
}
