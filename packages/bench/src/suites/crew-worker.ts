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
  const round = (k: number, mode: number, ops: number): void => {
    if (index >= k) return;
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
    // the round's words between two reads of the same even GO (see crew-protocol.ts): a worker
    // that woke late must not take a round it sat out, or mix its words with the next round's
    let go: number;
    let k: number;
    let mode: number;
    let ops: number;
    let stop: number;
    do {
      go = Atomics.load(ctl, Ctl.GO);
      k = Atomics.load(ctl, Ctl.K);
      mode = Atomics.load(ctl, Ctl.MODE);
      ops = Atomics.load(ctl, Ctl.OPS);
      stop = Atomics.load(ctl, Ctl.STOP);
    } while ((go & 1) !== 0 || Atomics.load(ctl, Ctl.GO) !== go);
    // a wake-up with GO unchanged (seen on Node 24 and 26) is no new round: wait again
    if (go === seen) continue;
    seen = go;
    if (stop !== 0) return;
    round(k, mode, ops);
  }
}
