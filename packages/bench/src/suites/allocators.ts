/**
 * The three allocators the `vmalloc` suite runs the kernel's test cases on: sabvm's vmalloc, the
 * allocator a user would take off the shelf (`@thi.ng/malloc` in a SharedArrayBuffer), and the
 * no-allocator answer (a new SharedArrayBuffer per allocation).
 *
 * Kernel counterpart: the `vmalloc`/`vfree` calls of `lib/test_vmalloc.c`.
 *
 * @module
 */
import { PAGE_SIZE, type Kernel } from '@sabvm/core';
import { MemPool } from '@thi.ng/malloc';

/**
 * An allocator as the test cases see it: a handle is a positive number, 0 means failure (the
 * kernel's NULL). Implementations throw only for a request they cannot express at all (sabvm
 * without an aligned vmalloc). Context: the thread that made the allocator.
 */
export interface Allocator {
  /** Allocate `bytes`, aligned to `align` bytes (0: the allocator's natural alignment). */
  alloc(bytes: number, align: number): number;
  /** Write one byte at the start of the allocation (the test's `*((u8 *)ptr) = v`). */
  touch(handle: number, value: number): void;
  free(handle: number): void;
}

/** The aligned entry point core may offer (`__vmalloc_node(size, align)`), found at run time. */
type AlignedVmalloc = (size: number, align: number) => number | null;

/**
 * The `vmallocAligned` method of `kernel` if core has one (it is internal API, so it is looked up
 * at run time), else null. Context: any thread.
 */
export function findAlignedVmalloc(kernel: Kernel): AlignedVmalloc | null {
  const method = (kernel as unknown as { vmallocAligned?: unknown }).vmallocAligned;
  return typeof method === 'function' ? (method.bind(kernel) as AlignedVmalloc) : null;
}

/** sabvm: `vmalloc` / `vmallocAligned` + `vfree`; the touch goes through `writeKernel`. */
export class SabvmAllocator implements Allocator {
  private readonly kernel: Kernel;
  private readonly aligned: AlignedVmalloc | null;
  private readonly bytes: Uint8Array[] = Array.from({ length: 256 }, (_, v) => Uint8Array.of(v));

  constructor(kernel: Kernel) {
    this.kernel = kernel;
    this.aligned = findAlignedVmalloc(kernel);
  }

  alloc(bytes: number, align: number): number {
    if (align > PAGE_SIZE) {
      if (this.aligned === null) throw new Error('core exposes no aligned vmalloc');
      return this.aligned(bytes, align) ?? 0;
    }
    return this.kernel.vmalloc(bytes) ?? 0;
  }

  touch(handle: number, value: number): void {
    this.kernel.writeKernel(handle, this.bytes[value & 255]!);
  }

  free(handle: number): void {
    this.kernel.vfree(handle);
  }
}

/**
 * `@thi.ng/malloc`'s `MemPool` over one SharedArrayBuffer. It has no per-call alignment, so an
 * aligned request over-allocates by `align` and rounds up, the classic way.
 */
export class ThingAllocator implements Allocator {
  private readonly pool: MemPool;
  private readonly u8: Uint8Array;
  private readonly alignedBase = new Map<number, number>();

  constructor(poolBytes: number) {
    const buf = new SharedArrayBuffer(poolBytes);
    this.pool = new MemPool({ buf });
    this.u8 = new Uint8Array(buf);
  }

  alloc(bytes: number, align: number): number {
    if (align <= 8) return this.pool.malloc(bytes);
    const base = this.pool.malloc(bytes + align);
    if (base === 0) return 0;
    const addr = Math.ceil(base / align) * align;
    this.alignedBase.set(addr, base);
    return addr;
  }

  touch(handle: number, value: number): void {
    this.u8[handle] = value;
  }

  free(handle: number): void {
    const base = this.alignedBase.get(handle);
    if (base === undefined) {
      this.pool.free(handle);
    } else {
      this.alignedBase.delete(handle);
      this.pool.free(base);
    }
  }
}

/** A new SharedArrayBuffer per allocation; freeing drops it for the GC. Alignment is the OS's. */
export class SabPerAllocAllocator implements Allocator {
  private readonly live: (SharedArrayBuffer | undefined)[] = [undefined];
  private readonly freeSlots: number[] = [];

  alloc(bytes: number, _align: number): number {
    const sab = new SharedArrayBuffer(bytes);
    const slot = this.freeSlots.pop() ?? this.live.length;
    this.live[slot] = sab;
    return slot;
  }

  touch(handle: number, value: number): void {
    const sab = this.live[handle];
    if (sab !== undefined) new Uint8Array(sab, 0, 1)[0] = value;
  }

  free(handle: number): void {
    this.live[handle] = undefined;
    this.freeSlots.push(handle);
  }
}
