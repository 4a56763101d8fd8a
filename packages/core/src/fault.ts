/**
 * `SegmentationFault`: what a user (or kernel) access to a bad address throws.
 *
 * Kernel counterpart: `arch/x86/mm/fault.c` delivering `SIGSEGV` with `si_code` `SEGV_MAPERR`
 * (no mapping) or `SEGV_ACCERR` (mapping without the needed permission) and `si_addr`.
 *
 * @module
 */

/** The detail of a fault through an address space that was destroyed. */
export const MM_DESTROYED = 'the address space was destroyed';

/** `si_code` of a {@link SegmentationFault}. */
export type SegvCode = 'SEGV_MAPERR' | 'SEGV_ACCERR';

/**
 * Thrown by `read`, `write`, `segments`, `readKernel` and `writeKernel` when an address has no
 * mapping (`SEGV_MAPERR`) or a write meets a mapping without `PROT_WRITE`, or any access meets
 * `PROT_NONE` (`SEGV_ACCERR`).
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
 * A value as an error message shows it, without converting it: a number as itself, anything else
 * by its type (`String(x)` would run a caller's `toString` or `Symbol.toPrimitive`).
 */
export function showValue(value: unknown): string {
  return typeof value === 'number' ? String(value) : `a value of type ${typeof value}`;
}
