import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DEFAULT_SETTINGS, sanitizeSettings } from '../../../src/server/settings';

test('settings as VS Code returns them for section r1 become typed server settings', () => {
  const s = sanitizeSettings({
    model: { path: ' /models/r1 ', variant: 'q4f16' },
    executionProvider: 'cpu',
    cpu: { threads: 4, prepareModel: false },
    generation: { maxNewTokens: 512, thinkingBudget: 0, temperature: 0, topP: 0.9, contextWindow: 4096 },
  });
  assert.deepEqual(s, {
    modelPath: '/models/r1',
    variant: 'q4f16',
    provider: 'cpu',
    cpuThreads: 4,
    prepareModel: false,
    maxNewTokens: 512,
    thinkingBudget: 0,
    temperature: 0,
    topP: 0.9,
    contextWindow: 4096,
    promptLookup: 'auto',
    backend: 'local',
    serverUrl: '',
    serverModel: '',
    serverApi: 'auto',
  });
});

test('the server settings: backend, URL, model and API; a bad one falls back to the default', () => {
  const s = sanitizeSettings({ backend: 'server', server: { url: ' http://gpu-box:8000/v1 ', model: ' deepseek-r1:32b ', api: 'ollama' } });
  assert.deepEqual([s.backend, s.serverUrl, s.serverModel, s.serverApi], ['server', 'http://gpu-box:8000/v1', 'deepseek-r1:32b', 'ollama']);
  const warnings: string[] = [];
  const bad = sanitizeSettings({ backend: 'cloud', server: { url: 8000, api: 'grpc' } }, (m) => warnings.push(m));
  assert.deepEqual([bad.backend, bad.serverUrl, bad.serverApi], ['local', '', 'auto']);
  assert.deepEqual(warnings.map((w) => /r1\.(\S+) =/.exec(w)?.[1]), ['backend', 'server.url', 'server.api']);
});

test('r1.generation.promptLookup: auto or off; another value falls back to auto with a warning', () => {
  assert.equal(sanitizeSettings({ generation: { promptLookup: 'off' } }).promptLookup, 'off');
  const warnings: string[] = [];
  assert.equal(sanitizeSettings({ generation: { promptLookup: 'on' } }, (m) => warnings.push(m)).promptLookup, 'auto');
  assert.match(warnings[0] ?? '', /r1\.generation\.promptLookup/);
});

test('a bad value falls back to the default and says which setting it ignored', () => {
  const warnings: string[] = [];
  const s = sanitizeSettings(
    { executionProvider: 'tpu', cpu: { threads: -1, prepareModel: 'yes' }, generation: { temperature: 9, maxNewTokens: 10.5 } },
    (m) => warnings.push(m),
  );
  assert.equal(s.provider, DEFAULT_SETTINGS.provider);
  assert.equal(s.cpuThreads, DEFAULT_SETTINGS.cpuThreads);
  assert.equal(s.prepareModel, true);
  assert.equal(s.temperature, DEFAULT_SETTINGS.temperature);
  assert.equal(s.maxNewTokens, DEFAULT_SETTINGS.maxNewTokens);
  assert.deepEqual(
    warnings.map((w) => /r1\.(\S+) =/.exec(w)?.[1]),
    ['executionProvider', 'cpu.threads', 'cpu.prepareModel', 'generation.maxNewTokens', 'generation.temperature'],
  );
});

test('nothing set (or not an object): the defaults', () => {
  assert.deepEqual(sanitizeSettings(undefined), DEFAULT_SETTINGS);
  assert.deepEqual(sanitizeSettings(null), DEFAULT_SETTINGS);
});
