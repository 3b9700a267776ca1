/**
 * recommend(): which catalogue entry a machine should use, and why, on made-up machines and the
 * shipped catalogue (whose sizes are in test/unit/install/catalogue.test.ts).
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { type CatalogueEntry, loadCatalogue } from '../../../src/install/catalogue';
import { type MachineFacts, recommend } from '../../../src/install/recommend';

const GB = 1e9;
const catalogue = loadCatalogue();

function machine(over: Partial<MachineFacts> = {}): MachineFacts {
  return { freeRamBytes: 28 * GB, totalRamBytes: 32 * GB, freeDiskBytes: 200 * GB, gpuProviders: [], supportedArchitectures: ['qwen2'], ...over };
}

function fitOf(r: ReturnType<typeof recommend>, id: string) {
  const f = r.fits.find((x) => x.entry.id === id);
  assert.ok(f, id);
  return f;
}

function entry(id: string): CatalogueEntry {
  const e = catalogue.entries.find((x) => x.id === id);
  assert.ok(e, id);
  return e;
}

describe('recommend', () => {
  test('8 GB, CPU only: a 1.5B CPU entry; the 7B and 14B do not fit in memory, and the reason says so', () => {
    const r = recommend(catalogue, machine({ freeRamBytes: 6.5 * GB, totalRamBytes: 8 * GB }));
    assert.ok(r.recommended);
    const e = r.recommended.entry;
    assert.equal(e.model, 'DeepSeek-R1-Distill-Qwen-1.5B');
    assert.equal(r.recommended.provider, 'cpu');
    assert.deepEqual(e.providers, ['cpu']);
    assert.equal(e.id, 'qwen-1.5b-q4', 'the first of the equal-scoring 1.5B CPU entries, in catalogue order');
    assert.match(r.reason, /^R1-Distill-Qwen-1\.5B q4 \(CPU\) has the best LiveCodeBench score \(16\.9\) of the models that fit on the CPU \(no GPU provider is available\): it needs 3\.6 GB of memory \(6\.5 GB free\)/);
    for (const id of ['qwen-7b-genai-cpu', 'qwen-14b-genai-cpu']) {
      const f = fitOf(r, id);
      assert.equal(f.fitsMemory, false);
      assert.equal(f.eligible, false);
      assert.match(f.reasons.join(' '), /It needs \d+\.\d GB of memory for a context of 8192 tokens, but only 6\.5 GB is free, more than this machine's 8\.0 GB\./);
    }
    // Why not the bigger one: the best-scoring qwen2 model it passed over.
    assert.match(r.reason, /R1-Distill-Qwen-14B int4 \(CPU, onnxruntime-genai\) scores higher \(53\.1\) but is left out: it needs 16\.8 GB of memory/);
  });

  test('32 GB, CPU only: the best-scoring qwen2 CPU entry that fits, 14B int4 over 7B', () => {
    const r = recommend(catalogue, machine());
    assert.equal(r.recommended?.entry.id, 'qwen-14b-genai-cpu');
    assert.equal(r.recommended?.entry.liveCodeBench, 53.1);
    assert.ok(fitOf(r, 'qwen-7b-genai-cpu').eligible, 'the 7B fits too, and loses on score');
    // The 14B's memory need sits between 16 and 32 GB: with less free it is the 7B.
    const tighter = recommend(catalogue, machine({ freeRamBytes: 12 * GB }));
    assert.equal(tighter.recommended?.entry.id, 'qwen-7b-genai-cpu');
    assert.equal(fitOf(tighter, 'qwen-14b-genai-cpu').fitsMemory, false);
    assert.match(fitOf(tighter, 'qwen-14b-genai-cpu').reasons[0]!, /it would fit in this machine's 32\.0 GB with other programs closed/);
  });

  test('CUDA with 16 GB of VRAM: a GPU entry, the best-scoring that fits the VRAM', () => {
    const r = recommend(catalogue, machine({ gpuProviders: ['cuda', 'webgpu'], vramBytes: 16 * GB }));
    assert.ok(r.recommended);
    assert.equal(r.recommended.entry.id, 'qwen-14b-genai-gpu');
    assert.equal(r.recommended.provider, 'cuda');
    assert.equal(r.recommended.fitsVram, true);
    assert.match(r.reason, /of the models that run on this machine's GPU with CUDA: it needs 12\.1 GB of GPU memory \(16\.0 GB free\)/);
  });

  test('a GPU entry is preferred when one fits, even over a better-scoring CPU entry; too little VRAM falls back to the CPU', () => {
    const small = recommend(catalogue, machine({ gpuProviders: ['cuda'], vramBytes: 8 * GB }));
    assert.equal(small.recommended?.entry.id, 'qwen-7b-genai-gpu');
    assert.equal(fitOf(small, 'qwen-14b-genai-gpu').fitsVram, false);
    assert.match(fitOf(small, 'qwen-14b-genai-gpu').reasons.join(' '), /It needs 12\.1 GB of GPU memory, but only 8\.0 GB is free\./);
    assert.match(small.reason, /R1-Distill-Qwen-14B int4 \(CPU, onnxruntime-genai\) scores higher \(53\.1\) but is left out: it runs on the CPU, and a model on the GPU is preferred when one fits\./);
    const tiny = recommend(catalogue, machine({ gpuProviders: ['cuda'], vramBytes: 1 * GB }));
    assert.equal(tiny.recommended?.entry.id, 'qwen-14b-genai-cpu');
    assert.equal(tiny.recommended?.provider, 'cpu');
    assert.match(tiny.reason, /of the models that fit on the CPU \(no GPU model fits \(CUDA available\)\)/);
  });

  test('VRAM not known: GPU entries are not excluded for it, and the reason says it was not measured', () => {
    const r = recommend(catalogue, machine({ gpuProviders: ['dml'] }));
    assert.equal(r.recommended?.entry.gpu, true);
    assert.equal(r.recommended?.provider, 'dml');
    assert.equal(r.recommended?.fitsVram, null);
    assert.match(r.reason, /GPU memory \(not measured here\)/);
    assert.match(r.recommended!.notes.join(' '), /could not be measured/);
  });

  test('a GPU entry runs on the first available provider it is built for, in the engine\'s order', () => {
    const r = recommend(catalogue, machine({ gpuProviders: ['webgpu'], vramBytes: 16 * GB }));
    assert.equal(r.recommended?.provider, 'webgpu');
    assert.equal(fitOf(r, 'llama-8b-dml').provider, null);
    assert.match(fitOf(r, 'llama-8b-dml').reasons.join(' '), /It is built for DirectML, which this machine does not have \(it has WebGPU and CPU\)\./);
  });

  test('tiny disk: nothing is recommended, every entry is refused for the disk, with the reason', () => {
    const r = recommend(catalogue, machine({ freeDiskBytes: 1 * GB }));
    assert.equal(r.recommended, null);
    for (const f of r.fits) {
      assert.equal(f.fitsDisk, false, f.entry.id);
      assert.match(f.reasons.join(' '), /It needs \d+\.\d GB of disk \(.*\), but only 1\.0 GB is free\./, f.entry.id);
    }
    assert.match(r.reason, /^No model fits this machine\. R1-Distill-Qwen-1\.5B .*, the smallest model it could run: it needs 3\.9 GB of disk \(2\.0 GB to download and 2\.0 GB for the CPU-prepared copy\), but only 1\.0 GB is free\./);
  });

  test('a downloaded entry needs no disk for its download, only for the prepared copy', () => {
    const q4 = entry('qwen-1.5b-q4');
    const m = machine({ freeRamBytes: 6 * GB, totalRamBytes: 8 * GB, freeDiskBytes: 2.1 * GB, downloadedIds: ['qwen-1.5b-q4'] });
    const r = recommend(catalogue, m);
    assert.equal(r.recommended?.entry.id, 'qwen-1.5b-q4');
    assert.equal(r.recommended?.diskNeededBytes, q4.memory.weightsBytes);
    assert.match(r.reason, /, and it is downloaded\./);
    assert.equal(fitOf(r, 'qwen-1.5b-genai-cpu').fitsDisk, false);
  });

  test('an architecture the engine does not run is skipped with the reason; named as supported, it lights up', () => {
    const r = recommend(catalogue, machine({ freeRamBytes: 60 * GB, totalRamBytes: 64 * GB }));
    const qwen3 = fitOf(r, 'r1-0528-qwen3-8b-cpu');
    const llama = fitOf(r, 'llama-8b-dml');
    assert.equal(qwen3.architectureSupported, false);
    assert.equal(qwen3.fitsMemory, true);
    assert.equal(qwen3.eligible, false);
    assert.deepEqual(qwen3.reasons, ["R1 Coder's engine does not run the qwen3 architecture yet (it runs qwen2)."]);
    assert.match(llama.reasons[0]!, /does not run the llama architecture yet/);
    assert.equal(r.recommended?.entry.id, 'qwen-14b-genai-cpu');
    const later = recommend(catalogue, machine({ freeRamBytes: 60 * GB, totalRamBytes: 64 * GB, supportedArchitectures: ['qwen2', 'llama', 'qwen3'] }));
    assert.equal(later.recommended?.entry.id, 'r1-0528-qwen3-8b-cpu');
    assert.equal(later.recommended?.entry.liveCodeBench, 60.5);
  });

  test('a gated repository is not recommended: it needs a token', () => {
    const gated = catalogue.entries.map((e) => (e.id === 'qwen-14b-genai-cpu' ? { ...e, gated: true } : e));
    const r = recommend(gated, machine());
    assert.equal(r.recommended?.entry.id, 'qwen-7b-genai-cpu');
    assert.match(fitOf(r, 'qwen-14b-genai-cpu').reasons.join(' '), /onnxruntime\/DeepSeek-R1-Distill-ONNX is gated: downloading it needs a hub access token\./);
  });

  test('every entry is reported, in catalogue order, whatever is recommended', () => {
    const r = recommend(catalogue, machine());
    assert.deepEqual(
      r.fits.map((f) => f.entry.id),
      catalogue.entries.map((e) => e.id),
    );
    for (const f of r.fits) assert.equal(f.eligible, f.reasons.length === 0, f.entry.id);
  });
});
