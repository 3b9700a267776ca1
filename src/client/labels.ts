/**
 * How the editor names things to the user: execution providers and byte counts. Pure (no
 * `vscode` import), so the messages built with it are unit-tested under Node.
 */

const PROVIDERS: Record<string, string> = { cpu: 'CPU', cuda: 'CUDA', dml: 'DirectML', coreml: 'CoreML', webgpu: 'WebGPU' };

/** "CUDA", "DirectML", …; an unknown id as it is. */
export function providerLabel(provider: string): string {
  return PROVIDERS[provider] ?? provider;
}

const SERVER_KINDS: Record<string, string> = { vllm: 'vLLM', sglang: 'SGLang', 'llama.cpp': 'llama.cpp', ollama: 'Ollama', r1: 'r1 serve' };

/** "vLLM", "Ollama", …; any other server as "an OpenAI-compatible server". */
export function serverKindLabel(kind: string): string {
  return SERVER_KINDS[kind] ?? 'an OpenAI-compatible server';
}

/** "1.97 GB", "12.3 MB", "512 kB", "80 B". */
export function formatBytes(n: number): string {
  if (n >= 1e9) return `${(n / 1e9).toFixed(2)} GB`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(1)} MB`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(0)} kB`;
  return `${n} B`;
}
