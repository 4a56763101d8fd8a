/**
 * The BPF ring buffer: reserve a record and write it in place, discard one, copy one in with
 * `output`, the order the consumer sees them in, a reservation holding back the records after it,
 * a full ring, the positions, and the ring in `vmallocinfo`.
 */
import {
  BPF_RB_AVAIL_DATA,
  BPF_RB_CONS_POS,
  BPF_RB_PROD_POS,
  BPF_RB_RING_SIZE,
  Kernel,
  PAGE_SIZE,
} from '@sabvm/core';
import { consolePrint, type Print } from './print.js';

/** Run the example. */
export function ringbufTour(print: Print = consolePrint): void {
  // #region example
  const kernel = Kernel.boot({ memoryBytes: 16 * 2 ** 20 });
  const rb = kernel.ringbufCreate(4 * PAGE_SIZE)!; // 16 KiB of data: a power of two, >= 2 pages
  print('ring size', rb.query(BPF_RB_RING_SIZE)); // 16384
  print('largest record', rb.maxRecordBytes); // 8184: half the data, less the 8-byte header

  const rec = rb.reserve(12)!; // bpf_ringbuf_reserve: 12 bytes, written in place
  new DataView(rec.data.buffer, rec.data.byteOffset, 12).setFloat64(0, Math.PI, true);
  rb.reserve(100)!.discard(); // bpf_ringbuf_discard: the consumer never sees it
  print('output', rb.output(new TextEncoder().encode('hello'))); // 0: reserve + copy + submit
  // `rec` is still reserved: it holds back every record after it, as in Linux
  print(
    'held back',
    rb.consume(() => undefined),
  ); // 0
  rec.submit(); // bpf_ringbuf_submit
  print('reserved bytes', rb.query(BPF_RB_AVAIL_DATA)); // 24 + 112 + 16: headers, 8-byte rounding
  const lengths: number[] = [];
  print(
    'consumed',
    rb.consume((view) => void lengths.push(view.length)),
  ); // 2, in reservation order
  print('lengths', lengths); // [12, 5]
  print('positions', [rb.query(BPF_RB_CONS_POS), rb.query(BPF_RB_PROD_POS)]); // [152, 152]

  let records = 0;
  while (rb.output(new Uint8Array(1000)) === 0) records++; // no consumer: the ring fills up
  print('records until full', records); // 16: a 17th would not fit before the consumer's position
  print('full', rb.output(new Uint8Array(1000))); // -EAGAIN (11), at once
  print(
    'drained',
    rb.consume(() => undefined),
  ); // 16

  const same = kernel.ringbuf(rb.kaddr); // the same ring from any attached thread, by its kaddr
  print('same ring', same?.query(BPF_RB_PROD_POS) === rb.query(BPF_RB_PROD_POS)); // true
  print(
    'vmallocinfo',
    kernel
      .vmallocinfo()
      .split('\n')
      .find((line) => line.includes('bpf_ringbuf')),
  ); // 3 pages of positions + 4 of data, one contiguous run, and its guard page
  rb.free(); // every handle refuses calls from now on; the area is vfreed
  print('after free', kernel.ringbuf(rb.kaddr)); // null
  // #endregion example
  kernel.checkInvariants();
}
