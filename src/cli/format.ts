/** Human-readable text for `r1 info` and the stats line of `r1 ask`. */
import type { GenerationResult, ModelInfo, TensorSignature } from '../engine/types';
import { KIND_LABELS } from '../remote';

function shape(s: TensorSignature): string {
  return `${s.dtype}[${s.shape.join(', ')}]`;
}

export function formatInfo(info: ModelInfo): string {
  const c = info.config;
  const sig = info.signature;
  const lines: string[] = [];
  lines.push(`model folder   ${info.modelDir}`);
  lines.push(`layout         ${info.layout === 'genai' ? 'genai (onnxruntime-genai: genai_config.json)' : 'hub (config.json, onnx/model_<variant>.onnx)'}`);
  lines.push(
    `config         ${c.modelType}: ${c.numHiddenLayers} layers, hidden ${c.hiddenSize}, ${c.numAttentionHeads} heads, ${c.numKeyValueHeads} KV heads of ${c.headDim}, vocab ${c.vocabSize}, max positions ${c.maxPositionEmbeddings}`,
  );
  lines.push(`variants       ${info.availableVariants.join(', ')}`);
  lines.push(`variant        ${info.variant} (${info.modelFile})`);
  if (info.preparedCopy) {
    const p = info.preparedCopy;
    lines.push(`prepared copy  ${p.file} (${p.reused ? 'written by an earlier load' : 'written now'})`);
    for (const s of p.steps) lines.push(`  ${s.applied ? '[x]' : '[ ]'}          ${s.step}: ${s.detail}`);
  }
  lines.push(`provider       ${info.provider}`);
  for (const a of info.attempts) {
    if (a.ok) continue;
    lines.push(`  not used     ${a.provider}: ${a.reason ?? 'failed'}`);
  }
  lines.push(`signature      ${sig.numLayers} layers, KV ${sig.kvDtype} [1, ${sig.kvHeads}, past, ${sig.headDim}], logits ${sig.logitsDtype}`);
  const kv = new Set([...sig.pastNames, ...sig.presentNames]);
  // past_key_values.%d.key + past_key_values.%d.value → past_key_values.{0..27}.{key,value}
  const layers = (key: string, value: string) => {
    let head = 0;
    while (head < key.length && key[head] === value[head]) head++;
    const k = key.slice(head);
    const v = value.slice(head);
    return `${key.slice(0, head)}{${k},${v}}`.replaceAll('%d', `{0..${sig.numLayers - 1}}`);
  };
  for (const s of sig.inputs.filter((x) => !kv.has(x.name))) lines.push(`  input        ${s.name} ${shape(s)}`);
  const past0 = sig.inputs.find((s) => s.name === sig.pastNames[0]);
  if (past0) lines.push(`  input        ${layers(sig.names.pastKey, sig.names.pastValue)} ${shape(past0)}`);
  for (const s of sig.outputs.filter((x) => !kv.has(x.name))) lines.push(`  output       ${s.name} ${shape(s)}`);
  const present0 = sig.outputs.find((s) => s.name === sig.presentNames[0]);
  if (present0) lines.push(`  output       ${layers(sig.names.presentKey, sig.names.presentValue)} ${shape(present0)}`);
  lines.push(`eos ids        ${info.eosTokenIds.join(', ')}`);
  const d = info.generationDefaults;
  const defaults = [
    d.temperature !== undefined ? `temperature ${d.temperature}` : '',
    d.topP !== undefined ? `top-p ${d.topP}` : '',
    d.topK !== undefined ? `top-k ${d.topK}` : '',
  ].filter(Boolean);
  if (defaults.length) lines.push(`defaults       ${defaults.join(', ')} (${info.layout === 'genai' ? 'genai_config.json search' : 'generation_config.json'})`);
  for (const n of info.notes) lines.push(`note           ${n}`);
  lines.push(`loaded in      ${info.loadMs} ms`);
  return `${lines.join('\n')}\n`;
}

/** "; prompt lookup: 1.9 tokens a pass (412 of 530 drafted tokens kept)" when drafts were checked. */
function lookupStats(s: GenerationResult['stats']): string {
  if (!s.draftTokens || s.tokensPerPass === undefined) return '';
  return `; prompt lookup: ${s.tokensPerPass.toFixed(2)} tokens a pass (${s.acceptedDraftTokens ?? 0} of ${s.draftTokens} drafted tokens kept)`;
}

export function formatStats(r: GenerationResult, color: boolean): string {
  const s = r.stats;
  // A server's figures it did not report are estimates: marked with ~.
  const est = (from: 'server' | 'estimate' | undefined) => (from === 'estimate' ? '~' : '');
  const where = s.server ? `${s.server.model} on ${KIND_LABELS[s.server.kind]} at ${s.server.host}` : `${s.variant} on ${s.provider}`;
  const text =
    `${r.status}: ${est(s.server?.tokensFrom)}${s.promptTokens} prompt tokens${s.reusedPromptTokens > 0 ? ` (${s.reusedPromptTokens} ${s.server ? 'cached by the server' : 'reused from the previous request'})` : ''}, ${est(s.server?.reasoningTokensFrom)}${s.reasoningTokens} reasoning + ${est(s.server?.tokensFrom)}${s.answerTokens} answer tokens; ` +
    `first token ${Math.round(s.timeToFirstTokenMs)} ms, prefill ${s.prefillTokensPerSecond.toFixed(1)} tok/s, decode ${s.decodeTokensPerSecond.toFixed(1)} tok/s; ` +
    `${where}${s.thinkingBudgetHit ? '; thinking budget reached' : ''}${lookupStats(s)}`;
  return color ? `\x1b[2m${text}\x1b[22m` : text;
}
