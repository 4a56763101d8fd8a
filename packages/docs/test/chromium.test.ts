/**
 * The browser lookup of the browser test, on fake executables in a temporary folder: the order of
 * the places it looks, and what the test does when it finds nothing (skip, or fail under CI).
 */
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { browserPlan, findChromium, isCi, type Env } from './chromium.js';

const root = mkdtempSync(join(tmpdir(), 'sabvm-chromium-'));
afterAll(() => {
  rmSync(root, { recursive: true, force: true });
});

/** A file at `path` (folders made), executable unless `mode` says otherwise. */
function fake(path: string, mode = 0o755): string {
  mkdirSync(join(path, '..'), { recursive: true });
  writeFileSync(path, '#!/bin/sh\n');
  chmodSync(path, mode);
  return path;
}

const binA = join(root, 'a');
const binB = join(root, 'b');
const chromeInA = fake(join(binA, 'google-chrome'));
const chromiumInB = fake(join(binB, 'chromium'));
fake(join(binA, 'chromium-browser'), 0o644); // not executable: not a browser
mkdirSync(join(binA, 'chromium'), { recursive: true }); // a folder: not a browser
const known = fake(join(root, 'opt', 'chrome'));
const explicit = fake(join(root, 'my', 'chrome'));
const nowhere = join(root, 'no-such-dir');
const PATH = [binA, binB].join(delimiter);

describe('findChromium', () => {
  test('takes CHROME_PATH first, then PLAYWRIGHT_CHROMIUM_EXECUTABLE_PATH', () => {
    expect(findChromium({ CHROME_PATH: explicit, PATH }, [known])).toEqual({
      path: explicit,
      from: 'CHROME_PATH',
    });
    expect(
      findChromium({ CHROME_PATH: '', PLAYWRIGHT_CHROMIUM_EXECUTABLE_PATH: explicit, PATH }, []),
    ).toEqual({ path: explicit, from: 'PLAYWRIGHT_CHROMIUM_EXECUTABLE_PATH' });
  });

  test('reports a CHROME_PATH that names no executable file instead of taking another browser', () => {
    expect(() => findChromium({ CHROME_PATH: join(nowhere, 'chrome'), PATH }, [known])).toThrow(
      /CHROME_PATH=.*no executable file there/,
    );
    expect(() => findChromium({ CHROME_PATH: binA, PATH }, [known])).toThrow(/CHROME_PATH/);
  });

  test('looks the commands up on PATH in order: chromium anywhere before google-chrome', () => {
    expect(findChromium({ PATH }, [known])).toEqual({
      path: chromiumInB,
      from: 'chromium on PATH',
    });
    expect(findChromium({ PATH: binA }, [known])).toEqual({
      path: chromeInA,
      from: 'google-chrome on PATH',
    });
  });

  test('falls back to the known install paths, then to nothing', () => {
    expect(findChromium({ PATH: nowhere }, [join(nowhere, 'x'), known])).toEqual({
      path: known,
      from: 'known path',
    });
    expect(findChromium({ PATH: nowhere }, [join(nowhere, 'x')])).toBeUndefined();
    expect(findChromium({}, [])).toBeUndefined();
  });
});

describe('browserPlan', () => {
  const none = (): undefined => undefined;

  test('runs with the browser found', () => {
    expect(browserPlan({ PATH }, (env) => findChromium(env, []))).toEqual({
      kind: 'run',
      browser: { path: chromiumInB, from: 'chromium on PATH' },
    });
  });

  test('without a browser and without CI: skipped, with one line saying how to run it', () => {
    for (const env of [{}, { CI: '' }, { CI: 'false' }, { CI: '0' }] as Env[]) {
      const plan = browserPlan(env, none);
      expect(plan.kind).toBe('skip');
      if (plan.kind !== 'skip') continue;
      expect(plan.message).not.toContain('\n');
      expect(plan.message).toMatch(/^browser test skipped: no Chromium or Chrome found; /);
      expect(plan.message).toContain('apt-get install chromium');
      expect(plan.message).toContain('CHROME_PATH');
    }
  });

  test('without a browser under CI: fails the run', () => {
    for (const ci of ['true', '1', 'TRUE']) {
      expect(isCi({ CI: ci })).toBe(true);
      const plan = browserPlan({ CI: ci }, none);
      expect(plan.kind).toBe('fail');
      if (plan.kind === 'fail') expect(plan.message).toMatch(/no Chromium or Chrome found/);
    }
  });

  test('a wrong CHROME_PATH fails, with or without CI', () => {
    for (const env of [{}, { CI: 'true' }] as Env[]) {
      const plan = browserPlan({ ...env, CHROME_PATH: join(nowhere, 'chrome'), PATH });
      expect(plan.kind).toBe('fail');
    }
  });

  test('SABVM_BROWSER_TEST=0 skips it on purpose, even under CI and with a browser', () => {
    const plan = browserPlan({ SABVM_BROWSER_TEST: '0', CI: 'true', PATH });
    expect(plan).toEqual({
      kind: 'skip',
      message:
        'browser test skipped: SABVM_BROWSER_TEST=0 (unset it to drive the site in Chromium)',
    });
  });
});
