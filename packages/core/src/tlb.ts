/**
 * A per-thread translation cache for one address space: the software TLB behind `getUser32`.
 *
 * Kernel counterpart: the TLB and its shootdown (`flush_tlb_mm_range`), validated the way x86
 * validates per-CPU TLB contents against `mm->context.tlb_gen`.
 *
 * Entries live in this thread's own memory (not shared). Each maps a user page to the Int32 index
 * of its frame. They are trusted only while the address space's `Mm.TLB_GEN` is the even value they
 * were filled under. `Mm.TLB_GEN` is a sequence count: every munmap, mprotect and destroy makes it
 * odd before it takes a page or a permission away and even again after (`tlbFlushBegin`/`End`), and
 * frames are released only in between. A read checks the generation *after* touching the word, so
 * a value read from a frame that was being released meanwhile is never returned.
 *
 * @module
 */
import { PAGE_SHIFT, PAGE_SIZE } from './errno.js';
import { HPAGE_PAGES, HPAGE_SHIFT, HPAGE_SIZE, Mm, MM_WORDS, TASK_SIZE } from './layout.js';
import { dirOf, pdeIsHuge, pteAllows, pteInMemory, ptePfn, walkPde, walkPte } from './pgtable.js';
import type { PhysMem } from './phys-mem.js';

/** Entries (direct-mapped by page number): 64 Ki pages, 256 MiB of user space. */
const TLB_ENTRIES = 1 << 16;
const TLB_MASK = TLB_ENTRIES - 1;
const HPAGE_MASK = HPAGE_SIZE - 1;
/** Int32 words per frame. */
const WORDS_PER_PAGE = PAGE_SIZE / 4;

/** The translation cache of one AddressSpace handle. */
export class SoftTlb {
  /**
   * Per entry, side by side (one cache line): user page + 1 (0 = empty), the frame's pfn. A pfn,
   * not the frame's Int32 index: indexes of frames above 8 GiB do not fit in 32 bits.
   */
  private readonly entries = new Int32Array(2 * TLB_ENTRIES);
  /**
   * Per 4 MiB slot of user space mapped by a huge entry: the pfn of its first frame + 1
   * (0 = not cached). 4 KiB for all of user space, so a cached lookup stays in the L1 cache.
   */
  private readonly huge = new Int32Array(TASK_SIZE / 2 ** HPAGE_SHIFT);
  private gen = -1;
  private readonly genIndex: number;
  private readonly pgdIndex: number;

  private readonly mmGenIndex: number;

  constructor(
    private readonly mem: PhysMem,
    slot: number,
    private readonly mmGen: number,
  ) {
    this.genIndex = mem.mmTable + slot * MM_WORDS + Mm.TLB_GEN;
    this.pgdIndex = mem.mmTable + slot * MM_WORDS + Mm.PGD;
    this.mmGenIndex = mem.mmTable + slot * MM_WORDS + Mm.GEN;
  }

  /**
   * The aligned word at `uaddr` if this cache can vouch for it, else `undefined` (the caller walks
   * the page tables and faults as needed). Context: the owning thread, lock-free.
   */
  read(uaddr: number): number | undefined {
    const index = this.wordIndex(uaddr);
    if (index >= 0) {
      const value = this.mem.i32[index]!;
      if (Atomics.load(this.mem.i32, this.genIndex) === this.gen) return value;
    }
    if (uaddr >>> 0 !== uaddr || (uaddr & 3) !== 0) return undefined;
    if (!this.fill(uaddr >>> PAGE_SHIFT)) return undefined;
    const filled = this.wordIndex(uaddr);
    if (filled < 0) return undefined;
    const value = this.mem.i32[filled]!;
    return Atomics.load(this.mem.i32, this.genIndex) === this.gen ? value : undefined;
  }

  /**
   * The Int32 index of the aligned word at `uaddr` if an entry covers it, else -1; no generation
   * check. Context: the owning thread.
   */
  private wordIndex(uaddr: number): number {
    // an integer in [0, 2^32) = [0, TASK_SIZE), 4-byte aligned (a non-number is never converted:
    // its valueOf is not run)
    if (typeof uaddr !== 'number' || uaddr >>> 0 !== uaddr || (uaddr & 3) !== 0) return -1;
    const slot = this.huge[uaddr >>> HPAGE_SHIFT]!;
    if (slot !== 0) return (slot - 1) * WORDS_PER_PAGE + ((uaddr & HPAGE_MASK) >>> 2);
    const page = uaddr >>> PAGE_SHIFT;
    const e = (page & TLB_MASK) << 1;
    if (this.entries[e] !== page + 1) return -1;
    return this.entries[e + 1]! * WORDS_PER_PAGE + ((uaddr & (PAGE_SIZE - 1)) >>> 2);
  }

  /**
   * The generation this cache's entries were filled under (-1 before the first fill). A caller
   * that reads `Mm.TLB_GEN` (even) equal to it before and after a {@link gather} may
   * trust every value it returned. Context: the owning thread.
   */
  get generation(): number {
    return this.gen;
  }

  /**
   * The cached words at `uaddrs[from]`, `uaddrs[from + 1]`, … into `out`, stopping at the first word
   * no entry covers. Returns the index it stopped at (`uaddrs.length` when all were covered).
   * No generation check: see {@link generation}. Context: the owning thread, lock-free.
   */
  gather(uaddrs: ArrayLike<number>, out: Int32Array, from: number): number {
    const { i32 } = this.mem;
    const n = uaddrs.length;
    for (let i = from; i < n; i++) {
      const index = this.wordIndex(uaddrs[i]!);
      if (index < 0) return i;
      out[i] = i32[index]!;
    }
    return n;
  }

  /** Walk the page tables for `page` and cache a readable translation (of its 4 MiB if huge). */
  private fill(page: number): boolean {
    const { i32 } = this.mem;
    const gen = Atomics.load(i32, this.genIndex);
    if (gen & 1) return false; // PTEs are being taken away right now: the slow path waits
    if (gen !== this.gen) {
      this.entries.fill(0);
      this.huge.fill(0);
      this.gen = gen;
    }
    if (Atomics.load(i32, this.mmGenIndex) !== this.mmGen) return false; // destroyed or recycled
    const pgd = Atomics.load(i32, this.pgdIndex);
    const pde = walkPde(this.mem, pgd, page);
    const huge = pdeIsHuge(pde);
    const pte = huge ? pde : walkPte(this.mem, pgd, page);
    // garbage from a table freed under the walk fails these checks: the checked path sorts it out
    if (pte === 0 || !pteAllows(pte, false) || !pteInMemory(this.mem, pte, huge ? HPAGE_PAGES : 1))
      return false;
    // a PTE seen before the generation was read again stays valid as long as the generation holds
    if (Atomics.load(i32, this.genIndex) !== gen) return false;
    if (huge) {
      this.huge[dirOf(page)] = ptePfn(pde) + 1;
    } else {
      const e = (page & TLB_MASK) << 1;
      this.entries[e] = page + 1;
      this.entries[e + 1] = ptePfn(pte);
    }
    return true;
  }
}
