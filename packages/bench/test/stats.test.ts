import { describe, expect, it } from 'vitest';
import { ratioResult, rotate, spread, type RowResult } from '../src/index.js';

function row(name: string, rates: number[]): RowResult {
  return {
    name,
    role: 'subject',
    unit: 'ops',
    unitsPerIteration: 1,
    rate: spread(rates),
    iterationMs: spread(rates.map((r) => 1000 / r)),
    reps: rates.map((rate, position) => ({
      position,
      samples: 1,
      meanMs: 1000 / rate,
      p50Ms: 1000 / rate,
      p75Ms: 1000 / rate,
      p99Ms: 1000 / rate,
      minMs: 1000 / rate,
      maxMs: 1000 / rate,
      sdMs: 0,
      rme: 0,
      rate,
    })),
  };
}

describe('order statistics', () => {
  it('take the middle value, or the mean of the two middle values', () => {
    expect(spread([5, 1, 3]).median).toBe(3);
    expect(spread([4, 1, 3, 2])).toMatchObject({ median: 2.5, min: 1, max: 4, mean: 2.5, n: 4 });
    expect(() => spread([])).toThrow(RangeError);
  });

  it('rotate the order of the rows so that each takes every position in turn', () => {
    const rows = ['a', 'b', 'c'];
    const firsts = [0, 1, 2].map((rep) => rotate(rows, rep)[0]);
    expect(firsts).toEqual(rows);
    expect(rotate(rows, 4)).toEqual(['b', 'c', 'a']);
  });
});

describe('ratios', () => {
  it('are taken rep pair by rep pair, so a slow rep hits both sides instead of one', () => {
    // Rep 2 ran while the machine was busy: both rows slowed down together.
    const subject = row('s', [200, 100, 20]);
    const baseline = row('b', [100, 50, 10]);
    const r = ratioResult({ name: 's ÷ b', subject: 's', baseline: 'b', kind: 'throughput' }, [
      subject,
      baseline,
    ]);
    expect(r.perRep).toEqual([2, 2, 2]);
    expect(r.value).toMatchObject({ median: 2, min: 2, max: 2 });
  });

  it('of kind time are the subject time per unit over the baseline time per unit', () => {
    const r = ratioResult({ name: 't', subject: 's', baseline: 'b', kind: 'time' }, [
      row('s', [10, 20]),
      row('b', [40, 40]),
    ]);
    expect(r.perRep).toEqual([4, 2]);
  });

  it('name a missing row instead of computing nonsense', () => {
    expect(() =>
      ratioResult({ name: 'x', subject: 's', baseline: 'nope', kind: 'throughput' }, [
        row('s', [1]),
      ]),
    ).toThrow(/nope/);
  });
});
