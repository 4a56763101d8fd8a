/**
 * `kernel.view`: one zero-copy typed view of kernel memory — a kmalloc object, or a range of a
 * vmalloc area that is one physically contiguous run.
 *
 * Kernel counterpart: none as such (a C kernel dereferences a pointer); the direct map
 * (`page_address`) for kmalloc memory, and `vmalloc_to_page` for an area's pages.
 *
 * A JavaScript typed array covers one contiguous range of the buffer, so a view exists exactly
 * where the bytes are physically contiguous: always inside a kmalloc object (no object straddles a
 * frame unless larger than a page, and those slabs are contiguous runs), and inside an area only
 * where its frames are consecutive. Anything else throws an error that says which rule failed.
 *
 * @module
 */
import { PAGE_SIZE } from './errno.js';
import { VMALLOC_START } from './layout.js';
import { findObject } from './kmalloc.js';
import type { PhysMem } from './phys-mem.js';
import { vmallocPageIndex, vmallocToPfn } from './vmalloc.js';

/** A typed-array constructor that `view` accepts. */
export type TypedArrayConstructor =
  | Int8ArrayConstructor
  | Uint8ArrayConstructor
  | Uint8ClampedArrayConstructor
  | Int16ArrayConstructor
  | Uint16ArrayConstructor
  | Int32ArrayConstructor
  | Uint32ArrayConstructor
  | Float32ArrayConstructor
  | Float64ArrayConstructor
  | BigInt64ArrayConstructor
  | BigUint64ArrayConstructor;

const TYPES: ReadonlySet<unknown> = new Set<unknown>([
  Int8Array,
  Uint8Array,
  Uint8ClampedArray,
  Int16Array,
  Uint16Array,
  Int32Array,
  Uint32Array,
  Float32Array,
  Float64Array,
  BigInt64Array,
  BigUint64Array,
]);

/**
 * True for the eleven typed-array constructors a view may have (`Int8Array` … `BigUint64Array`):
 * the one check behind `kernel.view` and the worker side's typed views. Context: any; never throws.
 */
export function isTypedArrayConstructor(Type: unknown): Type is TypedArrayConstructor {
  return TYPES.has(Type);
}

/** How a value that is not a typed-array constructor reads in a message. */
export function describeType(Type: unknown): string {
  return typeof Type === 'function' ? Type.name || 'a function' : String(Type);
}

const hex = (n: number): string => (n < 0 ? `-0x${(-n).toString(16)}` : `0x${n.toString(16)}`);

/**
 * A view of `len` bytes of kernel memory at `kaddr`, as `Type`. Throws `TypeError` for a kaddr or
 * length that is not a number or a Type that is not a typed-array constructor; `RangeError` for a
 * negative or unsafe length, a length or address not a multiple of the element size, memory that is
 * not live (no live kmalloc object contains the range; a vmalloc page that no live area backs) and
 * an area range that is not one physically contiguous run. Context: any thread, lock-free; the view
 * is valid while the object or area lives (using it later is a use-after-free, as in C).
 */
export function kernelView<T extends TypedArrayConstructor>(
  mem: PhysMem,
  kaddr: unknown,
  len: unknown,
  Type: T,
): InstanceType<T> {
  if (!TYPES.has(Type)) {
    throw new TypeError(
      `kernel.view: Type must be a typed-array constructor (Uint8Array, Float32Array, …), got ${describeType(Type)}`,
    );
  }
  if (typeof kaddr !== 'number') throw new TypeError('kernel.view: kaddr must be a number');
  if (typeof len !== 'number') throw new TypeError('kernel.view: len must be a number');
  if (!Number.isSafeInteger(kaddr))
    throw new RangeError(`kernel.view: kaddr ${kaddr} is not a safe integer`);
  if (!Number.isSafeInteger(len) || len < 0)
    throw new RangeError(`kernel.view: len ${len} is not a non-negative safe integer (bytes)`);
  const bpe = Type.BYTES_PER_ELEMENT;
  if (len % bpe !== 0 || ((kaddr % bpe) + bpe) % bpe !== 0)
    throw new RangeError(
      `kernel.view: ${Type.name} needs an address and a length (bytes) that are multiples of ${bpe}; got ${hex(kaddr)} and ${len}`,
    );
  const phys = kaddr >= VMALLOC_START ? vmallocPhys(mem, kaddr, len) : kmallocPhys(mem, kaddr, len);
  const Make = Type as unknown as new (
    b: ArrayBufferLike,
    at: number,
    n: number,
  ) => InstanceType<T>;
  return new Make(mem.buffer, phys, len / bpe);
}

/** The physical byte address of `[kaddr, kaddr + len)` inside one live kmalloc object. */
function kmallocPhys(mem: PhysMem, kaddr: number, len: number): number {
  const obj = kaddr < 0 ? findObject(mem, kaddr, true) : null;
  if (obj === null) {
    throw new RangeError(
      `kernel.view: ${hex(kaddr)} is not inside a live kmalloc object or a vmalloc area (freed, never allocated, or not a kernel address)`,
    );
  }
  const at = kaddr - mem.layout.kmallocStart;
  if (at + len > obj.start + obj.size) {
    throw new RangeError(
      `kernel.view: [${hex(kaddr)}, ${hex(kaddr + len)}) runs past the end of its object (${obj.size} bytes at ${hex(mem.layout.kmallocStart + obj.start)})`,
    );
  }
  return at;
}

/** The physical byte address of `[kaddr, kaddr + len)` of a vmalloc area, one contiguous run. */
function vmallocPhys(mem: PhysMem, kaddr: number, len: number): number {
  const first = vmallocPageIndex(mem, kaddr);
  const last = vmallocPageIndex(mem, kaddr + Math.max(len, 1) - 1);
  if (first < 0 || last < 0)
    throw new RangeError(
      `kernel.view: [${hex(kaddr)}, ${hex(kaddr + len)}) leaves the vmalloc range`,
    );
  const base = kaddr - (kaddr % PAGE_SIZE);
  let runs = 1;
  let pfn0 = -1;
  let prev = -1;
  for (let p = first; p <= last; p++) {
    const page = base + (p - first) * PAGE_SIZE;
    const pfn = vmallocToPfn(mem, page);
    if (pfn === null) {
      throw new RangeError(
        `kernel.view: ${hex(page)} is not backed by a live vmalloc area (freed, a guard page or a hole)`,
      );
    }
    if (pfn0 < 0) pfn0 = pfn;
    else if (pfn !== prev + 1) runs++;
    prev = pfn;
  }
  if (runs > 1) {
    throw new RangeError(
      `kernel.view: [${hex(kaddr)}, ${hex(kaddr + len)}) is not one physically contiguous run (its frames form ${runs} runs); allocate the area with { contiguous: true } to get one run, or view a smaller range, or copy it with readKernel, or map the area and use segments`,
    );
  }
  return pfn0 * PAGE_SIZE + (kaddr % PAGE_SIZE);
}
