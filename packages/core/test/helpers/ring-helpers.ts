/**
 * Shared helpers of the ring-buffer tests: the ring's words read and written through the kernel
 * mapping (`readKernel`/`writeKernel`, as a debugger would), and record payloads that say who wrote
 * them and in which order, so a consumer can check every record arrived once, in order, intact.
 */
import {
  BPF_RB_CONS_POS,
  BPF_RB_PROD_POS,
  PAGE_SIZE,
  RINGBUF_PGOFF,
  type Kernel,
  type RingBuf,
} from '../../src/index.js';
import { RingCons, RingProd } from '../../src/layout.js';

/** Kernel address of the consumer page and the producer page of a ring. */
export function positionPages(rb: RingBuf): { cons: number; prod: number } {
  const cons = rb.kaddr + RINGBUF_PGOFF * PAGE_SIZE;
  return { cons, prod: cons + PAGE_SIZE };
}

/** One Int32 word of a ring, through the kernel mapping. */
export function ringWord(k: Kernel, kaddr: number): number {
  return new Int32Array(k.readKernel(kaddr, 4).buffer)[0]!;
}

/** Move an empty ring's positions (consumer, producer, pending) to `pos` (mod 2^32). */
export function setPositions(k: Kernel, rb: RingBuf, pos: number): void {
  const { cons, prod } = positionPages(rb);
  const word = new Uint8Array(new Int32Array([pos | 0]).buffer);
  k.writeKernel(cons, word);
  k.writeKernel(prod + RingProd.PRODUCER_POS * 4, word);
  k.writeKernel(prod + RingProd.PENDING_POS * 4, word);
  if (rb.query(BPF_RB_CONS_POS) !== pos >>> 0 || rb.query(BPF_RB_PROD_POS) !== pos >>> 0)
    throw new Error('setPositions: the ring does not report the positions written');
}

/** The wake-up sequence word: it moves each time a producer wakes the consumer. */
export function wakeSeq(k: Kernel, rb: RingBuf): number {
  return ringWord(k, positionPages(rb).prod + RingProd.WAKE_SEQ * 4);
}

/** Count a consumer in WAITERS (`by` 1) or uncount it (-1), as a poll does before its last look. */
export function countWaiter(k: Kernel, rb: RingBuf, by: 1 | -1): void {
  const at = positionPages(rb).cons + RingCons.WAITERS * 4;
  const word = new Uint8Array(new Int32Array([ringWord(k, at) + by]).buffer);
  k.writeKernel(at, word);
}

/** Fill `data` with the payload of record `seq` of producer `id`: id, seq, then a pattern. */
export function fillRecord(data: Uint8Array, id: number, seq: number): void {
  const dv = new DataView(data.buffer, data.byteOffset, data.byteLength);
  if (data.length >= 8) {
    dv.setUint32(0, id, true);
    dv.setUint32(4, seq, true);
  }
  for (let i = 8; i < data.length; i++) data[i] = (id * 31 + seq * 7 + i) & 0xff;
}

/** The [id, seq] of a record made by {@link fillRecord}, or throws when its bytes are not intact. */
export function readRecord(data: Uint8Array): [number, number] {
  const dv = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const id = dv.getUint32(0, true);
  const seq = dv.getUint32(4, true);
  for (let i = 8; i < data.length; i++) {
    if (data[i] !== ((id * 31 + seq * 7 + i) & 0xff))
      throw new Error(`record ${id}/${seq} is damaged at byte ${i}`);
  }
  return [id, seq];
}
