import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { PAGE_SIZE } from '@sabvm/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  compareRuns,
  harnessSettings,
  loadRun,
  RESULT_SCHEMA,
  runBench,
  TARGETS,
  type BenchOutcome,
  type BenchRun,
} from '../src/index.js';
import { REMAP_ROWS, REMAP_SIZES_PAGES } from '../src/suites/remap.js';

const outDir = mkdtempSync(join(tmpdir(), 'sabvm-bench-test-'));
let outcome: BenchOutcome;
let printed = '';

beforeAll(async () => {
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      printed += chunk.toString();
      done();
    },
  });
  outcome = await runBench({ outDir, quick: true, suites: ['remap'], out: sink });
});

afterAll(() => {
  rmSync(outDir, { recursive: true, force: true });
});

describe('a quick run of the remap suite', () => {
  it('writes a JSON file whose machine, config and suite sections have the documented shape', () => {
    const run = JSON.parse(readFileSync(outcome.jsonPath, 'utf8')) as BenchRun;
    expect(run.schema).toBe(RESULT_SCHEMA);
    expect(run.machine.cpus).toBeGreaterThan(0);
    expect(run.machine.model.length).toBeGreaterThan(0);
    expect(run.machine.node).toBe(process.version);
    expect(run.machine.loadAverageAtStart).toHaveLength(3);
    // a word to another thread and back: above a plain load, below a millisecond (none on 1 CPU)
    // null on one CPU, and where the probe gave up: its two threads never ran together for 10 s
    // (npm test runs every package's tests at once, which can load 2 CPUs that much)
    if (availableParallelism() < 2) expect(run.machine.lineRoundTripNs).toBeNull();
    else if (run.machine.lineRoundTripNs !== null) {
      expect(run.machine.lineRoundTripNs).toBeGreaterThan(1);
      expect(run.machine.lineRoundTripNs).toBeLessThan(1e6);
    }
    expect(run.config).toMatchObject({ quick: true, suites: ['remap'], ...harnessSettings(true) });
    expect(run.suites.map((s) => s.name)).toEqual(['remap']);
    const suite = run.suites[0]!;
    expect(suite.groups.map((g) => g.bytes)).toEqual(REMAP_SIZES_PAGES.map((p) => p * PAGE_SIZE));
    expect(suite.integrity).toMatchObject({ invariants: 'ok', leakedFrames: 0, ok: true });
  });

  it('keeps every rep of every row, with rates derived from the median iteration', () => {
    const run = loadRun(outcome.jsonPath);
    const { reps } = run.config;
    for (const group of run.suites[0]!.groups) {
      // the "4 KiB PTEs only" rows exist from one huge entry's worth (4 MiB) on
      const small = (group.bytes ?? 0) < 4 * 2 ** 20;
      const ptesOnly: string[] = [REMAP_ROWS.remapPtes, REMAP_ROWS.munmapPtes];
      expect(group.rows.map((r) => r.name)).toEqual(
        Object.values(REMAP_ROWS).filter((name) => !(small && ptesOnly.includes(name))),
      );
      for (const row of group.rows) {
        expect(row.reps).toHaveLength(reps);
        expect(new Set(row.reps.map((r) => r.position)).size).toBeGreaterThan(1);
        for (const rep of row.reps) {
          expect(rep.samples).toBeGreaterThanOrEqual(run.config.iterations);
          expect(rep.minMs).toBeLessThanOrEqual(rep.p50Ms);
          expect(rep.p50Ms).toBeLessThanOrEqual(rep.maxMs);
          expect(rep.rate).toBeCloseTo(row.unitsPerIteration / (rep.p50Ms / 1000), 6);
        }
        expect(row.rate.min).toBeLessThanOrEqual(row.rate.median);
        expect(row.rate.median).toBeLessThanOrEqual(row.rate.max);
      }
    }
  });

  it('computes each ratio rep pair by rep pair from the rows of that rep', () => {
    const run = loadRun(outcome.jsonPath);
    for (const group of run.suites[0]!.groups) {
      expect(group.ratios.length).toBeGreaterThan(0);
      for (const ratio of group.ratios) {
        const subject = group.rows.find((r) => r.name === ratio.subject)!;
        const baseline = group.rows.find((r) => r.name === ratio.baseline)!;
        expect(ratio.perRep).toHaveLength(run.config.reps);
        ratio.perRep.forEach((value, i) => {
          expect(value).toBeCloseTo(subject.reps[i]!.rate / baseline.reps[i]!.rate, 9);
        });
        expect(ratio.value.min).toBeLessThanOrEqual(ratio.value.median);
        expect(ratio.value.median).toBeLessThanOrEqual(ratio.value.max);
      }
    }
  });

  it('evaluates the remap targets and marks the targets of suites that did not run as n/a', () => {
    const run = loadRun(outcome.jsonPath);
    expect(run.targets.map((t) => t.id)).toEqual(TARGETS.map((t) => t.id));
    for (const t of run.targets) {
      const remap = TARGETS.find((x) => x.id === t.id)!.source.suite === 'remap';
      expect(t.status).toBe(
        remap
          ? (t.op === '>=' ? t.value! >= t.threshold : t.value! <= t.threshold)
            ? 'PASS'
            : 'MISS'
          : 'n/a',
      );
    }
  });

  it('writes a self-contained HTML report with inline SVG charts', () => {
    expect(existsSync(outcome.htmlPath)).toBe(true);
    const html = readFileSync(outcome.htmlPath, 'utf8');
    expect(html).toContain('<svg');
    expect(html).toContain('remap: throughput vs size');
    expect(html).toContain('<h2>Targets</h2>');
    expect(html).not.toMatch(/issue/i);
    expect(html).not.toMatch(/<script[^>]+src=|<link[^>]+href=|url\(http/);
  });

  it('prints a table with the raw rates and the ratios next to them, then the targets', () => {
    expect(printed).toContain('── remap:');
    expect(printed).toMatch(/remapPartial\s+[\d.]+ [kMG]? ?pages\/s/);
    expect(printed).toContain('÷ Atomics.compareExchange: ×');
    expect(printed).toContain('── targets ──');
    if (availableParallelism() >= 2)
      expect(printed).toMatch(/thread round trip (\d+ ns|not measured \(machine loaded\))/);
    expect(printed).not.toMatch(/issue/i);
  });
});

describe('--compare', () => {
  it('prints the change of every row, ratio and target between two runs', () => {
    const a = loadRun(outcome.jsonPath);
    const doubled = structuredClone(a) as BenchRun & {
      suites: { groups: { rows: { rate: { median: number; min: number; max: number } }[] }[] }[];
    };
    const row = doubled.suites[0]!.groups[0]!.rows[0]!;
    row.rate = {
      ...row.rate,
      median: row.rate.median * 2,
      min: row.rate.max * 3,
      max: row.rate.max * 4,
    };
    const bPath = join(outDir, 'b.json');
    writeFileSync(bPath, JSON.stringify(doubled));
    const text = compareRuns(a, loadRun(bPath));
    expect(text).toMatch(
      /remap +1 page +remapPartial +[\d.]+ ?[kMG]?\/s +[\d.]+ ?[kMG]?\/s +\+100\.0% +up/,
    );
    expect(text).toContain('── targets (both runs judged by the current definitions) ──');
  });

  it('is reachable from the command line and refuses a file that is not a bench run', () => {
    const cli = fileURLToPath(new URL('../dist/cli.js', import.meta.url));
    const text = execFileSync(
      process.execPath,
      [cli, '--compare', outcome.jsonPath, outcome.jsonPath],
      {
        encoding: 'utf8',
      },
    );
    expect(text).toContain('── ratios ──');
    const bogus = join(outDir, 'bogus.json');
    writeFileSync(bogus, '{"hello":1}');
    expect(() => loadRun(bogus)).toThrow(/not a sabvm-bench\/1 result file/);
  });
});
