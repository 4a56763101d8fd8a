/**
 * The main-thread side of a crew of worker threads that run timed rounds (see crew-protocol.ts):
 * start them, run a round on the first K of them, stop them.
 *
 * @module
 */
import { Worker } from 'node:worker_threads';
import { Ctl } from './crew-protocol.js';
import { waitAsyncAlive } from './wait-async.js';

/** Worker threads running rounds; `ctl` and `times` travel to each in its `workerData`. */
export class Crew {
  readonly ctl: Int32Array;
  readonly times: Float64Array;
  /** The worker threads, in the order of `datas` (a suite may listen to their messages). */
  readonly workers: readonly Worker[];
  private readonly exited: Promise<void>[] = [];
  private failure: Error | null = null;
  private readonly size: number;

  /**
   * Start one worker of `url` per entry of `datas` (each gets `ctl` and `times` added to it).
   * `ctlWords`: words of the control array, at least `Ctl.WORDS`. Context: main thread.
   */
  constructor(url: URL, datas: readonly object[], ctlWords: number = Ctl.WORDS) {
    this.ctl = new Int32Array(new SharedArrayBuffer(ctlWords * 4));
    const timesSab = new SharedArrayBuffer(datas.length * 2 * 8);
    this.times = new Float64Array(timesSab);
    this.size = datas.length;
    const workers: Worker[] = [];
    this.workers = workers;
    for (const d of datas) {
      const worker = new Worker(url, {
        workerData: { ...d, ctl: this.ctl.buffer, times: timesSab },
      });
      workers.push(worker);
      this.exited.push(
        new Promise((resolve) => {
          worker.on('error', (e: Error) => {
            this.failure ??= e;
            Atomics.store(this.ctl, Ctl.ERROR, -1);
            Atomics.notify(this.ctl, Ctl.DONE);
            Atomics.notify(this.ctl, Ctl.READY);
          });
          worker.on('exit', () => {
            resolve();
          });
        }),
      );
    }
  }

  /** Wait until `ctl[index] >= target` without blocking the event loop. */
  private async until(index: number, target: number): Promise<void> {
    for (;;) {
      const now = Atomics.load(this.ctl, index);
      if (now >= target) return;
      if (this.failure !== null) throw this.failure;
      await waitAsyncAlive(this.ctl, index, now);
    }
  }

  /** Every worker has started. */
  ready(): Promise<void> {
    return this.until(Ctl.READY, this.size);
  }

  /**
   * One round: the first `k` workers, `ops` operations each, in mode `mode`; the words `zero` are
   * zeroed first. Returns the first-start → last-end time in ms; throws when a worker failed.
   */
  async round(mode: number, k: number, ops: number, zero: readonly number[] = []): Promise<number> {
    const { ctl } = this;
    Atomics.add(ctl, Ctl.GO, 1); // odd: a round is being set up (see crew-protocol.ts)
    for (const w of [Ctl.ARRIVED, Ctl.DONE, ...zero]) Atomics.store(ctl, w, 0);
    Atomics.store(ctl, Ctl.MODE, mode);
    Atomics.store(ctl, Ctl.OPS, ops);
    Atomics.store(ctl, Ctl.K, k);
    Atomics.add(ctl, Ctl.GO, 1); // even: published
    Atomics.notify(ctl, Ctl.GO);
    await this.until(Ctl.DONE, k);
    const error = Atomics.load(ctl, Ctl.ERROR);
    if (error !== 0) throw this.failure ?? new Error(`a worker of the crew failed with ${error}`);
    let start = Number.POSITIVE_INFINITY;
    let end = 0;
    for (let i = 0; i < k; i++) {
      start = Math.min(start, this.times[2 * i] ?? Number.NaN);
      end = Math.max(end, this.times[2 * i + 1] ?? Number.NaN);
    }
    return end - start;
  }

  /** Stop every worker and wait for them to exit. */
  async stop(): Promise<void> {
    Atomics.add(this.ctl, Ctl.GO, 1);
    Atomics.store(this.ctl, Ctl.STOP, 1);
    Atomics.add(this.ctl, Ctl.GO, 1);
    Atomics.notify(this.ctl, Ctl.GO);
    await Promise.all(this.exited);
  }
}
