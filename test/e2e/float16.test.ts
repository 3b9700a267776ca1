/**
 * The engine on Node 24, the runtime of code-server (and of recent Electron): there Float16Array is
 * a global, onnxruntime-common backs float16 tensors with it, and onnxruntime-node 1.30's binding
 * read them as 0 bytes, so every float16 model failed ("not enough space: expected 64, got 0").
 * src/engine/run.ts feeds the binding Uint16Array views instead. This runs the float16-KV fixture
 * through the engine with the e2e toolchain's Node 24 (installed by test/e2e/install.ts).
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { ensureFixture } from '../fixtures/models';
import { ensureInstalled, REPO_ROOT } from './install';

test('a float16 model generates on Node 24 (Float16Array is a global there)', async () => {
  const { node } = ensureInstalled();
  const model = await ensureFixture('tiny-qwen2-f16kv');
  const script = join(REPO_ROOT, '.cache', 'e2e', 'float16-check.ts');
  writeFileSync(
    script,
    `import { R1Engine } from ${JSON.stringify(join(REPO_ROOT, 'src', 'engine'))};
(async () => {
  const engine = await R1Engine.load({ modelDir: ${JSON.stringify(model)}, provider: 'cpu', variant: 'q4f16', prepareForCpu: false });
  const r = await engine.generate({ kind: 'ask', question: 'hi', context: {} }, { maxNewTokens: 8, temperature: 0 });
  console.log(JSON.stringify({ float16Global: typeof (globalThis as { Float16Array?: unknown }).Float16Array, version: process.version, status: r.status, error: r.error, tokens: r.stats.reasoningTokens + r.stats.answerTokens }));
  await engine.dispose();
})();
`,
  );
  const out = execFileSync(node, ['--import', 'tsx', script], { cwd: REPO_ROOT, encoding: 'utf8', timeout: 120_000 });
  const r = JSON.parse(out.trim().split('\n').pop()!) as { float16Global: string; version: string; status: string; error?: string; tokens: number };
  assert.match(r.version, /^v24\./);
  assert.equal(r.float16Global, 'function', 'the case this guards: Float16Array exists');
  assert.equal(r.status, 'length', r.error);
  assert.equal(r.tokens, 8);
});
