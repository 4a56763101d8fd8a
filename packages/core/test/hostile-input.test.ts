/**
 * Hostile input: objects that look right but fight back — getters that throw, change their value
 * between reads or call back into the kernel; typed arrays whose methods or properties are
 * replaced; forged handles; conversions (`valueOf`) that must never run. Each must be refused or
 * handled without a hang, a lock left held, a protection bypassed or a byte written out of place.
 */
import { describe, expect, it } from 'vitest';
import {
  AddressSpace,
  EINVAL,
  Kernel,
  MAP_SHARED,
  PAGE_SIZE,
  PROT_READ,
  PROT_WRITE,
  SegmentationFault,
  Vma,
  remapPartial,
  remapVmallocRange,
} from '../src/index.js';
import { diffSnapshots, snapshot } from './helpers/reliability.js';

const MiB = 2 ** 20;
const RW = PROT_READ | PROT_WRITE;

function world(): {
  k: Kernel;
  mm: AddressSpace;
  ro: number;
  rw: number;
  kaddr: number;
} {
  const k = Kernel.boot({ memoryBytes: 8 * MiB });
  const mm = k.createAddressSpace()!;
  const ro = mm.mmap(0, 4 * PAGE_SIZE, PROT_READ, MAP_SHARED);
  const rw = mm.mmap(0, 4 * PAGE_SIZE, RW, MAP_SHARED);
  const kaddr = k.vmallocUser(4 * PAGE_SIZE)!;
  return { k, mm, ro, rw, kaddr };
}

/** A `Vma`-like object with the prototype of `Vma` and these own properties. */
function forged(props: PropertyDescriptorMap): Vma {
  return Object.create(Vma.prototype, props) as Vma;
}

function real(v: Vma): { mem: unknown; slot: number; gen: number } {
  const r = v as unknown as { mem: unknown; slot: number; gen: number };
  return { mem: r.mem, slot: r.slot, gen: r.gen };
}

describe('remapPartial reads a VMA handle once, before any lock, and never runs caller code under one', () => {
  it('a handle whose getter throws gets -EINVAL, pins nothing, and the area can still be freed', () => {
    const { k, mm, ro, kaddr } = world();
    const v = real(mm.findVma(ro)!);
    const before = snapshot(k);
    for (const broken of ['mem', 'slot', 'gen']) {
      const props: PropertyDescriptorMap = {
        mem: { value: v.mem },
        slot: { value: v.slot },
        gen: { value: v.gen },
      };
      props[broken] = {
        get(): never {
          throw new Error(`${broken} getter`);
        },
      };
      expect(remapPartial(forged(props), ro, kaddr, PAGE_SIZE)).toBe(-EINVAL);
      expect(remapVmallocRange(forged(props), kaddr, 0)).toBe(-EINVAL);
    }
    expect(diffSnapshots(before, snapshot(k))).toEqual([]);
    k.vfree(kaddr); // returns: nothing was left pinned
    expect(k.findVmArea(kaddr)).toBeNull();
    k.checkInvariants();
  });

  it("a slot that changes between reads cannot give a read-only VMA another VMA's protection", () => {
    const { k, mm, ro, rw, kaddr } = world();
    const a = real(mm.findVma(ro)!);
    const b = real(mm.findVma(rw)!);
    let reads = 0;
    const flipping = forged({
      mem: { value: a.mem },
      gen: { value: a.gen },
      // the read-only VMA's slot on the first read, the writable one's afterwards
      slot: {
        get: () => (reads++ === 0 ? a.slot : b.slot),
      },
    });
    const result = remapPartial(flipping, ro, kaddr, 4 * PAGE_SIZE);
    expect(result).toBe(0); // the handle as first read: the read-only VMA, mapped read-only
    expect(reads).toBe(1);
    for (const pte of mm.pagemap()) expect(pte.prot).toBe(mm.findVma(pte.uaddr)!.prot);
    expect(() => mm.segments(ro, 4, { write: true })).toThrow(SegmentationFault);
    k.checkInvariants();
  });

  it('a getter that calls back into the kernel leaves no lock held', () => {
    const { k, mm, ro, kaddr } = world();
    const other = k.createAddressSpace()!;
    const v = real(mm.findVma(ro)!);
    let inner = 0;
    let reads = 0;
    const reentrant = forged({
      mem: { value: v.mem },
      // every read of the slot makes a kernel call of its own (and fails on the second read)
      slot: {
        get: () => {
          inner = other.mmap(0, PAGE_SIZE, PROT_READ, MAP_SHARED);
          if (reads++ > 0) throw new Error('slot read twice');
          return v.slot;
        },
      },
      gen: { value: v.gen },
    });
    expect(remapPartial(reentrant, ro, kaddr, PAGE_SIZE)).toBe(0);
    expect(inner).toBeGreaterThan(0);
    // both address spaces' locks are free: more calls go through at once
    expect(other.mmap(0, PAGE_SIZE, PROT_READ, MAP_SHARED)).toBeGreaterThan(0);
    expect(mm.munmap(ro, PAGE_SIZE)).toBe(0);
    k.checkInvariants();
  });
});

describe('mm.write and writeKernel take the intrinsic view of the bytes', () => {
  it('a replaced subarray, length or buffer on the caller array cannot write outside the range', () => {
    const { k, mm, rw, kaddr } = world();
    expect(remapPartial(mm.findVma(rw)!, rw, kaddr, 4 * PAGE_SIZE)).toBe(0);
    const neighbour = k.vmallocUser(PAGE_SIZE)!;
    k.writeKernel(neighbour, new Uint8Array(PAGE_SIZE).fill(0x33));
    const before = snapshot(k);
    const tricks: [string, (b: Uint8Array) => void][] = [
      ['subarray', (b) => (b.subarray = () => new Uint8Array(8192).fill(0xee))],
      ['length', (b) => Object.defineProperty(b, 'length', { value: 8192 })],
      ['buffer', (b) => Object.defineProperty(b, 'buffer', { value: new ArrayBuffer(8192) })],
      ['byteOffset', (b) => Object.defineProperty(b, 'byteOffset', { value: 4096 })],
    ];
    for (const [name, trick] of tricks) {
      const one = new Uint8Array([0x42]);
      trick(one);
      mm.write(rw + 4 * PAGE_SIZE - 1, one); // the last byte of the mapping
      k.writeKernel(kaddr + 4 * PAGE_SIZE - 1, one);
      expect(mm.read(rw + 4 * PAGE_SIZE - 1, 1)[0], name).toBe(0x42);
    }
    // exactly one byte changed, in the mapped area; the neighbouring area is untouched
    const changes = diffSnapshots(before, snapshot(k));
    expect(changes.length).toBeLessThanOrEqual(1);
    expect(k.readKernel(neighbour, PAGE_SIZE).every((x) => x === 0x33)).toBe(true);
    expect(k.readKernel(kaddr, 4 * PAGE_SIZE - 1).every((x) => x === 0)).toBe(true);
    // an object with only the prototype of Uint8Array is not bytes
    const fake = Object.create(Uint8Array.prototype) as Uint8Array;
    expect(() => {
      mm.write(rw, fake);
    }).toThrow(TypeError);
    expect(() => {
      k.writeKernel(kaddr, fake);
    }).toThrow(TypeError);
    k.checkInvariants();
  });
});

describe('forged address-space handles are refused at once', () => {
  it('the constructor refuses a slot or generation that is not one, instead of spinning', () => {
    const { k } = world();
    const Ctor = AddressSpace as unknown as new (
      mem: unknown,
      slot: number,
      gen: number,
    ) => AddressSpace;
    for (const slot of [NaN, -1, 1.5, 1e9, k.layout.maxAddressSpaces])
      expect(() => new Ctor(k.mem, slot, 1)).toThrow(TypeError);
    expect(() => new Ctor(k.mem, 0, NaN)).toThrow(TypeError);
    expect(() => new Ctor({}, 0, 1)).toThrow(TypeError);
    // a well-formed handle of a slot that is not live gets the destroyed answers
    const idle = new Ctor(k.mem, k.layout.maxAddressSpaces - 1, 1);
    expect(idle.mmap(0, PAGE_SIZE, PROT_READ, MAP_SHARED)).toBe(-EINVAL);
    k.checkInvariants();
  });

  it('an object with only the prototype, or a subclass that fakes its slot, reaches no kernel path', () => {
    const { k, mm, ro } = world();
    const fake = Object.create(AddressSpace.prototype) as AddressSpace;
    expect(() => fake.mmap(0, PAGE_SIZE, PROT_READ, MAP_SHARED)).toThrow(TypeError);
    expect(() => fake.segments(ro, 4)).toThrow(TypeError);
    const slots: number[] = [];
    class Sneaky extends AddressSpace {
      override get slot(): number {
        slots.push(1);
        return NaN;
      }
    }
    const Ctor = Sneaky as unknown as new (mem: unknown, slot: number, gen: number) => AddressSpace;
    const sneaky = new Ctor(k.mem, mm.id - 1, (mm as unknown as { gen: number }).gen);
    expect(sneaky.mmap(0, PAGE_SIZE, PROT_READ, MAP_SHARED)).toBeGreaterThan(0);
    expect(slots).toEqual([]); // the kernel paths never asked the overridden getter
    k.checkInvariants();
  });
});

describe('getUser32 and getUser32v refuse non-numbers without converting them', () => {
  it('valueOf never runs, and the answer is a TypeError', () => {
    const { k, mm, rw, kaddr } = world();
    expect(remapPartial(mm.findVma(rw)!, rw, kaddr, 4 * PAGE_SIZE)).toBe(0);
    let conversions = 0;
    const tricky = {
      valueOf: (): number => {
        conversions++;
        return rw;
      },
    } as unknown as number;
    expect(() => mm.getUser32(tricky)).toThrow(TypeError);
    expect(() => mm.getUser32v([tricky])).toThrow(TypeError);
    expect(mm.getUser32(rw)).toBe(0); // a cached translation now exists
    expect(() => mm.getUser32(tricky)).toThrow(TypeError);
    expect(() => mm.getUser32v([rw, tricky])).toThrow(TypeError);
    expect(conversions).toBe(0);
    k.checkInvariants();
  });
});
