/**
 * RemoteBackend (src/remote) in process against the replay servers: every wire shape, streamed
 * and not, gives the engine's reasoning/answer split; the thinking budget goes in the server's own
 * field or the result says it is not enforced; cancellation closes the stream (and asks SGLang to
 * abort); each failure names the server and what to do.
 */
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, describe, it } from 'node:test';
import type { GenerationResult, PromptRequest, StreamEvent } from '../../../src/engine';
import { RemoteBackend, isRemoteError, parseServerUrl, type RemoteConfig } from '../../../src/remote';
import { ANSWER, REASONING, SHAPES, deadUrl, startReplay, type Replay, type ReplayOptions, type Shape } from './replay';

const ASK: PromptRequest = { kind: 'ask', question: 'Why does parsePort return a string?', context: { filePath: 'src/port.ts', code: 'export function parsePort(v: string) { return Number(v) || v; }' } };

const replays: Replay[] = [];
after(async () => {
  await Promise.all(replays.map((r) => r.close()));
});

async function replay(o: ReplayOptions): Promise<Replay> {
  const r = await startReplay(o);
  replays.push(r);
  return r;
}

/** The API each shape is reached by: Ollama's /v1 only when asked for. */
function apiFor(shape: Shape): RemoteConfig['api'] {
  return shape === 'ollama-v1' ? 'openai' : 'auto';
}

async function run(r: Replay, config: Partial<RemoteConfig> = {}, opts: Parameters<RemoteBackend['generate']>[1] = {}, req: PromptRequest = ASK) {
  const backend = new RemoteBackend({ url: r.url, api: apiFor(r.options.shape), ...config });
  const events: StreamEvent[] = [];
  const result = await backend.generate(req, { maxNewTokens: 512, ...opts, onEvent: (e) => events.push(e) });
  const streamed = (kind: StreamEvent['kind']) => events.filter((e) => e.kind === kind).map((e) => e.text).join('');
  return { backend, result, events, streamed };
}

function chatRequest(r: Replay) {
  const req = r.requests.find((q) => q.path === '/v1/chat/completions' || q.path === '/api/chat');
  assert.ok(req, 'a chat request was sent');
  return req;
}

describe('every wire shape gives the same reasoning/answer split', () => {
  for (const shape of SHAPES) {
    for (const noStream of [false, true]) {
      it(`${shape}, ${noStream ? 'answered in one piece' : 'streamed'}`, async () => {
        const r = await replay({ shape, noStream });
        const { result, streamed, events } = await run(r);
        if (shape === 'null-content') {
          assert.equal(result.status, 'length');
          assert.equal(result.reasoning, REASONING);
          assert.equal(result.answer, '');
          assert.deepEqual(result.codeBlocks, []);
        } else {
          assert.equal(result.status, 'complete', result.error);
          assert.equal(result.reasoning, REASONING);
          assert.equal(result.answer, ANSWER);
          assert.equal(result.codeBlocks.length, 1);
          assert.equal(result.codeBlocks[0]!.language, 'typescript');
        }
        // The stream carried the same split, reasoning first.
        assert.equal(streamed('reasoning'), result.reasoning);
        assert.equal(streamed('answer'), result.answer);
        assert.equal(events[0]!.kind, 'reasoning');
        const s = result.stats;
        assert.equal(s.provider, 'server');
        assert.equal(s.server?.streamed, !noStream);
        assert.equal(s.server?.host, new URL(r.url).host);
        assert.equal(s.server?.api, shape === 'ollama' ? 'ollama' : 'openai');
        assert.equal(s.server?.kind, { vllm: 'vllm', 'vllm-old': 'vllm', sglang: 'sglang', 'llama.cpp': 'llama.cpp', lmstudio: 'unknown', ollama: 'ollama', 'ollama-v1': 'ollama', 'parser-off': 'vllm', 'null-content': 'vllm' }[shape]);
        assert.ok(s.reasoningTokens > 0, 'reasoning tokens counted or estimated');
        // The server's reasoning count where it gives one.
        assert.equal(s.server?.reasoningTokensFrom, shape === 'vllm' || shape === 'sglang' || shape === 'null-content' ? 'server' : 'estimate');
        if (shape !== 'lmstudio' || noStream) assert.equal(s.promptTokens, 42, 'the usage prompt tokens');
        if (shape === 'llama.cpp') {
          assert.equal(s.prefillTokensPerSecond, 2000);
          assert.equal(s.reusedPromptTokens, 10);
        }
        if (shape === 'ollama') assert.ok(s.decodeTokensPerSecond > 0 && s.prefillTokensPerSecond === 2000, JSON.stringify(s));
        assert.equal(result.userTurn?.includes('Question: Why does parsePort return a string?'), true);
      });
    }
  }
});

describe('the request', () => {
  it('carries the engine\'s user turn as a chat message, no system prompt, the model and the limits', async () => {
    const r = await replay({ shape: 'vllm' });
    const history = [
      { role: 'user' as const, content: 'What is a port?' },
      { role: 'assistant' as const, content: 'reasoning here</think>\n\nA number from 1 to 65535.' },
    ];
    const { result } = await run(r, {}, { temperature: 0.6, topP: 0.95, seed: 7, topK: 20 }, { ...ASK, history });
    const body = chatRequest(r).body!;
    assert.equal(body.model, 'deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B');
    assert.equal(body.stream, true);
    assert.deepEqual(body.stream_options, { include_usage: true });
    assert.equal(body.max_tokens, 512);
    assert.equal(body.temperature, 0.6);
    assert.equal(body.top_p, 0.95);
    assert.equal(body.seed, 7);
    assert.equal(body.top_k, 20);
    const messages = body.messages as { role: string; content: string }[];
    assert.deepEqual(messages.map((m) => m.role), ['user', 'assistant', 'user']);
    assert.equal(messages[1]!.content, 'A number from 1 to 65535.', 'earlier reasoning never goes back');
    assert.equal(messages[2]!.content, result.userTurn);
  });

  it('asks Ollama\'s own API with think: true and its options', async () => {
    const r = await replay({ shape: 'ollama' });
    await run(r, {}, { temperature: 0.5, contextWindow: 16384 });
    const req = chatRequest(r);
    assert.equal(req.path, '/api/chat');
    assert.equal(req.body!.think, true);
    assert.deepEqual(req.body!.options, { num_predict: 512, num_ctx: 16384, temperature: 0.5 });
  });

  it('takes the URL with or without /v1, and sends the key as a Bearer token', async () => {
    const r = await replay({ shape: 'vllm', apiKey: 'k-123' });
    for (const url of [r.url, `${r.url}/v1`, `${r.url}/v1/`]) {
      const { result } = await run(r, { url, apiKey: 'k-123' });
      assert.equal(result.status, 'complete');
    }
    assert.ok(r.requests.every((q) => q.headers.authorization === 'Bearer k-123'));
    assert.equal(parseServerUrl('https://gpu-box/llm/v1').openai, 'https://gpu-box/llm/v1');
    assert.equal(parseServerUrl('http://gpu-box:11434').root, 'http://gpu-box:11434');
  });

  it('picks the configured model, the first listed when none is set', async () => {
    const r = await replay({ shape: 'vllm', models: ['first-model', 'second-model'] });
    await run(r);
    await run(r, { model: 'second-model' });
    const chats = r.requests.filter((q) => q.path === '/v1/chat/completions');
    assert.deepEqual(chats.map((q) => q.body!.model), ['first-model', 'second-model']);
  });
});

describe('the thinking budget', () => {
  const cases: Array<[Shape, string | undefined]> = [
    ['vllm', 'thinking_token_budget'],
    ['llama.cpp', 'thinking_budget_tokens'],
    ['sglang', undefined],
    ['ollama', undefined],
    ['lmstudio', undefined],
  ];
  for (const [shape, field] of cases) {
    it(`${shape}: ${field ? `sent as ${field}` : 'not sent, and the result says it is not enforced'}`, async () => {
      const r = await replay({ shape });
      const { result } = await run(r, {}, { thinkingBudget: 256 });
      const body = chatRequest(r).body!;
      for (const f of ['thinking_token_budget', 'thinking_budget_tokens']) assert.equal(body[f], f === field ? 256 : undefined, f);
      const notes = result.truncation.filter((t) => t.part === 'server');
      if (field) {
        assert.deepEqual(notes, []);
        assert.equal(result.stats.server?.thinkingBudgetField, field);
      } else {
        assert.equal(notes.length, 1);
        assert.match(notes[0]!.detail, /thinking budget \(256 tokens\) is not enforced/);
      }
    });
  }
});

describe('cancellation', () => {
  it('closes the stream, keeps what arrived and says cancelled', async () => {
    const r = await replay({ shape: 'vllm', delayMs: 20 });
    const controller = new AbortController();
    const backend = new RemoteBackend({ url: r.url });
    const events: StreamEvent[] = [];
    const result = await backend.generate(ASK, {
      signal: controller.signal,
      onEvent: (e) => {
        events.push(e);
        if (events.length === 3) controller.abort();
      },
    });
    assert.equal(result.status, 'cancelled');
    assert.ok(result.reasoning.length > 0 && REASONING.startsWith(result.reasoning), result.reasoning);
    assert.equal(result.answer, '');
    await waitFor(() => r.closedEarly === 1, 'the server saw the connection close');
  });

  it('asks SGLang to abort the request by its rid', async () => {
    const r = await replay({ shape: 'sglang', delayMs: 20 });
    const controller = new AbortController();
    const backend = new RemoteBackend({ url: r.url });
    let n = 0;
    const result = await backend.generate(ASK, { signal: controller.signal, onEvent: () => ++n === 2 && controller.abort() });
    assert.equal(result.status, 'cancelled');
    const rid = chatRequest(r).body!.rid;
    assert.match(String(rid), /^r1-[0-9a-f]{16}$/);
    await waitFor(() => r.requests.some((q) => q.path === '/abort_request' && q.body?.rid === rid), 'POST /abort_request with the rid');
  });

  it('before the request: status cancelled, nothing sent', async () => {
    const r = await replay({ shape: 'vllm' });
    const controller = new AbortController();
    controller.abort();
    const result = await new RemoteBackend({ url: r.url }).generate(ASK, { signal: controller.signal });
    assert.equal(result.status, 'cancelled');
    assert.equal(r.requests.length, 0);
  });
});

describe('failures name the server and what to do', () => {
  async function rejects(p: Promise<GenerationResult>, code: string, message: RegExp) {
    await assert.rejects(p, (e: unknown) => {
      assert.ok(isRemoteError(e), String(e));
      assert.equal(e.code, code);
      assert.match(e.message, message);
      return true;
    });
  }

  it('unreachable', async () => {
    const url = await deadUrl();
    await rejects(new RemoteBackend({ url }).generate(ASK), 'unreachable', new RegExp(`cannot reach the server at ${url.replace(/[.]/g, '\\.')} .*connection refused.*r1\\.server\\.url`));
  });

  it('no URL, or not an http(s) URL', async () => {
    assert.throws(() => new RemoteBackend({ url: '' }), /r1\.server\.url is empty/);
    assert.throws(() => new RemoteBackend({ url: 'ftp://x' }), /only http: and https:/);
    assert.throws(() => new RemoteBackend({ url: 'http://u:p@x' }), /Set Server API Key/);
  });

  it('401 without a key, and with the wrong one', async () => {
    const r = await replay({ shape: 'vllm', apiKey: 'right' });
    await rejects(new RemoteBackend({ url: r.url }).generate(ASK), 'auth', /needs an API key \(HTTP 401: Invalid API key\)\. Set it with "R1: Set Server API Key"/);
    await rejects(new RemoteBackend({ url: r.url, apiKey: 'wrong' }).generate(ASK), 'auth', /refused the API key/);
  });

  it('403 from a proxy', async () => {
    const r = await replay({ shape: 'vllm', failure: { kind: 'status', route: 'models', status: 403, body: { detail: 'Forbidden' } } });
    await rejects(new RemoteBackend({ url: r.url, apiKey: 'k' }).generate(ASK), 'auth', /HTTP 403: Forbidden/);
  });

  it('an unknown model: the ones the server has are named', async () => {
    const r = await replay({ shape: 'vllm', models: ['a', 'b'] });
    await rejects(new RemoteBackend({ url: r.url, model: 'deepseek-r1:70b' }).generate(ASK), 'unknown-model', /does not serve the model "deepseek-r1:70b"; it lists "a", "b"\. Set r1\.server\.model/);
    const o = await replay({ shape: 'ollama', models: ['deepseek-r1:7b'] });
    assert.equal((await new RemoteBackend({ url: o.url, model: 'deepseek-r1:7b' }).generate(ASK)).status, 'complete');
  });

  it('404 for the model at generation time (a model unloaded since the listing)', async () => {
    const r = await replay({ shape: 'ollama', failure: { kind: 'status', route: 'chat', status: 404, body: { error: "model 'deepseek-r1:1.5b' not found" } } });
    await rejects(new RemoteBackend({ url: r.url }).generate(ASK), 'unknown-model', /not found.*r1\.server\.model/);
  });

  it('a URL that is no API base', async () => {
    const r = await replay({ shape: 'lmstudio', failure: { kind: 'status', route: 'models', status: 404, body: { error: { message: 'Unexpected endpoint' } } } });
    await rejects(new RemoteBackend({ url: r.url }).generate(ASK), 'not-found', /has no \/v1\/models.*server's base/);
  });

  it('5xx', async () => {
    const r = await replay({ shape: 'vllm', failure: { kind: 'status', route: 'chat', status: 503, body: { error: { message: 'engine dead' } } } });
    await rejects(new RemoteBackend({ url: r.url }).generate(ASK), 'server-error', /failed \(HTTP 503: engine dead\)\. Try again/);
  });

  it('429 with Retry-After', async () => {
    const r = await replay({ shape: 'vllm', failure: { kind: 'status', route: 'chat', status: 429, body: { error: { message: 'queue full' } }, headers: { 'Retry-After': '7' } } });
    await rejects(new RemoteBackend({ url: r.url }).generate(ASK), 'busy', /busy \(HTTP 429: queue full\)\. Try again in 7 s/);
  });

  it('a prompt over the server\'s context', async () => {
    const r = await replay({ shape: 'vllm', failure: { kind: 'status', route: 'chat', status: 400, body: { error: { message: "This model's maximum context length is 4096 tokens." } } } });
    await rejects(new RemoteBackend({ url: r.url }).generate(ASK), 'bad-request', /maximum context length.*Select less code/);
  });

  it('a stream that breaks mid-answer keeps what arrived, status error', async () => {
    const r = await replay({ shape: 'vllm', failure: { kind: 'break', after: 60 } });
    const { result, streamed } = await run(r);
    assert.equal(result.status, 'error');
    assert.match(result.error ?? '', /broke before the reply ended|ended before the reply did/);
    assert.match(result.error ?? '', /What arrived is kept/);
    assert.equal(result.reasoning, REASONING);
    assert.ok(result.answer.length > 0 && ANSWER.startsWith(result.answer), result.answer);
    assert.equal(streamed('answer'), result.answer);
  });

  it('a stream that breaks before any text is an error of the request', async () => {
    const r = await replay({ shape: 'vllm', failure: { kind: 'break', after: 0 } });
    await rejects(new RemoteBackend({ url: r.url }).generate(ASK), 'stream-broken', /ended before the reply did|broke/);
  });

  it('a malformed chunk', async () => {
    const r = await replay({ shape: 'sglang', failure: { kind: 'malformed', at: 20 } });
    const { result } = await run(r);
    assert.equal(result.status, 'error');
    assert.match(result.error ?? '', /sent a chunk \(not JSON: .*not speaking the OpenAI API/);
    assert.ok(result.reasoning.length > 0);
    const o = await replay({ shape: 'ollama', failure: { kind: 'malformed', at: 5 } });
    assert.match((await run(o)).result.error ?? '', /sent a line \(not JSON/);
  });

  it('an error chunk in the stream', async () => {
    const r = await replay({ shape: 'vllm', failure: { kind: 'error-chunk', at: 30 } });
    const { result } = await run(r);
    assert.equal(result.status, 'error');
    assert.match(result.error ?? '', /reported an error in its reply: CUDA out of memory/);
  });

  it('a server that goes silent', async () => {
    const r = await replay({ shape: 'vllm', failure: { kind: 'stall', after: 10 } });
    const { result } = await run(r, { idleTimeoutMs: 300 });
    assert.equal(result.status, 'error');
    assert.match(result.error ?? '', /sent nothing for 0 s in the middle of the reply/);
  });

  it('a listing that is not JSON', async () => {
    const server = createServer((_req, res) => res.writeHead(200, { 'Content-Type': 'text/html' }).end('<html>login</html>'));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
      await rejects(new RemoteBackend({ url }).generate(ASK), 'bad-response', /not JSON \("<html>login<\/html>"\)/);
    } finally {
      server.close();
    }
  });
});

async function waitFor(condition: () => boolean, what: string, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > end) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
