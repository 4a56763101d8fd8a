/**
 * A ring buffer's area: create, look up from any thread, free; the kernel-side handle `RingBuf`.
 *
 * Kernel counterparts: `bpf_ringbuf_alloc`/`bpf_ringbuf_area_alloc` and `bpf_ringbuf_free`
 * (`kernel/bpf/ringbuf.c`); `kernel.ringbuf(kaddr)` plays the part of the map's fd, which any
 * thread attached to the kernel can turn into the same ring.
 *
 * The area is a `VM_USERMAP` vmalloc area whose frames are one physically contiguous run (so the
 * data is one view, and every position word one Int32 index) with caller `bpf_ringbuf_area_alloc`
 * in `/proc/vmallocinfo`; its layout is in layout.ts (`RINGBUF_*`, `RingMeta`, `RingCons`,
 * `RingProd`).
 *
 * @module
 */
import { EINVAL, PAGE_SIZE, VM_USERMAP } from './errno.js';
import {
  Area,
  AreaCaller,
  Hdr,
  PTRS_PER_TABLE,
  RINGBUF_MAX_DATA_SZ,
  RINGBUF_META_PAGES,
  RingMeta,
} from './layout.js';
import { spinLock, spinUnlock } from './lock.js';
import type { PhysMem } from './phys-mem.js';
import type { AddressSpace } from './address-space.js';
import { ringLive, ringPut, ringRefAt, ringWake, type RingRef } from './ringbuf.js';
import { ringbufMmap, type RingRole } from './ringbuf-user.js';
import { RingOps } from './ringbuf-ops.js';
import { dropBatches, forgetRing } from './ringbuf-batch.js';
import { dropReads } from './ringbuf-read.js';
import { inKernel } from './thread.js';
import { bug } from './bug.js';
import { areaGet, areaOfPageLocked, vmallocPageIndex, vmallocPages } from './vmalloc.js';

/**
 * The ring whose area's first frame is `pfn`, reached through the kernel mapping at `kaddr`, as
 * the ring stamped `stamp` (by default the stamp its meta page holds now: 0 for a freed ring).
 */
export function kernelRingRef(
  mem: PhysMem,
  kaddr: number,
  pfn: number,
  dataPages: number,
  stamp: number = Atomics.load(mem.i32, pfn * PTRS_PER_TABLE + RingMeta.MAGIC),
): RingRef {
  const meta = pfn * PTRS_PER_TABLE;
  return ringRefAt(mem, kaddr, meta, meta + PTRS_PER_TABLE, dataPages * PAGE_SIZE, stamp);
}

/**
 * A BPF ring buffer, seen from this thread through the kernel mapping (`struct bpf_ringbuf`).
 * Make one with `kernel.ringbufCreate(dataBytes)`; reach it from another attached thread with
 * `kernel.ringbuf(kaddr)`. Any number of producers, one consumer at a time.
 */
export class RingBuf extends RingOps {
  readonly #ref: RingRef;

  /** @internal */
  constructor(ref: RingRef) {
    super();
    this.#ref = ref;
  }

  /** The ring's vmalloc area (`VM_USERMAP`): map it into user processes like any area. */
  get kaddr(): number {
    return this.#ref.kaddr;
  }

  protected producerRef(): RingRef {
    return this.#ref;
  }

  protected consumerRef(): RingRef {
    return this.#ref;
  }

  protected readerRef(): RingRef {
    return this.#ref;
  }

  /**
   * Map the ring into user address space `mm` for its consumer or a producer, with the page
   * protections Linux gives each (`ringbuf_map_mmap_kern`/`_user`); open it there with
   * `UserRingBuf.open(mm, uaddr, rb.dataBytes)`. Returns the user address or -errno.
   * Context: any attached thread; takes the mm's mmap_lock.
   */
  mmap(mm: AddressSpace, role: RingRole): number {
    return ringLive(this.#ref) ? ringbufMmap(mm, this.#ref.kaddr, this.#ref.size, role) : -EINVAL;
  }

  protected get ringSize(): number {
    return this.#ref.size;
  }

  /**
   * Free the ring (`bpf_ringbuf_free`): every handle to it in any thread refuses calls from now on,
   * a poll waiting on it returns, and the area is vfreed once the last poll or wait on it has
   * returned; its frames stay while a user process maps them. A second free is a no-op. As with
   * `vfree`, calls still running on it in other threads are the caller's to finish first.
   * Context: any attached thread.
   */
  free(): void {
    const r = this.#ref;
    const { i32 } = r.mem;
    // (only this ring: a handle kept past a free finds another stamp on a later ring's frames)
    if (Atomics.compareExchange(i32, r.magic, r.stamp, 0) !== r.stamp) return;
    dropBatches(r.mem, r.data); // this thread's open batches on it: never to be written now
    forgetRing(r.mem, r.data); // and what it did on it (a new ring may take its frames)
    dropReads(r.mem, r.data); // its open reads: the consumer lock goes with the ring
    ringWake(r);
    Atomics.notify(i32, r.consPos); // producers waiting for room see it gone
    ringPut(r);
  }
}

/**
 * `kernel.ringbufCreate`: a ring of `dataBytes` data bytes (a power of two, at least 2 pages, at
 * most `RINGBUF_MAX_DATA_SZ`), or null for a bad size or when no contiguous run of frames
 * is free. Context: any attached thread; takes vmap_area_lock.
 */
export function ringbufCreate(mem: PhysMem, dataBytes: unknown): RingBuf | null {
  if (
    typeof dataBytes !== 'number' ||
    !Number.isSafeInteger(dataBytes) ||
    dataBytes < 2 * PAGE_SIZE ||
    dataBytes > RINGBUF_MAX_DATA_SZ ||
    (dataBytes & (dataBytes - 1)) !== 0
  ) {
    return null;
  }
  const dataPages = dataBytes / PAGE_SIZE;
  const nrPages = RINGBUF_META_PAGES + dataPages;
  if (nrPages > mem.layout.totalFrames) return null;
  const kaddr = vmallocPages(mem, nrPages, VM_USERMAP, AreaCaller.RINGBUF, true, 1, true);
  if (kaddr === null) return null;
  const info = areaInfo(mem, kaddr);
  if (info === null) bug(`ringbufCreate: the new area at ${kaddr} is not a ring area`);
  // a stamp no ring made since boot has had (0 means freed: skipped when the count wraps)
  let stamp = 0;
  while (stamp === 0) stamp = (Atomics.add(mem.i32, Hdr.RING_SEQ, 1) + 1) | 0;
  const ref = kernelRingRef(mem, kaddr, info.pfn, dataPages, stamp);
  // zeroed: positions 0, locks free; the magic last, so lookups see a complete ring
  Atomics.store(mem.i32, info.pfn * PTRS_PER_TABLE + RingMeta.DATA_PAGES, dataPages);
  Atomics.store(mem.i32, ref.refs, 1);
  Atomics.store(mem.i32, ref.magic, stamp);
  return new RingBuf(ref);
}

/**
 * A ring area's first frame, pages and stamp (its MAGIC, 0 for a ring freed or not yet made), or
 * null when `kaddr` is not the base of a ring area. The stamp is read under vmap_area_lock, while
 * the area is the one at `kaddr`: read after, it could be a later ring's on the same frames, under
 * another address (`free` clears it before the area goes, creation stores it after the area is in).
 */
function areaInfo(
  mem: PhysMem,
  kaddr: unknown,
): { pfn: number; nrPages: number; stamp: number } | null {
  const page = vmallocPageIndex(mem, kaddr);
  if (page < 0 || (kaddr as number) % PAGE_SIZE !== 0) return null;
  return inKernel(mem, () => {
    spinLock(mem, Hdr.VMAP_LOCK);
    const slot = areaOfPageLocked(mem, page);
    const ok =
      slot >= 0 &&
      areaGet(mem, slot, Area.START) === page &&
      areaGet(mem, slot, Area.CALLER) === (AreaCaller.RINGBUF as number) &&
      areaGet(mem, slot, Area.CONTIG) > 0;
    const pfn = ok ? areaGet(mem, slot, Area.CONTIG) - 1 : -1;
    const info = ok
      ? {
          pfn,
          nrPages: areaGet(mem, slot, Area.NR_PAGES),
          stamp: Atomics.load(mem.i32, pfn * PTRS_PER_TABLE + RingMeta.MAGIC),
        }
      : null;
    spinUnlock(mem, Hdr.VMAP_LOCK);
    return info;
  });
}

/**
 * `kernel.ringbuf(kaddr)`: the live ring whose area starts at `kaddr`, or null (not a ring, freed,
 * not a number). Context: any attached thread; takes vmap_area_lock briefly.
 */
export function ringbufLookup(mem: PhysMem, kaddr: unknown): RingBuf | null {
  const info = areaInfo(mem, kaddr);
  if (info === null) return null;
  // (DATA_PAGES is written before the stamp, and the stamp read under the lock: a live ring's)
  const dataPages = Atomics.load(mem.i32, info.pfn * PTRS_PER_TABLE + RingMeta.DATA_PAGES);
  if (info.stamp === 0 || dataPages !== info.nrPages - RINGBUF_META_PAGES) return null;
  return new RingBuf(kernelRingRef(mem, kaddr as number, info.pfn, dataPages, info.stamp));
}
