/**
 * Typed views over mapped memory: which typed-array types a view may have, and the checks that
 * make a wrong one a clear error. Imported by the worker side; the type check is core's (`isTypedArrayConstructor`).
 *
 * Kernel counterpart: none — a C process casts a pointer; a JavaScript typed array must start at a
 * multiple of its element size and cover one contiguous range of one buffer.
 *
 * @module
 */
import { describeType, isTypedArrayConstructor, type TypedArrayConstructor } from '@sabvm/core';

/** A typed-array constructor that `range.view` and `range.segments({ type })` accept: core's. */
export type { TypedArrayConstructor };

/** `0x…`, as every address in a message. */
export function hex(n: number): string {
  return `0x${n.toString(16)}`;
}

/** Throw `TypeError` unless `Type` is one of the typed-array constructors. */
export function checkType(Type: unknown, call: string): asserts Type is TypedArrayConstructor {
  if (!isTypedArrayConstructor(Type)) {
    throw new TypeError(
      `${call}: the type must be a typed-array constructor (Uint8Array, Float32Array, …), got ${describeType(Type)}`,
    );
  }
}

/**
 * Throw `RangeError` when `[uaddr, uaddr + length)` cannot hold whole elements of `Type`: a start
 * or a length that is not a multiple of the element size.
 */
export function checkAlignment(
  Type: TypedArrayConstructor,
  uaddr: number,
  length: number,
  call: string,
): void {
  const size = Type.BYTES_PER_ELEMENT;
  if (uaddr % size !== 0 || length % size !== 0) {
    throw new RangeError(
      `${call}: a ${Type.name} view needs a start address and a length that are multiples of ` +
        `${size} bytes; got ${hex(uaddr)} and ${length} bytes`,
    );
  }
}

/** A view of `bytes` as `Type` (no copy); `bytes` is aligned for it. */
export function asType<T extends TypedArrayConstructor>(
  Type: T,
  bytes: Uint8Array,
): InstanceType<T> {
  const Make = Type as unknown as new (
    buffer: ArrayBufferLike,
    byteOffset: number,
    length: number,
  ) => InstanceType<T>;
  return new Make(bytes.buffer, bytes.byteOffset, bytes.byteLength / Type.BYTES_PER_ELEMENT);
}
