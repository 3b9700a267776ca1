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
  {
    // The engine runs under plain Node and backs the CLI: it must not reach into the editor layers.
    files: ['src/engine/**/*.ts'],
    rules: {
      '@typescript-eslint/no-restricted-imports': [
        'error',
        {
          patterns: [
            { group: ['vscode', 'vscode-languageclient', 'vscode-languageclient/*', 'vscode-languageserver', 'vscode-languageserver/*', 'vscode-jsonrpc', 'vscode-jsonrpc/*'], message: 'src/engine must not depend on the editor or LSP layers.' },
            { group: ['**/client/**', '**/server/**', '**/webview/**', '../client', '../server', '../../webview'], message: 'src/engine must not import client/, server/ or webview/.' },
          ],
        },
      ],
    },
  },
);
