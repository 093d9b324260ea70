// Lint rules for every TypeScript and JavaScript file of the project (npm test runs `npm run lint`).
import eslint from '@eslint/js';
import globals from 'globals';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'models/**', 'bench/results/**'] },
  eslint.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { globals: globals.node },
    rules: {
      // A variable that a closure reads before the code below assigns it must stay `let`.
      'prefer-const': ['error', { ignoreReadBeforeAssign: true }],
      // `_`-prefixed names are placeholders that a signature requires.
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' }],
    },
  },
  // The web console runs in the browser (bundled by scripts/build-console.mjs), not in Node.
  { files: ['console/**'], languageOptions: { globals: globals.browser } },
);
