/**
 * User access: how a user process (and the kernel) touches memory through page tables.
 *
 * Kernel counterparts: `copy_from_user`/`copy_to_user` (`lib/usercopy.c`), `get_user_pages_fast`
 * (a lock-free walk that returns the pages themselves) and the page-fault path that turns a
 * missing or forbidding PTE into `SIGSEGV`.
 *
 * All three accessors walk the page tables afresh on every call, lock-free (`Atomics.load` of each
 * entry), and check the address space's generation after the walk: a destroyed address space
 * faults with `SEGV_MAPERR` instead of handing out frames it no longer owns. Every page of the
 * range is checked before any byte moves, so a faulting `write` writes nothing. `read` and `write`
 * copy inside a read section (rcu.ts): frames that another thread unmaps during the copy are not
 * reused until it is done. Views from `segments` outlive the call: a caller that keeps them while
 * other threads may unmap holds its own read section (`kernel.readSection`).
 *
 * @module
 */
import { PAGE_SIZE } from './errno.js';
import { MM_DESTROYED, SegmentationFault, type SegvCode } from './fault.js';
import { Mm, TASK_SIZE, Thread, ThreadState, VMALLOC_START } from './layout.js';
import { mmLoad } from './mm.js';
import {
  pteAllows,
  pteInMemory,
  ptePfn,
  validatedWalk,
  walkPte,
  walkRange,
  type MmRef,
} from './pgtable.js';
import type { PhysMem } from './phys-mem.js';
import { othersReading, rcuReadLock, rcuReadUnlock } from './rcu.js';
import { SoftTlb } from './tlb.js';
import { cpuRelax, pause } from './cpu-relax.js';
import { checkAttached, threadWord } from './thread.js';
import {
  typedArrayBuffer,
  typedArrayByteOffset,
  typedArrayLength,
  typedArrayTag,
} from './typed-intrinsics.js';

/** Validate an address or length argument: `TypeError` for a non-number, `RangeError` otherwise. */
export function checkUnsigned(name: string, value: unknown): number {
  if (typeof value !== 'number')
    throw new TypeError(`${name} must be a number, got ${typeof value}`);
  if (!Number.isSafeInteger(value) || value < 0) {
    throw new RangeError(`${name} must be a non-negative safe integer, got ${value}`);
  }
  return value;
}

/**
 * A fresh view of exactly the bytes a caller's `Uint8Array` (or `Buffer`) covers, built from the
 * intrinsic accessors: a replaced `subarray`, `length` or `buffer` on the caller's object changes
 * nothing the copy does. Throws `TypeError` for anything that is not a real `Uint8Array`.
 */
function checkBytes(bytes: unknown): Uint8Array {
  if (typedArrayTag.call(bytes) !== 'Uint8Array') throw new TypeError('bytes must be a Uint8Array');
  return new Uint8Array(
    typedArrayBuffer.call(bytes) as ArrayBufferLike,
    typedArrayByteOffset.call(bytes) as number,
    typedArrayLength.call(bytes) as number,
  );
}

/** Start frame and byte count of each physically contiguous run, flattened: [pfn0, bytes0, …]. */
type Runs = number[];

/**
 * Translate `[addr, addr + length)` page by page with `lookup(page)` (a PTE or 0) into byte runs:
 * `[byteOffsetInMemory, length, …]`. Throws SegmentationFault at the first bad page.
 */
function translate(
  addr: number,
  length: number,
  write: boolean,
  lookup: (page: number) => number,
): Runs {
  const runs: Runs = [];
  if (length === 0) return runs;
  const end = addr + length;
  let runStart = -1;
  let runLen = 0;
  for (let a = addr; a < end;) {
    const page = Math.floor(a / PAGE_SIZE);
    const pageEnd = Math.min(end, (page + 1) * PAGE_SIZE);
    const pte = lookup(page);
    if (pte === 0) throw new SegmentationFault('SEGV_MAPERR', a, write ? 'write' : 'read');
    if (!pteAllows(pte, write)) {
      throw new SegmentationFault('SEGV_ACCERR', a, write ? 'write' : 'read');
    }
    const phys = ptePfn(pte) * PAGE_SIZE + (a - page * PAGE_SIZE);
    if (runStart >= 0 && runStart + runLen === phys) {
      runLen += pageEnd - a;
    } else {
      if (runStart >= 0) runs.push(runStart, runLen);
      runStart = phys;
      runLen = pageEnd - a;
    }
    a = pageEnd;
  }
  runs.push(runStart, runLen);
  return runs;
}

/** Translate a user range through `mm`'s page tables, checking the mm is live before and after. */
function translateUser(mm: MmRef, uaddr: unknown, length: unknown, write: boolean): Runs {
  const { mem, slot, gen } = mm;
  checkAttached(mem);
  const addr = checkUnsigned('uaddr', uaddr);
  const len = checkUnsigned('length', length);
  if (mmLoad(mem, slot, Mm.GEN) !== gen) {
    if (len === 0) return [];
    throw new SegmentationFault('SEGV_MAPERR', addr, write ? 'write' : 'read', MM_DESTROYED);
  }
  const pgd = mmLoad(mem, slot, Mm.PGD);
  return validatedWalk(mm, addr, write, () => walkUserRange(mem, pgd, addr, len, write));
}

/**
 * The page-table walk of {@link translateUser} ({@link walkRange}): a huge entry turns the whole
 * part of the range in its 4 MiB into one run; PTEs of a page table merge into runs where their
 * frames are adjacent. Throws SegmentationFault at the first bad page.
 * Context: any thread, lock-free, inside a {@link validatedWalk}.
 */
function walkUserRange(
  mem: PhysMem,
  pgd: number,
  addr: number,
  length: number,
  write: boolean,
): Runs {
  const runs: Runs = [];
  if (length === 0) return runs;
  const end = addr + length;
  if (end > TASK_SIZE) {
    // the walk covers user space only: fault at the first page past it, unless one before faults
    const inside = Math.max(addr, TASK_SIZE);
    if (addr < TASK_SIZE) walkUserRange(mem, pgd, addr, TASK_SIZE - addr, write);
    throw new SegmentationFault('SEGV_MAPERR', inside, write ? 'write' : 'read');
  }
  let runStart = -1;
  let runLen = 0;
  let faultAt = -1;
  let code: SegvCode = 'SEGV_MAPERR';
  const first = Math.floor(addr / PAGE_SIZE);
  walkRange(mem, pgd, first, Math.ceil(end / PAGE_SIZE), (upage, pte, nrPages) => {
    const at = Math.max(addr, upage * PAGE_SIZE); // the first byte of the range in these pages
    if (pte === 0 || !pteInMemory(mem, pte, nrPages) || !pteAllows(pte, write)) {
      // thrown below, out of the walk: the fault's stack then starts near the caller's frame
      faultAt = at;
      if (pte !== 0 && pteInMemory(mem, pte, nrPages)) code = 'SEGV_ACCERR';
      return false;
    }
    const stop = Math.min(end, (upage + nrPages) * PAGE_SIZE);
    const phys = ptePfn(pte) * PAGE_SIZE + (at - upage * PAGE_SIZE);
    if (runStart >= 0 && runStart + runLen === phys) runLen += stop - at;
    else {
      if (runStart >= 0) runs.push(runStart, runLen);
      runStart = phys;
      runLen = stop - at;
    }
    return true;
  });
  if (faultAt >= 0) throw new SegmentationFault(code, faultAt, write ? 'write' : 'read');
  runs.push(runStart, runLen);
  return runs;
}

function views(mem: PhysMem, runs: Runs): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let i = 0; i < runs.length; i += 2)
    out.push(new Uint8Array(mem.buffer, runs[i], runs[i + 1]));
  return out;
}

function copyOut(mem: PhysMem, runs: Runs, length: number): Uint8Array {
  const out = new Uint8Array(length);
  let at = 0;
  for (let i = 0; i < runs.length; i += 2) {
    const start = runs[i]!;
    const n = runs[i + 1]!;
    out.set(mem.u8.subarray(start, start + n), at);
    at += n;
  }
  return out;
}

/** Copy `bytes` (a view from {@link checkBytes}: never a caller's object) into the runs. */
function copyIn(mem: PhysMem, runs: Runs, bytes: Uint8Array): void {
  if (runs.length === 2) {
    mem.u8.set(bytes, runs[0]);
    return;
  }
  let at = 0;
  for (let i = 0; i < runs.length; i += 2) {
    const n = runs[i + 1]!;
    mem.u8.set(new Uint8Array(bytes.buffer, bytes.byteOffset + at, n), runs[i]);
    at += n;
  }
}

/** `mm.segments`. Context: any thread, lock-free. */
export function userSegments(
  mm: MmRef,
  uaddr: number,
  length: number,
  write: boolean,
): Uint8Array[] {
  return views(mm.mem, translateUser(mm, uaddr, length, write));
}

/**
 * Run a translate-and-copy through `mm`'s page tables inside a read section, so that frames
 * another thread unmaps meanwhile are not handed to a new owner before the copy is done (rcu.ts),
 * with this thread's copy sequence count odd, so that a munmap, mprotect or destroy that changed
 * the PTEs meanwhile waits for the copy to land before it returns ({@link waitForCopies}).
 */
function copySection<T>(mm: MmRef, fn: () => T): T {
  const { mem } = mm;
  rcuReadLock(mem);
  const seq = mem.current.base + Thread.COPY_SEQ;
  Atomics.store(mem.i32, mem.current.base + Thread.COPY_MM, mm.slot + 1);
  Atomics.add(mem.i32, seq, 1); // odd: copying (after COPY_MM, before the walk)
  try {
    return fn();
  } finally {
    Atomics.add(mem.i32, seq, 1);
    rcuReadUnlock(mem);
  }
}

/** How long a munmap, mprotect or destroy waits for another thread's copy to land. */
const COPY_WAIT_MS = 2000;

/**
 * The TLB shootdown's wait: return once no other thread is still in a copy through mm `slot`'s
 * page tables that may have been checked against the PTEs this call just changed. A copy that
 * began after the change walked the new PTEs, so only copies seen in progress now are waited for,
 * each until its sequence count moves (no starvation). Copies run inside read sections: with no
 * other thread in one there is nothing to scan. Throws `Error` after {@link COPY_WAIT_MS} for a copy
 * that never ends (its thread died and was not reaped); the change itself is complete then.
 * Context: after the TLB flush that changed the PTEs (munmap and mprotect hold the mmap_lock, as
 * Linux's shootdown; destroy has released the dead mm).
 */
export function waitForCopies(mem: PhysMem, slot: number): void {
  if (!othersReading(mem)) return;
  const { i32 } = mem;
  let deadline = 0;
  for (let t = 0; t < mem.layout.maxThreads; t++) {
    if (t === mem.current.slot) continue;
    const seqAt = threadWord(mem, t, Thread.COPY_SEQ);
    const seq = Atomics.load(i32, seqAt);
    if ((seq & 1) === 0 || Atomics.load(i32, threadWord(mem, t, Thread.COPY_MM)) !== slot + 1)
      continue;
    for (let spins = 0; Atomics.load(i32, seqAt) === seq; spins++) {
      const state = Atomics.load(i32, threadWord(mem, t, Thread.STATE));
      if (state === ThreadState.FREE || state === ThreadState.DEAD) break;
      if (spins > 64) pause(i32, seqAt, seq, 0.05);
      else cpuRelax();
      if (deadline === 0) deadline = Date.now() + COPY_WAIT_MS;
      else if (Date.now() > deadline) {
        throw new Error(
          `address space ${slot + 1}: the mapping changed, but a copy through it by thread slot ` +
            `${t} has not ended in ${COPY_WAIT_MS} ms — a thread died inside mm.read or mm.write ` +
            'and was not reaped (kernel.reapThread)',
        );
      }
    }
  }
}

/** `mm.read` (`copy_from_user`). Context: any thread, lock-free (inside a read section). */
export function userRead(mm: MmRef, uaddr: number, length: number): Uint8Array {
  return copySection(mm, () => copyOut(mm.mem, translateUser(mm, uaddr, length, false), length));
}

/** `mm.write` (`copy_to_user`). Context: any thread, lock-free (inside a read section). */
export function userWrite(mm: MmRef, uaddr: number, bytes: Uint8Array): void {
  const src = checkBytes(bytes);
  copySection(mm, () => {
    copyIn(mm.mem, translateUser(mm, uaddr, src.length, true), src);
  });
}

/**
 * Index into `i32` of the aligned 32-bit word at user address `uaddr`, translated afresh; throws
 * like the other accessors. Context: any thread, lock-free.
 */
function userWordIndex(mm: MmRef, uaddr: unknown, write: boolean): number {
  const access = write ? 'write' : 'read';
  if (typeof uaddr !== 'number') throw new TypeError(`uaddr must be a number, got ${typeof uaddr}`);
  if (!Number.isSafeInteger(uaddr) || uaddr < 0 || uaddr % 4 !== 0) {
    throw new RangeError(`uaddr must be a 4-byte-aligned non-negative safe integer, got ${uaddr}`);
  }
  const { mem, slot, gen } = mm;
  if (uaddr >= TASK_SIZE) throw new SegmentationFault('SEGV_MAPERR', uaddr, access);
  if (mmLoad(mem, slot, Mm.GEN) !== gen)
    throw new SegmentationFault('SEGV_MAPERR', uaddr, access, MM_DESTROYED);
  const page = Math.floor(uaddr / PAGE_SIZE);
  const pte = walkPte(mem, mmLoad(mem, slot, Mm.PGD), page);
  if (pte === 0 || !pteInMemory(mem, pte, 1))
    throw new SegmentationFault('SEGV_MAPERR', uaddr, access);
  if (!pteAllows(pte, write)) throw new SegmentationFault('SEGV_ACCERR', uaddr, access);
  return ptePfn(pte) * (PAGE_SIZE / 4) + ((uaddr - page * PAGE_SIZE) >> 2);
}

/** An address space handle with its thread's translation cache. */
export interface TlbRef extends MmRef {
  tlb: SoftTlb | undefined;
}

/**
 * `mm.getUser32` (`get_user` of an aligned 32-bit word): through this thread's translation cache
 * when it can vouch for the page, else a page-table walk validated by the TLB generation (a
 * sequence count: a munmap or mprotect that overlaps the walk makes it retry).
 * Context: any thread, lock-free.
 */
export function getUser32(mm: TlbRef, uaddr: number): number {
  if (typeof uaddr !== 'number') throw new TypeError(`uaddr must be a number, got ${typeof uaddr}`);
  checkAttached(mm.mem);
  mm.tlb ??= new SoftTlb(mm.mem, mm.slot, mm.gen);
  const cached = mm.tlb.read(uaddr);
  if (cached !== undefined) return cached;
  const { i32 } = mm.mem;
  return validatedWalk(mm, uaddr, false, () => i32[userWordIndex(mm, uaddr, false)]!);
}

/**
 * `mm.getUser32v`: the aligned words at `uaddrs[i]` into `out[i]`, as {@link getUser32} reads them,
 * with the translation cache validated once for the whole batch instead of once per word: the
 * batch is one {@link validatedWalk}, so a batch that overlapped a munmap, mprotect or destroy (the
 * generation moved) is read again. Every value returned was read while the mapping it came
 * through was in place. Words the cache cannot vouch for are read through {@link getUser32}
 * (which faults as it does; `out` then holds the words before the fault).
 * Context: any thread, lock-free.
 */
export function getUser32v(mm: TlbRef, uaddrs: ArrayLike<number>, out: Int32Array): Int32Array {
  checkAttached(mm.mem);
  const n = uaddrs.length;
  mm.tlb ??= new SoftTlb(mm.mem, mm.slot, mm.gen);
  const { tlb } = mm;
  const first = n > 0 && typeof uaddrs[0] === 'number' ? uaddrs[0] : 0;
  return validatedWalk(mm, first, false, (before) => {
    for (let i = 0; i < n;) {
      // a run of cached words, then one word through the checked path (which fills the cache)
      if (before === tlb.generation) i = tlb.gather(uaddrs, out, i);
      if (i < n) {
        out[i] = getUser32(mm, uaddrs[i]!);
        i++;
      }
    }
    return out;
  });
}

/**
 * `mm.putUser32` (`put_user` of an aligned 32-bit word), inside a read section so that the frame
 * cannot change owner between the walk and the store. Context: any thread, lock-free.
 */
export function putUser32(mm: MmRef, uaddr: number, value: number): void {
  if (typeof value !== 'number') throw new TypeError(`value must be a number, got ${typeof value}`);
  copySection(mm, () => {
    Atomics.store(mm.mem.i32, userWordIndex(mm, uaddr, true), value);
  });
}

/** Translate a kernel range through the kernel page table of the vmalloc range. */
function translateKernel(mem: PhysMem, kaddr: unknown, length: unknown, write: boolean): Runs {
  const addr = checkUnsigned('kaddr', kaddr);
  const len = checkUnsigned('length', length);
  const firstPage = VMALLOC_START / PAGE_SIZE;
  const { vmallocPages } = mem.layout;
  return translate(addr, len, write, (page) => {
    const index = page - firstPage;
    if (index < 0 || index >= vmallocPages) return 0;
    return Atomics.load(mem.i32, mem.kernelPageTable + index);
  });
}

/** `kernel.readKernel`: a copy through the vmalloc mapping. Context: any thread, lock-free. */
export function readKernel(mem: PhysMem, kaddr: number, length: number): Uint8Array {
  return copyOut(mem, translateKernel(mem, kaddr, length, false), length);
}

/** `kernel.writeKernel`: write through the vmalloc mapping. Context: any thread, lock-free. */
export function writeKernel(mem: PhysMem, kaddr: number, bytes: Uint8Array): void {
  const src = checkBytes(bytes);
  copyIn(mem, translateKernel(mem, kaddr, src.length, true), src);
}
