import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { computeLayout, PAGE_SIZE, type Layout } from '../src/index.js';
import { SIZEOF_CACHE_LINE } from '../src/layout.js';

/** The regions of a layout in memory order, as [name, start, end) byte ranges. */
function regions(l: Layout): [string, number, number][] {
  return [
    ['header', l.headerOffset, l.frameTableOffset],
    ['frameTable', l.frameTableOffset, l.frameBitmapOffset],
    ['frameBitmap', l.frameBitmapOffset, l.areaTableOffset],
    ['areaTable', l.areaTableOffset, l.areaMapOffset],
    ['areaMap', l.areaMapOffset, l.kernelPageTableOffset],
    ['kernelPageTable', l.kernelPageTableOffset, l.vmaTableOffset],
    ['vmaTable', l.vmaTableOffset, l.mmTableOffset],
    ['mmTable', l.mmTableOffset, l.metadataBytes],
  ];
}

describe('computeLayout', () => {
  it('lays regions out in order, aligned, without overlap, inside the metadata frames', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 64, max: 2 ** 21 }),
        fc.option(fc.integer({ min: 1, max: 50_000 }), { nil: undefined }),
        fc.option(fc.integer({ min: 1, max: 50_000 }), { nil: undefined }),
        fc.option(fc.integer({ min: 1, max: 4096 }), { nil: undefined }),
        fc.integer({ min: 0, max: PAGE_SIZE - 1 }),
        (frames, maxAreas, maxVmas, maxAddressSpaces, extraBytes) => {
          let l: Layout;
          try {
            l = computeLayout({
              memoryBytes: frames * PAGE_SIZE + extraBytes,
              ...(maxAreas === undefined ? {} : { maxAreas }),
              ...(maxVmas === undefined ? {} : { maxVmas }),
              ...(maxAddressSpaces === undefined ? {} : { maxAddressSpaces }),
            });
          } catch (e) {
            // Only a memory too small for its own metadata may be refused.
            expect(e).toBeInstanceOf(RangeError);
            expect((e as Error).message).toMatch(/too small/);
            return;
          }
          expect(l.totalFrames).toBe(frames);
          const rs = regions(l);
          for (const [name, start, end] of rs) {
            expect(start % SIZEOF_CACHE_LINE, name).toBe(0);
            expect(end, name).toBeGreaterThanOrEqual(start);
          }
          for (let i = 1; i < rs.length; i++) expect(rs[i]![1]).toBe(rs[i - 1]![2]);
          expect(l.metadataBytes % PAGE_SIZE).toBe(0);
          expect(l.metadataFrames).toBe(l.metadataBytes / PAGE_SIZE);
          expect(l.metadataFrames).toBeLessThan(l.totalFrames);
          // the region sizes follow from the counts
          expect(rs[1]![2] - rs[1]![1]).toBeGreaterThanOrEqual(l.totalFrames * 8);
          expect(rs[2]![2] - rs[2]![1]).toBeGreaterThanOrEqual(Math.ceil(l.totalFrames / 32) * 4);
          expect(rs[5]![2] - rs[5]![1]).toBeGreaterThanOrEqual(l.vmallocPages * 4);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('is a pure function of its config', () => {
    const a = computeLayout({ memoryBytes: 64 * 2 ** 20 });
    const b = computeLayout({ memoryBytes: 64 * 2 ** 20 });
    expect(a).toEqual(b);
  });

  it('keeps the metadata of 4 GiB of physical memory under 1% of it', () => {
    const l = computeLayout({ memoryBytes: 4 * 2 ** 30 });
    expect(l.metadataBytes / (4 * 2 ** 30)).toBeLessThan(0.01);
  });

  it.each([0, -1, -PAGE_SIZE, Number.NaN, Number.POSITIVE_INFINITY, 100, 2 ** 50])(
    'rejects memoryBytes %s with a RangeError',
    (memoryBytes) => {
      expect(() => computeLayout({ memoryBytes })).toThrow(RangeError);
    },
  );

  it('rejects a memoryBytes that is not a number with a TypeError', () => {
    expect(() => computeLayout({ memoryBytes: '4096' as unknown as number })).toThrow(TypeError);
  });
});
