/**
 * A picture of a kernel's memory, read through the introspection calls of `@sabvm/core`:
 * every physical frame with its owner, every vmalloc area with the frames backing it (a ring
 * buffer's with its positions), and every address space with its VMAs and the PTEs that point at
 * frames.
 *
 * Kernel counterpart: what `/proc/kpageflags`, `/proc/vmallocinfo` and `/proc/<pid>/pagemap`
 * show, gathered into one plain object that the live memory map draws.
 *
 * The kernel is described structurally ({@link KernelView}) so that this module depends only on
 * the introspection calls it uses; a `Kernel` of `@sabvm/core` is one.
 *
 * @module
 */

/** Bytes per page; equal to `PAGE_SIZE` of `@sabvm/core` (checked by the tests). */
export const PAGE_BYTES = 4096;

/**
 * Owner kinds of `kernel.frameSnapshot().kinds`, by value: `FRAME_FREE` 0, `FRAME_META` 1,
 * `FRAME_VMALLOC` 2, `FRAME_PAGE_TABLE` 3, `FRAME_DEFERRED` 4 (released but held back by a grace
 * period) and `FRAME_SLAB` 5 (a slab of kmalloc objects, or a large kmalloc). Frames a kernel call
 * has in flight are reported as vmalloc frames with owner 0.
 */
export const FRAME_KIND_NAMES: readonly FrameKindName[] = [
  'free',
  'meta',
  'vmalloc',
  'page-table',
  'deferred',
  'slab',
];

/**
 * What owns a frame: nothing, the kernel's metadata, a vmalloc area, a page table, a kernel call
 * in flight, a grace period (released, not reusable yet), or a slab cache.
 */
export type FrameKindName =
  'free' | 'meta' | 'vmalloc' | 'page-table' | 'in-flight' | 'deferred' | 'slab';

/** Per-frame arrays of `kernel.frameSnapshot()`, indexed by pfn. */
export interface FrameSnapshotView {
  readonly kinds: ArrayLike<number>;
  readonly owners: ArrayLike<number>;
  readonly refcounts: ArrayLike<number>;
}

/** A vmalloc area as `kernel.vmallocAreas()` reports it. */
export interface AreaView {
  readonly addr: number;
  readonly size: number;
  readonly nrPages: number;
  readonly flags: number;
}

/** A VMA as `mm.vmas()` reports it. */
export interface VmaView {
  readonly start: number;
  readonly end: number;
  readonly prot: number;
  readonly flags: number;
}

/** One installed PTE as `mm.pagemap()` reports it. */
export interface PteView {
  readonly uaddr: number;
  readonly pfn: number;
  readonly prot: number;
}

/**
 * `rb.query` selectors: `BPF_RB_AVAIL_DATA` 0, `BPF_RB_RING_SIZE` 1, `BPF_RB_CONS_POS` 2,
 * `BPF_RB_PROD_POS` 3 (equal to the constants of `@sabvm/core`, checked by the tests).
 */
export const RING_QUERY = { availData: 0, ringSize: 1, consPos: 2, prodPos: 3 } as const;

/** The ring calls the picture uses (a `RingBuf` of `@sabvm/core` is one). */
export interface RingView {
  query(what: number): number;
}

/** The address-space calls the picture uses. */
export interface AddressSpaceView {
  readonly id: number;
  vmas(): readonly VmaView[];
  pagemap(): readonly PteView[];
}

/** The kernel calls the picture uses. */
export interface KernelView {
  readonly handle: { readonly buffer: SharedArrayBuffer };
  stats(): { readonly totalFrames: number; readonly freeFrames: number };
  frameSnapshot(): FrameSnapshotView;
  vmallocAreas(): readonly AreaView[];
  vmallocToPfn(kaddr: number): number | null;
  addressSpaceIds(): readonly number[];
  addressSpace(id: number): AddressSpaceView;
  /** The ring whose area is at `kaddr`, or null: an area that is a ring shows its positions. */
  ringbuf?(kaddr: number): RingView | null;
}

/** One physical frame. */
export interface FramePicture {
  readonly pfn: number;
  readonly kind: FrameKindName;
  /** The snapshot's owner word: the area id or the mm id, `-1` when there is none. */
  readonly owner: number;
  readonly refcount: number;
  /** Index in {@link MemoryPicture.areas} of the live area this frame backs, or `-1`. */
  readonly area: number;
  /** Share of sampled bytes that are not zero, 0…1: how much data the frame holds. */
  readonly fill: number;
  /** Ids of the address spaces with a PTE pointing at this frame. */
  readonly mappedBy: readonly number[];
}

/** One live vmalloc area. */
export interface AreaPicture {
  readonly addr: number;
  readonly size: number;
  readonly nrPages: number;
  readonly flags: number;
  /** The frame behind each backed page (`vmallocToPfn`), `null` where none is mapped. */
  readonly pfns: readonly (number | null)[];
  /** The area's ring, when it is one (`kernel.ringbufCreate`), else `null`. */
  readonly ring: RingPicture | null;
}

/**
 * A ring buffer's area: page 0 the meta page, page 1 the consumer position, page 2 the producer
 * position, then the data pages (see the ring buffers concept page).
 */
export interface RingPicture {
  /** Bytes of the data area. */
  readonly dataBytes: number;
  /** Bytes consumed since the ring was made (mod 2^32). */
  readonly consumerPos: number;
  /** Bytes reserved since the ring was made (mod 2^32). */
  readonly producerPos: number;
  /** Bytes reserved and not yet consumed. */
  readonly availData: number;
}

/** Pages of a ring's area before its data pages (meta, consumer, producer). */
export const RING_META_PAGES = 3;

function ringPicture(kernel: KernelView, addr: number): RingPicture | null {
  const rb = kernel.ringbuf?.(addr) ?? null;
  if (rb === null) return null;
  return {
    dataBytes: rb.query(RING_QUERY.ringSize),
    consumerPos: rb.query(RING_QUERY.consPos),
    producerPos: rb.query(RING_QUERY.prodPos),
    availData: rb.query(RING_QUERY.availData),
  };
}

/** One page of a VMA and the PTE behind it, if any. */
export interface VmaPagePicture {
  readonly uaddr: number;
  /** The frame the PTE points at, `null` when the page has no PTE. */
  readonly pfn: number | null;
  /** The PTE's protection, `null` when the page has no PTE. */
  readonly prot: number | null;
}

/** One VMA of an address space. */
export interface VmaPicture {
  readonly start: number;
  readonly end: number;
  readonly prot: number;
  readonly flags: number;
  readonly pages: readonly VmaPagePicture[];
}

/** One address space (a user process). */
export interface ProcessPicture {
  readonly id: number;
  readonly vmas: readonly VmaPicture[];
  /** PTEs installed in this address space. */
  readonly pteCount: number;
  /** Frames holding this address space's page tables. */
  readonly pageTableFrames: readonly number[];
}

/** Everything the live memory map draws. */
export interface MemoryPicture {
  readonly totalFrames: number;
  readonly freeFrames: number;
  readonly frames: readonly FramePicture[];
  readonly areas: readonly AreaPicture[];
  readonly processes: readonly ProcessPicture[];
}

/** How many bytes of each frame {@link frameFill} samples. */
export const FILL_SAMPLES = 64;

/**
 * Share of non-zero bytes among {@link FILL_SAMPLES} evenly spaced bytes of frame `pfn`.
 * Context: any thread; reads physical memory without locks (a picture, not a proof).
 */
export function frameFill(memory: Uint8Array, pfn: number): number {
  const base = pfn * PAGE_BYTES;
  const stride = PAGE_BYTES / FILL_SAMPLES;
  let nonZero = 0;
  for (let i = 0; i < FILL_SAMPLES; i++) {
    if (memory[base + i * stride] !== 0) nonZero++;
  }
  return nonZero / FILL_SAMPLES;
}

function pagesOf(vma: VmaView, ptes: ReadonlyMap<number, PteView>): VmaPagePicture[] {
  const pages: VmaPagePicture[] = [];
  for (let uaddr = vma.start; uaddr < vma.end; uaddr += PAGE_BYTES) {
    const pte = ptes.get(uaddr);
    pages.push({ uaddr, pfn: pte?.pfn ?? null, prot: pte?.prot ?? null });
  }
  return pages;
}

function processPicture(
  kernel: KernelView,
  id: number,
  snapshot: FrameSnapshotView,
): ProcessPicture {
  const mm = kernel.addressSpace(id);
  const pagemap = mm.pagemap();
  const ptes = new Map(pagemap.map((pte) => [pte.uaddr, pte]));
  const pageTableFrames: number[] = [];
  for (let pfn = 0; pfn < snapshot.kinds.length; pfn++) {
    if (
      FRAME_KIND_NAMES[snapshot.kinds[pfn] ?? 0] === 'page-table' &&
      snapshot.owners[pfn] === id
    ) {
      pageTableFrames.push(pfn);
    }
  }
  return {
    id,
    vmas: mm.vmas().map((vma) => ({
      start: vma.start,
      end: vma.end,
      prot: vma.prot,
      flags: vma.flags,
      pages: pagesOf(vma, ptes),
    })),
    pteCount: pagemap.length,
    pageTableFrames,
  };
}

/**
 * Read the whole picture from `kernel`. Throws only what the introspection calls throw (an
 * address space destroyed by another thread between `addressSpaceIds()` and `addressSpace(id)`
 * is left out). Context: any attached thread; lock-free reads, so a picture taken while other
 * threads work may mix moments — redraw to catch up.
 */
export function takePicture(kernel: KernelView): MemoryPicture {
  const snapshot = kernel.frameSnapshot();
  const memory = new Uint8Array(kernel.handle.buffer);
  const areas: AreaPicture[] = kernel.vmallocAreas().map((area) => {
    const pfns: (number | null)[] = [];
    for (let page = 0; page < area.nrPages; page++)
      pfns.push(kernel.vmallocToPfn(area.addr + page * PAGE_BYTES));
    return {
      addr: area.addr,
      size: area.size,
      nrPages: area.nrPages,
      flags: area.flags,
      pfns,
      ring: ringPicture(kernel, area.addr),
    };
  });
  const processes: ProcessPicture[] = [];
  for (const id of kernel.addressSpaceIds()) {
    try {
      processes.push(processPicture(kernel, id, snapshot));
    } catch {
      // Destroyed meanwhile by another thread: not part of this picture.
    }
  }
  const areaOf = new Map<number, number>();
  areas.forEach((area, index) => {
    for (const pfn of area.pfns) if (pfn !== null) areaOf.set(pfn, index);
  });
  const mappedBy = new Map<number, number[]>();
  for (const process of processes) {
    for (const vma of process.vmas) {
      for (const page of vma.pages) {
        if (page.pfn === null) continue;
        const ids = mappedBy.get(page.pfn) ?? [];
        if (!ids.includes(process.id)) ids.push(process.id);
        mappedBy.set(page.pfn, ids);
      }
    }
  }
  const frames: FramePicture[] = [];
  for (let pfn = 0; pfn < snapshot.kinds.length; pfn++) {
    const kind = FRAME_KIND_NAMES[snapshot.kinds[pfn] ?? 0] ?? 'free';
    frames.push({
      pfn,
      kind,
      owner: snapshot.owners[pfn] ?? -1,
      refcount: snapshot.refcounts[pfn] ?? 0,
      area: areaOf.get(pfn) ?? -1,
      fill: kind === 'vmalloc' ? frameFill(memory, pfn) : 0,
      mappedBy: mappedBy.get(pfn) ?? [],
    });
  }
  const { totalFrames, freeFrames } = kernel.stats();
  return { totalFrames, freeFrames, frames, areas, processes };
}

/** Frames of each owner kind in `picture`. Context: any thread; pure. */
export function countKinds(picture: MemoryPicture): Record<FrameKindName, number> {
  const counts: Record<FrameKindName, number> = {
    free: 0,
    meta: 0,
    vmalloc: 0,
    'page-table': 0,
    'in-flight': 0,
    deferred: 0,
    slab: 0,
  };
  for (const frame of picture.frames) counts[frame.kind]++;
  return counts;
}
