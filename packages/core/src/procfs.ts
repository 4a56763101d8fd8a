/**
 * Introspection in the kernel's own text formats.
 *
 * Kernel counterparts: `/proc/meminfo` (`fs/proc/meminfo.c`), `/proc/vmallocinfo`
 * (`mm/vmalloc.c`: `s_show`), `/proc/<pid>/maps` and `/proc/<pid>/smaps` (`fs/proc/task_mmu.c`:
 * `show_map_vma`, `show_smap`, `show_smap_vma_flags`) and `/proc/slabinfo` (`mm/slab_common.c`:
 * `cache_show`).
 *
 * @module
 */
import {
  PAGE_SIZE,
  VM_DONTDUMP,
  VM_DONTEXPAND,
  VM_MIXEDMAP,
  VM_RAND_READ,
  VM_READ,
  VM_SEQ_READ,
  VM_SHARED,
  VM_USERMAP,
  VM_WRITE,
} from './errno.js';
import { AreaCaller, Cache, Hdr, KMEM_CACHES, VmaWord } from './layout.js';
import { liveObjects, slabsOf } from './kmalloc.js';
import { forEachPteLocked } from './pgtable.js';
import type { PhysMem } from './phys-mem.js';
import { cacheGen, cacheName, cacheWord, NR_KMALLOC_CACHES } from './slab.js';
import { vmallocAreas } from './vmalloc.js';
import { vmaGet } from './vma.js';

/** `0x` + 16 hex digits, as the kernel prints `%pK` in vmallocinfo. */
function hex16(n: number): string {
  return `0x${n.toString(16).padStart(16, '0')}`;
}

/** The `/proc/vmallocinfo` caller symbol of each vmalloc-family call. */
const CALLER_NAMES: Record<AreaCaller, string> = {
  [AreaCaller.VMALLOC]: 'vmalloc',
  [AreaCaller.VZALLOC]: 'vzalloc',
  [AreaCaller.VMALLOC_USER]: 'vmalloc_user',
  [AreaCaller.RINGBUF]: 'bpf_ringbuf_area_alloc',
};

/**
 * `/proc/vmallocinfo`: one line per live area, by address:
 * `0x…-0x… size caller pages=N vmalloc [user]`. Context: any thread; takes vmap_area_lock.
 */
export function formatVmallocinfo(mem: PhysMem): string {
  return vmallocAreas(mem)
    .map((a) => {
      const user = a.flags & VM_USERMAP ? ' user' : '';
      return `${hex16(a.addr)}-${hex16(a.addr + a.size)} ${String(a.size).padStart(7)} ${CALLER_NAMES[a.caller]} pages=${a.nrPages} vmalloc${user}\n`;
    })
    .join('');
}

/** One `/proc/meminfo` line: the name padded to 16 columns, the value to 8, in kB. */
function meminfoLine(name: string, pages: number): string {
  return `${`${name}:`.padEnd(16)}${String((pages * PAGE_SIZE) / 1024).padStart(8)} kB\n`;
}

/** `/proc/meminfo`. Context: any thread, lock-free snapshot of the counters. */
export function formatMeminfo(mem: PhysMem): string {
  const { i32, layout } = mem;
  const free = Atomics.load(i32, Hdr.FREE_FRAMES);
  const vmallocUsed = Atomics.load(i32, Hdr.VMALLOC_USED_PAGES);
  const pageTables = Atomics.load(i32, Hdr.PT_FRAMES);
  return [
    meminfoLine('MemTotal', layout.totalFrames),
    meminfoLine('MemFree', free),
    meminfoLine('MemAvailable', free),
    meminfoLine('Reserved', layout.metadataFrames),
    meminfoLine('Slab', Atomics.load(i32, Hdr.SLAB_FRAMES)),
    meminfoLine('PageTables', pageTables),
    meminfoLine('VmallocTotal', layout.vmallocPages),
    meminfoLine('VmallocUsed', vmallocUsed),
    meminfoLine('VmallocChunk', 0),
  ].join('');
}

/** `%08lx` of a user address. */
function hex8(n: number): string {
  return n.toString(16).padStart(8, '0');
}

/** The `/proc/<pid>/maps` line of VMA slot `v`. Context: the mm's mmap_lock held. */
function mapsLine(mem: PhysMem, v: number): string {
  const start = vmaGet(mem, v, VmaWord.START) * PAGE_SIZE;
  const end = vmaGet(mem, v, VmaWord.END) * PAGE_SIZE;
  const flags = vmaGet(mem, v, VmaWord.FLAGS);
  // from the VMA's flags, as show_map_vma: a PROT_WRITE-only VMA (VM_WRITE alone) is -w-s
  const perms =
    (flags & VM_READ ? 'r' : '-') +
    (flags & VM_WRITE ? 'w' : '-') +
    '-' +
    (flags & VM_SHARED ? 's' : 'p');
  return `${hex8(start)}-${hex8(end)} ${perms} 00000000 00:00 0 \n`;
}

/**
 * `/proc/<pid>/maps` lines for VMA slots: `start-end perms offset dev inode`, with `s` for shared
 * mappings. Context: the mm's mmap_lock held.
 */
export function formatMaps(mem: PhysMem, vmaSlots: readonly number[]): string {
  return vmaSlots.map((v) => mapsLine(mem, v)).join('');
}

/** `show_smap_vma_flags`' two-letter codes of the `VM_*` flags sabvm sets, in bit order. */
const VM_FLAG_CODES: readonly [number, string][] = [
  [VM_READ, 'rd'],
  [VM_WRITE, 'wr'],
  [VM_SHARED, 'sh'],
  [VM_SEQ_READ, 'sr'],
  [VM_RAND_READ, 'rr'],
  [VM_DONTEXPAND, 'de'],
  [VM_DONTDUMP, 'dd'],
  [VM_MIXEDMAP, 'mm'],
];

/**
 * `/proc/<pid>/smaps`: each VMA's maps line, then `Size:`, `KernelPageSize:`, `MMUPageSize:`,
 * `Rss:` (its pages with a PTE in the page directory `pgd`) and `VmFlags:`.
 * Context: the mm's mmap_lock held.
 */
export function formatSmaps(mem: PhysMem, vmaSlots: readonly number[], pgd: number): string {
  const ends = vmaSlots.map((v) => vmaGet(mem, v, VmaWord.END));
  const rss = vmaSlots.map(() => 0);
  let at = 0;
  forEachPteLocked(mem, pgd, (upage) => {
    while (at < ends.length && ends[at]! <= upage) at++;
    if (at < rss.length) rss[at]!++;
  });
  return vmaSlots
    .map((v, i) => {
      const pages = vmaGet(mem, v, VmaWord.END) - vmaGet(mem, v, VmaWord.START);
      const flags = vmaGet(mem, v, VmaWord.FLAGS);
      const codes = VM_FLAG_CODES.filter(([bit]) => flags & bit).map(([, code]) => `${code} `);
      return (
        mapsLine(mem, v) +
        meminfoLine('Size', pages) +
        meminfoLine('KernelPageSize', 1) +
        meminfoLine('MMUPageSize', 1) +
        meminfoLine('Rss', rss[i] ?? 0) +
        `VmFlags: ${codes.join('')}\n`
      );
    })
    .join('');
}

/** Orders of `/proc/buddyinfo`: blocks of 2^0 … 2^10 frames (Linux's `MAX_PAGE_ORDER` 10). */
export const BUDDY_ORDERS = 11;

/**
 * Free blocks per order as a buddy allocator would hold the free frames now: each maximal free
 * run of the frame bitmap cut into naturally aligned blocks of 2^order frames, largest first.
 * Context: any thread, lock-free (a snapshot of the bitmap).
 */
export function freeBlocksByOrder(mem: PhysMem): number[] {
  const counts = new Array<number>(BUDDY_ORDERS).fill(0);
  const { i32, frameBitmap } = mem;
  const total = mem.layout.totalFrames;
  let pfn = 0;
  while (pfn < total) {
    const used = (Atomics.load(i32, frameBitmap + (pfn >>> 5)) & (1 << (pfn & 31))) !== 0;
    if (used) {
      pfn++;
      continue;
    }
    let end = pfn + 1;
    while (end < total && (Atomics.load(i32, frameBitmap + (end >>> 5)) & (1 << (end & 31))) === 0)
      end++;
    for (let at = pfn; at < end;) {
      let order = BUDDY_ORDERS - 1;
      while (order > 0 && (at % 2 ** order !== 0 || at + 2 ** order > end)) order--;
      counts[order]!++;
      at += 2 ** order;
    }
    pfn = end;
  }
  return counts;
}

/**
 * `/proc/buddyinfo`: `Node 0, zone   Normal` and the free blocks of each order 0 … 10, each
 * printed as Linux prints them (`%6lu `). Context: any thread, lock-free.
 */
export function formatBuddyinfo(mem: PhysMem): string {
  const counts = freeBlocksByOrder(mem).map((n) => `${String(n).padStart(6)} `);
  return `Node 0, zone ${'Normal'.padStart(8)} ${counts.join('')}\n`;
}

/** The `/proc/slabinfo` header lines (version 2.1). */
export const SLABINFO_HEADER: string =
  'slabinfo - version: 2.1\n' +
  '# name            <active_objs> <num_objs> <objsize> <objperslab> <pagesperslab> : tunables <limit> <batchcount> <sharedfactor> : slabdata <active_slabs> <num_slabs> <sharedavail>\n';

/**
 * `/proc/slabinfo`, version 2.1: a line per live cache, the newest `kmemCacheCreate` caches first,
 * then `kmalloc-8k` … `kmalloc-8`, as Linux lists them. `active_objs` counts allocated objects
 * (remote-freed ones are free); the tunables are 0, as SLUB prints them. Context: any thread,
 * lock-free: a snapshot (a scan of the frame table).
 */
export function formatSlabinfo(mem: PhysMem): string {
  const { i32 } = mem;
  const pad = (v: number, n: number): string => String(v).padStart(n);
  let out = SLABINFO_HEADER;
  for (let cache = KMEM_CACHES - 1; cache >= 0; cache--) {
    if (cache >= NR_KMALLOC_CACHES && cacheGen(mem, cache) === 0) continue;
    const heads = slabsOf(mem, cache);
    let active = 0;
    for (const head of heads) active += liveObjects(mem, cache, head);
    const perSlab = i32[cacheWord(mem, cache, Cache.OBJS)]!;
    const name = cacheName(mem, cache).padEnd(17);
    out +=
      `${name} ${pad(active, 6)} ${pad(heads.length * perSlab, 6)} ${pad(i32[cacheWord(mem, cache, Cache.STRIDE)]!, 6)}` +
      ` ${pad(perSlab, 4)} ${pad(i32[cacheWord(mem, cache, Cache.FRAMES)]!, 4)}` +
      ` : tunables ${pad(0, 4)} ${pad(0, 4)} ${pad(0, 4)}` +
      ` : slabdata ${pad(heads.length, 6)} ${pad(heads.length, 6)} ${pad(0, 6)}\n`;
  }
  return out;
}
