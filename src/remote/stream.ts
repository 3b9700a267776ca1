/**
 * Reading a streamed reply: lines of the body as they arrive, then either server-sent events
 * (OpenAI's `data: <json>` … `data: [DONE]`) or NDJSON (Ollama's /api/chat: one JSON object a
 * line). A body that goes silent for `idleMs`, or breaks, ends with a `stream-broken` error.
 */
import { RemoteError } from './errors';
import { Aborted } from './http';
import type { ServerUrl } from './url';

/** The lines of a body (without their line ends), as they arrive. */
export async function* lines(body: ReadableStream<Uint8Array>, server: ServerUrl, idleMs: number, signal?: AbortSignal): AsyncGenerator<string> {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let buffer = '';
  const onAbort = () => void reader.cancel().catch(() => undefined);
  signal?.addEventListener('abort', onAbort, { once: true });
  try {
    for (;;) {
      let timer: NodeJS.Timeout | undefined;
      const idle = new Promise<'idle'>((resolve) => (timer = setTimeout(() => resolve('idle'), idleMs)));
      let step: ReadableStreamReadResult<Uint8Array> | 'idle';
      try {
        step = await Promise.race([reader.read(), idle]);
      } catch (e) {
        if (signal?.aborted) throw new Aborted('cancelled');
        throw new RemoteError('stream-broken', `The connection to the server at ${server.raw} broke before the reply ended (${e instanceof Error ? e.message : String(e)}).`, server.raw, undefined, { cause: e });
      } finally {
        clearTimeout(timer);
      }
      if (signal?.aborted) throw new Aborted('cancelled');
      if (step === 'idle') {
        void reader.cancel().catch(() => undefined);
        throw new RemoteError('stream-broken', `The server at ${server.raw} sent nothing for ${Math.round(idleMs / 1000)} s in the middle of the reply, so R1 Coder closed the stream.`, server.raw);
      }
      if (step.done) break;
      buffer += decoder.decode(step.value, { stream: true });
      let nl: number;
      while ((nl = buffer.indexOf('\n')) >= 0) {
        const line = buffer.slice(0, nl).replace(/\r$/, '');
        buffer = buffer.slice(nl + 1);
        yield line;
      }
    }
    buffer += decoder.decode();
    if (buffer !== '') yield buffer.replace(/\r$/, '');
  } finally {
    signal?.removeEventListener('abort', onAbort);
    reader.releaseLock();
  }
}

/** One server-sent event: its `event:` name (`message` when none) and its data lines joined. */
export interface SseEvent {
  event: string;
  data: string;
}

/**
 * Server-sent events (the WHATWG event-stream format): `data:` lines joined by newlines, `event:`
 * names, `:` comments skipped, an event ending at a blank line. A line `error: {…}` (some
 * llama.cpp versions write errors so) is passed on as an `error` event.
 */
export async function* sseEvents(source: AsyncIterable<string>): AsyncGenerator<SseEvent> {
  let data: string[] = [];
  let event = 'message';
  for await (const line of source) {
    if (line === '') {
      if (data.length > 0) yield { event, data: data.join('\n') };
      data = [];
      event = 'message';
      continue;
    }
    if (line.startsWith(':')) continue;
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'data') data.push(value);
    else if (field === 'event') event = value;
    else if (field === 'error') {
      yield { event: 'error', data: value };
    }
  }
  if (data.length > 0) yield { event, data: data.join('\n') };
}
