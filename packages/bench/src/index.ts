/**
 * `@sabvm/bench`: tinybench suites that measure sabvm side by side with what users do today, and
 * the reports (terminal tables, JSON, a self-contained HTML page, run-to-run comparison).
 *
 * The CLI is `dist/cli.js` (`npm run bench`); this module is the programmatic API.
 *
 * @packageDocumentation
 */
export { compareRuns, loadRun } from './compare.js';
export { bytes, ms, percent, ratio, si } from './format.js';
export {
  ratioResult,
  SuiteBench,
  type BenchCase,
  type CaseGroup,
  type CaseHook,
  type HarnessOptions,
  type RatioSpec,
} from './harness.js';
export { reportHtml } from './report-html.js';
export * from './results.js';
export { harnessSettings, runBench, SUITES, type BenchOptions, type BenchOutcome } from './run.js';
export { median, rotate, spread, type Spread } from './stats.js';
export type { Suite, SuiteContext, SuiteOutput } from './suites/suite.js';
export { suiteTable, targetsTable } from './table.js';
export { evaluateTargets, TARGETS, type TargetSpec } from './targets.js';
