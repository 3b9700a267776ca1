/**
 * No silent fallback: the real server, in auto mode, with the platform probe replaced through
 * the documented diagnostic override (initializationOptions.diagnostics.platformProbe) so that
 * this CPU machine plans CUDA first. ONNX Runtime then really fails to create the CUDA session
 * (no provider library here), the engine falls back to the CPU, and the client hears about it
 * once per server session, with the reason, even when a reload meets the same failure.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { DidChangeConfigurationNotification } from 'vscode-languageserver-protocol';
import { ModelInfoRequest, ProviderFallbackNotification, StateNotification, type InitializationOptions, type ServerState } from '../../../src/protocol/server';
import { ensureFixture } from '../../fixtures/models';
import { startServer, type RunningServer } from './lspClient';

let server: RunningServer;
const settings: Record<string, unknown> = {};

const initializationOptions: InitializationOptions = {
  extensionVersion: '9.9.9-test',
  diagnostics: {
    // Linux x64 with the CUDA provider library and runtime "present", and no WebGPU in this build:
    // the auto order is cuda, then cpu.
    platformProbe: { platform: 'linux', arch: 'x64', supportedBackends: ['cpu'], cudaLibraryPresent: true, cudaRuntime: { ok: true, message: 'simulated' } },
  },
};

before(async () => {
  Object.assign(settings, { model: { path: await ensureFixture('tiny-qwen2'), variant: 'auto' }, executionProvider: 'auto' });
  server = await startServer({ initializationOptions, settings });
});
after(async () => {
  await server.stop();
});

const modelInfo = (): Promise<ModelInfoRequest.Result> => server.connection.sendRequest(ModelInfoRequest.type, undefined);
const fallbackNotices = () => server.notifications.filter((n) => n.method === ProviderFallbackNotification.method).map((n) => n.params as ProviderFallbackNotification.Params);
const logs = () => server.notifications.filter((n) => n.method === 'window/logMessage').map((n) => n.params as { type: number; message: string });
const readyStates = () =>
  server.notifications
    .filter((n) => n.method === StateNotification.method)
    .map((n) => n.params as ServerState)
    .filter((s): s is Extract<ServerState, { kind: 'ready' }> => s.kind === 'ready');

test('auto mode: a failing CUDA session falls back to the CPU, and the client is told once with the reason', { timeout: 120_000 }, async () => {
  const info = await modelInfo();
  assert.ok(info);
  assert.equal(info.provider, 'cpu');
  // Providers passed over by the probe come first, then the ones tried, in order.
  assert.deepEqual(
    info.attempts.map((a) => [a.provider, a.ok, a.skipped]),
    [
      ['webgpu', false, 'unsupported'],
      ['cuda', false, undefined],
      ['cpu', true, undefined],
    ],
  );
  const cudaReason = info.attempts[1]!.reason!;
  // The reason is ONNX Runtime's own, from really trying to create the CUDA session.
  assert.match(cudaReason, /Cuda|CUDA|shared library/);

  const notice = await server.waitFor<ProviderFallbackNotification.Params>(ProviderFallbackNotification.method);
  assert.deepEqual(notice, { provider: 'cpu', variant: info.variant, fallbacks: [{ provider: 'cuda', reason: cudaReason, kind: 'failed' }] });
  // Logged as a warning too (window/logMessage type 2), and the ready state carries it for the status item.
  assert.ok(logs().some((l) => l.type === 2 && l.message.includes('cuda could not be used, running on cpu') && l.message.includes(cudaReason)));
  assert.deepEqual(readyStates().at(-1)!.fallbacks, [{ provider: 'cuda', reason: cudaReason, kind: 'failed' }]);
  assert.ok(logs().some((l) => l.type === 2 && /Diagnostic override active/.test(l.message)), 'the override is announced in the log');
});

test('a reload that meets the same failure does not notify again', { timeout: 120_000 }, async () => {
  const readyBefore = readyStates().length;
  settings.cpu = { threads: 1 }; // a model setting: the server reloads
  await server.connection.sendNotification(DidChangeConfigurationNotification.type, { settings: null });
  await server.waitFor<ServerState>(StateNotification.method, () => readyStates().length > readyBefore);
  const info = await modelInfo();
  assert.equal(info?.provider, 'cpu');
  assert.deepEqual(info?.attempts.find((a) => a.provider === 'cuda')?.ok, false, 'CUDA failed again on the reload');
  assert.equal(fallbackNotices().length, 1, 'one notification per server session');
  assert.equal(logs().filter((l) => l.message.includes('cuda could not be used')).length, 2, 'but each load logs it');
});

test('an explicit CPU provider tries nothing else and reports no fallback', { timeout: 120_000 }, async () => {
  const readyBefore = readyStates().length;
  settings.executionProvider = 'cpu';
  await server.connection.sendNotification(DidChangeConfigurationNotification.type, { settings: null });
  await server.waitFor<ServerState>(StateNotification.method, () => readyStates().length > readyBefore);
  const info = await modelInfo();
  assert.deepEqual(info?.attempts, [{ provider: 'cpu', ok: true }]);
  assert.equal(readyStates().at(-1)!.fallbacks, undefined);
  assert.equal(fallbackNotices().length, 1);
});
