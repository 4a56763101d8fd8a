/**
 * Number formatting shared by the terminal tables, the HTML report and `--compare`.
 *
 * @module
 */

const SI = ['', 'k', 'M', 'G', 'T'] as const;

/** `1234567` → `1.23 M`: three significant digits with an SI prefix. Context: any; pure. */
export function si(value: number): string {
  if (!Number.isFinite(value)) return String(value);
  let v = Math.abs(value);
  let i = 0;
  while (v >= 1000 && i < SI.length - 1) {
    v /= 1000;
    i++;
  }
  const digits = v >= 100 ? 0 : v >= 10 ? 1 : 2;
  return `${value < 0 ? '-' : ''}${v.toFixed(digits)}${SI[i] === '' ? '' : ` ${SI[i]}`}`;
}

/** A byte count as `4 KiB`, `16 MiB`, `1 GiB` (whole binary units where exact). Context: any; pure. */
export function bytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB'] as const;
  let v = n;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${Number.isInteger(v) ? v : v.toFixed(1)} ${units[i]}`;
}

/** A ratio as `×2.31` (three significant digits). Context: any; pure. */
export function ratio(value: number): string {
  if (!Number.isFinite(value)) return `×${value}`;
  const a = Math.abs(value);
  const digits = a >= 100 ? 0 : a >= 10 ? 1 : a >= 1 ? 2 : 3;
  return `×${value.toFixed(digits)}`;
}

/** Milliseconds as `812 µs`, `3.40 ms`, `1.21 s`. Context: any; pure. */
export function ms(value: number): string {
  if (value < 1) return `${(value * 1000).toPrecision(3)} µs`;
  if (value < 1000) return `${value.toPrecision(3)} ms`;
  return `${(value / 1000).toPrecision(3)} s`;
}

/** A relative change as `+12.3%` / `-4.0%`. Context: any; pure. */
export function percent(change: number): string {
  const p = change * 100;
  return `${p >= 0 ? '+' : ''}${p.toFixed(1)}%`;
}
