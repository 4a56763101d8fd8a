/**
 * The worker-thread side of a crew (see crew-protocol.ts): report ready, then run every round this
 * worker takes part in until told to stop.
 *
 * @module
 */
import { Ctl, ERROR_THROWN } from './crew-protocol.js';

/**
 * Serve rounds: for each round that includes worker `index` (the first K), wait at the start
 * barrier, run `work(mode, ops)` — 0, or a negative errno that fails the round — and record its
 * start and end time. Returns when the crew is stopped. Context: a worker thread; blocks.
 */
export function serveRounds(
  ctlSab: SharedArrayBuffer,
  timesSab: SharedArrayBuffer,
  index: number,
  work: (mode: number, ops: number) => number,
): void {
  const ctl = new Int32Array(ctlSab);
  const times = new Float64Array(timesSab);
  const round = (): void => {
    const k = Atomics.load(ctl, Ctl.K);
    if (index >= k) return;
    const mode = Atomics.load(ctl, Ctl.MODE);
    const ops = Atomics.load(ctl, Ctl.OPS);
    Atomics.add(ctl, Ctl.ARRIVED, 1);
    while (Atomics.load(ctl, Ctl.ARRIVED) < k) {
      // start barrier: spin until every participant has arrived, so all start together
    }
    times[index * 2] = performance.timeOrigin + performance.now();
    try {
      const rc = work(mode, ops);
      if (rc !== 0) Atomics.compareExchange(ctl, Ctl.ERROR, 0, rc);
    } catch {
      Atomics.compareExchange(ctl, Ctl.ERROR, 0, ERROR_THROWN);
    }
    times[index * 2 + 1] = performance.timeOrigin + performance.now();
    Atomics.add(ctl, Ctl.DONE, 1);
    Atomics.notify(ctl, Ctl.DONE);
  };
  Atomics.add(ctl, Ctl.READY, 1);
  Atomics.notify(ctl, Ctl.READY);
  let seen = 0;
  for (;;) {
    Atomics.wait(ctl, Ctl.GO, seen);
    seen = Atomics.load(ctl, Ctl.GO);
    if (Atomics.load(ctl, Ctl.STOP) !== 0) return;
    round();
  }
}
