/**
 * `AddressSpace`: a user process's address space (`mm_struct`), as a small per-thread handle.
 *
 * Kernel counterparts: `mm_struct` and its system calls (`mmap`, `munmap`, `mprotect`),
 * `find_vma`, `exit_mmap`, `/proc/<pid>/maps` and `/proc/<pid>/pagemap`.
 *
 * The handle holds the slot and the generation it was made for; every call checks the generation
 * under the mmap_lock (or around a lock-free walk), so a destroyed or recycled address space is
 * never trusted.
 *
 * @module
 */
import { EINVAL, PAGE_SHIFT, PAGE_SIZE } from './errno.js';
import { showValue } from './fault.js';
import { Mm, VmaWord } from './layout.js';
import {
  mmGet,
  mmLoad,
  mmLockLive,
  mmRelease,
  mmSet,
  mmUnlock,
  mmWord,
  vmaSlotsLocked,
} from './mm.js';
import { mmapLocked, munmapLocked } from './mmap.js';
import { madviseLocked, mincoreLocked } from './madvise.js';
import { mprotectLocked } from './mprotect.js';
import { mremapLocked } from './mremap.js';
import { freeTablesLocked, zapPtesLocked } from './page-table.js';
import { refault } from './page-fault.js';
import { forEachPteLocked, ptePfn, ptePprot, tlbFlushBegin, tlbFlushEnd } from './pgtable.js';
import { inspectAsJson, PhysMem } from './phys-mem.js';
import { inKernel } from './thread.js';
import { formatMaps, formatSmaps } from './procfs.js';
import {
  getUser32,
  getUser32v,
  putUser32,
  userRead,
  userSegments,
  userWrite,
  type TlbRef,
  waitForCopies,
} from './user-access.js';
import { vmaAfterLocked } from './vma-list.js';
import { releaseVmaSlots, Vma, vmaGet, vmaLoad } from './vma.js';

/** One installed PTE, as `mm.pagemap()` reports it. */
export interface PagemapEntry {
  /** User address of the page. */
  readonly uaddr: number;
  /** Frame the PTE points to. */
  readonly pfn: number;
  /** `PROT_*` the PTE grants. */
  readonly prot: number;
}

/** Options of {@link AddressSpace.segments}. */
export interface SegmentsOptions {
  /** Ask for writable views: every page must be mapped with `PROT_WRITE`. Default false. */
  readonly write?: boolean;
}

/** A user address space. Get one from `kernel.createAddressSpace()` or `kernel.addressSpace(id)`. */
export class AddressSpace {
  // private fields: a forged object (`Object.create(AddressSpace.prototype)`) or a handle whose
  // fields were reassigned can never reach a kernel path with a slot it was not made for
  readonly #mem: PhysMem;
  readonly #slot: number;
  readonly #gen: number;
  /** What the accessors get: the fields above, and this thread's translation cache. */
  readonly #ref: TlbRef;

  /**
   * @internal Throws `TypeError` unless `mem` is a kernel's memory, `slot` an address-space slot of
   * it and `gen` a generation: a handle made by hand is refused at once, not when a lock spins.
   */
  constructor(mem: PhysMem, slot: number, gen: number) {
    if (!(mem instanceof PhysMem))
      throw new TypeError("AddressSpace: mem is not a kernel's memory");
    if (!Number.isSafeInteger(slot) || slot < 0 || slot >= mem.layout.maxAddressSpaces)
      throw new TypeError(
        `AddressSpace: slot must be an integer in [0, ${mem.layout.maxAddressSpaces}), got ${showValue(slot)}`,
      );
    if (!Number.isSafeInteger(gen))
      throw new TypeError(`AddressSpace: gen must be an integer, got ${showValue(gen)}`);
    this.#mem = mem;
    this.#slot = slot;
    this.#gen = gen;
    this.#ref = { mem, slot, gen, tlb: undefined };
  }

  /** @internal */
  get mem(): PhysMem {
    return this.#mem;
  }

  /** @internal */
  get slot(): number {
    return this.#slot;
  }

  /** @internal */
  get gen(): number {
    return this.#gen;
  }

  /** The address space's id: a small positive integer, the key of `kernel.addressSpace(id)`. */
  get id(): number {
    return this.#slot + 1;
  }

  /** True until {@link AddressSpace.destroy}. Context: any thread, lock-free snapshot. */
  get live(): boolean {
    return mmLoad(this.#mem, this.#slot, Mm.GEN) === this.#gen;
  }

  /** A small plain form for `JSON.stringify`: its id and whether it is live. */
  toJSON(): { type: 'AddressSpace'; id: number; live: boolean } {
    return { type: 'AddressSpace', id: this.id, live: this.live };
  }

  /** Run `fn` under the mmap_lock if the mm is live, else return `dead`. */
  private locked<T>(dead: T, fn: () => T): T {
    return inKernel(this.#mem, () => {
      if (!mmLockLive(this.#mem, this.#slot, this.#gen)) return dead;
      try {
        return fn();
      } finally {
        mmUnlock(this.#mem, this.#slot);
      }
    });
  }

  /** A user access faulted: decide the fault by the VMA, or run the access `again` (page-fault.ts). */
  #refault<T>(error: unknown, write: boolean, again: () => T): T {
    return refault(this.#mem, this.#slot, this.#gen, error, write, again);
  }

  /**
   * Reserve a VMA of `length` bytes with no pages in it (a driver's remap fills it). `addr` 0 picks
   * a free range (top-down); `MAP_FIXED` maps exactly at `addr`, replacing what is there.
   * Returns the user address, or `-EINVAL` (bad flags, length, protection or alignment,
   * `MAP_PRIVATE`, destroyed address space), `-EPERM` (`MAP_FIXED` at 0), `-ENOMEM` (no room, no
   * VMA slot). Context: any thread; takes this mm's mmap_lock.
   */
  mmap(addr: number, length: number, prot: number, flags: number): number {
    return this.locked(-EINVAL, () => mmapLocked(this.#mem, this.#slot, addr, length, prot, flags));
  }

  /**
   * Unmap `[addr, addr + length)`: clear its PTEs, drop their frame references, split or free the
   * VMAs. Returns 0, or `-EINVAL` (unaligned, length 0 or unsafe, outside the user space, destroyed
   * address space), `-ENOMEM` (a split needs a VMA slot and none is free). Context: any thread;
   * takes this mm's mmap_lock.
   */
  munmap(addr: number, length: number): number {
    return this.locked(-EINVAL, () => munmapLocked(this.#mem, this.#slot, addr, length));
  }

  /**
   * Change the protection of `[addr, addr + length)`; PTEs keep their frames. Returns 0 (also for
   * length 0), or `-EINVAL` (unaligned, bad protection, destroyed address space), `-ENOMEM` (a hole
   * in the range, or no VMA slot for a split). Context: any thread; takes this mm's mmap_lock.
   */
  mprotect(addr: number, length: number, prot: number): number {
    return this.locked(-EINVAL, () => mprotectLocked(this.#mem, this.#slot, addr, length, prot));
  }

  /**
   * Shrink, grow or move the mapping at `oldAddr` (`mremap`): `MREMAP_MAYMOVE` lets it move,
   * `MREMAP_FIXED` moves it to exactly `newAddr` (replacing what is there), `MREMAP_DONTUNMAP`
   * moves it and leaves the old VMA in place, empty. A move carries the PTEs: no data is copied,
   * the frames stay; a remapped (`VM_DONTEXPAND`) VMA may move or shrink but not grow. Returns the
   * new address, or `-EINVAL` (bad flags, lengths or addresses, destroyed address space), `-EFAULT`
   * (no VMA at `oldAddr`, a range across VMAs, growing a `VM_DONTEXPAND` VMA), `-ENOMEM` (no room,
   * no VMA slot or frame, the VMA limit), `-EPERM` (`MREMAP_FIXED` to 0), with nothing changed.
   * Context: any thread; takes this mm's mmap_lock.
   */
  mremap(oldAddr: number, oldLen: number, newLen: number, flags: number, newAddr?: number): number {
    return this.locked(-EINVAL, () =>
      mremapLocked(this.#mem, this.#slot, oldAddr, oldLen, newLen, flags, newAddr),
    );
  }

  /**
   * Advise about `[addr, addr + len)` (`madvise`): `MADV_NORMAL`, `MADV_RANDOM`, `MADV_SEQUENTIAL`
   * set the VMAs' read-ahead flags (`VM_RAND_READ`, `VM_SEQ_READ`; they split and merge VMAs as
   * mprotect does), `MADV_WILLNEED` changes nothing, `MADV_DONTNEED` zaps the range's PTEs (the
   * VMAs stay; frame references drop as for munmap). Returns 0, or `-EINVAL` (unknown advice,
   * unaligned address, malformed length, destroyed address space), `-ENOMEM` (a hole in the range,
   * no VMA slot or frame, the VMA limit), with nothing changed. Context: any thread; takes this
   * mm's mmap_lock.
   */
  madvise(addr: number, len: number, advice: number): number {
    return this.locked(-EINVAL, () => madviseLocked(this.#mem, this.#slot, addr, len, advice));
  }

  /**
   * Which pages of `[addr, addr + len)` have a PTE (`mincore`): one byte per page, 1 where mapped.
   * Returns `-EINVAL` for an unaligned address, a malformed length or a destroyed address space,
   * `-ENOMEM` when the range has a hole. Context: any thread; takes this mm's mmap_lock.
   */
  mincore(addr: number, len: number): Uint8Array | number {
    return this.locked<Uint8Array | number>(-EINVAL, () =>
      mincoreLocked(this.#mem, this.#slot, addr, len),
    );
  }

  /**
   * The VMA containing `uaddr`, or null (also for an address that is not a non-negative safe
   * integer, or a destroyed address space). Context: any thread; takes this mm's mmap_lock.
   */
  findVma(uaddr: number): Vma | null {
    if (typeof uaddr !== 'number' || !Number.isSafeInteger(uaddr) || uaddr < 0) return null;
    const page = Math.floor(uaddr / PAGE_SIZE);
    return this.locked(null, () => {
      const v = vmaAfterLocked(this.#mem, this.#slot, page);
      if (v < 0 || vmaGet(this.#mem, v, VmaWord.START) > page) return null;
      return new Vma(this.#mem, v, vmaLoad(this.#mem, v, VmaWord.GEN));
    });
  }

  /** Every VMA, by address (empty once destroyed). Context: any thread; takes the mmap_lock. */
  vmas(): Vma[] {
    return this.locked([], () =>
      vmaSlotsLocked(this.#mem, this.#slot).map(
        (v) => new Vma(this.#mem, v, vmaLoad(this.#mem, v, VmaWord.GEN)),
      ),
    );
  }

  /**
   * Every installed PTE, by address (`/proc/<pid>/pagemap`); empty once destroyed.
   * Context: any thread; takes this mm's mmap_lock.
   */
  pagemap(): PagemapEntry[] {
    return this.locked([], () => {
      const out: PagemapEntry[] = [];
      forEachPteLocked(this.#mem, mmGet(this.#mem, this.#slot, Mm.PGD), (upage, pte) => {
        out.push({ uaddr: upage * 2 ** PAGE_SHIFT, pfn: ptePfn(pte), prot: ptePprot(pte) });
      });
      return out;
    });
  }

  /** `/proc/<pid>/maps`: one line per VMA; `''` once destroyed. Context: takes the mmap_lock. */
  maps(): string {
    return this.locked('', () => formatMaps(this.#mem, vmaSlotsLocked(this.#mem, this.#slot)));
  }

  /**
   * `/proc/<pid>/smaps`: each VMA's maps line, then `Size:`, `KernelPageSize:`, `MMUPageSize:`,
   * `Rss:` (pages with a PTE) and `VmFlags:` with Linux's two-letter codes; `''` once destroyed.
   * Context: any thread; takes this mm's mmap_lock.
   */
  smaps(): string {
    return this.locked('', () =>
      formatSmaps(
        this.#mem,
        vmaSlotsLocked(this.#mem, this.#slot),
        mmGet(this.#mem, this.#slot, Mm.PGD),
      ),
    );
  }

  /**
   * Copy `length` bytes from user memory (`copy_from_user`). At the first byte that faults it
   * throws `SegmentationFault` (`SEGV_MAPERR` where no VMA is, `SEGV_ACCERR` in a `PROT_NONE`
   * VMA) or `BusError` (`BUS_ADRERR`: inside a VMA, on a page with no PTE);
   * `TypeError`/`RangeError` for malformed arguments. Context: any thread, lock-free (a fault is
   * decided under the mmap_lock).
   */
  read(uaddr: number, length: number): Uint8Array {
    try {
      return userRead(this.#ref, uaddr, length);
    } catch (error) {
      return this.#refault(error, false, () => userRead(this.#ref, uaddr, length));
    }
  }

  /**
   * Copy `bytes` into user memory (`copy_to_user`). Before writing anything, throws
   * `SegmentationFault` at the first byte with no VMA (`SEGV_MAPERR`) or in a VMA without
   * `PROT_WRITE` (`SEGV_ACCERR`), or `BusError` at the first page of a VMA with no PTE
   * (`BUS_ADRERR`); `TypeError`/`RangeError` for malformed arguments. Context: any thread,
   * lock-free (a fault is decided under the mmap_lock).
   */
  write(uaddr: number, bytes: Uint8Array): void {
    try {
      userWrite(this.#ref, uaddr, bytes);
    } catch (error) {
      this.#refault(error, true, () => {
        userWrite(this.#ref, uaddr, bytes);
      });
    }
  }

  /**
   * Read the aligned 32-bit word at `uaddr` (`get_user`): one page-table walk, no copy, no
   * allocation. Throws `SegmentationFault` or `BusError` like {@link AddressSpace.read}, `TypeError`/`RangeError`
   * for an address that is not a 4-byte-aligned non-negative safe integer.
   * Context: any thread, lock-free.
   */
  getUser32(uaddr: number): number {
    try {
      return getUser32(this.#ref, uaddr);
    } catch (error) {
      return this.#refault(error, false, () => getUser32(this.#ref, uaddr));
    }
  }

  /**
   * Read many aligned 32-bit words at once: `out[i]` = the word at `uaddrs[i]`, as
   * {@link AddressSpace.getUser32} reads it, but with this thread's translation cache validated
   * once per call rather than once per word (a call that overlaps a munmap, mprotect or destroy in
   * another thread reads its words again), so random reads cost little more than plain typed-array
   * reads. Returns `out` (default: a new `Int32Array(uaddrs.length)`). Throws `SegmentationFault`
   * or `BusError` at the first word that faults (the words before it are in `out`),
   * `TypeError`/`RangeError` for a bad address, `TypeError` when `uaddrs` is not array-like, `RangeError` when `out` is shorter.
   * Context: any thread, lock-free.
   */
  getUser32v(uaddrs: ArrayLike<number>, out?: Int32Array): Int32Array {
    // checked at run time: callers from JavaScript may pass anything
    const list: unknown = uaddrs;
    if (
      typeof list !== 'object' ||
      list === null ||
      typeof (list as { length?: unknown }).length !== 'number'
    )
      throw new TypeError('getUser32v: uaddrs must be an array-like of addresses');
    const into = out ?? new Int32Array(uaddrs.length);
    if (!(into instanceof Int32Array)) throw new TypeError('getUser32v: out must be an Int32Array');
    if (into.length < uaddrs.length)
      throw new RangeError(`getUser32v: out holds ${into.length} words, ${uaddrs.length} needed`);
    // a batch may be read again: its addresses must survive the writes into `out`
    if (ArrayBuffer.isView(list) && list.buffer === into.buffer)
      throw new TypeError('getUser32v: out must not share memory with uaddrs');
    try {
      return getUser32v(this.#ref, uaddrs, into);
    } catch (error) {
      return this.#refault(error, false, () => getUser32v(this.#ref, uaddrs, into));
    }
  }

  /**
   * Write the aligned 32-bit word at `uaddr` (`put_user`); `value` is stored as an Int32.
   * Throws like {@link AddressSpace.write}. Context: any thread, lock-free.
   */
  putUser32(uaddr: number, value: number): void {
    try {
      putUser32(this.#ref, uaddr, value);
    } catch (error) {
      this.#refault(error, true, () => {
        putUser32(this.#ref, uaddr, value);
      });
    }
  }

  /**
   * Zero-copy views into the frames behind `[uaddr, uaddr + length)`, in address order, one per
   * physically contiguous run. Throws like {@link AddressSpace.read} (and, with `write: true`,
   * like {@link AddressSpace.write}). A view is valid while its mapping exists.
   * Context: any thread, lock-free.
   */
  segments(uaddr: number, length: number, options: SegmentsOptions = {}): Uint8Array[] {
    const write = options.write === true;
    try {
      return userSegments(this.#ref, uaddr, length, write);
    } catch (error) {
      return this.#refault(error, write, () => userSegments(this.#ref, uaddr, length, write));
    }
  }

  /**
   * Tear the address space down (`exit_mmap`): every PTE cleared, every frame reference dropped,
   * every VMA and page-table frame freed. A second call is a no-op. Context: any thread; takes
   * this mm's mmap_lock, then the VMA pool and mm table locks.
   */
  destroy(): void {
    inKernel(this.#mem, () => {
      this.destroyIn();
    });
  }

  private destroyIn(): void {
    const { mem, slot } = this;
    if (!mmLockLive(mem, slot, this.#gen)) return;
    // bump the generation first: lock-free walkers and handles stop trusting the mm at once
    Atomics.add(mem.i32, mmWord(mem, slot, Mm.GEN), 1);
    const pgd = mmGet(mem, slot, Mm.PGD);
    const vmas = vmaSlotsLocked(mem, slot);
    tlbFlushBegin(mem, slot);
    try {
      for (const v of vmas) {
        zapPtesLocked(mem, pgd, vmaGet(mem, v, VmaWord.START), vmaGet(mem, v, VmaWord.END));
      }
      const nrTables = mmGet(mem, slot, Mm.NR_PT);
      mmSet(mem, slot, Mm.VMA_HEAD, 0);
      mmSet(mem, slot, Mm.NR_VMAS, 0);
      mmSet(mem, slot, Mm.NR_PTES, 0);
      mmSet(mem, slot, Mm.NR_PT, 0);
      freeTablesLocked(mem, pgd, nrTables);
    } finally {
      tlbFlushEnd(mem, slot); // even after a kernel bug: the generation must not stay odd
    }
    mmUnlock(mem, slot);
    releaseVmaSlots(mem, vmas);
    mmRelease(mem, slot);
    // the mm is gone for every new walk; copies checked against its PTEs before have landed
    waitForCopies(mem, slot);
  }
}
inspectAsJson(AddressSpace);
