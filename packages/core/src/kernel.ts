/**
 * The kernel object: boot, attach, statistics and the entry points of every subsystem.
 *
 * Kernel counterpart: `start_kernel` (`init/main.c`) for boot; the rest delegates to one module
 * per subsystem. A `Kernel` is a small per-thread handle: all state lives in physical memory.
 *
 * @module
 */
import { AddressSpace } from './address-space.js';
import { EAGAIN, EINVAL, PAGE_SIZE, VM_USERMAP } from './errno.js';
import { showValue } from './fault.js';
import { initFrames } from './frame-alloc.js';
import { checkInvariants } from './invariants.js';
import {
  AreaCaller,
  Frame,
  FRAME_WORDS,
  FrameKind,
  Hdr,
  Mm,
  OWNER_ID_SHIFT,
  Thread,
  OWNER_KIND_MASK,
  VMALLOC_START,
  type Layout,
  type LayoutConfig,
} from './layout.js';
import { initMms, mmCreate, mmLiveGen, mmLoad, mmLockLive, mmUnlock } from './mm.js';
import { forEachPteLocked, ptePfn } from './pgtable.js';
import { rcuReadLock, rcuReadUnlock } from './rcu.js';
import { reapThreads } from './recovery.js';
import { ringbufCreate, ringbufLookup, type RingBuf } from './ringbuf-area.js';
import { dropAllBatches, publishBatches } from './ringbuf-batch.js';
import { cancelRetries } from './ringbuf-wait.js';
import { endReads } from './ringbuf-read.js';
import { forgetHolds } from './ringbuf.js';
import { validTimeout } from './cpu-relax.js';
import { attachThread, checkAttached, detachThread, inKernel, threadWord } from './thread.js';
import { inspectAsJson, PhysMem, type KernelHandle } from './phys-mem.js';
import { formatBuddyinfo, formatMeminfo, formatVmallocinfo } from './procfs.js';
import { KMEM_CACHES } from './layout.js';
import { readKernel, writeKernel } from './user-access.js';
import {
  findVmArea,
  initVmalloc,
  sizeToPages,
  vfree,
  vmallocAreas,
  vmallocPages,
  vmallocToPfn,
  type VmArea,
} from './vmalloc.js';
import { drainVmaStash, initVmas } from './vma.js';
import {
  kcalloc,
  bulkRange,
  kfree,
  kmalloc,
  KmemCache,
  kmemCacheCreate,
  krealloc,
  ksize,
  retryAfterShrink,
  type KmemCacheOptions,
} from './kmalloc.js';
import { kernelView, type TypedArrayConstructor } from './kernel-view.js';
import { formatSlabinfo } from './procfs.js';
import { cacheGen, initSlab, NR_KMALLOC_CACHES } from './slab.js';
import { SlabCpu } from './slab-cpu.js';
import { kfreeBulk } from './slab-bulk.js';

/** Options of {@link Kernel.attach}. */
export interface AttachOptions {
  /**
   * An id of the attaching thread that its parent knows too (Node: `threadId` from
   * `node:worker_threads`, which the parent sees as `worker.threadId`), so that the parent can
   * {@link Kernel.reapThread} it if it dies.
   */
  readonly threadId?: number;
}

/** Options of {@link Kernel.boot}: the layout, and how the booting thread attaches. */
export type BootOptions = LayoutConfig & AttachOptions;

/** Which dead thread {@link Kernel.reapThread} recovers from. */
export type ReapSelector = { readonly threadId: number } | { readonly tid: number };

/** A snapshot of the kernel's counters (`kernel.stats()`). */
export interface KernelStats {
  /** Frames of physical memory, metadata included. */
  readonly totalFrames: number;
  /** Frames free for allocation now. */
  readonly freeFrames: number;
  /** Released frames held back by a grace period (not free yet). */
  readonly deferredFrames: number;
  /** Frames held by the layout's metadata since boot. */
  readonly metadataFrames: number;
  /** Frees that freed nothing: `vfree` calls, and `kfree` calls and `kfreeBulk` entries that named no live object. */
  readonly badFrees: number;
  /** Live vmalloc areas. */
  readonly vmallocAreas: number;
  /** Backed pages of live vmalloc areas. */
  readonly vmallocPages: number;
  /** Page directories and page tables in use. */
  readonly pageTableFrames: number;
  /** Live address spaces. */
  readonly addressSpaces: number;
  /** Frames held by slabs (kmalloc and `kmemCacheCreate` caches). */
  readonly slabFrames: number;
  /** Frames held by kmalloc allocations larger than 8 KiB (whole pages). */
  readonly kmallocLargeFrames: number;
}

/** Frame owner kinds of {@link FrameSnapshot.kinds}. */
export const FRAME_FREE = 0;
/** Frame owner kind: kernel metadata. */
export const FRAME_META = 1;
/** Frame owner kind: a vmalloc page (owner = area id). */
export const FRAME_VMALLOC = 2;
/** Frame owner kind: a page directory or page table (owner = address-space id). */
export const FRAME_PAGE_TABLE = 3;

/** Frame owner kind: released while another thread was in a read section, not free yet. */
export const FRAME_DEFERRED = 4;
/** Frame owner kind: a slab, or a large kmalloc (owner = cache id + 1, 128 for a large kmalloc). */
export const FRAME_SLAB = 5;

/** The public kind of each internal {@link FrameKind}. */
const PUBLIC_KIND: Record<number, number> = {
  [FrameKind.FREE]: FRAME_FREE,
  [FrameKind.META]: FRAME_META,
  [FrameKind.VMALLOC]: FRAME_VMALLOC,
  [FrameKind.PAGE_TABLE]: FRAME_PAGE_TABLE,
  [FrameKind.INFLIGHT]: FRAME_VMALLOC,
  [FrameKind.DEFERRED]: FRAME_DEFERRED,
  [FrameKind.ORPHAN]: FRAME_VMALLOC,
  [FrameKind.SLAB]: FRAME_SLAB,
};

/** Who owns each frame, indexed by pfn (`kernel.frameSnapshot()`). */
export interface FrameSnapshot {
  /** `FRAME_FREE`, `FRAME_META`, `FRAME_VMALLOC`, `FRAME_PAGE_TABLE` or `FRAME_DEFERRED`. */
  readonly kinds: Uint8Array;
  /** Area id for vmalloc pages, address-space id for page tables, 0 otherwise. */
  readonly owners: Int32Array;
  /** References held on the frame: its area's (or its table's) and one per user PTE mapping it. */
  readonly refcounts: Int32Array;
}

/** Options of {@link Kernel.vmalloc}, {@link Kernel.vzalloc} and {@link Kernel.vmallocUser}. */
export interface VmallocOptions {
  /**
   * One physically contiguous run of frames or nothing (Linux's `alloc_contig_pages`, what CMA
   * serves): the area can then be seen through one typed array. Default false: frames anywhere,
   * contiguous runs preferred.
   */
  readonly contiguous?: boolean;
}

/** `options.contiguous` as a boolean, or null for options that are not valid. */
function contiguousOption(options: unknown): boolean | null {
  if (options === undefined) return false;
  if (typeof options !== 'object' || options === null) return null;
  const { contiguous } = options as { contiguous?: unknown };
  if (contiguous === undefined) return false;
  return typeof contiguous === 'boolean' ? contiguous : null;
}

/** A kernel: physical memory and everything in it, seen from one thread. */
export class Kernel {
  /** @internal */
  readonly mem: PhysMem;
  /** @internal this attachment's active slabs */
  readonly slab: SlabCpu;

  private constructor(mem: PhysMem, options: AttachOptions) {
    this.mem = mem;
    const { threadId } = options;
    attachThread(
      mem,
      typeof threadId === 'number' && Number.isSafeInteger(threadId) ? threadId : -1,
    );
    this.slab = new SlabCpu(mem);
  }

  /**
   * Create physical memory of `memoryBytes` (rounded down to whole frames) and boot a kernel in it.
   * Throws `TypeError` for a non-number and `RangeError` for a size too small for the metadata or
   * too large to address. Context: any thread; allocates the buffer (committed lazily by the OS,
   * except the metadata, which boot touches page by page so that no allocation faults on it).
   */
  static boot(options: BootOptions): Kernel {
    const mem = PhysMem.create(options);
    initFrames(mem);
    initVmalloc(mem);
    initVmas(mem);
    initMms(mem);
    initSlab(mem);
    return new Kernel(mem, options);
  }

  /**
   * Attach to a booted kernel from any thread. Throws `TypeError` when `handle` is not a kernel
   * handle, `Error` for a foreign buffer or another layout version, and `RangeError` when every
   * thread slot is taken. A thread should {@link Kernel.detach} before it ends; one that ends
   * without it (exits, is terminated, crashes) keeps its slot and its slabs until
   * {@link Kernel.reapThread}. Context: any thread.
   */
  static attach(handle: KernelHandle, options: AttachOptions = {}): Kernel {
    return new Kernel(PhysMem.attach(handle), options);
  }

  /** This attachment's kernel thread id: the owner id of every lock it takes. */
  get tid(): number {
    return this.mem.tid;
  }

  /**
   * Give this attachment's thread slot back (a thread that is done with the kernel). Its open
   * read sections end. Its open ring batches (`RB_BATCH`, `batchReserve`, `batchReserveBulk`) are
   * published first: where a ring has no room for one, it waits for the consumer as `flush()`
   * does, with no limit, where the thread may block and only another thread can make the room;
   * elsewhere (a thread that consumes that ring itself, or may not block) the batch is dropped.
   * Its open ring reads (`readRecord`) end, their consumer position stored. Every call through this
   * handle (or an address space or VMA handle made from it) afterwards throws and changes nothing;
   * a second `detach` is a no-op. Context: the owning thread.
   */
  detach(): void {
    if (this.mem.current.slot < 0) return; // detached already
    // this thread's batched ring records go out before it leaves: where the consumer has to make
    // room for them first, it waits (where the thread may block and only another thread can make
    // the room; elsewhere they are dropped, as the ring buffer guide says)
    // its open reads end first: their consumer position stored, the lock let go (a batch on a
    // ring this thread reads would find no room behind the read, and would not wait for itself)
    endReads(this.mem);
    publishBatches(this.mem, -1, -1);
    dropAllBatches(this.mem);
    cancelRetries(this.mem); // (a retry's reference must go while this thread can still free)
    forgetHolds(this.mem); // a pending poll's hold is no longer this slot's to give back
    while (this.mem.current.rcuNesting > 0) rcuReadUnlock(this.mem);
    // the active slabs go back to their caches (empty ones to the page allocator, but for the
    // few a cache keeps on its partial list: stats() gives those back)
    this.slab.flush(false);
    this.slab.detach();
    // the VMA slots this thread kept back go to the shared pool (a kernel call: not during a
    // recovery, and a recovery sees them either stashed or pooled)
    inKernel(this.mem, () => {
      drainVmaStash(this.mem); // nothing to do for an attachment without a thread slot
    });
    detachThread(this.mem);
  }

  /**
   * Recover from a thread that died (a terminated or crashed worker): every other thread is held
   * outside the kernel meanwhile; the dead thread's half-done call is undone or completed, its locks
   * are released, its read sections end and the frames it held in flight are freed. Returns the
   * number of attachments reaped: the ones that matched, plus any an earlier interrupted or
   * deferred recovery left marked dead (0 when there were none). Context: a live thread outside
   * kernel calls (the dead thread's parent, typically on the worker's `exit` event). Only for a
   * thread that is dead: nothing can tell a live thread from a dead one here, and reaping a live
   * one breaks the kernel. `{ threadId }` names the id the thread gave {@link Kernel.attach}; keep
   * `worker.threadId` when the worker starts (Node sets it to -1 once the worker has exited), and
   * an attachment that gave none is never matched by it.
   *
   * The recovery first waits, up to `timeoutMs` milliseconds (1000 by default: longer than any
   * kernel call, the longest being a remap of hundreds of MiB at about half a second; negative: no
   * limit), until no other thread is inside a kernel call or holds a ring's reservation lock.
   * Returns `-EAGAIN` when one still does: a live thread in a long call, or a second thread that
   * died inside a call and is not reaped yet (two workers terminated together: this thread cannot
   * handle the second one's `exit` while it waits). Then every thread the selector matched stays
   * marked dead, nothing else is recovered (deferred frames whose grace period is over are freed,
   * as after any kernel call), and the other threads were held out of the kernel meanwhile. Call
   * again later (on a timer, not in a loop: the other `exit` must get its turn), with a longer
   * limit if a live call may be what held it up; the next reap, whatever it names, recovers them.
   * Until then the dead thread's locks stay held. `-EINVAL` for a `timeoutMs` that is not a
   * number, changing nothing.
   */
  reapThread(selector: ReapSelector, timeoutMs = 1000): number {
    checkAttached(this.mem);
    if (!validTimeout(timeoutMs)) return -EINVAL;
    const { mem } = this;
    const key = 'tid' in selector ? Thread.TID : Thread.USER_ID;
    const value = 'tid' in selector ? selector.tid : selector.threadId;
    // an attachment that gave no threadId records -1: no selector names it (a Worker's threadId
    // reads -1 once it has exited, and must not reap every such attachment)
    if (key === Thread.USER_ID && !(Number.isSafeInteger(value) && value >= 0))
      return reapThreads(mem, () => false, timeoutMs); // only what an interrupted recovery left
    return reapThreads(
      mem,
      (slot) => Atomics.load(mem.i32, threadWord(mem, slot, key)) === value,
      timeoutMs,
    );
  }

  /**
   * Enter a read section (`rcu_read_lock`): frames released by any other thread from now on are not
   * reused until this thread leaves it, so zero-copy views taken inside stay safe to touch.
   * Sections nest. Context: the owning thread, lock-free.
   */
  rcuReadLock(): void {
    checkAttached(this.mem);
    rcuReadLock(this.mem);
  }

  /**
   * Leave a read section (`rcu_read_unlock`). Throws `Error` when none is open.
   * Context: the owning thread, lock-free.
   */
  rcuReadUnlock(): void {
    checkAttached(this.mem);
    rcuReadUnlock(this.mem);
  }

  /** Run `fn` inside a read section. Context: the owning thread. */
  readSection<T>(fn: () => T): T {
    checkAttached(this.mem);
    rcuReadLock(this.mem);
    try {
      return fn();
    } finally {
      rcuReadUnlock(this.mem);
    }
  }

  /**
   * The most VMAs one address space may hold (`vm.max_map_count`): default 65530, or the VMA
   * pool's size if that is smaller. An mmap, munmap, mprotect, mremap or madvise that needs new
   * VMAs beyond it returns `-ENOMEM`. Context: any thread, lock-free (an `Atomics` word).
   */
  get maxMapCount(): number {
    checkAttached(this.mem);
    return Atomics.load(this.mem.i32, Hdr.MAX_MAP_COUNT);
  }

  /**
   * Set the VMA limit (as `sysctl vm.max_map_count`). Throws `TypeError` for a non-number and
   * `RangeError` for anything but an integer in [1, 2^31 - 1]; lowering it below what an address
   * space holds only refuses that address space new VMAs. Context: any thread.
   */
  set maxMapCount(n: number) {
    checkAttached(this.mem);
    if (typeof n !== 'number') throw new TypeError(`maxMapCount must be a number, got ${typeof n}`);
    if (!Number.isSafeInteger(n) || n < 1 || n > 0x7fffffff)
      throw new RangeError(`maxMapCount must be an integer in [1, 2^31 - 1], got ${n}`);
    Atomics.store(this.mem.i32, Hdr.MAX_MAP_COUNT, n);
  }

  /** What another thread needs to {@link Kernel.attach}: structured-cloneable. */
  get handle(): KernelHandle {
    return { buffer: this.mem.buffer };
  }

  /** The memory map of this kernel. */
  get layout(): Layout {
    return this.mem.layout;
  }

  /**
   * A small plain form for `JSON.stringify` (the handle's own fields reach all of physical
   * memory, which would serialize as one enormous object): the size and this attachment's id.
   */
  toJSON(): { type: 'Kernel'; totalFrames: number; tid: number; attached: boolean } {
    return {
      type: 'Kernel',
      totalFrames: this.mem.layout.totalFrames,
      tid: this.mem.tid,
      attached: this.mem.current.slot >= 0,
    };
  }

  /**
   * A snapshot of the counters. Empty slabs are given back first (`kmem_cache_shrink`): this
   * thread's active and kept slabs that hold no object, and the empty slabs every cache keeps on
   * its partial list for reuse. So a program that freed every object sees the frames free once
   * its other threads have detached (another live thread's own empty slabs stay its own).
   * Context: any thread; takes the list_lock of every cache whose partial list is not empty.
   */
  stats(): KernelStats {
    checkAttached(this.mem);
    this.slab.shrink();
    const { i32, layout } = this.mem;
    return {
      totalFrames: layout.totalFrames,
      freeFrames: Atomics.load(i32, Hdr.FREE_FRAMES),
      deferredFrames: Atomics.load(i32, Hdr.DEFERRED_FRAMES),
      metadataFrames: layout.metadataFrames,
      badFrees: Atomics.load(i32, Hdr.BAD_FREES),
      vmallocAreas: Atomics.load(i32, Hdr.NR_AREAS),
      vmallocPages: Atomics.load(i32, Hdr.VMALLOC_USED_PAGES),
      pageTableFrames: Atomics.load(i32, Hdr.PT_FRAMES),
      addressSpaces: Atomics.load(i32, Hdr.NR_MMS),
      slabFrames: Atomics.load(i32, Hdr.SLAB_FRAMES),
      kmallocLargeFrames: Atomics.load(i32, Hdr.KMALLOC_LARGE_FRAMES),
    };
  }

  /**
   * Check every internal invariant; throws an `Error` naming the first one broken.
   * Context: a quiescent kernel (no call in flight in any thread); reads all of the metadata.
   */
  checkInvariants(): void {
    checkAttached(this.mem);
    checkInvariants(this.mem);
  }

  /**
   * Allocate `size` bytes (rounded up to pages) of virtually contiguous kernel memory; contents
   * unspecified. With `{ contiguous: true }` the frames are one physically contiguous run (so one
   * typed view can span the area), or the call returns null. Returns the kaddr, or null for a bad
   * size (0, negative, fractional, NaN, non-number, larger than physical memory) or bad options,
   * or when frames, a contiguous run or vmalloc space run out (nothing is kept).
   * Context: any thread; takes vmap_area_lock briefly.
   */
  vmalloc(size: number, options?: VmallocOptions): number | null {
    return this.#vmalloc(size, options, 0, AreaCaller.VMALLOC, false);
  }

  /**
   * As {@link Kernel.vmalloc}, zeroed: frames never handed out since boot are already zero and are
   * not written; reused frames are cleared at memory bandwidth. Context: as vmalloc.
   */
  vzalloc(size: number, options?: VmallocOptions): number | null {
    return this.#vmalloc(size, options, 0, AreaCaller.VZALLOC, true);
  }

  /**
   * As {@link Kernel.vzalloc}, and the area gets `VM_USERMAP`: it may be mapped into user address
   * spaces with `remapPartial`. Context: as vmalloc.
   */
  vmallocUser(size: number, options?: VmallocOptions): number | null {
    return this.#vmalloc(size, options, VM_USERMAP, AreaCaller.VMALLOC_USER, true);
  }

  #vmalloc(
    size: number,
    options: VmallocOptions | undefined,
    flags: number,
    caller: AreaCaller,
    zero: boolean,
  ): number | null {
    checkAttached(this.mem);
    const pages = sizeToPages(this.mem, size);
    const contiguous = contiguousOption(options);
    if (pages === 0 || contiguous === null) return null;
    return retryAfterShrink(this.slab, () =>
      vmallocPages(this.mem, pages, flags, caller, zero, 1, contiguous),
    );
  }

  /**
   * `/proc/buddyinfo`: free frames as a buddy allocator would hold them, counted per order
   * (blocks of 2^0 … 2^10 frames): how fragmented free memory is. Context: any thread, lock-free.
   */
  buddyinfo(): string {
    checkAttached(this.mem);
    return formatBuddyinfo(this.mem);
  }

  /**
   * An aligned vmalloc (`__vmalloc_node(size, align, …)`, used by the kernel's `test_vmalloc`):
   * the kaddr is a multiple of `align` bytes, a power of two (alignments below PAGE_SIZE mean
   * PAGE_SIZE). Null for a bad size or alignment, or when no aligned range is free.
   * Context: as vmalloc.
   */
  vmallocAligned(size: number, align: number): number | null {
    checkAttached(this.mem);
    const pages = sizeToPages(this.mem, size);
    const powerOfTwo =
      Number.isSafeInteger(align) && align > 0 && 2 ** Math.floor(Math.log2(align)) === align;
    if (pages === 0 || !powerOfTwo) return null;
    // the vmalloc range starts at VMALLOC_START (2^44): page indices align like addresses up to it
    if (align > VMALLOC_START) return null;
    return vmallocPages(
      this.mem,
      pages,
      0,
      AreaCaller.VMALLOC,
      false,
      Math.max(1, align / PAGE_SIZE),
    );
  }

  /**
   * Free the area whose base is `kaddr`. `null` is a no-op; anything that is not the base of a
   * live area (unknown, interior, already freed, not a number) changes nothing and is counted in
   * `stats().badFrees`. Frames still mapped in user address spaces stay alive with their data until
   * the last mapping goes. A ring buffer's area is refused the same way: the ring frees it
   * (`ring.free()`), as `bpf_ringbuf_free` does, once no call uses it.
   * Context: any thread; takes vmap_area_lock briefly.
   */
  vfree(kaddr: number | null): void {
    checkAttached(this.mem);
    vfree(this.mem, kaddr, AreaCaller.RINGBUF);
  }

  /** The live area containing `kaddr` (guard page included), or null. Context: any thread. */
  findVmArea(kaddr: number): VmArea | null {
    checkAttached(this.mem);
    return findVmArea(this.mem, kaddr);
  }

  /** Every live area, by address. Context: any thread; takes vmap_area_lock briefly. */
  vmallocAreas(): VmArea[] {
    checkAttached(this.mem);
    return vmallocAreas(this.mem).map(({ addr, size, nrPages, flags }) => ({
      addr,
      size,
      nrPages,
      flags,
    }));
  }

  /**
   * The frame backing the vmalloc page at `kaddr`, or null where nothing is mapped (a guard page,
   * a hole, a freed area, not a vmalloc address). Context: any thread, lock-free.
   */
  vmallocToPfn(kaddr: number): number | null {
    checkAttached(this.mem);
    return vmallocToPfn(this.mem, kaddr);
  }

  /**
   * Copy `length` bytes from kernel address `kaddr`. Throws `SegmentationFault` (`SEGV_MAPERR`) at
   * the first unmapped byte, `TypeError`/`RangeError` for malformed arguments.
   * Context: any thread, lock-free.
   */
  readKernel(kaddr: number, length: number): Uint8Array {
    checkAttached(this.mem);
    return readKernel(this.mem, kaddr, length);
  }

  /**
   * Write `bytes` at kernel address `kaddr`; nothing is written if any byte is unmapped
   * (`SegmentationFault`). `TypeError`/`RangeError` for malformed arguments.
   * Context: any thread, lock-free.
   */
  writeKernel(kaddr: number, bytes: Uint8Array): void {
    checkAttached(this.mem);
    writeKernel(this.mem, kaddr, bytes);
  }

  /**
   * A BPF ring buffer of `dataBytes` data bytes (a power of two, at least 2 pages): a `VM_USERMAP`
   * area of one contiguous run of frames. Null for a bad size or when no such run is free.
   * Context: any thread; takes vmap_area_lock briefly.
   */
  ringbufCreate(dataBytes: number): RingBuf | null {
    checkAttached(this.mem);
    return ringbufCreate(this.mem, dataBytes);
  }

  /** The live ring whose area starts at `kaddr`, from any attached thread, or null. */
  ringbuf(kaddr: number): RingBuf | null {
    checkAttached(this.mem);
    return ringbufLookup(this.mem, kaddr);
  }

  /**
   * Publish every `RB_BATCH` batch this thread holds open, on every ring and through every handle:
   * what a thread does before it blocks, or when a unit of its work ends (the pool does it after
   * each task). Where a ring has no room for a batch, waits for its consumer as `rb.flush` does:
   * up to `timeoutMs` milliseconds (negative, the default: no limit; 0: not at all), where the
   * thread may block and only another thread can make the room; a batch still without room stays
   * open and goes out as soon as its consumer makes room (the thread is held alive until then).
   * Returns 0 when every batch is out, -EAGAIN when one is not, -EINVAL for a `timeoutMs` that is
   * not a number. Context: any attached thread.
   */
  ringbufFlush(timeoutMs = -1): number {
    if (!validTimeout(timeoutMs)) return -EINVAL;
    return publishBatches(this.mem, -1, timeoutMs) ? 0 : -EAGAIN;
  }

  /** `/proc/vmallocinfo`. Context: any thread; takes vmap_area_lock briefly. */
  vmallocinfo(): string {
    checkAttached(this.mem);
    return formatVmallocinfo(this.mem);
  }

  /** `/proc/meminfo`. Context: any thread, lock-free. */
  meminfo(): string {
    checkAttached(this.mem);
    return formatMeminfo(this.mem);
  }

  /**
   * A new, empty user address space, or null when the address-space table is full or no frame is
   * free for its page directory. Context: any thread; takes mm_table_lock briefly.
   */
  createAddressSpace(): AddressSpace | null {
    checkAttached(this.mem);
    const made = inKernel(this.mem, () => mmCreate(this.mem));
    return made === null ? null : new AddressSpace(this.mem, made[0], made[1]);
  }

  /**
   * The live address space with this id, from any attached thread. Throws `RangeError` when no live
   * address space has that id. Context: any thread, lock-free.
   */
  addressSpace(id: number): AddressSpace {
    checkAttached(this.mem);
    const max = this.mem.layout.maxAddressSpaces;
    const gen = Number.isSafeInteger(id) && id >= 1 && id <= max ? mmLiveGen(this.mem, id - 1) : 0;
    if (gen === 0) throw new RangeError(`no live address space has id ${showValue(id)}`);
    return new AddressSpace(this.mem, id - 1, gen);
  }

  /** Ids of the live address spaces. Context: any thread, lock-free snapshot. */
  addressSpaceIds(): number[] {
    checkAttached(this.mem);
    const ids: number[] = [];
    for (let slot = 0; slot < this.mem.layout.maxAddressSpaces; slot++) {
      if (mmLiveGen(this.mem, slot) !== 0) ids.push(slot + 1);
    }
    return ids;
  }

  /**
   * Allocate `size` bytes of kernel memory (`kmalloc`): an object of the smallest kmalloc cache that
   * fits (`kmalloc-8` … `kmalloc-8k`), or whole contiguous pages above 8 KiB; contents unspecified.
   * Returns its kaddr (in the kmalloc range, 8-byte aligned), or null for a bad size (0, negative,
   * fractional, NaN, non-number, larger than physical memory) or when memory is short.
   * Context: any thread; no Atomics on the fast path (this thread's active slab).
   */
  kmalloc(size: number): number | null {
    // a detached handle's active slabs are all let go: its calls take the general path, which
    // refuses them
    const kaddr = this.slab.kmallocFast(size);
    return kaddr !== 0 ? kaddr : kmalloc(this.slab, size, false);
  }

  /** As {@link Kernel.kmalloc}, zeroed (`kzalloc`): all {@link Kernel.ksize} bytes. */
  kzalloc(size: number): number | null {
    checkAttached(this.mem);
    return kmalloc(this.slab, size, true);
  }

  /** `n * size` zeroed bytes (`kcalloc`); null when the product overflows, else as kzalloc. */
  kcalloc(n: number, size: number): number | null {
    checkAttached(this.mem);
    return kcalloc(this.slab, n, size);
  }

  /**
   * Resize an object (`krealloc`): the same kaddr when `newSize` fits its {@link Kernel.ksize},
   * else a new object holding its bytes (the old one is freed). Null — the old object unchanged
   * and still live — for a bad size, a kaddr that is not a live object, or memory short.
   * `kaddr` null allocates. Context: any thread.
   */
  krealloc(kaddr: number | null, newSize: number): number | null {
    checkAttached(this.mem);
    return krealloc(this.slab, kaddr, newSize);
  }

  /**
   * Free a kmalloc object (`kfree`), from any thread. `null` is a no-op; anything that is not a
   * live object (unknown, interior, freed, not a number) changes nothing and is counted in
   * `stats().badFrees`. Context: any thread; no Atomics when this thread holds the object's slab,
   * one `Atomics.or` and one `Atomics.load` otherwise.
   */
  kfree(kaddr: number | null): void {
    // a detached handle holds no slab: its calls take the general path, which refuses them
    if (typeof kaddr !== 'number' || !this.slab.kfreeFast(kaddr)) kfree(this.slab, kaddr);
  }

  /**
   * Free `kaddrs[start … end)` (`kfree_bulk`; default: all of them), each entry as
   * {@link Kernel.kfree} would: null skipped, anything that is not a live object counted in
   * `stats().badFrees`. Objects that another thread allocated go back a bitmap word at a time —
   * one `Atomics.or` and one `Atomics.load` for each run of up to 32 objects of one slab word,
   * instead of per object — so a thread that frees what others allocated (the consumer of a
   * queue or ring of kaddrs) should free them in batches with this call. Throws `TypeError` when
   * `kaddrs` is not array-like and `RangeError` unless 0 ≤ start ≤ end ≤ length.
   * Context: any thread.
   */
  kfreeBulk(kaddrs: ArrayLike<number | null>, start?: number, end?: number): void {
    checkAttached(this.mem);
    const [from, to] = bulkRange(kaddrs, start, end);
    kfreeBulk(this.slab, kaddrs, from, to, -1);
  }

  /** The usable size of the live object at `kaddr` (`ksize`), or 0. Context: any thread. */
  ksize(kaddr: number): number {
    checkAttached(this.mem);
    return ksize(this.mem, kaddr);
  }

  /**
   * A zero-copy view of `len` bytes of kernel memory at `kaddr`, as `Type` (default `Uint8Array`):
   * inside one live kmalloc object, or a range of a live vmalloc area whose frames are one physically
   * contiguous run. Throws `TypeError`/`RangeError` for malformed arguments, and a `RangeError`
   * that says which when the memory is not live or not one run. Context: any thread, lock-free.
   */
  view<T extends TypedArrayConstructor = Uint8ArrayConstructor>(
    kaddr: number,
    len: number,
    Type?: T,
  ): InstanceType<T> {
    checkAttached(this.mem);
    // only an absent Type means Uint8Array: null is refused as any other non-constructor
    if (Type === undefined) return kernelView(this.mem, kaddr, len, Uint8Array as T);
    return kernelView(this.mem, kaddr, len, Type);
  }

  /**
   * A new slab cache of `size`-byte objects (`kmem_cache_create`), 1 … 8192 bytes, aligned to
   * `options.align` (a power of two up to PAGE_SIZE; at least 8). Null for a bad name (1 … 31
   * printable ASCII characters, no space), size or alignment, or when all caches are taken.
   * Context: any thread; takes slab_mutex.
   */
  kmemCacheCreate(name: string, size: number, options?: KmemCacheOptions): KmemCache | null {
    checkAttached(this.mem);
    const made = kmemCacheCreate(this.mem, name, size, options);
    return made === null ? null : new KmemCache(this.slab, made[0], made[1]);
  }

  /** The live cache with this id (`cache.id`), from any attached thread, or null. */
  kmemCache(id: number): KmemCache | null {
    checkAttached(this.mem);
    if (!Number.isSafeInteger(id) || id < NR_KMALLOC_CACHES || id >= KMEM_CACHES) return null;
    const gen = cacheGen(this.mem, id);
    return gen === 0 ? null : new KmemCache(this.slab, id, gen);
  }

  /** `/proc/slabinfo` (version 2.1). Context: any thread, lock-free snapshot. */
  slabinfo(): string {
    checkAttached(this.mem);
    return formatSlabinfo(this.mem);
  }

  /**
   * Who owns each frame, by pfn (for pictures of memory). Context: any thread; reads the frame table
   * lock-free, then takes each live address space's mmap_lock in turn to count its PTEs.
   */
  frameSnapshot(): FrameSnapshot {
    checkAttached(this.mem);
    const { mem } = this;
    const { i32, frameTable, layout } = mem;
    const n = layout.totalFrames;
    const kinds = new Uint8Array(n);
    const owners = new Int32Array(n);
    const refcounts = new Int32Array(n);
    for (let pfn = 0; pfn < n; pfn++) {
      const refs = Atomics.load(i32, frameTable + pfn * FRAME_WORDS + Frame.REFCOUNT);
      const owner = Atomics.load(i32, frameTable + pfn * FRAME_WORDS + Frame.OWNER);
      const kind = owner & OWNER_KIND_MASK;
      refcounts[pfn] = refs;
      kinds[pfn] = PUBLIC_KIND[kind] ?? FRAME_FREE;
      owners[pfn] =
        kind === FrameKind.VMALLOC || kind === FrameKind.PAGE_TABLE
          ? (owner >>> OWNER_ID_SHIFT) + 1
          : kind === FrameKind.SLAB
            ? ((owner >>> OWNER_ID_SHIFT) & 127) + 1
            : 0;
    }
    // user PTEs of a live area's pages are counted per area (MAPCOUNT): one reference each here
    // each address space under its mmap_lock: its page tables cannot change or be freed meanwhile
    for (let slot = 0; slot < layout.maxAddressSpaces; slot++) {
      const gen = mmLiveGen(mem, slot);
      if (gen === 0) continue;
      inKernel(mem, () => {
        if (!mmLockLive(mem, slot, gen)) return;
        try {
          forEachPteLocked(mem, mmLoad(mem, slot, Mm.PGD), (_upage, pte) => {
            const pfn = ptePfn(pte);
            if (
              pfn < n &&
              (Atomics.load(i32, frameTable + pfn * FRAME_WORDS + Frame.OWNER) &
                OWNER_KIND_MASK) ===
                FrameKind.VMALLOC
            ) {
              refcounts[pfn]!++;
            }
          });
        } finally {
          mmUnlock(mem, slot);
        }
      });
    }
    return { kinds, owners, refcounts };
  }
}
inspectAsJson(Kernel);
