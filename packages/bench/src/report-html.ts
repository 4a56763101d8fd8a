/**
 * `bench-results/report.html`: one self-contained page (inline CSS and SVG, no script, no external
 * asset) that opens from disk: the targets, then per suite its charts, table, notes and integrity.
 *
 * @module
 */
import { bytes, ms, ratio, si } from './format.js';
import type { BenchRun, GroupResult, SuiteResult, TargetResult } from './results.js';
import { barChart, esc, lineChart, PALETTE, type Series } from './svg.js';
import { runHeader } from './table.js';

const STYLE = `
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;max-width:1100px;padding:0 1rem;color:#1a1a1a}
h1{margin-bottom:.2rem}h2{margin-top:2.4rem;border-bottom:1px solid #ddd;padding-bottom:.3rem}
table{border-collapse:collapse;margin:.8rem 0;font-size:13px}th,td{padding:3px 10px;border-bottom:1px solid #eee;text-align:left;vertical-align:top}
th{background:#f6f6f6}td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
.PASS{color:#137333;font-weight:600}.MISS{color:#b3261e;font-weight:600}.na{color:#777}
.info{color:#555;font-style:italic}pre{background:#f6f6f6;padding:.6rem;overflow-x:auto}
svg{display:block;margin:.8rem 0;max-width:100%;height:auto}
svg .title{font-weight:600;font-size:14px}svg .tick{font-size:11px;fill:#444}svg .axis{font-size:12px;fill:#333}
svg .legend{font-size:12px;fill:#222}svg .grid{stroke:#e4e4e4;stroke-width:1}svg .target{stroke:#b3261e;stroke-dasharray:4 3;stroke-width:1.5}
.muted{color:#666}
`;

function targetsSection(targets: readonly TargetResult[]): string {
  const fmt = (t: TargetResult, v: number | null): string =>
    v === null ? '—' : t.id.startsWith('9') ? `${(v * 100).toFixed(3)}%` : ratio(v);
  const rows = targets
    .map((t) => {
      const cls = t.status === 'n/a' ? 'na' : t.status;
      return `<tr${t.informational ? ' class="info"' : ''}><td>${esc(t.id)}</td><td>${esc(t.what)}</td><td>${esc(t.ratio)}</td><td class="num">${fmt(t, t.value)}</td><td class="num">${fmt(t, t.min)}–${fmt(t, t.max)}</td><td class="num">${t.op === '>=' ? '≥' : '≤'} ${fmt(t, t.threshold)}</td><td class="${cls}">${t.status}${t.informational ? ' (info)' : ''}</td></tr>`;
    })
    .join('');
  return `<h2>Targets</h2><p class="muted">Each figure is a ratio computed per rep pair in this run, summarised by its median (min–max over reps). Rows in italics are informational.</p><table><thead><tr><th>#</th><th>what</th><th>ratio</th><th>median</th><th>min–max</th><th>target</th><th>status</th></tr></thead><tbody>${rows}</tbody></table>`;
}

function colorMap(suite: SuiteResult): Map<string, string> {
  const names = [...new Set(suite.groups.flatMap((g) => g.rows.map((r) => r.name)))];
  return new Map(names.map((n, i) => [n, PALETTE[i % PALETTE.length] ?? '#333']));
}

function sweepCharts(suite: SuiteResult, groups: readonly GroupResult[]): string {
  const colors = colorMap(suite);
  const rowNames = [...colors.keys()];
  const unit = groups[0]?.rows[0]?.unit ?? '';
  const rates: Series[] = rowNames.map((name) => ({
    name,
    color: colors.get(name) ?? '#333',
    dashed: groups.some((g) => g.rows.some((r) => r.name === name && r.role !== 'subject')),
    points: groups.flatMap((g) => {
      const r = g.rows.find((x) => x.name === name);
      return r === undefined || g.bytes === undefined
        ? []
        : [{ x: g.bytes, y: r.rate.median, yMin: r.rate.min, yMax: r.rate.max }];
    }),
  }));
  const ratioNames = [...new Set(groups.flatMap((g) => g.ratios.map((r) => r.name)))];
  const ratios: Series[] = ratioNames.map((name, i) => ({
    name,
    color: PALETTE[i % PALETTE.length] ?? '#333',
    points: groups.flatMap((g) => {
      const r = g.ratios.find((x) => x.name === name);
      return r === undefined || g.bytes === undefined
        ? []
        : [{ x: g.bytes, y: r.value.median, yMin: r.value.min, yMax: r.value.max }];
    }),
  }));
  return (
    lineChart({
      title: `${suite.name}: throughput vs size`,
      yLabel: `${unit}/s`,
      series: rates,
      xFormat: bytes,
      yFormat: si,
    }) +
    lineChart({
      title: `${suite.name}: ratios vs size (1 = parity)`,
      yLabel: 'ratio',
      series: ratios,
      xFormat: bytes,
      yFormat: ratio,
      hline: { y: 1, label: 'parity' },
    })
  );
}

function groupBars(suite: SuiteResult, group: GroupResult): string {
  const colors = colorMap(suite);
  const unit = group.rows[0]?.unit ?? '';
  return barChart({
    title: `${suite.name}: ${group.name}`,
    unitLabel: `${unit}/s`,
    format: si,
    bars: group.rows.map((r) => ({
      label: r.role === 'subject' ? r.name : `${r.name} (${r.role})`,
      value: r.rate.median,
      min: r.rate.min,
      max: r.rate.max,
      color: colors.get(r.name) ?? '#333',
    })),
  });
}

function suiteTableHtml(suite: SuiteResult): string {
  if (suite.groups.length === 0) return '';
  const body = suite.groups
    .map((g) =>
      g.rows
        .map((r, i) => {
          const ratios = g.ratios
            .filter((x) => x.subject === r.name)
            .map(
              (x) =>
                `÷ ${esc(x.baseline)}: <b>${ratio(x.value.median)}</b> <span class="muted">(${ratio(x.value.min)}–${ratio(x.value.max)})</span>`,
            )
            .join('<br>');
          return `<tr><td>${i === 0 ? esc(g.name) : ''}</td><td>${esc(r.name)}${r.role === 'subject' ? '' : ` <span class="muted">(${r.role})</span>`}</td><td class="num">${si(r.rate.median)} ${esc(r.unit)}/s</td><td class="num">${si(r.rate.min)}–${si(r.rate.max)}</td><td class="num">${ms(r.iterationMs.median)}</td><td class="num">${r.reps.reduce((n, x) => n + x.samples, 0)}</td><td>${ratios}</td></tr>`;
        })
        .join(''),
    )
    .join('');
  return `<table><thead><tr><th>group</th><th>row</th><th>median</th><th>min–max</th><th>iteration</th><th>samples</th><th>ratios (median, min–max over reps)</th></tr></thead><tbody>${body}</tbody></table>`;
}

function suiteSection(suite: SuiteResult): string {
  const sweep = suite.groups.filter((g) => g.bytes !== undefined);
  const charts =
    sweep.length >= 2 && sweep.length === suite.groups.length
      ? sweepCharts(suite, sweep)
      : suite.groups.map((g) => groupBars(suite, g)).join('');
  const measures =
    suite.measures.length === 0
      ? ''
      : `<table><thead><tr><th>measure</th><th>value</th><th>detail</th></tr></thead><tbody>${suite.measures
          .map(
            (m) =>
              `<tr><td>${esc(m.name)}</td><td class="num">${m.unit === 'ratio' ? `${(m.value * 100).toFixed(3)}%` : `${m.value} ${esc(m.unit)}`}</td><td>${esc(m.detail ?? '')}</td></tr>`,
          )
          .join('')}</tbody></table>`;
  const lines = suite.lines.length === 0 ? '' : `<pre>${esc(suite.lines.join('\n'))}</pre>`;
  const notes =
    suite.notes.length === 0
      ? ''
      : `<ul>${suite.notes.map((n) => `<li>${esc(n)}</li>`).join('')}</ul>`;
  const g = suite.integrity;
  const integrity = `<p class="${g.ok ? 'PASS' : 'MISS'}">integrity: invariants ${esc(g.invariants)}; freeFrames ${g.freeFramesAfterBoot} after boot → ${g.freeFramesAtEnd} at end${g.leakedFrames === 0 ? ' (no leak)' : ` (leak: ${g.leakedFrames} frames)`}</p>`;
  return `<section id="${esc(suite.name)}"><h2>${esc(suite.name)}: ${esc(suite.title)}</h2><p class="muted">${(suite.durationMs / 1000).toFixed(1)} s</p>${charts}${suiteTableHtml(suite)}${measures}${lines}${notes}${integrity}</section>`;
}

/** The whole report page for `run`. Context: any thread; pure. */
export function reportHtml(run: BenchRun): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>sabvm bench — ${esc(run.startedAt)}</title><style>${STYLE}</style></head>
<body><h1>sabvm bench</h1>
<p class="muted">${esc(run.startedAt)} · ${esc(runHeader(run.machine, run.config))} · suites: ${esc(run.config.suites.join(', '))}</p>
<p>Every row of a group is measured rep by rep, interleaved with the others in a rotating order; a row's figure is the median over the reps of its median iteration (whiskers: fastest and slowest rep). Ratios are taken within each rep, then summarised. Dashed lines are baselines and controls.</p>
${targetsSection(run.targets)}
${run.suites.map(suiteSection).join('\n')}
</body></html>
`;
}
