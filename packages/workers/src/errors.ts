/**
 * Errors of the main-thread API: failed kernel calls as Node-style system errors, and errors that
 * come back from a worker rebuilt with their own class and fields.
 *
 * Kernel counterpart: `errno` returned by a system call, and the signal (`SIGSEGV` or `SIGBUS`
 * with `si_code` and `si_addr`) that a faulting process reports to its parent.
 *
 * @module
 */
import {
  EACCES,
  EAGAIN,
  EBUSY,
  EEXIST,
  EFAULT,
  EINVAL,
  ENOENT,
  ENOMEM,
  ENOSPC,
  ENXIO,
  EOVERFLOW,
  EPERM,
  BusError,
  SegmentationFault,
} from '@sabvm/core';
import type { WireError } from './protocol.js';

const ERRNO_NAMES: ReadonlyMap<number, string> = new Map([
  [EPERM, 'EPERM'],
  [ENOENT, 'ENOENT'],
  [ENXIO, 'ENXIO'],
  [EAGAIN, 'EAGAIN'],
  [ENOMEM, 'ENOMEM'],
  [EACCES, 'EACCES'],
  [EFAULT, 'EFAULT'],
  [EBUSY, 'EBUSY'],
  [EEXIST, 'EEXIST'],
  [EINVAL, 'EINVAL'],
  [ENOSPC, 'ENOSPC'],
  [EOVERFLOW, 'EOVERFLOW'],
]);

/**
 * A kernel call made by the pool on the caller's behalf failed (`createAddressSpace`, `mmap`,
 * `remapPartial`, `munmap`, `mprotect`), or the pool refused an operation on a busy mapping.
 * Shaped like Node's system errors: `code` is the errno name, `errno` its negative value.
 */
export class SabvmError extends Error {
  /** The errno name, for example `'ENOMEM'`. */
  readonly code: string;
  /** The negative errno, as the kernel call returned it. */
  readonly errno: number;
  /** The kernel call that failed, for example `'remapPartial'`. */
  readonly syscall: string;

  /**
   * Context: any thread.
   * @param syscall - the failing call.
   * @param errno - its negative (or positive) errno.
   * @param detail - what the pool was doing, for the message.
   */
  constructor(syscall: string, errno: number, detail: string) {
    const positive = Math.abs(errno);
    const code = ERRNO_NAMES.get(positive) ?? `E${positive}`;
    super(`${syscall}: ${code} (${detail})`);
    this.name = 'SabvmError';
    this.code = code;
    this.errno = -positive;
    this.syscall = syscall;
  }
}

const BUILTIN_ERRORS: ReadonlyMap<string, ErrorConstructor> = new Map<string, ErrorConstructor>([
  ['TypeError', TypeError],
  ['RangeError', RangeError],
  ['SyntaxError', SyntaxError],
  ['ReferenceError', ReferenceError],
  ['EvalError', EvalError],
  ['URIError', URIError],
]);

function isSegvCode(code: string | undefined): code is SegmentationFault['code'] {
  return code === 'SEGV_MAPERR' || code === 'SEGV_ACCERR';
}

/**
 * Rebuild an error that a worker serialized: a `SegmentationFault` or `BusError` becomes a real
 * one (same `code`, `address`, message), a `SabvmError` a `SabvmError` (same `syscall`, `errno`), a built-in error its own class, anything
 * else an `Error` with the original `name`, `code` and `errno`. The worker's stack is kept.
 * Context: any thread; never throws.
 */
export function errorFromWire(wire: WireError): Error {
  let error: Error;
  if (wire.name === 'SegmentationFault' && isSegvCode(wire.code) && wire.address !== undefined) {
    error = new SegmentationFault(wire.code, wire.address);
  } else if (wire.name === 'BusError' && wire.code === 'BUS_ADRERR' && wire.address !== undefined) {
    error = new BusError(wire.code, wire.address);
  } else if (
    wire.name === 'SabvmError' &&
    typeof wire.errno === 'number' &&
    typeof wire.syscall === 'string'
  ) {
    error = new SabvmError(wire.syscall, wire.errno, '');
  } else {
    const Ctor = BUILTIN_ERRORS.get(wire.name) ?? Error;
    error = new Ctor(wire.message);
    if (error.name !== wire.name) {
      Object.defineProperty(error, 'name', {
        value: wire.name,
        configurable: true,
        writable: true,
      });
    }
    const extra: { code?: string; errno?: number } = {};
    if (wire.code !== undefined) extra.code = wire.code;
    if (wire.errno !== undefined) extra.errno = wire.errno;
    Object.assign(error, extra);
  }
  error.message = wire.message;
  if (wire.stack !== undefined) error.stack = wire.stack;
  return error;
}
