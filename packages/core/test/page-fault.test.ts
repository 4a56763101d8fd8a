/**
 * The fault rule of user access: a faulting access is decided by the VMA, as Linux's page-fault
 * handler decides it (`arch/x86/mm/fault.c`: `do_user_addr_fault`, `access_error`; `SIGBUS`
 * for a driver mapping whose page has no PTE):
 * - no VMA covers the address → `SegmentationFault` `SEGV_MAPERR`;
 * - the VMA forbids the access (a write without `PROT_WRITE`, any access to `PROT_NONE`) →
 *   `SEGV_ACCERR`, whether or not the page has a PTE;
 * - the VMA permits it and the page has no PTE → `BusError` `BUS_ADRERR`.
 * Every accessor follows it: read, write, segments, getUser32, getUser32v, putUser32.
 */
import { describe, expect, it } from 'vitest';
import {
  BusError,
  MAP_SHARED,
  PAGE_SIZE,
  PROT_NONE,
  PROT_READ,
  PROT_WRITE,
  SegmentationFault,
  VM_READ,
  VM_SHARED,
  VM_WRITE,
  remapPartial,
  type AddressSpace,
} from '../src/index.js';
import { RW, setupMapping } from './helpers/mm-helpers.js';

const P = PAGE_SIZE;

/** The error `fn` throws, as `{ kind, code, address }` (or `'returned'`). */
function faultOf(fn: () => unknown): { kind: string; code: string; address: number } | string {
  try {
    fn();
  } catch (e) {
    if (e instanceof SegmentationFault || e instanceof BusError)
      return { kind: e.name, code: e.code, address: e.address };
    throw e;
  }
  return 'returned';
}

const segv = (code: string, address: number): object => ({
  kind: 'SegmentationFault',
  code,
  address,
});
const bus = (address: number): object => ({ kind: 'BusError', code: 'BUS_ADRERR', address });

/** Every accessor, reading or writing `[uaddr, uaddr + 8)` (the word accessors at uaddr). */
function readers(mm: AddressSpace, uaddr: number): [string, () => unknown][] {
  return [
    ['read', () => mm.read(uaddr, 8)],
    ['segments', () => mm.segments(uaddr, 8)],
    ['getUser32', () => mm.getUser32(uaddr)],
    ['getUser32v', () => mm.getUser32v([uaddr])],
  ];
}
function writers(mm: AddressSpace, uaddr: number): [string, () => unknown][] {
  return [
    [
      'write',
      () => {
        mm.write(uaddr, new Uint8Array(8));
      },
    ],
    ['segments write', () => mm.segments(uaddr, 8, { write: true })],
    [
      'putUser32',
      () => {
        mm.putUser32(uaddr, 7);
      },
    ],
  ];
}

describe('a fault is decided by the VMA', () => {
  it('SEGV_MAPERR where no VMA is', () => {
    const { mm, uaddr } = setupMapping({ vmaPages: 2 });
    const hole = uaddr + 2 * P;
    expect(mm.findVma(hole)).toBeNull();
    for (const [name, fn] of [...readers(mm, hole), ...writers(mm, hole)])
      expect(faultOf(fn), name).toEqual(segv('SEGV_MAPERR', hole));
  });

  it('BUS_ADRERR for a permitted access to a page of the VMA that has no PTE', () => {
    const { mm, uaddr } = setupMapping({ vmaPages: 4 });
    for (const [name, fn] of [...readers(mm, uaddr + 8), ...writers(mm, uaddr + 8)])
      expect(faultOf(fn), name).toEqual(bus(uaddr + 8));
  });

  it('BUS_ADRERR at the first page with no PTE when a range runs from a mapped page into one', () => {
    const { mm, uaddr, kaddr, vma } = setupMapping({ areaPages: 4, vmaPages: 4 });
    expect(remapPartial(vma, uaddr, kaddr, 2 * P)).toBe(0);
    const from = uaddr + 2 * P - 4;
    expect(faultOf(() => mm.read(from, 8))).toEqual(bus(uaddr + 2 * P));
    expect(
      faultOf(() => {
        mm.write(from, new Uint8Array(8));
      }),
    ).toEqual(bus(uaddr + 2 * P));
    expect(faultOf(() => mm.segments(from, 8))).toEqual(bus(uaddr + 2 * P));
    expect(faultOf(() => mm.getUser32v([uaddr, uaddr + 3 * P]))).toEqual(bus(uaddr + 3 * P));
  });

  it('SEGV_ACCERR for a write to a read-only VMA and any access to PROT_NONE, with or without PTEs', () => {
    // arch/x86/mm/fault.c access_error(): the VMA's flags decide, before any PTE is looked at
    const { k, mm, kaddr } = setupMapping({ areaPages: 4, vmaPages: 4 });
    for (const prot of [PROT_READ, PROT_NONE]) {
      for (const mapped of [false, true]) {
        const at = mm.mmap(0, 2 * P, prot, MAP_SHARED);
        if (mapped) expect(remapPartial(mm.findVma(at)!, at, kaddr, 2 * P)).toBe(0);
        const accesses =
          prot === PROT_NONE ? [...readers(mm, at), ...writers(mm, at)] : writers(mm, at);
        for (const [name, fn] of accesses)
          expect(faultOf(fn), `${name}, prot ${prot}, PTEs ${mapped}`).toEqual(
            segv('SEGV_ACCERR', at),
          );
      }
    }
    k.checkInvariants();
  });

  it('the page of the VMA after an mprotect is decided by its new protection', () => {
    const { mm, uaddr } = setupMapping({ vmaPages: 3 });
    expect(mm.mprotect(uaddr + P, P, PROT_READ)).toBe(0);
    expect(
      faultOf(() => {
        mm.write(uaddr + P, new Uint8Array(1));
      }),
    ).toEqual(segv('SEGV_ACCERR', uaddr + P));
    expect(faultOf(() => mm.read(uaddr + P, 1))).toEqual(bus(uaddr + P));
  });

  it('a destroyed address space faults with SEGV_MAPERR', () => {
    const { mm, uaddr } = setupMapping({ vmaPages: 2 });
    mm.destroy();
    expect(faultOf(() => mm.read(uaddr, 8))).toEqual(segv('SEGV_MAPERR', uaddr));
    expect(faultOf(() => mm.getUser32(uaddr))).toEqual(segv('SEGV_MAPERR', uaddr));
  });
});

describe('PROT_WRITE alone', () => {
  it('is VM_WRITE without VM_READ, shows as -w-s, and lets reads through its PTEs as on x86', () => {
    // calc_vm_prot_bits (include/linux/mman.h): PROT_WRITE maps to VM_WRITE only
    const { k, mm, kaddr } = setupMapping({ areaPages: 2 });
    const at = mm.mmap(0, 2 * P, PROT_WRITE, MAP_SHARED);
    const vma = mm.findVma(at)!;
    expect(vma.flags).toBe(VM_SHARED | VM_WRITE);
    expect(vma.flags & VM_READ).toBe(0);
    const line = mm
      .maps()
      .split('\n')
      .find((l) => l.startsWith(at.toString(16).padStart(8, '0')));
    expect(line).toMatch(/ -w-s /);
    expect(remapPartial(vma, at, kaddr, P)).toBe(0);
    mm.write(at, new Uint8Array([1, 2, 3]));
    expect([...mm.read(at, 3)]).toEqual([1, 2, 3]);
    // no PTE on the second page: the access is permitted, so a bus error, not a SIGSEGV
    expect(faultOf(() => mm.read(at + P, 1))).toEqual(bus(at + P));
    expect(mm.mprotect(at, 2 * P, RW)).toBe(0);
    expect(mm.findVma(at)!.flags & (VM_SHARED | VM_READ | VM_WRITE)).toBe(
      VM_SHARED | VM_READ | VM_WRITE,
    );
    k.checkInvariants();
  });
});
