// @ts-check
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', '.cache/**', 'test-results/**', '**/*.mjs', '**/*.js'] },
  ...tseslint.configs.recommended,
  {
    files: ['**/*.ts'],
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      '@typescript-eslint/no-floating-promises': [
        'error',
        // node:test's test()/describe() return promises the runner itself awaits.
        { allowForKnownSafeCalls: [{ from: 'package', package: 'node:test', name: ['test', 'it', 'describe', 'suite'] }] },
      ],
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/await-thenable': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      eqeqeq: ['error', 'always', { null: 'ignore' }],
      curly: ['error', 'multi-line'],
      'no-restricted-imports': 'off',
    },
  },
  {
    // Protocol messages are namespaces with `method` and `type`, as vscode-eslint's protocol is.
    files: ['src/protocol/**/*.ts'],
    rules: { '@typescript-eslint/no-namespace': 'off' },
  },
  // The house: which folder may import which (README "Architecture"). test/unit/manifest/layers.test.ts
  // proves each rule fires and that the folders import each other in no circle.
  ...layers(),
);

function layers() {
  const folders = (...names) => names.flatMap((n) => [`**/${n}`, `**/${n}/**`]);
  const editor = ['vscode', 'vscode-languageclient', 'vscode-languageclient/*', 'vscode-languageserver', 'vscode-languageserver/*', 'vscode-languageserver-protocol', 'vscode-languageserver-protocol/*', 'vscode-jsonrpc', 'vscode-jsonrpc/*'];
  const restrict = (files, patterns) => ({ files, rules: { '@typescript-eslint/no-restricted-imports': ['error', { patterns }] } });
  return [
    restrict(['src/engine/**/*.ts'], [
      { group: editor, message: 'src/engine is inference under plain Node: no editor or LSP code.' },
      { group: folders('client', 'server', 'protocol', 'cli', 'install', 'webview', 'serve', 'remote'), message: 'src/engine imports only itself, src/platform and src/text.' },
    ]),
    restrict(['src/client/**/*.ts'], [
      { group: folders('engine'), message: 'src/client never imports src/engine: wire types come through src/protocol, shared text rules from src/text.' },
    ]),
    restrict(['webview/**/*.ts'], [
      { group: ['../src/*', '../src/**', '!../src/protocol', '!../src/protocol/**'], message: 'webview/ imports only src/protocol from src/.' },
    ]),
    restrict(['src/protocol/**/*.ts'], [
      { group: folders('engine'), allowTypeImports: true, message: 'src/protocol takes only types from src/engine (it is bundled into the webview).' },
      { group: folders('client', 'server', 'cli', 'install', 'platform'), message: 'src/protocol is shared by client, server and webview: it imports none of them.' },
    ]),
    restrict(['src/install/**/*.ts'], [
      { group: folders('engine'), allowTypeImports: true, message: 'src/install takes only types from src/engine.' },
      { group: [...editor, ...folders('client', 'server', 'protocol', 'cli', 'webview')], message: 'src/install is editor-free: the client and the CLI wire it up.' },
    ]),
    restrict(['src/serve/**/*.ts'], [
      { group: ['../engine/*', '../engine/**'], message: 'src/serve imports the engine only through its public index (../engine).' },
      { group: [...editor, ...folders('client', 'server', 'protocol', 'cli', 'install', 'webview')], message: 'src/serve is a plain-Node HTTP server over the engine: no editor code; the CLI wires it up.' },
    ]),
    restrict(['src/remote/**/*.ts'], [
      { group: ['../engine/*', '../engine/**'], message: 'src/remote imports the engine only through its public index (../engine).' },
      { group: [...editor, ...folders('client', 'server', 'protocol', 'cli', 'install', 'webview', 'serve')], message: 'src/remote is a plain-Node client of servers: no editor code; the language server and the CLI wire it up.' },
    ]),
    restrict(['src/platform/**/*.ts', 'src/text/**/*.ts'], [
      { group: ['../*', '../**'], message: 'src/platform and src/text import nothing else of src/: everything else may import them.' },
      { group: [...editor, 'onnxruntime-node'], message: 'src/platform and src/text are plain probes and text rules.' },
    ]),
  ];
}
