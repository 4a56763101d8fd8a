/**
 * Bad input: every public function and method of the kernel gets every kind of bad value, and
 * must give the contract's answer (`-EINVAL`, `null`, `TypeError`/`RangeError`,
 * `SegmentationFault`; Linux's answer where the contract is silent) with every piece of state left
 * exactly as it was: counters, `/proc/vmallocinfo`, every area, every address space's maps,
 * pagemap and VMAs, every frame's kind, owner and references, the contents of every frame, and the
 * invariants, in the kernel called and in a second kernel next to it.
 */
import { afterAll, describe, expect, it } from 'vitest';
import {
  EBUSY,
  EFAULT,
  EINVAL,
  ENOMEM,
  EPERM,
  Kernel,
  LAYOUT_VERSION,
  MAP_FIXED,
  MAP_FIXED_NOREPLACE,
  MADV_DONTNEED,
  MADV_NORMAL,
  MADV_RANDOM,
  MADV_WILLNEED,
  MREMAP_DONTUNMAP,
  MREMAP_FIXED,
  MREMAP_MAYMOVE,
  EEXIST,
  MAP_PRIVATE,
  MAP_SHARED,
  PAGE_SIZE,
  PROT_NONE,
  PROT_READ,
  PROT_WRITE,
  SegmentationFault,
  BusError,
  type BusCode,
  TASK_SIZE,
  VMALLOC_START,
  Vma,
  remapPartial,
  remapVmallocRange,
  remapVmallocRangePartial,
  type AddressSpace,
  type SegvCode,
} from '../src/index.js';
import { MiB, diffSnapshots, snapshot } from './helpers/reliability.js';

const P = PAGE_SIZE;
const RW = PROT_READ | PROT_WRITE;
const FIXED = MAP_SHARED | MAP_FIXED;

// ---------------------------------------------------------------------------------------------
// The bad values, by kind. Each is [label, value].

type Bad = readonly [label: string, value: unknown];

/** Not a number at all: every accessor throws `TypeError`, every kernel call answers an error. */
const NON_NUMBERS: readonly Bad[] = [
  ["'4096'", '4096'],
  ["''", ''],
  ['null', null],
  ['undefined', undefined],
  ['{}', {}],
  ['[]', []],
  ['[4096]', [4096]],
  ['{ valueOf: () => 4096 }', { valueOf: () => 4096 }],
  ['true', true],
  ['4096n', 4096n],
  ['Symbol()', Symbol('bad')],
  ['new Number(4096)', new Number(4096)],
  ['() => 4096', () => 4096],
  // conversions that must never run: no call converts a non-number (a throw here escapes as is)
  [
    '{ valueOf() { throw } }',
    {
      valueOf(): never {
        throw new Error('valueOf ran: a call converted a non-number');
      },
    },
  ],
  [
    '{ [Symbol.toPrimitive]() { throw } }',
    {
      [Symbol.toPrimitive](): never {
        throw new Error('Symbol.toPrimitive ran: a call converted a non-number');
      },
    },
  ],
];

/** Numbers that are not safe integers: NaN, infinities, fractions, 2^53 and above. */
const NOT_SAFE: readonly Bad[] = [
  ['NaN', NaN],
  ['Infinity', Infinity],
  ['-Infinity', -Infinity],
  ['0.5', 0.5],
  ['PAGE_SIZE + 0.5', P + 0.5],
  ['-0.5', -0.5],
  ['2^53', 2 ** 53],
  ['2^53 + 2', 2 ** 53 + 2],
  ['2^64', 2 ** 64],
  ['Number.MAX_VALUE', Number.MAX_VALUE],
];

/** Negative safe integers. */
const NEGATIVE: readonly Bad[] = [
  ['-1', -1],
  ['-PAGE_SIZE', -P],
  ['-2^32', -(2 ** 32)],
  ['Number.MIN_SAFE_INTEGER', Number.MIN_SAFE_INTEGER],
];

/** Every malformed number-or-not: what no address, length or size may be. */
const MALFORMED: readonly Bad[] = [...NON_NUMBERS, ...NOT_SAFE, ...NEGATIVE];

/** Byte sources that are not a `Uint8Array`. */
const NOT_BYTES: readonly Bad[] = [
  ["'abc'", 'abc'],
  ['[1, 2, 3]', [1, 2, 3]],
  ['null', null],
  ['undefined', undefined],
  ['{}', {}],
  ['{ length: 3 }', { length: 3 }],
  ['4096', 4096],
  ['new ArrayBuffer(4)', new ArrayBuffer(4)],
  ['new SharedArrayBuffer(4)', new SharedArrayBuffer(4)],
  ['new Int8Array(4)', new Int8Array(4)],
  ['new Uint8ClampedArray(4)', new Uint8ClampedArray(4)],
  ['new Uint16Array(2)', new Uint16Array(2)],
  ['new DataView(new ArrayBuffer(4))', new DataView(new ArrayBuffer(4))],
];

/** Protections that are not a combination of PROT_READ and PROT_WRITE. */
const BAD_PROTS: readonly Bad[] = [
  ...MALFORMED,
  ['PROT_EXEC (4)', 4],
  ['8', 8],
  ['0x10', 0x10],
  ['RW | 4', RW | 4],
  ['2^31', 2 ** 31],
  ['2^32 + PROT_READ', 2 ** 32 + PROT_READ],
];

/** mmap flags without MAP_SHARED or with a bit this kernel does not know. */
const BAD_MAP_FLAGS: readonly Bad[] = [
  ...MALFORMED,
  ['0', 0],
  ['MAP_PRIVATE', MAP_PRIVATE],
  ['MAP_PRIVATE | MAP_FIXED', MAP_PRIVATE | MAP_FIXED],
  ['MAP_SHARED | MAP_PRIVATE', MAP_SHARED | MAP_PRIVATE],
  ['MAP_FIXED', MAP_FIXED],
  ['MAP_SHARED | 0x20 (MAP_ANONYMOUS)', MAP_SHARED | 0x20],
  ['MAP_SHARED | 0x100', MAP_SHARED | 0x100],
  ['MAP_SHARED | 2^30', MAP_SHARED | (2 ** 30)],
  ['2^32 + MAP_SHARED', 2 ** 32 + MAP_SHARED],
];

// ---------------------------------------------------------------------------------------------
// The world every bad call is made in: two kernels with areas of every kind, address spaces with
// mapped, read-only, PROT_NONE and empty VMAs, destroyed address spaces (one whose slot was reused
// by a new one), stale VMAs (one whose slot was reused).

interface World {
  readonly k: Kernel;
  /** A second kernel: nothing done to the first may change it, and its objects are foreign. */
  readonly k2: Kernel;
  readonly plain: number;
  readonly zeroed: number;
  /** A 4-page `vmallocUser` area, mapped in `mm` (rw, ro, none) and in `mm2`. */
  readonly user: number;
  /** A 4-page `vmallocUser` area mapped nowhere: the kaddr of the remap calls. */
  readonly spare: number;
  readonly freed: number;
  readonly mm: AddressSpace;
  /** 4 pages mapped read/write from `user`. */
  readonly rw: number;
  /** 2 pages mapped read-only from `user`. */
  readonly ro: number;
  /** 1 page mapped PROT_NONE from `user`. */
  readonly none: number;
  /** 8 pages of VMA, no PTE: the target of the remap calls. */
  readonly empty: number;
  readonly emptyVma: Vma;
  /** 4 pages of VMA, no PTE: the target of `remapVmallocRange`. */
  readonly fit: number;
  readonly fitVma: Vma;
  readonly rwVma: Vma;
  /** A page-aligned user address with no VMA. */
  readonly hole: number;
  readonly mm2: AddressSpace;
  /** Unmapped wholly: stale. */
  readonly staleVma: Vma;
  /** Unmapped wholly, and its slot reused by a later mmap: stale. */
  readonly staleReusedVma: Vma;
  /** Destroyed; its slot is free. */
  readonly dead: AddressSpace;
  readonly deadVma: Vma;
  /** Destroyed; its slot now holds `reborn`. */
  readonly deadReused: AddressSpace;
  readonly deadReusedVma: Vma;
  readonly reborn: AddressSpace;
  readonly k2mm: AddressSpace;
  readonly k2Vma: Vma;
  readonly k2Area: number;
}

function fill(k: Kernel, kaddr: number, pages: number, seed: number): void {
  const bytes = new Uint8Array(pages * P);
  for (let i = 0; i < bytes.length; i++) bytes[i] = (seed * 37 + i * 13 + (i >>> 9)) & 0xff;
  k.writeKernel(kaddr, bytes);
}

function must<T>(value: T | null, what: string): T {
  if (value === null) throw new Error(`world: ${what} failed`);
  return value;
}

function mapAt(mm: AddressSpace, pages: number, prot: number): number {
  const uaddr = mm.mmap(0, pages * P, prot, MAP_SHARED);
  if (uaddr < 0) throw new Error(`world: mmap failed with ${uaddr}`);
  return uaddr;
}

function remapOrThrow(mm: AddressSpace, uaddr: number, kaddr: number, pages: number): void {
  const rc = remapPartial(must(mm.findVma(uaddr), 'findVma'), uaddr, kaddr, pages * P);
  if (rc !== 0) throw new Error(`world: remapPartial failed with ${rc}`);
}

function makeWorld(): World {
  const k = Kernel.boot({ memoryBytes: 1 * MiB, maxAreas: 32, maxVmas: 64, maxAddressSpaces: 8 });
  const plain = must(k.vmalloc(2 * P), 'vmalloc');
  const zeroed = must(k.vzalloc(2 * P), 'vzalloc');
  const user = must(k.vmallocUser(4 * P), 'vmallocUser');
  const spare = must(k.vmallocUser(4 * P), 'vmallocUser');
  const freed = must(k.vmallocUser(P), 'vmallocUser');
  k.vfree(freed);
  fill(k, plain, 2, 1);
  fill(k, zeroed, 2, 2);
  fill(k, user, 4, 3);
  fill(k, spare, 4, 4);

  const mm = must(k.createAddressSpace(), 'createAddressSpace');
  const rw = mapAt(mm, 4, RW);
  remapOrThrow(mm, rw, user, 4);
  const ro = mapAt(mm, 2, PROT_READ);
  remapOrThrow(mm, ro, user, 2);
  const none = mapAt(mm, 1, PROT_NONE);
  remapOrThrow(mm, none, user + 3 * P, 1);
  const empty = mapAt(mm, 8, RW);
  const fit = mapAt(mm, 4, RW);
  const staleAt = mapAt(mm, 2, RW);
  const staleVma = must(mm.findVma(staleAt), 'findVma');
  expect(mm.munmap(staleAt, 2 * P)).toBe(0);
  const reusedAt = mapAt(mm, 3, RW);
  const staleReusedVma = must(mm.findVma(reusedAt), 'findVma');
  expect(mm.munmap(reusedAt, 3 * P)).toBe(0);
  mapAt(mm, 1, RW); // takes the slot staleReusedVma had
  const hole = reusedAt; // the 1-page VMA went higher, into the range staleAt left

  const mm2 = must(k.createAddressSpace(), 'createAddressSpace');
  const at2 = mapAt(mm2, 2, RW);
  remapOrThrow(mm2, at2, user + P, 2);

  const dead = must(k.createAddressSpace(), 'createAddressSpace');
  const deadAt = mapAt(dead, 2, RW);
  remapOrThrow(dead, deadAt, user, 2);
  const deadVma = must(dead.findVma(deadAt), 'findVma');
  const deadReused = must(k.createAddressSpace(), 'createAddressSpace');
  const deadReusedVma = must(deadReused.findVma(mapAt(deadReused, 2, RW)), 'findVma');
  deadReused.destroy();
  const reborn = must(k.createAddressSpace(), 'createAddressSpace'); // takes deadReused's slot
  expect(reborn.id).toBe(deadReused.id);
  const rebornAt = mapAt(reborn, 2, RW);
  remapOrThrow(reborn, rebornAt, user + 2 * P, 2);
  dead.destroy();

  // the second kernel: areas laid out differently, so none of the first kernel's kaddrs is a live
  // remappable base there
  const k2 = Kernel.boot({ memoryBytes: 1 * MiB, maxAreas: 32, maxVmas: 64, maxAddressSpaces: 8 });
  must(k2.vmalloc(P), 'vmalloc'); // k2Area then sits on the first kernel's guard page of `plain`
  const k2Area = must(k2.vmallocUser(P), 'vmallocUser');
  fill(k2, k2Area, 1, 9);
  const k2mms: AddressSpace[] = [];
  for (let i = 0; i < 6; i++) k2mms.push(must(k2.createAddressSpace(), 'createAddressSpace'));
  const k2mm = k2mms[5]!;
  const k2At = mapAt(k2mm, 16, RW);
  const k2Vma = must(k2mm.findVma(k2At), 'findVma');
  remapOrThrow(k2mm, k2At, k2Area, 1);

  const w: World = {
    k,
    k2,
    plain,
    zeroed,
    user,
    spare,
    freed,
    mm,
    rw,
    ro,
    none,
    empty,
    emptyVma: must(mm.findVma(empty), 'findVma'),
    fit,
    fitVma: must(mm.findVma(fit), 'findVma'),
    rwVma: must(mm.findVma(rw), 'findVma'),
    hole,
    mm2,
    staleVma,
    staleReusedVma,
    dead,
    deadVma,
    deadReused,
    deadReusedVma,
    reborn,
    k2mm,
    k2Vma,
    k2Area,
  };
  checkWorld(w);
  return w;
}

/** The preconditions the table relies on. */
function checkWorld(w: World): void {
  const { k, k2, mm } = w;
  expect(mm.findVma(w.hole)).toBeNull();
  expect(k.findVmArea(w.freed)).toBeNull();
  expect(k.addressSpaceIds()).not.toContain(w.dead.id);
  expect(k.addressSpaceIds()).not.toContain(w.k2mm.id);
  // k2 has no area where the first kernel's remappable areas are, and the first has none at k2's
  expect(k2.findVmArea(w.spare)).toBeNull();
  expect(k2.findVmArea(w.user)).toBeNull();
  expect(k.findVmArea(w.k2Area)?.addr ?? -1).not.toBe(w.k2Area);
  k.checkInvariants();
  k2.checkInvariants();
}

// ---------------------------------------------------------------------------------------------
// The table.

/** A `Vma` made by calling its (internal) constructor directly: a forged handle. */
function forgeVma(mem: unknown, slot: number, gen: number): unknown {
  const ctor = Vma as unknown as new (mem: unknown, slot: number, gen: number) => unknown;
  return new ctor(mem, slot, gen);
}

/** The kernel's internal physical-memory object, to forge handles with. */
function kernelMem(k: Kernel): unknown {
  return (k as unknown as { mem: unknown }).mem;
}

type ErrorClass = new (...args: never[]) => Error;

/** The contract's answer to a bad call. */
type Answer =
  | { readonly kind: 'returns'; readonly value: unknown }
  | { readonly kind: 'throws'; readonly errors: readonly ErrorClass[] }
  | { readonly kind: 'segv'; readonly code: SegvCode | BusCode; readonly address: number }
  | { readonly kind: 'badFree' };

interface Case {
  readonly name: string;
  readonly call: () => unknown;
  readonly answer: Answer;
}

const returns = (value: unknown): Answer => ({ kind: 'returns', value });
const errno = (e: number): Answer => returns(-e);
const throws = (...errors: ErrorClass[]): Answer => ({ kind: 'throws', errors });
const segv = (code: SegvCode | BusCode, address: number): Answer => ({
  kind: 'segv',
  code,
  address,
});
const MALFORMED_THROWS: Answer = throws(TypeError, RangeError);

/** Accessor argument rule: a non-number is a `TypeError`, a bad number a `RangeError`. */
function accessorError(value: unknown): Answer {
  return typeof value === 'number' ? throws(RangeError) : throws(TypeError);
}

function describeAnswer(a: Answer): string {
  switch (a.kind) {
    case 'returns':
      return typeof a.value === 'number' && a.value < 0 ? `-errno ${-a.value}` : String(a.value);
    case 'throws':
      return a.errors.map((e) => e.name).join(' or ');
    case 'segv':
      return `${a.code === 'BUS_ADRERR' ? 'BusError' : 'SegmentationFault'} ${a.code}`;
    case 'badFree':
      return 'a bad free';
  }
}

function buildCases(w: World): Case[] {
  const cases: Case[] = [];
  const add = (name: string, call: () => unknown, answer: Answer): void => {
    cases.push({ name: `${name} → ${describeAnswer(answer)}`, call, answer });
  };
  const { k, mm } = w;
  /** A bad value passed where the types forbid it: the point of the test. */
  const any = (v: unknown): never => v as never;

  // Kernel.boot: non-numbers are TypeError, bad sizes RangeError; nothing else changes
  for (const [label, options] of [
    ['undefined', undefined],
    ['null', null],
    ['42', 42],
    ["'1 MiB'", '1 MiB'],
    ['{}', {}],
  ] as const) {
    add(`Kernel.boot(${label})`, () => Kernel.boot(any(options)), throws(TypeError));
  }
  for (const [label, value] of NON_NUMBERS) {
    add(
      `Kernel.boot({ memoryBytes: ${label} })`,
      () => Kernel.boot({ memoryBytes: any(value) }),
      throws(TypeError),
    );
  }
  for (const [label, value] of [
    ...NOT_SAFE,
    ...NEGATIVE,
    ['0', 0],
    ['PAGE_SIZE (no room for metadata)', P],
    ['2^40 (more frames than a PTE can address)', 2 ** 40],
  ]) {
    add(
      `Kernel.boot({ memoryBytes: ${label} })`,
      () => Kernel.boot({ memoryBytes: any(value) }),
      throws(RangeError),
    );
  }
  for (const option of ['maxAreas', 'maxVmas', 'maxAddressSpaces'] as const) {
    for (const [label, value] of [
      ...MALFORMED.filter(([, v]) => v !== undefined && v !== null),
      ['0', 0],
    ]) {
      add(
        `Kernel.boot({ memoryBytes: 1 MiB, ${option}: ${label} })`,
        () => Kernel.boot({ memoryBytes: MiB, [option]: any(value) }),
        MALFORMED_THROWS,
      );
    }
  }

  // Kernel.attach: refuses anything that is not a live sabvm buffer of this layout version
  const wrongVersion = new SharedArrayBuffer(w.k.handle.buffer.byteLength);
  new Uint8Array(wrongVersion).set(new Uint8Array(w.k.handle.buffer, 0, P));
  new Int32Array(wrongVersion)[1] = LAYOUT_VERSION + 1;
  const badMagic = new SharedArrayBuffer(w.k.handle.buffer.byteLength);
  for (const [label, handle] of [
    ['undefined', undefined],
    ['null', null],
    ['42', 42],
    ["'handle'", 'handle'],
    ['{}', {}],
    ['the bare SharedArrayBuffer', w.k.handle.buffer],
    ['{ buffer: new ArrayBuffer(1 MiB) }', { buffer: new ArrayBuffer(MiB) }],
    ['{ buffer: new SharedArrayBuffer(16) }', { buffer: new SharedArrayBuffer(16) }],
    ['{ buffer: zeroed SharedArrayBuffer (bad magic) }', { buffer: badMagic }],
    ['{ buffer: a kernel buffer of another layout version }', { buffer: wrongVersion }],
  ] as const) {
    add(`Kernel.attach(${label})`, () => Kernel.attach(any(handle)), throws(TypeError, Error));
  }

  // the vmalloc family: null for every bad size; nothing taken
  const tooBig: Bad[] = [
    ['0', 0],
    ['more than physical memory', (k.stats().totalFrames + 1) * P],
    ['more than the free frames', (k.stats().freeFrames + 1) * P],
    ['2^52', 2 ** 52],
  ];
  for (const fn of ['vmalloc', 'vzalloc', 'vmallocUser'] as const) {
    for (const [label, value] of [...MALFORMED, ...tooBig]) {
      add(`kernel.${fn}(${label})`, () => k[fn](any(value)), returns(null));
    }
  }
  // the options of the vmalloc family: anything but an object with a boolean `contiguous` → null
  for (const fn of ['vmalloc', 'vzalloc', 'vmallocUser'] as const) {
    for (const [label, value] of [
      ['null', null],
      ['true', true],
      ["'contiguous'", 'contiguous'],
      ['1', 1],
      ['{ contiguous: 1 }', { contiguous: 1 }],
      ["{ contiguous: 'yes' }", { contiguous: 'yes' }],
      ['{ contiguous: null }', { contiguous: null }],
    ] as const) {
      add(`kernel.${fn}(PAGE_SIZE, ${label})`, () => k[fn](P, any(value)), returns(null));
    }
    // a contiguous run larger than any free run: null, nothing taken
    add(
      `kernel.${fn}(all free frames + 1 page, { contiguous: true })`,
      () => k[fn]((k.stats().freeFrames + 1) * P, { contiguous: true }),
      returns(null),
    );
  }
  for (const [label, value] of [...MALFORMED, ...tooBig]) {
    add(
      `kernel.vmallocAligned(${label}, PAGE_SIZE)`,
      () => k.vmallocAligned(any(value), P),
      returns(null),
    );
  }
  for (const [label, value] of [
    ...MALFORMED,
    ['0', 0],
    ['3 (not a power of two)', 3],
    ['3 * PAGE_SIZE', 3 * P],
    ['2^45 (above VMALLOC_START)', 2 ** 45],
  ]) {
    add(
      `kernel.vmallocAligned(PAGE_SIZE, ${label})`,
      () => k.vmallocAligned(P, any(value)),
      returns(null),
    );
  }

  // vfree: anything but null that is not the base of a live area is a bad free, and only counted
  const notBases: Bad[] = [
    ['an interior address', w.user + P],
    ['the guard page', w.user + 4 * P],
    ['an unaligned address in an area', w.user + 1],
    ['a freed area', w.freed],
    ['VMALLOC_START - PAGE_SIZE', VMALLOC_START - P],
    ['a user address', w.rw],
    ['0', 0],
    ["another kernel's area", w.k2Area],
    ['past the vmalloc range', VMALLOC_START + 2 * k.stats().totalFrames * P],
  ];
  for (const [label, value] of [...MALFORMED.filter(([, v]) => v !== null), ...notBases]) {
    add(
      `kernel.vfree(${label})`,
      () => {
        k.vfree(any(value));
      },
      { kind: 'badFree' },
    );
  }
  add(
    'kernel.vfree(null)',
    () => {
      k.vfree(null);
    },
    returns(undefined),
  );

  // findVmArea and vmallocToPfn: null where nothing is
  const noArea: Bad[] = [
    ...MALFORMED,
    ['a freed area', w.freed],
    ['VMALLOC_START - 1', VMALLOC_START - 1],
    ['a user address', w.rw],
    ['0', 0],
    ['past the vmalloc range', VMALLOC_START + 2 * k.stats().totalFrames * P],
    ['an unaligned fraction inside an area', w.user + 0.5],
  ];
  for (const [label, value] of noArea) {
    add(`kernel.findVmArea(${label})`, () => k.findVmArea(any(value)), returns(null));
  }
  for (const [label, value] of [...noArea, ['the guard page', w.user + 4 * P] as Bad]) {
    add(`kernel.vmallocToPfn(${label})`, () => k.vmallocToPfn(any(value)), returns(null));
  }

  // readKernel / writeKernel: malformed arguments throw, unmapped bytes fault, nothing is written
  for (const [label, value] of MALFORMED) {
    add(`kernel.readKernel(${label}, 8)`, () => k.readKernel(any(value), 8), accessorError(value));
    add(
      `kernel.readKernel(user, ${label})`,
      () => k.readKernel(w.user, any(value)),
      accessorError(value),
    );
    add(
      `kernel.writeKernel(${label}, 8 bytes)`,
      () => {
        k.writeKernel(any(value), new Uint8Array(8).fill(0xee));
      },
      accessorError(value),
    );
  }
  for (const [label, value] of NOT_BYTES) {
    add(
      `kernel.writeKernel(user, ${label})`,
      () => {
        k.writeKernel(w.user, any(value));
      },
      throws(TypeError),
    );
  }
  const kernelFaults: [string, number, number, number][] = [
    ['the guard page', w.user + 4 * P, 8, w.user + 4 * P],
    ['a range running into the guard page', w.user + 3 * P, 2 * P, w.user + 4 * P],
    ['a freed area', w.freed, 8, w.freed],
    ['VMALLOC_START - PAGE_SIZE', VMALLOC_START - P, 8, VMALLOC_START - P],
    ['a user address', w.rw, 8, w.rw],
    ['a 2^40-byte length', w.user, 2 ** 40, w.user + 4 * P],
    ['a range starting at 2^53 - 1', 2 ** 53 - 1, 2, 2 ** 53 - 1],
  ];
  for (const [label, kaddr, length, at] of kernelFaults) {
    add(`kernel.readKernel(${label})`, () => k.readKernel(kaddr, length), segv('SEGV_MAPERR', at));
    if (length <= 2 * P) {
      add(
        `kernel.writeKernel(${label})`,
        () => {
          k.writeKernel(kaddr, new Uint8Array(length).fill(0xee));
        },
        segv('SEGV_MAPERR', at),
      );
    }
  }

  // kernel.addressSpace: throws when no live address space has the id
  for (const [label, value] of [
    ...MALFORMED,
    ['0', 0],
    ['maxAddressSpaces + 1', 9],
    ['the id of a destroyed address space', w.dead.id],
    ["the id of another kernel's address space", w.k2mm.id],
    ['a live id + 0.5', w.mm.id + 0.5],
  ]) {
    add(`kernel.addressSpace(${label})`, () => k.addressSpace(any(value)), MALFORMED_THROWS);
  }

  // mm.mmap, one argument at a time
  for (const [label, value] of [...MALFORMED, ['PAGE_SIZE + 1 (unaligned)', P + 1] as Bad]) {
    add(
      `mm.mmap(${label}, 2 pages, RW, MAP_SHARED | MAP_FIXED)`,
      () => mm.mmap(any(value), 2 * P, RW, FIXED),
      errno(EINVAL),
    );
  }
  for (const [label, value] of [...NON_NUMBERS, ...NOT_SAFE]) {
    add(
      `mm.mmap(${label}, 2 pages, RW, MAP_SHARED)`,
      () => mm.mmap(any(value), 2 * P, RW, MAP_SHARED),
      errno(EINVAL),
    );
  }
  add(
    'mm.mmap(0, 2 pages, RW, MAP_SHARED | MAP_FIXED)',
    () => mm.mmap(0, 2 * P, RW, FIXED),
    errno(EPERM),
  );
  for (const [label, value] of [
    ['TASK_SIZE', TASK_SIZE],
    ['TASK_SIZE - PAGE_SIZE (runs past the end)', TASK_SIZE - P],
    ['2^52', 2 ** 52],
  ] as const) {
    add(
      `mm.mmap(${label}, 2 pages, RW, MAP_SHARED | MAP_FIXED)`,
      () => mm.mmap(value, 2 * P, RW, FIXED),
      errno(ENOMEM),
    );
  }
  for (const [label, value] of [...MALFORMED, ['0', 0] as Bad]) {
    add(
      `mm.mmap(0, ${label}, RW, MAP_SHARED)`,
      () => mm.mmap(0, any(value), RW, MAP_SHARED),
      errno(EINVAL),
    );
  }
  for (const [label, value] of [
    ['TASK_SIZE (page 0 is never mapped)', TASK_SIZE],
    ['TASK_SIZE + 1', TASK_SIZE + 1],
    ['2^52', 2 ** 52],
  ] as const) {
    add(
      `mm.mmap(0, ${label}, RW, MAP_SHARED)`,
      () => mm.mmap(0, value, RW, MAP_SHARED),
      errno(ENOMEM),
    );
  }
  for (const [label, value] of BAD_PROTS) {
    add(
      `mm.mmap(0, 2 pages, ${label}, MAP_SHARED)`,
      () => mm.mmap(0, 2 * P, any(value), MAP_SHARED),
      errno(EINVAL),
    );
  }
  for (const [label, value] of BAD_MAP_FLAGS) {
    add(
      `mm.mmap(0, 2 pages, RW, ${label})`,
      () => mm.mmap(0, 2 * P, RW, any(value)),
      errno(EINVAL),
    );
  }

  // mm.munmap
  for (const [label, value] of [...MALFORMED, ['rw + 1 (unaligned)', w.rw + 1] as Bad]) {
    add(`mm.munmap(${label}, 1 page)`, () => mm.munmap(any(value), P), errno(EINVAL));
  }
  for (const [label, value] of [...MALFORMED, ['0', 0] as Bad]) {
    add(`mm.munmap(rw, ${label})`, () => mm.munmap(w.rw, any(value)), errno(EINVAL));
  }
  for (const [label, addr, length] of [
    ['TASK_SIZE - PAGE_SIZE, 2 pages (runs past the end)', TASK_SIZE - P, 2 * P],
    ['TASK_SIZE, 1 page', TASK_SIZE, P],
    ['rw, 2^52', w.rw, 2 ** 52],
    ['2^52, 1 page', 2 ** 52, P],
  ] as const) {
    add(`mm.munmap(${label})`, () => mm.munmap(addr, length), errno(EINVAL));
  }
  add('mm.munmap(a hole, 1 page) (valid, changes nothing)', () => mm.munmap(w.hole, P), returns(0));

  // mm.mprotect
  for (const [label, value] of [...MALFORMED, ['rw + 1 (unaligned)', w.rw + 1] as Bad]) {
    add(
      `mm.mprotect(${label}, 1 page, PROT_READ)`,
      () => mm.mprotect(any(value), P, PROT_READ),
      errno(EINVAL),
    );
  }
  for (const [label, value] of MALFORMED) {
    add(
      `mm.mprotect(rw, ${label}, PROT_READ)`,
      () => mm.mprotect(w.rw, any(value), PROT_READ),
      errno(EINVAL),
    );
  }
  for (const [label, value] of BAD_PROTS) {
    add(`mm.mprotect(rw, 1 page, ${label})`, () => mm.mprotect(w.rw, P, any(value)), errno(EINVAL));
  }
  for (const [label, addr, length] of [
    ['a hole, 1 page', w.hole, P],
    ['rw, 5 pages (a hole after the VMA)', w.rw, 5 * P],
    ['TASK_SIZE - PAGE_SIZE, 2 pages', TASK_SIZE - P, 2 * P],
    ['rw, 2^53 - 1 bytes', w.rw, 2 ** 53 - 1],
  ] as const) {
    add(
      `mm.mprotect(${label}, PROT_READ)`,
      () => mm.mprotect(addr, length, PROT_READ),
      errno(ENOMEM),
    );
  }
  add(
    'mm.mprotect(rw, 0, PROT_READ) (valid, changes nothing)',
    () => mm.mprotect(w.rw, 0, PROT_READ),
    returns(0),
  );
  add(
    'mm.mprotect(rw, 4 pages, RW) (the protection it has: valid, changes nothing)',
    () => mm.mprotect(w.rw, 4 * P, RW),
    returns(0),
  );

  // MAP_FIXED_NOREPLACE over anything mapped: -EEXIST
  for (const [label, addr] of [
    ['rw', w.rw],
    ['empty + 7 pages (runs into the hole after it)', w.empty + 7 * P],
  ] as const) {
    add(
      `mm.mmap(${label}, 2 pages, RW, MAP_SHARED | MAP_FIXED_NOREPLACE)`,
      () => mm.mmap(addr, 2 * P, RW, MAP_SHARED | MAP_FIXED_NOREPLACE),
      errno(EEXIST),
    );
  }

  // mm.mremap: malformed arguments and bad flags -EINVAL, no VMA or a VMA that may not grow -EFAULT
  const MOVE = MREMAP_MAYMOVE;
  const MOVE_FIXED = MREMAP_MAYMOVE | MREMAP_FIXED;
  for (const [label, value] of [...MALFORMED, ['rw + 1 (unaligned)', w.rw + 1] as Bad]) {
    add(
      `mm.mremap(${label}, 1 page, 2 pages, MAYMOVE)`,
      () => mm.mremap(any(value), P, 2 * P, MOVE),
      errno(EINVAL),
    );
  }
  for (const [label, value] of [...MALFORMED, ['0', 0]]) {
    add(
      `mm.mremap(empty, ${label}, 2 pages, MAYMOVE)`,
      () => mm.mremap(w.empty, any(value), 2 * P, MOVE),
      errno(EINVAL),
    );
    add(
      `mm.mremap(empty, 1 page, ${label}, MAYMOVE)`,
      () => mm.mremap(w.empty, P, any(value), MOVE),
      errno(EINVAL),
    );
  }
  for (const [label, value] of [
    ...MALFORMED,
    ['8 (unknown)', 8],
    ['MREMAP_FIXED without MAYMOVE', MREMAP_FIXED],
    ['MREMAP_DONTUNMAP without MAYMOVE', MREMAP_DONTUNMAP],
    ['2^31', 2 ** 31],
    ['2^32 + MAYMOVE', 2 ** 32 + MOVE],
  ]) {
    add(
      `mm.mremap(empty, 1 page, 1 page, ${label}, hole)`,
      () => mm.mremap(w.empty, P, P, any(value), w.hole),
      errno(EINVAL),
    );
  }
  for (const [label, value] of [
    ...MALFORMED,
    ['undefined (MREMAP_FIXED needs one)', undefined],
    ['hole + 1 (unaligned)', w.hole + 1],
    ['empty + 1 page (overlaps the old range)', w.empty + P],
    ['TASK_SIZE - PAGE_SIZE (runs past the user space)', TASK_SIZE - P],
  ]) {
    add(
      `mm.mremap(empty, 2 pages, 2 pages, MAYMOVE | FIXED, ${label})`,
      () => mm.mremap(w.empty, 2 * P, 2 * P, MOVE_FIXED, any(value)),
      errno(EINVAL),
    );
  }
  add(
    'mm.mremap(empty, 1 page, 2 pages, MAYMOVE | DONTUNMAP) (lengths differ)',
    () => mm.mremap(w.empty, P, 2 * P, MOVE | MREMAP_DONTUNMAP),
    errno(EINVAL),
  );
  add(
    'mm.mremap(rw, 1 page, 1 page, MAYMOVE | DONTUNMAP) (a remapped VMA)',
    () => mm.mremap(w.rw, P, P, MOVE | MREMAP_DONTUNMAP),
    errno(EINVAL),
  );
  add(
    'mm.mremap(rw, 1 page, 1 page, MAYMOVE | FIXED, 0)',
    () => mm.mremap(w.rw, P, P, MOVE_FIXED, 0),
    errno(EPERM),
  );
  add(
    'mm.mremap(hole, 1 page, 2 pages, MAYMOVE) (no VMA)',
    () => mm.mremap(w.hole, P, 2 * P, MOVE),
    errno(EFAULT),
  );
  add(
    'mm.mremap(rw, 4 pages, 8 pages, MAYMOVE) (VM_DONTEXPAND cannot grow)',
    () => mm.mremap(w.rw, 4 * P, 8 * P, MOVE),
    errno(EFAULT),
  );
  add(
    'mm.mremap(empty, 9 pages, 10 pages, MAYMOVE) (across VMAs)',
    () => mm.mremap(w.empty, 9 * P, 10 * P, MOVE),
    errno(EFAULT),
  );

  // mm.madvise and mm.mincore: malformed arguments and unknown advice -EINVAL, a hole -ENOMEM
  for (const [label, value] of [...MALFORMED, ['rw + 1 (unaligned)', w.rw + 1] as Bad]) {
    add(
      `mm.madvise(${label}, 1 page, MADV_DONTNEED)`,
      () => mm.madvise(any(value), P, MADV_DONTNEED),
      errno(EINVAL),
    );
    add(`mm.mincore(${label}, 1 page)`, () => mm.mincore(any(value), P), errno(EINVAL));
  }
  for (const [label, value] of MALFORMED) {
    add(
      `mm.madvise(rw, ${label}, MADV_DONTNEED)`,
      () => mm.madvise(w.rw, any(value), MADV_DONTNEED),
      errno(EINVAL),
    );
    add(`mm.mincore(rw, ${label})`, () => mm.mincore(w.rw, any(value)), errno(EINVAL));
  }
  for (const [label, value] of [
    ...MALFORMED,
    ['5', 5],
    ['100 (MADV_HWPOISON)', 100],
    ['2^31', 2 ** 31],
  ]) {
    add(`mm.madvise(rw, 1 page, ${label})`, () => mm.madvise(w.rw, P, any(value)), errno(EINVAL));
  }
  for (const [label, addr, length] of [
    ['a hole, 1 page', w.hole, P],
    ['rw, 5 pages (a hole after the VMA)', w.rw, 5 * P],
    ['TASK_SIZE - PAGE_SIZE, 2 pages', TASK_SIZE - P, 2 * P],
  ] as const) {
    for (const advice of [MADV_NORMAL, MADV_RANDOM, MADV_WILLNEED, MADV_DONTNEED]) {
      add(
        `mm.madvise(${label}, advice ${advice})`,
        () => mm.madvise(addr, length, advice),
        errno(ENOMEM),
      );
    }
    add(`mm.mincore(${label})`, () => mm.mincore(addr, length), errno(ENOMEM));
  }

  // kernel.maxMapCount: anything but an integer in [1, 2^31 - 1] throws, and the limit stays
  for (const [label, value] of [...MALFORMED, ['0', 0], ['2^31', 2 ** 31]]) {
    add(
      `kernel.maxMapCount = ${label}`,
      () => {
        k.maxMapCount = any(value);
      },
      accessorError(value),
    );
  }

  // mm.findVma: null where there is no VMA
  for (const [label, value] of [
    ...MALFORMED.filter(
      ([, v]) => !(typeof v === 'number' && Number.isFinite(v) && !Number.isInteger(v)),
    ),
    ['0', 0],
    ['a hole', w.hole],
    ['TASK_SIZE', TASK_SIZE],
    ['rw + 0.5 (not an integer)', w.rw + 0.5],
  ]) {
    add(`mm.findVma(${label})`, () => mm.findVma(any(value)), returns(null));
  }

  // user access: malformed arguments throw, bad pages fault, nothing is written
  for (const [label, value] of MALFORMED) {
    add(`mm.read(${label}, 8)`, () => mm.read(any(value), 8), accessorError(value));
    add(`mm.read(rw, ${label})`, () => mm.read(w.rw, any(value)), accessorError(value));
    add(
      `mm.write(${label}, 8 bytes)`,
      () => {
        mm.write(any(value), new Uint8Array(8).fill(0xee));
      },
      accessorError(value),
    );
    add(`mm.segments(${label}, 8)`, () => mm.segments(any(value), 8), accessorError(value));
    add(`mm.segments(rw, ${label})`, () => mm.segments(w.rw, any(value)), accessorError(value));
  }
  for (const [label, value] of NOT_BYTES) {
    add(
      `mm.write(rw, ${label})`,
      () => {
        mm.write(w.rw, any(value));
      },
      throws(TypeError),
    );
  }
  add('mm.segments(rw, 8, null)', () => mm.segments(w.rw, 8, any(null)), throws(TypeError));
  const userFaults: [string, number, number, SegvCode | BusCode, number, boolean][] = [
    // label, uaddr, length, code, faulting address, applies to reads too
    ['a hole', w.hole, 8, 'SEGV_MAPERR', w.hole, true],
    // a permitted access to a VMA's page with no PTE: SIGBUS (a driver mapping with no fault handler)
    ['an empty VMA (no PTE)', w.empty, 8, 'BUS_ADRERR', w.empty, true],
    ['page 0', 0, 8, 'SEGV_MAPERR', 0, true],
    ['TASK_SIZE', TASK_SIZE, 8, 'SEGV_MAPERR', TASK_SIZE, true],
    ['a kernel address', w.user, 8, 'SEGV_MAPERR', w.user, true],
    ['2^53 - 1', 2 ** 53 - 1, 1, 'SEGV_MAPERR', 2 ** 53 - 1, true],
    ['a PROT_NONE page', w.none + 5, 8, 'SEGV_ACCERR', w.none + 5, true],
    ['a read-only page', w.ro + 8, 8, 'SEGV_ACCERR', w.ro + 8, false],
    [
      'rw running into the next page (empty VMA or hole)',
      w.rw + 3 * P,
      2 * P,
      'SEGV_MAPERR',
      w.rw + 4 * P,
      true,
    ],
    ['rw with a 2^40-byte length', w.rw, 2 ** 40, 'SEGV_MAPERR', w.rw + 4 * P, true],
  ];
  for (const [label, uaddr, length, code, at, reads] of userFaults) {
    if (reads) {
      add(`mm.read(${label})`, () => mm.read(uaddr, length), segv(code, at));
      add(`mm.segments(${label})`, () => mm.segments(uaddr, length), segv(code, at));
    }
    if (length <= 2 * P) {
      add(
        `mm.write(${label})`,
        () => {
          mm.write(uaddr, new Uint8Array(length).fill(0xee));
        },
        segv(code, at),
      );
    }
    add(
      `mm.segments(${label}, { write: true })`,
      () => mm.segments(uaddr, length, { write: true }),
      segv(code, at),
    );
  }

  // destroyed address spaces: every call is an error, a fault or a no-op; the reborn mm in the
  // reused slot is untouched
  for (const [which, d] of [
    ['dead', w.dead],
    ['deadReused', w.deadReused],
  ] as const) {
    add(
      `${which}.mmap(0, 2 pages, RW, MAP_SHARED)`,
      () => d.mmap(0, 2 * P, RW, MAP_SHARED),
      errno(EINVAL),
    );
    add(
      `${which}.mmap(rw, 2 pages, RW, MAP_FIXED)`,
      () => d.mmap(w.rw, 2 * P, RW, FIXED),
      errno(EINVAL),
    );
    add(`${which}.munmap(rw, 4 pages)`, () => d.munmap(w.rw, 4 * P), errno(EINVAL));
    add(
      `${which}.mprotect(rw, 4 pages, PROT_READ)`,
      () => d.mprotect(w.rw, 4 * P, PROT_READ),
      errno(EINVAL),
    );
    add(`${which}.findVma(rw)`, () => d.findVma(w.rw), returns(null));
    add(`${which}.maps()`, () => d.maps(), returns(''));
    add(`${which}.pagemap()`, () => d.pagemap(), returns([]));
    add(`${which}.vmas()`, () => d.vmas(), returns([]));
    add(`${which}.smaps()`, () => d.smaps(), returns(''));
    add(
      `${which}.mremap(rw, 4 pages, 4 pages, MAYMOVE | FIXED, hole)`,
      () => d.mremap(w.rw, 4 * P, 4 * P, MREMAP_MAYMOVE | MREMAP_FIXED, w.hole),
      errno(EINVAL),
    );
    add(
      `${which}.madvise(rw, 4 pages, MADV_DONTNEED)`,
      () => d.madvise(w.rw, 4 * P, MADV_DONTNEED),
      errno(EINVAL),
    );
    add(`${which}.mincore(rw, 4 pages)`, () => d.mincore(w.rw, 4 * P), errno(EINVAL));
    add(`${which}.read(rw, 8)`, () => d.read(w.rw, 8), segv('SEGV_MAPERR', w.rw));
    add(
      `${which}.write(rw, 8 bytes)`,
      () => {
        d.write(w.rw, new Uint8Array(8));
      },
      segv('SEGV_MAPERR', w.rw),
    );
    add(`${which}.segments(rw, 8)`, () => d.segments(w.rw, 8), segv('SEGV_MAPERR', w.rw));
    add(
      `${which}.destroy() again`,
      () => {
        d.destroy();
      },
      returns(undefined),
    );
  }

  // remapPartial and its alias: every bad VMA, then every bad argument against a good VMA
  const badVmas: Bad[] = [
    ...NON_NUMBERS,
    ['42', 42],
    [
      'a plain object shaped like a Vma',
      { start: w.empty, end: w.empty + 8 * P, prot: RW, flags: 0 },
    ],
    ['an address space', w.mm],
    ['an object with only the Vma prototype', Object.create(Vma.prototype) as unknown],
    ['a Vma built with no kernel', forgeVma(null, 0, 0)],
    ['a Vma built with a slot past the VMA table', forgeVma(kernelMem(k), 1e9, 0)],
    ['a Vma built with a negative slot', forgeVma(kernelMem(k), -1, 0)],
    ['a Vma built with a fractional slot', forgeVma(kernelMem(k), 0.5, 0)],
    ['a stale Vma (wholly unmapped)', w.staleVma],
    ['a stale Vma whose slot was reused', w.staleReusedVma],
    ['a Vma of a destroyed address space', w.deadVma],
    ['a Vma of a destroyed address space whose slot was reused', w.deadReusedVma],
  ];
  const remaps = [
    ['remapPartial', remapPartial],
    ['remapVmallocRangePartial', remapVmallocRangePartial],
  ] as const;
  for (const [fn, remap] of remaps) {
    for (const [label, value] of badVmas) {
      add(
        `${fn}(${label}, empty, spare, 4 pages)`,
        () => remap(any(value), w.empty, w.spare, 4 * P),
        errno(EINVAL),
      );
    }
  }
  add(
    "remapPartial(another kernel's Vma, its start, this kernel's area, 4 pages)",
    () => remapPartial(w.k2Vma, w.k2Vma.start + 4 * P, w.spare, 4 * P),
    errno(EINVAL),
  );
  for (const [label, value] of [...MALFORMED, ['empty + 1 (unaligned)', w.empty + 1] as Bad]) {
    add(
      `remapPartial(emptyVma, ${label}, spare, 4 pages)`,
      () => remapPartial(w.emptyVma, any(value), w.spare, 4 * P),
      errno(EINVAL),
    );
  }
  for (const [label, value] of [
    ['another VMA (rw)', w.rw],
    ['a hole', w.hole],
    ['2^52', 2 ** 52],
    ['empty + 6 pages (runs past the VMA)', w.empty + 6 * P],
    ['TASK_SIZE', TASK_SIZE],
  ] as const) {
    add(
      `remapPartial(emptyVma, ${label}, spare, 4 pages)`,
      () => remapPartial(w.emptyVma, value, w.spare, 4 * P),
      errno(EFAULT),
    );
  }
  for (const [label, value] of [
    ...MALFORMED,
    ['spare + 1 (unaligned)', w.spare + 1],
    ['a freed area', w.freed],
    ['a vmalloc area (no VM_USERMAP)', w.plain],
    ['a vzalloc area (no VM_USERMAP)', w.zeroed],
    ['a user address', w.rw],
    ['VMALLOC_START - PAGE_SIZE', VMALLOC_START - P],
    ["another kernel's area", w.k2Area],
  ]) {
    add(
      `remapPartial(emptyVma, empty, ${label}, 4 pages)`,
      () => remapPartial(w.emptyVma, w.empty, any(value), 4 * P),
      errno(EINVAL),
    );
  }
  add(
    'remapPartial(emptyVma, empty, spare guard page, 1 page)',
    () => remapPartial(w.emptyVma, w.empty, w.spare + 4 * P, P),
    errno(EINVAL),
  );
  for (const [label, value] of [
    ...MALFORMED,
    ['0', 0],
    ['5 pages (more than the area)', 5 * P],
    ['4 pages + 1 (rounds up past the area)', 4 * P + 1],
    ['2^52', 2 ** 52],
  ]) {
    add(
      `remapPartial(emptyVma, empty, spare, ${label})`,
      () => remapPartial(w.emptyVma, w.empty, w.spare, any(value)),
      errno(EINVAL),
    );
  }
  add(
    'remapPartial(rwVma, rw, spare, 4 pages) over PTEs',
    () => remapPartial(w.rwVma, w.rw, w.spare, 4 * P),
    errno(EBUSY),
  );

  // remapVmallocRange
  for (const [label, value] of badVmas) {
    add(
      `remapVmallocRange(${label}, spare, 0)`,
      () => remapVmallocRange(any(value), w.spare, 0),
      errno(EINVAL),
    );
  }
  for (const [label, value] of [
    ...MALFORMED,
    ['spare + 1 (unaligned)', w.spare + 1],
    ['a freed area', w.freed],
    ['a vmalloc area (no VM_USERMAP)', w.plain],
    ['a user address', w.rw],
    ["another kernel's area", w.k2Area],
  ]) {
    add(
      `remapVmallocRange(fitVma, ${label}, 0)`,
      () => remapVmallocRange(w.fitVma, any(value), 0),
      errno(EINVAL),
    );
  }
  for (const [label, value] of [
    ...MALFORMED,
    ['1 (the VMA then runs past the area)', 1],
    ['2^40 (kaddr + offset leaves the vmalloc range)', 2 ** 40],
    ['2^41 (offset is not a safe integer)', 2 ** 41],
  ]) {
    add(
      `remapVmallocRange(fitVma, spare, ${label})`,
      () => remapVmallocRange(w.fitVma, w.spare, any(value)),
      errno(EINVAL),
    );
  }
  add(
    'remapVmallocRange(rwVma, user, 0) over PTEs',
    () => remapVmallocRange(w.rwVma, w.user, 0),
    errno(EBUSY),
  );

  // thread recovery and read sections: a malformed selector throws, one matching no other
  // attachment reaps nothing; leaving a read section that is not open throws
  for (const [label, value] of [
    ['null', null],
    ['undefined', undefined],
    ['42', 42],
    ["'tid'", 'tid'],
  ] as const) {
    add(`kernel.reapThread(${label})`, () => k.reapThread(any(value)), throws(TypeError));
  }
  for (const [label, value] of [
    ['{}', {}],
    ['{ tid: NaN }', { tid: NaN }],
    ['{ tid: -1 }', { tid: -1 }],
    ['{ tid: 2^40 }', { tid: 2 ** 40 }],
    ["{ tid: '1' }", { tid: '1' }],
    ['{ threadId: NaN }', { threadId: NaN }],
    ['{ threadId: -1 }', { threadId: -1 }],
    ['{ threadId: 2^40 }', { threadId: 2 ** 40 }],
    ["{ threadId: 'main' }", { threadId: 'main' }],
  ] as const) {
    add(`kernel.reapThread(${label})`, () => k.reapThread(any(value)), returns(0));
  }
  for (const [label, value] of [
    ['NaN', NaN],
    ["'1000'", '1000'],
    ['null', null],
  ] as const) {
    add(
      `kernel.reapThread({ threadId: 1 }, ${label})`,
      () => k.reapThread({ threadId: 1 }, any(value)),
      errno(EINVAL),
    );
  }
  add(
    'kernel.rcuReadUnlock() outside any read section',
    () => {
      k.rcuReadUnlock();
    },
    throws(Error),
  );
  return cases;
}

// ---------------------------------------------------------------------------------------------
// Running the table.

function outcome(
  call: () => unknown,
): { ok: true; value: unknown } | { ok: false; error: unknown } {
  try {
    return { ok: true, value: call() };
  } catch (error) {
    return { ok: false, error };
  }
}

function checkAnswer(answer: Answer, got: ReturnType<typeof outcome>): void {
  switch (answer.kind) {
    case 'returns':
    case 'badFree':
      if (!got.ok) throw got.error;
      expect(got.value).toEqual(answer.kind === 'returns' ? answer.value : undefined);
      return;
    case 'throws': {
      expect(got.ok ? `returned ${String(got.value)}` : 'threw').toBe('threw');
      if (got.ok) return;
      const error = got.error;
      expect(error).toBeInstanceOf(Error);
      expect(error).not.toBeInstanceOf(SegmentationFault);
      const matches = answer.errors.some((cls) => error instanceof cls);
      expect(matches ? 'expected class' : `${(error as Error).name}: ${String(error)}`).toBe(
        'expected class',
      );
      return;
    }
    case 'segv': {
      if (got.ok) throw new Error(`expected a fault, returned ${String(got.value)}`);
      const fault = answer.code === 'BUS_ADRERR' ? BusError : SegmentationFault;
      if (!(got.error instanceof fault)) throw got.error;
      expect({ code: got.error.code, address: got.error.address }).toEqual({
        code: answer.code,
        address: answer.address,
      });
      return;
    }
  }
}

// Every case runs in the same world while calls keep it unchanged; after a case that failed (and
// so may have changed it), the next one gets a fresh world built the same way.
let world = makeWorld();
let cases = buildCases(world);
let dirty = false;
let tried = 0;

afterAll(() => {
  console.log(`bad-input: ${tried} bad inputs tried (${cases.length} in the table)`);
});

describe('every public function, fed every kind of bad value, answers as the contract says and changes nothing', () => {
  it.each(cases.map((c, i) => [c.name, i] as const))('%s', (_name, i) => {
    if (dirty) {
      world = makeWorld();
      cases = buildCases(world);
    }
    dirty = true;
    const c = cases[i]!;
    const { k, k2 } = world;
    const before = snapshot(k);
    const before2 = snapshot(k2, false);
    const got = outcome(c.call);
    tried++;
    checkAnswer(c.answer, got);
    expect(diffSnapshots(before, snapshot(k), c.answer.kind === 'badFree' ? 1 : 0)).toEqual([]);
    expect(diffSnapshots(before2, snapshot(k2, false))).toEqual([]);
    k.checkInvariants();
    k2.checkInvariants();
    dirty = false;
  });
});

describe('read sections under bad input', () => {
  it('closes the section when the callback of readSection is not a function', () => {
    const { k } = makeWorld();
    expect(() => k.readSection('not a function' as never)).toThrow(TypeError);
    expect(() => {
      k.rcuReadUnlock();
    }).toThrow(Error);
    expect(k.stats().deferredFrames).toBe(0);
  });
});

describe('the baselines the table perturbs', () => {
  it('succeeds with good arguments in a world built the same way, so each bad value is what fails', () => {
    const w = makeWorld();
    const { k, mm } = w;
    expect(remapPartial(w.emptyVma, w.empty, w.spare, 4 * P)).toBe(0);
    expect(mm.munmap(w.empty, 8 * P)).toBe(0);
    expect(remapVmallocRange(w.fitVma, w.spare, 0)).toBe(0);
    expect(mm.mmap(0, 2 * P, RW, MAP_SHARED)).toBeGreaterThan(0);
    expect(mm.mmap(w.hole, P, RW, FIXED)).toBe(w.hole);
    expect(mm.mprotect(w.rw, P, PROT_READ)).toBe(0);
    expect(mm.munmap(w.rw + 3 * P, P)).toBe(0);
    expect(mm.mincore(w.rw, 3 * P)).toEqual(Uint8Array.of(1, 1, 1));
    expect(mm.madvise(w.rw, 3 * P, MADV_WILLNEED)).toBe(0);
    const grow = mm.mmap(0, P, RW, MAP_SHARED);
    expect(mm.mremap(grow, P, 2 * P, MREMAP_MAYMOVE)).toBeGreaterThan(0);
    expect(mm.mremap(w.rw, P, P, MREMAP_MAYMOVE | MREMAP_FIXED, w.hole)).toBe(w.hole);
    expect(mm.mmap(0x1000_0000, P, RW, MAP_SHARED | MAP_FIXED_NOREPLACE)).toBe(0x1000_0000);
    expect(mm.read(w.rw + P, 8)).toHaveLength(8);
    mm.write(w.rw + P, new Uint8Array(8));
    expect(mm.segments(w.rw + P, 8, { write: true })).toHaveLength(1);
    expect(k.readKernel(w.user, 4 * P)).toHaveLength(4 * P);
    k.writeKernel(w.user + 3 * P, new Uint8Array(P));
    expect(k.vmallocAligned(P, 2 * P)).not.toBeNull();
    expect(k.addressSpace(w.reborn.id).id).toBe(w.reborn.id);
    const kaddr = k.vmalloc(P);
    expect(kaddr).not.toBeNull();
    k.vfree(kaddr);
    expect(k.stats().badFrees).toBe(0);
    expect(Kernel.attach(k.handle).stats().totalFrames).toBe(k.stats().totalFrames);
    k.checkInvariants();
  });
});
