/**
 * Runs the extension-host integration suite (test/integration/suite) inside code-server:
 * R1 Coder's VSIX plus the test-runner extension (test/integration/runner) are installed into a
 * fresh code-server; the runner runs mocha on activation and writes one JSON line per test to a
 * results file, which this node:test file turns into one subtest per mocha test.
 *
 *   npm run test:integration
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { withE2E } from '../e2e/harness';
import { buildRunnerVsix } from './build';
import type { TestResult } from './suite/index';

interface Line {
  started?: string;
  vscode?: string;
  result?: TestResult;
  done?: { passed: number; failed: number; pending: number; durationMs: number };
  crashed?: string;
}

function readLines(file: string): Line[] {
  if (!existsSync(file)) return [];
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as Line);
}

test('extension-host integration tests (mocha) in code-server', async (t) => {
  const runnerVsix = await buildRunnerVsix();
  const dir = mkdtempSync(join(tmpdir(), 'r1-integration-'));
  const resultsFile = join(dir, 'results.jsonl');
  try {
    const lines = await withE2E({ name: 'integration', extraVsix: [runnerVsix], settings: { 'r1Tests.resultsFile': resultsFile } }, async (e2e) => {
      // The runner starts on onStartupFinished; the suite itself has per-test timeouts of 60 s.
      const end = Date.now() + 5 * 60_000;
      let seen = readLines(resultsFile);
      while (!seen.some((l) => l.done || l.crashed)) {
        if (Date.now() > end) throw new Error(`The integration suite did not finish within 5 minutes. Results so far:\n${readFileSync(resultsFile, 'utf8')}`);
        await e2e.page.waitForTimeout(250);
        seen = readLines(resultsFile);
      }
      await e2e.screenshot('integration-finished');
      return seen;
    });
    const crashed = lines.find((l) => l.crashed);
    assert.equal(crashed, undefined, `the mocha run crashed: ${crashed?.crashed}`);
    const started = lines.find((l) => l.started);
    t.diagnostic(`ran in the extension host of VS Code ${started?.vscode}`);
    const results = lines.flatMap((l) => (l.result ? [l.result] : []));
    assert.ok(results.length > 0, 'at least one integration test ran');
    for (const r of results) {
      await t.test(r.title, () => {
        assert.notEqual(r.state, 'pending', 'integration tests are not skipped');
        if (r.state === 'failed') throw new Error(r.error);
      });
    }
    const done = lines.find((l) => l.done)?.done;
    t.diagnostic(`mocha: ${done?.passed} passed, ${done?.failed} failed, ${done?.pending} pending in ${done?.durationMs} ms`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
