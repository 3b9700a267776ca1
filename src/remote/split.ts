/**
 * One reasoning/answer split for every wire shape, on the engine's own ReasoningSplitter (the rule
 * of src/text/thinking.ts: everything before the first `</think>` is reasoning).
 *
 * - Reasoning a server sends in its own field (`reasoning`, `reasoning_content`, `thinking`) is
 *   pushed as reasoning text.
 * - Content that follows such reasoning is the answer: the server's parser cut the `</think>`
 *   out, so it is put back before the content.
 * - Content with no reasoning field before it is the model's raw text (a server whose reasoning
 *   parser is off): it goes through the splitter as the engine's own output does, so
 *   `<think>…</think>`, or only `</think>` (the R1 template opens `<think>` in the prompt), splits
 *   it. Ollama's /api/chat with `think: true` is the exception: it always separates the thinking,
 *   so its content is the answer unless it opens with `<think>` itself (an Ollama too old for
 *   `think`).
 * - Reasoning that never closes (`content: null` to the end) stays reasoning.
 */
import { ReasoningSplitter, type StreamEvent } from '../engine';
import { THINK_CLOSE, THINK_OPEN } from '../text/thinking';

export class WireSplitter {
  private readonly splitter = new ReasoningSplitter();
  private mode: 'raw' | 'answer' | undefined;
  private sawReasoningField = false;
  /** Whitespace-only content that came before the mode was decided. */
  private held = '';
  /** Streamed pieces of each kind: an estimate of their tokens (servers stream about one token a chunk). */
  reasoningChunks = 0;
  answerChunks = 0;
  /** Reasoning a server sent after the answer had begun; not shown (the answer is what follows `</think>`). */
  lateReasoning = '';

  constructor(
    /** The server separates reasoning whenever the model reasons (Ollama's /api/chat with think: true). */
    private readonly contentIsAnswer: boolean,
  ) {}

  get reasoning(): string {
    return this.splitter.reasoning;
  }

  get answer(): string {
    return this.splitter.answer;
  }

  get inAnswer(): boolean {
    return this.splitter.inAnswer;
  }

  /** Text of the server's reasoning field. */
  pushReasoning(text: string): StreamEvent[] {
    if (text === '') return [];
    if (this.splitter.inAnswer) {
      this.lateReasoning += text;
      return [];
    }
    this.sawReasoningField = true;
    this.reasoningChunks++;
    return this.splitter.push(text);
  }

  /** Text of `content`. */
  pushContent(text: string): StreamEvent[] {
    if (text === '') return [];
    const events: StreamEvent[] = [];
    if (this.mode === undefined) {
      const seen = this.held + text;
      if (seen.trim() === '') {
        this.held = seen;
        return events;
      }
      this.held = '';
      const opensTag = seen.trimStart().startsWith(THINK_OPEN);
      this.mode = this.sawReasoningField || (this.contentIsAnswer && !opensTag) ? 'answer' : 'raw';
      text = seen;
      if (this.mode === 'answer' && !this.splitter.inAnswer) events.push(...this.splitter.push(THINK_CLOSE));
    }
    const before = this.splitter.inAnswer;
    events.push(...this.splitter.push(text));
    if (before || this.splitter.inAnswer) this.answerChunks++;
    else this.reasoningChunks++;
    return merge(events);
  }

  /** The end of the reply: what the splitter held back. */
  end(): StreamEvent[] {
    return this.splitter.end();
  }
}

function merge(events: StreamEvent[]): StreamEvent[] {
  const out: StreamEvent[] = [];
  for (const e of events) {
    const last = out[out.length - 1];
    if (last && last.kind === e.kind) last.text += e.text;
    else if (e.text) out.push({ ...e });
  }
  return out;
}
