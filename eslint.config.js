// ESLint flat config: typescript-eslint's type-checked rules over every package.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import globals from 'globals';

export default tseslint.config(
  {
    ignores: [
      '**/dist/**',
      '**/node_modules/**',
      '**/.turbo/**',
      '**/bench-results/**',
      'packages/docs/.vitepress/cache/**',
      'packages/docs/.vitepress/dist/**',
      'packages/docs/api/**',
      '**/*.js',
      '**/*.mjs',
      '**/*.cjs',
    ],
  },
  js.configs.recommended,
  ...tseslint.configs.strictTypeChecked,
  ...tseslint.configs.stylisticTypeChecked,
  {
    languageOptions: {
      globals: { ...globals.node },
      parserOptions: {
        projectService: true,
        tsconfigRootDir: import.meta.dirname,
      },
    },
    rules: {
      // Kernel code works on numbers in templates all the time (addresses, counts).
      '@typescript-eslint/restrict-template-expressions': ['error', { allowNumber: true }],
      // Bit masks and shifts are the point of a page-table implementation.
      '@typescript-eslint/prefer-literal-enum-member': 'off',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_' }],
      // noUncheckedIndexedAccess makes every typed-array read `T | undefined`; in bounds-checked
      // kernel loops `arr[i]!` is the honest spelling.
      '@typescript-eslint/no-non-null-assertion': 'off',
      // Enums name word indices and tags of shared memory; the values come back from Int32Arrays
      // as plain numbers, so comparing and assigning them is the whole point.
      '@typescript-eslint/no-unsafe-enum-comparison': 'off',
      '@typescript-eslint/no-unsafe-enum-assignment': 'off',
    },
  },
);
