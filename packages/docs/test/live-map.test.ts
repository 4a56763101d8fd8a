/**
 * The live memory map's logic, run in Node with a real kernel: the picture follows every action,
 * and the user processes (here run in-thread instead of in Web Workers) write through their own
 * page tables.
 */
import { describe, expect, test } from 'vitest';
import {
  BPF_RB_AVAIL_DATA,
  BPF_RB_CONS_POS,
  BPF_RB_PROD_POS,
  BPF_RB_RING_SIZE,
  EAGAIN,
  FRAME_DEFERRED,
  FRAME_SLAB,
  FRAME_FREE,
  FRAME_META,
  FRAME_PAGE_TABLE,
  FRAME_VMALLOC,
  PAGE_SIZE,
  RINGBUF_HDR_SZ,
  RINGBUF_META_PAGES,
} from '@sabvm/core';
import { CELL, layoutMap, MAX_ROWS, pageName } from '../src/live-map/geometry.js';
import {
  countKinds,
  FRAME_KIND_NAMES,
  FILL_SAMPLES,
  frameFill,
  PAGE_BYTES,
  RING_META_PAGES,
  RING_QUERY,
  type MemoryPicture,
} from '../src/live-map/picture.js';
import {
  errnoText,
  LiveMapSession,
  RING_DATA_BYTES,
  RING_RECORD_BYTES,
  type UserProcessWorker,
} from '../src/live-map/session.js';
import { createUserProcess, type FromUserProcess } from '../src/live-map/user-process.js';

/** A session whose user processes run in this thread; `settled()` resolves when no write is in flight. */
function inThreadSession(): {
  session: LiveMapSession;
  settled: () => Promise<void>;
  messages: FromUserProcess[];
} {
  const messages: FromUserProcess[] = [];
  let wake: (() => void) | null = null;
  const session: LiveMapSession = new LiveMapSession({
    writeDelayMs: 0,
    spawn: (onMessage): UserProcessWorker => {
      let alive = true;
      const handle = createUserProcess((message) => {
        messages.push(message);
        if (alive) onMessage(message);
      });
      return {
        postMessage: (message) => {
          queueMicrotask(() => void handle(message));
        },
        terminate: () => {
          alive = false;
        },
      };
    },
    onChange: () => {
      if (!session.busy) wake?.();
    },
  });
  const settled = (): Promise<void> =>
    session.busy ? new Promise((resolve) => (wake = resolve)) : Promise.resolve();
  return { session, settled, messages };
}

function kindsOf(picture: MemoryPicture): string[] {
  return picture.frames.map((frame) => frame.kind);
}

describe('the picture of memory', () => {
  test('names the frame kinds in the order of the core constants', () => {
    expect(FRAME_KIND_NAMES[FRAME_FREE]).toBe('free');
    expect(FRAME_KIND_NAMES[FRAME_META]).toBe('meta');
    expect(FRAME_KIND_NAMES[FRAME_VMALLOC]).toBe('vmalloc');
    expect(FRAME_KIND_NAMES[FRAME_PAGE_TABLE]).toBe('page-table');
    expect(FRAME_KIND_NAMES[FRAME_DEFERRED]).toBe('deferred');
    expect(FRAME_KIND_NAMES[FRAME_SLAB]).toBe('slab');
  });

  test('measures how much of a frame holds data by sampling its bytes', () => {
    const memory = new Uint8Array(3 * PAGE_SIZE);
    memory.fill(1, PAGE_SIZE, PAGE_SIZE + PAGE_SIZE / 2);
    expect(frameFill(memory, 0)).toBe(0);
    expect(frameFill(memory, 1)).toBe(0.5);
    memory.fill(9, 2 * PAGE_SIZE, 3 * PAGE_SIZE);
    expect(frameFill(memory, 2)).toBe(1);
    expect(FILL_SAMPLES).toBeGreaterThan(0);
  });
});

describe('a live map session', () => {
  test('follows vmalloc, mmap, remap, a process write, munmap, vfree and exit frame by frame', async () => {
    const { session, settled } = inThreadSession();
    const boot = session.picture();
    const bootCounts = countKinds(boot);
    expect(bootCounts.vmalloc).toBe(0);
    expect(bootCounts['page-table']).toBe(0);
    expect(bootCounts.free).toBe(boot.freeFrames);

    session.pages = 4;
    session.vmalloc();
    const afterVmalloc = session.picture();
    expect(countKinds(afterVmalloc).vmalloc).toBe(4);
    expect(afterVmalloc.areas).toHaveLength(1);
    const areaPfns = afterVmalloc.areas[0]!.pfns;
    expect(
      afterVmalloc.frames.filter((frame) => frame.area === 0).map((frame) => frame.pfn),
    ).toEqual([...areaPfns].sort((a, b) => (a ?? 0) - (b ?? 0)));

    session.mmap();
    const afterMmap = session.picture();
    expect(afterMmap.processes).toHaveLength(1);
    expect(afterMmap.processes[0]!.vmas).toHaveLength(1);
    expect(afterMmap.processes[0]!.pteCount).toBe(0);

    session.remap();
    expect(session.log[0]?.text).toMatch(/remapPartial.*→ 0$/);
    const afterRemap = session.picture();
    const process = afterRemap.processes[0]!;
    expect(process.pteCount).toBe(4);
    expect(process.vmas[0]!.pages.map((page) => page.pfn)).toEqual(areaPfns);
    expect(countKinds(afterRemap)['page-table']).toBe(process.pageTableFrames.length);
    expect(countKinds(afterRemap)['page-table']).toBeGreaterThan(
      countKinds(afterVmalloc)['page-table'],
    );

    session.write();
    await settled();
    const afterWrite = session.picture();
    for (const pfn of areaPfns) expect(afterWrite.frames[pfn ?? -1]?.fill).toBe(1);
    expect(session.log[0]?.text).toBe(`mm ${process.id}: worker wrote ${4 * PAGE_SIZE} bytes`);

    session.munmap();
    const afterMunmap = session.picture();
    expect(afterMunmap.processes[0]!.vmas).toHaveLength(0);
    expect(countKinds(afterMunmap).vmalloc).toBe(4);

    session.vfree();
    expect(countKinds(session.picture()).vmalloc).toBe(0);

    session.exitProcess();
    const end = session.picture();
    expect(kindsOf(end)).toEqual(kindsOf(boot));
    expect(end.freeFrames).toBe(boot.freeFrames);
    session.kernel.checkInvariants();
  });

  test('uses the page size, ring query selectors and ring meta pages of the core', () => {
    expect(PAGE_BYTES).toBe(PAGE_SIZE);
    expect(RING_META_PAGES).toBe(RINGBUF_META_PAGES);
    expect(RING_QUERY).toEqual({
      availData: BPF_RB_AVAIL_DATA,
      ringSize: BPF_RB_RING_SIZE,
      consPos: BPF_RB_CONS_POS,
      prodPos: BPF_RB_PROD_POS,
    });
  });

  test("shows a ring's pages and positions as records are output and consumed", () => {
    const { session } = inThreadSession();
    const boot = session.picture();
    session.ringCreate();
    const made = session.picture();
    const area = made.areas[0]!;
    expect(area.nrPages).toBe(RINGBUF_META_PAGES + RING_DATA_BYTES / PAGE_SIZE);
    expect(area.ring).toEqual({
      dataBytes: RING_DATA_BYTES,
      consumerPos: 0,
      producerPos: 0,
      availData: 0,
    });
    expect(made.areas[0]!.pfns.every((pfn, i) => pfn === area.pfns[0]! + i)).toBe(true); // one run
    const step = Math.ceil((RING_RECORD_BYTES + RINGBUF_HDR_SZ) / 8) * 8;
    const fit = Math.floor((RING_DATA_BYTES - 1) / step);
    for (let i = 0; i < fit; i++) session.ringOutput();
    expect(session.log[0]?.text).toMatch(/output\(2000 bytes\) → 0$/);
    session.ringOutput();
    expect(session.log[0]?.text).toContain(`→ ${errnoText(-EAGAIN)} (full`);
    const full = session.picture().areas[0]!;
    expect(full.ring).toMatchObject({ producerPos: fit * step, availData: fit * step });
    const shapes = layoutMap(session.picture()).areas[0]!;
    expect(shapes.label).toMatch(new RegExp(`ring · ${fit * step} B waiting$`));
    expect(shapes.rows.slice(0, 4).map((r) => r.label.split(' → ')[0])).toEqual([
      'meta',
      'consumer pos 0',
      `producer pos ${fit * step}`,
      'data 0-4096',
    ]);
    expect(pageName(null, 5)).toBe('page 5');
    session.ringConsume();
    expect(session.log[0]?.text).toContain(
      `consume → ${fit} (${fit * RING_RECORD_BYTES} bytes read in place)`,
    );
    expect(session.picture().areas[0]!.ring).toMatchObject({
      consumerPos: fit * step,
      availData: 0,
    });
    session.ringOutput(); // the record goes to offset 0, the tail is skipped
    expect(session.log[0]?.text).toMatch(/→ 0$/);
    session.kernel.checkInvariants();
    session.vfree(); // on a ring's area: rb.free()
    expect(session.log[0]?.text).toMatch(/free\(\) \(its area is vfreed\)$/);
    expect(session.kernel.ringbuf(area.addr)).toBeNull();
    expect(session.picture().freeFrames).toBe(boot.freeFrames);
  });

  test('shows a vfreed area kept alive by a mapping, then released by munmap', () => {
    const { session } = inThreadSession();
    session.vmalloc();
    session.mmap();
    session.remap();
    session.vfree();
    const orphaned = session.picture();
    expect(orphaned.areas).toHaveLength(0);
    const kept = orphaned.frames.filter((frame) => frame.kind === 'vmalloc');
    expect(kept).toHaveLength(session.pages);
    expect(kept.every((frame) => frame.area === -1 && frame.mappedBy.length === 1)).toBe(true);
    session.munmap();
    expect(countKinds(session.picture()).vmalloc).toBe(0);
    session.dispose();
    session.kernel.checkInvariants();
  });

  test('reports a write to a page of a VMA with no PTE as a BUS_ADRERR fault', async () => {
    const { session, settled, messages } = inThreadSession();
    session.mmap();
    session.write();
    await settled();
    const fault = messages.find((message) => message.type === 'fault');
    expect(fault).toMatchObject({ type: 'fault', code: 'BUS_ADRERR', written: 0 });
    expect(session.log[0]?.ok).toBe(false);
    session.dispose();
  });

  test('logs a refused remap with its errno and changes nothing', () => {
    const { session } = inThreadSession();
    session.pages = 2;
    session.vmalloc();
    session.mmap();
    session.remap();
    const before = session.picture();
    session.remap();
    expect(session.log[0]?.text).toMatch(/→ -EBUSY$/);
    expect(session.picture()).toEqual(before);
    expect(errnoText(-22)).toBe('-EINVAL');
    expect(errnoText(0)).toBe('0');
    session.dispose();
  });

  test('reset ends every process and boots a fresh kernel', () => {
    const { session } = inThreadSession();
    const first = session.kernel;
    session.vmalloc();
    session.mmap();
    session.reset();
    expect(session.kernel).not.toBe(first);
    const picture = session.picture();
    expect(picture.areas).toHaveLength(0);
    expect(picture.processes).toHaveLength(0);
    expect(session.log).toHaveLength(1);
  });
});

describe('the layout of the map', () => {
  test('places every frame in the grid and links every PTE to its frame', () => {
    const { session } = inThreadSession();
    session.pages = 8;
    session.vmalloc();
    session.mmap();
    session.remap();
    const picture = session.picture();
    const geometry = layoutMap(picture);
    expect(geometry.frames).toHaveLength(picture.totalFrames);
    const positions = new Set(geometry.frames.map((frame) => `${frame.x},${frame.y}`));
    expect(positions.size).toBe(picture.totalFrames);
    for (const frame of geometry.frames) {
      expect(frame.x + CELL).toBeLessThanOrEqual(geometry.width);
      expect(frame.y + CELL).toBeLessThanOrEqual(geometry.height);
    }
    const userLinks = geometry.links.filter((link) => link.kind === 'user');
    expect(userLinks.map((link) => link.pfn)).toEqual(
      picture.processes[0]!.vmas[0]!.pages.map((page) => page.pfn),
    );
    expect(geometry.links.filter((link) => link.kind === 'kernel')).toHaveLength(8);
    expect(geometry.areas[0]!.rows.at(-1)?.guard).toBe(true);
    expect(MAX_ROWS).toBeGreaterThanOrEqual(8);
    session.dispose();
  });
});
