/**
 * src/serve in-process, on a stand-in model (a ChatBackend) that fails or waits on command: what
 * a client sees when the model fails before or during its answer, when a queued client leaves,
 * and which addresses count as loopback. The `openai` package is the client.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import OpenAI, { APIError } from 'openai';
import type { ChatCompletionChunk } from 'openai/resources/chat/completions';
import { type ChatTurn, type GenerateOptions, type GenerationResult, ModelError } from '../../../src/engine';
import { type ChatBackend, type RunningServer, checkBindSafety, isLoopbackHost, startServer } from '../../../src/serve';

function result(status: GenerationResult['status'], reasoning: string, answer: string, error?: string): GenerationResult {
  return {
    status,
    reasoning,
    answer,
    codeBlocks: [],
    stats: {
      promptTokens: 3,
      reusedPromptTokens: 0,
      reasoningTokens: reasoning ? 2 : 0,
      answerTokens: answer ? 2 : 0,
      timeToFirstTokenMs: 1,
      prefillTokensPerSecond: 1,
      decodeTokensPerSecond: 1,
      provider: 'cpu',
      variant: 'q4',
      thinkingBudgetHit: false,
    },
    truncation: [],
    ...(error !== undefined ? { error } : {}),
  };
}

/** Waits for the event loop to turn (the engine yields the same way between steps). */
const turn = () => new Promise<void>((r) => setImmediate(r));

/** What the last user message says decides what the stand-in does. */
class StandIn implements ChatBackend {
  readonly maxPositions = 4096;
  /** Resolved when a `hold` generation has started (see expectHold). */
  holding: Promise<void> = Promise.resolve();
  private held: (() => void) | undefined;
  private lastPrompt = '';

  promptIds(turns: ChatTurn[]): number[] {
    this.lastPrompt = turns.at(-1)!.content;
    if (this.lastPrompt === 'bad template') {
      throw new ModelError('invalid-field', 'The chat_template of tokenizer_config.json failed to render.', 'Use an R1-Distill model folder.', 'tokenizer_config.json');
    }
    return [1, 2, 3];
  }

  async generate(_ids: number[], opts: GenerateOptions): Promise<GenerationResult> {
    const say = (kind: 'reasoning' | 'answer', text: string) => opts.onEvent?.({ kind, text });
    switch (this.lastPrompt) {
      case 'fail before': // ONNX Runtime fails in the prefill
        return result('error', '', '', 'ONNX Runtime: bad allocation');
      case 'fail during':
        say('reasoning', 'Let me think');
        await turn();
        say('answer', 'The answer is');
        await turn();
        return result('error', 'Let me think', 'The answer is', 'ONNX Runtime: bad allocation');
      case 'throw':
        throw new TypeError('something unexpected');
      case 'hold': {
        // Runs until cancelled, as a long generation would.
        say('reasoning', 'Waiting');
        this.held?.();
        await new Promise<void>((r) => opts.signal!.addEventListener('abort', () => r(), { once: true }));
        return result('cancelled', 'Waiting', '');
      }
      default:
        say('reasoning', 'Short.');
        say('answer', 'Fine.');
        return result('complete', 'Short.', 'Fine.');
    }
  }

  /** The next `hold` generation resolves `holding` when it starts. */
  expectHold(): void {
    this.holding = new Promise((r) => (this.held = r));
  }

  async dispose(): Promise<void> {}
}

describe('r1 serve in-process, on a stand-in model', () => {
  const model = new StandIn();
  let server: RunningServer;
  let openai: OpenAI;
  const log: string[] = [];

  before(async () => {
    server = await startServer({
      backend: model,
      settings: { modelId: 'stand-in', contextWindow: 4096, defaultMaxTokens: 100, defaultThinkingBudget: 0, reasoningField: 'reasoning_content' },
      host: '127.0.0.1',
      port: 0,
      queueLimit: 1,
      log: (line) => log.push(line),
    });
    openai = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: 'none', maxRetries: 0 });
  });
  after(() => server?.close());

  const ask = (content: string, signal?: AbortSignal) =>
    openai.chat.completions.create({ model: 'stand-in', messages: [{ role: 'user', content }] }, { signal });
  /** Until the server's queue holds `n` requests. */
  const queued = async (n: number) => {
    while (server.health().generations.queued !== n) await turn();
  };

  async function failure(p: Promise<unknown>): Promise<APIError> {
    try {
      await p;
    } catch (e) {
      assert.ok(e instanceof APIError, `an APIError, got ${String(e)}`);
      return e;
    }
    assert.fail('the request succeeded');
  }

  it('a model error before any output: 500 with an OpenAI-shaped body naming the failure', async () => {
    const e = await failure(ask('fail before'));
    assert.equal(e.status, 500);
    assert.equal(e.type, 'server_error');
    assert.equal(e.code, 'model_error');
    assert.match(e.message, /bad allocation/);
  });

  it('a model error mid-stream: the chunks so far, then an error chunk, and the stream closes without [DONE]', async () => {
    const stream = await openai.chat.completions.create({ model: 'stand-in', messages: [{ role: 'user', content: 'fail during' }], stream: true });
    const got: ChatCompletionChunk[] = [];
    const e = await failure(
      (async () => {
        for await (const c of stream) got.push(c);
      })(),
    );
    assert.match(e.message, /bad allocation/);
    const deltas = got.flatMap((c) => c.choices.map((ch) => ch.delta as Record<string, unknown>));
    assert.deepEqual(
      deltas.map((d) => d.reasoning_content ?? d.content),
      ['', 'Let me think', 'The answer is'],
    );
    assert.ok(got.every((c) => c.choices.every((ch) => ch.finish_reason === null)), 'no finish_reason: the answer did not end');
  });

  it('an unexpected exception and a template the engine refuses: 500, and the server keeps serving', async () => {
    const thrown = await failure(ask('throw'));
    assert.equal(thrown.status, 500);
    assert.equal(thrown.code, 'internal_error');
    const template = await failure(ask('bad template'));
    assert.equal(template.status, 500);
    assert.equal(template.code, 'model_error');
    assert.match(template.message, /chat_template/);
    const ok = await ask('hello');
    assert.equal(ok.choices[0]!.message.content, 'Fine.');
    assert.equal(ok.choices[0]!.finish_reason, 'stop');
    assert.equal(server.health().generations.failed, 3, "three generations failed (the template failed before any)");
  });

  // Last: it closes the server.
  it('a queued client that leaves never runs and frees its place; closing the server cancels the rest', async () => {
    /** The error a request ends with (attached at once: the server's close rejects them together). */
    const settled = (p: Promise<unknown>) => p.then(() => undefined, (e: unknown) => e);
    model.expectHold();
    const running = settled(ask('hold'));
    await model.holding;
    const leaving = new AbortController();
    const leaver = settled(ask('hello', leaving.signal));
    await queued(1);
    leaving.abort();
    assert.ok((await leaver) instanceof Error);
    await queued(0);
    assert.equal(server.health().generations.running, 1, 'the first still runs');
    const waiting = settled(ask('hello'));
    await queued(1);
    await server.close();
    assert.ok((await running) instanceof Error, 'the running request ends without a reply');
    assert.ok((await waiting) instanceof Error, 'the waiting request ends without a reply');
    const h = server.health();
    assert.equal(h.status, 'stopping');
    assert.deepEqual([h.generations.running, h.generations.queued, h.generations.cancelled], [0, 0, 3]);
    assert.equal(log.filter((l) => / json cancelled while queued/.test(l)).length, 2, log.join('\n'));
  });
});

describe('where r1 serve may listen', () => {
  it('loopback addresses and names', async () => {
    for (const h of ['127.0.0.1', '127.0.0.2', '::1', '[::1]', 'localhost']) assert.equal(await isLoopbackHost(h), true, h);
    for (const h of ['0.0.0.0', '::', '192.168.1.10', '10.0.0.1']) assert.equal(await isLoopbackHost(h), false, h);
  });

  it('a non-loopback address needs a key or --insecure', async () => {
    await assert.rejects(checkBindSafety('0.0.0.0', undefined, false), /without an API key/);
    await checkBindSafety('0.0.0.0', 'key', false);
    await checkBindSafety('0.0.0.0', undefined, true);
    await checkBindSafety('127.0.0.1', undefined, false);
  });
});
