/**
 * `r1 serve` end to end: the CLI spawned as in test/unit/cli (node with the tsx loader) on the
 * scripted fixture, and the official `openai` package as the client (raw fetch where a request
 * must be malformed or lack its key). Each test asserts on what a client sees: the reply, its
 * status and error body, /health, and the server's log on stderr.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { join, resolve } from 'node:path';
import { after, before, describe, it } from 'node:test';
import OpenAI, { APIError } from 'openai';
import type { ChatCompletion, ChatCompletionChunk, ChatCompletionCreateParamsNonStreaming, ChatCompletionCreateParamsStreaming } from 'openai/resources/chat/completions';
import { DEFAULT_SCRIPT, FIXTURES_DIR, buildScriptedModel, encodeScript, ensureFixture } from '../../fixtures/models';

const ROOT = resolve(__dirname, '../../..');
const KEY = 'test-key-0123456789';

/** The scripted model's reasoning and answer, as a client must receive them. */
const [SCRIPT_REASONING, SCRIPT_ANSWER] = ((): [string, string] => {
  const [reasoning, answer] = DEFAULT_SCRIPT.split('</think>') as [string, string];
  return [reasoning.trim(), answer.replace(/^\n+/, '')];
})();

/** A long reasoning (thousands of tokens): a generation that lasts while a test works around it. */
const LONG_SCRIPT = `${Array.from({ length: 400 }, (_, i) => `Step ${i + 1}: check the next case.`).join(' ')}\n</think>\n\nDone.`;

interface Served {
  url: string;
  child: ChildProcess;
  stderr: () => string;
  /** Resolves when stderr matches `re` (rejects after `ms`). */
  waitForLog: (re: RegExp, ms?: number) => Promise<string>;
  stop: () => Promise<number | null>;
}

interface Exited {
  code: number | null;
  stdout: string;
  stderr: string;
}

function spawnServe(args: string[], env: NodeJS.ProcessEnv = {}): ChildProcess {
  const base = { ...process.env };
  delete base.R1_API_KEY;
  return spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'serve', ...args], {
    cwd: ROOT,
    env: { ...base, NO_COLOR: '1', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

/** Starts `r1 serve` on a free port; resolves with the URL of its first stdout line. */
function serve(args: string[], env: NodeJS.ProcessEnv = {}): Promise<Served> {
  const child = spawnServe(['--port', '0', '--provider', 'cpu', ...args], env);
  let stderr = '';
  const waiters: Array<() => void> = [];
  child.stderr!.on('data', (d: Buffer) => {
    stderr += d.toString();
    for (const w of [...waiters]) w();
  });
  const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  const waitForLog = (re: RegExp, ms = 20_000) =>
    new Promise<string>((resolvePromise, reject) => {
      const check = () => {
        const m = re.exec(stderr);
        if (!m) return false;
        waiters.splice(waiters.indexOf(check), 1);
        clearTimeout(timer);
        resolvePromise(m[0]);
        return true;
      };
      const timer = setTimeout(() => {
        waiters.splice(waiters.indexOf(check), 1);
        reject(new Error(`no log line matching ${re} within ${ms} ms; stderr:\n${stderr}`));
      }, ms);
      waiters.push(check);
      check();
    });
  return new Promise((resolvePromise, reject) => {
    let stdout = '';
    child.stdout!.on('data', (d: Buffer) => {
      stdout += d.toString();
      const nl = stdout.indexOf('\n');
      if (nl >= 0) {
        resolvePromise({
          url: stdout.slice(0, nl),
          child,
          stderr: () => stderr,
          waitForLog,
          stop: async () => {
            child.kill('SIGTERM');
            return exited;
          },
        });
      }
    });
    void exited.then((code) => reject(new Error(`r1 serve exited (${code}) before printing its URL:\n${stderr}`)));
  });
}

function run(args: string[], env: NodeJS.ProcessEnv = {}): Promise<Exited> {
  const child = spawnServe(args, env);
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  return new Promise((r) => child.on('close', (code) => r({ code, stdout, stderr })));
}

function client(url: string, apiKey = KEY): OpenAI {
  return new OpenAI({ baseURL: `${url}/v1`, apiKey, maxRetries: 0 });
}

/** What a client reads of a stream: the text of each field, the finish reason, the usage chunk. */
async function readStream(stream: AsyncIterable<ChatCompletionChunk>) {
  const chunks: ChatCompletionChunk[] = [];
  for await (const c of stream) chunks.push(c);
  const field = (name: string) =>
    chunks
      .flatMap((c) => c.choices)
      .map((ch) => (ch.delta as Record<string, unknown>)[name])
      .filter((t): t is string => typeof t === 'string')
      .join('');
  const finishes = chunks.flatMap((c) => c.choices).filter((ch) => ch.finish_reason !== null);
  return {
    chunks,
    reasoning: field('reasoning_content'),
    reasoningAlias: field('reasoning'),
    content: field('content'),
    finish: finishes.map((f) => f.finish_reason),
    usage: chunks.at(-1)?.usage ?? undefined,
  };
}

/** The error a call failed with; fails the test when it succeeded. */
async function failure(p: Promise<unknown>): Promise<APIError> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof APIError, `an APIError, got ${String(e)}`);
    return e;
  }
  assert.fail('the request succeeded');
}

async function health(url: string) {
  const res = await fetch(`${url}/health`);
  return { status: res.status, body: (await res.json()) as { status: string; model: string; generations: Record<string, number> } };
}

const USER = [{ role: 'user' as const, content: 'Why does parsePort return a string?' }];

type Extra = Record<string, unknown>;
const create = (c: OpenAI, body: Omit<ChatCompletionCreateParamsNonStreaming, 'model' | 'messages'> & Extra & { model?: string; messages?: unknown }) =>
  c.chat.completions.create({ model: 'scripted', messages: USER, ...body } as ChatCompletionCreateParamsNonStreaming) as Promise<ChatCompletion>;
const createStream = (c: OpenAI, body: Omit<ChatCompletionCreateParamsStreaming, 'model' | 'messages' | 'stream'> & Extra & { messages?: unknown }, signal?: AbortSignal) =>
  c.chat.completions.create({ model: 'scripted', messages: USER, ...body, stream: true } as ChatCompletionCreateParamsStreaming, { signal });

type Message = ChatCompletion['choices'][number]['message'] & { reasoning_content?: string | null; reasoning?: string | null };

describe('r1 serve on the scripted model, with an API key', () => {
  let server: Served;
  let openai: OpenAI;
  let scriptTokens: number;
  let reasoningTokens: number;

  before(async () => {
    const model = await ensureFixture('scripted');
    const ids = await encodeScript(DEFAULT_SCRIPT);
    scriptTokens = ids.length;
    const endIds = await encodeScript('</think>');
    assert.equal(endIds.length, 1);
    // The engine counts `</think>` with the reasoning.
    reasoningTokens = ids.indexOf(endIds[0]!) + 1;
    server = await serve(['--model', model, '--context-window', '2048'], { R1_API_KEY: KEY });
    openai = client(server.url);
  });
  after(async () => {
    const code = await server?.stop();
    assert.equal(code, 0, 'SIGTERM stops the server cleanly');
  });

  it('prints its URL first: loopback, the port it really bound', () => {
    assert.match(server.url, /^http:\/\/127\.0\.0\.1:\d+$/);
    assert.ok(!server.url.endsWith(':0'));
  });

  it('not streamed: reasoning_content holds the reasoning, content exactly the answer, usage the reasoning tokens', async () => {
    const r = await create(openai, {});
    assert.equal(r.object, 'chat.completion');
    assert.equal(r.model, 'scripted');
    const choice = r.choices[0]!;
    const message = choice.message as Message;
    assert.equal(message.role, 'assistant');
    assert.equal(message.reasoning_content, SCRIPT_REASONING);
    assert.equal(message.content, SCRIPT_ANSWER);
    assert.ok(!('reasoning' in message), 'no `reasoning` unless asked');
    assert.equal(choice.finish_reason, 'stop');
    assert.ok(r.usage);
    assert.ok(r.usage.prompt_tokens > 0);
    assert.equal(r.usage.completion_tokens, scriptTokens);
    assert.equal(r.usage.total_tokens, r.usage.prompt_tokens + scriptTokens);
    assert.equal(r.usage.completion_tokens_details?.reasoning_tokens, reasoningTokens);
  });

  it('streamed: chat.completion.chunk deltas, reasoning first then the answer, usage in a last chunk when asked, then [DONE]', async () => {
    const s = await readStream(await createStream(openai, { stream_options: { include_usage: true } }));
    assert.equal(s.reasoning, SCRIPT_REASONING);
    assert.equal(s.content, SCRIPT_ANSWER);
    assert.equal(s.reasoningAlias, '');
    assert.deepEqual(s.finish, ['stop']);
    for (const c of s.chunks) assert.equal(c.object, 'chat.completion.chunk');
    assert.equal(s.chunks[0]!.choices[0]!.delta.role, 'assistant');
    const deltas = s.chunks.flatMap((c) => c.choices.map((ch) => ch.delta as Record<string, unknown>));
    const lastReasoning = deltas.map((d) => typeof d.reasoning_content === 'string').lastIndexOf(true);
    const firstAnswer = deltas.findIndex((d) => typeof d.content === 'string' && d.content !== '');
    assert.ok(lastReasoning < firstAnswer, 'the answer follows the reasoning');
    // The usage chunk: no choices, the same counts as a non-streamed reply.
    assert.deepEqual(s.chunks.at(-1)!.choices, []);
    assert.equal(s.usage?.completion_tokens, scriptTokens);
    assert.equal(s.usage?.completion_tokens_details?.reasoning_tokens, reasoningTokens);
  });

  it('streamed without stream_options: no usage chunk', async () => {
    const s = await readStream(await createStream(openai, {}));
    assert.equal(s.content, SCRIPT_ANSWER);
    assert.ok(s.chunks.every((c) => c.choices.length === 1 && !('usage' in c)));
  });

  it('the raw stream ends in data: [DONE]', async () => {
    const res = await fetch(`${server.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${KEY}`, 'Content-Type': 'application/json' },
      body: JSON.stringify({ messages: USER, stream: true, max_tokens: 3 }),
    });
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /^text\/event-stream/);
    const text = await res.text();
    assert.ok(text.endsWith('data: [DONE]\n\n'), text.slice(-200));
    for (const event of text.trim().split('\n\n')) assert.match(event, /^data: /);
  });

  it('reasoning_field "both" in the request: the reasoning also in `reasoning`, streamed and not', async () => {
    const r = await create(openai, { reasoning_field: 'both' });
    const m = r.choices[0]!.message as Message;
    assert.equal(m.reasoning, SCRIPT_REASONING);
    assert.equal(m.reasoning_content, SCRIPT_REASONING);
    assert.equal(m.content, SCRIPT_ANSWER);
    const s = await readStream(await createStream(openai, { reasoning_field: 'both' }));
    assert.equal(s.reasoningAlias, SCRIPT_REASONING);
    assert.equal(s.reasoning, SCRIPT_REASONING);
  });

  it('max_tokens (and max_completion_tokens) end the reply with finish_reason length; content null while still reasoning', async () => {
    for (const limit of [{ max_tokens: 10 }, { max_completion_tokens: 10 }]) {
      const r = await create(openai, limit);
      const m = r.choices[0]!.message as Message;
      assert.equal(r.choices[0]!.finish_reason, 'length');
      assert.equal(m.content, null);
      assert.ok(m.reasoning_content && SCRIPT_REASONING.startsWith(m.reasoning_content), m.reasoning_content ?? '');
      assert.equal(r.usage?.completion_tokens, 10);
      assert.equal(r.usage?.completion_tokens_details?.reasoning_tokens, 10);
    }
    const s = await readStream(await createStream(openai, { max_tokens: 4 }));
    assert.deepEqual(s.finish, ['length']);
    assert.equal(s.content, '');
  });

  it('stop sequences end the answer before the sequence, streamed and not; reasoning is not matched', async () => {
    const fence = SCRIPT_ANSWER.slice(0, SCRIPT_ANSWER.indexOf('```'));
    const r = await create(openai, { stop: '```' });
    assert.equal(r.choices[0]!.finish_reason, 'stop');
    assert.equal(r.choices[0]!.message.content, fence);
    assert.equal((r.choices[0]!.message as Message).reasoning_content, SCRIPT_REASONING, '"`" in the reasoning does not stop it');
    // A sequence of several tokens, one of several: no part of it is ever sent.
    const s = await readStream(await createStream(openai, { stop: ['no such text', 'Fixed ✅'] }));
    assert.deepEqual(s.finish, ['stop']);
    assert.equal(s.content, SCRIPT_ANSWER.slice(0, SCRIPT_ANSWER.indexOf('Fixed ✅')));
    assert.equal(s.reasoning, SCRIPT_REASONING);
  });

  it('thinking_token_budget (and thinking_budget_tokens) close the reasoning early; the answer follows', async () => {
    for (const budget of [{ thinking_token_budget: 5 }, { thinking_budget_tokens: 5 }]) {
      const r = await create(openai, budget);
      const m = r.choices[0]!.message as Message;
      assert.equal(r.usage?.completion_tokens_details?.reasoning_tokens, 5);
      assert.ok(m.reasoning_content && SCRIPT_REASONING.startsWith(m.reasoning_content));
      assert.ok(m.reasoning_content.length < SCRIPT_REASONING.length);
      assert.equal(m.content, SCRIPT_ANSWER);
    }
  });

  it('earlier assistant reasoning is dropped from the prompt; temperature, top_p and seed are taken', async () => {
    const prompt = async (assistant: Record<string, unknown>) => {
      const r = await create(openai, {
        messages: [USER[0], { role: 'assistant', ...assistant }, { role: 'user', content: 'And now?' }],
        max_tokens: 1,
        temperature: 0.3,
        top_p: 0.9,
        seed: 7,
      });
      return r.usage!.prompt_tokens;
    };
    const plain = await prompt({ content: 'It returns the input on bad input.' });
    assert.equal(await prompt({ content: '<think>I should look at parseInt first.</think>It returns the input on bad input.' }), plain);
    assert.equal(await prompt({ content: 'It returns the input on bad input.', reasoning_content: 'I should look at parseInt first.' }), plain);
    assert.ok((await prompt({ content: 'It returns the input on bad input, and more.' })) > plain, 'the answer itself does count');
  });

  it('a system message goes into the prompt (folded into the first user turn); text content parts are read', async () => {
    const base = (await create(openai, { max_tokens: 1 })).usage!.prompt_tokens;
    const withSystem = await create(openai, { max_tokens: 1, messages: [{ role: 'system', content: 'Answer in French.' }, ...USER] });
    assert.ok(withSystem.usage!.prompt_tokens > base);
    const parts = await create(openai, { max_tokens: 1, messages: [{ role: 'user', content: [{ type: 'text', text: USER[0].content }] }] });
    assert.equal(parts.usage!.prompt_tokens, base);
  });

  it('GET /v1/models lists the served id; another model is 404 model_not_found; no model is this one', async () => {
    const list = await openai.models.list();
    assert.deepEqual(
      list.data.map((m) => m.id),
      ['scripted'],
    );
    assert.equal((await openai.models.retrieve('scripted')).id, 'scripted');
    const e = await failure(create(openai, { model: 'gpt-4o' }));
    assert.equal(e.status, 404);
    assert.equal(e.code, 'model_not_found');
    assert.match(e.message, /scripted/);
    const res = await fetch(`${server.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${KEY}` },
      body: JSON.stringify({ messages: USER, max_tokens: 2 }),
    });
    assert.equal(res.status, 200);
  });

  it('401 without a key and with a wrong one; /health needs none', async () => {
    const wrong = await failure(client(server.url, 'wrong-key').chat.completions.create({ model: 'scripted', messages: USER }));
    assert.equal(wrong.status, 401);
    assert.equal(wrong.code, 'invalid_api_key');
    const none = await fetch(`${server.url}/v1/models`);
    assert.equal(none.status, 401);
    assert.equal(none.headers.get('www-authenticate'), 'Bearer');
    const body = (await none.json()) as { error: Record<string, unknown> };
    assert.deepEqual(Object.keys(body.error).sort(), ['code', 'message', 'param', 'type']);
    assert.equal(body.error.type, 'invalid_request_error');
    const h = await health(server.url);
    assert.equal(h.status, 200);
    assert.equal(h.body.status, 'ok');
  });

  it('a body over 4 MiB is refused with 413 and the connection still serves', async () => {
    const e = await failure(create(openai, { messages: [{ role: 'user', content: 'x'.repeat(5 * 1024 * 1024) }] }));
    assert.equal(e.status, 413);
    assert.equal(e.code, 'request_too_large');
    assert.equal((await create(openai, { max_tokens: 2 })).choices[0]!.finish_reason, 'length');
  });

  it('bad JSON is a 400 with an OpenAI-shaped error body', async () => {
    const res = await fetch(`${server.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${KEY}`, 'Content-Type': 'application/json' },
      body: '{"messages": [',
    });
    assert.equal(res.status, 400);
    const body = (await res.json()) as { error: { message: string; type: string; param: unknown; code: string } };
    assert.equal(body.error.type, 'invalid_request_error');
    assert.equal(body.error.code, 'invalid_json');
    assert.equal(body.error.param, null);
    assert.match(body.error.message, /not valid JSON/);
  });

  it('a known field of the wrong type is a 400 naming the field', async () => {
    const cases: Array<[Extra, string]> = [
      [{ temperature: 'warm' }, 'temperature'],
      [{ max_tokens: 2.5 }, 'max_tokens'],
      [{ stream: 'yes' }, 'stream'],
      [{ stop: [1] }, 'stop[0]'],
      [{ seed: '7' }, 'seed'],
      [{ thinking_token_budget: '5' }, 'thinking_token_budget'],
      [{ messages: 'hello' }, 'messages'],
      [{ messages: [{ role: 'user', content: 42 }] }, 'messages[0].content'],
      [{ messages: [{ role: 'tool', content: 'x' }] }, 'messages[0].role'],
      [{ model: 3 }, 'model'],
    ];
    for (const [body, param] of cases) {
      const e = await failure(create(openai, body as Extra));
      assert.equal(e.status, 400, JSON.stringify(body));
      assert.equal(e.param, param, JSON.stringify(body));
      assert.equal(e.type, 'invalid_request_error');
    }
  });

  it('a prompt longer than the context window is a 400 context_length_exceeded; so is a max_tokens that does not fit', async () => {
    const long = await failure(create(openai, { messages: [{ role: 'user', content: 'parse the port '.repeat(1000) }] }));
    assert.equal(long.status, 400);
    assert.equal(long.code, 'context_length_exceeded');
    assert.match(long.message, /maximum context length is 2048 tokens/);
    const room = await failure(create(openai, { max_tokens: 2040 }));
    assert.equal(room.status, 400);
    assert.equal(room.code, 'context_length_exceeded');
  });

  it('an unknown route is 404, a wrong method 405 with Allow', async () => {
    const auth = { Authorization: `Bearer ${KEY}` };
    const unknown = await fetch(`${server.url}/v1/completions`, { method: 'POST', headers: auth, body: '{}' });
    assert.equal(unknown.status, 404);
    assert.equal(((await unknown.json()) as { error: { code: string } }).error.code, 'unknown_url');
    const wrong = await fetch(`${server.url}/v1/chat/completions`, { headers: auth });
    assert.equal(wrong.status, 405);
    assert.equal(wrong.headers.get('allow'), 'POST');
  });

  it('after every refusal the server still answers, and /health counts what it served', async () => {
    const r = await create(openai, { max_tokens: 2 });
    assert.equal(r.choices[0]!.finish_reason, 'length');
    const h = await health(server.url);
    assert.equal(h.body.status, 'ok');
    assert.equal(h.body.model, 'scripted');
    assert.equal(h.body.generations.running, 0);
    assert.equal(h.body.generations.queued, 0);
    assert.equal(h.body.generations.failed, 0);
    assert.ok(h.body.generations.completed! > 10);
  });
});

describe('r1 serve: cancellation and the queue (a long generation, --queue 1)', () => {
  let server: Served;
  let openai: OpenAI;
  let longTokens: number;

  before(async () => {
    const dir = join(FIXTURES_DIR, 'runtime-scripted-serve-long');
    await buildScriptedModel(dir, { numLayers: 2, script: LONG_SCRIPT });
    longTokens = (await encodeScript(LONG_SCRIPT)).length;
    server = await serve(['--model', dir, '--queue', '1', '--served-model-name', 'scripted', '--reasoning-field', 'both']);
    openai = client(server.url, 'unused');
  });
  after(async () => {
    assert.equal(await server?.stop(), 0);
  });

  /** Starts a long stream and resolves once its first reasoning arrived (the generation is running). */
  async function running(controller: AbortController) {
    const stream = await createStream(openai, {}, controller.signal);
    const it = stream[Symbol.asyncIterator]();
    const seen: ChatCompletionChunk[] = [];
    while (!seen.some((c) => typeof (c.choices[0]?.delta as Extra | undefined)?.reasoning_content === 'string')) {
      const next = await it.next();
      assert.ok(!next.done, 'the stream ended early');
      seen.push(next.value);
    }
    return { it, seen };
  }

  it('a client that disconnects cancels its generation; the next request is served at once', async () => {
    const controller = new AbortController();
    const { it: stream, seen } = await running(controller);
    for (let i = 0; i < 3; i++) seen.push((await stream.next()).value as ChatCompletionChunk);
    // --reasoning-field both: the reasoning in `reasoning` too.
    const d = seen.at(-1)!.choices[0]!.delta as Extra;
    assert.equal(d.reasoning, d.reasoning_content);
    controller.abort();

    const next = await create(openai, { max_tokens: 5 });
    assert.equal(next.choices[0]!.finish_reason, 'length');
    const h = await health(server.url);
    assert.equal(h.body.generations.cancelled, 1);
    assert.equal(h.body.generations.running, 0);
    const line = await server.waitForLog(/stream cancelled \(client closed\), \d+ prompt \+ (\d+) completion tokens/);
    const generated = Number(/\+ (\d+) completion/.exec(line)![1]);
    assert.ok(generated < longTokens / 4, `stopped after ${generated} of ${longTokens} tokens`);
  });

  it('past the queue: 429 with Retry-After; the queued request runs when the first ends', async () => {
    const controller = new AbortController();
    await running(controller);
    const queued = create(openai, { max_tokens: 5 });
    // Wait until the server holds it in the queue.
    for (;;) {
      const h = await health(server.url);
      if (h.body.generations.queued === 1) break;
      assert.equal(h.body.generations.running, 1);
    }
    const e = await failure(create(openai, { max_tokens: 5 }));
    assert.equal(e.status, 429);
    assert.equal(e.code, 'rate_limit_exceeded');
    const retryAfter = Number(e.headers?.get('retry-after'));
    assert.ok(Number.isInteger(retryAfter) && retryAfter >= 1, `Retry-After: ${retryAfter}`);
    controller.abort();
    const r = await queued;
    assert.equal(r.choices[0]!.finish_reason, 'length');
    assert.equal((await health(server.url)).body.generations.rejected, 1);
  });
});

describe('r1 serve: where it listens', () => {
  it('refuses a non-loopback address without an API key (exit 2, before loading the model)', async () => {
    const r = await run(['--model', join(FIXTURES_DIR, 'absent'), '--host', '0.0.0.0', '--port', '0']);
    assert.equal(r.code, 2);
    assert.equal(r.stdout, '');
    assert.match(r.stderr, /refusing to listen on 0\.0\.0\.0 without an API key/);
    assert.match(r.stderr, /R1_API_KEY/);
    assert.match(r.stderr, /--insecure/);
  });

  it('a usage error: exit 2', async () => {
    const r = await run(['--model', 'x', '--queue', 'many']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /--queue must be an integer/);
  });
});
