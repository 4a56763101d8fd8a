/**
 * The read-only check: a hash of every page of a task's read-only mappings, taken before the task
 * and compared after it, so that a task which wrote through a view of a read-only mapping fails.
 *
 * Kernel counterpart: none — a CPU enforces `PROT_READ` on every store. JavaScript has no read-only
 * view of shared memory (a view from a read-only mapping accepts plain stores), so this is a
 * detector, not a protection: it finds a write after the fact, and it reports any change to those
 * pages while the task ran, whoever made it (another process with a writable mapping of the same
 * area changes them too).
 *
 * Main-thread code only.
 *
 * @module
 */
import { PAGE_SIZE, PROT_WRITE, type Kernel } from '@sabvm/core';
import type { Mapping } from './process.js';

/** The hashes of one read-only mapping's pages, in address order. */
interface MappingHashes {
  readonly uaddr: number;
  readonly length: number;
  readonly pages: Int32Array;
}

/** Hashes of the read-only mappings of one task, taken before it ran. */
export type ReadOnlySnapshot = readonly MappingHashes[];

/**
 * A hash of the words `[from, to)` of `words`: four FNV-1a lanes over interleaved words (four
 * independent multiply chains run about twice as fast as one), folded into one.
 */
function hashWords(words: Int32Array, from: number, to: number): number {
  const P = 0x01000193;
  let a = 0x811c9dc5;
  let b = 0x050c5d1f;
  let c = 0x2b7e1516;
  let d = 0x28aed2a6;
  let i = from;
  for (; i + 4 <= to; i += 4) {
    a = Math.imul(a ^ words[i]!, P);
    b = Math.imul(b ^ words[i + 1]!, P);
    c = Math.imul(c ^ words[i + 2]!, P);
    d = Math.imul(d ^ words[i + 3]!, P);
  }
  for (; i < to; i++) a = Math.imul(a ^ words[i]!, P);
  return a ^ Math.imul(b, 3) ^ Math.imul(c, 5) ^ Math.imul(d, 7);
}

/** Per-page hashes of `[uaddr, uaddr + length)` of address space `mmId`, read zero-copy. */
function hashPages(kernel: Kernel, mmId: number, uaddr: number, length: number): Int32Array {
  const mm = kernel.addressSpace(mmId);
  const pages = new Int32Array(Math.ceil(length / PAGE_SIZE));
  let page = 0;
  for (const seg of mm.segments(uaddr, length)) {
    // runs start and end on page boundaries (a mapping starts on one), except the range's end
    const words = new Int32Array(seg.buffer, seg.byteOffset, seg.byteLength >> 2);
    const wordsPerPage = PAGE_SIZE >> 2;
    for (let at = 0; at < words.length; at += wordsPerPage) {
      pages[page++] = hashWords(words, at, Math.min(words.length, at + wordsPerPage));
    }
    // a tail of fewer than 4 bytes: fold its bytes in
    for (let b = seg.byteLength & ~3; b < seg.byteLength; b++) {
      pages[page - 1] = Math.imul(pages[page - 1]! ^ seg[b]!, 0x01000193);
    }
  }
  return pages;
}

/**
 * Hash the read-only mappings (no `PROT_WRITE`, some access) of a task before it runs.
 * Context: main thread, the address space alive and no task of it running yet.
 */
export function snapshotReadOnly(
  kernel: Kernel,
  mmId: number,
  mappings: readonly Mapping[],
): ReadOnlySnapshot {
  return mappings
    .filter((m) => (m.prot & PROT_WRITE) === 0 && m.prot !== 0 && m.length > 0)
    .map((m) => ({
      uaddr: m.uaddr,
      length: m.length,
      pages: hashPages(kernel, mmId, m.uaddr, m.length),
    }));
}

/**
 * The user address of the first page of `snapshot` whose contents changed since, or null.
 * Context: main thread, after the task has settled and before its address space is destroyed.
 */
export function firstChangedPage(
  kernel: Kernel,
  mmId: number,
  snapshot: ReadOnlySnapshot,
): number | null {
  for (const { uaddr, length, pages } of snapshot) {
    const now = hashPages(kernel, mmId, uaddr, length);
    for (let i = 0; i < pages.length; i++) {
      if (now[i] !== pages[i]) return uaddr + i * PAGE_SIZE;
    }
  }
  return null;
}
