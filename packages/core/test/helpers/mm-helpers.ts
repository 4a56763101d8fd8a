/**
 * Shared helpers of the address-space, remap and user-access tests: booting a kernel with an
 * address space and a remappable area, snapshotting every observable piece of state so a failed
 * call can be shown to have changed nothing, and shaping physical memory (eating or fragmenting
 * the free frames).
 */
import { expect } from 'vitest';
import {
  BusError,
  Kernel,
  MAP_FIXED,
  MAP_SHARED,
  PAGE_SIZE,
  PROT_READ,
  PROT_WRITE,
  SegmentationFault,
  type AddressSpace,
  type BootOptions,
  type KernelStats,
  type PagemapEntry,
  type SegvCode,
  type Vma,
} from '../../src/index.js';

/** Bytes in a MiB. */
export const MiB: number = 2 ** 20;
/** Read and write. */
export const RW: number = PROT_READ | PROT_WRITE;

/** A kernel with one address space, one `vmallocUser` area and one empty VMA. */
export interface MapSetup {
  readonly k: Kernel;
  readonly mm: AddressSpace;
  /** Base of the `vmallocUser` area. */
  readonly kaddr: number;
  /** Start of the VMA. */
  readonly uaddr: number;
  readonly vma: Vma;
}

/** Options of {@link setupMapping}. */
export interface MapSetupOptions {
  /** Pages of the `vmallocUser` area (default 4). */
  readonly areaPages?: number;
  /** Pages of the VMA (default: as the area). */
  readonly vmaPages?: number;
  /** Protection of the VMA (default read/write). */
  readonly prot?: number;
  /** Where to put the VMA (MAP_FIXED), default: let mmap choose. */
  readonly at?: number;
  /** Boot options (default 16 MiB). */
  readonly boot?: BootOptions;
}

/** Boot a kernel, make an address space, a `vmallocUser` area and an empty VMA. */
export function setupMapping(options: MapSetupOptions = {}): MapSetup {
  const areaPages = options.areaPages ?? 4;
  const vmaPages = options.vmaPages ?? areaPages;
  const k = Kernel.boot(options.boot ?? { memoryBytes: 16 * MiB });
  const mm = k.createAddressSpace();
  if (mm === null) throw new Error('setupMapping: no address space');
  const kaddr = k.vmallocUser(areaPages * PAGE_SIZE);
  if (kaddr === null) throw new Error('setupMapping: vmallocUser failed');
  const flags = options.at === undefined ? MAP_SHARED : MAP_SHARED | MAP_FIXED;
  const uaddr = mm.mmap(options.at ?? 0, vmaPages * PAGE_SIZE, options.prot ?? RW, flags);
  if (uaddr < 0) throw new Error(`setupMapping: mmap failed with ${uaddr}`);
  const vma = mm.findVma(uaddr);
  if (vma === null) throw new Error('setupMapping: no VMA after mmap');
  return { k, mm, kaddr, uaddr, vma };
}

/** One VMA as plain data. */
export interface VmaData {
  readonly start: number;
  readonly end: number;
  readonly prot: number;
  readonly flags: number;
}

/** Plain data of a VMA handle. */
export function vmaData(v: Vma): VmaData {
  return { start: v.start, end: v.end, prot: v.prot, flags: v.flags };
}

/** Everything a failed kernel call must leave as it was. */
export interface KernelState {
  readonly stats: KernelStats;
  readonly refcounts: Int32Array;
  readonly kinds: Uint8Array;
  readonly pagemaps: ReadonlyMap<number, readonly PagemapEntry[]>;
  readonly vmas: ReadonlyMap<number, readonly VmaData[]>;
  readonly vmallocinfo: string;
}

/** Snapshot the observable state of `k`: counters, frame references, every PTE and every VMA. */
export function captureState(k: Kernel): KernelState {
  const pagemaps = new Map<number, PagemapEntry[]>();
  const vmas = new Map<number, VmaData[]>();
  for (const id of k.addressSpaceIds()) {
    const mm = k.addressSpace(id);
    pagemaps.set(id, mm.pagemap());
    vmas.set(id, mm.vmas().map(vmaData));
  }
  const snap = k.frameSnapshot();
  return {
    stats: k.stats(),
    refcounts: snap.refcounts,
    kinds: snap.kinds,
    pagemaps,
    vmas,
    vmallocinfo: k.vmallocinfo(),
  };
}

/** Assert nothing observable changed since `before`, and that the invariants hold. */
export function expectUnchanged(k: Kernel, before: KernelState): void {
  const after = captureState(k);
  expect(after.stats).toEqual(before.stats);
  expect(after.pagemaps).toEqual(before.pagemaps);
  expect(after.vmas).toEqual(before.vmas);
  expect(after.vmallocinfo).toBe(before.vmallocinfo);
  // compare frame references as arrays only when they differ, for a readable message
  if (!sameInts(after.refcounts, before.refcounts)) {
    expect(changedFrames(before.refcounts, after.refcounts)).toEqual([]);
  }
  expect(sameInts(after.kinds, before.kinds)).toBe(true);
  k.checkInvariants();
}

function sameInts(a: ArrayLike<number>, b: ArrayLike<number>): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function changedFrames(a: Int32Array, b: Int32Array): string[] {
  const out: string[] = [];
  for (let i = 0; i < a.length; i++) {
    if (a[i] !== b[i]) out.push(`pfn ${i}: ${a[i]} -> ${b[i]}`);
  }
  return out;
}

/** Run a kernel-style call, expect `-errno`, and that it changed nothing at all. */
export function expectFailsCleanly(k: Kernel, call: () => number, errno: number): void {
  const before = captureState(k);
  expect(call()).toBe(-errno);
  expectUnchanged(k, before);
}

/** Run `fn` and expect it to throw `cls` with this code and faulting address. */
function expectFault(
  fn: () => unknown,
  cls: typeof SegmentationFault | typeof BusError,
  code: string,
  address: number,
): void {
  let caught: unknown = null;
  try {
    fn();
  } catch (e) {
    caught = e;
  }
  expect(caught).toBeInstanceOf(cls);
  const fault = caught as SegmentationFault | BusError;
  expect({ code: fault.code, address: fault.address }).toEqual({ code, address });
}

/** Run `fn`, expect a `SegmentationFault` with this code and faulting address. */
export function expectSegv(fn: () => unknown, code: SegvCode, address: number): void {
  expectFault(fn, SegmentationFault, code, address);
}

/** Run `fn`, expect a `BusError` (`BUS_ADRERR`) at this address: a VMA's page with no PTE. */
export function expectBus(fn: () => unknown, address: number): void {
  expectFault(fn, BusError, 'BUS_ADRERR', address);
}

/** The frames behind a vmalloc range, page by page (null where nothing is mapped). */
export function areaPfns(k: Kernel, kaddr: number, pages: number): (number | null)[] {
  return Array.from({ length: pages }, (_, i) => k.vmallocToPfn(kaddr + i * PAGE_SIZE));
}

/** The PTEs of `[uaddr, uaddr + pages * PAGE_SIZE)` in `mm`, by address. */
export function ptesIn(mm: AddressSpace, uaddr: number, pages: number): PagemapEntry[] {
  const end = uaddr + pages * PAGE_SIZE;
  return mm.pagemap().filter((e) => e.uaddr >= uaddr && e.uaddr < end);
}

/** Lengths in pages of the physically contiguous runs of a pfn sequence. */
export function runLengths(pfns: readonly number[]): number[] {
  const out: number[] = [];
  for (let i = 0; i < pfns.length; i++) {
    if (i > 0 && pfns[i] === pfns[i - 1]! + 1) out[out.length - 1]!++;
    else out.push(1);
  }
  return out;
}

/**
 * Allocate every free frame but `leave` into one `vmalloc` area (null if nothing needed eating).
 * `vfree` the result to give them back.
 */
export function eatFrames(k: Kernel, leave = 0): number | null {
  const n = k.stats().freeFrames - leave;
  if (n <= 0) return null;
  const kaddr = k.vmalloc(n * PAGE_SIZE);
  if (kaddr === null) throw new Error(`eatFrames: could not take ${n} frames`);
  expect(k.stats().freeFrames).toBe(leave);
  return kaddr;
}

/**
 * Leave exactly `holes` free frames, none of them physically next to another: allocate one-page
 * areas in pairs, eat everything else, then free the first page of each pair. Returns the kaddrs
 * to `vfree` afterwards.
 */
export function fragmentFrames(k: Kernel, holes: number): number[] {
  const keep: number[] = [];
  const drop: number[] = [];
  for (let i = 0; i < holes; i++) {
    drop.push(k.vmalloc(PAGE_SIZE)!);
    keep.push(k.vmalloc(PAGE_SIZE)!);
  }
  const eater = eatFrames(k);
  if (eater !== null) keep.push(eater);
  for (const kaddr of drop) k.vfree(kaddr);
  expect(k.stats().freeFrames).toBe(holes);
  return keep;
}

/** A deterministic byte pattern: `length` bytes starting from `seed`. */
export function pattern(length: number, seed: number): Uint8Array {
  const out = new Uint8Array(length);
  for (let i = 0; i < length; i++) out[i] = (seed + i * 31 + (i >>> 8)) & 0xff;
  return out;
}
