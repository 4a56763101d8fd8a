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

// eslint-disable-next-line @typescript-eslint/unbound-method -- called with .call on purpose
const growableOf = Object.getOwnPropertyDescriptor(SharedArrayBuffer.prototype, 'growable')?.get;

/**
 * The bytes of a real `Uint8Array` whose intrinsic length was just measured as `len`, as a source
 * a copy takes exactly `len` bytes from: the caller's own view (`set` copies by its internal
 * length, never by a `length` property or a `subarray` the caller put on it), or, over a growable
 * `SharedArrayBuffer` (which another thread may grow under a length-tracking view at any moment),
 * a fixed-length view of the same `len` bytes. Throws `TypeError` for a detached buffer.
 */
export function exactBytes(bytes: Uint8Array, len: number): Uint8Array {
  const buffer = typedArrayBuffer.call(bytes) as ArrayBufferLike;
  let growable = false;
  try {
    growable = growableOf?.call(buffer) === true; // throws for an ArrayBuffer: not growable
  } catch {
    growable = false;
  }
  return growable ? new Uint8Array(buffer, typedArrayByteOffset.call(bytes) as number, len) : bytes;
}
