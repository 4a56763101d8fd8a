/**
 * The page-fault decision for user accesses: which signal a faulting access gets.
 *
 * Kernel counterpart: `do_user_addr_fault` and `access_error` (`arch/x86/mm/fault.c`), and
 * `handle_mm_fault` answering `VM_FAULT_SIGBUS` for a driver's mapping with no fault handler.
 *
 * The accessors (user-access.ts) walk the page tables lock-free and stop at the first page whose
 * PTE is missing or forbids the access. That page's fault is then decided as Linux decides it,
 * by the VMA, under the mmap_lock:
 *
 * | the VMA covering the address                        | result                         |
 * | --------------------------------------------------- | ------------------------------ |
 * | none                                                | `SegmentationFault` `SEGV_MAPERR` |
 * | forbids the access (write without `PROT_WRITE`, any access to `PROT_NONE`) | `SegmentationFault` `SEGV_ACCERR` |
 * | permits it, and the page has no PTE                 | `BusError` `BUS_ADRERR`        |
 * | permits it, and the page now has a PTE that permits it | none: the walk raced with a change, the access is retried |
 *
 * A `PROT_WRITE`-only VMA permits reads (`access_error` asks only that a read fault meets an
 * accessible VMA), as its PTEs do on x86.
 *
 * @module
 */
import { PAGE_SIZE, PROT_NONE, PROT_WRITE } from './errno.js';
import { MM_DESTROYED, BusError, SegmentationFault } from './fault.js';
import { Mm, TASK_SIZE, VmaWord } from './layout.js';
import { mmGet, mmLockLive, mmUnlock } from './mm.js';
import { vmaAfterLocked } from './vma-list.js';
import { PTE_READ, PTE_WRITE, ptePfn, walkPte } from './pgtable.js';
import type { PhysMem } from './phys-mem.js';
import { inKernel } from './thread.js';
import { vmaGet } from './vma.js';

/**
 * The error a user access of `address` in mm `slot` (generation `gen`) faults with, decided by
 * the VMA; or null when the page is mapped and permits the access now (the caller retries).
 * Context: any thread, outside a copy section (a munmap that holds the mmap_lock may be waiting
 * for this thread's copy to end); takes the mmap_lock.
 */
export function decideUserFault(
  mem: PhysMem,
  slot: number,
  gen: number,
  address: number,
  write: boolean,
): SegmentationFault | BusError | null {
  const access = write ? 'write' : 'read';
  const mapErr = (): SegmentationFault => new SegmentationFault('SEGV_MAPERR', address, access);
  if (address >= TASK_SIZE) return mapErr();
  const page = Math.floor(address / PAGE_SIZE);
  return inKernel(mem, () => {
    // destroyed: nothing is mapped, and the fault says why
    if (!mmLockLive(mem, slot, gen))
      return new SegmentationFault('SEGV_MAPERR', address, access, MM_DESTROYED);
    try {
      const v = vmaAfterLocked(mem, slot, page);
      if (v < 0 || vmaGet(mem, v, VmaWord.START) > page) return mapErr();
      const prot = vmaGet(mem, v, VmaWord.PROT);
      if (write ? (prot & PROT_WRITE) === 0 : prot === PROT_NONE)
        return new SegmentationFault('SEGV_ACCERR', address, access);
      const pte = walkPte(mem, mmGet(mem, slot, Mm.PGD), page);
      const granted = pte & (write ? PTE_WRITE : PTE_READ);
      if (pte !== 0 && granted !== 0 && ptePfn(pte) < mem.layout.totalFrames) return null;
      return new BusError('BUS_ADRERR', address, access);
    } finally {
      mmUnlock(mem, slot);
    }
  });
}

/** Times an access runs again after its fault turned out to be a race with a change. */
const MAX_FAULT_RETRIES = 16;

/**
 * A user access of mm `slot` faulted with `error`. The lock-free walk stopped at the first page
 * that faults; that fault is decided now by the VMA ({@link decideUserFault}) and thrown, or, when
 * the walk raced with a change and the page is mapped after all, the access runs `again`. Only
 * the fault path comes here: the accessors' own paths allocate nothing more.
 * Context: any thread, outside a copy section; takes the mmap_lock.
 */
export function refault<T>(
  mem: PhysMem,
  slot: number,
  gen: number,
  error: unknown,
  write: boolean,
  again: () => T,
): T {
  for (let tries = 0; ; tries++) {
    // a fault the VMA keeps answering "mapped" is a kernel bug: the walk's own fault stands
    if (!(error instanceof SegmentationFault) || tries >= MAX_FAULT_RETRIES) throw error;
    const decided = decideUserFault(mem, slot, gen, error.address, write);
    if (decided !== null) throw decided;
    try {
      return again();
    } catch (next) {
      error = next;
    }
  }
}
