/**
 * The language server with r1.backend "server", driven over IPC as VS Code drives it, against the
 * replay servers of test/unit/remote: every wire shape streamed and not gives the same split in
 * the result and in the r1/stream notifications; the API key comes from the client for the URL's
 * origin only; the state names the server and the model; cancellation; errors with their code;
 * the local model is never loaded.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { CancellationTokenSource, ResponseError } from 'vscode-jsonrpc/node';
import {
  AskRequest,
  FixRequest,
  ModelInfoRequest,
  R1ErrorCodes,
  RequestProgressNotification,
  ServerApiKeyRequest,
  StateNotification,
  StreamNotification,
  type GenerateError,
  type GenerateParams,
  type ServerState,
} from '../../../src/protocol/server';
import { ANSWER, REASONING, SHAPES, deadUrl, startReplay, type Replay, type ReplayOptions } from '../remote/replay';
import { startServer, type RunningServer } from './lspClient';

let server: RunningServer;
const settings: Record<string, unknown> = {};
/** What the client's SecretStorage holds, by origin. */
const keys = new Map<string, string>();
const keyRequests: string[] = [];
const replays: Replay[] = [];

before(async () => {
  Object.assign(settings, {
    // A model path that does not exist: the server must never try to load it.
    model: { path: '/nonexistent/model' },
    backend: 'server',
    server: { url: '', model: '', api: 'auto' },
    generation: { temperature: 0.6, maxNewTokens: 1024, thinkingBudget: 0, contextWindow: 8192 },
  });
  server = await startServer({ settings });
  server.connection.onRequest(ServerApiKeyRequest.type, ({ origin }) => {
    keyRequests.push(origin);
    return { apiKey: keys.get(origin) };
  });
});
after(async () => {
  await server.stop();
  await Promise.all(replays.map((r) => r.close()));
});

async function replay(o: ReplayOptions): Promise<Replay> {
  const r = await startReplay(o);
  replays.push(r);
  return r;
}

function use(r: Replay | string, extra: Record<string, unknown> = {}): void {
  settings.server = { url: typeof r === 'string' ? r : r.url, model: '', api: 'auto', ...extra };
}

function streamOf(requestId: string, kind: 'reasoning' | 'answer'): string {
  return server.notifications
    .filter((n) => n.method === StreamNotification.method)
    .map((n) => n.params as StreamNotification.Params)
    .filter((p) => p.requestId === requestId && p.kind === kind)
    .map((p) => p.text)
    .join('');
}

function params(requestId: string, extra: Partial<GenerateParams> = {}): GenerateParams {
  return {
    requestId,
    document: { uri: 'file:///w/port.ts', version: 3, languageId: 'typescript', path: 'port.ts' },
    range: { start: { line: 0, character: 0 }, end: { line: 2, character: 1 } },
    code: 'export function parsePort(value: string): number {\n  return Number(value) || value;\n}',
    question: 'Why does this not type-check?',
    ...extra,
  };
}

describe('every wire shape, through the language server\'s generate path', () => {
  for (const shape of SHAPES) {
    for (const noStream of [false, true]) {
      it(`${shape}, ${noStream ? 'answered in one piece' : 'streamed'}`, async () => {
        const r = await replay({ shape, noStream });
        use(r, shape === 'ollama-v1' ? { api: 'openai' } : {});
        const id = `${shape}-${noStream ? 'json' : 'sse'}`;
        const result = await server.connection.sendRequest(FixRequest.type, params(id));
        assert.equal(result.requestId, id);
        assert.equal(result.status, shape === 'null-content' ? 'length' : 'complete', result.error);
        assert.equal(result.reasoning, REASONING);
        assert.equal(result.answer, shape === 'null-content' ? '' : ANSWER);
        assert.equal(result.codeBlocks.length, shape === 'null-content' ? 0 : 1);
        assert.equal(streamOf(id, 'reasoning'), result.reasoning);
        assert.equal(streamOf(id, 'answer'), result.answer);
        assert.equal(result.stats.provider, 'server');
        assert.equal(result.stats.server?.host, new URL(r.url).host);
        assert.match(result.userTurn ?? '', /^Fix the code at lines 1-3 of `port\.ts`/);
        const running = await server.waitFor<RequestProgressNotification.Params>(RequestProgressNotification.method, (p) => p.requestId === id && p.phase === 'running');
        assert.deepEqual(running, { requestId: id, phase: 'running', provider: new URL(r.url).host });
      });
    }
  }
});

describe('the server of r1.server.url', () => {
  it('the state names the server and the model once it answered', async () => {
    const r = await replay({ shape: 'vllm', models: ['deepseek-ai/DeepSeek-R1-Distill-Qwen-32B'] });
    use(r);
    await server.connection.sendRequest(AskRequest.type, params('state-1'));
    const ready = server.notifications
      .filter((n) => n.method === StateNotification.method)
      .map((n) => n.params as ServerState)
      .filter((s) => s.kind === 'ready')
      .pop();
    assert.deepEqual(ready, {
      kind: 'ready',
      provider: 'server',
      variant: 'server',
      model: 'deepseek-ai/DeepSeek-R1-Distill-Qwen-32B',
      server: { url: r.url, host: new URL(r.url).host, model: 'deepseek-ai/DeepSeek-R1-Distill-Qwen-32B', kind: 'vllm', api: 'openai' },
    });
    assert.ok(
      server.notifications.some((n) => n.method === StateNotification.method && (n.params as ServerState).kind === 'generating' && (n.params as { server?: unknown }).server !== undefined),
      'a generating state with the server',
    );
  });

  it('the key comes from the client for the URL\'s origin, as a Bearer token', async () => {
    const r = await replay({ shape: 'sglang', apiKey: 'team-key' });
    use(`${r.url}/v1`);
    const origin = new URL(r.url).origin;
    const denied = await server.connection.sendRequest(AskRequest.type, params('key-1')).then(
      () => assert.fail('expected an error'),
      (e: unknown) => e,
    );
    assert.ok(denied instanceof ResponseError);
    assert.equal(denied.code, R1ErrorCodes.ServerError);
    assert.deepEqual(denied.data, { kind: 'remote', code: 'auth' } satisfies GenerateError);
    assert.match(denied.message, /needs an API key.*R1: Set Server API Key/);
    keys.set(origin, 'team-key');
    const ok = await server.connection.sendRequest(AskRequest.type, params('key-2'));
    assert.equal(ok.status, 'complete');
    assert.ok(keyRequests.includes(origin));
    assert.ok(r.requests.filter((q) => q.path === '/v1/chat/completions').every((q) => q.headers.authorization === 'Bearer team-key'));
    keys.delete(origin);
  });

  it('a budget goes in the server\'s field, or the result says it is not enforced', async () => {
    settings.generation = { ...(settings.generation as object), thinkingBudget: 128 };
    try {
      const v = await replay({ shape: 'vllm' });
      use(v);
      await server.connection.sendRequest(AskRequest.type, params('budget-1'));
      assert.equal(v.requests.find((q) => q.path === '/v1/chat/completions')?.body?.thinking_token_budget, 128);
      const o = await replay({ shape: 'ollama' });
      use(o);
      const result = await server.connection.sendRequest(AskRequest.type, params('budget-2'));
      assert.deepEqual(result.truncation.filter((t) => t.part === 'server').map((t) => t.detail), ['The thinking budget (128 tokens) is not enforced: Ollama has no thinking budget. The model reasons as long as it needs, within the token limit.']);
    } finally {
      settings.generation = { ...(settings.generation as object), thinkingBudget: 0 };
    }
  });

  it('cancel closes the stream; what arrived is kept', async () => {
    const r = await replay({ shape: 'vllm', delayMs: 25 });
    use(r);
    const source = new CancellationTokenSource();
    const pending = server.connection.sendRequest(AskRequest.type, params('cancel-1'), source.token);
    await server.waitFor<StreamNotification.Params>(StreamNotification.method, (p) => p.requestId === 'cancel-1');
    source.cancel();
    const result = await pending;
    assert.equal(result.status, 'cancelled');
    assert.ok(result.reasoning.length > 0);
    const end = Date.now() + 5000;
    while (r.closedEarly === 0 && Date.now() < end) await new Promise((res) => setTimeout(res, 20));
    assert.equal(r.closedEarly, 1, 'the server saw the stream close');
  });

  it('errors carry their code: unreachable, unknown model, 5xx; a broken stream keeps what arrived', async () => {
    const codeOf = async (id: string) =>
      server.connection.sendRequest(AskRequest.type, params(id)).then(
        () => undefined,
        (e: unknown) => (e instanceof ResponseError ? { code: e.code, data: e.data as GenerateError, message: e.message } : undefined),
      );
    use(await deadUrl());
    const dead = await codeOf('err-1');
    assert.equal(dead?.code, R1ErrorCodes.ServerError);
    assert.equal(dead?.data.code, 'unreachable');
    const failed = server.notifications.filter((n) => n.method === StateNotification.method).map((n) => n.params as ServerState).pop();
    assert.equal(failed?.kind, 'error');
    const m = await replay({ shape: 'vllm' });
    use(m, { model: 'nope' });
    assert.equal((await codeOf('err-2'))?.data.code, 'unknown-model');
    const five = await replay({ shape: 'vllm', failure: { kind: 'status', route: 'chat', status: 500, body: { error: { message: 'boom' } } } });
    use(five);
    const e5 = await codeOf('err-3');
    assert.equal(e5?.data.code, 'server-error');
    assert.match(e5?.message ?? '', /failed \(HTTP 500: boom\)/);
    const broken = await replay({ shape: 'vllm', failure: { kind: 'break', after: 60 } });
    use(broken);
    const partial = await server.connection.sendRequest(AskRequest.type, params('err-4'));
    assert.equal(partial.status, 'error');
    assert.equal(partial.reasoning, REASONING);
    assert.equal(streamOf('err-4', 'answer'), partial.answer);
    use('');
    const none = await codeOf('err-5');
    assert.equal(none?.data.code, 'not-configured');
    assert.match(none?.message ?? '', /r1\.server\.url is empty/);
  });

  it('never loads the local model', async () => {
    assert.equal(await server.connection.sendRequest(ModelInfoRequest.type, undefined), null);
    assert.ok(
      !server.notifications.some((n) => n.method === StateNotification.method && (n.params as ServerState).kind === 'loading'),
      'no loading state',
    );
    assert.ok(!server.notifications.some((n) => n.method === RequestProgressNotification.method && (n.params as RequestProgressNotification.Params).phase === 'loading-model'));
  });
});
