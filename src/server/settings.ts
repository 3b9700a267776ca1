/**
 * The server's view of the `r1.*` settings, pulled through `workspace/configuration` for every
 * request (never kept in globals) and sanitized: a bad value falls back to the default, and the
 * fallback is logged.
 */
import type { ModelVariant, ProviderPreference } from '../engine/types';
import type { ServerSettings } from './engineHost';

const VARIANTS: readonly (ModelVariant | 'auto')[] = ['auto', 'q4', 'q4f16', 'fp16', 'fp32', 'int8', 'uint8', 'quantized', 'bnb4'];
const PROVIDERS: readonly ProviderPreference[] = ['auto', 'cuda', 'dml', 'coreml', 'webgpu', 'cpu'];

export const DEFAULT_SETTINGS: ServerSettings = {
  modelPath: '',
  variant: 'auto',
  provider: 'auto',
  cpuThreads: 0,
  prepareModel: true,
  maxNewTokens: 4096,
  thinkingBudget: 2048,
  temperature: 0.6,
  topP: 0.95,
  contextWindow: 8192,
  promptLookup: 'auto',
  backend: 'local',
  serverUrl: '',
  serverModel: '',
  serverApi: 'auto',
};

function get(obj: unknown, path: string): unknown {
  let cur = obj;
  for (const part of path.split('.')) {
    if (typeof cur !== 'object' || cur === null) return undefined;
    cur = (cur as Record<string, unknown>)[part];
  }
  return cur;
}

/** `raw` is the object VS Code returns for the section `r1`. */
export function sanitizeSettings(raw: unknown, warn: (message: string) => void = () => {}): ServerSettings {
  const s = { ...DEFAULT_SETTINGS };
  const pick = <T>(path: string, ok: (v: unknown) => v is T, assign: (v: T) => void) => {
    const v = get(raw, path);
    if (v === undefined || v === null) return;
    if (ok(v)) assign(v);
    else warn(`Ignoring r1.${path} = ${JSON.stringify(v)}: not a valid value; using the default.`);
  };
  const isNum = (min: number, max: number, int: boolean) => (v: unknown): v is number =>
    typeof v === 'number' && Number.isFinite(v) && v >= min && v <= max && (!int || Number.isInteger(v));
  pick('model.path', (v): v is string => typeof v === 'string', (v) => (s.modelPath = v.trim()));
  pick('model.variant', (v): v is ServerSettings['variant'] => VARIANTS.includes(v as never), (v) => (s.variant = v));
  pick('executionProvider', (v): v is ProviderPreference => PROVIDERS.includes(v as never), (v) => (s.provider = v));
  pick('cpu.threads', isNum(0, 256, true), (v) => (s.cpuThreads = v));
  pick('cpu.prepareModel', (v): v is boolean => typeof v === 'boolean', (v) => (s.prepareModel = v));
  pick('generation.maxNewTokens', isNum(16, 32768, true), (v) => (s.maxNewTokens = v));
  pick('generation.thinkingBudget', isNum(0, 32768, true), (v) => (s.thinkingBudget = v));
  pick('generation.temperature', isNum(0, 2, false), (v) => (s.temperature = v));
  pick('generation.topP', isNum(0.01, 1, false), (v) => (s.topP = v));
  pick('generation.contextWindow', isNum(1024, 131072, true), (v) => (s.contextWindow = v));
  pick('generation.promptLookup', (v): v is ServerSettings['promptLookup'] => v === 'auto' || v === 'off', (v) => (s.promptLookup = v));
  pick('backend', (v): v is ServerSettings['backend'] => v === 'local' || v === 'server', (v) => (s.backend = v));
  pick('server.url', (v): v is string => typeof v === 'string', (v) => (s.serverUrl = v.trim()));
  pick('server.model', (v): v is string => typeof v === 'string', (v) => (s.serverModel = v.trim()));
  pick('server.api', (v): v is ServerSettings['serverApi'] => v === 'auto' || v === 'openai' || v === 'ollama', (v) => (s.serverApi = v));
  return s;
}
