/**
 * Where the live memory map draws each thing: a pure function from a {@link MemoryPicture} to
 * positioned SVG shapes, so the Vue component only loops over them.
 *
 * ```
 *   user processes            physical memory             vmalloc areas (kernel)
 *  ┌───────────────┐        ┌─┬─┬─┬─┬─┬─┬─┬─┐           ┌────────────────┐
 *  │ mm 1          │        │ │ │ │ │ │ │ │ │           │ 0x1000…  4 pg  │
 *  │ VMA 0x10000   │  PTE   ├─┼─┼─┼─┼─┼─┼─┼─┤  kernel   │ ■ page 0 → 37  │
 *  │ ■ 0x10000 ────┼───────►│ │█│ │ │ │ │ │ │◄──PTE─────┤ ■ page 1 → 38  │
 *  │ ■ 0x11000     │        └─┴─┴─┴─┴─┴─┴─┴─┘           │ ▨ guard        │
 *  └───────────────┘                                    └────────────────┘
 * ```
 *
 * @module
 */
import {
  PAGE_BYTES,
  RING_META_PAGES,
  type FrameKindName,
  type MemoryPicture,
  type RingPicture,
} from './picture.js';

/** Side of one frame or page cell, px. */
export const CELL = 14;
/** Distance between cells, px. */
export const PITCH = 18;
const TOP = 28;
const COLUMN_WIDTH = 200;
const LINK_GAP = 64;
const HEADER = 18;
/** Rows of a VMA or area drawn at most; the rest is summarised in one line. */
export const MAX_ROWS = 16;

/** Fill colours of frames by owner kind (vmalloc frames take their area's colour). */
export const KIND_COLOURS: Readonly<Record<FrameKindName, string>> = {
  free: '#e8eaed',
  meta: '#5f6b7a',
  vmalloc: '#8e7cc3',
  'page-table': '#f0a030',
  'in-flight': '#c9cdf5',
  deferred: '#9fd8cb',
  slab: '#d98c6a',
};
/** Colour of a vmalloc frame whose area was freed while a user mapping still pins it. */
export const ORPHAN_COLOUR = '#b9a7d8';
const AREA_COLOURS = [
  '#3d85c6',
  '#45a86b',
  '#c2569b',
  '#1aa3a3',
  '#d9652b',
  '#7a5fc0',
  '#8a9a1f',
  '#c04848',
];
const PROCESS_COLOURS = ['#1f5fa8', '#2e8540', '#a1337a', '#0f7f7f', '#b3541e', '#5b3fa8'];

/** Colour of the area at `index` in the picture. */
export function areaColour(index: number): string {
  return AREA_COLOURS[index % AREA_COLOURS.length] ?? '#888888';
}

/** Colour of the lines of the address space with id `id`. */
export function processColour(id: number): string {
  return PROCESS_COLOURS[id % PROCESS_COLOURS.length] ?? '#333333';
}

/** One frame's square in the grid. */
export interface FrameShape {
  readonly pfn: number;
  readonly x: number;
  readonly y: number;
  readonly kind: FrameKindName;
  readonly owner: number;
  readonly colour: string;
  /** Height of the "data" bar drawn inside the cell, px (0 when the frame holds only zeros). */
  readonly fillHeight: number;
  readonly mapped: boolean;
  readonly title: string;
}

/**
 * The label of page `page` of an area: `page N`, or for a ring its role — the meta page, the
 * consumer and producer positions (their values), and data pages with the offsets they hold.
 */
export function pageName(ring: RingPicture | null, page: number): string {
  if (ring === null) return `page ${page}`;
  if (page === 0) return 'meta';
  if (page === 1) return `consumer pos ${ring.consumerPos}`;
  if (page === 2) return `producer pos ${ring.producerPos}`;
  const first = (page - RING_META_PAGES) * PAGE_BYTES;
  return `data ${first}-${first + PAGE_BYTES}`;
}

/** One page of a VMA or an area: a small square and its label. */
export interface PageRowShape {
  readonly x: number;
  readonly y: number;
  readonly label: string;
  readonly colour: string;
  /** The frame this page points at, `null` for a page with no PTE (or the guard page). */
  readonly pfn: number | null;
  readonly guard: boolean;
}

/** One VMA's box inside its process, with a row per page. */
export interface VmaShape {
  readonly mmId: number;
  readonly start: number;
  readonly x: number;
  readonly y: number;
  readonly width: number;
  readonly height: number;
  readonly label: string;
  readonly rows: readonly PageRowShape[];
}

/** One address space's box in the left column. */
export interface ProcessShape {
  readonly id: number;
  readonly x: number;
  readonly y: number;
  readonly width: number;
  readonly height: number;
  readonly label: string;
  readonly colour: string;
  readonly vmas: readonly VmaShape[];
}

/** One vmalloc area's box in the right column, guard page last. */
export interface AreaShape {
  readonly addr: number;
  readonly x: number;
  readonly y: number;
  readonly width: number;
  readonly height: number;
  readonly label: string;
  readonly colour: string;
  readonly rows: readonly PageRowShape[];
}

/** A line from a page to the frame behind it. */
export interface LinkShape {
  /** `user` for a user PTE (process → frame), `kernel` for a vmalloc mapping (area → frame). */
  readonly kind: 'user' | 'kernel';
  readonly pfn: number;
  readonly path: string;
  readonly colour: string;
}

/** Everything the map draws, in SVG user units (px at scale 1). */
export interface MapGeometry {
  readonly width: number;
  readonly height: number;
  readonly columns: { readonly processes: number; readonly grid: number; readonly areas: number };
  readonly frames: readonly FrameShape[];
  readonly processes: readonly ProcessShape[];
  readonly areas: readonly AreaShape[];
  readonly links: readonly LinkShape[];
}

/** `0x…` of an address. */
export function hex(value: number): string {
  return `0x${value.toString(16)}`;
}

function protText(prot: number): string {
  return `${prot & 1 ? 'r' : '-'}${prot & 2 ? 'w' : '-'}`;
}

function link(
  kind: 'user' | 'kernel',
  pfn: number,
  x1: number,
  y1: number,
  x2: number,
  y2: number,
  colour: string,
): LinkShape {
  const mid = (x1 + x2) / 2;
  return { kind, pfn, colour, path: `M ${x1} ${y1} C ${mid} ${y1}, ${mid} ${y2}, ${x2} ${y2}` };
}

/** Lay the picture out. Context: any thread; pure. */
export function layoutMap(picture: MemoryPicture): MapGeometry {
  const gridCols = picture.totalFrames <= 256 ? 16 : 32;
  const gridX = COLUMN_WIDTH + LINK_GAP;
  const gridWidth = gridCols * PITCH;
  const areaX = gridX + gridWidth + LINK_GAP;
  const frameCentre = (pfn: number): [number, number] => [
    gridX + (pfn % gridCols) * PITCH + CELL / 2,
    TOP + Math.floor(pfn / gridCols) * PITCH + CELL / 2,
  ];

  const frames: FrameShape[] = picture.frames.map((frame) => {
    const colour =
      frame.kind === 'vmalloc'
        ? frame.area >= 0
          ? areaColour(frame.area)
          : ORPHAN_COLOUR
        : KIND_COLOURS[frame.kind];
    const owner =
      frame.kind === 'vmalloc' && frame.area < 0 ? 'vfreed area, still mapped' : frame.kind;
    return {
      pfn: frame.pfn,
      x: gridX + (frame.pfn % gridCols) * PITCH,
      y: TOP + Math.floor(frame.pfn / gridCols) * PITCH,
      kind: frame.kind,
      owner: frame.owner,
      colour,
      fillHeight: Math.round(frame.fill * (CELL - 4)),
      mapped: frame.mappedBy.length > 0,
      title: `pfn ${frame.pfn}: ${owner}, refcount ${frame.refcount}${frame.mappedBy.length > 0 ? `, mapped by mm ${frame.mappedBy.join(', ')}` : ''}`,
    };
  });

  const links: LinkShape[] = [];
  const processes: ProcessShape[] = [];
  let y = TOP;
  for (const process of picture.processes) {
    const colour = processColour(process.id);
    const top = y;
    y += HEADER;
    const vmas: VmaShape[] = [];
    for (const vma of process.vmas) {
      const vmaTop = y;
      y += HEADER;
      const rows: PageRowShape[] = [];
      for (const page of vma.pages.slice(0, MAX_ROWS)) {
        const row: PageRowShape = {
          x: COLUMN_WIDTH - 12 - CELL,
          y,
          label: hex(page.uaddr),
          colour: page.pfn === null ? KIND_COLOURS.free : (frames[page.pfn]?.colour ?? colour),
          pfn: page.pfn,
          guard: false,
        };
        rows.push(row);
        if (page.pfn !== null) {
          const [fx, fy] = frameCentre(page.pfn);
          links.push(link('user', page.pfn, row.x + CELL, row.y + CELL / 2, fx, fy, colour));
        }
        y += PITCH;
      }
      if (vma.pages.length > MAX_ROWS) y += PITCH;
      const label = `${hex(vma.start)}-${hex(vma.end)} ${protText(vma.prot)}s`;
      vmas.push({
        mmId: process.id,
        start: vma.start,
        x: 6,
        y: vmaTop,
        width: COLUMN_WIDTH - 12,
        height: y - vmaTop + 2,
        label,
        rows,
      });
      y += 6;
    }
    const label = `process: mm ${process.id} · ${process.pteCount} PTEs · ${process.pageTableFrames.length} table frames`;
    processes.push({
      id: process.id,
      x: 0,
      y: top,
      width: COLUMN_WIDTH,
      height: y - top + 4,
      label,
      colour,
      vmas,
    });
    y += 14;
  }
  const leftHeight = y;

  const areas: AreaShape[] = [];
  y = TOP;
  picture.areas.forEach((area, index) => {
    const colour = areaColour(index);
    const top = y;
    y += HEADER;
    const rows: PageRowShape[] = [];
    area.pfns.slice(0, MAX_ROWS).forEach((pfn, page) => {
      const row: PageRowShape = {
        x: areaX + 8,
        y,
        label: `${pageName(area.ring, page)} → ${pfn === null ? '—' : `pfn ${pfn}`}`,
        colour,
        pfn,
        guard: false,
      };
      rows.push(row);
      if (pfn !== null) {
        const [fx, fy] = frameCentre(pfn);
        links.push(link('kernel', pfn, row.x, row.y + CELL / 2, fx, fy, colour));
      }
      y += PITCH;
    });
    if (area.pfns.length > MAX_ROWS) y += PITCH;
    rows.push({
      x: areaX + 8,
      y,
      label: 'guard page',
      colour: KIND_COLOURS.free,
      pfn: null,
      guard: true,
    });
    y += PITCH;
    const user = (area.flags & 0x8) !== 0 ? ' user' : '';
    const label =
      area.ring === null
        ? `${hex(area.addr)} ${area.nrPages} pg${user}`
        : `${hex(area.addr)} ring · ${area.ring.availData} B waiting`;
    areas.push({
      addr: area.addr,
      x: areaX,
      y: top,
      width: COLUMN_WIDTH,
      height: y - top + 2,
      label,
      colour,
      rows,
    });
    y += 10;
  });
  const rightHeight = y;

  const gridHeight = TOP + Math.ceil(picture.totalFrames / gridCols) * PITCH;
  return {
    width: areaX + COLUMN_WIDTH,
    height: Math.max(gridHeight, leftHeight, rightHeight) + 8,
    columns: { processes: 0, grid: gridX, areas: areaX },
    frames,
    processes,
    areas,
    links,
  };
}
