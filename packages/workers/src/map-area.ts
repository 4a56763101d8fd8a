/**
 * Mapping a vmalloc area into an address space, with the errors a caller can act on: used by the
 * main thread (`SabvmProcess.map`) and by a pool thread that maps a task's areas itself (the ring
 * transport).
 *
 * Kernel counterpart: a driver's `mmap` handler — `mmap` picks the user range, then
 * `remap_vmalloc_range_partial` fills it with the area's frames; a failure leaves nothing mapped.
 *
 * Any thread; imports neither the main-thread nor the worker-side modules.
 *
 * @module
 */
import {
  EINVAL,
  MAP_SHARED,
  PAGE_SIZE,
  PROT_READ,
  PROT_WRITE,
  remapPartial,
  VM_USERMAP,
  type AddressSpace,
  type Kernel,
  type VmArea,
} from '@sabvm/core';
import { SabvmError } from './errors.js';

/** A vmalloc area (or part of one) to map into a process. */
export interface AreaSpec {
  /** Kernel address from `kernel.vmallocUser`, or a page-aligned address inside such an area. */
  readonly kaddr: number;
  /** Bytes to map from `kaddr`; default: the rest of the area. */
  readonly length?: number;
  /** `PROT_*` of the mapping; default `PROT_READ | PROT_WRITE`. */
  readonly prot?: number;
}

/** One mapping of a vmalloc area in a process. Immutable. */
export interface Mapping {
  /** User address of the first byte. */
  readonly uaddr: number;
  /** Bytes the task sees (the VMA is rounded up to whole pages). */
  readonly length: number;
  /** `PROT_*` of the mapping. */
  readonly prot: number;
  /** The kernel address it maps. */
  readonly kaddr: number;
}

/** `length` rounded up to whole pages. Context: any; never throws. */
export function pageRound(length: number): number {
  return Math.ceil(length / PAGE_SIZE) * PAGE_SIZE;
}

function hex(n: number): string {
  return `0x${n.toString(16)}`;
}

/** A kaddr for a message: hex when it is a number, its type otherwise. */
function showAddress(kaddr: unknown): string {
  return typeof kaddr === 'number' && Number.isSafeInteger(kaddr) && kaddr >= 0
    ? hex(kaddr)
    : `of type ${typeof kaddr} (${String(kaddr)})`;
}

/**
 * The rule of `remapPartial`'s table (KERNEL-CONTRACT.md) that mapping `length` bytes at `kaddr`
 * of `area` breaks, said in words with a hint, or null when it breaks none of the area's rules.
 */
function remapRule(area: VmArea, kaddr: number, length: number): string | null {
  if (!Number.isSafeInteger(length) || length <= 0)
    return `length ${String(length)} is not a positive whole number of bytes`;
  if (kaddr % PAGE_SIZE !== 0)
    return `kaddr ${hex(kaddr)} is not page-aligned (a multiple of ${PAGE_SIZE}); the area starts at ${hex(area.addr)}`;
  if ((area.flags & VM_USERMAP) === 0)
    return `the area at ${hex(area.addr)} has no VM_USERMAP: it came from vmalloc or vzalloc; allocate it with kernel.vmallocUser to map it into a process`;
  const backed = area.nrPages * PAGE_SIZE;
  if (kaddr - area.addr + pageRound(length) > backed)
    return `[${hex(kaddr)}, ${hex(kaddr + length)}) runs past the end of the area at ${hex(area.addr)} (${backed} backed bytes)`;
  return null;
}

/**
 * Map `spec` into `mm` (`mmap(0, …, MAP_SHARED)` + `remapPartial`) and return the mapping. A
 * `length` of undefined maps the rest of the area; a `prot` of undefined is read + write.
 * Throws {@link SabvmError}: `EINVAL` when no live vmalloc area contains `kaddr` or the range
 * breaks a rule of `remapPartial`'s table (the message names it), or `mmap`'s / `remapPartial`'s
 * errno; nothing stays mapped after a failure.
 * Context: any attached thread; takes `mm`'s locks briefly.
 */
export function mapArea(
  kernel: Kernel,
  mm: AddressSpace,
  kaddr: number,
  length: number | undefined,
  prot: number | undefined,
): Mapping {
  const vmArea = typeof kaddr === 'number' ? kernel.findVmArea(kaddr) : null;
  if (vmArea === null) {
    throw new SabvmError(
      'remapPartial',
      -EINVAL,
      `no live vmalloc area contains kaddr ${showAddress(kaddr)} (freed, never allocated, or not a kernel address)`,
    );
  }
  const bytes = length ?? vmArea.nrPages * PAGE_SIZE - (kaddr - vmArea.addr);
  const protection = prot ?? PROT_READ | PROT_WRITE;
  const rule = remapRule(vmArea, kaddr, bytes);
  if (rule !== null) throw new SabvmError('remapPartial', -EINVAL, rule);
  const uaddr = mm.mmap(0, bytes, protection, MAP_SHARED);
  if (uaddr < 0) throw new SabvmError('mmap', uaddr, `${bytes} bytes, prot ${protection}`);
  const vma = mm.findVma(uaddr);
  const rc = vma === null ? -EINVAL : remapPartial(vma, uaddr, kaddr, bytes);
  if (rc < 0) {
    mm.munmap(uaddr, pageRound(bytes));
    throw new SabvmError('remapPartial', rc, `kaddr ${hex(kaddr)}, ${bytes} bytes`);
  }
  return { uaddr, length: bytes, prot: protection, kaddr };
}
