/**
 * The machine a run is measured on, recorded next to every figure.
 *
 * @module
 */
import { arch, availableParallelism, cpus, loadavg, platform, release, totalmem } from 'node:os';
import { Worker } from 'node:worker_threads';
import type { MachineInfo } from './results.js';
import { workerUrl } from './suites/worker-url.js';

/** CPUs, CPU model, OS, memory and Node/V8 versions of this process. Context: main thread. */
export function machineInfo(): MachineInfo {
  const list = cpus();
  return {
    cpus: availableParallelism(),
    model: list[0]?.model.trim() ?? 'unknown',
    os: `${platform()} ${release()} ${arch()}`,
    totalMemoryBytes: totalmem(),
    node: process.version,
    v8: process.versions.v8,
    loadAverageAtStart: loadavg(),
  };
}

/** Round trips per probe, and how long the probe waits for its thread before it gives up. */
const PROBE_TRIPS = 100_000;
const PROBE_TIMEOUT_MS = 10_000;

/**
 * The median time, in ns, for a 4-byte word to go from this thread to another and back (one
 * `Atomics.store` each way, each side spinning on `Atomics.load`): what every hand-over between
 * two threads costs at least, whatever carries it. Where the two threads run on cores far apart
 * this is hundreds of nanoseconds, and every cross-thread row of the bench pays it per cache line
 * that changes hands. Three probes; null when the machine has one CPU (the two threads would take
 * turns, and the figure would be the scheduler's). Context: main thread.
 */
export async function lineRoundTripNs(): Promise<number | null> {
  if (availableParallelism() < 2) return null;
  const sab = new SharedArrayBuffer(256);
  const i32 = new Int32Array(sab);
  const worker = new Worker(workerUrl('./line-probe-worker.js', import.meta.url), {
    workerData: sab,
  });
  try {
    const deadline = Date.now() + PROBE_TIMEOUT_MS;
    while (Atomics.load(i32, 1) === 0) {
      if (Date.now() > deadline) return null;
      await new Promise((resolve) => setTimeout(resolve, 1));
    }
    const times: number[] = [];
    for (let probe = 0; probe < 3; probe++) {
      Atomics.store(i32, 0, 0);
      const t0 = performance.now();
      for (let i = 0; i < PROBE_TRIPS; i++) {
        Atomics.store(i32, 0, 2 * i + 1);
        while (Atomics.load(i32, 0) !== 2 * i + 2) {
          if ((i & 1023) === 0 && Date.now() > deadline) return null;
        }
      }
      times.push(((performance.now() - t0) * 1e6) / PROBE_TRIPS);
    }
    return times.sort((a, b) => a - b)[1]!;
  } finally {
    Atomics.store(i32, 0, -1);
    await worker.terminate();
  }
}
