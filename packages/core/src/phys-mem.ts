/**
 * Physical memory: the SharedArrayBuffer, its typed views and the region bases of the layout.
 *
 * Kernel counterpart: `mem_map` and the direct map (`__va`/`page_address`): every frame is
 * reachable at `pfn * PAGE_SIZE` in one view.
 *
 * @module
 */
import { PAGE_SIZE } from './errno.js';
import {
  computeLayout,
  Hdr,
  LAYOUT_VERSION,
  SABVM_MAGIC,
  wordIndex,
  type Layout,
  type LayoutConfig,
} from './layout.js';

/**
 * Make `util.inspect` and `console.log` print a class's instances as their small `toJSON()` form:
 * a method under Node's `util.inspect.custom` symbol, taken from the global symbol registry (core
 * imports no `node:` module), set on the prototype (a computed class member would not survive
 * `isolatedDeclarations`).
 */
export function inspectAsJson(ctor: { readonly prototype: { toJSON(): unknown } }): void {
  Object.defineProperty(ctor.prototype, Symbol.for('nodejs.util.inspect.custom'), {
    value(this: { toJSON(): unknown }): unknown {
      return this.toJSON();
    },
    configurable: true,
    writable: true,
  });
}

/**
 * What a thread needs to attach to a kernel: structured-cloneable, so it can travel in
 * `workerData` or `postMessage`.
 */
export interface KernelHandle {
  /** Physical memory. */
  readonly buffer: SharedArrayBuffer;
}

/**
 * Zero the frames `[firstPfn, firstPfn + count)` (`clear_page` for a run): one `fill` of a 64-bit
 * view, which V8 runs at memory bandwidth on shared memory (a byte-wise `fill`, or `set` from a
 * zero chunk, is several times slower). Context: the caller owns the frames and no other thread
 * can see them yet.
 */
export function clearFrames(mem: PhysMem, firstPfn: number, count: number): void {
  new BigInt64Array(mem.buffer, firstPfn * PAGE_SIZE, (count * PAGE_SIZE) / 8).fill(0n);
}

/**
 * The per-thread mutable state of one attachment (Linux's `current`): plain JavaScript fields that
 * only the owning thread reads and writes. Each mirrors, or indexes, words of its thread slot.
 */
export interface Current {
  /** This attachment's thread slot, set by `attachThread` (-1 until then, and after detach). */
  slot: number;
  /** Int32 index of this attachment's thread slot (set with `slot`). */
  base: number;
  /** Nesting depth of kernel calls in this attachment (only the outermost marks the slot). */
  depth: number;
  /** True while this attachment logs its changes for undo (`txBegin` … `txCommit`). */
  txActive: boolean;
  /** Entries in this attachment's undo log (mirrors its slot's `UNDO_LEN`). */
  undoLen: number;
  /** Read-section nesting of this attachment (mirrors its slot's `RCU_NESTING`). */
  rcuNesting: number;
}

/**
 * One thread's view of physical memory: the buffer, its views and the region bases, all read-only
 * and the same in every thread (derived from the layout), plus this attachment's id; what changes
 * per thread is in {@link PhysMem.current}.
 */
export class PhysMem {
  readonly buffer: SharedArrayBuffer;
  readonly layout: Layout;
  /** Every word of physical memory. */
  readonly i32: Int32Array;
  /** Every byte of physical memory. */
  readonly u8: Uint8Array;
  /** This thread's id: unique per attach, the owner word of every lock it takes. */
  readonly tid: number;
  /** Int32 index of frame-table entry 0. */
  readonly frameTable: number;
  /** Int32 index of frame-bitmap word 0. */
  readonly frameBitmap: number;
  /** Int32 index of area slot 0. */
  readonly areaTable: number;
  /** Int32 index of the area-map entry of vmalloc page 0. */
  readonly areaMap: number;
  /** Int32 index of the kernel PTE of vmalloc page 0. */
  readonly kernelPageTable: number;
  /** Int32 index of VMA slot 0. */
  readonly vmaTable: number;
  /** Int32 index of mm slot 0. */
  readonly mmTable: number;
  /** Int32 index of thread slot 0. */
  readonly threadTable: number;
  /** Int32 index of slab cache record 0. */
  readonly cacheTable: number;
  /** This attachment's own mutable state (`current`): never shared, never read by another thread. */
  readonly current: Current = {
    slot: -1,
    base: -1,
    depth: 0,
    txActive: false,
    undoLen: 0,
    rcuNesting: 0,
  };

  /** A small plain form for `JSON.stringify`: never the views over all of memory. */
  toJSON(): { type: 'PhysMem'; bytes: number } {
    return { type: 'PhysMem', bytes: this.buffer.byteLength };
  }

  private constructor(buffer: SharedArrayBuffer, layout: Layout) {
    this.buffer = buffer;
    this.layout = layout;
    this.i32 = new Int32Array(buffer, 0, (layout.totalFrames * PAGE_SIZE) / 4);
    this.u8 = new Uint8Array(buffer, 0, layout.totalFrames * PAGE_SIZE);
    this.frameTable = wordIndex(layout.frameTableOffset);
    this.frameBitmap = wordIndex(layout.frameBitmapOffset);
    this.areaTable = wordIndex(layout.areaTableOffset);
    this.areaMap = wordIndex(layout.areaMapOffset);
    this.kernelPageTable = wordIndex(layout.kernelPageTableOffset);
    this.vmaTable = wordIndex(layout.vmaTableOffset);
    this.mmTable = wordIndex(layout.mmTableOffset);
    this.threadTable = wordIndex(layout.threadTableOffset);
    this.cacheTable = wordIndex(layout.cacheTableOffset);
    this.tid = Atomics.add(this.i32, Hdr.NEXT_TID, 1);
  }

  /**
   * Create physical memory and write the header. The caller initialises the other regions before
   * the buffer is shared. Context: any thread; allocates `memoryBytes` of (lazily committed)
   * memory and commits the metadata's pages (`commitMetadata`).
   */
  static create(config: LayoutConfig): PhysMem {
    const layout = computeLayout(config);
    let buffer: SharedArrayBuffer;
    try {
      buffer = new SharedArrayBuffer(layout.totalFrames * PAGE_SIZE);
    } catch (cause) {
      throw new RangeError(
        `cannot create ${layout.totalFrames * PAGE_SIZE} bytes of physical memory`,
        {
          cause,
        },
      );
    }
    checkViewable(buffer, layout.totalFrames * PAGE_SIZE);
    const i32 = new Int32Array(buffer, 0, PAGE_SIZE / 4);
    // init-only words: written before the buffer is shared.
    i32[Hdr.MAGIC] = SABVM_MAGIC;
    i32[Hdr.VERSION] = LAYOUT_VERSION;
    i32[Hdr.TOTAL_FRAMES] = layout.totalFrames;
    i32[Hdr.MAX_AREAS] = layout.maxAreas;
    i32[Hdr.MAX_VMAS] = layout.maxVmas;
    i32[Hdr.MAX_MMS] = layout.maxAddressSpaces;
    i32[Hdr.VMALLOC_PAGES] = layout.vmallocPages;
    i32[Hdr.METADATA_FRAMES] = layout.metadataFrames;
    i32[Hdr.MAX_THREADS] = layout.maxThreads;
    i32[Hdr.NEXT_TID] = 1;
    commitMetadata(buffer, layout.metadataBytes);
    return new PhysMem(buffer, layout);
  }

  /**
   * Attach to physical memory made by {@link PhysMem.create}, in any thread. Throws `TypeError`
   * for something that is not a kernel handle and `Error` for a foreign or wrong-version buffer.
   */
  static attach(handle: KernelHandle): PhysMem {
    const buffer = (handle as Partial<KernelHandle> | null | undefined)?.buffer;
    if (!(buffer instanceof SharedArrayBuffer)) {
      throw new TypeError(
        'Kernel.attach: the handle has no SharedArrayBuffer (pass kernel.handle)',
      );
    }
    if (buffer.byteLength < PAGE_SIZE) {
      throw new Error('Kernel.attach: the buffer is not a sabvm kernel (too small)');
    }
    const hdr = new Int32Array(buffer, 0, PAGE_SIZE / 4);
    if (Atomics.load(hdr, Hdr.MAGIC) !== SABVM_MAGIC) {
      throw new Error('Kernel.attach: the buffer is not a sabvm kernel (bad magic)');
    }
    const version = Atomics.load(hdr, Hdr.VERSION);
    if (version !== LAYOUT_VERSION) {
      throw new Error(
        `Kernel.attach: layout version ${version} is not supported (this build reads version ${LAYOUT_VERSION})`,
      );
    }
    const totalFrames = Atomics.load(hdr, Hdr.TOTAL_FRAMES);
    const layout = computeLayout({
      memoryBytes: totalFrames * PAGE_SIZE,
      maxAreas: Atomics.load(hdr, Hdr.MAX_AREAS),
      maxVmas: Atomics.load(hdr, Hdr.MAX_VMAS),
      maxAddressSpaces: Atomics.load(hdr, Hdr.MAX_MMS),
      maxThreads: Atomics.load(hdr, Hdr.MAX_THREADS),
      vmallocPages: Atomics.load(hdr, Hdr.VMALLOC_PAGES),
    });
    if (
      buffer.byteLength !== totalFrames * PAGE_SIZE ||
      layout.vmallocPages !== Atomics.load(hdr, Hdr.VMALLOC_PAGES) ||
      layout.metadataFrames !== Atomics.load(hdr, Hdr.METADATA_FRAMES)
    ) {
      throw new Error(
        'Kernel.attach: the header does not describe this buffer (corrupt or foreign)',
      );
    }
    return new PhysMem(buffer, layout);
  }
}
inspectAsJson(PhysMem);

/**
 * Commit every page of the metadata at boot: one store of 0 (the value it already holds) in each
 * 4 KiB page of `[PAGE_SIZE, metadataBytes)`, so that the operating system backs those pages now
 * rather than at the first allocation that writes them. A fresh SharedArrayBuffer is only
 * reserved: the first write to each of its pages is a page fault, 2–15 µs each (a virtual machine
 * takes the dearer end), and an allocation writes frame-table entries, kernel PTEs and area-map
 * words in proportion to its size. Without this, `vmallocUser(128 MiB)` on a fresh kernel faults
 * in about 160 metadata pages; with it, boot pays for all of them once (about 1% of memory, which
 * the metadata holds anyway), and no allocation faults on metadata. The frames themselves are left
 * uncommitted: a frame costs nothing until its data is written.
 *
 * Access rule: init-only (boot, before the buffer is shared).
 */
function commitMetadata(buffer: SharedArrayBuffer, metadataBytes: number): void {
  const words = new Int32Array(buffer, 0, metadataBytes / 4);
  const wordsPerPage = PAGE_SIZE / 4;
  for (let w = wordsPerPage; w < words.length; w += wordsPerPage) words[w] = 0;
}

/**
 * Throw a `RangeError` that names the runtime's limit when one byte view cannot span `bytes` of
 * `buffer` (Node 20's V8 caps a typed array at 2^32 elements; Node 22 and later allow far more).
 */
function checkViewable(buffer: SharedArrayBuffer, bytes: number): void {
  try {
    new Uint8Array(buffer, 0, bytes);
    return;
  } catch {
    // the largest view this runtime makes: a binary search over view lengths (no allocation)
    let lo = 0;
    let hi = bytes;
    while (hi - lo > PAGE_SIZE) {
      const mid = Math.floor((lo + hi) / 2 / PAGE_SIZE) * PAGE_SIZE || PAGE_SIZE;
      try {
        new Uint8Array(buffer, 0, mid);
        lo = mid;
      } catch {
        hi = mid;
      }
    }
    throw new RangeError(
      `memoryBytes ${bytes} is more than this runtime's typed arrays can span: one Uint8Array ` +
        `holds at most ${lo} bytes here (${(lo / 2 ** 30).toFixed(2)} GiB), so that is the largest ` +
        'bootable size; Node.js 22 and later allow larger typed arrays',
    );
  }
}
