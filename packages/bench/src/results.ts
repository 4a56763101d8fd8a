/**
 * The shape of a bench run, as written to `bench-results/<timestamp>.json` and read back by
 * `--compare` and the HTML report. Plain data only (no classes), so a run survives JSON.
 *
 * @module
 */
import type { Spread } from './stats.js';

/** Version tag of the JSON layout; `--compare` refuses files with another one. */
export const RESULT_SCHEMA = 'sabvm-bench/1';

/** What a row counts per iteration, so rates read as "units per second". */
export type Unit = 'pages' | 'bytes' | 'ops' | 'reads' | 'loops' | 'tasks' | 'records';

/** The part a row plays: what sabvm does, what a user would do instead, or a control. */
export type Role = 'subject' | 'baseline' | 'control';

/** tinybench's latency statistics of one rep of one row, in milliseconds per iteration. */
export interface RepStats {
  /** Position of this row within its rep (the order rotates from rep to rep). */
  readonly position: number;
  /** Iterations tinybench timed in this rep. */
  readonly samples: number;
  /** Mean iteration time. */
  readonly meanMs: number;
  /** Median iteration time (the figure the rate is derived from). */
  readonly p50Ms: number;
  /** 75th percentile of the iteration time. */
  readonly p75Ms: number;
  /** 99th percentile of the iteration time. */
  readonly p99Ms: number;
  /** Fastest iteration. */
  readonly minMs: number;
  /** Slowest iteration. */
  readonly maxMs: number;
  /** Standard deviation of the iteration time. */
  readonly sdMs: number;
  /** Relative margin of error of the mean, in percent. */
  readonly rme: number;
  /** Units per second of this rep, from its median iteration: `units / p50`. */
  readonly rate: number;
}

/** One measured row: a subject, baseline or control at one size. */
export interface RowResult {
  readonly name: string;
  readonly role: Role;
  readonly unit: Unit;
  /** Units one iteration handles (pages remapped, bytes summed, loops of a test case…). */
  readonly unitsPerIteration: number;
  /** Units per second over the reps (each rep's figure is units / its median iteration time). */
  readonly rate: Spread;
  /** Median iteration time of each rep, summarised over the reps, in milliseconds. */
  readonly iterationMs: Spread;
  /** Every rep's tinybench statistics, in run order. */
  readonly reps: readonly RepStats[];
}

/**
 * A ratio computed rep by rep between two rows of one group, then summarised.
 * `throughput`: subject rate / baseline rate (above 1: the subject does more per second).
 * `time`: subject time per unit / baseline time per unit (below 1: the subject is quicker).
 */
export interface RatioResult {
  readonly name: string;
  readonly subject: string;
  readonly baseline: string;
  readonly kind: 'throughput' | 'time';
  readonly value: Spread;
  /** The ratio of each rep pair, in rep order. */
  readonly perRep: readonly number[];
}

/** Rows measured side by side (interleaved rep by rep) at one size or one case. */
export interface GroupResult {
  /** Key of the group inside its suite, e.g. `16 pages` or `fix_size_alloc_test (1 page)`. */
  readonly name: string;
  /** Bytes the group works on, when it is one point of a size sweep (charts use it as x). */
  readonly bytes?: number;
  readonly rows: readonly RowResult[];
  readonly ratios: readonly RatioResult[];
}

/** The end-of-suite check: invariants hold and every frame is back. */
export interface Integrity {
  /** `'ok'`, or the message `checkInvariants()` threw. */
  readonly invariants: string;
  readonly freeFramesAfterBoot: number;
  readonly freeFramesAtEnd: number;
  /** `freeFramesAfterBoot - freeFramesAtEnd`; 0 when nothing leaked. */
  readonly leakedFrames: number;
  readonly ok: boolean;
}

/** A figure that is measured once rather than timed (e.g. metadata overhead). */
export interface Measure {
  readonly name: string;
  readonly value: number;
  readonly unit: string;
  readonly detail?: string;
}

/** One suite's results. */
export interface SuiteResult {
  readonly name: string;
  readonly title: string;
  /** What the rows' unit is, for table and chart headings ("pages/s"). */
  readonly rateLabel: string;
  readonly durationMs: number;
  readonly groups: readonly GroupResult[];
  readonly measures: readonly Measure[];
  /** Extra lines the suite prints (vmalloc: the kernel's `Summary:` lines). */
  readonly lines: readonly string[];
  /** Things the reader must know (a missing API, a scaled-down parameter). */
  readonly notes: readonly string[];
  readonly integrity: Integrity;
}

/** The machine a run was measured on. */
export interface MachineInfo {
  readonly cpus: number;
  readonly model: string;
  readonly os: string;
  readonly totalMemoryBytes: number;
  readonly node: string;
  readonly v8: string;
  /** `os.loadavg()` (1, 5, 15 minutes) when the run started: how busy the machine was. */
  readonly loadAverageAtStart: readonly number[];
  /**
   * Nanoseconds for a word to go to another thread and back, measured when the run started
   * (`lineRoundTripNs`); null on one CPU, and when the probe gave up (its two threads did not run
   * together for 10 s: a loaded machine). Absent from results of older runs.
   */
  readonly lineRoundTripNs?: number | null;
}

/** Harness settings of a run. */
export interface RunConfig {
  readonly quick: boolean;
  /** Reps per group: each rep runs every row of the group once, in rotated order. */
  readonly reps: number;
  /** tinybench time budget per row per rep, in milliseconds. */
  readonly timeMs: number;
  /** tinybench minimum iterations per row per rep. */
  readonly iterations: number;
  readonly suites: readonly string[];
}

/** One of the performance targets, evaluated on this run. */
export interface TargetResult {
  readonly id: string;
  readonly what: string;
  /** The ratio's meaning, e.g. "remapPartial pages/s ÷ Atomics.compareExchange slots/s". */
  readonly ratio: string;
  readonly op: '>=' | '<=';
  readonly threshold: number;
  /** Median ratio (or the single measured value), null when its suite did not run. */
  readonly value: number | null;
  readonly min: number | null;
  readonly max: number | null;
  readonly status: 'PASS' | 'MISS' | 'n/a';
  /** Informational rows are printed next to the targets but are not targets themselves. */
  readonly informational: boolean;
}

/** A whole bench run: what `bench-results/<timestamp>.json` holds. */
export interface BenchRun {
  readonly schema: typeof RESULT_SCHEMA;
  readonly startedAt: string;
  readonly durationMs: number;
  readonly machine: MachineInfo;
  readonly config: RunConfig;
  readonly suites: readonly SuiteResult[];
  readonly targets: readonly TargetResult[];
  /** `os.loadavg()` when the run ended. */
  readonly loadAverageAtEnd: readonly number[];
}
