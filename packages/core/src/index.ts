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
  type BootOptions,
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
