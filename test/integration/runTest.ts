/**
 * The same integration suite (test/integration/suite) in desktop VS Code, through
 * @vscode/test-electron, for machines that can download VS Code (ours cannot: no internet; use
 * `npm run test:integration`, which runs it in code-server).
 *
 *   npm run build && npx tsx test/integration/runTest.ts [--vscode <version>|stable] [--code <path to VS Code executable>]
 *
 * R1 Coder is loaded from the repository (extensionDevelopmentPath, so dist/ must be built) and a
 * copy of the e2e fixture workspace is opened. Without --code, VS Code is downloaded into
 * .vscode-test/ (git-ignore it) by @vscode/test-electron.
 */
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runTests } from '@vscode/test-electron';
import { copyWorkspace, defaultSettings, FIXTURE_WORKSPACE } from '../e2e/harness';
import { REPO_ROOT } from '../e2e/install';
import { buildSuite } from './build';

function option(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

async function main(): Promise<void> {
  if (!existsSync(join(REPO_ROOT, 'dist', 'extension.js'))) throw new Error('dist/extension.js is missing: run "npm run build" first.');
  const extensionTestsPath = await buildSuite();
  const dir = mkdtempSync(join(tmpdir(), 'r1-test-electron-'));
  try {
    const workspace = join(dir, 'workspace');
    copyWorkspace(FIXTURE_WORKSPACE, workspace);
    const userDataDir = join(dir, 'user-data');
    mkdirSync(join(userDataDir, 'User'), { recursive: true });
    writeFileSync(join(userDataDir, 'User', 'settings.json'), JSON.stringify(defaultSettings(), null, 2));
    await runTests({
      version: option('--vscode') ?? 'stable',
      vscodeExecutablePath: option('--code'),
      extensionDevelopmentPath: REPO_ROOT,
      extensionTestsPath,
      launchArgs: [workspace, '--user-data-dir', userDataDir, '--disable-workspace-trust', '--skip-welcome', '--skip-release-notes'],
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((e: unknown) => {
  console.error(`Integration tests failed: ${e instanceof Error ? e.message : String(e)}`);
  process.exit(1);
});
