// Lint: ESLint's and typescript-eslint's recommended rules, plus the type-aware rules that
// catch what the compiler does not: a promise nobody awaits or catches (in a daemon, an
// unhandled rejection or a write that silently never happens), a promise where a callback
// must return void, awaiting something that is not a promise.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/', 'build/', 'node_modules/', 'data/', 'coverage/', 'test-artifacts/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    files: ['**/*.ts'],
    languageOptions: {
      parserOptions: {
        projectService: { allowDefaultProject: ['vitest.config.ts', 'vitest.stress.config.ts', 'eslint.config.js'] },
        tsconfigRootDir: import.meta.dirname,
      },
    },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/await-thenable': 'error',
      // tsc's noUnusedLocals / noUnusedParameters already report these.
      '@typescript-eslint/no-unused-vars': 'off',
    },
  },
  {
    // Tests read JSON answers of many shapes (`body.series.map((s: any) => ...)`); the shapes
    // themselves are typed and checked in src/api.
    files: ['test/**/*.ts'],
    rules: { '@typescript-eslint/no-explicit-any': 'off' },
  },
  {
    files: ['**/*.js', '**/*.mjs'],
    languageOptions: { globals: { process: 'readonly', console: 'readonly' } },
  },
);
