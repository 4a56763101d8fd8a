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
 *  │ frame table                  │ FRAME_WORDS per frame: refcount, owner (free: zeroed or dirty), deferred-list link
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
 *  ├──────────────────────────────┤ cacheTableOffset
 *  │ slab cache table             │ CACHE_WORDS per kmem_cache: list_lock + partial list, geometry, name
 *  ├──────────────────────────────┤ metadataFrames * PAGE_SIZE
 *  │ frames                       │ vmalloc pages, page-table pages, slabs, free frames
 *  └──────────────────────────────┘ totalFrames * PAGE_SIZE
 * ```
 *
 * Kernel virtual addresses (all disjoint):
 *
 * ```
 *  kmallocStart = −memory ─ the direct map ─┤ 0 ─ user space ─┤ TASK_SIZE = 2^32 … VMALLOC_START = 2^44 ─ vmalloc …
 *  kaddr = kmallocStart + pfn * PAGE_SIZE + offset (kmalloc objects only)
 * ```
 *
 * A slab keeps its descriptor in its own first frame (no per-frame table: metadata stays under 1%),
 * see {@link Slab}.
 *
 * Every shared word is accessed either only through `Atomics`, or under the named lock, or only
 * before the buffer is shared (init-only). The comment next to each index says which. Under a lock,
 * a word that lock-free readers also read is written with `Atomics` (they see it whole and in
 * order); a word only holders read may be written with plain stores (PTEs, VMA and mm records
 * logged by `txStore`), which the lock's release, an `Atomics.store`, publishes to the next holder
 * and, for PTEs, to lock-free walkers that validate against the TLB generation (pgtable.ts).
 *
 * Boot commits the metadata: before any region is initialised and before the buffer is shared, one
 * plain store of 0 (the value every word holds then) to the first word of each 4 KiB page from the
 * frame table to `metadataBytes` makes the operating system back the page (`commitMetadata` in
 * phys-mem.ts). That store is init-only whatever the word's own rule; after it, each word follows
 * the rule written next to it. Allocations then never page-fault on the frame table, the area map
 * or the kernel page table, which they write in proportion to their size.
 *
 * @module
 */
import { PAGE_SHIFT, PAGE_SIZE } from './errno.js';
import { showValue } from './fault.js';

/** `"SABV"` as a little-endian word: the first word of every sabvm buffer. */
export const SABVM_MAGIC = 0x56424153;
/** Bumped whenever any offset or record format below changes; `attach` refuses other versions. */
export const LAYOUT_VERSION = 10;

/** `log2(SIZEOF_WORD)`. */
export const WORD_SHIFT = 2;
/** Bytes in one Int32 word. */
export const SIZEOF_WORD: number = 1 << WORD_SHIFT;
/** Bytes in one cache line; hot header words each get their own line (16 words). */
export const SIZEOF_CACHE_LINE = 64;

/**
 * Header word indices (Int32 index from byte 0), each derived from the one before it. Config words
 * (line 0) are init-only; every hot word starts its own 64-byte cache line (`+ 16` words), and a
 * lock shares its line only with the words it guards (`+ 1`).
 */
export const enum Hdr {
  /** init-only: {@link SABVM_MAGIC}. */
  MAGIC = 0,
  /** init-only: {@link LAYOUT_VERSION}. */
  VERSION = MAGIC + 1,
  /** init-only: frames of physical memory, metadata included. */
  TOTAL_FRAMES = VERSION + 1,
  /** init-only: area slots in the vmalloc area table. */
  MAX_AREAS = TOTAL_FRAMES + 1,
  /** init-only: VMA slots. */
  MAX_VMAS = MAX_AREAS + 1,
  /** init-only: address-space (mm) slots. */
  MAX_MMS = MAX_VMAS + 1,
  /** init-only: pages in the vmalloc address range. */
  VMALLOC_PAGES = MAX_MMS + 1,
  /** init-only: frames taken by the metadata, from pfn 0. */
  METADATA_FRAMES = VMALLOC_PAGES + 1,
  /** init-only: thread slots (attachments) in the thread table. */
  MAX_THREADS = METADATA_FRAMES + 1,
  /** atomic (Atomics.add): the next thread id handed out by `attach`; also the lock owner id. */
  NEXT_TID = 16,
  /** atomic: frames whose bitmap bit is clear and not reserved by an allocation in flight. */
  FREE_FRAMES = NEXT_TID + 16,
  /** atomic: bitmap word where the next frame search starts. */
  FRAME_HINT = FREE_FRAMES + 16,
  /** atomic: `vfree` calls that freed nothing (unknown, interior or dead address). */
  BAD_FREES = FRAME_HINT + 16,
  /** atomic: page-table frames (page directories and page tables) in use. */
  PT_FRAMES = BAD_FREES + 16,
  /** the vmap_area_lock word: 0 free, else the owner's thread id. */
  VMAP_LOCK = PT_FRAMES + 16,
  /** vmap_area_lock: slot + 1 of the lowest live area (the sorted vmap_area_list), 0 if none. */
  AREA_HEAD = VMAP_LOCK + 1,
  /** vmap_area_lock: slot + 1 of the first free area slot, 0 if none. */
  AREA_FREE_HEAD = AREA_HEAD + 1,
  /** vmap_area_lock: live areas. */
  NR_AREAS = AREA_FREE_HEAD + 1,
  /** vmap_area_lock: backed pages over all live areas (guard pages excluded). */
  VMALLOC_USED_PAGES = NR_AREAS + 1,
  /**
   * vmap_area_lock: slot + 1 of the area after which the next first-fit search may start
   * (`free_vmap_cache`), 0 = from the lowest address.
   */
  FREE_CACHE = VMALLOC_USED_PAGES + 1,
  /** vmap_area_lock: the largest hole below FREE_CACHE that a search skipped (`cached_hole_size`). */
  CACHED_HOLE = FREE_CACHE + 1,
  /** vmap_area_lock: the alignment (pages) of the search that set FREE_CACHE (`cached_align`). */
  CACHED_ALIGN = CACHED_HOLE + 1,
  /** the vma_pool_lock word. */
  VMA_POOL_LOCK = VMAP_LOCK + 16,
  /** vma_pool_lock: slot + 1 of the first free VMA slot. */
  VMA_FREE_HEAD = VMA_POOL_LOCK + 1,
  /** vma_pool_lock: VMA slots in use. */
  NR_VMAS = VMA_FREE_HEAD + 1,
  /** the mm_table_lock word. */
  MM_TABLE_LOCK = VMA_POOL_LOCK + 16,
  /** mm_table_lock: live address spaces. */
  NR_MMS = MM_TABLE_LOCK + 1,
  /** mm_table_lock: slot + 1 of the first free mm slot, 0 if none. */
  MM_FREE_HEAD = NR_MMS + 1,
  /**
   * atomic: 0, or the thread id of the thread recovering from dead threads (stop-the-world:
   * while it is set no thread enters the kernel or takes a lock).
   */
  RECOVERY = MM_TABLE_LOCK + 16,
  /** atomic: the grace-period epoch; bumped by every deferred release. */
  RCU_EPOCH = RECOVERY + 16,
  /** atomic: threads inside a read section now. */
  RCU_READERS = RCU_EPOCH + 16,
  /** atomic (lock-free list): pfn + 1 of the first deferred frame, linked through `Frame.LINK`. */
  DEFER_HEAD = RCU_READERS + 16,
  /** atomic: frames on the deferred list. */
  DEFERRED_FRAMES = DEFER_HEAD + 16,
  /** the slab_mutex word: kmemCacheCreate and destroy (the cache table's GEN, geometry and name). */
  KMEM_LOCK = DEFERRED_FRAMES + 16,
  /** atomic: the sequence number of the last slab made; each slab's {@link Slab.SEQ} is unique. */
  SLAB_SEQ = KMEM_LOCK + 16,
  /** atomic: frames held by slabs of every cache (`Slab:` in meminfo). */
  SLAB_FRAMES = SLAB_SEQ + 1,
  /** atomic: frames held by kmalloc allocations larger than the largest size class. */
  KMALLOC_LARGE_FRAMES = SLAB_FRAMES + 1,
  /**
   * atomic (`Atomics.store` by `kernel.maxMapCount = n`, read by every call that adds VMAs): the
   * most VMAs one address space may hold (`vm.max_map_count`); set at boot.
   */
  MAX_MAP_COUNT = KMALLOC_LARGE_FRAMES + 16,
  /**
   * atomic: the stamp of the last ring made (`Atomics.add`); each ring's {@link RingMeta.MAGIC} is
   * the next one, never 0 (a 32-bit count: a stamp comes back after 2^32 - 1 rings).
   */
  RING_SEQ = MAX_MAP_COUNT + 16,
}

/** Words per frame-table entry. */
export const FRAME_WORDS = 3;
/** Frame-table entry word offsets. */
export const enum Frame {
  /** atomic: references held on the frame (0 = free). */
  REFCOUNT = 0,
  /**
   * atomic: who owns the frame: `kind | (id << OWNER_ID_SHIFT)`, see {@link FrameKind}. A free
   * frame's id says whether it is known to hold zeros (Linux's pre-zeroed pages): `FREE_ZEROED`
   * (0, the word's value at boot: a fresh SharedArrayBuffer is zero-filled) for a frame never
   * handed out since boot, `FREE_DIRTY` for one released after use. Written by the frame allocator
   * (an `Atomics.exchange` that also reads whether the frame was zeroed), by the release path
   * (always `FREE_DIRTY`) and by recovery (which keeps a free frame's word as it was).
   */
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
  /**
   * a frame of a slab or of a large kmalloc; id = `cache | frameIndex << SLAB_FRAME_SHIFT` (see
   * slab.ts): the frame's place in its slab finds the slab's first frame, which holds the descriptor.
   */
  SLAB = 7,
}
/** Bits of {@link Frame.OWNER} that hold the {@link FrameKind}. */
export const OWNER_KIND_MASK = 0x7;
/** Shift of the owner id in {@link Frame.OWNER}. */
export const OWNER_ID_SHIFT = 3;
/** Owner word of a free frame known to hold zeros: never handed out since boot. */
export const FREE_ZEROED = 0;
/** Owner word of a free frame that may hold old data (it was released after use). */
export const FREE_DIRTY: number = FrameKind.FREE | (1 << OWNER_ID_SHIFT);

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
  /** `kernel.ringbufCreate`: a BPF ring buffer (ringbuf.ts), `bpf_ringbuf_area_alloc` in Linux. */
  RINGBUF = 3,
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

/**
 * Slab descriptor word offsets, from the first word of a slab's first frame (`struct slab`, which
 * Linux keeps in `struct page`; here on the slab itself, so no per-frame table is needed). The
 * descriptor is followed by the **alloc bitmap** (bitmapWords words, one bit per object: 1 =
 * allocated, not on the free list) and the **remote bitmap** (as many words: 1 = freed by a thread
 * that is not the holder, not yet taken back). Objects follow from the cache's OFFSET.
 *
 * Who writes what. The **holder** of a slab is the thread whose active slab it is, or that keeps
 * it used up (`cpuFullSlabs`; FROZEN names it either way), or nobody: an unowned slab's private
 * words do not change until a thread takes it.
 * - FREELIST, the alloc bitmap: the holder only, with **plain** loads and stores (nothing
 *   else reads them while the slab is frozen, except a remote free that tests one alloc bit of a
 *   live object, which the holder cannot change);
 * - the remote bitmap: `Atomics.or` by any freeing thread; `Atomics.and` by the holder when it
 *   takes remote frees back;
 * - FROZEN, LISTED: atomic; NEXT, PREV, ON_LIST: the cache's list_lock; SEQ: init-only per slab.
 */
export const enum Slab {
  /** atomic: thread slot + 1 of the holder (its active or a kept slab), 0 = unowned. Written under list_lock. */
  FROZEN = 0,
  /** atomic: 1 while on the partial list, or while a freeing thread is about to put it there. */
  LISTED = 1,
  /** init-only per slab: a number unique to this slab's life (a stale freer compares it). */
  SEQ = 2,
  /** list_lock: first frame pfn + 1 of the next slab on the cache's partial list. */
  NEXT = 3,
  /** list_lock: first frame pfn + 1 of the previous slab on the partial list. */
  PREV = 4,
  /** list_lock: 1 while on the partial list. */
  ON_LIST = 5,
  /** holder, plain: the first free object, `(index + 1) << 16 | byte offset in the slab`; 0 = none. */
  FREELIST = 6,
  /** init-only per slab: the cache's stride `| OFFSET << 16` (on the slab: the free path reads one line). */
  GEOMETRY = 7,
  /** init-only per slab: the cache's FIRST_OBJS `| BITMAP_WORDS << 16`. */
  SHAPE = 8,
}
/** Words of a slab descriptor before its bitmaps. */
export const SLAB_HEADER_WORDS = 9;

/** Slab caches: kmalloc-8 … kmalloc-8k, then those of `kmemCacheCreate`. */
export const KMEM_CACHES = 64;
/** Words per cache record (`struct kmem_cache`), three cache lines. */
export const CACHE_WORDS = 48;
/** Cache record word offsets. Line 0 is the list_lock's; line 1 is read-mostly. */
export const enum Cache {
  /** the cache's list_lock word (`kmem_cache_node.list_lock`). */
  LOCK = 0,
  /** list_lock: first frame pfn + 1 of the first partial slab, 0 if none. */
  PARTIAL = 1,
  /** list_lock (read outside it only as a hint, by `shrinkCaches`/`shrinkCache`): slabs on the partial list. */
  NR_PARTIAL = 2,
  /** list_lock: first frame pfn + 1 of the last partial slab, 0 if none. */
  PARTIAL_TAIL = 4,
  /** atomic: slabs of this cache. */
  NR_SLABS = 3,
  /** atomic, changed under slab_mutex: odd = live; bumped by create and destroy. */
  GEN = 16,
  /** slab_mutex, fixed while live: the object size asked for (what `ksize` reports). */
  SIZE = 17,
  /** slab_mutex, fixed while live: bytes from one object to the next. */
  STRIDE = 18,
  /** slab_mutex, fixed while live: object alignment in bytes. */
  ALIGN = 19,
  /** slab_mutex, fixed while live: objects per slab. */
  OBJS = 20,
  /** slab_mutex, fixed while live: frames per slab (physically contiguous). */
  FRAMES = 21,
  /** slab_mutex, fixed while live: words of each bitmap. */
  BITMAP_WORDS = 22,
  /** slab_mutex, fixed while live: byte offset of the first object in the slab. */
  OFFSET = 23,
  /** slab_mutex, fixed while live: objects in the first frame (all of them when larger than a page). */
  FIRST_OBJS = 24,
  /** slab_mutex, fixed while live: objects in each later frame. */
  PER_FRAME = 25,
  /** slab_mutex, fixed while live: the name, NUL-padded ASCII (up to 31 bytes). */
  NAME = 32,
}
/** Words of a cache name (31 characters and a NUL). */
export const CACHE_NAME_WORDS = 8;

/**
 * End (exclusive) of the kmalloc range. The kmalloc range is the direct map (Linux's
 * `PAGE_OFFSET` region) and sits at the top of the address space: it ends at 0 and starts at
 * {@link Layout.kmallocStart} = −(bytes of physical memory), so a kmalloc object's kaddr is
 * `kmallocStart` + its physical byte address, a negative number — as kernel addresses are on
 * x86-64 read as signed integers (the direct map starts at 0xffff888000000000). Below user space
 * (`[0, TASK_SIZE)`) and far from the vmalloc range. A JavaScript reason too: for up to 1 GiB of
 * physical memory every kaddr is a small integer (no boxed double on the fast path), and up to
 * 2 GiB it fits an `Int32Array` slot, so shared structures can link objects with 4-byte kaddrs.
 */
export const KMALLOC_END = 0;

/** `log2(PTRS_PER_TABLE)`: a page directory or page table is one frame of Int32 entries. */
export const TABLE_SHIFT: number = PAGE_SHIFT - WORD_SHIFT;
/** Entries in one page directory or page table: 1024. */
export const PTRS_PER_TABLE: number = 1 << TABLE_SHIFT;
/** `log2(HPAGE_SIZE)`: what one directory entry maps (a page table's pages, or a huge entry). */
export const HPAGE_SHIFT: number = PAGE_SHIFT + TABLE_SHIFT;
/** Bytes one directory entry maps: 4 MiB. */
export const HPAGE_SIZE: number = 1 << HPAGE_SHIFT;
/** Pages one directory entry maps (a huge entry's frames): 1024. */
export const HPAGE_PAGES: number = PTRS_PER_TABLE;
/** End (exclusive) of user addresses: a page directory's worth, 4 GiB. */
export const TASK_SIZE: number = 2 ** (HPAGE_SHIFT + TABLE_SHIFT);
/** Start of the vmalloc range (kernel virtual addresses), disjoint from every user address. */
export const VMALLOC_START: number = 2 ** 44;
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
  readonly cacheTableOffset: number;
  /** Start of the kmalloc range: −(totalFrames × PAGE_SIZE); it ends at `KMALLOC_END`. */
  readonly kmallocStart: number;
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
  const cacheTableOffset = alignUp(
    threadTableOffset + maxThreads * THREAD_WORDS * SIZEOF_WORD,
    SIZEOF_CACHE_LINE,
  );
  const metadataBytes = alignUp(
    cacheTableOffset + KMEM_CACHES * CACHE_WORDS * SIZEOF_WORD,
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
    cacheTableOffset,
    kmallocStart: -totalFrames * PAGE_SIZE,
    metadataBytes,
    metadataFrames,
  };
}

/** Int32 index of a byte offset (every region is word-aligned). */
export function wordIndex(byteOffset: number): number {
  return byteOffset / SIZEOF_WORD;
}

/**
 * A BPF ring buffer (`struct bpf_ringbuf`, `kernel/bpf/ringbuf.c`): one `VM_USERMAP` vmalloc area
 * whose frames are one physically contiguous run, `RINGBUF_META_PAGES` pages of positions
 * then the data pages (`dataBytes`, a power of two). Each position page is its own page, as in
 * Linux, so that a user mapping can give it its own protection (ringbuf-user.ts):
 *
 * ```
 *   kaddr (area page 0)
 *   ┌────────────────────────────────────────┐
 *   │ meta page (kernel only, never mapped)  │ MAGIC, DATA_PAGES, REFS, SLOT_HOLDS[slot]
 *   ├────────────────────────────────────────┤ RINGBUF_PGOFF: a user mapping starts here
 *   │ consumer page                          │ line 0: CONSUMER_POS  line 3: CONSUMER_SKIP
 *   │   (written by the consumer)            │ line 1: CONSUMER_LOCK    line 2: WAITERS
 *   ├────────────────────────────────────────┤
 *   │ producer page                          │ line 0: PRODUCER_POS
 *   │   (written by producers)               │ line 1: WAKE_SEQ, PRODUCER_WAITERS
 *   │                                        │ line 2: RESV_LOCK, PENDING_POS
 *   ├────────────────────────────────────────┤ RINGBUF_META_PAGES
 *   │ data: │hdr│record│pad│hdr│record│ …    │ dataBytes; records 8-byte aligned, never wrapping
 *   └────────────────────────────────────────┘
 * ```
 *
 * Positions are byte counts modulo 2^32 in one Int32 word each (Linux: 64-bit `unsigned long`):
 * the data offset of a position is `pos & (dataBytes - 1)`, distances are `(a - b) >>> 0`, and
 * because `dataBytes <= RINGBUF_MAX_DATA_SZ` (2^30) no distance between live positions reaches
 * 2^31, so the wrap of a word at 4 GiB of traffic is invisible.
 */
export const RINGBUF_META_PAGES = 3;
/** Page of the consumer position: a user mapping of a ring starts here (Linux's `RINGBUF_PGOFF`). */
export const RINGBUF_PGOFF = 1;
/** Largest data area of a ring (bytes): keeps every position distance below 2^31. */
export const RINGBUF_MAX_DATA_SZ: number = 2 ** 30;

/** Meta page words (Int32 index from the page start). */
export const enum RingMeta {
  /**
   * atomic: the ring's stamp while it is live, 0 once `free` began (compare-and-exchange): a number
   * no other ring made since boot has had ({@link Hdr.RING_SEQ}), stored last at creation. A handle
   * keeps the stamp it found, so a handle kept past `free` never takes a later ring on the same
   * frames for its own. Producers' `reserve`/`output` read it with a plain load: their check is a
   * courtesy that a free may overtake at once either way.
   */
  MAGIC = 0,
  /** init-only: data pages (`dataBytes / PAGE_SIZE`). */
  DATA_PAGES = 1,
  /**
   * atomic: references to the area: 1 for the ring until `free`, plus one per poll or wait in
   * progress through a kernel handle. Whoever drops it to 0 vfrees the area.
   */
  REFS = 2,
  /**
   * atomic, one word per thread slot below {@link RING_HOLD_SLOTS} (`SLOT_HOLDS + slot`), written
   * only by that thread while it lives, and by recovery once it is dead: what the thread holds on
   * the ring for its waits in progress, so that reaping it can give them back. Fields of
   * {@link RING_HOLD_BITS} bits: references in REFS (`RING_HOLD_REF` each), counts in the consumer
   * page's WAITERS (`RING_HOLD_CONS`) and in the producer page's PRODUCER_WAITERS
   * (`RING_HOLD_PROD`). A thread adds to the ring's word first and to its own second, and takes
   * from its own first: a thread that dies between the two leaves one count behind, never takes
   * one that is not its own.
   */
  SLOT_HOLDS = 16,
}

/** Bits of each field of a `RingMeta.SLOT_HOLDS` word (at most 1023 waits of a kind per thread). */
export const RING_HOLD_BITS = 10;
/** A reference held on a ring, in a `RingMeta.SLOT_HOLDS` word. */
export const RING_HOLD_REF = 1;
/** A count in the ring's WAITERS (a consumer asleep), in a `RingMeta.SLOT_HOLDS` word. */
export const RING_HOLD_CONS: number = 1 << RING_HOLD_BITS;
/** A count in the ring's PRODUCER_WAITERS (a producer waiting for room), in a `SLOT_HOLDS` word. */
export const RING_HOLD_PROD: number = 1 << (2 * RING_HOLD_BITS);
/** Thread slots whose waits a ring's meta page records (the page's words after `SLOT_HOLDS`). */
export const RING_HOLD_SLOTS: number = PTRS_PER_TABLE - RingMeta.SLOT_HOLDS;

/** Consumer page words (Int32 index from the page start); only the consumer writes them. */
export const enum RingCons {
  /**
   * atomic, written by the consumer holding CONSUMER_LOCK: bytes consumed (mod 2^32). Stored a
   * quarter of the ring at a time and whenever the consumer finds the ring empty or held back
   * (then it looks again), so producers reading it seldom miss their cache. A reserving producer
   * reads it with a plain load (a stale value only makes the ring look fuller) and with
   * `Atomics.load` before it answers "full"; the wake-up check and waits use `Atomics.load`.
   */
  CONSUMER_POS = 0,
  /** atomic (compare-and-exchange): 0, or the tid of the thread consuming now (one at a time). */
  CONSUMER_LOCK = 16,
  /**
   * atomic: consumers about to sleep or asleep on `WAKE_SEQ` (counted before their last look at
   * the ring); a committing producer reads it first and skips the wake-up check when it is 0.
   * On a line of its own: every commit reads it, and the consumer writes CONSUMER_LOCK at every
   * consume call, which would take the line from the producer each time.
   */
  WAITERS = 32,
  /**
   * atomic, written by the consumer holding CONSUMER_LOCK: how many records of the run record at
   * `CONSUMER_SKIP_POS` (see {@link RINGBUF_RUN_BIT}) are consumed already, or 0; it counts only
   * while `CONSUMER_SKIP_POS` equals `CONSUMER_POS`. A consumer that stops inside a run (a callback
   * that returns < 0 or throws, a read ended early) leaves `CONSUMER_POS` at the run's header,
   * since the records of a run have no header of their own to stop at, and stores how many of them
   * it passed; the next consumer starts that run past them. Order (`storeConsumer`): at the same
   * position the count is stored, then the position if it was not there; to move on,
   * `CONSUMER_POS` first, then the count, then `CONSUMER_SKIP_POS` (or 0 for the count, when the
   * new position starts no run); a consume or read that opens and finds a count for a position
   * other than `CONSUMER_POS` stores it 0. So a consumer that dies between any two stores leaves
   * either what it last stored whole or a count that does not count (its unstored records come
   * again, as any dead consumer's), never a count for another record, and never takes back what an
   * earlier consumer stored. On a line of their own, away from `CONSUMER_POS` (word 1 is the high
   * half of Linux's 64-bit `consumer_pos`, which stays 0). Producers never read them: a run keeps
   * its bytes until it is consumed whole.
   */
  CONSUMER_SKIP = 48,
  /** See CONSUMER_SKIP: the position (mod 2^32) its count is for. */
  CONSUMER_SKIP_POS = 49,
}

/** Producer page words (Int32 index from the page start); only producers write them. */
export const enum RingProd {
  /**
   * bytes reserved (mod 2^32): written with `Atomics.store` under RESV_LOCK (the publish of a
   * reservation, after its header); read plain by the lock holder, with `Atomics.load` by anyone else.
   */
  PRODUCER_POS = 0,
  /**
   * RESV_LOCK (plain loads and stores): every record before it is committed (Linux's
   * `pending_pos`); a lower bound, advanced only when a reservation's room check against it fails.
   */
  PENDING_POS = 33,
  /**
   * the reservation lock (`rb->spinlock`): 0 free, else the owner's tid. On a cache line of its
   * own (with PENDING_POS, which only its holder touches), not PRODUCER_POS's, which a polling
   * consumer reads: a reservation then writes the polled line once, not three times.
   */
  RESV_LOCK = 32,
  /** atomic (Atomics.add by a waking producer): consumers wait on it for a wake-up. */
  WAKE_SEQ = 16,
  /** atomic: producers asleep on `CONSUMER_POS` for room (`reserveWait`). */
  PRODUCER_WAITERS = 17,
}

/**
 * A record header (`struct bpf_ringbuf_hdr`), 8 bytes before each ring record (a run's records
 * share one), 8-byte aligned:
 *
 * ```
 *   0                        4                          8
 *   ┌─┬─┬─┬──────────────────┬────────────┬─┬─────────────┬──────────────────────┐
 *   │B│D│R│ len (29 bits)    │owner (12)  │S│ pg_off (19) │ len bytes, pad to 8  │
 *   └─┴─┴─┴──────────────────┴────────────┴─┴─────────────┴──────────────────────┘
 * ```
 *
 * Word 0: written `len | BUSY` with a plain store under RESV_LOCK by the reserving producer,
 * before the `Atomics.store` of PRODUCER_POS that publishes it (every reader loads PRODUCER_POS
 * first), then exchanged once with `Atomics.exchange`, lock-free, to commit (BUSY cleared, DISCARD
 * set for a discard); an `output` of up to 1 KiB writes it committed (`len`) in the same plain
 * store, its bytes already in place, and never exchanges it. Read with `Atomics.load`, or with a
 * plain load where word 1 says {@link RINGBUF_SETTLED_BIT}. Word 1 is written once with word 0 (a
 * batch's inner records: at its publish, before the `Atomics.store` of the batch's first header
 * that makes them visible), with plain stores, and read with plain loads after the `Atomics.load`
 * of PRODUCER_POS (or of the batch's first header) that ordered its store: the page offset of the
 * header from the ring's kaddr (as Linux) in its low 19 bits, {@link RINGBUF_SETTLED_BIT}, and the
 * reserving thread's slot in its top 12 bits, by which reaping a dead thread finds its open
 * records (sabvm additions; Linux keeps the full 32 bits for pg_off).
 */
export const RINGBUF_HDR_SZ = 8;
/** Header word 0: the record is reserved and not yet committed. */
export const RINGBUF_BUSY_BIT: number = 2 ** 31;
/** Header word 0: the record was discarded (or is the skipped tail before a wrap). */
export const RINGBUF_DISCARD_BIT: number = 2 ** 30;
/**
 * Header word 0 (sabvm's own): the record is a *run*, many records of one length in one ring
 * record. Its bytes are a descriptor of two Int32 words (the records' length `sub`, their count
 * `n`, at least 1) then the `n` records one after the other at a stride of `sub` padded to 8, with
 * no header between them: `len = 8 + n * ((sub + 7) & ~7)`. The consumer hands out each record of
 * a run as one record of its own; {@link RingCons.CONSUMER_SKIP} says how many of the run at
 * `CONSUMER_POS` are consumed. Only a published batch's records form runs (`RB_BATCH` records of
 * one length in a row, and `batchReserveBulk`'s), and the bit is set in the store that commits the
 * run (never with BUSY or DISCARD: a discarded run is discarded whole). A reader of the layout
 * that does not know this bit cannot read a ring with runs: libbpf's, which clears only BUSY and
 * DISCARD, takes a run's length for 2^29 more than it is and loses its place in the ring.
 */
export const RINGBUF_RUN_BIT: number = 2 ** 29;
/** Header word 0: the length bits (a record is at most 2^29 - 8 bytes: half the largest ring). */
export const RINGBUF_LEN_MASK: number = RINGBUF_RUN_BIT - 1;
/** Bytes of a run's descriptor (see {@link RINGBUF_RUN_BIT}), before its records. */
export const RINGBUF_RUN_DESC_SZ = 8;
/** Header word 1: the page-offset bits (at most 3 + 2^18 pages: 19 bits). */
export const RINGBUF_PG_OFF_MASK: number = 2 ** 19 - 1;
/**
 * Header word 1: word 0 was written committed before the store that made the record visible and
 * never changes until the consumer passes the record (an `output` of up to 1 KiB, a skipped tail,
 * a published batch's records after its first), so the consumer reads it with a plain load. A
 * record reserved BUSY never has it. A sabvm addition.
 */
export const RINGBUF_SETTLED_BIT: number = 2 ** 19;
/** Header word 1: shift of the owner's thread slot. */
export const RINGBUF_OWNER_SHIFT = 20;
