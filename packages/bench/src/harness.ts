/**
 * The measuring loop: one tinybench `Bench` per suite, its tasks run rep by rep so that a subject
 * and its baselines are measured side by side, in an order that rotates every rep.
 *
 * Why not `bench.run()`: it runs each task for its whole budget before the next one, so a burst of
 * load from another process lands on one row and becomes a fake ratio. Here a group's rows are run
 * back to back for a short budget each, several times over (`reps`), and every ratio is taken
 * between the two rows of the same rep before being summarised — noise that hits a rep hits both
 * sides of its ratio, or shows up as spread.
 *
 * @module
 */
import { Bench, type Task } from 'tinybench';
import type { GroupResult, RatioResult, RepStats, Role, RowResult, Unit } from './results.js';
import { rotate, spread } from './stats.js';

/** A tinybench hook: runs outside the timed window. */
export type CaseHook = () => unknown;

/** One row of a group: the function tinybench times, and how much work one call does. */
export interface BenchCase {
  readonly name: string;
  readonly role: Role;
  readonly unit: Unit;
  /** Units one call of `fn` handles (pages, bytes, reads, loops, tasks). */
  readonly unitsPerIteration: number;
  /** The timed function; return a promise only when `async` is set. */
  readonly fn: () => unknown;
  /** `fn` returns a promise (tinybench would otherwise call `fn` once to find out). */
  readonly async?: boolean;
  /** Untimed, before every timed call (e.g. `mmap` a fresh VMA). */
  readonly beforeEach?: CaseHook;
  /** Untimed, after every timed call (e.g. `munmap` what the call mapped). */
  readonly afterEach?: CaseHook;
  /** Untimed, once before each warmup or run phase. */
  readonly beforeAll?: CaseHook;
  /** Untimed, once after each warmup or run phase. */
  readonly afterAll?: CaseHook;
}

/** A ratio to compute between two rows of a group (see {@link RatioResult}). */
export interface RatioSpec {
  readonly name: string;
  readonly subject: string;
  readonly baseline: string;
  readonly kind: 'throughput' | 'time';
}

/** Rows measured against one another at one size. */
export interface CaseGroup {
  readonly name: string;
  readonly bytes?: number;
  readonly cases: readonly BenchCase[];
  readonly ratios: readonly RatioSpec[];
  /** Untimed, once before the group's warmup (e.g. fill a busy list for every row). */
  readonly setup?: () => unknown;
  /** Untimed, once after the group's last rep, also when a row failed. */
  readonly teardown?: () => unknown;
}

/** How hard the harness measures. */
export interface HarnessOptions {
  /** Reps per group (each rep runs every row once). */
  readonly reps: number;
  /** tinybench time budget per row per rep, in milliseconds (timed part only). */
  readonly timeMs: number;
  /** tinybench minimum iterations per row per rep. */
  readonly iterations: number;
  /** Warmup budget per row, before the first rep, in milliseconds. */
  readonly warmupMs: number;
  /** Called with a short status text as the run advances (progress line). */
  readonly onProgress?: (status: string) => void;
}

/**
 * A suite's tinybench `Bench` plus the interleaving loop. Throws whatever a row's function or
 * hook throws (a benchmark that fails is not a figure).
 * Context: main thread; runs the rows on the calling thread (rows may use workers themselves).
 */
export class SuiteBench {
  /** The tinybench instance holding every task of the suite. */
  readonly bench: Bench;
  private readonly options: HarnessOptions;

  constructor(name: string, options: HarnessOptions) {
    this.options = options;
    this.bench = new Bench({
      name,
      time: options.timeMs,
      iterations: options.iterations,
      warmup: true,
      warmupTime: options.warmupMs,
      warmupIterations: Math.max(1, Math.min(options.iterations, 4)),
      throws: true,
    });
  }

  /**
   * Measure one group: warm every row up, then `reps` reps with the row order rotating, then the
   * ratios rep pair by rep pair. Throws when a row errors or a ratio names an unknown row.
   * Context: main thread; blocks for about `reps × rows × timeMs` plus the rows' hooks.
   */
  async runGroup(group: CaseGroup): Promise<GroupResult> {
    await group.setup?.();
    try {
      return await this.measureGroup(group);
    } finally {
      await group.teardown?.();
    }
  }

  private async measureGroup(group: CaseGroup): Promise<GroupResult> {
    const tasks = group.cases.map((c) => this.addTask(group.name, c));
    const { reps, onProgress } = this.options;
    for (const task of tasks) {
      await task.warmup();
      task.reset(false);
    }
    const perRow: RepStats[][] = group.cases.map(() => []);
    for (let rep = 0; rep < reps; rep++) {
      onProgress?.(`${group.name}: rep ${rep + 1}/${reps}`);
      const order = rotate(
        group.cases.map((_, i) => i),
        rep,
      );
      for (const [position, i] of order.entries()) {
        const task = tasks[i];
        const c = group.cases[i];
        if (task === undefined || c === undefined) continue;
        perRow[i]?.push(await runOnce(task, c, position));
      }
    }
    const rows = group.cases.map((c, i) => rowResult(c, perRow[i] ?? []));
    const ratios = group.ratios.map((spec) => ratioResult(spec, rows));
    return group.bytes === undefined
      ? { name: group.name, rows, ratios }
      : { name: group.name, bytes: group.bytes, rows, ratios };
  }

  private addTask(groupName: string, c: BenchCase): Task {
    const name = `${groupName} · ${c.name}`;
    const hooks: Record<string, () => unknown> = {};
    if (c.beforeEach) hooks.beforeEach = c.beforeEach;
    if (c.afterEach) hooks.afterEach = c.afterEach;
    if (c.beforeAll) hooks.beforeAll = c.beforeAll;
    if (c.afterAll) hooks.afterAll = c.afterAll;
    this.bench.add(name, c.fn, { async: c.async ?? false, ...hooks });
    const task = this.bench.getTask(name);
    if (task === undefined) {
      throw new Error(`tinybench lost task ${name}`);
    }
    return task;
  }
}

async function runOnce(task: Task, c: BenchCase, position: number): Promise<RepStats> {
  task.reset(false);
  await task.run();
  const result = task.result;
  if (result.state === 'errored') {
    throw result.error;
  }
  if (result.state !== 'completed') {
    throw new Error(`${task.name}: tinybench ended in state ${result.state}`);
  }
  const l = result.latency;
  return {
    position,
    samples: l.samplesCount,
    meanMs: l.mean,
    p50Ms: l.p50,
    p75Ms: l.p75,
    p99Ms: l.p99,
    minMs: l.min,
    maxMs: l.max,
    sdMs: l.sd,
    rme: l.rme,
    rate: l.p50 > 0 ? c.unitsPerIteration / (l.p50 / 1000) : Number.POSITIVE_INFINITY,
  };
}

function rowResult(c: BenchCase, reps: readonly RepStats[]): RowResult {
  return {
    name: c.name,
    role: c.role,
    unit: c.unit,
    unitsPerIteration: c.unitsPerIteration,
    rate: spread(reps.map((r) => r.rate)),
    iterationMs: spread(reps.map((r) => r.p50Ms)),
    reps,
  };
}

/**
 * The ratio of `spec` computed for every rep from the two rows' rates of that rep, then
 * summarised. Throws `Error` when a named row is not in `rows`. Context: any thread; pure.
 */
export function ratioResult(spec: RatioSpec, rows: readonly RowResult[]): RatioResult {
  const subject = rows.find((r) => r.name === spec.subject);
  const baseline = rows.find((r) => r.name === spec.baseline);
  if (subject === undefined || baseline === undefined) {
    throw new Error(
      `ratio ${spec.name}: no row ${subject === undefined ? spec.subject : spec.baseline}`,
    );
  }
  const perRep = subject.reps.map((s, i) => {
    const b = baseline.reps[i]?.rate ?? Number.NaN;
    return spec.kind === 'throughput' ? s.rate / b : b / s.rate;
  });
  return { ...spec, value: spread(perRep), perRep };
}
