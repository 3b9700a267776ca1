/**
 * The server address of r1.server.url (or `r1 ask --server`): an OpenAI-compatible base with or
 * without its `/v1` (`http://host:8000/v1`, `http://host:8000`), or Ollama's root
 * (`http://host:11434`). Both APIs are reached from it: `<root>/v1/...` and `<root>/api/...`.
 */
import { RemoteError } from './errors';

export interface ServerUrl {
  /** As configured (trimmed). */
  raw: string;
  /** Without a trailing `/v1` (or `/api`) and slash: where `/api/chat` of Ollama is. */
  root: string;
  /** The OpenAI-compatible base: `<root>/v1`. */
  openai: string;
  /** host[:port], what the status bar shows. */
  host: string;
  /** scheme://host[:port]: what an API key is stored for. */
  origin: string;
  secure: boolean;
  /** The host is this machine (127.0.0.0/8, ::1, localhost). */
  loopback: boolean;
}

export function isLoopbackHostname(hostname: string): boolean {
  const h = hostname.replace(/^\[|\]$/g, '').toLowerCase();
  return h === 'localhost' || h.endsWith('.localhost') || h === '::1' || /^127(\.\d{1,3}){3}$/.test(h);
}

export function parseServerUrl(raw: string): ServerUrl {
  const text = raw.trim();
  const fail = (why: string) =>
    new RemoteError('not-configured', `The server URL "${text}" ${why}. Set r1.server.url (or --server) to the server's base, e.g. http://gpu-box:8000/v1 or http://gpu-box:11434 for Ollama.`, text);
  if (text === '') {
    throw new RemoteError('not-configured', 'No server is set: r1.backend is "server" but r1.server.url is empty. Set it to the server\'s base URL, e.g. http://gpu-box:8000/v1 (or http://gpu-box:11434 for Ollama).', text);
  }
  let u: URL;
  try {
    u = new URL(text);
  } catch {
    throw fail('is not a URL');
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw fail(`has the scheme ${u.protocol} (only http: and https: are served)`);
  if (u.username || u.password) throw fail('carries a user name or password; R1 Coder sends the key from "R1: Set Server API Key" (or --api-key-env) as a Bearer token instead');
  if (u.search || u.hash) throw fail('has a query or fragment');
  const path = u.pathname.replace(/\/+$/, '').replace(/\/(v1|api)$/, '');
  const root = `${u.protocol}//${u.host}${path}`;
  return {
    raw: text,
    root,
    openai: `${root}/v1`,
    host: u.host,
    origin: `${u.protocol}//${u.host}`,
    secure: u.protocol === 'https:',
    loopback: isLoopbackHostname(u.hostname),
  };
}
