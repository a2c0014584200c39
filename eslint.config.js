import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/', 'node_modules/', 'coverage/', 'results/', 'docs/'] },
  ...tseslint.configs.recommended,
  {
    files: ['**/*.ts'],
    rules: {
      'no-console': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      // Entry points and scripts are the only readers of process.env (STYLE.md habit 1).
      'no-restricted-properties': [
        'error',
        { object: 'process', property: 'env', message: 'read configuration through loadConfig() in an entry point' },
      ],
      // The three processes share only common, through its public entry.
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            { group: ['**/common/*', '../common', '../../common'], message: "import common through '#common'" },
          ],
        },
      ],
    },
  },
  {
    files: ['*/main.ts', '*/instrument.ts', 'scripts/**/*.ts', 'test/**/*.ts'],
    rules: { 'no-restricted-properties': 'off', 'no-console': 'off' },
  },
  {
    files: ['common/**/*.ts'],
    rules: { 'no-restricted-imports': 'off' },
  },
  {
    files: ['api/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        { patterns: [{ group: ['**/worker/**', '**/health/**', '**/common/*'], message: 'api imports only #common' }] },
      ],
    },
  },
  {
    files: ['worker/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        { patterns: [{ group: ['**/api/**', '**/health/**', '**/common/*'], message: 'worker imports only #common' }] },
      ],
    },
  },
  {
    files: ['health/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        { patterns: [{ group: ['**/api/**', '**/worker/**', '**/common/*'], message: 'health imports only #common' }] },
      ],
    },
  },
  {
    // Scripts (dev launcher, bench, fault battery, dlq CLI) drive the processes from outside: through
    // #common, a process's settings module, HTTP, BullMQ and MongoDB; never through their internals.
    files: ['scripts/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              group: [
                '**/api/**',
                '**/worker/**',
                '**/health/**',
                '!**/api/settings.js',
                '!**/worker/settings.js',
                '!**/health/settings.js',
                '**/common/*',
              ],
              message:
                "scripts import only #common, a process's settings module (e.g. ../../worker/settings.js) and HTTP",
            },
          ],
        },
      ],
    },
  },
);
