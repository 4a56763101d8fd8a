import { BusError, EBUSY, ENOMEM, SegmentationFault } from '@sabvm/core';
import { describe, expect, it } from 'vitest';
import { errorFromWire, SabvmError, type WireError } from '../src/index.js';

function wire(fields: Partial<WireError>): WireError {
  return {
    name: 'Error',
    message: 'm',
    stack: undefined,
    code: undefined,
    address: undefined,
    errno: undefined,
    ...fields,
  };
}

describe('errorFromWire', () => {
  it('rebuilds a SegmentationFault with its code, address, message and stack', () => {
    const original = new SegmentationFault('SEGV_ACCERR', 0xfff01388, 'write');
    const rebuilt = errorFromWire(
      wire({
        name: original.name,
        message: original.message,
        stack: original.stack,
        code: original.code,
        address: original.address,
      }),
    );
    expect(rebuilt).toBeInstanceOf(SegmentationFault);
    expect(rebuilt).toMatchObject({
      code: 'SEGV_ACCERR',
      address: 0xfff01388,
      message: original.message,
    });
    expect(rebuilt.stack).toBe(original.stack);
  });

  it('rebuilds a BusError with its code and address', () => {
    const original = new BusError('BUS_ADRERR', 0xfff02000, 'read');
    const rebuilt = errorFromWire(
      wire({
        name: original.name,
        message: original.message,
        stack: original.stack,
        code: original.code,
        address: original.address,
      }),
    );
    expect(rebuilt).toBeInstanceOf(BusError);
    expect(rebuilt).toMatchObject({ code: 'BUS_ADRERR', address: 0xfff02000 });
  });

  it('keeps a SegmentationFault-named error without a valid code a plain Error', () => {
    const rebuilt = errorFromWire(
      wire({ name: 'SegmentationFault', code: 'SEGV_OTHER', address: 4096 }),
    );
    expect(rebuilt).not.toBeInstanceOf(SegmentationFault);
    expect(rebuilt.name).toBe('SegmentationFault');
  });

  it('rebuilds built-in error classes and keeps the name, code and errno of others', () => {
    expect(errorFromWire(wire({ name: 'RangeError' }))).toBeInstanceOf(RangeError);
    const custom = errorFromWire(
      wire({ name: 'SabvmError', code: 'EBUSY', errno: -EBUSY, message: 'busy' }),
    );
    expect(custom).toMatchObject({
      name: 'SabvmError',
      code: 'EBUSY',
      errno: -EBUSY,
      message: 'busy',
    });
  });
});

describe('SabvmError', () => {
  it('looks like a Node system error', () => {
    const e = new SabvmError('mmap', -ENOMEM, 'no room');
    expect(e).toBeInstanceOf(Error);
    expect(e).toMatchObject({
      name: 'SabvmError',
      code: 'ENOMEM',
      errno: -ENOMEM,
      syscall: 'mmap',
    });
    expect(e.message).toBe('mmap: ENOMEM (no room)');
    expect(new SabvmError('x', 999, 'd').code).toBe('E999');
  });
});
