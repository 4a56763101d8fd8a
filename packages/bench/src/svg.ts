/**
 * Inline SVG charts for the HTML report: throughput (or a ratio) against size on log–log axes,
 * and horizontal bars on a log axis. Plain strings, no dependencies, no external assets.
 *
 * @module
 */

/** One point of a series: a median and its min–max spread. */
export interface Point {
  readonly x: number;
  readonly y: number;
  readonly yMin: number;
  readonly yMax: number;
}

/** A named line of a chart. */
export interface Series {
  readonly name: string;
  readonly color: string;
  readonly points: readonly Point[];
  /** Drawn dashed (baselines and controls). */
  readonly dashed?: boolean;
}

/** A horizontal bar. */
export interface Bar {
  readonly label: string;
  readonly value: number;
  readonly min: number;
  readonly max: number;
  readonly color: string;
}

/** Distinct colours for series, in order. */
export const PALETTE: readonly string[] = [
  '#1f77b4',
  '#d62728',
  '#2ca02c',
  '#ff7f0e',
  '#9467bd',
  '#8c564b',
  '#e377c2',
  '#17becf',
];

/** A tick label without trailing zeros: `10.0 G` → `10 G`, `×0.100` → `×0.1`. */
function tidy(label: string): string {
  return label.replace(/(\.\d*?)0+(?!\d)/g, '$1').replace(/\.(?!\d)/g, '');
}

/** Escape text for HTML and SVG. Context: any; pure. */
export function esc(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

const W = 820;
const H = 340;
const M = { left: 78, right: 280, top: 34, bottom: 52 };

function logRange(values: readonly number[]): [number, number] {
  const finite = values.filter((v) => Number.isFinite(v) && v > 0);
  if (finite.length === 0) return [0, 1];
  let lo = Math.floor(Math.log10(Math.min(...finite)));
  let hi = Math.ceil(Math.log10(Math.max(...finite)));
  if (hi === lo) {
    lo -= 1;
    hi += 1;
  }
  return [lo, hi];
}

/**
 * A log–log line chart: x is size, y is rate or ratio; each point carries a min–max bar.
 * `hline` draws a horizontal reference (e.g. a target ratio). Context: any; pure.
 */
export function lineChart(opts: {
  readonly title: string;
  readonly yLabel: string;
  readonly series: readonly Series[];
  readonly xFormat: (x: number) => string;
  readonly yFormat: (y: number) => string;
  readonly hline?: { readonly y: number; readonly label: string };
}): string {
  const xs = [...new Set(opts.series.flatMap((s) => s.points.map((p) => p.x)))].sort(
    (a, b) => a - b,
  );
  const ys = opts.series.flatMap((s) => s.points.flatMap((p) => [p.yMin, p.yMax]));
  if (opts.hline !== undefined) ys.push(opts.hline.y);
  const [ylo, yhi] = logRange(ys);
  const [xlo, xhi] = [Math.log2(xs[0] ?? 1), Math.log2(xs[xs.length - 1] ?? 2)];
  const pw = W - M.left - M.right;
  const ph = H - M.top - M.bottom;
  const px = (x: number): number =>
    M.left + (xhi === xlo ? pw / 2 : ((Math.log2(x) - xlo) / (xhi - xlo)) * pw);
  const py = (y: number): number =>
    M.top + ph - ((Math.log10(Math.max(y, 1e-300)) - ylo) / (yhi - ylo)) * ph;
  const parts: string[] = [];
  parts.push(`<text x="${M.left}" y="20" class="title">${esc(opts.title)}</text>`);
  for (let e = ylo; e <= yhi; e++) {
    const y = py(10 ** e);
    parts.push(`<line x1="${M.left}" x2="${M.left + pw}" y1="${y}" y2="${y}" class="grid"/>`);
    parts.push(
      `<text x="${M.left - 6}" y="${y + 4}" class="tick" text-anchor="end">${esc(tidy(opts.yFormat(10 ** e)))}</text>`,
    );
  }
  for (const x of xs) {
    parts.push(`<line x1="${px(x)}" x2="${px(x)}" y1="${M.top}" y2="${M.top + ph}" class="grid"/>`);
    parts.push(
      `<text x="${px(x)}" y="${M.top + ph + 16}" class="tick" text-anchor="middle">${esc(opts.xFormat(x))}</text>`,
    );
  }
  parts.push(
    `<text x="${M.left + pw / 2}" y="${H - 10}" class="axis" text-anchor="middle">size (log scale)</text>`,
  );
  parts.push(
    `<text transform="translate(14 ${M.top + ph / 2}) rotate(-90)" class="axis" text-anchor="middle">${esc(opts.yLabel)} (log scale)</text>`,
  );
  if (opts.hline !== undefined) {
    const y = py(opts.hline.y);
    parts.push(`<line x1="${M.left}" x2="${M.left + pw}" y1="${y}" y2="${y}" class="target"/>`);
    parts.push(
      `<text x="${M.left + pw - 4}" y="${y - 4}" class="tick" text-anchor="end">${esc(opts.hline.label)}</text>`,
    );
  }
  opts.series.forEach((s, i) => {
    const pts = s.points.filter((p) => p.y > 0 && Number.isFinite(p.y));
    const path = pts
      .map((p, j) => `${j === 0 ? 'M' : 'L'}${px(p.x).toFixed(1)},${py(p.y).toFixed(1)}`)
      .join(' ');
    const dash = s.dashed === true ? ' stroke-dasharray="6 4"' : '';
    parts.push(`<path d="${path}" fill="none" stroke="${s.color}" stroke-width="2"${dash}/>`);
    for (const p of pts) {
      const x = px(p.x).toFixed(1);
      parts.push(
        `<line x1="${x}" x2="${x}" y1="${py(p.yMin).toFixed(1)}" y2="${py(p.yMax).toFixed(1)}" stroke="${s.color}" stroke-width="1.5"/>`,
        `<circle cx="${x}" cy="${py(p.y).toFixed(1)}" r="3.5" fill="${s.color}"><title>${esc(`${s.name} @ ${opts.xFormat(p.x)}: ${opts.yFormat(p.y)} (${opts.yFormat(p.yMin)}–${opts.yFormat(p.yMax)})`)}</title></circle>`,
      );
    }
    const ly = M.top + 8 + i * 18;
    parts.push(
      `<line x1="${W - M.right + 14}" x2="${W - M.right + 38}" y1="${ly}" y2="${ly}" stroke="${s.color}" stroke-width="2"${dash}/>`,
      `<text x="${W - M.right + 44}" y="${ly + 4}" class="legend">${esc(s.name)}</text>`,
    );
  });
  return `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" role="img" aria-label="${esc(opts.title)}">${parts.join('')}</svg>`;
}

/** Horizontal bars on a log axis, with min–max whiskers. Context: any; pure. */
export function barChart(opts: {
  readonly title: string;
  readonly unitLabel: string;
  readonly bars: readonly Bar[];
  readonly format: (v: number) => string;
}): string {
  const labelW = 300;
  const rowH = 24;
  const width = W;
  const height = 44 + opts.bars.length * rowH + 30;
  const [lo, hi] = logRange(opts.bars.flatMap((b) => [b.min, b.max]));
  const pw = width - labelW - 90;
  const px = (v: number): number =>
    labelW + ((Math.log10(Math.max(v, 1e-300)) - lo) / (hi - lo)) * pw;
  const parts: string[] = [`<text x="8" y="20" class="title">${esc(opts.title)}</text>`];
  const axisY = 36 + opts.bars.length * rowH;
  for (let e = lo; e <= hi; e++) {
    const x = px(10 ** e);
    parts.push(`<line x1="${x}" x2="${x}" y1="32" y2="${axisY}" class="grid"/>`);
    parts.push(
      `<text x="${x}" y="${axisY + 14}" class="tick" text-anchor="middle">${esc(tidy(opts.format(10 ** e)))}</text>`,
    );
  }
  parts.push(
    `<text x="${labelW + pw / 2}" y="${height - 4}" class="axis" text-anchor="middle">${esc(opts.unitLabel)} (log scale)</text>`,
  );
  opts.bars.forEach((b, i) => {
    const y = 36 + i * rowH;
    const x0 = px(10 ** lo);
    parts.push(
      `<text x="${labelW - 8}" y="${y + 15}" class="legend" text-anchor="end">${esc(b.label)}</text>`,
      `<rect x="${x0}" y="${y + 4}" width="${Math.max(1, px(b.value) - x0).toFixed(1)}" height="${rowH - 8}" fill="${b.color}" opacity="0.85"><title>${esc(`${b.label}: ${opts.format(b.value)} (${opts.format(b.min)}–${opts.format(b.max)})`)}</title></rect>`,
      `<line x1="${px(b.min).toFixed(1)}" x2="${px(b.max).toFixed(1)}" y1="${y + rowH / 2}" y2="${y + rowH / 2}" stroke="#222" stroke-width="1.5"/>`,
      `<text x="${(px(b.value) + 6).toFixed(1)}" y="${y + 15}" class="tick">${esc(opts.format(b.value))}</text>`,
    );
  });
  return `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${width} ${height}" width="${width}" height="${height}" role="img" aria-label="${esc(opts.title)}">${parts.join('')}</svg>`;
}
