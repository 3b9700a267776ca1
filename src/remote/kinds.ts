/**
 * What kind of server answers, and what that means for a request: where the thinking budget goes,
 * whether the server can stop a request when asked.
 *
 * The kind comes from `owned_by` in the model listing, which each server sets to its own name:
 *   vLLM       vllm/entrypoints/openai/protocol.py, ModelCard `owned_by: str = "vllm"`
 *   SGLang     python/sglang/srt/entrypoints/openai/protocol.py, ModelCard `owned_by: str = "sglang"`
 *   llama.cpp  tools/server (server.cpp, server-context.cpp), /v1/models `{"owned_by", "llamacpp"}`
 *   r1 serve   src/serve/http.ts, `owned_by: 'r1-coder'`
 * Ollama lists a model's namespace there (openai/openai.go ToListCompletion: `library` for the
 * library's models), so it is told by `GET /api/version` instead (api/types.go, `{"version"}`).
 */
import type { ServerKind } from '../engine';

const OWNERS: Record<string, ServerKind> = { vllm: 'vllm', sglang: 'sglang', llamacpp: 'llama.cpp', 'r1-coder': 'r1' };

/** The kind named by the listing's `owned_by` values, or `unknown`. */
export function kindOfOwners(owners: readonly (string | undefined)[]): ServerKind {
  for (const o of owners) {
    const kind = o !== undefined ? OWNERS[o.toLowerCase()] : undefined;
    if (kind) return kind;
  }
  return 'unknown';
}

export const KIND_LABELS: Record<ServerKind, string> = {
  vllm: 'vLLM',
  sglang: 'SGLang',
  'llama.cpp': 'llama.cpp',
  ollama: 'Ollama',
  r1: 'r1 serve',
  unknown: 'an OpenAI-compatible server',
};

/**
 * The request field that carries a thinking budget on this server, or why none is sent.
 * - vLLM: `thinking_token_budget` (docs/features/reasoning_outputs.md; the server needs
 *   `--reasoning-config`, else it ignores the field).
 * - llama.cpp: `thinking_budget_tokens` (tools/server/README.md; `--reasoning-budget` is the
 *   server-wide default).
 * - r1 serve: `thinking_token_budget` (it also reads llama.cpp's name).
 * - SGLang: the budget is a custom logit processor built on the full R1's token ids
 *   (`custom_params.thinking_budget`), not the distills'; Ollama and LM Studio have none.
 */
export function thinkingBudgetField(kind: ServerKind): { field: string } | { reason: string } {
  switch (kind) {
    case 'vllm':
    case 'r1':
      return { field: 'thinking_token_budget' };
    case 'llama.cpp':
      return { field: 'thinking_budget_tokens' };
    case 'sglang':
      return { reason: 'SGLang has no per-request thinking budget that fits the R1 distills (its budget processor is keyed to the full R1\'s token ids)' };
    case 'ollama':
      return { reason: 'Ollama has no thinking budget' };
    case 'unknown':
      return { reason: 'the server did not say which kind it is (vLLM, SGLang, llama.cpp, Ollama or r1 serve), so R1 Coder does not know its budget field' };
  }
}

/** Servers that take OpenAI's extra sampling field `top_k` (vLLM, SGLang, llama.cpp all document it). */
export function takesTopK(kind: ServerKind): boolean {
  return kind === 'vllm' || kind === 'sglang' || kind === 'llama.cpp';
}
