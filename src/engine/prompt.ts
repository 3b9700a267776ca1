/**
 * Prompts for the R1 distills: the model's own chat template (rendered with @huggingface/jinja),
 * and the ask / fix / explain user turns, fitted into the context window; for a server that applies
 * the template itself (src/remote), the same turns as chat messages (`buildMessages`).
 *
 * DeepSeek's advice for R1 distills is followed: no system prompt (every instruction is in the user
 * turn), the reply starts with "<think>\n", and earlier turns carry final answers only.
 */
import { Template } from '@huggingface/jinja';
import { commentLine, fenceTag, languageOfPath } from '../text/languages';
import { answerOnly, THINK_CLOSE, THINK_OPEN } from '../text/thinking';
import { ModelError } from './errors';
import type { R1Tokenizer } from './tokenizer';
import type { ChatTurn, CodeContext, DiagnosticInfo, PromptRequest, TruncationNote } from './types';

/** What the reply starts with when R1 Coder opens the reasoning itself: the opening tag on a line of its own. */
const GENERATION_START = `${THINK_OPEN}\n`;

const templates = new WeakMap<R1Tokenizer, { source: string; template: Template; opensReasoning?: boolean }>();

function compiledTemplate(tokenizer: R1Tokenizer): Template {
  const source = tokenizer.chatTemplate;
  if (source === undefined || source.trim() === '') {
    throw new ModelError(
      'invalid-field',
      'tokenizer_config.json has no chat_template, so R1 Coder cannot format a conversation for this model.',
      'Use an R1-Distill model folder whose tokenizer_config.json has a chat_template (download the model again).',
      tokenizer.configFile,
    );
  }
  const cached = templates.get(tokenizer);
  if (cached && cached.source === source) return cached.template;
  templates.delete(tokenizer);
  try {
    const template = new Template(source);
    templates.set(tokenizer, { source, template });
    return template;
  } catch (e) {
    throw new ModelError(
      'invalid-field',
      `The chat_template of tokenizer_config.json cannot be parsed (${e instanceof Error ? e.message : String(e)}).`,
      'The file is probably damaged or not an R1-Distill tokenizer: download the model again.',
      tokenizer.configFile,
      { cause: e },
    );
  }
}

function renderTemplate(tokenizer: R1Tokenizer, template: Template, messages: { role: string; content: string }[], addGenerationPrompt: boolean): string {
  try {
    return template.render({
      messages,
      bos_token: tokenizer.bosToken ?? '',
      eos_token: tokenizer.eosToken ?? '',
      add_generation_prompt: addGenerationPrompt,
    });
  } catch (e) {
    throw new ModelError(
      'invalid-field',
      `The chat_template of tokenizer_config.json failed to render (${e instanceof Error ? e.message : String(e)}).`,
      'The template does not accept a plain user/assistant conversation: use an R1 model folder.',
      tokenizer.configFile,
      { cause: e },
    );
  }
}

/**
 * Whether R1 Coder opens the reasoning after the template's generation prompt, decided once per
 * template from what `add_generation_prompt` adds to a one-question conversation:
 * - the bare assistant tag (R1-Distill's first template revision): yes, as DeepSeek advises for
 *   the distills, which otherwise sometimes skip their reasoning;
 * - anything that writes a think tag (newer distill revisions end in "<think>\n"; templates that
 *   switch thinking on or off): no, the template handles it;
 * - nothing (DeepSeek-R1-0528's template, whose user turn already ends in `<｜Assistant｜>`; that
 *   model writes `<think>` itself): no, the template is followed.
 */
function templateNeedsThinkStart(tokenizer: R1Tokenizer, template: Template): boolean {
  const cached = templates.get(tokenizer);
  if (cached?.opensReasoning !== undefined) return cached.opensReasoning;
  const probe = [{ role: 'user', content: 'x' }];
  const without = renderTemplate(tokenizer, template, probe, false);
  const withPrompt = renderTemplate(tokenizer, template, probe, true);
  const generationPrompt = withPrompt.startsWith(without) ? withPrompt.slice(without.length) : withPrompt;
  const opens = generationPrompt.trim() !== '' && !generationPrompt.includes(THINK_OPEN) && !generationPrompt.includes(THINK_CLOSE);
  if (cached) cached.opensReasoning = opens;
  return opens;
}

/**
 * Renders the model's own chat template with @huggingface/jinja. Assistant turns carry answers
 * only. The generation prompt is the template's; R1 Coder adds "<think>\n" only when the template
 * leaves the reasoning to the caller (templateNeedsThinkStart), and completes a bare "<think>" into
 * "<think>\n". `opts.system` becomes a system message (R1-0528's template puts it first; the
 * distills' templates do too, though DeepSeek advises against one for them: R1 Coder's own
 * prompts send none).
 */
export function renderChat(tokenizer: R1Tokenizer, turns: ChatTurn[], opts: { system?: string } = {}): string {
  const template = compiledTemplate(tokenizer);
  const messages = turns.map((t) => ({
    role: t.role as string,
    content: t.role === 'assistant' ? answerOnly(t.content) : t.content,
  }));
  if (opts.system !== undefined && opts.system !== '') messages.unshift({ role: 'system', content: opts.system });
  const text = renderTemplate(tokenizer, template, messages, true);
  if (text.endsWith(GENERATION_START)) return text;
  if (text.endsWith(THINK_OPEN)) return `${text}\n`;
  return templateNeedsThinkStart(tokenizer, template) ? text + GENERATION_START : text;
}

// ---------------------------------------------------------------------------------------------
// Code presentation

function languageOf(ctx: CodeContext): string {
  return ctx.language || languageOfPath(ctx.filePath ?? '') || '';
}

/** A fence longer than any backtick run inside the code, so the code cannot close it. */
function fenced(code: string, language: string): string {
  let longest = 0;
  for (const m of code.matchAll(/`+/g)) longest = Math.max(longest, m[0].length);
  const fence = '`'.repeat(Math.max(3, longest + 1));
  return `${fence}${fenceTag(language)}\n${code.replace(/\s+$/, '')}\n${fence}`;
}

function splitLines(text: string): string[] {
  return text.split(/\r?\n/);
}

function rangeLabel(start: number, end: number): string {
  return start === end ? `line ${start}` : `lines ${start}-${end}`;
}

function formatDiagnostic(d: DiagnosticInfo): string {
  const where = d.startLine === d.endLine ? `line ${d.startLine}` : `lines ${d.startLine}-${d.endLine}`;
  const origin = [d.source, d.code].filter(Boolean).join(' ');
  return `- ${where}, ${d.severity}${origin ? ` (${origin})` : ''}: ${d.message.replace(/\s+/g, ' ').trim()}`;
}

/**
 * The lines of the file around the selection, nearest first. `keep` of them are shown; the rest is
 * replaced by "… N lines omitted …" markers. The selection itself is shown apart, so a marker line
 * stands in its place.
 */
class FileContext {
  readonly lines: string[];
  /** 0-based indexes of the context lines, nearest to the selection first. */
  readonly order: number[];
  readonly sel: { start: number; end: number } | undefined; // 0-based, inclusive

  /**
   * `firstLine`: the document line (1-based) of the text's first line, when the text is a window
   * of a larger file; the selection and every line number shown are the document's.
   */
  constructor(
    fileText: string,
    selection: { startLine: number; endLine: number } | undefined,
    private readonly language: string,
    private readonly firstLine = 1,
  ) {
    this.lines = splitLines(fileText);
    if (this.lines.length > 1 && this.lines[this.lines.length - 1] === '') this.lines.pop();
    const n = this.lines.length;
    if (selection) {
      const start = Math.min(Math.max(selection.startLine - firstLine + 1, 1), n) - 1;
      const end = Math.min(Math.max(selection.endLine - firstLine + 1, start + 1, 1), n) - 1;
      this.sel = { start, end };
    }
    const dist = (i: number) => {
      if (!this.sel) return i;
      return i < this.sel.start ? this.sel.start - i : i - this.sel.end;
    };
    const idx: number[] = [];
    for (let i = 0; i < n; i++) if (!this.sel || i < this.sel.start || i > this.sel.end) idx.push(i);
    // Nearest first; at equal distance the line above comes first.
    this.order = idx.sort((a, b) => dist(a) - dist(b) || a - b);
  }

  get total(): number {
    return this.order.length;
  }

  /** The shown text with `keep` context lines, or undefined when nothing of the file is shown. */
  render(keep: number): string | undefined {
    if (keep <= 0) return undefined;
    const kept = new Set(this.order.slice(0, keep));
    const out: string[] = [];
    let omitted = 0;
    const flush = () => {
      if (omitted > 0) out.push(commentLine(this.language, `… ${omitted} line${omitted === 1 ? '' : 's'} omitted …`));
      omitted = 0;
    };
    for (let i = 0; i < this.lines.length; i++) {
      if (this.sel && i === this.sel.start) {
        flush();
        out.push(
          commentLine(
            this.language,
            `… ${rangeLabel(this.sel.start + this.firstLine, this.sel.end + this.firstLine)}: the selected code, shown below …`,
          ),
        );
        i = this.sel.end;
        continue;
      }
      if (kept.has(i)) {
        flush();
        out.push(this.lines[i]!);
      } else {
        omitted++;
      }
    }
    flush();
    return out.join('\n');
  }

  /** Line ranges (1-based) left out when `keep` lines are shown. */
  omittedRanges(keep: number): string {
    const kept = new Set(this.order.slice(0, Math.max(0, keep)));
    const ranges: string[] = [];
    let start = -1;
    for (let i = 0; i <= this.lines.length; i++) {
      const out = i < this.lines.length && !kept.has(i) && !(this.sel && i >= this.sel.start && i <= this.sel.end);
      if (out && start < 0) start = i;
      if (!out && start >= 0) {
        const from = start + this.firstLine;
        const to = i - 1 + this.firstLine;
        ranges.push(from === to ? `${from}` : `${from}-${to}`);
        start = -1;
      }
    }
    return ranges.join(', ');
  }

  omittedText(keep: number): string {
    const kept = new Set(this.order.slice(0, Math.max(0, keep)));
    return this.order.filter((i) => !kept.has(i)).sort((a, b) => a - b).map((i) => this.lines[i]).join('\n');
  }
}

interface Prepared {
  kind: PromptRequest['kind'];
  question: string;
  language: string;
  filePath: string | undefined;
  code: string | undefined;
  /** 1-based, inclusive, when known. */
  range: { start: number; end: number } | undefined;
  diagnostics: DiagnosticInfo[];
  extra: string | undefined;
  file: FileContext | undefined;
}

function prepare(req: PromptRequest): Prepared {
  const ctx = req.context ?? {};
  const language = languageOf(ctx);
  const question = (req.question ?? '').trim();
  let code = ctx.code;
  let range = ctx.selection ? { start: ctx.selection.startLine, end: ctx.selection.endLine } : undefined;
  const firstLine = ctx.fileStartLine ?? 1;
  if ((code === undefined || code === '') && ctx.fileText !== undefined && ctx.selection) {
    const lines = splitLines(ctx.fileText);
    code = lines.slice(ctx.selection.startLine - firstLine, ctx.selection.endLine - firstLine + 1).join('\n');
  }
  if (code !== undefined && code.trim() === '') code = undefined;
  if (code === undefined) range = undefined;
  if (req.kind === 'ask' && question === '') {
    throw new ModelError('invalid-field', 'The question is empty.', 'Type a question to ask.');
  }
  if ((req.kind === 'fix' || req.kind === 'explain') && code === undefined) {
    throw new ModelError(
      'invalid-field',
      `There is no code to ${req.kind}: the request has neither code nor a selection of the file.`,
      `Select the code to ${req.kind} first.`,
    );
  }
  let file: FileContext | undefined;
  // The file is context only when it is more than the code already shown.
  if (ctx.fileText !== undefined && ctx.fileText.trim() !== '' && ctx.fileText !== code) {
    file = new FileContext(ctx.fileText, code !== undefined ? ctx.selection : undefined, language, firstLine);
    if (file.total === 0) file = undefined;
  }
  return {
    kind: req.kind,
    question,
    language,
    filePath: ctx.filePath,
    code,
    range,
    diagnostics: ctx.diagnostics ?? [],
    extra: ctx.extraContext?.trim() || undefined,
    file,
  };
}

function sourceLabel(p: Prepared): string {
  const parts: string[] = [];
  if (p.filePath) parts.push(`\`${p.filePath}\``);
  if (p.language && p.language !== 'plaintext') parts.push(`(${p.language})`);
  return parts.join(' ');
}

/** The user turn for a request, with `keep` lines of file context and optionally the extra context. */
function userMessage(p: Prepared, keep: number, withExtra: boolean): string {
  const blocks: string[] = [];
  const src = sourceLabel(p);
  const range = p.range ? rangeLabel(p.range.start, p.range.end) : undefined;
  const lang = p.language && p.language !== 'plaintext' ? `${p.language} ` : '';
  const where = p.filePath
    ? `the code ${[range ? `at ${range}` : '', `of ${src}`].filter(Boolean).join(' ')}`
    : `the ${lang}code below`;

  if (p.kind === 'fix') blocks.push(`Fix ${where}.`);
  else if (p.kind === 'explain') blocks.push(`Explain ${where}.`);
  else if (p.filePath) blocks.push(`I am working in ${src}.`);

  const context = p.file?.render(keep);
  if (context !== undefined) {
    const label = p.code !== undefined ? 'Surrounding code in the file, for context only' : 'The file';
    blocks.push(`${label}:\n${fenced(context, p.language)}`);
  }
  if (p.diagnostics.length > 0) {
    blocks.push(`Problems reported in the file:\n${p.diagnostics.map(formatDiagnostic).join('\n')}`);
  }
  if (withExtra && p.extra) blocks.push(`Additional context:\n${p.extra}`);
  if (p.code !== undefined) {
    const head = p.kind === 'fix' ? 'Code to fix' : p.kind === 'explain' ? 'Code to explain' : 'Selected code';
    blocks.push(`${head}${range ? ` (${range})` : ''}:\n${fenced(p.code, p.language)}`);
  }

  const tag = fenceTag(p.language);
  switch (p.kind) {
    case 'fix': {
      if (p.question) blocks.push(`What to fix: ${p.question}`);
      const scope = range ? `the corrected code for ${range} only` : 'the corrected version of this code only';
      blocks.push(
        `Reply with ${scope}, in a single \`\`\`${tag} code block that replaces exactly that code. ` +
          'Keep the original indentation and leave the parts that are not broken unchanged. ' +
          `Do not include any code from outside ${range ?? 'it'}. ` +
          'After the code block, explain the fix in one or two sentences.',
      );
      break;
    }
    case 'explain':
      if (p.question) blocks.push(`Focus on: ${p.question}`);
      blocks.push(
        'Explain concisely what this code does and how: one sentence of summary, then the key points as a short list. ' +
          'Mention bugs or pitfalls only if you see real ones.',
      );
      break;
    case 'ask':
      blocks.push(`Question: ${p.question}`);
      blocks.push(
        (p.code !== undefined || context !== undefined || p.extra ? 'Answer the question, using the code above as context. ' : 'Answer the question. ') +
          'Put any code in fenced code blocks with the language tag.',
      );
      break;
  }
  return blocks.join('\n\n');
}

function snippet(text: string, max = 60): string {
  const one = text.replace(/\s+/g, ' ').trim();
  return one.length > max ? `${one.slice(0, max - 1)}…` : one;
}

/** A prompt that fits the context window. */
export interface FittedPrompt {
  text: string;
  ids: number[];
  /**
   * The last user turn exactly as rendered into `text` (instruction, code, the context that
   * fitted). A follow-up replays it, so the model sees the code again and the earlier prompt's
   * KV rows are reused.
   */
  userTurn: string;
  truncation: TruncationNote[];
}

/**
 * Builds ask/fix/explain prompts from typed input and fits them into contextWindow - maxNewTokens,
 * dropping oldest turns, then far parts of the file, and reporting each drop. Throws
 * ModelError('prompt-too-long') when it cannot fit.
 */
export function buildPrompt(
  tokenizer: R1Tokenizer,
  req: PromptRequest,
  opts: { contextWindow: number; maxNewTokens: number },
): FittedPrompt {
  const p = prepare(req);
  const budget = Math.floor(opts.contextWindow) - Math.floor(opts.maxNewTokens);
  const tooLong = (needed: number | undefined) =>
    new ModelError(
      'prompt-too-long',
      needed === undefined
        ? `The context window (${opts.contextWindow} tokens) leaves no room for a prompt after reserving ${opts.maxNewTokens} tokens for the answer.`
        : `The prompt needs ${needed} tokens, but the context window of ${opts.contextWindow} tokens leaves only ${budget} after reserving ${opts.maxNewTokens} for the answer, even with the earlier conversation and the file context left out.`,
      'Select less code, or raise r1.generation.contextWindow (or lower r1.generation.maxNewTokens).',
    );
  if (budget <= 0) throw tooLong(undefined);

  const render = (turns: ChatTurn[]) => renderChat(tokenizer, turns);
  const fast = fitPrompt(render, p, req.history ?? [], budget, chunkedEncoder(tokenizer));
  const ids = tokenizer.encode(fast.text);
  if (ids.length === fast.ids.length && ids.every((id, i) => id === fast.ids[i])) {
    if (ids.length > budget) throw tooLong(ids.length);
    return { text: fast.text, ids, userTurn: fast.userTurn, truncation: fast.truncation };
  }
  // The piecewise count disagreed with the tokenizer (a pre-tokenizer that joins text across
  // lines): fit again, encoding every candidate whole.
  const exact = fitPrompt(render, p, req.history ?? [], budget, (text) => tokenizer.encode(text));
  if (exact.ids.length > budget) throw tooLong(exact.ids.length);
  return { text: exact.text, ids: exact.ids, userTurn: exact.userTurn, truncation: exact.truncation };
}

/** A conversation for a server that applies the chat template itself (see `buildMessages`). */
export interface FittedMessages {
  /** Earlier turns (assistant turns by their answer only), then the user turn. */
  turns: ChatTurn[];
  /** The last user turn: the same text `buildPrompt` would render for the same request. */
  userTurn: string;
  /** Tokens of `turns` as estimated here (the server's tokenizer is not at hand). */
  estimatedTokens: number;
  truncation: TruncationNote[];
}

/**
 * Prompt tokens of chat text without the model's tokenizer: about three characters a token (code
 * and English under Qwen's tokenizer run 3-4; the lower figure keeps the fit on the safe side).
 */
export function estimateTokens(text: string): number {
  return Math.ceil(text.length / 3);
}

/**
 * The conversation `buildPrompt` would render, as chat messages for a server that applies the
 * model's chat template itself: the same ask/fix/explain user turn, earlier turns by their answer
 * only, and the same context drops to fit `contextWindow - maxNewTokens`, measured with
 * `estimateTokens` (a server with a smaller window answers with its own error).
 */
export function buildMessages(req: PromptRequest, opts: { contextWindow: number; maxNewTokens: number }): FittedMessages {
  const p = prepare(req);
  const budget = Math.floor(opts.contextWindow) - Math.floor(opts.maxNewTokens);
  if (budget <= 0) {
    throw new ModelError(
      'prompt-too-long',
      `The context window (${opts.contextWindow} tokens) leaves no room for a prompt after reserving ${opts.maxNewTokens} tokens for the answer.`,
      'Raise r1.generation.contextWindow (or lower r1.generation.maxNewTokens).',
    );
  }
  // Each message costs a few tokens of the template's role markers.
  const render = (turns: ChatTurn[]) => turns.map((t) => `<|${t.role}|>${t.role === 'assistant' ? answerOnly(t.content) : t.content}`).join('');
  const fit = fitPrompt(render, p, req.history ?? [], budget, (text) => ({ length: estimateTokens(text) }));
  const turns = fit.turns.map((t) => (t.role === 'assistant' ? { role: t.role, content: answerOnly(t.content) } : t));
  return { turns, userTurn: fit.userTurn, estimatedTokens: fit.ids.length, truncation: fit.truncation };
}

/**
 * Encodes text piece by piece, remembering each piece. Pieces are cut after a newline and before a
 * non-space character: Qwen's pre-tokenizer never joins text across such a point, so the ids are
 * those of encoding the whole text, and the candidates of a fitting search (which share almost all
 * their lines) cost little more than their new lines.
 */
function chunkedEncoder(tokenizer: R1Tokenizer): (text: string) => number[] {
  const cache = new Map<string, number[]>();
  return (text) => {
    const out: number[] = [];
    for (const piece of text.split(/(?<=\n)(?=\S)/)) {
      let ids = cache.get(piece);
      if (!ids) {
        ids = tokenizer.encode(piece);
        cache.set(piece, ids);
      }
      for (const id of ids) out.push(id);
    }
    return out;
  };
}

/**
 * Drops context until the conversation, as `render` writes it, fits `budget` tokens as counted by
 * `encode` (or nothing is left to drop). `encode` may return token ids, or only a count.
 */
function fitPrompt<E extends { readonly length: number }>(
  render: (turns: ChatTurn[]) => string,
  p: Prepared,
  turns: ChatTurn[],
  budget: number,
  encode: (text: string) => E,
): { text: string; ids: E; userTurn: string; turns: ChatTurn[]; truncation: TruncationNote[] } {
  // An assistant turn with no answer (cancelled while reasoning) says nothing: leave it out.
  let history = turns.filter((t) => t.role === 'user' || answerOnly(t.content) !== '');
  let keep = p.file?.total ?? 0;
  let withExtra = true;
  const truncation: TruncationNote[] = [];

  const measure = () => {
    const userTurn = userMessage(p, keep, withExtra);
    const all: ChatTurn[] = [...history, { role: 'user', content: userTurn }];
    const text = render(all);
    return { text, ids: encode(text), userTurn, turns: all };
  };
  let cur = measure();

  // 1. The oldest turns of the conversation, a question with its answer at a time.
  while (cur.ids.length > budget && history.length > 0) {
    const n = history[0]!.role === 'user' && history[1]?.role === 'assistant' ? 2 : 1;
    const dropped = history.slice(0, n);
    history = history.slice(n);
    const next = measure();
    const first = dropped[0]!;
    truncation.push({
      part: 'turn',
      droppedTokens: cur.ids.length - next.ids.length,
      detail:
        n === 2
          ? `Left out the oldest question of the conversation and its answer ("${snippet(first.content)}").`
          : `Left out the oldest ${first.role === 'user' ? 'question' : 'answer'} of the conversation ("${snippet(first.content)}").`,
    });
    cur = next;
  }

  // 2. The lines of the file farthest from the selection: the most lines that fit.
  if (cur.ids.length > budget && p.file && keep > 0) {
    const file = p.file;
    const fits = (k: number) => {
      keep = k;
      const m = measure();
      return m.ids.length <= budget ? m : undefined;
    };
    let lo = 0; // largest count known to fit (0 is checked below)
    let hi = file.total; // known not to fit
    let best = fits(0);
    if (best) {
      while (hi - lo > 1) {
        const mid = (lo + hi) >> 1;
        const m = fits(mid);
        if (m) {
          lo = mid;
          best = m;
        } else {
          hi = mid;
        }
      }
    }
    keep = best ? lo : 0;
    const shown = keep;
    const omittedLines = file.total - shown;
    const droppedTokens = encode(file.omittedText(shown)).length;
    truncation.push({
      part: 'file-context',
      droppedTokens,
      detail:
        shown === 0
          ? `Left out the surrounding file${p.filePath ? ` ${p.filePath}` : ''} (${omittedLines} lines); only the selected code is sent.`
          : `Left out ${omittedLines} of ${file.total} lines of ${p.filePath ?? 'the file'} far from the selection (lines ${file.omittedRanges(shown)}).`,
    });
    cur = best ?? measure();
  }

  // 3. The extra context.
  if (cur.ids.length > budget && p.extra) {
    withExtra = false;
    const next = measure();
    truncation.push({
      part: 'extra-context',
      droppedTokens: cur.ids.length - next.ids.length,
      detail: 'Left out the additional context.',
    });
    cur = next;
  }

  return { text: cur.text, ids: cur.ids, userTurn: cur.userTurn, turns: cur.turns, truncation };
}
