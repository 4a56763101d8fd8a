/**
 * Paths of the docs package and the build steps the tests share: compile the examples, generate
 * the API reference, build the site — each skipped when its output is newer than its inputs.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The docs package folder. */
export const DOCS_DIR: string = fileURLToPath(new URL('..', import.meta.url));
/** The built site. */
export const SITE_DIR: string = join(DOCS_DIR, '.vitepress', 'dist');
/** The generated API reference. */
export const API_DIR: string = join(DOCS_DIR, 'api');
/** Where the browser test saves its screenshots. */
export const RESULTS_DIR: string = join(DOCS_DIR, 'test-results');
const PACKAGES_DIR = join(DOCS_DIR, '..');

const SKIP = new Set(['node_modules', 'dist', 'cache', 'test-results', '.turbo']);

/** Newest modification time (ms) of the files under `paths`, skipping build output folders. */
export function newestMtime(paths: readonly string[]): number {
  let newest = 0;
  const visit = (path: string): void => {
    if (!existsSync(path)) return;
    const stat = statSync(path);
    if (stat.isFile()) {
      newest = Math.max(newest, stat.mtimeMs);
      return;
    }
    for (const entry of readdirSync(path)) if (!SKIP.has(entry)) visit(join(path, entry));
  };
  for (const path of paths) visit(path);
  return newest;
}

function mtimeOf(path: string): number {
  return existsSync(path) ? statSync(path).mtimeMs : 0;
}

const require = createRequire(import.meta.url);

function runNode(script: string, args: readonly string[]): void {
  execFileSync(process.execPath, [script, ...args], { cwd: DOCS_DIR, stdio: 'inherit' });
}

/** Compile `src/` and `examples/` into `dist/` (the examples' workers run from there). */
export function buildExamples(): void {
  runNode(require.resolve('typescript/bin/tsc'), ['-p', 'tsconfig.build.json']);
}

/** Generate `api/` unless it is newer than the sources of core, workers and the generator. */
export function buildApiReference(): void {
  const inputs = [
    join(PACKAGES_DIR, 'core', 'src'),
    join(PACKAGES_DIR, 'workers', 'src'),
    join(DOCS_DIR, 'src'),
  ];
  if (mtimeOf(join(API_DIR, 'index.md')) > newestMtime(inputs)) return;
  runNode(join(DOCS_DIR, 'dist', 'src', 'api-reference.js'), []);
}

/** Build the site unless `.vitepress/dist` is newer than every input (set SABVM_DOCS_REBUILD=1 to force). */
export function buildSite(): void {
  const inputs = [
    ...docsInputs(),
    join(PACKAGES_DIR, 'core', 'dist'),
    join(PACKAGES_DIR, 'workers', 'dist'),
  ];
  const fresh = mtimeOf(join(SITE_DIR, 'index.html')) > newestMtime(inputs);
  if (fresh && process.env.SABVM_DOCS_REBUILD === undefined) return;
  const vitepress = join(dirname(require.resolve('vitepress/package.json')), 'bin', 'vitepress.js');
  runNode(vitepress, ['build']);
}

/** The docs package's own inputs to the site (not its build output, tests or test results). */
function docsInputs(): string[] {
  return readdirSync(DOCS_DIR)
    .filter((entry) => !SKIP.has(entry) && entry !== 'test' && entry !== '.vitepress')
    .map((entry) => join(DOCS_DIR, entry))
    .concat([join(DOCS_DIR, '.vitepress', 'config.ts'), join(DOCS_DIR, '.vitepress', 'theme')]);
}
