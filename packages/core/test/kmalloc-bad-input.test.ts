/**
 * Bad input to kmalloc and the slab caches, in the style of bad-input.test.ts: every call gets every
 * kind of bad value and must give the contract's answer (`null`, `0`, a counted bad free, `-errno`,
 * `TypeError`/`RangeError`) with every piece of state left as it was — counters, `/proc/slabinfo`,
 * every frame's kind, owner and references, the contents of every frame, and the invariants, in
 * the kernel called and in a second kernel next to it.
 */
import { describe, expect, it } from 'vitest';
import { EBUSY, EINVAL, KMALLOC_END, Kernel, PAGE_SIZE, type KmemCache } from '../src/index.js';
import { MiB, diffSnapshots, snapshot } from './helpers/reliability.js';

type Bad = readonly [label: string, value: unknown];

const NON_NUMBERS: readonly Bad[] = [
  ["'64'", '64'],
  ['undefined', undefined],
  ['{}', {}],
  ['[64]', [64]],
  ['true', true],
  ['64n', 64n],
  ['Symbol()', Symbol('bad')],
  ['new Number(64)', new Number(64)],
  [
    '{ valueOf() { throw } }',
    {
      valueOf(): never {
        throw new Error('valueOf ran: a call converted a non-number');
      },
    },
  ],
];
const NOT_SAFE: readonly Bad[] = [
  ['NaN', NaN],
  ['Infinity', Infinity],
  ['-Infinity', -Infinity],
  ['0.5', 0.5],
  ['64.5', 64.5],
  ['2^53', 2 ** 53],
];
const NEGATIVE: readonly Bad[] = [
  ['-1', -1],
  ['-64', -64],
  ['Number.MIN_SAFE_INTEGER', Number.MIN_SAFE_INTEGER],
];
const MALFORMED: readonly Bad[] = [...NON_NUMBERS, ...NOT_SAFE, ...NEGATIVE];

interface World {
  readonly k: Kernel;
  readonly k2: Kernel;
  /** a second attachment to `k` (another thread's view: its frees of k's objects are remote) */
  readonly k3: Kernel;
  readonly obj: number;
  readonly freed: number;
  readonly large: number;
  readonly area: number;
  readonly cache: KmemCache;
  readonly cached: number;
  readonly other: KmemCache;
  readonly dead: KmemCache;
  readonly foreign: number;
}

function makeWorld(): World {
  const k = Kernel.boot({ memoryBytes: 2 * MiB });
  const must = <T>(v: T | null): T => {
    if (v === null) throw new Error('world: an allocation failed');
    return v;
  };
  const obj = must(k.kmalloc(64));
  k.view(obj, 64).fill(0x5a);
  const freed = must(k.kmalloc(64));
  k.kfree(freed);
  const large = must(k.kmalloc(3 * PAGE_SIZE));
  const area = must(k.vmalloc(PAGE_SIZE));
  const cache = must(k.kmemCacheCreate('world_cache', 48));
  const cached = must(cache.alloc());
  const other = must(k.kmemCacheCreate('other_cache', 48));
  const dead = must(k.kmemCacheCreate('dead_cache', 16));
  expect(dead.destroy()).toBe(0);
  const k2 = Kernel.boot({ memoryBytes: 2 * MiB });
  for (let i = 0; i < 200; i++) must(k2.kmalloc(8));
  const foreign = must(k2.kmalloc(96)); // a kaddr live in k2 only
  k.stats(); // give back empty active slabs now, not in the middle of a case
  expect(k.ksize(foreign)).toBe(0);
  const k3 = Kernel.attach(k.handle);
  return { k, k2, k3, obj, freed, large, area, cache, cached, other, dead, foreign };
}

type Answer =
  | { readonly kind: 'returns'; readonly value: unknown }
  | { readonly kind: 'throws'; readonly errors: readonly (new (...a: never[]) => Error)[] }
  | { readonly kind: 'badFree' }
  | { readonly kind: 'frees'; readonly bad: number };

interface Case {
  readonly name: string;
  readonly call: (w: World) => unknown;
  readonly answer: Answer;
}

const returns = (value: unknown): Answer => ({ kind: 'returns', value });
const throws = (...errors: (new (...a: never[]) => Error)[]): Answer => ({
  kind: 'throws',
  errors,
});
const BAD_FREE: Answer = { kind: 'badFree' };
/** A good call that frees the world's object `obj` (and counts `bad` bad frees): not a bad input. */
const FREES_OBJ = (bad: number): Answer => ({ kind: 'frees', bad });
const any = (v: unknown): never => v as never;

/** Addresses that name no live object (beside the malformed numbers). */
const DEAD_ADDRESSES: readonly [string, (w: World) => unknown][] = [
  ['a freed object', (w) => w.freed],
  ['the middle of a live object', (w) => w.obj + 8],
  ['one byte into a live object', (w) => w.obj + 1],
  ['a live object + 0.5', (w) => w.obj + 0.5],
  ['the second page of a large kmalloc', (w) => w.large + PAGE_SIZE],
  ['a vmalloc area', (w) => w.area],
  ['the start of the kmalloc range (metadata)', (w) => w.k.layout.kmallocStart],
  ['a slab descriptor', (w) => w.obj - ((w.obj - w.k.layout.kmallocStart) % PAGE_SIZE)],
  ['the end of the kmalloc range', () => KMALLOC_END],
  ['a user address', () => 0x10000],
  ['below the kmalloc range', (w) => w.k.layout.kmallocStart - 8],
  ["another kernel's object", (w) => w.foreign],
];

function buildCases(): Case[] {
  const cases: Case[] = [];
  const add = (name: string, call: (w: World) => unknown, answer: Answer): void => {
    cases.push({
      name: `${name} → ${answer.kind === 'returns' ? String(answer.value) : answer.kind === 'badFree' ? 'a bad free' : answer.kind === 'frees' ? 'frees it' : 'throws'}`,
      call,
      answer,
    });
  };
  for (const [label, value] of [...MALFORMED, ['0', 0] as const, ['null', null] as const]) {
    add(`kmalloc(${label})`, (w) => w.k.kmalloc(any(value)), returns(null));
    add(`kzalloc(${label})`, (w) => w.k.kzalloc(any(value)), returns(null));
    add(`kcalloc(${label}, 8)`, (w) => w.k.kcalloc(any(value), 8), returns(null));
    add(`kcalloc(8, ${label})`, (w) => w.k.kcalloc(8, any(value)), returns(null));
    add(`krealloc(obj, ${label})`, (w) => w.k.krealloc(w.obj, any(value)), returns(null));
    add(`ksize(${label})`, (w) => w.k.ksize(any(value)), returns(0));
    add(
      `kmemCacheCreate('x', ${label})`,
      (w) => w.k.kmemCacheCreate('x', any(value)),
      returns(null),
    );
    if (value !== undefined)
      add(
        `kmemCacheCreate('x', 8, { align: ${label} })`,
        (w) => w.k.kmemCacheCreate('x', 8, { align: any(value) }),
        returns(null),
      );
    add(`kmemCache(${label})`, (w) => w.k.kmemCache(any(value)), returns(null));
    if (value !== null) {
      add(
        `kfree(${label})`,
        (w) => {
          w.k.kfree(any(value));
        },
        BAD_FREE,
      );
      add(
        `cache.free(${label})`,
        (w) => {
          w.cache.free(any(value));
        },
        BAD_FREE,
      );
      add(
        `kfreeBulk([${label}])`,
        (w) => {
          w.k.kfreeBulk([any(value)]);
        },
        BAD_FREE,
      );
      add(
        `cache.freeBulk([${label}])`,
        (w) => {
          w.cache.freeBulk([any(value)]);
        },
        BAD_FREE,
      );
      add(
        `kfreeBulk(${label})`,
        (w) => {
          w.k.kfreeBulk(any(value));
        },
        Array.isArray(value) ? BAD_FREE : throws(TypeError), // [64]: an array of one bad kaddr
      );
      add(
        `kfreeBulk([obj], ${label})`,
        (w) => {
          w.k.kfreeBulk([w.obj], any(value));
        },
        value === undefined || value === 0 ? FREES_OBJ(0) : throws(RangeError),
      );
      add(`krealloc(${label}, 8)`, (w) => w.k.krealloc(any(value), 8), returns(null));
      add(`view(${label}, 8)`, (w) => w.k.view(any(value), 8), throws(TypeError, RangeError));
      if (value !== 0)
        add(
          `view(obj, ${label})`,
          (w) => w.k.view(w.obj, any(value)),
          throws(TypeError, RangeError),
        );
    }
  }
  add('kmalloc(more than physical memory)', (w) => w.k.kmalloc(4 * MiB), returns(null));
  add('kcalloc(2^30, 2^30) (overflow)', (w) => w.k.kcalloc(2 ** 30, 2 ** 30), returns(null));
  add(
    'kcalloc(2^26, 2^27) (not a safe product)',
    (w) => w.k.kcalloc(2 ** 26, 2 ** 27),
    returns(null),
  );
  for (const [label, at] of DEAD_ADDRESSES) {
    add(
      `kfree(${label})`,
      (w) => {
        w.k.kfree(any(at(w)));
      },
      BAD_FREE,
    );
    add(
      `cache.free(${label})`,
      (w) => {
        w.cache.free(any(at(w)));
      },
      BAD_FREE,
    );
    add(
      `kfreeBulk([${label}])`,
      (w) => {
        w.k.kfreeBulk([any(at(w))]);
      },
      BAD_FREE,
    );
    add(
      `kfreeBulk([${label}]) from another thread`,
      (w) => {
        w.k3.kfreeBulk([any(at(w))]);
      },
      BAD_FREE,
    );
    add(
      `cache.freeBulk([${label}])`,
      (w) => {
        w.cache.freeBulk([any(at(w))]);
      },
      BAD_FREE,
    );
    add(`ksize(${label})`, (w) => w.k.ksize(any(at(w))), returns(0));
    add(`krealloc(${label}, 8)`, (w) => w.k.krealloc(any(at(w)), 8), returns(null));
  }
  for (const [label, at] of DEAD_ADDRESSES.filter(
    ([l]) => !/middle|one byte|vmalloc|large|another/.test(l),
  )) {
    add(`view(${label}, 8)`, (w) => w.k.view(any(at(w)), 8), throws(RangeError));
  }
  for (const [label, range] of [
    ['(-1, 1)', [-1, 1]],
    ['(1, 0)', [1, 0]],
    ['(0, 2) past the end', [0, 2]],
    ['(0, 0.5)', [0, 0.5]],
  ] as const)
    add(
      `kfreeBulk([obj], ${label})`,
      (w) => {
        w.k.kfreeBulk([w.obj], range[0], range[1]);
      },
      throws(RangeError),
    );
  add(
    'kfreeBulk([obj, obj]) (the same object twice: the second is a bad free)',
    (w) => {
      w.k.kfreeBulk([w.obj, w.obj]);
    },
    FREES_OBJ(1),
  );
  add(
    'kfreeBulk([null, null])',
    (w) => {
      w.k.kfreeBulk([null, null]);
    },
    returns(undefined),
  );
  add(
    'kfreeBulk of a destroyed cache’s object through cache.freeBulk',
    (w) => {
      w.dead.freeBulk([w.obj]);
    },
    BAD_FREE,
  );
  add(
    'kfree(null)',
    (w) => {
      w.k.kfree(null);
    },
    returns(undefined),
  );
  add('view(obj, 72) (past its end)', (w) => w.k.view(w.obj, 72), throws(RangeError));
  add(
    'view(obj + 4, 8, Float64Array) (unaligned)',
    (w) => w.k.view(w.obj + 4, 8, Float64Array),
    throws(RangeError),
  );
  add(
    'view(obj, 6, Int32Array) (not whole elements)',
    (w) => w.k.view(w.obj, 6, Int32Array),
    throws(RangeError),
  );
  for (const [label, Type] of [
    ['DataView', DataView],
    ['Array', Array],
    ['{}', {}],
    ['null', null],
  ] as const) {
    add(`view(obj, 8, ${label})`, (w) => w.k.view(w.obj, 8, any(Type)), throws(TypeError));
  }
  add(
    'view(area, 2 pages) (its guard page)',
    (w) => w.k.view(w.area, 2 * PAGE_SIZE),
    throws(RangeError),
  );
  add(
    'cache.free(an object of another cache)',
    (w) => {
      w.other.free(w.cached);
    },
    BAD_FREE,
  );
  add(
    'cache.free(a kmalloc object)',
    (w) => {
      w.cache.free(w.obj);
    },
    BAD_FREE,
  );
  add(
    'cache.free(a large kmalloc)',
    (w) => {
      w.cache.free(w.large);
    },
    BAD_FREE,
  );
  add('cache.destroy() with a live object', (w) => w.cache.destroy(), returns(-EBUSY));
  add('destroyed cache: alloc()', (w) => w.dead.alloc(), returns(null));
  add(
    'destroyed cache: free(a live object)',
    (w) => {
      w.dead.free(w.cached);
    },
    BAD_FREE,
  );
  add('destroyed cache: destroy()', (w) => w.dead.destroy(), returns(-EINVAL));
  add('kmemCache(a kmalloc cache id)', (w) => w.k.kmemCache(0), returns(null));
  add('kmemCache(a destroyed cache id)', (w) => w.k.kmemCache(w.dead.id), returns(null));
  add('kmemCache(64)', (w) => w.k.kmemCache(64), returns(null));
  for (const [label, name] of [
    ['a space', 'a b'],
    ["''", ''],
    ['32 characters', 'x'.repeat(32)],
    ['a non-string', 42],
    ['a newline', 'a\nb'],
    ['non-ASCII', 'ké'],
  ] as const) {
    add(`kmemCacheCreate(${label}, 8)`, (w) => w.k.kmemCacheCreate(any(name), 8), returns(null));
  }
  for (const [label, opts] of [
    ['null', null],
    ['42', 42],
    ['{ align: 3 }', { align: 3 }],
    ['{ align: 8192 }', { align: 8192 }],
  ] as const) {
    add(
      `kmemCacheCreate('x', 8, ${label})`,
      (w) => w.k.kmemCacheCreate('x', 8, any(opts)),
      returns(null),
    );
  }
  add("kmemCacheCreate('x', 8193)", (w) => w.k.kmemCacheCreate('x', 8193), returns(null));
  return cases;
}

function outcome(w: World, c: Case): { threw: Error | null; value: unknown } {
  try {
    return { threw: null, value: c.call(w) };
  } catch (e) {
    return { threw: e as Error, value: undefined };
  }
}

const cases = buildCases();
let world = makeWorld();
let dirty = false;

describe('every kmalloc and slab-cache call, fed every kind of bad value, answers as the contract says and changes nothing', () => {
  it.each(cases.map((c, i) => [c.name, i] as const))('%s', (_name, i) => {
    if (dirty) world = makeWorld();
    dirty = true;
    const c = cases[i]!;
    const { k, k2 } = world;
    const before = snapshot(k);
    const slabinfo = k.slabinfo();
    const before2 = snapshot(k2, false);
    const badBefore = k.stats().badFrees;
    const got = outcome(world, c);
    if (c.answer.kind === 'frees') {
      if (got.threw !== null) throw got.threw;
      expect(k.ksize(world.obj)).toBe(0);
      expect(k.stats().badFrees).toBe(badBefore + c.answer.bad);
      k.checkInvariants();
      return; // the world changed: the next case builds a new one
    }
    if (c.answer.kind === 'throws') {
      expect(got.threw, 'expected a throw').not.toBeNull();
      expect(
        c.answer.errors.some((E) => got.threw instanceof E),
        String(got.threw),
      ).toBe(true);
    } else {
      if (got.threw !== null) throw got.threw;
      expect(got.value).toBe(c.answer.kind === 'returns' ? c.answer.value : undefined);
    }
    expect(diffSnapshots(before, snapshot(k), c.answer.kind === 'badFree' ? 1 : 0)).toEqual([]);
    expect(k.slabinfo()).toBe(slabinfo);
    expect(diffSnapshots(before2, snapshot(k2, false))).toEqual([]);
    k.checkInvariants();
    k2.checkInvariants();
    dirty = false;
  });

  it('succeeds with good arguments in the same world, so each bad value is what fails', () => {
    const w = makeWorld();
    expect(w.k.ksize(w.obj)).toBe(64);
    expect(w.k.ksize(w.large)).toBe(3 * PAGE_SIZE);
    expect(w.k.view(w.obj, 64, Float64Array)).toHaveLength(8);
    expect(w.k.krealloc(w.obj, 8)).toBe(w.obj);
    w.cache.free(w.cached);
    expect(w.cache.destroy()).toBe(0);
    w.k.kfree(w.obj);
    w.k.kfree(w.large);
    expect(w.k.kmemCacheCreate('x'.repeat(31), 8192, { align: PAGE_SIZE })).not.toBeNull();
    expect(w.k.stats().badFrees).toBe(0);
    w.k.checkInvariants();
  });
});
