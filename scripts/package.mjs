// Builds a platform-specific VSIX of R1 Coder with @vscode/vsce.
//
//   npm run package -- --target linux-x64 [--out FILE.vsix] [--skip-build]
//
// Targets: linux-x64, linux-arm64, win32-x64, darwin-arm64 (default: this machine's platform).
// Steps: production bundles (scripts/build.mjs --production), then `vsce package --target T` with
// `.vscodeignore` plus the lines that bring back exactly that platform's onnxruntime-node binaries
// (no other platform, no CUDA/TensorRT provider libraries). Prints the VSIX path and size.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
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

function fail(message) {
  console.error(`[package] ${message}`);
  process.exit(1);
}

function parseArgs(argv) {
  const args = { target: `${process.platform}-${process.arch}`, out: undefined, skipBuild: false };
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
    else if (a === '--skip-build') args.skipBuild = true;
    else fail(`Unknown option ${a}. Usage: npm run package -- --target <${Object.keys(TARGETS).join('|')}> [--out FILE.vsix] [--skip-build]`);
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

function run(cmd, args, env) {
  const r = spawnSync(cmd, args, { cwd: ROOT, stdio: 'inherit', env: env ?? process.env });
  if (r.error) fail(`Could not run ${cmd}: ${r.error.message}`);
  if (r.status !== 0) fail(`${relative(ROOT, cmd) || cmd} ${args.join(' ')} failed (exit ${r.status ?? r.signal}).`);
}

function bundleStamp() {
  return BUNDLES.map((f) => {
    const p = join(ROOT, f);
    if (!existsSync(p)) fail(`${f} is missing after the build.`);
    return `${f}:${statSync(p).mtimeMs}:${statSync(p).size}`;
  }).join('|');
}

function main() {
  const args = parseArgs(process.argv.slice(2));
  const target = TARGETS[args.target];
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8'));
  const out = resolve(ROOT, args.out ?? `${pkg.name}-${args.target}-${pkg.version}.vsix`);

  // The platform's binaries must be there: a VSIX without them would install and then fail.
  const binDir = join(ROOT, ORT_BIN, target.dir);
  for (const f of target.files) {
    if (!existsSync(join(binDir, f))) {
      fail(`${join(ORT_BIN, target.dir, f)} is missing. Run "npm ci" (onnxruntime-node ships every platform's CPU binaries).`);
    }
  }

  if (!args.skipBuild) run(process.execPath, ['scripts/build.mjs', '--production']);
  for (const f of ['dist/extension.js', 'dist/server.js']) {
    if (/\/\/# sourceMappingURL=/.test(readFileSync(join(ROOT, f), 'utf8'))) {
      fail(`${f} is a development build (it has a source map link). Run without --skip-build.`);
    }
  }
  const stamp = bundleStamp();

  // .vscodeignore, then this target's binaries. vsce reads one ignore file, so write the union.
  const ignoreFile = join(ROOT, '.cache/package', `vscodeignore-${args.target}`);
  mkdirSync(dirname(ignoreFile), { recursive: true });
  const base = readFileSync(join(ROOT, '.vscodeignore'), 'utf8');
  const platformLines = target.files.map((f) => `!${ORT_BIN}/${target.dir}/${f}`);
  writeFileSync(ignoreFile, `${base.trimEnd()}\n\n# ${args.target} binaries (scripts/package.mjs)\n${platformLines.join('\n')}\n`);

  mkdirSync(dirname(out), { recursive: true });
  const vsce = join(ROOT, 'node_modules/@vscode/vsce/vsce');
  // No LICENSE file in the repository yet: vsce would stop and ask on a terminal.
  const license = ['LICENSE', 'LICENSE.md', 'LICENSE.txt'].some((f) => existsSync(join(ROOT, f))) ? [] : ['--skip-license'];
  // vsce lists production dependencies with `npm list`; an outer npm's npm_* variables must not leak in.
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^npm_/i.test(k)));
  run(nodeForVsce(), [vsce, 'package', '--target', args.target, '--ignoreFile', ignoreFile, '--out', out, ...license], env);

  if (bundleStamp() !== stamp) {
    fail('dist/ was rebuilt by another process while packaging, so the VSIX may hold development bundles. Run the command again.');
  }
  const bytes = statSync(out).size;
  console.log(`[package] ${relative(ROOT, out)}: ${(bytes / 1024 / 1024).toFixed(2)} MB (${bytes} bytes), target ${args.target}`);
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) main();
