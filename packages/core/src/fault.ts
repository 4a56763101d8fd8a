/**
 * `SegmentationFault` and `BusError`: what a user (or kernel) access to a bad address throws.
 *
 * Kernel counterpart: `arch/x86/mm/fault.c` delivering `SIGSEGV` with `si_code` `SEGV_MAPERR`
 * (no VMA) or `SEGV_ACCERR` (a VMA without the needed permission), and `SIGBUS` with
 * `BUS_ADRERR` (a permitted access to a page the VMA's fault path cannot fill: a driver mapping,
 * `VM_MIXEDMAP` with no fault handler), each with `si_addr`.
 *
 * @module
 */

/** The detail of a fault through an address space that was destroyed. */
export const MM_DESTROYED = 'the address space was destroyed';

/** `si_code` of a {@link SegmentationFault}. */
export type SegvCode = 'SEGV_MAPERR' | 'SEGV_ACCERR';

/** `si_code` of a {@link BusError}. */
export type BusCode = 'BUS_ADRERR';

/**
 * Thrown by `read`, `write`, `segments`, `readKernel` and `writeKernel` when an address has no
 * mapping (`SEGV_MAPERR`: no VMA covers it), or the VMA's protection forbids the access (a write
 * without `PROT_WRITE`, any access to `PROT_NONE`: `SEGV_ACCERR`), whether or not the page has a
 * PTE.
 */
export class SegmentationFault extends Error {
  /** `SEGV_MAPERR` or `SEGV_ACCERR`. */
  readonly code: SegvCode;
  /** The first faulting address (`si_addr`). */
  readonly address: number;

  /**
   * @param detail - why, when more is known than the code says (for example
   *   {@link MM_DESTROYED}); appended to the message in parentheses.
   */
  constructor(code: SegvCode, address: number, access: 'read' | 'write' = 'read', detail?: string) {
    super(
      `segmentation fault (${code}): ${access} at 0x${address.toString(16)} ${
        code === 'SEGV_MAPERR' ? 'has no mapping' : 'is not permitted by the mapping'
      }${detail === undefined ? '' : ` (${detail})`}`,
    );
    this.name = 'SegmentationFault';
    this.code = code;
    this.address = address;
  }
}

/**
 * Thrown by the user accessors for an access the VMA permits to a page that has no PTE: nothing
 * was remapped there, and a driver's mapping has no fault handler to fill it (Linux sends
 * `SIGBUS` with `BUS_ADRERR`).
 */
export class BusError extends Error {
  /** Always `BUS_ADRERR`. */
  readonly code: BusCode;
  /** The first faulting address (`si_addr`). */
  readonly address: number;

  constructor(code: BusCode, address: number, access: 'read' | 'write' = 'read') {
    super(
      `bus error (${code}): ${access} at 0x${address.toString(16)} is inside a mapping, but no ` +
        'page is mapped there (nothing was remapped into it)',
    );
    this.name = 'BusError';
    this.code = code;
    this.address = address;
  }
}

/**
 * A value as an error message shows it, without converting it: a number as itself, anything else
 * by its type (`String(x)` would run a caller's `toString` or `Symbol.toPrimitive`).
 */
export function showValue(value: unknown): string {
  return typeof value === 'number' ? String(value) : `a value of type ${typeof value}`;
}
