/**
 * `--compare A.json B.json`: what changed between two runs — every row's median rate, every ratio
 * and every target, with the relative change and whether the two runs' min–max spreads overlap
 * (an overlap means the change may be noise).
 *
 * @module
 */
import { readFileSync } from 'node:fs';
import { percent, ratio, si } from './format.js';
import { RESULT_SCHEMA, type BenchRun, type TargetResult } from './results.js';
import { columns, roundTripNote } from './table.js';
import { evaluateTargets } from './targets.js';

/**
 * Read and check a run file. Throws `Error` when it cannot be read, is not JSON, or is not a
 * bench run of this schema. Context: main thread; reads the file synchronously.
 */
export function loadRun(path: string): BenchRun {
  const data = JSON.parse(readFileSync(path, 'utf8')) as Partial<BenchRun> | null;
  if (data?.schema !== RESULT_SCHEMA || !Array.isArray(data.suites)) {
    throw new Error(`${path}: not a ${RESULT_SCHEMA} result file`);
  }
  return data as BenchRun;
}

interface Range {
  readonly median: number;
  readonly min: number;
  readonly max: number;
}

function change(a: Range, b: Range): [string, string] {
  const overlap = a.min <= b.max && b.min <= a.max;
  return [
    percent(b.median / a.median - 1),
    overlap ? '~ (spreads overlap)' : b.median > a.median ? 'up' : 'down',
  ];
}

function targetCell(t: TargetResult | undefined): string {
  if (t?.value == null) return 'not run';
  return `${t.id.startsWith('9') ? `${(t.value * 100).toFixed(3)}%` : ratio(t.value)} ${t.status}`;
}

/** The change from run `a` to run `b`, as printable tables. Context: any thread; pure. */
export function compareRuns(a: BenchRun, b: BenchRun): string {
  const trip = (run: BenchRun): string => roundTripNote(run.machine);
  const out: string[] = [
    `A: ${a.startedAt} (${a.machine.model}, Node ${a.machine.node}${trip(a)}, ${a.config.quick ? 'quick' : 'full'})`,
  ];
  out.push(
    `B: ${b.startedAt} (${b.machine.model}, Node ${b.machine.node}${trip(b)}, ${b.config.quick ? 'quick' : 'full'})`,
  );
  if (a.machine.model !== b.machine.model || a.machine.cpus !== b.machine.cpus) {
    out.push('warning: the two runs come from different machines; compare ratios, not raw rates.');
  }
  const rateRows: string[][] = [['suite', 'group', 'row', 'A', 'B', 'change', '']];
  const ratioRows: string[][] = [['suite', 'group', 'ratio', 'A', 'B', 'change', '']];
  for (const sb of b.suites) {
    const sa = a.suites.find((s) => s.name === sb.name);
    if (sa === undefined) continue;
    for (const gb of sb.groups) {
      const ga = sa.groups.find((g) => g.name === gb.name);
      if (ga === undefined) continue;
      for (const rb of gb.rows) {
        const ra = ga.rows.find((r) => r.name === rb.name);
        if (ra === undefined) continue;
        rateRows.push([
          sb.name,
          gb.name,
          rb.name,
          `${si(ra.rate.median)}/s`,
          `${si(rb.rate.median)}/s`,
          ...change(ra.rate, rb.rate),
        ]);
      }
      for (const xb of gb.ratios) {
        const xa = ga.ratios.find((r) => r.name === xb.name);
        if (xa === undefined) continue;
        ratioRows.push([
          sb.name,
          gb.name,
          xb.name,
          ratio(xa.value.median),
          ratio(xb.value.median),
          ...change(xa.value, xb.value),
        ]);
      }
    }
  }
  // both runs are judged by this build's target definitions, from the ratios each run recorded
  // (a run made before a definition changed is then compared like for like, or shows "not run")
  const targetsA = evaluateTargets(a.suites);
  const targetsB = evaluateTargets(b.suites);
  const targetRows: string[][] = [['#', 'what', 'A', 'B']];
  for (const tb of targetsB) {
    targetRows.push([
      tb.id,
      tb.what,
      targetCell(targetsA.find((t) => t.id === tb.id)),
      targetCell(tb),
    ]);
  }
  out.push(
    '',
    '── rates ──',
    columns(rateRows),
    '',
    '── ratios ──',
    columns(ratioRows),
    '',
    '── targets (both runs judged by the current definitions) ──',
    columns(targetRows),
  );
  return out.join('\n');
}
