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
import { Mm, MM_WORDS, TASK_SIZE } from './layout.js';
import { PTE_READ, ptePfn, walkPte } from './page-table.js';
import type { PhysMem } from './phys-mem.js';

/** Entries (direct-mapped by page number): 64 Ki pages, 256 MiB of user space. */
const TLB_ENTRIES = 1 << 16;
const TLB_MASK = TLB_ENTRIES - 1;

/** The translation cache of one AddressSpace handle. */
export class SoftTlb {
  /** Per entry, side by side (one cache line): user page + 1 (0 = empty), Int32 index of the frame. */
  private readonly entries = new Int32Array(2 * TLB_ENTRIES);
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
    if (!(uaddr >= 0 && uaddr < TASK_SIZE && (uaddr & 3) === 0)) return undefined;
    const page = uaddr >>> PAGE_SHIFT; // uaddr < 2^32
    const e = (page & TLB_MASK) << 1;
    const { entries } = this;
    if (entries[e] === page + 1) {
      const { i32 } = this.mem;
      const value = i32[entries[e + 1]! + ((uaddr & (PAGE_SIZE - 1)) >>> 2)]!;
      if (Atomics.load(i32, this.genIndex) === this.gen) return value;
    }
    return this.fill(page, e) ? this.read(uaddr) : undefined;
  }

  /** Walk the page tables for `page` and cache a readable translation. */
  private fill(page: number, e: number): boolean {
    const { i32 } = this.mem;
    const gen = Atomics.load(i32, this.genIndex);
    if (gen & 1) return false; // PTEs are being taken away right now: the slow path waits
    if (gen !== this.gen) {
      this.entries.fill(0);
      this.gen = gen;
    }
    if (Atomics.load(i32, this.mmGenIndex) !== this.mmGen) return false; // destroyed or recycled
    const pte = walkPte(i32, Atomics.load(i32, this.pgdIndex), page);
    if ((pte & PTE_READ) === 0 || ptePfn(pte) >= this.mem.layout.totalFrames) return false;
    // a PTE seen before the generation was read again stays valid as long as the generation holds
    if (Atomics.load(i32, this.genIndex) !== gen) return false;
    this.entries[e] = page + 1;
    this.entries[e + 1] = ptePfn(pte) * (PAGE_SIZE / 4);
    return true;
  }
}
