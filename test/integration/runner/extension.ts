/**
 * Test-only extension installed next to R1 Coder in code-server. code-server does not run
 * extensionTestsPath, so this extension runs the mocha suite itself when it activates, when the
 * user setting `r1Tests.resultsFile` names a file. It writes one JSON line per finished test and
 * a final `{"done": ...}` line, which the harness (../runInCodeServer.ts) reads.
 */
import { appendFileSync, writeFileSync } from 'node:fs';
import * as vscode from 'vscode';
import { runSuites } from '../suite/index';

export function activate(): void {
  const file = vscode.workspace.getConfiguration('r1Tests').get<string>('resultsFile');
  if (!file) return;
  writeFileSync(file, '');
  const write = (record: unknown): void => appendFileSync(file, `${JSON.stringify(record)}\n`);
  write({ started: new Date().toISOString(), pid: process.pid, vscode: vscode.version });
  runSuites({ onResult: (result) => write({ result }) }).then(
    (results) => write({ done: { passed: results.passed, failed: results.failed, pending: results.pending, durationMs: results.durationMs } }),
    (e: unknown) => write({ crashed: e instanceof Error ? (e.stack ?? e.message) : String(e) }),
  );
}

export function deactivate(): void {}
