/**
 * Server-sent events as OpenAI streams them: `data: <json>\n\n` per chunk, `data: [DONE]` at the
 * end. The headers go out with the first chunk, so a request that fails before its first token
 * still gets an ordinary JSON error with its own status.
 */
import type { ServerResponse } from 'node:http';

export class SseWriter {
  private opened = false;

  constructor(
    private readonly res: ServerResponse,
    /** The first chunk (the assistant's role), written when the stream opens. */
    private readonly opening: () => unknown,
  ) {}

  /** True once the 200 and the first chunk are written: errors from now on go in the stream. */
  get started(): boolean {
    return this.opened;
  }

  private get closed(): boolean {
    return this.res.destroyed || this.res.writableEnded;
  }

  send(data: unknown): void {
    if (this.closed) return;
    if (!this.opened) {
      this.opened = true;
      this.res.writeHead(200, {
        'Content-Type': 'text/event-stream; charset=utf-8',
        'Cache-Control': 'no-cache',
        Connection: 'keep-alive',
        // nginx and other proxies: pass chunks on as they come.
        'X-Accel-Buffering': 'no',
      });
      this.res.write(`data: ${JSON.stringify(this.opening())}\n\n`);
    }
    this.res.write(`data: ${JSON.stringify(data)}\n\n`);
  }

  /** `data: [DONE]` and the end of the response. */
  done(): void {
    if (this.closed) return;
    this.res.end('data: [DONE]\n\n');
  }

  /** Ends the response without `[DONE]` (after an error chunk: the stream did not complete). */
  abort(): void {
    if (!this.closed) this.res.end();
  }
}
