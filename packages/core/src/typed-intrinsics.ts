/**
 * The intrinsic accessors of typed arrays, read once at load: a caller's own `length`, `buffer`,
 * `byteOffset` or tag on the object it passes (or a replaced prototype) never decides what a copy
 * reads. Each reads an internal slot of a real typed array and throws `TypeError` for anything
 * else.
 *
 * @module
 */

const TypedArrayPrototype: object = Object.getPrototypeOf(Uint8Array.prototype) as object;

function intrinsicGetter(name: PropertyKey): (this: unknown) => unknown {
  // eslint-disable-next-line @typescript-eslint/unbound-method -- called with .call on purpose
  const get = Object.getOwnPropertyDescriptor(TypedArrayPrototype, name)?.get;
  if (get === undefined)
    throw new TypeError(`the typed-array prototype has no ${String(name)} getter`);
  return get;
}

/** `%TypedArray%.prototype[Symbol.toStringTag]`: the kind (`'Uint8Array'`), undefined otherwise. */
export const typedArrayTag: (this: unknown) => unknown = intrinsicGetter(Symbol.toStringTag);
/** `%TypedArray%.prototype.buffer`. */
export const typedArrayBuffer: (this: unknown) => unknown = intrinsicGetter('buffer');
/** `%TypedArray%.prototype.byteOffset` (0 once the buffer is detached). */
export const typedArrayByteOffset: (this: unknown) => unknown = intrinsicGetter('byteOffset');
/** `%TypedArray%.prototype.length` (0 once the buffer is detached or the view out of bounds). */
export const typedArrayLength: (this: unknown) => unknown = intrinsicGetter('length');

/** Bytes of a real `Uint8Array` (or `Buffer`), or -1 for anything else. */
export function bytesLength(bytes: unknown): number {
  return typedArrayTag.call(bytes) === 'Uint8Array' ? (typedArrayLength.call(bytes) as number) : -1;
}

/**
 * A fixed-length view of the first `len` bytes of a real `Uint8Array` whose intrinsic length was
 * just measured as `len`, built from the intrinsic `buffer` and `byteOffset`: the source of a copy
 * that takes exactly `len` bytes, whatever the caller put on its object (a lying `length`, a
 * `subarray` whose species returns other bytes) and even if another thread grows the buffer under
 * a length-tracking view meanwhile. Null when the buffer is detached.
 */
export function exactBytes(bytes: Uint8Array, len: number): Uint8Array | null {
  try {
    const buffer = typedArrayBuffer.call(bytes) as ArrayBufferLike;
    return new Uint8Array(buffer, typedArrayByteOffset.call(bytes) as number, len);
  } catch {
    return null; // detached
  }
}

// eslint-disable-next-line @typescript-eslint/unbound-method -- called with .call on purpose
const abResizable = Object.getOwnPropertyDescriptor(ArrayBuffer.prototype, 'resizable')?.get;
// eslint-disable-next-line @typescript-eslint/unbound-method -- called with .call on purpose
const sabGrowable = Object.getOwnPropertyDescriptor(SharedArrayBuffer.prototype, 'growable')?.get;

/**
 * True when a fixed-length view of `buffer` keeps its length for good, but for a detach (which
 * makes it 0): `buffer` can neither be resized (`ArrayBuffer`) nor grown (`SharedArrayBuffer`),
 * read through the intrinsic getters. An engine without those getters has no such buffers.
 */
export function fixedLengthBuffer(buffer: ArrayBufferLike): boolean {
  try {
    return abResizable === undefined || abResizable.call(buffer) === false;
  } catch {
    // not an ArrayBuffer: a SharedArrayBuffer
  }
  try {
    return sabGrowable === undefined || sabGrowable.call(buffer) === false;
  } catch {
    return false;
  }
}
