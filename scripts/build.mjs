// Builds the four bundles with esbuild:
//   dist/extension.js  extension host (client), `vscode` external
//   dist/server.js     language server that hosts the engine
//   dist/cli.js        command-line front end to the engine
//   dist/webview.js    UI inside the Reasoning view (+ dist/webview.css)
// onnxruntime-node stays external: its native binaries ship in the package's node_modules.
// Flags: --watch (rebuild on change), --production (minified, no sourcemaps, for packaging).
import * as esbuild from 'esbuild';
import { mkdirSync, writeFileSync } from 'node:fs';

const watch = process.argv.includes('--watch');
const production = process.argv.includes('--production');

const common = {
  bundle: true,
  minify: production,
  sourcemap: production ? false : 'linked',
  logLevel: 'info',
  metafile: true,
  legalComments: production ? 'none' : 'inline',
};

const node = {
  ...common,
  platform: 'node',
  format: 'cjs',
  target: 'node20',
  external: ['vscode', 'onnxruntime-node'],
  // @huggingface/* ship ESM with `import.meta`; keep their node entry points.
  mainFields: ['module', 'main'],
  conditions: ['node'],
};

const builds = [
  { ...node, entryPoints: { extension: 'src/client/extension.ts' }, outdir: 'dist' },
  { ...node, entryPoints: { server: 'src/server/server.ts' }, outdir: 'dist' },
  { ...node, entryPoints: { cli: 'src/cli/main.ts' }, outdir: 'dist', banner: { js: '#!/usr/bin/env node' } },
  {
    ...common,
    platform: 'browser',
    format: 'iife',
    target: 'es2022',
    entryPoints: [
      { in: 'webview/main.ts', out: 'webview' },
      { in: 'webview/main.css', out: 'webview' },
    ],
    outdir: 'dist',
  },
];

mkdirSync('dist', { recursive: true });
if (watch) {
  for (const b of builds) {
    const ctx = await esbuild.context(b);
    await ctx.watch();
  }
  console.log('[watch] watching for changes');
} else {
  const settled = await Promise.allSettled(builds.map((b) => esbuild.build(b)));
  if (settled.some((s) => s.status === 'rejected')) {
    console.error('build failed');
    process.exit(1);
  }
  const meta = { inputs: {}, outputs: {} };
  for (const { value: r } of /** @type {PromiseFulfilledResult<esbuild.BuildResult>[]} */ (settled)) {
    Object.assign(meta.inputs, r.metafile.inputs);
    Object.assign(meta.outputs, r.metafile.outputs);
  }
  writeFileSync('dist/meta.json', JSON.stringify(meta));
}
