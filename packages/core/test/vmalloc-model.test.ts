import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { Kernel, PAGE_SIZE, VM_ALLOC, VM_USERMAP, VMALLOC_START } from '../src/index.js';

/** The reference model: live areas by kaddr, with the bytes they must hold. */
interface ModelArea {
  nrPages: number;
  flags: number;
  data: Uint8Array;
}
type Model = Map<number, ModelArea>;

type Op =
  | {
      kind: 'alloc';
      which: 'vmalloc' | 'vzalloc' | 'vmallocUser';
      pages: number;
      contiguous: boolean;
    }
  | { kind: 'free'; pick: number }
  | { kind: 'badFree'; pick: number; offset: number }
  | { kind: 'write'; pick: number; at: number; bytes: Uint8Array };

const MAX_PAGES = 6;

const opArb: fc.Arbitrary<Op> = fc.oneof(
  fc.record({
    kind: fc.constant('alloc' as const),
    which: fc.constantFrom('vmalloc' as const, 'vzalloc' as const, 'vmallocUser' as const),
    pages: fc.integer({ min: 1, max: MAX_PAGES }),
    contiguous: fc.boolean(),
  }),
  fc.record({ kind: fc.constant('free' as const), pick: fc.nat() }),
  fc.record({
    kind: fc.constant('badFree' as const),
    pick: fc.nat(),
    offset: fc.integer({ min: 1, max: MAX_PAGES * PAGE_SIZE }),
  }),
  fc.record({
    kind: fc.constant('write' as const),
    pick: fc.nat(),
    at: fc.nat(),
    bytes: fc.uint8Array({ minLength: 1, maxLength: 2 * PAGE_SIZE }),
  }),
);

/** The kaddr of the lowest gap of `need` vmalloc pages, from the model's areas. */
function lowestFit(k: Kernel, model: Model, need: number): number {
  let end = 0;
  for (const [kaddr, area] of [...model].sort((a, b) => a[0] - b[0])) {
    const start = (kaddr - VMALLOC_START) / PAGE_SIZE;
    if (start - end >= need) break;
    end = start + area.nrPages + 1;
  }
  expect(end + need).toBeLessThanOrEqual(k.layout.vmallocPages);
  return VMALLOC_START + end * PAGE_SIZE;
}

function nth(model: Model, pick: number): [number, ModelArea] | undefined {
  const keys = [...model.keys()].sort((a, b) => a - b);
  if (keys.length === 0) return undefined;
  const k = keys[pick % keys.length]!;
  return [k, model.get(k)!];
}

function step(k: Kernel, model: Model, op: Op): void {
  switch (op.kind) {
    case 'alloc': {
      // rounding up to pages is part of it
      const kaddr = k[op.which](op.pages * PAGE_SIZE - 1, { contiguous: op.contiguous });
      if (kaddr === null) return; // out of memory is allowed; the comparison below checks nothing leaked
      if (op.contiguous) {
        const first = k.vmallocToPfn(kaddr)!;
        for (let i = 1; i < op.pages; i++)
          expect(k.vmallocToPfn(kaddr + i * PAGE_SIZE)).toBe(first + i);
      }
      expect(model.has(kaddr)).toBe(false);
      // lowest-address first fit, guard pages included, whatever the search cache remembers
      expect(kaddr).toBe(lowestFit(k, model, op.pages + 1));
      const data =
        op.which === 'vmalloc'
          ? k.readKernel(kaddr, op.pages * PAGE_SIZE)
          : new Uint8Array(op.pages * PAGE_SIZE);
      const flags = VM_ALLOC | (op.which === 'vmallocUser' ? VM_USERMAP : 0);
      model.set(kaddr, { nrPages: op.pages, flags, data });
      return;
    }
    case 'free': {
      const hit = nth(model, op.pick);
      if (!hit) return;
      k.vfree(hit[0]);
      model.delete(hit[0]);
      return;
    }
    case 'badFree': {
      const hit = nth(model, op.pick);
      const before = k.stats().badFrees;
      const addr = hit ? hit[0] + (op.offset % ((hit[1].nrPages + 1) * PAGE_SIZE) || 1) : 12345;
      k.vfree(addr);
      expect(k.stats().badFrees).toBe(before + 1);
      return;
    }
    case 'write': {
      const hit = nth(model, op.pick);
      if (!hit) return;
      const [kaddr, area] = hit;
      const at = op.at % area.data.length;
      const bytes = op.bytes.subarray(0, area.data.length - at);
      k.writeKernel(kaddr + at, bytes);
      area.data.set(bytes, at);
      return;
    }
  }
}

function compare(k: Kernel, model: Model, bootFree: number): void {
  const areas = k.vmallocAreas();
  expect(areas.map((a) => a.addr)).toEqual([...model.keys()].sort((a, b) => a - b));
  let pages = 0;
  for (const a of areas) {
    const m = model.get(a.addr)!;
    expect(a).toEqual({
      addr: a.addr,
      size: (m.nrPages + 1) * PAGE_SIZE,
      nrPages: m.nrPages,
      flags: m.flags,
    });
    // Buffer.equals: vitest's deep equality walks typed arrays element by element, far too slowly
    expect(
      Buffer.from(k.readKernel(a.addr, m.data.length)).equals(m.data),
      `bytes of ${a.addr}`,
    ).toBe(true);
    pages += m.nrPages;
  }
  expect(k.stats().freeFrames).toBe(bootFree - pages);
  k.checkInvariants();
}

describe('vmalloc against a reference model', () => {
  it('keeps areas, contents and the free-frame count equal to the model after every step', () => {
    fc.assert(
      fc.property(fc.array(opArb, { minLength: 1, maxLength: 60 }), (ops) => {
        const k = Kernel.boot({ memoryBytes: 256 * PAGE_SIZE, maxAreas: 24 });
        const bootFree = k.stats().freeFrames;
        const model: Model = new Map();
        for (const op of ops) {
          step(k, model, op);
          compare(k, model, bootFree);
        }
        for (const kaddr of model.keys()) k.vfree(kaddr);
        expect(k.stats().freeFrames).toBe(bootFree);
      }),
      { numRuns: 300 },
    );
  });
});
