import assert from 'node:assert/strict';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, test } from 'node:test';
import {
  DownloadError,
  MANIFEST_FILE,
  checkDownloadedModel,
  downloadModel,
  hubResolveUrl,
  hubTreeUrl,
  listHubFiles,
  readDownloadManifest,
  selectVariantFiles,
  type HubTreeEntry,
  type ModelDownloadProgress,
} from '../../../src/install';
import { bytes, closedPort, fileRequests, installFakeHub, sha256, startLoopback, type FakeHubFile, type Loopback, rejectsWith, tempDirs } from './loopback';

const REPO = 'onnx-community/DeepSeek-R1-Distill-Qwen-1.5B-ONNX';
const COMMIT = '0123456789abcdef0123456789abcdef01234567';
let server: Loopback | undefined;
const tempDir = tempDirs('r1-hub-');
afterEach(async () => {
  await server?.stop();
  server = undefined;
});

/** The onnx-community layout in miniature: several variants, external data, unrelated files. */
function repoFiles(overrides: Record<string, Partial<FakeHubFile>> = {}): Record<string, FakeHubFile> {
  const files: Record<string, FakeHubFile> = {
    '.gitattributes': { body: Buffer.from('*.onnx filter=lfs diff=lfs merge=lfs -text\n') },
    'README.md': { body: Buffer.from('# R1 distill\n') },
    'config.json': { body: Buffer.from(JSON.stringify({ model_type: 'qwen2', hidden_size: 1536 })) },
    'generation_config.json': { body: Buffer.from(JSON.stringify({ eos_token_id: 151643 })) },
    'tokenizer.json': { body: bytes(40_000, 1) },
    'tokenizer_config.json': { body: Buffer.from(JSON.stringify({ add_bos_token: true })) },
    'special_tokens_map.json': { body: Buffer.from('{}') },
    'onnx/model.onnx': { body: bytes(30_000, 2), lfs: true },
    'onnx/model.onnx_data': { body: bytes(90_000, 3), lfs: true },
    'onnx/model_fp16.onnx': { body: bytes(20_000, 4), lfs: true },
    'onnx/model_q4.onnx': { body: bytes(50_000, 5), lfs: true },
    'onnx/model_q4.onnx_data': { body: bytes(400_000, 6), lfs: true },
    'onnx/model_q4f16.onnx': { body: bytes(60_000, 7), lfs: true },
    'onnx/model_q4f16.onnx_data': { body: bytes(300_000, 8), lfs: true },
  };
  for (const [k, v] of Object.entries(overrides)) files[k] = { ...(files[k] ?? { body: Buffer.alloc(0) }), ...v };
  return files;
}

const Q4_FILES = ['config.json', 'generation_config.json', 'tokenizer.json', 'tokenizer_config.json', 'onnx/model_q4.onnx', 'onnx/model_q4.onnx_data'];

async function hub(files = repoFiles(), pageSize?: number): Promise<{ server: Loopback; files: Record<string, FakeHubFile> }> {
  server = await startLoopback();
  installFakeHub(server, { repo: REPO, commit: COMMIT, files, pageSize });
  return { server, files };
}

const noWait = { sleep: async () => undefined };

describe('downloadModel against a loopback hub', () => {
  test('downloads exactly the q4 files, verifies them and writes the manifest', async () => {
    const { server: s, files } = await hub(repoFiles(), 5);
    const destDir = join(tempDir(), 'model');
    const events: ModelDownloadProgress[] = [];
    const result = await downloadModel({ hubUrl: s.origin, repo: REPO, revision: 'main', variant: 'q4', destDir, onProgress: (p) => events.push(p) });

    // Only the variant's files were requested (the LFS ones through the CDN redirect).
    const requested = [...new Set(fileRequests(s, REPO).map((r) => r.path))].sort();
    assert.deepEqual(requested, [...Q4_FILES].sort());
    // The listing is paged (5 entries a page) and every page was read.
    const treeCalls = s.requests.filter((r) => r.path === `/api/models/${REPO}/tree/main`);
    assert.ok(treeCalls.length > 1, 'the listing was paged');
    assert.match(treeCalls[0].url, /\?recursive=true$/);

    for (const p of Q4_FILES) assert.deepEqual(readFileSync(join(destDir, ...p.split('/'))), files[p].body, p);
    assert.equal(existsSync(join(destDir, 'onnx', 'model_q4f16.onnx')), false);
    assert.equal(existsSync(join(destDir, 'README.md')), false);

    const manifest = JSON.parse(readFileSync(join(destDir, MANIFEST_FILE), 'utf8'));
    assert.equal(manifest.repo, REPO);
    assert.equal(manifest.revision, 'main');
    assert.equal(manifest.commit, COMMIT);
    assert.equal(manifest.variant, 'q4');
    assert.deepEqual(
      manifest.files.map((f: { path: string; sha256: string; size: number }) => [f.path, f.sha256, f.size]),
      Q4_FILES.map((p) => [p, sha256(files[p].body), files[p].body.length]),
    );
    assert.deepEqual(result.downloaded, Q4_FILES);
    assert.deepEqual(result.alreadyPresent, []);

    const total = Q4_FILES.reduce((n, p) => n + files[p].body.length, 0);
    const last = events[events.length - 1];
    assert.equal(last.overallReceivedBytes, total);
    assert.equal(last.overallTotalBytes, total);
    assert.equal(last.fileCount, Q4_FILES.length);
    const check = await checkDownloadedModel(destDir, { deep: true });
    assert.deepEqual(check.problems, []);
    assert.equal(check.complete, true);
  });

  test('a second call finds the files complete and downloads nothing', async () => {
    const { server: s } = await hub();
    const destDir = join(tempDir(), 'model');
    await downloadModel({ hubUrl: s.origin, repo: REPO, variant: 'q4', destDir });
    const before = fileRequests(s, REPO).length;
    const again = await downloadModel({ hubUrl: s.origin, repo: REPO, variant: 'q4', destDir });
    assert.equal(fileRequests(s, REPO).length, before);
    assert.deepEqual(again.downloaded, []);
    assert.deepEqual(again.alreadyPresent, Q4_FILES);
  });

  test('resumes after a dropped connection: the second request carries Range and the file verifies', async () => {
    const files = repoFiles({ 'onnx/model_q4.onnx_data': { faults: (n) => (n === 0 ? { dropAfter: 150_000 } : undefined) } });
    const { server: s } = await hub(files);
    const destDir = join(tempDir(), 'model');
    await downloadModel({ hubUrl: s.origin, repo: REPO, variant: 'q4', destDir, retry: noWait });
    const data = fileRequests(s, REPO).filter((r) => r.path === 'onnx/model_q4.onnx_data' && r.via === 'cdn');
    assert.equal(data.length, 2);
    assert.equal(data[0].range, undefined);
    const m = /^bytes=(\d+)-$/.exec(data[1].range ?? '');
    assert.ok(m && Number(m[1]) > 0, `Range on the second request, got ${data[1].range}`);
    assert.deepEqual(readFileSync(join(destDir, 'onnx', 'model_q4.onnx_data')), files['onnx/model_q4.onnx_data'].body);
    assert.equal((await checkDownloadedModel(destDir, { deep: true })).complete, true);
  });

  test('a checksum mismatch discards the file with a clear error and writes no manifest', async () => {
    const files = repoFiles({ 'onnx/model_q4.onnx': { listedSha256: 'e'.repeat(64) } });
    const { server: s } = await hub(files);
    const destDir = join(tempDir(), 'model');
    const e = await rejectsWith(downloadModel({ hubUrl: s.origin, repo: REPO, variant: 'q4', destDir, retry: noWait }), 'checksum');
    assert.match(e.message, /onnx\/model_q4\.onnx .*does not match its expected sha256/);
    assert.match(e.message, /deleted/);
    assert.equal(existsSync(join(destDir, 'onnx', 'model_q4.onnx')), false);
    assert.equal(existsSync(join(destDir, 'onnx', 'model_q4.onnx.partial')), false);
    assert.equal(existsSync(join(destDir, MANIFEST_FILE)), false);
    assert.equal((await checkDownloadedModel(destDir)).complete, false);
  });

  test('a repository that does not exist gives not-found with the URL', async () => {
    const { server: s } = await hub();
    const e = await rejectsWith(downloadModel({ hubUrl: s.origin, repo: 'nobody/nothing', variant: 'q4', destDir: join(tempDir(), 'm') }), 'not-found');
    assert.ok(e.message.includes(hubTreeUrl(s.origin, 'nobody/nothing', 'main')), e.message);
    assert.equal(e.status, 404);
  });

  test('a listed file that answers 404 gives not-found with its URL', async () => {
    const { server: s } = await hub(repoFiles({ 'tokenizer.json': { status: 404 } }));
    const e = await rejectsWith(downloadModel({ hubUrl: s.origin, repo: REPO, variant: 'q4', destDir: join(tempDir(), 'm') }), 'not-found');
    assert.ok(e.message.includes(hubResolveUrl(s.origin, REPO, 'main', 'tokenizer.json')), e.message);
  });

  test('offline: a closed port gives the offline error', async () => {
    const port = await closedPort();
    const e = await rejectsWith(downloadModel({ hubUrl: `http://127.0.0.1:${port}`, repo: REPO, variant: 'q4', destDir: join(tempDir(), 'm') }), 'offline');
    assert.equal(e.message, `You appear to be offline: could not reach 127.0.0.1:${port}. Connect and retry, or choose a local model folder with R1: Select Model.`);
  });

  test('offline: a hub name that does not resolve gives the offline error', async () => {
    const lookup = ((hostname: string, _o: unknown, cb: (e: NodeJS.ErrnoException | null) => void) =>
      cb(Object.assign(new Error(`getaddrinfo ENOTFOUND ${hostname}`), { code: 'ENOTFOUND' }))) as unknown as import('node:net').LookupFunction;
    const e = await rejectsWith(downloadModel({ hubUrl: 'https://hub.r1-test.invalid', repo: REPO, variant: 'q4', destDir: join(tempDir(), 'm'), lookup }), 'offline');
    assert.match(e.message, /^You appear to be offline: could not reach hub\.r1-test\.invalid\./);
  });

  test('cancel mid-download keeps the partial file, and the next call resumes it', async () => {
    const files = repoFiles({ 'onnx/model_q4.onnx_data': { faults: (n) => (n === 0 ? { stallAfter: 200_000 } : undefined) } });
    const { server: s } = await hub(files);
    const destDir = join(tempDir(), 'model');
    const ac = new AbortController();
    await rejectsWith(
      downloadModel({
        hubUrl: s.origin,
        repo: REPO,
        variant: 'q4',
        destDir,
        signal: ac.signal,
        progressIntervalMs: 0,
        onProgress: (p) => {
          if (p.file === 'onnx/model_q4.onnx_data' && p.receivedBytes >= 200_000) ac.abort();
        },
      }),
      'cancelled',
    );
    const partial = join(destDir, 'onnx', 'model_q4.onnx_data.partial');
    assert.equal(statSync(partial).size, 200_000);
    assert.equal(existsSync(join(destDir, 'onnx', 'model_q4.onnx_data')), false);
    assert.equal(existsSync(join(destDir, MANIFEST_FILE)), false);

    const result = await downloadModel({ hubUrl: s.origin, repo: REPO, variant: 'q4', destDir });
    const data = fileRequests(s, REPO).filter((r) => r.path === 'onnx/model_q4.onnx_data' && r.via === 'cdn');
    assert.equal(data[data.length - 1].range, 'bytes=200000-');
    assert.deepEqual(result.downloaded, ['onnx/model_q4.onnx_data']);
    assert.deepEqual(readFileSync(join(destDir, 'onnx', 'model_q4.onnx_data')), files['onnx/model_q4.onnx_data'].body);
    assert.equal((await readDownloadManifest(destDir))?.variant, 'q4');
  });

  test('a variant the repository lacks names the variants it has', async () => {
    const { server: s } = await hub();
    const e = await rejectsWith(downloadModel({ hubUrl: s.origin, repo: REPO, variant: 'int8', destDir: join(tempDir(), 'm') }), 'variant-unavailable');
    assert.match(e.message, /onnx\/model_int8\.onnx/);
    assert.match(e.message, /fp16, fp32, q4, q4f16/);
    assert.equal(fileRequests(s, REPO).length, 0);
  });

  test('the token goes to the hub as a bearer token', async () => {
    const { server: s } = await hub();
    await downloadModel({ hubUrl: s.origin, repo: REPO, variant: 'q4f16', destDir: join(tempDir(), 'm'), token: 'hf_test' });
    const tree = s.requests.find((r) => r.path.startsWith('/api/models/'));
    assert.equal(tree?.authorization, 'Bearer hf_test');
  });
});

describe('a genai folder in a repository subfolder (onnxruntime/DeepSeek-R1-Distill-ONNX)', () => {
  const GENAI_REPO = 'onnxruntime/DeepSeek-R1-Distill-ONNX';
  const CPU = 'deepseek-r1-distill-qwen-1.5B/cpu_and_mobile/cpu-int4-rtn-block-32-acc-level-4';
  const GPU = 'deepseek-r1-distill-qwen-1.5B/gpu/gpu-int4-rtn-block-32';
  function genaiRepo(): Record<string, FakeHubFile> {
    const files: Record<string, FakeHubFile> = { 'README.md': { body: Buffer.from('# genai\n') } };
    for (const [dir, seed] of [
      [CPU, 10],
      [GPU, 20],
    ] as const) {
      files[`${dir}/genai_config.json`] = { body: Buffer.from(JSON.stringify({ model: { type: 'qwen2' } })) };
      files[`${dir}/model.onnx`] = { body: bytes(30_000, seed), lfs: true };
      files[`${dir}/model.onnx.data`] = { body: bytes(200_000, seed + 1), lfs: true };
      files[`${dir}/tokenizer.json`] = { body: bytes(20_000, seed + 2) };
      files[`${dir}/tokenizer_config.json`] = { body: Buffer.from('{}') };
      files[`${dir}/special_tokens_map.json`] = { body: Buffer.from('{}') };
    }
    return files;
  }

  test('fetches only that folder, stores its files at the top of the model folder, and names the entry in the manifest', async () => {
    server = await startLoopback();
    const files = genaiRepo();
    installFakeHub(server, { repo: GENAI_REPO, commit: COMMIT, files });
    const destDir = join(tempDir(), 'DeepSeek-R1-Distill-Qwen-1.5B-cpu-int4');
    const result = await downloadModel({ hubUrl: server.origin, repo: GENAI_REPO, variant: 'q4', layout: 'genai', subfolder: CPU, entryId: 'qwen-1.5b-genai-cpu', destDir });
    const names = ['genai_config.json', 'model.onnx', 'model.onnx.data', 'special_tokens_map.json', 'tokenizer.json', 'tokenizer_config.json'];
    assert.deepEqual([...result.downloaded].sort(), names);
    for (const n of names) assert.deepEqual(readFileSync(join(destDir, n)), files[`${CPU}/${n}`].body, n);
    const requested = [...new Set(fileRequests(server, GENAI_REPO).map((r) => r.path))];
    assert.ok(requested.every((p) => p.startsWith(`${CPU}/`)), `only the CPU folder: ${requested.join(', ')}`);
    const manifest = await readDownloadManifest(destDir);
    assert.equal(manifest?.subfolder, CPU);
    assert.equal(manifest?.layout, 'genai');
    assert.equal(manifest?.entryId, 'qwen-1.5b-genai-cpu');
    assert.equal((await checkDownloadedModel(destDir, { deep: true })).complete, true);
  });

  test('a folder without genai_config.json is refused with what is missing', async () => {
    server = await startLoopback();
    const files = genaiRepo();
    delete files[`${CPU}/genai_config.json`];
    installFakeHub(server, { repo: GENAI_REPO, commit: COMMIT, files });
    const e = await rejectsWith(downloadModel({ hubUrl: server.origin, repo: GENAI_REPO, variant: 'q4', layout: 'genai', subfolder: CPU, destDir: join(tempDir(), 'x') }), 'variant-unavailable');
    assert.match(e.message, /has no genai_config\.json, which an onnxruntime-genai model folder needs/);
  });

  test('a folder larger than the free disk is refused before any byte is fetched', async () => {
    server = await startLoopback();
    const files = genaiRepo();
    files[`${CPU}/model.onnx.data`] = { ...files[`${CPU}/model.onnx.data`], listedSize: 2 ** 52 };
    installFakeHub(server, { repo: GENAI_REPO, commit: COMMIT, files });
    const e = await rejectsWith(downloadModel({ hubUrl: server.origin, repo: GENAI_REPO, variant: 'q4', layout: 'genai', subfolder: CPU, destDir: join(tempDir(), 'big') }), 'disk-full');
    assert.match(e.message, /The model needs [\d.]+ GB more in .*, but only [\d.]+ GB is free\./);
    assert.deepEqual(fileRequests(server, GENAI_REPO), [], 'nothing was downloaded');
  });
});

describe('variant file selection', () => {
  const entry = (path: string, lfs = false): HubTreeEntry => ({ type: 'file', path, size: 1, oid: '0'.repeat(40), ...(lfs ? { lfs: { oid: '0'.repeat(64), size: 1 } } : {}) });
  const base = ['config.json', 'generation_config.json', 'tokenizer.json', 'tokenizer_config.json'].map((p) => entry(p));

  test('fp32 is onnx/model.onnx; chunked external data is included; other variants are not', () => {
    const entries = [...base, entry('onnx/model.onnx', true), entry('onnx/model.onnx_data', true), entry('onnx/model.onnx_data_1', true), entry('onnx/model_q4.onnx', true)];
    assert.deepEqual(
      selectVariantFiles(entries, 'fp32').files.map((f) => f.path),
      ['config.json', 'generation_config.json', 'tokenizer.json', 'tokenizer_config.json', 'onnx/model.onnx', 'onnx/model.onnx_data', 'onnx/model.onnx_data_1'],
    );
    assert.deepEqual(
      selectVariantFiles(entries, 'q4').files.map((f) => f.path).slice(4),
      ['onnx/model_q4.onnx'],
    );
  });

  test('generation_config.json is optional; tokenizer.json is required', () => {
    const noGen = [...base.filter((e) => e.path !== 'generation_config.json'), entry('onnx/model_q4.onnx', true)];
    assert.deepEqual(selectVariantFiles(noGen, 'q4').absentOptional, ['generation_config.json']);
    const noTok = [...base.filter((e) => e.path !== 'tokenizer.json'), entry('onnx/model_q4.onnx', true)];
    assert.throws(() => selectVariantFiles(noTok, 'q4'), (e: unknown) => e instanceof DownloadError && e.code === 'variant-unavailable' && /tokenizer\.json/.test(e.message));
  });

  test('paths outside the variant pattern (even traversal tricks) are not selected', () => {
    const entries = [...base, entry('onnx/model_q4.onnx', true), entry('onnx/model_q4.onnx_data/../../../etc', true)];
    assert.equal(selectVariantFiles(entries, 'q4').files.length, 5);
  });

  test('listHubFiles skips directories and keeps lfs info', async () => {
    const { server: s, files } = await hub();
    const list = await listHubFiles({ hubUrl: s.origin, repo: REPO });
    assert.equal(list.length, Object.keys(files).length);
    const q4 = list.find((e) => e.path === 'onnx/model_q4.onnx');
    assert.equal(q4?.lfs?.oid, sha256(files['onnx/model_q4.onnx'].body));
  });
});
