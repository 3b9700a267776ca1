/**
 * R1 Coder inside a real extension host, through the `vscode` API. Runs in code-server (through
 * the test-runner extension) and in desktop VS Code (through @vscode/test-electron).
 */
import * as assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { suite, test } from 'mocha';
import * as vscode from 'vscode';

const EXTENSION_ID = 'r1-coder.r1-coder';

interface Manifest {
  version: string;
  contributes: {
    commands: { command: string; title: string; category?: string }[];
    configuration: { properties: Record<string, { default?: unknown }> };
    views: Record<string, { id: string }[]>;
  };
}

function extension(): vscode.Extension<unknown> {
  const ext = vscode.extensions.getExtension(EXTENSION_ID);
  assert.ok(ext, `${EXTENSION_ID} is not installed in this extension host`);
  return ext;
}

/** Children of this extension host (Linux: /proc) whose command line contains `needle`. */
function childProcessesWith(needle: string): number[] {
  const pids: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid !== process.pid) continue;
      if (readFileSync(`/proc/${name}/cmdline`, 'utf8').includes(needle)) pids.push(Number(name));
    } catch {
      // ended meanwhile
    }
  }
  return pids;
}

suite('R1 Coder in the extension host', () => {
  test('is installed and activates', async () => {
    const ext = extension();
    await ext.activate();
    assert.equal(ext.isActive, true);
    assert.match((ext.packageJSON as Manifest).version, /^\d+\.\d+\.\d+/);
  });

  test('registers every command its manifest contributes, under the R1 category', async () => {
    const manifest = extension().packageJSON as Manifest;
    const registered = new Set(await vscode.commands.getCommands(true));
    const missing = manifest.contributes.commands.filter((c) => !registered.has(c.command)).map((c) => c.command);
    assert.deepEqual(missing, []);
    for (const c of manifest.contributes.commands) assert.equal(c.category, 'R1', `${c.command} is in the R1 category`);
  });

  test('its settings are known to VS Code with the manifest defaults', () => {
    const manifest = extension().packageJSON as Manifest;
    const config = vscode.workspace.getConfiguration('r1');
    for (const [key, schema] of Object.entries(manifest.contributes.configuration.properties)) {
      const inspected = config.inspect(key.replace(/^r1\./, ''));
      assert.ok(inspected, `${key} is registered`);
      assert.deepEqual(inspected.defaultValue, schema.default, `${key} default`);
    }
  });

  test('"R1: Restart Server" starts the language server as a child of the extension host', async () => {
    await vscode.commands.executeCommand('r1.restartServer');
    const servers = childProcessesWith(`${extension().extensionPath}/dist/server.js`);
    assert.equal(servers.length, 1, `one R1 server process, found ${servers.length}`);
    // A second restart replaces it with a new process.
    await vscode.commands.executeCommand('r1.restartServer');
    const again = childProcessesWith(`${extension().extensionPath}/dist/server.js`);
    assert.equal(again.length, 1);
    assert.notEqual(again[0], servers[0], 'a new server process after the restart');
  });

  test('the Reasoning view is contributed and opens', async () => {
    const manifest = extension().packageJSON as Manifest;
    assert.ok(manifest.contributes.views.r1?.some((v) => v.id === 'r1.trace'));
    // Every view gets a "<id>.focus" command; running it reveals the view and resolves its webview.
    await vscode.commands.executeCommand('r1.trace.focus');
  });
});
