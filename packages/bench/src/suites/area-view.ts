/**
 * A main-thread typed view of a vmalloc area that is one physically contiguous run, built from
 * public calls only (`vmallocToPfn` and the kernel's buffer).
 *
 * A stand-in for `kernel.view(kaddr, len, Type)` (KERNEL-CONTRACT.md part 2), which another branch
 * adds to the kernel: once it lands, this function becomes `kernel.view(kaddr, len, Type)`.
 *
 * @module
 */
import { PAGE_SIZE, type Kernel } from '@sabvm/core';

/** A typed-array constructor. */
type TypedArrayConstructor =
  Float32ArrayConstructor | Int32ArrayConstructor | Uint8ArrayConstructor;

/**
 * A zero-copy view of `len` bytes at `kaddr` as `Type`. Throws `Error` when a page is not backed
 * or the pages are not one physical run. Context: any attached thread.
 */
export function areaView<T extends TypedArrayConstructor>(
  kernel: Kernel,
  kaddr: number,
  len: number,
  Type: T,
): InstanceType<T> {
  const first = kernel.vmallocToPfn(kaddr);
  if (first === null) throw new Error(`areaView: nothing is mapped at 0x${kaddr.toString(16)}`);
  for (let page = 1; page < Math.ceil(len / PAGE_SIZE); page++) {
    if (kernel.vmallocToPfn(kaddr + page * PAGE_SIZE) !== first + page) {
      throw new Error(`areaView: the area at 0x${kaddr.toString(16)} is not one physical run`);
    }
  }
  const Make = Type as unknown as new (
    b: ArrayBufferLike,
    at: number,
    n: number,
  ) => InstanceType<T>;
  return new Make(kernel.handle.buffer, first * PAGE_SIZE, len / Type.BYTES_PER_ELEMENT);
}
