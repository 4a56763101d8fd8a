/**
 * What a suite is: a name, a title and a `run` that measures groups of rows with the harness and
 * ends with the integrity check.
 *
 * @module
 */
import type { HarnessOptions } from '../harness.js';
import type { GroupResult, Integrity, Measure } from '../results.js';

/** What a suite gets from the runner. */
export interface SuiteContext {
  /** Smoke-check mode: smaller loops, fewer reps, the whole run under two minutes. */
  readonly quick: boolean;
  /** The harness settings for this run (reps, budgets, progress callback). */
  readonly harness: HarnessOptions;
  /** Report progress on the suite's progress line. */
  readonly progress: (status: string) => void;
}

/** What a suite hands back; the runner adds its name, title and duration. */
export interface SuiteOutput {
  readonly groups: readonly GroupResult[];
  readonly measures: readonly Measure[];
  readonly lines: readonly string[];
  readonly notes: readonly string[];
  readonly integrity: Integrity;
}

/** A bench suite. */
export interface Suite {
  readonly name: string;
  readonly title: string;
  /** The rows' rate unit, for headings: `pages/s`, `loops/s`… */
  readonly rateLabel: string;
  /**
   * Measure everything. Throws when a row fails (a benchmark error is not a figure); broken
   * invariants and leaks are reported in `integrity` instead. Context: main thread.
   */
  run(ctx: SuiteContext): Promise<SuiteOutput>;
}
