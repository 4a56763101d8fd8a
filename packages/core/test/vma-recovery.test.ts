/**
 * A thread killed inside a VMA merge or an mremap move: recovery (kernel.reapThread) undoes the
 * uncommitted half from the undo log, or completes the committed one, and the kernel is whole
 * again. The dead thread is a second attachment in this thread that runs the kernel's own steps up
 * to a chosen point and stops there, inside its call, holding the mmap_lock — exactly what a
 * terminated worker leaves behind, at a point a random kill rarely hits.
 */
import { describe, expect, it } from 'vitest';
import {
  Kernel,
  MAP_FIXED,
  MAP_SHARED,
  PAGE_SIZE,
  PROT_READ,
  remapPartial,
  type AddressSpace,
} from '../src/index.js';
import { Mm, VmaWord } from '../src/layout.js';
import { mmGet, mmLockLive } from '../src/mm.js';
import { unmapVmasLocked } from '../src/mmap.js';
import { clearMovedLocked, copyPtesLocked, moveTablesLocked } from '../src/move-ptes.js';
import { kernelEnter } from '../src/thread.js';
import { txBegin, txCommit } from '../src/undo.js';
import { newVmaLocked, vmaAttrsAt } from '../src/vma-list.js';
import { mergeRangeLocked } from '../src/vma-merge.js';
import { reserveVmaSlots, vmaSet } from '../src/vma.js';
import { captureState, MiB, RW } from './helpers/mm-helpers.js';

const P = PAGE_SIZE;

/** A second attachment that enters the kernel and takes `mm`'s mmap_lock, then never returns. */
function doomed(k: Kernel, mm: AddressSpace): Kernel {
  const d = Kernel.attach(k.handle);
  kernelEnter(d.mem);
  expect(mmLockLive(d.mem, mm.slot, mm.gen)).toBe(true);
  return d;
}

describe('a thread killed inside a merge', () => {
  it('is undone: the pieces and every handle are as before the call', () => {
    const k = Kernel.boot({ memoryBytes: 8 * MiB });
    const mm = k.createAddressSpace()!;
    const at = mm.mmap(0x1000_0000, 6 * P, RW, MAP_SHARED | MAP_FIXED);
    expect(mm.mprotect(at + 2 * P, 2 * P, PROT_READ)).toBe(0);
    const handles = mm.vmas();
    const before = captureState(k);
    // mprotect(at + 2P, 2P, RW) dies after the middle piece has its protection and the merge has
    // begun (the lower piece grown, the middle one unlinked), before the commit
    const d = doomed(k, mm);
    txBegin(d.mem);
    const middle = handles[1]!.slot;
    vmaSet(d.mem, middle, VmaWord.PROT, RW);
    vmaSet(d.mem, middle, VmaWord.FLAGS, handles[0]!.flags);
    const merged = mergeRangeLocked(d.mem, mm.slot, at / P + 2, at / P + 4);
    expect(merged).toHaveLength(2); // both upper pieces merged into the lower one
    expect(k.reapThread({ tid: d.tid })).toBe(1);
    k.checkInvariants();
    expect(captureState(k)).toEqual(before);
    expect(handles.map((h) => [h.live, h.start, h.end])).toEqual([
      [true, at, at + 2 * P],
      [true, at + 2 * P, at + 4 * P],
      [true, at + 4 * P, at + 6 * P],
    ]);
    // and the call works once made again
    expect(mm.mprotect(at + 2 * P, 2 * P, RW)).toBe(0);
    expect(mm.vmas()).toHaveLength(1);
    k.checkInvariants();
  });
});

describe('a thread killed inside an mremap move', () => {
  function mapped() {
    const k = Kernel.boot({ memoryBytes: 8 * MiB });
    const mm = k.createAddressSpace()!;
    const kaddr = k.vmallocUser(4 * P)!;
    k.writeKernel(kaddr, new Uint8Array(4 * P).fill(5));
    const at = mm.mmap(0x1000_0000, 4 * P, RW, MAP_SHARED | MAP_FIXED);
    expect(remapPartial(mm.findVma(at)!, at, kaddr, 4 * P)).toBe(0);
    return { k, mm, at, kaddr };
  }

  /** The move's steps up to (`commit` false) or past (true) its commit, by the doomed thread. */
  function moveUntil(k: Kernel, mm: AddressSpace, at: number, to: number, commit: boolean): Kernel {
    const v = mm.findVma(at)!.slot; // (before the mmap_lock is taken for good)
    const d = doomed(k, mm);
    const { mem } = d;
    const pgd = mmGet(mem, mm.slot, Mm.PGD);
    const [slot] = reserveVmaSlots(mem, 1)!;
    expect(moveTablesLocked(mem, mm.slot, pgd, at / P, 4, to / P)).toBe(1);
    const attrs = vmaAttrsAt(mem, v, at / P);
    txBegin(mem);
    copyPtesLocked(mem, mm.slot, pgd, at / P, 4, to / P);
    unmapVmasLocked(mem, mm.slot, at / P, at / P + 4, []);
    newVmaLocked(mem, mm.slot, slot!, to / P, to / P + 4, attrs);
    if (commit) {
      txCommit(mem);
      clearMovedLocked(mem, pgd, at / P, 2); // half the old PTEs cleared, then death
    }
    return d;
  }

  it('before its commit is undone: the old mapping, its PTEs and references, nothing at the new place', () => {
    const { k, mm, at, kaddr } = mapped();
    const pfns = Array.from({ length: 4 }, (_, i) => k.vmallocToPfn(kaddr + i * P)!);
    const before = captureState(k);
    const d = moveUntil(k, mm, at, 0x2000_0000, false);
    expect(k.reapThread({ tid: d.tid })).toBe(1);
    k.checkInvariants();
    const after = captureState(k);
    expect(after.vmas).toEqual(before.vmas);
    expect(after.pagemaps).toEqual(before.pagemaps);
    // (the page table made for the new place stays with the address space, empty, as a remap's)
    expect(pfns.map((pfn) => after.refcounts[pfn])).toEqual(
      pfns.map((pfn) => before.refcounts[pfn]),
    );
    expect(mm.read(at, 4 * P)).toEqual(new Uint8Array(4 * P).fill(5));
  });

  it('after its commit is completed: the new mapping with every PTE, none left at the old place', () => {
    const { k, mm, at, kaddr } = mapped();
    const pfns = Array.from({ length: 4 }, (_, i) => k.vmallocToPfn(kaddr + i * P));
    const d = moveUntil(k, mm, at, 0x2000_0000, true);
    expect(k.reapThread({ tid: d.tid })).toBe(1);
    k.checkInvariants();
    expect(mm.pagemap().map((e) => [e.uaddr, e.pfn])).toEqual(
      pfns.map((pfn, i) => [0x2000_0000 + i * P, pfn]),
    );
    expect(mm.findVma(at)).toBeNull();
    expect(pfns.map((pfn) => k.frameSnapshot().refcounts[pfn!])).toEqual([2, 2, 2, 2]);
    mm.destroy();
    k.vfree(kaddr);
    k.checkInvariants();
  });
});
