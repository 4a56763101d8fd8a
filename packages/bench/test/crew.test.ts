import { fileURLToPath, pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { Crew } from '../src/suites/crew.js';
import { Ctl } from '../src/suites/crew-protocol.js';

/** Built serveRounds (workers run compiled code, see worker-url.ts). */
const SERVE = pathToFileURL(
  fileURLToPath(new URL('../dist/suites/crew-worker.js', import.meta.url)),
).href;
const WORKERS = 3;
/** Words after the crew's: per worker, rounds taken and the last round's MODE. */
const TAKEN = Ctl.WORDS;
const LAST = Ctl.WORDS + WORKERS;

/** A worker that records each round it takes (MODE carries the round's number). */
const SOURCE = `
import { workerData } from 'node:worker_threads';
import { serveRounds } from ${JSON.stringify(SERVE)};
const ctl = new Int32Array(workerData.ctl);
serveRounds(workerData.ctl, workerData.times, workerData.index, (mode) => {
  Atomics.add(ctl, ${TAKEN} + workerData.index, 1);
  Atomics.store(ctl, ${LAST} + workerData.index, mode);
  return 0;
});
`;

describe('crew rounds', () => {
  it('each round is taken once by exactly its first K workers, however late the others wake', async () => {
    const url = new URL(`data:text/javascript,${encodeURIComponent(SOURCE)}`);
    const datas = Array.from({ length: WORKERS }, (_, index) => ({ index }));
    const crew = new Crew(url, datas, Ctl.WORDS + 2 * WORKERS);
    await crew.ready();
    const taken = new Array<number>(WORKERS).fill(0);
    const rounds = 4000;
    let wrong = '';
    try {
      for (let round = 1; round <= rounds && wrong === ''; round++) {
        // rounds of one worker between rounds of all: the others wake for nothing, and late
        const k = round % 2 === 1 ? 1 : WORKERS;
        await crew.round(round, k, 0);
        for (let w = 0; w < WORKERS; w++) {
          const now = Atomics.load(crew.ctl, TAKEN + w);
          const expected = taken[w]! + (w < k ? 1 : 0);
          const last = Atomics.load(crew.ctl, LAST + w);
          if (now !== expected || (w < k && last !== round)) {
            wrong = `round ${round} (K ${k}): worker ${w} has taken ${now} rounds (expected ${expected}), its last ${last}`;
          }
          taken[w] = now;
        }
      }
    } finally {
      if (wrong === '') await crew.stop();
      else for (const worker of crew.workers) await worker.terminate();
    }
    expect(wrong).toBe('');
  }, 120_000);
});
