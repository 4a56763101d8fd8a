/**
 * Where a suite's worker entry lives. Node 20 cannot run `.ts` workers, so when a suite itself
 * runs from `src/` (vitest), its worker is taken from the compiled `dist/` next to it.
 *
 * @module
 */

/**
 * The URL of compiled worker `file` (e.g. `./scaling-worker.js`) relative to module `from`
 * (`import.meta.url`); `src/…ts` callers get the `dist/` copy. Context: any thread; pure.
 */
export function workerUrl(file: string, from: string): URL {
  if (from.endsWith('.ts')) {
    return new URL(file, from.replace(/\/src\/(?!.*\/src\/)/, '/dist/'));
  }
  return new URL(file, from);
}
