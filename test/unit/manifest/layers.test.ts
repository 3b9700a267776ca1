import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, test } from 'node:test';
import { ESLint } from 'eslint';

const root = join(__dirname, '..', '..', '..');

function tsFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    return statSync(p).isDirectory() ? tsFiles(p) : name.endsWith('.ts') ? [p] : [];
  });
}

function imports(file: string): string[] {
  const src = readFileSync(file, 'utf8');
  const specs: string[] = [];
  for (const m of src.matchAll(/(?:import|export)\s[^'"]*?from\s*['"]([^'"]+)['"]|import\s*\(\s*['"]([^'"]+)['"]\s*\)|require\(\s*['"]([^'"]+)['"]\s*\)|^\s*import\s+['"]([^'"]+)['"]/gm)) {
    specs.push(m[1] ?? m[2] ?? m[3] ?? m[4]);
  }
  return specs;
}

/** Lints `code` as if it were the file `path`, with the import rules of eslint.config.mjs only. */
async function restrictedImports(path: string, code: string): Promise<string[]> {
  const eslint = new ESLint({
    cwd: root,
    ruleFilter: ({ ruleId }) => ruleId === '@typescript-eslint/no-restricted-imports',
    overrideConfig: { languageOptions: { parserOptions: { projectService: false } } },
  });
  const [result] = await eslint.lintText(code, { filePath: join(root, path) });
  return result!.messages.map((m) => `${m.ruleId}: ${m.message}`);
}

// Each row: a file in a folder, an import, and whether the house allows it.
const HOUSE: Array<[file: string, code: string, allowed: boolean]> = [
  ['src/engine/x.ts', "import * as vscode from 'vscode';", false],
  ['src/engine/x.ts', "import { LanguageClient } from 'vscode-languageclient/node';", false],
  ['src/engine/x.ts', "import { createConnection } from 'vscode-languageserver/node';", false],
  ['src/engine/x.ts', "import { AskRequest } from '../protocol/server';", false],
  ['src/engine/x.ts', "import type { AskRequest } from '../protocol/server';", false],
  ['src/engine/graph/x.ts', "import { downloadModel } from '../../install/hub';", false],
  ['src/engine/x.ts', "import { Workflows } from '../client/workflows';", false],
  ['src/engine/x.ts', "import { parseCli } from '../cli/args';", false],
  ['src/engine/x.ts', "import { EngineHost } from '../server/engineHost';", false],
  ['src/engine/x.ts', "import { h } from '../../webview/dom';", false],
  ['src/engine/x.ts', "import { checkCudaRuntime } from '../platform/cuda';", true],
  ['src/engine/graph/x.ts', "import { DecoderSession } from '../session';", true],
  ['src/client/x.ts', "import { R1Engine } from '../engine/engine';", false],
  ['src/client/edits/x.ts', "import type { CodeBlock } from '../../engine/types';", false],
  ['src/client/x.ts', "import type { CodeBlock } from '../protocol/server';", true],
  ['src/client/x.ts', "import { downloadModel } from '../install/hub';", true],
  ['webview/x.ts', "import { formatBytes } from '../src/client/labels';", false],
  ['webview/x.ts', "import type { GenerationResult } from '../src/engine/types';", false],
  ['webview/x.ts', "import { stripThinkTags } from '../src/protocol/webview';", true],
  ['src/install/x.ts', "import { R1Engine } from '../engine/engine';", false],
  ['src/install/x.ts', "import type { ModelVariant } from '../engine/types';", true],
  ['src/install/x.ts', "import * as vscode from 'vscode';", false],
  ['src/protocol/x.ts', "import { R1Engine } from '../engine/engine';", false],
  ['src/protocol/x.ts', "export type { CodeBlock } from '../engine/types';", true],
  ['src/serve/x.ts', "import { R1Engine } from '../engine';", true],
  ['src/serve/x.ts', "import type { ChatTurn } from '../engine';", true],
  ['src/serve/x.ts', "import { R1Engine } from '../engine/engine';", false],
  ['src/serve/x.ts', "import type { GenerationResult } from '../engine/types';", false],
  ['src/serve/x.ts', "import { parseCli } from '../cli/args';", false],
  ['src/serve/x.ts', "import { EngineHost } from '../server/engineHost';", false],
  ['src/serve/x.ts', "import * as vscode from 'vscode';", false],
  ['src/serve/x.ts', "import { THINK_CLOSE } from '../text/thinking';", true],
  ['src/engine/x.ts', "import { startServer } from '../serve';", false],
  ['src/cli/x.ts', "import { startServer } from '../serve';", true],
  ['src/remote/x.ts', "import { ReasoningSplitter } from '../engine';", true],
  ['src/remote/x.ts', "import { ReasoningSplitter } from '../engine/reasoning';", false],
  ['src/remote/x.ts', "import * as vscode from 'vscode';", false],
  ['src/remote/x.ts', "import { createConnection } from 'vscode-languageserver/node';", false],
  ['src/remote/x.ts', "import { EngineHost } from '../server/engineHost';", false],
  ['src/remote/x.ts', "import { AskRequest } from '../protocol/server';", false],
  ['src/remote/x.ts', "import { parseCli } from '../cli/args';", false],
  ['src/remote/x.ts', "import { THINK_CLOSE } from '../text/thinking';", true],
  ['src/engine/x.ts', "import { RemoteBackend } from '../remote';", false],
  ['src/server/x.ts', "import { RemoteBackend } from '../remote';", true],
  ['src/cli/x.ts', "import { RemoteBackend } from '../remote';", true],
  ['src/platform/x.ts', "import { installCudaProvider } from '../install/cuda';", false],
  ['src/platform/x.ts', "import type { ModelVariant } from '../engine/types';", false],
  ['src/platform/x.ts', "import { parseLdconfig } from './ldconfig';", true],
];

describe('the house: which folder may import which (eslint.config.mjs)', () => {
  for (const [file, code, allowed] of HOUSE) {
    test(`${file}: ${code} is ${allowed ? 'allowed' : 'refused'}`, async () => {
      const messages = await restrictedImports(file, code);
      if (allowed) assert.deepEqual(messages, []);
      else assert.equal(messages.length, 1, `expected a no-restricted-imports error, got ${JSON.stringify(messages)}`);
    });
  }
});

/** The relative imports of every .ts file under `dirs`, resolved to files. */
function importGraph(dirs: string[]): Map<string, string[]> {
  const graph = new Map<string, string[]>();
  for (const file of dirs.flatMap((d) => tsFiles(join(root, d)))) {
    const targets: string[] = [];
    for (const spec of imports(file)) {
      if (!spec.startsWith('.')) continue;
      const base = resolve(dirname(file), spec);
      // A data import (`./catalogue.json`) names its file; a module import leaves out `.ts`.
      const hit = (spec.endsWith('.json') ? [base] : [`${base}.ts`, join(base, 'index.ts')]).find((c) => existsSync(c));
      assert.ok(hit, `${relative(root, file)} imports ${spec}, which resolves to no file`);
      targets.push(hit);
    }
    graph.set(file, targets);
  }
  return graph;
}

/** Every import circle in `graph` (type imports count too), each as a list of files. */
function importCircles(graph: Map<string, string[]>): string[][] {
  const state = new Map<string, 'open' | 'done'>();
  const path: string[] = [];
  const circles: string[][] = [];
  const visit = (file: string) => {
    state.set(file, 'open');
    path.push(file);
    for (const next of graph.get(file) ?? []) {
      if (state.get(next) === 'open') circles.push([...path.slice(path.indexOf(next)), next]);
      else if (!state.has(next)) visit(next);
    }
    path.pop();
    state.set(file, 'done');
  };
  for (const file of graph.keys()) if (!state.has(file)) visit(file);
  return circles.map((c) => c.map((f) => relative(root, f)));
}

test('the circle finder finds a circle of three files, and none in a chain', () => {
  const [a, b, c] = ['/r/a.ts', '/r/b.ts', '/r/c.ts'];
  assert.equal(importCircles(new Map([[a, [b]], [b, [c]], [c, [a]]])).length, 1);
  assert.deepEqual(importCircles(new Map([[a, [b]], [b, [c]], [c, []]])), []);
});

test('no import circle in src/ or webview/', () => {
  assert.deepEqual(importCircles(importGraph(['src', 'webview'])), []);
});

test('the CLI bundle carries no editor or LSP code', () => {
  const cli = readFileSync(join(root, 'dist/cli.js'), 'utf8');
  assert.ok(!/require\(["']vscode["']\)/.test(cli));
  assert.ok(!cli.includes('vscode-languageserver'), 'dist/cli.js bundles the language server library');
});

test('the build produced the four bundles, with onnxruntime-node left external', () => {
  for (const f of ['extension.js', 'server.js', 'cli.js', 'webview.js', 'webview.css']) {
    assert.ok(statSync(join(root, 'dist', f)).size > 0, `dist/${f}`);
  }
  const ext = readFileSync(join(root, 'dist/extension.js'), 'utf8');
  assert.match(ext, /require\(["']vscode["']\)/, 'vscode is external to the extension bundle');
  // R1: Install CUDA Support names onnxruntime-node's folder and provider files (it writes them),
  // but the extension host never loads ONNX Runtime itself: no require of it, no native binding.
  assert.ok(!/require\(["']onnxruntime-(node|common)["']\)/.test(ext), 'the extension host bundle does not load onnxruntime');
  assert.ok(!/onnxruntime_binding|\.node["']\)/.test(ext), 'the extension host bundle loads no native binding');
  assert.ok(!/InferenceSession/.test(ext), 'the extension host bundle holds no ONNX Runtime code');
});
