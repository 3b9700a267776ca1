/**
 * Splits the streamed text of an R1 model into its reasoning and its answer.
 *
 * The rule: everything until the first "</think>" is reasoning, everything after it is answer. An
 * opening "<think>" may be there (older chat templates let the model write it) or not (newer ones
 * end the prompt with it); it is never emitted. Tags split across pushes ("</thi" + "nk>") are
 * recognised: text that could be the start of a tag is held back until it is decided.
 */
import { THINK_CLOSE as CLOSE, THINK_OPEN as OPEN } from '../text/thinking';
import type { StreamEvent } from './types';

/** Length of the longest suffix of `text` that is a proper prefix of `tag`. */
function partialTagSuffix(text: string, tag: string): number {
  const max = Math.min(text.length, tag.length - 1);
  for (let n = max; n > 0; n--) {
    if (text.endsWith(tag.slice(0, n))) return n;
  }
  return 0;
}

export class ReasoningSplitter {
  private phase: 'reasoning' | 'answer' = 'reasoning';
  /** Reasoning text not yet emitted: a possible partial tag or trailing whitespace. */
  private pending = '';
  private openSeen = false;
  /** Nothing of the reasoning / answer emitted yet (leading whitespace is dropped). */
  private reasoningStarted = false;
  private answerStarted = false;
  private reasoningText = '';
  private answerText = '';

  get inAnswer(): boolean {
    return this.phase === 'answer';
  }

  /** The reasoning emitted so far (without tags). */
  get reasoning(): string {
    return this.reasoningText;
  }

  /** The answer emitted so far. */
  get answer(): string {
    return this.answerText;
  }

  push(text: string): StreamEvent[] {
    const events: StreamEvent[] = [];
    if (text.length === 0) return events;
    if (this.phase === 'answer') {
      this.emitAnswer(text, events);
      return events;
    }
    let buf = this.pending + text;
    this.pending = '';
    for (;;) {
      const close = buf.indexOf(CLOSE);
      const open = this.openSeen ? -1 : buf.indexOf(OPEN);
      if (open >= 0 && (close < 0 || open < close)) {
        // The opening tag: drop it, keep what surrounds it as reasoning.
        this.openSeen = true;
        buf = buf.slice(0, open) + buf.slice(open + OPEN.length);
        continue;
      }
      if (close >= 0) {
        this.emitReasoning(buf.slice(0, close), events, true);
        this.phase = 'answer';
        this.emitAnswer(buf.slice(close + CLOSE.length), events);
        return events;
      }
      break;
    }
    // Hold back what could still become a tag, and trailing whitespace (dropped if "</think>" follows).
    let hold = partialTagSuffix(buf, CLOSE);
    if (!this.openSeen) hold = Math.max(hold, partialTagSuffix(buf, OPEN));
    let cut = buf.length - hold;
    while (cut > 0 && /\s/.test(buf[cut - 1]!)) cut--;
    this.pending = buf.slice(cut);
    this.emitReasoning(buf.slice(0, cut), events, false);
    return events;
  }

  /** Flushes what is held back. A "</think>" that never came leaves everything as reasoning. */
  end(): StreamEvent[] {
    const events: StreamEvent[] = [];
    if (this.phase === 'reasoning' && this.pending) {
      this.emitReasoning(this.pending, events, true);
    }
    this.pending = '';
    return events;
  }

  private emitReasoning(text: string, events: StreamEvent[], final: boolean): void {
    let t = text;
    if (!this.reasoningStarted) t = t.replace(/^\s+/, '');
    if (final) t = t.replace(/\s+$/, '');
    if (t.length === 0) return;
    this.reasoningStarted = true;
    this.reasoningText += t;
    push(events, 'reasoning', t);
  }

  private emitAnswer(text: string, events: StreamEvent[]): void {
    let t = text;
    if (!this.answerStarted) {
      // The blank lines after "</think>" are not part of the answer; indentation of its first line is.
      t = t.replace(/^[ \t]*(?:\r?\n)+/, '').replace(/^(?:[ \t]*\r?\n)+/, '');
      if (t.trim() === '') return;
    }
    if (t.length === 0) return;
    this.answerStarted = true;
    this.answerText += t;
    push(events, 'answer', t);
  }
}

function push(events: StreamEvent[], kind: StreamEvent['kind'], text: string): void {
  const last = events[events.length - 1];
  if (last && last.kind === kind) last.text += text;
  else events.push({ kind, text });
}
