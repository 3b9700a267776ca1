import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { test } from 'node:test';

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

test('src/engine imports nothing from the editor, the LSP libraries, client/, server/ or webview/', () => {
  const files = tsFiles(join(root, 'src/engine'));
  assert.ok(files.length > 0);
  const forbidden = /^(vscode|vscode-languageclient|vscode-languageserver|vscode-languageserver-protocol|vscode-jsonrpc)(\/|$)|(^|\/)(client|server|webview|protocol)(\/|$)/;
  const offenders = files.flatMap((f) => imports(f).filter((s) => forbidden.test(s)).map((s) => `${relative(root, f)} imports ${s}`));
  assert.deepEqual(offenders, []);
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
