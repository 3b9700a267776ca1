import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { PingRequest, StateNotification } from '../../../src/protocol/server';
import { startServer, type RunningServer } from './lspClient';

let server: RunningServer;
before(async () => {
  server = await startServer({ initializationOptions: { extensionVersion: '1.2.3-test' } });
});
after(async () => {
  await server.stop();
});

test('the server initializes over IPC and names itself', () => {
  assert.equal(server.initializeResult.serverInfo?.name, 'R1 Coder');
  assert.equal(server.initializeResult.serverInfo?.version, '1.2.3-test');
});

test('r1/ping answers with the nonce, its own pid and its state', async () => {
  // The server announces its state once it has pulled the settings after initialization.
  await server.waitFor(StateNotification.method);
  const result = await server.connection.sendRequest(PingRequest.type, { nonce: 'abc123' });
  assert.equal(result.nonce, 'abc123');
  assert.equal(result.serverVersion, '1.2.3-test');
  assert.equal(result.pid, server.child.pid, 'the ping is answered by the forked server process');
  assert.ok(result.uptimeMs >= 0);
  assert.equal(result.state.kind, 'no-model');
});

test('the server announces its state after initialization', async () => {
  const first = await server.waitFor<{ kind: string; message: string }>(StateNotification.method);
  assert.match(first.message, /No model is configured/, 'with no model set, the state says so');
  const states = server.notifications.filter((n) => n.method === StateNotification.method);
  assert.deepEqual(
    states.map((s) => (s.params as { kind: string }).kind),
    ['no-model'],
  );
});

test('an unknown request gets an error reply, not a hang or a crash', async () => {
  await assert.rejects(server.connection.sendRequest('r1/doesNotExist', {}), /Unhandled method|not handled|MethodNotFound/i);
  const again = await server.connection.sendRequest(PingRequest.type, { nonce: 'still-alive' });
  assert.equal(again.nonce, 'still-alive');
});
