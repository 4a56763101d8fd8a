/**
 * The demo's data and its transformation, shared by the main thread (`main.ts`, to fill and to
 * check) and the task module (`task.ts`, to transform): pure functions, no thread code.
 *
 * @module
 */

/** The value the demo fills word `index` of the area with. Context: any; never throws. */
export function initialWord(index: number): number {
  return Math.imul(index, 0x01000193) >>> 0;
}

/** The transformation every task applies to each 32-bit word. Context: any; never throws. */
export function transformWord(word: number): number {
  return (Math.imul(word ^ (word >>> 15), 0x2c1b3c6d) + 0x297a2d39) >>> 0;
}

/**
 * Transform every word of `bytes` in place (length a multiple of 4, 4-aligned).
 * Context: any thread; never throws.
 */
export function transformBytes(bytes: Uint8Array): void {
  const words = new Uint32Array(bytes.buffer, bytes.byteOffset, bytes.length >>> 2);
  for (let i = 0; i < words.length; i++) words[i] = transformWord(words[i] ?? 0);
}

/** Running checksum of the words of `bytes`, continued from `sum`. Context: any; never throws. */
export function checksumBytes(bytes: Uint8Array, sum = 0): number {
  const words = new Uint32Array(bytes.buffer, bytes.byteOffset, bytes.length >>> 2);
  let s = sum;
  for (const word of words) s = (Math.imul(s, 31) + word) >>> 0;
  return s;
}
