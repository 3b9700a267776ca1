// Builds a platform-specific VSIX of R1 Coder with @vscode/vsce.
//
//   npm run package -- --target linux-x64 [--out FILE.vsix]
//
// Targets: linux-x64, linux-arm64, win32-x64, darwin-arm64 (default: this machine's platform).
// Steps, in a stage folder (.cache/package/stage-<target>-<pid>, removed afterwards): copy the sources and
// the production dependency closure, build production bundles (scripts/build.mjs --production), then
// `vsce package --target T` with `.vscodeignore` plus the lines that bring back exactly that
// platform's onnxruntime-node binaries (no other platform, no CUDA/TensorRT provider libraries).
// Prints the VSIX path and size. The repository's own dist/ is neither read nor written.
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const ORT_BIN = 'node_modules/onnxruntime-node/bin/napi-v6';

/**
 * The onnxruntime-node files each target needs at run time, in bin/napi-v6/<os>/<arch>/.
 * - darwin: the binding loads @rpath/libonnxruntime.1.dylib; libonnxruntime.1.30.0.dylib is a
 *   byte-identical copy (npm packages hold no symlinks), so it stays out (43 MB).
 * - win32: DirectML.dll backs the `dml` provider; dxil.dll and dxcompiler.dll compile its and
 *   WebGPU's shaders.
 * CUDA and TensorRT providers (libonnxruntime_providers_*.so) are never packaged: they are a
 * separate, user-requested download.
 */
export const TARGETS = {
  'linux-x64': { dir: 'linux/x64', files: ['onnxruntime_binding.node', 'libonnxruntime.so.1'] },
  'linux-arm64': { dir: 'linux/arm64', files: ['onnxruntime_binding.node', 'libonnxruntime.so.1'] },
  'win32-x64': {
    dir: 'win32/x64',
    files: ['onnxruntime_binding.node', 'onnxruntime.dll', 'DirectML.dll', 'dxil.dll', 'dxcompiler.dll'],
  },
  'darwin-arm64': { dir: 'darwin/arm64', files: ['onnxruntime_binding.node', 'libonnxruntime.1.dylib'] },
};

const BUNDLES = ['dist/extension.js', 'dist/server.js', 'dist/cli.js', 'dist/webview.js', 'dist/webview.css'];

/**
 * What the stage copies from the repository: the build's inputs and the files the VSIX ships.
 * The build runs in the stage, so a developer's own `npm run build`/`watch` into dist/ can neither
 * race with packaging nor leak development bundles into the VSIX.
 */
const STAGE_INPUTS = ['package.json', 'README.md', 'LICENSE', 'LICENSE.md', 'LICENSE.txt', 'CHANGELOG.md', 'tsconfig.json', 'media', 'src', 'webview', 'scripts/build.mjs'];

/** The stage folder of this run, removed on failure too. */
let stageDir;

function fail(message) {
  console.error(`[package] ${message}`);
  if (stageDir) rmSync(stageDir, { recursive: true, force: true });
  process.exit(1);
}

function parseArgs(argv) {
  const args = { target: `${process.platform}-${process.arch}`, out: undefined };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const value = () => {
      const v = argv[++i];
      if (v === undefined) fail(`${a} needs a value.`);
      return v;
    };
    if (a === '--target') args.target = value();
    else if (a.startsWith('--target=')) args.target = a.slice('--target='.length);
    else if (a === '--out') args.out = value();
    else if (a.startsWith('--out=')) args.out = a.slice('--out='.length);
    else fail(`Unknown option ${a}. Usage: npm run package -- --target <${Object.keys(TARGETS).join('|')}> [--out FILE.vsix]`);
  }
  if (!(args.target in TARGETS)) {
    fail(`Unsupported target "${args.target}". Supported: ${Object.keys(TARGETS).join(', ')}.`);
  }
  return args;
}

/** vsce 4 declares Node >= 22. Use this Node when it is, else the e2e cache's Node 24 when present. */
function nodeForVsce() {
  if (Number(process.versions.node.split('.')[0]) >= 22) return process.execPath;
  const cached = join(ROOT, '.cache/e2e/node24/node_modules/node/bin/node');
  if (existsSync(cached)) return cached;
  console.warn(`[package] Node ${process.version} is older than vsce's declared minimum (22) and no cached Node 24 was found (.cache/e2e/node24, made by "npx tsx test/e2e/install.ts"); trying with this Node.`);
  return process.execPath;
}

/** The environment without an outer npm's npm_* variables (its .npmrc and user agent). */
function cleanEnv() {
  return Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^npm_/i.test(k)));
}

function run(cmd, args, cwd) {
  const r = spawnSync(cmd, args, { cwd, stdio: 'inherit', env: cleanEnv() });
  if (r.error) fail(`Could not run ${cmd}: ${r.error.message}`);
  if (r.status !== 0) fail(`${cmd} ${args.join(' ')} failed (exit ${r.status ?? r.signal}).`);
}

/** Folders (relative to the repository) of the production dependency closure, as npm sees it. */
function productionPackages() {
  const r = spawnSync('npm', ['ls', '--omit=dev', '--all', '--parseable'], { cwd: ROOT, encoding: 'utf8', env: cleanEnv() });
  if (r.status !== 0) fail(`"npm ls --omit=dev" failed; run "npm ci" first.\n${r.stderr}`);
  return r.stdout
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && resolve(l) !== ROOT)
    .map((l) => relative(ROOT, l));
}

/** Copies a folder, as hard links where the platform allows (the stage only reads them). */
function copyTree(from, to) {
  mkdirSync(dirname(to), { recursive: true });
  if (process.platform !== 'win32') {
    const r = spawnSync('cp', ['-al', from, to]);
    if (r.status === 0) return;
  }
  cpSync(from, to, { recursive: true });
}

function stage(targetName) {
  const dir = join(ROOT, '.cache/package', `stage-${targetName}-${process.pid}`);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  stageDir = dir;
  for (const p of STAGE_INPUTS) {
    if (existsSync(join(ROOT, p))) cpSync(join(ROOT, p), join(dir, p), { recursive: true });
  }
  // vsce lists production dependencies with `npm list` in the stage: give it the whole closure.
  // .vscodeignore then keeps only onnxruntime-node's and onnxruntime-common's run-time files.
  for (const p of productionPackages()) copyTree(join(ROOT, p), join(dir, p));
  return dir;
}

function main() {
  const args = parseArgs(process.argv.slice(2));
  const target = TARGETS[args.target];
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8'));
  const out = resolve(ROOT, args.out ?? `${pkg.name}-${args.target}-${pkg.version}.vsix`);

  // The platform's binaries must be there: a VSIX without them would install and then fail.
  for (const f of target.files) {
    if (!existsSync(join(ROOT, ORT_BIN, target.dir, f))) {
      fail(`${join(ORT_BIN, target.dir, f)} is missing. Run "npm ci" (onnxruntime-node ships every platform's CPU binaries).`);
    }
  }

  const dir = stage(args.target);
  // Production bundles, built in the stage (esbuild finds the bundled packages in the repository's
  // node_modules by walking up from the stage).
  run(process.execPath, ['scripts/build.mjs', '--production'], dir);
  for (const f of BUNDLES) if (!existsSync(join(dir, f))) fail(`The production build did not write ${f}.`);

  // .vscodeignore, then this target's binaries. vsce reads one ignore file, so write the union.
  const base = readFileSync(join(ROOT, '.vscodeignore'), 'utf8');
  const platformLines = target.files.map((f) => `!${ORT_BIN}/${target.dir}/${f}`);
  const ignoreFile = join(dir, '.vscodeignore');
  writeFileSync(ignoreFile, `${base.trimEnd()}\n\n# ${args.target} binaries (scripts/package.mjs)\n${platformLines.join('\n')}\n`);

  mkdirSync(dirname(out), { recursive: true });
  const vsce = join(ROOT, 'node_modules/@vscode/vsce/vsce');
  // No LICENSE file in the repository yet: vsce would stop and ask on a terminal.
  const license = ['LICENSE', 'LICENSE.md', 'LICENSE.txt'].some((f) => existsSync(join(dir, f))) ? [] : ['--skip-license'];
  run(nodeForVsce(), [vsce, 'package', '--target', args.target, '--ignoreFile', ignoreFile, '--out', out, ...license], dir);
  rmSync(dir, { recursive: true, force: true });

  const bytes = statSync(out).size;
  const shown = relative(ROOT, out).startsWith('..') ? out : relative(ROOT, out);
  console.log(`[package] ${shown}: ${(bytes / 1024 / 1024).toFixed(2)} MB (${bytes} bytes), target ${args.target}`);
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) main();
