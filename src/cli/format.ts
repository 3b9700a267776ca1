/** Human-readable text for `r1 info` and the stats line of `r1 ask`. */
import type { GenerationResult, ModelInfo, TensorSignature } from '../engine/types';

function shape(s: TensorSignature): string {
  return `${s.dtype}[${s.shape.join(', ')}]`;
}

export function formatInfo(info: ModelInfo): string {
  const c = info.config;
  const sig = info.signature;
  const lines: string[] = [];
  lines.push(`model folder   ${info.modelDir}`);
  lines.push(
    `config         ${c.modelType}: ${c.numHiddenLayers} layers, hidden ${c.hiddenSize}, ${c.numAttentionHeads} heads, ${c.numKeyValueHeads} KV heads of ${c.headDim}, vocab ${c.vocabSize}, max positions ${c.maxPositionEmbeddings}`,
  );
  lines.push(`variants       ${info.availableVariants.join(', ')}`);
  lines.push(`variant        ${info.variant} (${info.modelFile})`);
  lines.push(`provider       ${info.provider}`);
  for (const a of info.attempts) {
    if (a.ok) continue;
    lines.push(`  not used     ${a.provider}: ${a.reason ?? 'failed'}`);
  }
  lines.push(`signature      ${sig.numLayers} layers, KV ${sig.kvDtype} [1, ${sig.kvHeads}, past, ${sig.headDim}], logits ${sig.logitsDtype}`);
  const kv = /^(past_key_values|present)\.\d+\./;
  const first = (prefix: string, list: TensorSignature[]) => list.find((s) => s.name.startsWith(prefix));
  for (const s of sig.inputs.filter((x) => !kv.test(x.name))) lines.push(`  input        ${s.name} ${shape(s)}`);
  const past0 = first('past_key_values.0.key', sig.inputs);
  if (past0) lines.push(`  input        past_key_values.{0..${sig.numLayers - 1}}.{key,value} ${shape(past0)}`);
  for (const s of sig.outputs.filter((x) => !kv.test(x.name))) lines.push(`  output       ${s.name} ${shape(s)}`);
  const present0 = first('present.0.key', sig.outputs);
  if (present0) lines.push(`  output       present.{0..${sig.numLayers - 1}}.{key,value} ${shape(present0)}`);
  lines.push(`eos ids        ${info.eosTokenIds.join(', ')}`);
  const d = info.generationDefaults;
  const defaults = [
    d.temperature !== undefined ? `temperature ${d.temperature}` : '',
    d.topP !== undefined ? `top-p ${d.topP}` : '',
    d.topK !== undefined ? `top-k ${d.topK}` : '',
  ].filter(Boolean);
  if (defaults.length) lines.push(`defaults       ${defaults.join(', ')} (generation_config.json)`);
  for (const n of info.notes) lines.push(`note           ${n}`);
  lines.push(`loaded in      ${info.loadMs} ms`);
  return `${lines.join('\n')}\n`;
}

export function formatStats(r: GenerationResult, color: boolean): string {
  const s = r.stats;
  const text =
    `${r.status}: ${s.promptTokens} prompt tokens${s.reusedPromptTokens > 0 ? ` (${s.reusedPromptTokens} reused from the previous request)` : ''}, ${s.reasoningTokens} reasoning + ${s.answerTokens} answer tokens; ` +
    `first token ${Math.round(s.timeToFirstTokenMs)} ms, prefill ${s.prefillTokensPerSecond.toFixed(1)} tok/s, decode ${s.decodeTokensPerSecond.toFixed(1)} tok/s; ` +
    `${s.variant} on ${s.provider}${s.thinkingBudgetHit ? '; thinking budget reached' : ''}`;
  return color ? `\x1b[2m${text}\x1b[22m` : text;
}
