/**
 * The engine on every layout people download (test/fixtures/onnx/BUILDER-GRAPHS.md): the
 * onnx-community export (the builder's MultiHeadAttention graph, hub folder), onnxruntime-genai's
 * own build (GroupQueryAttention, genai_config.json) and an Optimum-style export. All three fixtures
 * carry the same weights, so they must also agree with each other.
 */
import assert from 'node:assert/strict';
import { copyFileSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { R1Engine } from '../../../src/engine/engine';
import { ModelError } from '../../../src/engine/errors';
import type { ModelVariant } from '../../../src/engine/types';
import { ensureFixture, type FixtureName } from '../../fixtures/models';

const cacheDir = mkdtempSync(join(tmpdir(), 'r1-layouts-'));
after(() => rmSync(cacheDir, { recursive: true, force: true }));

interface Case {
  name: string;
  fixture: FixtureName;
  variant?: ModelVariant;
  layout: 'hub' | 'genai';
  /** The prepared copy's steps that apply (the others say why not); undefined: no copy. */
  steps?: string[];
}

const CASES: Case[] = [
  {
    name: 'onnx-community q4 (MultiHeadAttention, no accuracy_level)',
    fixture: 'tiny-onnx-community',
    variant: 'q4',
    layout: 'hub',
    steps: ['int8 compute', 'last-position logits', 'new KV rows only', 'fused matrix products', 'fused attention', 'decode attention'],
  },
  { name: 'onnx-community fp32', fixture: 'tiny-onnx-community', variant: 'fp32', layout: 'hub' },
  // Its weights are in model.onnx.data: the fused gate/up weights are copied from there into the copy.
  {
    name: 'genai CPU int4 (GroupQueryAttention, accuracy_level 4, no position_ids)',
    fixture: 'tiny-genai-cpu',
    layout: 'genai',
    steps: ['last-position logits', 'new KV rows only', 'fused matrix products', 'decode attention'],
  },
  { name: 'optimum-style', fixture: 'tiny-qwen2', variant: 'q4', layout: 'hub' },
];

const PROMPT = [151646, 151644, ...Array.from({ length: 70 }, (_, i) => (i * 7919 + 11) % 151643), 151645, 151648, 198];
const FOLLOW = [1000, 2000, 3000, 4000, 5000];

/** Logits after PROMPT (prefilled in chunks of 16) and after each of FOLLOW, one token a step. */
async function stepLogits(e: R1Engine, chunk = 16): Promise<Float32Array[]> {
  const d = e.decoder;
  d.reset();
  const out = [(await d.prefill(PROMPT, chunk)).slice()];
  for (const t of FOLLOW) out.push((await d.forward([t])).slice());
  return out;
}

/** The same positions computed without any cache: the whole sequence in one run each. */
async function noCacheLogits(e: R1Engine): Promise<Float32Array[]> {
  const d = e.decoder;
  const out: Float32Array[] = [];
  for (let k = 0; k <= FOLLOW.length; k++) {
    d.reset();
    out.push((await d.forward([...PROMPT, ...FOLLOW.slice(0, k)])).slice());
  }
  return out;
}

/** Largest difference relative to the largest logit, over every step. */
function relDiff(a: Float32Array[], b: Float32Array[]): number {
  let worst = 0;
  for (let k = 0; k < a.length; k++) {
    let scale = 0;
    let diff = 0;
    for (let i = 0; i < a[k]!.length; i++) {
      scale = Math.max(scale, Math.abs(a[k]![i]!));
      diff = Math.max(diff, Math.abs(a[k]![i]! - b[k]![i]!));
    }
    worst = Math.max(worst, diff / scale);
  }
  return worst;
}

async function load(c: Case, prepareForCpu: boolean): Promise<R1Engine> {
  const modelDir = await ensureFixture(c.fixture);
  return R1Engine.load({ modelDir, variant: c.variant, provider: 'cpu', prepareForCpu, cacheDir, cpuThreads: 1 });
}

const results = new Map<string, Float32Array[]>();

for (const c of CASES) {
  describe(`layout: ${c.name}`, () => {
    it('loads with the layout reported, and its KV-cache steps give the logits of a no-cache run (as exported and prepared)', async () => {
      for (const prepared of [false, true]) {
        const e = await load(c, prepared);
        try {
          assert.equal(e.info.layout, c.layout);
          const cached = await stepLogits(e);
          const fresh = await noCacheLogits(e);
          const d = relDiff(cached, fresh);
          assert.ok(d < 1e-3, `${prepared ? 'prepared' : 'as exported'}: cached and no-cache logits differ by ${d} of the largest logit`);
          if (!prepared) results.set(c.name, cached);
        } finally {
          await e.dispose();
        }
      }
    });

    it('the prepared copy computes what the file as exported computes, and says which steps it applied', async () => {
      const plain = await load(c, false);
      let want: Float32Array[];
      try {
        want = await stepLogits(plain);
      } finally {
        await plain.dispose();
      }
      const e = await load(c, true);
      try {
        // The float32 fixtures have no MatMulNBits: nothing to prepare.
        const steps = e.info.preparedCopy?.steps;
        assert.deepEqual(steps?.filter((s) => s.applied).map((s) => s.step), c.steps, e.info.notes.join('\n'));
        for (const s of steps ?? []) assert.ok(s.detail.length > 0, `${s.step} says what it did or why not`);
        if (c.fixture === 'tiny-genai-cpu') {
          assert.equal(steps?.find((s) => s.step === 'fused attention')?.detail, 'the attention already is GroupQueryAttention');
          assert.match(steps?.find((s) => s.step === 'fused matrix products')?.detail ?? '', /^4 MatMulNBits nodes sharing an input run as 2$/, 'gate/up of the 2 layers (q/k/v are packed by the builder)');
        }
        const got = await stepLogits(e, 32);
        // int8 compute against the export's float32: the check's own tolerance (graph/check.ts).
        const d = relDiff(want, got);
        assert.ok(d < 0.05, `prepared and exported logits differ by ${d} of the largest logit`);
      } finally {
        await e.dispose();
      }
    });
  });
}

describe('the onnx-community q4f16 graph on the CPU', () => {
  // The builder's value_info declares some repeat_kv outputs with the new tokens' length; ONNX
  // Runtime's CPU provider then fails the first decode step after a cached token.
  it('as exported, it is refused at load (not at every request), naming the file', async () => {
    const modelDir = await ensureFixture('tiny-onnx-community');
    await assert.rejects(
      R1Engine.load({ modelDir, variant: 'q4f16', provider: 'cpu', prepareForCpu: false, cacheDir }),
      (e: unknown) => e instanceof ModelError && e.file === join(modelDir, 'onnx', 'model_q4f16.onnx') && /validation step failed/.test(e.message),
    );
  });
  it('the prepared copy (without value_info) decodes, and its cached steps match a no-cache run', async () => {
    const e = await R1Engine.load({ modelDir: await ensureFixture('tiny-onnx-community'), variant: 'q4f16', provider: 'cpu', cacheDir, cpuThreads: 1 });
    try {
      const d = relDiff(await stepLogits(e), await noCacheLogits(e));
      assert.ok(d < 1e-2, `fp16: cached and no-cache logits differ by ${d} of the largest logit`);
    } finally {
      await e.dispose();
    }
  });
});

describe('bad genai folders', () => {
  it('a graph that disagrees with genai_config.json is refused, naming the model file and genai_config.json', async () => {
    const src = await ensureFixture('tiny-genai-cpu');
    const dir = mkdtempSync(join(cacheDir, 'genai-bad-'));
    for (const f of readdirSync(src)) if (!f.includes('r1-prepared')) copyFileSync(join(src, f), join(dir, f));
    const cfg = JSON.parse(readFileSync(join(dir, 'genai_config.json'), 'utf8')) as { model: { decoder: { num_hidden_layers: number } } };
    cfg.model.decoder.num_hidden_layers = 3;
    writeFileSync(join(dir, 'genai_config.json'), JSON.stringify(cfg));
    await assert.rejects(
      R1Engine.load({ modelDir: dir, provider: 'cpu', cacheDir }),
      (e: unknown) => e instanceof ModelError && e.code === 'signature-mismatch' && e.file === join(dir, 'model.onnx') && /genai_config\.json says 3 layers, the graph has 2/.test(e.message),
    );
  });
});

describe('the layouts agree with each other (same weights)', () => {
  it('onnx-community fp32 and the Optimum-style graph give the same logits; the q4 builds stay close', () => {
    const optimum = results.get('optimum-style')!;
    const fp32 = results.get('onnx-community fp32')!;
    assert.ok(optimum && fp32, 'the layout tests above ran');
    assert.ok(relDiff(optimum, fp32) < 1e-3, `optimum vs onnx-community fp32: ${relDiff(optimum, fp32)}`);
    for (const name of ['onnx-community q4 (MultiHeadAttention, no accuracy_level)', 'genai CPU int4 (GroupQueryAttention, accuracy_level 4, no position_ids)']) {
      const q = results.get(name)!;
      assert.ok(relDiff(fp32, q) < 0.25, `${name} vs fp32: ${relDiff(fp32, q)}`);
    }
  });
});
