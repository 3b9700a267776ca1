/**
 * `r1 models`: the catalogue listing, what is downloaded in a models folder (fake files of the
 * catalogue's sizes, sparse so they take no disk), and the recommendation. In process with a
 * made-up machine, and spawned as `r1 models --json` on this machine.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { closeSync, mkdirSync, openSync, ftruncateSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { PassThrough } from 'node:stream';
import { describe, test } from 'node:test';
import { type CatalogueEntry, entryDir, loadCatalogue } from '../../../src/install/catalogue';
import { main } from '../../../src/cli/main';
import { type MachineReport, runModels } from '../../../src/cli/models';
import { tempDirs } from '../install/loopback';

const ROOT = resolve(__dirname, '../../..');
const GB = 1e9;
const tempDir = tempDirs('r1-models-');
const catalogue = loadCatalogue();

interface ModelJson {
  id: string;
  title: string;
  repository: string;
  subfolder: string;
  layout: string;
  architecture: string;
  parameters: number;
  providers: string[];
  liveCodeBench: number;
  gated: boolean;
  totalBytes: number;
  bytesEstimated: boolean;
  ramBytes: number;
  vramBytes: number | null;
  diskNeededBytes: number;
  runsOn: string | null;
  fits: { disk: boolean; memory: boolean; vram: boolean | null; architecture: boolean };
  eligible: boolean;
  recommended: boolean;
  reasons: string[];
  download: { status: string; dir: string; presentBytes: number; problems: string[] };
}

interface ModelsJson {
  modelsDir: string;
  contextTokens: number;
  machine: { freeRamBytes: number; totalRamBytes: number; freeDiskBytes: number; gpuProviders: string[]; vramBytes: number | null; supportedArchitectures: string[] };
  recommended: { id: string; provider: string; reason: string } | null;
  reason: string;
  models: ModelJson[];
}

const EIGHT_GB_CPU: MachineReport = {
  platform: 'linux',
  arch: 'x64',
  freeRamBytes: 6.5 * GB,
  totalRamBytes: 8 * GB,
  freeDiskBytes: 100 * GB,
  gpuProviders: [],
  supportedArchitectures: ['qwen2'],
};

function entry(id: string): CatalogueEntry {
  const e = catalogue.entries.find((x) => x.id === id);
  assert.ok(e, id);
  return e;
}

/** Writes the entry's files with the catalogue's sizes (sparse), optionally changing some. */
function fakeDownload(models: string, e: CatalogueEntry, sizes: Record<string, number> = {}): void {
  for (const f of e.files) {
    const p = join(entryDir(models, e), ...f.path.split('/'));
    mkdirSync(join(p, '..'), { recursive: true });
    const fd = openSync(p, 'w');
    ftruncateSync(fd, sizes[f.path] ?? f.bytes);
    closeSync(fd);
  }
}

function capture(): { stream: PassThrough; text: () => string } {
  const stream = new PassThrough();
  let text = '';
  stream.on('data', (d: Buffer) => (text += d.toString()));
  return { stream, text: () => text };
}

async function runIn(argv: string[], machine: MachineReport, env: NodeJS.ProcessEnv = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  const out = capture();
  const err = capture();
  const code = await runModels(argv, { stdout: out.stream, stderr: err.stream, env, catalogue, machine });
  return { code, stdout: out.text(), stderr: err.text() };
}

function r1(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((done, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args], { cwd: ROOT, env: { ...process.env, NO_COLOR: '1', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => done({ code, stdout, stderr }));
  });
}

describe('r1 models, in process on a made-up machine', () => {
  test('--json: one document with the machine, the recommendation and every entry; a downloaded entry is detected by its files', async () => {
    const models = tempDir();
    fakeDownload(models, entry('qwen-1.5b-q4'));
    const r = await runIn(['--json', '--models-dir', models], EIGHT_GB_CPU);
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.trim().split('\n');
    assert.equal(lines.length, 1, 'one line of JSON');
    const doc = JSON.parse(lines[0]!) as ModelsJson;
    assert.deepEqual(Object.keys(doc), ['modelsDir', 'contextTokens', 'machine', 'recommended', 'reason', 'models']);
    assert.equal(doc.modelsDir, models);
    assert.equal(doc.contextTokens, 8192);
    assert.equal(doc.machine.freeRamBytes, 6.5 * GB);
    assert.deepEqual(doc.machine.gpuProviders, []);
    assert.equal(doc.machine.vramBytes, null);
    assert.deepEqual(
      doc.models.map((m) => m.id),
      catalogue.entries.map((e) => e.id),
    );
    const byId = new Map(doc.models.map((m) => [m.id, m]));
    const q4 = byId.get('qwen-1.5b-q4')!;
    assert.equal(q4.download.status, 'downloaded');
    assert.equal(q4.download.dir, join(models, 'DeepSeek-R1-Distill-Qwen-1.5B-ONNX'));
    assert.equal(q4.download.presentBytes, q4.totalBytes);
    // It shares the folder with q4f16, whose graph is not there.
    assert.equal(byId.get('qwen-1.5b-q4f16')!.download.status, 'absent');
    for (const m of doc.models.filter((x) => x.id !== 'qwen-1.5b-q4')) assert.notEqual(m.download.status, 'downloaded', m.id);
    // Downloaded: only the CPU-prepared copy still needs disk.
    assert.equal(q4.diskNeededBytes, entry('qwen-1.5b-q4').memory.weightsBytes);
    assert.deepEqual(doc.recommended && { id: doc.recommended.id, provider: doc.recommended.provider }, { id: 'qwen-1.5b-q4', provider: 'cpu' });
    assert.equal(q4.recommended, true);
    assert.equal(doc.models.filter((m) => m.recommended).length, 1);
    assert.match(doc.recommended!.reason, /, and it is downloaded\./);
    assert.equal(doc.reason, doc.recommended!.reason);
    const seven = byId.get('qwen-7b-genai-cpu')!;
    assert.deepEqual(seven.fits, { disk: true, memory: false, vram: null, architecture: true });
    assert.match(seven.reasons[0]!, /It needs 9\.0 GB of memory/);
    const llama = byId.get('llama-8b-dml')!;
    assert.equal(llama.runsOn, null);
    assert.equal(llama.fits.architecture, false);
    for (const m of doc.models) {
      for (const k of ['title', 'repository', 'subfolder', 'layout', 'architecture', 'parameters', 'providers', 'liveCodeBench', 'gated', 'totalBytes', 'bytesEstimated', 'ramBytes', 'vramBytes', 'fits', 'reasons', 'download']) {
        assert.ok(k in m, `${m.id} has ${k}`);
      }
    }
  });

  test('a file of the wrong size: partial, with the file named', async () => {
    const models = tempDir();
    fakeDownload(models, entry('qwen-1.5b-q4'), { 'tokenizer.json': 5 });
    const doc = JSON.parse((await runIn(['--json', '--models-dir', models], EIGHT_GB_CPU)).stdout) as ModelsJson;
    const q4 = doc.models.find((m) => m.id === 'qwen-1.5b-q4')!;
    assert.equal(q4.download.status, 'partial');
    assert.match(q4.download.problems.join(' '), /tokenizer\.json is 5 bytes, and no download manifest says what it should be/);
    assert.equal(q4.diskNeededBytes, q4.totalBytes + entry('qwen-1.5b-q4').memory.weightsBytes, 'not downloaded: the download counts again');
  });

  test('text: the table marks the recommended row and what is downloaded, and ends with the reason', async () => {
    const models = tempDir();
    fakeDownload(models, entry('qwen-1.5b-q4'));
    const r = await runIn(['--models-dir', models], { ...EIGHT_GB_CPU, gpuProviders: ['cuda'], vramBytes: 8 * GB, vramTotalBytes: 12 * GB, gpuName: 'NVIDIA Test' });
    assert.equal(r.code, 0);
    const lines = r.stdout.split('\n');
    assert.match(lines[0]!, new RegExp(`^models folder  ${models.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}, 100\\.0 GB free$`));
    assert.match(lines[1]!, /^this machine   6\.5 GB of 8\.0 GB memory free; GPU providers CUDA; NVIDIA Test: 8\.0 GB of 12\.0 GB free; engine runs qwen2$/);
    assert.match(r.stdout, /^ +ID +RUNS ON +DOWNLOAD +MEMORY +GPU MEMORY +SCORE +HERE +FITS$/m);
    // 8 GB of VRAM, 6.5 GB of RAM: the 7B GPU build needs 6.6 GB of RAM, so the 1.5B GPU build.
    assert.match(r.stdout, /^\* +qwen-1\.5b-q4f16 +cuda,dml,webgpu +~1\.4 GB +~2\.7 GB +~2\.2 GB +16\.9 +- +fits$/m);
    assert.match(r.stdout, /^ +qwen-1\.5b-q4 +cpu +~2\.0 GB +~3\.6 GB +- +16\.9 +downloaded +fits$/m);
    assert.match(r.stdout, /^ +qwen-7b-genai-gpu +.* +no: memory$/m);
    assert.match(r.stdout, /^ +r1-0528-qwen3-8b-cpu +.* +no: qwen3 not supported yet, memory$/m);
    assert.match(r.stdout, /\nrecommended    qwen-1\.5b-q4f16: R1-Distill-Qwen-1\.5B q4f16 \(GPU\) has the best LiveCodeBench score \(16\.9\) of the models that run on this machine's GPU with CUDA/);
  });

  test('nothing fits: exit 0, "recommended none" and the reason', async () => {
    const r = await runIn(['--models-dir', tempDir()], { ...EIGHT_GB_CPU, freeDiskBytes: 0.5 * GB });
    assert.equal(r.code, 0);
    assert.match(r.stdout, /\nrecommended    none\. No model fits this machine\. .* but only 0\.5 GB is free\.\n$/);
    const doc = JSON.parse((await runIn(['--json', '--models-dir', tempDir()], { ...EIGHT_GB_CPU, freeDiskBytes: 0.5 * GB })).stdout) as ModelsJson;
    assert.equal(doc.recommended, null);
    assert.match(doc.reason, /^No model fits this machine\./);
  });

  test('the models folder comes from --models-dir, else $R1_MODELS_DIR', async () => {
    const dir = tempDir();
    const doc = JSON.parse((await runIn(['--json'], EIGHT_GB_CPU, { R1_MODELS_DIR: dir })).stdout) as ModelsJson;
    assert.equal(doc.modelsDir, dir);
  });
});

describe('r1 models, as a command', () => {
  test('r1 models --json on this machine: exit 0, one JSON document, the downloaded entry detected', async () => {
    const models = tempDir();
    fakeDownload(models, entry('qwen-1.5b-q4'));
    const r = await r1(['models', '--json', '--models-dir', models]);
    assert.equal(r.code, 0, r.stderr);
    const doc = JSON.parse(r.stdout) as ModelsJson;
    assert.equal(doc.modelsDir, models);
    assert.deepEqual(doc.machine.supportedArchitectures, ['qwen2', 'llama', 'qwen3']);
    assert.ok(doc.machine.totalRamBytes > 0 && doc.machine.freeRamBytes > 0 && doc.machine.freeDiskBytes > 0);
    assert.ok(Array.isArray(doc.machine.gpuProviders) && !doc.machine.gpuProviders.includes('cpu'));
    assert.equal(doc.models.length, catalogue.entries.length);
    assert.equal(doc.models.find((m) => m.id === 'qwen-1.5b-q4')!.download.status, 'downloaded');
    assert.equal(typeof doc.reason, 'string');
    if (doc.recommended) assert.equal(doc.models.find((m) => m.recommended)?.id, doc.recommended.id);
  });

  test('a usage mistake: exit 2 with the message; r1 --help lists models', async () => {
    const out = capture();
    const err = capture();
    assert.equal(await main(['models', '--bogus'], { stdout: out.stream, stderr: err.stream, env: {} }), 2);
    assert.match(err.text(), /^r1: Unknown option '--bogus'/);
    const help = capture();
    assert.equal(await main(['--help'], { stdout: help.stream, stderr: err.stream, env: {} }), 0);
    assert.match(help.text(), /r1 models \[--models-dir DIR\] \[--json\]/);
  });
});
