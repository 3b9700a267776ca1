/**
 * Issue 15: the newer architectures in the extension. R1 Coder in code-server asks the scripted
 * R1-Distill-Llama-8B (onnxruntime-genai DirectML layout, float16 KV, Llama 3 tokenizer) and
 * R1-0528-Qwen3-8B (genai CPU layout, R1-0528's template, which opens no <think> itself) models
 * (test/fixtures/models.ts): each answers with DEFAULT_SCRIPT, split into reasoning and answer at
 * the folder's own </think>.
 */
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { DEFAULT_SCRIPT, ensureFixture } from '../fixtures/models';
import { E2E } from './harness';
import { ReasoningView } from './reasoning';

const [SCRIPT_REASONING] = DEFAULT_SCRIPT.split('</think>').map((s) => s.trim());

let e2e: E2E | undefined;
after(async () => {
  await e2e?.stop();
});

for (const arch of ['llama', 'qwen3'] as const) {
  test(`"R1: Ask" on the scripted ${arch} model: the reasoning, then the answer, from the folder the log names`, async () => {
    const model = await ensureFixture(`scripted-${arch}`);
    await e2e?.stop();
    e2e = await E2E.start({ name: `arch-${arch}`, settings: { 'r1.model.path': model, 'r1.generation.temperature': 0 }, viewport: { width: 1600, height: 1000 } });
    const run = e2e;
    const view = new ReasoningView(run);
    await run.step(arch, async () => {
      await view.frame(true);
      const before = await view.ids();
      await run.runCommandWithInput('R1: Ask', 'Why would parsePort return a string?');
      const id = await view.waitForNew(before);
      const s = await view.waitForStatus(id, ['complete', 'error', 'cancelled', 'length'], 180_000);
      assert.equal(s.status, 'complete', JSON.stringify(s));
      assert.equal(s.reasoning, SCRIPT_REASONING);
      assert.match(s.answer, /It now always returns a number and rejects bad input with a clear error\./);
      assert.ok(!s.answer.includes('</think>') && !s.reasoning.includes('<think>'), 'no think tags shown');
      assert.match(run.extensionLog(), new RegExp(`Model loaded in \\d+ ms: ${model.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}/model\\.onnx`), 'the log names the model folder');
      await run.screenshot(`ask-${arch}`);
    });
  });
}
