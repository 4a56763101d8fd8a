/**
 * The machine a run is measured on, recorded next to every figure.
 *
 * @module
 */
import { arch, availableParallelism, cpus, loadavg, platform, release, totalmem } from 'node:os';
import type { MachineInfo } from './results.js';

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
