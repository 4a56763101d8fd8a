/**
 * Where the browser test finds its browser, and what it does without one.
 *
 * A Chromium or Chrome already on the machine is used (the test never downloads one), looked for
 * in this order: the environment variables {@link BROWSER_VARIABLES}, the commands
 * {@link BROWSER_COMMANDS} on `PATH`, then the install paths {@link KNOWN_PATHS}. Without one the
 * test is skipped with one line saying how to run it — unless `CI` is set, where a missing browser
 * fails the run. `SABVM_BROWSER_TEST=0` skips it on purpose (`.ci/run` drives the browser on one
 * Node.js line only).
 */
import { accessSync, constants, statSync } from 'node:fs';
import { delimiter, join } from 'node:path';

/** Environment variables that name a browser executable, first one set wins. */
export const BROWSER_VARIABLES: readonly string[] = [
  'CHROME_PATH',
  'PLAYWRIGHT_CHROMIUM_EXECUTABLE_PATH',
];

/** Commands looked up on `PATH`, in this order. */
export const BROWSER_COMMANDS: readonly string[] = [
  'chromium',
  'chromium-browser',
  'google-chrome',
  'google-chrome-stable',
];

/** Install paths tried last: Debian's Chromium, other Linux packages, macOS applications. */
export const KNOWN_PATHS: readonly string[] = [
  '/usr/bin/chromium',
  '/usr/bin/chromium-browser',
  '/snap/bin/chromium',
  '/opt/google/chrome/chrome',
  '/Applications/Google Chrome.app/Contents/MacOS/Google Chrome',
  '/Applications/Chromium.app/Contents/MacOS/Chromium',
];

/** The environment the lookup reads (`process.env`, or a test's own). */
export type Env = Readonly<Record<string, string | undefined>>;

/** A browser found: its executable and where the lookup found it. */
export interface FoundBrowser {
  readonly path: string;
  readonly from: string;
}

function isExecutableFile(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

/**
 * The first Chromium or Chrome in the usual places, or `undefined`. `knownPaths` replaces
 * {@link KNOWN_PATHS} (the tests of this lookup pass their own). Throws when a variable of
 * {@link BROWSER_VARIABLES} is set to something that is not an executable file: a browser asked for
 * by name and not there is a mistake to report, not a reason to take another one.
 */
export function findChromium(
  env: Env = process.env,
  knownPaths: readonly string[] = KNOWN_PATHS,
): FoundBrowser | undefined {
  for (const variable of BROWSER_VARIABLES) {
    const path = env[variable];
    if (path === undefined || path === '') continue;
    if (!isExecutableFile(path))
      throw new Error(`${variable}=${path}: no executable file there (unset it, or fix the path)`);
    return { path, from: variable };
  }
  const dirs = (env.PATH ?? '').split(delimiter).filter((dir) => dir !== '');
  for (const command of BROWSER_COMMANDS) {
    for (const dir of dirs) {
      const path = join(dir, command);
      if (isExecutableFile(path)) return { path, from: `${command} on PATH` };
    }
  }
  for (const path of knownPaths) if (isExecutableFile(path)) return { path, from: 'known path' };
  return undefined;
}

/** True when `CI` is set to anything but `''`, `0` or `false`. */
export function isCi(env: Env): boolean {
  const ci = env.CI;
  return ci !== undefined && !['', '0', 'false'].includes(ci.toLowerCase());
}

/** What the browser test does on this machine. */
export type BrowserPlan =
  | { readonly kind: 'run'; readonly browser: FoundBrowser }
  | { readonly kind: 'skip'; readonly message: string }
  | { readonly kind: 'fail'; readonly message: string };

const HOW_TO_RUN =
  'install one (Debian/Ubuntu: apt-get install chromium) or set CHROME_PATH to a Chromium or Chrome executable';

/** Decide from the environment: run with the browser found, skip with one line, or fail (CI). */
export function browserPlan(
  env: Env = process.env,
  find: (env: Env) => FoundBrowser | undefined = findChromium,
): BrowserPlan {
  if (env.SABVM_BROWSER_TEST === '0') {
    return {
      kind: 'skip',
      message:
        'browser test skipped: SABVM_BROWSER_TEST=0 (unset it to drive the site in Chromium)',
    };
  }
  let browser: FoundBrowser | undefined;
  try {
    browser = find(env);
  } catch (error) {
    return { kind: 'fail', message: `browser test: ${(error as Error).message}` };
  }
  if (browser !== undefined) return { kind: 'run', browser };
  const looked = `looked at ${[...BROWSER_VARIABLES, ...BROWSER_COMMANDS.map((c) => `${c} on PATH`), '/usr/bin/chromium and other install paths'].join(', ')}`;
  if (isCi(env)) {
    return {
      kind: 'fail',
      message: `browser test: no Chromium or Chrome found and CI is set, so this fails the run (${looked}); ${HOW_TO_RUN}`,
    };
  }
  return {
    kind: 'skip',
    message: `browser test skipped: no Chromium or Chrome found; ${HOW_TO_RUN}, then run npm test again`,
  };
}
