/**
 * `@sabvm/core`: a kernel-style memory system inside one SharedArrayBuffer.
 *
 * This file lists the whole public API; nothing else is exported.
 *
 * @packageDocumentation
 */
export * from './errno.js';
export {
  computeLayout,
  LAYOUT_VERSION,
  SABVM_MAGIC,
  KMALLOC_END,
  TASK_SIZE,
  VMALLOC_START,
  type Layout,
  type LayoutConfig,
} from './layout.js';
export type { KernelHandle } from './phys-mem.js';
export {
  Kernel,
  FRAME_FREE,
  FRAME_META,
  FRAME_VMALLOC,
  FRAME_PAGE_TABLE,
  FRAME_DEFERRED,
  FRAME_SLAB,
  type BootOptions,
  type VmallocOptions,
  type AttachOptions,
  type FrameSnapshot,
  type ReapSelector,
  type KernelStats,
} from './kernel.js';
export type { VmArea } from './vmalloc.js';
export { Vma } from './vma.js';
export { AddressSpace, type PagemapEntry, type SegmentsOptions } from './address-space.js';
export { remapVmallocRangePartial, remapPartial, remapVmallocRange } from './remap.js';
export { BusError, SegmentationFault, type BusCode, type SegvCode } from './fault.js';
export { KernelBug } from './bug.js';
export { KmemCache, type KmemCacheOptions } from './kmalloc.js';
export type { TypedArrayConstructor } from './kernel-view.js';
export { describeType, isTypedArrayConstructor } from './kernel-view.js';
export { KMALLOC_MAX_CACHE_SIZE } from './slab.js';
export {
  BPF_RB_NO_WAKEUP,
  BPF_RB_FORCE_WAKEUP,
  BPF_RB_AVAIL_DATA,
  BPF_RB_RING_SIZE,
  BPF_RB_CONS_POS,
  BPF_RB_PROD_POS,
  ringbufBulkStride,
  ringbufRecordBytes,
  type RingCallback,
  type RingSampleCallback,
} from './ringbuf.js';
export {
  RINGBUF_HDR_SZ,
  RINGBUF_BUSY_BIT,
  RINGBUF_DISCARD_BIT,
  RINGBUF_RUN_BIT,
  RINGBUF_META_PAGES,
  RINGBUF_PGOFF,
} from './layout.js';
export { RingOps, RingRecord } from './ringbuf-ops.js';
export { RB_BATCH, RB_BATCH_MAX_RECORD } from './ringbuf-batch.js';
export { RingBuf } from './ringbuf-area.js';
export { UserRingBuf, type RingRole } from './ringbuf-user.js';
export type { PollOptions } from './ringbuf-wait.js';
