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
export { Kernel, type BootOptions, type KernelStats } from './kernel.js';
