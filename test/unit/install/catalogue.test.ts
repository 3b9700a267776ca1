/**
 * The model catalogue (src/install/catalogue.json through catalogue.ts): the shipped file checks,
 * its entries are the ones issue 15 asks for, broken documents are refused with the problem
 * named, the memory formula, and what counts as downloaded in a models folder.
 */
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import {
  CatalogueError,
  DEFAULT_CONTEXT_TOKENS,
  type CatalogueEntryData,
  diskNeeds,
  downloadState,
  entryDir,
  kvCacheBytes,
  loadCatalogue,
  memoryNeeds,
  modelsDirCandidates,
  parseCatalogue,
  repoPath,
} from '../../../src/install/catalogue';
import { tempDirs } from './loopback';

const tempDir = tempDirs('r1-catalogue-');
const RAW = JSON.parse(readFileSync(join(__dirname, '../../../src/install/catalogue.json'), 'utf8')) as { entries: CatalogueEntryData[] };
const GiB = 1024 ** 3;

function doc(entries: unknown[]): unknown {
  return { format: 'r1-catalogue', formatVersion: 1, entries };
}

function problemsOf(d: unknown): string[] {
  try {
    parseCatalogue(d);
  } catch (e) {
    assert.ok(e instanceof CatalogueError, String(e));
    return e.problems;
  }
  assert.fail('the catalogue was accepted');
}

describe('the shipped catalogue', () => {
  const catalogue = loadCatalogue();

  test('checks, and every entry has every field', () => {
    assert.ok(catalogue.entries.length >= 10);
    assert.equal(catalogue.contextTokens, DEFAULT_CONTEXT_TOKENS);
    const fields = ['id', 'title', 'model', 'repository', 'revision', 'subfolder', 'folder', 'variant', 'layout', 'architecture', 'parameters', 'providers', 'kv', 'liveCodeBench', 'gated', 'bytesEstimated', 'filesConfirmed', 'totalBytes', 'files', 'source'];
    for (const e of RAW.entries) assert.deepEqual(Object.keys(e).sort(), [...fields].sort(), e.id);
    for (const e of catalogue.entries) {
      assert.equal(e.totalBytes, e.files.reduce((n, f) => n + f.bytes, 0), `${e.id}: sizes sum`);
      assert.equal(e.bytesEstimated, e.files.some((f) => f.estimated), e.id);
      assert.ok(e.memory.ramBytes > e.memory.weightsBytes, e.id);
      assert.equal(e.memory.vramBytes === null, !e.gpu, e.id);
    }
  });

  test('has no duplicate ids, and local folders are shared only by variants of one repository', () => {
    const ids = catalogue.entries.map((e) => e.id);
    assert.equal(new Set(ids).size, ids.length);
    const byFolder = new Map<string, string>();
    for (const e of catalogue.entries) {
      const where = `${e.repository}/${e.subfolder}`;
      assert.equal(byFolder.get(e.folder) ?? where, where, e.folder);
      byFolder.set(e.folder, where);
    }
  });

  test('has the onnx-community 1.5B q4 (CPU) and q4f16 (GPU) entries, with the files Download Model fetches today', () => {
    const q4 = catalogue.entries.find((e) => e.repository === 'onnx-community/DeepSeek-R1-Distill-Qwen-1.5B-ONNX' && e.variant === 'q4');
    const q4f16 = catalogue.entries.find((e) => e.repository === 'onnx-community/DeepSeek-R1-Distill-Qwen-1.5B-ONNX' && e.variant === 'q4f16');
    assert.ok(q4 && q4f16);
    assert.deepEqual(q4.providers, ['cpu']);
    assert.ok(q4f16.gpu);
    assert.deepEqual(
      q4.files.map((f) => f.path),
      ['config.json', 'generation_config.json', 'tokenizer.json', 'tokenizer_config.json', 'onnx/model_q4.onnx'],
    );
    // R1: Download Model's folder today (src/client/models.ts defaultModelDir).
    assert.equal(q4.folder, 'DeepSeek-R1-Distill-Qwen-1.5B-ONNX');
    assert.equal(q4.liveCodeBench, 16.9);
    assert.equal(q4.files.find((f) => f.path === 'generation_config.json')?.bytes, 132);
  });

  test('has the onnxruntime genai folders of 1.5B, 7B and 14B, CPU and GPU', () => {
    const scores: Record<string, number> = { '1.5B': 16.9, '7B': 37.6, '14B': 53.1 };
    for (const size of ['1.5B', '7B', '14B']) {
      for (const [sub, gpu] of [
        ['cpu_and_mobile/cpu-int4-rtn-block-32-acc-level-4', false],
        ['gpu/gpu-int4-rtn-block-32', true],
      ] as const) {
        const e = catalogue.entries.find((x) => x.repository === 'onnxruntime/DeepSeek-R1-Distill-ONNX' && x.subfolder === `deepseek-r1-distill-qwen-${size}/${sub}`);
        assert.ok(e, `${size} ${sub}`);
        assert.equal(e.layout, 'genai');
        assert.equal(e.architecture, 'qwen2');
        assert.equal(e.gpu, gpu);
        assert.equal(e.liveCodeBench, scores[size]);
        assert.deepEqual(
          e.files.map((f) => f.path).sort(),
          ['genai_config.json', 'model.onnx', 'model.onnx.data', 'special_tokens_map.json', 'tokenizer.json', 'tokenizer_config.json'],
        );
        assert.equal(repoPath(e, e.files[0]!), `deepseek-r1-distill-qwen-${size}/${sub}/genai_config.json`);
      }
    }
  });

  test('has the Llama-8B and R1-0528-Qwen3-8B exports found on the hub, with their architectures and scores', () => {
    const llama = catalogue.entries.find((e) => e.architecture === 'llama');
    const qwen3 = catalogue.entries.find((e) => e.architecture === 'qwen3');
    assert.equal(llama?.liveCodeBench, 39.6);
    assert.equal(qwen3?.liveCodeBench, 60.5);
    // Neither file list was read from a listing of its repository: the catalogue says so.
    assert.equal(llama?.filesConfirmed, false);
    assert.equal(qwen3?.filesConfirmed, false);
  });

  test('bigger models need more, in the order of their parameters', () => {
    const cpu = catalogue.entries.filter((e) => e.layout === 'genai' && !e.gpu && e.architecture === 'qwen2');
    const sorted = [...cpu].sort((a, b) => a.parameters - b.parameters);
    for (let i = 1; i < sorted.length; i++) {
      assert.ok(sorted[i]!.totalBytes > sorted[i - 1]!.totalBytes);
      assert.ok(sorted[i]!.memory.ramBytes > sorted[i - 1]!.memory.ramBytes);
    }
  });
});

describe('the memory and disk formulas', () => {
  test('CPU entry: weights + float32 KV for the context + 1 GiB + 5 % of the weights', () => {
    const files = [
      { path: 'config.json', bytes: 1000, sha256: null, estimated: false },
      { path: 'onnx/model_q4.onnx', bytes: 2_000_000_000, sha256: null, estimated: false },
    ];
    const kv = { layers: 28, kvHeads: 2, headDim: 128, dtype: 'float32' as const };
    // 2 × 28 × 2 × 128 × 8192 × 4 bytes
    assert.equal(kvCacheBytes(kv, 8192), 469_762_048);
    const m = memoryNeeds({ files, kv, providers: ['cpu'] });
    assert.equal(m.weightsBytes, 2_000_000_000);
    assert.equal(m.ramBytes, 2_000_000_000 + 469_762_048 + GiB + 100_000_000);
    assert.equal(m.vramBytes, null);
    assert.equal(memoryNeeds({ files, kv, providers: ['cpu'] }, 4096).kvCacheBytes, 469_762_048 / 2);
  });

  test('GPU entry: float16 KV; VRAM = weights + KV + 512 MiB + 5 %, RAM = weights + KV + 1 GiB', () => {
    const files = [
      { path: 'model.onnx', bytes: 200_000, sha256: null, estimated: true },
      { path: 'model.onnx.data', bytes: 1_000_000_000, sha256: null, estimated: true },
      { path: 'tokenizer.json', bytes: 11_000_000, sha256: null, estimated: true },
    ];
    const kv = { layers: 10, kvHeads: 4, headDim: 128, dtype: 'float16' as const };
    const kvBytes = 2 * 10 * 4 * 128 * 8192 * 2;
    const m = memoryNeeds({ files, kv, providers: ['cuda', 'webgpu'] });
    assert.equal(m.weightsBytes, 1_000_200_000);
    assert.equal(m.vramBytes, Math.round(1_000_200_000 + kvBytes + 512 * 1024 ** 2 + 0.05 * 1_000_200_000));
    assert.equal(m.ramBytes, 1_000_200_000 + kvBytes + GiB);
  });

  test('disk: a CPU entry also needs room for the prepared copy, a GPU entry does not', () => {
    const c = loadCatalogue();
    const cpu = c.entries.find((e) => e.id === 'qwen-1.5b-q4')!;
    const gpu = c.entries.find((e) => e.id === 'qwen-1.5b-q4f16')!;
    assert.deepEqual(diskNeeds(cpu), { downloadBytes: cpu.totalBytes, preparedCopyBytes: cpu.memory.weightsBytes, totalBytes: cpu.totalBytes + cpu.memory.weightsBytes });
    assert.equal(diskNeeds(gpu).totalBytes, gpu.totalBytes);
  });
});

describe('a broken catalogue is refused, naming each problem', () => {
  const good = () => structuredClone(RAW.entries[0]!) as unknown as Record<string, unknown>;

  test('not a catalogue document', () => {
    assert.throws(() => parseCatalogue({ entries: [] }), CatalogueError);
    assert.throws(() => parseCatalogue([]), /not an r1-catalogue document/);
  });

  test('a duplicate id', () => {
    assert.match(problemsOf(doc([good(), good()])).join(' '), /the id qwen-1\.5b-q4 is used twice/);
  });

  test('a total that is not the sum of the files', () => {
    const e = good();
    e.totalBytes = (e.totalBytes as number) + 1;
    assert.match(problemsOf(doc([e])).join(' '), /totalBytes is \d+ but the files sum to \d+/);
  });

  test('a missing field, a wrong type, an unknown architecture or provider', () => {
    const e = good();
    delete e.liveCodeBench;
    e.architecture = 'mistral';
    e.providers = ['cpu', 'tpu'];
    e.gated = 'no';
    const p = problemsOf(doc([e])).join(' ');
    assert.match(p, /liveCodeBench must be a number/);
    assert.match(p, /architecture must be one of qwen2, llama, qwen3/);
    assert.match(p, /providers must be a non-empty list/);
    assert.match(p, /gated must be true or false/);
  });

  test('bytesEstimated that disagrees with the files, an unsafe path, a bad sha256', () => {
    const e = good();
    e.bytesEstimated = false;
    const files = e.files as Array<Record<string, unknown>>;
    files[0]!.sha256 = 'abc';
    files[1]!.path = '../escape.json';
    const p = problemsOf(doc([e])).join(' ');
    assert.match(p, /bytesEstimated must be true/);
    assert.match(p, /sha256 must be 64 lowercase hex digits or null/);
    assert.match(p, /path must be a relative path/);
  });

  test('an onnx-community entry without its variant graph, a genai entry without genai_config.json', () => {
    const e = good();
    e.variant = 'q4f16';
    const g = structuredClone(RAW.entries.find((x) => x.layout === 'genai')!) as unknown as Record<string, unknown>;
    g.files = (g.files as Array<{ path: string; bytes: number }>).filter((f) => f.path !== 'genai_config.json');
    g.totalBytes = (g.files as Array<{ bytes: number }>).reduce((n, f) => n + f.bytes, 0);
    const p = problemsOf(doc([e, g])).join(' ');
    assert.match(p, /files lack onnx\/model_q4f16\.onnx/);
    assert.match(p, /a genai folder needs genai_config\.json/);
  });

  test('CPU and GPU providers in one entry', () => {
    const e = good();
    e.providers = ['cpu', 'cuda'];
    assert.match(problemsOf(doc([e])).join(' '), /providers must be \["cpu"\] or GPU providers, not both/);
  });
});

/** A small entry whose files the tests write. */
function smallEntry(over: Partial<CatalogueEntryData> = {}): CatalogueEntryData {
  const files = [
    { path: 'genai_config.json', bytes: 20, sha256: null, estimated: false },
    { path: 'model.onnx', bytes: 300, sha256: null, estimated: false },
    { path: 'model.onnx.data', bytes: 4000, sha256: null, estimated: true },
  ];
  return {
    id: 'small',
    title: 'Small',
    model: 'Small',
    repository: 'acme/small',
    revision: 'main',
    subfolder: 'cpu/int4',
    folder: 'Small-cpu',
    variant: null,
    layout: 'genai',
    architecture: 'qwen2',
    parameters: 1000,
    providers: ['cpu'],
    kv: { layers: 2, kvHeads: 1, headDim: 8, dtype: 'float32' },
    liveCodeBench: 1,
    gated: false,
    bytesEstimated: true,
    filesConfirmed: true,
    totalBytes: 4320,
    files,
    source: 'test',
    ...over,
  };
}

function writeFiles(dir: string, sizes: Record<string, number>): void {
  for (const [p, n] of Object.entries(sizes)) {
    const full = join(dir, ...p.split('/'));
    mkdirSync(join(full, '..'), { recursive: true });
    writeFileSync(full, Buffer.alloc(n));
  }
}

describe('what is downloaded', () => {
  test('every file with its catalogue size: downloaded, in <models>/<folder>, files at their path under the subfolder', async () => {
    const models = tempDir();
    const e = smallEntry();
    assert.doesNotThrow(() => parseCatalogue(doc([e])));
    writeFiles(entryDir(models, e), { 'genai_config.json': 20, 'model.onnx': 300, 'model.onnx.data': 4000 });
    const s = await downloadState(e, models);
    assert.equal(s.dir, join(models, 'Small-cpu'));
    assert.deepEqual(s.problems, []);
    assert.equal(s.status, 'downloaded');
    assert.equal(s.presentBytes, 4320);
  });

  test('nothing there: absent; config files only: still absent; an ONNX file there: partial', async () => {
    const models = tempDir();
    const e = smallEntry();
    assert.equal((await downloadState(e, models)).status, 'absent');
    writeFiles(entryDir(models, e), { 'genai_config.json': 20 });
    assert.equal((await downloadState(e, models)).status, 'absent');
    writeFiles(entryDir(models, e), { 'model.onnx': 300 });
    const s = await downloadState(e, models);
    assert.equal(s.status, 'partial');
    assert.deepEqual(s.problems, [`${join(models, 'Small-cpu', 'model.onnx.data')} is missing.`]);
  });

  test('a file of the wrong exact size is not downloaded', async () => {
    const models = tempDir();
    const e = smallEntry();
    writeFiles(entryDir(models, e), { 'genai_config.json': 20, 'model.onnx': 299, 'model.onnx.data': 4000 });
    const s = await downloadState(e, models);
    assert.equal(s.status, 'partial');
    assert.match(s.problems[0]!, /model\.onnx is 299 bytes, expected 300/);
  });

  test('an estimated size counts with the size the download manifest recorded', async () => {
    const models = tempDir();
    const e = smallEntry();
    const dir = entryDir(models, e);
    writeFiles(dir, { 'genai_config.json': 20, 'model.onnx': 300, 'model.onnx.data': 4100 });
    const without = await downloadState(e, models);
    assert.equal(without.status, 'partial');
    assert.match(without.problems[0]!, /no download manifest says what it should be \(about 4000\)/);
    const manifest = {
      format: 'r1-download',
      formatVersion: 1,
      repo: 'acme/small',
      revision: 'main',
      hubUrl: 'https://huggingface.co',
      variant: 'q4',
      completedAt: '2026-01-01T00:00:00.000Z',
      totalBytes: 4420,
      files: [
        { path: 'cpu/int4/genai_config.json', size: 20, sha256: '0'.repeat(64), lfs: false },
        { path: 'cpu/int4/model.onnx', size: 300, sha256: '0'.repeat(64), lfs: true },
        { path: 'cpu/int4/model.onnx.data', size: 4100, sha256: '0'.repeat(64), lfs: true },
      ],
    };
    writeFileSync(join(dir, 'r1-download.json'), JSON.stringify(manifest));
    assert.equal((await downloadState(e, models)).status, 'downloaded');
    // Another repository's manifest vouches for nothing.
    writeFileSync(join(dir, 'r1-download.json'), JSON.stringify({ ...manifest, repo: 'other/repo' }));
    assert.equal((await downloadState(e, models)).status, 'partial');
  });
});

test('models folder candidates: VS Code global storage of r1-coder.r1-coder per platform, code-server last', () => {
  const linux = modelsDirCandidates({}, 'linux', '/home/u');
  assert.equal(linux[0], '/home/u/.config/Code/User/globalStorage/r1-coder.r1-coder/models');
  assert.equal(linux.at(-1), '/home/u/.local/share/code-server/User/globalStorage/r1-coder.r1-coder/models');
  assert.equal(modelsDirCandidates({ XDG_CONFIG_HOME: '/cfg' }, 'linux', '/home/u')[0], '/cfg/Code/User/globalStorage/r1-coder.r1-coder/models');
  assert.equal(modelsDirCandidates({}, 'darwin', '/Users/u')[0], '/Users/u/Library/Application Support/Code/User/globalStorage/r1-coder.r1-coder/models');
  assert.match(modelsDirCandidates({ APPDATA: 'C:\\Users\\u\\AppData\\Roaming' }, 'win32', 'C:\\Users\\u')[0]!, /Code.User.globalStorage.r1-coder\.r1-coder.models$/);
});
