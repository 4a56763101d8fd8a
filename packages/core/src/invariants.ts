/**
 * `checkInvariants`: a full consistency check of the kernel state, for tests and debugging.
 *
 * Kernel counterpart: the `CONFIG_DEBUG_VM` checks (`VM_BUG_ON`, `check_mm`).
 *
 * Meant for a quiescent kernel (no call in flight in any thread): it reads every structure and
 * throws an `Error` naming the first broken invariant.
 *
 * @module
 */
import { frameInUse, frameOwner, frameRefcount } from './frame-alloc.js';
import { FrameKind, Hdr, OWNER_KIND_MASK } from './layout.js';
import type { PhysMem } from './phys-mem.js';

function fail(message: string): never {
  throw new Error(`checkInvariants: ${message}`);
}

/**
 * Check every frame against the references the kernel structures account for.
 * `expectedRefs[pfn]` is the number of references the caller found for each frame.
 */
export function checkFrames(mem: PhysMem, expectedRefs: Int32Array): void {
  const { totalFrames, metadataFrames } = mem.layout;
  let clear = 0;
  for (let pfn = 0; pfn < totalFrames; pfn++) {
    const refs = frameRefcount(mem, pfn);
    const inUse = frameInUse(mem, pfn);
    const kind = frameOwner(mem, pfn) & OWNER_KIND_MASK;
    if (!inUse) clear++;
    if (pfn < metadataFrames) {
      if (!inUse || refs !== 1 || kind !== FrameKind.META) {
        fail(`metadata frame ${pfn} is not held (refs ${refs}, kind ${kind})`);
      }
      continue;
    }
    if (inUse !== refs > 0) fail(`frame ${pfn}: bitmap says ${inUse ? 'used' : 'free'}, refs ${refs}`);
    if ((kind === FrameKind.FREE) !== (refs === 0)) fail(`frame ${pfn}: owner kind ${kind}, refs ${refs}`);
    if (refs !== expectedRefs[pfn]) {
      fail(`frame ${pfn} (kind ${kind}) has ${refs} references, the structures account for ${expectedRefs[pfn]}`);
    }
  }
  const free = Atomics.load(mem.i32, Hdr.FREE_FRAMES);
  if (free !== clear) fail(`freeFrames is ${free} but ${clear} frames are free in the bitmap`);
}
