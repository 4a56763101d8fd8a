/**
 * Run suites, print their tables, and write `<outDir>/<timestamp>.json` and `<outDir>/report.html`.
 *
 * @module
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import type { HarnessOptions } from './harness.js';
import { lineRoundTripNs, machineInfo } from './machine.js';
import { reportHtml } from './report-html.js';
import { RESULT_SCHEMA, type BenchRun, type RunConfig, type SuiteResult } from './results.js';
import { accessSuite } from './suites/access.js';
import { dispatchSuite } from './suites/dispatch.js';
import { handoffSuite } from './suites/handoff.js';
import { kmallocSuite } from './suites/kmalloc.js';
import { metadataSuite } from './suites/metadata.js';
import { remapSuite } from './suites/remap.js';
import { ringSuite } from './suites/ring.js';
import { scalingSuite } from './suites/scaling.js';
import type { Suite } from './suites/suite.js';
import { vmallocSuite } from './suites/vmalloc.js';
import { workloadsSuite } from './suites/workloads.js';
import { runHeader, suiteTable, targetsTable } from './table.js';
import { evaluateTargets } from './targets.js';

/** Every suite, in the order a full run takes them. */
export const SUITES: readonly Suite[] = [
  remapSuite,
  vmallocSuite,
  accessSuite,
  handoffSuite,
  dispatchSuite,
  scalingSuite,
  metadataSuite,
  workloadsSuite,
  kmallocSuite,
  ringSuite,
];

/** Options of {@link runBench}. */
export interface BenchOptions {
  /** Directory for the JSON and the HTML report (created if missing). */
  readonly outDir: string;
  /** Smoke-check mode: fewer reps and shorter budgets (the whole run well under two minutes). */
  readonly quick?: boolean;
  /** Suite names to run (default: all). */
  readonly suites?: readonly string[];
  /** Override the reps per group. */
  readonly reps?: number;
  /** Override the time budget per row per rep, in milliseconds. */
  readonly timeMs?: number;
  /** Where tables and progress go (default: process.stdout). */
  readonly out?: NodeJS.WritableStream & { isTTY?: boolean };
}

/** What {@link runBench} produced. */
export interface BenchOutcome {
  readonly run: BenchRun;
  readonly jsonPath: string;
  readonly htmlPath: string;
  /** False when a suite failed, broke an invariant or leaked frames. */
  readonly ok: boolean;
}

/** The harness settings of a mode. Context: any; pure. */
export function harnessSettings(quick: boolean): Omit<HarnessOptions, 'onProgress'> {
  return quick
    ? { reps: 3, timeMs: 30, iterations: 2, warmupMs: 10 }
    : { reps: 7, timeMs: 150, iterations: 5, warmupMs: 100 };
}

/** A progress line: rewritten in place on a terminal, one line per step otherwise. */
class ProgressLine {
  private last = '';
  constructor(private readonly out: NodeJS.WritableStream & { isTTY?: boolean }) {}

  show(text: string): void {
    if (this.out.isTTY === true) {
      this.out.write(`\r\x1b[K${text}`);
      return;
    }
    const step = text.replace(/: rep \d+\/\d+$/, '');
    if (step !== this.last) this.out.write(`${step}\n`);
    this.last = step;
  }

  clear(): void {
    if (this.out.isTTY === true) this.out.write('\r\x1b[K');
    this.last = '';
  }
}

function failedSuite(suite: Suite, error: unknown, durationMs: number): SuiteResult {
  const message = error instanceof Error ? (error.stack ?? error.message) : String(error);
  return {
    name: suite.name,
    title: suite.title,
    rateLabel: suite.rateLabel,
    durationMs,
    groups: [],
    measures: [],
    lines: [],
    notes: [`the suite failed: ${message.split('\n')[0] ?? message}`],
    integrity: {
      invariants: `suite failed: ${message}`,
      freeFramesAfterBoot: 0,
      freeFramesAtEnd: 0,
      leakedFrames: 0,
      ok: false,
    },
  };
}

/**
 * Run the chosen suites, print a table per suite and the targets, write the JSON and the HTML
 * report. Throws `Error` for an unknown suite name; a suite that throws is recorded as failed
 * (and makes `ok` false) and the run goes on. Context: main thread; runs for seconds to minutes.
 */
export async function runBench(options: BenchOptions): Promise<BenchOutcome> {
  const out = options.out ?? process.stdout;
  const names = options.suites ?? SUITES.map((s) => s.name);
  const unknown = names.filter((n) => !SUITES.some((s) => s.name === n));
  if (unknown.length > 0) {
    throw new Error(
      `unknown suite ${unknown.join(', ')}; suites: ${SUITES.map((s) => s.name).join(', ')}`,
    );
  }
  const chosen = SUITES.filter((s) => names.includes(s.name));
  const quick = options.quick ?? false;
  const base = harnessSettings(quick);
  const settings = {
    ...base,
    reps: options.reps ?? base.reps,
    timeMs: options.timeMs ?? base.timeMs,
  };
  const config: RunConfig = { quick, ...settings, suites: chosen.map((s) => s.name) };
  const started = new Date();
  const t0 = performance.now();
  const machine = { ...machineInfo(), lineRoundTripNs: await lineRoundTripNs() };
  out.write(`sabvm bench — ${runHeader(machine, config)}\n\n`);
  const suites: SuiteResult[] = [];
  const progress = new ProgressLine(out);
  for (const [i, suite] of chosen.entries()) {
    const label = `[${i + 1}/${chosen.length}] ${suite.name}`;
    const show = (status: string): void => {
      progress.show(`${label} · ${status}`);
    };
    show('starting');
    const s0 = performance.now();
    let result: SuiteResult;
    try {
      const body = await suite.run({
        quick,
        harness: { ...settings, onProgress: show },
        progress: show,
      });
      result = {
        name: suite.name,
        title: suite.title,
        rateLabel: suite.rateLabel,
        durationMs: performance.now() - s0,
        ...body,
      };
    } catch (error) {
      result = failedSuite(suite, error, performance.now() - s0);
    }
    progress.clear();
    suites.push(result);
    out.write(
      `${label} done in ${(result.durationMs / 1000).toFixed(1)} s\n${suiteTable(result)}\n\n`,
    );
  }
  const run: BenchRun = {
    schema: RESULT_SCHEMA,
    startedAt: started.toISOString(),
    durationMs: performance.now() - t0,
    machine,
    config,
    suites,
    targets: evaluateTargets(suites),
    loadAverageAtEnd: loadavg(),
  };
  out.write(
    `${targetsTable(run.targets)}\n\nload average at end: ${run.loadAverageAtEnd.map((x) => x.toFixed(2)).join(' ')}\n`,
  );
  mkdirSync(options.outDir, { recursive: true });
  const jsonPath = join(options.outDir, `${run.startedAt.replace(/[:.]/g, '-')}.json`);
  const htmlPath = join(options.outDir, 'report.html');
  writeFileSync(jsonPath, `${JSON.stringify(run, null, 2)}\n`);
  writeFileSync(htmlPath, reportHtml(run));
  const ok = suites.every((s) => s.integrity.ok);
  out.write(
    `wrote ${jsonPath}\nwrote ${htmlPath}\n${ok ? '' : 'FAILED: a suite failed, broke an invariant or leaked frames (see above)\n'}`,
  );
  return { run, jsonPath, htmlPath, ok };
}
