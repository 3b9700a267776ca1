/**
 * The language server hosting the real engine, driven over IPC as VS Code drives it, with the
 * scripted fixture model: streaming, cancellation, the queue, and the errors users meet.
 */
import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, readdirSync, rmSync, statSync, truncateSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { CancellationTokenSource, ResponseError } from 'vscode-jsonrpc/node';
import {
  AskRequest,
  FixRequest,
  R1ErrorCodes,
  RequestProgressNotification,
  StateNotification,
  StreamNotification,
  ValidateModelRequest,
  type GenerateParams,
} from '../../../src/protocol/server';
import { DEFAULT_SCRIPT, ensureFixture } from '../../fixtures/models';
import { startServer, type RunningServer } from './lspClient';

let scripted: string;
let server: RunningServer;
const settings: Record<string, unknown> = {};
const tmp = mkdtempSync(join(tmpdir(), 'r1-server-'));

before(async () => {
  scripted = await ensureFixture('scripted');
  Object.assign(settings, {
    model: { path: scripted, variant: 'auto' },
    executionProvider: 'cpu',
    generation: { temperature: 0, maxNewTokens: 2048, thinkingBudget: 0, contextWindow: 8192 },
  });
  server = await startServer({ settings });
});
after(async () => {
  await server.stop();
  rmSync(tmp, { recursive: true, force: true });
});

function streamOf(requestId: string, kind: 'reasoning' | 'answer'): string {
  return server.notifications
    .filter((n) => n.method === StreamNotification.method)
    .map((n) => n.params as StreamNotification.Params)
    .filter((p) => p.requestId === requestId && p.kind === kind)
    .map((p) => p.text)
    .join('');
}

const [scriptReasoning, scriptAnswer] = DEFAULT_SCRIPT.split('</think>');

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

test('with a model configured, the server says it loads on first use (not "no model")', async () => {
  const first = await server.waitFor<{ kind: string; message: string }>(StateNotification.method);
  assert.equal(first.kind, 'unloaded');
  assert.ok(first.message.includes(scripted), first.message);
});

test('r1/ask loads the model on first use, streams reasoning then answer, and ends with stats', async () => {
  const result = await server.connection.sendRequest(AskRequest.type, params('ask-1'));
  assert.equal(result.requestId, 'ask-1');
  assert.equal(result.status, 'complete');
  assert.equal(result.reasoning.trim(), scriptReasoning.trim());
  assert.equal(result.answer.trim(), scriptAnswer.trim());
  // The stream carried the same text, in the same split.
  assert.equal(streamOf('ask-1', 'reasoning'), result.reasoning);
  assert.equal(streamOf('ask-1', 'answer'), result.answer);
  assert.equal(result.codeBlocks.length, 1);
  assert.equal(result.codeBlocks[0].language, 'typescript');
  assert.equal(result.stats.provider, 'cpu');
  assert.ok(result.stats.promptTokens > 20);
  assert.ok(result.stats.answerTokens > 0 && result.stats.reasoningTokens > 0);
  const phases = server.notifications
    .filter((n) => n.method === RequestProgressNotification.method)
    .map((n) => n.params as RequestProgressNotification.Params)
    .filter((p) => p.requestId === 'ask-1')
    .map((p) => p.phase);
  assert.deepEqual(phases.filter((p) => p !== 'queued'), ['loading-model', 'running']);
});

test('r1.generation.promptLookup reaches the engine: drafts by default (its stats say so), none when off, the same text', async () => {
  const fix = params('lookup-auto', { code: 'export function parsePort(value: string): number {\n  const port = Number.parseInt(value, 10);\n  if (!Number.isInteger(port) || port < 1 || port > 65535) {\n    return value as unknown as number;\n  }\n  return port;\n}' });
  const auto = await server.connection.sendRequest(FixRequest.type, fix);
  assert.ok((auto.stats.acceptedDraftTokens ?? 0) > 0, `${auto.stats.acceptedDraftTokens} drafted tokens kept`);
  assert.ok(auto.stats.forwardPasses! < auto.stats.reasoningTokens + auto.stats.answerTokens);
  const generation = settings.generation as Record<string, unknown>;
  generation.promptLookup = 'off';
  try {
    const off = await server.connection.sendRequest(FixRequest.type, { ...fix, requestId: 'lookup-off' });
    assert.equal(off.stats.draftTokens, 0);
    assert.equal(off.answer, auto.answer);
  } finally {
    delete generation.promptLookup;
  }
});

test('a window of a large file: the prompt places the selection by the window\'s first line (fileContext.startLine)', async () => {
  // Document lines 41-60 are sent; the fix targets lines 44-46 (0-based 43-45).
  const lines = Array.from({ length: 20 }, (_, i) => `const v${41 + i} = ${41 + i};`);
  const r = await server.connection.sendRequest(
    FixRequest.type,
    params('window-1', {
      range: { start: { line: 43, character: 0 }, end: { line: 45, character: 12 } },
      code: lines.slice(3, 6).join('\n'),
      fileContext: { text: lines.join('\n'), startLine: 41 },
    }),
  );
  const turn = (r.userTurn ?? '').split('\n');
  const marker = turn.findIndex((l) => l.includes('the selected code, shown below'));
  assert.ok(marker > 0, r.userTurn);
  assert.match(turn[marker]!, /lines 44-46/);
  assert.equal(turn[marker - 1], 'const v43 = 43;');
  assert.equal(turn[marker + 1], 'const v47 = 47;');
});

test('cancelling a running request ends it as cancelled, keeping what streamed; the next request works', async () => {
  const source = new CancellationTokenSource();
  const seen = server.waitFor<StreamNotification.Params>(StreamNotification.method, (p) => p.requestId === 'cancel-1' && p.reasoningTokens >= 5);
  const pending = server.connection.sendRequest(FixRequest.type, params('cancel-1'), source.token);
  await seen;
  source.cancel();
  const result = await pending;
  assert.equal(result.status, 'cancelled');
  assert.ok(result.reasoning.length > 0, 'the partial reasoning is kept');
  assert.ok(result.stats.reasoningTokens + result.stats.answerTokens < 60, 'stopped soon after the cancel');
  const next = await server.connection.sendRequest(AskRequest.type, params('after-cancel'));
  assert.equal(next.status, 'complete');
  assert.equal(next.answer.trim(), scriptAnswer.trim());
});

test('requests run one at a time; a queued request shows as queued and can be cancelled before it runs', async () => {
  const source = new CancellationTokenSource();
  const first = server.connection.sendRequest(AskRequest.type, params('q-1'));
  const queuedSeen = server.waitFor<RequestProgressNotification.Params>(RequestProgressNotification.method, (p) => p.requestId === 'q-2' && p.phase === 'queued');
  const second = server.connection.sendRequest(AskRequest.type, params('q-2'), source.token);
  await queuedSeen;
  source.cancel();
  const secondResult = await second;
  assert.equal(secondResult.status, 'cancelled');
  assert.equal(secondResult.reasoning + secondResult.answer, '', 'a request cancelled in the queue never ran');
  const firstResult = await first;
  assert.equal(firstResult.status, 'complete');
  assert.equal(streamOf('q-2', 'reasoning'), '');
});

test('no model configured: the request fails with the no-model error code', async () => {
  const saved = settings.model;
  settings.model = { path: join(tmp, 'does-not-exist') };
  try {
    await assert.rejects(server.connection.sendRequest(AskRequest.type, params('no-model')), (e: unknown) => {
      assert.ok(e instanceof ResponseError);
      assert.equal(e.code, R1ErrorCodes.NoModel);
      assert.match(e.message, /does not exist/);
      assert.deepEqual(e.data, { kind: 'no-model' });
      return true;
    });
  } finally {
    settings.model = saved;
  }
});

test('a corrupt model fails with the engine\'s reason naming the file, and the server survives', async () => {
  const broken = join(tmp, 'broken');
  cpSync(scripted, broken, { recursive: true });
  const onnx = readdirSync(join(broken, 'onnx')).find((f) => f.endsWith('.onnx'))!;
  const file = join(broken, 'onnx', onnx);
  truncateSync(file, Math.floor(statSync(file).size / 3));
  const saved = settings.model;
  settings.model = { path: broken };
  try {
    await assert.rejects(server.connection.sendRequest(AskRequest.type, params('broken')), (e: unknown) => {
      assert.ok(e instanceof ResponseError);
      assert.equal(e.code, R1ErrorCodes.ModelError);
      assert.ok(e.message.includes(onnx), e.message);
      assert.equal((e.data as { code: string }).code, 'unreadable-file');
      return true;
    });
    const validated = await server.connection.sendRequest(ValidateModelRequest.type, { modelDir: broken });
    assert.equal(validated.ok, false);
  } finally {
    settings.model = saved;
  }
  // Switching back to a good model works in the same server process.
  const ok = await server.connection.sendRequest(AskRequest.type, params('after-broken'));
  assert.equal(ok.status, 'complete');
});
