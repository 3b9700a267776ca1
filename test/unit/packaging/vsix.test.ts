/**
 * Packages R1 Coder for every supported target with scripts/package.mjs (the real vsce run) and
 * checks what each VSIX holds: the production bundles, the manifest and media, and onnxruntime-node
 * with only that platform's binaries (no other platform, no CUDA/TensorRT, no sources, maps or tests).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, describe, test } from 'node:test';
import { readZip, readZipEntry } from './zip';

const ROOT = resolve(__dirname, '..', '..', '..');
const out = mkdtempSync(join(tmpdir(), 'r1-vsix-test-'));
after(() => rmSync(out, { recursive: true, force: true }));

const ORT = 'extension/node_modules/onnxruntime-node/bin/napi-v6';
const EXPECTED_BINARIES: Record<string, string[]> = {
  'linux-x64': ['linux/x64/libonnxruntime.so.1', 'linux/x64/onnxruntime_binding.node'],
  'linux-arm64': ['linux/arm64/libonnxruntime.so.1', 'linux/arm64/onnxruntime_binding.node'],
  'win32-x64': ['win32/x64/DirectML.dll', 'win32/x64/dxcompiler.dll', 'win32/x64/dxil.dll', 'win32/x64/onnxruntime.dll', 'win32/x64/onnxruntime_binding.node'],
  'darwin-arm64': ['darwin/arm64/libonnxruntime.1.dylib', 'darwin/arm64/onnxruntime_binding.node'],
};

/** Every file a VSIX may hold outside onnxruntime-node's bin/ folder. */
const ALLOWED = [
  /^\[Content_Types\]\.xml$/,
  /^extension\.vsixmanifest$/,
  /^extension\/package\.json$/,
  /^extension\/(readme|changelog|license)(\.md|\.txt)?$/i,
  /^extension\/dist\/(extension|server|cli|webview)\.js$/,
  /^extension\/dist\/webview\.css$/,
  /^extension\/media\/[^/]+\.(svg|png)$/,
  /^extension\/node_modules\/onnxruntime-node\/(package\.json|README\.md|LICENSE)$/,
  /^extension\/node_modules\/onnxruntime-node\/dist\/[a-z-]+\.js$/,
  /^extension\/node_modules\/onnxruntime-common\/(package\.json|README\.md|LICENSE)$/,
  /^extension\/node_modules\/onnxruntime-common\/dist\/(cjs|esm)\/([a-z-]+\.js|package\.json)$/,
];

function packageFor(target: string): string {
  const vsix = join(out, `r1-coder-${target}.vsix`);
  const r = spawnSync(process.execPath, [join(ROOT, 'scripts/package.mjs'), '--target', target, '--out', vsix], { cwd: ROOT, encoding: 'utf8' });
  assert.equal(r.status, 0, `packaging ${target} failed:\n${r.stdout}\n${r.stderr}`);
  assert.match(r.stdout, new RegExp(`\\[package\\] .*r1-coder-${target}\\.vsix: [\\d.]+ MB \\(\\d+ bytes\\), target ${target}`));
  return vsix;
}

for (const target of Object.keys(EXPECTED_BINARIES)) {
  describe(`VSIX for ${target}`, () => {
    let vsix = '';
    let names: string[] = [];
    let zip: ReturnType<typeof readZip>;

    test('packages with vsce --target and reports its size', () => {
      vsix = packageFor(target);
      zip = readZip(vsix);
      names = zip.entries.map((e) => e.name).filter((n) => !n.endsWith('/'));
      assert.ok(statSync(vsix).size > 1_000_000);
    });

    test('holds exactly this platform\'s onnxruntime binaries', () => {
      const binaries = names.filter((n) => n.startsWith(`${ORT}/`)).map((n) => n.slice(ORT.length + 1)).sort();
      assert.deepEqual(binaries, [...EXPECTED_BINARIES[target]].sort());
      assert.ok(!names.some((n) => /cuda|tensorrt|providers_shared|cudnn|cublas/i.test(n)), 'no CUDA/TensorRT libraries');
    });

    test('holds only run-time files: bundles, manifest, media, compiled onnxruntime JavaScript', () => {
      const unexpected = names.filter((n) => !n.startsWith(`${ORT}/`) && !ALLOWED.some((re) => re.test(n)));
      assert.deepEqual(unexpected, []);
      for (const bundle of ['extension', 'server', 'cli', 'webview']) assert.ok(names.includes(`extension/dist/${bundle}.js`), `dist/${bundle}.js`);
      assert.ok(names.includes('extension/dist/webview.css'));
      assert.ok(names.includes('extension/media/r1.svg'));
      assert.ok(names.includes('extension/node_modules/onnxruntime-common/dist/cjs/package.json'), 'dist/cjs/package.json marks the CommonJS build');
      assert.ok(!names.some((n) => /\.(map|ts|tsx)$/.test(n) && !n.endsWith('.d.ts')), 'no sources or maps');
      assert.ok(!names.some((n) => /\.d\.ts$/.test(n)), 'no type declarations');
      assert.ok(!names.some((n) => /(^|\/)(test|tests|script|src|lib)\//.test(n.replace(/^extension\//, ''))), 'no tests, scripts or sources');
    });

    test('declares the target platform and ships production bundles', () => {
      const manifest = readZipEntry(zip.buffer, zip.entries.find((e) => e.name === 'extension.vsixmanifest')!).toString('utf8');
      assert.match(manifest, new RegExp(`TargetPlatform="${target}"`));
      const extension = readZipEntry(zip.buffer, zip.entries.find((e) => e.name === 'extension/dist/extension.js')!).toString('utf8');
      assert.doesNotMatch(extension, /\/\/# sourceMappingURL=/, 'production bundle (no source map link)');
      const pkg = JSON.parse(readZipEntry(zip.buffer, zip.entries.find((e) => e.name === 'extension/package.json')!).toString('utf8')) as { main: string; name: string };
      assert.equal(pkg.name, 'r1-coder');
      assert.ok(names.includes(`extension/${pkg.main.replace(/^\.\//, '')}`), 'the manifest\'s main is in the package');
    });
  });
}
