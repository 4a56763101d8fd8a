/**
 * The vmalloc family's options against a reference model of physical memory: contiguous areas
 * (one run exactly when the model has a free run that long), zeroed allocations over reused and
 * never-used frames (the frame table's zeroed/dirty marks as the model predicts them), typed views
 * of areas (`kernel.view`: the model's bytes when the area is one run, a RangeError otherwise) and
 * `buddyinfo` (the model's free frames cut into buddy blocks). Sizes reach past 4 MiB, so the
 * large-area path (runs from the top of memory, 4 MiB aligned when possible) is modelled too.
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { Kernel, PAGE_SIZE } from '../src/index.js';
import { frameOwner } from '../src/frame-alloc.js';
import { FREE_DIRTY, FREE_ZEROED } from '../src/layout.js';

type Alloc = 'vmalloc' | 'vzalloc' | 'vmallocUser';
const TYPES = [Uint8Array, Int16Array, Int32Array, Float32Array, Float64Array] as const;

type Op =
  | { kind: 'alloc'; which: Alloc; pages: number; contiguous: boolean }
  | { kind: 'free'; pick: number }
  | { kind: 'write'; pick: number; at: number; value: number }
  | { kind: 'view'; pick: number; type: number; write: boolean };

/** Frame state of the model: never handed out since boot, live in an area, or free and dirty. */
const enum F {
  FRESH = 0,
  LIVE = 1,
  DIRTY = 2,
  META = 3,
}

interface Area {
  readonly pfns: number[];
  readonly data: Uint8Array;
}

interface Model {
  readonly frames: F[];
  readonly areas: Map<number, Area>;
}

const opArb = (bigPages: readonly number[]): fc.Arbitrary<Op> =>
  fc.oneof(
    {
      weight: 3,
      arbitrary: fc.record({
        kind: fc.constant('alloc' as const),
        which: fc.constantFrom<Alloc>('vmalloc', 'vzalloc', 'vmallocUser'),
        pages: fc.oneof(fc.integer({ min: 1, max: 12 }), fc.constantFrom(...bigPages)),
        contiguous: fc.boolean(),
      }),
    },
    { weight: 2, arbitrary: fc.record({ kind: fc.constant('free' as const), pick: fc.nat() }) },
    {
      weight: 2,
      arbitrary: fc.record({
        kind: fc.constant('write' as const),
        pick: fc.nat(),
        at: fc.nat(),
        value: fc.integer({ min: 1, max: 255 }),
      }),
    },
    {
      weight: 2,
      arbitrary: fc.record({
        kind: fc.constant('view' as const),
        pick: fc.nat(),
        type: fc.nat({ max: TYPES.length - 1 }),
        write: fc.boolean(),
      }),
    },
  );

function nth(model: Model, pick: number): [number, Area] | undefined {
  const keys = [...model.areas.keys()].sort((a, b) => a - b);
  if (keys.length === 0) return undefined;
  const kaddr = keys[pick % keys.length]!;
  return [kaddr, model.areas.get(kaddr)!];
}

/** The longest run of free frames (fresh or dirty) in the model. */
function longestFreeRun(model: Model): number {
  let best = 0;
  let run = 0;
  for (const f of model.frames) {
    run = f === F.FRESH || f === F.DIRTY ? run + 1 : 0;
    best = Math.max(best, run);
  }
  return best;
}

/** Free blocks per order 0 … 10, as a buddy allocator would hold the model's free frames. */
function buddyBlocks(model: Model): number[] {
  const counts = new Array<number>(11).fill(0);
  const free = (pfn: number): boolean =>
    model.frames[pfn] === F.FRESH || model.frames[pfn] === F.DIRTY;
  for (let pfn = 0; pfn < model.frames.length;) {
    if (!free(pfn)) {
      pfn++;
      continue;
    }
    let end = pfn;
    while (end < model.frames.length && free(end)) end++;
    for (let at = pfn; at < end;) {
      let order = 10;
      while (order > 0 && (at % (1 << order) !== 0 || at + (1 << order) > end)) order--;
      counts[order]!++;
      at += 1 << order;
    }
    pfn = end;
  }
  return counts;
}

const isRun = (pfns: readonly number[]): boolean => pfns.every((p, i) => p === pfns[0]! + i);

function alloc(k: Kernel, model: Model, op: Extract<Op, { kind: 'alloc' }>): void {
  const freeBefore = k.stats().freeFrames;
  const kaddr = k[op.which](op.pages * PAGE_SIZE, { contiguous: op.contiguous });
  if (kaddr === null) {
    // contiguous: null exactly when no free run is long enough; otherwise only when short of
    // frames, area slots or vmalloc space — and a refusal takes nothing
    if (op.contiguous) expect(longestFreeRun(model)).toBeLessThan(op.pages);
    expect(k.stats().freeFrames).toBe(freeBefore);
    return;
  }
  const pfns = Array.from({ length: op.pages }, (_, i) => k.vmallocToPfn(kaddr + i * PAGE_SIZE)!);
  if (op.contiguous) expect(isRun(pfns), 'a contiguous area is one run').toBe(true);
  for (const pfn of pfns) {
    expect([F.FRESH, F.DIRTY], `frame ${pfn} handed out while not free`).toContain(
      model.frames[pfn],
    );
    model.frames[pfn] = F.LIVE;
  }
  const data =
    op.which === 'vmalloc'
      ? k.readKernel(kaddr, op.pages * PAGE_SIZE) // not zeroed: whatever the frames held
      : new Uint8Array(op.pages * PAGE_SIZE); // zeroed, reused frames included
  model.areas.set(kaddr, { pfns, data });
  expect(Buffer.from(k.readKernel(kaddr, data.length)).equals(data)).toBe(true);
}

function view(k: Kernel, model: Model, op: Extract<Op, { kind: 'view' }>): void {
  const hit = nth(model, op.pick);
  if (!hit) return;
  const [kaddr, area] = hit;
  const Type = TYPES[op.type]!;
  if (!isRun(area.pfns)) {
    expect(() => k.view(kaddr, area.data.length, Type)).toThrow(RangeError);
    expect(() => k.view(kaddr, area.data.length, Type)).toThrow(
      /not one physically contiguous run .*\{ contiguous: true \}/,
    );
    // one page of it is always one run
    expect(k.view(kaddr, PAGE_SIZE, Type).length).toBe(PAGE_SIZE / Type.BYTES_PER_ELEMENT);
    return;
  }
  const v = k.view(kaddr, area.data.length, Type);
  const bytes = new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
  expect(Buffer.from(bytes).equals(area.data), 'the view shows the area').toBe(true);
  if (op.write) {
    // zero-copy: a store through the view is what the kernel reads
    const last = v.length - 1;
    if (v instanceof Float32Array || v instanceof Float64Array) v[last] = 1.5;
    else v[last] = 7;
    area.data.set(
      bytes.subarray(bytes.length - Type.BYTES_PER_ELEMENT),
      bytes.length - Type.BYTES_PER_ELEMENT,
    );
    expect(Buffer.from(k.readKernel(kaddr, area.data.length)).equals(area.data)).toBe(true);
  }
}

function step(k: Kernel, model: Model, op: Op): void {
  switch (op.kind) {
    case 'alloc':
      alloc(k, model, op);
      return;
    case 'free': {
      const hit = nth(model, op.pick);
      if (!hit) return;
      k.vfree(hit[0]);
      for (const pfn of hit[1].pfns) model.frames[pfn] = F.DIRTY;
      model.areas.delete(hit[0]);
      return;
    }
    case 'write': {
      // a byte in each page, so that every frame that goes back is really dirty
      const hit = nth(model, op.pick);
      if (!hit) return;
      const [kaddr, area] = hit;
      const at = op.at % PAGE_SIZE;
      for (let page = 0; page < area.pfns.length; page++) {
        k.writeKernel(kaddr + page * PAGE_SIZE + at, new Uint8Array([op.value]));
        area.data[page * PAGE_SIZE + at] = op.value;
      }
      return;
    }
    case 'view':
      view(k, model, op);
      return;
  }
}

function compare(k: Kernel, model: Model): void {
  let free = 0;
  for (let pfn = 0; pfn < model.frames.length; pfn++) {
    const f = model.frames[pfn];
    if (f === F.FRESH) expect(frameOwner(k.mem, pfn), `frame ${pfn} zeroed`).toBe(FREE_ZEROED);
    if (f === F.DIRTY) expect(frameOwner(k.mem, pfn), `frame ${pfn} dirty`).toBe(FREE_DIRTY);
    if (f === F.FRESH || f === F.DIRTY) free++;
  }
  expect(k.stats().freeFrames).toBe(free);
  const counts = k.buddyinfo().trim().split(/\s+/).slice(4).map(Number);
  expect(counts).toEqual(buddyBlocks(model));
  expect(k.vmallocAreas().map((a) => a.addr)).toEqual(
    [...model.areas.keys()].sort((a, b) => a - b),
  );
  k.checkInvariants();
}

function bootModel(k: Kernel): Model {
  const { metadataFrames, totalFrames } = k.stats();
  const frames = Array.from({ length: totalFrames }, (_, pfn) =>
    pfn < metadataFrames ? F.META : F.FRESH,
  );
  return { frames, areas: new Map() };
}

/** Run `ops` on `k` and on its model, comparing after every step; free everything, check. */
function runProgram(k: Kernel, ops: readonly Op[]): void {
  const model = bootModel(k);
  for (const op of ops) {
    step(k, model, op);
    compare(k, model);
  }
  for (const kaddr of model.areas.keys()) k.vfree(kaddr);
  k.checkInvariants();
}

describe('contiguous areas, zeroing, views and buddyinfo against a reference model', () => {
  it('small kernels: every step matches the model', () => {
    fc.assert(
      fc.property(fc.array(opArb([40, 64]), { minLength: 1, maxLength: 50 }), (ops) => {
        runProgram(Kernel.boot({ memoryBytes: 256 * PAGE_SIZE, maxAreas: 24 }), ops);
      }),
      { numRuns: 120 },
    );
  });

  it('large areas (4 MiB and more, from the top of memory): every step matches the model', () => {
    fc.assert(
      fc.property(fc.array(opArb([1024, 1500, 2048]), { minLength: 1, maxLength: 25 }), (ops) => {
        runProgram(Kernel.boot({ memoryBytes: 24 * 2 ** 20 }), ops);
      }),
      { numRuns: 15 },
    );
  });
});
