/**
 * Constants of the kernel contract: page geometry, errno values, protections and flags.
 *
 * Kernel counterparts: `include/asm-generic/errno-base.h`, `include/uapi/asm-generic/mman-common.h`,
 * `include/linux/vmalloc.h` (`VM_*` area flags) and `include/linux/mm.h` (`VM_*` VMA flags).
 *
 * @module
 */

/** `log2(PAGE_SIZE)`. */
export const PAGE_SHIFT = 12;
/** Bytes in one page (and one physical frame): 4096 (a shift, so that it is an Int32, not a double). */
export const PAGE_SIZE: number = 1 << PAGE_SHIFT;

/** Operation not permitted (`MAP_FIXED` at address 0). */
export const EPERM = 1;
/** No such entry. */
export const ENOENT = 2;
/** No such device or address. */
export const ENXIO = 6;
/** Try again. */
export const EAGAIN = 11;
/** Out of memory: frames, address space or table slots. */
export const ENOMEM = 12;
/** Permission denied. */
export const EACCES = 13;
/** Bad address: a user range outside its VMA. */
export const EFAULT = 14;
/** Device or resource busy: a PTE is already installed. */
export const EBUSY = 16;
/** Already exists. */
export const EEXIST = 17;
/** Invalid argument. */
export const EINVAL = 22;
/** No space left. */
export const ENOSPC = 28;
/** Value too large for its type. */
export const EOVERFLOW = 75;

/** Page cannot be accessed. */
export const PROT_NONE = 0;
/** Page can be read. */
export const PROT_READ = 1;
/** Page can be written (implies read, as on x86). */
export const PROT_WRITE = 2;

/** Share the mapping (the only supported mapping type). */
export const MAP_SHARED = 0x01;
/** Private copy-on-write mapping: not supported, `-EINVAL`. */
export const MAP_PRIVATE = 0x02;
/** Map exactly at `addr`, replacing what is there. */
export const MAP_FIXED = 0x10;
/** Map exactly at `addr` like `MAP_FIXED`, but `-EEXIST` (nothing changes) if anything is there. */
export const MAP_FIXED_NOREPLACE = 0x100000;

/** `VmArea.flags`: the area was made by the vmalloc family. */
export const VM_ALLOC = 0x2;
/** `VmArea.flags`: the area may be remapped to user space (`vmallocUser`). */
export const VM_USERMAP = 0x8;
/** `VmArea.flags`: no guard page follows the area (never set by the vmalloc family). */
export const VM_NO_GUARD = 0x40;

/** `Vma.flags`: readable. */
export const VM_READ = 0x1;
/** `Vma.flags`: writable. */
export const VM_WRITE = 0x2;
/** `Vma.flags`: shared mapping. */
export const VM_SHARED = 0x8;
/** `Vma.flags`: set by a remap; the VMA cannot grow. */
export const VM_DONTEXPAND = 0x40000;
/** `Vma.flags`: set by a remap; excluded from core dumps. */
export const VM_DONTDUMP = 0x4000000;
/** `Vma.flags`: set by a remap; the VMA holds PTEs to kernel-owned frames. */
export const VM_MIXEDMAP = 0x10000000;

/** `mremap` flag: the mapping may move to a new address. */
export const MREMAP_MAYMOVE = 1;
/** `mremap` flag: move to exactly `newAddr` (with `MREMAP_MAYMOVE`), replacing what is there. */
export const MREMAP_FIXED = 2;
/** `mremap` flag: move (same length), leaving the old VMA in place, empty. */
export const MREMAP_DONTUNMAP = 4;

/** `madvise` advice: no special treatment. */
export const MADV_NORMAL = 0;
/** `madvise` advice: expect random access (`VM_RAND_READ`). */
export const MADV_RANDOM = 1;
/** `madvise` advice: expect sequential access (`VM_SEQ_READ`). */
export const MADV_SEQUENTIAL = 2;
/** `madvise` advice: expect access soon (a hint; nothing changes). */
export const MADV_WILLNEED = 3;
/** `madvise` advice: zap the PTEs of the range; the VMA stays (references drop as for munmap). */
export const MADV_DONTNEED = 4;

/** `Vma.flags`: `MADV_SEQUENTIAL` was given. */
export const VM_SEQ_READ = 0x8000;
/** `Vma.flags`: `MADV_RANDOM` was given. */
export const VM_RAND_READ = 0x10000;
