/**
 * VMAs: the mapped ranges of an address space, and the slot pool they live in.
 *
 * Kernel counterpart: `struct vm_area_struct` and `vm_area_alloc`/`vm_area_free`
 * (`kernel/fork.c`), `find_vma` (`mm/mmap.c`).
 *
 * VMA records live in one table in shared memory. A free slot is on the pool's free list
 * (`Hdr.VMA_FREE_HEAD`, an llist: slots are given back lock-free and taken under
 * **vma_pool_lock**); a live slot belongs to one address space and is
 * linked into its list sorted by address (`Mm.VMA_HEAD`), and all its words are written under that
 * address space's **mmap_lock** (plain stores, published by the lock's release; `Vma` getters
 * read them lock-free with `Atomics.load`, a snapshot: aligned Int32 accesses never tear).
 * `VmaWord.GEN` is bumped whenever a slot is freed: a `Vma` handle whose generation no longer
 * matches is stale and is refused by every call that takes one.
 *
 * @module
 */
import { PAGE_SHIFT } from './errno.js';
import { Hdr, Thread, VMA_STASH_SLOTS, VMA_WORDS, VmaWord } from './layout.js';

/** `vm.max_map_count`'s default in Linux (`DEFAULT_MAX_MAP_COUNT` in `include/linux/mm.h`). */
export const DEFAULT_MAX_MAP_COUNT = 65530;
import { llistAdd, llistDelFirst } from './llist.js';
import { spinLock, spinUnlock } from './lock.js';
import { inspectAsJson, type PhysMem } from './phys-mem.js';
import { threadWord } from './thread.js';
import { txStore } from './undo.js';

/** Index of a VMA record's word. */
export function vmaWord(mem: PhysMem, slot: number, word: VmaWord): number {
  return mem.vmaTable + slot * VMA_WORDS + word;
}

/** Read a VMA word. Context: the owner's mmap_lock held (a plain read: the lock orders it). */
export function vmaGet(mem: PhysMem, slot: number, word: VmaWord): number {
  return mem.i32[vmaWord(mem, slot, word)]!;
}

/** Read a VMA word without the lock: an `Atomics.load` snapshot. Context: any thread. */
export function vmaLoad(mem: PhysMem, slot: number, word: VmaWord): number {
  return Atomics.load(mem.i32, vmaWord(mem, slot, word));
}

/** Write a VMA word (logged for undo inside a transaction). Context: the owner's mmap_lock held. */
export function vmaSet(mem: PhysMem, slot: number, word: VmaWord, value: number): void {
  txStore(mem, vmaWord(mem, slot, word), value);
}

/** Boot-time setup: every VMA slot on the free list, the VMA limit. Context: boot, before sharing. */
export function initVmas(mem: PhysMem): void {
  const { maxVmas } = mem.layout;
  for (let slot = 0; slot < maxVmas; slot++) {
    mem.i32[vmaWord(mem, slot, VmaWord.NEXT)] = slot + 1 < maxVmas ? slot + 2 : 0;
  }
  mem.i32[Hdr.VMA_FREE_HEAD] = 1;
  // vm.max_map_count: Linux's default, or every slot of a smaller pool
  mem.i32[Hdr.MAX_MAP_COUNT] = Math.min(DEFAULT_MAX_MAP_COUNT, maxVmas);
}

/**
 * Take `n` free VMA slots, all or nothing (`vm_area_alloc`); null when none are left. Slots come
 * from this thread's stash when it holds `n` (no shared word touched), else from the shared pool —
 * and, when the pool runs dry, from any thread's stash (so stashes never make a slot unavailable).
 * Context: any thread; takes vma_pool_lock only on the pool path. A slot taken off the stash is
 * never held across a lock wait, so a recovery never finds a live thread holding slots that are
 * neither stashed nor linked.
 */
export function reserveVmaSlots(mem: PhysMem, n: number): number[] | null {
  if (n === 0) return [];
  if (mem.current.base >= 0 && stashCount(mem, mem.current.slot) >= n) {
    const out: number[] = [];
    while (out.length < n) {
      const slot = stashTake(mem, mem.current.slot);
      if (slot < 0) break; // another thread took from the stash meanwhile
      out.push(slot);
    }
    if (out.length === n) return out;
    for (const slot of out) if (!stashPut(mem, slot)) giveToPool(mem, slot);
  }
  return takeFromPool(mem, n);
}

/** Index of word `k` of thread slot `t`'s stash. */
function stashWord(mem: PhysMem, t: number, k: number): number {
  return threadWord(mem, t, Thread.VMA_STASH) + k;
}

/** Slots in thread slot `t`'s stash (a snapshot). */
function stashCount(mem: PhysMem, t: number): number {
  let n = 0;
  for (let k = 0; k < VMA_STASH_SLOTS; k++)
    if (Atomics.load(mem.i32, stashWord(mem, t, k)) !== 0) n++;
  return n;
}

/** Take one slot out of thread slot `t`'s stash (compare-and-exchange to 0); -1 if empty. */
function stashTake(mem: PhysMem, t: number): number {
  const { i32 } = mem;
  for (let k = 0; k < VMA_STASH_SLOTS; k++) {
    const at = stashWord(mem, t, k);
    const v = Atomics.load(i32, at);
    if (v !== 0 && Atomics.compareExchange(i32, at, v, 0) === v) return v - 1;
  }
  return -1;
}

/** Put a free slot in this thread's stash; false when it is full (or the thread has none). */
function stashPut(mem: PhysMem, slot: number): boolean {
  if (mem.current.base < 0) return false;
  const { i32 } = mem;
  for (let k = 0; k < VMA_STASH_SLOTS; k++) {
    // only the owner fills a word, so an empty word stays empty until this store
    const at = stashWord(mem, mem.current.slot, k);
    if (Atomics.load(i32, at) === 0) {
      Atomics.store(i32, at, slot + 1);
      return true;
    }
  }
  return false;
}

/**
 * Take `n` slots off the shared pool, emptying other stashes if the pool runs dry; all or nothing.
 */
function takeFromPool(mem: PhysMem, n: number): number[] | null {
  const { i32 } = mem;
  const pooled: number[] = [];
  const stolen: number[] = [];
  const link = (slot: number): number => vmaWord(mem, slot, VmaWord.NEXT);
  spinLock(mem, Hdr.VMA_POOL_LOCK);
  while (pooled.length < n) {
    const slot = llistDelFirst(i32, Hdr.VMA_FREE_HEAD, link);
    if (slot < 0) break;
    pooled.push(slot);
  }
  for (let t = 0; t < mem.layout.maxThreads && pooled.length + stolen.length < n; t++) {
    while (pooled.length + stolen.length < n) {
      const slot = stashTake(mem, t);
      if (slot < 0) break;
      stolen.push(slot);
    }
  }
  if (pooled.length + stolen.length < n) {
    for (const slot of pooled) llistAdd(i32, Hdr.VMA_FREE_HEAD, link(slot), slot);
    spinUnlock(mem, Hdr.VMA_POOL_LOCK);
    for (const slot of stolen) giveToPool(mem, slot);
    return null;
  }
  spinUnlock(mem, Hdr.VMA_POOL_LOCK);
  // Hdr.NR_VMAS counts the slots off the pool — in use, or in a stash — so stolen ones are counted
  if (pooled.length > 0) Atomics.add(i32, Hdr.NR_VMAS, pooled.length);
  return [...pooled, ...stolen];
}

/** Give one slot back to the shared pool. Context: any thread, lock-free. */
function giveToPool(mem: PhysMem, slot: number): void {
  llistAdd(mem.i32, Hdr.VMA_FREE_HEAD, vmaWord(mem, slot, VmaWord.NEXT), slot);
  Atomics.sub(mem.i32, Hdr.NR_VMAS, 1);
}

/**
 * Give VMA slots back (`vm_area_free`): to this thread's stash while it has room, else to the
 * shared pool; each slot's generation is bumped so that old handles go stale.
 * Context: any thread, lock-free; the slots are unreachable from any list.
 */
export function releaseVmaSlots(mem: PhysMem, slots: readonly number[]): void {
  const { i32 } = mem;
  for (const slot of slots) {
    Atomics.add(i32, vmaWord(mem, slot, VmaWord.GEN), 1);
    Atomics.store(i32, vmaWord(mem, slot, VmaWord.MM), 0);
    if (!stashPut(mem, slot)) giveToPool(mem, slot);
  }
}

/** Empty this thread's stash into the shared pool (at detach). Context: the owning thread. */
export function drainVmaStash(mem: PhysMem): void {
  if (mem.current.base < 0) return;
  for (
    let slot = stashTake(mem, mem.current.slot);
    slot >= 0;
    slot = stashTake(mem, mem.current.slot)
  )
    giveToPool(mem, slot);
}

/**
 * A mapped range of an address space (`struct vm_area_struct`). A small handle: its getters read
 * shared memory, so after a split they report the new bounds. A `Vma` whose range was wholly
 * unmapped, or whose address space was destroyed, is stale.
 */
export class Vma {
  /** @internal */
  readonly mem: PhysMem;
  /** @internal the VMA slot */
  readonly slot: number;
  /** @internal the slot generation this handle was made for */
  readonly gen: number;

  /** @internal */
  constructor(mem: PhysMem, slot: number, gen: number) {
    this.mem = mem;
    this.slot = slot;
    this.gen = gen;
  }

  /** True while the VMA is mapped. Context: any thread, lock-free snapshot. */
  get live(): boolean {
    return (
      vmaLoad(this.mem, this.slot, VmaWord.GEN) === this.gen &&
      vmaLoad(this.mem, this.slot, VmaWord.MM) !== 0
    );
  }

  /** First user address of the VMA (`vm_start`). */
  get start(): number {
    return vmaLoad(this.mem, this.slot, VmaWord.START) * 2 ** PAGE_SHIFT;
  }

  /** End user address, exclusive (`vm_end`). */
  get end(): number {
    return vmaLoad(this.mem, this.slot, VmaWord.END) * 2 ** PAGE_SHIFT;
  }

  /** `PROT_*` the VMA grants. */
  get prot(): number {
    return vmaLoad(this.mem, this.slot, VmaWord.PROT);
  }

  /** `VM_*` VMA flags (`vm_flags`). */
  get flags(): number {
    return vmaLoad(this.mem, this.slot, VmaWord.FLAGS);
  }

  /** @internal the owning mm slot + 1 (0 when the slot is free). */
  get mmId(): number {
    return vmaLoad(this.mem, this.slot, VmaWord.MM);
  }

  /**
   * A small plain form for `JSON.stringify` (the handle's own fields reach all of physical
   * memory): its bounds, protection and flags while live, `{ live: false }` once stale.
   */
  toJSON(): { type: 'Vma'; live: boolean; start?: number; end?: number; prot?: number } {
    if (!this.live) return { type: 'Vma', live: false };
    return { type: 'Vma', live: true, start: this.start, end: this.end, prot: this.prot };
  }
}
inspectAsJson(Vma);
