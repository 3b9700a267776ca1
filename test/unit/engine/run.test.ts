/** The one `session.run` of the engine (src/engine/run.ts). */
import assert from 'node:assert/strict';
import { test } from 'node:test';

test('float16 feeds reach the binding as Uint16Array views where Float16Array is a global (onnxruntime-node 1.30 read those as 0 bytes)', async () => {
  const { float16Readable } = await import('../../../src/engine/run');
  const ids = { type: 'int64', location: 'cpu', dims: [1, 2], data: new BigInt64Array(2) };
  const memory = new ArrayBuffer(16);
  const half = { type: 'float16', location: 'cpu', dims: [1, 4], data: new Int16Array(memory, 8, 4) }; // stands in for a Float16Array
  const feeds = { input_ids: ids, past: half } as never;
  // Without the global nothing changes.
  assert.equal(float16Readable(feeds), feeds);
  const g = globalThis as { Float16Array?: unknown };
  const had = 'Float16Array' in g;
  const saved = g.Float16Array;
  g.Float16Array = class {};
  try {
    const out = float16Readable(feeds) as unknown as Record<string, { type: string; dims: number[]; data: ArrayBufferView & { length: number } }>;
    assert.notEqual(out, feeds);
    assert.equal(out.input_ids, ids, 'other feeds are passed as they are');
    assert.ok(out.past.data instanceof Uint16Array);
    assert.equal(out.past.data.buffer, memory, 'the same memory, no copy');
    assert.equal(out.past.data.byteOffset, 8);
    assert.equal(out.past.data.length, 4);
    assert.deepEqual(out.past.dims, [1, 4]);
    assert.equal(out.past.type, 'float16');
  } finally {
    if (had) g.Float16Array = saved;
    else delete g.Float16Array;
  }
});
