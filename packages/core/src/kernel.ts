/**
 * The kernel object: boot, attach, statistics and the entry points of every subsystem.
 *
 * Kernel counterpart: `start_kernel` (`init/main.c`) for boot; the rest delegates to one module
 * per subsystem. A `Kernel` is a small per-thread handle: all state lives in physical memory.
 *
 * @module
 */
import { initFrames } from './frame-alloc.js';
import { checkFrames } from './invariants.js';
import { Hdr, type Layout, type LayoutConfig } from './layout.js';
import { PhysMem, type KernelHandle } from './phys-mem.js';

/** Options of {@link Kernel.boot}. */
export type BootOptions = LayoutConfig;

/** A snapshot of the kernel's counters (`kernel.stats()`). */
export interface KernelStats {
  /** Frames of physical memory, metadata included. */
  readonly totalFrames: number;
  /** Frames free for allocation now. */
  readonly freeFrames: number;
  /** Frames held by the layout's metadata since boot. */
  readonly metadataFrames: number;
  /** `vfree` calls that freed nothing. */
  readonly badFrees: number;
}

/** A kernel: physical memory and everything in it, seen from one thread. */
export class Kernel {
  /** @internal */
  readonly mem: PhysMem;

  private constructor(mem: PhysMem) {
    this.mem = mem;
  }

  /**
   * Create physical memory of `memoryBytes` (rounded down to whole frames) and boot a kernel in it.
   * Throws `TypeError` for a non-number and `RangeError` for a size too small for the metadata or
   * too large to address. Context: any thread; allocates the buffer (committed lazily by the OS).
   */
  static boot(options: BootOptions): Kernel {
    const mem = PhysMem.create(options);
    initFrames(mem);
    return new Kernel(mem);
  }

  /**
   * Attach to a booted kernel from any thread. Throws `TypeError` when `handle` is not a kernel
   * handle and `Error` for a foreign buffer or another layout version. Context: any thread.
   */
  static attach(handle: KernelHandle): Kernel {
    return new Kernel(PhysMem.attach(handle));
  }

  /** What another thread needs to {@link Kernel.attach}: structured-cloneable. */
  get handle(): KernelHandle {
    return { buffer: this.mem.buffer };
  }

  /** The memory map of this kernel. */
  get layout(): Layout {
    return this.mem.layout;
  }

  /** A snapshot of the counters. Context: any thread, lock-free. */
  stats(): KernelStats {
    const { i32, layout } = this.mem;
    return {
      totalFrames: layout.totalFrames,
      freeFrames: Atomics.load(i32, Hdr.FREE_FRAMES),
      metadataFrames: layout.metadataFrames,
      badFrees: Atomics.load(i32, Hdr.BAD_FREES),
    };
  }

  /**
   * Check every internal invariant; throws an `Error` naming the first one broken.
   * Context: a quiescent kernel (no call in flight in any thread); reads all of memory's metadata.
   */
  checkInvariants(): void {
    checkFrames(this.mem, new Int32Array(this.mem.layout.totalFrames));
  }
}
