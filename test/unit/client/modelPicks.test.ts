/**
 * R1: Download Model's quick pick rows from the real catalogue and made-up machines: the
 * recommended entry first with its reason, sizes/memory/score on each row, refusals (disk, no
 * provider, architecture) and memory warnings.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { downloadPicks } from '../../../src/client/modelPicks';
import { loadCatalogue, type DownloadState } from '../../../src/install/catalogue';
import { recommend, type MachineFacts } from '../../../src/install/recommend';

const GB = 1e9;
const catalogue = loadCatalogue();
const machine = (over: Partial<MachineFacts> = {}): MachineFacts => ({
  freeRamBytes: 12 * GB,
  totalRamBytes: 16 * GB,
  freeDiskBytes: 200 * GB,
  gpuProviders: [],
  supportedArchitectures: ['qwen2'],
  ...over,
});
const none = new Map<string, DownloadState>();

test('a CPU machine with 12 GB free: the recommended entry first, with its reason; each row has size, memory and score', () => {
  const r = recommend(catalogue, machine());
  const picks = downloadPicks(r, none);
  assert.equal(picks.length, catalogue.entries.length);
  assert.equal(picks[0].entryId, r.recommended!.entry.id);
  assert.match(picks[0].label, /^\$\(star-full\) /);
  assert.equal(picks[0].detail, `Recommended: ${r.reason}`);
  assert.equal(picks[0].verdict.kind, 'download');
  for (const p of picks) assert.match(p.description, /^~?\d+\.\d GB · ~?\d+\.\d GB (GPU )?memory · LiveCodeBench \d+\.\d/);
  // Eligible entries come before the rest, best score first.
  const kinds = picks.map((p) => p.verdict.kind);
  assert.ok(kinds.lastIndexOf('download') < kinds.indexOf('refuse'), kinds.join(','));
  // GPU builds cannot be used on a CPU-only machine, and say why.
  const gpu = picks.find((p) => p.entryId === 'qwen-7b-genai-gpu')!;
  assert.equal(gpu.verdict.kind, 'refuse');
  assert.match(gpu.detail, /^Cannot be used here: It is built for /);
  // An architecture the engine does not run yet is refused with that reason.
  const llama = picks.find((p) => p.entryId === 'llama-8b-dml')!;
  assert.equal(llama.verdict.kind, 'refuse');
  const qwen3 = picks.find((p) => p.entryId === 'r1-0528-qwen3-8b-cpu')!;
  assert.match(qwen3.verdict.kind === 'refuse' ? qwen3.verdict.reason : '', /does not run the qwen3 architecture yet/);
});

test('a model larger than the free disk is refused with the disk figures; one that may not fit in memory warns', () => {
  const r = recommend(catalogue, machine({ freeDiskBytes: 3 * GB, freeRamBytes: 4 * GB, totalRamBytes: 8 * GB }));
  const picks = downloadPicks(r, none);
  const big = picks.find((p) => p.entryId === 'qwen-14b-genai-cpu')!;
  assert.equal(big.verdict.kind, 'refuse');
  assert.match(big.verdict.kind === 'refuse' ? big.verdict.reason : '', /It needs [\d.]+ GB of disk .*, but only 3\.0 GB is free\./);
  // With enough disk but 4 GB of free memory, the 7B warns instead of refusing.
  const r2 = recommend(catalogue, machine({ freeDiskBytes: 50 * GB, freeRamBytes: 4 * GB, totalRamBytes: 8 * GB }));
  const seven = downloadPicks(r2, none).find((p) => p.entryId === 'qwen-7b-genai-cpu')!;
  assert.equal(seven.verdict.kind, 'warn');
  assert.match(seven.verdict.kind === 'warn' ? seven.verdict.reason : '', /of memory for a context of \d+ tokens, but only 4\.0 GB is free/);
});

test('a downloaded entry says so', () => {
  const r = recommend(catalogue, machine({ downloadedIds: ['qwen-1.5b-q4'] }));
  const downloads = new Map<string, DownloadState>([['qwen-1.5b-q4', { dir: '/m/DeepSeek-R1-Distill-Qwen-1.5B-ONNX', status: 'downloaded', presentBytes: 1, problems: [] }]]);
  const p = downloadPicks(r, downloads).find((x) => x.entryId === 'qwen-1.5b-q4')!;
  assert.equal(p.downloaded, true);
  assert.match(p.description, / · downloaded$/);
});
