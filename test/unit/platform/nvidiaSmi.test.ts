/** parseNvidiaSmiMemory: nvidia-smi's CSV (no header, no units) into bytes per GPU. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseNvidiaSmiMemory } from '../../../src/platform/nvidiaSmi';

test('nvidia-smi memory CSV: one entry per GPU, MiB to bytes, names with commas kept, other lines ignored', () => {
  const out = 'NVIDIA GeForce RTX 4090, 24564, 23012\nNVIDIA A100-SXM4-80GB, Rev 2, 81920, 81000\n\nNo devices were found\n';
  assert.deepEqual(parseNvidiaSmiMemory(out), [
    { name: 'NVIDIA GeForce RTX 4090', totalBytes: 24564 * 1048576, freeBytes: 23012 * 1048576 },
    { name: 'NVIDIA A100-SXM4-80GB, Rev 2', totalBytes: 81920 * 1048576, freeBytes: 81000 * 1048576 },
  ]);
  assert.deepEqual(parseNvidiaSmiMemory(''), []);
});
