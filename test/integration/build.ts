/**
 * Builds the integration-test bundles with esbuild into .cache/integration/:
 *   suite.js                 the mocha suites + run(), loaded by @vscode/test-electron as extensionTestsPath
 *   runner/                  the test-runner extension (runner/package.json + dist/extension.js)
 *   r1-coder-tests.vsix      that extension packaged with vsce, for `code-server --install-extension`
 */
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as esbuild from 'esbuild';
import { cleanNpmEnv, ensureInstalled, REPO_ROOT } from '../e2e/install';

export const INTEGRATION_OUT = join(REPO_ROOT, '.cache', 'integration');

const common: esbuild.BuildOptions = {
  bundle: true,
  platform: 'node',
  format: 'cjs',
  target: 'node20',
  external: ['vscode'],
  sourcemap: 'inline',
  logLevel: 'warning',
  // mocha's parallel mode (worker files found with require.resolve) is not used here.
  logOverride: { 'require-resolve-not-external': 'silent' },
  // mocha 12 ships ES modules; esbuild turns them into CommonJS for the extension host.
  mainFields: ['module', 'main'],
};

/** The suites as one module exporting run() (for @vscode/test-electron). */
export async function buildSuite(): Promise<string> {
  const outfile = join(INTEGRATION_OUT, 'suite.js');
  await esbuild.build({ ...common, entryPoints: [join(__dirname, 'suite', 'index.ts')], outfile });
  return outfile;
}

/** The test-runner extension, packaged as a VSIX. */
export async function buildRunnerVsix(): Promise<string> {
  const dir = join(INTEGRATION_OUT, 'runner');
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(join(dir, 'dist'), { recursive: true });
  await esbuild.build({ ...common, entryPoints: [join(__dirname, 'runner', 'extension.ts')], outfile: join(dir, 'dist', 'extension.js') });
  copyFileSync(join(__dirname, 'runner', 'package.json'), join(dir, 'package.json'));
  writeFileSync(join(dir, 'README.md'), '# R1 Coder integration test runner\n\nTest-only; see test/integration/runner/extension.ts.\n');
  writeFileSync(join(dir, '.vscodeignore'), '**\n!package.json\n!README.md\n!dist/extension.js\n');
  const vsix = join(INTEGRATION_OUT, 'r1-coder-tests.vsix');
  // vsce declares Node >= 22: use the cached Node 24 (installed on first use) when this Node is older.
  const node = Number(process.versions.node.split('.')[0]) >= 22 ? process.execPath : ensureInstalled().node;
  const r = spawnSync(
    node,
    [join(REPO_ROOT, 'node_modules/@vscode/vsce/vsce'), 'package', '--no-dependencies', '--skip-license', '--allow-missing-repository', '--out', vsix],
    { cwd: dir, encoding: 'utf8', env: cleanNpmEnv() },
  );
  if (r.status !== 0) throw new Error(`Packaging the test-runner extension failed (${r.error?.message ?? `exit ${r.status ?? r.signal}`}):\n${r.stdout}\n${r.stderr}`);
  return vsix;
}

if (require.main === module) {
  Promise.all([buildSuite(), buildRunnerVsix()]).then(
    (files) => console.log(files.join('\n')),
    (e: unknown) => {
      console.error(e);
      process.exit(1);
    },
  );
}
