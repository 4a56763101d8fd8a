/**
 * Rings in user processes: mapping a ring into an address space with Linux's page protections, and
 * `UserRingBuf`, the producer and consumer calls made through that mapping.
 *
 * Kernel counterparts: `ringbuf_map_mmap_kern` and `ringbuf_map_mmap_user` (`kernel/bpf/ringbuf.c`):
 * the consumer's mapping has the consumer page writable and the producer page and data read-only;
 * a producer's has the consumer page read-only and the producer page and data writable. The meta
 * page is never mapped (the mapping starts at `RINGBUF_PGOFF`). libbpf's `ring_buffer__add` and
 * `user_ring_buffer__new` are the user side.
 *
 * ```
 *   uaddr           + PAGE_SIZE        + 2 * PAGE_SIZE
 *   │ consumer page │ producer page    │ data …                    │
 *   │ consumer: rw- │ consumer: r--    │ consumer: r--             │
 *   │ producer: r-- │ producer: rw-    │ producer: rw-             │
 * ```
 *
 * A `UserRingBuf` translates through the page tables with `mm.segments` the first time it reads,
 * produces or consumes, asking for write access exactly where that role writes: a consumer's
 * mapping faults (`SEGV_ACCERR`) on the first reserve or output, a producer's on the first consume.
 * It keeps the translation, as a driver's mapping is set up once at mmap; after `munmap` the handle
 * is stale, as a view is. JavaScript has no read-only view of shared memory, so the protection is
 * enforced on the runtime's paths (`segments`, `read`, `write`) and is otherwise cooperative.
 *
 * @module
 */
import { EINVAL, MAP_SHARED, PAGE_SIZE, PROT_READ, PROT_WRITE } from './errno.js';
import { AddressSpace } from './address-space.js';
import { checkUnsigned } from './user-access.js';
import { RINGBUF_MAX_DATA_SZ } from './layout.js';
import { RingOps } from './ringbuf-ops.js';
import { ringRefAt, type RingRef } from './ringbuf.js';
import { remapPartial } from './remap.js';

/** Who maps a ring: its consumer, or a producer. */
export type RingRole = 'consumer' | 'producer';
const ROLES: readonly unknown[] = ['consumer', 'producer'];

/**
 * Map the ring whose area is at `kaddr` (`dataBytes` of data) into `mm` for `role`: one VMA range
 * of `2 * PAGE_SIZE + dataBytes` bytes from the consumer page on, remapped, then split by
 * protection as the role needs. Returns the user address, or -errno (as mmap, remap and mprotect
 * answer; -EINVAL for an unknown role), leaving nothing mapped on failure.
 * Context: any attached thread; takes the mm's mmap_lock.
 */
export function ringbufMmap(
  mm: AddressSpace,
  kaddr: number,
  dataBytes: number,
  role: RingRole,
): number {
  if (!(mm instanceof AddressSpace) || !ROLES.includes(role)) return -EINVAL;
  const total = 2 * PAGE_SIZE + dataBytes;
  const uaddr = mm.mmap(0, total, PROT_READ, MAP_SHARED);
  if (uaddr < 0) return uaddr;
  const vma = mm.findVma(uaddr);
  let ret = vma === null ? -EINVAL : remapPartial(vma, uaddr, kaddr + PAGE_SIZE, total);
  if (ret === 0) {
    ret =
      role === 'consumer'
        ? mm.mprotect(uaddr, PAGE_SIZE, PROT_READ | PROT_WRITE)
        : mm.mprotect(uaddr + PAGE_SIZE, total - PAGE_SIZE, PROT_READ | PROT_WRITE);
  }
  if (ret < 0) {
    mm.munmap(uaddr, total);
    return ret;
  }
  return uaddr;
}

/** Int32 index in physical memory of the one view `mm.segments` gives for a range. */
function physWord(mm: AddressSpace, uaddr: number, length: number, write: boolean): number {
  const views = mm.segments(uaddr, length, { write });
  if (views.length !== 1 || views[0]!.buffer !== mm.mem.buffer)
    throw new Error(`UserRingBuf: 0x${uaddr.toString(16)} is not a mapping of one ring`);
  return views[0]!.byteOffset >>> 2;
}

/**
 * A ring seen from a user process through its mapping (`ringbufMmap` / `rb.mmap`): the calls of
 * every ring handle, each checked against the mapping's protection on first use.
 */
export class UserRingBuf extends RingOps {
  readonly #mm: AddressSpace;
  readonly #uaddr: number;
  readonly #ref: RingRef;
  #consumerChecked = false;
  #producerChecked = false;

  private constructor(mm: AddressSpace, uaddr: number, ref: RingRef) {
    super();
    this.#mm = mm;
    this.#uaddr = uaddr;
    this.#ref = ref;
  }

  /**
   * Open the ring mapped at `uaddr` in `mm` with `dataBytes` of data. Reads the whole mapping once
   * (`SegmentationFault` where it is not mapped or not readable); `TypeError`/`RangeError` for
   * malformed arguments. Context: any attached thread.
   */
  static open(mm: AddressSpace, uaddr: number, dataBytes: number): UserRingBuf {
    if (!(mm instanceof AddressSpace))
      throw new TypeError('UserRingBuf.open: mm is not an AddressSpace');
    checkUnsigned('uaddr', uaddr);
    checkUnsigned('dataBytes', dataBytes);
    if (
      dataBytes < 2 * PAGE_SIZE ||
      dataBytes > RINGBUF_MAX_DATA_SZ ||
      (dataBytes & (dataBytes - 1)) !== 0
    )
      throw new RangeError(
        `dataBytes must be a power of two of at least 2 pages, got ${dataBytes}`,
      );
    const cons = physWord(mm, uaddr, 2 * PAGE_SIZE + dataBytes, false);
    const ref = ringRefAt(mm.mem, -1, -1, cons, dataBytes);
    return new UserRingBuf(mm, uaddr, ref);
  }

  /** Where the ring is mapped (its consumer page). */
  get uaddr(): number {
    return this.#uaddr;
  }

  protected producerRef(): RingRef {
    if (!this.#producerChecked) {
      physWord(this.#mm, this.#uaddr + PAGE_SIZE, PAGE_SIZE + this.#ref.size, true);
      this.#producerChecked = true;
    }
    return this.#ref;
  }

  protected consumerRef(): RingRef {
    if (!this.#consumerChecked) {
      physWord(this.#mm, this.#uaddr, PAGE_SIZE, true);
      this.#consumerChecked = true;
    }
    return this.#ref;
  }

  protected readerRef(): RingRef {
    return this.#ref;
  }

  protected get ringSize(): number {
    return this.#ref.size;
  }
}
