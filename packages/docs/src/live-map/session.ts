/**
 * The state machine behind the live memory map: one small kernel booted in the page, user
 * processes (an address space each, run by a worker), and the reader's actions — vmalloc, mmap,
 * remapPartial, write, munmap, vfree — each logged with the kernel's own return value.
 *
 * It runs anywhere `@sabvm/core` runs; the worker factory is injected, so the browser passes Web
 * Workers and the tests may pass an in-thread stand-in.
 *
 * @module
 */
import {
  EAGAIN,
  EBUSY,
  EFAULT,
  EINVAL,
  ENOMEM,
  EPERM,
  Kernel,
  MAP_SHARED,
  PAGE_SIZE,
  PROT_READ,
  PROT_WRITE,
  remapPartial,
  type AddressSpace,
  type RingBuf,
} from '@sabvm/core';
import { takePicture, type MemoryPicture } from './picture.js';
import type { FromUserProcess, ToUserProcess } from './user-process.js';

/** What the session needs of a worker running {@link createUserProcess}. */
export interface UserProcessWorker {
  postMessage(message: ToUserProcess): void;
  terminate(): void;
}

/** Start a worker; `onMessage` receives everything it posts. */
export type SpawnUserProcess = (onMessage: (message: FromUserProcess) => void) => UserProcessWorker;

/** Options of {@link LiveMapSession}. */
export interface LiveMapOptions {
  readonly spawn: SpawnUserProcess;
  /** Physical memory; default 1 MiB (256 frames: a grid a reader can take in). */
  readonly memoryBytes?: number;
  /** Pause of a worker after each page it writes, ms; default 120. */
  readonly writeDelayMs?: number;
  /** Called after every change of the kernel's state or of the session's. */
  readonly onChange?: () => void;
}

/** One line of the session's log. */
export interface LogEntry {
  readonly text: string;
  readonly ok: boolean;
}

interface Process {
  readonly mm: AddressSpace;
  readonly worker: UserProcessWorker;
  /** Writes posted to the worker and not answered yet. */
  writes: number;
}

const ERRNO_NAMES: ReadonlyMap<number, string> = new Map([
  [EPERM, 'EPERM'],
  [EAGAIN, 'EAGAIN'],
  [ENOMEM, 'ENOMEM'],
  [EFAULT, 'EFAULT'],
  [EBUSY, 'EBUSY'],
  [EINVAL, 'EINVAL'],
]);

/** `0` or `-EINVAL` as text. */
export function errnoText(result: number): string {
  return result >= 0 ? String(result) : `-${ERRNO_NAMES.get(-result) ?? `E${-result}`}`;
}

/** Data bytes of a ring the reader makes: two pages (the smallest ring). */
export const RING_DATA_BYTES: number = 2 * PAGE_SIZE;
/** Bytes of each record the reader outputs: four fit in an empty ring, a fifth finds it full. */
export const RING_RECORD_BYTES = 2000;

const hex = (value: number): string => `0x${value.toString(16)}`;
const LOG_LINES = 14;

/** A reader's session with one kernel. Context: the page's main thread. */
export class LiveMapSession {
  /** The kernel of this session (replaced by {@link LiveMapSession.reset}). */
  kernel: Kernel;
  /** Base address of the selected vmalloc area, or `null`. */
  selectedArea: number | null = null;
  /** Id of the selected address space, or `null`. */
  selectedProcess: number | null = null;
  /** Start of the selected VMA in the selected address space, or `null`. */
  selectedVma: number | null = null;
  /** Pages of the next `vmalloc`. */
  pages = 4;
  private readonly options: LiveMapOptions;
  private readonly processes = new Map<number, Process>();
  private readonly entries: LogEntry[] = [];
  private nextSeq = 1;

  constructor(options: LiveMapOptions) {
    this.options = options;
    this.kernel = this.boot();
    // No onChange from the constructor: the caller is still building the session.
    this.entries.push({
      text: `booted a kernel of ${this.kernel.stats().totalFrames} frames`,
      ok: true,
    });
  }

  /** Newest first. */
  get log(): readonly LogEntry[] {
    return this.entries;
  }

  /** Whether a worker is still writing. */
  get busy(): boolean {
    return [...this.processes.values()].some((process) => process.writes > 0);
  }

  /** The current picture of memory. */
  picture(): MemoryPicture {
    return takePicture(this.kernel);
  }

  /** The kernel's text views: `/proc/vmallocinfo`, `/proc/meminfo` and each process's maps. */
  procViews(): { vmallocinfo: string; meminfo: string; maps: { id: number; text: string }[] } {
    return {
      vmallocinfo: this.kernel.vmallocinfo(),
      meminfo: this.kernel.meminfo(),
      maps: [...this.processes.values()].map(({ mm }) => ({ id: mm.id, text: mm.maps() })),
    };
  }

  /** `kernel.vmallocUser(pages * PAGE_SIZE)`; selects the new area. */
  vmalloc(): void {
    const size = this.pages * PAGE_SIZE;
    const kaddr = this.kernel.vmallocUser(size);
    if (kaddr !== null) this.selectedArea = kaddr;
    this.record(`vmallocUser(${size}) → ${kaddr === null ? 'NULL' : hex(kaddr)}`, kaddr !== null);
  }

  /** `kernel.ringbufCreate(2 pages)`: a ring buffer (meta, two position pages, data); selects it. */
  ringCreate(): void {
    const rb = this.kernel.ringbufCreate(RING_DATA_BYTES);
    if (rb !== null) this.selectedArea = rb.kaddr;
    this.record(
      `ringbufCreate(${RING_DATA_BYTES}) → ${rb === null ? 'NULL' : `ring at ${hex(rb.kaddr)}`}`,
      rb !== null,
    );
  }

  /** `rb.output` of one record of {@link RING_RECORD_BYTES} into the selected ring (or the newest). */
  ringOutput(): void {
    const rb = this.currentRing();
    if (rb === null) {
      this.record('output: make a ring first', false);
      return;
    }
    const seq = this.nextSeq++;
    const record = new Uint8Array(RING_RECORD_BYTES).fill(0x40 + ((seq * 11) % 0xa0));
    const result = rb.output(record);
    this.record(
      `ring ${hex(rb.kaddr)}: output(${RING_RECORD_BYTES} bytes) → ${errnoText(result)}${result === -EAGAIN ? ' (full: consume first)' : ''}`,
      result === 0,
    );
  }

  /** `rb.consume` of every record waiting in the selected ring (or the newest). */
  ringConsume(): void {
    const rb = this.currentRing();
    if (rb === null) {
      this.record('consume: make a ring first', false);
      return;
    }
    let bytes = 0;
    const count = rb.consume((view) => void (bytes += view.length));
    this.record(
      `ring ${hex(rb.kaddr)}: consume → ${errnoText(count)} (${bytes} bytes read in place)`,
      count >= 0,
    );
  }

  /** Start a user process: a new address space and a worker attached to it; selects it. */
  spawnProcess(): AddressSpace | null {
    const mm = this.kernel.createAddressSpace();
    if (mm === null) {
      this.record('createAddressSpace() → NULL', false);
      return null;
    }
    const worker = this.options.spawn((message) => {
      if (message.type === 'exited') worker.terminate();
      else this.onWorkerMessage(mm.id, message);
    });
    worker.postMessage({ type: 'attach', handle: this.kernel.handle, mmId: mm.id });
    this.processes.set(mm.id, { mm, worker, writes: 0 });
    this.selectedProcess = mm.id;
    this.selectedVma = null;
    this.record(`createAddressSpace() → mm ${mm.id} (a worker attaches)`, true);
    return mm;
  }

  /** `mm.mmap(0, len, PROT_READ | PROT_WRITE, MAP_SHARED)` in the selected process (started if none). */
  mmap(): void {
    const process = this.currentProcess() ?? this.spawnProcess();
    if (process === null) return;
    const area = this.currentArea();
    const length = (area?.nrPages ?? this.pages) * PAGE_SIZE;
    const uaddr = process.mmap(0, length, PROT_READ | PROT_WRITE, MAP_SHARED);
    if (uaddr >= 0) this.selectedVma = uaddr;
    this.record(
      `mm ${process.id}: mmap(0, ${length}, PROT_READ|PROT_WRITE, MAP_SHARED) → ${uaddr >= 0 ? hex(uaddr) : errnoText(uaddr)}`,
      uaddr >= 0,
    );
  }

  /** `remapPartial` of the selected area into the selected VMA, as much as both hold. */
  remap(): void {
    const mm = this.currentProcess();
    const vma = this.selectedVma === null ? null : (mm?.findVma(this.selectedVma) ?? null);
    const area = this.currentArea();
    if (mm === null || vma === null || area === null) {
      this.record('remapPartial: select a VMA (mmap) and a vmalloc area first', false);
      return;
    }
    const size = Math.min(vma.end - vma.start, area.nrPages * PAGE_SIZE);
    const result = remapPartial(vma, vma.start, area.addr, size);
    this.record(
      `mm ${mm.id}: remapPartial(vma, ${hex(vma.start)}, ${hex(area.addr)}, ${size}) → ${errnoText(result)}`,
      result === 0,
    );
  }

  /** The selected process's worker writes every page of the selected VMA through `segments`. */
  write(): void {
    const mm = this.currentProcess();
    const process = mm === null ? undefined : this.processes.get(mm.id);
    const vma = this.selectedVma === null ? null : (mm?.findVma(this.selectedVma) ?? null);
    if (mm === null || process === undefined || vma === null) {
      this.record('write: select a VMA first (mmap)', false);
      return;
    }
    const seq = this.nextSeq++;
    const value = 0x40 + ((mm.id * 37 + seq * 11) % 0xa0);
    process.writes++;
    this.record(
      `mm ${mm.id}: worker writes 0x${value.toString(16)} to ${hex(vma.start)}-${hex(vma.end)}…`,
      true,
    );
    process.worker.postMessage({
      type: 'write',
      seq,
      uaddr: vma.start,
      length: vma.end - vma.start,
      value,
      delayMs: this.options.writeDelayMs ?? 120,
    });
  }

  /** `mm.munmap` of the whole selected VMA. */
  munmap(): void {
    const mm = this.currentProcess();
    const vma = this.selectedVma === null ? null : (mm?.findVma(this.selectedVma) ?? null);
    if (mm === null || vma === null) {
      this.record('munmap: select a VMA first', false);
      return;
    }
    const result = mm.munmap(vma.start, vma.end - vma.start);
    this.record(
      `mm ${mm.id}: munmap(${hex(vma.start)}, ${vma.end - vma.start}) → ${errnoText(result)}`,
      result === 0,
    );
    this.selectedVma = mm.vmas().at(-1)?.start ?? null;
  }

  /** `kernel.vfree` of the selected area (`rb.free()` when it is a ring's). */
  vfree(): void {
    if (this.selectedArea === null) {
      this.record('vfree: select a vmalloc area first', false);
      return;
    }
    const kaddr = this.selectedArea;
    const ring = this.kernel.ringbuf(kaddr);
    if (ring !== null) {
      ring.free(); // a ring's area goes with its ring: bpf_ringbuf_free, not a bare vfree
      this.record(`ring ${hex(kaddr)}: free() (its area is vfreed)`, true);
      this.selectedArea = this.kernel.vmallocAreas().at(-1)?.addr ?? null;
      return;
    }
    const before = this.kernel.stats().badFrees;
    this.kernel.vfree(kaddr);
    const ok = this.kernel.stats().badFrees === before;
    this.record(`vfree(${hex(kaddr)})${ok ? '' : ' — not a live area: counted in badFrees'}`, ok);
    this.selectedArea = this.kernel.vmallocAreas().at(-1)?.addr ?? null;
  }

  /** End the selected process: `mm.destroy()`, and its worker detaches from the kernel and ends. */
  exitProcess(): void {
    const mm = this.currentProcess();
    if (mm === null) {
      this.record('exit: no process selected', false);
      return;
    }
    this.endProcess(mm.id, true);
    this.record(`mm ${mm.id}: exit (destroy: PTEs, references and page tables released)`, true);
    this.selectedProcess = [...this.processes.keys()].at(-1) ?? null;
    this.selectedVma =
      this.selectedProcess === null ? null : (this.currentProcess()?.vmas().at(-1)?.start ?? null);
  }

  /** Select an area, a process, or a VMA of a process. */
  select(target: { area: number } | { process: number; vma?: number }): void {
    if ('area' in target) {
      this.selectedArea = target.area;
    } else {
      this.selectedProcess = target.process;
      this.selectedVma = target.vma ?? this.currentProcess()?.vmas().at(-1)?.start ?? null;
    }
    this.changed();
  }

  /** End every process and boot a fresh kernel. */
  reset(): void {
    this.dispose();
    this.kernel = this.boot();
    this.entries.length = 0;
    this.selectedArea = this.selectedProcess = this.selectedVma = null;
    this.record(`booted a kernel of ${this.kernel.stats().totalFrames} frames`, true);
  }

  /** Terminate every worker at once and destroy every address space. */
  dispose(): void {
    for (const id of [...this.processes.keys()]) this.endProcess(id, false);
  }

  private boot(): Kernel {
    return Kernel.boot({
      memoryBytes: this.options.memoryBytes ?? 2 ** 20,
      maxAreas: 64,
      maxVmas: 64,
      maxAddressSpaces: 8,
    });
  }

  /**
   * Destroy a process's address space and end its worker: gracefully (it stops writing, detaches
   * and closes, then the main thread terminates it) or at once (the kernel is being dropped).
   */
  private endProcess(id: number, graceful: boolean): void {
    const process = this.processes.get(id);
    if (process === undefined) return;
    this.processes.delete(id);
    if (graceful) process.worker.postMessage({ type: 'exit' });
    else process.worker.terminate();
    process.mm.destroy();
  }

  private currentProcess(): AddressSpace | null {
    return this.selectedProcess === null
      ? null
      : (this.processes.get(this.selectedProcess)?.mm ?? null);
  }

  /** The selected area's ring, or the newest ring, or null. */
  private currentRing(): RingBuf | null {
    const selected = this.selectedArea === null ? null : this.kernel.ringbuf(this.selectedArea);
    if (selected !== null) return selected;
    for (const area of [...this.kernel.vmallocAreas()].reverse()) {
      const rb = this.kernel.ringbuf(area.addr);
      if (rb !== null) return rb;
    }
    return null;
  }

  private currentArea(): { addr: number; nrPages: number } | null {
    return this.selectedArea === null ? null : this.kernel.findVmArea(this.selectedArea);
  }

  private onWorkerMessage(mmId: number, message: FromUserProcess): void {
    const process = this.processes.get(mmId);
    if (process === undefined) return;
    switch (message.type) {
      case 'attached':
      case 'progress':
        this.changed();
        return;
      case 'done':
        process.writes--;
        this.record(`mm ${mmId}: worker wrote ${message.written} bytes`, true);
        return;
      case 'fault':
        process.writes--;
        this.record(
          `mm ${mmId}: worker got ${message.code.startsWith('BUS') ? 'BusError' : 'SegmentationFault'} ${message.code} at ${hex(message.address)} after ${message.written} bytes`,
          false,
        );
        return;
      case 'error':
        if (message.seq !== 0) process.writes--;
        this.record(`mm ${mmId}: worker failed: ${message.message}`, false);
        return;
      case 'exited':
        return;
    }
  }

  private record(text: string, ok: boolean): void {
    this.entries.unshift({ text, ok });
    this.entries.length = Math.min(this.entries.length, LOG_LINES);
    this.changed();
  }

  private changed(): void {
    this.options.onChange?.();
  }
}
