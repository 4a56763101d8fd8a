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
import { SegmentationFault } from './fault.js';
import { Mm, MM_WORDS, PTRS_PER_TABLE, TASK_SIZE, VMALLOC_START } from './layout.js';
import { mmLoad, mmWord } from './mm.js';
import { PDE_HUGE, PTE_READ, PTE_WRITE, ptePfn, TABLE_SHIFT, walkPte } from './page-table.js';

/** Bytes one directory slot (a page table, or a huge entry) maps: 4 MiB. */
const HPAGE_SIZE = PTRS_PER_TABLE * PAGE_SIZE;
import type { PhysMem } from './phys-mem.js';
import { rcuReadLock, rcuReadUnlock } from './rcu.js';
import { SoftTlb } from './tlb.js';
import { pause } from './thread.js';
import { cpuRelax } from './cpu-relax.js';

/** What the accessors need of an address space handle. */
interface MmRef {
  readonly mem: PhysMem;
  readonly slot: number;
  readonly gen: number;
}

/** Validate an address or length argument: `TypeError` for a non-number, `RangeError` otherwise. */
export function checkUnsigned(name: string, value: unknown): number {
  if (typeof value !== 'number')
    throw new TypeError(`${name} must be a number, got ${typeof value}`);
  if (!Number.isSafeInteger(value) || value < 0) {
    throw new RangeError(`${name} must be a non-negative safe integer, got ${value}`);
  }
  return value;
}

function checkBytes(bytes: unknown): Uint8Array {
  if (!(bytes instanceof Uint8Array)) throw new TypeError('bytes must be a Uint8Array');
  return bytes;
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
    if ((pte & (write ? PTE_WRITE : PTE_READ)) === 0) {
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
  const addr = checkUnsigned('uaddr', uaddr);
  const len = checkUnsigned('length', length);
  const { mem, slot, gen } = mm;
  if (mmLoad(mem, slot, Mm.GEN) !== gen) {
    if (len === 0) return [];
    throw new SegmentationFault('SEGV_MAPERR', addr, write ? 'write' : 'read');
  }
  // the walk is a TLB-generation read section (a seqcount): a walk that overlapped a flush — an
  // unmap, a protection change, a page table freed under it — is walked again
  const pgd = mmLoad(mem, slot, Mm.PGD);
  for (;;) {
    const before = evenTlbGen(mm, addr, write);
    let runs: Runs | null = null;
    let fault: unknown = null;
    try {
      runs = walkUserRange(mem, pgd, addr, len, write);
    } catch (error) {
      fault = error; // trusted only if no flush overlapped the walk
    }
    if (mmLoad(mem, slot, Mm.TLB_GEN) !== before) continue;
    if (mmLoad(mem, slot, Mm.GEN) !== gen) {
      throw new SegmentationFault('SEGV_MAPERR', addr, write ? 'write' : 'read');
    }
    if (runs === null) throw fault;
    return runs;
  }
}

/** How long a walk waits for another thread's TLB flush of the same address space to end. */
const FLUSH_WAIT_MS = 2000;

/**
 * The address space's TLB generation once it is even (no flush in progress), to open a seqcount
 * read section. Flushes are short; one that lasts is a thread that died inside munmap or mprotect
 * and has not been reaped yet. Throws SegmentationFault (`SEGV_MAPERR`) when the address space is
 * destroyed meanwhile, and `Error` after {@link FLUSH_WAIT_MS} of waiting.
 * Context: any thread, lock-free (spins, then sleeps in short slices where it may block).
 */
function evenTlbGen(mm: MmRef, addr: number, write: boolean): number {
  const { mem, slot, gen } = mm;
  const { i32 } = mem;
  const index = mmWord(mem, slot, Mm.TLB_GEN);
  let value = Atomics.load(i32, index);
  if ((value & 1) === 0) return value;
  const deadline = Date.now() + FLUSH_WAIT_MS;
  for (let spins = 0; ; spins++) {
    if (mmLoad(mem, slot, Mm.GEN) !== gen) {
      throw new SegmentationFault('SEGV_MAPERR', addr, write ? 'write' : 'read');
    }
    value = Atomics.load(i32, index);
    if ((value & 1) === 0) return value;
    if (spins > 64) pause(i32, index, value, 0.05);
    else cpuRelax();
    if (Date.now() > deadline) {
      throw new Error(
        `address space ${slot + 1}: a TLB flush has not ended in ${FLUSH_WAIT_MS} ms — a thread ` +
          'died inside munmap or mprotect and was not reaped (kernel.reapThread)',
      );
    }
  }
}

/**
 * The page-table walk of {@link translateUser}, one directory slot at a time: a huge entry turns
 * the whole part of the range in its 4 MiB into one run with one load; a page table is read entry
 * by entry, merging physically adjacent pages into runs. Throws SegmentationFault at the first bad
 * page. Context: any thread, lock-free (every entry read with `Atomics.load`).
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
  const { i32 } = mem;
  const need = write ? PTE_WRITE : PTE_READ;
  const totalFrames = mem.layout.totalFrames;
  const end = addr + length;
  const fault = (code: 'SEGV_MAPERR' | 'SEGV_ACCERR', at: number): never => {
    throw new SegmentationFault(code, at, write ? 'write' : 'read');
  };
  let runStart = -1;
  let runLen = 0;
  const add = (phys: number, n: number): void => {
    if (runStart >= 0 && runStart + runLen === phys) runLen += n;
    else {
      if (runStart >= 0) runs.push(runStart, runLen);
      runStart = phys;
      runLen = n;
    }
  };
  for (let a = addr; a < end;) {
    if (a >= TASK_SIZE) fault('SEGV_MAPERR', a);
    const page = Math.floor(a / PAGE_SIZE); // < 2^20: 32-bit arithmetic below is exact
    const dir = page >>> TABLE_SHIFT;
    const slotEnd = Math.min(end, (dir + 1) * HPAGE_SIZE);
    const pde = Atomics.load(i32, pgd * PTRS_PER_TABLE + dir);
    if (pde === 0) fault('SEGV_MAPERR', a);
    if (pde & PDE_HUGE) {
      if (ptePfn(pde) + PTRS_PER_TABLE > totalFrames) fault('SEGV_MAPERR', a);
      if ((pde & need) === 0) fault('SEGV_ACCERR', a);
      add(ptePfn(pde) * PAGE_SIZE + (a - dir * HPAGE_SIZE), slotEnd - a);
      a = slotEnd;
      continue;
    }
    const table = ptePfn(pde) * PTRS_PER_TABLE;
    for (let p = page; a < slotEnd; p++) {
      const pageEnd = Math.min(slotEnd, (p + 1) * PAGE_SIZE);
      const pte = Atomics.load(i32, table + (p & (PTRS_PER_TABLE - 1)));
      if (pte === 0 || ptePfn(pte) >= totalFrames) fault('SEGV_MAPERR', a);
      if ((pte & need) === 0) fault('SEGV_ACCERR', a);
      add(ptePfn(pte) * PAGE_SIZE + (a - p * PAGE_SIZE), pageEnd - a);
      a = pageEnd;
    }
  }
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

function copyIn(mem: PhysMem, runs: Runs, bytes: Uint8Array): void {
  let at = 0;
  for (let i = 0; i < runs.length; i += 2) {
    const n = runs[i + 1]!;
    mem.u8.set(bytes.subarray(at, at + n), runs[i]);
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
 * Run a translate-and-copy inside a read section, so that frames another thread unmaps meanwhile
 * are not handed to a new owner before the copy is done (rcu.ts).
 */
function inSection<T>(mem: PhysMem, fn: () => T): T {
  rcuReadLock(mem);
  try {
    return fn();
  } finally {
    rcuReadUnlock(mem);
  }
}

/** `mm.read` (`copy_from_user`). Context: any thread, lock-free (inside a read section). */
export function userRead(mm: MmRef, uaddr: number, length: number): Uint8Array {
  return inSection(mm.mem, () => copyOut(mm.mem, translateUser(mm, uaddr, length, false), length));
}

/** `mm.write` (`copy_to_user`). Context: any thread, lock-free (inside a read section). */
export function userWrite(mm: MmRef, uaddr: number, bytes: Uint8Array): void {
  const src = checkBytes(bytes);
  inSection(mm.mem, () => {
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
  const { i32 } = mem;
  const mmBase = mem.mmTable + slot * MM_WORDS;
  if (uaddr >= TASK_SIZE || Atomics.load(i32, mmBase + Mm.GEN) !== gen) {
    throw new SegmentationFault('SEGV_MAPERR', uaddr, access);
  }
  const page = Math.floor(uaddr / PAGE_SIZE);
  const pte = walkPte(i32, Atomics.load(i32, mmBase + Mm.PGD), page);
  if (pte === 0 || ptePfn(pte) >= mem.layout.totalFrames)
    throw new SegmentationFault('SEGV_MAPERR', uaddr, access);
  if ((pte & (write ? PTE_WRITE : PTE_READ)) === 0)
    throw new SegmentationFault('SEGV_ACCERR', uaddr, access);
  return ptePfn(pte) * (PAGE_SIZE / 4) + ((uaddr - page * PAGE_SIZE) >> 2);
}

/** An address space handle with its thread's translation cache. */
interface TlbRef extends MmRef {
  tlb: SoftTlb | undefined;
}

/**
 * `mm.getUser32` (`get_user` of an aligned 32-bit word): through this thread's translation cache
 * when it can vouch for the page, else a page-table walk validated by the TLB generation (a
 * sequence count: a munmap or mprotect that overlaps the walk makes it retry).
 * Context: any thread, lock-free.
 */
export function getUser32(mm: TlbRef, uaddr: number): number {
  mm.tlb ??= new SoftTlb(mm.mem, mm.slot, mm.gen);
  const cached = mm.tlb.read(uaddr);
  if (cached !== undefined) return cached;
  const { i32 } = mm.mem;
  const tlbGen = mmWord(mm.mem, mm.slot, Mm.TLB_GEN);
  for (;;) {
    const before = evenTlbGen(mm, typeof uaddr === 'number' ? uaddr : 0, false);
    let value = 0;
    try {
      value = i32[userWordIndex(mm, uaddr, false)]!;
    } catch (error) {
      // a fault (or a walk through a table freed under it) counts only if no flush overlapped
      if (Atomics.load(i32, tlbGen) === before) throw error;
      continue;
    }
    if (Atomics.load(i32, tlbGen) === before) return value;
  }
}

/**
 * `mm.getUser32v`: the aligned words at `uaddrs[i]` into `out[i]`, as {@link getUser32} reads them,
 * with the translation cache validated once for the whole batch instead of once per word: the TLB
 * generation is read before and after the batch, and a batch that overlapped a munmap, mprotect or
 * destroy (the generation moved) is read again. Every value returned was read while the mapping
 * it came through was in place. Words the cache cannot vouch for are read through
 * {@link getUser32} (which faults as it does; `out` then holds the words before the fault).
 * Context: any thread, lock-free.
 */
export function getUser32v(mm: TlbRef, uaddrs: ArrayLike<number>, out: Int32Array): Int32Array {
  const n = uaddrs.length;
  mm.tlb ??= new SoftTlb(mm.mem, mm.slot, mm.gen);
  const { tlb } = mm;
  const { i32 } = mm.mem;
  const tlbGen = mmWord(mm.mem, mm.slot, Mm.TLB_GEN);
  for (;;) {
    const before = Atomics.load(i32, tlbGen);
    for (let i = 0; i < n;) {
      // a run of cached words, then one word through the checked path (which fills the cache)
      if (before === tlb.generation) i = tlb.gather(uaddrs, out, i);
      if (i < n) {
        try {
          out[i] = getUser32(mm, uaddrs[i]!);
        } catch (error) {
          // the words already in `out` are only good if no flush overlapped them: else read again
          if ((before & 1) === 0 && Atomics.load(i32, tlbGen) === before) throw error;
          break;
        }
        i++;
      }
    }
    if ((before & 1) === 0 && Atomics.load(i32, tlbGen) === before) return out;
  }
}

/**
 * `mm.putUser32` (`put_user` of an aligned 32-bit word), inside a read section so that the frame
 * cannot change owner between the walk and the store. Context: any thread, lock-free.
 */
export function putUser32(mm: MmRef, uaddr: number, value: number): void {
  if (typeof value !== 'number') throw new TypeError(`value must be a number, got ${typeof value}`);
  inSection(mm.mem, () => {
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
