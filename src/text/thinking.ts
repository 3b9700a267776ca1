/**
 * The think-tag text rules of DeepSeek-R1 models: the `<think>` and `</think>` tag strings, how the
 * tags are removed from text that is shown (`stripThinkTags`), and which part of a message is its
 * answer (`answerOnly`: what goes back to the model in a later turn, or into a file). The engine's
 * prompt and streaming splitter, the Reasoning view's protocol and the view itself all use these
 * rules, so this file imports nothing: it is bundled into the engine, the extension and the webview.
 */

/** Opens the model's reasoning. R1's tokenizer has no special token for it: it is plain text. */
export const THINK_OPEN = '<think>';
/** Closes the model's reasoning; what follows the last one is the answer. */
export const THINK_CLOSE = '</think>';

/** R1 wraps its reasoning in `<think>…</think>`; neither tag may show up in what the view renders. */
export function stripThinkTags(text: string): string {
  return text.replace(/<\/?think>[ \t]*\n?/g, '');
}

/**
 * The answer part of an assistant message, as it may go back to the model or into a file.
 *
 * - Whatever precedes the last `</think>` is reasoning and is dropped, as DeepSeek-R1's chat
 *   template does.
 * - A `<think>` that is not closed after that opens reasoning that runs to the end of the message
 *   (a turn cancelled while thinking, or a model that started thinking again in its answer): it is
 *   dropped with everything after it. So `<think>` text never comes back as an answer, and the
 *   prompt never carries a dangling `<think>`.
 *
 * The result is trimmed; '' means the message has no answer.
 */
export function answerOnly(content: string): string {
  const close = content.lastIndexOf(THINK_CLOSE);
  const tail = close < 0 ? content : content.slice(close + THINK_CLOSE.length);
  const open = tail.indexOf(THINK_OPEN);
  return (open < 0 ? tail : tail.slice(0, open)).trim();
}
