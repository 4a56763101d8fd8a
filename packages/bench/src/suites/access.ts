/**
 * Suite `access`: user access through the page tables against the same bytes in a plain typed
 * array — a sequential sum over a 64 MiB mapping, and random 4-byte reads.
 *
 * Three kinds of row separate the two costs a mapping can add:
 * - **subject**: through `mm.segments` (or `mm.read`), translated afresh on every call;
 * - **control**: views over the very same frames, translated once before timing — what is left
 *   when translation is free, so `subject ÷ control` is the translation cost alone;
 * - **baseline**: a plain `Uint8Array`/`Int32Array` holding a copy of the bytes — what a user has
 *   today, so `control ÷ baseline` is the placement effect (shared memory, frame layout).
 *
 * Kernel counterpart: `get_user_pages_fast` (segments) and `copy_from_user` (read).
 *
 * @module
 */
import {
  Kernel,
  MAP_SHARED,
  PROT_READ,
  PROT_WRITE,
  remapPartial,
  type AddressSpace,
} from '@sabvm/core';
import { SuiteBench, type CaseGroup } from '../harness.js';
import { checkIntegrity } from '../integrity.js';
import type { GroupResult } from '../results.js';
import type { Suite, SuiteContext, SuiteOutput } from './suite.js';
import { prng } from './test-vmalloc.js';

/** Bytes of the mapping the suite reads. */
export const ACCESS_BYTES: number = 64 * 2 ** 20;
/** Random reads per timed call. */
export const RANDOM_READS = 16384;

/** Group and row names, shared with the targets. */
export const ACCESS = {
  sequential: 'sequential sum, 64 MiB',
  random: 'random 4-byte reads',
  segments: 'mm.segments',
  read: 'mm.read',
  getUser: 'mm.getUser32',
  getUserV: 'mm.getUser32v',
  control: 'control: same frames, no translation',
  raw: 'raw typed array',
} as const;

/** The `access` suite. */
export const accessSuite: Suite = {
  name: 'access',
  title: 'user access through page tables vs a plain typed array over the same bytes',
  rateLabel: 'bytes/s · reads/s',
  run: runAccess,
};

async function runAccess(ctx: SuiteContext): Promise<SuiteOutput> {
  const kernel = Kernel.boot({ memoryBytes: ACCESS_BYTES + 16 * 2 ** 20 });
  const freeAfterBoot = kernel.stats().freeFrames;
  const kaddr = kernel.vmallocUser(ACCESS_BYTES);
  const mm = kernel.createAddressSpace();
  const groups: GroupResult[] = [];
  const notes: string[] = [];
  try {
    if (kaddr === null || mm === null)
      throw new Error('access: could not allocate 64 MiB and an address space');
    const uaddr = mapArea(mm, kaddr);
    fillPattern(mm.segments(uaddr, ACCESS_BYTES, { write: true }));
    const raw = mm.read(uaddr, ACCESS_BYTES);
    const control = mm.segments(uaddr, ACCESS_BYTES);
    notes.push(
      `The 64 MiB mapping is ${control.length} physically contiguous run(s); segments returns one view per run.`,
    );
    const bench = new SuiteBench('access', ctx.harness);
    groups.push(await bench.runGroup(sequentialGroup(mm, uaddr, raw, control)));
    groups.push(
      await bench.runGroup(randomGroup(mm, uaddr, raw, new Int32Array(kernel.handle.buffer))),
    );
  } finally {
    mm?.destroy();
    kernel.vfree(kaddr);
  }
  return {
    groups,
    measures: [],
    lines: [],
    notes,
    integrity: checkIntegrity(kernel, freeAfterBoot),
  };
}

function mapArea(mm: AddressSpace, kaddr: number): number {
  const uaddr = mm.mmap(0, ACCESS_BYTES, PROT_READ | PROT_WRITE, MAP_SHARED);
  const vma = uaddr > 0 ? mm.findVma(uaddr) : null;
  if (vma === null) throw new Error(`access: mmap failed (${uaddr})`);
  const rc = remapPartial(vma, uaddr, kaddr, ACCESS_BYTES);
  if (rc !== 0) throw new Error(`access: remapPartial failed (${rc})`);
  return uaddr;
}

function fillPattern(views: readonly Uint8Array[]): void {
  let x = 0;
  for (const v of views) {
    for (let i = 0; i < v.length; i++) {
      v[i] = (x * 31 + (x >>> 9)) & 255;
      x++;
    }
  }
}

// Three textually separate sum loops on purpose: one shared function would share its type
// feedback between rows (views over a SharedArrayBuffer vs an ArrayBuffer) and tax them all.
// Every timed loop indexes its typed array: on Node 20, for-of over a typed array is about ten
// times slower than indexing, and would measure the iterator instead of the memory.
/* eslint-disable @typescript-eslint/prefer-for-of */

function sumSegments(views: readonly Uint8Array[]): number {
  let s = 0;
  for (const v of views) {
    for (let i = 0; i < v.length; i++) s = (s + v[i]!) | 0;
  }
  return s;
}

function sumControl(views: readonly Uint8Array[]): number {
  let s = 0;
  for (const v of views) {
    for (let i = 0; i < v.length; i++) s = (s + v[i]!) | 0;
  }
  return s;
}

function sumRaw(v: Uint8Array): number {
  let s = 0;
  for (let i = 0; i < v.length; i++) s = (s + v[i]!) | 0;
  return s;
}

function sequentialGroup(
  mm: AddressSpace,
  uaddr: number,
  raw: Uint8Array,
  control: Uint8Array[],
): CaseGroup {
  const expected = sumRaw(raw);
  const check = (s: number, row: string): void => {
    if (s !== expected) throw new Error(`access: ${row} summed ${s}, expected ${expected}`);
  };
  const common = { unit: 'bytes', unitsPerIteration: ACCESS_BYTES } as const;
  return {
    name: ACCESS.sequential,
    bytes: ACCESS_BYTES,
    cases: [
      {
        ...common,
        name: ACCESS.segments,
        role: 'subject',
        fn: () => {
          check(sumSegments(mm.segments(uaddr, ACCESS_BYTES)), ACCESS.segments);
        },
      },
      {
        ...common,
        name: ACCESS.control,
        role: 'control',
        fn: () => {
          check(sumControl(control), ACCESS.control);
        },
      },
      {
        ...common,
        name: ACCESS.raw,
        role: 'baseline',
        fn: () => {
          check(sumRaw(raw), ACCESS.raw);
        },
      },
    ],
    ratios: [
      {
        name: 'segments ÷ raw',
        subject: ACCESS.segments,
        baseline: ACCESS.raw,
        kind: 'throughput',
      },
      {
        name: 'segments ÷ control (translation)',
        subject: ACCESS.segments,
        baseline: ACCESS.control,
        kind: 'throughput',
      },
      {
        name: 'control ÷ raw (placement)',
        subject: ACCESS.control,
        baseline: ACCESS.raw,
        kind: 'throughput',
      },
    ],
  };
}

function randomGroup(
  mm: AddressSpace,
  uaddr: number,
  raw: Uint8Array,
  phys: Int32Array,
): CaseGroup {
  const rnd = prng(0x61636365);
  const offsets = Int32Array.from(
    { length: RANDOM_READS },
    () => Math.floor(rnd() * (ACCESS_BYTES / 4)) * 4,
  );
  const rawI32 = new Int32Array(raw.buffer, raw.byteOffset, ACCESS_BYTES / 4);
  const physIndex = offsets.map((off) => {
    const [view] = mm.segments(uaddr + off, 4);
    if (view === undefined) throw new Error('access: no view for a mapped word');
    return view.byteOffset >>> 2;
  });
  const uaddrs = Float64Array.from(offsets, (off) => uaddr + off);
  const words = new Int32Array(RANDOM_READS);
  let expected = 0;
  for (const off of offsets) expected = (expected + rawI32[off >>> 2]!) | 0;
  const check = (s: number, row: string): void => {
    if (s !== expected) throw new Error(`access: ${row} read ${s}, expected ${expected}`);
  };
  const common = { unit: 'reads', unitsPerIteration: RANDOM_READS } as const;
  return {
    name: ACCESS.random,
    cases: [
      {
        ...common,
        name: ACCESS.segments,
        role: 'subject',
        fn: () => {
          let s = 0;
          for (let j = 0; j < offsets.length; j++) {
            const v = mm.segments(uaddr + offsets[j]!, 4)[0]!;
            s = (s + (v[0]! | (v[1]! << 8) | (v[2]! << 16) | (v[3]! << 24))) | 0;
          }
          check(s, ACCESS.segments);
        },
      },
      {
        ...common,
        name: ACCESS.getUser,
        role: 'subject',
        fn: () => {
          let s = 0;
          for (let j = 0; j < offsets.length; j++) s = (s + mm.getUser32(uaddr + offsets[j]!)) | 0;
          check(s, ACCESS.getUser);
        },
      },
      {
        ...common,
        name: ACCESS.getUserV,
        role: 'subject',
        fn: () => {
          mm.getUser32v(uaddrs, words);
          let s = 0;
          for (let j = 0; j < words.length; j++) s = (s + words[j]!) | 0;
          check(s, ACCESS.getUserV);
        },
      },
      {
        ...common,
        name: ACCESS.read,
        role: 'subject',
        fn: () => {
          let s = 0;
          for (let j = 0; j < offsets.length; j++) {
            const v = mm.read(uaddr + offsets[j]!, 4);
            s = (s + (v[0]! | (v[1]! << 8) | (v[2]! << 16) | (v[3]! << 24))) | 0;
          }
          check(s, ACCESS.read);
        },
      },
      {
        ...common,
        name: ACCESS.control,
        role: 'control',
        fn: () => {
          let s = 0;
          for (let j = 0; j < physIndex.length; j++) s = (s + phys[physIndex[j]!]!) | 0;
          check(s, ACCESS.control);
        },
      },
      {
        ...common,
        name: ACCESS.raw,
        role: 'baseline',
        fn: () => {
          let s = 0;
          for (let j = 0; j < offsets.length; j++) s = (s + rawI32[offsets[j]! >>> 2]!) | 0;
          check(s, ACCESS.raw);
        },
      },
    ],
    ratios: [
      {
        name: 'segments ÷ raw',
        subject: ACCESS.segments,
        baseline: ACCESS.raw,
        kind: 'throughput',
      },
      { name: 'read ÷ raw', subject: ACCESS.read, baseline: ACCESS.raw, kind: 'throughput' },
      {
        name: 'getUser32 ÷ raw',
        subject: ACCESS.getUser,
        baseline: ACCESS.raw,
        kind: 'throughput',
      },
      {
        name: 'getUser32v ÷ raw',
        subject: ACCESS.getUserV,
        baseline: ACCESS.raw,
        kind: 'throughput',
      },
      {
        name: 'segments ÷ control (translation)',
        subject: ACCESS.segments,
        baseline: ACCESS.control,
        kind: 'throughput',
      },
      {
        name: 'control ÷ raw (placement)',
        subject: ACCESS.control,
        baseline: ACCESS.raw,
        kind: 'throughput',
      },
    ],
  };
}
