/**
 * The one memory map of sabvm: where every piece of kernel state lives inside the
 * SharedArrayBuffer that is physical memory.
 *
 * Kernel counterpart: the boot-time memory map (`arch/x86/mm/init.c`, `mm/mm_init.c`), which places
 * `mem_map` (the frame table) and the other early allocations in physical memory.
 *
 * The buffer is physical memory cut into frames of {@link PAGE_SIZE} bytes; frame `pfn` starts at
 * byte `pfn * PAGE_SIZE`. The metadata occupies the first {@link Layout.metadataFrames} frames,
 * which are marked in use at boot and never freed. Each region starts where the previous one ends
 * (rounded up to a 64-byte cache line):
 *
 * ```
 *  byte 0
 *  ┌──────────────────────────────┐
 *  │ header (1 page)              │ config words (init-only), counters and locks, one cache line each
 *  ├──────────────────────────────┤ frameTableOffset
 *  │ frame table                  │ FRAME_WORDS per frame: refcount, owner, deferred-list link
 *  ├──────────────────────────────┤ frameBitmapOffset
 *  │ frame bitmap                 │ 1 bit per frame, 1 = in use (lock-free, Atomics only)
 *  ├──────────────────────────────┤ areaTableOffset
 *  │ vmalloc area table           │ AREA_WORDS per area slot (vmap_area_lock)
 *  ├──────────────────────────────┤ areaMapOffset
 *  │ vmalloc area map             │ 1 word per vmalloc page: area slot + 1, guard page included
 *  ├──────────────────────────────┤ kernelPageTableOffset
 *  │ kernel page table (init_mm)  │ 1 PTE per vmalloc page (written under vmap_area_lock, read lock-free)
 *  ├──────────────────────────────┤ vmaTableOffset
 *  │ VMA table                    │ VMA_WORDS per VMA slot (owner's mmap_lock; free list: vma_pool_lock)
 *  ├──────────────────────────────┤ mmTableOffset
 *  │ address-space table          │ MM_WORDS per mm_struct slot (mm_table_lock, then the mm's mmap_lock)
 *  ├──────────────────────────────┤ threadTableOffset
 *  │ thread table                 │ THREAD_WORDS per attachment: state, read section, VMA stash, undo log
 *  ├──────────────────────────────┤ metadataFrames * PAGE_SIZE
 *  │ frames                       │ vmalloc pages, page-table pages, free frames
 *  └──────────────────────────────┘ totalFrames * PAGE_SIZE
 * ```
 *
 * Every shared word is accessed either only through `Atomics`, or under the named lock (and then
 * still through `Atomics`, so lock-free readers see whole values), or only before the buffer is
 * shared (init-only). The comment next to each index says which.
 *
 * @module
 */
import { PAGE_SIZE } from './errno.js';
import { showValue } from './fault.js';

/** `"SABV"` as a little-endian word: the first word of every sabvm buffer. */
export const SABVM_MAGIC = 0x56424153;
/** Bumped whenever any offset or record format below changes; `attach` refuses other versions. */
export const LAYOUT_VERSION = 6;

/** Bytes in one Int32 word. */
export const SIZEOF_WORD = 4;
/** Bytes in one cache line; hot header words each get their own line. */
export const SIZEOF_CACHE_LINE = 64;

/**
 * Header word indices (Int32 index from byte 0). Config words (line 0) are init-only; every hot
 * word starts its own 64-byte cache line (16 words), and a lock shares its line only with the
 * words it guards.
 */
export const enum Hdr {
  /** init-only: {@link SABVM_MAGIC}. */
  MAGIC = 0,
  /** init-only: {@link LAYOUT_VERSION}. */
  VERSION = 1,
  /** init-only: frames of physical memory, metadata included. */
  TOTAL_FRAMES = 2,
  /** init-only: area slots in the vmalloc area table. */
  MAX_AREAS = 3,
  /** init-only: VMA slots. */
  MAX_VMAS = 4,
  /** init-only: address-space (mm) slots. */
  MAX_MMS = 5,
  /** init-only: pages in the vmalloc address range. */
  VMALLOC_PAGES = 6,
  /** init-only: frames taken by the metadata, from pfn 0. */
  METADATA_FRAMES = 7,
  /** init-only: thread slots (attachments) in the thread table. */
  MAX_THREADS = 8,
  /** atomic (Atomics.add): the next thread id handed out by `attach`; also the lock owner id. */
  NEXT_TID = 16,
  /** atomic: frames whose bitmap bit is clear and not reserved by an allocation in flight. */
  FREE_FRAMES = 32,
  /** atomic: bitmap word where the next frame search starts. */
  FRAME_HINT = 48,
  /** atomic: `vfree` calls that freed nothing (unknown, interior or dead address). */
  BAD_FREES = 64,
  /** atomic: page-table frames (page directories and page tables) in use. */
  PT_FRAMES = 80,
  /** the vmap_area_lock word: 0 free, else the owner's thread id. */
  VMAP_LOCK = 96,
  /** vmap_area_lock: slot + 1 of the lowest live area (the sorted vmap_area_list), 0 if none. */
  AREA_HEAD = 97,
  /** vmap_area_lock: slot + 1 of the first free area slot, 0 if none. */
  AREA_FREE_HEAD = 98,
  /** vmap_area_lock: live areas. */
  NR_AREAS = 99,
  /** vmap_area_lock: backed pages over all live areas (guard pages excluded). */
  VMALLOC_USED_PAGES = 100,
  /**
   * vmap_area_lock: slot + 1 of the area after which the next first-fit search may start
   * (`free_vmap_cache`), 0 = from the lowest address.
   */
  FREE_CACHE = 101,
  /** vmap_area_lock: the largest hole below FREE_CACHE that a search skipped (`cached_hole_size`). */
  CACHED_HOLE = 102,
  /** vmap_area_lock: the alignment (pages) of the search that set FREE_CACHE (`cached_align`). */
  CACHED_ALIGN = 103,
  /** the vma_pool_lock word. */
  VMA_POOL_LOCK = 112,
  /** vma_pool_lock: slot + 1 of the first free VMA slot. */
  VMA_FREE_HEAD = 113,
  /** vma_pool_lock: VMA slots in use. */
  NR_VMAS = 114,
  /** the mm_table_lock word. */
  MM_TABLE_LOCK = 128,
  /** mm_table_lock: live address spaces. */
  NR_MMS = 129,
  /** mm_table_lock: slot + 1 of the first free mm slot, 0 if none. */
  MM_FREE_HEAD = 130,
  /**
   * atomic: 0, or the thread id of the thread recovering from dead threads (stop-the-world:
   * while it is set no thread enters the kernel or takes a lock).
   */
  RECOVERY = 144,
  /** atomic: the grace-period epoch; bumped by every deferred release. */
  RCU_EPOCH = 160,
  /** atomic: threads inside a read section now. */
  RCU_READERS = 176,
  /** atomic (lock-free list): pfn + 1 of the first deferred frame, linked through `Frame.LINK`. */
  DEFER_HEAD = 192,
  /** atomic: frames on the deferred list. */
  DEFERRED_FRAMES = 208,
  /**
   * atomic (`Atomics.store` by `kernel.maxMapCount = n`, read by every call that adds VMAs): the
   * most VMAs one address space may hold (`vm.max_map_count`); set at boot.
   */
  MAX_MAP_COUNT = 224,
}

/** Words per frame-table entry. */
export const FRAME_WORDS = 3;
/** Frame-table entry word offsets. */
export const enum Frame {
  /** atomic: references held on the frame (0 = free). */
  REFCOUNT = 0,
  /** atomic: who owns the frame: `kind | (id << OWNER_ID_SHIFT)`, see {@link FrameKind}. */
  OWNER = 1,
  /** atomic: on the deferred list, pfn + 1 of the next deferred frame (0 ends the list). */
  LINK = 2,
}
/** Owner kinds, the low bits of {@link Frame.OWNER}. */
export const enum FrameKind {
  FREE = 0,
  /** kernel metadata (this layout). */
  META = 1,
  /** a vmalloc page; id = area slot. */
  VMALLOC = 2,
  /** a page directory or page table; id = mm slot. */
  PAGE_TABLE = 3,
  /** taken by a kernel call still in flight; id = thread slot (recovery frees it if that thread dies). */
  INFLIGHT = 4,
  /** released while a read section was open; id = grace-period epoch (28 bits). */
  DEFERRED = 5,
  /**
   * a page of a freed area that user PTEs still map; refcount = those PTEs (id = 0). A page of a
   * live area has refcount 1 (the area's) and its PTEs are counted in the area's MAPCOUNT.
   */
  ORPHAN = 6,
}
/** Bits of {@link Frame.OWNER} that hold the {@link FrameKind}. */
export const OWNER_KIND_MASK = 0x7;
/** Shift of the owner id in {@link Frame.OWNER}. */
export const OWNER_ID_SHIFT = 3;

/**
 * Words per vmalloc area slot (`struct vmap_area` + `struct vm_struct`). Written under
 * vmap_area_lock through `Atomics.store`.
 */
export const AREA_WORDS = 8;
/** Area record word offsets. */
export const enum Area {
  /** first page of the area, as an index into the vmalloc range. */
  START = 0,
  /** backed pages (guard excluded); 0 marks a free slot. */
  NR_PAGES = 1,
  /** `VM_*` area flags. */
  FLAGS = 2,
  /** live: slot + 1 of the next area by address; free: slot + 1 of the next free slot. */
  NEXT = 3,
  /** live: slot + 1 of the previous area by address, 0 for the first. */
  PREV = 4,
  /** which call made it: {@link AreaCaller}. */
  CALLER = 5,
  /**
   * atomic: user PTEs that point into this area's frames (`page_mapcount`, kept per area: a
   * remap or munmap adjusts it once, not once per page). Changed by a thread holding the mmap_lock
   * of the address space whose PTEs it adds or removes; read by vfree with every mmap_lock held.
   */
  MAPCOUNT = 6,
  /** first pfn + 1 when the area's frames are one physically contiguous run, else 0. */
  CONTIG = 7,
}

/** The vmalloc-family call that made an area, for `/proc/vmallocinfo`. */
export const enum AreaCaller {
  VMALLOC = 0,
  VZALLOC = 1,
  VMALLOC_USER = 2,
}

/** Words per VMA slot (`struct vm_area_struct`). */
export const VMA_WORDS = 9;
/** VMA record word offsets. */
export const enum VmaWord {
  /** atomic: bumped when the slot is freed, so old `Vma` handles go stale. */
  GEN = 0,
  /** owner's mmap_lock: mm slot + 1 of the owner, 0 for a free slot. */
  MM = 1,
  /** owner's mmap_lock: first user page (uaddr >> PAGE_SHIFT). */
  START = 2,
  /** owner's mmap_lock: end user page, exclusive. */
  END = 3,
  /** owner's mmap_lock: `PROT_*`. */
  PROT = 4,
  /** owner's mmap_lock: `VM_*` VMA flags. */
  FLAGS = 5,
  /** live: owner's mmap_lock, slot + 1 of the next VMA by address; free: vma_pool_lock, free list. */
  NEXT = 6,
  /**
   * owner's mmap_lock: the mapped object (Linux's `vm_file`/`anon_vma` for a shared mapping): an
   * id the mmap that made the VMA took from `Mm.NEXT_ANON`, kept by every piece split off it and
   * by a move. Only VMAs of one object can merge.
   */
  ANON = 7,
  /** owner's mmap_lock: `vm_pgoff`, the VMA's first page as an offset into its object. */
  PGOFF = 8,
}

/** Words per address-space slot (`struct mm_struct`), one cache line. */
export const MM_WORDS = 16;
/** Address-space record word offsets. */
export const enum Mm {
  /** atomic: bumped on create and on destroy; odd = live. Handles compare it. */
  GEN = 0,
  /** the mm's mmap_lock word. */
  LOCK = 1,
  /** mmap_lock (set at create): pfn of the page directory. */
  PGD = 2,
  /** mmap_lock: slot + 1 of the lowest VMA, 0 if none. */
  VMA_HEAD = 3,
  /** mmap_lock: VMAs in this mm. */
  NR_VMAS = 4,
  /** mmap_lock: page-table frames (directory excluded). */
  NR_PT = 5,
  /** mmap_lock: pages with a PTE. */
  NR_PTES = 6,
  /** mm_table_lock: slot + 1 of the next free slot when free. */
  NEXT_FREE = 7,
  /**
   * atomic: the TLB generation (x86's `mm->context.tlb_gen`), bumped after any PTE loses a page or
   * a permission (munmap, mprotect, destroy), so per-thread translation caches know to drop theirs.
   */
  TLB_GEN = 8,
  /** mmap_lock: the last object id an mmap of this address space took (`VmaWord.ANON`). */
  NEXT_ANON = 9,
}

/** Words of a thread slot's header; the undo log follows. */
export const THREAD_HEADER_WORDS = 16;
/** Undo-log entries per thread slot. */
export const UNDO_ENTRIES = 256;
/** Words per undo-log entry: {@link Undo}. */
export const UNDO_WORDS = 3;
/** Words per thread slot (`struct task_struct`'s share of the kernel). */
export const THREAD_WORDS: number = THREAD_HEADER_WORDS + UNDO_ENTRIES * UNDO_WORDS;
/** Thread slot word offsets. Every word is written by its own thread, or by a recovering thread. */
export const enum Thread {
  /** atomic: {@link ThreadState}. */
  STATE = 0,
  /** atomic: the kernel thread id of the attachment (lock owner id). */
  TID = 1,
  /** atomic: an id the embedder gave at attach (Node's `threadId`), or -1. */
  USER_ID = 2,
  /** atomic: read-section nesting depth. */
  RCU_NESTING = 3,
  /** atomic: the grace-period epoch seen when the outermost read section began. */
  RCU_EPOCH = 4,
  /** atomic: entries in the undo log; 0 = nothing to undo (no mutation, or committed). */
  UNDO_LEN = 5,
  /**
   * atomic, 8 words: this thread's **VMA stash** — free VMA slots it keeps for its own next mmap
   * (a per-CPU cache, as the slab allocator keeps), so that mmap and munmap in its own address
   * space touch no shared pool word. Each word is a slot + 1, or 0 (empty). Only the owner fills
   * a word (`Atomics.store`); the owner, or a thread that finds the shared pool empty, empties
   * one by compare-and-exchange to 0 (so a slot is taken once); a recovery reads them with the
   * world stopped.
   */
  VMA_STASH = 6,
  /**
   * atomic, written by the owner: a sequence count, odd while this thread copies through an
   * address space's page tables (`read`, `write`, `putUser32`). munmap, mprotect and destroy wait
   * for an odd value seen after their flush to move on: a copy that passed its checks under the
   * old PTEs has landed before they return (TLB shootdown). Copies run inside read sections, so a
   * flush with no other thread in a section has nothing to wait for. Reset by recovery.
   */
  COPY_SEQ = 14,
  /** atomic, written by the owner before `COPY_SEQ` turns odd: the mm slot + 1 of that copy. */
  COPY_MM = 15,
}

/** VMA slots a thread may keep in its stash (words `Thread.VMA_STASH` … `+ VMA_STASH_SLOTS - 1`). */
export const VMA_STASH_SLOTS = 8;
/** States of a thread slot. */
export const enum ThreadState {
  FREE = 0,
  /** attached, not inside a kernel call. */
  OUT = 1,
  /** inside a kernel call. */
  IN = 2,
  /** inside a kernel call, waiting for a lock, with nothing changed yet. */
  PARKED = 3,
  /** found dead, waiting for recovery. */
  DEAD = 4,
}
/**
 * Undo-log entry words: restore `COUNT` words from `INDEX` to `VALUE` (COUNT 1: a single store); a
 * negative `INDEX` is `-(mm slot + 1)` and the entry clears that mm's PTEs for `COUNT` user pages
 * from page `VALUE` (a remap's new PTEs, one entry whatever the size).
 */
export const enum Undo {
  INDEX = 0,
  COUNT = 1,
  VALUE = 2,
}

/** Start of the vmalloc range (kernel virtual addresses), disjoint from every user address. */
export const VMALLOC_START: number = 2 ** 44;
/** End (exclusive) of user addresses: a 4 GiB user address space. */
export const TASK_SIZE: number = 2 ** 32;
/** Entries in one page directory or page table (one frame of Int32 entries). */
export const PTRS_PER_TABLE: number = PAGE_SIZE / SIZEOF_WORD;
/** Largest frame count a PTE can name (`pfn << PTE_PFN_SHIFT` must fit an Int32). */
export const MAX_FRAMES: number = 2 ** 27;

/** What {@link computeLayout} derives a layout from. */
export interface LayoutConfig {
  /** Bytes of physical memory; rounded down to whole frames. */
  readonly memoryBytes: number;
  /** vmalloc area slots; default a quarter of the frames. */
  readonly maxAreas?: number;
  /** VMA slots over all address spaces; default frames / 16, clamped to [1024, 65536]. */
  readonly maxVmas?: number;
  /** Address-space slots; default 1024. */
  readonly maxAddressSpaces?: number;
  /** Thread slots (attachments at once); default frames / 128, clamped to [16, 64]. */
  readonly maxThreads?: number;
  /**
   * Pages in the vmalloc address range; default frames + 2 × maxAreas, which no mix of areas can
   * run out of before frames or area slots do (only alignment can). A smaller range models a
   * kernel whose vmalloc space is tighter than its memory.
   */
  readonly vmallocPages?: number;
}

/** Every region of the memory map, in bytes from the start of the buffer. */
export interface Layout {
  readonly totalFrames: number;
  readonly maxAreas: number;
  readonly maxVmas: number;
  readonly maxAddressSpaces: number;
  readonly maxThreads: number;
  /** Pages in the vmalloc range: the frames plus twice the area slots (guard pages, then holes). */
  readonly vmallocPages: number;
  readonly headerOffset: number;
  readonly frameTableOffset: number;
  readonly frameBitmapOffset: number;
  /** Int32 words in the frame bitmap. */
  readonly frameBitmapWords: number;
  readonly areaTableOffset: number;
  readonly areaMapOffset: number;
  readonly kernelPageTableOffset: number;
  readonly vmaTableOffset: number;
  readonly mmTableOffset: number;
  readonly threadTableOffset: number;
  /** Bytes of metadata, rounded up to whole frames. */
  readonly metadataBytes: number;
  /** Frames taken by the metadata: pfns `[0, metadataFrames)`. */
  readonly metadataFrames: number;
}

function alignUp(n: number, to: number): number {
  return Math.ceil(n / to) * to;
}

function checkCount(name: string, value: number, min: number, max: number): number {
  if (!Number.isSafeInteger(value) || value < min || value > max) {
    throw new RangeError(`${name} must be an integer in [${min}, ${max}], got ${showValue(value)}`);
  }
  return value;
}

/**
 * Derive the memory map from a config: a pure function, so every thread computes the same map.
 * Throws `TypeError` when `memoryBytes` is not a number and `RangeError` when it is too small for
 * the metadata or larger than a PTE can address.
 */
export function computeLayout(config: LayoutConfig): Layout {
  const { memoryBytes } = config;
  if (typeof memoryBytes !== 'number') {
    throw new TypeError(`memoryBytes must be a number, got ${typeof memoryBytes}`);
  }
  if (!Number.isFinite(memoryBytes) || memoryBytes <= 0) {
    throw new RangeError(`memoryBytes must be a positive finite number, got ${memoryBytes}`);
  }
  const totalFrames = Math.floor(memoryBytes / PAGE_SIZE);
  if (totalFrames > MAX_FRAMES) {
    throw new RangeError(
      `memoryBytes ${memoryBytes} is too large: at most ${MAX_FRAMES * PAGE_SIZE} bytes can be addressed`,
    );
  }
  const maxAreas = checkCount(
    'maxAreas',
    config.maxAreas ?? Math.max(16, Math.floor(totalFrames / 4)),
    1,
    MAX_FRAMES,
  );
  const maxVmas = checkCount(
    'maxVmas',
    config.maxVmas ?? Math.min(65536, Math.max(1024, Math.floor(totalFrames / 16))),
    1,
    MAX_FRAMES,
  );
  const maxAddressSpaces = checkCount(
    'maxAddressSpaces',
    config.maxAddressSpaces ?? 1024,
    1,
    65536,
  );
  const maxThreads = checkCount(
    'maxThreads',
    config.maxThreads ?? Math.min(64, Math.max(16, Math.floor(totalFrames / 128))),
    1,
    4096,
  );
  // backed pages never exceed the frames and guard pages the area slots; as much again for holes
  const vmallocPages = checkCount(
    'vmallocPages',
    config.vmallocPages ?? totalFrames + 2 * maxAreas,
    2,
    2 * MAX_FRAMES,
  );

  const headerOffset = 0;
  const frameTableOffset = headerOffset + PAGE_SIZE;
  const frameBitmapOffset = alignUp(
    frameTableOffset + totalFrames * FRAME_WORDS * SIZEOF_WORD,
    SIZEOF_CACHE_LINE,
  );
  const frameBitmapWords = Math.ceil(totalFrames / 32);
  const areaTableOffset = alignUp(
    frameBitmapOffset + frameBitmapWords * SIZEOF_WORD,
    SIZEOF_CACHE_LINE,
  );
  const areaMapOffset = alignUp(
    areaTableOffset + maxAreas * AREA_WORDS * SIZEOF_WORD,
    SIZEOF_CACHE_LINE,
  );
  const kernelPageTableOffset = alignUp(
    areaMapOffset + vmallocPages * SIZEOF_WORD,
    SIZEOF_CACHE_LINE,
  );
  const vmaTableOffset = alignUp(
    kernelPageTableOffset + vmallocPages * SIZEOF_WORD,
    SIZEOF_CACHE_LINE,
  );
  const mmTableOffset = alignUp(
    vmaTableOffset + maxVmas * VMA_WORDS * SIZEOF_WORD,
    SIZEOF_CACHE_LINE,
  );
  const threadTableOffset = alignUp(
    mmTableOffset + maxAddressSpaces * MM_WORDS * SIZEOF_WORD,
    SIZEOF_CACHE_LINE,
  );
  const metadataBytes = alignUp(
    threadTableOffset + maxThreads * THREAD_WORDS * SIZEOF_WORD,
    PAGE_SIZE,
  );
  const metadataFrames = metadataBytes / PAGE_SIZE;
  if (metadataFrames >= totalFrames) {
    throw new RangeError(
      `memoryBytes ${memoryBytes} is too small: the metadata alone takes ${metadataBytes} bytes`,
    );
  }
  return {
    totalFrames,
    maxAreas,
    maxVmas,
    maxAddressSpaces,
    maxThreads,
    vmallocPages,
    headerOffset,
    frameTableOffset,
    frameBitmapOffset,
    frameBitmapWords,
    areaTableOffset,
    areaMapOffset,
    kernelPageTableOffset,
    vmaTableOffset,
    mmTableOffset,
    threadTableOffset,
    metadataBytes,
    metadataFrames,
  };
}

/** Int32 index of a byte offset (every region is word-aligned). */
export function wordIndex(byteOffset: number): number {
  return byteOffset / SIZEOF_WORD;
}
