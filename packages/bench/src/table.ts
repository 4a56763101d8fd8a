/**
 * Terminal output: one table per suite (raw figures with their ratios next to them) and the
 * targets table at the end of a run.
 *
 * @module
 */
import { bytes, ms, ratio, si } from './format.js';
import type {
  MachineInfo,
  RatioResult,
  RowResult,
  RunConfig,
  SuiteResult,
  TargetResult,
} from './results.js';

/** Lay out rows of cells as aligned columns (first row is the header). Context: any; pure. */
export function columns(rows: readonly (readonly string[])[]): string {
  const widths: number[] = [];
  for (const row of rows) {
    row.forEach((cell, i) => {
      widths[i] = Math.max(widths[i] ?? 0, cell.length);
    });
  }
  const line = (row: readonly string[]): string =>
    row
      .map((cell, i) => cell + ' '.repeat((widths[i] ?? 0) - cell.length))
      .join('  ')
      .trimEnd();
  const [head, ...body] = rows;
  if (head === undefined) return '';
  const rule = widths.map((w) => '─'.repeat(w)).join('  ');
  return [line(head), rule, ...body.map(line)].join('\n');
}

function rateCell(row: RowResult): string {
  return `${si(row.rate.median)} ${row.unit}/s`;
}

function spreadCell(row: RowResult): string {
  return `${si(row.rate.min)}–${si(row.rate.max)}`;
}

function ratioCell(r: RatioResult): string {
  return `÷ ${r.baseline}: ${ratio(r.value.median)} (${ratio(r.value.min)}–${ratio(r.value.max)})`;
}

/** The table of one suite, its `Summary:` lines, measures, notes and integrity line. */
export function suiteTable(suite: SuiteResult): string {
  const out: string[] = [`── ${suite.name}: ${suite.title} ──`];
  if (suite.groups.length > 0) {
    const rows: string[][] = [
      ['group', 'row', 'median', 'min–max', 'iteration', 'ratios (median, min–max over reps)'],
    ];
    for (const group of suite.groups) {
      group.rows.forEach((row, i) => {
        const ratios = group.ratios.filter((r) => r.subject === row.name).map(ratioCell);
        const name = row.role === 'subject' ? row.name : `${row.name} (${row.role})`;
        rows.push([
          i === 0 ? group.name : '',
          name,
          rateCell(row),
          spreadCell(row),
          ms(row.iterationMs.median),
          ratios[0] ?? '',
        ]);
        for (const extra of ratios.slice(1)) rows.push(['', '', '', '', '', extra]);
      });
    }
    out.push(columns(rows));
  }
  if (suite.measures.length > 0) {
    out.push(
      columns([
        ['measure', 'value', 'detail'],
        ...suite.measures.map((m) => [
          m.name,
          m.unit === 'ratio' ? `${(m.value * 100).toFixed(3)}%` : `${m.value} ${m.unit}`,
          m.detail ?? '',
        ]),
      ]),
    );
  }
  out.push(...suite.lines);
  out.push(...suite.notes.map((n) => `note: ${n}`));
  const g = suite.integrity;
  out.push(
    `integrity: invariants ${g.invariants}; freeFrames ${g.freeFramesAfterBoot} after boot → ${g.freeFramesAtEnd} at end` +
      (g.leakedFrames === 0 ? ' (no leak)' : ` (LEAK: ${g.leakedFrames} frames)`),
  );
  return out.join('\n');
}

function targetValue(t: TargetResult): string {
  if (t.value === null) return 'not run';
  const f = (x: number): string => (t.id.startsWith('9') ? `${(x * 100).toFixed(3)}%` : ratio(x));
  return t.min === t.max
    ? f(t.value)
    : `${f(t.value)} (${f(t.min ?? t.value)}–${f(t.max ?? t.value)})`;
}

/** The performance targets with value, threshold and PASS/MISS. Context: any; pure. */
export function targetsTable(targets: readonly TargetResult[]): string {
  const rows = targets.map((t) => [
    t.id,
    t.what,
    t.ratio,
    targetValue(t),
    `${t.op === '>=' ? '≥' : '≤'} ${t.id.startsWith('9') ? `${t.threshold * 100}%` : ratio(t.threshold)}`,
    t.informational ? `(${t.status}, info)` : t.status,
  ]);
  return [
    '── targets ──',
    columns([['#', 'what', 'ratio', 'this run', 'target', 'status'], ...rows]),
  ].join('\n');
}

/**
 * The machine's thread round trip as the run header says it: its time, "not measured" when the
 * probe gave up (a machine so loaded that its two threads did not run together for 10 s), or
 * nothing on one CPU and in results of older runs. Context: any; pure.
 */
export function roundTripNote(machine: MachineInfo): string {
  const ns = machine.lineRoundTripNs;
  if (typeof ns === 'number') return `, thread round trip ${Math.round(ns)} ns`;
  return ns === null && machine.cpus >= 2
    ? ', thread round trip not measured (machine loaded)'
    : '';
}

/** A one-line description of the machine and settings of a run. Context: any; pure. */
export function runHeader(machine: MachineInfo, config: RunConfig): string {
  const load = machine.loadAverageAtStart.map((x) => x.toFixed(2)).join(' ');
  const trip = roundTripNote(machine);
  return (
    `${machine.model} × ${machine.cpus}, ${bytes(machine.totalMemoryBytes)}, ${machine.os}, Node ${machine.node}, load ${load}${trip}; ` +
    `${config.quick ? 'quick' : 'full'} run: ${config.reps} reps × ${config.timeMs} ms per row`
  );
}
