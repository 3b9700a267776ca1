/**
 * Which server, API and model a run talks to: the model listing (`GET /v1/models`, or Ollama's
 * `GET /api/tags`), the server's kind from it, and the model (the configured one, which must be
 * listed, or the first).
 */
import type { ServerKind } from '../engine';
import { RemoteError } from './errors';
import { Aborted, bodyText, send, statusError } from './http';
import { KIND_LABELS, kindOfOwners } from './kinds';
import type { ServerUrl } from './url';

export type RemoteApi = 'openai' | 'ollama';

export interface RemoteTarget {
  server: ServerUrl;
  api: RemoteApi;
  kind: ServerKind;
  model: string;
  /** Every model the server lists. */
  models: string[];
  /** The model's context length, when the listing says it (vLLM and SGLang: `max_model_len`). */
  contextLength?: number;
}

export interface ProbeOptions {
  api: RemoteApi | 'auto';
  /** '' or undefined: the first model listed. */
  model?: string;
  apiKey?: string;
  timeoutMs: number;
  signal?: AbortSignal;
}

interface Listing {
  models: { id: string; owner?: string; contextLength?: number }[];
}

async function getJson(server: ServerUrl, url: string, o: ProbeOptions): Promise<{ ok: true; body: unknown } | { ok: false; status: number; text: string; retryAfter: string | null }> {
  const res = await send(server, { method: 'GET', url, apiKey: o.apiKey, signal: o.signal, timeoutMs: o.timeoutMs });
  if (!res.ok) return { ok: false, status: res.status, text: await bodyText(res), retryAfter: res.headers.get('retry-after') };
  const text = await bodyText(res);
  try {
    return { ok: true, body: JSON.parse(text) as unknown };
  } catch {
    throw new RemoteError('bad-response', `The server at ${server.raw} answered ${url} with something that is not JSON ("${text.slice(0, 80)}"). Is r1.server.url the server's API base?`, server.raw, res.status);
  }
}

function openaiListing(server: ServerUrl, body: unknown): Listing {
  const data = (body as { data?: unknown } | null)?.data;
  if (!Array.isArray(data)) throw new RemoteError('bad-response', `The server at ${server.raw} answered GET /v1/models without a "data" list of models.`, server.raw);
  const models: Listing['models'] = [];
  for (const m of data) {
    if (typeof m !== 'object' || m === null || typeof (m as { id?: unknown }).id !== 'string') continue;
    const card = m as { id: string; owned_by?: unknown; max_model_len?: unknown };
    models.push({
      id: card.id,
      owner: typeof card.owned_by === 'string' ? card.owned_by : undefined,
      contextLength: typeof card.max_model_len === 'number' && card.max_model_len > 0 ? card.max_model_len : undefined,
    });
  }
  return { models };
}

function ollamaListing(server: ServerUrl, body: unknown): Listing {
  const list = (body as { models?: unknown } | null)?.models;
  if (!Array.isArray(list)) throw new RemoteError('bad-response', `The server at ${server.raw} answered GET /api/tags without a "models" list.`, server.raw);
  const models: Listing['models'] = [];
  for (const m of list) {
    const name = (m as { name?: unknown; model?: unknown } | null)?.name ?? (m as { model?: unknown } | null)?.model;
    if (typeof name === 'string') models.push({ id: name });
  }
  return { models };
}

/** True when the server answers Ollama's GET /api/version. */
async function isOllama(server: ServerUrl, o: ProbeOptions): Promise<boolean> {
  try {
    const r = await getJson(server, `${server.root}/api/version`, { ...o, timeoutMs: Math.min(o.timeoutMs, 3000) });
    return r.ok && typeof (r.body as { version?: unknown } | null)?.version === 'string';
  } catch (e) {
    if (e instanceof Aborted) throw e;
    return false;
  }
}

function pickModel(server: ServerUrl, listing: Listing, wanted: string | undefined, kind: ServerKind): Listing['models'][number] {
  const ids = listing.models.map((m) => m.id);
  if (!wanted) {
    const first = listing.models[0];
    if (!first) throw new RemoteError('unknown-model', `The server at ${server.raw} lists no models. Load a model into it (${kind === 'ollama' ? 'ollama pull deepseek-r1:7b' : 'start it with one'}), or set r1.server.model.`, server.raw);
    return first;
  }
  const found = listing.models.find((m) => m.id === wanted) ?? (kind === 'ollama' ? listing.models.find((m) => m.id === `${wanted}:latest`) : undefined);
  if (found) return found.id === wanted ? found : { ...found, id: wanted };
  const shown = ids.slice(0, 8).map((id) => `"${id}"`).join(', ') + (ids.length > 8 ? `, and ${ids.length - 8} more` : '');
  throw new RemoteError(
    'unknown-model',
    `The server at ${server.raw} does not serve the model "${wanted}"; it lists ${ids.length === 0 ? 'none' : shown}. Set r1.server.model (or --server-model) to one of them, or leave it empty for the first.`,
    server.raw,
  );
}

/** Finds the API, the kind and the model. Throws RemoteError (or Aborted when `signal` aborts). */
export async function probe(server: ServerUrl, o: ProbeOptions): Promise<RemoteTarget> {
  const denied = (status: number, text: string, url: string, retryAfter: string | null) => statusError(server, url, status, text, { hasKey: Boolean(o.apiKey), model: o.model, retryAfter });
  if (o.api === 'ollama') {
    const url = `${server.root}/api/tags`;
    const r = await getJson(server, url, o);
    if (!r.ok) throw denied(r.status, r.text, url, r.retryAfter);
    const listing = ollamaListing(server, r.body);
    const m = pickModel(server, listing, o.model, 'ollama');
    return { server, api: 'ollama', kind: 'ollama', model: m.id, models: listing.models.map((x) => x.id) };
  }
  const url = `${server.openai}/models`;
  const r = await getJson(server, url, o);
  if (!r.ok) {
    if (r.status === 404 && o.api === 'auto') {
      // Not an OpenAI-compatible base: perhaps Ollama without its /v1 (older than 0.1.24).
      const tags = await getJson(server, `${server.root}/api/tags`, o).catch((e: unknown) => {
        if (e instanceof Aborted) throw e;
        return undefined;
      });
      if (tags?.ok) {
        const listing = ollamaListing(server, tags.body);
        const m = pickModel(server, listing, o.model, 'ollama');
        return { server, api: 'ollama', kind: 'ollama', model: m.id, models: listing.models.map((x) => x.id) };
      }
    }
    throw denied(r.status, r.text, url, r.retryAfter);
  }
  const listing = openaiListing(server, r.body);
  let kind = kindOfOwners(listing.models.map((m) => m.owner));
  if (kind === 'unknown' && (await isOllama(server, o))) kind = 'ollama';
  const m = pickModel(server, listing, o.model, kind);
  // Ollama's own API says the thinking apart for sure (think: true); its /v1 is used when asked.
  const api: RemoteApi = kind === 'ollama' && o.api === 'auto' ? 'ollama' : 'openai';
  return { server, api, kind, model: m.id, models: listing.models.map((x) => x.id), ...(m.contextLength ? { contextLength: m.contextLength } : {}) };
}

/** "vLLM at gpu-box:8000 (model …)": how logs name a target. */
export function describeTarget(t: RemoteTarget): string {
  return `${KIND_LABELS[t.kind]} at ${t.server.host} (model ${t.model}, ${t.api === 'ollama' ? "Ollama's /api/chat" : 'OpenAI chat completions'})`;
}
