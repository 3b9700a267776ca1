/**
 * The dynamic loader's library cache (`ldconfig -p`): which shared libraries a process started
 * now would find by soname. The CUDA runtime check and the Vulkan loader probe both read it.
 */
import { execFile } from 'node:child_process';

/** Parses `ldconfig -p`: soname → path, keeping only entries of the given architecture. */
export function parseLdconfig(output: string, arch = 'x64'): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of output.split('\n')) {
    const m = /^\s*(\S+)\s+\(([^)]*)\)\s+=>\s+(\S.*?)\s*$/.exec(line);
    if (!m) continue;
    const [, name, flags, path] = m;
    if (arch === 'x64' && !/x86-64/.test(flags)) continue;
    if (arch === 'arm64' && !/AArch64/i.test(flags)) continue;
    if (!out.has(name)) out.set(name, path);
  }
  return out;
}

/** The output of `ldconfig -p`, from the first of the usual locations that runs. */
export function runLdconfig(): Promise<string> {
  const candidates = ['/sbin/ldconfig', '/usr/sbin/ldconfig', 'ldconfig'];
  return new Promise((resolve, reject) => {
    const tryAt = (i: number, lastErr?: unknown) => {
      if (i >= candidates.length) {
        reject(lastErr instanceof Error ? lastErr : new Error('ldconfig not found'));
        return;
      }
      execFile(candidates[i], ['-p'], { timeout: 5000, maxBuffer: 16 * 1024 * 1024 }, (err, stdout) => {
        if (err) tryAt(i + 1, err);
        else resolve(stdout);
      });
    };
    tryAt(0);
  });
}
