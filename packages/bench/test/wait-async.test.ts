import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const waitAsyncJs = fileURLToPath(new URL('../dist/suites/wait-async.js', import.meta.url));

/** Run `body` as an ES module in a fresh Node process with nothing else pending; its stdout. */
function runAlone(body: string): string {
  const source = `import { waitAsync, waitAsyncAlive } from ${JSON.stringify(waitAsyncJs)};\n${body}`;
  return execFileSync(process.execPath, ['--input-type=module', '-e', source], {
    encoding: 'utf8',
  });
}

describe('waitAsyncAlive', () => {
  it('keeps the process alive until its wait ends, where a bare waitAsync lets it exit', () => {
    const wait = (fn: string): string =>
      runAlone(`
        const i32 = new Int32Array(new SharedArrayBuffer(4));
        (async () => {
          ${fn}
          process.stdout.write('woken');
        })();
      `);
    // the control: a pending waitAsync alone, its 50 ms timeout included, does not hold the loop
    expect(wait('const w = waitAsync(i32, 0, 0, 50); if (w.async) await w.value;')).toBe('');
    expect(wait('await waitAsyncAlive(i32, 0, 0, 50);')).toBe('woken');
  });
});
