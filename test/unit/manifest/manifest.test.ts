import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';

const root = join(__dirname, '..', '..', '..');
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));

const expectedCommands: Record<string, string> = {
  'r1.ask': 'Ask',
  'r1.fix': 'Fix',
  'r1.explain': 'Explain',
  'r1.acceptEdit': 'Accept Edit',
  'r1.acceptChangeAtCursor': 'Accept Change at Cursor',
  'r1.rejectChangeAtCursor': 'Reject Change at Cursor',
  'r1.rejectEdit': 'Reject Edit',
  'r1.cancel': 'Cancel',
  'r1.downloadModel': 'Download Model',
  'r1.selectModel': 'Select Model',
  'r1.showLog': 'Show Log',
  'r1.restartServer': 'Restart Server',
  'r1.installCudaSupport': 'Install CUDA Support',
  'r1.setServerApiKey': 'Set Server API Key',
};

const expectedSettings = [
  'r1.model.path',
  'r1.model.variant',
  'r1.executionProvider',
  'r1.generation.maxNewTokens',
  'r1.generation.thinkingBudget',
  'r1.generation.temperature',
  'r1.generation.topP',
  'r1.generation.contextWindow',
  'r1.generation.promptLookup',
  'r1.cpu.threads',
  'r1.model.hubUrl',
  'r1.cpu.prepareModel',
  'r1.cuda.feedUrl',
  'r1.fix.repairRounds',
  'r1.fix.checkTimeoutMs',
  'r1.backend',
  'r1.server.url',
  'r1.server.model',
  'r1.server.api',
];

test('identity: name, display name, main in dist/, an engines.vscode minimum', () => {
  assert.equal(pkg.name, 'r1-coder');
  assert.equal(pkg.displayName, 'R1 Coder');
  assert.equal(pkg.main, './dist/extension.js');
  assert.match(pkg.engines.vscode, /^\^1\.\d+\.0$/);
  // vscode-languageclient's own engines.vscode is the floor of what the code really needs.
  const lc = JSON.parse(readFileSync(join(root, 'node_modules/vscode-languageclient/package.json'), 'utf8'));
  const minor = (v: string) => Number(/1\.(\d+)/.exec(v)?.[1]);
  assert.ok(minor(pkg.engines.vscode) >= minor(lc.engines.vscode), `engines.vscode ${pkg.engines.vscode} is below vscode-languageclient's ${lc.engines.vscode}`);
  // @types/vscode must not promise APIs newer than the declared minimum.
  assert.equal(minor(pkg.devDependencies['@types/vscode']), minor(pkg.engines.vscode));
});

test('activation is lazy and untrusted workspaces are declared', () => {
  assert.ok(!pkg.activationEvents.includes('*'), 'activation on "*" slows every window');
  assert.ok(pkg.capabilities.untrustedWorkspaces.supported !== undefined);
  assert.ok(pkg.capabilities.untrustedWorkspaces.restrictedConfigurations.includes('r1.model.path'));
});

test('contributes exactly the R1 commands, with category "R1"', () => {
  const got = Object.fromEntries(pkg.contributes.commands.map((c: { command: string; title: string }) => [c.command, c.title]));
  assert.deepEqual(got, expectedCommands);
  for (const c of pkg.contributes.commands) assert.equal(c.category, 'R1', c.command);
});

test('the Reasoning webview view lives in an activity-bar container', () => {
  const containers = pkg.contributes.viewsContainers.activitybar;
  assert.equal(containers.length, 1);
  const views = pkg.contributes.views[containers[0].id];
  assert.deepEqual(views, [{ type: 'webview', id: 'r1.trace', name: 'Reasoning' }]);
});

test('contributes exactly the settings, each with a description, a default and validation', () => {
  const props = pkg.contributes.configuration.properties as Record<string, Record<string, unknown>>;
  assert.deepEqual(Object.keys(props).sort(), [...expectedSettings].sort());
  for (const [key, p] of Object.entries(props)) {
    assert.ok(typeof (p.description ?? p.markdownDescription) === 'string', `${key} has a description`);
    assert.ok('default' in p, `${key} has a default`);
    if (p.type === 'integer' || p.type === 'number') {
      assert.equal(typeof p.minimum, 'number', `${key} has a minimum`);
      assert.equal(typeof p.maximum, 'number', `${key} has a maximum`);
      assert.ok((p.default as number) >= (p.minimum as number) && (p.default as number) <= (p.maximum as number), `${key} default in range`);
    }
    if (p.enum) assert.ok((p.enum as unknown[]).includes(p.default), `${key} default is one of its enum values`);
  }
  assert.deepEqual(props['r1.executionProvider'].enum, ['auto', 'cuda', 'dml', 'coreml', 'webgpu', 'cpu']);
});

test('Install CUDA Support is enabled on Linux only; its NuGet feed is a validated machine setting', () => {
  const cmd = pkg.contributes.commands.find((c: { command: string }) => c.command === 'r1.installCudaSupport');
  assert.equal(cmd.enablement, 'isLinux');
  const feed = pkg.contributes.configuration.properties['r1.cuda.feedUrl'];
  assert.equal(feed.default, 'https://api.nuget.org/v3-flatcontainer/');
  assert.equal(feed.scope, 'machine', 'a workspace must not redirect the download');
  assert.ok(new RegExp(feed.pattern).test(feed.default));
  assert.ok(!new RegExp(feed.pattern).test('file:///tmp/feed'));
});

test('context menu offers ask, explain and fix on a selection; keybindings for ask, accept, reject', () => {
  const menu = pkg.contributes.menus['editor/context'] as { command: string; when: string }[];
  assert.deepEqual(menu.map((m) => m.command).sort(), ['r1.ask', 'r1.explain', 'r1.fix']);
  for (const m of menu) assert.match(m.when, /editorHasSelection/);
  const keys = (pkg.contributes.keybindings as { command: string }[]).map((k) => k.command).sort();
  assert.deepEqual(keys, ['r1.acceptEdit', 'r1.ask', 'r1.rejectEdit']);
});

test('every contributed command has a handler in the client', () => {
  const src = readFileSync(join(root, 'src/client/commands.ts'), 'utf8');
  for (const id of Object.keys(expectedCommands)) assert.ok(src.includes(`'${id}'`), `${id} is handled`);
});

test('.npmrc keeps onnxruntime-node from downloading CUDA at install time', () => {
  const npmrc = readFileSync(join(root, '.npmrc'), 'utf8');
  assert.match(npmrc, /^onnxruntime-node-install=skip$/m);
});
