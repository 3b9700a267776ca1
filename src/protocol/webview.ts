/**
 * Messages between the extension host and the Reasoning view (the `r1.trace` webview), and the
 * pure logic both sides share: the exchange record, the reducer that applies host notifications
 * to it, the HTML shell with its Content Security Policy, link classification and the export.
 *
 * Shape, as in Continue's protocol: webview → host messages are requests, typed by a map of
 * request name → [params, reply]. Every request carries a `requestId` and gets exactly one reply
 * or one error. Host → webview messages are notifications (no reply).
 *
 * This file is bundled into both the extension host and the webview: it imports nothing from
 * `vscode`, Node or the DOM.
 */
import { answerOnly, stripThinkTags } from '../text/thinking';
import { proposalPatch } from './diff';

/** The view hides the think tags by the rules of src/text/thinking.ts. */
export { stripThinkTags };
/** The view highlights code by the language table of src/text/languages.ts. */
export { hljsName } from '../text/languages';

// ───────────────────────────── the exchange ─────────────────────────────

/** What started an exchange. */
export type ExchangeCommand = 'ask' | 'fix' | 'explain' | 'followUp' | 'repair';

/** A file as the view shows it. */
export interface FileRef {
  /** `vscode.Uri.toString()`; the host resolves it, the webview only passes it back. */
  uri: string;
  /** What the view prints: a workspace-relative path where there is one. */
  label: string;
  /** VS Code language id, used to highlight code (e.g. `typescript`). */
  languageId?: string;
}

/** 1-based, inclusive lines. */
export interface LineRange {
  startLine: number;
  endLine: number;
}

/** What the client knows when a request starts. */
export interface ExchangeInfo {
  id: string;
  command: ExchangeCommand;
  /** The user's words (or the command's instruction), as the view shows them. */
  prompt: string;
  /**
   * The user turn exactly as it went to the model (prompt plus code context), when it differs
   * from `prompt`. Follow-ups replay it; absent, `prompt` is replayed.
   */
  userTurn?: string;
  file?: FileRef;
  selection?: LineRange;
  /** The exchange this one follows up; the conversation is the chain of parents. */
  parentId?: string;
  /** Host clock, ms since the epoch. */
  createdAt: number;
}

export type ExchangeStatus = 'queued' | 'generating' | 'complete' | 'cancelled' | 'length' | 'error';

/**
 * `superseded`: a later repair attempt of the same fix was kept instead. `expired`: the edit can no
 * longer be applied (the window reloaded and it could not be restored).
 */
export type ProposalState = 'pending' | 'accepted' | 'rejected' | 'superseded' | 'expired';

/** A problem the editor reports, as the check shows it (1-based lines). */
export interface CheckProblem {
  line: number;
  message: string;
  severity: 'error' | 'warning';
  source?: string;
  code?: string;
}

/**
 * What checking a proposal against the editor's own diagnostics found (src/client/check):
 * - `checking`: the check runs;
 * - `checked`: the targeted problems are gone and no new problem appeared;
 * - `problems`: new problems appeared, or a targeted one is still there;
 * - `not-checked`: no diagnostics provider answered for the copy (`reason` says which case).
 */
export type CheckVerdict =
  | { kind: 'checking' }
  | { kind: 'checked'; fixed: number; tookMs: number }
  | { kind: 'problems'; newProblems: CheckProblem[]; remaining: CheckProblem[]; tookMs: number }
  | { kind: 'not-checked'; reason: string };

/** The verdict in a few words, as the view's badge, the export and the log print it. */
export function verdictLabel(v: CheckVerdict): string {
  switch (v.kind) {
    case 'checking':
      return 'Checking…';
    case 'checked':
      return 'Checked';
    case 'not-checked':
      return 'Not checked';
    case 'problems': {
      const parts: string[] = [];
      if (v.newProblems.length > 0) parts.push(`${v.newProblems.length} new problem${v.newProblems.length === 1 ? '' : 's'}`);
      if (v.remaining.length > 0) parts.push(`${v.remaining.length} problem${v.remaining.length === 1 ? '' : 's'} not fixed`);
      return parts.join(', ');
    }
  }
}

/** An edit the model proposes: `original` (the text at `startLine..` in `file`) becomes `proposed`. */
export interface Proposal {
  file: FileRef;
  /** 1-based line of the first line of `original` in the file. */
  startLine: number;
  original: string;
  proposed: string;
  /** What the diagnostics check found; absent when the check is off. */
  check?: CheckVerdict;
  /** 1 for the first answer's edit, 2 for the first repair round's, … */
  attempt?: number;
}

export interface ProposalRecord extends Proposal {
  state: ProposalState;
  /** Why the last accept/reject/review failed, shown next to the buttons. */
  message?: string;
}

export interface ExchangeStats {
  promptTokens?: number;
  /** Prompt tokens kept from the previous request's KV cache (not computed again). */
  reusedPromptTokens?: number;
  reasoningTokens: number;
  answerTokens: number;
  /** Decode speed. */
  tokensPerSecond?: number;
  /** Tokens per forward pass when prompt lookup checked drafts (above 1: drafts were kept). */
  tokensPerPass?: number;
  timeToFirstTokenMs?: number;
  /** Execution provider really used (`cpu`, `cuda`, …). */
  provider?: string;
  /** ONNX variant (`q4`, …); for a server run, the model. */
  variant?: string;
  /** The token counts are estimates (a server that does not report its reasoning tokens). */
  estimated?: boolean;
}

/** What the prompt builder dropped to fit the context window. */
export interface TruncationNote {
  part: string;
  droppedTokens: number;
  detail: string;
}

/** One request and everything the view shows for it. This is also what history persists. */
export interface ExchangeRecord {
  info: ExchangeInfo;
  status: ExchangeStatus;
  /** 1 = next to run. Set while `status` is `queued`. */
  queuePosition?: number;
  /** When generation really began (after the queue), host clock. */
  runningSince?: number;
  finishedAt?: number;
  reasoning: string;
  answer: string;
  reasoningTokens: number;
  answerTokens: number;
  /** The thinking budget closed the reasoning. */
  budgetHit: boolean;
  /** When the first answer text arrived, host clock: the thinking time is `reasoningEndedAt - runningSince`. */
  reasoningEndedAt?: number;
  proposal?: ProposalRecord;
  stats?: ExchangeStats;
  error?: string;
  truncation?: TruncationNote[];
  /** Why a finished fix proposes no edit, and whether "Continue" may finish the answer. */
  notice?: { text: string; canContinue: boolean };
}

export function isRunning(r: ExchangeRecord): boolean {
  return r.status === 'queued' || r.status === 'generating';
}

// ───────────────────────────── notifications: host → webview ─────────────────────────────

export interface HostNotifications {
  /** A new exchange; the view appends it. */
  'exchange/started': { info: ExchangeInfo; queuePosition?: number; at: number };
  /** The exchange waits behind others. */
  'exchange/queued': { id: string; position: number };
  /** The exchange left the queue and the model works on it. */
  'exchange/running': { id: string; at: number };
  /** Streamed text, with the running token counts of the exchange. */
  'exchange/delta': {
    id: string;
    kind: 'reasoning' | 'answer';
    text: string;
    reasoningTokens: number;
    answerTokens: number;
    /** Set once the thinking budget closed the reasoning. */
    budgetHit?: boolean;
    /** Host clock; dates the end of the reasoning when the first answer text arrives. */
    at?: number;
  };
  /** A proposal, new or replaced (after a partial accept the rest is proposed again); it is pending. */
  'exchange/proposal': { id: string; proposal: Proposal; message?: string };
  'exchange/proposalState': { id: string; state: ProposalState; message?: string };
  'exchange/proposalCheck': { id: string; check: CheckVerdict };
  /** Why the exchange proposes no edit. */
  'exchange/notice': { id: string; text: string; canContinue: boolean };
  'exchange/finished': {
    id: string;
    status: Exclude<ExchangeStatus, 'queued' | 'generating'>;
    at: number;
    stats?: ExchangeStats;
    budgetHit: boolean;
    error?: string;
    truncation?: TruncationNote[];
    /** The user turn as the model saw it (see `ExchangeInfo.userTurn`). */
    userTurn?: string;
  };
  /** The whole history (after a clear, or when the host's copy is the newer one). */
  'history/restore': { exchanges: ExchangeRecord[] };
  /** Put the keyboard focus into the follow-up box. */
  'view/focusInput': Record<string, never>;
}

export type HostNotificationName = keyof HostNotifications;

// ───────────────────────────── requests: webview → host ─────────────────────────────

export interface IdParams {
  id: string;
}

export interface HunkParams {
  id: string;
  hunk: number;
  /** The hunk's `@@` header as the view shows it: the host refuses when its proposal changed since. */
  header: string;
}

/** Request name → [params, reply]. */
export interface WebviewRequests {
  /** The persisted exchanges, including any still running. The view's first message. */
  'history/get': [Record<string, never>, { exchanges: ExchangeRecord[] }];
  /** Asks the user, then clears finished exchanges. */
  'history/clear': [Record<string, never>, { cleared: boolean }];
  /** Saves one exchange, reasoning included, as markdown, through a save dialog. */
  'exchange/export': [IdParams, { saved: boolean; path?: string }];
  'edit/accept': [IdParams, null];
  'edit/reject': [IdParams, null];
  /** Applies only hunk `hunk` (an index into `fileHunks` of the proposal as the view has it). */
  'edit/acceptHunk': [HunkParams, null];
  /** Drops hunk `hunk` from the proposal. */
  'edit/rejectHunk': [HunkParams, null];
  /** Opens the proposal in VS Code's diff editor. */
  'edit/review': [IdParams, null];
  'run/cancel': [IdParams, null];
  /** Continues a cut-off answer: a follow-up with a larger token budget. */
  'exchange/continue': [IdParams, null];
  /** Continues the conversation of `parentId` (or starts one). */
  followUp: [{ text: string; parentId?: string }, null];
  /** Inserts the answer as a comment above the selection of the exchange. */
  'answer/insertComment': [IdParams, null];
  /** Opens a link of model output: http(s) outside, file links only inside the workspace. */
  'link/open': [{ href: string; id?: string }, null];
  'clipboard/write': [{ text: string }, null];
}

export type WebviewRequestName = keyof WebviewRequests;
export type RequestParams<K extends WebviewRequestName> = WebviewRequests[K][0];
export type RequestReply<K extends WebviewRequestName> = WebviewRequests[K][1];

// ───────────────────────────── envelopes ─────────────────────────────

export type WebviewRequestMessage = {
  [K in WebviewRequestName]: { type: 'request'; requestId: number; method: K; params: RequestParams<K> };
}[WebviewRequestName];

export type HostNotificationMessage = {
  [K in HostNotificationName]: { type: 'notification'; method: K; params: HostNotifications[K] };
}[HostNotificationName];

export interface ReplyMessage {
  type: 'reply';
  requestId: number;
  result: unknown;
}

export interface ErrorMessage {
  type: 'error';
  requestId: number;
  error: { message: string; code: ErrorCode };
}

/** Why a request failed. */
export type ErrorCode =
  | 'invalid-request' // malformed message or params
  | 'unknown-exchange' // no exchange with that id
  | 'not-available' // nothing handles this request in this build
  | 'rejected' // refused on purpose (e.g. a link outside the workspace)
  | 'failed'; // the handler threw

export type HostMessage = HostNotificationMessage | ReplyMessage | ErrorMessage;

const REQUEST_NAMES: readonly WebviewRequestName[] = [
  'history/get',
  'history/clear',
  'exchange/export',
  'edit/accept',
  'edit/reject',
  'edit/acceptHunk',
  'edit/rejectHunk',
  'edit/review',
  'run/cancel',
  'exchange/continue',
  'followUp',
  'answer/insertComment',
  'link/open',
  'clipboard/write',
];

/** Longest text the host accepts from the webview in one field. */
export const MAX_TEXT = 100_000;

/**
 * Checks a message from the webview. The webview renders untrusted model output, so the host
 * treats what it sends as input: known method, integer request id, params of the right shape.
 */
export function parseWebviewMessage(
  raw: unknown,
): { ok: true; message: WebviewRequestMessage } | { ok: false; requestId?: number; reason: string } {
  if (typeof raw !== 'object' || raw === null) return { ok: false, reason: 'not an object' };
  const m = raw as Record<string, unknown>;
  const requestId = Number.isSafeInteger(m.requestId) ? (m.requestId as number) : undefined;
  if (m.type !== 'request' || requestId === undefined) return { ok: false, requestId, reason: 'not a request with an integer requestId' };
  const method = m.method;
  if (typeof method !== 'string' || !(REQUEST_NAMES as readonly string[]).includes(method)) {
    return { ok: false, requestId, reason: `unknown method ${JSON.stringify(method)}` };
  }
  const p = (typeof m.params === 'object' && m.params !== null ? m.params : {}) as Record<string, unknown>;
  const str = (k: string, optional = false): string | undefined | Error => {
    const v = p[k];
    if (v === undefined && optional) return undefined;
    if (typeof v !== 'string' || v.length > MAX_TEXT) return new Error(`${method}: "${k}" must be a string of at most ${MAX_TEXT} characters`);
    return v;
  };
  let params: unknown;
  switch (method as WebviewRequestName) {
    case 'history/get':
    case 'history/clear':
      params = {};
      break;
    case 'exchange/export':
    case 'edit/accept':
    case 'edit/reject':
    case 'edit/review':
    case 'run/cancel':
    case 'exchange/continue':
    case 'answer/insertComment': {
      const id = str('id');
      if (id instanceof Error) return { ok: false, requestId, reason: id.message };
      params = { id };
      break;
    }
    case 'edit/acceptHunk':
    case 'edit/rejectHunk': {
      const id = str('id');
      const header = str('header');
      if (id instanceof Error) return { ok: false, requestId, reason: id.message };
      if (header instanceof Error) return { ok: false, requestId, reason: header.message };
      if (!Number.isSafeInteger(p.hunk) || (p.hunk as number) < 0) return { ok: false, requestId, reason: `${method}: "hunk" must be a non-negative integer` };
      params = { id, hunk: p.hunk, header };
      break;
    }
    case 'followUp': {
      const text = str('text');
      const parentId = str('parentId', true);
      if (text instanceof Error) return { ok: false, requestId, reason: text.message };
      if (parentId instanceof Error) return { ok: false, requestId, reason: parentId.message };
      if (text!.trim() === '') return { ok: false, requestId, reason: 'followUp: the text is empty' };
      params = parentId === undefined ? { text } : { text, parentId };
      break;
    }
    case 'link/open': {
      const href = str('href');
      const id = str('id', true);
      if (href instanceof Error) return { ok: false, requestId, reason: href.message };
      if (id instanceof Error) return { ok: false, requestId, reason: id.message };
      params = id === undefined ? { href } : { href, id };
      break;
    }
    case 'clipboard/write': {
      const text = str('text');
      if (text instanceof Error) return { ok: false, requestId, reason: text.message };
      params = { text };
      break;
    }
  }
  return { ok: true, message: { type: 'request', requestId, method, params } as WebviewRequestMessage };
}

// ───────────────────────────── the reducer ─────────────────────────────

/** A fresh record for `exchange/started`. */
export function newRecord(p: HostNotifications['exchange/started']): ExchangeRecord {
  const queued = p.queuePosition !== undefined && p.queuePosition > 0;
  return {
    info: p.info,
    status: queued ? 'queued' : 'generating',
    queuePosition: queued ? p.queuePosition : undefined,
    runningSince: queued ? undefined : p.at,
    reasoning: '',
    answer: '',
    reasoningTokens: 0,
    answerTokens: 0,
    budgetHit: false,
  };
}

/**
 * Applies a notification to a list of records, in place, and returns the record it touched
 * (undefined when it names no known exchange). Host and webview both run it, so the history the
 * host persists and what the view shows cannot drift apart.
 */
export function applyNotification(records: ExchangeRecord[], n: HostNotificationMessage): ExchangeRecord | undefined {
  const find = (id: string) => records.find((r) => r.info.id === id);
  switch (n.method) {
    case 'exchange/started': {
      const existing = find(n.params.info.id);
      if (existing) return existing;
      const r = newRecord(n.params);
      records.push(r);
      return r;
    }
    case 'exchange/queued': {
      const r = find(n.params.id);
      if (r && r.status === 'queued') r.queuePosition = n.params.position;
      return r;
    }
    case 'exchange/running': {
      const r = find(n.params.id);
      if (r && isRunning(r)) {
        r.status = 'generating';
        r.queuePosition = undefined;
        r.runningSince ??= n.params.at;
      }
      return r;
    }
    case 'exchange/delta': {
      const r = find(n.params.id);
      if (!r || !isRunning(r)) return r;
      if (r.status === 'queued') {
        r.status = 'generating';
        r.queuePosition = undefined;
        r.runningSince ??= n.params.at;
      }
      if (n.params.kind === 'reasoning') r.reasoning += n.params.text;
      else {
        if (r.reasoningEndedAt === undefined && n.params.text !== '') r.reasoningEndedAt = n.params.at ?? r.runningSince;
        r.answer += n.params.text;
      }
      r.reasoningTokens = Math.max(r.reasoningTokens, n.params.reasoningTokens);
      r.answerTokens = Math.max(r.answerTokens, n.params.answerTokens);
      if (n.params.budgetHit) r.budgetHit = true;
      return r;
    }
    case 'exchange/proposal': {
      const r = find(n.params.id);
      if (r) r.proposal = { ...n.params.proposal, state: 'pending', message: n.params.message };
      return r;
    }
    case 'exchange/proposalCheck': {
      const r = find(n.params.id);
      if (r?.proposal) r.proposal.check = n.params.check;
      return r;
    }
    case 'exchange/notice': {
      const r = find(n.params.id);
      if (r) r.notice = { text: n.params.text, canContinue: n.params.canContinue };
      return r;
    }
    case 'exchange/proposalState': {
      const r = find(n.params.id);
      if (r?.proposal) {
        r.proposal.state = n.params.state;
        r.proposal.message = n.params.message;
      }
      return r;
    }
    case 'exchange/finished': {
      const r = find(n.params.id);
      if (!r) return r;
      r.status = n.params.status;
      r.queuePosition = undefined;
      r.finishedAt = n.params.at;
      r.reasoningEndedAt ??= r.answer === '' ? n.params.at : undefined;
      r.budgetHit = r.budgetHit || n.params.budgetHit;
      r.stats = n.params.stats;
      if (n.params.stats) {
        r.reasoningTokens = Math.max(r.reasoningTokens, n.params.stats.reasoningTokens);
        r.answerTokens = Math.max(r.answerTokens, n.params.stats.answerTokens);
      }
      r.error = n.params.error;
      r.truncation = n.params.truncation;
      if (n.params.userTurn !== undefined && n.params.userTurn !== r.info.prompt) r.info.userTurn = n.params.userTurn;
      return r;
    }
    case 'history/restore':
      records.splice(0, records.length, ...n.params.exchanges);
      return undefined;
    case 'view/focusInput':
      return undefined;
  }
}

/** The records a conversation consists of: `id` and its parents, oldest first. */
export function conversationOf(records: readonly ExchangeRecord[], id: string | undefined): ExchangeRecord[] {
  const chain: ExchangeRecord[] = [];
  const seen = new Set<string>();
  let cur = id === undefined ? undefined : records.find((r) => r.info.id === id);
  while (cur && !seen.has(cur.info.id)) {
    seen.add(cur.info.id);
    chain.unshift(cur);
    const parent = cur.info.parentId;
    cur = parent === undefined ? undefined : records.find((r) => r.info.id === parent);
  }
  return chain;
}

/** A prior turn of the conversation. Assistant turns carry the answer only. */
export interface PriorTurn {
  role: 'user' | 'assistant';
  content: string;
}

/**
 * The earlier turns a follow-up of `parentId` sends to the model: each user turn and each answer,
 * never the reasoning (DeepSeek-R1's guidance: earlier `<think>` content stays out of the prompt).
 * Exchanges that produced no answer (cancelled before answering, failed) are left out entirely.
 */
export function followUpTurns(records: readonly ExchangeRecord[], parentId: string | undefined): PriorTurn[] {
  const turns: PriorTurn[] = [];
  for (const r of conversationOf(records, parentId)) {
    const answer = answerOnly(r.answer);
    if (answer === '') continue;
    turns.push({ role: 'user', content: r.info.userTurn ?? r.info.prompt });
    turns.push({ role: 'assistant', content: answer });
  }
  return turns;
}

// ───────────────────────────── history ─────────────────────────────

export const HISTORY_LIMIT = 50;

/**
 * Reads a persisted history defensively: drops malformed entries, keeps the newest
 * `HISTORY_LIMIT`, and marks exchanges that were running when the window went away.
 */
export function reviveHistory(raw: unknown, now: number): ExchangeRecord[] {
  const list = Array.isArray(raw) ? raw : [];
  const ok = list.filter(
    (r): r is ExchangeRecord =>
      typeof r === 'object' &&
      r !== null &&
      typeof r.info?.id === 'string' &&
      typeof r.info?.prompt === 'string' &&
      typeof r.status === 'string' &&
      typeof r.reasoning === 'string' &&
      typeof r.answer === 'string',
  );
  for (const r of ok) {
    if (isRunning(r)) {
      r.status = 'cancelled';
      r.queuePosition = undefined;
      r.finishedAt ??= now;
      r.error = 'Stopped: the window was reloaded while this request ran.';
    }
  }
  return ok.slice(-HISTORY_LIMIT);
}

// ───────────────────────────── links ─────────────────────────────

export type LinkTarget =
  | { kind: 'external'; url: string }
  /** `path` is a file URL (`file:`) or a path relative to the workspace/file (no scheme). */
  | { kind: 'file'; path: string; absolute: boolean; line?: number }
  | { kind: 'rejected'; reason: string };

const SCHEME = /^([a-z][a-z0-9+.-]*):/i;

/**
 * What a link in model output may open: http and https pages, and files (a `file:` URL or a
 * relative path, optionally `#L12`). Anything else (javascript:, data:, vscode:, command:,
 * protocol-relative `//host`) is refused. The host still checks that a file lies in the workspace.
 */
export function classifyLink(href: string): LinkTarget {
  // Browsers ignore ASCII whitespace and control characters inside a scheme; so do we.
  const h = href.replace(/[\u0000-\u0020\u007f-\u009f]/g, '');
  if (h === '') return { kind: 'rejected', reason: 'empty link' };
  if (h.startsWith('//') || h.startsWith('\\\\') || h.startsWith('/\\') || h.startsWith('\\/')) {
    return { kind: 'rejected', reason: 'protocol-relative links are not opened' };
  }
  const scheme = SCHEME.exec(h)?.[1]?.toLowerCase();
  if (scheme === 'http' || scheme === 'https') {
    let url: URL;
    try {
      url = new URL(h);
    } catch {
      return { kind: 'rejected', reason: 'malformed URL' };
    }
    if (!url.hostname) return { kind: 'rejected', reason: 'URL without a host' };
    return { kind: 'external', url: url.href };
  }
  if (scheme !== undefined && scheme !== 'file') {
    // A Windows drive letter (`C:/x`) parses as a one-letter scheme; that is an absolute path.
    if (/^[a-z]:[\\/]/i.test(h)) return withLine(h, true);
    return { kind: 'rejected', reason: `links with the scheme "${scheme}:" are not opened` };
  }
  if (scheme === 'file') {
    if (!/^file:\/\/(localhost)?\//i.test(h)) return { kind: 'rejected', reason: 'file links must name a local path' };
    return withLine(h, true);
  }
  return withLine(h, h.startsWith('/'));
}

function withLine(h: string, absolute: boolean): LinkTarget {
  const hash = h.indexOf('#');
  const path = hash < 0 ? h : h.slice(0, hash);
  const frag = hash < 0 ? '' : h.slice(hash + 1);
  const m = /^L(\d+)/i.exec(frag);
  if (path === '') return { kind: 'rejected', reason: 'in-page anchors are not links to open' };
  return m ? { kind: 'file', path, absolute, line: Number(m[1]) } : { kind: 'file', path, absolute };
}

// ───────────────────────────── the HTML shell ─────────────────────────────

/**
 * The one inline style the view allows: an empty `<style>` element (SHA-256 of the empty string).
 * The toolkit (fast-web-utilities' `canUseFocusVisible`) appends one to probe `:focus-visible`
 * support; an empty element can style nothing, and model output cannot create elements at all.
 */
export const EMPTY_STYLE_HASH = "'sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU='";

/** The Content Security Policy of the view: nothing loads but our own script (by nonce) and styles. */
export function webviewCsp(cspSource: string, nonce: string): string {
  return [
    "default-src 'none'",
    `img-src ${cspSource}`,
    `style-src ${cspSource} ${EMPTY_STYLE_HASH}`,
    `font-src ${cspSource}`,
    `script-src 'nonce-${nonce}'`,
    "base-uri 'none'",
    "form-action 'none'",
  ].join('; ');
}

export interface ShellOptions {
  cspSource: string;
  nonce: string;
  scriptUri: string;
  styleUri: string;
}

/** Text as HTML, safe in element content and in double-quoted attribute values (the shell's and the view's). */
export function escapeHtml(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

/** The document the view loads. `main.ts` builds everything inside `#app`. */
export function webviewHtml(o: ShellOptions): string {
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="UTF-8">
<meta http-equiv="Content-Security-Policy" content="${escapeHtml(webviewCsp(o.cspSource, o.nonce))}">
<meta name="viewport" content="width=device-width, initial-scale=1.0">
<link rel="stylesheet" href="${escapeHtml(o.styleUri)}">
<title>R1 Reasoning</title>
</head>
<body>
<div id="app"></div>
<script nonce="${escapeHtml(o.nonce)}" src="${escapeHtml(o.scriptUri)}"></script>
</body>
</html>`;
}

// ───────────────────────────── export ─────────────────────────────

const COMMAND_TITLES: Record<ExchangeCommand, string> = { ask: 'Ask', fix: 'Fix', explain: 'Explain', followUp: 'Follow-up', repair: 'Repair' };

export function commandTitle(c: ExchangeCommand): string {
  return COMMAND_TITLES[c] ?? c;
}

/** A fence longer than any backtick run inside `text`. */
function fence(text: string): string {
  const longest = Math.max(2, ...Array.from(text.matchAll(/`+/g), (m) => m[0].length));
  return '`'.repeat(longest + 1);
}

/** One exchange as a markdown document, reasoning included. */
export function exchangeToMarkdown(r: ExchangeRecord): string {
  const lines: string[] = [];
  const title = `${commandTitle(r.info.command)}${r.info.file ? `: ${r.info.file.label}` : ''}`;
  lines.push(`# R1 ${title}`, '');
  const meta: string[] = [`- Date: ${new Date(r.info.createdAt).toISOString()}`, `- Status: ${r.status}`];
  if (r.info.file) meta.push(`- File: \`${r.info.file.label}\``);
  if (r.info.selection) meta.push(`- Selection: lines ${r.info.selection.startLine}–${r.info.selection.endLine}`);
  const s = r.stats;
  meta.push(`- Tokens: ${r.reasoningTokens} reasoning, ${r.answerTokens} answer${s?.promptTokens !== undefined ? `, ${s.promptTokens} prompt` : ''}`);
  if (s?.tokensPerSecond !== undefined) meta.push(`- Speed: ${s.tokensPerSecond.toFixed(1)} tok/s${s.tokensPerPass !== undefined ? ` (${s.tokensPerPass.toFixed(2)} tokens a forward pass: prompt lookup)` : ''}`);
  if (s?.provider) meta.push(`- Provider: ${s.provider}${s.variant ? ` (${s.variant})` : ''}`);
  if (r.budgetHit) meta.push('- The thinking budget cut the reasoning.');
  if (r.error) meta.push(`- Error: ${r.error}`);
  lines.push(...meta, '', '## Prompt', '', r.info.prompt.trim(), '');
  const reasoning = stripThinkTags(r.reasoning).trim();
  lines.push('## Reasoning', '');
  lines.push(reasoning === '' ? '_No reasoning._' : reasoning.split('\n').map((l) => (l === '' ? '>' : `> ${l}`)).join('\n'));
  if (r.budgetHit) lines.push('>', '> _[Thinking budget reached: the reasoning was cut here.]_');
  lines.push('', '## Answer', '', stripThinkTags(r.answer).trim() || '_No answer._', '');
  if (r.notice) lines.push(`_No edit proposed: ${r.notice.text}_`, '');
  if (r.proposal) {
    const patch = proposalPatch(r.proposal);
    const f = fence(patch);
    const attempt = r.proposal.attempt && r.proposal.attempt > 1 ? `, attempt ${r.proposal.attempt}` : '';
    lines.push(`## Proposed edit (${r.proposal.state}${attempt})`, '');
    const check = r.proposal.check;
    if (check) {
      lines.push(`- Check: ${verdictLabel(check)}${check.kind === 'not-checked' ? ` (${check.reason})` : ''}`);
      if (check.kind === 'problems') {
        for (const p of [...check.newProblems, ...check.remaining]) lines.push(`  - line ${p.line}: ${p.message}${check.remaining.includes(p) ? ' (not fixed)' : ''}`);
      }
      lines.push('');
    }
    lines.push(`${f}diff`, patch, f, '');
  }
  return lines.join('\n');
}
