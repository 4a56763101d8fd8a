/**
 * The worker of the `ring` suite's fresh-worker stream: started for one run, it writes `count`
 * records the run's way (stream-protocol.ts), as the user's program would, then exits.
 *
 * @module
 */
import { parentPort, workerData } from 'node:worker_threads';
import { Kernel, ringbufBulkStride } from '@sabvm/core';
import {
  RAW_HEAD,
  RAW_PUBLISH,
  RAW_RING_BYTES,
  RAW_SLOTS,
  RAW_SLOTS_AT,
  RAW_TAIL,
  SMALL_PACK,
  SMALL_RECORD,
  STREAM_BATCH,
  STREAM_BULK,
  STREAM_RECORD,
  StreamMode,
  VAR_SLOT,
  VAR_WRAP,
  varLength,
  varRawBytes,
  type StreamWorkerData,
} from './stream-protocol.js';

const { mode, count, times, handle, ring, raw, slot } = workerData as StreamWorkerData;
const started = new Float64Array(times);
const port = parentPort!;

/** sabvm: each record written in place where batchReserve says; the detach publishes the last. */
function sabvm(): void {
  started[0] = performance.timeOrigin + performance.now(); // the attach is the program's too
  const kernel = Kernel.attach(handle!);
  const rb = kernel.ringbuf(ring!)!;
  const out = new DataView(rb.batchBuffer);
  for (let i = 0; i < count; i++) {
    const at = rb.batchReserveWait(STREAM_RECORD, 0, 10_000); // waits only for room
    if (at < 0) throw new Error(`stream: batchReserveWait returned ${at}`);
    out.setUint32(at, i, true);
    out.setFloat64(at + 8, i, true);
  }
  kernel.detach();
}

/**
 * sabvm, a run of records at a time: batchReserveBulk takes room for STREAM_BULK records in one
 * call, and each record is written in place at its stride.
 */
function sabvmBulk(): void {
  started[0] = performance.timeOrigin + performance.now(); // the attach is the program's too
  const kernel = Kernel.attach(handle!);
  const rb = kernel.ringbuf(ring!)!;
  const out = new DataView(rb.batchBuffer);
  const stride = ringbufBulkStride(STREAM_RECORD); // 32: the records lie side by side
  for (let i = 0; i < count;) {
    const n = Math.min(STREAM_BULK, count - i);
    let at = rb.batchReserveBulkWait(STREAM_RECORD, n, 0, 10_000); // waits only for room
    if (at < 0) throw new Error(`stream: batchReserveBulkWait returned ${at}`);
    for (const end = i + n; i < end; i++, at += stride) {
      out.setUint32(at, i, true);
      out.setFloat64(at + 8, i, true);
    }
  }
  kernel.detach();
}

/** The hand-written ring: fixed slots, the head published every RAW_PUBLISH records. */
function rawRing(): void {
  const ctl = new Int32Array(raw!, 0, 32);
  const dv = new DataView(raw!, RAW_SLOTS_AT);
  let head = 0;
  let tail = 0;
  started[0] = performance.timeOrigin + performance.now();
  for (let i = 0; i < count; i++) {
    while (head - tail >= RAW_SLOTS) {
      tail = Atomics.load(ctl, RAW_TAIL);
      if (head - tail >= RAW_SLOTS) Atomics.wait(ctl, RAW_TAIL, tail, 10);
    }
    const o = (head % RAW_SLOTS) * STREAM_RECORD;
    dv.setUint32(o, i, true);
    dv.setFloat64(o + 8, i, true);
    head++;
    if (head % RAW_PUBLISH === 0) Atomics.store(ctl, RAW_HEAD, head);
  }
  Atomics.store(ctl, RAW_HEAD, head);
}

/**
 * Small records, a run at a time (the program a user wrote from the docs): batchReserveBulk takes
 * room for STREAM_BULK records of SMALL_RECORD bytes, each written through typed arrays made once.
 */
function smallBulk(): void {
  started[0] = performance.timeOrigin + performance.now(); // the attach is the program's too
  const kernel = Kernel.attach(handle!);
  const rb = kernel.ringbuf(ring!)!;
  const u32 = new Uint32Array(rb.batchBuffer);
  const f64 = new Float64Array(rb.batchBuffer);
  const i32 = new Int32Array(rb.batchBuffer);
  const stride = ringbufBulkStride(SMALL_RECORD); // 24: the records lie side by side
  for (let i = 0; i < count;) {
    const n = Math.min(STREAM_BULK, count - i);
    let at = rb.batchReserveBulkWait(SMALL_RECORD, n, 0, 10_000); // waits only for room
    if (at < 0) throw new Error(`stream: batchReserveBulkWait returned ${at}`);
    for (const end = i + n; i < end; i++, at += stride) {
      u32[at >> 2] = i;
      f64[(at >> 3) + 1] = i;
      i32[(at >> 2) + 4] = i & 3;
    }
  }
  kernel.detach();
}

/**
 * Small records packed: SMALL_PACK of them side by side in one ring record (one header for all),
 * reserved with batchReserve and written through typed arrays made once.
 */
function smallPacked(): void {
  started[0] = performance.timeOrigin + performance.now(); // the attach is the program's too
  const kernel = Kernel.attach(handle!);
  const rb = kernel.ringbuf(ring!)!;
  const u32 = new Uint32Array(rb.batchBuffer);
  const f64 = new Float64Array(rb.batchBuffer);
  const i32 = new Int32Array(rb.batchBuffer);
  for (let i = 0; i < count;) {
    const n = Math.min(SMALL_PACK, count - i);
    let at = rb.batchReserveWait(n * SMALL_RECORD, 0, 10_000); // waits only for room
    if (at < 0) throw new Error(`stream: batchReserveWait returned ${at}`);
    for (const end = i + n; i < end; i++, at += SMALL_RECORD) {
      u32[at >> 2] = i;
      f64[(at >> 3) + 1] = i;
      i32[(at >> 2) + 4] = i & 3;
    }
  }
  kernel.detach();
}

/**
 * Small records in a hand-written ring of `slot`-byte slots (1 MiB of them), through typed arrays:
 * the head published every RAW_PUBLISH records; on a full ring, the head published and a sleep of
 * up to 10 ms on the tail.
 */
function smallRaw(): void {
  const ctl = new Int32Array(raw!, 0, 32);
  const u32 = new Uint32Array(raw!, RAW_SLOTS_AT);
  const f64 = new Float64Array(raw!, RAW_SLOTS_AT);
  const i32 = new Int32Array(raw!, RAW_SLOTS_AT);
  const words = slot! >> 2;
  const slots = Math.floor(RAW_RING_BYTES / slot!);
  let head = 0;
  let tail = 0;
  let s = 0;
  started[0] = performance.timeOrigin + performance.now();
  for (let i = 0; i < count; i++) {
    while (head - tail >= slots) {
      tail = Atomics.load(ctl, RAW_TAIL);
      if (head - tail < slots) break;
      Atomics.store(ctl, RAW_HEAD, head); // publish before sleeping
      Atomics.wait(ctl, RAW_TAIL, tail, 10);
    }
    const w = s * words;
    u32[w] = i;
    f64[(w >> 1) + 1] = i;
    i32[w + 4] = i & 3;
    head++;
    if (++s === slots) s = 0;
    if ((head & (RAW_PUBLISH - 1)) === 0) Atomics.store(ctl, RAW_HEAD, head);
  }
  Atomics.store(ctl, RAW_HEAD, head);
}

/**
 * Records of four lengths, one `batchReserveWait` each (the length is the record's own), written
 * in place through typed arrays made once: its sequence number, its value, and the number again in
 * each of its other words.
 */
function varSabvm(): void {
  started[0] = performance.timeOrigin + performance.now(); // the attach is the program's too
  const kernel = Kernel.attach(handle!);
  const rb = kernel.ringbuf(ring!)!;
  const u32 = new Uint32Array(rb.batchBuffer);
  const f64 = new Float64Array(rb.batchBuffer);
  for (let i = 0; i < count; i++) {
    const len = varLength(i);
    const at = rb.batchReserveWait(len, 0, 10_000); // waits only for room
    if (at < 0) throw new Error(`stream: batchReserveWait returned ${at}`);
    u32[at >> 2] = i;
    f64[(at >> 3) + 1] = i;
    for (let w = (at >> 2) + 4, end = (at + len) >> 2; w < end; w++) u32[w] = i;
  }
  kernel.detach();
}

/**
 * The same records in a hand-written ring of length-prefixed records (1 MiB from RAW_SLOTS_AT),
 * as a user writes one: a length word (and 4 bytes of padding) before each record; a record that
 * does not fit before the end leaves VAR_WRAP in the length word there and goes at byte 0. The
 * head and tail are byte counts in Int32 words, so a run may stream at most 2 GiB (here 72 MB);
 * the head is published every RAW_PUBLISH records and before a sleep of up to 10 ms on the tail
 * when the ring is full.
 */
function varRaw(): void {
  const ctl = new Int32Array(raw!, 0, 32);
  const u32 = new Uint32Array(raw!, RAW_SLOTS_AT);
  const f64 = new Float64Array(raw!, RAW_SLOTS_AT);
  const size = RAW_RING_BYTES;
  let head = 0;
  let tail = 0;
  let off = 0; // head's byte in the ring
  started[0] = performance.timeOrigin + performance.now();
  for (let i = 0; i < count; i++) {
    const len = varLength(i);
    const total = varRawBytes(len);
    const skip = off + total > size ? size - off : 0; // the tail left unused at a wrap
    while (head + skip + total - tail > size) {
      tail = Atomics.load(ctl, RAW_TAIL);
      if (head + skip + total - tail <= size) break;
      Atomics.store(ctl, RAW_HEAD, head); // publish before sleeping
      Atomics.wait(ctl, RAW_TAIL, tail, 10);
    }
    if (skip !== 0) {
      u32[off >> 2] = VAR_WRAP;
      head += skip;
      off = 0;
    }
    u32[off >> 2] = len;
    const at = off + 8;
    u32[at >> 2] = i;
    f64[(at >> 3) + 1] = i;
    for (let w = (at >> 2) + 4, end = (at + len) >> 2; w < end; w++) u32[w] = i;
    head += total;
    off += total;
    if (off === size) off = 0; // the ring's end reached exactly: no tail to skip
    if ((i & (RAW_PUBLISH - 1)) === RAW_PUBLISH - 1) Atomics.store(ctl, RAW_HEAD, head);
  }
  Atomics.store(ctl, RAW_HEAD, head);
}

/**
 * The same records in a hand-written ring of fixed VAR_SLOT-byte slots (the longest record), the
 * length not sent: a consumer that knows each record's kind knows its length, as here from its
 * number. As smallRaw's ring otherwise.
 */
function varSlots(): void {
  const ctl = new Int32Array(raw!, 0, 32);
  const u32 = new Uint32Array(raw!, RAW_SLOTS_AT);
  const f64 = new Float64Array(raw!, RAW_SLOTS_AT);
  const words = VAR_SLOT >> 2;
  const slots = Math.floor(RAW_RING_BYTES / VAR_SLOT);
  let head = 0;
  let tail = 0;
  let s = 0;
  started[0] = performance.timeOrigin + performance.now();
  for (let i = 0; i < count; i++) {
    while (head - tail >= slots) {
      tail = Atomics.load(ctl, RAW_TAIL);
      if (head - tail < slots) break;
      Atomics.store(ctl, RAW_HEAD, head); // publish before sleeping
      Atomics.wait(ctl, RAW_TAIL, tail, 10);
    }
    const w = s * words;
    u32[w] = i;
    f64[(w >> 1) + 1] = i;
    for (let k = w + 4, end = w + (varLength(i) >> 2); k < end; k++) u32[k] = i;
    head++;
    if (++s === slots) s = 0;
    if ((head & (RAW_PUBLISH - 1)) === 0) Atomics.store(ctl, RAW_HEAD, head);
  }
  Atomics.store(ctl, RAW_HEAD, head);
}

/** Batches of STREAM_BATCH records, each a new ArrayBuffer moved with a transfer list. */
function transfer(): void {
  started[0] = performance.timeOrigin + performance.now();
  for (let i = 0; i < count;) {
    const n = Math.min(STREAM_BATCH, count - i);
    const buf = new ArrayBuffer(n * STREAM_RECORD);
    const dv = new DataView(buf);
    for (let j = 0; j < n; j++, i++) {
      dv.setUint32(j * STREAM_RECORD, i, true);
      dv.setFloat64(j * STREAM_RECORD + 8, i, true);
    }
    port.postMessage(buf, [buf]);
  }
}

if (mode === StreamMode.SABVM) sabvm();
else if (mode === StreamMode.SABVM_BULK) sabvmBulk();
else if (mode === StreamMode.RAW) rawRing();
else if (mode === StreamMode.SMALL_BULK) smallBulk();
else if (mode === StreamMode.SMALL_PACKED) smallPacked();
else if (mode === StreamMode.SMALL_RAW) smallRaw();
else if (mode === StreamMode.VAR_SABVM) varSabvm();
else if (mode === StreamMode.VAR_RAW) varRaw();
else if (mode === StreamMode.VAR_SLOTS) varSlots();
else transfer();
